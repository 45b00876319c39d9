#!/usr/bin/env bash
# Static files, gyre --workers 1 beside nginx (one worker, sendfile on):
# a 1 KiB and a 1 MiB file, 64 connections, server on CPU 0 and wrk on CPU 1,
# rounds interleaved. Prints req/s and server CPU microseconds per request.
# Knobs: ROUNDS=3 SECS=5
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}; SECS=${SECS:-5}
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
    local rps; rps=$(taskset -c 1 wrk -t1 -c64 -d${SECS}s "http://127.0.0.1:$port/$file" | awk '/Requests\/sec/ {print $2}')
    local after; after=$(cpu $pids)
    if [ "$name" = gyre ]; then kill $pids; else kill "$(cat "$work/nginx/nginx.pid")"; fi
    sleep 0.5
    python3 -c "r=$rps; c=($after-$before)/$ticks; print(f'$name $file {r:,.0f} req/s {c/(r*$SECS)*1e6:.2f} us/req')"
}

for r in $(seq "$ROUNDS"); do
    for f in 1k.bin 1m.bin; do run gyre $f; run nginx $f; done
done
rm -rf "$work"
