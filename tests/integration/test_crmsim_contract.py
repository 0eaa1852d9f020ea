"""Contract tests of crm-sim over HTTP, against its own --dump.

Expectations come from the dump file and from the API sheet, never from the
simulator's code paths under test (paging, filters, limits, faults)."""
import collections
import json
import re
import threading
import unittest
import urllib.parse

from crmsim import CrmSim

START, DAYS = "2024-01-01", 120
LAST = "2024-04-29"  # START + DAYS - 1
STREAMS = {
    "/transactions/query/": ("transactions", "transactionId", "No transactions matching"),
    "/order/query/": ("orders", "orderId", "No orders matching"),
    "/customer/query/": ("customers", "customerId", "No customers matching"),
    "/purchase/query/": ("purchases", "purchaseId", "No purchases matching"),
}
SIM = None


def setUpModule():
    global SIM
    SIM = CrmSim(seed=11, customers=120, start=START, days=DAYS).start()


def tearDownModule():
    rc = SIM.stop()
    SIM.cleanup()
    assert rc == 0, rc


def in_window(ts, first, last):
    return first <= ts[:10] <= last


class Paging(unittest.TestCase):
    def walk(self, path, params, per_page):
        return SIM.query_all(path, params, per_page)

    def test_every_row_once_across_pages(self):
        dump = SIM.dump()
        for path, (key, idf, _) in STREAMS.items():
            for drt in ("dateCreated", "dateUpdated"):
                for first, last, per_page in ((START, LAST, 13), ("2024-02-01", "2024-02-29", 5)):
                    params = {"startDate": first, "endDate": last, "dateRangeType": drt}
                    rows, totals = self.walk(path, params, per_page)
                    want = {r[idf] for r in dump[key] if in_window(r[drt], first, last)}
                    ids = [r[idf] for r in rows]
                    msg = "%s %s %s..%s" % (path, drt, first, last)
                    self.assertTrue(want, msg)
                    self.assertEqual(len(ids), len(set(ids)), msg)
                    self.assertEqual(set(ids), want, msg)
                    self.assertEqual(set(totals), {len(want)}, msg)
                    self.assertEqual(sum(1 for _ in rows), totals[0], msg)
                    keys = [(r[drt], r[idf]) for r in rows]
                    self.assertEqual(keys, sorted(keys), msg)

    def test_rows_equal_dump_rows(self):
        dump = SIM.dump()
        by_id = {t["transactionId"]: t for t in dump["transactions"]}
        rows, _ = self.walk("/transactions/query/", {"startDate": START, "endDate": LAST}, 200)
        for r in rows:
            self.assertEqual(r, by_id[r["transactionId"]])

    def test_results_per_page_clamped_to_200(self):
        env = SIM.query("/transactions/query/", {"startDate": START, "endDate": LAST,
                                                 "resultsPerPage": 500})
        msg = env["message"]
        self.assertGreater(msg["totalResults"], 200)
        self.assertEqual(msg["resultsPerPage"], 200)
        self.assertEqual(len(msg["data"]), 200)
        env = SIM.query("/transactions/query/", {"startDate": START, "endDate": LAST})
        self.assertEqual(env["message"]["resultsPerPage"], 25)
        self.assertEqual(len(env["message"]["data"]), 25)

    def test_envelope_shape(self):
        env = SIM.query("/order/query/", {"startDate": START, "endDate": LAST, "page": 2})
        self.assertEqual(env["result"], "SUCCESS")
        msg = env["message"]
        for k in ("totalResults", "resultsPerPage", "page", "data", "params", "errors",
                  "sortBy", "sortDir", "queryArgs"):
            self.assertIn(k, msg)
        self.assertIsInstance(msg["totalResults"], int)
        self.assertEqual(msg["page"], 2)
        self.assertEqual(msg["queryArgs"]["dateRangeType"], "dateCreated")

    def test_no_rows_and_past_last_page(self):
        for path, (_, _, text) in STREAMS.items():
            env = SIM.query(path, {"startDate": "01/01/2023", "endDate": "01/31/2023"})
            self.assertEqual(env, {"result": "ERROR",
                                   "message": text + " those parameters could be found"})
            env = SIM.query(path, {"startDate": START, "endDate": LAST, "page": 100000})
            self.assertEqual(env["result"], "ERROR")
            self.assertIn(text, env["message"])

    def test_date_formats_and_time_part(self):
        counts = set()
        for sd, ed in (("02/01/2024", "02/29/2024"), ("2/1/24", "2/29/24"),
                       ("2024-02-01", "2024-02-29"), ("02/01/2024 13:45:00", "02/29/2024")):
            env = SIM.query("/transactions/query/", {"startDate": sd, "endDate": ed})
            self.assertEqual(env["result"], "SUCCESS", (sd, env))
            counts.add(env["message"]["totalResults"])
        self.assertEqual(len(counts), 1)
        env = SIM.query("/transactions/query/", {"startDate": "13/45/2024"})
        self.assertEqual(env["result"], "ERROR")

    def test_single_day_inclusive(self):
        dump = SIM.dump()
        days = collections.Counter(t["dateCreated"][:10] for t in dump["transactions"])
        day, n = days.most_common(1)[0]
        us = "%s/%s/%s" % (day[5:7], day[8:10], day[:4])
        env = SIM.query("/transactions/query/", {"startDate": us, "endDate": us})
        self.assertEqual(env["message"]["totalResults"], n)

    def test_filters(self):
        dump = SIM.dump()
        w = {"startDate": START, "endDate": LAST}
        rows, _ = SIM.query_all("/transactions/query/", dict(w, txnType="REFUND"))
        self.assertEqual({r["transactionId"] for r in rows},
                         {t["transactionId"] for t in dump["transactions"]
                          if t["txnType"] == "REFUND" and t["dateCreated"][:10] <= LAST})
        rows, _ = SIM.query_all("/order/query/", dict(w, orderStatus="PARTIAL"))
        want = [o for o in dump["orders"] if o["orderStatus"] == "PARTIAL"]
        self.assertTrue(want)
        self.assertEqual(len(rows), len(want))
        rows, _ = SIM.query_all("/order/query/", dict(w, campaignId="1,3"))
        self.assertEqual(len(rows), sum(1 for o in dump["orders"] if o["campaignId"] in (1, 3)))
        rows, _ = SIM.query_all("/transactions/query/", dict(w, responseType="SOFT_DECLINE"))
        self.assertTrue(rows and all(r["responseType"] == "SOFT_DECLINE" for r in rows))
        cust = dump["orders"][0]["customerId"]
        rows, _ = SIM.query_all("/customer/query/", dict(w, customerId=cust))
        self.assertEqual([r["customerId"] for r in rows], [cust])

    def test_campaigns(self):
        env = SIM.query("/campaign/query/", {})
        data = env["message"]["data"]
        self.assertIsInstance(data, dict)
        self.assertEqual(data, SIM.dump()["campaigns"])
        for cid, c in data.items():
            self.assertEqual(str(c["campaignId"]), cid)
            self.assertTrue(c["products"])
        env = SIM.query("/campaign/query/", {"page": 50})
        self.assertEqual(env["message"], "No campaigns matching those parameters could be found")


