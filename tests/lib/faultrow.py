"""faultrow: one line per fault scenario, for the README's "what survives
what" table. Each fault test calls report() once it has measured; the line
goes to stdout (ctest keeps it in its log) and, when LTVSYNC_FAULT_TABLE
names a file, is appended there as JSON: bench/fault_table.sh runs the
fault tests with it set and prints the table."""
import json
import os


def report(scenario, trials, lost, dups, violations, recover_s, note=""):
    row = {"scenario": scenario, "trials": trials, "lost": lost, "dups": dups,
           "violations": violations, "recover_s": round(recover_s, 1), "note": note}
    line = json.dumps(row, sort_keys=True)
    print("FAULTROW " + line)
    path = os.environ.get("LTVSYNC_FAULT_TABLE")
    if path:
        with open(path, "a") as f:
            f.write(line + "\n")
