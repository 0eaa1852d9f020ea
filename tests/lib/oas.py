"""Checks HTTP responses of ltvsync-api against its OpenAPI document.

    import oas
    DOC = oas.load()                      # services/api/openapi.yaml
    oas.check(DOC, "GET", "/v1/integrations/acme", 200, resp.headers, resp.read())

check() finds the operation by path template (a literal path wins over a
templated one; the query string is ignored), the response by status (exact
code, then "4XX"-style range, then "default"), the media type by the
Content-Type header, and validates the body against that schema with
jsonschema's Draft 2020-12 validator ($refs resolved inside the document by
a RefResolver, which is what Debian 12's python3-jsonschema 4.10 offers).
It also checks the response's declared headers (required ones present,
values valid against their schemas, integers and booleans converted first)
and that no writeOnly value (the password) appears in a response body.

A request the document has no operation for is checked against the
responses the API gives before routing (components.responses): an unknown
path may be answered 404 (NotFound), a known path with another method 405
(MethodNotAllowed, with Allow); either may be 500 (InternalError). HEAD on
a path with a GET and no HEAD operation is checked as that GET, with an
empty body (the paths outside /v1/).

Every failure raises AssertionError naming the request, the status and what
is wrong. check() returns the body as parsed (JSON value, text, or bytes
for other media types; None when the response has no content).
"""
import json
import os
import re

import jsonschema
import yaml
from jsonschema import Draft202012Validator, RefResolver

