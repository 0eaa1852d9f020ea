"""Redis killed (-9) in the middle of a sync and restarted EMPTY (issue 11):
every checkpoint, claim, done day, backfill cursor, leader lease, fencing
token, chargeback state and dedupe hash is gone. The scenario and its checks
are test_redis_faults_restart.py's run(persist=False): the sync still
completes, the latest downstream version of every event equals the oracle's,
no CRM call while Redis is down, 0 limit violations; the unchanged
duplicates the lost dedupe state lets through are counted and bounded (at
most one extra copy of any event)."""
import sys

from test_redis_faults_restart import run

if __name__ == "__main__":
    sys.exit(run(persist=False))
