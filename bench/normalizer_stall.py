"""The normalizer's retry path under a stalled broker (a manual check, not a
benchmark): the bench's raw rows, the normalizer with message.timeout.ms
800, the devbroker SIGSTOPped for 2.5 s mid-run so acks of in-flight batches
time out. Checks: batches were re-produced, every row counted, exit 0 on
SIGTERM, offsets committed (a second normalizer in the group reads nothing).
Writes the events (sorted) to STALL_DUMP (default /tmp/normalizer-stall.txt):
`sort -u` of it must equal `sort -u` of a BENCH_DUMP of bench/normalizer.sh
(duplicates are expected, nothing missing or different).
Run: LTVSYNC_BIN_DIR=<build>/bin LTVSYNC_SRC_DIR=. PYTHONPATH=tests/lib
/usr/bin/python3 bench/normalizer_stall.py"""
import json
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import normalizer_bench as nb  # noqa: E402
from ltharness import Stack, wait_until  # noqa: E402


def rows(p):
    return nb.metric(p, "ltvsync_normalizer_rows_total")


def main():
    with Stack("norm-stall") as st:
        st.start_redis()
        broker = st.start_devbroker(partitions=32)
        st.start_crmsim(customers=400, start="2024-10-25", days=150, seed=11,
                        dump=st.path("dump.json"))
        dump = wait_until(lambda: json.load(open(st.path("dump.json"))), 30, "dump")
        doc = {"id": nb.INTEG.id, "brand": nb.INTEG.brand, "api_username": "u",
               "password_ref": "env:X", "account_name": "b", "account_username": "b",
               "timezone": nb.INTEG.tz, "currency": "USD", "import_from": "2024-10-25"}
        st.produce("ltvsync.integrations", [(nb.INTEG.id, json.dumps(doc))])
        nb.produce_compressed(broker.bootstrap, nb.make_rows(dump))
        p = st.start_service("ltvsync-normalizer", env={
            "LTVSYNC_GROUP_ID": "stall", "LTVSYNC_KAFKA_MESSAGE_TIMEOUT_MS": "800"})
        wait_until(lambda: p.check_alive() or rows(p) > nb.ROWS // 6, 60, "rows")
        os.kill(broker.pid, signal.SIGSTOP)
        time.sleep(2.5)
        os.kill(broker.pid, signal.SIGCONT)
        wait_until(lambda: p.check_alive() or rows(p) >= nb.ROWS, 240, "all rows")
        retries = nb.metric(p, "ltvsync_normalizer_batch_retries_total")
        done = rows(p)
        rc = st.stop(p)
        print("exit %d, batches re-produced %d, rows %d" % (rc, retries, done))
        nb.dump_events(broker.bootstrap, os.environ.get("STALL_DUMP", "/tmp/normalizer-stall.txt"))
        p2 = st.start_service("ltvsync-normalizer", env={"LTVSYNC_GROUP_ID": "stall"})
        time.sleep(8)
        again = rows(p2)
        print("rows read again by the same group: %d" % again)
        assert st.stop(p2) == 0
        return 0 if rc == 0 and retries > 0 and done == nb.ROWS and again == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
