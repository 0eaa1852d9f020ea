"""pipeline: the whole ltvsync pipeline on a small crm-sim account, for the
end-to-end, restart, timezone-replay and reconcile tests.

    with Stack("e2e") as st:
        pl = Pipeline(st)                  # redis, devbroker, crm-sim, integration
        pl.start_services()                # scheduler, 2 fetchers, normalizer, sink
        pl.wait_synced()                   # every stream-day done, nothing outstanding
        pl.wait_downstream(pl.expected())  # ltv.events.v1 == oracle (latest per id)

The account ends today (crm-sim's `now` is the end of its last day), so the
scheduler's backfill (import_from .. yesterday) plus the live window cover
it. `expected()` is tests/lib/oracle.py over crm-sim's --dump; comparisons
ignore source.fetched_at (it differs per fetch, the sink's dedupe ignores it
too) and use the latest version of each event_id downstream.

Pipeline(st, redis_cluster=True) runs it on a Redis Cluster (3 masters, one
replica each, tests/lib/rcluster.py) instead of one Redis: pl.cluster is
the cluster, pl.integ_key()/global_key() name keys in either layout,
pl.redis_keys() scans one Redis or every master.
"""
import collections
import datetime
import json
import os
import re
import time
from zoneinfo import ZoneInfo

import crmsim
import oracle
import rcluster
from ltharness import HarnessError, SANITIZER_MARKS, SRC_DIR, wait_until

INTEG_ID = "pipe"
PASSWORD = "pipe+pw%=#1 x"   # awkward characters but '&' (see ltharness)
SERVICE_ENV = {"LTVSYNC_SCHEDULER_TICK": "500ms", "LTVSYNC_LEADER_LEASE": "2s",
               "LTVSYNC_KAFKA_SESSION_TIMEOUT_MS": "6000",
               "LTVSYNC_FETCH_CONCURRENCY": "4"}
TOPICS = ("ltvsync.integrations", "ltvsync.jobs.live", "ltvsync.jobs.backfill",
          "ltvsync.raw", "ltvsync.events", "ltvsync.dlq", "ltv.events.v1")
SERVICES = ("ltvsync-scheduler", "ltvsync-fetcher", "ltvsync-fetcher",
            "ltvsync-normalizer", "ltvsync-sink")


def content(ev):
    """The event as compared: canonical JSON without source.fetched_at."""
    d = json.loads(json.dumps(ev))
    if isinstance(d.get("source"), dict):
        d["source"].pop("fetched_at", None)
    return json.dumps(d, sort_keys=True, ensure_ascii=False)


def latest(msgs):
    """{event_id: event} of downstream messages, the highest offset of each
    id winning (the topic is keyed by event_id: one partition per id)."""
    out = {}
    for m in sorted(msgs, key=lambda m: (m.partition, m.offset)):
        ev = json.loads(m.value)
        out[ev["event_id"]] = ev
    return out


def duplicates(msgs):
    """[(event_id, count)] of downstream messages repeated with identical
    content (fetched_at aside): what the sink's dedupe must prevent."""
    c = collections.Counter()
    for m in msgs:
        ev = json.loads(m.value)
        c[(ev["event_id"], content(ev))] += 1
    return [(k[0], n) for k, n in c.items() if n > 1]


def regressions(msgs):
    """[event_id] whose content went back downstream to a version it had
    left (A, B, A): a reader of the latest version saw older data again."""
    seen = collections.defaultdict(list)
    for m in sorted(msgs, key=lambda m: (m.partition, m.offset)):
        ev = json.loads(m.value)
        c, versions = content(ev), seen[ev["event_id"]]
        if not versions or versions[-1] != c:
            versions.append(c)
    return sorted(i for i, v in seen.items() if len(set(v)) < len(v))


def diff(want, got, show=12):
    """(missing, unexpected, changed) event ids between two {id: event}."""
    missing = sorted(set(want) - set(got))
    unexpected = sorted(set(got) - set(want))
    changed = sorted(i for i in set(want) & set(got) if content(want[i]) != content(got[i]))
    for i in missing[:show]:
        print("MISSING %s" % json.dumps(want[i]))
    for i in unexpected[:show]:
        print("UNEXPECTED %s" % json.dumps(got[i]))
    for i in changed[:show]:
        w, g = want[i], got[i]
        fields = {f: (w.get(f), g.get(f)) for f in set(w) | set(g)
                  if f != "source" and w.get(f) != g.get(f)}
        ws, gs = dict(w.get("source") or {}), dict(g.get("source") or {})
        ws.pop("fetched_at", None)
        gs.pop("fetched_at", None)
        if ws != gs:
            fields["source"] = (ws, gs)
        print("DIFF %s %s: %s" % (i, w["type"], fields))
    return missing, unexpected, changed


