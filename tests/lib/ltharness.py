"""ltharness: the shared harness of ltvsync's integration and fault tests.

Every test starts its real dependencies (redis-server, ltvsync-devbroker,
crm-sim) and the ltvsync binaries as separate processes on random loopback
ports, inside a Stack:

    with Stack() as st:
        st.start_redis()
        st.start_devbroker(partitions=4)
        sim = st.start_crmsim(customers=20)
        svc = st.start_service("ltvsync-fetcher")
        wait_until(lambda: ..., 20, "rows on ltvsync.raw")

A Stack owns a temp dir (process logs land there as NAME.N.log) and kills
everything it started on exit, on exceptions, at interpreter exit and on
SIGTERM/SIGINT; children also get SIGTERM if the test process dies (Linux
parent-death signal). On a failing test the tail of every log is printed.
Binaries come from $LTVSYNC_BIN_DIR. Run under Debian's /usr/bin/python3
(python3-confluent-kafka, python3-redis).
"""

import atexit
import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
import weakref
from collections import namedtuple

BIN_DIR = os.environ.get("LTVSYNC_BIN_DIR", "")
SRC_DIR = os.environ.get(
    "LTVSYNC_SRC_DIR",
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

# Sanitizer reports that make a Stack fail on close.
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                   "runtime error:")

# What the services use; Stack.close stops these after everything else.
INFRA = ("redis", "devbroker", "crm-sim")

# ts: the record's timestamp in ms (the producer's CreateTime), or None.
Msg = namedtuple("Msg", "topic partition offset key value ts", defaults=(None,))


class HarnessError(AssertionError):
    """A dependency failed to start, a wait timed out, a process crashed."""


# free_port() hands out ports below the kernel's ephemeral range, so no
# outgoing connection and no bind(0) (crm-sim, the dev broker) can take one
# between the pick and the service's bind; a lock file per port keeps two
# test processes running at once (ctest -j2) from picking the same one.
# (Picking with bind(0) and closing raced both: a fetcher once found its
# HTTP port taken, "Address already in use".)
_PORT_DIR = os.path.join(tempfile.gettempdir(), "ltvsync-test-ports")
_my_ports = []


def _ephemeral_low():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _holder_alive(path):
    try:
        with open(path) as f:
            pid = int(f.read().strip() or 0)
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except (OSError, ValueError):
        return True   # unreadable or not ours to signal: leave it


def _release_ports():
    for path in _my_ports:
        try:
            os.unlink(path)
        except OSError:
            pass


atexit.register(_release_ports)


def free_port():
    """A TCP port free on every address, reserved for this test process
    (see _PORT_DIR above)."""
    import random
    os.makedirs(_PORT_DIR, exist_ok=True)
    hi = min(_ephemeral_low(), 65536) - 1
    lo = max(1024, hi - 12000)
    rng = random.SystemRandom()
    for _ in range(500):
        port = rng.randint(lo, hi)
        path = os.path.join(_PORT_DIR, str(port))
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            if not _holder_alive(path):
                try:
                    os.unlink(path)
                except OSError:
                    pass
            continue
        with os.fdopen(fd, "w") as f:
            f.write(str(os.getpid()))
        _my_ports.append(path)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("0.0.0.0", port))
            except OSError:
                continue   # taken by something else: keep the lock, pick again
        return port
    raise HarnessError("no free TCP port below %d after 500 picks" % (hi + 1))


def unique_name(prefix="t"):
    """A name no other test run uses: topics, groups, key prefixes."""
    return "%s-%d-%s" % (prefix, os.getpid(), uuid.uuid4().hex[:10])


def wait_until(pred, timeout=10.0, what="condition", interval=0.05):
    """Polls pred() until it returns a truthy value, which is returned.
    Raises HarnessError naming `what` (and pred's last exception) on timeout."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while True:
        try:
            v = pred()
            if v:
                return v
        except Exception as e:  # a dependency not up yet
            last_exc = e
        if time.monotonic() >= deadline:
            extra = " (last error: %r)" % (last_exc,) if last_exc else ""
            raise HarnessError("timed out after %.1fs waiting for %s%s"
                               % (timeout, what, extra))
        time.sleep(interval)


def bin_path(name):
    """Path of a built binary; fails clearly when LTVSYNC_BIN_DIR is wrong."""
    if not BIN_DIR:
        raise HarnessError("LTVSYNC_BIN_DIR is not set (run through ctest)")
    p = os.path.join(BIN_DIR, name)
    if not os.access(p, os.X_OK):
        raise HarnessError("binary %s not found in %s" % (name, BIN_DIR))
    return p


def metric(proc, name):
    """The value of a service's metric name (its first sample, labels or
    not) from its /metrics, as an int; 0 when absent."""
    code, body = proc.http("/metrics")
    assert code == 200, "%s /metrics: %s" % (proc.name, code)
    for line in body.decode().splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return int(float(line.rsplit(" ", 1)[1]))
    return 0


def http_get(url, timeout=5.0):
    """(status, body bytes) of a GET; HTTP errors are returned, not raised."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


