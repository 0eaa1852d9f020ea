#!/usr/bin/env bash
# Control-plane cost at scale (issue 13): one scheduler with the defaults, a
# real redis-server and the dev broker, N integrations of 30 days written to
# ltvsync.integrations, no fetchers. Prints the time of the first full pass,
# then per steady tick: scheduler CPU, Redis commands (per command), Redis CPU,
# and Redis memory and keys per integration, the scheduler's peak RSS.
# Usage: bench/scale.sh [BUILD_DIR] (default build-bench, Release);
# BENCH_SIZES ("1000 10000"), BENCH_DAYS (30), BENCH_WINDOW_S (60),
# BENCH_PARTITIONS (dev broker partitions per topic, 96: see scale_bench.py),
# BENCH_PASS_TIMEOUT_S (900), BENCH_LOG_LEVEL (info, the default).
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$SRC/build-bench}
case "$BUILD" in /*) ;; *) BUILD="$PWD/$BUILD" ;; esac
if [ ! -x "$BUILD/bin/ltvsync-scheduler" ] || [ ! -x "$BUILD/bin/ltvctl" ]; then
  cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
cmake --build "$BUILD" -j2 --target ltvsync-scheduler ltvctl ltvsync-devbroker >/dev/null
LTVSYNC_BIN_DIR="$BUILD/bin" LTVSYNC_SRC_DIR="$SRC" PYTHONPATH="$SRC/tests/lib" \
  exec /usr/bin/python3 "$SRC/bench/scale_bench.py"
