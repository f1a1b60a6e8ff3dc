#!/usr/bin/env python3
"""Validates an OpenRPC document against the OpenRPC meta-schema (draft-07), offline.

Also checks what the meta-schema cannot: unique method names, resolvable local $refs.
Usage: validate-openrpc.py Protocol/openrpc.json
"""
import json
import pathlib
import sys

import jsonschema
from jsonschema_specifications import REGISTRY as SPECIFICATIONS
from referencing import Registry, Resource

root = pathlib.Path(__file__).resolve().parent.parent
meta = json.loads((root / "Tests/Fixtures/openrpc-meta-schema.json").read_text())
doc = json.loads(pathlib.Path(sys.argv[1]).read_text())

# The meta-schema names draft-07 by its https URL; serve it from the local copy (no network).
draft7 = SPECIFICATIONS.contents("http://json-schema.org/draft-07/schema")
registry = Registry().with_resource("https://json-schema.org/draft-07/schema", Resource.from_contents(draft7))
validator = jsonschema.Draft7Validator(meta, registry=registry)
errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)]

names = [m["name"] for m in doc.get("methods", [])]
errors += [f"duplicate method {n}" for n in sorted({n for n in names if names.count(n) > 1})]


def refs(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from refs(item)


for ref in refs(doc):
    if not ref.startswith("#/"):
        continue
    node = doc
    for part in ref[2:].split("/"):
        if not isinstance(node, dict) or part not in node:
            errors.append(f"unresolvable $ref {ref}")
            break
        node = node[part]

# Every schema inside must itself be a valid draft-07 schema.
for path, schema in doc.get("components", {}).get("schemas", {}).items():
    try:
        jsonschema.Draft7Validator.check_schema(schema)
    except jsonschema.SchemaError as e:
        errors.append(f"components/schemas/{path}: {e.message}")

if errors:
    print("\n".join(errors))
    sys.exit(1)
print(f"{sys.argv[1]}: valid OpenRPC {doc['openrpc']} with {len(names)} methods")
