#!/usr/bin/env bash
# Instructions per request of `gyre serve --bench-routes --workers 1`, counted
# by callgrind: exact and repeatable where timings on a shared VM are not
# (±8% run to run), so it can judge a change of a few percent. Two runs of
# N1 and N2 requests; (Ir(N2) - Ir(N1)) / (N2 - N1) leaves out start-up.
# Counts user-space instructions only: not the kernel's work, not cache
# misses, and a `rep movsb` memcpy counts as one instruction.
# Usage: scripts/bench-instructions.sh [BINARY...]  (default target/release/gyre)
# Knobs: N1=3200 N2=16000
set -euo pipefail
cd "$(dirname "$0")/.."
N1=${N1:-3200}; N2=${N2:-16000}
command -v valgrind >/dev/null || apt-get install -y -qq valgrind
[ $# -gt 0 ] || { cargo build -q --release; set -- target/release/gyre; }
out=$(mktemp -d)
port=27500

instructions() { # binary mode requests
    port=$((port + 1))
    valgrind --tool=callgrind --callgrind-out-file="$out/cg.%p" \
        "$1" serve --bench-routes --workers 1 --listen "127.0.0.1:$port" >"$out/log" 2>&1 &
    local pid=$!
    for _ in $(seq 300); do (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
    python3 scripts/request-client.py "$port" "$3" "$2" >/dev/null
    kill -INT "$pid"; wait "$pid" 2>/dev/null || true
    callgrind_annotate "$out"/cg.* 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}'
    rm -f "$out"/cg.*
}

printf '%-40s %12s %12s\n' binary pipelined keep-alive
for bin in "$@"; do
    row=()
    for mode in pipelined keepalive; do
        a=$(instructions "$bin" "$mode" "$N1"); b=$(instructions "$bin" "$mode" "$N2")
        row+=($(( (b - a) / (N2 - N1) )))
    done
    printf '%-40s %12s %12s\n' "$bin" "${row[0]}" "${row[1]}"
done
rm -rf "$out"
