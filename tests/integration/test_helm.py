"""Helm chart and container image checks (no cluster, no Docker engine here).

Runs the real helm 3 binary (scripts/helm) on helm/ltvsync: `helm lint` and
`helm template` with the default values and helm/examples/values-production.yaml,
then reads the rendered manifests and checks what a deployment relies on:
probes, resources, security context, grace periods, the LTVSYNC_* environment
(mirroring the settings table in common/lt_config.c), the CRM password Secret
mounted as files, the topics Job, HPA / KEDA, PDBs and the ServiceMonitor.
Transport (issue 12): Kafka mTLS client certificates mounted as 0440 files
with LTVSYNC_[DOWNSTREAM_]KAFKA_SSL_* pointing at them, the key password
from a Secret (and masked by --print-config), a Redis ACL user in the URL,
and the optional stunnel sidecar for Redis TLS (config, verification,
mounts, URL rewrite, ordering, security context, NetworkPolicy).
ltvsync-api (issue 15): its Deployment, Service, PDB, token Secret (existing
or from values) and optional Ingress (check_api). Issue 13: KEDA
ScaledObjects for the normalizer and the sink beside the fetcher's, each on
its own consumer group and topic as the binaries resolve them (check_keda_lag),
and a Redis Cluster seed list (redis.clusterSeeds) reaching every pod's
LTVSYNC_REDIS_URL as written (check_redis_cluster). Values the chart must
refuse are tried too. The Dockerfile and compose file
are checked statically (hadolint, when Debian packages it; otherwise a note).
"""
import gzip
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
               "SEAL_KEY_FILE",        # from sealKey.* (mounted Secret)
               "REPLAY_INTEGRATION",  # set by `ltvctl replay` for its child, never by the chart
               "API_PORT", "API_TOKENS_FILE"}  # from api.port and api.tokens
SECRET_KEYS = ("password", "ecommercepassword", "achaccountnumber", "achroutingnumber")
# What each KEDA-scaled component consumes: (topic setting, suffix of its
# consumer group). The group is GROUP_ID, unset "ltvsync-<service>"
# (lt_config_new); the fetcher adds -live and -backfill (fetcher/dispatch.c),
# the normalizer reads TOPIC_RAW and the sink TOPIC_EVENTS (their main.c).
KEDA_LAG = {
    "fetcher": (("TOPIC_JOBS_LIVE", "-live"), ("TOPIC_JOBS_BACKFILL", "-backfill")),
    "normalizer": (("TOPIC_RAW", ""),),
    "sink": (("TOPIC_EVENTS", ""),),
}

from ltcheck import check, failures  # noqa: E402


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


def check_refused(helm, home, bad):
    """Each (args, needle): helm template with args fails naming needle."""
    for args, needle in bad:
        r = run_helm(helm, home, "template", "rel", CHART, *args)
        check(r.returncode != 0 and needle in r.stderr,
              f"helm template {' '.join(args)} is refused mentioning {needle!r} (rc={r.returncode}, {r.stderr.strip()[:200]})")


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
    deps.pop("api", None)  # ltvsync-api: check_api
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
        if comp in KEDA_LAG:
            autoscaled = values[comp].get("autoscaling", {}).get("enabled") or values[comp]["keda"]["enabled"]
            check(("replicas" not in spec) == bool(autoscaled),
                  f"{where}: replicas left to the autoscaler")
            if not autoscaled:
                check(spec.get("replicas") == values[comp]["replicaCount"], f"{where}: replicas from values")
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


def keda_expect(values, comp):
    """topic -> consumer group the component's ScaledObject should watch."""
    settings = dict(values["config"], **(values[comp].get("config") or {}))
    group = settings.get("GROUP_ID") or "ltvsync-" + comp
    kd = values[comp]["keda"]
    override = {"-live": kd.get("liveGroup"), "-backfill": kd.get("backfillGroup"), "": kd.get("consumerGroup")}
    return {settings[t]: override[suffix] or group + suffix for t, suffix in KEDA_LAG[comp]}


def check_scaling(docs, values, label, deps):
    f = values["fetcher"]
    hpas = by_kind(docs, "HorizontalPodAutoscaler")
    sos = {so["spec"]["scaleTargetRef"]["name"]: so for so in by_kind(docs, "ScaledObject")}
    tas = by_kind(docs, "TriggerAuthentication")
    keda_on = [c for c in KEDA_LAG if values[c]["keda"]["enabled"]]
    check(len(by_kind(docs, "ScaledObject")) == len(sos) == len(keda_on),
          f"{label}: one ScaledObject per component with keda.enabled ({keda_on}; got {sorted(sos)})")
    check(len(tas) <= 1, f"{label}: at most one TriggerAuthentication, shared ({len(tas)})")
    for comp in KEDA_LAG:
        name = deps[comp]["metadata"]["name"]
        so = sos.get(name)
        if comp not in keda_on:
            check(so is None, f"{label}: no ScaledObject for {comp} unless {comp}.keda.enabled")
            continue
        if not check(so is not None, f"{label}: a ScaledObject targets the {comp} Deployment {name}"):
            continue
        spec, kd = so["spec"], values[comp]["keda"]
        check(spec["scaleTargetRef"].get("envSourceContainerName") == comp
              and pod_of(deps[comp])["containers"][0]["name"] == comp,
              f"{label}: {comp} ScaledObject reads env from the {comp} container")
        check(spec["minReplicaCount"] == kd["minReplicaCount"] and spec["maxReplicaCount"] == kd["maxReplicaCount"],
              f"{label}: {comp} KEDA bounds from values")
        kt = [t for t in spec["triggers"] if t["type"] == "kafka"]
        got = {t["metadata"]["topic"]: t["metadata"]["consumerGroup"] for t in kt}
        want = keda_expect(values, comp)
        check(got == want and len(kt) == len(want), f"{label}: {comp} scales on the lag of {want} (got {got})")
        for t in kt:
            m = t["metadata"]
            check(m["bootstrapServers"] == values["kafka"]["bootstrapServers"], f"{label}: {comp} KEDA brokers")
            check(m["lagThreshold"] == str(kd["lagThreshold"]), f"{label}: {comp} lagThreshold from values")
            check(m.get("offsetResetPolicy") == "earliest", f"{label}: {comp} lag of a new group counts from the start, as the consumer reads")
            ref = t.get("authenticationRef", {}).get("name")
            check(ref == (tas[0]["metadata"]["name"] if tas else None),
                  f"{label}: {comp} trigger uses the release's TriggerAuthentication ({ref})")
        cpu = [t for t in spec["triggers"] if t["type"] == "cpu"]
        check(len(cpu) == int(bool(kd["cpuUtilization"])), f"{label}: {comp} CPU trigger only with cpuUtilization")
    if keda_on and values["kafka"]["sasl"]["existingSecret"]:
        check(len(tas) == 1 and any(r["parameter"] == "password" and r["name"] == values["kafka"]["sasl"]["existingSecret"]
                                    for r in tas[0]["spec"].get("secretTargetRef", [])),
              f"{label}: KEDA reads the SASL password from its Secret")
    fetcher_name = deps["fetcher"]["metadata"]["name"]
    check(all(h["spec"]["scaleTargetRef"]["name"] == fetcher_name for h in hpas),
          f"{label}: the chart's only HPA is the fetcher's")
    if f["keda"]["enabled"]:
        check(not hpas, f"{label}: no chart HPA while KEDA owns the fetcher's")
    else:
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
            kd = values[comp].get("keda", {})
            if kd.get("enabled"):
                mu = p["spec"].get("maxUnavailable")
                check("minAvailable" not in p["spec"] and isinstance(mu, int) and 1 <= mu < kd["minReplicaCount"],
                      f"{label}: PDB {comp} (maxUnavailable {mu}) never blocks a drain and leaves a pod of "
                      f"minReplicaCount {kd['minReplicaCount']} running")
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
            want = len(COMPONENTS) + bool(values["api"]["enabled"])
            check(len(hit) == want, f"{label}: ServiceMonitor selects every component Service (and the API's)")
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
    check_refused(helm, home, bad)
    # And the refusals are specific: a valid override renders.
    r = run_helm(helm, home, "template", "rel", CHART, "--set-string", "config.SHUTDOWN_GRACE=30s")
    check(r.returncode == 0, f"SHUTDOWN_GRACE=30s with 40s grace renders ({r.stderr.strip()[:200]})")


