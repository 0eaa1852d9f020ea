"""The operator console in a real browser (Debian's chromium, chromium-driver
and python3-selenium; scripts/deps installs them): the whole pipeline
(redis, dev broker, crm-sim, scheduler, fetcher, normalizer, sink) plus
ltvsync-api with a tokens file and a seal key; headless Chromium opens the
console, enters the token and

  - submits the connect form with a password containing '&': the API's
    field error shows next to the password field (and nothing is added);
    the same request straight to the API answers 400 `validation` with an
    `errors` entry for `password`;
  - connects a small crm-sim account (a few customers, a few days) through
    the form, with an account name that holds HTML (shown as text), and
    watches every stream's progress bar reach 100 % and the integration
    become "up to date";
  - loads the reconcile table for the synced days;
  - saves screenshots to $LTVSYNC_ARTIFACT_DIR, else the build directory's
    test-artifacts/ (console_browser.png: the 1280x800 window; console_browser_full.png:
    the whole page).

Without a browser the test fails (CI installs one); LTVSYNC_ALLOW_NO_BROWSER=1
turns that into a skip (exit 77).
"""
import base64
import datetime
import os
import sys
import time
from zoneinfo import ZoneInfo

import ltapi
import ltharness as h
from pipeline import SERVICE_ENV

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
TZ = "America/Chicago"
DAYS = 4
CRM_LOGIN = "console-api"
CRM_PASSWORD = "c0nsole+pw%=# x"          # awkward, but no '&'
ACCOUNT_NAME = "Console <b>Test</b> Co"   # must show as text, not markup
INTEG_ID = "console-b-test-b-co"          # what the form derives from it
STREAMS = ("transactions", "orders", "customers", "purchases", "campaigns")


def browser_or_exit():
    """Imports selenium and checks the binaries; without them exits 77 when
    LTVSYNC_ALLOW_NO_BROWSER=1, else fails."""
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("python3-selenium")
    if not missing:
        return
    msg = "no browser for the console test: missing %s (scripts/deps installs chromium, " \
          "chromium-driver, python3-selenium)" % ", ".join(missing)
    if os.environ.get("LTVSYNC_ALLOW_NO_BROWSER") == "1":
        print("SKIP: " + msg)
        sys.exit(77)
    raise SystemExit("FAIL: " + msg)


def artifact_dir():
    d = os.environ.get("LTVSYNC_ARTIFACT_DIR")
    if not d:
        d = os.path.join(os.path.dirname(os.path.abspath(h.BIN_DIR or ".")), "test-artifacts")
    os.makedirs(d, exist_ok=True)
    return d


def new_driver():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--window-size=1280,800", "--no-first-run", "--disable-extensions",
              "--lang=en-US"):
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)


def set_value(d, elem_id, value):
    """Sets an input's value as a user would (date inputs take no portable keys)."""
    d.execute_script(
        "var e = document.getElementById(arguments[0]); e.value = arguments[1];"
        "e.dispatchEvent(new Event('input', {bubbles: true}));"
        "e.dispatchEvent(new Event('change', {bubbles: true}));", elem_id, value)


def type_into(d, elem_id, text):
    from selenium.webdriver.common.by import By
    e = d.find_element(By.ID, elem_id)
    e.clear()
    e.send_keys(text)


def fill_connect(d, sim, password, start):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select
    Select(d.find_element(By.ID, "c-brand")).select_by_value("konnektive")
    type_into(d, "c-api_username", CRM_LOGIN)
    type_into(d, "c-password", password)
    type_into(d, "c-account_name", ACCOUNT_NAME)
    type_into(d, "c-account_username", "console")
    Select(d.find_element(By.ID, "c-timezone")).select_by_value(TZ)
    set_value(d, "c-import_from", start)
    Select(d.find_element(By.ID, "c-sync_interval")).select_by_value("1h")
    details = d.find_element(By.CSS_SELECTOR, "details.dev")
    if not details.get_attribute("open"):
        details.find_element(By.TAG_NAME, "summary").click()
    type_into(d, "c-base_url", sim.url)


