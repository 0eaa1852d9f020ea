"""ltvsync-api against a whole pipeline (Redis, dev broker, crm-sim, the
four services), as the platform's backend would drive it: every response
is checked against services/api/openapi.yaml (tests/lib/ltapi.py).

- Authentication: no token, an unknown token (401 with WWW-Authenticate),
  a read token on a change (403), a read token reads; a per-token rate
  (429 with Retry-After, the other token unaffected).
- Requests refused before any effect: unknown path and id (404), method
  (405 with Allow), body over API_MAX_BODY (413), not JSON (415, 400).
- Connect: field errors as problem details (the '&' rule with the CRM's
  reason, an unknown timezone, a bad import_from, both password and
  password_ref); the Connect test refusing a wrong password (422, in a
  merchant's words) and adding nothing; 201 with Location and the stored
  document, the password sealed (password_ref "sealed:v1:k1", never the
  password); 409 on the same id.
- The connected account (its own crm-sim, enforcing its limits) syncs to
  100 % in GET .../status while Test and Reconcile are pressed over and
  over: their CRM requests take the limiter's slots (0 violations); sync
  (202, and 400 for a day not over), reconcile (200, 400 without a range),
  dlq list and retry.
- PATCH: a timezone change without confirm_redate is 409
  confirmation-required and changes nothing; with it, 200 and the replay
  runs to "done"; an unchanged redacted password_ref keeps the sealed one.
- DELETE 204, then 404.
- The clear password is in no topic, no Redis value and no log (the API's
  included); SIGTERM stops the API with exit 0.
"""
import concurrent.futures
import datetime
import os
import signal
import sys
import time
from zoneinfo import ZoneInfo

import ltapi
from ltharness import Stack, wait_until
from pipeline import INTEG_ID, TOPICS, Pipeline, SimClient

DAYS = 6
SHOP_PASSWORD = "shop pw+%=#2"
SHOP_IN_FLIGHT = 3


