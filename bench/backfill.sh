#!/usr/bin/env bash
# Import speed from the defaults: requests/s against the CRM's bound (200 ms
# latency, 8 in flight), time to the first and last row after `ltvctl
# integration add`. Usage: bench/backfill.sh [BUILD_DIR] (default build-bench,
# Release); BENCH_CUSTOMERS (500), BENCH_DAYS (120).
exec "$(dirname "$0")/run_py.sh" backfill_bench.py "${1:-}" ltvsync-scheduler ltvsync-fetcher ltvctl ltvsync-devbroker crm-sim
