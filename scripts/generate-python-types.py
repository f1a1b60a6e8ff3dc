#!/usr/bin/env python3
"""Generates Python TypedDicts for syncwizard's protocol from Protocol/openrpc.json.

    scripts/generate-python-types.py            write Examples/python/syncwizard_types.py
    scripts/generate-python-types.py --check    exit 1 when the committed file differs from what
                                                this script produces now (make test runs this)
    scripts/generate-python-types.py --stdout   print it instead

What it emits, in dependency order:
  * every components.schemas entry: an object becomes a TypedDict (optional members NotRequired),
    an enum a Literal, anything else an alias (ProfileId = str);
  * objects nested inside a schema become TypedDicts named after their place
    (EndpointsResult.autodiscover -> EndpointsResultAutodiscover);
  * per method, <Method>Params (a TypedDict of its by-name params) and <Method>Result (an alias of
    its result schema), and MethodName, a Literal of every method name;
  * per notification in x-notifications, <Name>Params (ProgressParams, CancelRequestParams, ...);
  * ErrorKind (a Literal of x-error-kinds) and ERROR_CODES (kind -> numeric code).
Only the standard library is needed, here and in the generated file (Python 3.11+ for NotRequired).
"""
import json
import keyword
import pathlib
import re
import sys
import textwrap

ROOT = pathlib.Path(__file__).resolve().parents[1]
SOURCE = ROOT / "Protocol" / "openrpc.json"
TARGET = ROOT / "Examples" / "python" / "syncwizard_types.py"


def pascal(name):
    parts = re.split(r"[^0-9A-Za-z]+", name)
    return "".join(p[:1].upper() + p[1:] for p in parts if p)


