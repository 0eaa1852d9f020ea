"""The chargeback history in Redis is structured data (issue 12): a JSON
array of entries built by the normalizer's script with cjson, never text
spliced from a CRM field; histories written before that (the text form
"C,p,o;R,p,o,dateUpdated") are read and converted by the first write.

A real redis-server, the dev broker, the normalizer as a process:
  - sale A: a legacy history (charged back, seen on an older partition),
    then a row that reverts it: a chargeback_reversal, and the key now
    holds j = [["C","7","5"],["R","0",<offset>,<dateUpdated>]] and no h;
  - sale B: charged back, reverted, charged back again through raw rows:
    the j entries follow, the second chargeback is occurrence 2;
  - sale C: an unreadable legacy history: its row goes to ltvsync.dlq with
    the reason, the key is left as it was, and the normalizer carries on
    (sale D after it is normalized)."""
import copy
import json
import re
import sys

import oracle
from ltharness import Stack, wait_until

INTEG = oracle.Integration("acme-cbh", "konnektive", "America/New_York", "USD")
CB1, REV, CB2 = "2025-01-11 10:00:00", "2025-02-01 09:15:00", "2025-03-10 08:00:00"


def metric(proc, name):
    status, body = proc.http("/metrics")
    m = re.search(r"^%s(?:\{\})? (\d+)$" % re.escape(name), body.decode(), re.M)
    return int(m.group(1)) if status == 200 and m else -1


def env_of(row):
    tid = str(row["transactionId"])
    return ("%s/transactions/%s" % (INTEG.id, tid),
            json.dumps({"integration_id": INTEG.id, "stream": "transactions",
                        "job_id": "t", "page": 1, "fetched_at": "2025-03-24T12:00:00.000Z",
                        "record": oracle.sanitize(row)}))


def step(sale, flag, du):
    r = copy.deepcopy(sale)
    r.update(isChargedback=flag, dateUpdated=du)
    if flag:
        r.update(chargebackAmount=sale["totalAmount"], chargebackDate=du[:10])
    return r


def main():
    with Stack("cb-history") as st:
        r = st.start_redis()
        st.start_devbroker(partitions=1)  # every raw row on partition 0
        st.start_crmsim(customers=40, start="2024-10-25", days=60, seed=5,
                        dump=st.path("dump.json"))
        dump = wait_until(lambda: json.load(open(st.path("dump.json"))), 20, "crm-sim dump")
        sales = [t for t in dump["transactions"] if t["txnType"] == "SALE"
                 and t["responseType"] == "SUCCESS" and not t["isChargedback"]]
        a, b, c, d = sales[:4]
        rc = r.client()
        key = lambda t: "%si:%s:cb:%s" % (st.prefix, INTEG.id, t["transactionId"])
        rc.hset(key(a), mapping={"p": "7", "o": "5", "du": CB1, "h": "C,7,5"})
        rc.hset(key(c), mapping={"p": "7", "o": "5", "du": CB1, "h": "C,7,5;C,x,1"})

        doc = {"id": INTEG.id, "brand": INTEG.brand, "api_username": "u",
               "password_ref": "env:LTV_TEST_PW", "account_name": "acme",
               "account_username": "acme", "timezone": INTEG.tz,
               "currency": INTEG.currency, "import_from": "2024-10-25"}
        st.produce("ltvsync.integrations", [(INTEG.id, json.dumps(doc))])
        rows = [step(a, 0, REV), step(b, 1, CB1), step(b, 0, REV), step(b, 1, CB2),
                step(c, 0, REV), step(d, 1, CB1)]
        st.produce("ltvsync.raw", [env_of(x) for x in rows], partition=0)
        offs = {i: m.offset for i, m in enumerate(st.consume_all("ltvsync.raw"))}

        p = st.start_service("ltvsync-normalizer", env={"LTVSYNC_GROUP_ID": "cbh"})
        st.wait_ready(p, 30)
        wait_until(lambda: p.check_alive() or
                   metric(p, "ltvsync_normalizer_rows_total") >= len(rows),
                   60, "normalizer to take every row", interval=0.3)
        evs = [json.loads(m.value) for m in st.consume_all("ltvsync.events")]
        by_txn = {}
        for e in evs:
            by_txn.setdefault(str(e["transaction_id"]), []).append(e)

        def types(t):
            return sorted(e["type"] for e in by_txn.get(str(t["transactionId"]), []))

        # A: the legacy chargeback is read, the reversal follows it
        assert "chargeback_reversal" in types(a), types(a)
        ja = json.loads(rc.hget(key(a), "j"))
        assert ja == [["C", "7", "5"], ["R", "0", str(offs[0]), REV]], ja
        assert rc.hget(key(a), "h") is None, "the legacy text was not removed"
        # B: built as JSON from the start, second chargeback is occurrence 2
        jb = json.loads(rc.hget(key(b), "j"))
        assert jb == [["C", "0", str(offs[1])], ["R", "0", str(offs[2]), REV],
                      ["C", "0", str(offs[3])]], jb
        assert types(b).count("chargeback") == 2 and "chargeback_reversal" in types(b), types(b)
        # C: dead-lettered with the reason, key untouched; D still normalized
        dlq = st.consume_json("ltvsync.dlq")
        assert [x["offset"] for x in dlq] == [offs[4]], dlq
        assert "chargeback history" in dlq[0]["reason"], dlq[0]["reason"]
        assert types(c) == [], types(c)
        assert rc.hgetall(key(c)) == {b"p": b"7", b"o": b"5", b"du": CB1.encode(),
                                      b"h": b"C,7,5;C,x,1"}, rc.hgetall(key(c))
        assert "chargeback" in types(d), types(d)
        p.check_alive()
        print("ok: legacy history converted (%s), JSON history %s, bad legacy -> dlq"
              % (json.dumps(ja), json.dumps(jb)))


if __name__ == "__main__":
    sys.exit(main())
