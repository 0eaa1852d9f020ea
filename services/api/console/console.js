/* ltvsync operator console: plain JavaScript against the ltvsync-api
 * endpoints (/v1/...). Data from the API is only ever put into the page with
 * textContent / value (never innerHTML). */
"use strict";

(function () {
  var TOKEN_KEY = "ltvsync.api.token";
  var POLL_MS = 2000;
  var DLQ_POLL_MS = 10000;
  var RATE_WINDOW_MS = 60000; /* rate and ETA from the last minute of polls */
  var STREAMS = ["transactions", "orders", "customers", "purchases", "campaigns"];
  var ZONES = [
    "America/New_York", "America/Chicago", "America/Denver", "America/Phoenix",
    "America/Los_Angeles", "America/Anchorage", "Pacific/Honolulu", "America/Toronto",
    "America/Vancouver", "America/Mexico_City", "America/Sao_Paulo", "Europe/London",
    "Europe/Dublin", "Europe/Lisbon", "Europe/Paris", "Europe/Berlin", "Europe/Madrid",
    "Europe/Amsterdam", "Europe/Stockholm", "Europe/Warsaw", "Europe/Athens",
    "Europe/Istanbul", "Asia/Dubai", "Asia/Kolkata", "Asia/Singapore", "Asia/Hong_Kong",
    "Asia/Shanghai", "Asia/Tokyo", "Australia/Perth", "Australia/Sydney",
    "Pacific/Auckland", "UTC"
  ];
  var FIELD_IDS = ["brand", "api_username", "password", "account_name", "account_username",
                   "id", "timezone", "import_from", "sync_interval", "base_url", "currency"];

  var $ = function (id) { return document.getElementById(id); };
  var state = {
    token: null,
    integrations: [],      /* GET /v1/integrations items */
    status: {},            /* id -> status document */
    dlq: null,             /* GET /v1/dlq array, or null when not read */
    dlqError: null,
    samples: {},           /* "id/stream" -> [{t, done}] */
    cards: {},             /* id -> {root, parts...} */
    pollTimer: null,
    polling: false,
    dlqPolling: false,
    lastDlq: 0,
    pausedUntil: 0,
    idEdited: false,
    syncFor: null
  };

  /* ---------- small DOM helpers (text only) ---------- */

  function el(tag, attrs, children) {
    var e = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (k) {
        if (k === "text") e.textContent = attrs[k];
        else if (k === "class") e.className = attrs[k];
        else if (k === "hidden") e.hidden = !!attrs[k];
        else e.setAttribute(k, attrs[k]);
      });
    }
    (children || []).forEach(function (c) {
      if (c == null) return;
      e.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    });
    return e;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  function fmtInt(n) {
    return (typeof n === "number" && isFinite(n)) ? n.toLocaleString("en-US") : "–";
  }

  function fmtDuration(sec) {
    if (!isFinite(sec) || sec < 0) return "–";
    sec = Math.round(sec);
    if (sec < 60) return sec + " s";
    var m = Math.floor(sec / 60), s = sec % 60;
    if (m < 60) return m + " min" + (s ? " " + s + " s" : "");
    var h = Math.floor(m / 60);
    m = m % 60;
    if (h < 48) return h + " h" + (m ? " " + m + " min" : "");
    return Math.round(h / 24) + " days";
  }

  function isoDay(d) {
    var mm = String(d.getMonth() + 1).padStart(2, "0");
    var dd = String(d.getDate()).padStart(2, "0");
    return d.getFullYear() + "-" + mm + "-" + dd;
  }

  function daysAgo(n) {
    var d = new Date();
    d.setDate(d.getDate() - n);
    return isoDay(d);
  }

  function showBanner(text, kind) {
    var b = $("banner");
    b.textContent = text;
    b.className = "banner" + (kind ? " " + kind : "");
    b.hidden = !text;
  }

  /* ---------- the API ---------- */

  /* Resolves to {status, ok, data, problem, headers}; never rejects (a
   * network failure is status 0 with a problem). */
  function api(method, path, body) {
    var opts = {method: method, headers: {"Accept": "application/json, application/problem+json"}};
    if (state.token) opts.headers["Authorization"] = "Bearer " + state.token;
    if (body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    return fetch(path, opts).then(function (resp) {
      return resp.text().then(function (text) {
        var data = null;
        if (text) {
          try { data = JSON.parse(text); } catch (e) { data = null; }
        }
        var r = {status: resp.status, ok: resp.ok, data: resp.ok ? data : null,
                 problem: null, headers: resp.headers};
        if (!resp.ok) {
          r.problem = (data && typeof data === "object") ? data :
            {title: "HTTP " + resp.status, detail: text.slice(0, 300)};
          if (resp.status === 401) onUnauthorized();
          if (resp.status === 429) {
            var ra = parseInt(resp.headers.get("Retry-After") || "2", 10);
            state.pausedUntil = Date.now() + (isFinite(ra) ? ra : 2) * 1000;
          }
        }
        return r;
      });
    }, function (err) {
      return {status: 0, ok: false, data: null, headers: null,
              problem: {title: "The console could not reach the ltvsync API",
                        detail: String(err && err.message || err)}};
    });
  }

  function slug(problem) {
    var t = (problem && problem.type) || "";
    var i = t.lastIndexOf(":");
    return i >= 0 ? t.slice(i + 1) : t;
  }

  /* A sentence for an operator or merchant about a problem document. */
  function problemText(r) {
    var p = r.problem || {};
    var detail = typeof p.detail === "string" ? p.detail : "";
    switch (slug(p) || String(r.status)) {
      case "unauthorized":
        return "The API token was not accepted. Sign in again.";
      case "forbidden":
        return "This token may only read. Use an admin token to change anything.";
      case "not-found":
        return "Not found" + (detail ? ": " + detail : ". It may have been removed.");
      case "conflict":
        return detail || "An integration with this id exists already.";
      case "confirmation-required":
        return detail || "This change needs an explicit confirmation.";
      case "too-large":
        return "The request was too large for the API.";
      case "crm-rejected":
        return detail || "The CRM refused the connection.";
      case "crm-unreachable":
        return "ltvsync could not reach the CRM" + (detail ? ": " + detail : ".") +
          " Check the CRM's address, or try again in a minute.";
      case "rate-limited":
        return "Too many requests from this token; the console slows down and retries.";
      case "unavailable":
        return "ltvsync's backend (Kafka or Redis) is not answering right now" +
          (detail ? " (" + detail + ")" : "") + ". Try again shortly.";
      case "validation":
        return detail || "Some fields need attention.";
      default:
        return (p.title || "Request failed") + (detail ? ": " + detail : "") +
          (r.status ? " (HTTP " + r.status + ")" : "");
    }
  }

  /* ---------- sign-in ---------- */

  function onUnauthorized() {
    if (!state.token) return;
    state.token = null;
    try { sessionStorage.removeItem(TOKEN_KEY); } catch (e) { /* private mode */ }
    stopPolling();
    showLogin("The token was not accepted (or was revoked). Enter it again.");
  }

  function showLogin(msg) {
    $("app").hidden = true;
    $("top-status").hidden = true;
    $("login").hidden = false;
    $("token-error").textContent = msg || "";
    $("token").value = "";
    $("token").focus();
  }

  function showApp() {
    $("login").hidden = true;
    $("app").hidden = false;
    $("top-status").hidden = false;
    startPolling();
  }

  function setupLogin() {
    $("login-form").addEventListener("submit", function (ev) {
      ev.preventDefault();
      var t = $("token").value.trim();
      if (!t) {
        $("token-error").textContent = "Enter the API token.";
        return;
      }
      state.token = t;
      $("token-error").textContent = "Checking…";
      api("GET", "/v1/integrations").then(function (r) {
        if (r.status === 401) {
          state.token = null;
          $("token-error").textContent = "That token was not accepted.";
          return;
        }
        if (!r.ok && r.status === 0) {
          state.token = null;
          $("token-error").textContent = problemText(r);
          return;
        }
        try { sessionStorage.setItem(TOKEN_KEY, t); } catch (e) { /* kept in memory only */ }
        $("token-error").textContent = "";
        if (r.ok) state.integrations = (r.data && r.data.items) || [];
        showApp();
      });
    });
    $("forget-token").addEventListener("click", function () {
      try { sessionStorage.removeItem(TOKEN_KEY); } catch (e) { /* ignore */ }
      state.token = null;
      stopPolling();
      showLogin("");
    });
  }

  /* ---------- polling ---------- */

  function startPolling() {
    stopPolling();
    poll();
  }

  function stopPolling() {
    if (state.pollTimer) clearTimeout(state.pollTimer);
    state.pollTimer = null;
  }

  function schedule() {
    stopPolling();
    if (!state.token) return;
    var wait = Math.max(POLL_MS, state.pausedUntil - Date.now());
    state.pollTimer = setTimeout(poll, wait);
  }

  function poll() {
    if (!state.token || state.polling) return;
    state.polling = true;
    Promise.all([api("GET", "/v1/integrations"), api("GET", "/v1/status")]).then(function (rs) {
      state.polling = false;
      if (!state.token) return;
      var li = rs[0], st = rs[1];
      var problems = [];
      if (li.ok) state.integrations = (li.data && li.data.items) || [];
      else problems.push(problemText(li));
      if (st.ok) {
        var arr = Array.isArray(st.data) ? st.data : (st.data ? [st.data] : []);
        var now = Date.now();
        state.status = {};
        arr.forEach(function (s) {
          if (s && s.id) {
            state.status[s.id] = s;
            sample(s, now);
          }
        });
      } else if (st.status !== 401) {
        problems.push(problemText(st));
      }
      showBanner(problems.length ? problems[0] : "", problems.length ? "warn" : "");
      render();
      $("last-update").textContent = "updated " + new Date().toLocaleTimeString();
      maybePollDlq();
      schedule();
    });
  }

  function maybePollDlq() {
    if (state.dlqPolling || Date.now() - state.lastDlq < DLQ_POLL_MS) return;
    state.dlqPolling = true;
    api("GET", "/v1/dlq").then(function (r) {
      state.dlqPolling = false;
      state.lastDlq = Date.now();
      if (r.ok) {
        state.dlq = Array.isArray(r.data) ? r.data :
          (r.data && Array.isArray(r.data.items) ? r.data.items : []);
        state.dlqError = null;
      } else {
        state.dlqError = problemText(r);
      }
      renderDlqTotal();
      render();
    });
  }

  /* Progress samples for rate and ETA. */
  function sample(s, now) {
    Object.keys(s.streams || {}).forEach(function (name) {
      var key = s.id + "/" + name, done = s.streams[name].days_done;
      var list = state.samples[key] || (state.samples[key] = []);
      if (list.length && done < list[list.length - 1].done) list.length = 0; /* reset */
      list.push({t: now, done: done});
      while (list.length > 2 && now - list[0].t > RATE_WINDOW_MS) list.shift();
    });
  }

  /* Days per second of one stream over the sampled window, or null. */
  function rateOf(id, name) {
    var list = state.samples[id + "/" + name];
    if (!list || list.length < 2) return null;
    var a = list[0], b = list[list.length - 1];
    if (b.t - a.t < 1000) return null;
    return (b.done - a.done) / ((b.t - a.t) / 1000);
  }

  /* ---------- DLQ ---------- */

  function letterIntegration(letter) {
    if (!letter || typeof letter !== "object") return null;
    if (typeof letter.integration_id === "string") return letter.integration_id;
    if (typeof letter.key === "string" && letter.key.indexOf("/") > 0)
      return letter.key.slice(0, letter.key.indexOf("/"));
    if (typeof letter.value === "string") {
      try {
        var v = JSON.parse(letter.value);
        if (v && typeof v.integration_id === "string") return v.integration_id;
      } catch (e) { /* not JSON */ }
    }
    return null;
  }

  function dlqCount(id) {
    if (!state.dlq) return null;
    return state.dlq.filter(function (l) { return letterIntegration(l) === id; }).length;
  }

  function renderDlqTotal() {
    var t = $("dlq-total");
    if (state.dlqError) {
      t.textContent = "DLQ: not readable";
      t.title = state.dlqError;
      t.className = "pill warn";
    } else if (state.dlq) {
      t.textContent = "DLQ: " + fmtInt(state.dlq.length) + " dead letter" +
        (state.dlq.length === 1 ? "" : "s");
      t.title = "Rows ltvsync could not turn into events (all integrations)";
      t.className = "pill" + (state.dlq.length ? " warn" : " good");
    }
  }

  /* ---------- advice for errors and parked integrations ---------- */

  function advice(msg) {
    var m = (msg || "").toLowerCase();
    if (!m) return "";
    if (m.indexOf("whitelist") >= 0 || m.indexOf("allow-list") >= 0 || m.indexOf("ip address") >= 0)
      return "The CRM refused the caller's IP address. Add the cluster's egress IP to the API " +
        "user's IP allow-list in the CRM, press Test, then Resume.";
    if (m.indexOf("permission") >= 0 || m.indexOf("access") >= 0)
      return "The API user lacks a permission. Tick the query permissions (Query Transactions, " +
        "Orders, Customers, Purchases, Campaigns) on the API user in the CRM, press Test, then Resume.";
    if (m.indexOf("password") >= 0 || m.indexOf("login") >= 0 || m.indexOf("credential") >= 0 ||
        m.indexOf("invalid") >= 0 || m.indexOf("auth") >= 0)
      return "The CRM rejected the API login. Check the API username and password in the CRM " +
        "(the password must not contain &), press Test, then Resume.";
    if (m.indexOf("timeout") >= 0 || m.indexOf("timed out") >= 0 || m.indexOf("connect") >= 0 ||
        m.indexOf("resolve") >= 0 || m.indexOf("http 5") >= 0)
      return "The CRM did not answer in time. ltvsync retries by itself; if this persists, check " +
        "the CRM's status.";
    if (m.indexOf("429") >= 0 || m.indexOf("rate") >= 0)
      return "The CRM asked ltvsync to slow down; it waits and retries. Lower the request rate " +
        "if this keeps happening.";
    return "Fix the cause in the CRM, press Test to check, then Resume.";
  }

  /* ---------- integration cards ---------- */

  function render() {
    var list = $("integrations");
    var ids = state.integrations.map(function (i) { return i.id; });
    $("no-integrations").hidden = ids.length > 0;
    Object.keys(state.cards).forEach(function (id) {
      if (ids.indexOf(id) < 0) {
        list.removeChild(state.cards[id].root);
        delete state.cards[id];
      }
    });
    state.integrations.forEach(function (integ) {
      var card = state.cards[integ.id] || (state.cards[integ.id] = makeCard(integ));
      if (card.root.parentNode !== list) list.appendChild(card.root);
      updateCard(card, integ, state.status[integ.id]);
    });
    fillReconcileSelect();
  }

  function makeCard(integ) {
    var c = {};
    c.id = integ.id;
    c.title = el("h3", {id: "h-" + integ.id});
    c.badge = el("span", {class: "badge"});
    c.meta = el("p", {class: "meta"});
    c.summary = el("p", {class: "summary"});
    c.problem = el("div", {class: "problem", role: "status", "aria-live": "polite", hidden: true});
    c.replay = el("p", {class: "replay", hidden: true});
    c.table = el("table", {class: "streams"});
    c.msg = el("p", {class: "action-msg", role: "status", "aria-live": "polite"});
    var bTest = el("button", {type: "button", text: "Test connection"});
    var bSync = el("button", {type: "button", text: "Sync a range…"});
    var bReplay = el("button", {type: "button", class: "danger", text: "Replay…"});
    c.bResume = el("button", {type: "button", class: "primary", text: "Resume", hidden: true});
    [bTest, bSync, bReplay, c.bResume].forEach(function (b) {
      b.setAttribute("aria-describedby", "h-" + integ.id);
    });
    bTest.addEventListener("click", function () { doTest(c, bTest); });
    bSync.addEventListener("click", function () { openSync(integ.id); });
    bReplay.addEventListener("click", function () { doReplay(c, bReplay); });
    c.bResume.addEventListener("click", function () { doResume(c); });
    c.root = el("article", {class: "card", "data-id": integ.id, "aria-labelledby": "h-" + integ.id}, [
      el("div", {class: "card-head"}, [c.title, c.badge]),
      c.meta, c.summary, c.problem, c.replay, c.table,
      el("div", {class: "actions"}, [bTest, bSync, bReplay, c.bResume]),
      c.msg
    ]);
    return c;
  }

  function brandName(b) {
    return b === "checkoutchamp" ? "Checkout Champ" : b === "konnektive" ? "Konnektive" : (b || "");
  }

  function updateCard(c, integ, s) {
    c.title.textContent = (integ.account_name || integ.id) + " ";
    c.title.appendChild(el("span", {class: "id", text: "(" + integ.id + ")"}));
    c.meta.textContent = [brandName(integ.brand), integ.timezone,
      "importing from " + integ.import_from, "syncs every " + integ.sync_interval,
      integ.currency].filter(Boolean).join(" · ");

    var streams = s && s.streams ? s.streams : {};
    var names = STREAMS.filter(function (n) { return streams[n]; })
      .concat(Object.keys(streams).filter(function (n) { return STREAMS.indexOf(n) < 0; }));
    var done = 0, total = 0, rows = 0, errors = 0;
    names.forEach(function (n) {
      done += streams[n].days_done || 0;
      total += streams[n].days_total || 0;
      rows += streams[n].rows || 0;
      errors += streams[n].errors || 0;
    });
    var parked = s && s.state === "parked";
    var complete = s && !parked && total > 0 && done >= total && !s.outstanding_jobs;
    var label, cls;
    if (!s) { label = "no status yet"; cls = "badge"; }
    else if (parked) { label = "parked"; cls = "badge bad"; }
    else if (s.state && s.state !== "ok") { label = s.state; cls = "badge warn"; }
    else if (complete) { label = "up to date"; cls = "badge good"; }
    else { label = "syncing"; cls = "badge busy"; }
    c.badge.textContent = label;
    c.badge.className = cls;
    c.bResume.hidden = !parked;

    var dl = dlqCount(integ.id);
    var bits = [];
    if (s) {
      bits.push("Complete through " + (s.complete_through || "– (first day not done yet)"));
      bits.push(fmtInt(rows) + " rows read");
      bits.push(fmtInt(s.outstanding_jobs) + " jobs outstanding");
      bits.push(fmtInt(s.in_flight) + " of " + fmtInt(s.max_in_flight) + " requests in flight, " +
        fmtInt(s.max_requests_per_second) + "/s max");
    }
    bits.push(dl == null ? "DLQ: –" : "DLQ: " + fmtInt(dl));
    c.summary.textContent = bits.join(" · ");

    /* last error or parked reason, with what to do */
    clear(c.problem);
    var lastErr = "";
    names.forEach(function (n) {
      if (!lastErr && streams[n].last_error) lastErr = n + ": " + streams[n].last_error;
    });
    if (parked) {
      c.problem.hidden = false;
      c.problem.className = "problem bad";
      c.problem.appendChild(el("p", null, [el("strong", {text: "Sync stopped (parked): "}),
        s.reason || "no reason recorded"]));
      c.problem.appendChild(el("p", {class: "advice", text: advice(s.reason)}));
    } else if (lastErr) {
      /* The status keeps a stream's last error after later successes (no time
       * of it in the document): a warning while syncing, a note once done. */
      c.problem.hidden = false;
      c.problem.className = complete ? "problem note" : "problem warn";
      c.problem.appendChild(el("p", null, [el("strong", {text: "Last error recorded" +
        (errors ? " (" + fmtInt(errors) + " error" + (errors === 1 ? "" : "s") + " so far)" : "") + ": "}),
        lastErr]));
      c.problem.appendChild(el("p", {class: "advice", text: advice(lastErr)}));
    } else {
      c.problem.hidden = true;
    }

    if (s && s.replay) {
      var rp = s.replay, pct = rp.total ? Math.min(100, Math.floor(100 * rp.done / rp.total)) : 0;
      c.replay.hidden = false;
      c.replay.textContent = "Replay " + rp.state + ": " + fmtInt(rp.done) + " of " +
        fmtInt(rp.total) + " raw rows (" + pct + " %)";
    } else {
      c.replay.hidden = true;
    }

    renderStreams(c, integ.id, streams, names);
  }

  function renderStreams(c, id, streams, names) {
    var t = c.table;
    clear(t);
    t.appendChild(el("caption", {class: "sr-only", text: "Streams of " + id}));
    var head = el("tr", null, ["Stream", "Progress", "Days", "Rate", "ETA", "Complete through",
      "Rows", "Pages", "Errors"].map(function (h) { return el("th", {scope: "col", text: h}); }));
    t.appendChild(el("thead", null, [head]));
    var body = el("tbody");
    if (!names.length) {
      body.appendChild(el("tr", null, [el("td", {colspan: "9", class: "muted",
        text: "Waiting for the first status…"})]));
    }
    names.forEach(function (n) {
      var st = streams[n];
      var total = st.days_total || 0, done = Math.min(st.days_done || 0, total || 0);
      var pct = total > 0 ? Math.floor(100 * done / total) : 100;
      var rate = rateOf(id, n), rateText = "–", etaText = "–";
      if (total > 0 && done >= total) { etaText = "done"; rateText = "–"; }
      else if (rate != null && rate > 0) {
        rateText = (rate * 60).toFixed(rate * 60 >= 10 ? 0 : 1) + " days/min";
        etaText = fmtDuration((total - done) / rate);
      } else if (rate === 0) {
        rateText = "0 days/min";
        etaText = "waiting";
      }
      var fill = el("div", {class: "fill" + (pct >= 100 ? " full" : "")});
      fill.style.width = pct + "%";
      var bar = el("div", {class: "bar", role: "progressbar", "aria-valuemin": "0",
        "aria-valuemax": "100", "aria-valuenow": String(pct),
        "aria-label": n + ": " + done + " of " + total + " days", "data-stream": n,
        "data-pct": String(pct)}, [fill]);
      body.appendChild(el("tr", {"data-stream": n}, [
        el("th", {scope: "row", text: n}),
        el("td", {class: "progress"}, [bar, el("span", {class: "pct", text: pct + " %"})]),
        el("td", {class: "num", text: fmtInt(done) + " / " + fmtInt(total)}),
        el("td", {class: "num", text: rateText}),
        el("td", {class: "num", text: etaText}),
        el("td", {text: st.complete_through || "–"}),
        el("td", {class: "num", text: fmtInt(st.rows)}),
        el("td", {class: "num", text: fmtInt(st.pages)}),
        el("td", {class: "num" + (st.errors ? " bad-text" : ""), text: fmtInt(st.errors),
                   title: st.last_error || ""})
      ]));
    });
    t.appendChild(body);
  }

  /* ---------- card actions ---------- */

  function actionMsg(c, text, kind) {
    c.msg.textContent = text;
    c.msg.className = "action-msg" + (kind ? " " + kind : "");
  }

  function doTest(c, btn) {
    btn.disabled = true;
    actionMsg(c, "Testing the connection to the CRM…", "");
    api("POST", "/v1/integrations/" + encodeURIComponent(c.id) + "/test").then(function (r) {
      btn.disabled = false;
      if (r.ok) actionMsg(c, "Connection OK" + (r.data && r.data.message ? ": " + r.data.message : "."), "good");
      else actionMsg(c, "Test failed: " + problemText(r), "bad");
    });
  }

  function doReplay(c, btn) {
    var ok = window.confirm("Replay " + c.id + "?\n\nEvery event of this integration is rebuilt " +
      "from the raw rows ltvsync kept (no CRM calls; the live sync continues). Downstream " +
      "receives new versions of events whose content changed.");
    if (!ok) return;
    btn.disabled = true;
    api("POST", "/v1/integrations/" + encodeURIComponent(c.id) + "/replay").then(function (r) {
      btn.disabled = false;
      if (r.ok) actionMsg(c, "Replay started; its progress appears above.", "good");
      else actionMsg(c, "Replay not started: " + problemText(r), "bad");
    });
  }

  function doResume(c) {
    c.bResume.disabled = true;
    api("PATCH", "/v1/integrations/" + encodeURIComponent(c.id), {}).then(function (r) {
      c.bResume.disabled = false;
      if (r.ok) actionMsg(c, "Resumed: the sync picks up where it stopped.", "good");
      else actionMsg(c, "Could not resume: " + problemText(r), "bad");
      poll();
    });
  }

  function openSync(id) {
    var integ = state.integrations.filter(function (i) { return i.id === id; })[0];
    state.syncFor = id;
    $("sync-for").textContent = integ ? (integ.account_name || id) + " (" + id + ")" : id;
    $("s-from").value = "";
    $("s-to").value = "";
    $("sync-error").hidden = true;
    var box = $("s-streams");
    clear(box);
    var have = integ && Array.isArray(integ.streams) ? integ.streams : STREAMS;
    have.forEach(function (n) {
      var cb = el("input", {type: "checkbox", id: "s-stream-" + n, value: n});
      cb.checked = true;
      box.appendChild(el("label", {for: "s-stream-" + n, class: "check"}, [cb, " " + n]));
    });
    var d = $("sync-dialog");
    if (typeof d.showModal === "function") d.showModal();
    else d.setAttribute("open", "");
    $("s-from").focus();
  }

  function setupSync() {
    var d = $("sync-dialog");
    $("sync-cancel").addEventListener("click", function () { d.close(); });
    $("sync-form").addEventListener("submit", function (ev) {
      ev.preventDefault();
      var id = state.syncFor, body = {};
      var from = $("s-from").value, to = $("s-to").value;
      if (from) body.from = from;
      if (to) body.to = to;
      var streams = Array.prototype.slice.call(document.querySelectorAll("#s-streams input:checked"))
        .map(function (i) { return i.value; });
      if (!streams.length) {
        $("sync-error").textContent = "Choose at least one stream.";
        $("sync-error").hidden = false;
        return;
      }
      if (from && to && from > to) {
        $("sync-error").textContent = "The first day is after the last day.";
        $("sync-error").hidden = false;
        return;
      }
      body.streams = streams;
      $("sync-go").disabled = true;
      api("POST", "/v1/integrations/" + encodeURIComponent(id) + "/sync", body).then(function (r) {
        $("sync-go").disabled = false;
        var c = state.cards[id];
        if (r.ok) {
          d.close();
          var j = r.data || {};
          if (c) actionMsg(c, "Sync of " + (j.from || from || "the start") + " to " +
            (j.to || to || "yesterday") + " queued" +
            (typeof j.jobs === "number" ? " (" + fmtInt(j.jobs) + " jobs)" : "") + ".", "good");
        } else {
          var p = r.problem || {};
          var msg = problemText(r);
          if (Array.isArray(p.errors) && p.errors.length)
            msg = p.errors.map(function (e) { return (e.field ? e.field + ": " : "") + e.message; }).join("; ");
          $("sync-error").textContent = msg;
          $("sync-error").hidden = false;
        }
      });
    });
  }

  /* ---------- connect form ---------- */

  function deriveId(name) {
    return name.toLowerCase().normalize("NFKD").replace(/[\u0300-\u036f]/g, "")
      .replace(/[^a-z0-9]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 64).replace(/-+$/, "");
  }

  function setupConnect() {
    var tz = $("c-timezone");
    var local = "";
    try { local = Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (e) { /* old browser */ }
    var zones = ZONES.slice();
    if (local && zones.indexOf(local) < 0) zones.unshift(local);
    zones.forEach(function (z) { tz.appendChild(el("option", {value: z, text: z.replace(/_/g, " ")})); });
    tz.appendChild(el("option", {value: "__other", text: "Other (type the IANA name)…"}));
    tz.value = zones.indexOf("America/New_York") >= 0 ? "America/New_York" : zones[0];
    tz.addEventListener("change", function () {
      var other = tz.value === "__other";
      $("c-timezone-other").hidden = !other;
      if (other) $("c-timezone-other").focus();
    });

    var d = new Date();
    d.setFullYear(d.getFullYear() - 1);
    $("c-import_from").value = isoDay(d);
    $("c-import_from").max = isoDay(new Date());

    $("c-account_name").addEventListener("input", function () {
      if (!state.idEdited) $("c-id").value = deriveId($("c-account_name").value);
    });
    $("c-id").addEventListener("input", function () {
      state.idEdited = $("c-id").value !== "";
    });
    $("connect-form").addEventListener("submit", function (ev) {
      ev.preventDefault();
      submitConnect();
    });
  }

  function clearFieldErrors() {
    FIELD_IDS.forEach(function (f) {
      var e = $("c-" + f + "-error");
      if (e) e.textContent = "";
      var inp = $("c-" + f);
      if (inp) inp.removeAttribute("aria-invalid");
    });
    $("c-timezone-other").removeAttribute("aria-invalid");
    $("connect-error").hidden = true;
    $("connect-error").textContent = "";
  }

  /* The API's field name -> the form's field. */
  function formField(f) {
    f = String(f || "").replace(/^\/+/, "").replace(/^body\./, "");
    if (f === "password_ref") return "password";
    if (f === "max_requests_per_second" || f === "max_in_flight" || f === "streams") return null;
    return FIELD_IDS.indexOf(f) >= 0 ? f : null;
  }

  function fieldError(f, msg) {
    var e = $("c-" + f + "-error");
    e.textContent = e.textContent ? e.textContent + " " + msg : msg;
    var inp = f === "timezone" && tzValueIsOther() ? $("c-timezone-other") : $("c-" + f);
    inp.setAttribute("aria-invalid", "true");
    if (f === "base_url" || f === "currency") document.querySelector("details.dev").open = true;
    return inp;
  }

  function tzValueIsOther() { return $("c-timezone").value === "__other"; }

  function formBody() {
    var v = function (id) { return $(id).value.trim(); };
    var body = {
      id: v("c-id"),
      brand: $("c-brand").value,
      api_username: v("c-api_username"),
      password: $("c-password").value, /* exactly as typed */
      account_name: v("c-account_name"),
      account_username: v("c-account_username"),
      timezone: tzValueIsOther() ? v("c-timezone-other") : $("c-timezone").value,
      import_from: v("c-import_from"),
      sync_interval: $("c-sync_interval").value
    };
    if (v("c-base_url")) body.base_url = v("c-base_url");
    if (v("c-currency")) body.currency = v("c-currency").toUpperCase();
    return body;
  }

  /* Only what the API cannot tell better: empty required fields. */
  function localErrors(body) {
    var errs = [];
    [["api_username", "Enter the API user's login id."], ["password", "Enter the API password."],
     ["account_name", "Enter the account's name."], ["account_username", "Enter the account's username."],
     ["id", "Enter an id (lowercase letters, digits, dashes)."], ["timezone", "Choose the account's timezone."],
     ["import_from", "Choose the first day to import."]].forEach(function (p) {
      if (!body[p[0]]) errs.push({field: p[0], message: p[1]});
    });
    return errs;
  }

  function showConnectProblem(r) {
    var p = r.problem || {};
    var kind = slug(p), general = [], first = null;
    var errs = Array.isArray(p.errors) ? p.errors.slice() : [];
    /* A validation problem without `errors`: place the detail by the field it names. */
    if (kind === "validation" && !errs.length && typeof p.detail === "string") {
      var named = FIELD_IDS.concat(["password_ref"]).filter(function (f) {
        return new RegExp("(^|[^a-z_])" + f + "([^a-z_]|$)").test(p.detail);
      });
      if (named.length === 1) errs.push({field: named[0], message: p.detail});
    }
    errs.forEach(function (e) {
      var f = formField(e && e.field);
      var msg = e && e.message ? String(e.message) : "invalid";
      if (e && e.field && msg.indexOf(e.field + ": ") === 0) msg = msg.slice(e.field.length + 2);
      if (f) { var inp = fieldError(f, msg); first = first || inp; }
      else general.push((e && e.field ? e.field + ": " : "") + msg);
    });
    if (kind === "conflict") first = first || fieldError("id", "This id is taken: " +
      (p.detail || "an integration with this id exists already") + " Choose another id.");
    var box = $("connect-error");
    clear(box);
    var head;
    if (kind === "crm-rejected") head = "The CRM did not accept these details.";
    else if (kind === "validation") head = errs.length ? "Please correct the marked fields." : "Please check the form.";
    else if (kind === "conflict") head = "An integration with this id exists already.";
    else head = "Not connected.";
    box.appendChild(el("strong", {text: head}));
    var text = kind === "validation" || kind === "conflict" ?
      (errs.length || kind === "conflict" ? "" : (p.detail || "")) : problemText(r);
    if (text) box.appendChild(el("span", {class: "detail", text: " " + text}));
    if (general.length) {
      box.appendChild(el("ul", null, general.map(function (g) { return el("li", {text: g}); })));
    }
    box.hidden = false;
    if (first) first.focus();
  }

  function submitConnect() {
    clearFieldErrors();
    var body = formBody();
    var errs = localErrors(body);
    if (errs.length) {
      showConnectProblem({status: 400, problem: {type: "urn:ltvsync:problem:validation", errors: errs}});
      return;
    }
    var btn = $("connect-submit");
    btn.disabled = true;
    $("connect-progress").textContent = "Connecting: testing the login with the CRM…";
    api("POST", "/v1/integrations", body).then(function (r) {
      btn.disabled = false;
      if (r.ok) {
        var integ = r.data || {};
        $("connect-progress").textContent = "Connected " + (integ.account_name || body.account_name) +
          " (" + (integ.id || body.id) + "). The import has started; its progress shows above.";
        $("c-password").value = "";
        $("c-api_username").value = "";
        $("c-account_name").value = "";
        $("c-account_username").value = "";
        $("c-id").value = "";
        state.idEdited = false;
        poll();
      } else {
        $("connect-progress").textContent = "";
        showConnectProblem(r);
      }
    });
  }

  /* ---------- reconcile ---------- */

  function fillReconcileSelect() {
    var sel = $("r-id"), cur = sel.value;
    var ids = state.integrations.map(function (i) { return i.id; });
    var have = Array.prototype.map.call(sel.options, function (o) { return o.value; });
    if (have.join("\n") === ids.join("\n")) return;
    clear(sel);
    state.integrations.forEach(function (i) {
      sel.appendChild(el("option", {value: i.id, text: (i.account_name || i.id) + " (" + i.id + ")"}));
    });
    if (ids.indexOf(cur) >= 0) sel.value = cur;
    $("r-submit").disabled = !ids.length;
  }

  function setupReconcile() {
    $("r-from").value = daysAgo(7);
    $("r-to").value = daysAgo(1);
    $("reconcile-form").addEventListener("submit", function (ev) {
      ev.preventDefault();
      var id = $("r-id").value, from = $("r-from").value, to = $("r-to").value;
      var errBox = $("reconcile-error");
      errBox.hidden = true;
      if (!id) { errBox.textContent = "Choose an integration."; errBox.hidden = false; return; }
      if (!from || !to || from > to) {
        errBox.textContent = "Choose a first and a last day (the first not after the last).";
        errBox.hidden = false;
        return;
      }
      $("r-submit").disabled = true;
      $("reconcile-result").setAttribute("aria-busy", "true");
      $("reconcile-status").textContent = "Reading ltvsync's events and the CRM's summary…";
      var q = "?from=" + encodeURIComponent(from) + "&to=" + encodeURIComponent(to);
      api("GET", "/v1/integrations/" + encodeURIComponent(id) + "/reconcile" + q).then(function (r) {
        $("r-submit").disabled = false;
        $("reconcile-result").removeAttribute("aria-busy");
        if (!r.ok) {
          $("reconcile-status").textContent = "";
          errBox.textContent = problemText(r);
          errBox.hidden = false;
          return;
        }
        $("reconcile-status").textContent = "Compared " + from + " to " + to + " for " + id + ".";
        renderReconcile(r.data || {}, from, to);
      });
    });
  }

  var KINDS = [["sales", "Sales"], ["rebills", "Rebills"], ["refunds", "Refunds"],
               ["voids", "Voids"], ["chargebacks", "Chargebacks (on sale's day)"]];

  function pair(o) {
    o = o || {};
    var same = o.crm_count === o.ltvsync_count && o.crm_total === o.ltvsync_total;
    var td = el("td", {class: "num pair" + (same ? "" : " differs")});
    td.appendChild(el("span", {class: "crm", text: fmtInt(o.crm_count) + " · " + (o.crm_total || "–")}));
    td.appendChild(el("span", {class: "ltv", text: fmtInt(o.ltvsync_count) + " · " + (o.ltvsync_total || "–")}));
    return td;
  }

  function renderReconcile(doc, from, to) {
    var out = $("reconcile-result");
    clear(out);
    var days = Array.isArray(doc.days) ? doc.days : [];
    var active = days.filter(function (d) {
      return KINDS.some(function (k) { return d[k[0]] && (d[k[0]].crm_count || d[k[0]].ltvsync_count); }) ||
        d.chargebacks_happened;
    });
    var unexplained = doc.unexplained_days || 0;
    out.appendChild(el("p", {class: unexplained ? "bad-text" : "good-text",
      text: unexplained ? unexplained + " day(s) differ in a way chargeback dating does not explain." :
        "Every day matches the CRM once chargebacks are dated the CRM's way."}));
    var t = el("table", {class: "reconcile"});
    t.appendChild(el("caption", {text: "Per day: count · total, the CRM's above ltvsync's (counted the CRM's way). " +
      "Days without activity are left out (" + (days.length - active.length) + " of " + days.length + ")."}));
    var hr = el("tr", null, [el("th", {scope: "col", text: "Day"}), el("th", {scope: "col", text: "Counted by"})].concat(
      KINDS.map(function (k) { return el("th", {scope: "col", text: k[1]}); }),
      [el("th", {scope: "col", text: "Refunds + chargebacks, CRM (chargeback on sale's day)"}),
       el("th", {scope: "col", text: "Refunds + chargebacks, ltvsync (on the day it happened)"}),
       el("th", {scope: "col", text: "Chargebacks that happened"}),
       el("th", {scope: "col", text: "Check"})]));
    t.appendChild(el("thead", null, [hr]));
    var tb = el("tbody");
    active.forEach(function (d) {
      var crmV = d.refunds_plus_chargebacks_crm, ltvV = d.refunds_plus_chargebacks_ltvsync;
      var check = !d.matches ? "unexplained" : (crmV !== ltvV ? "chargeback dating" : "ok");
      var who = el("td", {class: "pair who"}, [el("span", {class: "crm", text: "CRM"}),
        el("span", {class: "ltv", text: "ltvsync"})]);
      tb.appendChild(el("tr", {class: d.matches ? "" : "row-bad"}, [el("th", {scope: "row", text: d.day}), who].concat(
        KINDS.map(function (k) { return pair(d[k[0]]); }),
        [el("td", {class: "num", text: crmV || "–"}), el("td", {class: "num", text: ltvV || "–"}),
         el("td", {class: "num", text: fmtInt(d.chargebacks_happened)}),
         el("td", {class: check === "unexplained" ? "bad-text" : check === "ok" ? "good-text" : "warn-text",
                   text: check})])));
    });
    if (!active.length) tb.appendChild(el("tr", null, [el("td", {colspan: "11", class: "muted",
      text: "No activity in this range."})]));
    t.appendChild(tb);
    out.appendChild(el("div", {class: "scroll"}, [t]));

    var moved = Array.isArray(doc.moved_chargebacks) ? doc.moved_chargebacks : [];
    out.appendChild(el("h3", {text: "Chargebacks counted on different days (" + moved.length + ")"}));
    if (moved.length) out.appendChild(el("ul", {class: "moved"}, moved.map(function (m) { return el("li", {text: String(m)}); })));
    else out.appendChild(el("p", {class: "muted", text: "None in this range."}));
    if (doc.chargebacks_without_sale)
      out.appendChild(el("p", {class: "muted", text: fmtInt(doc.chargebacks_without_sale) +
        " chargeback(s) whose sale is outside the events read."}));

    var revs = el("div", {class: "revenue"});
    [["by_product", "product_id", "Net revenue by product"], ["by_coupon", "coupon_code", "Net revenue by coupon"]]
      .forEach(function (spec) {
        var rows = Array.isArray(doc[spec[0]]) ? doc[spec[0]] : [];
        var tt = el("table", {class: "small"});
        tt.appendChild(el("caption", {text: spec[2] + ", " + from + " to " + to}));
        tt.appendChild(el("thead", null, [el("tr", null, [el("th", {scope: "col", text: spec[1] === "product_id" ? "Product" : "Coupon"}),
          el("th", {scope: "col", text: "Payments"}), el("th", {scope: "col", text: "Net"})])]));
        var b = el("tbody");
        rows.forEach(function (row) {
          b.appendChild(el("tr", null, [el("td", {text: String(row[spec[1]])}),
            el("td", {class: "num", text: fmtInt(row.payments)}), el("td", {class: "num", text: String(row.net)})]));
        });
        if (!rows.length) b.appendChild(el("tr", null, [el("td", {colspan: "3", class: "muted", text: "None."})]));
        tt.appendChild(b);
        revs.appendChild(tt);
      });
    out.appendChild(revs);
  }

  /* ---------- start ---------- */

  document.addEventListener("DOMContentLoaded", function () {
    setupLogin();
    setupConnect();
    setupSync();
    setupReconcile();
    var t = null;
    try { t = sessionStorage.getItem(TOKEN_KEY); } catch (e) { /* ignore */ }
    if (t) {
      state.token = t;
      showApp();
    } else {
      showLogin("");
    }
  });
})();
