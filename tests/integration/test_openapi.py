"""services/api/openapi.yaml, the control API's OpenAPI 3.1 document (issue 15).

1. It validates against the OpenAPI 3.1 specification's own JSON Schema
   (schema-base 2022-10-07: the document structure, and every Schema Object
   against the OAS base dialect, i.e. Draft 2020-12), vendored in
   tests/lib/oas31 (source, commit, licence and checksums in its README),
   checked with Debian's python3-jsonschema. Then the rules the JSON Schema
   cannot express: every $ref resolves, path templates and path parameters
   agree, operationIds are unique, security requirements name a scheme.
2. It says what the API's contract (issue 15) says (the endpoint table,
   the tokens, the problem types): each endpoint with its success
   status, bearer security except on the open paths, 401/429 on every
   /v1 operation, 403 and the admin role on every write, a problem+json
   response per error status, the password writeOnly, the integration's
   constraints equal to schemas/integration.schema.json's.
3. It is not vacuous: broken copies (a missing info, a response without a
   description, a parameter "in: querry", a schema with "type: 5", a dangling
   $ref, an undeclared path parameter, ...) each fail.
4. tests/lib/oas.py (which the API tests call on every response) accepts
   conforming fake responses and rejects wrong ones with a clear message.
"""
import copy
import hashlib
import json
import os
import re
import sys

import jsonschema
import yaml
from jsonschema import Draft202012Validator, RefResolver

import oas