def main():
    with Stack("api", keep=bool(os.environ.get("KEEP"))) as st:
        pl = Pipeline(st, customers=12, days=DAYS, max_in_flight=4)
        tokens_file, tok = ltapi.write_tokens(st)
        key = ltapi.write_seal_key(st)
        pl.env["LTVSYNC_SEAL_KEY_FILE"] = key   # the fetchers open what the API seals
        pl.start_services()
        api = ltapi.start_api(st, pl.env, tokens_file, key)
        c = ltapi.Client(api.base, tok["ops"])
        viewer = ltapi.Client(api.base, tok["viewer"])

        # -- authentication ------------------------------------------------
        r = c.get("/v1/integrations", token="")
        assert r.status == 401 and r.headers["WWW-Authenticate"].startswith("Bearer"), r
        r = c.get("/v1/integrations", token="x" * 40)
        assert r.status == 401, r
        r = viewer.get("/v1/integrations")
        assert r.status == 200 and [i["id"] for i in r.body["items"]] == [INTEG_ID], r
        r = viewer.delete("/v1/integrations/" + INTEG_ID)
        assert r.status == 403 and r.body["type"].endswith(":forbidden"), r

        # -- refused before any effect ---------------------------------------
        assert c.get("/v1/nothing").status == 404
        assert c.get("/v1/integrations/no-such").status == 404
        r = c.call("PUT", "/v1/integrations", {})
        assert r.status == 405 and "POST" in r.headers["Allow"], r
        r = c.post("/v1/integrations", raw=b"{" + b" " * (70 * 1024) + b"}")
        assert r.status == 413, r
        r = c.post("/v1/integrations", raw=b"id=x", ctype="text/plain")
        assert r.status == 415, r
        r = c.post("/v1/integrations", raw=b"{not json")
        assert r.status == 400, r

        # -- connect -----------------------------------------------------------
        # shop2's days are Berlin's (the API checks "to" against the
        # account's own today), not the pipeline's New York ones: between
        # 23:00 and 05:00 UTC the two dates differ.
        shop_today = datetime.datetime.now(ZoneInfo("Europe/Berlin")).date()
        start = (shop_today - datetime.timedelta(days=DAYS - 1)).isoformat()
        # shop2's own CRM account, which enforces shop2's limits (a request
        # over them is answered 429 and counted as a violation)
        sim = st.start_crmsim(seed=31, customers=40, start=start, days=DAYS,
                              timezone="Europe/Berlin", currency="USD", login_id="shop-api",
                              password=SHOP_PASSWORD, latency_ms=150, timeout=60,
                              max_rps=50, max_in_flight=SHOP_IN_FLIGHT)
        shop_crm = SimClient(sim)
        shop = {"id": "shop2", "brand": "konnektive", "base_url": sim.url,
                "api_username": "shop-api", "password": SHOP_PASSWORD,
                "account_name": "Shop Two", "account_username": "shop2",
                "timezone": "Europe/Berlin", "import_from": start, "sync_interval": "15m",
                "max_requests_per_second": 50, "max_in_flight": SHOP_IN_FLIGHT}

        def field_error(body, field, words):
            r = c.post("/v1/integrations", body)
            assert r.status == 400 and r.body["type"].endswith(":validation"), r
            assert [e["field"] for e in r.body["errors"]] == [field], r
            assert words in r.body["detail"], r
            return r
        field_error(dict(shop, password="pa&ss"), "password", "must not have an & sign")
        field_error(dict(shop, timezone="Mars/Olympus"), "timezone", "not an IANA zone")
        field_error(dict(shop, import_from="2026-02-30"), "import_from", "YYYY-MM-DD")
        field_error(dict(shop, password_ref="file:x"), "password", "not both")
        # every field at fault at once, each with its own message
        r = c.post("/v1/integrations", dict(shop, timezone="Mars/Olympus",
                                            import_from="2026-13-01", max_in_flight="four",
                                            colour="red"))
        assert r.status == 400, r
        got = {e["field"]: e["message"] for e in r.body["errors"]}
        assert sorted(got) == ["colour", "import_from", "max_in_flight", "timezone"], r
        assert got["timezone"].startswith('"Mars/Olympus" is not an IANA zone'), got
        r = c.post("/v1/integrations", dict(shop, password="wrong-password"))
        assert r.status == 422 and r.body["type"].endswith(":crm-rejected"), r
        assert "rejected the API credentials" in r.body["detail"], r
        assert c.get("/v1/integrations/shop2").status == 404   # nothing was added

        r = c.post("/v1/integrations", shop)
        assert r.status == 201, r
        assert r.headers["Location"] == "/v1/integrations/shop2", r.headers
        assert r.body["password_ref"] == "sealed:v1:k1" and "password" not in r.body, r
        assert r.body["timezone"] == "Europe/Berlin" and r.body["sync_interval"] == "15m", r
        r = c.post("/v1/integrations", shop)
        assert r.status == 409 and r.body["type"].endswith(":conflict"), r
        r = viewer.get("/v1/integrations/shop2")
        assert r.status == 200 and r.body["password_ref"] == "sealed:v1:k1", r

        # -- the account syncs; status, test, sync, reconcile, dlq -----------
        def synced():
            pl.check_alive()
            s = c.get("/v1/integrations/shop2/status").body
            return s["state"] == "ok" and s["outstanding_jobs"] == 0 and all(
                v["days_done"] >= v["days_total"] > 0 for v in s["streams"].values())
        # Test and Reconcile pressed while the import holds every slot: their
        # CRM requests take slots of the same limiter (0 violations below)
        t0 = time.monotonic()
        yesterday = (shop_today - datetime.timedelta(days=1)).isoformat()
        def press(_):
            # 4 of these at once: without the limiter's slots, their CRM
            # calls beside the import's 3 went over the limit (measured: 2-5
            # violations a run)
            n = 0
            while not synced() and time.monotonic() - t0 < 120:
                assert c.post("/v1/integrations/shop2/test").status == 200
                r = c.get("/v1/integrations/shop2/reconcile?from=%s&to=%s" % (start, yesterday))
                assert r.status == 200, r
                n += 1
            return n
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            presses = sum(pool.map(press, range(4)))
        wait_until(synced, 120, "shop2 synced (GET .../status)", interval=1.0)
        print("shop2 synced %.1f s after POST; %d Test + Reconcile presses meanwhile"
              % (time.monotonic() - t0, presses))
        stats = shop_crm.stats()
        print("shop2's CRM: %s" % stats)
        assert stats["violations"] == 0, stats
        r = c.get("/v1/status")
        assert sorted(s["id"] for s in r.body) == ["pipe", "shop2"], r
        r = c.post("/v1/integrations/shop2/test")
        assert r.status == 200 and r.body["ok"] and "every query endpoint answered" in \
            r.body["message"], r
        r = c.post("/v1/integrations/shop2/sync", {"from": start, "to": yesterday,
                                                   "streams": ["orders", "transactions"]})
        assert r.status == 202 and r.body["jobs"] == 2 * (DAYS - 1), r
        r = c.post("/v1/integrations/shop2/sync", {"to": shop_today.isoformat()})
        assert r.status == 400 and r.body["errors"][0]["field"] == "to", r
        r = c.post("/v1/integrations/shop2/sync", {"streams": ["bogus"]})
        assert r.status == 400, r
        r = c.get("/v1/integrations/shop2/reconcile?from=%s&to=%s" % (start, yesterday))
        assert r.status == 200, r
        assert c.get("/v1/integrations/shop2/reconcile").status == 400
        r = c.get("/v1/dlq")
        assert r.status == 200 and r.body == [], r
        r = c.post("/v1/dlq/retry")
        assert r.status == 200 and r.body["retried"] == 0, r

        # -- PATCH: the timezone needs confirmation and replays --------------
        r = c.patch("/v1/integrations/shop2", {"timezone": "America/Chicago"})
        assert r.status == 409 and r.body["type"].endswith(":confirmation-required"), r
        assert c.get("/v1/integrations/shop2").body["timezone"] == "Europe/Berlin"
        r = c.patch("/v1/integrations/shop2", {"timezone": "America/Chicago",
                                               "confirm_redate": True})
        assert r.status == 200 and r.body["timezone"] == "America/Chicago", r

        def replayed():
            s = c.get("/v1/integrations/shop2/status").body
            return (s.get("replay") or {}).get("state") == "done"
        wait_until(replayed, 120, "the re-dating replay done", interval=1.0)
        # a client that sends back what it read keeps the sealed password
        shown = c.get("/v1/integrations/shop2").body
        r = c.patch("/v1/integrations/shop2", {"password_ref": shown["password_ref"],
                                               "sync_interval": "30m"})
        assert r.status == 200 and r.body["sync_interval"] == "30m", r
        assert c.post("/v1/integrations/shop2/test").status == 200

        # -- rate limit: its own token bucket ---------------------------------
        slow_tokens, slow_tok = ltapi.write_tokens(st, (("a", "admin"), ("b", "read")))
        slow = ltapi.start_api(st, pl.env, slow_tokens, key, {"LTVSYNC_API_RATE": "1"})
        sc = ltapi.Client(slow.base, slow_tok["a"])
        codes = [sc.get("/v1/dlq").status for _ in range(4)]
        assert codes[:2] == [200, 200] and 429 in codes[2:], codes
        r = sc.get("/v1/dlq")
        assert r.status == 429 and int(r.headers["Retry-After"]) >= 1, r
        assert sc.get("/v1/dlq", token=slow_tok["b"]).status == 200

        # -- delete -----------------------------------------------------------
        assert c.delete("/v1/integrations/shop2").status == 204
        assert c.get("/v1/integrations/shop2").status == 404

        # -- no secret anywhere; a clean stop ----------------------------------
        leaks = pl.leaks()
        assert not leaks, leaks
        pw = SHOP_PASSWORD.encode()
        for topic in TOPICS:
            assert not any(pw in (m.value or b"") for m in st.consume_all(topic)), topic
        for name in os.listdir(st.tmp):
            if name.endswith(".log"):
                with open(st.path(name), "rb") as f:
                    assert pw not in f.read(), name
        r = st.redis.client()
        for k in r.scan_iter(count=1000):
            t = r.type(k)
            vals = [r.get(k)] if t == b"string" else \
                list(r.hgetall(k).values()) if t == b"hash" else \
                list(r.zrange(k, 0, -1)) if t == b"zset" else \
                list(r.smembers(k)) if t == b"set" else []
            assert not any(v and SHOP_PASSWORD.encode() in v for v in vals), k
        assert st.stop(api, signal.SIGTERM) == 0
        assert st.stop(slow, signal.SIGTERM) == 0
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
