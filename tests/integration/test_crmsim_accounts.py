"""crm-sim --accounts N over real HTTP (issue 13, "Control plane at scale").

Two processes with the same seed and sizes: A (3 accounts, --dump: all
generated at start-up) and B (6 accounts, no dump: generated on first use,
with limits). Each account serves its own rows, equal to its dump; the same
account gives the same rows in both processes; limits, counters and hostile
settings are per account; an unknown login id gets the usual auth failure;
one account (the default) still answers to --login-id."""
import json
import threading
import time
import unittest
import urllib.error
import urllib.request

from crmsim import CrmSim

START, DAYS, CUSTOMERS, SEED = "2024-01-01", 40, 25, 5
SIZES = ["3=40"]  # --account-size: acct-3 has 40 customers
STREAMS = {
    "/transactions/query/": ("transactions", "transactionId"),
    "/order/query/": ("orders", "orderId"),
    "/customer/query/": ("customers", "customerId"),
    "/purchase/query/": ("purchases", "purchaseId"),
}
MAX_RPS, MAX_IN_FLIGHT = 8, 3
A = B = None


def setUpModule():
    global A, B
    common = dict(seed=SEED, customers=CUSTOMERS, start=START, days=DAYS, account_size=SIZES)
    A = CrmSim(accounts=3, **common).start()
    B = CrmSim(accounts=6, dump=False, max_rps=MAX_RPS, max_in_flight=MAX_IN_FLIGHT,
               **common).start()


def tearDownModule():
    rcs = [s.stop() for s in (A, B)]
    logs = [s.read_log() for s in (A, B)]
    for s in (A, B):
        s.cleanup()
    assert rcs == [0, 0], (rcs, logs)


def acct_seed(seed, i):
    """The README's rule: splitmix64's first output for seed + i, >> 11."""
    m = (1 << 64) - 1
    z = (seed + i + 0x9E3779B97F4A7C15) & m
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & m
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & m
    return (z ^ (z >> 31)) >> 11