_PR_SET_PDEATHSIG = 1


def _child_setup():
    """In the child before exec: own process group, SIGTERM if we die."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(
            _PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


class Proc:
    """A process started by a Stack. Extra attributes are set by the
    start_* helpers (port, url, bootstrap, http_port ...)."""

    def __init__(self, name, argv, env, log_path, cwd):
        self.name, self.argv, self.env = name, argv, env
        self.log_path, self.cwd = log_path, cwd
        self.popen = None

    def _spawn(self):
        with open(self.log_path, "ab") as log:
            self.popen = subprocess.Popen(
                self.argv, env=self.env, cwd=self.cwd, stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT, preexec_fn=_child_setup,
                start_new_session=True)

    @property
    def pid(self):
        return self.popen.pid

    @property
    def returncode(self):
        return self.popen.poll()

    def alive(self):
        return self.popen is not None and self.popen.poll() is None

    def log(self):
        """The process's output so far (stdout and stderr), as text."""
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def log_lines(self, contains=None):
        lines = self.log().splitlines()
        return [l for l in lines if contains is None or contains in l]

    def check_alive(self):
        if not self.alive():
            raise HarnessError("%s exited with %s; log tail:\n%s" % (
                self.name, self.returncode, _tail(self.log())))


def _tail(text, n=40):
    return "\n".join(text.splitlines()[-n:])


_live_stacks = weakref.WeakSet()


def _close_all():
    for st in list(_live_stacks):
        st.close(check=False)


def _on_signal(signum, frame):
    _close_all()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


atexit.register(_close_all)
for _sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
    try:
        signal.signal(_sig, _on_signal)
    except ValueError:  # not the main thread
        pass


