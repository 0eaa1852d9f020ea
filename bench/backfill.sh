#!/usr/bin/env bash
# Import speed from the defaults: requests/s against the CRM's bound (200 ms
# latency, 8 in flight), time to the first and last row after `ltvctl
# integration add`. Usage: bench/backfill.sh [BUILD_DIR] (default build-bench,
# Release); BENCH_CUSTOMERS (500), BENCH_DAYS (120).
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$SRC/build-bench}
case "$BUILD" in /*) ;; *) BUILD="$PWD/$BUILD" ;; esac
if [ ! -x "$BUILD/bin/ltvsync-fetcher" ] || [ ! -x "$BUILD/bin/ltvctl" ]; then
  cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
cmake --build "$BUILD" -j2 --target ltvsync-scheduler ltvsync-fetcher ltvctl ltvsync-devbroker crm-sim >/dev/null
LTVSYNC_BIN_DIR="$BUILD/bin" LTVSYNC_SRC_DIR="$SRC" PYTHONPATH="$SRC/tests/lib" \
  exec /usr/bin/python3 "$SRC/bench/backfill_bench.py"
