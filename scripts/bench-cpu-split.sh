#!/usr/bin/env bash
# Where a keep-alive request's server CPU goes: user and system time per
# request of gyre, the null server and may_minihttp, side by side. Each
# server runs on CPU 0 and `wrk -t1` on CPU 1; after a 2 s warm-up the
# server's utime and stime (/proc/PID/stat, in clock ticks) are taken over
# SECS seconds and divided by the requests wrk counted. Rounds are
# interleaved (gyre, null, may, gyre, ...).
#
# Ticks are 10 ms, so over 8 s a user time near 18% of the CPU is known to
# about ±8%: compare the medians of several rounds, not one round.
# Knobs: ROUNDS=3 SECS=8 CONNS=16 GYRE=target/release/gyre
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/server.sh
ROUNDS=${ROUNDS:-3}; SECS=${SECS:-8}; CONNS=${CONNS:-16}
GYRE=${GYRE:-target/release/gyre}
peers=../shared/bench/peers/rust
command -v wrk >/dev/null || apt-get install -y -qq wrk
[ "$GYRE" != target/release/gyre ] || cargo build -q --release
# The peers build into their own folder (the shared one may be read-only).
export CARGO_TARGET_DIR=${PEERS_BUILD:-$PWD/target/peers}
(cd "$peers" && cargo build -q --release --locked -p null-server -p may-hello)
bin=$CARGO_TARGET_DIR/release
port=27700
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

one() { # name command... ({port} in an argument becomes the port)
    local name=$1; shift
    port=$((port + 1))
    local args=("${@//\{port\}/$port}")
    taskset -c 0 "${args[@]}" >"$out/server.log" 2>&1 &
    local pid=$!
    await_server "$name" "$pid" "$out/server.log" bash -c "echo >/dev/tcp/127.0.0.1/$port"
    local url="http://127.0.0.1:$port/bench/plaintext"
    taskset -c 1 wrk -t1 -c"$CONNS" -d2 "$url" >/dev/null 2>&1
    local u0 s0 u1 s1
    read -r u0 s0 < <(awk '{print $14, $15}' "/proc/$pid/stat")
    taskset -c 1 wrk -t1 -c"$CONNS" -d"$SECS" "$url" >"$out/wrk.txt" 2>&1
    read -r u1 s1 < <(awk '{print $14, $15}' "/proc/$pid/stat")
    stop_pid "$pid"
    local requests; requests=$(awk '/requests in/ {print $1}' "$out/wrk.txt")
    python3 - "$name" "$requests" "$((u1 - u0))" "$((s1 - s0))" "$(getconf CLK_TCK)" >>"$out/rows" <<'PY'
import sys
name, req, u, s, tck = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
us = 1e6 / tck / req
print(f"{name} {(u + s) * us:.3f} {u * us:.3f} {s * us:.3f}")
PY
    tail -n1 "$out/rows"
}

echo "server cpu-us/req user-us/req system-us/req"
for _ in $(seq "$ROUNDS"); do
    one gyre "$GYRE" serve --workers 1 --bench-routes --listen "127.0.0.1:{port}"
    one null "$bin/null-server" "{port}"
    one may_minihttp "$bin/may-hello" "{port}"
done

python3 - "$out/rows" <<'PY'
import sys, statistics as st
by = {}
for line in open(sys.argv[1]):
    name, total, user, system = line.split()
    by.setdefault(name, []).append((float(total), float(user), float(system)))
print()
print("| server | CPU µs per request | user | system |")
print("|---|---:|---:|---:|")
for name, rows in by.items():
    print(f"| {name} | {st.median(r[0] for r in rows):.2f} | {st.median(r[1] for r in rows):.2f} | {st.median(r[2] for r in rows):.2f} |")
PY
