#!/usr/bin/env bash
# Static files, gyre --workers 1 beside nginx (one worker, sendfile on):
# a 1 KiB and a 1 MiB file, 64 connections, server on CPU 0 and wrk on CPU 1,
# rounds interleaved. Prints req/s, server CPU microseconds per request, and
# how busy each core was: on loopback the kernel's TCP work for both ends
# lands on one core or the other depending on how the server sends (corked
# full segments are delivered by the sender's core), so "server CPU" alone
# can flatter a server that leaves that work to the client's core.
# Knobs: ROUNDS=5 SECS=5
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-5}; SECS=${SECS:-5}
command -v nginx >/dev/null && command -v wrk >/dev/null || apt-get install -y -qq nginx wrk
cargo build -q --release
work=$(mktemp -d)
mkdir -p "$work/www" "$work/nginx/logs" "$work/nginx/tmp"
head -c 1024 /dev/urandom > "$work/www/1k.bin"
head -c 1048576 /dev/urandom > "$work/www/1m.bin"
chmod -R a+rX "$work"  # nginx workers run as nobody
cat > "$work/nginx/nginx.conf" <<CONF
worker_processes 1;
daemon off;
error_log $work/nginx/logs/error.log;
pid $work/nginx/nginx.pid;
events { worker_connections 4096; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000000;
    client_body_temp_path $work/nginx/tmp;
    proxy_temp_path $work/nginx/tmp;
    fastcgi_temp_path $work/nginx/tmp;
    uwsgi_temp_path $work/nginx/tmp;
    scgi_temp_path $work/nginx/tmp;
    server { listen 127.0.0.1:27401; root $work/www; }
}
CONF
ticks=$(getconf CLK_TCK)
cpu() { local t=0; for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done; echo $t; }
cores() { grep -E '^cpu[01] ' /proc/stat | tr '\n' ' '; }
rows="$work/rows"

run() { # name file
    local name=$1 file=$2 pids port
    if [ "$name" = gyre ]; then
        port=27400
        taskset -c 0 target/release/gyre serve --workers 1 --root "$work/www" --listen 127.0.0.1:$port >/dev/null 2>&1 &
        sleep 0.5; pids=$(pgrep -f "listen 127.0.0.1:$port")
    else
        port=27401
        taskset -c 0 nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" >/dev/null 2>&1 &
        sleep 0.5; pids=$(pgrep -f "nginx: worker process" | head -n1)
    fi
    taskset -c 1 wrk -t1 -c64 -d1s "http://127.0.0.1:$port/$file" >/dev/null
    local before; before=$(cpu $pids)
    local cores_before; cores_before=$(cores)
    local rps; rps=$(taskset -c 1 wrk -t1 -c64 -d${SECS}s "http://127.0.0.1:$port/$file" | awk '/Requests\/sec/ {print $2}')
    local after; after=$(cpu $pids)
    local cores_after; cores_after=$(cores)
    if [ "$name" = gyre ]; then kill $pids; else kill "$(cat "$work/nginx/nginx.pid")"; fi
    sleep 0.5
    python3 - "$name" "$file" "$rps" "$before" "$after" "$ticks" "$SECS" "$cores_before" "$cores_after" <<'PY' | tee -a "$rows"
import sys
name, file, rps, b, a, ticks, secs, cb, ca = sys.argv[1:]
rps, secs = float(rps), int(secs)
us = (int(a) - int(b)) / int(ticks) / (rps * secs) * 1e6
def busy(i):
    x = [list(map(int, l.split()[1:])) for l in cb.replace('cpu', '\ncpu').split('\n') if l.strip()][i]
    y = [list(map(int, l.split()[1:])) for l in ca.replace('cpu', '\ncpu').split('\n') if l.strip()][i]
    d = [q - p for p, q in zip(x, y)]
    return 100 * (sum(d) - d[3] - d[4]) / sum(d)
print(f"{name} {file} {rps:.0f} {us:.1f} {busy(0):.0f} {busy(1):.0f}")
PY
}

echo "server file req/s server-us/req core0-busy% core1-busy%"
for r in $(seq "$ROUNDS"); do
    for f in 1k.bin 1m.bin; do run gyre $f; run nginx $f; done
done
python3 - "$rows" <<'PY'
import sys, statistics as st
rows = [l.split() for l in open(sys.argv[1])]
print()
print("| server | file | req/s median (min / max) | server µs/req median | core 0 / core 1 busy % (median) |")
print("|---|---|---:|---:|---:|")
for f in ("1k.bin", "1m.bin"):
    for name in ("gyre", "nginx"):
        v = [r for r in rows if r[0] == name and r[1] == f]
        rps = [float(r[2]) for r in v]
        us = [float(r[3]) for r in v]
        c0 = [float(r[4]) for r in v]
        c1 = [float(r[5]) for r in v]
        print(f"| {name} | {f} | {st.median(rps):,.0f} ({min(rps):,.0f} / {max(rps):,.0f}) | {st.median(us):.1f} | {st.median(c0):.0f} / {st.median(c1):.0f} |")
PY
rm -rf "$work"