def pod_of(doc):
    return doc["spec"]["template"]["spec"]


def workloads(docs):
    """component -> rendered Deployment or Job (the topics Job is 'topics')."""
    out = {}
    for d in docs:
        if d.get("kind") in ("Deployment", "Job"):
            out[d["metadata"]["labels"]["app.kubernetes.io/component"]] = d
    return out


def main_container(doc, comp):
    return [c for c in pod_of(doc)["containers"] if c["name"] == comp][0]


def file_source(pod, container, path):
    """(volume, mount) whose files hold `path` in `container`, or (None, None)."""
    for m in container.get("volumeMounts", []):
        if path.startswith(m["mountPath"].rstrip("/") + "/"):
            vols = {v["name"]: v for v in pod.get("volumes", [])}
            return vols.get(m["name"]), m
    return None, None


def check_secret_file(where, pod, container, path, secret, key, private):
    """path is file `key` of Secret `secret`, mounted read-only; a private
    file (key, password) is readable by the pod's group only, i.e. 0440
    with fsGroup (a secret file is root-owned: 0400 would lock out uid 10001)."""
    vol, mount = file_source(pod, container, path)
    if not check(vol is not None and "secret" in vol, f"{where}: {path} is on a Secret volume"):
        return
    check(mount.get("readOnly") is True, f"{where}: {mount['mountPath']} mounted readOnly")
    sec = vol["secret"]
    check(sec.get("secretName") == secret, f"{where}: {path} from Secret {secret} (got {sec.get('secretName')})")
    check(os.path.basename(path) == key and "items" not in sec,
          f"{where}: {path} is the Secret's key {key}")
    mode = sec.get("defaultMode")
    if private:
        psc = pod.get("securityContext", {})
        check(mode == 0o440 and psc.get("fsGroup") == psc.get("runAsGroup") and psc.get("fsGroup"),
              f"{where}: {path} mode {oct(mode or 0)} is 0440 with fsGroup = the service's group")
    else:
        check(mode is not None and mode & 0o002 == 0, f"{where}: {path} not world-writable")


def kafka_props():
    """librdkafka's property names from the installed CONFIGURATION.md, or None."""
    for p in ("/usr/share/doc/librdkafka1/CONFIGURATION.md.gz",
              "/usr/share/doc/librdkafka-dev/CONFIGURATION.md.gz"):
        if os.path.exists(p):
            text = gzip.open(p, "rt").read()
            return set(re.findall(r"^([a-z][a-z0-9.]+)\s+\|", text, re.M))
    return None


def stunnel_conf(text):
    """stunnel.conf -> (global options, {service: options}); repeated options are lists."""
    glob, svcs, cur = {}, {}, None
    for line in text.splitlines():
        line = line.split(";", 1)[0].strip()
        if not line:
            continue
        m = re.fullmatch(r"\[(.+)\]", line)
        if m:
            cur = svcs.setdefault(m.group(1), {})
            continue
        k, _, v = line.partition("=")
        d = glob if cur is None else cur
        k, v = k.strip(), v.strip()
        if k in d:
            d[k] = (d[k] if isinstance(d[k], list) else [d[k]]) + [v]
        else:
            d[k] = v
    return glob, svcs


def check_no_plain_secrets(docs, where, words):
    for d in docs:
        if d.get("kind") == "Secret":
            continue
        text = yaml.safe_dump(d)
        for w in words:
            check(w not in text, f"{where}: {w!r} does not appear in {d['kind']} {d['metadata']['name']}")


