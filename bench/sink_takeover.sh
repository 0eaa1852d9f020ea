#!/bin/sh
# The cost of a sink takeover at full speed: a sink that never committed is
# killed after N events, the next one finds its writes downstream
# (bench/sink_takeover.py). Release build in build-bench/ unless a build dir
# is given. BENCH_EVENTS (50000), BENCH_BATCH pass through.
exec "$(dirname "$0")/run_py.sh" sink_takeover.py "${1:-}" ltvsync-sink ltvsync-devbroker
