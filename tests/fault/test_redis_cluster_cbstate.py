"""Chargeback state on a Redis Cluster when one master comes back empty
(issue 13; test_redis_faults_cbstate.py for one Redis).

A real Redis Cluster of 3 masters (no replicas), the dev broker with two
raw partitions, the normalizer and the sink on the cluster; raw rows are
produced here (as test_cb_history.py does) and every phase compares the
latest version of each event downstream with tests/lib/oracle.py fed the
same rows. Integrations A and B have their slots on two masters, the
control-plane slot {g} (the per-partition sets P {g}:cbp:TOPIC:PARTITION)
on the third. Sales are charged back, reverted and charged back again
(chargeback/1, its reversal, chargeback/2); a lost history shows as a
re-fetched row taken for a first chargeback: chargeback/1 re-dated.

  1. partition 0: A's rows, 2,500 campaign rows (no events), B's rows;
     partition 1: A's and B's. All normalized.
  2. FLUSHALL on B's master (its slots empty, the cluster stays up), then
     B's reversal and a re-fetched copy of B's latest row on partition 0.
     Expected: the normalizer finds B's marker gone while B is in the set:
     LOST for B on partition 0, partition 0 read again; A's rows come
     first there, B's a chunk later: B's state is rebuilt, A's histories
     are untouched (byte-identical hashes) and A is never named lost.
     (With the mode per partition, not per integration, B was "lost"
     again in every rebuild, for ever.)
  3. FLUSHALL on {g}'s master (the sets gone), then a new integration C's
     chargeback rows on partition 1: its marker is missing and the set
     too: LOST, partition 1 read again from its first offset, which
     makes its set again with every integration met (A, whose own slot
     kept its marker, included) and B's history there rebuilt; the set
     ends whole (no "#").
  4. FLUSHALL on A's master (C's too), then re-fetched copies of A's and
     C's latest rows on partition 1: A is in the set made in 3, so LOST
     and a rebuild. (Had that set held only the integrations whose marker
     was missing in 3, A passed for new: chargeback/1 re-dated.)
  5. "#" put in partition 0's set (what a pass stopped half way leaves),
     then a new integration D there: the set cannot vouch that D is new:
     LOST, partition 0 read again, which rebuilds A's history lost in 4
     and leaves the set whole.
Each phase: downstream == oracle (nothing missing, unexpected or changed).
At the end: no event went back downstream to an older version, at most
MAX_COPIES copies of one (a rebuild reads the rows whose events are
downstream only for their state).
"""
import copy
import json
import re
import signal
import sys
import time

import oracle
from ltharness import HarnessError, Stack, wait_until
from pipeline import content, diff, duplicates, latest, regressions
from rcluster import global_key, integ_key

TOPIC = "ltvsync.raw"
CB1, REV, CB2 = "2025-01-11 10:00:00", "2025-02-01 09:15:00", "2025-03-10 08:00:00"
FILL = 2500          # campaign rows between A's and B's on partition 0 (> NORM_CHUNK)
MAX_COPIES = 2       # FLUSHALL also empties some of the sink's dedupe buckets


def metric(proc, name):
    status, body = proc.http("/metrics")
    m = re.search(r"^%s(?:\{\})? (\d+)$" % re.escape(name), body.decode(), re.M)
    return int(m.group(1)) if status == 200 and m else -1


def integration_doc(iid):
    return {"id": iid, "brand": "konnektive", "api_username": "u",
            "password_ref": "env:LTV_TEST_PW", "account_name": "acme",
            "account_username": "acme", "timezone": "America/New_York",
            "currency": "USD", "import_from": "2024-10-25"}


def step(sale, flag, du):
    r = copy.deepcopy(sale)
    r.update(isChargedback=flag, dateUpdated=du)
    if flag:
        r.update(chargebackAmount=sale["totalAmount"], chargebackDate=du[:10])
    return r


GROUP = "cbc"


