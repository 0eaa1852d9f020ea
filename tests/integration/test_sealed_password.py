"""A typed-in CRM password, sealed with the cluster key (issue 15,
README "Sealed passwords"), through the whole pipeline.

  - `ltvctl secrets keygen` writes a key ring file; `ltvctl secrets seal`
    turns the password (stdin) into password_ref sealed:v1:KID:...; the
    integration is updated to it and the clear password file is deleted,
    so the fetchers can only have the password by opening the sealed ref;
  - scheduler, two fetchers, normalizer and sink sync the account
    completely (ltv.events.v1 equals the oracle);
  - the clear password (and its URL-encoded form) is in no Kafka topic, no
    Redis key or value, no service log and no ltvctl output;
  - rotation without a restart: a new key goes first in the ring, `ltvctl
    secrets rotate` re-seals with it (a second run finds nothing to do),
    the old key is removed from the file, and a `ltvctl sync` of a range
    still completes: the running fetchers re-read the ring when the file
    changed (their log says so) and opened the re-sealed password.
"""
import json
import os
import re

import ltharness as h
from ltharness import Stack, wait_until
from pipeline import INTEG_ID, PASSWORD, Pipeline

T_INTEG = "ltvsync.integrations"


def write_ring(path, lines):
    """Replaces the key ring file at once, as Kubernetes swaps a Secret."""
    tmp = path + ".new"
    with open(tmp, "w") as f:
        f.write("# ltvsync seal keys: the first one seals\n" + "".join(lines))
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def stored_ref(st):
    docs = [m for m in st.consume_all(T_INTEG) if m.key == INTEG_ID.encode() and m.value]
    return json.loads(docs[-1].value)["password_ref"]


def redis_blob(st):
    """Every key of this stack's prefix and every value, as one byte string."""
    r = st.redis.client()
    out = []
    for k in r.scan_iter(match=st.prefix + "*", count=1000):
        t = r.type(k)
        t = t.decode() if isinstance(t, bytes) else t
        out.append(k if isinstance(k, bytes) else k.encode())
        if t == "string":
            out.append(r.get(k) or b"")
        elif t == "hash":
            for a, b in r.hgetall(k).items():
                out += [a, b]
        elif t == "list":
            out += r.lrange(k, 0, -1)
        elif t == "set":
            out += list(r.smembers(k))
        elif t == "zset":
            out += [m for m, _ in r.zrange(k, 0, -1, withscores=True)]
        elif t == "stream":
            for _, fields in r.xrange(k):
                for a, b in fields.items():
                    out += [a, b]
    return b"\n".join(x if isinstance(x, bytes) else str(x).encode() for x in out)


def done_lines(pl):
    return sum(len([l for l in p.log_lines("done: %s " % INTEG_ID)])
               for n, p in pl.procs.items() if n.startswith("ltvsync-fetcher"))


