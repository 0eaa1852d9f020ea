"""common/lt_redis, lt_http and lt_kafka against real servers.

The C drivers in tests/io (built into LTVSYNC_BIN_DIR) exercise the modules;
this script starts a real redis-server (plain, stopped and restarted,
paused, password-protected), a local Python HTTP(S) server, and the
devbroker, and checks what the drivers report.
"""
import email.utils
import json
import re
import select
import subprocess
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tcpproxy import TcpProxy
from ltharness import HarnessError, Stack, bin_path, free_port, unique_name

TRICKY = "a+b%c=d#e f&g"


# ---------------------------------------------------------------- redis

class RedisRepl:
    """test_redis_io as a child with pipes: one command line, one answer."""

    def __init__(self, url, timeout_ms=1000):
        self.p = subprocess.Popen([bin_path("test_redis_io"), url, str(timeout_ms)],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)

    def __call__(self, line, timeout=15):
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()
        r, _, _ = select.select([self.p.stdout], [], [], timeout)
        if not r:
            raise HarnessError("test_redis_io: no answer to %r" % line)
        return self.p.stdout.readline().rstrip("\n")

    def close(self):
        self.p.stdin.close()
        rc = self.p.wait(10)
        err = self.p.stderr.read()
        assert rc == 0 and "Sanitizer" not in err, (rc, err)


def hx(b):
    return b.hex()


def test_redis_basic(st, rd):
    r = RedisRepl(rd.url)
    try:
        assert r("ping") == "PONG"
        key = unique_name("bin")
        # NUL, 0xff and a newline survive (binary-safe %b and argv paths).
        assert r("set %s %s" % (key, hx(b"\x00\xff\nA"))) == "OK"
        assert r("get %s" % key) == hx(b"\x00\xff\nA")
        assert rd.client().get(key) == b"\x00\xff\nA"
        assert r("get %s" % unique_name("none")) == "NIL"
        want = hx(b"k1|v1|1")
        assert r("eval k1 v1") == want
        # After SCRIPT FLUSH, EVALSHA gets NOSCRIPT: reload and retry.
        assert r("flush") == "OK"
        assert r("eval k1 v1") == want
        assert rd.client().execute_command("SCRIPT", "EXISTS",
                                           _sha("return KEYS[1] .. '|' .. ARGV[1] .. '|' .. #ARGV")) == [1]
        # Pipelined halves: the reply waits on the wire until recv.
        assert r("send k2 v2") == "SENT"
        assert r("send k3 v3").startswith("ERR")  # one in flight at a time
        assert r("recv k2 v2") == hx(b"k2|v2|1")
        assert r("recv k2 v2").startswith("ERR")  # nothing awaits a reply
        assert r("flush") == "OK"
        assert r("send k4 v4") == "SENT"  # NOSCRIPT reply: recv loads and runs it again
        assert r("recv k4 v4") == hx(b"k4|v4|1")
        assert r("get %s" % key) == hx(b"\x00\xff\nA")  # the connection is in step
    finally:
        r.close()


def _sha(src):
    import hashlib
    return hashlib.sha1(src.encode()).hexdigest()


def test_redis_reconnect(st, rd):
    r = RedisRepl(rd.url)
    try:
        assert r("incr c") == "1"
        # Restart under an open connection: the next call reconnects once,
        # transparently (the new server is empty: no persistence).
        st.stop(rd)
        st.restart(rd)
        st.wait_redis(rd)
        assert r("incr c") == "1"
        assert r("eval k v") == hx(b"k|v|1")  # script cache lost: NOSCRIPT path
        # Redis down: the call fails with a reason, no password, no hang.
        st.stop(rd)
        t0 = time.monotonic()
        ans = r("ping")
        assert ans.startswith("ERR Redis 127.0.0.1:%d" % rd.port), ans
        assert time.monotonic() - t0 < 5
        assert r("incr c").startswith("ERR")
        assert r("send k v").startswith("ERR Redis 127.0.0.1:%d" % rd.port)
        st.restart(rd)
        st.wait_redis(rd)
        assert r("ping") == "PONG"
    finally:
        r.close()


