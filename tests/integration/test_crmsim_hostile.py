"""Hostile modes of crm-sim switched at run time (POST /_sim/fault), over real
HTTP: each mode answers as the README says, is counted in /_sim/stats, and
clearing it brings back the normal answer byte for byte.

Timing is only ever checked as a lower bound (a drip or a latency cannot be
faster than configured); waits for the server to notice something have
generous deadlines and end as soon as the condition holds."""
import json
import socket
import time
import unittest
import urllib.parse

from crmsim import CrmSim

START, LAST = "2024-01-01", "2024-02-29"
TXN, ORD, CUST = "/transactions/query/", "/order/query/", "/customer/query/"
WINDOW = {"startDate": START, "endDate": LAST}
SIM = None


def setUpModule():
    global SIM
    SIM = CrmSim(seed=7, customers=30, start=START, days=60).start()


def tearDownModule():
    rc = SIM.stop()
    SIM.cleanup()
    assert rc == 0, rc


def hostile():
    return SIM.stats()["hostile"]


def wait_until(cond, what, deadline=20.0):
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


def send_raw(sim, path, params, auth=True):
    """A form POST on a fresh socket (Connection: close); returns the socket."""
    fields = dict(sim.login) if auth else {}
    fields.update(params)
    body = urllib.parse.urlencode(fields).encode()
    s = socket.create_connection(("127.0.0.1", sim.port), timeout=30)
    s.sendall(b"POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
              b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n"
              % (path.encode(), len(body)) + body)
    return s


def read_all(s):
    """(status, headers, body) of the answer on s, read to EOF."""
    chunks = []
    while True:
        b = s.recv(65536)
        if not b:
            break
        chunks.append(b)
    s.close()
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:])}
    return int(lines[0].split()[1]), headers, body