def main():
    with Stack("sealed-password") as st:
        ring = st.path("seal-keys")
        pl = Pipeline(st, customers=20, days=12, env={"LTVSYNC_SEAL_KEY_FILE": ring})
        outputs = []   # every ltvctl stdout and stderr, checked for the password

        def ctl(args, check=True, input=None):
            r = st.run("ltvctl", args, env=dict(pl.env, TMPDIR=st.tmp), timeout=120, input=input)
            outputs.append(r.stdout + r.stderr)
            if check and r.returncode:
                raise h.HarnessError("ltvctl %s: exit %d\n%s%s" % (" ".join(args), r.returncode,
                                                                  r.stdout, r.stderr))
            return r

        # -- a key ring, the sealed ref, the integration on it ----------------
        old = ctl(["secrets", "keygen", "--kid", "old"]).stdout
        assert re.fullmatch(r"old [A-Za-z0-9+/]{43}=\n", old), "keygen printed %r" % old[:8]
        write_ring(ring, [old])
        # refused with the CRM's reason, nothing echoed
        r = ctl(["secrets", "seal", INTEG_ID], check=False, input="a&" + PASSWORD + "\n")
        assert r.returncode == 1 and "must not have an & sign" in r.stderr, r.stderr
        ref = ctl(["secrets", "seal", INTEG_ID], input=PASSWORD + "\n").stdout.strip()
        assert ref.startswith("sealed:v1:old:") and len(ref) < 512, ref[:40]
        ctl(["integration", "update", INTEG_ID, "--password-ref", ref])
        os.remove(st.path("crm-password"))   # the clear password's only file
        assert stored_ref(st) == ref
        # a blob sealed for another integration does not open for this one
        other = ctl(["secrets", "seal", "other"], input=PASSWORD + "\n").stdout.strip()
        r = ctl(["integration", "test", "--id", INTEG_ID, "--brand", "konnektive",
                 "--base-url", pl.sim.url, "--api-username", "pipe-api",
                 "--password-ref", other, "--account-name", "Pipe Test",
                 "--account-username", "pipe", "--timezone", pl.tz,
                 "--import-from", pl.start.isoformat()], check=False)
        assert r.returncode == 1 and "does not open with key old for integration pipe" in \
            r.stdout + r.stderr, r.stdout + r.stderr

        # -- the pipeline syncs it completely -----------------------------------
        pl.start_services()
        pl.wait_synced(timeout=240)
        pl.wait_downstream(pl.expected(), timeout=120)
        rows = done_lines(pl)
        assert rows > 0, "the fetchers finished no job of %s" % INTEG_ID

        # -- rotation: new key first, re-seal, old key out, no restart ----------
        new = ctl(["secrets", "keygen", "--kid", "new"]).stdout
        write_ring(ring, [new, old])
        r = ctl(["secrets", "rotate"])
        assert "rotate: 1 re-sealed with key new, 0 already on it, 0 failed" in r.stdout, r.stdout
        ref2 = stored_ref(st)
        assert ref2.startswith("sealed:v1:new:") and ref2 != ref, ref2[:40]
        r = ctl(["secrets", "rotate", "--json"])
        assert json.loads(r.stdout) == {"key": "new", "resealed": 0, "current": 1, "failed": 0,
                                        "not_sealed": 0}, r.stdout
        write_ring(ring, [new])
        pids = {n: p.pid for n, p in pl.procs.items()}
        before = done_lines(pl)
        days = [pl.start.isoformat(), (pl.start + (pl.last_full_day - pl.start) // 2).isoformat()]
        r = ctl(["sync", INTEG_ID, "--from", days[0], "--to", days[1]])
        n = int(re.search(r"(\d+) jobs queued", r.stdout).group(1))
        assert n > 0, r.stdout

        def resynced():
            pl.check_alive()
            s = pl.status()
            if s and s["state"] != "ok":
                raise h.HarnessError("integration parked: %s" % s["reason"])
            return s and s["outstanding_jobs"] == 0 and done_lines(pl) >= before + n
        wait_until(resynced, 120, "the resync with the re-sealed password", interval=1.0)
        assert {n: p.pid for n, p in pl.procs.items()} == pids, "a service was restarted"
        for name, p in pl.procs.items():
            if name.startswith("ltvsync-fetcher"):
                reread = p.log_lines("seal key file %s re-read" % ring)
                assert reread, "%s did not re-read the rotated key ring" % name
        # the old ref no longer opens (its key is gone), the new one does
        r = ctl(["integration", "test", INTEG_ID])
        assert r.returncode == 0, r.stdout + r.stderr

        # -- the clear password nowhere -----------------------------------------
        leaks = pl.leaks()   # every topic and every log of the stack
        assert not leaks, "leaks: %s" % sorted({w for w, _ in leaks})
        blob = redis_blob(st)
        assert blob, "no Redis keys under %s" % st.prefix
        enc = re.sub(r"[^A-Za-z0-9]", lambda m: "%%%02X" % ord(m.group()), PASSWORD)
        for s in (PASSWORD, enc):
            assert s.encode() not in blob, "the password is in Redis"
            assert not any(s in o for o in outputs), "the password is in ltvctl's output"
        for o in outputs:
            for line in (old, new):
                key = line.split()[1]
                assert key not in o or o in (old, new), "a seal key in ltvctl's output"
        logs = "".join(p.log() for p in st.procs)
        for line in (old, new):
            assert line.split()[1] not in logs, "a seal key in a log"
        assert not pl.sanitizer_reports(), pl.sanitizer_reports()
        print("ok: synced with a sealed password, rotated old -> new, resync of %d jobs; "
              "%d fetcher jobs before" % (n, rows))


if __name__ == "__main__":
    main()
