#!/usr/bin/env bash
# Fairness: a small import's time beside a large one against its time alone
# (issue 13). Usage: bench/fairness.sh [BUILD_DIR] (default build-bench,
# Release); BENCH_A_DAYS (365), BENCH_A_CUSTOMERS (2000), BENCH_B_DAYS (30),
# BENCH_B_CUSTOMERS (200), BENCH_B_AFTER (5 s).
exec "$(dirname "$0")/run_py.sh" fairness_bench.py "${1:-}" ltvsync-scheduler ltvsync-fetcher ltvctl ltvsync-devbroker crm-sim
