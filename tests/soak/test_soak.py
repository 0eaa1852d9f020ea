"""Soak: LTVSYNC_SOAK_SECONDS (default 1800) of live sync on one crm-sim
account (tests/lib/pipeline.py: scheduler, 2 fetchers, normalizer, sink;
sync every 10 s), with live changes and periodic faults, watching memory.

- Live changes: every MUTATE_EVERY s a refund or a chargeback of a sale not
  touched before (crm-sim POST /_sim/mutate), dated now in the account's
  zone, so every live run has new work.
- Faults: every FAULT_EVERY s (LTVSYNC_SOAK_FAULT_EVERY, default 120) the
  next of these, in a seeded order that goes through all four before
  repeating: kill -9 of a random service and restart; Redis SIGSTOP 5 s; a
  crm-sim hostile mode for 30 s (latency 1.5-3 s, or retry_after 429 / 503
  on every request); the devbroker's broker down 5 s.
- Every SAMPLE_EVERY (30) s: VmRSS of every process (services, redis-server,
  devbroker, crm-sim) and Redis INFO used_memory.
- At the end (faults cleared, no more changes): the sync completes, the
  latest downstream version of every event equals the oracle (pl.expected()
  over crm-sim's final dump), and the table: per process RSS at REF_S (5 min,
  or half the run when shorter) and at the end with the growth, Redis
  used_memory, the same within each service process's life (from REF_S
  after its start or restart; sample to sample, and 5-minute means, which
  span the 60 s trim's sawtooth; in a life of an hour or more, the mean of
  each half hour), then the oracle check, duplicates, limit violations, DLQ.

Exit 1 on an oracle mismatch, a lost event, an unchanged duplicate, a
limit violation (crm-sim 429s, or its peaks over the configured limits), a
DLQ record, a crash, a devbroker eviction or a sanitizer report; memory is
measured, not judged. Label `soak`: registered only when CMake has
-DLTVSYNC_SOAK=ON (tests/CMakeLists.txt), run by bench/soak.sh.
LTVSYNC_SOAK_SEED picks another fault and change sequence.
"""
import datetime
import json
import math
import os
import random
import signal
import sys
import time
from zoneinfo import ZoneInfo

from ltharness import HarnessError, Stack, wait_until
from pipeline import Pipeline, diff, duplicates, latest

SOAK_S = float(os.environ.get("LTVSYNC_SOAK_SECONDS", "1800"))
FAULT_EVERY = float(os.environ.get("LTVSYNC_SOAK_FAULT_EVERY", "120"))
SEED = int(os.environ.get("LTVSYNC_SOAK_SEED", "20261202"))
MUTATE_EVERY = 20.0
SAMPLE_EVERY = 30.0
REF_S = min(300.0, SOAK_S / 2)
WINDOW_S = 300.0
# The dev broker keeps about 5 MiB (or 100,000 message sets) a partition
# (librdkafka's mock; it evicts the oldest records beyond that, and an
# eviction fails the soak): 4 partitions hold 30 minutes of this sync. A
# 100-minute soak with 16 (4 per 30 minutes begun) still evicted: each
# normalizer kill replays raw rows into events again, so a longer soak gets
# 8 for every 30 minutes. The soak prints each topic's fill at the end.
PARTITIONS = 4 if SOAK_S <= 1800 else 8 * int(math.ceil(SOAK_S / 1800.0))
RPS, IN_FLIGHT = 20, 4
END_BOUND_S = 45 + 180   # a pending claim of the leader's own term waits 45 s
FAULT_KINDS = ("kill", "redis_stop", "crm_hostile", "broker_down")


def status_kib(pid):
    """{field: KiB} of /proc/PID/status for VmRSS and RssAnon (the private
    part: the heap, arenas and stacks, where a leak shows; the rest of RSS
    is mostly shared-library pages); {} when the process is gone."""
    out = {}
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                key = line.split(":", 1)[0]
                if key in ("VmRSS", "RssAnon"):
                    out[key] = int(line.split()[1])
    except OSError:
        pass
    return out


def fill(st):
    """[(topic, messages, fullest partition, its messages)] of every topic on
    the dev broker but its internal ones, from the watermarks (an evicted partition's
    low watermark is above 0, so its messages are those it still holds)."""
    out = []
    for name, parts in st.watermarks().items():
        per = {pid: hi - lo for pid, (lo, hi) in parts.items()}
        top = max(per, key=per.get)
        out.append((name, sum(per.values()), top, per[top]))
    return out