def check_kafka_mtls(helm, home):
    """Kafka mTLS (main and downstream clusters): certificate and key as
    Secret files, the key password from a Secret, KEDA given the same."""
    args = ["--set", "kafka.securityProtocol=SSL", "--set", "kafka.tls.caSecret=kafka-ca",
            "--set", "kafka.tls.clientSecret=kafka-client-tls",
            "--set", "kafka.tls.keyPasswordSecret=kafka-key-pass",
            "--set", "downstream.bootstrapServers=analytics:9093",
            "--set", "downstream.securityProtocol=SSL",
            "--set", "downstream.tls.clientSecret=ds-user",
            "--set", "downstream.tls.certKey=user.crt", "--set", "downstream.tls.keyKey=user.key",
            "--set", "fetcher.keda.enabled=true"]
    try:
        docs = render(helm, home, *args)
    except RuntimeError as e:
        check(False, f"mTLS values render: {e}")
        return
    wl = workloads(docs)
    check(set(wl) == set(COMPONENTS) | {"topics", "api"}, f"mTLS: workloads {sorted(wl)}")
    props = kafka_props()
    if props is None:
        print("note: librdkafka's CONFIGURATION.md is not installed; property names not checked")
    for comp, doc in wl.items():
        where = f"mTLS/{comp}"
        pod, c = pod_of(doc), main_container(doc, comp)
        env = env_of(c)
        clusters = [("KAFKA_", "kafka-client-tls", "tls.crt", "tls.key")]
        if comp in ("sink", "topics"):
            clusters.append(("DOWNSTREAM_KAFKA_", "ds-user", "user.crt", "user.key"))
        else:
            check(not any(n.startswith("LTVSYNC_DOWNSTREAM_") for n in env),
                  f"{where}: no downstream settings outside the sink and the topics Job")
            check(not any("downstream" in m["mountPath"] for m in c.get("volumeMounts", [])),
                  f"{where}: no downstream certificate outside the sink and the topics Job")
        for prefix, secret, crt, key in clusters:
            for prop, fname, private in (("SSL_CERTIFICATE_LOCATION", crt, False),
                                         ("SSL_KEY_LOCATION", key, True)):
                name = "LTVSYNC_" + prefix + prop
                path = env.get(name, {}).get("value")
                if check(path, f"{where}: {name} is set"):
                    check_secret_file(where, pod, c, path, secret, fname, private)
                if props is not None:
                    check(prop.lower().replace("_", ".") in props,
                          f"{where}: {name} names a librdkafka property")
        pw = env.get("LTVSYNC_KAFKA_SSL_KEY_PASSWORD", {})
        ref = pw.get("valueFrom", {}).get("secretKeyRef", {})
        check("value" not in pw and ref == {"name": "kafka-key-pass", "key": "password"},
              f"{where}: LTVSYNC_KAFKA_SSL_KEY_PASSWORD from Secret kafka-key-pass (got {pw})")
        check("LTVSYNC_DOWNSTREAM_KAFKA_SSL_KEY_PASSWORD" not in env,
              f"{where}: no downstream key password unless set")
        ca = env.get("LTVSYNC_KAFKA_SSL_CA_LOCATION", {}).get("value")
        if check(ca, f"{where}: the CA is still set beside the client certificate"):
            check_secret_file(where, pod, c, ca, "kafka-ca", "ca.crt", False)
    tas = by_kind(docs, "TriggerAuthentication")
    if check(len(tas) == 1, "mTLS: KEDA TriggerAuthentication"):
        refs = {r["parameter"]: (r["name"], r["key"]) for r in tas[0]["spec"].get("secretTargetRef", [])}
        check(refs.get("cert") == ("kafka-client-tls", "tls.crt") and refs.get("key") == ("kafka-client-tls", "tls.key")
              and refs.get("keyPassword") == ("kafka-key-pass", "password"),
              f"mTLS: KEDA authenticates with the client certificate ({refs})")
    # The binaries take these names as librdkafka pass-through and mask the
    # secret ones in --print-config.
    sink = BIN and os.path.join(BIN, "ltvsync-sink")
    if sink and os.path.exists(sink):
        env = {e["name"]: e.get("value", "s3cret-key-pass")
               for e in main_container(wl["sink"], "sink")["env"] if e["name"].startswith("LTVSYNC_")}
        r = subprocess.run([sink, "--print-config"], env=dict(env, PATH="/usr/bin:/bin"),
                           capture_output=True, text=True, timeout=30)
        out = r.stdout + r.stderr
        check(r.returncode == 0, f"mTLS: ltvsync-sink --print-config with the rendered env ({out[-300:]})")
        check("LTVSYNC_KAFKA_SSL_CERTIFICATE_LOCATION=/etc/ltvsync/kafka-client/tls.crt" in out,
              "mTLS: the sink passes the certificate location through")
        check("LTVSYNC_KAFKA_SSL_KEY_PASSWORD=********" in out and "s3cret-key-pass" not in out,
              "mTLS: --print-config masks ssl.key.password")
    else:
        print("note: no ltvsync-sink in LTVSYNC_BIN_DIR; --print-config not checked")


REDIS_URL_AUTH = "redis://ltv-app:$(REDIS_PASSWORD)@{}/0"


def check_redis_url(where, c, hostport):
    env = c.get("env", [])
    names = [e["name"] for e in env]
    e = env_of(c)
    url = e.get("LTVSYNC_REDIS_URL", {}).get("value")
    check(url == REDIS_URL_AUTH.format(hostport), f"{where}: LTVSYNC_REDIS_URL {url!r}")
    pw = e.get("REDIS_PASSWORD", {})
    check(pw.get("valueFrom", {}).get("secretKeyRef") == {"name": "redis-auth", "key": "redis-password"}
          and "value" not in pw, f"{where}: the Redis password from its Secret")
    check("REDIS_PASSWORD" in names and "LTVSYNC_REDIS_URL" in names
          and names.index("REDIS_PASSWORD") < names.index("LTVSYNC_REDIS_URL"),
          f"{where}: REDIS_PASSWORD is defined before the URL that expands it")


