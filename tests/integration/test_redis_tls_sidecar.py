"""Redis over TLS through the chart's stunnel sidecar, end to end (issue 12).

hiredis 0.14 has no TLS, so with redis.tls.enabled every service pod runs
stunnel and talks plain Redis to 127.0.0.1. This test renders the chart
(scripts/helm, as test_helm.py does), takes the stunnel.conf of its
ConfigMap and the sidecar's command, lays the Secrets out as Kubernetes
mounts them (only /etc/ltvsync/ is moved into a temp dir), and runs
Debian's stunnel against a redis-server that speaks TLS only (port 0 for
plain), requires client certificates (tls-auth-clients yes) and has an ACL
user and no usable default user. The client is ltvsync's own lt_redis
(test_redis_io from LTVSYNC_BIN_DIR) with LTVSYNC_REDIS_URL as rendered,
$(REDIS_PASSWORD) expanded as the kubelet does. Certificates: a throwaway
CA made with openssl.

  1. the rendered tunnel works: PING, SET/GET, AUTH as the ACL user;
     the same password without the user is refused (the user matters);
  2. a CA that did not sign the server's certificate: refused (verifyChain);
  3. a serverName the certificate does not hold: refused (checkHost);
  4. no client certificate (clientSecret unset): Redis refuses the handshake.

Exit 77 (skipped) when stunnel is not installed (Debian package stunnel4).
"""
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_helm as th  # noqa: E402  (helm_binary, render)
from ltharness import Stack, bin_path, free_port, wait_until  # noqa: E402

SERVER_NAME = "redis.ltvsync.test"
USER, PASSWORD = "ltv-app", "Tunnel-pw-5e1f0c"

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what, flush=True)
    else:
        print("ok:", what, flush=True)
    return cond


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=30)