class Run:
    def __init__(self, st, rc):
        from confluent_kafka import Consumer
        self.st, self.rc = st, rc
        self.envs = {}       # integration id -> [(key, envelope)] in raw order
        self.integs = {}
        # Never subscribes: only reads the normalizer group's commits.
        self.probe = Consumer({"bootstrap.servers": st.broker.bootstrap, "group.id": GROUP,
                               "enable.auto.commit": False})

    def close(self):
        self.probe.close()

    def caught_up(self):
        """The normalizer committed the end of every raw partition: every
        row it was given, a rebuild's included, is done (auto-commit: 0.5 s here)."""
        from confluent_kafka import TopicPartition
        for tp in self.probe.committed([TopicPartition(TOPIC, p) for p in (0, 1)], timeout=10):
            if tp.offset < self.probe.get_watermark_offsets(tp, timeout=10)[1]:
                return False
        return True

    def add_integration(self, iid):
        self.integs[iid] = oracle.Integration(iid, "konnektive", "America/New_York", "USD")
        self.envs.setdefault(iid, [])
        self.st.produce("ltvsync.integrations", [(iid, json.dumps(integration_doc(iid)))])

    def feed(self, partition, rows):
        """rows: (integration id, stream, record), produced in order."""
        items = []
        for iid, stream, rec in rows:
            key = "%s/%s/%s" % (iid, stream, rec[oracle.RECORD_ID[stream]])
            env = {"integration_id": iid, "stream": stream, "job_id": "t", "page": 1,
                   "fetched_at": "2025-03-24T12:00:00.000Z", "record": oracle.sanitize(rec)}
            self.envs[iid].append((key, env))
            items.append((key, json.dumps(env)))
        self.st.produce(TOPIC, items, partition=partition)

    def expected(self):
        want = {}
        for iid, envs in self.envs.items():
            want.update(oracle.latest_by_id(oracle.Oracle(self.integs[iid]).run(envs)))
        return want

    def downstream(self):
        return self.st.consume_all("ltv.events.v1")

    def settle(self, procs, what, timeout=120):
        """Waits until the normalizer caught up, downstream equals the
        oracle and nothing more came for 4 s; then compares once more.
        Returns the messages."""
        want = self.expected()
        t0, last, quiet_since = time.monotonic(), -1, None
        while True:
            for p in procs:
                p.check_alive()
            msgs = self.downstream()
            got = latest(msgs)
            same = set(got) == set(want) and all(content(got[i]) == content(want[i])
                                                 for i in want)
            if len(msgs) != last:
                last, quiet_since = len(msgs), time.monotonic()
            if same and time.monotonic() - quiet_since >= 4 and self.caught_up():
                break
            if time.monotonic() - t0 > timeout:
                missing, unexpected, changed = diff(want, got)
                raise HarnessError("%s: downstream never matched the oracle in %d s: %d missing, "
                                   "%d unexpected, %d different" % (what, timeout, len(missing),
                                                                    len(unexpected), len(changed)))
            time.sleep(0.5)
        missing, unexpected, changed = diff(want, latest(msgs))
        assert not (missing or unexpected or changed), what
        print("%s: downstream == oracle (%d events, %d messages, %.1f s)"
              % (what, len(want), len(msgs), time.monotonic() - t0))
        return msgs


