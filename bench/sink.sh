#!/bin/sh
# Sink benchmark: throughput (events/s, one core) with dedupe on beside a kcat
# copy of the same topic, Redis bytes per event of the dedupe state, peak RSS.
# Builds an optimised, unsanitised tree in build-bench-sink/ unless
# LTVSYNC_BIN_DIR names one. BENCH_EVENTS (default 200000) sets the size.
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "${LTVSYNC_BIN_DIR:-}" ]; then
    build="$src/build-bench-sink"
    cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release -DLTVSYNC_SANITIZE=OFF >/dev/null
    cmake --build "$build" -j2 --target ltvsync-sink ltvsync-devbroker >/dev/null
    LTVSYNC_BIN_DIR="$build/bin"
fi
export LTVSYNC_BIN_DIR LTVSYNC_SRC_DIR="$src" PYTHONPATH="$src/tests/lib"
exec /usr/bin/python3 "$src/bench/sink_bench.py"
