"""The whole pipeline under kill -9 (tests/lib/pipeline.py): while the
backfill runs (crm-sim with latency, the integration limited to a few
requests per second), every service is killed with SIGKILL and restarted,
one at a time (scheduler, fetcher 1, normalizer, sink, fetcher 2), then all
of them at once. Afterwards:
  - the latest downstream version of every event_id equals the oracle's,
    nothing missing or unexpected;
  - no downstream duplicate with identical content (fetched_at aside);
  - every kill happened while the sync was still under way;
  - nothing went to the DLQ; no secret in any topic or log.
"""
import signal
import sys
import time

from ltharness import Stack, HarnessError, wait_until
from pipeline import Pipeline, duplicates

GAP = 2.0  # seconds between kills


def kill(st, p):
    p.popen.send_signal(signal.SIGKILL)
    p.popen.wait(10)


def rows_fetched(pl):
    s = pl.status()
    return sum(v["rows"] for v in s["streams"].values()) if s else 0


def main():
    t0 = time.monotonic()
    with Stack("pipe-restart") as st:
        pl = Pipeline(st, latency_ms=40, max_rps=20, max_in_flight=4)
        want = pl.expected()
        procs = pl.start_services()
        wait_until(lambda: pl.check_alive() or rows_fetched(pl) > 0, 60,
                   "the first rows fetched", interval=0.5)
        early = []
        for name in ("ltvsync-scheduler", "ltvsync-fetcher.1", "ltvsync-normalizer",
                     "ltvsync-sink", "ltvsync-fetcher.2"):
            time.sleep(GAP)
            if pl.synced():
                early.append(name)
            print("%5.1fs kill -9 %s (rows so far %d)" % (time.monotonic() - t0, name,
                                                           rows_fetched(pl)))
            kill(st, procs[name])
            st.restart(procs[name])
        time.sleep(GAP)
        if pl.synced():
            early.append("all")
        print("%5.1fs kill -9 all (rows so far %d)" % (time.monotonic() - t0, rows_fetched(pl)))
        for p in procs.values():
            p.popen.send_signal(signal.SIGKILL)
        for p in procs.values():
            p.popen.wait(10)
            st.restart(p)
        if early:
            raise HarnessError("the sync finished before the kills of %s: slow it down" % early)

        pl.wait_synced(timeout=120)
        print("%5.1fs synced" % (time.monotonic() - t0))
        got = pl.wait_downstream(want, timeout=90)
        msgs = pl.downstream()
        dups = duplicates(msgs)
        for d in dups[:10]:
            print("DUPLICATE", d)
        dlq = st.consume_all("ltvsync.dlq")
        for m in dlq[:5]:
            print("DLQ", m.value[:300])
        leaks = pl.leaks()
        for where, secret in leaks[:10]:
            print("LEAK of a secret (%d chars) in %s" % (len(secret), where))
        print("events %d, downstream messages %d, duplicates %d, dlq %d, leaks %d, %.0fs"
              % (len(got), len(msgs), len(dups), len(dlq), len(leaks), time.monotonic() - t0))
        for p in procs.values():
            st.stop(p, signal.SIGTERM, 30)
        return 1 if dups or dlq or leaks else 0


if __name__ == "__main__":
    sys.exit(main())
