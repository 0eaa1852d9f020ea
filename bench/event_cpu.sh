#!/usr/bin/env bash
# The normalizer's per-row CPU on the main thread (parse, chargeback probe,
# event build) without Kafka or Redis, on the same 200,000 rows as
# bench/normalizer.sh. Prints ns/row per phase and rows/s on one thread.
# Usage: bench/event_cpu.sh [BUILD_DIR]   (default build-bench, Release)
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$SRC/build-bench}
if [ ! -x "$BUILD/bin/ltvsync-bench-event" ] || [ ! -x "$BUILD/bin/crm-sim" ]; then
  cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$BUILD" -j2 --target ltvsync-bench-event crm-sim >/dev/null
fi
ROWS=$(mktemp /tmp/ltvsync-bench-rows.XXXXXX)
trap 'rm -f "$ROWS"' EXIT
LTVSYNC_BIN_DIR="$BUILD/bin" LTVSYNC_SRC_DIR="$SRC" PYTHONPATH="$SRC/tests/lib" \
  /usr/bin/python3 "$SRC/bench/normalizer_bench.py" --rows-only "$ROWS"
for parser in jtree cjson; do
  taskset -c "${BENCH_CORE:-1}" "$BUILD/bin/ltvsync-bench-event" "$ROWS" "${BENCH_PASSES:-5}" "$parser"
done
