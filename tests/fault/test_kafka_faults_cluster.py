"""Kafka faults during a live sync, part 1: the cluster itself (issue 11).

One pipeline on a 3-broker devbroker (partition leaders and group
coordinators pinned at start: the mock picks them at random), and four
scenarios, each hitting a sync that is under way (the first the main
integration's backfill, the others a new merchant's, added for the purpose
so that every scenario has fresh work in every stage):

  outage       every broker down 10 s, then up (every group session is lost);
  rtt          every broker answers 500 ms late for 8 s;
  leaders      3 rounds, 1.5 s apart, moving the leader of every partition of
               ltvsync.raw, ltvsync.events, ltv.events.v1 and both job topics
               to the next broker. librdkafka 2.0.2's idempotent producer
               reports records a leader move kept out of the log as delivered
               (a request refused by the old leader is "implicitly acked" by a
               later one's success, confluent-kafka-go #921), without an
               offset; lt_kafka counts such a report as failed and the
               services send the record again. Before that, one event of 202
               was missing in about 1 run of 20. test_devbroker_faults shows
               each record lost to leader moves reported without an offset,
               and lt_kafka with resends losing nothing to the same implicit
               ack from pushed Produce errors (met on every run);
  coordinators 3 rounds, 1.5 s apart, moving the coordinator of every
               consumer group of the services (ltvsync-fetcher-live,
               ltvsync-fetcher-backfill, ltvsync-normalizer, ltvsync-sink:
               GROUP_ID's default "ltvsync-" + service, the fetcher's with
               -live/-backfill, services/fetcher/dispatch.c) to the next
               broker. librdkafka 2.0.2 loses every group session on these
               moves (SESSTMOUT: 6 s without a heartbeat answer), so every
               consumer is revoked and rejoins.

After each fault clears: the syncs complete and the latest downstream
version of every event equals the oracle within BOUND_S of the clearing;
no downstream duplicate with unchanged content; no dead letter; no CRM limit
violation; no sanitizer report; every service still running. At the end no
secret in any topic or log and every service exits 0 on SIGTERM. One
faultrow per scenario (recovery = from the fault clearing to downstream
matching the oracle, so it includes the sync work left).

A fetcher whose job consumer was paused when its group session was lost
used to never fetch those partitions again (fixed in dispatch.c: the
dispatcher records the partitions it pauses and resumes exactly those);
outage_with_paused_consumers, run by test_fetcher_paused_rebalance.py,
proves it. The scenarios here keep the fetchers below their pause threshold
(FETCH_CONCURRENCY 64, syncs of at most 60 day-jobs per class) so that each
isolates its own fault.

The helpers (KafkaFaultRun) are imported by test_kafka_faults_errors.py,
part 2 (bursts of request errors of each API)."""
import os
import signal
import sys
import time

from faultrow import report
from ltharness import HarnessError, Stack, wait_until
from pipeline import Pipeline, content, diff, duplicates, latest

BROKERS = 3
PARTITIONS = 4
# Consumer groups of the services (common/lt_config.c GROUP_ID default,
# services/fetcher/dispatch.c open_consumers).
GROUPS = ("ltvsync-fetcher-live", "ltvsync-fetcher-backfill",
          "ltvsync-normalizer", "ltvsync-sink")
FLOW_TOPICS = ("ltvsync.jobs.live", "ltvsync.jobs.backfill", "ltvsync.raw",
               "ltvsync.events", "ltv.events.v1")
ALL_TOPICS = FLOW_TOPICS + ("ltvsync.integrations", "ltvsync.dlq")
# From the fault clearing to downstream == oracle (the sync work left
# included). Measured under ASan on 2 busy cores: 17-20 s after the outage,
# 5-8 s after the rtt, 10-14 s after the leader moves, 18-30 s after the
# coordinator moves (every session lost, then the mock's rebalance delay).
BOUND_S = 90
# The fetchers never pause their job consumers while fewer than
# FETCH_CONCURRENCY jobs wait (services/fetcher/dispatch.c fill): 64 (the
# maximum) against syncs of DAYS days x 5 streams = 60 jobs per class keeps
# pausing out of these scenarios (outage_with_paused_consumers covers it).
DAYS = 12
SAFE_ENV = {"LTVSYNC_FETCH_CONCURRENCY": "64"}