def make_pki(d):
    """ca.crt/key, server (SAN SERVER_NAME), client, and an unrelated CA."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    for ca in ("ca", "other-ca"):
        openssl("req", "-x509", *ec, "-keyout", ca + ".key", "-out", ca + ".crt",
                "-days", "1", "-subj", "/CN=ltvsync test " + ca, cwd=d)
    for name, ext in (("server", f"subjectAltName=DNS:{SERVER_NAME}\nextendedKeyUsage=serverAuth\n"),
                      ("client", "extendedKeyUsage=clientAuth\n")):
        with open(os.path.join(d, name + ".ext"), "w") as f:
            f.write(ext)
        openssl("req", *ec, "-keyout", name + ".key", "-out", name + ".csr",
                "-subj", "/CN=" + (SERVER_NAME if name == "server" else USER), cwd=d)
        openssl("x509", "-req", "-in", name + ".csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                "-CAcreateserial", "-out", name + ".crt", "-days", "1",
                "-extfile", name + ".ext", cwd=d)


def rendered(helm, home, tls_port, local_port, server_name, client_cert):
    """(stunnel.conf text, sidecar container, LTVSYNC_REDIS_URL) of the sink."""
    args = ["--set", "redis.host=127.0.0.1", "--set", f"redis.port={tls_port}",
            "--set", "redis.tls.enabled=true", "--set", f"redis.tls.localPort={local_port}",
            "--set", f"redis.tls.serverName={server_name}", "--set", "redis.tls.caSecret=redis-ca",
            "--set", f"redis.auth.username={USER}", "--set", "redis.auth.existingSecret=redis-auth"]
    if client_cert:
        args += ["--set", "redis.tls.clientSecret=redis-client"]
    docs = th.render(helm, home, *args)
    (cm,) = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("-redis-tls")]
    (sink,) = [d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"].endswith("-sink")]
    pod = sink["spec"]["template"]["spec"]
    side = [c for c in pod.get("initContainers", []) + pod["containers"] if c["name"] == "redis-tls"][0]
    env = {e["name"]: e for e in pod["containers"][0]["env"]}
    return cm["data"]["stunnel.conf"], side, env["LTVSYNC_REDIS_URL"]["value"]


def lay_out_pod(root, conf, side, pki, ca="ca"):
    """Writes the sidecar's mounts under root (as the kubelet would under
    /etc/ltvsync/) and returns the argv of its command."""
    etc = os.path.join(root, "etc", "ltvsync")
    files = {"stunnel/stunnel.conf": conf.replace("/etc/ltvsync/", etc + "/"),
             "redis-tls-ca/ca.crt": open(os.path.join(pki, ca + ".crt")).read(),
             "redis-tls-client/tls.crt": open(os.path.join(pki, "client.crt")).read(),
             "redis-tls-client/tls.key": open(os.path.join(pki, "client.key")).read()}
    for rel, text in files.items():
        path = os.path.join(etc, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, 0o440 if rel.endswith(".key") else 0o444)
    cmd = side["command"] + side.get("args", [])
    stunnel = shutil.which("stunnel") or shutil.which("stunnel4")
    return [stunnel if cmd[0] == "stunnel" else cmd[0]] + [a.replace("/etc/ltvsync/", etc + "/") for a in cmd[1:]]


def redis_io(url, *lines):
    """lt_redis (the services' client) through url: one answer per line."""
    r = subprocess.run([bin_path("test_redis_io"), url, "1500"], input="".join(l + "\n" for l in lines),
                       capture_output=True, text=True, timeout=30)
    return r.stdout.splitlines()


def port_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def run_tunnel(st, name, argv, local_port):
    p = st.start(name, argv)
    wait_until(lambda: p.check_alive() or port_open(local_port), 10, f"{name} listening")
    return p


def main():
    stunnel = shutil.which("stunnel") or shutil.which("stunnel4")
    if not stunnel:
        print("skipped: stunnel is not installed (Debian package stunnel4)")
        return 77
    for tool in ("openssl", "redis-server"):
        if not shutil.which(tool):
            print(f"FAIL: {tool} is not installed")
            return 1
    t0 = time.monotonic()
    helm = th.helm_binary()
    with Stack("redis-tls") as st, tempfile.TemporaryDirectory(prefix="ltvsync-helm-") as home:
        pki = os.path.join(st.tmp, "pki")
        os.makedirs(pki)
        make_pki(pki)
        tls_port = free_port()
        redis = st.start("redis", [
            "redis-server", "--port", "0", "--bind", "127.0.0.1", "--tls-port", str(tls_port),
            "--tls-cert-file", os.path.join(pki, "server.crt"),
            "--tls-key-file", os.path.join(pki, "server.key"),
            "--tls-ca-cert-file", os.path.join(pki, "ca.crt"), "--tls-auth-clients", "yes",
            "--save", "", "--appendonly", "no", "--dir", st.tmp,
            "--user", "default", "off",
            "--user", USER, "on", ">" + PASSWORD, "~*", "&*", "+@all"])
        wait_until(lambda: redis.check_alive() or port_open(tls_port), 10, "redis-server TLS port")

        def scenario(label, server_name=SERVER_NAME, client_cert=True, ca="ca"):
            local = free_port()
            conf, side, url = rendered(helm, home, tls_port, local, server_name, client_cert)
            check(re.fullmatch(rf"redis://{USER}:\$\(REDIS_PASSWORD\)@127\.0\.0\.1:{local}/0", url),
                  f"{label}: the sink's LTVSYNC_REDIS_URL names the tunnel as {USER} ({url})")
            argv = lay_out_pod(os.path.join(st.tmp, label), conf, side, pki, ca)
            tunnel = run_tunnel(st, "stunnel-" + label, argv, local)
            return tunnel, url.replace("$(REDIS_PASSWORD)", PASSWORD)

        # 1. The rendered sidecar carries lt_redis's traffic, as the ACL user.
        tunnel, url = scenario("good")
        out = redis_io(url, "ping", "set tls:k 6869", "get tls:k")
        check(out == ["PONG", "OK", "6869"], f"good: PING, SET, GET through the tunnel ({out})")
        out = redis_io(url.replace(f"{USER}:", ":"), "ping")
        check(len(out) == 1 and out[0].startswith("ERR") and "PONG" not in out,
              f"good: the password without the ACL user is refused ({out})")
        check("Certificate accepted at depth=0: CN=" + SERVER_NAME in tunnel.log(),
              "good: stunnel verified Redis's certificate")
        check(PASSWORD not in tunnel.log(), "good: the tunnel never logs the password")
        st.stop(tunnel)

        # 2. A CA that did not sign Redis's certificate: no connection.
        tunnel, url = scenario("wrong-ca", ca="other-ca")
        out = redis_io(url, "ping")
        check(out and out[0].startswith("ERR"), f"wrong-ca: refused ({out})")
        check(re.search(r"Pre-verification error.*\n.*Rejected by CERT at depth=1", tunnel.log()),
              "wrong-ca: stunnel says the chain did not verify")
        st.stop(tunnel)

        # 3. A name the certificate does not hold: no connection.
        tunnel, url = scenario("wrong-name", server_name="other.ltvsync.test")
        out = redis_io(url, "ping")
        check(out and out[0].startswith("ERR"), f"wrong-name: refused ({out})")
        check(re.search(r"Subject checks failed.*\n.*Rejected by CERT at depth=0", tunnel.log()),
              "wrong-name: stunnel says the name did not match")
        st.stop(tunnel)

        # 4. Redis requires a client certificate; without clientSecret none is sent.
        tunnel, url = scenario("no-client-cert", client_cert=False)
        out = redis_io(url, "ping")
        check(out and out[0].startswith("ERR"), f"no-client-cert: refused by tls-auth-clients ({out})")
        check("certificate required" in tunnel.log(), "no-client-cert: Redis asked for a certificate")
        st.stop(tunnel)
    print(f"took {time.monotonic() - t0:.1f}s")
    if failures:
        print(f"{len(failures)} check(s) failed")
        return 1
    print("ok: Redis over TLS through the chart's stunnel sidecar")
    return 0


if __name__ == "__main__":
    sys.exit(main())
