#!/usr/bin/env bash
# Control-plane cost at scale (issue 13): one scheduler with the defaults, a
# real redis-server and the dev broker, N integrations of 30 days written to
# ltvsync.integrations, no fetchers. Prints the time of the first full pass,
# then per steady tick: scheduler CPU, Redis commands (per command), Redis CPU,
# and Redis memory and keys per integration, the scheduler's peak RSS.
# Usage: bench/scale.sh [BUILD_DIR] (default build-bench, Release);
# BENCH_SIZES ("1000 10000"), BENCH_DAYS (30), BENCH_WINDOW_S (60),
# BENCH_PARTITIONS (dev broker partitions per topic, 96: see scale_bench.py),
# BENCH_PASS_TIMEOUT_S (900), BENCH_LOG_LEVEL (info, the default).
exec "$(dirname "$0")/run_py.sh" scale_bench.py "${1:-}" ltvsync-scheduler ltvctl ltvsync-devbroker