def test_redis_timeout_not_resent(st, rd):
    r = RedisRepl(rd.url, timeout_ms=300)
    try:
        key = unique_name("t")
        assert r("ping") == "PONG"
        rd.client().execute_command("CLIENT", "PAUSE", "1500", "ALL")
        t0 = time.monotonic()
        ans = r("incr %s" % key)
        took = time.monotonic() - t0
        assert ans.startswith("ERR"), ans
        assert took < 1.2, "command timeout not applied: %.2fs" % took
        time.sleep(1.6)
        assert r("ping") == "PONG"
        # A timed-out INCR may or may not have run, but never twice.
        assert r("get %s" % key) in ("NIL", hx(b"1"))
    finally:
        r.close()


class ReplyDropper:
    """A proxy in front of Redis that, once armed, forwards the next INCR
    whole to Redis and then closes the client's connection instead of
    relaying the reply: the command ran, its answer was lost."""

    def __init__(self, port):
        self.armed = threading.Event()
        self.dropped = 0
        self.px = TcpProxy(port, to_server=self._command, to_client=self._reply)
        self.port = self.px.port

    def _command(self, conn, data):
        if self.armed.is_set() and b"INCR" in data:
            self.armed.clear()
            conn["drop"] = True

    def _reply(self, conn, data):
        if conn.get("drop"):
            self.dropped += 1
            return TcpProxy.DROP
        return None


def test_redis_lost_reply_not_resent(st, rd):
    """A command written whole whose reply is lost may have run: lt_redis
    must not send it again by itself (it did: INCR ran twice)."""
    px = ReplyDropper(rd.port)
    r = RedisRepl("redis://127.0.0.1:%d" % px.port, timeout_ms=2000)
    try:
        key = unique_name("lost")
        assert r("ping") == "PONG"
        px.armed.set()
        ans = r("incr %s" % key)
        assert px.dropped == 1
        assert ans.startswith("ERR"), "the lost reply was answered: %r" % ans
        assert rd.client().get(key) == b"1", "INCR ran %r times" % rd.client().get(key)
        assert r("incr %s" % key) == "2"   # the next call reconnects
    finally:
        r.close()
        px.px.close()


def test_redis_auth(st):
    pw = "p@ss:w0rd%/x"
    rd = st.start_redis(password=pw)
    enc = urllib.parse.quote(pw, safe="")
    r = RedisRepl("redis://:%s@127.0.0.1:%d/3" % (enc, rd.port))
    try:
        assert r("ping") == "PONG"
        key = unique_name("db3")
        assert r("set %s %s" % (key, hx(b"x"))) == "OK"
        import redis
        assert redis.Redis(port=rd.port, password=pw, db=3).get(key) == b"x"
        assert redis.Redis(port=rd.port, password=pw, db=0).get(key) is None
    finally:
        r.close()
    bad = RedisRepl("redis://:wrongSecret99@127.0.0.1:%d/0" % rd.port)
    try:
        ans = bad("ping")
        assert ans.startswith("ERR") and "AUTH" in ans, ans
        assert "wrongSecret99" not in ans
    finally:
        bad.close()
    for url in ("redis://:hunter2pw@127.0.0.1:notaport/0", "http://x:6379",
                "redis://:hunter2pw@/0", "redis://:hun%zzter2pw@h:1"):
        out = subprocess.run([bin_path("test_redis_io"), url, "100"], text=True,
                             capture_output=True, input="")
        assert out.returncode == 2 and out.stdout.startswith("BADURL"), (url, out)
        assert "hunter2pw" not in out.stdout + out.stderr
        assert "hun%zzter2pw" not in out.stdout + out.stderr