class Generator:
    def __init__(self, document):
        self.document = document
        self.schemas = document["components"]["schemas"]
        self.definitions = {}   # name -> (code, dependencies)
        self.order = []

    # A type expression for `schema`; nested objects are defined under `hint`.
    def type_of(self, schema, hint, deps):
        if "$ref" in schema:
            name = schema["$ref"].rsplit("/", 1)[-1]
            deps.add(name)
            return name
        if "oneOf" in schema or "anyOf" in schema:
            options = schema.get("oneOf") or schema.get("anyOf")
            return self.union([self.type_of(s, hint, deps) for s in options])
        if "const" in schema:
            return f"Literal[{schema['const']!r}]"
        if "enum" in schema:
            values = schema["enum"]
            literal = [v for v in values if v is not None]
            text = "Literal[" + ", ".join(repr(v) for v in literal) + "]"
            return self.union([text, "None"]) if None in values else text
        kinds = schema.get("type", [])
        kinds = kinds if isinstance(kinds, list) else [kinds]
        if not kinds:
            return "Any"
        return self.union([self.simple(k, schema, hint, deps) for k in kinds])

    def simple(self, kind, schema, hint, deps):
        if kind == "object":
            if not schema.get("properties"):
                return "dict[str, Any]"
            self.define_object(hint, schema)
            deps.add(hint)
            return hint
        if kind == "array":
            items = schema.get("items")
            return f"list[{self.type_of(items, hint + 'Item', deps) if items else 'Any'}]"
        return {"string": "str", "integer": "int", "number": "float", "boolean": "bool", "null": "None"}[kind]

    @staticmethod
    def union(parts):
        unique = []
        for p in parts:
            if p not in unique:
                unique.append(p)
        if "float" in unique and "int" in unique:
            unique.remove("int")  # float accepts int for a type checker
        return " | ".join(unique)

    def define_object(self, name, schema, members=None):
        """members: [(name, schema, required, description)]; default: from schema.properties."""
        if name in self.definitions:
            return
        self.definitions[name] = None  # reserve (and stop recursion)
        if members is None:
            required = set(schema.get("required", []))
            members = [(k, v, k in required, v.get("description")) for k, v in schema.get("properties", {}).items()]
        deps = set()
        rows = []
        for key, member_schema, required, description in members:
            text = self.type_of(member_schema, name + pascal(key), deps)
            rows.append((key, text if required else f"NotRequired[{text}]", description))
        doc = schema.get("description") or schema.get("summary")
        if schema.get("additionalProperties") is True:
            doc = (doc + " " if doc else "") + "Other members may be present."
        functional = any(not k.isidentifier() or keyword.iskeyword(k) for k, _, _ in rows)
        lines = []
        if functional or not rows:
            body = ", ".join(f"{k!r}: {t}" for k, t, _ in rows)
            if doc:
                lines += [f"# {l}" for l in textwrap.wrap(doc, 96)]
            lines.append(f"{name} = TypedDict({name!r}, {{{body}}})")
        else:
            lines.append(f"class {name}(TypedDict):")
            if doc:
                lines += self.docstring(doc)
            for key, text, description in rows:
                if description:
                    lines += [f"    # {l}" for l in textwrap.wrap(description, 92)]
                lines.append(f"    {key}: {text}")
        self.add(name, "\n".join(lines), deps)

    @staticmethod
    def docstring(text):
        wrapped = textwrap.wrap(text.replace('"""', "'''").replace("\\", "\\\\"), 92)
        if len(wrapped) == 1:
            return [f'    """{wrapped[0]}"""']
        return ['    """' + wrapped[0]] + [f"    {l}" for l in wrapped[1:]] + ['    """']

    def alias(self, name, schema, description=None):
        deps = set()
        text = self.type_of(schema, name, deps)
        if text == name:  # an object: already defined under this name
            return
        lines = [f"# {l}" for l in textwrap.wrap(description, 96)] if description else []
        lines.append(f"{name} = {text}")
        self.add(name, "\n".join(lines), deps)

    def add(self, name, code, deps):
        self.definitions[name] = (code, deps - {name})

    def schema_entry(self, name, schema):
        if schema.get("type") == "object" and schema.get("properties"):
            self.define_object(name, schema)
        else:
            self.alias(name, schema, schema.get("description"))

    def emit(self):
        for name, schema in self.schemas.items():
            self.schema_entry(name, schema)
        for method in self.document["methods"]:
            base = pascal(method["name"])
            params = [(p["name"], p["schema"], p.get("required", False), p.get("description")) for p in method["params"]]
            self.define_object(base + "Params", {"description": f"params of {method['name']}: {method.get('summary', '')}".strip()}, params)
            self.alias(base + "Result", method["result"]["schema"], f"result of {method['name']}")
        notifications = self.document.get("x-notifications", {})
        for direction in ("clientToServer", "serverToClient"):
            for note in notifications.get(direction, []):
                params = [(p["name"], p["schema"], p.get("required", False), p.get("description")) for p in note["params"]]
                what = "client -> server" if direction == "clientToServer" else "server -> client"
                self.define_object(pascal(note["name"]) + "Params",
                                   {"description": f"params of the {note['name']} notification ({what})"}, params)

        out = []
        done = set()

        def visit(name):
            if name in done or name not in self.definitions:
                return
            done.add(name)
            code, deps = self.definitions[name]
            for dep in sorted(deps):
                visit(dep)
            out.append(code)

        for name in list(self.definitions):
            visit(name)

        methods = "Literal[\n" + "".join(f"    {m['name']!r},\n" for m in self.document["methods"]) + "]"
        kinds = self.document.get("x-error-kinds", [])
        codes = "\n".join(f"    {k['kind']!r}: {k['code']}," for k in kinds)
        header = f'''"""syncwizard protocol types (OpenRPC {self.document['openrpc']}, {self.document['info']['title']} {self.document['info']['version']}).

Generated by scripts/generate-python-types.py from Protocol/openrpc.json: do not edit by hand;
run the script again after changing the document (make test checks that this file is current).
Results may gain members in later versions: read them as dicts and ignore what you do not know.
"""
from typing import Any, Literal, NotRequired, TypedDict
'''
        error_kinds = "Literal[\n" + "".join(f"    {k['kind']!r},\n" for k in kinds) + "]"
        footer = (f"MethodName = {methods}\n\n"
                  f"ErrorKind = {error_kinds}\n\n"
                  "# error.data.kind -> error.code (branch on the kind, not the code)\n"
                  f"ERROR_CODES: dict[str, int] = {{\n{codes}\n}}\n")
        return header + "\n\n" + "\n\n\n".join(out) + "\n\n\n" + footer


def main():
    text = Generator(json.loads(SOURCE.read_text())).emit()
    if "--stdout" in sys.argv:
        sys.stdout.write(text)
    elif "--check" in sys.argv:
        current = TARGET.read_text() if TARGET.exists() else ""
        if current != text:
            print(f"{TARGET.relative_to(ROOT)} is not what scripts/generate-python-types.py makes from "
                  f"{SOURCE.relative_to(ROOT)}: run the script and commit the result", file=sys.stderr)
            sys.exit(1)
        print(f"{TARGET.relative_to(ROOT)} matches {SOURCE.relative_to(ROOT)}")
    else:
        TARGET.parent.mkdir(parents=True, exist_ok=True)
        TARGET.write_text(text)
        print(f"wrote {TARGET.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
