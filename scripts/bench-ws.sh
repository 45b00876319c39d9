#!/usr/bin/env bash
# WebSocket benchmark: gyre's /bench/ws routes under many connections.
#   1. idle: CONNS connections on /bench/ws/echo, one echo each, held idle;
#      the server's VmRSS growth per connection.
#   2. broadcast: CONNS connections on /bench/ws/broadcast; latency until the
#      last connection has a message (min/median/max over ROUNDS), and the
#      delivery rate of a BURST of messages fanned out to every connection.
# Each mode gets a fresh server (target/release/gyre serve --bench-routes),
# pinned to CPU 0; the client (target/release/ws-bench, one mio loop) to
# CPU 1. Every run is bounded in time; the script kills only the server it
# started, and exits non-zero if either mode did not complete.
# Knobs: CONNS=15000 WORKERS=1 PORT=(free) HOLD_SECS=5 ROUNDS=20 BURST=200
# SERVER_BIN=(target/release/gyre, to compare builds)
#        MAX_HANDSHAKES=500 SERVER_CPUS=0 CLIENT_CPUS=1 CLIENT_TIMEOUT=600
set -euo pipefail
. "$(dirname "$0")/lib/server.sh"
cd "$(dirname "$0")/.."

CONNS=${CONNS:-15000}
WORKERS=${WORKERS:-1}
HOLD_SECS=${HOLD_SECS:-5}
ROUNDS=${ROUNDS:-20}
BURST=${BURST:-200}
MAX_HANDSHAKES=${MAX_HANDSHAKES:-500}
SERVER_CPUS=${SERVER_CPUS:-0}
CLIENT_CPUS=${CLIENT_CPUS:-1}
CLIENT_TIMEOUT=${CLIENT_TIMEOUT:-600}

cargo build -q --release --bin gyre
cargo build -q --release -p gyre-bench --bin ws-bench
server_bin=${SERVER_BIN:-target/release/gyre}
client_bin=target/release/ws-bench

# Both processes need an fd per connection (and the client ~CONNS of them).
ulimit -n "$(ulimit -Hn)"
fd_limit=$(ulimit -n)
if [[ $fd_limit != unlimited ]] && (( CONNS + 64 > fd_limit )); then
    echo "bench-ws: CONNS=$CONNS does not fit the fd limit $fd_limit" >&2
    exit 2
fi

if [[ -z ${PORT:-} ]]; then
    PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
fi
addr=127.0.0.1:$PORT

server_pin=(); client_pin=()
if command -v taskset > /dev/null && (( $(nproc) >= 2 )); then
    server_pin=(taskset -c "$SERVER_CPUS")
    client_pin=(taskset -c "$CLIENT_CPUS")
fi

# Raise the server's connection cap above CONNS if it has one.
server_args=(serve --bench-routes --workers "$WORKERS" --listen "$addr")
if "$server_bin" serve --help | grep -q -- '--max-connections'; then
    server_args+=(--max-connections $((CONNS + 100)))
fi

out=$(mktemp -d)
server_pid=
stop_server() {
    stop_pid "$server_pid"
    server_pid=
}
cleanup() {
    stop_server
    rm -rf "$out"
}
trap cleanup EXIT

start_server() {
    "${server_pin[@]}" "$server_bin" "${server_args[@]}" > "$out/server.log" 2>&1 &
    server_pid=$!
    await_server bench-ws "$server_pid" "$out/server.log" bash -c ": <> /dev/tcp/127.0.0.1/$PORT"
}

# run_mode NAME ARGS...: fresh server, one client run (an argument @PID@
# becomes the server's pid), its output kept in $out/NAME.
run_mode() {
    local name=$1
    shift
    start_server
    local args=() a
    for a in "$@"; do args+=("${a//@PID@/$server_pid}"); done
    echo
    echo "== $name: $CONNS connections, server pid $server_pid on $addr, $WORKERS worker(s)"
    set +e
    timeout "$CLIENT_TIMEOUT" "${client_pin[@]}" "$client_bin" "$name" \
        --addr "$addr" --conns "$CONNS" --max-handshakes "$MAX_HANDSHAKES" "${args[@]}" \
        2>&1 | tee "$out/$name"
    local rc=${PIPESTATUS[0]}
    set -e
    if (( rc != 0 )); then
        (( rc == 124 )) && echo "bench-ws: ws-bench $name killed after ${CLIENT_TIMEOUT} s" >&2
        echo "bench-ws: ws-bench $name exited $rc; server log tail:" >&2
        tail -n 20 "$out/server.log" >&2
    fi
    stop_server
    return "$rc"
}

status=0
run_mode idle --server-pid @PID@ --hold-secs "$HOLD_SECS" || status=1
run_mode broadcast --rounds "$ROUNDS" --burst "$BURST" || status=1

echo
echo "== results (CONNS=$CONNS WORKERS=$WORKERS)"
grep -h -e 'memory per idle connection' -e 'broadcast latency' -e '^burst:' \
    -e 'opened ' "$out/idle" "$out/broadcast" 2> /dev/null || true
grep -h '^{' "$out/idle" "$out/broadcast" 2> /dev/null || true
if (( status != 0 )); then
    echo "bench-ws: at least one mode did not complete (see above)" >&2
fi
exit "$status"
