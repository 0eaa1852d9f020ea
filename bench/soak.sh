#!/bin/sh
# Soak: LTVSYNC_SOAK_SECONDS (default 1800) of live sync with periodic faults
# and live changes (tests/soak/test_soak.py); prints per-process RSS at 5 min
# vs the end, Redis used_memory and the final oracle check.
# Usage: bench/soak.sh [BUILD_DIR]
#   BUILD_DIR: an existing build tree to use (e.g. build-test, the ASan
#   build); by default an optimised, unsanitised tree is built in build-soak/.
#   LTVSYNC_SOAK_SECONDS, LTVSYNC_SOAK_FAULT_EVERY (120), LTVSYNC_SOAK_SEED
#   pass through; LTVSYNC_KEEP_TMP=1 keeps the logs.
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
if [ -n "${1:-}" ]; then
    build=$(cd "$1" && pwd)
else
    build="$src/build-soak"
    cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release -DLTVSYNC_SANITIZE=OFF >/dev/null
fi
cmake --build "$build" -j2 --target ltvsync-scheduler ltvsync-fetcher ltvsync-normalizer \
    ltvsync-sink ltvctl ltvsync-devbroker crm-sim >/dev/null || {
    echo "soak: the build in $build failed; bench/soak.sh build-test runs the soak" \
         "on the test build" >&2
    exit 1
}
export LTVSYNC_BIN_DIR="$build/bin" LTVSYNC_SRC_DIR="$src" PYTHONPATH="$src/tests/lib"
export LTVSYNC_SOAK_SECONDS="${LTVSYNC_SOAK_SECONDS:-1800}"
exec /usr/bin/python3 "$src/tests/soak/test_soak.py"