def check_redis_tls(helm, home):
    """Redis: an ACL user in the URL; redis.tls.enabled adds the stunnel
    sidecar and points every service at it."""
    auth = ["--set", "redis.auth.username=ltv-app", "--set", "redis.auth.existingSecret=redis-auth"]
    tls = ["--set", "redis.tls.enabled=true", "--set", "redis.tls.caSecret=redis-ca",
           "--set", "redis.tls.clientSecret=redis-client", "--set", "redis.port=6380"]
    try:
        plain = render(helm, home, *auth)
        native = render(helm, home, *auth, *tls)
        old = render(helm, home, *auth, *tls, "--kube-version", "1.28.9")
    except RuntimeError as e:
        check(False, f"Redis ACL / TLS values render: {e}")
        return
    for comp, doc in workloads(plain).items():
        check_redis_url(f"acl/{comp}", main_container(doc, comp), "redis-master.redis.svc:6379")
        check(not pod_of(doc).get("initContainers") and len(pod_of(doc)["containers"]) == 1,
              f"acl/{comp}: no sidecar unless redis.tls.enabled")
    check(not by_kind(plain, "ConfigMap"), "acl: no stunnel ConfigMap unless redis.tls.enabled")

    cms = [d for d in by_kind(native, "ConfigMap") if d["metadata"]["name"].endswith("-redis-tls")]
    check(len(cms) == 1, "tls: one stunnel ConfigMap")
    conf_text = cms[0]["data"]["stunnel.conf"] if cms else ""
    cm_name = cms[0]["metadata"]["name"] if cms else "?"
    glob, svcs = stunnel_conf(conf_text)
    check(glob.get("foreground") == "yes" and glob.get("syslog") == "no",
          f"tls: stunnel in the foreground, logging to stderr ({glob})")
    check(list(svcs) == ["redis"], f"tls: one stunnel service ({list(svcs)})")
    svc = svcs.get("redis", {})
    check(svc.get("client") == "yes", "tls: stunnel is a TLS client")
    check(svc.get("accept") == "127.0.0.1:6379", f"tls: stunnel listens on loopback only ({svc.get('accept')})")
    check(svc.get("connect") == "redis-master.redis.svc:6380", f"tls: stunnel connects to redis.host:redis.port ({svc.get('connect')})")
    check(svc.get("verifyChain") == "yes" and "verify" not in svc and "verifyPeer" not in svc,
          "tls: the server's chain is verified (verifyChain yes)")
    check(svc.get("checkHost") == "redis-master.redis.svc" and svc.get("sni") == "redis-master.redis.svc",
          f"tls: the server's name is checked and sent as SNI ({svc.get('checkHost')}, {svc.get('sni')})")
    check(svc.get("sslVersionMin") in ("TLSv1.2", "TLSv1.3"), "tls: TLS 1.2 at least")
    check("l:TCP_NODELAY=1" in svc.get("socket", []) and "r:TCP_NODELAY=1" in svc.get("socket", []),
          "tls: TCP_NODELAY both ways (Redis round trips are on the fetcher's hot path)")
    for w in ("password", "BEGIN", "PRIVATE"):
        check(w not in conf_text, f"tls: no {w!r} in the stunnel ConfigMap")
    wl = workloads(native)
    for comp in COMPONENTS:
        where = f"tls/{comp}"
        doc = wl[comp]
        pod = pod_of(doc)
        c = main_container(doc, comp)
        check_redis_url(where, c, "127.0.0.1:6379")
        check(doc["spec"]["template"]["metadata"].get("annotations", {}).get("checksum/redis-tls"),
              f"{where}: a changed stunnel config rolls the pods")
        side = [x for x in pod.get("initContainers", []) if x["name"] == "redis-tls"]
        check(len(pod["containers"]) == 1, f"{where}: on Kubernetes >= 1.29 the sidecar is not a plain container")
        if not check(len(side) == 1 and side[0].get("restartPolicy") == "Always",
                     f"{where}: native sidecar (init container, restartPolicy Always): the tunnel starts first"):
            continue
        s = side[0]
        check(s.get("command") == ["stunnel", "/etc/ltvsync/stunnel/stunnel.conf"], f"{where}: runs stunnel on the ConfigMap")
        check(s.get("image") == c.get("image"), f"{where}: default sidecar image is the (pinned) ltvsync image")
        check_container_security(f"{where}/redis-tls", pod, s)
        check(not s.get("ports"), f"{where}: the tunnel port is not exposed")
        vol, m = file_source(pod, s, "/etc/ltvsync/stunnel/stunnel.conf")
        check(vol is not None and vol.get("configMap", {}).get("name") == cm_name and m.get("readOnly"),
              f"{where}: the stunnel config is the ConfigMap, read-only")
        check_secret_file(where, pod, s, svc.get("CAfile", "?"), "redis-ca", "ca.crt", False)
        check_secret_file(where, pod, s, svc.get("cert", "?"), "redis-client", "tls.crt", False)
        check_secret_file(where, pod, s, svc.get("key", "?"), "redis-client", "tls.key", True)
        check(not any(x["mountPath"].startswith("/etc/ltvsync/redis-tls") for x in c.get("volumeMounts", [])),
              f"{where}: the service itself does not mount the Redis client key")
    topics = wl.get("topics")
    if topics:
        check(not pod_of(topics).get("initContainers") and len(pod_of(topics)["containers"]) == 1,
              "tls: the topics Job (Kafka only) has no sidecar, which would keep it from finishing")
    for pol in by_kind(native, "NetworkPolicy"):
        ports = {p["port"] for r in pol["spec"]["egress"] for p in r.get("ports", [])}
        check(6380 in ports, f"tls: {pol['metadata']['name']} still allows egress to redis.port")
    check_no_plain_secrets(native, "tls", ("s3cret",))
    # Before Kubernetes 1.29: a second container that outlives the drain.
    for comp, doc in workloads(old).items():
        if comp == "topics":
            continue
        pod = pod_of(doc)
        side = [x for x in pod["containers"] if x["name"] == "redis-tls"]
        check(not pod.get("initContainers") and len(side) == 1 and "restartPolicy" not in side[0],
              f"tls<1.29/{comp}: the sidecar is a plain container")
        if side:
            env = env_of(main_container(doc, comp))
            grace = int(env["LTVSYNC_SHUTDOWN_GRACE"]["value"].rstrip("s"))
            cmd = side[0].get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
            check(len(cmd) == 2 and cmd[0] == "sleep" and grace < int(cmd[1]) < pod["terminationGracePeriodSeconds"],
                  f"tls<1.29/{comp}: preStop keeps the tunnel up through SHUTDOWN_GRACE ({cmd})")
    # Other names: an IP address is checked as such; a pinned other image.
    try:
        docs = render(helm, home, *tls, "--set", "redis.tls.serverName=10.1.2.3",
                      "--set", "redis.tls.image.repository=example/stunnel",
                      "--set", "redis.tls.image.tag=5.68")
        _, svcs = stunnel_conf(by_kind(docs, "ConfigMap")[0]["data"]["stunnel.conf"])  # IndexError: none
        check(svcs["redis"].get("checkIP") == "10.1.2.3" and "checkHost" not in svcs["redis"],
              "tls: an IP serverName is verified with checkIP")
        side = pod_of(workloads(docs)["sink"])["initContainers"][0]
        check(side["image"] == "example/stunnel:5.68", f"tls: redis.tls.image ({side['image']})")
    except (RuntimeError, KeyError, IndexError) as e:
        check(False, f"tls: serverName / image overrides: {e}")
    bad = [
        (["--set", "redis.tls.enabled=true"], "caSecret"),
        ([*tls, "--set", "redis.urlSecret.name=u"], "urlSecret"),
        ([*tls, "--set", "redis.tls.localPort=8080"], "localPort"),
        ([*tls, "--set", "redis.tls.image.repository=example/stunnel"], "pin"),
        (["--set", "redis.auth.username=ltv-app"], "existingSecret"),
        (["--set", "redis.auth.username=a@b", "--set", "redis.auth.existingSecret=x"], "username"),
    ]
    check_refused(helm, home, bad)


