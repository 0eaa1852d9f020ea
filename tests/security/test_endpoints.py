"""Slow clients do not take /healthz down (issue 12, "Endpoints and
transport"). One real service (ltvsync-sink, with a real redis-server and
the dev broker) runs with LTVSYNC_HTTP_BIND=127.0.0.1, HTTP_TIMEOUT=2s and
the default HTTP_MAX_CONNECTIONS (64):

  - a bad HTTP_BIND is refused at start-up, naming the setting;
  - the port listens on 127.0.0.1 only: /proc/net/tcp shows it, and
    127.0.0.2 and the machine's other addresses are refused;
  - 1,000 slow connections, each sending a partial request line and then
    nothing (reopened as soon as the service drops one), are held while
    /healthz is asked 30 times: every answer is 200 within HEALTHZ_BOUND;
  - once the attacker stops reopening, every slow connection it still
    holds, and clients trickling a byte every 300 ms (which an idle
    timeout never closes), are closed by the service within the 2 s
    deadline plus DEADLINE_SLACK; a client sending one request in two
    halves 500 ms apart is still answered.

Before the change (MHD's select() thread, a 10 s idle timeout, 0.0.0.0)
HTTP_BIND was ignored, the slow connections lived 10 s, the tricklers were
never closed and each dropped connection logged a line (7 checks failed).
/healthz itself still answered at 1,000, just under select()'s limit:
with 1,100 held, 0 of 30 probes were answered (past descriptor 1023 MHD
closed every new connection).
"""
import os
import resource
import selectors
import socket
import subprocess
import sys
import threading
import time

import ltharness as h

SLOW = 1000
DEADLINE_S = 2.0
# Measured (2 cores, ASan build, the attacker reopening ~10,000 connections
# a second, alone or beside the unit suite): median 1-18 ms, worst of 30
# probes 40-410 ms, the probe waiting in the accept queue behind the
# attacker's connections. The bound,
# about 3x the worst, is also Kubernetes' default probe timeout.
HEALTHZ_BOUND = 1.0
DEADLINE_SLACK = 1.0   # the server's 100 ms tick, the test's polling, a busy machine
PARTIAL = b"GET /heal"

from ltcheck import check, failures  # noqa: E402


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = SLOW + 200
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft < want:
        raise h.HarnessError("RLIMIT_NOFILE %d: %d sockets need %d" % (soft, SLOW, want))


def get_healthz(port, timeout=5.0):
    """(status or None, seconds) of one GET /healthz on a new connection."""
    t0 = time.monotonic()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = b""
            while b"\r\n" not in data:
                chunk = s.recv(256)
                if not chunk:
                    break
                data += chunk
        status = int(data.split(b" ")[1]) if data.startswith(b"HTTP/1.") else None
    except (OSError, ValueError, IndexError):
        status = None
    return status, time.monotonic() - t0