class Auth(unittest.TestCase):
    def test_bad_credentials(self):
        before = SIM.stats()["auth_failures"]
        for params in ({"loginId": "apiuser", "password": "wrong"},
                       {"loginId": "nobody", "password": SIM.opts["password"]}, {}):
            status, _, body = SIM.request("/order/query/", params, auth=False)
            self.assertEqual(status, 200)
            self.assertEqual(json.loads(body), {"result": "ERROR",
                                                "message": "Invalid login credentials"})
        self.assertEqual(SIM.stats()["auth_failures"], before + 3)

    def test_special_password_post_and_get(self):
        self.assertRegex(SIM.opts["password"], r"[+%=# ]")
        w = {"startDate": START, "endDate": LAST}
        for method in ("POST", "GET"):
            env = SIM.query("/order/query/", w, method=method)
            self.assertEqual(env["result"], "SUCCESS", method)
        # %20 for the space instead of '+', credentials only in the query string
        q = "loginId=apiuser&password=" + urllib.parse.quote(SIM.opts["password"], safe="")
        status, _, body = SIM.request("/order/query/?" + q, w, auth=False)
        self.assertEqual(json.loads(body)["result"], "SUCCESS")
        # unencoded '+' and '#' must not authenticate
        raw = "loginId=apiuser&password=" + SIM.opts["password"].replace(" ", "+")
        status, _, body = SIM.request("/order/query/?" + raw, w, auth=False, method="GET")
        self.assertEqual(json.loads(body)["message"], "Invalid login credentials")

    def test_permission_and_ip_errors(self):
        with CrmSim(customers=5, days=10, deny_endpoint=["/order/query/"], dump=False) as s:
            env = s.query("/order/query/", {})
            self.assertEqual(env, {"result": "ERROR",
                                   "message": "API user does not have access to this endpoint"})
            self.assertEqual(s.query("/customer/query/", {})["result"], "SUCCESS")
        with CrmSim(customers=5, days=10, ip_deny=True, dump=False) as s:
            env = s.query("/transactions/query/", {})
            self.assertEqual(env, {"result": "ERROR",
                                   "message": "IP must be whitelisted - 127.0.0.1"})


