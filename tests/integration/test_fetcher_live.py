"""Fetcher live sync and parking: a late chargeback and a late refund
applied with /_sim/mutate appear in ltvsync.raw after a dateUpdated (live)
job of that day, taken before the backfill queue; bad credentials park the
integration with at most one CRM call per job and a clear reason."""
import json
import urllib.request

import ltharness as h
import fetcher_stack as fs


def mutate(sim, action, txn, date):
    body = json.dumps({"action": action, "transactionId": txn, "date": date}).encode()
    req = urllib.request.Request(sim.url + "/_sim/mutate", data=body, method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        out = json.loads(r.read())
    assert out.get("result") == "SUCCESS", out
    return out


def late_changes():
    with h.Stack("fetcher-live") as st:
        sim = fs.start_stack(st, customers=30, days=3)
        fs.add_integration(st, sim)
        dump = fs.load_dump(sim)
        sales = [t for t in dump["transactions"] if t["txnType"] == "SALE"
                 and t["responseType"] == "SUCCESS" and str(t.get("isChargedback")) != "1"]
        assert len(sales) >= 2, "account too small"
        cb, rf = str(sales[0]["transactionId"]), str(sales[1]["transactionId"])
        day = "2024-01-03"
        mutate(sim, "chargeback", cb, day + " 10:00:00")
        mutate(sim, "refund", rf, day + " 11:00:00")
        (f1,) = fs.start_fetchers(st, 1)
        fs.produce_jobs(st, [fs.job("acme", "transactions", day, "dateUpdated", "live")],
                        topic=fs.TOPIC_LIVE)

        def seen():
            got = {}
            for m in st.consume_all(fs.TOPIC_RAW):
                rec = json.loads(m.value)["record"]
                got.setdefault(str(rec["transactionId"]), []).append(rec)
            return got if cb in got and any(
                r["txnType"] == "REFUND" and str(r.get("parentTxnId")) == rf
                for rows in got.values() for r in rows) else None
        got = h.wait_until(seen, 60, "late chargeback and refund in ltvsync.raw")
        assert any(str(r["isChargedback"]) == "1" for r in got[cb]), got[cb]
        assert st.stop(f1) == 0


def bad_credentials():
    with h.Stack("fetcher-park") as st:
        sim = fs.start_stack(st, customers=10, days=2)
        fs.add_integration(st, sim, password="wrong-password")
        jobs = fs.backfill_jobs("acme", fs.days("2024-01-01", 2), ["transactions", "orders"])
        (f1,) = fs.start_fetchers(st, 1)
        fs.produce_jobs(st, jobs)
        r = st.redis.client()
        state_key = fs.rkey(st, "i", "acme", "state")
        h.wait_until(lambda: r.hget(state_key, "state") == b"parked", 30, "parked")
        # every job is consumed and committed without a retry storm
        h.wait_until(lambda: 'outcome="dropped"' in f1.http("/metrics")[1].decode()
                     and _dropped(f1) >= len(jobs), 30, "jobs dropped")
        stats = fs.sim_stats(sim)
        assert 1 <= stats["auth_failures"] <= len(jobs), stats
        assert stats["total"] <= len(jobs), stats
        reason = r.hget(state_key, "reason").decode()
        assert "login" in reason.lower() or "credential" in reason.lower(), reason
        assert f1.log().count("parked:") == 1, "parking must be logged once"
        assert "wrong-password" not in f1.log()
        assert st.stop(f1) == 0


def _dropped(p):
    for line in p.http("/metrics")[1].decode().splitlines():
        if line.startswith('ltvsync_fetcher_jobs_total{outcome="dropped"}'):
            return float(line.split()[-1])
    return 0


if __name__ == "__main__":
    late_changes()
    bad_credentials()
    print("ok")