def heap_rss_kib(pid):
    """Rss of the process's main heap mapping ([heap] in /proc/PID/smaps,
    where one arena puts every thread's blocks): the part of RSS that
    moves with memory freed and not yet trimmed; None when gone."""
    try:
        with open("/proc/%d/smaps" % pid) as f:
            inside = False
            for line in f:
                if line[0] in "0123456789abcdef" and "-" in line.split(" ", 1)[0]:
                    inside = line.rstrip().endswith("[heap]")
                elif inside and line.startswith("Rss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


class Soak:
    def __init__(self, st, pl, rng):
        self.st, self.pl, self.rng = st, pl, rng
        self.t0 = time.monotonic()
        self.procs = dict(pl.procs)
        self.procs.update({"redis-server": st.redis, "devbroker": pl.broker, "crm-sim": pl.sim})
        self.samples = []          # (t, {name: kib}, redis used_memory or None,
        #                            {service: heap in use, bytes},
        #                            {name: anonymous kib}, {name: pid},
        #                            {service: [heap] resident kib})
        self.born = {}             # (name, pid) -> t of a restart (0: started with the soak)
        self.restarts = {n: 0 for n in self.procs}
        self.sink_kills = []   # (killed, restarted), wall clock
        self.faults = []           # (t, description)
        self.changes = []          # (t, action, transaction id)
        self.next_sample = 0.0
        self.next_change = MUTATE_EVERY
        dump = pl.dump
        touched = {str(t.get("parentTxnId")) for t in dump["transactions"]}
        self.sales = [str(t["transactionId"]) for t in dump["transactions"]
                      if t["txnType"] in ("SALE", "CAPTURE") and t["responseType"] == "SUCCESS"
                      and str(t.get("isChargedback")) != "1"
                      and str(t["transactionId"]) not in touched]
        rng.shuffle(self.sales)

    def now(self):
        return time.monotonic() - self.t0

    def log(self, msg):
        print("%7.1fs %s" % (self.now(), msg), flush=True)

    # -- sampling ------------------------------------------------------
    def redis_used(self):
        import redis
        try:
            c = redis.Redis(host="127.0.0.1", port=self.st.redis.port, socket_timeout=1,
                            socket_connect_timeout=1)
            try:
                return int(c.info("memory")["used_memory"])
            finally:
                c.close()
        except Exception:  # frozen by a fault: no sample this time
            return None

    def heap(self, p):
        """ltvsync_process_heap_inuse_bytes from a service's /metrics
        (mallinfo2; 0 under ASan), None when it does not answer."""
        try:
            status, body = p.http("/metrics")
        except OSError:
            return None
        for line in body.decode().splitlines() if status == 200 else ():
            if line.startswith("ltvsync_process_heap_inuse_bytes "):
                return int(line.split()[1])
        return None

    def sample(self):
        status = {n: status_kib(p.pid) for n, p in self.procs.items() if p.alive()}
        rss = {n: v.get("VmRSS") for n, v in status.items()}
        anon = {n: v.get("RssAnon") for n, v in status.items()}
        used = self.redis_used()
        heap = {n: self.heap(p) for n, p in self.procs.items()
                if n.startswith("ltvsync-") and p.alive()}
        pids = {n: p.pid for n, p in self.procs.items() if n in status}
        hrss = {n: heap_rss_kib(pids[n]) for n in heap if n in pids}
        self.samples.append((self.now(), rss, used, heap, anon, pids, hrss))
        self.log("sample: %s; redis used_memory %s; heap %s" % (
            " ".join("%s=%.0fM" % (n.replace("ltvsync-", ""), v / 1024.0)
                     for n, v in sorted(rss.items()) if v), used,
            " ".join("%s=%.2fM" % (n.replace("ltvsync-", ""), v / 1048576.0)
                     for n, v in sorted(heap.items()) if v)))

    # -- live changes --------------------------------------------------
    def change(self):
        if not self.sales:
            return
        tid = self.sales.pop()
        action = "refund" if len(self.changes) % 2 == 0 else "chargeback"
        when = datetime.datetime.now(ZoneInfo(self.pl.tz)).strftime("%Y-%m-%d %H:%M:%S")
        status, res = self.pl.api.mutate(action, tid, when)
        if status != 200 or res.get("result") != "SUCCESS":
            raise HarnessError("mutate %s %s: %s %s" % (action, tid, status, res))
        self.changes.append((self.now(), action, tid))

    # -- the clock: samples and changes while waiting ------------------
    def idle(self, seconds, changes=True):
        end = time.monotonic() + seconds
        while True:
            self.pl.check_alive()
            if self.now() >= self.next_sample:
                self.sample()
                self.next_sample += SAMPLE_EVERY
            if changes and self.now() >= self.next_change:
                self.change()
                self.next_change += MUTATE_EVERY
            left = end - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(0.5, left))

    # -- faults --------------------------------------------------------
    def fault(self, kind):
        pl, st = self.pl, self.st
        if kind == "kill":
            name = self.rng.choice(sorted(pl.procs))
            self.log("fault: kill -9 %s and restart" % name)
            times = st.kill_restart(pl.procs[name])
            self.born[(name, pl.procs[name].pid)] = self.now()
            if name == "ltvsync-sink":
                self.sink_kills.append(times)
            self.restarts[name] += 1
            desc = "kill -9 " + name
        elif kind == "redis_stop":
            self.log("fault: redis SIGSTOP 5 s")
            os.kill(st.redis.pid, signal.SIGSTOP)
            try:
                self.idle(5.0)
            finally:
                os.kill(st.redis.pid, signal.SIGCONT)
            desc = "redis SIGSTOP 5 s"
        elif kind == "crm_hostile":
            mode = self.rng.choice((
                {"latency": {"min_ms": 1500, "max_ms": 3000}},
                {"retry_after": {"seconds": 2, "status": 429}},
                {"retry_after": {"seconds": 1, "status": 503}}))
            self.log("fault: crm-sim %s for 30 s" % json.dumps(mode))
            pl.api.fault(**mode)
            try:
                self.idle(30.0)
            finally:
                pl.api.clear_faults()
            desc = "crm-sim " + json.dumps(mode, sort_keys=True)
        else:
            self.log("fault: devbroker broker_down 5 s")
            pl.broker.faults.down(1)
            try:
                self.idle(5.0)
            finally:
                pl.broker.faults.up(1)
            desc = "broker_down 5 s"
        self.faults.append((self.now(), desc))

    # -- the table -----------------------------------------------------
    def table(self):
        ref = next((s for s in self.samples if s[0] >= REF_S), self.samples[-1])
        end = self.samples[-1]
        print("\nmemory (VmRSS MiB; anon: its private part, RssAnon) at %.0fs vs the end (%.0fs):"
              % (ref[0], end[0]))
        print("  %-20s %9s %9s %8s %9s  %-8s %9s %9s %8s" % (
            "process", "at ref", "end", "growth", "max", "restarts", "anon ref", "anon end",
            "growth"))

        def cols(a, b):
            g = (b - a) * 100.0 / a if a and b else None
            return ("%.1f" % (a / 1024.0) if a else "-", "%.1f" % (b / 1024.0) if b else "-",
                    "%+.1f%%" % g if g is not None else "-"), g
        rows = []
        for n in sorted(self.procs):
            a, b = ref[1].get(n), end[1].get(n)
            peak = max((s[1].get(n) or 0) for s in self.samples)
            (ta, tb, tg), g = cols(a, b)
            rows.append((n, a, b, g))
            anon, _ = cols(ref[4].get(n), end[4].get(n))
            print("  %-20s %9s %9s %8s %9.1f  %-8d %9s %9s %8s"
                  % ((n, ta, tb, tg, peak / 1024.0, self.restarts[n]) + anon))
        used = [s[2] for s in self.samples if s[2] is not None]
        ref_used = next((s[2] for s in self.samples if s[0] >= REF_S and s[2]), None)
        print("  redis used_memory: max %.2f MiB, at ref %s MiB, end %s MiB" % (
            max(used) / 1048576.0, "%.2f" % (ref_used / 1048576.0) if ref_used else "-",
            "%.2f" % (used[-1] / 1048576.0) if used else "-"))
        # The heap in use tells a leak (it grows) from allocator retention
        # (RSS grows, the heap does not): samples nearest ref and end that
        # the service answered.
        print("\nheap in use (malloc, MiB; a service's own figure) at ref vs the end:")
        for n in sorted(x for x in self.procs if x.startswith("ltvsync-")):
            hs = [(s[0], s[3].get(n)) for s in self.samples if s[3].get(n)]
            a = next((v for t, v in hs if t >= REF_S), None)
            b = hs[-1][1] if hs else None
            print("  %-20s %9s %9s %8s" % (
                n, "%.2f" % (a / 1048576.0) if a else "-", "%.2f" % (b / 1048576.0) if b else "-",
                "%+.1f%%" % ((b - a) * 100.0 / a) if a and b else "-"))
        return rows

    def lives_of(self, n):
        """[(start, its samples with an RSS)] of each process life of n, in
        order: samples record the pid, restarts when each pid was born."""
        pids = []
        for smp in self.samples:
            pid = smp[5].get(n)
            if pid and pid not in pids:
                pids.append(pid)
        out = []
        for pid in pids:
            mine = [smp for smp in self.samples if smp[5].get(n) == pid and smp[1].get(n)]
            if mine:
                out.append((self.born.get((n, pid), 0.0), mine))
        return out

    def lives(self):
        """Growth within each service process's life: a restart makes the
        table above compare two processes, so here each life is taken from
        REF_S after its start (the soak's start, or its restart) to its last
        sample; a life shorter than that has no figure. Two figures: from
        that first sample to the last, and from the mean of the samples in
        the first WINDOW_S after REF_S to the mean of those in the last
        WINDOW_S (each window half the span when the life is shorter). RSS
        is a sawtooth: memory freed between two trims (MEMORY_TRIM_INTERVAL,
        60 s) stays resident until the next, so one sample against another
        moves with where each falls; a 5-minute mean spans five trims. The
        [heap] column is that resident main heap, lowest to highest."""
        print("\nwithin one process life, from its first sample %.0f s or more into it to its "
              "last, and the mean of the first %.0f s from there to the mean of the last %.0f s "
              "(VmRSS MiB, RssAnon MiB, heap in use MiB, [heap] resident MiB):"
              % (REF_S, WINDOW_S, WINDOW_S))
        print("  %-20s %-10s %16s %8s %8s %7s %13s %12s" % (
            "process", "life (s)", "RSS", "growth", "means", "anon", "heap in use", "[heap]"))
        met = [0, 0]
        over = [0, 0]
        for n in sorted(x for x in self.procs if x.startswith("ltvsync-")):
            for born, mine in self.lives_of(n):
                span = "%.0f-%.0f" % (born, mine[-1][0])
                ref = next((smp for smp in mine if smp[0] - born >= REF_S), None)
                if ref is None or ref is mine[-1]:
                    print("  %-20s %-10s %16s" % (n, span, "(shorter)"))
                    continue
                end = mine[-1]
                a, b = ref[1][n], end[1][n]
                g = (b - a) * 100.0 / a
                i = 0 if g < 10.0 else 1
                (met if i == 0 else over)[0] += 1
                w = min(WINDOW_S, (end[0] - ref[0]) / 2.0)
                first = [smp[1][n] for smp in mine if ref[0] <= smp[0] < ref[0] + w]
                last = [smp[1][n] for smp in mine if smp[0] > end[0] - w]
                means = "-"
                if first and last and w >= 60.0:
                    ma, mb = sum(first) / len(first), sum(last) / len(last)
                    gm = (mb - ma) * 100.0 / ma
                    means = "%+.1f%%" % gm
                    (met if gm < 10.0 else over)[1] += 1
                anon = "-"
                if ref[4].get(n) and end[4].get(n):
                    anon = "%+.2f" % ((end[4][n] - ref[4][n]) / 1024.0)
                ha, hb = ref[3].get(n), end[3].get(n)
                heap = "%.2f to %.2f" % (ha / 1048576.0, hb / 1048576.0) if ha and hb else "-"
                hr = [smp[6][n] for smp in mine
                      if smp[0] >= ref[0] and len(smp) > 6 and smp[6].get(n)]
                hres = "%.1f to %.1f" % (min(hr) / 1024.0, max(hr) / 1024.0) if hr else "-"
                print("  %-20s %-10s %7.1f to %5.1f %+7.1f%% %8s %7s %13s %12s"
                      % (n, span, a / 1024.0, b / 1024.0, g, means, anon, heap, hres))
        print("  RSS growth under 10 %%: %d of %d lives sample to sample, %d of %d by the means"
              % (met[0], met[0] + over[0], met[1], met[1] + over[1]))
        self.halves()

    def halves(self):
        """In a life of an hour or more, the mean RSS of each half hour from
        REF_S on: growth that levels off (a working set, fragmentation that
        settles) from growth that keeps on (a leak)."""
        rows = []
        for n in sorted(x for x in self.procs if x.startswith("ltvsync-")):
            for born, mine in self.lives_of(n):
                if mine[-1][0] - born < REF_S + 3600:
                    continue
                cells, t = [], born + REF_S
                while t < mine[-1][0]:
                    v = [smp[1][n] for smp in mine if t <= smp[0] < t + 1800]
                    if v:
                        end = min(t + 1800, mine[-1][0])
                        cells.append("%.0f-%.0f min %.2f" % ((t - born) / 60, (end - born) / 60,
                                                             sum(v) / len(v) / 1024.0))
                    t += 1800
                rows.append("  %-20s %s" % (n, "; ".join(cells)))
        if rows:
            print("\nmean RSS (MiB) of each half hour of a life of an hour or more:")
            print("\n".join(rows))


