#!/usr/bin/env bash
# Fetcher benchmark: rows/s and requests/s of 1, 2, 4 fetchers against
# crm-sim's in-flight and rate limits, with peak RSS. Usage:
#   bench/fetcher.sh [BUILD_DIR]    (default build; BENCH_DAYS=365 BENCH_CUSTOMERS=20000)
set -euo pipefail
src="$(cd "$(dirname "$0")/.." && pwd)"
build="$(cd "${1:-$src/build}" && pwd)"
export LTVSYNC_BIN_DIR="$build/bin" LTVSYNC_SRC_DIR="$src"
export PYTHONPATH="$src/tests/lib:$src/bench"
exec /usr/bin/python3 "$src/bench/fetcher_bench.py"
