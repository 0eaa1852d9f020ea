"""The chart's NetworkPolicies (issue 12), rendered by the real helm 3
binary (scripts/helm, as test_helm.py does) with the default values, the
production example and a few overrides:
  - one policy per service, selecting exactly that Deployment's pods, both
    policy types (a policy with Egress alone would leave ingress open);
  - ingress: httpPort over TCP only, from anyone unless ingress.from says;
  - egress: DNS (UDP and TCP 53), the Kafka ports of the bootstrap lists
    (the sink's downstream list too), redis.port, and for the fetcher and
    ltvsync-api alone 443 to public addresses (no private, link-local/metadata
    or CGNAT block); no rule without ports; the API's ingress to api.port
    from api.networkPolicy.from;
  - networkPolicy.enabled=false renders none; a bad CIDR is refused.
"""
import ipaddress
import os
import sys
import tempfile

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_helm as th  # noqa: E402  (helm_binary, run_helm, render)

COMPONENTS = th.COMPONENTS
from ltcheck import check, failures  # noqa: E402


def ports(rule):
    return {(p.get("protocol", "TCP"), p["port"]) for p in rule.get("ports", [])}


def policies(docs):
    return {d["metadata"]["labels"]["app.kubernetes.io/component"]: d
            for d in docs if d.get("kind") == "NetworkPolicy"}


def check_policies(docs, values, label, kafka_ports, sink_ports):
    deps = {d["metadata"]["labels"]["app.kubernetes.io/component"]: d
            for d in docs if d.get("kind") == "Deployment"}
    pols = policies(docs)
    check(set(pols) == set(COMPONENTS) | {"api"}, f"{label}: a NetworkPolicy per service ({sorted(pols)})")
    for comp, pol in pols.items():
        where = f"{label}/{comp}"
        spec = pol["spec"]
        sel = deps[comp]["spec"]["selector"]["matchLabels"]
        check(spec["podSelector"].get("matchLabels") == sel, f"{where}: selects its Deployment's pods")
        check(sorted(spec.get("policyTypes", [])) == ["Egress", "Ingress"], f"{where}: Ingress and Egress")
        (ing,) = spec["ingress"]
        port = values["api"]["port"] if comp == "api" else values["httpPort"]
        check(ports(ing) == {("TCP", port)}, f"{where}: ingress to the HTTP port only ({ing})")
        egress = spec["egress"]
        check(all(r.get("ports") for r in egress), f"{where}: every egress rule names its ports")
        allowed = set().union(*(ports(r) for r in egress))
        want = {("UDP", 53), ("TCP", 53), ("TCP", values["redis"]["port"])}
        want |= {("TCP", p) for p in (sink_ports if comp == "sink" else kafka_ports)}
        if comp in ("fetcher", "api"):  # the API: the Connect test and reconcile
            want.add(("TCP", 443))
        check(allowed == want, f"{where}: egress ports {sorted(allowed)} == {sorted(want)}")
        crm = [r for r in egress if ("TCP", 443) in ports(r)]
        if comp not in ("fetcher", "api"):
            continue
        blocks = [t["ipBlock"] for r in crm for t in r.get("to", [])]
        check(crm and all("ipBlock" in t for r in crm for t in r.get("to", [])) and blocks,
              f"{where}: 443 only to ipBlocks")
        for probe in ("169.254.169.254", "10.1.2.3", "172.20.0.1", "192.168.1.1", "100.64.0.1",
                      "127.0.0.1", "fd00::1", "fe80::1"):
            check(not reachable(blocks, probe), f"{where}: 443 to {probe} is not allowed")
        check(reachable(blocks, "203.0.113.10"), f"{where}: 443 to a public address is allowed")


def check_api_policy(helm, home):
    """ltvsync-api: its port from api.networkPolicy.from only; none when disabled."""
    docs = th.render(helm, home, "--set", "api.port=8443",
                     "--set", "api.networkPolicy.from[0].namespaceSelector.matchLabels.team=platform")
    pol = policies(docs)["api"]["spec"]
    check(pol["ingress"] == [{"ports": [{"port": 8443, "protocol": "TCP"}],
                              "from": [{"namespaceSelector": {"matchLabels": {"team": "platform"}}}]}],
          f"api: ingress to api.port from api.networkPolicy.from ({pol['ingress']})")
    check(policies(docs)["sink"]["spec"]["ingress"][0].get("from") is None,
          "api.networkPolicy.from does not restrict the other services")
    docs = th.render(helm, home, "--set", "api.enabled=false")
    check("api" not in policies(docs), "api.enabled=false: no API NetworkPolicy")


def reachable(blocks, ip):
    a = ipaddress.ip_address(ip)
    for b in blocks:
        net = ipaddress.ip_network(b["cidr"])
        if a.version == net.version and a in net and not any(
                a in ipaddress.ip_network(e) for e in b.get("except", [])
                if ipaddress.ip_network(e).version == a.version):
            return True
    return False


def main():
    helm = th.helm_binary()
    values = yaml.safe_load(open(os.path.join(th.CHART, "values.yaml")))
    prod = yaml.safe_load(open(th.PROD))
    with tempfile.TemporaryDirectory(prefix="ltvsync-netpol-") as home:
        docs = th.render(helm, home)
        check_policies(docs, values, "default", [9092], [9092])
        docs = th.render(helm, home, "-f", th.PROD)
        pv = dict(values, httpPort=prod.get("httpPort", values["httpPort"]),
                  redis=dict(values["redis"], **prod.get("redis", {})))
        check_policies(docs, pv, "production", [9093], [9093])
        docs = th.render(helm, home, "--set", "kafka.bootstrapServers=a:9094\\,b:9095",
                         "--set", "downstream.bootstrapServers=d:19092",
                         "--set", "networkPolicy.egress.kafka.extraPorts[0]=9096",
                         "--set", "networkPolicy.ingress.from[0].namespaceSelector.matchLabels.team=obs")
        check_policies(docs, values, "overrides", [9094, 9095, 9096], [9094, 9095, 19092, 9096])
        ing = policies(docs)["sink"]["spec"]["ingress"][0]
        check(ing.get("from") == [{"namespaceSelector": {"matchLabels": {"team": "obs"}}}],
              "ingress.from restricts who reaches the HTTP port")
        check_api_policy(helm, home)
        docs = th.render(helm, home, "--set", "networkPolicy.enabled=false")
        check(not policies(docs), "networkPolicy.enabled=false renders no NetworkPolicy")
        r = th.run_helm(helm, home, "template", "rel", th.CHART,
                        "--set", "networkPolicy.egress.crm.cidrs[0].cidr=api.konnektive.com")
        check(r.returncode != 0 and "cidr" in r.stderr, "a host name as a CRM CIDR is refused")
    if failures:
        print(f"{len(failures)} check(s) failed")
        return 1
    print("ok: NetworkPolicies (default, production, overrides, disabled)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
