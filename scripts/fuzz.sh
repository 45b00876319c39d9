#!/usr/bin/env bash
# Fuzzes a whole connection (arbitrary bytes in, a real server answering) for
# a bounded time: scripts/fuzz.sh [SECONDS=60] [TARGET=connection|websocket].
# Crashes land in fuzz/artifacts/TARGET/; copy each into fuzz/regressions/ so
# that crates/server/tests/fuzz_regressions.rs replays it in every test run.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
mkdir -p corpus/connection
printf 'GET / HTTP/1.1\r\nHost: x\r\n\r\n' > corpus/connection/get
printf 'POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n' > corpus/connection/chunked
printf 'GET /users/7 HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.0\r\n\r\n' > corpus/connection/pipelined
printf 'GET /t/a%%2Fb?c=d&e HTTP/1.1\r\nHost: x\r\n\r\nGET /t/x?y?z HTTP/1.1\r\nHost: x\r\n\r\n' > corpus/connection/target
target=${2:-connection}
mkdir -p corpus/websocket
# A masked text frame "hello", a ping, then a close 1000.
printf '\x81\x85\x01\x02\x03\x04\x69\x67\x6f\x68\x6e\x89\x80\x00\x00\x00\x00\x88\x82\x00\x00\x00\x00\x03\xe8' > corpus/websocket/hello
cargo +nightly fuzz run "$target" "corpus/$target" -- -max_total_time="${1:-60}" -rss_limit_mb=4096
