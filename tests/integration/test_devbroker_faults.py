"""ltvsync-devbroker's control port: every fault, seen by a real client.

A devbroker with 2 brokers; each fault is applied through kafkafault (the
harness's st.broker.faults) and its effect checked with confluent-kafka:
leader moves show in metadata; a downed leader holds a delivery until it is
up again; rtt makes a produce round trip slower (lower bound only); pushed
Produce errors are retried exactly as many times as pushed, and with one
request in flight an idempotent producer loses nothing to them (the mock's
limit with more in flight: README "What librdkafka 2.0.2's mock API gives");
records lost that way (and to leader moves) were all reported delivered
without an offset, and lt_kafka's producer, which counts such a report as
failed, loses nothing once its caller sends the failed ones again; a coordinator
move shows in the consumer's statistics; clear drops pushed errors and brings
brokers up; bad requests get 400 (or 405/413) with a reason and change nothing.
No sleeps: every wait polls for its condition.
"""
import collections
import json
import re
import subprocess
import time

from confluent_kafka import Consumer, Producer

from kafkafault import FaultError
from ltharness import HarnessError, Stack, bin_path, unique_name, wait_until


def producer(bootstrap, **conf):
    """Idempotent, no batching delay, quick reconnects (the default backoff
    grows to 10 s, longer than a broker stays down here)."""
    c = {"bootstrap.servers": bootstrap, "enable.idempotence": True,
         "linger.ms": 0, "retry.backoff.ms": 50,
         "reconnect.backoff.ms": 50, "reconnect.backoff.max.ms": 200}
    c.update(conf)
    return Producer(c)


def send(pr, topic, partition, value):
    """Produces one message; the returned list gets its delivery error
    (None when delivered) once reported."""
    out = []
    pr.produce(topic, value, partition=partition,
               on_delivery=lambda err, msg: out.append(err))
    return out


def wait_report(pr, out, what, timeout=20.0):
    """Polls pr until the report of `out` arrives; returns its error."""
    return wait_until(lambda: (pr.poll(0.05), out)[1], timeout, what)[0]


def deliver(pr, topic, partition, value, what="delivery"):
    """Produces one message and waits for its report; returns its error."""
    return wait_report(pr, send(pr, topic, partition, value), what)


def leader_of(pr, topic, partition):
    md = pr.list_topics(topic, timeout=10)
    return md.topics[topic].partitions[partition].leader


def check_refusals(kf, pr):
    """Bad requests: 400 with a reason (405, 413 for the wrong method or an
    oversized body); none of them touches the cluster."""
    cases = [
        ({"op": "explode"}, "unknown op"),
        ({"op": "broker_down", "broker": 3}, "unknown broker 3"),
        ({"op": "broker_down"}, "missing \"broker\""),
        ({"op": "rtt", "broker": 1, "ms": -5}, "\"ms\" must be an integer"),
        ({"op": "push_errors", "api": "Produx", "count": 1,
          "error": "REQUEST_TIMED_OUT"}, "unknown api"),
        ({"op": "push_errors", "api": "Produce", "errors": ["NO_SUCH_ERROR"]},
         "unknown error \"NO_SUCH_ERROR\""),
        ({"op": "coordinator", "type": "group", "key": "g", "broker": 7},
         "unknown broker 7"),
        ({"op": "clear", "brokr": 1}, "unknown field \"brokr\""),
        ('{"op": "clear"', "one JSON object"),
    ]
    for body, reason in cases:
        status, reply = kf.request(body)
        assert status == 400 and reason in reply["error"], (body, status, reply)
    # A leader move on a missing topic is refused and creates nothing (the
    # mock itself would create the topic).
    ghost = unique_name("ghost")
    status, reply = kf.request({"op": "leader", "topic": ghost,
                                "partition": 0, "broker": 1})
    assert status == 400 and "unknown topic" in reply["error"], reply
    assert ghost not in pr.list_topics(timeout=10).topics
    status, reply = kf.request("{" + " " * 5000 + "}")
    assert status == 413 and "4096" in reply["error"], (status, reply)
    try:
        kf.post("explode")
        raise HarnessError("FaultError expected")
    except FaultError as e:
        assert e.status == 400 and "unknown op" in e.reason, e


