#!/usr/bin/env python3
"""Bad-input suite: malformed messages through the real syncwizard binary, in both framings.

    python3 Tests/Hardening/bad_input.py [--binary PATH] [--json FILE] [--verbose]

The binary is $SYNCWIZARD_BINARY, else .build/debug/syncwizard. Standard library only.

Every input is followed by a valid `ping` that must still be answered. For every input the
suite checks that:
  * each malformed request gets exactly one error with the contract's code and data.kind
    (-32700 parseError, -32600 invalidRequest / messageTooLarge, -32601 methodNotFound,
    -32602 invalidParams with data.field), and code and kind agree with rpc.discover's
    x-error-kinds;
  * the id is echoed exactly (byte for byte for numbers) when the request had a usable id,
    and is null otherwise;
  * notifications get nothing;
  * each reply uses the framing of the message it answers;
  * the process never exits, never writes a non-protocol byte to stdout, and answers the ping;
  * no malformed request changed anything on disk (the config directory stays empty).

The method list and the params (names, required, schemas) come from the binary's own
rpc.discover answer, so new methods are covered without editing this file.

It prints how many inputs were tried per category and framing, and exits 1 on any failure.
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from protocol_client import Raw, Server, binary_path, content_length, loads_exact, ndjson, plain, to_python  # noqa: E402

FRAMINGS = ("ndjson", "contentLength")
# The server's JSON nesting limit (WizardProtocol.JSONParser.defaultMaximumDepth): 128 levels
# of arrays/objects parse, 129 are a parse error.
DEPTH_LIMIT = 128
UUID0 = "3f2b0c1e-1111-4222-8333-444455556666"  # well formed, never created

ANY = object()  # "do not check this member"

# Inputs the server answers wrongly today (bugs reported, Sources/ not changed here). Each runs in
# a fresh process of its own; while it still fails it is reported as a known failure and does not
# fail the suite. Once it passes, the suite fails until the entry is removed from this list.
KNOWN_FAILURES = {
    # Fixed: CRLF-separated header lines (FrameParser splits bytes now), EOF right after a header block.
}


def known_failure(name):
    return next((why for key, why in KNOWN_FAILURES.items() if name.startswith(key)), None)

# ---------------------------------------------------------------------------------------------
# Expectations


def err(kind, id="null", field=ANY, framing=None, method=ANY, limit=ANY, declared=ANY):
    """One error reply. `id` is the JSON text of the expected id; `field` may be a set."""
    return {"type": "error", "kind": kind, "id": id, "field": field, "framing": framing,
            "method": method, "limit": limit, "declared": declared}


def ok(id, result=ANY, framing=None):
    return {"type": "result", "id": id, "result": result, "framing": framing}


def batch(items, framing=None):
    return {"type": "batch", "items": items, "framing": framing}


class Case:
    __slots__ = ("category", "name", "framing", "steps", "expect", "ping_framing", "timeout", "server")

    def __init__(self, category, name, framing, data, expect, ping_framing=None, timeout=10, server="main"):
        self.category = category
        self.name = name
        self.framing = framing  # what the input is counted as
        # steps: [(bytes, replies to wait for before the next step)]
        self.steps = data if isinstance(data, list) else [(data, 0)]
        self.expect = expect
        self.ping_framing = ping_framing or framing
        self.timeout = timeout
        self.server = server
        for e in expect:
            if e["framing"] is None:
                e["framing"] = framing
            if e["type"] == "batch":
                for item in e["items"]:
                    item["framing"] = ANY


def both(category, name, body, expect_fn, **kw):
    """The same JSON body in NDJSON and in Content-Length framing (one case each)."""
    assert b"\n" not in body, name
    cases = []
    for framing in FRAMINGS:
        data = ndjson(body) if framing == "ndjson" else content_length(body)
        cases.append(Case(category, name, framing, data, expect_fn(), **kw))
    return cases


# ---------------------------------------------------------------------------------------------
# Building requests as text (so ids and numbers can be written exactly)


def js(value):
    return json.dumps(value)


def obj(pairs):
    return "{" + ",".join(js(k) + ":" + v for k, v in pairs) + "}"


def req(method, params=None, id=None, jsonrpc='"2.0"', method_text=None):
    parts = []
    if jsonrpc is not None:
        parts.append('"jsonrpc":' + jsonrpc)
    if id is not None:
        parts.append('"id":' + id)
    if method_text is not None:
        parts.append('"method":' + method_text)
    elif method is not None:
        parts.append('"method":' + js(method))
    if params is not None:
        parts.append('"params":' + params)
    return "{" + ",".join(parts) + "}"


def b(text):
    return text.encode("utf-8") if isinstance(text, str) else text


# ---------------------------------------------------------------------------------------------
# The contract, from rpc.discover


class Contract:
    def __init__(self, document):
        document = to_python(document)
        self.doc = document
        self.kinds = {entry["kind"]: entry["code"] for entry in document["x-error-kinds"]}
        self.methods = []
        for m in document["methods"]:
            params = [(p["name"], bool(p.get("required")), self.resolve(p["schema"])) for p in m.get("params", [])]
            self.methods.append((m["name"], params))

    def resolve(self, schema):
        seen = 0
        while isinstance(schema, dict) and "$ref" in schema and seen < 10:
            name = schema["$ref"].rsplit("/", 1)[-1]
            schema = self.doc["components"]["schemas"][name]
            seen += 1
        return schema


def allowed_types(schema):
    t = schema.get("type")
    if t is None:
        if "enum" in schema or "pattern" in schema:
            t = "string"
        elif "const" in schema:
            t = {bool: "boolean", str: "string"}.get(type(schema["const"]), "object")
        else:
            return None  # anything goes
    types = set(t if isinstance(t, list) else [t])
    if "number" in types:
        types.add("integer")
    return types


# Valid values (JSON text) for required params, so one bad param at a time is tested.
VALID_BY_NAME = {
    "profileId": js(UUID0),
    "email": js("alice@contoso.invalid"),
    "ewsUrl": js("https://mail.contoso.invalid/EWS/Exchange.asmx"),
    "sha256": js("ab" * 32),
    "host": js("mail.contoso.invalid"),
    "signInId": js("no-such-sign-in"),
    "redirectUrl": js("http://127.0.0.1:9/?code=c&state=s"),
    "userName": js("alice"),
    "password": js("not-a-real-password"),
    "clientId": js("client-id"),
    "name": js("Profile name"),
}


def valid_value(name, schema):
    if name in VALID_BY_NAME:
        return VALID_BY_NAME[name]
    if "enum" in schema:
        return js(schema["enum"][0])
    types = allowed_types(schema) or {"string"}
    for t, text in (("string", js("x")), ("boolean", "true"), ("integer", "1"), ("number", "1"),
                    ("array", "[]"), ("object", "{}")):
        if t in types:
            return text
    return "null"


WRONG_TYPED = [  # (type, JSON text)
    ("string", js("x")), ("string", js("")), ("integer", "7"), ("integer", "-1"), ("number", "1.5"),
    ("boolean", "true"), ("boolean", "false"), ("null", "null"), ("array", "[]"), ("array", '["x"]'),
    ("array", "[1,2]"), ("object", "{}"), ("object", '{"a":1}'), ("number", "1e999999"),
    ("integer", "1" + "0" * 399),
]


def wrong_values(name, required, schema):
    """(label, JSON text) pairs that the param must reject: wrong types, then wrong values."""
    types = allowed_types(schema)
    out = []
    if types is not None:
        for t, text in WRONG_TYPED:
            if t in types:
                continue
            if t == "null" and not required:
                continue  # null for an optional param means "absent"
            if t == "string" and "enum" in schema:
                continue  # covered by the enum values below
            out.append(("type:" + t + ":" + text[:12], text))
    values = []
    if "enum" in schema:
        first = schema["enum"][0]
        values += [first.upper() if first.upper() != first else first.lower(), first + " ", "", "NOT-" + first, first + "\u0000"]
    if name == "profileId":
        values += [UUID0.upper(), UUID0.replace("-", ""), UUID0 + "0", UUID0[:-1], "../../../etc/passwd", "",
                   " " + UUID0, UUID0[:-1] + "\u0663", "00000000-0000-0000-0000-00000000000g"]
    elif "string" in (types or set()) and "enum" not in schema:
        max_length = schema.get("maxLength")
        if max_length:
            out.append(("value:maxLength+1", js("a" * (max_length + 1))))
            out.append(("value:maxLength bytes", js("\u00e9" * (max_length // 2 + 1))))  # fewer characters than the limit, more bytes
        if schema.get("minLength", 0) >= 1 and "null" not in types:
            values.append("")
        if schema.get("pattern") == "\\S":
            values += ["   ", "\t"]
        if name == "email":
            values += ["no-at-sign", "a@b", "a b@c.example", "@contoso.invalid"]
        if name == "ewsUrl":
            values += ["http://mail.contoso.invalid/EWS/Exchange.asmx", "ftp://mail.contoso.invalid/", "/EWS/Exchange.asmx", "https:/x"]
        if name == "tenant":
            values += ["a/b", "a b", "contoso\u00e9"]
        if name == "name":
            values += ["a\u0007b", "a\u007fb", "a\u0085b", "a\nb", "\u0000"]
    if "number" in (types or set()):
        if "maximum" in schema:
            values_n = ["-1", str(int(schema["maximum"]) + 1), "1e999999", "-1e999999", "9" * 400]
            out += [("value:" + v[:12], v) for v in values_n]
    if "array" in (types or set()):
        max_items = schema.get("maxItems")
        if max_items:
            out.append(("value:maxItems+1", js(["h%d.contoso.invalid" % i for i in range(max_items + 1)])))
        out += [("value:[1]", "[1]"), ("value:[null]", "[null]"), ("value:[[]]", "[[]]")]
    out += [("value:" + repr(v[:12]), js(v)) for v in values]
    return out


# ---------------------------------------------------------------------------------------------
# The categories


def cases_truncated():
    out = []
    bodies = [
        req("ping", "{}", id=js("t1")),
        req("createProfile", obj([("name", js("Sales"))]), id="42"),
        "[" + req("ping", id="1") + "," + req("ping", id="2") + "]",
        req("getWizardState", obj([("profileId", js(UUID0))]), id=js("\u00e9\U0001F600")),
    ]
    for body in bodies:
        raw = b(body)
        for cut in range(1, len(raw)):
            part = raw[:cut]
            if part.strip() == b"":
                continue
            out += both("truncated JSON", "prefix %d of %r" % (cut, body[:30]), part, lambda: [err("parseError")])
    # Cut inside a multi-byte character and inside an escape.
    for body in [b'{"jsonrpc":"2.0","id":"\xc3', b'{"jsonrpc":"2.0","id":"\\u00', b'{"jsonrpc":"2.0","id":"\\',
                 b'{"jsonrpc":"2.0","id":1e', b'{"jsonrpc":"2.0","id":-', b'{"jsonrpc":"2.0","id":1.', b'{"jsonrpc":tr',
                 b'{"jsonrpc":"2.0","id":nul', b'{"a"', b'{"a":', b'[', b'{', b'"', b'"abc']:
        out += both("truncated JSON", "cut %r" % body[-8:], body, lambda: [err("parseError")])
    return out


INVALID_UTF8 = [
    b"\xff", b"\xfe", b"\x80", b"\xbf", b"\xc3", b"\xe2\x82", b"\xf0\x9f\x98", b"\xed\xa0\x80", b"\xed\xbf\xbf",
    b"\xf4\x90\x80\x80", b"\xf8\x88\x80\x80\x80", b"\xfc\x84\x80\x80\x80\x80", b"\xc3\x28", b"\xe2\x28\xa1",
    b"\xf0\x28\x8c\x28", b"\xa0\xa1", b"\xef\xbf", b"\xf5\x80\x80\x80",
]
OVERLONG_UTF8 = [
    b"\xc0\xaf", b"\xc1\xbf", b"\xe0\x80\xaf", b"\xf0\x80\x80\xaf", b"\xc0\x80", b"\xe0\x81\x81", b"\xc1\x81",
    b"\xe0\x9f\xbf", b"\xf0\x8f\xbf\xbf", b"\xf8\x80\x80\x80\xaf", b"\xc0\xa2", b"\xe0\x80\xa2",
]


def utf8_positions(seq):
    """The bad sequence in every kind of place: method, id, param name, param value, outside strings."""
    return [
        b'{"jsonrpc":"2.0","id":1,"method":"pi' + seq + b'ng"}',
        b'{"jsonrpc":"2.0","id":"a' + seq + b'","method":"ping"}',
        b'{"jsonrpc":"2.0","id":1,"method":"ping","params":{"' + seq + b'":1}}',
        b'{"jsonrpc":"2.0","id":1,"method":"createProfile","params":{"name":"x' + seq + b'"}}',
        b'{"jsonrpc":"2.0","id":1,"method":"ping"}' + seq,
        seq + b'{"jsonrpc":"2.0","id":1,"method":"ping"}',
        b'{"jsonrpc":"2.0",' + seq + b'"id":1,"method":"ping"}',
        b'{"json' + seq + b'rpc":"2.0","id":1,"method":"ping"}',
    ]


def cases_utf8():
    out = []
    for seq in INVALID_UTF8:
        for i, body in enumerate(utf8_positions(seq)):
            out += both("invalid UTF-8", "%r at %d" % (seq, i), body, lambda: [err("parseError")])
    for seq in OVERLONG_UTF8:
        for i, body in enumerate(utf8_positions(seq)):
            out += both("overlong UTF-8", "%r at %d" % (seq, i), body, lambda: [err("parseError")])
    return out


def cases_surrogates():
    out = []
    lone = ["\\ud800", "\\udbff", "\\udc00", "\\udfff", "\\ud800\\u0041", "\\ud800\\ud800", "\\udc00\\ud800",
            "\\ud83d", "\\ude00", "\\ud83dx", "\\ud83d\\", "\\ud83d\\n", "\\uD800", "\\uDFFF\\uDFFF"]
    for s in lone:
        for i, body in enumerate([
            '{"jsonrpc":"2.0","id":1,"method":"ping' + s + '"}',
            '{"jsonrpc":"2.0","id":"' + s + '","method":"ping"}',
            '{"jsonrpc":"2.0","id":1,"method":"ping","params":{"' + s + '":1}}',
            '{"jsonrpc":"2.0","id":1,"method":"createProfile","params":{"name":"a' + s + 'b"}}',
            '{"' + s + '":1,"jsonrpc":"2.0","id":1,"method":"ping"}',
        ]):
            out += both("lone surrogates", "%s at %d" % (s, i), b(body), lambda: [err("parseError")])
    # Controls: a proper pair is fine, and is echoed / named exactly.
    out += both("lone surrogates", "valid pair in an unknown param name",
                b(req("ping", '{"\\ud83d\\ude00":1}', id=js("pair"))),
                lambda: [err("invalidParams", id=js("pair"), field="\U0001F600")])
    out += both("lone surrogates", "valid pair in an id",
                b(req("ping", id='"\\ud83d\\ude00"')), lambda: [ok(js("\U0001F600"), {})])
    out += both("lone surrogates", "valid pair in a method name",
                b(req(None, id="9", method_text='"ping\\ud83d\\ude00"')),
                lambda: [err("methodNotFound", id="9", method="ping\U0001F600")])
    return out


def cases_nesting():
    out = []
    depths = [DEPTH_LIMIT + 1, DEPTH_LIMIT + 2, 256, 1000, 10_000, 100_000, 1_000_000]
    for d in depths:
        out += both("deep nesting", "%d open arrays" % d, b"[" * d, lambda: [err("parseError")])
        out += both("deep nesting", "%d balanced arrays" % d, b"[" * d + b"]" * d, lambda: [err("parseError")])
        o = min(d, 600_000)  # 6 bytes a level: stay under the 4 MiB message limit
        out += both("deep nesting", "%d open objects" % o, b'{"a":' * o, lambda: [err("parseError")])
        out += both("deep nesting", "%d balanced objects" % o, b'{"a":' * o + b"1" + b"}" * o, lambda: [err("parseError")])
        out += both("deep nesting", "%d mixed" % d, b'[{"a":' * (d // 2 + 1) + b"1" + b"}]" * (d // 2 + 1), lambda: [err("parseError")])
        # Inside a request: the whole message is unparseable, so the id is not usable.
        inner = d - 2  # params object is level 2
        out += both("deep nesting", "%d levels in params" % d,
                    b('{"jsonrpc":"2.0","id":"deep","method":"ping","params":{"x":') + b"[" * inner + b"]" * inner + b"}}",
                    lambda: [err("parseError")])
        out += both("deep nesting", "%d levels in the id" % d,
                    b('{"jsonrpc":"2.0","method":"ping","id":') + b"[" * (d - 1) + b"]" * (d - 1) + b"}",
                    lambda: [err("parseError")])
    # At the limit the message parses: the answers come from the request layer.
    d = DEPTH_LIMIT
    out += both("deep nesting", "exactly %d arrays (batch of a non-request)" % d, b"[" * d + b"]" * d,
                lambda: [batch([err("invalidRequest")])])
    inner = d - 2
    out += both("deep nesting", "exactly %d levels in params" % d,
                b('{"jsonrpc":"2.0","id":"deep","method":"ping","params":{"x":') + b"[" * inner + b"]" * inner + b"}}",
                lambda: [err("invalidParams", id=js("deep"), field="x")])
    out += both("deep nesting", "exactly %d levels in the id" % d,
                b('{"jsonrpc":"2.0","method":"ping","id":') + b"[" * (d - 1) + b"]" * (d - 1) + b"}",
                lambda: [err("invalidRequest")])
    return out


def cases_numbers():
    out = []
    ids = ["1e999999", "-1e999999", "1E+999999", "1e-999999", "1" + "0" * 399, "-" + "9" * 400, "0." + "0" * 400 + "1",
           "1.50", "-0", "0e0", "0.0", "123456789012345678901234567890", "1" * 100_000, "9007199254740993",
           "-9223372036854775809", "18446744073709551616", "3.141592653589793238462643383279"]
    for i in ids:
        label = i if len(i) < 24 else i[:10] + "..(%d chars)" % len(i)
        out += both("huge numbers and ids", "ping id " + label, b(req("ping", id=i)), lambda i=i: [ok(i, {})])
        out += both("huge numbers and ids", "unknown method id " + label, b(req("noSuchMethod", id=i)),
                    lambda i=i: [err("methodNotFound", id=i, method="noSuchMethod")])
        out += both("huge numbers and ids", "bad jsonrpc id " + label, b(req("ping", id=i, jsonrpc='"1.0"')),
                    lambda i=i: [err("invalidRequest", id=i)])
        out += both("huge numbers and ids", "bad params id " + label, b(req("getProfile", obj([("profileId", "1e999999")]), id=i)),
                    lambda i=i: [err("invalidParams", id=i, field="profileId")])
    for n in ["1e999999", "-1e999999", "1" + "0" * 400, "1.0e400"]:
        out += both("huge numbers and ids", "top-level number " + n[:10], b(n), lambda: [err("invalidRequest")])
        out += both("huge numbers and ids", "jsonrpc as number " + n[:10], b(req("ping", id="5", jsonrpc=n)),
                    lambda: [err("invalidRequest", id="5")])
        out += both("huge numbers and ids", "huge unknown param " + n[:10], b(req("ping", obj([("x", n)]), id="6")),
                    lambda: [err("invalidParams", id="6", field="x")])
        out += both("huge numbers and ids", "huge profile name " + n[:10], b(req("createProfile", obj([("name", n)]), id="7")),
                    lambda: [err("invalidParams", id="7", field="name")])
        out += both("huge numbers and ids", "huge cancel id " + n[:10], b(req("$/cancelRequest", obj([("id", n)]))), lambda: [])
    # Invalid number syntax.
    for n in ["01", "1.", ".5", "+1", "1e", "0x10", "NaN", "Infinity", "-Infinity", "1_000", "--1", "1e+-5"]:
        out += both("huge numbers and ids", "bad number syntax " + n, b(req("ping", id=n)), lambda: [err("parseError")])
    return out


def cases_invalid_request():
    out = []
    c = "invalid request objects"
    for j in [None, '"1.0"', '"2"', "2.0", "2", '"2.0 "', '" 2.0"', "null", '["2.0"]', '{"v":"2.0"}', "true", '"2.00"', '"２.０"']:
        out += both(c, "jsonrpc %s" % j, b(req("ping", id=js("j"), jsonrpc=j)), lambda: [err("invalidRequest", id=js("j"))])
    for m in [None, "5", "null", "[]", '["ping"]', "{}", "true", "1e999999"]:
        out += both(c, "method %s" % m, b(req(None, id=js("m"), method_text=m)), lambda: [err("invalidRequest", id=js("m"))])
    for i in ["true", "false", "[]", "[1]", "{}", '{"id":1}']:
        out += both(c, "id %s" % i, b(req("ping", id=i)), lambda: [err("invalidRequest")])
    for p in ['"x"', "5", "true", "false", "1e999999", '""']:
        out += both(c, "params %s" % p, b(req("ping", p, id=js("p"))), lambda: [err("invalidRequest", id=js("p"))])
        # Without an id it is still not a notification: it is an invalid request (id null).
        out += both(c, "params %s without id" % p, b(req("ping", p)), lambda: [err("invalidRequest")])
    # `exit` with unusable params must be refused, not obeyed (the process must keep serving).
    out += both(c, "exit with string params", b(req("exit", '"now"')), lambda: [err("invalidRequest")])
    for top in ['"ping"', "5", "true", "false", "null", '""', '"{}"']:
        out += both(c, "top-level %s" % top, b(top), lambda: [err("invalidRequest")])
    out += both(c, "empty object", b"{}", lambda: [err("invalidRequest")])
    out += both(c, "method missing, id kept", b('{"jsonrpc":"2.0","id":77}'), lambda: [err("invalidRequest", id="77")])
    out += both(c, "jsonrpc missing, no id", b('{"method":"ping"}'), lambda: [err("invalidRequest")])
    for junk in [b"hello", b"ping", b"{'jsonrpc':'2.0'}", b'{"jsonrpc":"2.0",}', b'{"jsonrpc" "2.0"}', b"[1,]", b"{,}",
                 b'{"jsonrpc":"2.0","id":1,"method":"ping"}}', b'{"jsonrpc":"2.0","id":1,"method":"ping"} x',
                 b'{"jsonrpc":"2.0","id":1,"method":"ping"}{"jsonrpc":"2.0","id":2,"method":"ping"}', b"\x1b[31m", b"\xef\xbb\xbf",
                 b"/* comment */ {}", b"// x", b"\x0c{}", b"\x0b{}", b'{"a":1 "b":2}', b"truefalse", b"nul", b"[][]"]:
        out += both("truncated JSON" if junk in (b"nul",) else "invalid JSON", repr(junk[:20]), junk, lambda: [err("parseError")])
    return out


def cases_unknown_methods():
    out = []
    names = ["", "PING", "Ping", "ping ", " ping", "rpc.", "rpc.discover2", "$/unknown", "$/cancelrequest", "exit2",
             "../ping", "ping\u0000", "\u00e9\u00e8", "a" * 127, "b" * 128, "c" * 129, "d" * 10_000, "constructor", "__proto__",
             "toString", "initialize/extra", "shutdown\n"]
    for n in names:
        expected_method = n[:128]
        out += both("unknown methods", repr(n[:20]), b(req(n, id=js("u"))),
                    lambda e=expected_method: [err("methodNotFound", id=js("u"), method=e)])
    return out


def cases_params(contract):
    """Wrong types, wrong values, unknown and missing params of every method in rpc.discover."""
    out = []
    for name, params in contract.methods:
        if name == "shutdown":
            continue  # it ignores its params by contract: any shutdown would end the suite
        required = [(p, s) for p, r, s in params if r]
        base = [(p, valid_value(p, s)) for p, s in required]

        for pname, is_required, schema in params:
            for label, text in wrong_values(pname, is_required, schema):
                pairs = [(p, v) for p, v in base if p != pname] + [(pname, text)]
                category = "wrong types" if label.startswith("type:") else "wrong values"
                rid = js("%s/%s" % (name, pname))
                # The contract's kind for a URL that is not absolute https is endpointInvalid
                # (with data.field), for every other bad value invalidParams.
                kind = "endpointInvalid" if pname == "ewsUrl" and label.startswith("value:'") else "invalidParams"
                out += both(category, "%s.%s %s" % (name, pname, label), b(req(name, obj(pairs), id=rid)),
                            lambda rid=rid, pname=pname, kind=kind: [err(kind, id=rid, field=pname)])
                # The same as a notification: nothing at all.
                out += both("notifications with bad params", "%s.%s %s" % (name, pname, label), b(req(name, obj(pairs))),
                            lambda: [])

        unknown_names = ["bogus", "", "ProfileId", "profileid", "__proto__", "constructor", "\U0001F600", "x" * 300,
                         "\u0000", "params", "id", "jsonrpc", "method", "name ", "\u00e9"]
        for unknown in unknown_names:
            if any(unknown == p for p, _, _ in params):
                continue
            pairs = base + [(unknown, js("value"))]
            rid = js("%s+%s" % (name, unknown[:10]))
            if name == "initialize":
                expect = lambda rid=rid: [ok(rid)]  # initialize tolerates unknown params (LSP clients)
            else:
                expect = lambda rid=rid, unknown=unknown: [err("invalidParams", id=rid, field=unknown)]
            out += both("unknown params", "%s +%r" % (name, unknown[:10]), b(req(name, obj(pairs), id=rid)), expect)
            out += both("notifications with bad params", "%s +%r" % (name, unknown[:10]), b(req(name, obj(pairs))), lambda: [])

        required_names = {p for p, _ in required}
        for pname, _ in required:
            pairs = [(p, v) for p, v in base if p != pname]
            rid = js("%s-%s" % (name, pname))
            out += both("missing required params", "%s without %s" % (name, pname), b(req(name, obj(pairs), id=rid)),
                        lambda rid=rid, pname=pname: [err("invalidParams", id=rid, field=pname)])
            # null for a required param is the same as leaving it out
            pairs_null = pairs + [(pname, "null")]
            out += both("missing required params", "%s with %s null" % (name, pname), b(req(name, obj(pairs_null), id=rid)),
                        lambda rid=rid, pname=pname: [err("invalidParams", id=rid, field=pname)])
            out += both("notifications with bad params", "%s without %s" % (name, pname), b(req(name, obj(pairs))), lambda: [])
        if required:
            for shape, ptext in [("omitted", None), ("null", "null"), ("{}", "{}"), ("[]", "[]")]:
                rid = js("%s-none-%s" % (name, shape))
                out += both("missing required params", "%s params %s" % (name, shape), b(req(name, ptext, id=rid)),
                            lambda rid=rid: [err("invalidParams", id=rid, field=required_names)])
        # A non-empty positional array is invalidParams with field "params", for every method.
        for ptext in ["[1]", '["%s"]' % UUID0, "[null]", "[{}]"]:
            rid = js("%s-positional" % name)
            out += both("wrong types", "%s positional %s" % (name, ptext), b(req(name, ptext, id=rid)),
                        lambda rid=rid: [err("invalidParams", id=rid, field="params")])
            out += both("notifications with bad params", "%s positional %s" % (name, ptext), b(req(name, ptext)), lambda: [])
    # Cross-field rules of setProviderSettings.
    for system, extra in [("google", ("environment", js("online"))), ("microsoft365", ("environment", js("sod"))),
                          ("superOffice", ("tenant", js("contoso"))), ("google", ("tenant", js("contoso")))]:
        rid = js("sps-%s-%s" % (system, extra[0]))
        pairs = [("system", js(system)), ("clientId", js("c")), extra]
        out += both("wrong values", "setProviderSettings %s with %s" % (system, extra[0]),
                    b(req("setProviderSettings", obj(pairs), id=rid)),
                    lambda rid=rid, f=extra[0]: [err("invalidParams", id=rid, field=f)])
    # Client notifications with unusable params: ignored, never answered.
    for p in ["{}", '{"id":true}', '{"id":[]}', '{"id":{}}', '{"id":null}', '{"id":"no-such-request"}', "[]", "[1]", "null",
              '{"id":1,"extra":2}', '{"id":1e999999}', '{"ID":1}']:
        out += both("notifications with bad params", "$/cancelRequest %s" % p, b(req("$/cancelRequest", p)), lambda: [])
    for m in ["noSuchNotification", "", "$/progress", "progress", "signInCompleted", "initialized", "$/setTrace"]:
        out += both("notifications with bad params", "unknown notification %r" % m, b(req(m, '{"x":[1,{"y":null}]}')), lambda: [])
    return out


def cases_nul():
    out = []
    body = b'{"jsonrpc":"2.0","id":"nul","method":"ping"}'
    for pos in range(0, len(body) + 1):
        out += both("NUL bytes", "raw NUL at %d" % pos, body[:pos] + b"\x00" + body[pos:], lambda: [err("parseError")])
    out += both("NUL bytes", "NUL only", b"\x00", lambda: [err("parseError")])
    out += both("NUL bytes", "1000 NULs", b"\x00" * 1000, lambda: [err("parseError")])
    out += both("NUL bytes", "escaped NUL in an unknown param name", b(req("ping", '{"\\u0000":1}', id=js("n1"))),
                lambda: [err("invalidParams", id=js("n1"), field="\u0000")])
    out += both("NUL bytes", "escaped NUL in a profile name", b(req("createProfile", '{"name":"a\\u0000b"}', id=js("n2"))),
                lambda: [err("invalidParams", id=js("n2"), field="name")])
    out += both("NUL bytes", "escaped NUL in a profile id", b(req("getProfile", '{"profileId":"%s\\u0000"}' % UUID0[:-1], id=js("n3"))),
                lambda: [err("invalidParams", id=js("n3"), field="profileId")])
    out += both("NUL bytes", "escaped NUL in a method name", b(req(None, id=js("n4"), method_text='"ping\\u0000"')),
                lambda: [err("methodNotFound", id=js("n4"), method="ping\u0000")])
    out += both("NUL bytes", "escaped NUL in an id", b(req("ping", id='"a\\u0000"')), lambda: [ok(js("a\u0000"), {})])
    # In a Content-Length header.
    out.append(Case("NUL bytes", "NUL inside the Content-Length value", "contentLength",
                    b"Content-Length: 4\x000\r\n\r\n", [err("invalidRequest")]))
    out.append(Case("NUL bytes", "NUL in a header name", "contentLength",
                    b"Content-Len\x00gth: 40\r\n\r\n", [err("invalidRequest")]))
    return out


def cases_crlf():
    out = []
    c = "stray CR/LF"
    good = b'{"jsonrpc":"2.0","id":"crlf","method":"ping"}'
    # NDJSON
    for stray in [b"\n", b"\r\n", b"\n\n\n\r\n", b" \t\n", b"\r\r\r\n", b"\r", b"\t\r\n "]:
        out.append(Case(c, "blank %r" % stray, "ndjson", stray + b"\n", []))
    out.append(Case(c, "leading CR", "ndjson", b"\r" + good + b"\n", [ok(js("crlf"), {})]))
    out.append(Case(c, "trailing CRs", "ndjson", good + b"\r\r\n", [ok(js("crlf"), {})]))
    out.append(Case(c, "CR between tokens", "ndjson", good.replace(b",", b"\r,") + b"\n", [ok(js("crlf"), {})]))
    out.append(Case(c, "LF between tokens splits the line", "ndjson", good.replace(b',"method"', b',\n"method"') + b"\n",
                    [err("parseError"), err("parseError")]))
    out.append(Case(c, "CRLF between tokens splits the line", "ndjson", good.replace(b',"method"', b',\r\n"method"') + b"\n",
                    [err("parseError"), err("parseError")]))
    out.append(Case(c, "raw LF in a string", "ndjson", b'{"jsonrpc":"2.0","id":"a\nb","method":"ping"}\n',
                    [err("parseError"), err("parseError")]))
    out.append(Case(c, "raw CR in a string", "ndjson", b'{"jsonrpc":"2.0","id":"a\rb","method":"ping"}\n', [err("parseError")]))
    out.append(Case(c, "LF before the closing brace", "ndjson", good[:-1] + b"\n}\n", [err("parseError"), err("parseError")]))
    out.append(Case(c, "escaped CR LF in an id", "ndjson", b'{"jsonrpc":"2.0","id":"a\\r\\nb","method":"ping"}\n',
                    [ok(js("a\r\nb"), {})]))
    # Content-Length
    out.append(Case(c, "CRLFs before the header", "contentLength", b"\r\n\r\n\n" + content_length(good), [ok(js("crlf"), {})]))
    out.append(Case(c, "LF LF ends the header", "contentLength", b"Content-Length: %d\n\n" % len(good) + good, [ok(js("crlf"), {})]))
    out.append(Case(c, "CRLF LF ends the header", "contentLength", b"Content-Length: %d\r\n\n" % len(good) + good, [ok(js("crlf"), {})]))
    out.append(Case(c, "LF CRLF ends the header", "contentLength", b"Content-Length: %d\n\r\n" % len(good) + good, [ok(js("crlf"), {})]))
    body = good.replace(b",", b",\r\n")
    out.append(Case(c, "CRLF between tokens in a body", "contentLength", content_length(body), [ok(js("crlf"), {})]))
    out.append(Case(c, "raw LF in a string in a body", "contentLength",
                    content_length(b'{"jsonrpc":"2.0","id":"a\nb","method":"ping"}'), [err("parseError")]))
    out.append(Case(c, "raw CR in a string in a body", "contentLength",
                    content_length(b'{"jsonrpc":"2.0","id":"a\rb","method":"ping"}'), [err("parseError")]))
    out.append(Case(c, "CRLFs after the body", "contentLength", content_length(good) + b"\r\n\r\n\r\n", [ok(js("crlf"), {})]))
    out.append(Case(c, "body of CRLFs only", "contentLength", content_length(b"\r\n\r\n"), [err("parseError")]))
    return out


def cases_batches():
    out = []
    c = "batches"
    out += both(c, "empty batch", b"[]", lambda: [err("invalidRequest")])
    out += both(c, "empty batch with spaces", b"[ \t ]", lambda: [err("invalidRequest")])
    out += both(c, "[1]", b"[1]", lambda: [batch([err("invalidRequest")])])
    out += both(c, "[1,2,3]", b"[1,2,3]", lambda: [batch([err("invalidRequest")] * 3)])
    out += both(c, "[[]]", b"[[]]", lambda: [batch([err("invalidRequest")])])
    out += both(c, "[{}]", b"[{}]", lambda: [batch([err("invalidRequest")])])
    out += both(c, "[null]", b"[null]", lambda: [batch([err("invalidRequest")])])
    out += both(c, "nested batch", b("[[" + req("ping", id="1") + "]]"), lambda: [batch([err("invalidRequest")])])
    mixed = "[" + ",".join([
        req("ping", id=js("b1")),
        req("nope", id=js("b2")),
        req("createProfile", '{"name":5}', id=js("b3")),
        req("ping"),
        "5",
        req("ping", id=js("b4"), jsonrpc='"1.0"'),
        req("getProfile", '{"profileId":"%s"}' % UUID0, id=js("b5")),
        req("listProfiles", '{"bogus":1}', id=js("b6")),
        req("$/cancelRequest", '{"id":{}}'),
        req("ping", '"x"', id=js("b7")),
        req("ping", id="[1]"),
    ]) + "]"
    out += both(c, "valid and invalid mixed", b(mixed), lambda: [batch([
        ok(js("b1"), {}), err("methodNotFound", id=js("b2"), method="nope"), err("invalidParams", id=js("b3"), field="name"),
        err("invalidRequest"), err("invalidRequest", id=js("b4")), err("profileNotFound", id=js("b5")),
        err("invalidParams", id=js("b6"), field="bogus"), err("invalidRequest", id=js("b7")), err("invalidRequest")])])
    notes = "[" + ",".join([req("createProfile", '{"name":5}'), req("ping", '{"x":1}'), req("nope"), req("$/cancelRequest", "[]")]) + "]"
    out += both(c, "only notifications with bad params", b(notes), lambda: [])
    out += both(c, "a broken element breaks the whole batch", b("[" + req("ping", id="1") + ",{\"jsonrpc\":}]"), lambda: [err("parseError")])
    out += both(c, "duplicate ids", b("[" + req("ping", id="1") + "," + req("ping", id="1") + "]"), lambda: [batch([ok("1", {}), ok("1", {})])])
    out += both(c, "huge ids in a batch", b("[" + req("ping", id="1e999999") + "," + req("nope", id="9" * 400) + "]"),
                lambda: [batch([ok("1e999999", {}), err("methodNotFound", id="9" * 400)])])
    big = "[" + ",".join(req("ping" if i % 2 else "nope", id=str(i)) for i in range(1000)) + "]"
    out += both(c, "1000 elements", b(big), lambda: [batch([ok(str(i), {}) if i % 2 else err("methodNotFound", id=str(i)) for i in range(1000)])])
    trailing = "[" + req("ping", id="1") + ",]"
    out += both(c, "trailing comma", b(trailing), lambda: [err("parseError")])
    return out


def cases_content_length_lies():
    """Content-Length framing only; the ping after each is sent in both framings."""
    out = []
    c = "Content-Length lies"
    for ping_framing in FRAMINGS:
        def add(name, data, expect):
            out.append(Case(c, name + " (then %s ping)" % ping_framing, "contentLength", data, expect, ping_framing=ping_framing))

        body = b(req("ping", id=js("lie")))
        # Too short: the rest of the body is then read as the next (NDJSON) message; a newline ends it.
        for k in [1, 2, 5, len(body) // 2, len(body) - 1]:
            add("too short by %d" % k, b"Content-Length: %d\r\n\r\n" % (len(body) - k) + body + b"\n",
                [err("parseError"), err("parseError", framing="ndjson")])
        first, second = b(req("ping", id=js("first"))), b(req("ping", id=js("second")))
        add("too short, the rest is a request", b"Content-Length: %d\r\n\r\n" % len(first) + first + second + b"\n",
            [ok(js("first"), {}), ok(js("second"), {}, framing="ndjson")])
        # Too long: the declared number of bytes is sent. Whitespace padding still parses...
        for k in [1, 10, 1000]:
            add("too long by %d, padded with spaces" % k, b"Content-Length: %d\r\n\r\n" % (len(body) + k) + body + b" " * k,
                [ok(js("lie"), {})])
            add("too long by %d, padded with garbage" % k, b"Content-Length: %d\r\n\r\n" % (len(body) + k) + body + b"x" * k,
                [err("parseError")])
        # ...and a valid message that follows is swallowed as the rest of the body (by design).
        for follower_framing in FRAMINGS:
            follower = b(req("ping", id=js("swallowed")))
            follower = ndjson(follower) if follower_framing == "ndjson" else content_length(follower)
            add("too long, swallowing a following %s request" % follower_framing,
                b"Content-Length: %d\r\n\r\n" % (len(body) + len(follower)) + body + follower, [err("parseError")])
        # Unusable values: the header block is answered; no body is sent.
        for value in [b"-1", b"-40", b"-0", b"abc", b"", b" ", b"0x28", b"4e1", b"40.0", b"+40", b"4 0", b"40abc",
                      "\u0664\u0660".encode(), "\uff14\uff10".encode(), b"99999999999999999999", b"1" * 19, b"NaN",
                      b"Infinity", b"null", b"\"40\"", b"40;", b"\xff"]:
            add("Content-Length: %r" % value, b"Content-Length: " + value + b"\r\n\r\n", [err("invalidRequest")])
        for header in [b"Content-Type: application/json\r\n\r\n", b"Content-Lengt: 40\r\n\r\n", b"Content-Length 40\r\n\r\n",
                       b"Content-Length: 40\r\nX-No-Colon\r\n\r\n", b"Content-Type: a\r\nContent-Encoding: gzip\r\n\r\n",
                       b"content-type:\r\n\r\n", b"Content-\r\n\r\n"]:
            add("header %r" % header[:24], header, [err("invalidRequest")])
        add("zero length", b"Content-Length: 0\r\n\r\n", [err("parseError")])
        # Tolerated forms (controls).
        add("lower case", b"content-length: %d\r\n\r\n" % len(body) + body, [ok(js("lie"), {})])
        add("two headers, Content-Type first", b"Content-Type: application/vscode-jsonrpc; charset=utf-8\r\nContent-Length: %d\r\n\r\n" % len(body) + body,
            [ok(js("lie"), {})])
        add("two headers, Content-Length first", b"Content-Length: %d\r\nContent-Type: application/vscode-jsonrpc; charset=utf-8\r\n\r\n" % len(body) + body,
            [ok(js("lie"), {})])
        add("two headers separated by LF only", b"Content-Type: application/vscode-jsonrpc\nContent-Length: %d\n\n" % len(body) + body,
            [ok(js("lie"), {})])
        add("spaces around the value", b"Content-Length:   %d  \r\n\r\n" % len(body) + body, [ok(js("lie"), {})])
        add("leading zeros", b"Content-Length: 000%d\r\n\r\n" % len(body) + body, [ok(js("lie"), {})])
        # A header block longer than 8 KiB with no blank line: answered once the limit is passed;
        # the rest of that line is skipped. The ending newline is sent after the answer.
        add("header block over 8 KiB", [(b"Content-Length: 5" + b"x" * 9000, 1), (b"\n", 0)], [err("invalidRequest")])
    return out


def cases_oversize(limit):
    """Run against a server started with --max-message-bytes `limit`."""
    out = []
    c = "oversize messages"

    def padded_ping(total, rid="big"):
        head = '{"jsonrpc":"2.0","id":"%s","method":"ping"' % rid
        pad = total - len(head) - 1
        return b(head + " " * pad + "}")

    for size in [limit + 1, limit + 2, limit + 100, 4 * limit, 64 * 1024, 1 << 20, 5 << 20]:
        msg = padded_ping(size)
        assert len(msg) == size
        out.append(Case(c, "%d-byte NDJSON line" % size, "ndjson", ndjson(msg), [err("messageTooLarge", limit=limit, declared=None)],
                        server="small", timeout=30))
        out.append(Case(c, "%d-byte Content-Length body" % size, "contentLength", content_length(msg),
                        [err("messageTooLarge", limit=limit, declared=size)], server="small", timeout=30))
        garbage = b"\xff" * size
        out.append(Case(c, "%d bytes of garbage (NDJSON)" % size, "ndjson", ndjson(garbage),
                        [err("messageTooLarge", limit=limit, declared=None)], server="small", timeout=30))
        out.append(Case(c, "%d bytes of garbage (Content-Length)" % size, "contentLength", content_length(garbage),
                        [err("messageTooLarge", limit=limit, declared=size)], server="small", timeout=30))
    # Exactly at the limit: answered.
    out.append(Case(c, "exactly the limit (NDJSON)", "ndjson", ndjson(padded_ping(limit, "edge")), [ok(js("edge"), {})], server="small"))
    out.append(Case(c, "exactly the limit (Content-Length)", "contentLength", content_length(padded_ping(limit, "edge")),
                    [ok(js("edge"), {})], server="small"))
    # An oversize message that contains what looks like a request: all of it is skipped.
    inner = b(req("ping", id=js("hidden")))
    body = b" " * (limit + 10) + inner
    out.append(Case(c, "a request hidden in an oversize body", "contentLength", content_length(body + b"\n" + content_length(inner)),
                    [err("messageTooLarge", limit=limit, declared=len(body) + 1 + len(content_length(inner)))], server="small"))
    out.append(Case(c, "an oversize batch (NDJSON)", "ndjson",
                    ndjson(b("[" + ",".join(req("ping", id=str(i)) for i in range(200)) + "]")),
                    [err("messageTooLarge", limit=limit)], server="small"))
    out.append(Case(c, "an oversize batch (Content-Length)", "contentLength",
                    content_length(b("[" + ",".join(req("ping", id=str(i)) for i in range(200)) + "]")),
                    [err("messageTooLarge", limit=limit)], server="small"))
    # An oversize line sent in pieces with pauses.
    msg = padded_ping(3 * limit)
    out.append(Case(c, "oversize NDJSON line in three writes", "ndjson",
                    [(msg[:limit // 2], 0), (msg[limit // 2:2 * limit], 1), (msg[2 * limit:] + b"\n", 0)],
                    [err("messageTooLarge", limit=limit)], server="small"))
    # On the default-limit server: over 4 MiB.
    default = 4 * 1024 * 1024
    msg = padded_ping(default + 1)
    out.append(Case(c, "over the default 4 MiB (NDJSON)", "ndjson", ndjson(msg), [err("messageTooLarge", limit=default)], timeout=60))
    out.append(Case(c, "over the default 4 MiB (Content-Length)", "contentLength", content_length(msg),
                    [err("messageTooLarge", limit=default, declared=default + 1)], timeout=60))
    return out


# ---------------------------------------------------------------------------------------------
# Running


class Runner:
    def __init__(self, binary, contract, verbose=False):
        self.binary = binary
        self.contract = contract
        self.verbose = verbose
        self.failures = []
        self.counts = {}  # category -> framing -> n
        self.seq = 0
        self.servers = {}
        self.config_dirs = []
        self.restarts = 0
        self.known = []

    def server(self, which):
        s = self.servers.get(which)
        if s is None or not s.alive():
            args = ["--max-message-bytes", "1024"] if which == "small" else []
            s = Server(args=args, binary=self.binary)
            self.config_dirs.append(s.config_dir)
            self.servers[which] = s
        return s

    def fail(self, case, what):
        self.failures.append("[%s / %s / %s] %s" % (case.category, case.framing, case.name, what))

    def count(self, category, framing):
        self.counts.setdefault(category, {}).setdefault(framing, 0)
        self.counts[category][framing] += 1

    # -- matching ------------------------------------------------------------------------

    def id_of(self, text):
        return loads_exact(text) if text is not None else None

    def matches(self, e, value, framing):
        if e["framing"] is not ANY and framing is not None and e["framing"] != framing:
            return False
        if e["type"] == "batch":
            if not isinstance(value, list) or len(value) != len(e["items"]):
                return False
            remaining = list(value)
            for item in e["items"]:
                hit = next((v for v in remaining if self.matches(item, v, None)), None)
                if hit is None:
                    return False
                remaining.remove(hit)
            return True
        if not isinstance(value, dict):
            return False
        if e["id"] is not ANY and value.get("id", "<missing>") != self.id_of(e["id"]):
            return False
        if e["type"] == "result":
            return "result" in value and (e["result"] is ANY or plain(value["result"]) == e["result"])
        error = value.get("error")
        if not isinstance(error, dict):
            return False
        data = error.get("data") or {}
        if data.get("kind") != e["kind"]:
            return False
        if e["field"] is not ANY:
            fields = e["field"] if isinstance(e["field"], set) else {e["field"]}
            if data.get("field") not in fields:
                return False
        if e["method"] is not ANY and data.get("method") != e["method"]:
            return False
        if e["limit"] is not ANY and plain(data.get("limitBytes")) != str(e["limit"]):
            return False
        if e["declared"] is not ANY:
            got = data.get("declaredBytes")
            if (e["declared"] is None) != (got is None) or (got is not None and plain(got) != str(e["declared"])):
                return False
        return True

    def check_error_codes(self, case, value):
        """Every error: code agrees with its kind in x-error-kinds."""
        values = value if isinstance(value, list) else [value]
        for v in values:
            error = v.get("error") if isinstance(v, dict) else None
            if isinstance(error, dict):
                kind = (error.get("data") or {}).get("kind")
                code = int(error["code"].text) if isinstance(error.get("code"), Raw) else None
                if kind not in self.contract.kinds:
                    self.fail(case, "error kind %r is not in x-error-kinds" % kind)
                elif self.contract.kinds[kind] != code:
                    self.fail(case, "kind %s came with code %s, the contract says %s" % (kind, code, self.contract.kinds[kind]))

    # -- one case ------------------------------------------------------------------------

    def run_case(self, case):
        why = known_failure(case.name)
        before = len(self.failures)
        if why:
            case.timeout = min(case.timeout, 3)
            s = Server(binary=self.binary)  # a process of its own: a wrong answer must not spill over
            self.config_dirs.append(s.config_dir)
            self.servers["known"] = s
            self._run_case(case, s)
            s.kill()
            del self.servers["known"]
            new = self.failures[before:]
            del self.failures[before:]
            if new:
                self.known.append("[%s / %s / %s] %s: %s" % (case.category, case.framing, case.name, why, new[0]))
            else:
                self.fail(case, "passes now: remove it from KNOWN_FAILURES (%s)" % why)
            return
        self._run_case(case, self.server(case.server))
        if len(self.failures) > before and case.server in self.servers:
            # Start afresh so one wrong answer does not cascade into the following cases.
            self.servers.pop(case.server).kill()

    def _run_case(self, case, s):
        self.count(case.category, case.framing)
        self.seq += 1
        got = []
        deadline = time.monotonic() + case.timeout
        for data, wait_for in case.steps:
            if not s.send(data):
                break
            while wait_for > 0:
                m = s.get(deadline - time.monotonic())
                if m is None:
                    break
                got.append(m)
                wait_for -= 1
        ping_id = "ping-%d" % self.seq
        ping = b(req("ping", id=js(ping_id)))
        s.send(ndjson(ping) if case.ping_framing == "ndjson" else content_length(ping))
        ping_reply = None
        pending = [e for e in case.expect]
        matched = []
        unexpected = []

        def take(m):
            nonlocal ping_reply
            if isinstance(m.value, dict) and m.value.get("id") == ping_id and "method" not in m.value:
                ping_reply = m
                return
            self.check_error_codes(case, m.value)
            for e in pending:
                if self.matches(e, m.value, m.framing):
                    pending.remove(e)
                    matched.append(e)
                    return
            unexpected.append(m)

        for m in got:
            take(m)
        while True:
            if ping_reply is not None and not pending:
                break
            remaining = deadline - time.monotonic()
            if ping_reply is not None:
                remaining = min(remaining, 3.0)  # async replies trail the ping by milliseconds
            m = s.get(remaining)
            if m is None:
                break
            take(m)
            if ping_reply is not None and not pending:
                break
            if ping_reply is not None and time.monotonic() > deadline:
                break

        if ping_reply is None:
            self.fail(case, "the ping after it was not answered within %s s%s" % (
                case.timeout, "" if s.alive() else " (the process exited with %s)" % s.proc.poll()))
        else:
            if plain(ping_reply.value.get("result")) != {}:
                self.fail(case, "the ping was answered with %s" % ping_reply.raw[:200])
            if ping_reply.framing != case.ping_framing:
                self.fail(case, "the ping reply came in %s framing" % ping_reply.framing)
        for e in pending:
            self.fail(case, "no reply matching %s; got %s" % (describe(e), [m.raw[:300] for m in unexpected] or "nothing else"))
        for m in unexpected:
            self.fail(case, "unexpected reply (%s): %s" % (m.framing, m.raw[:300]))
        if s.violations:
            for v in s.violations:
                self.fail(case, "stdout: " + v)
            s.violations.clear()
        if not s.alive():
            self.fail(case, "the process exited with status %s; stderr: %s" % (s.proc.poll(), s.stderr_tail(800)))
            self.restarts += 1
        if self.verbose:
            print("%-28s %-13s %s" % (case.category, case.framing, case.name[:80]))

    # -- separate processes: end of input ---------------------------------------------------

    def eof_cases(self):
        c_trunc = "truncated JSON"
        c_lies = "Content-Length lies"
        scenarios = [
            (c_trunc, "ndjson", "EOF inside an NDJSON line", b'{"jsonrpc":"2.0","id":1,"meth', [err("parseError", framing="ndjson")]),
            (c_trunc, "ndjson", "EOF after a complete line without LF", b(req("ping", id="1")), [ok("1", {}, framing="ndjson")]),
            (c_trunc, "contentLength", "EOF inside a Content-Length body", b"Content-Length: 100\r\n\r\n{\"jsonrpc\":\"2.0\"",
             [err("parseError", framing="contentLength")]),
            (c_trunc, "contentLength", "EOF inside a header block", b"Content-Length: 10", [err("parseError", framing="contentLength")]),
            (c_trunc, "contentLength", "EOF right after the header", b"Content-Length: 10\r\n\r\n", [err("parseError", framing="contentLength")]),
            (c_lies, "contentLength", "declared 10^12 bytes, EOF", b"Content-Length: 1000000000000\r\n\r\n" + b(req("ping", id="1")),
             [err("messageTooLarge", declared=10 ** 12, framing="contentLength")]),
            (c_lies, "contentLength", "declared 18 nines, EOF", b"Content-Length: " + b"9" * 18 + b"\r\n\r\n{}",
             [err("messageTooLarge", declared=10 ** 18 - 1, framing="contentLength")]),
            (c_lies, "contentLength", "declared 5 MiB, 1 KiB sent, EOF", b"Content-Length: 5242880\r\n\r\n" + b" " * 1024,
             [err("messageTooLarge", declared=5242880, framing="contentLength")]),
        ]
        for category, framing, name, data, expect in scenarios:
            self.count(category, framing)
            case = Case(category, name, framing, data, expect)
            before = len(self.failures)
            s = Server(binary=self.binary)
            self.config_dirs.append(s.config_dir)
            s.send(data)
            s.close_input()
            status = s.wait(15)
            s.stdout_closed.wait(5)
            msgs = []
            while True:
                m = s.get(0.05)
                if m is None:
                    break
                msgs.append(m)
            if status != 0:
                self.fail(case, "exit status %s at end of input (expected 0); stderr: %s" % (status, s.stderr_tail(500)))
            pending = list(expect)
            for m in msgs:
                self.check_error_codes(case, m.value)
                hit = next((e for e in pending if self.matches(e, m.value, m.framing)), None)
                if hit is None:
                    self.fail(case, "unexpected reply: %s" % m.raw[:200])
                else:
                    pending.remove(hit)
            for e in pending:
                self.fail(case, "no reply matching %s" % describe(e))
            for v in s.violations:
                self.fail(case, "stdout: " + v)
            if s.alive():
                s.kill()
            why = known_failure(name)
            if why:
                new = self.failures[before:]
                del self.failures[before:]
                if new:
                    self.known.append("[%s / %s / %s] %s: %s" % (category, framing, name, why, new[0]))
                else:
                    self.fail(case, "passes now: remove it from KNOWN_FAILURES (%s)" % why)

    def finish(self):
        for which, s in list(self.servers.items()):
            # A last ping, then a quiet moment: nothing may trail.
            case = Case("final", "final ping", "ndjson", b"", [], server=which)
            self.run_case(case)
            self.counts.pop("final", None)
            time.sleep(0.3)
            while True:
                m = s.get(0.05)
                if m is None:
                    break
                self.fail(case, "a late reply on the %s server: %s" % (which, m.raw[:200]))
            s.close_input()
            status = s.wait(15)
            if status != 0:
                self.fail(case, "%s server: exit status %s at end of input" % (which, status))
            for v in s.violations:
                self.fail(case, "stdout: " + v)
        # No malformed request may have changed anything on disk.
        for directory in self.config_dirs:
            for root, _dirs, files in os.walk(directory):
                for f in files:
                    path = os.path.join(root, f)
                    if f == ".lock":
                        continue
                    self.failures.append("[side effects] a malformed request left %s on disk: %r" % (
                        os.path.relpath(path, directory), open(path, "rb").read()[:300]))


def describe(e):
    d = {k: v for k, v in e.items() if v is not ANY and k != "items"}
    if e["type"] == "batch":
        d["items"] = [describe(i) for i in e["items"]]
    return json.dumps(d, default=str)[:300]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--binary", default=binary_path())
    parser.add_argument("--json", help="write the counts and failures to this file")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    if not os.access(args.binary, os.X_OK):
        print("bad_input.py: no syncwizard binary at %s (build it, or set SYNCWIZARD_BINARY)" % args.binary, file=sys.stderr)
        return 2

    started = time.monotonic()
    probe = Server(binary=args.binary)
    reply, _ = probe.call("rpc.discover", timeout=30)
    probe.close_input()
    probe.wait(10)
    contract = Contract(reply["result"])

    cases = []
    cases += cases_truncated()
    cases += cases_utf8()
    cases += cases_surrogates()
    cases += cases_nesting()
    cases += cases_numbers()
    cases += cases_invalid_request()
    cases += cases_unknown_methods()
    cases += cases_params(contract)
    cases += cases_nul()
    cases += cases_crlf()
    cases += cases_batches()
    cases += cases_content_length_lies()
    cases += cases_oversize(1024)

    runner = Runner(args.binary, contract, verbose=args.verbose)
    for case in cases:
        runner.run_case(case)
    runner.eof_cases()
    runner.finish()
    elapsed = time.monotonic() - started

    total = sum(sum(v.values()) for v in runner.counts.values())
    print("syncwizard bad-input suite: %d inputs, %d methods from rpc.discover, %.1f s" % (total, len(contract.methods), elapsed))
    print("%-32s %8s %14s %8s" % ("category", "NDJSON", "Content-Length", "total"))
    for category in sorted(runner.counts):
        n = runner.counts[category]
        print("%-32s %8d %14d %8d" % (category, n.get("ndjson", 0), n.get("contentLength", 0), sum(n.values())))
    nd = sum(v.get("ndjson", 0) for v in runner.counts.values())
    cl = sum(v.get("contentLength", 0) for v in runner.counts.values())
    print("%-32s %8d %14d %8d" % ("all", nd, cl, total))
    if runner.restarts:
        print("the process died %d times" % runner.restarts)
    if runner.known:
        print("\n%d KNOWN FAILURES (bugs reported; see KNOWN_FAILURES in %s):" % (len(runner.known), os.path.basename(__file__)))
        for line in runner.known:
            print("  " + line[:400])
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"counts": runner.counts, "total": total, "failures": runner.failures, "known": runner.known, "seconds": round(elapsed, 1),
                       "restarts": runner.restarts}, f, indent=1)
    if runner.failures:
        print("\n%d FAILURES:" % len(runner.failures))
        for line in runner.failures[:400]:
            print("  " + line)
        if len(runner.failures) > 400:
            print("  ... and %d more" % (len(runner.failures) - 400))
        return 1
    print("all passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