class KafkaFaultRun:
    """A pipeline and the checks every Kafka fault scenario makes.

    new_sync() adds a merchant whose sync the next fault hits; settle()
    waits for every sync and for downstream == oracle, checks the rest and
    writes the faultrow."""

    def __init__(self, st, brokers=BROKERS, customers=30, days=DAYS, max_rps=8,
                 env=SAFE_ENV, latency_ms=5):
        self.st = st
        # max_rps keeps each sync a few seconds long under ASan, so that a
        # fault lands in the middle of it.
        self.pl = Pipeline(st, customers=customers, days=days, brokers=brokers,
                           partitions=PARTITIONS, max_rps=max_rps, max_in_flight=4,
                           env=env, latency_ms=latency_ms)
        self.faults = self.pl.broker.faults
        self.brokers = brokers
        self.want = self.pl.expected()
        self.tenants = []
        self.t0 = time.monotonic()
        self.leaders = {}
        self.coords = {}
        if brokers > 1:
            self.pin()

    def log(self, msg):
        print("%6.1fs %s" % (time.monotonic() - self.t0, msg))
        sys.stdout.flush()

    def pin(self):
        """Leaders and coordinators spread over the brokers, explicitly (the
        mock chose at random)."""
        for ti, topic in enumerate(ALL_TOPICS):
            for p in range(PARTITIONS):
                self.set_leader(topic, p, (ti + p) % self.brokers + 1)
        for gi, g in enumerate(GROUPS):
            self.set_coordinator(g, gi % self.brokers + 1)

    def set_leader(self, topic, partition, broker):
        self.faults.leader(topic, partition, broker)
        self.leaders[(topic, partition)] = broker

    def set_coordinator(self, group, broker):
        self.faults.coordinator(group, broker)
        self.coords[group] = broker

    def start(self, fetchers=2):
        """The services (Pipeline.start_services), with one fetcher if asked."""
        if fetchers == 2:
            self.procs = self.pl.start_services()
        else:
            self.procs = self.pl.procs
            for name in ("ltvsync-scheduler", "ltvsync-fetcher", "ltvsync-normalizer",
                         "ltvsync-sink"):
                label = name + ".1" if name == "ltvsync-fetcher" else name
                self.procs[label] = self.st.start_service(name, self.pl.env)
        return self.procs

    # -- syncs -----------------------------------------------------------

    def rows(self, t=None):
        s = (t or self.pl).status()
        return sum(v["rows"] for v in s["streams"].values()) if s else 0

    def new_sync(self, name, seed, max_rps=8):
        """A new merchant (own crm-sim; DAYS x 5 day-jobs, at max_rps about
        8 s undisturbed); returns it once its first rows are fetched (the sync is under
        way)."""
        t = self.pl.add_tenant(name, seed=seed, customers=20, days=DAYS,
                               max_rps=max_rps, max_in_flight=4)
        self.tenants.append(t)
        self.want.update(t.expected())
        self.wait_fetching(t)
        return t

    def wait_fetching(self, t=None):
        wait_until(lambda: self.pl.check_alive() or self.rows(t) > 0, 60,
                   "the first rows of %s" % (t.id if t else "the main sync"),
                   interval=0.2)
        self.log("%s: sync under way (%d rows)" % (t.id if t else "pipe", self.rows(t)))

    def all_synced(self):
        return self.pl.synced() and all(t.synced() for t in self.tenants)

    def assert_mid_sync(self, t=None):
        """The fault must hit a sync that is not over yet."""
        if (t or self.pl).synced():
            raise HarnessError("the sync of %s finished before the fault: slow it down"
                               % (t.id if t else "pipe"))

    def restart(self, name):
        """SIGTERM (must exit 0) and start again one service of the pipeline:
        a new member for its groups, new producers."""
        rc = self.pl.stop(name)
        if rc != 0:
            raise HarnessError("%s exited %s after SIGTERM" % (name, rc))
        self.st.restart(self.pl.procs[name])
        self.pl.stopped.discard(name)
        self.log("%s restarted" % name)

    # -- evidence in the logs --------------------------------------------

    def log_mark(self):
        """Where every log of the stack ends now."""
        return {n: os.path.getsize(self.st.path(n)) for n in os.listdir(self.st.tmp)
                if n.endswith(".log")}

    def log_count(self, mark, texts):
        """Log lines written since mark that contain any of texts."""
        n = 0
        for name in os.listdir(self.st.tmp):
            if not name.endswith(".log"):
                continue
            with open(self.st.path(name), "rb") as f:
                f.seek(mark.get(name, 0))
                for line in f.read().decode("utf-8", "replace").splitlines():
                    n += any(t in line for t in texts)
        return n

    # -- the end of a scenario ------------------------------------------

    def violations(self):
        return self.pl.api.stats()["violations"] + sum(t.api.stats()["violations"]
                                                       for t in self.tenants)

    def settle(self, scenario, t_clear, bound=BOUND_S, note=""):
        """Waits (bound s from t_clear) for every sync to complete and the
        latest downstream version of each event to equal the oracle; checks
        duplicates, DLQ, violations, sanitizers; reports (note may be a
        function, called once the pipeline has recovered). Returns the
        recovery time in s."""
        pl, last = self.pl, [None]

        def converged():
            pl.check_alive()
            if not self.all_synced():
                return False
            got = latest(pl.downstream())
            last[0] = got
            return got.keys() == self.want.keys() and \
                all(content(self.want[i]) == content(got[i]) for i in self.want)
        left = bound - (time.monotonic() - t_clear)
        try:
            wait_until(converged, max(left, 1.0), "%s: the syncs to complete and "
                       "ltv.events.v1 to equal the oracle" % scenario, interval=0.5)
        except HarnessError:
            if last[0] is not None:
                m, u, c = diff(self.want, last[0])
                print("downstream vs oracle: %d missing, %d unexpected, %d different of %d"
                      % (len(m), len(u), len(c), len(self.want)))
            for t in [None] + self.tenants:
                print("status %s: %s" % (t.id if t else "pipe", (t or pl).status()))
            raise
        recover = time.monotonic() - t_clear
        pl.wait_downstream(self.want, timeout=30)   # and stays so (2 s)
        msgs = pl.downstream()
        dups = duplicates(msgs)
        for d in dups[:10]:
            print("DUPLICATE", d)
        dlq = self.st.consume_all("ltvsync.dlq")
        for m in dlq[:5]:
            print("DLQ", m.value[:300])
        violations = self.violations()
        san = pl.sanitizer_reports()
        self.log("%s: recovered %.1f s after the fault cleared; events %d, downstream "
                 "messages %d, duplicates %d, dlq %d, violations %d, sanitizer reports %s"
                 % (scenario, recover, len(self.want), len(msgs), len(dups), len(dlq),
                    violations, san))
        if callable(note):
            note = note()
        self.log("%s: %s" % (scenario, note))
        report("kafka: " + scenario, trials=1, lost=0, dups=len(dups),
               violations=violations, recover_s=recover, note=note)
        problems = []
        if dups:
            problems.append("%d unchanged duplicates downstream" % len(dups))
        if dlq:
            problems.append("%d dead letters" % len(dlq))
        if violations:
            problems.append("%d CRM limit violations" % violations)
        if san:
            problems.append("sanitizer reports in %s" % san)
        if problems:
            raise HarnessError("%s: %s" % (scenario, "; ".join(problems)))
        return recover

    def finish(self):
        """No secret anywhere; every service drains and exits 0."""
        leaks = self.pl.leaks()
        for where, secret in leaks[:10]:
            print("LEAK of a secret (%d chars) in %s" % (len(secret), where))
        if leaks:
            raise HarnessError("%d secrets leaked" % len(leaks))
        for p in self.pl.procs.values():   # all drain at once
            p.popen.send_signal(signal.SIGTERM)
        for name, p in self.pl.procs.items():
            rc = self.st.stop(p, signal.SIGTERM, 30)
            if rc != 0:
                raise HarnessError("%s exited %s after SIGTERM" % (name, rc))
        self.log("no secret leaked; every service exited 0")