def print_config(comp, container, extra=None):
    """The settings ltvsync-<comp> --print-config resolves from a rendered
    container's env (values as written, valueFrom as a placeholder), or None
    without the binary."""
    exe = BIN and os.path.join(BIN, "ltvsync-" + comp)
    if not exe or not os.path.exists(exe):
        return None
    env = {e["name"]: e.get("value", "placeholder-from-secret") for e in container.get("env", [])
           if e["name"].startswith("LTVSYNC_")}
    env.update(extra or {})
    r = subprocess.run([exe, "--print-config"], env=dict(env, PATH="/usr/bin:/bin"),
                       capture_output=True, text=True, timeout=30)
    if not check(r.returncode == 0, f"ltvsync-{comp} --print-config with the rendered env ({(r.stdout + r.stderr)[-300:]})"):
        return {}
    return dict(line.split("=", 1) for line in r.stdout.splitlines() if "=" in line)


def check_keda_lag(helm, home, values):
    """normalizer.keda and sink.keda (issue 13): a ScaledObject each, on the
    lag of the component's own consumer group on the topic it consumes (the
    groups and topics the binaries resolve from the same env, GROUP_ID and
    topic overrides included), one TriggerAuthentication for the release,
    replicas left to KEDA; nothing when disabled."""
    on = ["--set", "normalizer.keda.enabled=true", "--set", "sink.keda.enabled=true"]
    docs = render(helm, home, *on)
    deps = {c: d for c, d in workloads(docs).items() if c in KEDA_LAG}
    sos = {d["spec"]["scaleTargetRef"]["name"]: d["spec"] for d in by_kind(docs, "ScaledObject")}
    want = {"rel-ltvsync-normalizer": ("ltvsync.raw", "ltvsync-normalizer"),
            "rel-ltvsync-sink": ("ltvsync.events", "ltvsync-sink")}
    for name, (topic, group) in want.items():
        so = sos.get(name)
        if check(so is not None, f"keda: a ScaledObject targets Deployment {name}"):
            (t,) = so["triggers"]
            check((t["type"], t["metadata"]["topic"], t["metadata"]["consumerGroup"]) == ("kafka", topic, group),
                  f"keda: {name} scales on the lag of {group} on {topic} alone ({t})")
            check(int(t["metadata"]["lagThreshold"]) >= 10000,
                  f"keda: {name} lagThreshold is a backlog in messages, not a handful ({t['metadata']['lagThreshold']})")
    check(set(sos) == set(want), f"keda: no fetcher ScaledObject unless fetcher.keda.enabled ({sorted(sos)})")
    check(not by_kind(docs, "TriggerAuthentication"), "keda: no TriggerAuthentication for a plain Kafka")
    check([h["spec"]["scaleTargetRef"]["name"] for h in by_kind(docs, "HorizontalPodAutoscaler")] == ["rel-ltvsync-fetcher"],
          "keda: the fetcher keeps its CPU HPA while only the normalizer and the sink use KEDA")
    vals = yaml.safe_load(open(os.path.join(CHART, "values.yaml")))
    vals["normalizer"]["keda"]["enabled"] = vals["sink"]["keda"]["enabled"] = True
    check_scaling(docs, vals, "keda", deps)
    check_pdbs_and_monitoring(docs, vals, "keda", deps)
    for comp in ("normalizer", "sink"):
        check("replicas" not in deps[comp]["spec"], f"keda: {comp} replicas left to KEDA")
        cfg = print_config(comp, main_container(deps[comp], comp))
        if cfg:
            topic, group = want[f"rel-ltvsync-{comp}"]
            check((cfg.get("LTVSYNC_" + KEDA_LAG[comp][0][0]), cfg.get("LTVSYNC_GROUP_ID")) == (topic, group),
                  f"keda: ltvsync-{comp} itself consumes {topic} as {group} "
                  f"({cfg.get('LTVSYNC_' + KEDA_LAG[comp][0][0])}, {cfg.get('LTVSYNC_GROUP_ID')})")

    # Every component on KEDA, GROUP_ID overrides (a component's config), a
    # renamed topic, SASL_SSL: one TriggerAuthentication for all three.
    over = [*on, "--set", "fetcher.keda.enabled=true",
            "--set", "normalizer.config.GROUP_ID=ltv-norm-blue", "--set", "sink.config.GROUP_ID=ltv-sink-green",
            "--set", "fetcher.config.GROUP_ID=ltv-fetch", "--set", "config.TOPIC_EVENTS=acme.events",
            "--set", "kafka.securityProtocol=SASL_SSL", "--set", "kafka.sasl.mechanism=SCRAM-SHA-512",
            "--set", "kafka.sasl.username=ltv", "--set", "kafka.sasl.existingSecret=kafka-pw",
            "--set", "kafka.tls.caSecret=kafka-ca"]
    docs = render(helm, home, *over)
    wl = workloads(docs)
    sos = {d["spec"]["scaleTargetRef"]["name"]: d["spec"] for d in by_kind(docs, "ScaledObject")}
    tas = by_kind(docs, "TriggerAuthentication")
    if check(len(tas) == 1, f"keda: one TriggerAuthentication for the three ScaledObjects ({len(tas)})"):
        ta = tas[0]
        refs = {r["parameter"]: r["name"] for r in ta["spec"].get("secretTargetRef", [])}
        check(refs == {"password": "kafka-pw", "ca": "kafka-ca"}, f"keda: the shared TriggerAuthentication's Secrets ({refs})")
        (e,) = ta["spec"].get("env", [{}])
        check(e.get("parameter") == "username" and e.get("name") == "LTVSYNC_KAFKA_SASL_USERNAME"
              and "containerName" not in e,
              f"keda: the username from each target's own container, not one named container ({e})")
    lit = {"fetcher": {"ltvsync.jobs.live": "ltv-fetch-live", "ltvsync.jobs.backfill": "ltv-fetch-backfill"},
           "normalizer": {"ltvsync.raw": "ltv-norm-blue"},
           "sink": {"acme.events": "ltv-sink-green"}}
    for comp, groups in lit.items():
        so = sos.get(f"rel-ltvsync-{comp}")
        if not check(so is not None, f"keda/overrides: a ScaledObject for {comp}"):
            continue
        kt = [t for t in so["triggers"] if t["type"] == "kafka"]
        got = {t["metadata"]["topic"]: t["metadata"]["consumerGroup"] for t in kt}
        check(got == groups, f"keda/overrides: {comp} follows its GROUP_ID and topics ({got})")
        check(all(t["metadata"].get("sasl") == "scram_sha512" and t["metadata"].get("tls") == "enable"
                  and t.get("authenticationRef", {}).get("name") == (tas[0]["metadata"]["name"] if tas else "?")
                  for t in kt), f"keda/overrides: {comp} triggers authenticate with SCRAM over TLS")
        c = main_container(wl[comp], comp)
        check(so["scaleTargetRef"].get("envSourceContainerName") == comp
              and env_of(c).get("LTVSYNC_KAFKA_SASL_USERNAME", {}).get("value") == "ltv",
              f"keda/overrides: {comp}'s container holds the username KEDA reads")
        # The group and topic the binary itself resolves from the same env.
        cfg = print_config(comp, c)
        if cfg is None:
            print(f"note: no ltvsync-{comp} in LTVSYNC_BIN_DIR; groups not checked against the binary")
        elif cfg:
            bin_groups = {cfg.get("LTVSYNC_" + t): cfg.get("LTVSYNC_GROUP_ID", "?") + suffix
                          for t, suffix in KEDA_LAG[comp]}
            check(bin_groups == got, f"keda/overrides: ltvsync-{comp} consumes {bin_groups}, KEDA watches {got}")
    check(not by_kind(docs, "HorizontalPodAutoscaler"), "keda/overrides: no chart HPA with every component on KEDA")

    off = render(helm, home, "--set", "normalizer.keda.consumerGroup=x", "--set", "sink.keda.lagThreshold=7")
    check(not by_kind(off, "ScaledObject") and not by_kind(off, "TriggerAuthentication"),
          "keda: nothing rendered while every keda.enabled is false")
    for comp in ("normalizer", "sink"):
        d = workloads(off)[comp]
        check(d["spec"].get("replicas") == values[comp]["replicaCount"], f"keda off: {comp} keeps replicaCount")
    check_refused(helm, home, [
        (["--set", "sink.keda.enabled=true", "--set", "kafka.sasl.mechanism=GSSAPI"], "GSSAPI"),
        (["--set", "normalizer.keda.enabled=true", "--set", "normalizer.keda.minReplicaCount=5",
          "--set", "normalizer.keda.maxReplicaCount=3"], "minReplicaCount"),
        (["--set", "sink.keda.lagThreshold=0"], "lagThreshold"),
        (["--set", "normalizer.keda.liveGroup=x"], "liveGroup"),
    ])