def card_state(d):
    """{stream: pct} of the integration's progress bars and its badge text."""
    bars = d.execute_script(
        "var c = document.querySelector('article.card[data-id=\"' + arguments[0] + '\"]');"
        "if (!c) return null;"
        "var out = {};"
        "c.querySelectorAll('.bar[role=progressbar]').forEach(function (b) {"
        "  out[b.getAttribute('data-stream')] = parseInt(b.getAttribute('aria-valuenow'), 10); });"
        "return {bars: out, badge: c.querySelector('.badge').textContent,"
        "        text: c.textContent};", INTEG_ID)
    return bars


def main():
    browser_or_exit()
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    out_dir = artifact_dir()
    shot = os.path.join(out_dir, "console_browser.png")
    with h.Stack("console-browser") as st:
        tokens_file, tokens = ltapi.write_tokens(st, (("console", "admin"),))
        token = tokens["console"]
        key = ltapi.write_seal_key(st)
        env = dict(SERVICE_ENV)
        env.update({"LTVSYNC_SEAL_KEY_FILE": key, "LTVSYNC_CRM_ALLOW_INSECURE": "1",
                    "LTVSYNC_FETCH_CONCURRENCY": "4"})

        today = datetime.datetime.now(ZoneInfo(TZ)).date()
        start = (today - datetime.timedelta(days=DAYS - 1)).isoformat()
        st.start_redis()
        st.start_devbroker(partitions=2)
        sim = st.start_crmsim(seed=5, customers=6, start=start, days=DAYS, timezone=TZ,
                              currency="USD", login_id=CRM_LOGIN, password=CRM_PASSWORD,
                              latency_ms=5, timeout=60)
        services = [st.start_service(n, env) for n in
                    ("ltvsync-scheduler", "ltvsync-fetcher", "ltvsync-normalizer",
                     "ltvsync-sink")]
        api = ltapi.start_api(st, env, tokens_file, key)
        client = ltapi.Client(api.base, token)   # responses checked against openapi.yaml

        # The '&' rule, straight from the API: a field error for password.
        bad = {"id": "amp-check", "brand": "konnektive", "base_url": sim.url,
               "api_username": CRM_LOGIN, "password": "pa&ss", "account_name": "Amp",
               "account_username": "amp", "timezone": TZ, "import_from": start}
        r = client.post("/v1/integrations", bad)
        status, headers, doc = r.status, r.headers, r.body
        assert status == 400, (status, doc)
        assert headers.get("Content-Type", "").startswith("application/problem+json"), headers
        assert doc.get("type") == "urn:ltvsync:problem:validation", doc
        assert any(e.get("field") in ("password", "password_ref") for e in doc.get("errors", [])), doc

        d = new_driver()
        try:
            wait = WebDriverWait(d, 30)
            d.get(api.base + "/")
            wait.until(lambda d: d.find_element(By.ID, "token").is_displayed())
            type_into(d, "token", "not-the-token-at-all")
            d.find_element(By.CSS_SELECTOR, "#login-form button[type=submit]").click()
            wait.until(lambda d: "not accepted" in d.find_element(By.ID, "token-error").text)
            type_into(d, "token", token)
            d.find_element(By.CSS_SELECTOR, "#login-form button[type=submit]").click()
            wait.until(lambda d: d.find_element(By.ID, "app").is_displayed())
            assert d.execute_script("return sessionStorage.getItem('ltvsync.api.token')") == token

            # 1. the error path: a password with '&'
            fill_connect(d, sim, "pa&ss", start)
            assert d.find_element(By.ID, "c-id").get_attribute("value") == INTEG_ID, \
                d.find_element(By.ID, "c-id").get_attribute("value")
            d.find_element(By.ID, "connect-submit").click()
            wait.until(lambda d: d.find_element(By.ID, "c-password-error").text.strip())
            pw_err = d.find_element(By.ID, "c-password-error").text
            assert "&" in pw_err, pw_err
            assert d.find_element(By.ID, "c-password").get_attribute("aria-invalid") == "true"
            assert d.find_element(By.ID, "connect-error").is_displayed()
            print("'&' password: field error %r" % pw_err)
            r = client.get("/v1/integrations")
            status, doc = r.status, r.body
            assert status == 200 and not doc["items"], doc

            # 2. connect for real
            fill_connect(d, sim, CRM_PASSWORD, start)
            d.find_element(By.ID, "connect-submit").click()
            WebDriverWait(d, 90).until(
                lambda d: "Connected" in d.find_element(By.ID, "connect-progress").text or
                d.find_element(By.ID, "connect-error").is_displayed())
            assert not d.find_element(By.ID, "connect-error").is_displayed(), \
                d.find_element(By.ID, "connect-error").text
            assert d.find_element(By.ID, "c-password").get_attribute("value") == ""

            # 3. progress to 100 % on every stream, then "up to date"
            last = [None]
            t0 = time.monotonic()

            def synced():
                for p in services + [api]:
                    p.check_alive()
                s = card_state(d)
                if s != last[0]:
                    last[0] = s
                    if s:
                        print("%5.1fs %s %s" % (time.monotonic() - t0, s["badge"], s["bars"]))
                if not s:
                    return False
                if s["badge"] == "parked":
                    raise AssertionError("integration parked: %s" % s["text"])
                return set(s["bars"]) == set(STREAMS) and \
                    all(v == 100 for v in s["bars"].values()) and s["badge"] == "up to date"
            h.wait_until(synced, 180, "every stream at 100 % in the console", interval=0.5)
            state = card_state(d)
            assert ACCOUNT_NAME in state["text"], state["text"]
            assert not d.find_elements(By.CSS_SELECTOR, "article.card h3 b"), "markup injected"
            r = client.get("/v1/integrations/" + INTEG_ID)
            status, integ = r.status, r.body
            assert status == 200 and "password" not in integ, integ
            assert integ["password_ref"].startswith("sealed:"), integ
            time.sleep(2.5)  # one more poll: rate and ETA columns settle
            d.execute_script("window.scrollTo(0, 0)")
            d.save_screenshot(shot)

            # 4. the reconcile table for the synced days
            set_value(d, "r-from", start)
            set_value(d, "r-to", (today - datetime.timedelta(days=1)).isoformat())
            d.find_element(By.ID, "r-submit").click()
            WebDriverWait(d, 120).until(
                lambda d: d.find_elements(By.CSS_SELECTOR, "#reconcile-result table.reconcile") or
                d.find_element(By.ID, "reconcile-error").is_displayed())
            assert not d.find_element(By.ID, "reconcile-error").is_displayed(), \
                d.find_element(By.ID, "reconcile-error").text
            print("reconcile:", d.find_element(By.ID, "reconcile-result").text.splitlines()[0])
            full = d.execute_cdp_cmd("Page.captureScreenshot",
                                     {"format": "png", "captureBeyondViewport": True})
            with open(os.path.join(out_dir, "console_browser_full.png"), "wb") as f:
                f.write(base64.b64decode(full["data"]))

            severe = [l for l in d.get_log("browser")
                      if l.get("level") == "SEVERE" and "status of 4" not in l.get("message", "")]
            assert not severe, severe
        except BaseException:
            try:
                d.save_screenshot(os.path.join(out_dir, "console_browser_failure.png"))
                for l in d.get_log("browser"):
                    print("browser:", l)
            except Exception:  # noqa: BLE001 - best effort on the way out
                pass
            raise
        finally:
            d.quit()

        # The typed password reached nothing in clear: no topic, no log.
        leaks = [t for t in ("ltvsync.integrations", "ltvsync.raw", "ltvsync.events")
                 if any(CRM_PASSWORD.encode() in (m.value or b"") for m in st.consume_all(t))]
        leaks += [n for n in os.listdir(st.tmp) if n.endswith(".log") and
                  CRM_PASSWORD.encode() in open(st.path(n), "rb").read()]
        assert not leaks, "the password in clear in: %s" % leaks
        for p in services + [api]:
            assert st.stop(p) == 0, "%s did not exit 0 on SIGTERM" % p.name
    print("ok: screenshot %s" % shot)


if __name__ == "__main__":
    main()
