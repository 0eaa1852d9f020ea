"""Start, query and stop crm-sim from tests (Python stdlib only).

    with CrmSim(customers=40, days=120) as sim:
        status, headers, body = sim.post("/transactions/query/", {"startDate": "01/01/2024"})
        rows = sim.query_all("/transactions/query/", {...})
        sim.fault(drip={"interval_ms": 50}, path="/order/query/")  # hostile modes
        sim.clear_faults()

    with CrmSim(accounts=3, max_rps=5) as sim:   # acct-1..acct-3, one process
        rows, _ = sim.query_all("/order/query/", {}, account="acct-2")
        sim.stats("acct-2")["violations"], sim.dump("acct-2")["orders"]
"""
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

DEFAULTS = {
    "seed": 42,
    "customers": 40,
    "start": "2024-01-01",
    "days": 120,
    "timezone": "America/New_York",
    "currency": "USD",
    "login_id": "apiuser",
    "password": "pa ss+w%rd=#1",
}


def binary(name="crm-sim"):
    bin_dir = os.environ.get("LTVSYNC_BIN_DIR")
    if not bin_dir:
        raise RuntimeError("LTVSYNC_BIN_DIR is not set")
    return os.path.join(bin_dir, name)


class CrmSim:
    """One crm-sim process on 127.0.0.1, a random port, its own temp dir.

    Keyword options map to the CLI (underscores become dashes); True adds a
    bare flag; a list repeats the option (deny_endpoint=[...]).

    accounts=N > 1 serves acct-1..acct-N (tools/crm-sim/README.md, "Many
    accounts"): login_id is not passed, the dump is a directory of
    acct-i.json (every account generated at start-up; dump=False leaves them
    to be generated on first use, and dump(account) then asks /_sim/dump),
    and the calls below take account="acct-i" (default acct-1 for the API,
    none for stats: the process's counters)."""

    def __init__(self, dump=True, accounts=1, **opts):
        self.opts = dict(DEFAULTS)
        self.opts.update(opts)
        self.accounts = accounts
        if accounts > 1:
            self.opts["accounts"] = accounts
            self.opts.pop("login_id", None)
        self.tmp = tempfile.mkdtemp(prefix="crmsim-")
        self.port_file = os.path.join(self.tmp, "port")
        self.dump_path = None
        if dump:
            self.dump_path = os.path.join(self.tmp, "dump.json" if accounts == 1 else "dump")
        self.log_path = os.path.join(self.tmp, "crm-sim.log")
        self.proc = None
        self.port = None

    @property
    def login(self):
        if getattr(self, "accounts", 1) > 1:
            return self.login_for("acct-1")
        return {"loginId": self.opts["login_id"], "password": self.opts["password"]}

    def login_for(self, account):
        """The credentials of one account (accounts > 1: "acct-i")."""
        return {"loginId": account, "password": self.opts["password"]}

    def account_ids(self):
        return ["acct-%d" % i for i in range(1, getattr(self, "accounts", 1) + 1)]

    def sim_url(self, path, account=None):
        """A /_sim/ endpoint's URL, with ?account= when one is named."""
        url = self.url + path
        if account is not None:
            url += "?" + urllib.parse.urlencode({"account": account})
        return url

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def argv(self):
        args = [binary(), "--port", "0", "--port-file", self.port_file]
        if self.dump_path:
            args += ["--dump", self.dump_path]
        for key, val in self.opts.items():
            flag = "--" + key.replace("_", "-")
            if val is True:
                args.append(flag)
            elif val is False or val is None:
                continue
            elif isinstance(val, (list, tuple)):
                for v in val:
                    args += [flag, str(v)]
            else:
                args += [flag, str(val)]
        return args

    def start(self, timeout=30.0):
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(self.argv(), stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("crm-sim exited %d: %s" % (self.proc.returncode, self.read_log()))
            if os.path.exists(self.port_file):
                with open(self.port_file) as f:
                    text = f.read().strip()
                if text:
                    self.port = int(text)
                    return self
            time.sleep(0.02)
        self.stop()
        raise RuntimeError("crm-sim did not start: " + self.read_log())

    def read_log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def stop(self, timeout=10.0):
        """SIGTERM; returns the exit code (0 expected)."""
        rc = None
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                rc = self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                rc = self.proc.wait()
        elif self.proc:
            rc = self.proc.returncode
        if getattr(self, "log", None):
            self.log.close()
        return rc

    def cleanup(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        rc = self.stop()
        log = self.read_log()
        self.cleanup()
        if exc[0] is None and rc != 0:
            raise AssertionError("crm-sim exited %r: %s" % (rc, log))

    # ---- HTTP ----
    def request(self, path, params=None, method="POST", auth=True, query=None, timeout=30,
                account=None):
        """Returns (status, headers, body bytes); form POST by default.
        status None means the connection failed (reset). account: log in as
        that account (default: self.login)."""
        fields = {}
        if auth:
            fields = dict(self.login_for(account) if account else self.login)
        fields.update(params or {})
        url = self.url + path
        data = None
        if method == "GET":
            url += "?" + urllib.parse.urlencode(fields)
        else:
            data = urllib.parse.urlencode(fields).encode()
        if query:
            url += ("&" if "?" in url else "?") + query
        req = urllib.request.Request(url, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/x-www-form-urlencoded")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.status, dict(resp.headers), resp.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()
        except (ConnectionError, urllib.error.URLError, OSError) as e:
            return None, {}, str(e).encode()

    def post(self, path, params=None, **kw):
        return self.request(path, params, **kw)

    def query(self, path, params=None, **kw):
        """The parsed JSON envelope; raises if the answer is not JSON 200."""
        status, _, body = self.request(path, params, **kw)
        if status != 200:
            raise AssertionError("HTTP %r: %r" % (status, body[:200]))
        return json.loads(body)

    def query_all(self, path, params, per_page=200, account=None):
        """Every row across pages until the no-rows error; returns (rows, totals seen)."""
        rows, totals, page = [], [], 1
        while True:
            p = dict(params)
            p.update({"page": page, "resultsPerPage": per_page})
            env = self.query(path, p, account=account)
            if env["result"] != "SUCCESS":
                if "matching those parameters could be found" not in env["message"]:
                    raise AssertionError(env)
                return rows, totals
            totals.append(int(env["message"]["totalResults"]))
            rows.extend(env["message"]["data"])
            page += 1

    def stats(self, account=None):
        """/_sim/stats: the process's counters, or one account's."""
        with urllib.request.urlopen(self.sim_url("/_sim/stats", account), timeout=10) as resp:
            return json.loads(resp.read())

    def mutate(self, action, transaction_id, date, account=None):
        body = json.dumps({"action": action, "transactionId": str(transaction_id), "date": date})
        req = urllib.request.Request(self.sim_url("/_sim/mutate", account), data=body.encode(),
                                     method="POST")
        req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    # ---- hostile modes (POST /_sim/fault, see tools/crm-sim/README.md) ----
    def fault_request(self, body, account=None):
        """POST /_sim/fault with body (a dict, or bytes sent as they are);
        returns (status, parsed answer), or the raw bytes when not JSON (413)."""
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        req = urllib.request.Request(self.sim_url("/_sim/fault", account), data=data,
                                     method="POST")
        req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                return e.code, json.loads(raw)
            except ValueError:
                return e.code, raw

    def fault(self, account=None, **modes):
        """Sets (or, with None, clears) hostile modes and returns the settings
        now in force: fault(oversized_row={"index": 4}, path="/order/query/",
        count=2); account="acct-i" with accounts > 1 (each has its own).
        Raises AssertionError when the simulator refuses the body."""
        status, res = self.fault_request(modes, account=account)
        if status != 200:
            raise AssertionError("/_sim/fault %r: %r" % (status, res))
        return res["faults"]

    def clear_faults(self, account=None):
        return self.fault(account=account, clear=True)

    def faults(self, account=None):
        """The hostile modes in force ({} when none); the password shows as "(hidden)"."""
        with urllib.request.urlopen(self.sim_url("/_sim/fault", account), timeout=10) as resp:
            return json.loads(resp.read())["faults"]

    def dump(self, account=None):
        """The account's dump: the --dump file (accounts > 1: DIR/acct-i.json,
        default acct-1), or GET /_sim/dump when the simulator has no dump."""
        if getattr(self, "accounts", 1) > 1:
            account = account or "acct-1"
        path = getattr(self, "dump_path", None)
        if path and getattr(self, "accounts", 1) > 1:
            path = os.path.join(path, account + ".json")
        if path:
            with open(path, encoding="utf-8") as f:
                return json.load(f)
        with urllib.request.urlopen(self.sim_url("/_sim/dump", account), timeout=60) as resp:
            return json.loads(resp.read())
