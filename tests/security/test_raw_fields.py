"""Data that must not travel (issue 12): the fetcher keeps only the
allow-listed fields of a CRM row, so a field the CRM adds (a card number, a
CVV, an SSN, an API key) and the account's personal data (names, e-mails,
phones, street addresses) never reach a topic or a service log.

The whole pipeline (pipeline.Pipeline) syncs a crm-sim account while
crm-sim's run-time fault oversized_row (tools/crm-sim/README.md) puts a
field of a chosen name into row 0 of every data page of the four row
streams. One field at a time can be set: cardNumber during the first sync,
then cvv, ssn and apiKey, each during a resync (`ltvctl sync`) of the last
days. Last, one transactions page carries a row over Kafka's
message.max.bytes (an allow-listed field made huge), so the fetcher's dead
letter path runs too.

Asserts:
  - none of the injected names (as JSON keys) nor their values, none of
    the account's personal field names (emailAddress, firstName, lastName,
    phoneNumber, address1, cardBin, cardLast4, paySources) and none of its
    e-mail addresses, phone numbers or street addresses appear in
    ltvsync.raw, ltvsync.events, ltv.events.v1 or ltvsync.dlq; no secret
    of the account either (Pipeline.leaks());
  - in the service logs: no value at all; a dropped field's name only on
    the fetcher's "not allow-listed" notice, at most once per name and
    process (the bounded log of services/fetcher/job.c);
  - ltvsync_fetcher_fields_dropped_total{stream=...} on the fetchers'
    /metrics counts the drops: one label per stream, never a field name;
  - the dead letter carries the sanitized row (its transactionId, no
    personal data);
  - downstream (ltv.events.v1) still equals the oracle: the allow-list
    kept every field the events need.
Before the allow-list (a deny-list of three secrets and *password*) the
injected fields and all personal data were in ltvsync.raw and the DLQ,
and the metric did not exist."""
import datetime
import json
import os
import re
import sys
import time

from ltharness import HarnessError, Stack, wait_until
from pipeline import INTEG_ID, PASSWORD, Pipeline

INJECTED = ("cardNumber", "cvv", "ssn", "apiKey")
PERSONAL_KEYS = ("emailAddress", "firstName", "lastName", "phoneNumber", "address1",
                 "cardBin", "cardLast4", "paySources", "shipAddress1")
ROW_PATHS = {"transactions": "/transactions/query/", "orders": "/order/query/",
             "customers": "/customer/query/", "purchases": "/purchase/query/"}
TOPICS = ("ltvsync.raw", "ltvsync.events", "ltv.events.v1", "ltvsync.dlq")
OVERSIZE_BYTES = 1100000
SYNC_S = 240  # a first sync on a busy machine
RESYNC_DAYS = 3

failures = []


def check(cond, what):
    """Records a failed check and goes on, so one run reports them all."""
    if not cond:
        failures.append(what)
        print("FAIL:", what[:600], flush=True)
    return cond


def us_day(day):
    return "%02d/%02d/%04d" % (day.month, day.day, day.year)


def injected_row(pl, day):
    """Row 0 of a customers page as crm-sim answers now: the injected
    value is seeded by its size and row index, the same on every page."""
    status, _, body = pl.api.request("/customer/query/", {
        "loginId": "pipe-api", "password": PASSWORD, "startDate": us_day(pl.start),
        "endDate": us_day(day), "resultsPerPage": "1", "page": "1"}, auth=False)
    if status != 200:
        raise HarnessError("crm-sim customers page: HTTP %s" % status)
    return json.loads(body)["message"]["data"][0]


def dropped_metric(pl):
    """{stream: count} summed over the fetchers' /metrics."""
    out = {}
    for name, p in pl.procs.items():
        if not name.startswith("ltvsync-fetcher"):
            continue
        status, body = p.http("/metrics")
        if status != 200:
            raise HarnessError("%s /metrics: HTTP %s" % (name, status))
        for line in body.decode().splitlines():
            if line.startswith("ltvsync_fetcher_fields_dropped"):
                print("  %s: %s" % (name, line))
                m = re.match(r'ltvsync_fetcher_fields_dropped_total\{stream="(\w+)"\} (\d+)$',
                             line)
                check(m, "metric line with labels other than stream: " + line)
                if m:
                    out[m.group(1)] = out.get(m.group(1), 0) + int(m.group(2))
    return out


