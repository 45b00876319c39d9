#!/usr/bin/env bash
# Fuzzes a whole connection (arbitrary bytes in, a real server answering) for
# a bounded time: scripts/fuzz.sh [SECONDS=60]. Crashes land in
# fuzz/artifacts/connection/; copy each into fuzz/regressions/ so that
# crates/server/tests/fuzz_regressions.rs replays it in every test run.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
mkdir -p corpus/connection
printf 'GET / HTTP/1.1\r\nHost: x\r\n\r\n' > corpus/connection/get
printf 'POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n' > corpus/connection/chunked
printf 'GET /users/7 HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.0\r\n\r\n' > corpus/connection/pipelined
cargo +nightly fuzz run connection corpus/connection -- -max_total_time="${1:-60}" -rss_limit_mb=4096