def check_redis_cluster(helm, home):
    """redis.clusterSeeds (issue 13): the seed list reaches every pod's
    LTVSYNC_REDIS_URL as written, with the password from its Secret; one seed
    is redis-cluster://; the NetworkPolicies open the seeds' ports; values a
    cluster cannot take are refused."""
    seeds = "redis-cluster-0.redis-cluster-headless.redis.svc:7000,10.1.2.3:7001,[fd00::7]:7002"

    def values_file(name, redis):
        path = os.path.join(home, name)
        with open(path, "w") as f:
            yaml.safe_dump({"redis": redis}, f)
        return ["-f", path]
    auth = {"auth": {"username": "ltv-app", "existingSecret": "redis-auth"}}
    try:
        docs = render(helm, home, *values_file("seeds.yaml", dict(auth, clusterSeeds=seeds)))
        one = render(helm, home, *values_file("seed.yaml", {"clusterSeeds": "redis-cluster.redis.svc:6379"}))
    except RuntimeError as e:
        check(False, f"redis.clusterSeeds renders: {e}")
        return
    url = "redis://ltv-app:$(REDIS_PASSWORD)@" + seeds
    wl = workloads(docs)
    check(set(wl) == set(COMPONENTS) | {"topics", "api"}, f"cluster: workloads {sorted(wl)}")
    for comp, doc in wl.items():
        c = main_container(doc, comp)
        e = env_of(c)
        names = [x["name"] for x in c["env"]]
        check(e.get("LTVSYNC_REDIS_URL", {}).get("value") == url,
              f"cluster/{comp}: LTVSYNC_REDIS_URL is the seed list as written ({e.get('LTVSYNC_REDIS_URL')})")
        check(e.get("REDIS_PASSWORD", {}).get("valueFrom", {}).get("secretKeyRef") == {"name": "redis-auth", "key": "redis-password"}
              and names.index("REDIS_PASSWORD") < names.index("LTVSYNC_REDIS_URL"),
              f"cluster/{comp}: the password from its Secret, defined before the URL")
    # Kubernetes expands $(REDIS_PASSWORD); the sink takes the result and masks it.
    c = main_container(wl["sink"], "sink")
    cfg = print_config("sink", c, {"LTVSYNC_REDIS_URL": url.replace("$(REDIS_PASSWORD)", "s3cret-redis")})
    if cfg is None:
        print("note: no ltvsync-sink in LTVSYNC_BIN_DIR; the seed-list URL not checked against it")
    elif cfg:
        check(cfg.get("LTVSYNC_REDIS_URL") == "redis://ltv-app:********@" + seeds,
              f"cluster: ltvsync-sink takes the seed list and masks the password ({cfg.get('LTVSYNC_REDIS_URL')})")
    for comp, doc in workloads(one).items():
        v = env_of(main_container(doc, comp)).get("LTVSYNC_REDIS_URL", {}).get("value")
        check(v == "redis-cluster://redis-cluster.redis.svc:6379",
              f"cluster/{comp}: one seed is redis-cluster:// (a plain redis:// would be one Redis) ({v})")
    for pol in by_kind(docs, "NetworkPolicy"):
        ports = {p["port"] for r in pol["spec"]["egress"] for p in r.get("ports", [])}
        check({7000, 7001, 7002} <= ports and 6379 not in ports,
              f"cluster: {pol['metadata']['name']} opens the seeds' ports, not redis.port ({sorted(ports)})")
    # A urlSecret may hold a seed list: the chart passes the Secret through.
    docs = render(helm, home, "--set", "redis.urlSecret.name=redis-url")
    for comp, doc in workloads(docs).items():
        ref = env_of(main_container(doc, comp)).get("LTVSYNC_REDIS_URL", {}).get("valueFrom", {}).get("secretKeyRef")
        check(ref == {"name": "redis-url", "key": "url"}, f"urlSecret/{comp}: LTVSYNC_REDIS_URL from the Secret as is")
    check_refused(helm, home, [
        (values_file("db.yaml", {"clusterSeeds": seeds, "db": 2}), "database 0"),
        (values_file("tls.yaml", {"clusterSeeds": seeds, "tls": {"enabled": True, "caSecret": "ca"}}), "clusterSeeds"),
        (values_file("url.yaml", {"clusterSeeds": seeds, "urlSecret": {"name": "u"}}), "urlSecret"),
        (values_file("noport.yaml", {"clusterSeeds": "a.svc:7000,b.svc"}), "clusterSeeds"),
        (values_file("scheme.yaml", {"clusterSeeds": "redis://a.svc:7000"}), "clusterSeeds"),
        (values_file("port.yaml", {"clusterSeeds": "a.svc:7000,b.svc:70000"}), "65535"),
    ])