def pages_expected(pl, first, last):
    """(stream, day) pairs with rows by dateCreated in [first, last]: each
    is at least one data page, so at least one injected row."""
    pairs = set()
    for stream in ROW_PATHS:
        for row in pl.dump[stream]:
            day = row["dateCreated"][:10]
            if str(first) <= day <= str(last):
                pairs.add((stream, day))
    return len(pairs)


def resync_with(pl, field, size, first, last):
    """Sets the injected field, resyncs [first, last], waits until every
    stream-day's first page was served with it. Returns the value."""
    pl.api.fault(oversized_row={"bytes": size, "index": 0, "field": field})
    value = injected_row(pl, last)[field]
    hits0 = pl.api.stats()["hostile"]["oversized_row"]
    want = pages_expected(pl, first, last)
    pl.ctl(["sync", INTEG_ID, "--from", str(first), "--to", str(last)], check=True)
    wait_until(lambda: pl.check_alive() or
               pl.api.stats()["hostile"]["oversized_row"] - hits0 >= want,
               120, "the resync's pages with %s" % field, interval=0.5)
    print("%s (%d bytes) on row 0 of %d+ pages of %s..%s"
          % (field, size, want, first, last))
    return value


def oversized_dead_letter(pl, st):
    """One transactions page of a resynced day carries a row over
    message.max.bytes: an allow-listed field made huge (a dropped one would
    be gone before its size mattered). Waits for its dead letter."""
    per_day = {}
    for t in pl.dump["transactions"]:
        per_day[t["dateCreated"][:10]] = per_day.get(t["dateCreated"][:10], 0) + 1
    day = max(d for d, n in per_day.items() if n >= 2 and d <= str(pl.last_full_day))
    # row 1: crm-sim seeds the filler by row index, and row 0's filler
    # starts with the injected values checked for below
    pl.api.fault(oversized_row={"bytes": OVERSIZE_BYTES, "index": 1, "field": "orderType"},
                 path="/transactions/query/", count=1,
                 when={"dateRangeType": "dateCreated", "startDate": us_day(
                     datetime.date.fromisoformat(day)), "page": "1"})
    pl.ctl(["sync", INTEG_ID, "--from", day, "--to", day, "--streams", "transactions"],
           check=True)
    wait_until(lambda: pl.check_alive() or st.consume_all("ltvsync.dlq"), 120,
               "the oversized row's dead letter", interval=0.5)


def personal_values(pl):
    """The account's e-mails, phones and street addresses (long enough not
    to occur by chance)."""
    vals = set()
    for c in pl.dump["customers"]:
        for k in ("emailAddress", "phoneNumber", "address1"):
            v = c.get(k)
            if isinstance(v, str) and len(v) >= 6:
                vals.add(v)
    return vals


def check_topics(st, names, values):
    for topic in TOPICS:
        msgs = st.consume_all(topic)
        blob = b"\n".join((m.key or b"") + b"\t" + (m.value or b"") for m in msgs)
        print("%s: %d messages, %d bytes" % (topic, len(msgs), len(blob)))
        for n in names:
            # a key, also inside a JSON string (a dead letter's value)
            key = re.compile(rb'\\?"%s\\?"' % n.encode())
            check(not key.search(blob), "%s carries the field %s" % (topic, n))
        found = [v for v in values if v.encode() in blob]
        check(not found, "%s carries %d personal or injected values, e.g. %r"
              % (topic, len(found), found[:3]))


