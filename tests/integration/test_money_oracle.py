"""lt_money against Python's decimal: random well-formed and malformed
amounts in currencies of 0, 2, 3 and 4 minor digits, answered by
ltvsync-tzconv's "M CUR AMOUNT" lines. Either both accept with the same
minor units or both reject."""
import os
import random
import re
import subprocess
import sys
from decimal import Decimal, localcontext

EXPONENTS = {"USD": 2, "EUR": 2, "GBP": 2, "JPY": 0, "KRW": 0, "KWD": 3,
             "BHD": 3, "CLF": 4, "BRL": 2}
UNKNOWN = ["XYZ", "usd", "US", "USDX", "ABC"]
GRAMMAR = re.compile(r"[+-]?[0-9]+(\.[0-9]+)?\Z")
I64 = 2 ** 63


def expect(cur, amount):
    if cur not in EXPONENTS:
        return None
    if not GRAMMAR.match(amount):
        return None
    with localcontext() as ctx:
        ctx.prec = 200
        scaled = Decimal(amount).scaleb(EXPONENTS[cur])
        if scaled != scaled.to_integral_value():
            return None
        v = int(scaled)
    if not -I64 <= v < I64:
        return None
    return str(v)


def random_amount(rng):
    kind = rng.random()
    digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 21)))
    frac = "".join(rng.choice("0000123456789") for _ in range(rng.randint(0, 6)))
    s = rng.choice(["", "", "", "-", "+"]) + digits
    if frac or rng.random() < 0.1:
        s += "." + frac
    if kind < 0.75:
        return s
    mutations = [lambda x: x + ".5", lambda x: " " + x, lambda x: x + "e2",
                 lambda x: x.replace(".", ","), lambda x: "--" + x,
                 lambda x: "." + x, lambda x: "", lambda x: "abc",
                 lambda x: x + "0" * rng.randint(1, 5),
                 lambda x: "1.2.3", lambda x: x + "\t", lambda x: "0x1F"]
    return rng.choice(mutations)(s)


FIXED = [("USD", "29.99"), ("USD", "1.50"), ("USD", "1.005"), ("USD", "-1.00"),
         ("USD", "1.2.3"), ("USD", "abc"), ("USD", ""), ("JPY", "1500"),
         ("JPY", "1500.0"), ("JPY", "1500.5"), ("KWD", "1.250"), ("KWD", "1.2501"),
         ("USD", "92233720368547758.07"), ("USD", "92233720368547758.08"),
         ("USD", "-92233720368547758.08"), ("USD", "-92233720368547758.09"),
         ("USD", "0.000000000000"), ("USD", "+5"), ("XYZ", "1.00")]


def main():
    tool = os.path.join(os.environ["LTVSYNC_BIN_DIR"], "ltvsync-tzconv")
    seed = int(os.environ.get("LTVSYNC_TEST_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    cases = list(FIXED)
    curs = list(EXPONENTS) + UNKNOWN
    for _ in range(30000):
        cases.append((rng.choice(curs) if rng.random() < 0.97 else rng.choice(UNKNOWN),
                      random_amount(rng)))
    # The tool splits on the first two spaces; amounts with a leading space
    # or a tab still arrive verbatim after "M CUR ".
    lines = "".join("M %s %s\n" % (c, a) for c, a in cases)
    proc = subprocess.run([tool], input=lines, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    got = proc.stdout.splitlines()
    assert len(got) == len(cases), (len(got), len(cases))
    bad, accepted = [], 0
    for (cur, amount), g in zip(cases, got):
        want = expect(cur, amount)
        accepted += want is not None
        ok = g == want if want is not None else g.startswith("ERR")
        if not ok:
            bad.append((cur, amount, want, g))
    for b in bad[:20]:
        print("MISMATCH %s %r: decimal %s, lt_money %s" % b)
    print("seed %d: %d cases, %d valid, %d mismatches" % (seed, len(cases), accepted, len(bad)))
    assert accepted > 3000  # the generator must exercise the accepting path
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
