"""faultrow: one line per fault scenario, for the README's "what survives
what" table. Each fault test calls report() once it has measured; the line
goes to stdout (ctest keeps it in its log) and, when LTVSYNC_FAULT_TABLE
names a file, is appended there as JSON: bench/fault_table.sh runs the
fault tests with it set and prints the table. run_scenarios() runs a test
file's scenarios."""
import json
import os
import time
import traceback


def report(scenario, trials, lost, dups, violations, recover_s, note=""):
    row = {"scenario": scenario, "trials": trials, "lost": lost, "dups": dups,
           "violations": violations, "recover_s": round(recover_s, 1), "note": note}
    line = json.dumps(row, sort_keys=True)
    print("FAULTROW " + line)
    path = os.environ.get("LTVSYNC_FAULT_TABLE")
    if path:
        with open(path, "a") as f:
            f.write(line + "\n")


def run_scenarios(scenarios):
    """Runs every scenario function (a failing one does not stop the
    others), prints each one's outcome and time; the exit status: 1 if any
    failed."""
    t0, failed = time.monotonic(), []
    for scenario in scenarios:
        t = time.monotonic()
        try:
            scenario()
        except Exception:
            traceback.print_exc()
            failed.append(scenario.__name__)
        print("%s %s in %.0f s" % (scenario.__name__, "FAILED" if scenario.__name__ in failed
                                    else "passed", time.monotonic() - t))
    print("%s in %.0f s" % ("FAILED: " + ", ".join(failed) if failed else "all passed",
                            time.monotonic() - t0))
    return 1 if failed else 0
