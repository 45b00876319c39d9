#!/usr/bin/env bash
# gyre beside the peer servers (hyper, actix-web, may_minihttp, nginx, the null
# server) with the shared side-by-side driver: server on CPU 0, wrk on CPU 1,
# rounds interleaved; scenarios (a) 16 and (b) 256 keep-alive connections,
# (c) 16 connections x 16 pipelined requests, (d) 10,000 idle connections.
# Prints req/s, p99, and server CPU per request; the report lands in
# $PEERS_SCRATCH (default /tmp/peers-run)/RESULTS.md.
# Knobs: PEERS_ONLY (default below), PEERS_ROUNDS (3), PEERS_DURATION (10).
set -euo pipefail
cd "$(dirname "$0")/.."
peers=../shared/bench/peers
[ -x "$peers/run.sh" ] || { echo "peer harness not found at $peers" >&2; exit 1; }
cargo build -q --release
export PEERS_EXTRA="gyre|/bench/plaintext|target/release/gyre serve --workers 1 --bench-routes --listen 127.0.0.1:{port}"
export PEERS_ONLY="${PEERS_ONLY:-gyre,hyper-ct,actix-web,may_minihttp,nginx,null}"
exec "$peers/run.sh"
