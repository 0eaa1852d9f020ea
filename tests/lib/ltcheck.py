"""Checks that collect their failures and go on, so a test reports every
broken rule at once rather than the first:

    from ltcheck import check, failures
    check(doc["x"] == 1, "x is 1")
    ...
    return 1 if failures else 0
"""
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what, flush=True)
    return cond