class Attacker(threading.Thread):
    """Holds SLOW connections that each sent PARTIAL, reopening any the
    server closes while `reopen` is set. opened[sock] = time of connect."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port = port
        self.sel = selectors.DefaultSelector()
        self.opened = {}
        self.reopen = threading.Event()
        self.reopen.set()
        self.done = threading.Event()
        self.closed_by_server = 0
        self.connect_errors = 0
        self.total_opened = 0
        self.lock = threading.Lock()

    def open_one(self):
        s = socket.socket()
        s.settimeout(2.0)
        try:
            s.connect(("127.0.0.1", self.port))
            s.sendall(PARTIAL)
        except OSError:
            s.close()
            self.connect_errors += 1
            return
        s.setblocking(False)
        with self.lock:
            self.opened[s] = time.monotonic()
        self.total_opened += 1
        self.sel.register(s, selectors.EVENT_READ)

    def run(self):
        while not self.done.is_set():
            self.drain(0 if self.reopen.is_set() and len(self.opened) < SLOW else 0.05)
            n = 0
            while (self.reopen.is_set() and len(self.opened) < SLOW and n < 100
                   and not self.done.is_set()):
                self.open_one()
                n += 1

    def drain(self, timeout):
        for key, _ in self.sel.select(timeout):
            s = key.fileobj
            try:
                data = s.recv(4096)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if data:
                continue   # e.g. a 408/400 reply: EOF follows
            self.sel.unregister(s)
            with self.lock:
                self.opened.pop(s, None)
            s.close()
            self.closed_by_server += 1

    def stop(self):
        self.done.set()
        self.join()   # then no thread uses the sockets
        for s in list(self.opened):
            s.close()


def wait_closed(sock, limit):
    """Seconds until the server closes sock (None if still open at limit)."""
    t0 = time.monotonic()
    sock.settimeout(0.05)
    while time.monotonic() - t0 < limit:
        try:
            if sock.recv(4096) == b"":
                return time.monotonic() - t0
        except socket.timeout:
            continue
        except OSError:
            return time.monotonic() - t0
    return None


def local_listeners(port):
    """Local addresses listening on TCP `port`, from /proc/net/tcp{,6}."""
    out = []
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = open(path).read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            addr, p = f[1].split(":")
            if int(p, 16) == port and f[3] == "0A":
                out.append(addr)
    return out


def other_addresses():
    """Local IPv4 addresses that are not 127.0.0.1: 127.0.0.2 (all of
    127/8 is local on Linux) and the address of the default route, if any."""
    addrs = ["127.0.0.2"]
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.connect(("192.0.2.123", 9))   # no packet is sent
            a = u.getsockname()[0]
            if not a.startswith("127."):
                addrs.append(a)
    except OSError:
        pass
    return addrs


def check_bad_bind():
    env = dict(os.environ, LTVSYNC_HTTP_BIND="localhost")
    r = subprocess.run([h.bin_path("ltvsync-sink"), "--print-config"], env=env,
                       capture_output=True, text=True, timeout=30)
    check(r.returncode == 1 and "LTVSYNC_HTTP_BIND" in r.stderr,
          "HTTP_BIND=localhost is refused naming the setting (rc %d, %r)"
          % (r.returncode, r.stderr.strip()[:200]))


def check_bind(port):
    listeners = local_listeners(port)
    print("listening on port %d: %s" % (port, listeners))
    check(listeners == ["0100007F"], "only 127.0.0.1:%d listens (got %s)" % (port, listeners))
    for a in other_addresses():
        try:
            with socket.create_connection((a, port), timeout=2):
                reached = True
        except OSError:
            reached = False
        print("connect %s:%d: %s" % (a, port, "reached" if reached else "refused"))
        check(not reached, "%s:%d is not reachable with HTTP_BIND=127.0.0.1" % (a, port))


def check_under_attack(port):
    base = [get_healthz(port) for _ in range(5)]
    print("/healthz idle: %s" % ", ".join("%d %.1f ms" % (s or 0, t * 1000) for s, t in base))
    att = Attacker(port)
    t0 = time.monotonic()
    att.start()
    # The service ends the oldest as new ones come, so "1,000 opened" is
    # the mark: never 1,000 open at once past the cap.
    h.wait_until(lambda: att.total_opened >= SLOW or not att.is_alive(), 60,
                 "%d slow connections" % SLOW)
    print("%d slow connections opened after %.1f s (%d ended by the service so far)"
          % (att.total_opened, time.monotonic() - t0, att.closed_by_server))
    results = []
    for _ in range(30):
        results.append(get_healthz(port))
        time.sleep(0.05)
    lat = sorted(t for _, t in results)
    ok = sum(1 for s, _ in results if s == 200)
    print("/healthz while %d slow connections were kept open (reopened as the service "
          "ended them: %d so far): %d/30 answered 200; median %.1f ms, max %.1f ms (bound %.0f ms)"
          % (SLOW, att.closed_by_server, ok, lat[len(lat) // 2] * 1000, lat[-1] * 1000,
             HEALTHZ_BOUND * 1000))
    check(ok == 30, "/healthz answered 200 under attack (%d/30)" % ok)
    check(lat[-1] <= HEALTHZ_BOUND, "/healthz answered within %.0f ms under attack (max %.1f ms)"
          % (HEALTHZ_BOUND * 1000, lat[-1] * 1000))
    return att


def check_deadline(port, att):
    att.reopen.clear()
    time.sleep(0.1)   # lets the attacker loop see it
    with att.lock:
        held = dict(att.opened)
    trick = []
    for _ in range(5):
        s = socket.create_connection(("127.0.0.1", port), timeout=2)
        s.setblocking(False)
        trick.append([s, time.monotonic(), None])
    limit = DEADLINE_S + DEADLINE_SLACK
    end = time.monotonic() + limit + 1.0
    sent = 0
    while time.monotonic() < end and (any(t[2] is None for t in trick) or att.opened):
        for t in trick:
            if t[2] is not None:
                continue
            try:
                if t[0].recv(4096) == b"":
                    t[2] = time.monotonic() - t[1]
                    continue
            except BlockingIOError:
                pass
            except OSError:
                t[2] = time.monotonic() - t[1]
                continue
            try:
                t[0].send(b"GET /healthz HTTP/1.1\r\n"[sent % 23:sent % 23 + 1])
            except OSError:
                t[2] = time.monotonic() - t[1]
        sent += 1
        time.sleep(0.3)
    now = time.monotonic()
    with att.lock:
        still = [s for s in held if s in att.opened]
        lived = [now - held[s] for s in still]
    oldest = max(lived) if lived else 0.0
    print("of %d slow connections held at the stop, %d still open %.1f s later"
          % (len(held), len(still), limit + 1.0))
    check(not still, "every slow connection is closed within %.1f s (%d still open, "
          "oldest %.1f s)" % (limit, len(still), oldest))
    times = [t[2] for t in trick]
    print("tricklers (a byte every 300 ms) closed after: %s"
          % ", ".join("never" if x is None else "%.2f s" % x for x in times))
    check(all(x is not None and x <= limit for x in times),
          "tricklers are closed within the %.0f s deadline + %.1f s" % (DEADLINE_S, DEADLINE_SLACK))
    for t in trick:
        t[0].close()


def check_slow_but_legal(port):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\n")
        time.sleep(0.5)
        s.sendall(b"Host: x\r\nConnection: close\r\n\r\n")
        data = s.recv(256)
    check(data.startswith(b"HTTP/1.1 200"), "a request sent in two halves 500 ms apart "
          "is answered (%r)" % data[:40])


def main():
    raise_nofile()
    # A probe sends its request right after connect, as the kubelet does;
    # here it shares the GIL with the attacker thread, and a request held
    # back 5 ms (the default switch interval) behind 64 new slow
    # connections gets its connection ended as the oldest.
    sys.setswitchinterval(0.0005)
    with h.Stack("endpoints") as st:
        st.start_redis()
        st.start_devbroker()
        check_bad_bind()
        p = st.start_service("ltvsync-sink", env={"LTVSYNC_HTTP_BIND": "127.0.0.1",
                                                  "LTVSYNC_HTTP_TIMEOUT": "2s"})
        st.wait_ready(p, 30)
        port = p.http_port
        check_bind(port)
        att = check_under_attack(port)
        try:
            check_deadline(port, att)
        finally:
            att.stop()
        check_slow_but_legal(port)
        p.check_alive()
        warns = p.log_lines("httpd")
        print("service log lines naming httpd: %d" % len(warns))
        check(len(warns) <= 20, "the attack does not flood the log (%d httpd lines)" % len(warns))
        assert st.stop(p) == 0, p.log()
    if failures:
        print("%d check(s) failed" % len(failures))
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
