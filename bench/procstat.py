"""What the benchmarks read off processes and Redis (one copy for
scale_bench, fleet_bench, fetcher_overhead, normalizer_bench and
sink_bench): CPU seconds from /proc/PID/stat, /proc/PID/status fields, the
load average, Redis's CPU and command counts; and where processes run."""
import os
import subprocess

CLK = os.sysconf("SC_CLK_TCK")


def stat_cpu(path):
    """(comm, utime + stime in seconds) of a /proc/.../stat file."""
    with open(path) as f:
        raw = f.read()
    comm = raw[raw.index("(") + 1:raw.rindex(")")]
    fields = raw.rsplit(")", 1)[1].split()
    return comm, (int(fields[11]) + int(fields[12])) / CLK


def cpu_s(pid):
    """utime + stime of pid, seconds."""
    return stat_cpu("/proc/%d/stat" % pid)[1]


def thread_cpu(pid):
    """{thread name: CPU s} summed over the threads of that name."""
    out = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            comm, c = stat_cpu("/proc/%d/task/%s/stat" % (pid, tid))
        except OSError:
            continue
        out[comm] = out.get(comm, 0.0) + c
    return out


def status_kb(pid, key):
    """A kB field of /proc/PID/status (VmHWM, VmRSS), 0 when absent."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def redis_cpu(r):
    c = r.info("cpu")
    return float(c["used_cpu_user"]) + float(c["used_cpu_sys"])


def cmdstats(r):
    """{command: (calls, usec)} from INFO commandstats."""
    out = {}
    for k, v in r.info("commandstats").items():
        name = k[len("cmdstat_"):] if k.startswith("cmdstat_") else k
        if isinstance(v, dict):
            out[name] = (int(v.get("calls", 0)), int(v.get("usec", 0)))
    return out


def cores_except(core):
    """The cores this process may use other than core ("1,2,..."), or core
    itself on a one-core machine."""
    others = sorted(os.sched_getaffinity(0) - {int(core)})
    return ",".join(map(str, others)) if others else str(core)


def pin_elsewhere(pid, core):
    """Every thread of pid onto the cores other than core (when there are)."""
    subprocess.run(["taskset", "-apc", cores_except(core), str(pid)], check=True,
                   capture_output=True)