def main():
    with Stack("redis-cluster-cbstate") as st:
        rc = st.start_redis_cluster(masters=3, replicas=0)
        st.start_devbroker(partitions=2)
        st.start_crmsim(customers=40, start="2024-10-25", days=60, seed=5,
                        dump=st.path("dump.json"))
        dump = wait_until(lambda: json.load(open(st.path("dump.json"))), 20, "crm-sim dump")
        sales = [t for t in dump["transactions"] if t["txnType"] == "SALE"
                 and t["responseType"] == "SUCCESS" and not t["isChargedback"]]
        a1, a2, a3, b1, b2, b3, c1 = sales[:7]

        def marker(iid):
            return integ_key(st.prefix, iid, "cbp", True)

        def cb_key(iid, sale):
            return integ_key(st.prefix, iid, "cb:%s" % sale["transactionId"], True)

        def pset(p):
            return global_key(st.prefix, "cbp:%s:%d" % (TOPIC, p), True)

        # Slots on three different masters: A, B, and {g} (the sets).
        m_g = rc.master_of(pset(0))
        owner = {}
        for n in range(400):
            for kind in "abc":
                iid = "cbc-%s%d" % (kind, n)
                owner[iid] = rc.master_of(marker(iid))
        A = next(i for i, m in owner.items() if i.startswith("cbc-a") and m != m_g)
        m_a = owner[A]
        B = next(i for i, m in owner.items() if i.startswith("cbc-b") and m not in (m_g, m_a))
        m_b = owner[B]
        C = next(i for i, m in owner.items() if i.startswith("cbc-c") and m == m_a)
        print("masters: %s holds A=%s (and C=%s), %s holds B=%s, %s holds {g}"
              % (m_a, A, C, m_b, B, m_g))
        cl = rc.client()
        run = Run(st, rc)
        run.add_integration(A)
        run.add_integration(B)

        # 1. Histories of both on both partitions, A's before B's on 0.
        fill = [(A, "campaigns", {"campaignId": str(100000 + i), "campaignName": "fill %d" % i})
                for i in range(FILL)]
        run.feed(0, [(A, "transactions", step(a1, 1, CB1)), (A, "transactions", step(a1, 0, REV)),
                     (A, "transactions", step(a1, 1, CB2)), (A, "transactions", step(a2, 1, CB1))]
                 + fill +
                 [(B, "transactions", step(b1, 1, CB1)), (B, "transactions", step(b1, 0, REV)),
                  (B, "transactions", step(b1, 1, CB2)), (B, "transactions", step(b2, 1, CB1))])
        run.feed(1, [(A, "transactions", step(a3, 1, CB1)), (A, "transactions", step(a3, 0, REV)),
                     (A, "transactions", step(a3, 1, CB2)), (B, "transactions", step(b3, 1, CB1))])
        # Commits every 0.5 s, not 5: caught_up() sees a phase's end sooner.
        norm = st.start_service("ltvsync-normalizer",
                                env={"LTVSYNC_GROUP_ID": GROUP,
                                     "LTVSYNC_KAFKA_AUTO_COMMIT_INTERVAL_MS": "500"})
        sink = st.start_service("ltvsync-sink")
        st.wait_ready(norm, 30)
        st.wait_ready(sink, 30)
        procs = (norm, sink)
        run.settle(procs, "1. before any loss")
        for p in (0, 1):
            members = sorted(m.decode() for m in cl.smembers(pset(p)))
            print("   set of partition %d: %s" % (p, members))
            assert members == sorted([".", A, B]), members

        def lost_lines(iid):
            return [l for l in norm.log_lines("chargeback state lost on partition")
                    if "integration %s:" % iid in l]

        # 2. B's master empty; B's reversal and a re-fetch on partition 0.
        kept_a = {k: cl.hgetall(k) for k in (cb_key(A, a1), cb_key(A, a3))}
        assert all(kept_a.values()), kept_a
        rc.cmd(m_b, "FLUSHALL")
        print("2. FLUSHALL on %d (B's slots)" % m_b)
        run.feed(0, [(B, "transactions", step(b2, 0, REV)), (B, "transactions", step(b1, 1, CB2)),
                     (A, "transactions", step(a2, 0, REV))])
        run.settle(procs, "2. B's master emptied")
        print("   lost: A %s, B %s" % (lost_lines(A), lost_lines(B)))
        assert lost_lines(B), "the normalizer never noticed B's lost chargeback state"
        assert all("partition 0 " in l for l in lost_lines(B)), lost_lines(B)
        assert not lost_lines(A), "A's state was taken for lost"
        for k, v in kept_a.items():
            assert cl.hgetall(k) == v, ("A's history changed", k, v, cl.hgetall(k))
        rebuilds = len(norm.log_lines("chargeback state lost (Redis restarted empty?)"))
        assert rebuilds <= 2, "partition 0 read again %d times" % rebuilds

        # 3. The sets gone; a new integration's first chargebacks on partition 1.
        rc.cmd(m_g, "FLUSHALL")
        print("3. FLUSHALL on %d ({g}: the sets)" % m_g)
        run.add_integration(C)
        run.feed(1, [(C, "transactions", step(c1, 1, CB1)), (C, "transactions", step(c1, 0, REV)),
                     (C, "transactions", step(c1, 1, CB2))])
        run.settle(procs, "3. the sets emptied, C new")
        members = sorted(m.decode() for m in cl.smembers(pset(1)))
        print("   set of partition 1: %s; lost: C %s" % (members, lost_lines(C)))
        assert lost_lines(C), "a missing set was taken for a new integration's"
        assert members == sorted([".", A, B, C]), members
        j = cl.hget(cb_key(B, b3), "j")
        assert j and json.loads(j)[0][0] == "C", ("B's history on partition 1 not rebuilt", j)

        # 4. A's (and C's) master empty; re-fetched rows on partition 1.
        n_a = len(lost_lines(A))
        rc.cmd(m_a, "FLUSHALL")
        print("4. FLUSHALL on %d (A's and C's slots)" % m_a)
        run.feed(1, [(A, "transactions", step(a3, 1, CB2)), (C, "transactions", step(c1, 1, CB2))])
        msgs = run.settle(procs, "4. A's master emptied")
        print("   lost: A %s, C %s" % (lost_lines(A)[n_a:], lost_lines(C)))
        assert len(lost_lines(A)) > n_a or len(lost_lines(C)) > 1, \
            "the normalizer never noticed A's and C's lost state"
        # 5. A set that no whole pass vouched for (what a pass stopped half
        # way leaves: "#"), then a new integration D on partition 0.
        D = "cbc-d0"
        cl.sadd(pset(0), ".", "#")
        print("5. partition 0's set marked not whole; a new integration %s there" % D)
        run.add_integration(D)
        run.feed(0, [(D, "transactions", step(b1, 1, CB1)), (D, "transactions", step(b1, 0, REV))])
        msgs = run.settle(procs, "5. D new, the set not whole")
        members = sorted(m.decode() for m in cl.smembers(pset(0)))
        print("   set of partition 0: %s; lost: D %s" % (members, lost_lines(D)))
        assert lost_lines(D), "a set not vouched for took D for new"
        assert members == sorted([".", A, B, D]), members
        j = cl.hget(cb_key(A, a1), "j")
        assert j and len(json.loads(j)) == 3, ("A's history on partition 0 not rebuilt", j)
        dups = duplicates(msgs)
        worst = max([n for _, n in dups] or [1])
        back = regressions(msgs)
        print("%d unchanged duplicates, at most %d copies of one event, %d event(s) went back "
              "to an older version" % (len(dups), worst, len(back)))
        assert worst <= MAX_COPIES, worst
        assert not back, back
        for p in procs:
            assert st.stop(p, signal.SIGTERM, 30) == 0, p.name
        run.close()
        print("ok")
        return 0


if __name__ == "__main__":
    sys.exit(main())