SRC = os.environ.get("LTVSYNC_SRC_DIR") or os.path.abspath(
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
SPEC_DIR = os.path.join(SRC, "tests", "lib", "oas31")
SPEC_FILES = {  # file -> sha256 (tests/lib/oas31/README.md)
    "schema.yaml": "88865537348817019370c75e106f00f20cf78fd26323d576a2bd41e9af14d24b",
    "schema-base.yaml": "02307afab0f5287531b2a2a9bd3b2f00f349fca3ca3af800170e989f28f3fbd1",
    "dialect-base.yaml": "ba63277507cf78df11269d2fe70c217bbe2d932618b1b7bc45caa592a3b17f1e",
    "meta-base.yaml": "1e033de3a0066d468367efe91b4b1c715fa14870ad49e8bd0da5d3a8f68b4421",
}
SCHEMA_BASE_ID = "https://spec.openapis.org/oas/3.1/schema-base/2022-10-07"
METHODS = oas.METHODS

from ltcheck import check, failures  # noqa: E402


# ---- 1. the specification's schema, and what it cannot express ---------

def spec_store():
    store = {}
    for name, want in SPEC_FILES.items():
        path = os.path.join(SPEC_DIR, name)
        data = open(path, "rb").read()
        got = hashlib.sha256(data).hexdigest()
        if got != want:
            raise SystemExit(f"{path}: sha256 {got}, expected {want} (see its README)")
        schema = yaml.safe_load(data)
        store[schema["$id"]] = schema
    return store


def no_network(uri):
    raise jsonschema.RefResolutionError(f"would fetch {uri}: every schema must be local")


def spec_errors(store, doc):
    """Messages of the OAS 3.1 schema-base's errors for doc."""
    base = store[SCHEMA_BASE_ID]
    resolver = RefResolver.from_schema(base, store=store,
                                       handlers={"http": no_network, "https": no_network})
    v = Draft202012Validator(base, resolver=resolver)
    return [f"{'/'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message[:200]}"
            for e in v.iter_errors(doc)]


def walk(o, path=()):
    """(path, dict) of every dict inside o."""
    if isinstance(o, dict):
        yield path, o
        for k, v in o.items():
            yield from walk(v, path + (k,))
    elif isinstance(o, list):
        for i, v in enumerate(o):
            yield from walk(v, path + (i,))


def pointer(doc, ref):
    o = doc
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        if isinstance(o, dict) and part in o:
            o = o[part]
        elif isinstance(o, list) and part.isdigit() and int(part) < len(o):
            o = o[int(part)]
        else:
            return None
    return o


def rule_errors(doc):
    """The specification's rules its JSON Schema does not check."""
    errs = []
    for path, d in walk(doc):
        ref = d.get("$ref")
        if isinstance(ref, str):
            if not ref.startswith("#/"):
                errs.append(f"{'/'.join(map(str, path))}: $ref {ref} is not local (self-contained document)")
            elif pointer(doc, ref) is None:
                errs.append(f"{'/'.join(map(str, path))}: $ref {ref} does not resolve")
    op_ids = {}
    schemes = set(doc.get("components", {}).get("securitySchemes", {}))
    reqs = [("(root)", r) for r in doc.get("security", [])]
    for tpl, item in doc.get("paths", {}).items():
        names = re.findall(r"\{([^{}]+)\}", tpl)
        if len(names) != len(set(names)):
            errs.append(f"{tpl}: a template name repeats")
        common = [pointer(doc, p["$ref"]) if "$ref" in p else p for p in item.get("parameters", [])]
        for method in METHODS:
            op = item.get(method)
            if op is None:
                continue
            where = f"{method.upper()} {tpl}"
            params = {(p.get("in"), p.get("name")): p for p in common if p}
            for p in op.get("parameters", []):
                p = pointer(doc, p["$ref"]) if "$ref" in p else p
                if p:
                    params[(p.get("in"), p.get("name"))] = p
            declared = {n for (i, n) in params if i == "path"}
            for n in names:
                if n not in declared:
                    errs.append(f"{where}: path parameter {{{n}}} is not declared")
                elif params[("path", n)].get("required") is not True:
                    errs.append(f"{where}: path parameter {n} must be required: true")
            for n in declared - set(names):
                errs.append(f"{where}: path parameter {n} is not in the template")
            oid = op.get("operationId")
            if oid in op_ids:
                errs.append(f"{where}: operationId {oid} is also {op_ids[oid]}'s")
            op_ids[oid] = where
            reqs += [(where, r) for r in op.get("security", [])]
    for where, r in reqs:
        for name in r:
            if name not in schemes:
                errs.append(f"{where}: security scheme {name} is not defined")
    return errs


def document_errors(store, doc):
    return spec_errors(store, doc) + rule_errors(doc)


# ---- 2. the contract (issue 15) -------------------------------------------

ENDPOINTS = [  # method, path, success status (the contract's table)
    ("get", "/v1/integrations", "200"), ("post", "/v1/integrations", "201"),
    ("get", "/v1/integrations/{id}", "200"), ("patch", "/v1/integrations/{id}", "200"),
    ("delete", "/v1/integrations/{id}", "204"), ("post", "/v1/integrations/{id}/test", "200"),
    ("post", "/v1/integrations/{id}/sync", "202"), ("post", "/v1/integrations/{id}/replay", "202"),
    ("get", "/v1/integrations/{id}/status", "200"), ("get", "/v1/status", "200"),
    ("get", "/v1/integrations/{id}/reconcile", "200"), ("get", "/v1/dlq", "200"),
    ("post", "/v1/dlq/retry", "200"), ("get", "/v1/openapi.yaml", "200"),
]
OPEN = {"/", "/console.js", "/console.css", "/healthz", "/readyz", "/metrics", "/v1/openapi.yaml"}
SLUGS = {"validation": 400, "unauthorized": 401, "forbidden": 403, "not-found": 404,
         "method-not-allowed": 405, "conflict": 409, "confirmation-required": 409,
         "too-large": 413, "unsupported-media-type": 415, "crm-rejected": 422,
         "rate-limited": 429, "crm-unreachable": 502, "unavailable": 503,
         "internal": 500}  # internal: not in the contract's list; ltvsync-api has it


def schema_of(doc, method, path, status, ctype="application/json"):
    resp = oas._deref(doc, doc["paths"][path][method]["responses"][status])
    return resp.get("content", {}).get(ctype, {}).get("schema")


def check_contract(doc):
    paths = doc["paths"]
    check(doc["openapi"].startswith("3.1."), "an OpenAPI 3.1 document")
    bearer = doc["components"]["securitySchemes"].get("bearer", {})
    check(bearer.get("type") == "http" and bearer.get("scheme") == "bearer", "a bearer security scheme")
    check(doc.get("security") == [{"bearer": ["read"]}], "bearer (read) required by default")
    for method, path, ok in ENDPOINTS:
        op = paths.get(path, {}).get(method)
        if not check(op is not None, f"{method.upper()} {path} is documented"):
            continue
        check(ok in op["responses"], f"{method.upper()} {path} answers {ok}")
    for path in OPEN:
        check(paths.get(path, {}).get("get", {}).get("security") == [],
              f"GET {path} needs no token (security: [])")
    for path, item in paths.items():
        for method in METHODS:
            op = item.get(method)
            if op is None:
                continue
            where = f"{method.upper()} {path}"
            codes = set(op["responses"])
            if path.startswith("/v1/") and path not in OPEN:
                check(op.get("security", doc["security"]) != [], f"{where}: needs a token")
                check({"401", "429"} <= codes, f"{where}: documents 401 and 429")
            if method in ("post", "patch", "delete"):
                check(op.get("security") == [{"bearer": ["admin"]}], f"{where}: needs an admin token")
                check("403" in codes, f"{where}: documents 403 (a read token)")
            if method in ("post", "patch", "delete"):
                check({"413", "415"} <= codes, f"{where}: documents 413 and 415 (a write)")
            if "requestBody" in op:
                want = ["application/json"] + (["application/merge-patch+json"] if method == "patch" else [])
                check(list(op["requestBody"]["content"]) == want, f"{where}: takes {want} only")
            for code, resp in op["responses"].items():
                resp = oas._deref(doc, resp)
                if code[0] in "45" and path.startswith("/v1/"):  # probes and metrics: text
                    check("application/problem+json" in resp.get("content", {}),
                          f"{where} {code}: an application/problem+json body")
    # Every slug has a response component whose schema fixes type and status.
    seen = {}
    for name, resp in doc["components"]["responses"].items():
        schema = resp["content"]["application/problem+json"]["schema"]
        s = json.dumps(resolve_all(doc, schema))
        m = re.search(r'"urn:ltvsync:problem:([a-z-]+)"', s)
        if m:
            seen[m.group(1)] = (name, schema)
    for slug, status in SLUGS.items():
        if check(slug in seen, f"a response for problem {slug}"):
            name, schema = seen[slug]
            ok = {"type": f"urn:ltvsync:problem:{slug}", "title": "t", "status": status, "detail": "d"}
            check(not oas_errors(doc, schema, ok), f"{name}: a {status} {slug} problem validates")
            bad = dict(ok, status=500 if status != 500 else 400)
            check(oas_errors(doc, schema, bad), f"{name}: a {slug} problem with another status does not")
    for name, hdr in (("Unauthorized", "WWW-Authenticate"), ("RateLimited", "Retry-After"),
                      ("MethodNotAllowed", "Allow")):
        check(hdr in doc["components"]["responses"][name].get("headers", {}), f"{name} has {hdr}")
    created = oas._deref(doc, paths["/v1/integrations"]["post"]["responses"]["201"])
    check("Location" in created.get("headers", {}), "201 Created has Location")
    # The password: write-only in, never out.
    sch = doc["components"]["schemas"]
    check(sch["Password"].get("writeOnly") is True, "password is writeOnly")
    check("password" in sch["IntegrationCreate"]["properties"], "POST takes a password")
    check("password" not in sch["Integration"].get("properties", {})
          and "password" not in sch["IntegrationFields"]["properties"]
          and sch["Integration"].get("unevaluatedProperties") is False,
          "the Integration (output) has no password and no other field")
    # Constraints equal to schemas/integration.schema.json's.
    ref = json.load(open(os.path.join(SRC, "schemas", "integration.schema.json")))
    fields = dict(sch["IntegrationFields"]["properties"], password_ref=sch["PasswordRef"])
    keys = ("pattern", "minLength", "maxLength", "enum", "minimum", "maximum", "minItems",
            "uniqueItems", "default", "type")
    check(set(fields) == set(ref["properties"]), f"the integration's fields {sorted(fields)}")
    for name, want in ref["properties"].items():
        got = resolve_all(doc, fields.get(name, {}))
        for k in keys:
            if k in want:
                check(got.get(k) == want[k], f"integration field {name}: {k} {got.get(k)!r} == {want[k]!r}")
        if "items" in want:
            check(resolve_all(doc, got.get("items", {})).get("enum") == want["items"]["enum"],
                  f"integration field {name}: items")
    check(set(sch["Integration"]["required"]) >= set(ref["required"]),
          "the Integration (output) requires what integration.schema.json requires")
    check(set(sch["IntegrationCreate"]["required"]) == set(ref["required"]) - {"password_ref"},
          "POST requires what integration.schema.json requires, the password aside")
    # The examples of the document validate against their schemas.
    for name, s in sch.items():
        for ex in s.get("examples", []):
            check(not oas_errors(doc, {"$ref": f"#/components/schemas/{name}"}, ex),
                  f"the example of {name} validates ({oas_errors(doc, {'$ref': f'#/components/schemas/{name}'}, ex)[:1]})")


def resolve_all(doc, s):
    """s with its $ref and allOf merged in (for comparing keywords)."""
    s = dict(s)
    while "$ref" in s:
        target = pointer(doc, s.pop("$ref"))
        s = {**target, **s}
    return s


def oas_errors(doc, schema, instance):
    try:
        oas._validate(doc, schema, instance, "x")
        return []
    except AssertionError as e:
        return [str(e)]


# ---- 3. broken copies fail ------------------------------------------------

def mutations():
    def at(*keys):
        def get(d):
            for k in keys:
                d = d[k]
            return d
        return get
    ok_get = at("paths", "/v1/dlq", "get")
    comp = at("components", "schemas")
    return [
        ("no info", lambda d: d.pop("info")),
        ("openapi 3.0.3", lambda d: d.__setitem__("openapi", "3.0.3")),
        ("a response without description", lambda d: ok_get(d)["responses"]["200"].pop("description")),
        ("parameter in: querry", lambda d: at("paths", "/v1/integrations", "post")(d)["parameters"][0].__setitem__("in", "querry")),
        ("an unknown operation field", lambda d: ok_get(d).__setitem__("respones", {})),
        ("a method 'gett'", lambda d: d["paths"]["/v1/dlq"].__setitem__("gett", ok_get(d))),
        ("a status code 'two hundred'", lambda d: ok_get(d)["responses"].__setitem__("two hundred", {"description": "x"})),
        ("schema type 5", lambda d: comp(d)["Count"].__setitem__("type", 5)),
        ("schema minimum '0'", lambda d: comp(d)["Count"].__setitem__("minimum", "0")),
        ("schema required 'reason'", lambda d: comp(d)["DeadLetter"].__setitem__("required", "reason")),
        ("a discriminator without propertyName", lambda d: comp(d)["Count"].__setitem__("discriminator", {})),
        ("security scheme type htp", lambda d: d["components"]["securitySchemes"]["bearer"].__setitem__("type", "htp")),
        ("a header without schema or content", lambda d: d["components"]["headers"]["Location"].pop("schema")),
        ("a dangling $ref", lambda d: ok_get(d)["responses"]["200"]["content"]["application/json"]["schema"]["items"].__setitem__("$ref", "#/components/schemas/DeadLeter")),
        ("a remote $ref", lambda d: comp(d).__setitem__("X", {"$ref": "https://example.com/x.json"})),
        ("an undeclared path parameter", lambda d: d["paths"].__setitem__("/v1/x/{name}", {"get": {"responses": {"200": {"description": "x"}}}})),
        ("a path parameter not required", lambda d: d["components"]["parameters"]["IntegrationId"].__setitem__("required", False)),
        ("a duplicate operationId", lambda d: ok_get(d).__setitem__("operationId", "listIntegrations")),
        ("an unknown security scheme", lambda d: ok_get(d).__setitem__("security", [{"basic": []}])),
    ]


def check_mutations(store, doc):
    for name, mutate in mutations():
        d = copy.deepcopy(doc)
        mutate(d)
        errs = document_errors(store, d)
        check(errs, f"a copy with {name} is refused")
        if errs:
            print(f"  refused ({name}): {errs[0]}")


# ---- 4. oas.check on fake responses ---------------------------------------

INTEGRATION = {
    "id": "acme", "brand": "konnektive", "base_url": "https://api.konnektive.com",
    "api_username": "acme-api", "password_ref": "sealed:v1:k20250101-ab12",
    "account_name": "Acme", "account_username": "acme", "timezone": "America/New_York",
    "currency": "USD", "import_from": "2024-01-01", "sync_interval": "15m",
    "streams": ["transactions", "orders"], "max_requests_per_second": 5, "max_in_flight": 4}
# As services/ctl/status.c's to_json prints it (keys in its order).
STATUS = {"streams": {"orders": {"days_done": 3, "days_total": 10, "rows": 42, "pages": 5,
                                 "errors": 0, "last_error": "", "complete_through": "2024-01-03"}},
          "id": "acme", "state": "ok", "reason": "", "complete_through": "", "in_flight": 0,
          "max_in_flight": 4, "max_requests_per_second": 5, "outstanding_jobs": 7,
          "replay": {"state": "running", "done": 10, "total": 100}}
JSON = {"Content-Type": "application/json"}
PROBLEM = {"Content-Type": "application/problem+json"}


def problem(slug, status, **kw):
    return json.dumps(dict({"type": f"urn:ltvsync:problem:{slug}", "title": slug, "status": status,
                            "detail": "d"}, **kw))


def check_oas(doc):
    def passes(what, *args):
        try:
            oas.check(doc, *args)
            check(True, what)
        except AssertionError as e:
            check(False, f"oas.check accepts {what}: {e}")

    def fails(what, needle, *args):
        try:
            oas.check(doc, *args)
            check(False, f"oas.check refuses {what}")
        except AssertionError as e:
            msg = str(e)
            check(needle in msg, f"oas.check refuses {what} saying {needle!r} (said: {msg})")
            print(f"  refused ({what}): {msg.splitlines()[0][:160]}")

    body = json.dumps(INTEGRATION)
    passes("an integration", "GET", "/v1/integrations/acme", 200, JSON, body.encode())
    passes("the list", "get", "/v1/integrations?x=1", 200,
           {"content-type": "application/json; charset=utf-8"}, json.dumps({"items": [INTEGRATION]}))
    passes("a file: ref", "GET", "/v1/integrations/acme", 200, JSON,
           dict(INTEGRATION, password_ref="file:acme"))
    passes("201 with Location", "POST", "/v1/integrations", 201,
           [("Content-Type", "application/json"), ("Location", "/v1/integrations/acme")], body)
    passes("204 without body", "DELETE", "/v1/integrations/acme", 204, {}, b"")
    passes("a status document", "GET", "/v1/integrations/acme/status", 200, JSON, json.dumps(STATUS))
    passes("the status array", "GET", "/v1/status", 200, JSON, json.dumps([STATUS]))
    passes("sync's 202", "POST", "/v1/integrations/acme/sync", 202, JSON, json.dumps(
        {"streams": ["orders"], "id": "acme", "from": "2024-01-01", "to": "2024-01-02", "jobs": 2,
         "run": "0b8f3c4e-1d2a-4f5b-8c6d-7e8f9a0b1c2d"}))
    passes("test's 200", "POST", "/v1/integrations/acme/test", 200, JSON,
           json.dumps({"ok": True, "message": "OK: connected"}))
    passes("a dead letter", "GET", "/v1/dlq", 200, JSON, json.dumps([
        {"reason": "invalid JSON", "topic": "ltvsync.raw", "partition": -1, "offset": -1,
         "key": None, "key_base64": "//4=", "value": "x", "dlq_partition": 0, "dlq_offset": 3}]))
    passes("a validation problem", "POST", "/v1/integrations", 400, PROBLEM,
           problem("validation", 400, errors=[{"field": "timezone", "message": "unknown zone"}]))
    passes("a 401 with its challenge", "GET", "/v1/status", 401,
           {"Content-Type": "application/problem+json", "WWW-Authenticate": 'Bearer realm="ltvsync"'},
           problem("unauthorized", 401))
    passes("a 429 with Retry-After", "GET", "/v1/dlq", 429,
           {"Content-Type": "application/problem+json", "Retry-After": "1"}, problem("rate-limited", 429))
    passes("a 404 on an unknown path", "GET", "/v1/nothing", 404, PROBLEM, problem("not-found", 404))
    passes("a 405 on a known path", "PUT", "/v1/integrations/acme", 405,
           {"Content-Type": "application/problem+json", "Allow": "GET, PATCH, DELETE"},
           problem("method-not-allowed", 405))
    passes("/healthz", "GET", "/healthz", 200, {"Content-Type": "text/plain"}, b"ok\n")
    passes("HEAD /healthz", "HEAD", "/healthz", 200, {"Content-Type": "text/plain"}, b"")
    passes("the console script", "GET", "/console.js", 200,
           {"Content-Type": "text/javascript; charset=utf-8"}, b"let x = 1;")
    passes("a problem without detail", "GET", "/v1/nothing/here", 404, PROBLEM,
           json.dumps({"type": "urn:ltvsync:problem:not-found", "title": "Not found", "status": 404}))
    passes("a merge-patch PATCH's answer", "PATCH", "/v1/integrations/acme", 200, JSON, body)

    fails("a password in the answer", "password", "GET", "/v1/integrations/acme", 200, JSON,
          json.dumps(dict(INTEGRATION, password="hunter2")))
    fails("a missing field", "'timezone' is a required property", "GET", "/v1/integrations/acme", 200,
          JSON, json.dumps({k: v for k, v in INTEGRATION.items() if k != "timezone"}))
    fails("a wrong type", "max_in_flight: '4' is not of type 'integer'", "GET",
          "/v1/integrations/acme", 200, JSON, json.dumps(dict(INTEGRATION, max_in_flight="4")))
    fails("a sealed ref with its ciphertext", "password_ref", "GET", "/v1/integrations/acme", 200,
          JSON, json.dumps(dict(INTEGRATION, password_ref="sealed:v1:k1:" + "A" * 396)))
    fails("an undocumented status", "not documented", "GET", "/v1/integrations/acme", 418, JSON, "{}")
    fails("an undocumented content type", "Content-Type 'text/html'", "GET", "/v1/integrations/acme",
          200, {"Content-Type": "text/html"}, "<p>")
    fails("no content type", "no Content-Type", "GET", "/v1/integrations/acme", 200, {}, body)
    fails("a body that is not JSON", "not JSON", "GET", "/v1/integrations/acme", 200, JSON, b"{")
    fails("a 201 without Location", "header Location is missing", "POST", "/v1/integrations", 201,
          JSON, body)
    fails("a bad Location", "header Location", "POST", "/v1/integrations", 201,
          {"Content-Type": "application/json", "Location": "/v1/integration/acme"}, body)
    fails("a 429 without Retry-After", "Retry-After is missing", "GET", "/v1/dlq", 429, PROBLEM,
          problem("rate-limited", 429))
    fails("a Retry-After that is not seconds", "Retry-After", "GET", "/v1/dlq", 429,
          {"Content-Type": "application/problem+json", "Retry-After": "soon"}, problem("rate-limited", 429))
    fails("a 401 without WWW-Authenticate", "WWW-Authenticate is missing", "GET", "/v1/status", 401,
          PROBLEM, problem("unauthorized", 401))
    fails("a problem as application/json", "Content-Type 'application/json'", "GET", "/v1/status",
          401, {"Content-Type": "application/json", "WWW-Authenticate": 'Bearer realm="ltvsync"'},
          problem("unauthorized", 401))
    fails("a problem with the wrong slug", "'urn:ltvsync:problem:not-found' was expected", "GET",
          "/v1/integrations/acme", 404, PROBLEM, problem("unauthorized", 404))
    fails("errors outside a validation problem", "errors", "GET", "/v1/integrations/acme", 404,
          PROBLEM, problem("not-found", 404, errors=[{"field": "id", "message": "x"}]))
    fails("a 204 with a body", "no documented content", "DELETE", "/v1/integrations/acme", 204, {},
          b"{}")
    fails("a status document with an unknown state", "state", "GET", "/v1/integrations/acme/status",
          200, JSON, json.dumps(dict(STATUS, state="sleeping")))
    fails("a status stream that is not a stream", "'refunds' is not one of", "GET",
          "/v1/integrations/acme/status", 200, JSON,
          json.dumps(dict(STATUS, streams={"refunds": STATUS["streams"]["orders"]})))
    fails("a negative row count", "rows", "GET", "/v1/status", 200, JSON, json.dumps(
        [dict(STATUS, streams={"orders": dict(STATUS["streams"]["orders"], rows=-1)})]))
    fails("a 200 on an unknown path", "no path of the document matches", "GET", "/v1/nothing",
          200, JSON, "{}")
    fails("a 200 for a method the path lacks", "405", "PUT", "/v1/integrations/acme", 200, JSON, "{}")
    fails("a 401 on an unknown path (answered before the token)", "only 404", "GET", "/v1/nothing",
          401, {"Content-Type": "application/problem+json", "WWW-Authenticate": 'Bearer realm="ltvsync"'},
          problem("unauthorized", 401))
    fails("HEAD with a body", "HEAD response with a body", "HEAD", "/healthz", 200,
          {"Content-Type": "text/plain"}, b"ok\n")
    # writeOnly: a response schema that reaches a writeOnly schema refuses the value.
    mini = copy.deepcopy(doc)
    mini["paths"]["/v1/integrations/{id}"]["get"]["responses"]["200"] = {
        "description": "x", "content": {"application/json": {"schema": {
            "$ref": "#/components/schemas/IntegrationCreate"}}}}
    create = dict({k: v for k, v in INTEGRATION.items() if k != "password_ref"}, password="pw")
    try:
        oas.check(mini, "GET", "/v1/integrations/acme", 200, JSON, json.dumps(create))
        check(False, "oas.check refuses a writeOnly value in a response")
    except AssertionError as e:
        check("writeOnly" in str(e), f"oas.check refuses a writeOnly value in a response ({e})")


def main():
    store = spec_store()
    doc = oas.load()
    raw = yaml.safe_load(open(oas.DOC_PATH))
    check(raw == doc, "openapi.yaml is plain JSON data (no YAML dates, non-string keys)")
    errs = document_errors(store, doc)
    for e in errs:
        print("  ", e)
    check(not errs, f"openapi.yaml is a valid OpenAPI 3.1 document ({len(errs)} errors)")
    check_contract(doc)
    check_mutations(store, doc)
    check_oas(doc)
    if failures:
        print(f"{len(failures)} check(s) failed")
        return 1
    print(f"ok: openapi.yaml validates against the OAS 3.1 schema (schema-base 2022-10-07), "
          f"{len(doc['paths'])} paths; {len(mutations())} broken copies refused; oas.check")
    return 0


if __name__ == "__main__":
    sys.exit(main())
