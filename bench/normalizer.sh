#!/usr/bin/env bash
# Normalizer throughput on >= 200,000 raw rows beside a kcat copy of the same
# topic; prints rows/s of both, the ratio and the normalizer's peak RSS.
# Usage: bench/normalizer.sh [BUILD_DIR]   (default build-bench, Release)
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$SRC/build-bench}
if [ ! -x "$BUILD/bin/ltvsync-normalizer" ] || [ ! -x "$BUILD/bin/ltvsync-devbroker" ]; then
  cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$BUILD" -j2 --target ltvsync-normalizer ltvsync-devbroker crm-sim >/dev/null
fi
LTVSYNC_BIN_DIR="$BUILD/bin" LTVSYNC_SRC_DIR="$SRC" PYTHONPATH="$SRC/tests/lib" \
  exec /usr/bin/python3 "$SRC/bench/normalizer_bench.py"