def check_seal_key(helm, home, values):
    """sealKey.existingSecret: the key ring Secret mounted read-only (no
    subPath: a rotated Secret reaches running pods) into the fetchers only,
    named by LTVSYNC_SEAL_KEY_FILE; unset: nothing."""
    sk = values["sealKey"]
    for d in by_kind(render(helm, home), "Deployment"):
        c = d["spec"]["template"]["spec"]["containers"][0]
        check("LTVSYNC_SEAL_KEY_FILE" not in env_of(c), f"{d['metadata']['name']}: no seal key by default")
    docs = render(helm, home, "--set", "sealKey.existingSecret=ltvsync-seal-key")
    want = sk["mountPath"].rstrip("/") + "/" + sk["key"]
    for d in by_kind(docs, "Deployment"):
        name = d["metadata"]["name"]
        pod = d["spec"]["template"]["spec"]
        c = pod["containers"][0]
        mounts = {m["name"]: m for m in c.get("volumeMounts", [])}
        vols = {v["name"]: v for v in pod.get("volumes", [])}
        if name.endswith("-fetcher"):
            check(env_of(c).get("LTVSYNC_SEAL_KEY_FILE", {}).get("value") == want,
                  f"{name}: LTVSYNC_SEAL_KEY_FILE={want}")
            m = mounts.get("seal-key", {})
            check(m.get("mountPath") == sk["mountPath"] and m.get("readOnly") is True
                  and "subPath" not in m, f"{name}: the seal key mounted read-only, no subPath")
            s = vols.get("seal-key", {}).get("secret", {})
            check(s.get("secretName") == "ltvsync-seal-key" and s.get("defaultMode") == 0o440,
                  f"{name}: the seal key volume is the Secret, mode 0440")
        elif not name.endswith("-api"):
            check("seal-key" not in mounts and "LTVSYNC_SEAL_KEY_FILE" not in env_of(c),
                  f"{name}: no seal key outside the fetcher")
    check(not [d for d in by_kind(docs, "Secret") if "seal" in d["metadata"]["name"]],
          "the chart never renders a seal key Secret")


def check_values_mirror_table(values):
    table = config_table()
    check(len(table) >= 20, f"parsed {len(table)} settings from common/lt_config.c")
    cfg = values["config"]
    for k in cfg:
        check(k in table, f"values.yaml config.{k} is a setting of common/lt_config.c")
    api_cfg = values["api"]["config"]
    for k in api_cfg:
        check(k in table and k.startswith("API_"), f"values.yaml api.config.{k} is an API_ setting")
    for k, default in table.items():
        if k in CHART_OWNED:
            continue
        if k.startswith("API_"):  # ltvsync-api's own settings: in api.config
            if check(k in api_cfg, f"values.yaml api.config mirrors {k}"):
                check(str(api_cfg[k]) == (default or ""),
                      f"values.yaml api.config.{k}={api_cfg[k]!r} equals the code default {default!r}")
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


