"""Shared set-up of the fetcher tests and benchmark: devbroker, redis,
crm-sim with a --dump, one integration, day jobs, and the checks (record-id
sets of ltvsync.raw against the dump, secrets nowhere). Uses ltharness."""
import datetime
import json
import uuid

import ltharness as h

STREAMS = ["transactions", "orders", "customers", "purchases", "campaigns"]
ID_KEY = {"transactions": "transactionId", "orders": "orderId",
          "customers": "customerId", "purchases": "purchaseId",
          "campaigns": "campaignId"}
SECRET_KEYS = ("eCommercePassword", "achAccountNumber", "achRoutingNumber")
TOPIC_INTEGRATIONS = "ltvsync.integrations"
TOPIC_LIVE, TOPIC_BACKFILL, TOPIC_RAW = ("ltvsync.jobs.live", "ltvsync.jobs.backfill",
                                         "ltvsync.raw")


def days(start, n):
    d0 = datetime.date.fromisoformat(start)
    return [(d0 + datetime.timedelta(days=i)).isoformat() for i in range(n)]


def start_stack(st, partitions=4, **sim):
    """Redis, devbroker and crm-sim (with a dump) in stack st; returns sim."""
    st.start_redis()
    st.start_devbroker(partitions=partitions)
    sim.setdefault("dump", st.path("dump.json"))
    sim.setdefault("password", "s3cret+pw%= #x")  # the CRM refuses '&'

    s = st.start_crmsim(**sim)
    s.dump_path = sim["dump"]
    return s


def add_integration(st, sim, iid="acme", rps=50, in_flight=4, password=None,
                    start="2024-01-01"):
    pw_file = st.path("pw-%s" % iid)
    with open(pw_file, "w") as f:
        f.write(sim.password if password is None else password)
    doc = {"id": iid, "brand": "konnektive", "base_url": sim.url,
           "api_username": sim.login_id, "password_ref": "file:" + pw_file,
           "account_name": "Acme", "account_username": "acme",
           "timezone": "America/New_York", "import_from": start,
           "sync_interval": "1h", "max_requests_per_second": rps,
           "max_in_flight": in_flight}
    st.produce(TOPIC_INTEGRATIONS, [(iid, json.dumps(doc))])
    return doc


def one_account(st, n_days, rps, in_flight, **sim):
    """start_stack with crm-sim limits of rps and in_flight, and integration
    "acme" at those limits importing n_days from 2024-01-01; returns (sim,
    the days)."""
    sim = start_stack(st, days=n_days, max_rps=rps, max_in_flight=in_flight, **sim)
    add_integration(st, sim, rps=rps, in_flight=in_flight)
    return sim, days("2024-01-01", n_days)


def job(iid, stream, day, range_type="dateCreated", reason="backfill"):
    return {"job_id": str(uuid.uuid4()), "integration_id": iid, "stream": stream,
            "date_range_type": range_type, "day": day, "page_from": 0,
            "page_to": 0, "reason": reason, "run_id": str(uuid.uuid4())}


def produce_jobs(st, jobs, topic=TOPIC_BACKFILL):
    st.produce(topic, [("%s/%s/%s" % (j["integration_id"], j["stream"], j["day"]),
                        json.dumps(j)) for j in jobs])


def backfill_jobs(iid, day_list, streams=STREAMS):
    return [job(iid, s, d) for d in day_list for s in streams]


def start_fetchers(st, n, env=None):
    # session 6 s (the services' default is 10 s): the dev broker holds a
    # rebalance for a member that joins or dies the session less 1 s
    base = {"LTVSYNC_FETCH_CONCURRENCY": 4, "LTVSYNC_LOG_LEVEL": "info",
            "LTVSYNC_FETCH_BACKOFF_MAX": "2s", "LTVSYNC_SHUTDOWN_GRACE": "10s",
            "LTVSYNC_KAFKA_SESSION_TIMEOUT_MS": 6000}
    base.update(env or {})
    procs = [st.start_service("ltvsync-fetcher", env=base) for _ in range(n)]
    for p in procs:
        st.wait_ready(p)
    return procs


def rkey(st, *parts):
    return st.prefix + ":".join(parts)


def wait_days_done(st, iid, day_list, streams=STREAMS, timeout=90, procs=()):
    r = st.redis.client()

    def done():
        for p in procs:
            p.check_alive()
        return all(r.hlen(rkey(st, "i", iid, "done", s)) >= len(day_list) for s in streams)
    h.wait_until(done, timeout, "every day of every stream done")


def load_dump(sim):
    with open(sim.dump_path) as f:
        return json.load(f)


def expected_ids(dump, streams=STREAMS):
    out = {}
    for s in streams:
        rows = dump[s]
        if isinstance(rows, dict):
            out[s] = {str(k) for k in rows}
        else:
            out[s] = {str(row[ID_KEY[s]]) for row in rows}
    return out


def raw_ids(st, iid):
    """{stream: set of record ids} of ltvsync.raw, and the raw messages."""
    msgs = st.consume_all(TOPIC_RAW)
    out = {s: set() for s in STREAMS}
    for m in msgs:
        key = m.key.decode()
        i, s, rid = key.split("/", 2)
        env = json.loads(m.value)
        assert i == iid and env["stream"] == s, key
        assert str(env["record"][ID_KEY[s]]) == rid, key
        out[s].add(rid)
    return out, msgs


def secrets_of(dump):
    found = set()

    def walk(x):
        if isinstance(x, dict):
            for k, v in x.items():
                if (k in SECRET_KEYS or "password" in k.lower()) and v not in (None, ""):
                    found.add(str(v))
                walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)
    walk(dump)
    return found


def assert_no_secrets(st, dump, msgs, password):
    secrets = secrets_of(dump) | {password}
    assert len(secrets) > 1, "the account has no secrets to look for"
    blob = b"\n".join(m.value for m in msgs) + b"\n".join(m.key or b"" for m in msgs)
    logs = "".join(p.log() for p in st.procs if p.name != "crm-sim")
    for s in secrets:
        assert s.encode() not in blob, "a secret reached ltvsync.raw"
        assert s not in logs, "a secret reached a log"


def sim_stats(sim):
    code, body = h.http_get(sim.url + "/_sim/stats")
    assert code == 200
    return json.loads(body)


def assert_complete(st, sim, iid, streams=STREAMS):
    got, msgs = raw_ids(st, iid)
    want = expected_ids(load_dump(sim), streams)
    for s in streams:
        missing, extra = want[s] - got[s], got[s] - want[s]
        assert not missing and not extra, "%s: %d missing %s, %d extra %s" % (
            s, len(missing), sorted(missing)[:5], len(extra), sorted(extra)[:5])
    return msgs
