#!/usr/bin/env bash
# The scale run (issue 13): BENCH_INTEGRATIONS (1000) integrations of
# BENCH_DAYS (30) days imported at once against one crm-sim serving as many
# accounts (BENCH_CUSTOMERS 5 customers each, BENCH_LATENCY_MS 50 ms a
# request, per account BENCH_MAX_IN_FLIGHT 2 and BENCH_MAX_RPS 10), one
# scheduler and BENCH_FETCHERS (4) fetchers with the defaults, a real
# redis-server and the dev broker (BENCH_PARTITIONS 48 a topic). Prints CRM
# requests and jobs per second, p50/p99/max import time per integration,
# every process's CPU and peak RSS, Redis memory and keys (per integration),
# crm-sim's limit violations, the dev broker's partition sizes and evictions.
# Usage: bench/fleet.sh [BUILD_DIR] (default build-bench, Release);
# BENCH_POLL_S (1.0), BENCH_TIMEOUT_S (3600), BENCH_REPEAT (1),
# BENCH_FETCHER_ENV / BENCH_SCHEDULER_ENV ("K=V ..." for comparisons). See
# bench/fleet_bench.py.
exec "$(dirname "$0")/run_py.sh" fleet_bench.py "${1:-}" ltvsync-scheduler ltvsync-fetcher ltvctl ltvsync-devbroker crm-sim
