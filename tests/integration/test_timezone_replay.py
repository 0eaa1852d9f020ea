"""Timezone correction and replay on the whole pipeline (tests/lib/pipeline.py).

After a full sync in the account's zone (America/New_York) and with the
scheduler and fetchers stopped, `ltvctl integration update ID --timezone
America/Los_Angeles --yes` replays ltvsync.raw (ltvctl runs the normalizer
as a child). Then:
  - every event downstream (latest per event_id) equals the oracle computed
    with the new zone; the set of event_ids is the one before the change;
  - the number of new downstream messages equals the number of events whose
    content changed between the two oracles, nothing else rewritten;
  - crm-sim saw no request during the replay (/_sim/stats total);
  - `ltvctl status --json` shows the replay done, all rows;
  - `ltvctl replay ID` with nothing changed writes nothing downstream.
"""
import json
import os
import sys
import time

from ltharness import http_get, wait_until
from ltharness import Stack
from pipeline import INTEG_ID, Pipeline, content, duplicates

NEW_TZ = "America/Los_Angeles"


def crm_requests(pl):
    status, body = http_get(pl.sim.url + "/_sim/stats")
    assert status == 200, status
    return json.loads(body)["total"]


def replay_state(pl):
    s = pl.status()
    return s.get("replay") if s else None


def main():
    t0 = time.monotonic()
    bad = 0
    with Stack("pipe-tz") as st:
        pl = Pipeline(st)
        want_ny = pl.expected()
        pl.start_services()
        pl.wait_synced(timeout=90)
        pl.wait_downstream(want_ny, timeout=60)
        for name in ("ltvsync-scheduler", "ltvsync-fetcher.1", "ltvsync-fetcher.2"):
            assert pl.stop(name) == 0, name
        before = pl.wait_quiet("ltv.events.v1", settle=2.0)
        requests = crm_requests(pl)
        print("%.0fs synced in New York: %d downstream messages, %d CRM requests"
              % (time.monotonic() - t0, before, requests))

        want_la = pl.expected(tz=NEW_TZ)
        assert want_la.keys() == want_ny.keys(), "the oracle keeps event_ids across zones"
        changed = sum(content(want_ny[i]) != content(want_la[i]) for i in want_ny)
        redated = sum(want_ny[i]["occurred_at"] != want_la[i]["occurred_at"] for i in want_ny)
        print("events %d, changed by the new zone %d (re-dated %d)"
              % (len(want_ny), changed, redated))
        assert redated > 0

        r = pl.ctl(["integration", "update", INTEG_ID, "--timezone", NEW_TZ, "--yes"],
                   timeout=120)
        print("update: exit %d\n%s%s" % (r.returncode, r.stdout, r.stderr))
        assert r.returncode == 0, "integration update with replay failed"
        got = pl.wait_downstream(want_la, timeout=60)
        after = pl.wait_quiet("ltv.events.v1", settle=3.0)
        assert got.keys() == want_ny.keys(), "same event ids"
        print("%.0fs after the replay: %d downstream messages (+%d, %d expected)"
              % (time.monotonic() - t0, after, after - before, changed))
        if after - before != changed:
            bad += 1
        if crm_requests(pl) != requests:
            print("CRM requests during the replay: %d" % (crm_requests(pl) - requests))
            bad += 1
        rp = replay_state(pl)
        print("status replay:", rp)
        if not rp or rp.get("state") != "done" or rp.get("done") != rp.get("total") \
                or not rp.get("total"):
            bad += 1

        r = pl.ctl(["replay", INTEG_ID], timeout=120)
        print("replay again: exit %d\n%s%s" % (r.returncode, r.stdout, r.stderr))
        assert r.returncode == 0
        wait_until(lambda: (replay_state(pl) or {}).get("state") == "done", 20, "replay done")
        again = pl.wait_quiet("ltv.events.v1", settle=3.0)
        if again != after:
            print("a replay with nothing changed wrote %d messages" % (again - after))
            bad += 1
        dups = duplicates(pl.downstream())
        for d in dups[:10]:
            print("DUPLICATE", d)
        bad += len(dups)
        if crm_requests(pl) != requests:
            bad += 1
        # A successful replay removes its child's log (a sanitizer report in
        # the child would have made its exit status, and so ltvctl, fail).
        replay_logs = [n for n in os.listdir(st.tmp) if n.startswith("ltvsync-replay-")]
        print("replay logs left:", replay_logs)
        bad += len(replay_logs) != 0
        for name in pl.sanitizer_reports():
            print("SANITIZER report in", name)
            bad += 1
        for where, secret in pl.leaks():
            print("LEAK of a secret (%d chars) in %s" % (len(secret), where))
            bad += 1
        for name in ("ltvsync-normalizer", "ltvsync-sink"):
            if pl.stop(name) != 0:
                bad += 1
        print("problems %d, %.0fs" % (bad, time.monotonic() - t0))
        return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