def main():
    if SOAK_S < 60:
        raise HarnessError("LTVSYNC_SOAK_SECONDS must be at least 60")
    rng = random.Random(SEED)
    print("soak %.0f s, a fault every %.0f s, a change every %.0f s, seed %d, %d partitions"
          % (SOAK_S, FAULT_EVERY, MUTATE_EVERY, SEED, PARTITIONS), flush=True)
    with Stack("soak") as st:
        pl = Pipeline(st, customers=300, days=120, latency_ms=20, max_rps=RPS,
                      partitions=PARTITIONS,
                      max_in_flight=IN_FLIGHT, sync_interval="10s")
        pl.start_services()
        soak = Soak(st, pl, rng)
        order = []
        next_fault = FAULT_EVERY
        while soak.now() < SOAK_S:
            if soak.now() >= next_fault:
                if not order:
                    order = list(FAULT_KINDS)
                    rng.shuffle(order)
                soak.fault(order.pop(0))
                next_fault += FAULT_EVERY
            soak.idle(min(1.0, max(0.0, SOAK_S - soak.now())))
        soak.log("end of the soak: %d faults, %d changes; waiting for the sync"
                 % (len(soak.faults), len(soak.changes)))
        t_end = time.monotonic()
        last = [None]

        def synced():
            pl.check_alive()
            last[0] = pl.status()
            return pl.synced(last[0])
        try:
            wait_until(synced, END_BOUND_S, "the sync to complete after the soak", interval=1.0)
        except HarnessError:
            print("status: %s" % json.dumps(last[0], sort_keys=True))
            raise
        want = pl.expected()
        try:
            got = pl.wait_downstream(want, timeout=END_BOUND_S)
            oracle_ok = True
        except AssertionError as e:
            print("ORACLE MISMATCH: %s" % e)
            got, oracle_ok = latest(pl.downstream()), False
        settle = time.monotonic() - t_end
        soak.sample()
        msgs = pl.downstream()
        missing, unexpected, changed = diff(want, latest(msgs), show=5)
        dups = duplicates(msgs)
        dlq = st.consume_all("ltvsync.dlq")
        s = pl.api.stats()
        viol = s["violations"] + int(s["peak_in_flight"] > IN_FLIGHT) + \
            int(s["max_rps_window"] > RPS)
        bstat = pl.broker.status()
        evicted = bstat.get("evicted")
        sanit = pl.sanitizer_reports()

        soak.table()
        soak.lives()
        print("\nfaults (%d):" % len(soak.faults))
        for t, d in soak.faults:
            print("  %7.1fs %s" % (t, d))
        kinds = {}
        for _, a, _ in soak.changes:
            kinds[a] = kinds.get(a, 0) + 1
        print("live changes: %d %s" % (len(soak.changes), kinds))
        print("crm-sim: %d requests, peak in flight %d (limit %d), busiest second %d (limit %d), "
              "429 violations %d, hostile %s" % (s["total"], s["peak_in_flight"], IN_FLIGHT,
                                                 s["max_rps_window"], RPS, s["violations"],
                                                 {k: v for k, v in s["hostile"].items() if v}))
        print("oracle: %s: %d events expected, %d downstream (%d messages); %d missing, "
              "%d unexpected, %d different; synced and matched %.0f s after the end"
              % ("OK" if oracle_ok else "MISMATCH", len(want), len(got), len(msgs),
                 len(missing), len(unexpected), len(changed), settle))
        print("unchanged duplicates %d (%d sink kills), dlq %d, limit violations %d, devbroker "
              "evicted %s, sanitizer reports %s"
              % (len(dups), len(soak.sink_kills), len(dlq), viol, evicted, sanit or "none"))
        print("devbroker fill (%d partitions a topic; the mock keeps about 5 MiB or 100,000 "
              "message sets a partition):" % PARTITIONS)
        for name, total, top, most in fill(st):
            print("  %-22s %8d messages, fullest partition %d with %d" % (name, total, top, most))
        for ev in (bstat.get("evictions") or [])[:10]:
            print("EVICTED", json.dumps(ev, sort_keys=True))
        for d in dups[:10]:
            print("DUPLICATE", d)
        for m in dlq[:5]:
            print("DLQ", m.value[:300])
        bad = not oracle_ok or missing or unexpected or changed or dups or dlq or viol or \
            evicted or sanit
        for n, p in pl.procs.items():
            rc = st.stop(p, signal.SIGTERM, 30)
            if rc != 0:
                print("%s exited %s on SIGTERM" % (n, rc))
                bad = True
        print("SOAK %s" % ("FAILED" if bad else "OK"))
        return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
