#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what the tests need when it is
# missing, then checks formatting and lints, runs every test, and runs the
# runtime's wake-up stress tests under valgrind.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v curl >/dev/null || need_apt+=(curl)
command -v valgrind >/dev/null || need_apt+=(valgrind)
command -v python3 >/dev/null || need_apt+=(python3)
# The WebSocket interop tests use Python's `websockets` (Debian's package,
# for the system interpreter).
/usr/bin/python3 -c "import websockets" 2>/dev/null || need_apt+=(python3-websockets)
# The browser test drives Debian's Chromium from Node (playwright-core).
command -v chromium >/dev/null || need_apt+=(chromium)
command -v node >/dev/null || need_apt+=(nodejs)
command -v npm >/dev/null || need_apt+=(npm)
if [ ${#need_apt[@]} -gt 0 ]; then
    echo "installing: ${need_apt[*]}"
    apt-get update -qq && apt-get install -y -qq "${need_apt[@]}"
fi

if [ ! -d tests/browser/node_modules ]; then
    (cd tests/browser && npm ci --no-audit --no-fund)
fi

# Tests that open thousands of sockets need more than the usual 1024 files.
ulimit -n "$(ulimit -Hn)"

echo "== fmt"; cargo fmt --all --check
echo "== clippy"; cargo clippy --workspace --all-targets -- -D warnings
echo "== docs"; RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --workspace --quiet
echo "== tests"
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace --no-fail-fast
    cargo test --workspace --doc
else
    cargo test --workspace
fi
echo "== valgrind"; scripts/valgrind.sh
echo "all tests passed"