class SimClient(crmsim.CrmSim):
    """crmsim's client calls (stats, mutate, fault, clear_faults, ...) for a
    crm-sim the Stack started."""

    def __init__(self, proc):
        self.proc_ = proc
        self.port = proc.port


def crm_limit_opts(on, max_rps, max_in_flight):
    """crm-sim enforces the integration's own limits (a request over either
    is answered 429 and counted in stats()["violations"]), so every test's
    "0 violations" means the CRM saw none. Off only where the fault itself
    makes crm-sim miscount: requests it holds (hang, drip) stay "in flight"
    after the client gave up, as they would on a real server."""
    return {"max_rps": max_rps, "max_in_flight": max_in_flight} if on else {}


class Tenant:
    """A second merchant on the same cluster: its own crm-sim (seed, login,
    password, limits) and integration, for the tests that prove a fault of
    one integration leaves the others syncing. Created by
    Pipeline.add_tenant(); services are the pipeline's."""

    def __init__(self, pl, integ_id, seed, customers, days, tz, latency_ms, max_rps,
                 max_in_flight, sync_interval, crm_limits=True):
        st = pl.st
        self.pl, self.id, self.tz = pl, integ_id, tz
        self.password = "t-%s+pw%%=#2" % integ_id
        today = datetime.datetime.now(ZoneInfo(tz)).date()
        self.start = today - datetime.timedelta(days=days - 1)
        self.dump_path = st.path("crm-dump-%s.json" % integ_id)
        self.sim = st.start_crmsim(seed=seed, customers=customers, start=self.start.isoformat(),
                                   days=days, timezone=tz, currency="USD",
                                   login_id=integ_id + "-api", password=self.password,
                                   latency_ms=latency_ms, dump=self.dump_path, timeout=60,
                                   **crm_limit_opts(crm_limits, max_rps, max_in_flight))
        wait_until(lambda: json.load(open(self.dump_path)), 20, "crm-sim dump")
        self.api = SimClient(self.sim)
        pwfile = st.path("crm-password-%s" % integ_id)
        with open(pwfile, "w") as f:
            f.write(self.password)
        pl.ctl(["integration", "add", "--id", integ_id, "--brand", "konnektive",
                "--base-url", self.sim.url, "--api-username", integ_id + "-api",
                "--password-ref", "file:" + pwfile, "--account-name", "Tenant " + integ_id,
                "--account-username", integ_id, "--timezone", tz,
                "--import-from", self.start.isoformat(), "--sync-interval", sync_interval,
                "--max-rps", str(max_rps), "--max-in-flight", str(max_in_flight)], check=True)

    def status(self):
        r = self.pl.ctl(["status", self.id, "--json"], timeout=30)
        return json.loads(r.stdout) if r.returncode == 0 else None

    def synced(self, s=None):
        return self.pl.synced(s or self.status())

    def expected(self):
        integ = oracle.Integration(self.id, "konnektive", self.tz, "USD")
        dump = json.load(open(self.dump_path))
        envs = oracle.envelopes_from_dump(dump, integ, "1970-01-01T00:00:00.000Z")
        return oracle.latest_by_id(oracle.Oracle(integ).run(envs))


