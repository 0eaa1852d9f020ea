#!/usr/bin/env bash
# The fetcher's own cost per job (issue 13; goal: at least 2,000 jobs a
# second per fetcher core): one fetcher with the defaults against crm-sim
# answering at once (latency 0, tiny pages, limits far above what is used),
# no scheduler; jobs a second, the fetcher's CPU seconds a job (utime + stime)
# and so jobs per fetcher core, its CPU by thread, Redis commands and CRM
# requests a job. Usage: bench/fetcher_overhead.sh [BUILD_DIR] (default
# build-bench, Release); BENCH_ACCOUNTS (16), BENCH_CUSTOMERS (60),
# BENCH_DAYS (365), BENCH_REPEAT (3, then medians), BENCH_PERF=FILE (perf
# record of the fetcher in the first run; BENCH_PERF_ARGS, default
# "-g -F 499", e.g. "--call-graph dwarf,16384 -F 199"). See
# bench/fetcher_overhead.py.
exec "$(dirname "$0")/run_py.sh" fetcher_overhead.py "${1:-}" ltvsync-fetcher ltvsync-devbroker crm-sim
