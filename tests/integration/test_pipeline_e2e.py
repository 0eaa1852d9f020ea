"""End to end: crm-sim -> scheduler -> 2 fetchers -> normalizer -> sink ->
ltv.events.v1, every service a separate process (tests/lib/pipeline.py).

Checks:
  - the latest version of every event_id downstream equals the oracle's
    event (tests/lib/oracle.py over crm-sim's --dump): nothing missing,
    nothing unexpected, same content (occurred_at, local_date, sign, amount
    and every other field; source.fetched_at aside);
  - no duplicate downstream by (event_id, identical content);
  - every downstream message validates against schemas/event.schema.json;
  - no secret of the dump (eCommercePassword, achAccountNumber,
    achRoutingNumber values) nor the CRM password in any topic or log;
  - the data set exercises every event type and the edge cases of
    customers 0..20 (so the comparison means something);
  - SIGTERM stops every service with exit 0.
"""
import collections
import json
import signal
import sys
import time

from ltharness import Stack
from pipeline import Pipeline, duplicates, latest


def main():
    t0 = time.monotonic()
    with Stack("pipe-e2e") as st:
        pl = Pipeline(st)
        want = pl.expected()
        types = collections.Counter(e["type"] for e in want.values())
        print("expected events %d: %s" % (len(want), dict(types)))
        for t in ("payment", "refund", "void", "decline", "chargeback", "customer",
                  "subscription"):
            assert types[t] > 0, "the account must exercise %s" % t
        txns = {str(t["transactionId"]): t for t in pl.dump["transactions"]}
        cb_days = [(t["dateCreated"][:10], str(t.get("chargebackDate"))[:10])
                   for t in txns.values() if str(t.get("isChargedback")) == "1"]
        assert any(a != b for a, b in cb_days), "a chargeback weeks after its sale"
        assert any(e["local_date"] != e["occurred_at"][:10] for e in want.values()), \
            "an event whose local day differs from its UTC day"

        pl.start_services()
        pl.wait_synced(timeout=90)
        print("synced after %.0fs" % (time.monotonic() - t0))
        got = pl.wait_downstream(want, timeout=60)
        msgs = pl.downstream()
        print("downstream: %d messages, %d event ids" % (len(msgs), len(got)))

        bad = 0
        dups = duplicates(msgs)
        for d in dups[:10]:
            print("DUPLICATE", d)
        bad += len(dups)

        validator = pl.validator()
        invalid = [(json.loads(m.value)["event_id"], err.message)
                   for m in msgs for err in validator.iter_errors(json.loads(m.value))]
        for x in invalid[:10]:
            print("SCHEMA", x)
        bad += len(invalid)
        assert all(m.key and m.key.decode() == json.loads(m.value)["event_id"] for m in msgs), \
            "downstream is keyed by event_id"

        dlq = st.consume_all("ltvsync.dlq")
        for m in dlq[:5]:
            print("DLQ", m.value[:300])
        bad += len(dlq)

        leaks = pl.leaks()
        for where, secret in leaks[:10]:
            print("LEAK of a secret (%d chars) in %s" % (len(secret), where))
        bad += len(leaks)
        assert len(pl.secrets()) > 50, "the dump carries secrets to look for"

        for name, p in pl.procs.items():
            rc = st.stop(p, signal.SIGTERM, 30)
            if rc != 0:
                print("%s exited %s on SIGTERM" % (name, rc))
                bad += 1
        print("events %d, problems %d, %.0fs" % (len(got), bad, time.monotonic() - t0))
        return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