class Mutations(unittest.TestCase):
    def by_updated(self, day, **filters):
        params = {"startDate": day, "endDate": day, "dateRangeType": "dateUpdated"}
        params.update(filters)
        rows, _ = SIM.query_all("/transactions/query/", params)
        return {r["transactionId"]: r for r in rows}

    def test_chargeback_revert_refund(self):
        dump = SIM.dump()
        sale = next(t for t in dump["transactions"]
                    if t["txnType"] == "SALE" and t["responseType"] == "SUCCESS"
                    and t["isChargedback"] == 0 and t["dateUpdated"] == t["dateCreated"])
        tid = sale["transactionId"]
        status, res = SIM.mutate("chargeback", tid, "2024-05-03 10:00:00")
        self.assertEqual(status, 200, res)
        rows = self.by_updated("2024-05-03")
        self.assertEqual(rows[tid]["isChargedback"], 1)
        self.assertEqual(rows[tid]["chargebackAmount"], sale["totalAmount"])
        self.assertEqual(rows[tid]["chargebackDate"], "2024-05-03 10:00:00")
        self.assertNotIn(tid, self.by_updated(sale["dateCreated"][:10]))
        self.assertIn(tid, self.by_updated("2024-05-03", isChargedback=1))
        # the dateCreated view keeps the row on its own day
        env = SIM.query("/transactions/query/", {"startDate": sale["dateCreated"][:10],
                                                 "endDate": sale["dateCreated"][:10],
                                                 "resultsPerPage": 200})
        self.assertIn(tid, [r["transactionId"] for r in env["message"]["data"]])
        status, res = SIM.mutate("revert_chargeback", tid, "2024-05-05 08:00:00")
        self.assertEqual(status, 200, res)
        self.assertEqual(self.by_updated("2024-05-05")[tid]["isChargedback"], 0)
        status, res = SIM.mutate("refund", tid, "2024-05-06 09:30:00")
        self.assertEqual(status, 200, res)
        refunds = [r for r in self.by_updated("2024-05-06").values() if r["txnType"] == "REFUND"]
        self.assertEqual([(r["parentTxnId"], r["totalAmount"]) for r in refunds],
                         [(tid, sale["totalAmount"])])
        self.assertIn(tid, self.by_updated("2024-05-06"))
        dumped = {t["transactionId"]: t for t in SIM.dump()["transactions"]}
        self.assertEqual(dumped[tid]["dateUpdated"], "2024-05-06 09:30:00")
        self.assertIn(refunds[0]["transactionId"], dumped)
        status, res = SIM.mutate("revert_chargeback", tid, "2024-05-07 09:30:00")
        self.assertEqual(status, 400)
        status, res = SIM.mutate("chargeback", 1, "2024-05-07")
        self.assertEqual(status, 400)


