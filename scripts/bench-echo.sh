#!/usr/bin/env bash
# TCP echo ping-pong, gyre against tokio's current_thread runtime, side by
# side: server pinned to CPU 0, the same mio client pinned to CPU 1, rounds
# interleaved (gyre, tokio, raw-epoll, raw-uring, gyre, ...).
#
# raw-epoll and raw-uring are echo loops written by hand with no runtime at
# all (crates/bench/src/bin/echo-bench/raw.rs): they show how far above tokio
# any server can get on this machine's kernel.
#
# Prints round trips per second, server CPU microseconds per round trip, how
# busy the client's core was (near 100% means the client, not the server, is
# the bottleneck), and each server's median per-round ratio to tokio.
# Knobs: ROUNDS=5 SECONDS_PER_RUN=5 CONNS=100 BYTES=64
#        SERVERS="gyre tokio raw-epoll raw-uring" (tokio must be among them)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-5}; SECS=${SECONDS_PER_RUN:-5}; CONNS=${CONNS:-100}; BYTES=${BYTES:-64}
SERVERS=${SERVERS:-gyre tokio raw-epoll raw-uring}
cargo build -q --release -p gyre-bench
bin=target/release/echo-bench
port=27300
out=$(mktemp -d)
ticks=$(getconf CLK_TCK)

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

run_one() { # server-name round
    local name=$1 round=$2
    port=$((port + 1))
    taskset -c 0 "$bin" server "$name" "127.0.0.1:$port" > "$out/server.log" 2>&1 &
    local pid=$!
    for _ in $(seq 100); do grep -q ready "$out/server.log" 2>/dev/null && break; sleep 0.05; done
    local before; before=$(cpu_ticks "$pid")
    local line; line=$(taskset -c 1 "$bin" client "127.0.0.1:$port" "$CONNS" "$SECS" "$BYTES")
    local after; after=$(cpu_ticks "$pid")
    kill "$pid"; wait "$pid" 2>/dev/null || true
    python3 - "$name" "$round" "$line" "$before" "$after" "$ticks" "$SECS" >> "$out/rows" <<'PY'
import sys
name, rnd, line, b, a, tck, span = sys.argv[1:]
f = dict(kv.split("=") for kv in line.split())
rt, secs, tck, span = int(f["roundtrips"]), float(f["seconds"]), int(tck), int(span)
rate = rt / secs
# Both CPU times cover the 1 s warm-up too: count them against
# warm-up + measurement, at the measured rate.
server_cpu = (int(a) - int(b)) / tck
us_per = server_cpu / (rate * (secs + 1.0)) * 1e6
client_busy = int(f["cpu_ticks"]) / tck / (secs + 1.0)
print(f"{name} {rnd} {rate:.0f} {us_per:.3f} {client_busy:.2f}")
PY
    tail -n1 "$out/rows"
}

echo "server round roundtrips/s server-µs/roundtrip client-core-busy"
for r in $(seq "$ROUNDS"); do
    for name in $SERVERS; do run_one "$name" "$r"; done
done

python3 - "$out/rows" <<'PY'
import sys, statistics as st
rows = [l.split() for l in open(sys.argv[1])]
by = {}
for name, rnd, rate, us, busy in rows:
    by.setdefault(name, []).append((int(rnd), float(rate), float(us), float(busy)))
tokio = {r: rate for r, rate, _, _ in by["tokio"]}
print()
print("| server | round trips/s (median) | min / max | server CPU µs per round trip (median) | client core busy | ratio to tokio (median per round) |")
print("|---|---:|---:|---:|---:|---:|")
for name, v in by.items():
    rates = [x[1] for x in v]
    ratios = [rate / tokio[r] for r, rate, _, _ in v if r in tokio]
    print(f"| {name} | {st.median(rates):,.0f} | {min(rates):,.0f} / {max(rates):,.0f} "
          f"| {st.median(x[2] for x in v):.2f} | {st.median(x[3] for x in v):.0%} "
          f"| {st.median(ratios):.3f} |")
PY
rm -rf "$out"