def check_leader(kf, pr, topic):
    """The same partition led by 1, then by 2: no random placement explains
    both."""
    for partition, broker in ((0, 1), (0, 2), (1, 1)):
        kf.leader(topic, partition, broker)
        seen = leader_of(pr, topic, partition)
        assert seen == broker, "partition %d led by %s, not %d" % (
            partition, seen, broker)


def check_down_up(kf, pr, topic):
    """Broker 2 leads partition 0: down, a delivery waits; up, it lands."""
    assert deliver(pr, topic, 0, b"warm") is None
    kf.down(2)
    out = send(pr, topic, 0, b"while-down")
    window = time.monotonic() + 1.0  # the leader is down: nothing can land
    while time.monotonic() < window:
        pr.poll(0.05)
        assert not out, "delivered while its leader was down: %r" % out
    kf.up(2)
    assert wait_report(pr, out, "delivery after broker_up") is None


def check_rtt(kf, pr, topic):
    """800 ms rtt on the leader: a produce round trip takes >= 700 ms."""
    assert deliver(pr, topic, 0, b"warm") is None
    kf.rtt(2, 800)
    t0 = time.monotonic()
    assert deliver(pr, topic, 0, b"slow") is None
    took = time.monotonic() - t0
    kf.rtt(2, 0)
    print("produce round trip with rtt 800 ms: %.3f s" % took)
    assert took >= 0.7, "round trip %.3f s with rtt 800 ms" % took


def check_push_errors(kf, bootstrap, topic):
    """3 pushed REQUEST_TIMED_OUT: delivered with 3 retries allowed, failed
    with 2, so exactly 3 Produce requests failed each time."""
    kf.push_errors("Produce", ["REQUEST_TIMED_OUT"] * 3)
    pr = producer(bootstrap, retries=3)
    err = deliver(pr, topic, 1, b"after-3-errors")
    assert err is None, "3 errors and 3 retries: %s" % err
    pr.flush(10)
    kf.push_errors("Produce", count=3, error="REQUEST_TIMED_OUT")
    pr = producer(bootstrap, retries=2)
    err = deliver(pr, topic, 1, b"too-few-retries")
    assert err is not None and err.name() == "REQUEST_TIMED_OUT", \
        "3 errors and 2 retries: %s" % err
    pr.flush(10)
    # A non-retriable error reaches the application as is.
    kf.push_errors("Produce", ["TOPIC_AUTHORIZATION_FAILED"])
    pr = producer(bootstrap, **{"enable.idempotence": False})
    err = deliver(pr, topic, 1, b"denied")
    assert err is not None and err.name() == "TOPIC_AUTHORIZATION_FAILED", err
    pr.flush(10)


def lost_acked(kf, st, bootstrap, topic, tag, conf, fault, rounds=10):
    """rounds x 50 records to partition 0 by an idempotent-by-default
    producer (conf on top), fault(r) called in the middle of each round (rtt
    30 ms on every broker keeps requests in flight); returns how many
    records were reported delivered but are not in the log. Asserts that
    each of them was reported without an offset: the sign lt_kafka takes
    for "maybe not written" (lt_kafka_delivery_err)."""
    kf.rtt(-1, 30)
    pr = producer(bootstrap, **conf)
    acked, failed = {}, []
    try:
        for r in range(rounds):
            for i in range(50):
                v = b"%s-%02d-%02d" % (tag, r, i)
                pr.produce(topic, v, partition=0, on_delivery=lambda err, msg:
                           failed.append(msg.value()) if err else
                           acked.__setitem__(msg.value(), msg.offset()))
                if i == 25:
                    fault(r)
                pr.poll(0)
            assert pr.flush(30) == 0, "round %d not delivered" % r
    finally:
        kf.clear()
    assert not failed, failed[:3]
    logged = {m.value for m in st.consume_all(topic)}
    lost = [v for v in acked if v not in logged]
    with_offset = [(v, acked[v]) for v in lost if acked[v] is not None and acked[v] >= 0]
    assert not with_offset, "lost, yet reported with an offset: %r" % with_offset[:5]
    return len(lost)


def lost_to_produce_errors(kf, st, bootstrap, topic, in_flight):
    """One REQUEST_TIMED_OUT pushed per round, in_flight requests per connection."""
    return lost_acked(kf, st, bootstrap, topic, b"if%d" % in_flight,
                      {"max.in.flight": in_flight},
                      lambda r: kf.push_errors("Produce", ["REQUEST_TIMED_OUT"]))