class Hostile(unittest.TestCase):
    def setUp(self):
        self.assertEqual(SIM.clear_faults(), {})
        self.h0 = hostile()

    def hits(self, mode):
        """Hostile answers of mode since this test began."""
        return hostile()[mode] - self.h0[mode]

    def tearDown(self):
        SIM.clear_faults()

    def normal(self, path, params):
        """The answer with no mode set (the baseline every mode is compared to)."""
        status, _, body = SIM.request(path, params)
        self.assertEqual(status, 200)
        return body

    # ---- the endpoint itself ----
    def test_settings_validation_and_not_counted(self):
        before = SIM.stats()
        got = SIM.fault(oversized_row={"index": 4}, drip={"interval_ms": 5, "count": 3},
                        path=TXN, count=2)
        self.assertEqual(got["oversized_row"], {"bytes": 1100000, "index": 4, "field": "custom1",
                                                "path": TXN, "count": 2})
        self.assertEqual(got["drip"], {"interval_ms": 5, "path": TXN, "count": 3})
        self.assertEqual(SIM.faults(), got)
        for bad in ({"oversized_row": {"bytez": 1}}, {"nope": True}, {"drip": "fast"},
                    {"latency": {"min_ms": 5, "max_ms": 1}}, {"path": "/nowhere/"},
                    {"count": 0, "hang": True}, {"total_results": {"mode": "odd"}},
                    {"retry_after": {"seconds": "1\r\nX-Evil: 1"}}, {"password": ""},
                    {"deny_endpoint": ["/order/query"]}, {"ip_deny": "yes"}):
            status, res = SIM.fault_request(bad)
            self.assertEqual(status, 400, bad)
            self.assertEqual(res["result"], "ERROR", bad)
        for raw in (b"[]", b"{", b"x" * 70000):
            self.assertIn(SIM.fault_request(raw)[0], (400, 413))
        self.assertEqual(SIM.faults(), got)  # a refused body changes nothing
        self.assertEqual(SIM.fault(drip=None), {"oversized_row": got["oversized_row"]})
        self.assertEqual(SIM.clear_faults(), {})
        after = SIM.stats()
        self.assertEqual(after["total"], before["total"])  # /_sim/fault is never counted
        self.assertEqual(after["hostile"], before["hostile"])

    def test_when_scope(self):
        """A mode scoped by "when" shapes only the requests that carry those
        form values, and only they use up its count."""
        days = sorted({r["dateCreated"][:10] for r in SIM.query_all(TXN, WINDOW)[0]})
        d, other = days[0], days[1]

        def us(day):  # the fetcher's MM/DD/YYYY
            return "%s/%s/%s" % (day[5:7], day[8:10], day[:4])
        when = {"dateRangeType": "dateCreated", "startDate": us(d)}
        got = SIM.fault(oversized_row={"bytes": 100, "field": "custom1"}, path=TXN,
                        when=when, count=2)
        self.assertEqual(got, {"oversized_row": {"bytes": 100, "index": 0, "field": "custom1",
                                                 "path": TXN, "count": 2, "when": when}})
        self.assertEqual(SIM.faults(), got)

        def big(path, params, query=None):
            """Row 0 of the answer carries the oversized field."""
            params = dict(params, endDate=params.get("startDate", LAST))  # one day
            status, _, body = SIM.request(path, params, query=query)
            self.assertEqual(status, 200)
            data = json.loads(body)["message"].get("data") or []
            return bool(data) and "custom1" in (data[0] if isinstance(data, list) else {})
        misses = [(TXN, {"dateRangeType": "dateCreated", "startDate": us(other)}, None),
                  (TXN, {"dateRangeType": "dateUpdated", "startDate": us(d)}, None),
                  (TXN, {"startDate": us(d)}, None),   # the default range: not the value
                  (TXN, {"dateRangeType": "dateCreated", "startDate": d}, None),  # not as a date
                  (TXN, dict(when, startDate=us(other)), "startDate=" + us(d)),  # body wins
                  (ORD, when, None)]                   # another path
        for path, params, query in misses:
            self.assertFalse(big(path, params, query), (path, params, query))
        self.assertEqual(SIM.faults(), got)  # the count is untouched
        self.assertEqual(self.hits("oversized_row"), 0)
        self.assertTrue(big(TXN, {"startDate": us(d)}, "dateRangeType=dateCreated"))
        self.assertEqual(SIM.faults()["oversized_row"]["count"], 1)
        self.assertFalse(big(TXN, {"dateRangeType": "dateCreated", "startDate": us(other)}))
        self.assertTrue(big(TXN, dict(when, page=1)))
        self.assertEqual(SIM.faults(), {})  # used up by the two matching requests only
        self.assertEqual(self.hits("oversized_row"), 2)
        self.assertFalse(big(TXN, when))
        # a mode's own "when" replaces the body's; null clears it
        got = SIM.fault(latency={"min_ms": 1, "when": {"page": "9"}}, drip={"when": None},
                        when=when)
        self.assertEqual(got["latency"]["when"], {"page": "9"})
        self.assertNotIn("when", got["drip"])
        got = SIM.fault(latency={"min_ms": 1, "when": None})
        self.assertNotIn("when", got["latency"])

    def test_when_refused(self):
        """A bad "when" is refused whole (400, a reason) and changes nothing."""
        got = SIM.fault(oversized_row={"bytes": 100, "when": {"page": "1"}}, drip=True,
                        path=TXN, count=3)
        five = {"k%d" % i: "v" for i in range(5)}
        for bad in ({"when": "startDate"}, {"when": ["page", "1"]}, {"when": True},
                    {"when": {"page": 1}}, {"when": {"page": None}}, {"when": {"page": ["1"]}},
                    {"when": {"page": ""}}, {"when": five}, {"when": {"n" * 65: "1"}},
                    {"when": {"": "1"}}, {"when": {"page": "v" * 65}},
                    {"oversized_row": {"when": {"page": 2}}},
                    {"hang": True, "when": dict(five)},
                    {"latency": {"min_ms": 1, "when": {"n" * 65: "1"}}},
                    {"drip": None, "when": {"page": "1", "page ": "2", "sortDir": "1",
                                            "x": "1", "y": "2"}}):
            status, res = SIM.fault_request(bad)
            self.assertEqual(status, 400, bad)
            self.assertEqual(res["result"], "ERROR", bad)
            self.assertIn("when", res["message"], bad)
        self.assertEqual(SIM.faults(), got)
        # the bounds themselves are accepted: 4 pairs, 64-byte names and values
        four = {"n" * 64: "v" * 64, "a": "1", "b": "2", "c": "3"}
        self.assertEqual(SIM.fault(drip={"when": four})["drip"]["when"], four)

    # ---- 1. oversized_row ----
    def test_oversized_row(self):
        params = dict(WINDOW, resultsPerPage=10)
        base = [json.loads(self.normal(TXN, dict(params, page=p)))["message"]["data"]
                for p in (1, 2)]
        SIM.fault(oversized_row={"bytes": 1100000, "index": 4}, path=TXN)
        for page in (1, 2):
            data = SIM.query(TXN, dict(params, page=page))["message"]["data"]
            big = data[4].pop("custom1")
            self.assertEqual(len(big), 1100000)
            self.assertGreater(len(json.dumps(data[4] | {"custom1": big})), 1048588)
            self.assertEqual(data, base[page - 1])  # only that one field was added
        self.assertEqual(self.hits("oversized_row"), 2)
        self.assertNotIn(b"custom1", self.normal(ORD, WINDOW))  # scoped to TXN
        # count: the next request only, then the mode is gone
        SIM.fault(oversized_row={"bytes": 2000, "index": 0, "field": "notes"}, count=1)
        rows = SIM.query(CUST, WINDOW)["message"]["data"]
        self.assertEqual(len(rows[0]["notes"]), 2000)  # replaces the customer's notes[]
        self.assertEqual(SIM.faults(), {})
        self.assertEqual(SIM.query(CUST, WINDOW)["message"]["data"][0]["notes"], [])
        SIM.clear_faults()
        self.assertEqual(json.loads(self.normal(TXN, dict(params, page=1)))["message"]["data"],
                         base[0])

    # ---- 2. huge_body ----
    def test_huge_body_streamed(self):
        self.assertEqual(SIM.fault(huge_body=True)["huge_body"], {"bytes": 67108864})
        pid = SIM.proc.pid
        hwm0 = vm_hwm(pid)
        s = send_raw(SIM, ORD, WINDOW)
        status, headers, body = read_all(s)
        self.assertEqual(status, 200)
        self.assertEqual(int(headers["content-length"]), 67108864)
        self.assertEqual(len(body), 67108864)
        env = json.loads(body)
        self.assertEqual(env["result"], "SUCCESS")
        del body, env
        if hwm0 is not None:  # streamed: the server never held the 64 MiB
            self.assertLess(vm_hwm(pid) - hwm0, 32 << 20)
        SIM.fault(huge_body={"bytes": 5000})
        status, headers, body = SIM.request(ORD, WINDOW)
        self.assertEqual((status, len(body)), (200, 5000))
        self.assertEqual(json.loads(body)["message"]["totalResults"], 1)
        self.assertEqual(self.hits("huge_body"), 2)

    # ---- 3. deep_json / wide_json ----
    def test_deep_json(self):
        SIM.fault(deep_json=True)
        status, _, body = SIM.request(TXN, WINDOW)
        self.assertEqual(status, 200)
        self.assertEqual(body, b"[" * 100000 + b"]" * 100000)
        SIM.fault(deep_json={"depth": 7})
        self.assertEqual(SIM.request(TXN, WINDOW)[2], b"[[[[[[[]]]]]]]")
        self.assertEqual(self.hits("deep_json"), 2)

    def test_wide_json(self):
        SIM.fault(wide_json=True)
        status, _, body = SIM.request(TXN, WINDOW)
        env = json.loads(body)
        self.assertEqual(env["message"]["totalResults"], 1)
        self.assertEqual(len(env["message"]["data"]), 1000000)
        self.assertEqual(env["message"]["data"][-1], [])
        SIM.fault(wide_json={"bytes": 8 << 20})
        status, headers, body = SIM.request(TXN, WINDOW)
        self.assertEqual(len(body), 8 << 20)
        data = json.loads(body)["message"]["data"]
        self.assertGreater(len(data), 2790000)
        self.assertEqual(set(map(len, data)), {0})
        self.assertEqual(self.hits("wide_json"), 2)

    # ---- 4. total_results ----
    def test_total_results_huge_and_changing(self):
        p = dict(WINDOW, resultsPerPage=5)
        base = json.loads(self.normal(TXN, p))["message"]
        SIM.fault(total_results={"mode": "huge"})
        msg = SIM.query(TXN, p)["message"]
        self.assertEqual(msg["totalResults"], 200000000)
        self.assertEqual(msg["data"], base["data"])
        SIM.fault(total_results="changing")
        totals = [SIM.query(TXN, dict(p, page=n))["message"]["totalResults"] for n in (1, 2, 3)]
        self.assertEqual(totals, [base["totalResults"] + 7 * n for n in (1, 2, 3)])
        self.assertEqual(self.hits("total_results"), 4)

    def test_total_results_missing(self):
        want, _ = SIM.query_all(ORD, WINDOW, per_page=7)
        SIM.fault(total_results="missing", path=ORD)
        rows, sizes, page = [], [], 1
        while True:
            env = SIM.query(ORD, dict(WINDOW, page=page, resultsPerPage=7))
            if env["result"] != "SUCCESS":
                break
            self.assertNotIn("totalResults", env["message"])
            sizes.append(len(env["message"]["data"]))
            rows += env["message"]["data"]
            page += 1
        self.assertEqual(rows, want)  # full pages while rows exist, then the short one
        self.assertTrue(all(n == 7 for n in sizes[:-1]) and sizes[-1] <= 7, sizes)
        self.assertIn("totalResults", SIM.query(TXN, WINDOW)["message"])  # scoped

    def test_total_results_always_full(self):
        real, _ = SIM.query_all(TXN, WINDOW, per_page=10)
        real_ids = {r["transactionId"] for r in real}
        SIM.fault(total_results={"mode": "missing", "always_full": True})
        seen = []
        pages = 3 * (len(real) // 10 + 1)  # far past the real last page
        for page in range(1, pages + 1):
            msg = SIM.query(TXN, dict(WINDOW, page=page, resultsPerPage=10))["message"]
            self.assertNotIn("totalResults", msg)
            self.assertEqual(len(msg["data"]), 10, page)  # never a short page
            seen += msg["data"]
        ids = [r["transactionId"] for r in seen]
        self.assertEqual(len(ids), len(set(ids)))  # fresh ids on every lap
        self.assertEqual(seen[:len(real)], real)
        self.assertFalse(set(ids[len(real):]) & real_ids)
        lap = seen[len(real)]
        self.assertEqual(dict(lap, transactionId=real[0]["transactionId"]), real[0])
        orders = SIM.query(ORD, dict(WINDOW, page=20, resultsPerPage=10))["message"]["data"]
        self.assertEqual(len(orders), 10)
        self.assertTrue(all(len(o["orderId"]) == 10 for o in orders))

    # ---- 5. retry_after ----
    def test_retry_after(self):
        SIM.fault(retry_after={"seconds": 999999999, "status": 429})
        status, headers, body = SIM.request(TXN, WINDOW)
        self.assertEqual((status, headers["Retry-After"]), (429, "999999999"))
        SIM.fault(retry_after={"seconds": "9300000000000000000", "status": 503}, count=1)
        status, headers, body = SIM.request(CUST, WINDOW)
        self.assertEqual((status, headers["Retry-After"]), (503, "9300000000000000000"))
        self.assertIn(b"<html", body)
        self.assertEqual(SIM.request(CUST, WINDOW)[0], 200)  # count used up
        self.assertEqual(self.hits("retry_after"), 2)
        self.assertEqual(SIM.stats()["rejected_429"], 0)  # not a --max-rps violation

    # ---- 6. drip ----
    def test_drip(self):
        params = {"startDate": "not a date"}  # a short real body
        want = self.normal(TXN, params)
        SIM.fault(drip={"interval_ms": 25})
        t0 = time.monotonic()
        status, headers, body = read_all(send_raw(SIM, TXN, params))
        elapsed = time.monotonic() - t0
        self.assertEqual((status, body), (200, want))
        self.assertEqual(int(headers["content-length"]), len(want))
        self.assertGreaterEqual(elapsed, len(want) * 0.025)  # one byte per interval at most
        # a big page, 3 bytes then hang up: the server must let go of it
        SIM.fault(drip={"interval_ms": 400})
        s = send_raw(SIM, TXN, WINDOW)
        t0, got = time.monotonic(), b""
        while b"\r\n\r\n" not in got or len(got.partition(b"\r\n\r\n")[2]) < 3:
            got += s.recv(1)
        self.assertGreaterEqual(time.monotonic() - t0, 3 * 0.4)
        self.assertTrue(got.partition(b"\r\n\r\n")[2].startswith(b'{"r'))
        s.close()
        self.assertEqual(self.hits("drip"), 2)
        SIM.clear_faults()
        self.assertEqual(self.normal(TXN, params), want)

    # ---- 7. hang ----
    def test_hang_timeout_then_release(self):
        SIM.fault(hang=True)
        s = send_raw(SIM, ORD, WINDOW)
        s.settimeout(1.0)
        self.assertRaises(socket.timeout, s.recv, 1)  # the client's timeout triggers
        self.assertEqual(self.hits("hang"), 1)
        s.close()  # the server notices the hang-up and frees the request
        wait_until(lambda: SIM.stats()["in_flight"] == 0, "the hung request to end")
        # a second one is released by clearing, and then answered normally
        s = send_raw(SIM, ORD, WINDOW)
        wait_until(lambda: self.hits("hang") == 2, "the second hang")
        SIM.clear_faults()
        status, _, body = read_all(s)
        self.assertEqual((status, body), (200, self.normal(ORD, WINDOW)))

    def test_hang_cap(self):
        SIM.fault(hang={"max_s": 1})
        t0 = time.monotonic()
        s = send_raw(SIM, CUST, WINDOW)
        try:
            data = s.recv(1)
        except ConnectionResetError:
            data = b""
        self.assertEqual(data, b"")  # closed without an answer
        self.assertGreaterEqual(time.monotonic() - t0, 1.0)
        s.close()

    # ---- 8. latency ----
    def test_latency(self):
        SIM.fault(latency={"min_ms": 300, "max_ms": 400}, path=CUST)
        t0 = time.monotonic()
        self.assertEqual(SIM.query(CUST, WINDOW)["result"], "SUCCESS")
        self.assertGreaterEqual(time.monotonic() - t0, 0.3)
        SIM.query(ORD, WINDOW)  # another path: not slowed, not counted
        self.assertEqual(self.hits("latency"), 1)

    # ---- 9. password ----
    def test_password_rotation(self):
        new = "rot&ated +%=#pw"
        fails0 = SIM.stats()["auth_failures"]
        SIM.fault(password=new)
        self.assertEqual(SIM.query(ORD, WINDOW), {"result": "ERROR",
                                                  "message": "Invalid login credentials"})
        self.assertEqual(SIM.query(ORD, dict(WINDOW, password=new))["result"], "SUCCESS")
        self.assertEqual(SIM.faults(), {"password": "(hidden)"})
        st = SIM.stats()
        self.assertEqual((st["auth_failures"], self.hits("password")), (fails0 + 1, 1))
        for text in (json.dumps(SIM.faults()), json.dumps(st), SIM.read_log(),
                     open(SIM.dump_path, encoding="utf-8").read()):
            self.assertNotIn("rot&ated", text)
        SIM.clear_faults()
        self.assertEqual(SIM.query(ORD, WINDOW)["result"], "SUCCESS")
        self.assertEqual(SIM.query(ORD, dict(WINDOW, password=new))["message"],
                         "Invalid login credentials")

    # ---- 10. ip_deny, deny_endpoint ----
    def test_ip_deny_and_deny_endpoint(self):
        SIM.fault(ip_deny=True)
        self.assertEqual(SIM.query(TXN, WINDOW), {"result": "ERROR",
                                                  "message": "IP must be whitelisted - 127.0.0.1"})
        SIM.fault(ip_deny=None, deny_endpoint=[ORD, "/purchase/query/"])
        denied = {"result": "ERROR", "message": "API user does not have access to this endpoint"}
        self.assertEqual(SIM.query(ORD, WINDOW), denied)
        self.assertEqual(SIM.query("/purchase/query/", WINDOW), denied)
        self.assertEqual(SIM.query(CUST, WINDOW)["result"], "SUCCESS")
        self.assertEqual((self.hits("ip_deny"), self.hits("deny_endpoint")), (1, 2))
        SIM.clear_faults()
        self.assertEqual(SIM.query(ORD, WINDOW)["result"], "SUCCESS")

    def test_overrides_command_line_and_stop_while_hung(self):
        with CrmSim(customers=5, days=10, ip_deny=True, deny_endpoint=[CUST], dump=False) as s:
            ip = "IP must be whitelisted - 127.0.0.1"
            self.assertEqual(s.query(ORD, {})["message"], ip)
            s.fault(ip_deny=False)
            self.assertEqual(s.query(ORD, {})["result"], "SUCCESS")
            self.assertIn("does not have access", s.query(CUST, {})["message"])
            s.fault(deny_endpoint=[])
            self.assertEqual(s.query(CUST, {})["result"], "SUCCESS")
            s.clear_faults()  # back to the command line's settings
            self.assertEqual(s.query(ORD, {})["message"], ip)
            s.fault(hang=True, ip_deny=False)
            held = send_raw(s, ORD, {})
            wait_until(lambda: s.stats()["hostile"]["hang"] == 1, "the hang")
            self.assertEqual(s.stop(timeout=60), 0)  # SIGTERM ends the held request
            try:
                self.assertEqual(held.recv(1), b"")
            except ConnectionResetError:
                pass
            held.close()

    # ---- all of them ----
    def test_clear_restores_byte_identical_answers(self):
        queries = [(TXN, dict(WINDOW, resultsPerPage=50)), (ORD, dict(WINDOW, page=2)),
                   ("/campaign/query/", {}), ("/transactions/summary/", WINDOW)]
        before = [self.normal(p, q) for p, q in queries]
        SIM.fault(oversized_row=True, total_results={"mode": "missing", "always_full": True},
                  latency={"min_ms": 1, "max_ms": 2}, password="x", ip_deny=True,
                  deny_endpoint=[TXN])
        self.assertNotEqual(self.normal(*queries[0]), before[0])
        SIM.clear_faults()
        self.assertEqual([self.normal(p, q) for p, q in queries], before)


def vm_hwm(pid):
    """Peak resident set of pid in bytes (None where /proc has no such line)."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


if __name__ == "__main__":
    unittest.main(verbosity=2)
