"""crm-sim's peak RSS serving a 2,000-customer, 365-day account (issue 2):
starts crm-sim (binary from LTVSYNC_BIN_DIR), walks every page of every
stream by dateCreated and dateUpdated with BENCH_CLIENTS concurrent clients,
and prints the server's VmHWM. Env: BENCH_CUSTOMERS (2000), BENCH_DAYS (365),
BENCH_CLIENTS (8)."""
import concurrent.futures
import datetime
import os
import time

from crmsim import CrmSim

PATHS = ["/transactions/query/", "/order/query/", "/customer/query/", "/purchase/query/"]


def vmhwm_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def main():
    customers = int(os.environ.get("BENCH_CUSTOMERS", 2000))
    days = int(os.environ.get("BENCH_DAYS", 365))
    clients = int(os.environ.get("BENCH_CLIENTS", 8))
    start = datetime.date(2025, 1, 1)
    end = start + datetime.timedelta(days=days - 1)
    sim = CrmSim(dump=False, customers=customers, days=days, start=start.isoformat())
    t0 = time.monotonic()
    sim.start(timeout=120)
    boot = time.monotonic() - t0
    try:
        idle = vmhwm_kb(sim.proc.pid)
        work = [(path, drt, m) for path in PATHS for drt in ("dateCreated", "dateUpdated")
                for m in range(0, days, 10)]

        def walk(item):
            path, drt, m = item
            a = start + datetime.timedelta(days=m)
            b = min(end, a + datetime.timedelta(days=9))
            rows, _ = sim.query_all(path, {"startDate": a.strftime("%m/%d/%Y"),
                                           "endDate": b.strftime("%m/%d/%Y"),
                                           "dateRangeType": drt})
            return len(rows)
        t1 = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(clients) as ex:
            rows = sum(ex.map(walk, work))
        secs = time.monotonic() - t1
        print("crm-sim %d customers x %d days: start-up %.2fs, %d rows served in %.1fs "
              "(%d clients), VmHWM idle %d KiB, peak %d KiB"
              % (customers, days, boot, rows, secs, clients, idle, vmhwm_kb(sim.proc.pid)))
    finally:
        sim.stop()
        sim.cleanup()


if __name__ == "__main__":
    main()