def check_produce_errors_in_flight(kf, st, bootstrap, topic):
    """With max.in.flight=1 nothing acknowledged is missing (the setting the
    fault tests give the services when they push Produce errors); with 5
    the mock's loss is only reported: it needs two requests of the partition
    in flight at the right moment, which a busy machine may not give."""
    lost1 = lost_to_produce_errors(kf, st, bootstrap, topic, 1)
    lost5 = lost_to_produce_errors(kf, st, bootstrap, topic, 5)
    print("acknowledged records missing after 10 pushed REQUEST_TIMED_OUT: "
          "%d of 500 with max.in.flight=1, %d of 500 with 5 (the mock's limit)"
          % (lost1, lost5))
    assert lost1 == 0, "%d acknowledged records lost with max.in.flight=1" % lost1


def lost_to_leader_moves(kf, st, bootstrap, topic, idempotence):
    """The leader moved to the next of 2 brokers each round, 1 in flight."""
    return lost_acked(kf, st, bootstrap, topic, b"lm%d" % idempotence,
                      {"max.in.flight": 1, "enable.idempotence": idempotence, "acks": "all"},
                      lambda r: kf.leader(topic, 0, 1 + r % 2))


def measure_leader_moves(kf, st, bootstrap, topic):
    """Reported, not asserted (it needs a request refused by the old leader
    while the next one reaches the new leader, a race a busy machine rarely
    meets): the loss lt_kafka closes by sending offset-less reports again."""
    idem = lost_to_leader_moves(kf, st, bootstrap, topic, True)
    plain = lost_to_leader_moves(kf, st, bootstrap, topic, False)
    print("acknowledged records missing after 10 leader moves (1 in flight): "
          "%d of 500 idempotent, %d of 500 without idempotence" % (idem, plain))


def resend_through_faults(kf, st, topic, fault, in_flight, rounds=10):
    """test_kafka_io resend (lt_kafka's producer as the services use it:
    idempotent, acks=all, failed reports sent again) sends rounds x 50
    messages to the topic's one partition; in the middle of round r,
    fault(r) (rtt 30 ms keeps a request in flight). Returns its summary line
    and the messages in the log."""
    env = st.service_env({"LTVSYNC_KAFKA_MAX_IN_FLIGHT": str(in_flight),
                          "LTVSYNC_KAFKA_COMPRESSION_TYPE": "none",
                          "LTVSYNC_KAFKA_LINGER_MS": "0",
                          "LTVSYNC_KAFKA_RETRY_BACKOFF_MS": "50",
                          "LTVSYNC_KAFKA_RECONNECT_BACKOFF_MS": "50",
                          "LTVSYNC_KAFKA_RECONNECT_BACKOFF_MAX_MS": "200"})
    kf.rtt(-1, 30)
    lines = []
    err = open(st.path("%s.stderr" % topic), "w+")
    try:
        p = subprocess.Popen([bin_path("test_kafka_io"), "resend", topic, str(rounds)],
                             env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=err, text=True)
        try:
            for line in p.stdout:
                lines.append(line)
                m = re.match(r"fault (\d+)", line)
                if m:
                    fault(int(m.group(1)))
                    p.stdin.write("go\n")
                    p.stdin.flush()
            p.wait(timeout=180)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
    finally:
        kf.clear()
        err.seek(0)
        errors = err.read()
        err.close()
    out = "".join(lines)
    summary = [l for l in lines if l.startswith("sent=")]
    assert "Sanitizer" not in errors and p.returncode == 0 and summary, \
        (p.returncode, out[-2000:], errors[-2000:])
    return summary[0].strip(), [m.value for m in st.consume_all(topic)]


