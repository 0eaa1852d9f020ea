"""Helm chart and container image checks (no cluster, no Docker engine here).

Runs the real helm 3 binary (scripts/helm) on helm/ltvsync: `helm lint` and
`helm template` with the default values and helm/examples/values-production.yaml,
then reads the rendered manifests and checks what a deployment relies on:
probes, resources, security context, grace periods, the LTVSYNC_* environment
(mirroring the settings table in common/lt_config.c), the CRM password Secret
mounted as files, the topics Job, HPA / KEDA, PDBs and the ServiceMonitor.
Values the chart must refuse are tried too. The Dockerfile and compose file
are checked statically (hadolint, when Debian packages it; otherwise a note).
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

import yaml

SRC = os.environ.get("LTVSYNC_SRC_DIR") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.environ.get("LTVSYNC_BIN_DIR", "")
CHART = os.path.join(SRC, "helm", "ltvsync")
PROD = os.path.join(SRC, "helm", "examples", "values-production.yaml")
COMPONENTS = ("scheduler", "fetcher", "normalizer", "sink")
# Settings the chart derives from its own sections instead of `config:`.
CHART_OWNED = {"KAFKA_BOOTSTRAP_SERVERS", "DOWNSTREAM_BROKERS", "REDIS_URL",
               "HTTP_PORT", "CONFIG_FILE", "GROUP_ID",
               "CRM_CREDENTIALS_DIR",  # from crm.passwordsMountPath
               "REPLAY_INTEGRATION"}  # set by `ltvctl replay` for its child, never by the chart
SECRET_KEYS = ("password", "ecommercepassword", "achaccountnumber", "achroutingnumber")

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what, flush=True)
    return cond


def helm_binary():
    out = subprocess.run([os.path.join(SRC, "scripts", "helm")], check=True,
                         capture_output=True, text=True, timeout=300)
    path = out.stdout.strip().splitlines()[-1]
    ver = subprocess.run([path, "version", "--short"], check=True,
                         capture_output=True, text=True).stdout.strip()
    print("helm:", path, ver, flush=True)
    return path


def run_helm(helm, home, *args):
    env = dict(os.environ, HELM_CACHE_HOME=home, HELM_CONFIG_HOME=home,
               HELM_DATA_HOME=home, KUBECONFIG=os.path.join(home, "none"))
    return subprocess.run([helm, *args], capture_output=True, text=True,
                          env=env, timeout=120)


def render(helm, home, *values_args, chart=CHART):
    r = run_helm(helm, home, "template", "rel", chart, "--namespace", "ltv",
                 *values_args)
    if r.returncode != 0:
        raise RuntimeError("helm template failed: " + r.stderr)
    docs = [d for d in yaml.safe_load_all(r.stdout) if d]
    return docs


def by_kind(docs, kind):
    return [d for d in docs if d.get("kind") == kind]


def config_table():
    """Name -> default of every setting in common/lt_config.c."""
    text = open(os.path.join(SRC, "common", "lt_config.c")).read()
    table = {}
    for m in re.finditer(r'\{"([A-Z0-9_]+)",\s*LT_CFG_[A-Z]+,\s*(NULL|"((?:[^"\\]|\\.)*)")',
                         text):
        table[m.group(1)] = None if m.group(2) == "NULL" else m.group(3)
    return table


def env_of(container):
    return {e["name"]: e for e in container.get("env", [])}


def check_container_security(where, pod_spec, container):
    psc = pod_spec.get("securityContext", {})
    csc = container.get("securityContext", {})
    check(psc.get("runAsNonRoot") is True or csc.get("runAsNonRoot") is True,
          f"{where}: runAsNonRoot")
    check((csc.get("runAsUser") or psc.get("runAsUser") or 0) != 0, f"{where}: uid not 0")
    check(csc.get("readOnlyRootFilesystem") is True, f"{where}: readOnlyRootFilesystem")
    check(csc.get("allowPrivilegeEscalation") is False, f"{where}: allowPrivilegeEscalation false")
    check("ALL" in csc.get("capabilities", {}).get("drop", []), f"{where}: capabilities drop ALL")
    res = container.get("resources", {})
    check(res.get("requests", {}).get("cpu") and res.get("requests", {}).get("memory"),
          f"{where}: cpu and memory requests")
    check(res.get("limits", {}).get("memory"), f"{where}: memory limit")


def check_deployments(docs, values, label):
    deps = {d["metadata"]["labels"]["app.kubernetes.io/component"]: d
            for d in by_kind(docs, "Deployment")}
    check(set(deps) == set(COMPONENTS), f"{label}: Deployments {sorted(deps)}")
    table = config_table()
    for comp, dep in deps.items():
        where = f"{label}/{comp}"
        spec = dep["spec"]
        pod = spec["template"]["spec"]
        (c,) = pod["containers"]
        check(c.get("args") == [f"ltvsync-{comp}"], f"{where}: runs ltvsync-{comp}")
        for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
            p = c.get(probe, {}).get("httpGet", {})
            check(p.get("path") == path and p.get("port") == "http", f"{where}: {probe} on {path}")
        ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
        env = env_of(c)
        check(env.get("LTVSYNC_HTTP_PORT", {}).get("value") == str(ports.get("http")),
              f"{where}: LTVSYNC_HTTP_PORT matches the probed port")
        check_container_security(where, pod, c)
        # Graceful shutdown: the pod's grace must exceed the drain time.
        grace = env.get("LTVSYNC_SHUTDOWN_GRACE", {}).get("value", "25s")
        check(re.fullmatch(r"\d+s", grace) and pod["terminationGracePeriodSeconds"] > int(grace[:-1]),
              f"{where}: terminationGracePeriodSeconds {pod.get('terminationGracePeriodSeconds')} > {grace}")
        # Every settings key from values (global + component) reaches the env.
        settings = dict(values["config"])
        settings.update(values[comp].get("config") or {})
        for k, v in settings.items():
            if v == "" or v is None:
                continue
            check(env.get("LTVSYNC_" + k, {}).get("value") == str(v),
                  f"{where}: LTVSYNC_{k}={v!r} from values (got {env.get('LTVSYNC_' + k)})")
        for name, e in env.items():
            if not name.startswith("LTVSYNC_"):
                continue
            bare = name[len("LTVSYNC_"):]
            check(bare in table or bare.startswith(("KAFKA_", "DOWNSTREAM_KAFKA_")),
                  f"{where}: {name} is a setting of common/lt_config.c")
            low = bare.lower()
            if "password" in low or "secret" in low:
                check("valueFrom" in e and "value" not in e,
                      f"{where}: {name} comes from a Secret, not a literal")
        for e in env.values():
            check(not any(s in str(e.get("value", "")).lower() for s in ("local-demo-password",)),
                  f"{where}: no literal password in env")
        check(env.get("LTVSYNC_KAFKA_BOOTSTRAP_SERVERS", {}).get("value")
              == values["kafka"]["bootstrapServers"], f"{where}: Kafka brokers from values")
        check("LTVSYNC_REDIS_URL" in env, f"{where}: LTVSYNC_REDIS_URL")
        mounts = {m["mountPath"]: m for m in c.get("volumeMounts", [])}
        vols = {v["name"]: v for v in pod.get("volumes", [])}
        check("/tmp" in mounts, f"{where}: writable /tmp (read-only root)")
        crm_dir = values["crm"]["passwordsMountPath"]
        if comp == "fetcher":
            check(env.get("LTVSYNC_CRM_CREDENTIALS_DIR", {}).get("value") == crm_dir,
                  f"{where}: LTVSYNC_CRM_CREDENTIALS_DIR is the mounted {crm_dir}")
            check(env.get("LTVSYNC_CRM_ALLOW_INSECURE", {}).get("value") == "0",
                  f"{where}: https to allowed CRM hosts only (CRM_ALLOW_INSECURE 0)")
            m = mounts.get(crm_dir)
            if check(m is not None and m.get("readOnly"), f"{where}: CRM passwords at {crm_dir}"):
                srcs = [s["secret"]["name"] for s in vols[m["name"]]["projected"]["sources"]]
                check(srcs == values["crm"]["passwordSecrets"],
                      f"{where}: CRM password Secrets {srcs} projected as files")
        else:
            check(crm_dir not in mounts, f"{where}: no CRM passwords outside the fetcher")
        if comp == "fetcher":
            autoscaled = values["fetcher"]["autoscaling"]["enabled"] or values["fetcher"]["keda"]["enabled"]
            check(("replicas" not in spec) == bool(autoscaled),
                  f"{where}: replicas left to the autoscaler")
    sched = deps.get("scheduler")
    if sched:
        check(sched["spec"].get("replicas") == 2, f"{label}: scheduler has 2 replicas")
    return deps


def check_topics_job(docs, values, label):
    jobs = by_kind(docs, "Job")
    if not check(len(jobs) == 1, f"{label}: one topics Job"):
        return
    job = jobs[0]
    ann = job["metadata"].get("annotations", {})
    check("pre-install" in ann.get("helm.sh/hook", "") and "pre-upgrade" in ann.get("helm.sh/hook", ""),
          f"{label}: topics Job runs before install and upgrade")
    pod = job["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    check(c["args"][:3] == ["ltvctl", "topics", "create"], f"{label}: job runs ltvctl topics create")
    env = env_of(c)
    check(env.get("LTVSYNC_TOPIC_PARTITIONS", {}).get("value") == str(values["config"]["TOPIC_PARTITIONS"]),
          f"{label}: job partitions from values")
    for k in ("TOPIC_INTEGRATIONS", "TOPIC_JOBS_LIVE", "TOPIC_JOBS_BACKFILL", "TOPIC_RAW",
              "TOPIC_EVENTS", "TOPIC_DOWNSTREAM", "TOPIC_DLQ"):
        check(env.get("LTVSYNC_" + k, {}).get("value") == values["config"][k], f"{label}: job {k}")
    check(pod.get("restartPolicy") == "Never", f"{label}: job restartPolicy Never")
    check_container_security(f"{label}/topics-job", pod, c)


def check_scaling(docs, values, label, deps):
    f = values["fetcher"]
    hpas = by_kind(docs, "HorizontalPodAutoscaler")
    sos = by_kind(docs, "ScaledObject")
    fetcher_name = deps["fetcher"]["metadata"]["name"]
    if f["keda"]["enabled"]:
        check(not hpas, f"{label}: no chart HPA while KEDA owns the fetcher's")
        if check(len(sos) == 1, f"{label}: one ScaledObject"):
            so = sos[0]["spec"]
            check(so["scaleTargetRef"]["name"] == fetcher_name, f"{label}: ScaledObject targets the fetcher")
            kt = {t["metadata"]["topic"]: t["metadata"] for t in so["triggers"] if t["type"] == "kafka"}
            check(kt.get(values["config"]["TOPIC_JOBS_LIVE"], {}).get("consumerGroup") == "ltvsync-fetcher-live",
                  f"{label}: lag trigger on the live jobs topic, group ltvsync-fetcher-live")
            check(kt.get(values["config"]["TOPIC_JOBS_BACKFILL"], {}).get("consumerGroup") == "ltvsync-fetcher-backfill",
                  f"{label}: lag trigger on the backfill jobs topic, group ltvsync-fetcher-backfill")
            for t in kt.values():
                check(t["bootstrapServers"] == values["kafka"]["bootstrapServers"], f"{label}: KEDA brokers")
            if values["kafka"]["sasl"]["existingSecret"]:
                tas = by_kind(docs, "TriggerAuthentication")
                check(len(tas) == 1 and any(r["parameter"] == "password" and r["name"] == values["kafka"]["sasl"]["existingSecret"]
                                            for r in tas[0]["spec"].get("secretTargetRef", [])),
                      f"{label}: KEDA reads the SASL password from its Secret")
    else:
        check(not sos, f"{label}: no ScaledObject unless enabled")
        if check(len(hpas) == 1, f"{label}: fetcher HPA"):
            h = hpas[0]["spec"]
            check(h["scaleTargetRef"]["name"] == fetcher_name, f"{label}: HPA targets the fetcher")
            check(h["metrics"][0]["resource"]["name"] == "cpu", f"{label}: HPA on CPU")
            check(h["minReplicas"] == f["autoscaling"]["minReplicas"] and h["maxReplicas"] == f["autoscaling"]["maxReplicas"],
                  f"{label}: HPA bounds from values")


def check_pdbs_and_monitoring(docs, values, label, deps):
    pdbs = {p["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"]: p
            for p in by_kind(docs, "PodDisruptionBudget")}
    for comp, dep in deps.items():
        p = pdbs.get(comp)
        if check(p is not None, f"{label}: PDB for {comp}"):
            sel = dep["spec"]["selector"]["matchLabels"]
            check(p["spec"]["selector"]["matchLabels"] == sel, f"{label}: PDB {comp} selects its pods")
            check("maxUnavailable" in p["spec"], f"{label}: PDB {comp} allows drains one at a time")
        tpl = dep["spec"]["template"]["metadata"]["labels"]
        check(all(tpl.get(k) == v for k, v in dep["spec"]["selector"]["matchLabels"].items()),
              f"{label}: {comp} selector matches its pod labels")
    sms = by_kind(docs, "ServiceMonitor")
    if values["metrics"]["serviceMonitor"]["enabled"]:
        if check(len(sms) == 1, f"{label}: ServiceMonitor"):
            ep = sms[0]["spec"]["endpoints"][0]
            check(ep["path"] == "/metrics" and ep["port"] == "http", f"{label}: ServiceMonitor scrapes /metrics")
            svcs = by_kind(docs, "Service")
            sel = sms[0]["spec"]["selector"]["matchLabels"]
            hit = [s for s in svcs if all(s["metadata"]["labels"].get(k) == v for k, v in sel.items())]
            check(len(hit) == len(COMPONENTS), f"{label}: ServiceMonitor selects every component Service")
    else:
        check(not sms, f"{label}: no ServiceMonitor unless enabled")


def check_no_secrets_rendered(docs, label):
    for d in docs:
        if d.get("kind") == "Secret":
            continue
        text = yaml.safe_dump(d).lower()
        check("local-demo-password" not in text, f"{label}: no password literal in {d['kind']}")


def render_notes(helm, home, tmp, values_args):
    """NOTES.txt is only shown by install; render it through a copy of the chart."""
    chart = os.path.join(tempfile.mkdtemp(dir=tmp), "ltvsync")
    shutil.copytree(CHART, chart)
    notes = open(os.path.join(chart, "templates", "NOTES.txt")).read()
    os.remove(os.path.join(chart, "templates", "NOTES.txt"))
    with open(os.path.join(chart, "templates", "zz-notes.yaml"), "w") as f:
        f.write('{{- define "zz.notes" -}}\n' + notes + '\n{{- end -}}\n'
                'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes\n'
                'data:\n  notes: {{ include "zz.notes" . | toJson }}\n')
    docs = render(helm, home, *values_args, chart=chart)
    return [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "notes"][0]["data"]["notes"]


def check_refusals(helm, home):
    bad = [
        (["--set", "fetcher.terminationGracePeriodSeconds=20"], "must exceed SHUTDOWN_GRACE"),
        (["--set-string", "config.SHUTDOWN_GRACE=2m"], "must exceed SHUTDOWN_GRACE"),
        (["--set", "config.KAFKA_SASL_PASSWORD=x"], "KAFKA_SASL_PASSWORD"),
        (["--set", "kafka.properties.sasl\\.password=x"], "sasl.password"),
        (["--set", "config.GROUP_ID=shared"], "GROUP_ID"),
        (["--set", "schedulr.replicaCount=3"], "schedulr"),
        (["--set", "kafka.securityProtocol=TLS"], "securityProtocol"),
        (["--set", "fetcher.keda.enabled=true", "--set", "kafka.sasl.mechanism=GSSAPI"], "GSSAPI"),
    ]
    for args, needle in bad:
        r = run_helm(helm, home, "template", "rel", CHART, *args)
        check(r.returncode != 0 and needle in r.stderr,
              f"helm template {' '.join(args)} is refused mentioning {needle!r} (rc={r.returncode}, {r.stderr.strip()[:200]})")
    # And the refusals are specific: a valid override renders.
    r = run_helm(helm, home, "template", "rel", CHART, "--set-string", "config.SHUTDOWN_GRACE=30s")
    check(r.returncode == 0, f"SHUTDOWN_GRACE=30s with 40s grace renders ({r.stderr.strip()[:200]})")


def check_values_mirror_table(values):
    table = config_table()
    check(len(table) >= 20, f"parsed {len(table)} settings from common/lt_config.c")
    cfg = values["config"]
    for k in cfg:
        check(k in table, f"values.yaml config.{k} is a setting of common/lt_config.c")
    for k, default in table.items():
        if k in CHART_OWNED:
            continue
        if check(k in cfg, f"values.yaml config mirrors {k}"):
            check(str(cfg[k]) == (default or ""),
                  f"values.yaml config.{k}={cfg[k]!r} equals the code default {default!r}")


def dependency_closure(pkgs):
    """Installed packages that `pkgs` pull in (their Depends/Pre-Depends, recursively)."""
    seen, todo = set(), list(pkgs)
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        r = subprocess.run(["dpkg-query", "-W", "-f=${Depends}, ${Pre-Depends}", p],
                           capture_output=True, text=True)
        for alt in r.stdout.split(","):
            for name in alt.split("|"):
                name = name.strip().split(" ")[0].split(":")[0]
                if name:
                    todo.append(name)
    return seen


def check_dockerfile():
    path = os.path.join(SRC, "docker", "Dockerfile")
    text = open(path).read()
    froms = re.findall(r"^FROM\s+(\S+)", text, re.M)
    base = re.search(r"^ARG DEBIAN_IMAGE=(\S+)", text, re.M)
    check(base and re.fullmatch(r"debian:12(\.\d+)+-slim(@sha256:[0-9a-f]{64})?", base.group(1)),
          "Dockerfile: pinned Debian 12 slim base")
    check(len(froms) == 2 and all(f == "${DEBIAN_IMAGE}" for f in froms), "Dockerfile: two stages, same base")
    check("scripts/deps" in text and "ctest --test-dir /build -L unit" in text,
          "Dockerfile: builds with scripts/deps and runs the unit tests")
    check(re.search(r"^USER 10001", text, re.M), "Dockerfile: non-root USER 10001")
    check(re.search(r'^ENTRYPOINT \[".*"\]', text, re.M), "Dockerfile: exec-form ENTRYPOINT")
    check("--version" in text, "Dockerfile: smoke-tests the binaries")
    m = re.search(r"apt-get install[^\n]*\n((?:\s+[^\n]*\\\n)*\s+[^\n]*)", text.split("AS runtime")[1])
    runtime_pkgs = set(re.findall(r"\b(lib[a-z0-9.+-]+|tzdata|ca-certificates|tini)\b", m.group(1) if m else ""))
    check({"tzdata", "ca-certificates"} <= runtime_pkgs, "Dockerfile: tzdata and CA certificates")
    check(not any(p.endswith("-dev") for p in runtime_pkgs), "Dockerfile: no -dev packages at run time")
    # Each runtime package exists in Debian 12 (what this machine's apt sees).
    for p in sorted(runtime_pkgs):
        r = subprocess.run(["apt-cache", "show", "--no-all-versions", p], capture_output=True, text=True)
        if r.returncode != 0 or not r.stdout.strip():
            print(f"note: apt-cache does not know {p} (apt lists missing?); not checked")
    # The shared libraries of the built binaries are all in that list.
    bins = ["ltvsync-scheduler", "ltvsync-fetcher", "ltvsync-normalizer", "ltvsync-sink",
            "ltvctl", "ltvsync-devbroker", "crm-sim"]
    for b in bins:
        check(re.search(r"\b" + re.escape(b) + r"\b", text), f"Dockerfile ships {b}")
    present = [os.path.join(BIN, b) for b in bins if BIN and os.path.exists(os.path.join(BIN, b))]
    base_pkgs = {"libc6", "libgcc-s1", "libstdc++6", "libasan8", "libubsan1", "zlib1g"}
    closure = dependency_closure(runtime_pkgs)
    needed = {}
    for exe in present:
        out = subprocess.run(["ldd", exe], capture_output=True, text=True).stdout
        for lib in re.findall(r"=>\s+(/\S+)", out):
            needed.setdefault(os.path.realpath(lib), set()).add(os.path.basename(exe))
    if needed:
        r = subprocess.run(["dpkg", "-S", *sorted(needed)], capture_output=True, text=True)
        for line in r.stdout.splitlines():
            pkg, path = line.split(": ", 1)
            pkg = pkg.split(":")[0].split(",")[0]
            if pkg in base_pkgs:
                continue
            check(pkg in closure, f"{sorted(needed.get(path, {'?'}))} need {pkg} ({path}), "
                                  "which the runtime image's packages do not bring")
    if not present:
        print("note: no built binaries in LTVSYNC_BIN_DIR; library coverage not checked")
    if shutil.which("hadolint"):
        r = subprocess.run(["hadolint", path], capture_output=True, text=True)
        check(r.returncode == 0, "hadolint: " + r.stdout + r.stderr)
    else:
        print("note: hadolint is not packaged by Debian 12 and not installed; Dockerfile lint skipped "
              "(structural checks above still run)")


def check_compose():
    d = yaml.safe_load(open(os.path.join(SRC, "docker", "compose.yaml")))
    svcs = d["services"]
    for s in ("kafka", "redis", "crm-sim", "topics-init", *COMPONENTS):
        check(s in svcs, f"compose: service {s}")
    check(re.fullmatch(r"apache/kafka:\d+\.\d+\.\d+", svcs["kafka"]["image"]),
          "compose: official apache/kafka image, pinned")
    check(svcs["kafka"]["environment"].get("KAFKA_PROCESS_ROLES") == "broker,controller", "compose: KRaft")
    check(svcs["topics-init"]["command"] == ["ltvctl", "topics", "create"], "compose: topics-init")
    for comp in COMPONENTS:
        s = svcs[comp]
        check(s.get("command") == [f"ltvsync-{comp}"], f"compose: {comp} command")
        check(s["depends_on"]["topics-init"]["condition"] == "service_completed_successfully",
              f"compose: {comp} waits for the topics")
        check(s.get("read_only") is True, f"compose: {comp} read-only root")
        env = s["environment"]
        check(env.get("LTVSYNC_KAFKA_BOOTSTRAP_SERVERS") == "kafka:9092", f"compose: {comp} brokers")
    secret = d["secrets"]["crm-demo-password"]["file"]
    check(os.path.exists(os.path.join(SRC, "docker", secret)), "compose: the demo password file exists")


def main():
    helm = helm_binary()
    values = yaml.safe_load(open(os.path.join(CHART, "values.yaml")))
    prod_over = yaml.safe_load(open(PROD))

    def merged(base, over):
        out = dict(base)
        for k, v in over.items():
            out[k] = merged(base[k], v) if isinstance(v, dict) and isinstance(base.get(k), dict) else v
        return out
    prod = merged(values, prod_over)

    with tempfile.TemporaryDirectory(prefix="ltvsync-helm-") as home:
        for label, args in (("default", []), ("production", ["-f", PROD])):
            r = run_helm(helm, home, "lint", "--strict", CHART, *args)
            check(r.returncode == 0, f"helm lint {label}: {r.stdout}{r.stderr}")
        for label, vals, args in (("default", values, []), ("production", prod, ["-f", PROD])):
            docs = render(helm, home, *args)
            print(f"{label}: rendered {len(docs)} objects:",
                  ", ".join(sorted({d['kind'] for d in docs})), flush=True)
            deps = check_deployments(docs, vals, label)
            check_topics_job(docs, vals, label)
            check_scaling(docs, vals, label, deps)
            check_pdbs_and_monitoring(docs, vals, label, deps)
            check_no_secrets_rendered(docs, label)
            notes = render_notes(helm, home, home, args)
            check("egress" in notes.lower() and "allow-list" in notes.lower(),
                  f"{label}: NOTES explain the CRM IP allow-list and egress IPs")
            check(values["crm"]["passwordsMountPath"] in notes, f"{label}: NOTES give the password_ref path")
        check(prod["fetcher"]["keda"]["enabled"] and prod["metrics"]["serviceMonitor"]["enabled"],
              "the production example exercises KEDA and the ServiceMonitor")
        # The trial Secret path: created from values, mounted, rollout checksum.
        docs = render(helm, home, "--set", "crm.createSecret.enabled=true",
                      "--set", "crm.createSecret.passwords.acme=s3cret-value")
        secrets = by_kind(docs, "Secret")
        check(len(secrets) == 1 and "acme" in secrets[0]["data"], "createSecret renders the Secret")
        fetch = [d for d in by_kind(docs, "Deployment") if d["metadata"]["name"].endswith("-fetcher")][0]
        check("checksum/crm-passwords" in fetch["spec"]["template"]["metadata"].get("annotations", {}),
              "a changed trial Secret rolls the fetchers")
        check("s3cret-value" not in yaml.safe_dump(fetch), "the password stays in the Secret")
        check_refusals(helm, home)
    check_values_mirror_table(values)
    check_dockerfile()
    check_compose()
    if failures:
        print(f"{len(failures)} check(s) failed")
        return 1
    print("ok: helm lint/template (default, production), rendered manifests, Dockerfile, compose")
    return 0


if __name__ == "__main__":
    sys.exit(main())