SRC = os.environ.get("LTVSYNC_SRC_DIR") or os.path.abspath(
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
DOC_PATH = os.path.join(SRC, "services", "api", "openapi.yaml")
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
# Responses of requests that match no operation (see the module's docstring):
# ltvsync-api answers them before it looks at the token.
UNROUTED_PATH = {"404": "NotFound", "500": "InternalError"}
UNROUTED_METHOD = {"405": "MethodNotAllowed", "500": "InternalError"}
BASE_URI = ""  # the document is the referrer of "#/..." references


def load(path=DOC_PATH):
    """The OpenAPI document at path (default: the repository's) as plain JSON data."""
    with open(path, encoding="utf-8") as f:
        doc = yaml.safe_load(f)
    # YAML may produce dates and non-string keys; the document must be JSON.
    return json.loads(json.dumps(doc))


def _write_only(validator, value, instance, schema):
    if value:
        yield jsonschema.ValidationError("a writeOnly value appears in a response")


# Draft 2020-12, plus: a writeOnly schema is never evaluated in a response
# (it is only reached when the instance has the value).
ResponseValidator = jsonschema.validators.extend(Draft202012Validator, {"writeOnly": _write_only})


def _no_remote(uri):
    raise jsonschema.RefResolutionError(f"remote $ref {uri} (the document must be self-contained)")


def _resolver(doc):
    return RefResolver(BASE_URI, doc, handlers={"http": _no_remote, "https": _no_remote})


def _deref(doc, obj):
    """obj, or what its $ref points at (a local '#/...' reference)."""
    seen = 0
    while isinstance(obj, dict) and "$ref" in obj:
        ref = obj["$ref"]
        if not ref.startswith("#/"):
            raise AssertionError(f"oas: only local references are supported, not {ref}")
        obj = doc
        for part in ref[2:].split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(obj, dict) or part not in obj:
                raise AssertionError(f"oas: unresolvable reference {ref}")
            obj = obj[part]
        seen += 1
        if seen > 32:
            raise AssertionError("oas: reference loop")
    return obj


def _headers(headers):
    """Lower-case name -> value, from a dict, a list of pairs or an http.client/email message."""
    if headers is None:
        return {}
    items = headers.items() if hasattr(headers, "items") else headers
    out = {}
    for k, v in items:
        k = k.lower()
        out[k] = f"{out[k]}, {v}" if k in out else v
    return out


def _match_path(doc, path):
    """(template, path item, {name: value}) of the best match, or None."""
    path = path.split("?", 1)[0].split("#", 1)[0]
    segs = path.split("/")
    best = None
    for tpl, item in (doc.get("paths") or {}).items():
        tsegs = tpl.split("/")
        if len(tsegs) != len(segs):
            continue
        params, literal = {}, 0
        for t, s in zip(tsegs, segs):
            m = re.fullmatch(r"\{([^{}]+)\}", t)
            if m:
                if not s:
                    break
                params[m.group(1)] = s
            elif t != s:
                break
            else:
                literal += 1
        else:
            # Literal segments win over templated ones (OAS 3.1, Paths Object).
            if best is None or literal > best[3]:
                best = (tpl, item, params, literal)
    return best[:3] if best else None


def _pick_response(responses, status):
    code = str(status)
    for key in (code, code[0] + "XX", code[0] + "xx", "default"):
        if key in responses:
            return key, responses[key]
    return None, None


def _media(content, ctype):
    """(key, media type object) of content for the Content-Type ctype, or (None, None)."""
    base = ctype.split(";", 1)[0].strip().lower()
    if base in content:
        return base, content[base]
    major = base.split("/", 1)[0]
    for key in (major + "/*", "*/*"):
        if key in content:
            return key, content[key]
    return None, None


def _coerce(value, schema):
    """A header's text as the type its schema names, when it can be read so."""
    types = schema.get("type")
    types = types if isinstance(types, list) else [types]
    v = value.strip()
    if "integer" in types and re.fullmatch(r"-?[0-9]+", v):
        return int(v)
    if "number" in types and re.fullmatch(r"-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?", v):
        return float(v)
    if "boolean" in types and v in ("true", "false"):
        return v == "true"
    return v


def _validate(doc, schema, instance, where):
    v = ResponseValidator(schema, resolver=_resolver(doc))
    # The most specific first: a failed subschema also makes its siblings'
    # properties "unevaluated", which says less.
    errors = sorted(v.iter_errors(instance),
                    key=lambda e: (e.validator == "unevaluatedProperties", -len(e.absolute_path), e.message))
    if errors:
        lines = []
        for e in errors[:5]:
            at = "/".join(str(p) for p in e.absolute_path) or "(root)"
            lines.append(f"  at {at}: {e.message[:300]}")
            for sub in sorted(e.context or [], key=lambda s: len(s.absolute_path))[:3]:
                sat = "/".join(str(p) for p in sub.absolute_path) or "(root)"
                lines.append(f"    - {sat}: {sub.message[:200]}")
        more = f"\n  ... and {len(errors) - 5} more" if len(errors) > 5 else ""
        raise AssertionError(f"{where}: does not match its schema:\n" + "\n".join(lines) + more)


def check(doc, method, path, status, headers, body):
    """Validates one response of `method path` (status, headers, body: bytes,
    str, or an already parsed JSON value) against doc. Returns the parsed
    body; raises AssertionError on any mismatch."""
    method = method.lower()
    status = int(status)
    where = f"{method.upper()} {path} -> {status}"
    hdrs = _headers(headers)
    head = False
    match = _match_path(doc, path)
    comps = doc.get("components", {}).get("responses", {})
    if match is None:
        allowed = UNROUTED_PATH
        op = None
        where += " (no path of the document matches)"
    else:
        tpl, item, params = match
        op = item.get(method) if method in METHODS else None
        get = item.get("get")
        if op is None and method == "head" and get is not None and not tpl.startswith("/v1/"):
            op, head = get, True  # a GET's status and headers, no body
        where += f" [{tpl}]"
        allowed = None if op is not None else UNROUTED_METHOD
    if op is None:
        name = allowed.get(str(status))
        if name is None or name not in comps:
            raise AssertionError(f"{where}: status {status} is not one the API may give here "
                                 f"(only {', '.join(sorted(allowed))})")
        key, resp = str(status), comps[name]
    else:
        key, resp = _pick_response(op.get("responses", {}), status)
        if resp is None:
            raise AssertionError(f"{where}: status {status} is not documented for this operation "
                                 f"(documented: {', '.join(op.get('responses', {}))})")
    resp = _deref(doc, resp)

    for name, hdr in (resp.get("headers") or {}).items():
        if name.lower() == "content-type":
            continue  # ignored by the specification
        hdr = _deref(doc, hdr)
        value = hdrs.get(name.lower())
        if value is None:
            if hdr.get("required"):
                raise AssertionError(f"{where}: header {name} is missing")
            continue
        schema = _deref(doc, hdr.get("schema", {}))
        _validate(doc, hdr.get("schema", {}), _coerce(value, schema), f"{where}: header {name}: {value!r}")

    content = resp.get("content")
    raw = body
    if head:
        if raw not in (None, b"", ""):
            raise AssertionError(f"{where}: a HEAD response with a body")
        return None
    if not content:
        if raw not in (None, b"", ""):
            raise AssertionError(f"{where}: the response has no documented content but a body of "
                                 f"{len(raw) if isinstance(raw, (bytes, str)) else '?'} bytes")
        return None
    ctype = hdrs.get("content-type")
    if not ctype:
        raise AssertionError(f"{where}: no Content-Type (expected one of {', '.join(content)})")
    mkey, media = _media(content, ctype)
    if media is None:
        raise AssertionError(f"{where}: Content-Type {ctype!r} is not documented "
                             f"(documented: {', '.join(content)})")
    base = ctype.split(";", 1)[0].strip().lower()
    if base == "application/json" or base.endswith("+json"):
        if isinstance(raw, (bytes, bytearray, str)):
            try:
                value = json.loads(raw)
            except ValueError as e:
                raise AssertionError(f"{where}: the {base} body is not JSON: {e}: {raw[:200]!r}")
        else:
            value = raw
    elif base.startswith("text/") or base in ("application/yaml", "application/javascript"):
        try:
            value = raw.decode("utf-8") if isinstance(raw, (bytes, bytearray)) else raw
        except UnicodeDecodeError as e:
            raise AssertionError(f"{where}: the {base} body is not UTF-8: {e}")
    else:
        value = raw
    if "schema" in media:
        _validate(doc, media["schema"], value, f"{where} ({mkey})")
    return value
