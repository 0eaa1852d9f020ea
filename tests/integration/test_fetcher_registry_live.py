"""The fetcher's view of ltvsync.integrations is live: an update reaches
the next job, not the one after the next 30 s re-read.

An integration is written with a wrong API username; its first job fails
the CRM login and the integration is parked. `ltvctl integration update
--api-username <right>` fixes and un-parks it. A job taken a few seconds
later must use the new username and complete. Before the live view the
fetcher kept the copy it read at start-up for 30 s, so that job logged in
with the wrong username again and parked the integration a second time."""
import json
import time

import ltharness as h
import fetcher_stack as fs

PROPAGATION_S = 3.0  # the reader fetches at least every 0.5 s; margin for a busy machine


def state(st):
    r = st.redis.client()
    return {k.decode(): v.decode() for k, v in r.hgetall(fs.rkey(st, "i", "acme", "state")).items()}


def main():
    with h.Stack("fetcher-registry-live") as st:
        sim = fs.start_stack(st, customers=10, days=2)
        doc = fs.add_integration(st, sim, rps=50, in_flight=4)
        doc["api_username"] = "not-" + sim.login_id
        st.produce(fs.TOPIC_INTEGRATIONS, [("acme", json.dumps(doc))])
        (f,) = fs.start_fetchers(st, 1)
        t0 = time.monotonic()
        day = fs.days("2024-01-01", 1)
        fs.produce_jobs(st, fs.backfill_jobs("acme", day, ["customers"]))
        h.wait_until(lambda: f.check_alive() or state(st).get("state") == "parked", 30,
                     "acme parked by the wrong username")
        print("parked: %s" % state(st).get("reason"))
        r = st.run("ltvctl", ["integration", "update", "acme", "--api-username", sim.login_id])
        assert r.returncode == 0 and "updated" in r.stdout, r.stdout + r.stderr
        assert state(st).get("state") != "parked", state(st)
        time.sleep(PROPAGATION_S)
        fs.produce_jobs(st, fs.backfill_jobs("acme", day, ["customers"]))
        fs.wait_days_done(st, "acme", day, ["customers"], timeout=30, procs=(f,))
        assert state(st).get("state") != "parked", state(st)
        took = time.monotonic() - t0
        assert st.stop(f) == 0
        print("ok: the fixed username reached the next job (%.0f s after the fetcher "
              "started%s)" % (took, "" if took < 25 else "; over 25 s, so a 30 s cache "
                              "might have expired too: this run proves less"))


if __name__ == "__main__":
    main()
