#!/usr/bin/env bash
# What the Python benchmarks' wrappers share: a Release build of the targets
# they run, then the script with the stack's environment.
# Usage: bench/run_py.sh SCRIPT.py BUILD_DIR|"" TARGET... (build dir default
# build-bench; a relative path is taken from the caller's directory).
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
SCRIPT=$1
BUILD=${2:-$SRC/build-bench}
shift 2
case "$BUILD" in /*) ;; *) BUILD="$PWD/$BUILD" ;; esac
if [ ! -f "$BUILD/CMakeCache.txt" ]; then
  cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
fi
cmake --build "$BUILD" -j2 --target "$@" >/dev/null
LTVSYNC_BIN_DIR="$BUILD/bin" LTVSYNC_SRC_DIR="$SRC" PYTHONPATH="$SRC/tests/lib" \
  exec /usr/bin/python3 "$SRC/bench/$SCRIPT"