# ---------------------------------------------------------------- http

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    ports = []

    def log_message(self, *a):
        pass

    def handle(self):
        try:
            super().handle()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up on purpose (timeout, body cap)

    def _send(self, status, body, ctype="text/plain", headers=()):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        Handler.ports.append(self.client_address[1])
        parts = self.path.strip("/").split("/")
        arg = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
        if parts[0] == "status":
            self._send(arg, b"status %d" % arg)
        elif parts[0] == "retry":
            self._send(429, b"slow down", headers=[("Retry-After", str(arg))])
        elif parts[0] == "retrydate":
            when = email.utils.formatdate(time.time() + 30, usegmt=True)
            self._send(503, b"busy", headers=[("Retry-After", when)])
        elif parts[0] == "big":
            self._send(200, b"x" * arg)
        elif parts[0] == "chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for _ in range(arg // 1000):
                self.wfile.write(b"3e8\r\n" + b"y" * 1000 + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
        elif parts[0] == "slow":
            time.sleep(arg / 1000.0)
            self._send(200, b"late")
        elif parts[0] == "json":
            self._send(200, b'{"ok":1}', "application/json; charset=utf-8")
        else:
            self._send(404, b"no")

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        raw = self.rfile.read(n).decode()
        form = urllib.parse.parse_qs(raw, keep_blank_values=True)
        self._send(200, json.dumps({"raw": raw, "form": form,
                                    "ctype": self.headers.get("Content-Type")}
                                   ).encode(), "application/json")


def start_http(tls=None):
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    if tls:
        import ssl
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(*tls)
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def http_io(*args, timeout=30):
    out = subprocess.run([bin_path("test_http_io")] + [str(a) for a in args],
                         capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0 and "Sanitizer" not in out.stderr, out
    lines = out.stdout.splitlines()
    res = []
    for head, detail in zip(lines[0::2], lines[1::2]):
        d = dict(kv.split("=", 1) for kv in head.split()[1:])
        d["rc"] = head.split()[0]
        d["detail"] = detail
        res.append(d)
    return res


def test_http(st):
    srv = start_http()
    base = "http://127.0.0.1:%d" % srv.server_address[1]
    # Form encoding: curl_easy_escape of every name and value.
    enc = subprocess.run([bin_path("test_http_io"), "encode", TRICKY, TRICKY,
                          "loginId", "u"], capture_output=True, text=True)
    assert enc.stdout.strip() == "a%2Bb%25c%3Dd%23e%20f%26g=a%2Bb%25c%3Dd%23e%20f%26g&loginId=u"
    # ...and the server decodes exactly what was sent.
    [r] = http_io("post", base + "/echo", "password", TRICKY, TRICKY, "x")
    assert r["rc"] == "ok" and r["status"] == "200", r
    assert r["ctype"] == "application/json"
    body = json.loads(r["detail"][len("body: "):])
    assert body["form"] == {"password": [TRICKY], TRICKY: ["x"]}, body
    assert body["ctype"] == "application/x-www-form-urlencoded"

    # Any status is a response; the caller classifies.
    r200, r404, r500 = http_io("get", base + "/status/200", base + "/status/404",
                               base + "/status/500")
    assert (r200["rc"], r200["status"], r200["detail"]) == ("ok", "200", "body: status 200")
    assert (r404["rc"], r404["status"]) == ("ok", "404")
    assert (r500["rc"], r500["status"], r500["retry_after"]) == ("ok", "500", "-1")
    # Keep-alive: three requests from one handle used one connection.
    assert len(set(Handler.ports[-3:])) == 1, Handler.ports[-3:]

    [ra, rd] = http_io("get", base + "/retry/7", base + "/retrydate")
    assert (ra["status"], ra["retry_after"]) == ("429", "7")
    assert rd["status"] == "503" and 25 <= int(rd["retry_after"]) <= 31, rd
    [rj] = http_io("get", base + "/json")
    assert rj["ctype"] == "application/json;" or rj["ctype"].startswith("application/json"), rj

    # Body cap: by Content-Length and by streamed (chunked) bytes.
    ok, big, chunked = http_io("-m", 4000, "get", base + "/big/4000",
                               base + "/big/5000", base + "/chunked/9000")
    assert ok["rc"] == "ok" and ok["len"] == "4000"
    for r in (big, chunked):
        assert r["rc"] == "retriable" and "exceeds 4000 bytes" in r["detail"], r

    # Total timeout.
    [slow] = http_io("-t", 500, "get", base + "/slow/3000")
    assert slow["rc"] == "retriable" and int(slow["ms"]) < 2000, slow
    assert "timed out" in slow["detail"].lower() or "timeout" in slow["detail"].lower(), slow

    # Nothing listening: transport error, status 0, curl's first error.
    [refused] = http_io("get", "http://127.0.0.1:%d/x?secret=1" % free_port())
    assert refused["rc"] == "retriable" and refused["status"] == "0", refused
    assert "connect" in refused["detail"].lower() and "secret" not in refused["detail"]
    # Only http and https.
    [f] = http_io("get", "file:///etc/hostname")
    assert f["rc"] == "retriable" and f["status"] == "0", f
    srv.shutdown()


def test_https_verification(st):
    cert, key = st.path("cert.pem"), st.path("key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                    "-keyout", key, "-out", cert, "-days", "1", "-subj",
                    "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    srv = start_http((cert, key))
    url = "https://127.0.0.1:%d/status/200" % srv.server_address[1]
    [untrusted] = http_io("get", url)
    assert untrusted["rc"] == "retriable", untrusted
    assert "certificate" in untrusted["detail"].lower(), untrusted
    [trusted] = http_io("-c", cert, "get", url)
    assert trusted["rc"] == "ok" and trusted["status"] == "200", trusted
    srv.shutdown()


# ---------------------------------------------------------------- kafka

def kafka_io(st, *args, env=None, timeout=60):
    e = st.service_env(dict({"LTVSYNC_KAFKA_SESSION_TIMEOUT_MS": "6000"},
                            **(env or {})))
    out = subprocess.run([bin_path("test_kafka_io")] + [str(a) for a in args],
                         env=e, capture_output=True, text=True, timeout=timeout)
    assert "Sanitizer" not in out.stderr, out.stderr
    return out


def msgs(out):
    return [l.split(" ", 4)[1:] for l in out.stdout.splitlines()
            if l.startswith("msg ")]


def test_kafka_late_reports(st):
    """A wait that gives up while the broker is slow (1.5 s round trips):
    the abandoned counter's late reports must not reach the next one, which
    says done only when its own messages are acknowledged."""
    topic = unique_name("late")
    st.broker.faults.rtt(-1, 1500)
    try:
        out = kafka_io(st, "late", topic, 50)
    finally:
        st.broker.faults.clear()
    assert out.returncode == 0, out
    m = re.search(r"first_pending=(\d+) second: rc=(\w+) pending=(-?\d+) failed=(\d+) "
                  r"in_queue=(\d+)", out.stdout)
    assert m, out.stdout
    first_pending, rc, pending, failed, in_queue = m.groups()
    assert int(first_pending) == 50, "the first wait was not abandoned: %s" % out.stdout
    assert rc == "ok" and pending == "0" and failed == "0", out.stdout
    assert in_queue == "0", "done while messages were still in flight: %s" % out.stdout
    assert len(st.consume_all(topic)) == 100


def test_kafka(st):
    topic = unique_name("io")
    c = kafka_io(st, "create", topic, 4)
    assert c.returncode == 0 and "rc=ok" in c.stdout, c
    p = kafka_io(st, "produce", topic, 500, "v")
    assert p.returncode == 0, p
    assert "delivered=500 failed=0 pending=0 rc=ok" in p.stdout, p.stdout
    got = st.consume_all(topic)
    assert sorted((m.key, m.value) for m in got) == \
        sorted((b"k%d" % i, b"v-%d" % i) for i in range(500))

    # A group consumes 200, stores and commits; a restart resumes after them.
    group = unique_name("g")
    a = kafka_io(st, "consume", topic, group, 200)
    assert "consumed=200" in a.stdout, a
    b = kafka_io(st, "consume", topic, group, 300)
    assert "consumed=300" in b.stdout, b
    va = {m[3] for m in msgs(a)}
    vb = {m[3] for m in msgs(b)}
    assert not va & vb, "re-delivered after commit: %d" % len(va & vb)
    assert va | vb == {"v-%d" % i for i in range(500)}

    ra = kafka_io(st, "readall", topic)
    assert "read=500 rc=ok" in ra.stdout, ra.stdout[-500:]
    assert sorted(m[3] for m in msgs(ra)) == sorted("v-%d" % i for i in range(500))

    # Sent by reference: what arrives is what the buffers held until the acks
    # (they are overwritten right after, so a late read would show as XXX).
    ref = unique_name("ioref")
    p = kafka_io(st, "produce-ref", ref, 300, "r")
    assert p.returncode == 0 and "delivered=300 failed=0 pending=0 rc=ok" in p.stdout, p
    got = st.consume_all(ref)
    assert sorted((m.key, m.value) for m in got) == \
        sorted((b"k%d" % i, b"r-%d" % i) for i in range(300))


def test_consumer_tuning(st):
    """lt_consumer_new_tuned: the caller's default applies, and a
    LTVSYNC_KAFKA_* setting still overrides it."""
    topic = unique_name("tuned")
    d = kafka_io(st, "tunedconf", topic)
    assert d.returncode == 0 and "queued.max.messages.kbytes=131072" in d.stdout, d
    o = kafka_io(st, "tunedconf", topic,
                 env={"LTVSYNC_KAFKA_QUEUED_MAX_MESSAGES_KBYTES": "4096"})
    assert o.returncode == 0 and "queued.max.messages.kbytes=4096" in o.stdout, o


def test_consumer_refill(st):
    """lt_consumer_refill_every: librdkafka 2.0.2 fetches again after its
    queue was full only when its broker thread wakes, up to 1 s later. With
    a queue of one message and one batch of one message per fetch (the
    devbroker answers a Fetch with one batch a partition), 20 messages cost
    about 20 such waits of 0-1 s each: 8.0 and 9.0 s without the refill
    thread, 0.10 and 0.15 s with it, waking the fetcher every 20 ms (2 runs
    each on the test build). The bound, 5 s, is over 30 times the latter."""
    topic = unique_name("refill")
    c = kafka_io(st, "create", topic, 1)
    assert c.returncode == 0, c
    from confluent_kafka import Producer
    pr = Producer({"bootstrap.servers": st.broker.bootstrap, "linger.ms": 0})
    for i in range(20):
        pr.produce(topic, value=b"m-%d" % i)
        assert pr.flush(10) == 0  # one batch a message
    out = kafka_io(st, "refill", topic, 20, 20)
    m = re.search(r"consumed=20 ms=(\d+)", out.stdout)
    assert out.returncode == 0 and m and "not started" not in out.stdout, out
    assert int(m.group(1)) < 5000, out.stdout


def test_kafka_broker_down(st):
    env = {"LTVSYNC_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:%d" % free_port(),
           "LTVSYNC_KAFKA_MESSAGE_TIMEOUT_MS": "1500"}
    t0 = time.monotonic()
    p = kafka_io(st, "produce", unique_name("down"), 20, "v", env=env)
    assert p.returncode == 1, p
    assert "delivered=0 failed=20 pending=0 rc=retriable first_err=_MSG_TIMED_OUT" \
        in p.stdout, p.stdout
    assert time.monotonic() - t0 < 15
    # librdkafka's own lines come through lt_log's format.
    assert re.search(r"^\S+Z (WARN|ERROR|INFO) kafka-io: kafka rdkafka#producer-\d+: ",
                     p.stdout, re.M), p.stdout


def main():
    with Stack("common-io") as st:
        rd = st.start_redis()
        test_redis_basic(st, rd)
        test_redis_reconnect(st, rd)
        test_redis_timeout_not_resent(st, rd)
        test_redis_lost_reply_not_resent(st, rd)
        test_redis_auth(st)
        test_http(st)
        test_https_verification(st)
        st.start_devbroker(partitions=4)
        test_kafka(st)
        test_kafka_late_reports(st)
        test_consumer_tuning(st)
        test_consumer_refill(st)
        test_kafka_broker_down(st)
    print("ok")


if __name__ == "__main__":
    main()