class Stack:
    """A temp dir and every process a test starts; a context manager."""

    def __init__(self, name="ltvsync", keep=False):
        self.tmp = tempfile.mkdtemp(prefix="%s-" % name)
        self.keep = keep or bool(os.environ.get("LTVSYNC_KEEP_TMP"))
        self.procs = []
        self.prefix = unique_name("t") + ":"   # LTVSYNC_REDIS_PREFIX
        self.redis = None
        self.broker = None
        self.crmsim = None
        self._n = 0
        self._closed = False
        self._readers = {}   # bootstrap -> Consumer, for consume_all
        self._readers_lock = threading.Lock()
        self._consume_lock = threading.Lock()
        _live_stacks.add(self)

    def __enter__(self):
        return self

    def __exit__(self, etype, exc, tb):
        if etype is not None:
            self.dump_logs()
        self.close(check=etype is None)
        return False

    def path(self, name):
        return os.path.join(self.tmp, name)

    # -- processes -----------------------------------------------------

    def start(self, name, argv, env=None, cwd=None):
        """Starts argv with its output in TMP/NAME.N.log. env is the whole
        environment (default: this process's)."""
        self._n += 1
        log = self.path("%s.%d.log" % (os.path.basename(name), self._n))
        p = Proc(name, [str(a) for a in argv],
                 dict(os.environ if env is None else env), log, cwd or self.tmp)
        p._spawn()
        self.procs.append(p)
        return p

    def restart(self, proc):
        """Starts a stopped process again, same argv, env and log file."""
        if proc.alive():
            raise HarnessError("%s is still running" % proc.name)
        proc._spawn()
        return proc

    def kill_restart(self, proc):
        """kill -9 of proc, then started again at once; returns (killed,
        restarted), wall-clock seconds (comparable to a record's CreateTime)."""
        proc.popen.send_signal(signal.SIGKILL)
        proc.popen.wait(10)
        killed = time.time()
        self.restart(proc)
        return killed, time.time()

    def stop(self, proc, sig=signal.SIGTERM, timeout=15.0):
        """Sends sig and waits; SIGKILL after timeout. Returns the exit code
        (negative for a signal, as subprocess does)."""
        if proc.popen is None:
            return None
        if proc.alive():
            try:
                proc.popen.send_signal(sig)
            except ProcessLookupError:
                pass
        try:
            return proc.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.popen.kill()
            proc.popen.wait()
            raise HarnessError("%s did not exit within %.0fs of signal %d"
                               % (proc.name, timeout, sig))

    def close(self, check=True):
        """Kills everything; removes the temp dir. With check, raises if a
        sanitizer reported an error in any log."""
        if self._closed:
            return
        self._closed = True
        self._close_readers()
        # The services first, all at once (each drains and, under ASan,
        # checks for leaks on exit: one after another that took about 2 s a
        # stack), then what they were using.
        infra = [p for p in self.procs if p.name in INFRA or p.name.startswith("redis")]
        for group in ([p for p in self.procs if p not in infra], infra):
            for p in group:
                if p.alive():
                    try:
                        p.popen.send_signal(signal.SIGTERM)
                    except ProcessLookupError:
                        pass
            for p in group:
                try:
                    self.stop(p, signal.SIGTERM, 10)
                except HarnessError:
                    pass
        bad = [p for p in self.procs
               if any(m in p.log() for m in SANITIZER_MARKS)]
        if bad and check:
            self.dump_logs(bad)
        if not self.keep:
            shutil.rmtree(self.tmp, ignore_errors=True)
        _live_stacks.discard(self)
        if bad and check:
            raise HarnessError("sanitizer errors in: %s"
                               % ", ".join(p.name for p in bad))

    def dump_logs(self, procs=None, n=40):
        for p in procs or self.procs:
            sys.stderr.write("---- %s (pid %s, exit %s) %s\n%s\n" % (
                p.name, p.popen.pid if p.popen else "-",
                p.returncode if p.popen else "-", p.log_path, _tail(p.log(), n)))

    # -- dependencies --------------------------------------------------

    def start_redis(self, password=None, port=None, appendonly=False):
        """redis-server on 127.0.0.1 without persistence, or with appendonly
        an AOF fsynced on every write in the stack's temp dir, so that
        st.restart(proc) (same argv) comes back with every acknowledged
        write. Returns the Proc with .port, .url (with the password) and
        .client()."""
        import redis
        port = port or free_port()
        argv = ["redis-server", "--port", port, "--bind", "127.0.0.1",
                "--save", "", "--dir", self.tmp]
        argv += ["--appendonly", "yes", "--appendfsync", "always",
                 "--appenddirname", "redis-aof-%d" % port] if appendonly else \
            ["--appendonly", "no"]
        if password:
            argv += ["--requirepass", password]
        p = self.start("redis", argv)
        p.port, p.password = port, password
        p.url = "redis://%s127.0.0.1:%d/0" % (
            ":%s@" % password if password else "", port)
        p.client = lambda: redis.Redis(host="127.0.0.1", port=port,
                                       password=password, socket_timeout=5)
        self.wait_redis(p)
        if self.redis is None:
            self.redis = p
        return p

    def start_redis_cluster(self, masters=3, replicas=1, password=None, **kw):
        """A Redis Cluster of masters x (1 + replicas) redis-server nodes
        (tests/lib/rcluster.py). It becomes the stack's Redis when none was
        started, so services get its seed list as LTVSYNC_REDIS_URL."""
        from rcluster import RedisCluster
        c = RedisCluster(self, masters, replicas, password, **kw)
        if self.redis is None:
            self.redis = c
        return c

    def wait_redis(self, p, timeout=10.0):
        def up():
            p.check_alive()
            return p.client().ping()
        wait_until(up, timeout, "redis-server on port %d" % p.port)

    def start_devbroker(self, partitions=4, brokers=1, env=None, timeout=20.0):
        """ltvsync-devbroker; waits for its bootstrap file. Returns the Proc
        with .bootstrap, .status_file, .status() (the parsed JSON) and
        .faults, a kafkafault.KafkaFaults on its control port (brokers are
        1..brokers)."""
        from kafkafault import KafkaFaults
        name = unique_name("devbroker")
        bfile, sfile = self.path(name + ".bootstrap"), self.path(name + ".status")
        cfile = self.path(name + ".control")
        e = dict(os.environ)
        e.update(env or {})
        p = self.start("devbroker", [bin_path("ltvsync-devbroker"),
                                     "--brokers", brokers,
                                     "--partitions", partitions,
                                     "--bootstrap-file", bfile,
                                     "--status-file", sfile,
                                     "--control-port-file", cfile], env=e)

        def ready():
            p.check_alive()
            with open(bfile) as f:
                return f.read().strip()
        p.bootstrap = wait_until(ready, timeout, "devbroker bootstrap file")
        p.status_file = sfile
        p.status = lambda: json.load(open(sfile))
        # The control port file is written before the bootstrap file.
        p.control_file = cfile
        p.faults = KafkaFaults.from_port_file(cfile)
        if self.broker is None:
            self.broker = p
        return p

    def start_crmsim(self, args=None, timeout=20.0, **kw):
        """crm-sim on a free port; waits for its port file. Keyword options
        become flags (latency_ms=5 -> --latency-ms 5) over the defaults below;
        `args` are extra raw arguments. Returns the Proc with .port, .url,
        .login_id, .password."""
        opts = {"seed": 1, "customers": 20, "start": "2024-01-01", "days": 3,
                "timezone": "America/New_York", "currency": "USD",
                "login_id": "api-user", "password": "s3cret+pw%=# x"}
        opts.update(kw)
        pfile = self.path(unique_name("crmsim") + ".port")
        argv = [bin_path("crm-sim"), "--port", 0, "--port-file", pfile]
        for k, v in opts.items():
            if v is not None:
                argv += ["--" + k.replace("_", "-"), v]
        p = self.start("crm-sim", argv + list(args or []))

        def ready():
            p.check_alive()
            with open(pfile) as f:
                txt = f.read().strip()
            return int(txt) if txt else 0
        p.port = wait_until(ready, timeout, "crm-sim port file")
        p.url = "http://127.0.0.1:%d" % p.port
        p.login_id, p.password = opts["login_id"], opts["password"]
        if self.crmsim is None:
            self.crmsim = p
        return p

    # -- ltvsync services ----------------------------------------------

    def service_env(self, env=None):
        """The environment of an ltvsync binary: brokers and Redis of this
        stack, a free HTTP port, this stack's Redis key prefix, the
        credential policy of a test stack (password files in its temp dir,
        crm-sim over http on loopback); env on top."""
        e = dict(os.environ)
        e["LTVSYNC_CRM_CREDENTIALS_DIR"] = self.tmp
        e["LTVSYNC_CRM_ALLOW_INSECURE"] = "1"
        if self.broker:
            e["LTVSYNC_KAFKA_BOOTSTRAP_SERVERS"] = self.broker.bootstrap
        if self.redis:
            e["LTVSYNC_REDIS_URL"] = self.redis.url
        e["LTVSYNC_REDIS_PREFIX"] = self.prefix
        e["LTVSYNC_HTTP_PORT"] = str(free_port())
        e.update({k: str(v) for k, v in (env or {}).items()})
        return e

    def start_service(self, name, env=None, args=()):
        """Starts an ltvsync binary (e.g. "ltvsync-fetcher"). Returns the Proc
        with .http_port and .http(path) -> (status, body)."""
        e = self.service_env(env)
        p = self.start(name, [bin_path(name)] + list(args), env=e)
        p.http_port = int(e["LTVSYNC_HTTP_PORT"])
        p.http = lambda path: http_get("http://127.0.0.1:%d%s" % (p.http_port, path))
        return p

    def wait_ready(self, proc, timeout=20.0):
        """Waits for /readyz 200 on a service started by start_service."""
        def ready():
            proc.check_alive()
            return proc.http("/readyz")[0] == 200
        wait_until(ready, timeout, "%s /readyz" % proc.name)

    def run(self, name, args=(), env=None, timeout=60.0, input=None):
        """Runs an ltvsync binary (ltvctl ...) to completion with the stack's
        environment: CompletedProcess with text stdout/stderr."""
        return subprocess.run([bin_path(name)] + [str(a) for a in args],
                              env=self.service_env(env), cwd=self.tmp,
                              input=input, capture_output=True, text=True,
                              timeout=timeout)

    # -- Kafka ---------------------------------------------------------

    def _bootstrap(self, bootstrap):
        b = bootstrap or (self.broker.bootstrap if self.broker else None)
        if not b:
            raise HarnessError("no devbroker started")
        return b

    def produce(self, topic, items, bootstrap=None, partition=None, timeout=30):
        """Produces items (values, or (key, value) pairs; str or bytes) and
        waits for every acknowledgement. Returns the count."""
        from confluent_kafka import Producer
        pr = Producer({"bootstrap.servers": self._bootstrap(bootstrap),
                       "enable.idempotence": True, "linger.ms": 5})
        errors = []

        def dr(err, msg):
            if err:
                errors.append(err)
        n = 0
        for it in items:
            key, value = it if isinstance(it, tuple) else (None, it)
            kw = {"key": key, "value": value, "on_delivery": dr}
            if partition is not None:
                kw["partition"] = partition
            while True:
                try:
                    pr.produce(topic, **kw)
                    break
                except BufferError:
                    pr.poll(0.1)
            n += 1
        left = pr.flush(timeout)
        if left or errors:
            raise HarnessError("produce to %s: %d undelivered, errors %s"
                               % (topic, left, errors[:3]))
        return n

    def _reader(self, bootstrap):
        """One long-lived consumer per bootstrap for consume_all, closed with
        the stack. A fresh one per call (tests poll downstream every half
        second) hit librdkafka's destroy race: "rd_kafka_broker_destroy_final:
        Assertion thrd_is_current(rkb->rkb_thread) failed" aborted a fault
        test's own process while coordinators moved (librdkafka #3608, short
        lived clients)."""
        from confluent_kafka import Consumer
        b = self._bootstrap(bootstrap)
        with self._readers_lock:
            c = self._readers.get(b)
            if c is None:
                # Short broker waits: an idle fetch of the last call's
                # assignment would hold the next call's first fetch for
                # fetch.wait.max.ms (500 ms by default).
                c = self._readers[b] = Consumer({
                    "bootstrap.servers": b, "group.id": unique_name("harness"),
                    "enable.auto.commit": False, "enable.partition.eof": False,
                    "fetch.wait.max.ms": 10, "fetch.error.backoff.ms": 10})
            return c

    def _close_readers(self):
        with self._readers_lock:
            readers, self._readers = list(self._readers.values()), {}
        for c in readers:
            try:
                c.close()
            except Exception:  # noqa: BLE001 - closing is best effort
                pass

    @staticmethod
    def _watermarks(c, topic, md=None):
        """{partition: (low, high)} of topic; md, when given, is the broker's
        metadata already listed (one request for every topic)."""
        from confluent_kafka import TopicPartition
        if md is None:
            md = c.list_topics(topic, timeout=10)
        t = md.topics.get(topic)
        if t is None or t.error is not None:
            return {}
        return {pid: c.get_watermark_offsets(TopicPartition(topic, pid), timeout=10)
                for pid in t.partitions}

    def watermarks(self, topic=None, bootstrap=None):
        """{topic: {partition: (low, high)}} of topic, or of every topic on the
        broker but its internal ones when topic is None; {} for a topic the
        broker does not know. An evicted partition's low watermark is above 0."""
        c = self._reader(bootstrap)
        with self._consume_lock:
            if topic is not None:
                w = self._watermarks(c, topic)
                return {topic: w} if w else {}
            md = c.list_topics(timeout=10)
            out = {}
            for name in sorted(md.topics):
                if not name.startswith("__"):
                    w = self._watermarks(c, name, md)
                    if w:
                        out[name] = w
            return out

    def consume_all(self, topic, bootstrap=None, timeout=30.0):
        """Every message of topic from offset 0 up to each partition's end at
        the call, as Msg(topic, partition, offset, key, value, ts) (bytes), sorted
        by partition and offset (each offset once: the reader is reused, so a
        message fetched for an earlier call is never counted twice)."""
        from confluent_kafka import TopicPartition, OFFSET_BEGINNING
        c = self._reader(bootstrap)
        with self._consume_lock:
            ends = {pid: hi for pid, (lo, hi) in
                    self._watermarks(c, topic).items() if hi > lo}
            c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in ends])
            try:
                out, deadline = {}, time.monotonic() + timeout
                while ends:
                    if time.monotonic() > deadline:
                        raise HarnessError("consume_all %s: timed out, %d partitions "
                                           "unfinished" % (topic, len(ends)))
                    m = c.poll(0.2)
                    if m is None:
                        continue
                    if m.error():
                        raise HarnessError("consume_all %s: %s" % (topic, m.error()))
                    if m.topic() != topic:
                        continue   # left from an earlier call's assignment
                    p = m.partition()
                    if p in ends and m.offset() < ends[p]:
                        tstype, ts = m.timestamp()
                        out[(p, m.offset())] = Msg(topic, p, m.offset(), m.key(), m.value(),
                                                   ts if tstype else None)
                    if p in ends and m.offset() + 1 >= ends[p]:
                        del ends[p]
                return [out[k] for k in sorted(out)]
            finally:
                c.unassign()

    def consume_json(self, topic, **kw):
        """consume_all with each value parsed as JSON (None for tombstones)."""
        return [json.loads(m.value) if m.value is not None else None
                for m in self.consume_all(topic, **kw)]
