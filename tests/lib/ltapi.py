"""ltvsync-api in a test Stack: start it with a tokens file and a seal key,
and call it with every response checked against services/api/openapi.yaml
(tests/lib/oas.py)."""
import base64
import json
import os
import secrets
import urllib.error
import urllib.request

import ltharness as h

_DOC = None


def doc():
    global _DOC
    if _DOC is None:
        import oas   # jsonschema and yaml: only where responses are checked
        _DOC = oas.load()
    return _DOC


def write_tokens(st, names=(("ops", "admin"), ("viewer", "read"))):
    """A tokens file in the stack's temp dir; {name: token}."""
    tokens = {n: secrets.token_urlsafe(32) for n, _ in names}
    path = st.path("api-tokens")
    with open(path, "w") as f:
        f.write("# test tokens\n")
        for n, scope in names:
            f.write("%s %s %s\n" % (n, scope, tokens[n]))
    return path, tokens


def write_seal_key(st, kid="k1"):
    path = st.path("seal-key")
    with open(path, "w") as f:
        f.write("%s %s\n" % (kid, base64.b64encode(os.urandom(32)).decode()))
    os.chmod(path, 0o600)
    return path


def start_api(st, env, tokens_file, seal_key_file, extra=None):
    """Starts ltvsync-api on a free loopback port and waits for /readyz.
    The Proc gets .base ("http://127.0.0.1:PORT")."""
    port = h.free_port()
    e = dict(env, LTVSYNC_API_PORT=port, LTVSYNC_API_BIND="127.0.0.1",
             LTVSYNC_API_TOKENS_FILE=tokens_file, LTVSYNC_SEAL_KEY_FILE=seal_key_file)
    e.update(extra or {})
    p = st.start_service("ltvsync-api", e)
    p.base = "http://127.0.0.1:%d" % port

    def ready():
        p.check_alive()
        return h.http_get(p.base + "/readyz")[0] == 200
    h.wait_until(ready, 30, "ltvsync-api /readyz")
    return p


class Response:
    def __init__(self, status, headers, raw, body):
        self.status, self.headers, self.raw, self.body = status, headers, raw, body

    def __repr__(self):
        return "<%d %s>" % (self.status, self.raw[:300])


class Client:
    """Requests to one API; each response is checked against the OpenAPI
    document (check=False for a request the document cannot describe)."""

    def __init__(self, base, token=None):
        self.base, self.token = base, token

    def call(self, method, path, body=None, token=None, ctype="application/json",
             raw=None, check=True, headers=None):
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None
                                            else None)
        req = urllib.request.Request(self.base + path, data=data, method=method)
        tok = token if token is not None else self.token
        if tok:
            req.add_header("Authorization", "Bearer " + tok)
        if data is not None and ctype:
            req.add_header("Content-Type", ctype)
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        try:
            with urllib.request.urlopen(req, timeout=120) as r:
                status, hdrs, content = r.status, r.headers, r.read()
        except urllib.error.HTTPError as e:
            status, hdrs, content = e.code, e.headers, e.read()
        parsed = None
        if check:
            import oas
            parsed = oas.check(doc(), method, path, status, dict(hdrs.items()), content)
        elif content and "json" in (hdrs.get("Content-Type") or ""):
            parsed = json.loads(content)
        return Response(status, hdrs, content.decode("utf-8", "replace"), parsed)

    def get(self, path, **kw):
        return self.call("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.call("POST", path, body, **kw)

    def patch(self, path, body=None, **kw):
        return self.call("PATCH", path, body, **kw)

    def delete(self, path, **kw):
        return self.call("DELETE", path, **kw)