def every_broker_down(run):
    """Every broker down 10 s: every client loses every connection, every
    group session (6 s) ends, every producer queues."""
    run.assert_mid_sync()
    run.faults.down(-1)
    run.log("every broker down")
    time.sleep(10.0)            # the fault's duration (ltvctl status needs Kafka)
    run.faults.up(-1)
    t_clear = time.monotonic()
    run.log("every broker up")
    run.settle("every broker down 10 s mid-sync", t_clear,
               note=lambda: "3 brokers; %d lost group sessions (SESSTMOUT)"
               % run.log_count({}, ["SESSTMOUT"]))


def slow_brokers(run):
    t = run.new_sync("rtt", seed=41)
    run.assert_mid_sync(t)
    run.faults.rtt(-1, 500)
    run.log("rtt 500 ms on every broker")
    time.sleep(8.0)             # the fault's duration (ltvctl status needs Kafka)
    run.faults.rtt(-1, 0)
    t_clear = time.monotonic()
    run.log("rtt 0")
    run.settle("every broker 500 ms rtt for 8 s mid-sync", t_clear, note="3 brokers")


def leader_moves(run, rounds=3):
    t = run.new_sync("leaders", seed=42)
    run.assert_mid_sync(t)
    mark = run.log_mark()
    moves = 0
    for r in range(rounds):
        if r:
            time.sleep(1.5)
        for topic in FLOW_TOPICS:
            for p in range(PARTITIONS):
                run.set_leader(topic, p, run.leaders[(topic, p)] % run.brokers + 1)
                moves += 1
        run.log("round %d: %d partition leaders moved" % (r + 1, len(FLOW_TOPICS) * PARTITIONS))
    t_clear = time.monotonic()
    run.settle("partition leaders moved mid-sync", t_clear,
               note=lambda: "%d moves in %d rounds over raw, events, downstream, job topics; "
               "%d log lines of deliveries without an offset sent again"
               % (moves, rounds, run.log_count(mark, ["without an offset"])))