def check_logs(st, names, values):
    """No value in any ltvsync log; a name only on the fetcher's bounded
    notice, once per process; at least one fetcher names cardNumber."""
    noticed = 0
    for name in sorted(os.listdir(st.tmp)):
        if not name.endswith(".log") or name.startswith("crm-sim"):
            continue
        with open(st.path(name), "rb") as f:
            text = f.read().decode("utf-8", "replace")
        found = [v for v in values if v in text]
        check(not found, "%s logs %d values, e.g. %r" % (name, len(found), found[:3]))
        for n in names:
            lines = [ln for ln in text.splitlines() if re.search(r"\b%s\b" % n, ln)]
            notices = [ln for ln in lines if "not allow-listed: dropped" in ln]
            check(lines == notices, "%s logs the name %s outside the notice: %r"
                  % (name, n, (set(lines) - set(notices)).pop() if lines != notices else ""))
            check(len(notices) <= 1, "%s logs the name %s %d times"
                  % (name, n, len(notices)))
            noticed += len(notices) if n == INJECTED[0] else 0
    check(noticed >= 1, "no fetcher logged the dropped field %s" % INJECTED[0])


def run(st):
    pl = Pipeline(st, customers=30, days=30)
    pl.api.fault(oversized_row={"bytes": 40, "index": 0, "field": INJECTED[0]})
    values = {injected_row(pl, pl.last_full_day)[INJECTED[0]]}
    pl.start_services()
    t0 = time.monotonic()
    pl.wait_synced(timeout=SYNC_S)
    hits = pl.api.stats()["hostile"]["oversized_row"]
    print("first sync with %s: %.0f s, %d rows carried it" % (INJECTED[0], time.monotonic() - t0,
                                                              hits))
    check(hits > 0, "crm-sim injected no row")
    first = pl.last_full_day - datetime.timedelta(days=RESYNC_DAYS - 1)
    for i, field in enumerate(INJECTED[1:]):
        values.add(resync_with(pl, field, 41 + i, first, pl.last_full_day))
    oversized_dead_letter(pl, st)
    pl.api.clear_faults()
    pl.wait_quiet("ltvsync.raw")
    want = pl.expected()
    got = pl.wait_downstream(want, timeout=120)
    print("downstream equals the oracle: %d events" % len(got))

    total_hits = pl.api.stats()["hostile"]["oversized_row"]
    dropped = dropped_metric(pl)
    print("fields dropped by stream: %r; injected rows %d" % (dropped, total_hits))
    check(set(dropped) == {"transactions", "orders", "customers", "purchases", "campaigns"},
          "the metric has a label per stream: %r" % dropped)
    # every row loses at least its personal fields; injected rows one more
    check(sum(dropped.values()) >= total_hits + len(pl.dump["customers"]),
          "drops counted %r, fewer than the injected rows %d" % (dropped, total_hits))
    for s in ROW_PATHS:
        check(dropped.get(s, 0) > 0, "no drop counted for %s" % s)

    dlq = st.consume_all("ltvsync.dlq")
    check(len(dlq) == 1, "one dead letter, got %d" % len(dlq))
    for m in dlq:
        rec = json.loads(m.value)
        print("DLQ %s: %s" % (m.key.decode(), rec["reason"]))
        check('"transactionId":' in rec.get("value", ""),
              "the dead letter carries the row: %r" % rec.get("value", "")[:200])

    personal = personal_values(pl)
    print("checking %d names and %d values (%d injected)"
          % (len(INJECTED) + len(PERSONAL_KEYS), len(personal) + len(values), len(values)))
    check_topics(st, INJECTED + PERSONAL_KEYS, personal | values)
    check_logs(st, INJECTED + PERSONAL_KEYS, personal | values)
    leaks = pl.leaks()
    check(not leaks, "secrets leaked: %r" % leaks[:5])
    check(not pl.sanitizer_reports(), "sanitizer reports: %r" % pl.sanitizer_reports())
    for p in list(pl.procs.values()):
        st.stop(p)


def main():
    with Stack("security-raw-fields") as st:
        run(st)
    assert not failures, "%d failed checks:\n  %s" % (len(failures), "\n  ".join(
        f[:300] for f in failures))
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