def check_api(helm, home, docs, values, label):
    """ltvsync-api (values `api`): Deployment, Service, PDB, token Secret,
    optional Ingress; the refusals of its values."""
    api = values["api"]
    comp = lambda kind: [d for d in by_kind(docs, kind)
                         if d["metadata"]["labels"].get("app.kubernetes.io/component") == "api"]
    (dep,) = comp("Deployment") or [None]
    if not check(dep is not None, f"{label}: an api Deployment"):
        return
    where = f"{label}/api"
    pod = pod_of(dep)
    c = main_container(dep, "api")
    check(c.get("args") == ["ltvsync-api"], f"{where}: runs ltvsync-api")
    ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
    check(ports == {"http": api["port"]}, f"{where}: one port, http = api.port ({ports})")
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        p = c.get(probe, {}).get("httpGet", {})
        check(p.get("path") == path and p.get("port") == "http", f"{where}: {probe} on {path}")
    env = env_of(c)
    check(env.get("LTVSYNC_API_PORT", {}).get("value") == str(api["port"]), f"{where}: LTVSYNC_API_PORT")
    check("LTVSYNC_HTTP_PORT" not in env, f"{where}: no LTVSYNC_HTTP_PORT (the API port serves the probes)")
    secret = api["tokens"]["existingSecret"] if not api["tokens"]["values"] else dep["metadata"]["name"] + "-tokens"
    check_secret_file(where, pod, c, env.get("LTVSYNC_API_TOKENS_FILE", {}).get("value", "?"),
                      secret, api["tokens"]["key"], True)
    check(env.get("LTVSYNC_KAFKA_BOOTSTRAP_SERVERS", {}).get("value") == values["kafka"]["bootstrapServers"]
          and "LTVSYNC_REDIS_URL" in env, f"{where}: Kafka and Redis as the services")
    settings = dict(values["config"], **(api.get("config") or {}))
    for k, v in settings.items():
        if v not in ("", None):
            check(env.get("LTVSYNC_" + k, {}).get("value") == str(v), f"{where}: LTVSYNC_{k}={v!r}")
    crm_dir = values["crm"]["passwordsMountPath"]
    if values["crm"]["passwordSecrets"]:
        check(env.get("LTVSYNC_CRM_CREDENTIALS_DIR", {}).get("value") == crm_dir,
              f"{where}: the CRM passwords (Connect test, reconcile) at {crm_dir}")
    check_container_security(where, pod, c)
    grace = int(settings.get("SHUTDOWN_GRACE", "25s").rstrip("s"))
    check(pod["terminationGracePeriodSeconds"] > grace, f"{where}: grace exceeds SHUTDOWN_GRACE")
    check("/tmp" in {m["mountPath"] for m in c.get("volumeMounts", [])}, f"{where}: writable /tmp")
    check(dep["spec"].get("replicas") == api["replicaCount"], f"{where}: replicas from values")
    (svc,) = comp("Service") or [None]
    if check(svc is not None, f"{label}: an api Service"):
        sp = svc["spec"]["ports"]
        check(len(sp) == 1 and sp[0]["port"] == api["port"] and sp[0]["targetPort"] == "http"
              and sp[0]["name"] == "http", f"{where}: Service port {api['port']} -> http")
        check(svc["spec"]["selector"] == dep["spec"]["selector"]["matchLabels"], f"{where}: Service selects the API's pods")
    pdb = comp("PodDisruptionBudget")
    check(len(pdb) == int(api["pdb"]["enabled"]), f"{where}: PDB when api.pdb.enabled")
    check(not comp("Ingress"), f"{where}: no Ingress unless api.ingress.enabled")
    check(not [d for d in comp("Secret")], f"{where}: no token Secret unless api.tokens.values")

    # Tokens from values, an Ingress with TLS, the seal key ring.
    args = ["--set", "api.tokens.values[0].name=platform", "--set", "api.tokens.values[0].scope=admin",
            "--set", "api.tokens.values[0].token=0123456789abcdef0123",
            "--set", "api.tokens.values[1].name=console", "--set", "api.tokens.values[1].scope=read",
            "--set", "api.tokens.values[1].token=fedcba9876543210fedc",
            "--set", "api.ingress.enabled=true", "--set", "api.ingress.host=ltv.example.com",
            "--set", "api.ingress.className=nginx", "--set", "api.ingress.tls.enabled=true",
            "--set", "api.ingress.tls.secretName=ltv-tls", "--set", "sealKey.existingSecret=seal"]
    try:
        d2 = render(helm, home, *args)
    except RuntimeError as e:
        check(False, f"api: tokens from values and an Ingress render: {e}")
        return
    sec = [d for d in by_kind(d2, "Secret") if d["metadata"]["name"].endswith("-api-tokens")]
    if check(len(sec) == 1, "api: the token Secret is created from api.tokens.values"):
        import base64
        text = base64.b64decode(sec[0]["data"]["tokens"]).decode()
        lines = [l for l in text.splitlines() if l and not l.startswith("#")]
        check(lines == ["platform admin 0123456789abcdef0123", "console read fedcba9876543210fedc"],
              f"api: the token file is NAME SCOPE TOKEN lines ({len(lines)} lines)")
    dep2 = [d for d in by_kind(d2, "Deployment") if d["metadata"]["name"].endswith("-api")][0]
    c2 = main_container(dep2, "api")
    check_secret_file("api/values", pod_of(dep2), c2, env_of(c2)["LTVSYNC_API_TOKENS_FILE"]["value"],
                      sec[0]["metadata"]["name"] if sec else "?", "tokens", True)
    check("checksum/api-tokens" in dep2["spec"]["template"]["metadata"].get("annotations", {}),
          "api: a changed token Secret from values rolls the pods")
    check("0123456789abcdef0123" not in yaml.safe_dump(dep2), "api: the tokens stay in the Secret")
    check("LTVSYNC_SEAL_KEY_FILE" in env_of(c2), "api: the seal key ring (sealKey) for typed-in passwords")
    ing = by_kind(d2, "Ingress")
    if check(len(ing) == 1, "api: api.ingress.enabled renders an Ingress"):
        spec = ing[0]["spec"]
        be = spec["rules"][0]["http"]["paths"][0]["backend"]["service"]
        check(spec["rules"][0]["host"] == "ltv.example.com" and spec.get("ingressClassName") == "nginx",
              "api: Ingress host and class from values")
        check(be["name"] == dep2["metadata"]["name"] and be["port"] == {"name": "http"},
              "api: Ingress to the API Service's http port")
        check(spec.get("tls") == [{"hosts": ["ltv.example.com"], "secretName": "ltv-tls"}], "api: Ingress TLS")
    off = render(helm, home, "--set", "api.enabled=false")
    check(not [d for d in off if d["metadata"].get("labels", {}).get("app.kubernetes.io/component") == "api"],
          "api.enabled=false renders no API object")
    check_refused(helm, home, [
        (["--set", "api.tokens.values[0].name=x", "--set", "api.tokens.values[0].scope=write",
          "--set", "api.tokens.values[0].token=0123456789abcdef"], "scope"),
        (["--set", "api.tokens.values[0].name=x", "--set", "api.tokens.values[0].scope=read",
          "--set", "api.tokens.values[0].token=short"], "token"),
        (["--set", "api.tokens.existingSecret="], "api.tokens.existingSecret"),
        (["--set", "api.ingress.enabled=true", "--set", "api.ingress.tls.enabled=true"], "secretName"),
        (["--set", "api.config.API_PORT=9000"], "API_PORT"),
        (["--set", "api.terminationGracePeriodSeconds=10"], "must exceed SHUTDOWN_GRACE"),
    ])


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
            if label == "default":
                check_api(helm, home, docs, vals, label)
            notes = render_notes(helm, home, home, args)
            check("egress" in notes.lower() and "allow-list" in notes.lower(),
                  f"{label}: NOTES explain the CRM IP allow-list and egress IPs")
            check(values["crm"]["passwordsMountPath"] in notes, f"{label}: NOTES give the password_ref path")
        check(all(prod[c]["keda"]["enabled"] for c in KEDA_LAG) and prod["metrics"]["serviceMonitor"]["enabled"],
              "the production example exercises KEDA (fetcher, normalizer, sink) and the ServiceMonitor")
        # The trial Secret path: created from values, mounted, rollout checksum.
        docs = render(helm, home, "--set", "crm.createSecret.enabled=true",
                      "--set", "crm.createSecret.passwords.acme=s3cret-value")
        secrets = by_kind(docs, "Secret")
        check(len(secrets) == 1 and "acme" in secrets[0]["data"], "createSecret renders the Secret")
        fetch = [d for d in by_kind(docs, "Deployment") if d["metadata"]["name"].endswith("-fetcher")][0]
        check("checksum/crm-passwords" in fetch["spec"]["template"]["metadata"].get("annotations", {}),
              "a changed trial Secret rolls the fetchers")
        check("s3cret-value" not in yaml.safe_dump(fetch), "the password stays in the Secret")
        check_seal_key(helm, home, values)
        check_refusals(helm, home)
        check_kafka_mtls(helm, home)
        check_redis_tls(helm, home)
        check_redis_cluster(helm, home)
        check_keda_lag(helm, home, values)
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