class Pipeline:
    """Redis, devbroker, crm-sim and the integration, in a Stack."""

    def __init__(self, st, customers=60, days=90, seed=11, tz="America/New_York",
                 latency_ms=5, max_rps=200, max_in_flight=8, partitions=4,
                 sync_interval="1h", env=None, brokers=1, crm_limits=True,
                 redis_cluster=False, redis_replicas=1, add_integration=True):
        """redis_cluster: True (3 masters) or a number of masters starts a
        Redis Cluster of redis_replicas replicas a master
        (st.start_redis_cluster, tests/lib/rcluster.py) instead of one Redis;
        the services and ltvctl then get its seed list as LTVSYNC_REDIS_URL
        and self.cluster is it (None on one Redis). add_integration=False:
        the main integration is added only by add_integration()."""
        self.st, self.tz = st, tz
        self.env = dict(SERVICE_ENV)
        self.env.update(env or {})
        # The account's today (crm-sim's last day), as the scheduler sees it.
        today = datetime.datetime.now(ZoneInfo(tz)).date()
        self.start = today - datetime.timedelta(days=days - 1)
        self.last_full_day = today - datetime.timedelta(days=1)
        self.today = today
        self.cluster = None
        if redis_cluster:
            self.cluster = st.start_redis_cluster(
                masters=3 if redis_cluster is True else int(redis_cluster),
                replicas=redis_replicas)
        else:
            st.start_redis()
        self.broker = st.start_devbroker(partitions=partitions, brokers=brokers)
        self.dump_path = st.path("crm-dump.json")
        self.sim = st.start_crmsim(seed=seed, customers=customers, start=self.start.isoformat(),
                                   days=days, timezone=tz, currency="USD",
                                   login_id="pipe-api", password=PASSWORD,
                                   latency_ms=latency_ms, dump=self.dump_path, timeout=60,
                                   **crm_limit_opts(crm_limits, max_rps, max_in_flight))
        self.dump = wait_until(lambda: json.load(open(self.dump_path)), 20, "crm-sim dump")
        self.api = SimClient(self.sim)    # stats(), fault(...), clear_faults()
        with open(st.path("crm-password"), "w") as f:
            f.write(PASSWORD)
        self._add_args = ["integration", "add", "--id", INTEG_ID, "--brand", "konnektive",
                          "--base-url", self.sim.url, "--api-username", "pipe-api",
                          "--password-ref", "file:" + st.path("crm-password"),
                          "--account-name", "Pipe Test", "--account-username", "pipe",
                          "--timezone", tz, "--import-from", self.start.isoformat(),
                          "--sync-interval", sync_interval, "--max-rps", str(max_rps),
                          "--max-in-flight", str(max_in_flight)]
        if add_integration:
            self.add_integration()
        self.procs = {}
        self.stopped = set()
        self.tenants = []

    def add_integration(self):
        """Adds the main integration (INTEG_ID) with ltvctl: done by the
        constructor unless add_integration=False (a test that lets a
        tenant sync alone first calls it later)."""
        r = self.ctl(self._add_args)
        if r.returncode:
            raise HarnessError("integration add: %s%s" % (r.stdout, r.stderr))

    def add_tenant(self, integ_id, seed=23, customers=30, days=60, tz="Europe/Berlin",
                   latency_ms=5, max_rps=200, max_in_flight=8, sync_interval="1h",
                   crm_limits=True):
        """A second integration with its own crm-sim (see Tenant)."""
        t = Tenant(self, integ_id, seed, customers, days, tz, latency_ms, max_rps,
                   max_in_flight, sync_interval, crm_limits)
        self.tenants.append(t)
        return t

    # -- Redis ---------------------------------------------------------

    def integ_key(self, what, integ_id=INTEG_ID):
        """The Redis key name of an integration's WHAT in this pipeline's
        layout (common/lt_rkeys.h): P i:ID:WHAT, in a cluster P i:{ID}:WHAT."""
        return rcluster.integ_key(self.st.prefix, integ_id, what, bool(self.cluster))

    def global_key(self, what):
        """P WHAT, in a cluster P {g}:WHAT (common/lt_rkeys.h)."""
        return rcluster.global_key(self.st.prefix, what, bool(self.cluster))

    def redis_keys(self, match="*"):
        """Every key of this stack's prefix matching match (after the
        prefix), on one Redis or on every master of the cluster."""
        pattern = self.st.prefix + match
        if self.cluster:
            return self.cluster.scan(pattern)
        c = self.st.redis.client()
        return [k.decode() for k in c.scan_iter(match=pattern, count=1000)]

    # -- processes -----------------------------------------------------

    def ctl(self, args, timeout=120.0, check=False):
        env = dict(self.env, TMPDIR=self.st.tmp)   # replay logs land with the others
        r = self.st.run("ltvctl", args, env=env, timeout=timeout)
        if check and r.returncode:
            raise HarnessError("ltvctl %s: exit %d\n%s%s" % (" ".join(args), r.returncode,
                                                            r.stdout, r.stderr))
        return r

    def start_services(self):
        """Scheduler, two fetchers, normalizer, sink; {name: Proc} with the
        fetchers as ltvsync-fetcher.1 and .2."""
        n = collections.Counter()
        for name in SERVICES:
            n[name] += 1
            label = name if name != "ltvsync-fetcher" else "%s.%d" % (name, n[name])
            self.procs[label] = self.st.start_service(name, self.env)
        return self.procs

    def check_alive(self):
        """Raises if a service not stopped through stop() has exited."""
        for name, p in self.procs.items():
            if name not in self.stopped:
                p.check_alive()

    def stop(self, name, sig=None, timeout=30.0):
        """Stops one service (SIGTERM by default); returns its exit code."""
        import signal
        self.stopped.add(name)
        return self.st.stop(self.procs[name], sig or signal.SIGTERM, timeout)

    def status(self):
        r = self.ctl(["status", INTEG_ID, "--json"], timeout=30)
        return json.loads(r.stdout) if r.returncode == 0 else None

    def synced(self, s=None):
        s = s or self.status()
        return bool(s) and s["state"] == "ok" and s["outstanding_jobs"] == 0 and \
            all(v["days_done"] >= v["days_total"] > 0 for v in s["streams"].values())

    def wait_synced(self, timeout=90.0, alive=True):
        def done():
            if alive:
                self.check_alive()
            s = self.status()
            if s and s["state"] != "ok":
                raise HarnessError("integration parked: %s" % s["reason"])
            return self.synced(s)
        wait_until(done, timeout, "the sync to complete", interval=1.0)

    # -- expectations and downstream -----------------------------------

    def integ(self, tz=None):
        return oracle.Integration(INTEG_ID, "konnektive", tz or self.tz, "USD")

    def expected(self, tz=None):
        """{event_id: event} the oracle expects from crm-sim's dump now."""
        dump = json.load(open(self.dump_path))
        envs = oracle.envelopes_from_dump(dump, self.integ(tz), "1970-01-01T00:00:00.000Z")
        return oracle.latest_by_id(oracle.Oracle(self.integ(tz)).run(envs))

    def downstream(self):
        return self.st.consume_all("ltv.events.v1")

    def wait_downstream(self, want, timeout=60.0):
        """Waits until the latest downstream version of every event matches
        want exactly (then stays for 2 s); prints the diff on timeout."""
        last = [None]

        def match():
            self.check_alive()
            got = latest(self.downstream())
            last[0] = got
            return got.keys() == want.keys() and \
                all(content(want[i]) == content(got[i]) for i in want)
        try:
            wait_until(match, timeout, "ltv.events.v1 to match the oracle", interval=1.0)
        except HarnessError:
            if last[0] is not None:
                m, u, c = diff(want, last[0])
                print("downstream vs oracle: %d missing, %d unexpected, %d different of %d"
                      % (len(m), len(u), len(c), len(want)))
            raise
        time.sleep(2.0)
        got = latest(self.downstream())
        m, u, c = diff(want, got)
        if m or u or c:
            raise HarnessError("downstream changed after matching: %d missing, %d unexpected, "
                               "%d different" % (len(m), len(u), len(c)))
        return got

    def wait_quiet(self, topic, settle=3.0, timeout=60.0):
        """Waits until topic's message count stays the same for settle s."""
        def steady():
            n1 = len(self.st.consume_all(topic))
            time.sleep(settle)
            return (n1,) if n1 == len(self.st.consume_all(topic)) else None
        return wait_until(steady, timeout, "%s to stop growing" % topic)[0]

    # -- checks --------------------------------------------------------

    def secrets(self):
        """Every secret value of the dump, plus the CRM password."""
        out = {PASSWORD} | {t.password for t in self.tenants}
        dumps = [json.load(open(p)) for p in [self.dump_path] + [t.dump_path for t in self.tenants]]

        def walk(o):
            if isinstance(o, dict):
                for k, v in o.items():
                    if isinstance(v, str) and v and (k.lower() in oracle.SECRET_KEYS
                                                     or "password" in k.lower()):
                        out.add(v)
                    walk(v)
            elif isinstance(o, list):
                for v in o:
                    walk(v)
        for dump in dumps:
            walk(dump)
        return out

    def leaks(self):
        """[(where, secret)] for every secret found in a topic or a log."""
        found = []
        secrets = [(s, s.encode()) for s in self.secrets()]
        for pw in [PASSWORD] + [t.password for t in self.tenants]:
            pw_enc = re.sub(r"[^A-Za-z0-9]", lambda m: "%%%02X" % ord(m.group()), pw)
            secrets.append((pw_enc, pw_enc.encode()))
        for topic in TOPICS:
            blob = b"\n".join((m.key or b"") + b"\t" + (m.value or b"")
                              for m in self.st.consume_all(topic))
            found += [(topic, s) for s, b in secrets if b in blob]
        for name in os.listdir(self.st.tmp):
            if not name.endswith(".log"):
                continue
            with open(self.st.path(name), "rb") as f:
                blob = f.read()
            found += [(name, s) for s, b in secrets if b in blob]
        return found

    def sanitizer_reports(self):
        """Log files of this stack (ltvctl's replay children included) with
        an ASan/UBSan report."""
        out = []
        for name in os.listdir(self.st.tmp):
            if name.endswith(".log"):
                with open(self.st.path(name), "rb") as f:
                    text = f.read().decode("utf-8", "replace")
                if any(m in text for m in SANITIZER_MARKS):
                    out.append(name)
        return out

    def validator(self):
        import jsonschema
        schema = json.load(open(os.path.join(SRC_DIR, "schemas", "event.schema.json")))
        return jsonschema.Draft202012Validator(schema)
