#!/usr/bin/env bash
# Chat load benchmark: a fresh `gyre serve` (chat rate limit raised so that the
# senders are not refused) pinned to CPU 0, and a load client pinned to the
# other CPUs: by default `ws-bench chat` (crates/bench/src/bin/ws-bench.rs, one
# mio thread, see `ws-bench chat --help`), or with CLIENT=python
# scripts/chat-load.py (Python asyncio WebSocket clients, see its --help; it
# saturates its CPU at ~40k frames/s, so its latencies then measure itself).
# The arguments are passed to the client, e.g.
#   scripts/bench-chat.sh --clients 200 --seconds 10
# (--clients --rooms --senders --rate --seconds --warmup --connect-concurrency
# mean the same to both.)
# Prints the client's report, the server's CPU time (whole run, and in the
# measured window per 1000 deliveries) and its gyre_broadcast_* metrics.
# Kills only the server it started. Exit status: the client's.
# Knobs: CLIENT=rust|python PORT=18180 (a free one if taken) WORKERS=1
#        SERVER_CPUS=0 CLIENT_CPUS=(all but SERVER_CPUS) PYTHON=/usr/bin/python3
#        SERVER_ARGS="" (more `gyre serve` flags, split on spaces, e.g.
#        SERVER_ARGS="--broadcast-queue 8" to exercise the lag recovery)
set -euo pipefail
. "$(dirname "$0")/lib/server.sh"
cd "$(dirname "$0")/.."

WORKERS=${WORKERS:-1}
SERVER_CPUS=${SERVER_CPUS:-0}
PYTHON=${PYTHON:-/usr/bin/python3}
CLIENT=${CLIENT:-rust}
read -r -a server_extra <<< "${SERVER_ARGS:-}"
case $CLIENT in
    rust | python) ;;
    *)
        echo "bench-chat: CLIENT must be rust or python, not '$CLIENT'" >&2
        exit 2
        ;;
esac

cargo build -q --release --bin gyre
server_bin=target/release/gyre
if [[ $CLIENT == rust ]]; then
    cargo build -q --release -p gyre-bench --bin ws-bench
fi

ulimit -n "$(ulimit -Hn)"

port_free() {
    "$PYTHON" - "$1" << 'PY'
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server does
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
PY
}
PORT=${PORT:-18180}
if ! port_free "$PORT"; then
    PORT=$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
fi
addr=127.0.0.1:$PORT

server_pin=(); client_pin=()
if command -v taskset > /dev/null && (( $(nproc) >= 2 )); then
    CLIENT_CPUS=${CLIENT_CPUS:-$( "$PYTHON" -c '
import os, sys
cpus = sorted(os.sched_getaffinity(0))
server = set()
for part in sys.argv[1].split(","):
    a, _, b = part.partition("-")
    server.update(range(int(a), int(b or a) + 1))
print(",".join(str(c) for c in cpus if c not in server) or ",".join(map(str, cpus)))
' "$SERVER_CPUS")}
    server_pin=(taskset -c "$SERVER_CPUS")
    client_pin=(taskset -c "$CLIENT_CPUS")
fi

out=$(mktemp -d)
server_pid=
cleanup() {
    stop_pid "$server_pid"
    rm -rf "$out"
}
trap cleanup EXIT

# taskset execs the server, so $! is the server's pid.
"${server_pin[@]}" "$server_bin" serve --listen "$addr" --workers "$WORKERS" \
    --chat-rate 1000 --chat-burst 1000 "${server_extra[@]}" > "$out/server.log" 2>&1 &
server_pid=$!
await_server bench-chat "$server_pid" "$out/server.log" curl -s -o /dev/null --max-time 1 "http://$addr/api/rooms"

cpu_seconds() {
    awk -v tck="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); printf "%.2f\n", ($12 + $13) / tck }' \
        "/proc/$1/stat"
}

if (( ${#server_pin[@]} )); then
    pinning="server on CPU $SERVER_CPUS, client on CPU $CLIENT_CPUS"
else
    pinning="not pinned"
fi
echo "== gyre serve on $addr, pid $server_pid, $WORKERS worker(s), $pinning; client: $CLIENT"
echo "   load average before the run: $(cut -d' ' -f1-3 /proc/loadavg) (other work on these CPUs skews the figures)"
cpu_before=$(cpu_seconds "$server_pid")
if [[ $CLIENT == rust ]]; then
    client_cmd=(target/release/ws-bench chat --addr "$addr")
else
    client_cmd=("$PYTHON" scripts/chat-load.py --url "ws://$addr")
fi
set +e
"${client_pin[@]}" "${client_cmd[@]}" --server-pid "$server_pid" "$@" 2>&1 | tee "$out/load"
rc=${PIPESTATUS[0]}
set -e
if ! kill -0 "$server_pid" 2> /dev/null; then
    echo "bench-chat: the server died during the run; log tail:" >&2
    tail -n 20 "$out/server.log" >&2
    exit 2
fi
cpu_after=$(cpu_seconds "$server_pid")

echo
echo "== server"
"$PYTHON" - "$cpu_before" "$cpu_after" "$out/load" << 'PY'
import json, sys
before, after = float(sys.argv[1]), float(sys.argv[2])
summary = None
for line in open(sys.argv[3]):
    if line.startswith("{"):
        try:
            summary = json.loads(line)
        except ValueError:
            pass
print(f"server CPU, whole run (connect, warm-up, window, close): {after - before:.2f} s")
if summary and summary.get("server_cpu_seconds") is not None:
    d = summary["deliveries"]
    per = summary["server_cpu_s_per_1000_deliveries"]
    print(f"server CPU, measured window: {summary['server_cpu_seconds']:.2f} s over "
          f"{summary['seconds']:g} s, {d} deliveries: {per} CPU-s per 1000 deliveries")
PY
curl -s --max-time 5 "http://$addr/metrics" | grep '^gyre_broadcast_' || echo "(no gyre_broadcast_ metrics)"
if grep -qiE 'panic|error' "$out/server.log"; then
    echo
    echo "== server log (errors)"
    grep -iE 'panic|error' "$out/server.log" | tail -n 20
fi
exit "$rc"
