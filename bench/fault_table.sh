#!/usr/bin/env bash
# The README's "what survives what" table, measured: builds the test build
# (ASan + UBSan, as scripts/test does), runs every fault test (ctest label
# "fault", -j2 like CI) with LTVSYNC_FAULT_TABLE set, and prints one table row
# per scenario from the rows the tests report (tests/lib/faultrow.py).
# Usage: bench/fault_table.sh [ctest args...]   e.g. -R kafka
# LTVSYNC_FAULT_SEED picks another kill sequence for test_pipeline_restart.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps
BUILD=${LTVSYNC_TEST_BUILD:-build-test}
cmake -S . -B "$BUILD" -DLTVSYNC_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build "$BUILD" -j"$(nproc)" >/dev/null
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
rows=$(mktemp)
trap 'rm -f "$rows"' EXIT
export LTVSYNC_FAULT_TABLE=$rows
status=0
ctest --test-dir "$BUILD" -L fault -j2 --output-on-failure "$@" >&2 || status=$?
/usr/bin/python3 - "$rows" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print("| scenario | trials | events lost | unchanged duplicates | limit violations | recovered in | note |")
print("| --- | ---: | ---: | ---: | ---: | ---: | --- |")
for r in sorted(rows, key=lambda r: r["scenario"]):
    print("| %s | %d | %d | %d | %d | %.0f s | %s |" % (
        r["scenario"], r["trials"], r["lost"], r["dups"], r["violations"],
        r["recover_s"], r.get("note", "")))
EOF
exit $status
