#!/usr/bin/env bash
# crm-sim peak RSS for a 2,000-customer, 365-day account. Usage:
#   bench/crmsim_rss.sh [BUILD_DIR]   (default build; a Release build)
set -euo pipefail
src="$(cd "$(dirname "$0")/.." && pwd)"
build="$(cd "${1:-$src/build}" && pwd)"
export LTVSYNC_BIN_DIR="$build/bin" LTVSYNC_SRC_DIR="$src" PYTHONPATH="$src/tests/lib"
exec /usr/bin/python3 "$src/bench/crmsim_rss.py"