def get(url):
    """(status, parsed JSON) of a GET, HTTP errors included."""
    try:
        with urllib.request.urlopen(url, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def rows_by_id(rows, idf):
    out = {r[idf]: r for r in rows}
    assert len(out) == len(rows), "duplicate %s" % idf
    return out


def walk(sim, account, pace=0.0):
    """Every row of the four streams by dateCreated, 200 a page; pace:
    seconds between requests (to stay under B's --max-rps)."""
    out = {}
    for path, (key, idf) in STREAMS.items():
        rows, page = [], 1
        while True:
            if pace:
                time.sleep(pace)
            env = sim.query(path, {"page": page, "resultsPerPage": 200}, account=account)
            if env["result"] != "SUCCESS":
                assert "matching those parameters" in env["message"], env
                break
            rows += env["message"]["data"]
            if len(env["message"]["data"]) < 200:
                break
            page += 1
        out[key] = rows_by_id(rows, idf)
    return out


def burst(sim, jobs):
    """Runs (account, path) requests at once from one thread each; returns
    [(account, status, seconds)] in the order given."""
    gate = threading.Barrier(len(jobs))
    out = [None] * len(jobs)

    def one(k, account, path):
        gate.wait()
        t0 = time.monotonic()
        status = sim.request(path, {}, account=account)[0]
        out[k] = (account, status, time.monotonic() - t0)
    threads = [threading.Thread(target=one, args=(k,) + job) for k, job in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


class Accounts(unittest.TestCase):
    def test_each_account_serves_its_own_dump(self):
        seen = {}
        for i in (1, 2, 3):
            acct = "acct-%d" % i
            dump = A.dump(acct)
            head = dump["account"]
            self.assertEqual(head["login_id"], acct)
            self.assertEqual(head["seed"], acct_seed(SEED, i))
            self.assertEqual(head["customers"], 40 if i == 3 else CUSTOMERS)
            self.assertEqual(len(dump["customers"]), head["customers"])
            got = walk(A, acct)
            for path, (key, idf) in STREAMS.items():
                self.assertEqual(got[key], rows_by_id(dump[key], idf), "%s %s" % (acct, key))
            summary = A.query("/transactions/summary/", {}, account=acct)["message"]
            self.assertEqual(summary, dump["summary"], acct)
            seen[acct] = got
        # different accounts, different data: order ids, amounts and times
        for x, y in (("acct-1", "acct-2"), ("acct-1", "acct-3"), ("acct-2", "acct-3")):
            self.assertFalse(set(seen[x]["orders"]) & set(seen[y]["orders"]), (x, y))
            tx = {(t["transactionId"], t["dateCreated"], t["totalAmount"])
                  for t in seen[x]["transactions"].values()}
            ty = {(t["transactionId"], t["dateCreated"], t["totalAmount"])
                  for t in seen[y]["transactions"].values()}
            self.assertNotEqual(tx, ty, (x, y))
        st = A.stats()
        self.assertEqual((st["accounts"], st["generated"]), (3, 3))

    def test_same_account_in_two_processes_lazy_or_not(self):
        # B generates acct-2 on this first request; A generated it at start-up
        self.assertFalse(B.stats("acct-2")["generated"])
        got_b = walk(B, "acct-2", pace=0.2)
        self.assertTrue(B.stats("acct-2")["generated"])
        self.assertEqual(got_b, walk(A, "acct-2"))
        with open(A.dump_path + "/acct-2.json", "rb") as f:
            file_a = f.read()
        with urllib.request.urlopen(B.sim_url("/_sim/dump", "acct-2"), timeout=30) as resp:
            self.assertEqual(resp.read(), file_a)  # byte for byte
        self.assertEqual(B.stats("acct-2")["violations"], 0)

    def test_max_rps_per_account(self):
        before = B.stats()["violations"]
        # 20 requests of acct-1 at once (over both of its limits) and 3 of acct-5
        jobs = [("acct-1", "/campaign/query/")] * 20 + [("acct-5", "/campaign/query/")] * 3
        res = burst(B, jobs)
        one = [s for a, s, _ in res if a == "acct-1"]
        five = [s for a, s, _ in res if a == "acct-5"]
        self.assertIn(429, one, res)
        self.assertEqual(set(one), {200, 429}, res)
        self.assertEqual(five, [200] * 3, res)
        s1, s5 = B.stats("acct-1"), B.stats("acct-5")
        self.assertEqual(s1["violations"], one.count(429))
        self.assertEqual(s1["rejected_429"], one.count(429))
        self.assertEqual(s1["requests"]["/campaign/query/"], 20)
        self.assertEqual(s5["violations"], 0)
        self.assertEqual(s5["total"], 3)
        self.assertEqual(B.stats()["violations"] - before, one.count(429))
        # acct-1's window is still full: acct-5 goes on at once, untouched
        for _ in range(3):
            self.assertEqual(B.request("/order/query/", {}, account="acct-5")[0], 200)
        self.assertEqual(B.stats("acct-5")["violations"], 0)

    def test_in_flight_and_hostile_per_account(self):
        # acct-3 answers after 4 s (its own hostile latency): 3 held = its
        # --max-in-flight, a 4th is refused; acct-6 meanwhile is answered at once
        faults = B.fault(account="acct-3", latency={"min_ms": 4000, "max_ms": 4000})
        self.assertIn("latency", faults)
        self.assertEqual(B.faults(account="acct-6"), {})
        held = []
        threads = [threading.Thread(target=lambda: held.append(
            B.request("/campaign/query/", {}, account="acct-3")[0]))
            for _ in range(MAX_IN_FLIGHT)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 10
        while B.stats("acct-3")["in_flight"] < MAX_IN_FLIGHT and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(B.stats("acct-3")["in_flight"], MAX_IN_FLIGHT)
        t0 = time.monotonic()
        res = burst(B, [("acct-6", "/campaign/query/")] * MAX_IN_FLIGHT)
        self.assertEqual([s for _, s, _ in res], [200] * MAX_IN_FLIGHT)
        self.assertLess(time.monotonic() - t0, 3.0)  # not behind acct-3's 4 s
        self.assertEqual(B.stats("acct-3")["in_flight"], MAX_IN_FLIGHT)  # still held
        self.assertEqual(B.request("/campaign/query/", {}, account="acct-3")[0], 429)
        for t in threads:
            t.join()
        self.assertEqual(held, [200] * MAX_IN_FLIGHT)
        s3, s6 = B.stats("acct-3"), B.stats("acct-6")
        self.assertEqual((s3["violations"], s3["hostile"]["latency"]), (1, MAX_IN_FLIGHT))
        self.assertEqual((s6["violations"], s6["hostile"]["latency"]), (0, 0))
        self.assertEqual(s6["total"], MAX_IN_FLIGHT)
        B.clear_faults(account="acct-3")
        self.assertEqual(B.faults(account="acct-3"), {})

    def test_unknown_login_gets_the_auth_failure(self):
        with CrmSim(customers=21, days=10, dump=False) as one:
            want = one.request("/order/query/", {"loginId": "nobody", "password": "x"},
                               auth=False)[2]
        self.assertEqual(json.loads(want), {"result": "ERROR",
                                            "message": "Invalid login credentials"})
        before = B.stats()
        pw = B.opts["password"]
        for login in ("acct-7", "acct-0", "acct-01", "ACCT-1", "acct-1x", "acct-", "apiuser", ""):
            status, _, body = B.request("/order/query/", {"loginId": login, "password": pw},
                                        auth=False)
            self.assertEqual((status, body), (200, want), login)
        status, _, body = B.request("/order/query/", {"password": "wrong"}, account="acct-4")
        self.assertEqual((status, body), (200, want))
        after = B.stats()
        self.assertEqual(after["auth_failures"] - before["auth_failures"], 9)
        self.assertEqual(after["generated"], before["generated"])  # no account made for them
        self.assertEqual(B.stats("acct-4")["auth_failures"], 1)
        self.assertEqual(get(B.sim_url("/_sim/stats", "acct-7"))[0], 404)
        self.assertEqual(get(B.sim_url("/_sim/fault"))[0], 400)  # which account?

    def test_mutate_touches_one_account(self):
        # B's acct-4 (made by this, or by the wrong password of another test)
        sale = next(t for t in B.dump("acct-4")["transactions"]
                    if t["txnType"] == "SALE" and t["responseType"] == "SUCCESS"
                    and not t["isChargedback"])
        tid = sale["transactionId"]
        others = {a: B.dump(a) for a in ("acct-5", "acct-6")}
        status, res = B.mutate("chargeback", tid, "2024-02-09 12:00:00", account="acct-4")
        self.assertEqual(status, 200, res)
        self.assertEqual([t["isChargedback"] for t in res["changed"]["transactions"]], [1])
        cb = {t["transactionId"]: t["isChargedback"] for t in B.dump("acct-4")["transactions"]}
        self.assertEqual(cb[tid], 1)
        env = B.query("/transactions/query/", {"isChargedback": 1, "dateRangeType": "dateUpdated",
                                               "startDate": "2024-02-09", "endDate": "2024-02-09"},
                      account="acct-4")
        self.assertIn(tid, [t["transactionId"] for t in env["message"]["data"]])
        # the same transaction ids in the other accounts are other rows, left alone
        self.assertEqual({a: B.dump(a) for a in others}, others)
        status, res = B.mutate("chargeback", tid, "2024-02-09 12:00:00")
        self.assertEqual(status, 400, res)  # which account?


class OneAccount(unittest.TestCase):
    def test_default_is_one_account_on_login_id(self):
        with CrmSim(customers=21, days=10) as one:
            env = one.query("/order/query/", {})
            self.assertEqual(env["result"], "SUCCESS")
            bad = one.query("/order/query/", {}, account="acct-1")
            self.assertEqual(bad["message"], "Invalid login credentials")
            st = one.stats()
            self.assertNotIn("accounts", st)
            self.assertEqual(get(one.sim_url("/_sim/stats", one.opts["login_id"])), (200, st))
            self.assertEqual(get(one.sim_url("/_sim/stats", "acct-1"))[0], 404)
            with urllib.request.urlopen(one.url + "/_sim/dump", timeout=30) as resp:
                over_http = resp.read()
            with open(one.dump_path, "rb") as f:
                self.assertEqual(over_http, f.read())


if __name__ == "__main__":
    unittest.main(verbosity=2)
