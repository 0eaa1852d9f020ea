#!/usr/bin/env bash
# The sink's crash window: kill -9 of ltvsync-sink while events stream in;
# prints per kill the writes the next sink found downstream instead of
# making them again, and the events written twice; fails if anything was
# lost or written twice (bench/sink_crash_window.py).
# Usage: bench/sink_crash_window.sh [BUILD_DIR]   (default build-bench, Release;
#   build-test for the ASan build). KILLS, SEED, RATE pass through.
exec "$(dirname "$0")/run_py.sh" sink_crash_window.py "${1:-}" ltvsync-sink ltvsync-devbroker
