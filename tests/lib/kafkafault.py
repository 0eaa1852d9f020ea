"""kafkafault: run-time Kafka faults through ltvsync-devbroker's control port.

The devbroker started with --control-port-file FILE writes its control port
to FILE; every method below is one POST /fault (see tools/devbroker/README.md):

    kf = KafkaFaults.from_port_file(path)    # or st.broker.faults
    kf.leader("orders", 0, 2)
    kf.down(2); ...; kf.up(2)
    kf.rtt(2, 800)
    kf.push_errors("Produce", ["NOT_LEADER_FOR_PARTITION"] * 3)
    kf.clear()

A fault the devbroker refuses raises FaultError (with .status and .reason);
request() returns (status, reply) without raising, for tests of refusals.
Standard library only.
"""

import json
import urllib.error
import urllib.request


class FaultError(AssertionError):
    """The devbroker answered a fault with an error status."""

    def __init__(self, status, reason, body):
        super().__init__("fault %s refused: %s %s" % (body, status, reason))
        self.status, self.reason = status, reason


class KafkaFaults:
    """Client of one devbroker's control port (127.0.0.1:port)."""

    def __init__(self, port, timeout=10.0):
        self.port, self.timeout = int(port), timeout
        self.url = "http://127.0.0.1:%d/fault" % self.port

    @classmethod
    def from_port_file(cls, path, timeout=10.0):
        """Reads the port the devbroker wrote (atomically) to path."""
        with open(path) as f:
            return cls(int(f.read().strip()), timeout)

    def request(self, body):
        """POSTs body (a dict, or raw bytes/str sent as is). Returns
        (HTTP status, parsed JSON reply or None); never raises on a status."""
        if isinstance(body, dict):
            body = json.dumps(body)
        if isinstance(body, str):
            body = body.encode()
        req = urllib.request.Request(
            self.url, data=body, method="POST",
            headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as r:
                status, raw = r.status, r.read()
        except urllib.error.HTTPError as e:
            status, raw = e.code, e.read()
        try:
            return status, json.loads(raw)
        except ValueError:
            return status, None

    def post(self, op, **fields):
        """Applies one fault; raises FaultError unless the answer is 200."""
        body = dict(fields, op=op)
        status, reply = self.request(body)
        if status != 200:
            reason = (reply or {}).get("error", "no reason given")
            raise FaultError(status, reason, body)
        return reply

    def down(self, broker):
        """Disconnects broker (1..N, -1 for all); it refuses connections.
        Its partitions keep it as leader (the mock moves nothing)."""
        return self.post("broker_down", broker=broker)

    def up(self, broker):
        return self.post("broker_up", broker=broker)

    def rtt(self, broker, ms):
        """Delays every response of broker by ms (0 undoes)."""
        return self.post("rtt", broker=broker, ms=ms)

    def push_errors(self, api, errors=None, count=None, error=None):
        """The next requests of api ("Produce", "Fetch", ...) from any
        client fail with errors in order (librdkafka names without the
        RD_KAFKA_RESP_ERR_ prefix); or count times with one error."""
        if errors is not None:
            return self.post("push_errors", api=api, errors=list(errors))
        return self.post("push_errors", api=api, count=count, error=error)

    def leader(self, topic, partition, broker):
        """Makes broker (-1: none) the leader of an existing partition."""
        return self.post("leader", topic=topic, partition=partition,
                         broker=broker)

    def coordinator(self, key, broker, type="group"):
        """Makes broker the coordinator of a group (or of a
        transactional.id with type="transaction")."""
        return self.post("coordinator", type=type, key=key, broker=broker)

    def clear(self):
        """Drops pushed errors, sets rtt 0 and every broker up. Leaders and
        coordinators stay as set."""
        return self.post("clear")