class Limits(unittest.TestCase):
    def burst(self, sim, n, params=None):
        out, lock = [], threading.Lock()

        def one():
            r = sim.request("/customer/query/", params or {})
            with lock:
                out.append(r)
        threads = [threading.Thread(target=one) for _ in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return out

    def test_max_in_flight(self):
        with CrmSim(customers=5, days=10, max_in_flight=2, latency_ms=400, dump=False) as s:
            res = self.burst(s, 8)
            rejected = [r for r in res if r[0] == 429]
            ok = [r for r in res if r[0] == 200]
            self.assertTrue(rejected and ok, [r[0] for r in res])
            self.assertEqual(len(rejected) + len(ok), 8)
            self.assertTrue(all(r[1].get("Retry-After") == "1" for r in rejected))
            st = s.stats()
            self.assertEqual(st["violations"], len(rejected))
            self.assertEqual(st["rejected_429"], len(rejected))
            self.assertGreaterEqual(st["peak_in_flight"], 3)
            self.assertEqual(st["requests"]["/customer/query/"], 8)

    def test_max_rps(self):
        with CrmSim(customers=5, days=10, max_rps=5, dump=False) as s:
            codes = [s.request("/campaign/query/", {})[0] for _ in range(12)]
            self.assertEqual(codes[:5], [200] * 5)
            self.assertIn(429, codes)
            st = s.stats()
            self.assertEqual(st["violations"], codes.count(429))
            self.assertGreaterEqual(st["max_rps_window"], 6)

    def test_stats_and_concurrency(self):
        with CrmSim(customers=5, days=10, latency_ms=300, dump=False) as s:
            res = self.burst(s, 64)
            self.assertEqual([r[0] for r in res], [200] * 64)
            s.request("/order/query/", {})
            s.request("/transactions/summary/", {})
            st = s.stats()
            self.assertEqual(st["requests"]["/customer/query/"], 64)
            self.assertEqual(st["requests"]["/order/query/"], 1)
            self.assertEqual(st["requests"]["/transactions/summary/"], 1)
            self.assertEqual(st["total"], 66)
            self.assertGreaterEqual(st["peak_in_flight"], 16)  # latency overlapped
            self.assertEqual(st["violations"], 0)
            self.assertEqual(s.stats()["total"], 66)  # /_sim/ is not counted

    def test_faults_each_kind(self):
        with CrmSim(customers=5, days=10, fault_rate=1.0, dump=False) as s:
            kinds = set()
            for _ in range(8):
                status, headers, body = s.request("/customer/query/", {})
                if status is None:
                    kinds.add("reset")
                elif status == 503:
                    self.assertIn(b"<html", body)
                    kinds.add("503")
                elif status == 200 and body.startswith(b"{") and body.endswith(b"}"):
                    self.assertEqual(json.loads(body)["message"], "Database busy, try again")
                    kinds.add("busy")
                elif status == 200:
                    self.assertRaises(ValueError, json.loads, body)
                    kinds.add("truncated")
            self.assertEqual(kinds, {"reset", "503", "busy", "truncated"})
            st = s.stats()
            self.assertEqual(st["faults"], 8)
            self.assertEqual(st["requests"]["/customer/query/"], 8)


class Account(unittest.TestCase):
    def test_determinism_and_edge_cases(self):
        dumps = []
        for seed in (5, 5, 6):
            s = CrmSim(seed=seed, customers=40, start="2024-01-01", days=365)
            s.start()
            with open(s.dump_path, "rb") as f:
                dumps.append(f.read())
            self.assertEqual(s.stop(), 0)
            s.cleanup()
        self.assertEqual(dumps[0], dumps[1])
        self.assertNotEqual(dumps[0], dumps[2])
        d = json.loads(dumps[0])
        self.check_account(d)

    def check_account(self, d):
        T = d["transactions"]
        by_id = {t["transactionId"]: t for t in T}
        self.assertEqual({o["orderStatus"] for o in d["orders"]},
                         {"COMPLETE", "PARTIAL", "DECLINED", "REFUNDED", "CANCELLED"})
        partial = {o["orderId"] for o in d["orders"] if o["orderStatus"] == "PARTIAL"}
        self.assertFalse(partial & {t["orderId"] for t in T})
        self.assertTrue(any(o["items"] == [] for o in d["orders"]))
        types = {(t["txnType"], t["responseType"]) for t in T}
        for want in (("SALE", "SUCCESS"), ("AUTHORIZE", "SUCCESS"), ("CAPTURE", "SUCCESS"),
                     ("REFUND", "SUCCESS"), ("VOID", "SUCCESS"), ("SALE", "SOFT_DECLINE"),
                     ("SALE", "HARD_DECLINE")):
            self.assertIn(want, types)
        rebills = [t for t in T if t["billingCycleNumber"] >= 2]
        self.assertTrue(rebills)
        initial_orders = {t["orderId"] for t in T if t["billingCycleNumber"] == 1}
        self.assertTrue(all(t["orderId"] in initial_orders for t in rebills))
        self.assertTrue(any(t["recycleNumber"] > 0 for t in T))
        self.assertTrue(any(t["orderType"] == "UPSALE" for t in T))
        refunds = [t for t in T if t["txnType"] == "REFUND"]
        for r in refunds:
            self.assertFalse(r["totalAmount"].startswith("-"))
            self.assertIn(r["parentTxnId"], by_id)
        self.assertTrue(any(r["dateCreated"][:10] != by_id[r["parentTxnId"]]["dateCreated"][:10]
                            for r in refunds))
        cbs = [t for t in T if t["chargebackDate"]]
        self.assertTrue(any(len(t["chargebackDate"]) == 10 for t in cbs))
        self.assertTrue(any(len(t["chargebackDate"]) == 19 for t in cbs))
        self.assertEqual(sum(1 for t in cbs if t["isChargedback"] == 0), 1)
        for t in cbs:
            self.assertGreaterEqual(t["dateUpdated"][:10], t["chargebackDate"][:10])
            self.assertGreater(t["chargebackDate"][:10], t["dateCreated"][:10])
        times = {t["dateCreated"] for t in T}
        self.assertIn("2024-03-10 02:30:00", times)  # inside the spring-forward gap
        self.assertIn("2024-11-03 01:30:00", times)  # inside the repeated hour
        self.assertTrue(any(x.endswith(" 00:00:00") for x in times))
        self.assertTrue(any(x.endswith(" 23:59:59") for x in times))
        amounts = {t["totalAmount"] for t in T}
        self.assertIn("0.01", amounts)
        self.assertIn("9999.99", amounts)
        names = {c["firstName"] + " " + c["lastName"] for c in d["customers"]}
        self.assertIn("Zoë Ångström", names)
        self.assertIn("雷 李", names)
        now = d["account"]["now"]
        for stream in ("transactions", "orders", "customers", "purchases"):
            for r in d[stream]:
                self.assertLessEqual(r["dateCreated"], now)
                self.assertLessEqual(r["dateUpdated"], now)
        pw = [c["eCommercePassword"] for c in d["customers"]]
        self.assertTrue(all(re.fullmatch(r"SECRET-PW-\d+-[0-9a-f]{8}", p) for p in pw))
        self.assertEqual(len(set(pw)), len(pw))
        self.assertTrue(any(t["achAccountNumber"] for t in T))
        self.assertTrue(all(isinstance(t["campaignId"], str) for t in T))
        self.assertTrue(all(isinstance(o["campaignId"], int) for o in d["orders"]))
        self.assertTrue(all(re.fullmatch(r"[0-9A-F]{10}", o["orderId"]) for o in d["orders"]))
        for p in d["purchases"]:
            self.assertEqual([x["transactionId"] for x in p["transactions"]],
                             [t["transactionId"] for t in T if t["purchaseId"] == p["purchaseId"]])
        self.check_dimensions(d)
        self.check_summary(d)

    def check_dimensions(self, d):
        """The LTV dimensions (README "The account"): source values, the
        product in either shape, upsells marked either way."""
        T, orders = d["transactions"], {o["orderId"]: o for o in d["orders"]}
        sv = ["sourceValue%d" % n for n in range(1, 6)]
        self.assertTrue(all(all(isinstance(r[k], str) for k in sv)
                            for r in T + d["orders"]))
        with_sv = [o for o in orders.values() if any(o[k] for k in sv)]
        self.assertTrue(0.4 < len(with_sv) / len(orders) < 0.9, len(with_sv))
        self.assertTrue(any(len(o["sourceValue4"].encode()) > 255 for o in with_sv))
        for t in T:
            self.assertEqual([t[k] for k in sv], [orders[t["orderId"]][k] for k in sv])
            self.assertNotEqual("productId" in t, "items" in t, t["transactionId"])
        shapes = collections.Counter("productId" if "productId" in t else "items" for t in T)
        self.assertTrue(shapes["productId"] > len(T) / 4 and shapes["items"] > len(T) / 4, shapes)
        by_id = {t["transactionId"]: t for t in T}
        for t in T:
            if t["txnType"] in ("REFUND", "VOID"):
                self.assertEqual(self.product(t), self.product(by_id[t["parentTxnId"]]))
        upsells = [t for t in T if t["orderType"] == "UPSALE" or
                   any(i["productType"] == "UPSALE" for i in t.get("items", []))]
        self.assertTrue(any(t["orderType"] == "UPSALE" and "productId" in t for t in upsells))
        self.assertTrue(any(t["orderType"] == "NEW_SALE" for t in upsells))
        for o in orders.values():
            self.assertEqual(o["orderType"], "NEW_SALE")
            items = list(o["items"].values()) if isinstance(o["items"], dict) else o["items"]
            self.assertEqual([i["productType"] for i in items],
                             ["OFFER", "UPSALE"][:len(items)], o["orderId"])
        upsold = {t["orderId"] for t in upsells}
        self.assertEqual(upsold, {k for k, o in orders.items()
                                  if isinstance(o["items"], dict) and len(o["items"]) == 2})

    @staticmethod
    def product(t):
        return t["productId"] if "productId" in t else t["items"][0]["productId"]

    def check_summary(self, d):
        """The CRM's own totals: chargebacks on the original sale's day."""
        dec = d["account"]["decimals"]
        want = collections.defaultdict(lambda: collections.Counter())
        for t in d["transactions"]:
            day, amt = want[t["dateCreated"][:10]], int(t["totalAmount"].replace(".", ""))
            if t["responseType"] != "SUCCESS":
                day["declineCount"] += 1
            elif t["txnType"] in ("SALE", "CAPTURE"):
                kind = "rebill" if t["billingCycleNumber"] >= 2 else "sales"
                day[kind + "Count"] += 1
                day[kind + "Total"] += amt
            elif t["txnType"] in ("REFUND", "VOID"):
                kind = t["txnType"].lower()
                day[kind + "Count"] += 1
                day[kind + "Total"] += amt
            if t["isChargedback"] == 1:
                day["chargebackCount"] += 1
                day["chargebackTotal"] += int(t["chargebackAmount"].replace(".", ""))
        got = {}
        for row in d["summary"]:
            c = collections.Counter()
            for k, v in row.items():
                if k != "date":
                    c[k] = v if k.endswith("Count") else int(v.replace(".", ""))
                    self.assertTrue(k.endswith("Count") or len(v.split(".")[1]) == dec)
            got[row["date"]] = +c
        self.assertEqual(got, {k: +v for k, v in want.items()})

    def test_summary_endpoint(self):
        env = SIM.query("/transactions/summary/", {"reportType": "date", "dateRangeType": "txnDate",
                                                   "startDate": "02/01/2024", "endDate": "02/29/2024"})
        self.assertEqual(env["result"], "SUCCESS")
        self.assertIsInstance(env["message"], list)
        whole = [r for r in SIM.dump()["summary"] if "2024-02-01" <= r["date"] <= "2024-02-29"]
        self.assertEqual(env["message"], whole)

    def test_jpy_and_counts_as_strings(self):
        with CrmSim(customers=25, days=60, currency="JPY", counts_as_strings=True) as s:
            env = s.query("/transactions/query/", {"startDate": "2024-01-01", "endDate": "2024-02-29"})
            msg = env["message"]
            self.assertIsInstance(msg["totalResults"], str)
            self.assertIsInstance(msg["page"], str)
            self.assertIsInstance(msg["resultsPerPage"], str)
            d = s.dump()
            amounts = {t["totalAmount"] for t in d["transactions"]}
            self.assertTrue(all(re.fullmatch(r"\d+", a) for a in amounts), amounts)
            self.assertIn("2980", {p["price"] for c in d["campaigns"].values() for p in c["products"]})
            self.assertEqual({t["currencyCode"] for t in d["transactions"]}, {"JPY"})


if __name__ == "__main__":
    unittest.main(verbosity=2)
