"""No core dump and no same-user peeking (issue 12): every service holds
secrets in memory (the fetcher CRM passwords; all of them LTVSYNC_REDIS_URL
with its password in their environment). Each service is started as an
unprivileged user (uid 65534, as in a pod with runAsNonRoot) against a
real redis-server and dev broker; once it is ready:
  - /proc/PID/limits shows a core file size of 0 (RLIMIT_CORE), so a crash
    writes no core with the secrets in it;
  - another process of the same user cannot read /proc/PID/environ (the
    process is not dumpable, PR_SET_DUMPABLE 0), where the Redis password
    is; before the fix it could.
"""
import subprocess
import sys

import ltharness as h

NOBODY = "65534"
AS_NOBODY = ["setpriv", "--reuid=" + NOBODY, "--regid=" + NOBODY, "--clear-groups"]
SERVICES = ("ltvsync-scheduler", "ltvsync-fetcher", "ltvsync-normalizer", "ltvsync-sink")


def core_limit(pid):
    with open("/proc/%d/limits" % pid) as f:
        for line in f:
            if line.startswith("Max core file size"):
                return line.split()[4:6]   # soft, hard
    raise AssertionError("no core line in /proc/%d/limits" % pid)


def main():
    bad = []
    with h.Stack("hardening") as st:
        st.start_redis()
        st.start_devbroker()
        for name in SERVICES:
            env = st.service_env()
            p = st.start(name, AS_NOBODY + [h.bin_path(name)], env=env)
            port = int(env["LTVSYNC_HTTP_PORT"])
            p.http = lambda path, port=port: h.http_get("http://127.0.0.1:%d%s" % (port, path))
            st.wait_ready(p, 30)
            pid = p.popen.pid
            limit = core_limit(pid)
            peek = subprocess.run(AS_NOBODY + ["cat", "/proc/%d/environ" % pid],
                                  capture_output=True)
            print("%-20s core limit %s; environ read by the same user: %s"
                  % (name, "/".join(limit), "refused" if peek.returncode else "READ"))
            if limit != ["0", "0"]:
                bad.append("%s: core file size %s" % (name, limit))
            if peek.returncode == 0 or b"LTVSYNC_REDIS_URL" in peek.stdout:
                bad.append("%s: its environment is readable by its user" % name)
            assert st.stop(p) == 0, p.log()
    if bad:
        print("FAILED:\n  " + "\n  ".join(bad))
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
