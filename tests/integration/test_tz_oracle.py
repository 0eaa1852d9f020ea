"""lt_tz against Python's zoneinfo (an independent implementation).

For each zone: every UTC offset change from 1970 to 2037 (found by scanning
zoneinfo itself, not our reader), the second before/at/after it in both
directions, every wall time in and around each gap and fold, plus random
instants and wall times up to 2100 (past the table: the footer rule).
The C side is ltvsync-tzconv reading query lines on stdin."""
import os
import random
import shutil
import subprocess
import sys
import tempfile
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

ZONES = [
    "America/New_York", "America/Los_Angeles", "Europe/London",
    "Australia/Lord_Howe", "Asia/Kolkata", "Pacific/Chatham",
    "America/Sao_Paulo", "Africa/Casablanca", "Asia/Tokyo", "UTC",
    "Europe/Dublin", "America/St_Johns", "Asia/Tehran", "Pacific/Apia",
]
EPOCH = datetime(1970, 1, 1)
START = int(datetime(1970, 1, 1, tzinfo=timezone.utc).timestamp())
END = int(datetime(2038, 1, 1, tzinfo=timezone.utc).timestamp())
STEP = 6 * 3600


def offset_at(zi, t):
    return int(datetime.fromtimestamp(t, zi).utcoffset().total_seconds())


def transitions(zi):
    """UTC instants where the offset changes (first second of the new one)."""
    out = []
    prev = offset_at(zi, START)
    t = START
    while t < END:
        nxt = min(t + STEP, END)
        cur = offset_at(zi, nxt)
        if cur != prev:
            lo, hi = t, nxt  # offset(lo) == prev, offset(hi) != prev
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if offset_at(zi, mid) == prev:
                    lo = mid
                else:
                    hi = mid
            out.append((hi, prev, offset_at(zi, hi)))
            prev = cur
        t = nxt
    return out


def wall(local_secs):
    return (EPOCH + timedelta(seconds=local_secs)).strftime("%Y-%m-%d %H:%M:%S")


def expect_local(zi, local_secs):
    naive = EPOCH + timedelta(seconds=local_secs)
    dt = naive.replace(tzinfo=zi)  # fold=0
    return "%d %d" % (int(dt.timestamp()), int(dt.utcoffset().total_seconds()))


def expect_utc(zi, t):
    dt = datetime.fromtimestamp(t, zi)
    return "%s %d %d" % (dt.strftime("%Y-%m-%d %H:%M:%S"),
                         int(dt.utcoffset().total_seconds()), dt.fold)


def queries_for(name, rng):
    zi = ZoneInfo(name)
    qs = []
    trans = transitions(zi)
    for t, before, after in trans:
        for d in (-3600, -1, 0, 1, 3600):
            qs.append(("U %s %d" % (name, t + d), expect_utc(zi, t + d)))
        lo, hi = t + min(before, after), t + max(before, after)
        points = set(range(lo - 2, lo + 3)) | set(range(hi - 2, hi + 3))
        points |= set(range(lo, hi, 600))
        for ls in sorted(points):
            qs.append(("L %s %s" % (name, wall(ls)), expect_local(zi, ls)))
    hi_rand = int(datetime(2100, 1, 1, tzinfo=timezone.utc).timestamp())
    for _ in range(1500):
        t = rng.randrange(START, hi_rand)
        qs.append(("U %s %d" % (name, t), expect_utc(zi, t)))
        ls = rng.randrange(START, hi_rand)
        qs.append(("L %s %s" % (name, wall(ls)), expect_local(zi, ls)))
    return trans, qs


def main():
    tool = os.path.join(os.environ["LTVSYNC_BIN_DIR"], "ltvsync-tzconv")
    seed = int(os.environ.get("LTVSYNC_TEST_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    queries, ntrans = [], {}
    for name in ZONES:
        trans, qs = queries_for(name, rng)
        ntrans[name] = len(trans)
        queries += qs
    # Sanity of the oracle itself: zones with DST must show many transitions.
    assert ntrans["America/New_York"] > 100, ntrans
    assert ntrans["Australia/Lord_Howe"] > 80, ntrans
    assert ntrans["UTC"] == 0 and ntrans["Asia/Tokyo"] == 0, ntrans
    print("seed %d, %d queries, transitions %s" % (seed, len(queries), ntrans))
    bad = run(tool, queries, None, "system tzdata")
    # The same answers from "slim" TZif files (short tables, the footer rule
    # carries every later year), compiled here from the system's tzdata.zi.
    if shutil.which("zic") and os.path.exists("/usr/share/zoneinfo/tzdata.zi"):
        with tempfile.TemporaryDirectory() as slim:
            subprocess.run(["zic", "-b", "slim", "-d", slim,
                            "/usr/share/zoneinfo/tzdata.zi"], check=True)
            bad += run(tool, queries, slim, "slim")
    else:
        print("zic or tzdata.zi missing: slim files not tested")
    return 1 if bad else 0


def run(tool, queries, tzdir, label):
    env = dict(os.environ)
    if tzdir:
        env["TZDIR"] = tzdir
    proc = subprocess.run([tool], input="\n".join(q for q, _ in queries) + "\n",
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr
    got = proc.stdout.splitlines()
    assert len(got) == len(queries), (len(got), len(queries))
    bad = [(q, want, g) for (q, want), g in zip(queries, got) if want != g]
    for q, want, g in bad[:20]:
        print("MISMATCH (%s) %s: zoneinfo %s, lt_tz %s" % (label, q, want, g))
    print("%s: %d mismatches" % (label, len(bad)))
    return len(bad)


if __name__ == "__main__":
    sys.exit(main())
