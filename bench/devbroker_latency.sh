#!/usr/bin/env bash
# The dev broker's produce, consume and first-send latencies as clients meet
# them (confluent-kafka). Usage: bench/devbroker_latency.sh [BUILD_DIR]
# (default build-bench, Release).
exec "$(dirname "$0")/run_py.sh" devbroker_latency.py "${1:-}" ltvsync-devbroker ltvctl