def coordinator_moves(run, rounds=3):
    t = run.new_sync("coords", seed=43)
    run.assert_mid_sync(t)
    for r in range(rounds):
        if r:
            time.sleep(1.5)
        for g in GROUPS:
            run.set_coordinator(g, run.coords[g] % run.brokers + 1)
        run.log("round %d: coordinators of %s moved" % (r + 1, ", ".join(GROUPS)))
    t_clear = time.monotonic()
    run.settle("group coordinators moved mid-sync", t_clear,
               note="%d moves in %d rounds" % (rounds * len(GROUPS), rounds))


def outage_with_paused_consumers():
    """Every broker down 10 s while the fetchers' job consumers are paused.

    The bug this proves fixed (services/fetcher/dispatch.c set_paused): the
    dispatcher pauses a class's partitions while `concurrency` jobs wait in
    its queue; the outage outlives the 6 s session, librdkafka revokes the
    partitions, revoked() empties the queue and fill() "resumed" the
    assignment of that moment, which was empty, and recorded the class as
    unpaused. When the brokers returned, the group handed the consumer the
    same partitions, and librdkafka 2.0.2 keeps an application pause across
    unassign/assign (rdkafka_assignment.c resets only
    RD_KAFKA_TOPPAR_F_LIB_PAUSE): they were never fetched again and the sync
    never completed. The dispatcher now records the partitions it pauses
    and resumes exactly those, lost ones included (resuming every new
    assignment instead rewound fetch positions: librdkafka #4637, jobs
    taken twice, caught by test_fetcher_abandon). One fetcher (the
    partitions come back to the consumer that paused them; with two, a
    reshuffled assignment sometimes hides the bug), one job in flight
    (FETCH_CONCURRENCY 1) and a slow CRM keep its job queues non-empty, so
    its consumers are paused when the outage begins."""
    with Stack("kafka-outage-paused") as st:
        run = KafkaFaultRun(st, days=12, max_rps=15, latency_ms=150,
                            env={"LTVSYNC_FETCH_CONCURRENCY": "1"})
        run.start(fetchers=1)
        run.wait_fetching()
        run.assert_mid_sync()
        run.faults.down(-1)
        run.log("every broker down")
        time.sleep(10.0)        # the fault's duration
        run.faults.up(-1)
        t_clear = time.monotonic()
        run.log("every broker up")
        run.settle("every broker down 10 s mid-sync, job consumers paused", t_clear,
                   note="3 brokers; FETCH_CONCURRENCY 1")
        run.finish()


def main():
    with Stack("kafka-cluster") as st:
        run = KafkaFaultRun(st)
        run.start()
        run.wait_fetching()
        every_broker_down(run)
        slow_brokers(run)
        leader_moves(run)
        coordinator_moves(run)
        run.finish()
        run.log("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
