#!/usr/bin/env bash
# TCP echo ping-pong, gyre against tokio's current_thread runtime, side by side:
# server pinned to CPU 0, the same mio client pinned to CPU 1, rounds
# interleaved (gyre, tokio, gyre, tokio, ...). Prints round trips per second,
# server CPU microseconds per round trip, and the median ratio gyre/tokio.
# Knobs: ROUNDS=5 SECONDS=5 CONNS=100 BYTES=64
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-5}; SECS=${SECONDS_PER_RUN:-5}; CONNS=${CONNS:-100}; BYTES=${BYTES:-64}
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
    local rt=${line#roundtrips=}; rt=${rt%% *}
    local secs=${line##*seconds=}
    # CPU time includes the 1 s warm-up; count it against warm-up round trips too.
    python3 - "$name" "$round" "$rt" "$secs" "$before" "$after" "$ticks" >> "$out/rows" <<'PY'
import sys
name, rnd, rt, secs, b, a, tck = sys.argv[1:]
rt, secs = int(rt), float(secs)
rate = rt / secs
cpu_s = (int(a) - int(b)) / int(tck)
# CPU was spent over warm-up + measurement; scale round trips to that span.
us_per = cpu_s / (rate * (secs + 1.0)) * 1e6
print(f"{name} {rnd} {rate:.0f} {us_per:.3f}")
PY
    tail -n1 "$out/rows"
}

for r in $(seq "$ROUNDS"); do
    run_one gyre "$r"
    run_one tokio "$r"
done

python3 - "$out/rows" <<'PY'
import sys, statistics as st
rows = [l.split() for l in open(sys.argv[1])]
by = {}
for name, rnd, rate, us in rows:
    by.setdefault(name, []).append((int(rnd), float(rate), float(us)))
print()
print("| server | round trips/s (median) | min / max | server CPU µs per round trip (median) |")
print("|---|---:|---:|---:|")
for name, v in by.items():
    rates = [x[1] for x in v]; us = [x[2] for x in v]
    print(f"| {name} | {st.median(rates):,.0f} | {min(rates):,.0f} / {max(rates):,.0f} | {st.median(us):.2f} |")
g = {r: rate for r, rate, _ in by["gyre"]}; t = {r: rate for r, rate, _ in by["tokio"]}
ratios = [g[r] / t[r] for r in g if r in t]
print(f"\nmedian per-round ratio gyre/tokio: {st.median(ratios):.3f} (rounds: {', '.join(f'{x:.2f}' for x in ratios)})")
PY
rm -rf "$out"
