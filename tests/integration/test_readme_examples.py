"""The README's event examples are real events.

Every ```json block under "### Examples" in README.md must validate against
schemas/event.schema.json, carry the event_id its own integration, stream,
record id and type give (UUIDv5, as tests/lib/oracle.py computes it), and
every event type of the schema must have an example. A schema change that
the examples do not follow (a new required field, a new type) fails here.
"""
import json
import os
import re
import sys

import jsonschema

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import oracle  # noqa: E402

SRC = os.environ.get("LTVSYNC_SRC_DIR") or os.path.abspath(
    os.path.join(os.path.dirname(__file__), "..", ".."))


def examples(readme):
    """The JSON texts of the Examples section."""
    start = readme.index("### Examples")
    end = readme.index("\n## ", start)
    return re.findall(r"```json\n(.*?)\n```", readme[start:end], re.S)


def main():
    with open(os.path.join(SRC, "README.md")) as f:
        readme = f.read()
    with open(os.path.join(SRC, "schemas", "event.schema.json")) as f:
        schema = json.load(f)
    validator = jsonschema.Draft202012Validator(schema)
    bad, seen = 0, set()
    texts = examples(readme)
    for text in texts:
        ev = json.loads(text)
        seen.add(ev.get("type"))
        for err in validator.iter_errors(ev):
            print("%s: schema: %s at %s" % (ev.get("type"), err.message, list(err.path)))
            bad += 1
        name = "%s/%s/%s/%s" % (ev["integration_id"], ev["source"]["stream"],
                                ev["source"]["record_id"], ev["type"])
        if ev.get("occurrence", 1) > 1:
            name += "/%d" % ev["occurrence"]
        if ev["event_id"] != oracle.event_id(name):
            print("%s: event_id %s is not UUIDv5(%s)" % (ev["type"], ev["event_id"], name))
            bad += 1
    missing = set(schema["properties"]["type"]["enum"]) - seen
    if missing:
        print("no example of: %s" % sorted(missing))
        bad += 1
    print("%d examples, %d types, problems %d" % (len(texts), len(seen), bad))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