def check_no_loss_to_produce_errors_resent(kf, st):
    """With 5 requests in flight a REQUEST_TIMED_OUT on one and a success of
    the next makes librdkafka report the first one's records delivered,
    without an offset (check_produce_errors_in_flight: the loss with a bare
    producer; a leader move loses records the same way). lt_kafka counts
    such a report as failed, so with resends nothing is lost and nothing is
    written twice but what was sent again. The report is met on every run
    (3-14 a run, also beside two busy loops); up to 3 runs, one must meet it."""
    for run in range(3):
        topic = unique_name("resend")
        st.produce(topic, [b"create"], partition=0)
        summary, logged = resend_through_faults(
            kf, st, topic, lambda r: kf.push_errors("Produce", ["REQUEST_TIMED_OUT"]),
            in_flight=5)
        got = collections.Counter(v for v in logged if v.startswith(b"resend-"))
        missing = [i for i in range(500) if b"resend-%d" % i not in got]
        print("pushed Produce errors, 5 in flight, lt_kafka with resends (run %d): %s; "
              "%d missing, %d written twice"
              % (run + 1, summary, len(missing), sum(1 for c in got.values() if c > 1)))
        assert not missing, "%d records reported delivered are not in the log: %s" % (
            len(missing), missing[:10])
        resent = int(re.search(r"resent=(\d+)", summary).group(1))
        assert sum(c - 1 for c in got.values()) <= resent, "duplicates not from resends"
        if int(re.search(r"unverified=(\d+)", summary).group(1)) > 0:
            return
    raise AssertionError("3 runs of 10 pushed Produce errors and no report without an offset")


def coordinator_seen(bootstrap, group, topic):
    """The broker a new member of group finds as its coordinator (from
    librdkafka's statistics, logical broker "GroupCoordinator")."""
    stats = []
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                  "statistics.interval.ms": 100,
                  "stats_cb": lambda s: stats.append(json.loads(s))})
    try:
        c.subscribe([topic])

        def found():
            c.poll(0.05)
            b = stats and stats[-1]["brokers"].get("GroupCoordinator")
            return b and b["state"] == "UP" and b["nodeid"]
        return wait_until(found, 20, "coordinator of %s" % group)
    finally:
        c.close()


def check_coordinator(kf, bootstrap, topic):
    """One group, moved from broker 1 to 2: hashing cannot explain both."""
    group = unique_name("group")
    for broker in (1, 2):
        kf.coordinator(group, broker)
        seen = coordinator_seen(bootstrap, group, topic)
        assert seen == broker, "coordinator %s, not %d" % (seen, broker)


def check_clear(kf, bootstrap, topic):
    """clear drops pushed errors and brings brokers up: a producer that
    never retries delivers to both leaders."""
    kf.push_errors("Produce", count=5, error="REQUEST_TIMED_OUT")
    kf.down(1)
    kf.rtt(2, 800)
    kf.clear()
    pr = producer(bootstrap, retries=0, **{"enable.idempotence": False})
    for partition in (0, 1):  # led by 2 and by 1
        err = deliver(pr, topic, partition, b"after-clear")
        assert err is None, "partition %d after clear: %s" % (partition, err)
    pr.flush(10)


def main():
    t0 = time.monotonic()
    with Stack("devbroker-faults") as st:
        db = st.start_devbroker(partitions=1, brokers=2)
        kf = db.faults
        topic = unique_name("faults")
        st.produce(topic, [b"create"], partition=0)  # auto-created topic
        pr = producer(db.bootstrap)
        check_refusals(kf, pr)
        check_leader(kf, pr, topic)
        check_down_up(kf, pr, topic)
        check_rtt(kf, pr, topic)
        pr.flush(10)
        check_push_errors(kf, db.bootstrap, topic)
        check_produce_errors_in_flight(kf, st, db.bootstrap, topic)
        measure_leader_moves(kf, st, db.bootstrap, topic)
        check_no_loss_to_produce_errors_resent(kf, st)
        check_coordinator(kf, db.bootstrap, topic)
        check_clear(kf, db.bootstrap, topic)
        for line in ("fault: broker 2 down", "fault: broker 2 up",
                     "fault: broker 2 rtt 800 ms",
                     "fault: 3 Produce errors pushed, first REQUEST_TIMED_OUT",
                     "fault: topic %s partition 0 leader 2" % topic,
                     "fault: cleared", "fault rejected (400): unknown op",
                     "WARN devbroker: fault: Produce errors and idempotent producers"):
            assert db.log_lines(line), "no log line %r" % line
        assert st.stop(db) == 0
    print("ok (%.1f s)" % (time.monotonic() - t0))


if __name__ == "__main__":
    main()
