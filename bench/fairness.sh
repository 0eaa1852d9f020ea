#!/usr/bin/env bash
# Fairness: a small import's time beside a large one against its time alone
# (issue 13). Usage: bench/fairness.sh [BUILD_DIR] (default build-bench,
# Release); BENCH_A_DAYS (365), BENCH_A_CUSTOMERS (2000), BENCH_B_DAYS (30),
# BENCH_B_CUSTOMERS (200), BENCH_B_AFTER (5 s).
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$SRC/build-bench}
case "$BUILD" in /*) ;; *) BUILD="$PWD/$BUILD" ;; esac
if [ ! -x "$BUILD/bin/ltvsync-fetcher" ] || [ ! -x "$BUILD/bin/ltvctl" ]; then
  cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
cmake --build "$BUILD" -j2 --target ltvsync-scheduler ltvsync-fetcher ltvctl ltvsync-devbroker crm-sim >/dev/null
LTVSYNC_BIN_DIR="$BUILD/bin" LTVSYNC_SRC_DIR="$SRC" PYTHONPATH="$SRC/tests/lib" \
  exec /usr/bin/python3 "$SRC/bench/fairness_bench.py"
