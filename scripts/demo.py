"""The main job of ltvsync, end to end on the embedded stack (see scripts/demo).

Starts ltvsync-devbroker, a local redis-server and crm-sim (a 365-day
account of about 2,000 customers in America/New_York, with latency), starts
the control API (ltvsync-api) and connects the account through it as the
platform's settings screen does (POST /v1/integrations with the API user's
password, sealed by the API), runs the scheduler, two fetchers, the
normalizer and the sink as separate processes, shows progress, prints what
was synced and the console's address, and exits 0 only if nothing was lost:
no dev broker eviction, and every row of crm-sim's dump present in
ltvsync.raw.
"""

import argparse
import collections
import datetime
import json
import os
import sys
import time

import ltapi
from ltharness import Stack, HarnessError, wait_until
from revenue import lines_of, revenue_by

STREAM_IDS = {"transactions": "transactionId", "orders": "orderId",
              "customers": "customerId", "purchases": "purchaseId"}


def say(msg):
    print(msg, flush=True)


def vmhwm_kb(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def money(minor, exp=2):
    sign = "-" if minor < 0 else ""
    minor = abs(minor)
    return "%s%d.%0*d" % (sign, minor // 10 ** exp, exp, minor % 10 ** exp) if exp else "%s%d" % (sign, minor)


def status(st, iid):
    r = st.run("ltvctl", ["status", iid, "--json"], timeout=30)
    if r.returncode != 0:
        return None
    return json.loads(r.stdout)


def progress_line(s, started):
    done = sum(v["days_done"] for v in s["streams"].values())
    total = sum(v["days_total"] for v in s["streams"].values()) or 1
    rows = sum(v["rows"] for v in s["streams"].values())
    width = 30
    fill = int(width * done / total)
    el = time.monotonic() - started
    return "  [%s%s] %5.1f%%  %d/%d stream-days  %d rows  %d in flight  %.0fs" % (
        "#" * fill, "." * (width - fill), 100.0 * done / total, done, total, rows,
        s["in_flight"], el)


def dump_ids(dump):
    out = {}
    for stream, key in STREAM_IDS.items():
        out[stream] = {str(r[key]) for r in dump.get(stream, [])}
    camps = dump.get("campaigns", {})
    out["campaigns"] = {str(k) for k in (camps.keys() if isinstance(camps, dict) else [])}
    return out


def raw_ids(msgs):
    out = collections.defaultdict(set)
    for m in msgs:
        key = m.key.decode()
        integ, stream, rid = key.split("/", 2)
        out[stream].add(rid)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keep", action="store_true", help="leave the stack running for ltvctl")
    ap.add_argument("--customers", type=int, default=2000)
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--latency-ms", type=int, default=60)
    ap.add_argument("--timeout", type=float, default=170.0, help="seconds to wait for the sync")
    args = ap.parse_args()

    t0 = time.monotonic()
    today = datetime.date.today()
    # The account ends yesterday: crm-sim fills its last day to midnight, and
    # rows must not lie in the future.
    start = today - datetime.timedelta(days=args.days)
    st = Stack(name="ltvsync-demo", keep=args.keep)
    lost = []
    try:
        say("ltvsync demo: starting the embedded stack in %s" % st.tmp)
        st.start_redis()
        broker = st.start_devbroker(partitions=12)
        password = "demo+pw%=#1 x"   # every awkward character but '&'
        dump_path = st.path("crm-dump.json")
        sim = st.start_crmsim(seed=42, customers=args.customers, start=start.isoformat(),
                              days=args.days, timezone="America/New_York", currency="USD",
                              login_id="demo-api", password=password,
                              latency_ms=args.latency_ms, dump=dump_path, timeout=60)
        say("  dev broker %s, redis %s, crm-sim %s (%d customers, %d days from %s)" % (
            broker.bootstrap, st.redis.url, sim.url, args.customers, args.days, start))

        # The control API and its console; the fetchers open the passwords
        # it seals with the same key ring.
        tokens_file, tokens = ltapi.write_tokens(st, (("demo", "admin"),))
        key = ltapi.write_seal_key(st)
        env = {"LTVSYNC_SCHEDULER_TICK": "1s", "LTVSYNC_SEAL_KEY_FILE": key}
        api = ltapi.start_api(st, env, tokens_file, key)
        client = ltapi.Client(api.base, tokens["demo"])
        say("  control API and console at %s/ (token %s)" % (api.base, tokens["demo"]))

        # "Connect with Konnektive": what the settings screen sends.
        r = client.post("/v1/integrations", {
            "id": "demo", "brand": "konnektive", "base_url": sim.url,
            "api_username": "demo-api", "password": password,
            "account_name": "Demo Supplements", "account_username": "demo",
            "timezone": "America/New_York", "import_from": start.isoformat(),
            "sync_interval": "20s", "max_requests_per_second": 60, "max_in_flight": 8},
            check=False)
        if r.status != 201:
            raise HarnessError("connect failed: %d %s" % (r.status, r.raw))
        say("  connected: POST /v1/integrations -> 201 (the CRM answered every query; "
            "password stored as %s)" % r.body["password_ref"])

        procs = [st.start_service("ltvsync-scheduler", env)]
        procs += [st.start_service("ltvsync-fetcher", env) for _ in range(2)]
        procs += [st.start_service("ltvsync-normalizer", env), st.start_service("ltvsync-sink", env)]
        say("  started scheduler, 2 fetchers, normalizer, sink (logs in %s)" % st.tmp)

        started = time.monotonic()
        deadline = started + args.timeout
        s = None
        while time.monotonic() < deadline:
            for p in procs:
                p.check_alive()
            s = status(st, "demo")
            if s:
                say(progress_line(s, started))
                if s["state"] != "ok":
                    raise HarnessError("integration parked: %s" % s["reason"])
                if all(v["days_done"] >= v["days_total"] for v in s["streams"].values()) \
                        and s["outstanding_jobs"] == 0:
                    break
            time.sleep(2)
        else:
            lost.append("the sync did not complete within %.0fs" % args.timeout)

        # Let the normalizer and the sink drain what the fetchers wrote.
        def drained():
            n1 = len(st.consume_all("ltvsync.events"))
            time.sleep(1.5)
            return n1 if n1 and n1 == len(st.consume_all("ltvsync.events")) else None
        wait_until(drained, 60, "the normalizer to drain ltvsync.raw")
        def sink_drained():
            n1 = len(st.consume_all("ltv.events.v1"))
            time.sleep(1.5)
            return n1 if n1 and n1 == len(st.consume_all("ltv.events.v1")) else None
        wait_until(sink_drained, 60, "the sink to drain ltvsync.events")

        raw = st.consume_all("ltvsync.raw")
        with open(dump_path) as f:
            dump = json.load(f)
        want, got = dump_ids(dump), raw_ids(raw)
        say("\nrows fetched: %d raw messages" % len(raw))
        for stream in sorted(want):
            missing = want[stream] - got.get(stream, set())
            say("  %-13s %6d of %6d records%s" % (stream, len(want[stream] & got.get(stream, set())),
                                                    len(want[stream]),
                                                    "" if not missing else "  MISSING %d" % len(missing)))
            if missing:
                lost.append("%d %s records missing from ltvsync.raw" % (len(missing), stream))

        down = {}
        for m in st.consume_all("ltv.events.v1"):
            down[m.key.decode()] = json.loads(m.value)
        by_type = collections.Counter(e["type"] for e in down.values())
        say("\nevents downstream (ltv.events.v1, latest per event_id): %d" % len(down))
        for t, n in sorted(by_type.items()):
            say("  %-20s %6d" % (t, n))
        pay = sum(e["amount_minor"] for e in down.values() if e["type"] == "payment")
        ref = sum(-e["amount_minor"] for e in down.values() if e["type"] == "refund")
        cb = sum(-e["amount_minor"] for e in down.values() if e["type"] == "chargeback")
        say("\nrevenue (payments): %s USD" % money(pay))
        say("refunds %s + chargebacks %s = %s USD taken back" % (money(ref), money(cb), money(ref + cb)))

        r = st.run("ltvctl", ["reconcile", "demo", "--from", start.isoformat(), "--to",
                              (today - datetime.timedelta(days=1)).isoformat(), "--json"],
                   env=env, timeout=120)   # the CRM's summary: the sealed password is opened
        rec = json.loads(r.stdout) if r.stdout.strip().startswith("{") else None
        if rec:
            diff_days = [d for d in rec["days"] if d["refunds_plus_chargebacks_crm"] != d["refunds_plus_chargebacks_ltvsync"]]
            say("\nreconcile (per local day, CRM summary vs ltvsync):")
            say("  %d days; %d unexplained; %d days where refunds+chargebacks differ only by"
                " chargeback dating (the CRM counts a chargeback on the sale's day, ltvsync on"
                " the day it happened)" % (len(rec["days"]), rec["unexplained_days"], len(diff_days)))
            for line in rec["moved_chargebacks"][:5]:
                say("    " + line)
            if rec["unexplained_days"]:
                lost.append("reconcile found %d unexplained days" % rec["unexplained_days"])
            # The dimensions at work: reconcile's net revenue by product and
            # by coupon, checked against the same sums over what the sink
            # wrote downstream.
            mine = revenue_by(down.values(), start.isoformat(),
                              (today - datetime.timedelta(days=1)).isoformat())
            for dim, key, label in (("by_product", "product_id", "product"),
                                    ("by_coupon", "coupon_code", "coupon")):
                say("\nnet revenue by %s (payments - refunds - voids - chargebacks + reversals):" % label)
                for row in sorted(rec[dim], key=lambda r: -float(r["net"]))[:6]:
                    say("  %-20s %5d payments %12s USD" % (row[key], row["payments"], row["net"]))
                if lines_of(rec[dim], key) != mine[dim]:
                    lost.append("reconcile's revenue %s differs from the downstream events" % dim)
        else:
            lost.append("reconcile failed: %s" % r.stderr.strip())

        say("\na few downstream events:")
        for e in list(down.values())[:3]:
            say("  " + json.dumps(e)[:400])

        say("\npeak RSS (VmHWM) of each process:")
        for p in st.procs:
            if p.alive():
                say("  %-20s %7d KiB" % (p.name.split("/")[-1], vmhwm_kb(p.pid)))

        evicted = broker.status().get("evicted")
        if evicted:
            lost.append("the dev broker evicted records: %s" % broker.status().get("evictions"))
        say("\nconsole: %s/ (API token %s)%s" % (
            api.base, tokens["demo"], "" if args.keep else "; --keep leaves it up"))
        say("logs: %s%s" % (st.tmp, "" if args.keep else " (removed at exit; --keep keeps them)"))
        if args.keep:
            say("\nthe stack keeps running; explore with:\n"
                "  export LTVSYNC_KAFKA_BOOTSTRAP_SERVERS=%s LTVSYNC_REDIS_URL=%s LTVSYNC_REDIS_PREFIX=%s\n"
                "  export LTVSYNC_CRM_CREDENTIALS_DIR=%s LTVSYNC_CRM_ALLOW_INSECURE=1  # crm-sim: http on loopback\n"
                "  export LTVSYNC_SEAL_KEY_FILE=%s\n"
                "  %s/ltvctl status demo\n"
                "  curl -H 'Authorization: Bearer %s' %s/v1/integrations/demo/status\n"
                "  console: %s/\nPress Ctrl-C to stop." % (
                    broker.bootstrap, st.redis.url, st.prefix, st.tmp, key,
                    os.environ["LTVSYNC_BIN_DIR"], tokens["demo"], api.base, api.base))
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                pass
    finally:
        st.close(check=False)
    say("\nwall time %.0fs" % (time.monotonic() - t0))
    if lost:
        say("FAILED: " + "; ".join(lost))
        return 1
    say("OK: nothing lost")
    return 0


if __name__ == "__main__":
    sys.exit(main())
