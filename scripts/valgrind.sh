#!/usr/bin/env bash
# Runs the runtime's task and wake-up tests under valgrind (memcheck), scaled
# down, to catch memory errors in the task cells and wakers that the safe
# runtime code drives (async-task's raw task layout), and the unit tests of
# the runtime's own unsafe code (`net::sys`, `page_cache`, `pooled`).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q -p gyre-rt --tests
for name in wake_stress tasks blocking timers broadcast gyre_rt; do
    bin=$(ls -t target/debug/deps/${name}-* | grep -v '\.d$' | head -n1)
    echo "valgrind: $bin"
    GYRE_STRESS_SCALE=0.1 valgrind -q --error-exitcode=99 --leak-check=no \
        "$bin" --test-threads=1 >/dev/null
done
echo "valgrind: no memory errors"
