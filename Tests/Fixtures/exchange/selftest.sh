#!/usr/bin/env bash
# Self-test of fake_exchange.py: starts it with sample-config.json and checks it with curl
# (and a small DNS client written independently of the fixture's encoder).
#   Tests/Fixtures/exchange/selftest.sh        exit 0 when every check passed
# Needs: python3 with trustme + pyspnego, curl (with NTLM; Debian's curl has it).
set -u
here=$(cd "$(dirname "$0")" && pwd)
dir=$(mktemp -d "${TMPDIR:-/tmp}/fake-exchange-selftest.XXXXXX")
failures=0
checks=0
pid=""

cleanup() {
    exec 3>&- 2>/dev/null
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill "$pid" 2>/dev/null; fi
    rm -rf "$dir"
}
trap cleanup EXIT

ok()   { checks=$((checks + 1)); printf 'ok    %s\n' "$1"; }
bad()  { checks=$((checks + 1)); failures=$((failures + 1)); printf 'FAIL  %s\n' "$1"; }
# expect NAME EXPECTED ACTUAL
expect() { if [ "$2" = "$3" ]; then ok "$1"; else bad "$1 (expected '$2', got '$3')"; fi; }
# contains NAME FILE TEXT
contains() { if grep -qF -- "$3" "$2"; then ok "$1"; else bad "$1 ('$3' missing)"; fi; }
# tally: counts the ok/FAIL lines a helper script printed (in the current shell: no pipe)
tally() {
    printf '%s\n' "$1"
    checks=$((checks + $(printf '%s\n' "$1" | grep -c -e '^ok' -e '^FAIL')))
    failures=$((failures + $(printf '%s\n' "$1" | grep -c '^FAIL')))
}

# --- start ----------------------------------------------------------------------------------
mkfifo "$dir/stdin"
python3 "$here/fake_exchange.py" --config "$here/sample-config.json" --log "$dir/log.jsonl" \
    --workdir "$dir/work" <"$dir/stdin" >"$dir/ready" 2>"$dir/stderr" &
pid=$!
exec 3>"$dir/stdin"   # the fixture runs until this closes
for _ in $(seq 150); do
    [ -s "$dir/ready" ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
done
if ! [ -s "$dir/ready" ]; then
    echo "fake_exchange.py did not start:"; cat "$dir/stderr"; exit 1
fi
field() { python3 -c 'import json,sys; v=json.load(open(sys.argv[1])); [v:=v[k] for k in sys.argv[2:]]; print(v)' "$dir/ready" "$@"; }
HTTPS=$(field httpsPort); HTTP=$(field httpPort); DNS=$(field dnsPort)
CA=$(field caFile); UNTRUSTED_CA=$(field untrustedCaFile)
echo "fixture pid $pid: https $HTTPS, http $HTTP, dns $DNS"
expect "CA files exist" "yes yes" "$([ -s "$CA" ] && echo yes) $([ -s "$UNTRUSTED_CA" ] && echo yes)"

hosts="contoso.test autodiscover.contoso.test mail.contoso.test basic.contoso.test busy.contoso.test
error.contoso.test untrusted.contoso.test expired.contoso.test reset.contoso.test status.contoso.test
redirect.contoso.test big.contoso.test bigchunked.contoso.test broken.contoso.test slow.contoso.test
stuck.contoso.test unknown.contoso.test"
CONNECT=()
for h in $hosts; do CONNECT+=(--connect-to "$h:443:127.0.0.1:$HTTPS"); done
for h in autodiscover.contoso.test hang.contoso.test nowhere.contoso.test; do
    CONNECT+=(--connect-to "$h:80:127.0.0.1:$HTTP")
done
GOOD='CONTOSO\alice:Passw0rd!'
# c ARGS...: curl with the CA and the mappings; prints "<http_code> <exit>" (body to $dir/body)
c() {
    local code rc
    code=$(curl -sS --cacert "$CA" "${CONNECT[@]}" -o "$dir/body" -D "$dir/headers" -w '%{http_code}' "$@" 2>"$dir/curl-err")
    rc=$?
    echo "$code $rc"
}
xml_of() { sed "s/$2/$3/" "$here/$1"; }
xml_of autodiscover-request.xml EMAIL alice@contoso.test >"$dir/ad-alice.xml"
xml_of autodiscover-request.xml EMAIL old@contoso.test >"$dir/ad-old.xml"
for m in alice nobody boss; do
    xml_of getfolder-impersonation.xml MAILBOX "$m@contoso.test" >"$dir/gf-$m.xml"
done
sed 's/Exchange2013_SP1/Exchange2099/' "$here/getfolder.xml" >"$dir/gf-badversion.xml"
EWS=https://mail.contoso.test/EWS/Exchange.asmx
XML=(-H 'Content-Type: text/xml; charset=utf-8')

# --- certificates ---------------------------------------------------------------------------
served=$(python3 - "$CA" "$HTTPS" <<'EOF'
import hashlib, socket, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[1])
with socket.create_connection(("127.0.0.1", int(sys.argv[2]))) as raw:
    with ctx.wrap_socket(raw, server_hostname="mail.contoso.test") as tls:
        print(hashlib.sha256(tls.getpeercert(binary_form=True)).hexdigest())
EOF
)
expect "certificates[mail.contoso.test].sha256 is the served leaf" "$(field certificates mail.contoso.test sha256)" "$served"

# --- TLS ------------------------------------------------------------------------------------
expect "trusted TLS via --connect-to, unknown path -> 404" "404 0" "$(c https://busy.contoso.test/nothing)"
expect "unconfigured name: trusted cert, 404" "404 0" "$(c https://unknown.contoso.test/autodiscover/autodiscover.xml)"
expect "untrusted host fails verification (curl 60)" "000 60" "$(c https://untrusted.contoso.test/)"
expect "untrusted host works with its own CA" "404 0" \
    "$(curl -sS --cacert "$UNTRUSTED_CA" "${CONNECT[@]}" -o /dev/null -w '%{http_code}' https://untrusted.contoso.test/x; echo " $?")"
expect "expired certificate fails verification (curl 60)" "000 60" "$(c https://expired.contoso.test/)"
start=$(date +%s.%N)
expect "hang host: TLS never completes, curl -m 2 times out (28)" "000 28" "$(c -m 2 https://contoso.test/)"
elapsed=$(python3 -c "print(int(($(date +%s.%N) - $start) * 10))")
expect "hang host: timed out after ~2 s" "yes" "$([ "$elapsed" -ge 19 ] && [ "$elapsed" -le 40 ] && echo yes)"
expect "hangAfterHandshake: curl -m 2 times out (28)" "000 28" "$(c -m 2 https://stuck.contoso.test/)"

# --- NTLM (pyspnego) ------------------------------------------------------------------------
expect "NTLM right password -> 200" "200 0" "$(c --ntlm -u "$GOOD" "${XML[@]}" -d @"$here/getfolder.xml" $EWS)"
contains "GetFolder success body" "$dir/body" '<m:GetFolderResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode>'
contains "ServerVersionInfo header" "$dir/body" 'ServerVersionInfo MajorVersion="15"'
expect "NTLM wrong password -> 401" "401 0" "$(c --ntlm -u 'CONTOSO\alice:Wr0ngPass!' -d @"$here/getfolder.xml" $EWS)"
expect "NTLM wrong domain -> 401" "401 0" "$(c --ntlm -u 'FABRIKAM\alice:Passw0rd!' -d @"$here/getfolder.xml" $EWS)"
expect "NTLM missing domain -> 401" "401 0" "$(c --ntlm -u 'alice:Passw0rd!' -d @"$here/getfolder.xml" $EWS)"
expect "NTLM unknown user -> 401" "401 0" "$(c --ntlm -u 'CONTOSO\mallory:Passw0rd!' -d @"$here/getfolder.xml" $EWS)"
expect "NTLM lower-case domain and user -> 200" "200 0" "$(c --ntlm -u 'contoso\ALICE:Passw0rd!' -d @"$here/getfolder.xml" $EWS)"
expect "NTLM UPN (':alice@contoso.test:…' line) -> 200" "200 0" "$(c --ntlm -u 'alice@contoso.test:Passw0rd!' -d @"$here/getfolder.xml" $EWS)"
expect "no credentials -> 401" "401 0" "$(c -d @"$here/getfolder.xml" $EWS)"
contains "challenge offers Negotiate" "$dir/headers" "WWW-Authenticate: Negotiate"
contains "challenge offers NTLM" "$dir/headers" "WWW-Authenticate: NTLM"
expect "curl --anyauth picks Negotiate (no Kerberos) -> 401" "401 0" "$(c --anyauth -u "$GOOD" -d @"$here/getfolder.xml" $EWS)"
out=$(python3 - "$CA" "$HTTPS" "$here/getfolder.xml" 2>&1 <<'EOF'
# Negotiate (SPNEGO-wrapped NTLM, as Windows clients send it) through pyspnego's initiator.
import base64, http.client, socket, ssl, sys
import spnego
ca, port, body = sys.argv[1], int(sys.argv[2]), open(sys.argv[3], "rb").read()
conn = http.client.HTTPSConnection("mail.contoso.test", 443, context=ssl.create_default_context(cafile=ca))
conn._create_connection = lambda *a, **k: socket.create_connection(("127.0.0.1", port))
client = spnego.client("CONTOSO\\alice", "Passw0rd!", hostname="mail.contoso.test", service="HTTP", protocol="negotiate")
token = client.step()
while True:
    conn.request("POST", "/EWS/Exchange.asmx", body=body, headers={
        "Authorization": "Negotiate " + base64.b64encode(token).decode(), "Content-Type": "text/xml"})
    reply = conn.getresponse()
    reply.read()
    challenge = reply.getheader("WWW-Authenticate") or ""
    if reply.status != 401 or not challenge.startswith("Negotiate "):
        break
    token = client.step(base64.b64decode(challenge.split(" ", 1)[1]))
print(("ok    " if reply.status == 200 else "FAIL  ") + "Negotiate (SPNEGO/NTLM) -> %d" % reply.status)
EOF
)
tally "$out"
out=$(python3 - "$CA" "$HTTPS" 2>&1 <<'EOF'
# The challenge is a domain member server's ([MS-NLMP] 2.2.1.2, 2.2.2.1), read with pyspnego's
# own message parser: TargetName = NetBIOS domain, NTLMSSP_TARGET_TYPE_DOMAIN, the AV pairs of
# the host's ntlmDomain (or the defaults from its name); offerNTLM false: Negotiate only.
import base64, http.client, socket, ssl, struct, sys
from spnego._ntlm_raw.messages import AvId, Challenge, NegotiateFlags
from spnego._spnego import unpack_token
ca, port = sys.argv[1], int(sys.argv[2])
NEGOTIATE = b"NTLMSSP\x00" + struct.pack("<II", 1, 0xE0888207) + struct.pack("<HHI", 0, 0, 32) * 2
def ask(host, scheme, token):
    conn = http.client.HTTPSConnection(host, 443, context=ssl.create_default_context(cafile=ca))
    conn._create_connection = lambda *a, **k: socket.create_connection(("127.0.0.1", port))
    headers = {"Authorization": "%s %s" % (scheme, base64.b64encode(token).decode())} if token else {}
    conn.request("GET", "/EWS/Exchange.asmx", headers=headers)
    reply = conn.getresponse()
    reply.read()
    return reply.status, reply.msg.get_all("WWW-Authenticate") or []
def check(label, condition):
    print(("ok    " if condition else "FAIL  ") + label)
def challenge(values, scheme):
    token = base64.b64decode(next(v for v in values if v.startswith(scheme + " ")).split(" ", 1)[1])
    return Challenge.unpack(token if token.startswith(b"NTLMSSP") else unpack_token(token).response_token)
status, values = ask("mail.contoso.test", "NTLM", NEGOTIATE)
c = challenge(values, "NTLM")
info = c.target_info
check("NTLM challenge: TargetName is the NetBIOS domain", status == 401 and c.target_name == "CONTOSO")
check("NTLM challenge: NTLMSSP_TARGET_TYPE_DOMAIN, not _SERVER",
      c.flags & NegotiateFlags.target_type_domain and not c.flags & NegotiateFlags.target_type_server)
check("NTLM challenge: AV pairs of ntlmDomain",
      [info[AvId.nb_computer_name], info[AvId.nb_domain_name], info[AvId.dns_computer_name],
       info[AvId.dns_domain_name], info[AvId.dns_tree_name]]
      == ["EXCH01", "CONTOSO", "exch01.corp.contoso.test", "corp.contoso.test", "contoso.test"])
check("NTLM challenge: AV pair order, MsvAvTimestamp and MsvAvEOL as Windows sends them",
      list(info.keys()) == [AvId.nb_computer_name, AvId.nb_domain_name, AvId.dns_computer_name,
                            AvId.dns_domain_name, AvId.dns_tree_name, AvId.timestamp, AvId.eol])
status, values = ask("negotiate.contoso.test", None, None)
check("offerNTLM false: only WWW-Authenticate: Negotiate", status == 401 and values == ["Negotiate"])
status, values = ask("negotiate.contoso.test", "NTLM", NEGOTIATE)
check("offerNTLM false: an NTLM token is refused", status == 401 and values == ["Negotiate"])
status, values = ask("negotiate.contoso.test", "Negotiate", NEGOTIATE)
c = challenge(values, "Negotiate")
check("Negotiate-only host: challenge with the defaults from its name",
      c.target_name == "CONTOSO" and c.target_info[AvId.dns_domain_name] == "contoso.test"
      and c.target_info[AvId.nb_computer_name] == "NEGOTIATE")
EOF
)
tally "$out"
expect "Basic on an NTLM host -> 401" "401 0" "$(c --basic -u "$GOOD" -d @"$here/getfolder.xml" $EWS)"
# 30 parallel NTLM handshakes, each on its own connection
export CA HTTPS GOOD here
parallel=$(seq 30 | xargs -P 30 -I{} sh -c 'curl -sS --ntlm -u "$GOOD" --cacert "$CA" --connect-to mail.contoso.test:443:127.0.0.1:$HTTPS -o /dev/null -w "%{http_code}\n" -d @"$here/getfolder.xml" https://mail.contoso.test/EWS/Exchange.asmx' | sort | uniq -c | awk '{print $1 "x" $2}')
expect "30 parallel NTLM requests all 200" "30x200" "$parallel"

# --- Basic ----------------------------------------------------------------------------------
expect "Basic right -> 200" "200 0" "$(c --basic -u "$GOOD" -d @"$here/getfolder.xml" https://basic.contoso.test/EWS/Exchange.asmx)"
contains "ErrorAccessDenied as ResponseMessage" "$dir/body" '<m:GetFolderResponseMessage ResponseClass="Error"><m:MessageText>'
contains "ErrorAccessDenied code" "$dir/body" '<m:ResponseCode>ErrorAccessDenied</m:ResponseCode>'
expect "Basic wrong password -> 401" "401 0" "$(c --basic -u 'CONTOSO\alice:Wr0ngPass!' -d x https://basic.contoso.test/EWS/Exchange.asmx)"
contains "Basic challenge" "$dir/headers" 'WWW-Authenticate: Basic realm="basic.contoso.test"'
expect "Basic missing domain -> 401" "401 0" "$(c --basic -u 'alice:Passw0rd!' -d x https://basic.contoso.test/EWS/Exchange.asmx)"

# --- Autodiscover ---------------------------------------------------------------------------
AD=https://autodiscover.contoso.test/autodiscover/autodiscover.xml
expect "Autodiscover POST (NTLM) -> 200" "200 0" "$(c --ntlm -u "$GOOD" "${XML[@]}" -d @"$dir/ad-alice.xml" $AD)"
contains "EXPR EwsUrl" "$dir/body" "<EwsUrl>https://mail.contoso.test/EWS/Exchange.asmx</EwsUrl>"
contains "OABUrl" "$dir/body" "<OABUrl>https://mail.contoso.test/OAB/abc/</OABUrl>"
contains "AutoDiscoverSMTPAddress echoes the address" "$dir/body" "<AutoDiscoverSMTPAddress>alice@contoso.test</AutoDiscoverSMTPAddress>"
ns=$(python3 -c '
import sys, xml.etree.ElementTree as ET
r = ET.parse(sys.argv[1]).getroot()
a = "{http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a}"
print(r.tag, [p.findtext(a + "Type") for p in r.iter(a + "Protocol")])' "$dir/body")
expect "response namespaces and protocol order" "{http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006}Autodiscover ['EXPR', 'EXCH']" "$ns"
c --ntlm -u "$GOOD" "${XML[@]}" -d @"$dir/ad-old.xml" $AD >/dev/null
contains "byAddress: redirectAddr" "$dir/body" "<Action>redirectAddr</Action>"
contains "byAddress: RedirectAddr" "$dir/body" "<RedirectAddr>alice@contoso.test</RedirectAddr>"
c --ntlm -u "$GOOD" "${XML[@]}" -d @"$dir/ad-alice.xml" https://mail.contoso.test/autodiscover/autodiscover.xml >/dev/null
contains "redirectUrl" "$dir/body" "<RedirectUrl>https://autodiscover.contoso.test/autodiscover/autodiscover.xml</RedirectUrl>"
expect "Autodiscover error action -> 200" "200 0" "$(c "${XML[@]}" -d @"$dir/ad-alice.xml" https://error.contoso.test/autodiscover/autodiscover.xml)"
contains "ErrorCode 500" "$dir/body" "<ErrorCode>500</ErrorCode>"
expect "Autodiscover GET -> 200 with error 600" "200 0" "$(c --ntlm -u "$GOOD" $AD)"
contains "ErrorCode 600" "$dir/body" "<ErrorCode>600</ErrorCode>"
expect "Autodiscover wrong password -> 401" "401 0" "$(c --ntlm -u 'CONTOSO\alice:Wr0ngPass!' -d @"$dir/ad-alice.xml" $AD)"

# --- EWS variants ---------------------------------------------------------------------------
expect "impersonation alice -> 200" "200 0" "$(c --ntlm -u "$GOOD" "${XML[@]}" -H 'X-AnchorMailbox: alice@contoso.test' -d @"$dir/gf-alice.xml" $EWS)"
contains "impersonation success" "$dir/body" 'ResponseClass="Success"'
expect "ErrorNonExistentMailbox -> 200" "200 0" "$(c --ntlm -u "$GOOD" "${XML[@]}" -d @"$dir/gf-nobody.xml" $EWS)"
contains "ErrorNonExistentMailbox code" "$dir/body" "<m:ResponseCode>ErrorNonExistentMailbox</m:ResponseCode>"
expect "soapFault:ErrorImpersonateUserDenied -> 500" "500 0" "$(c --ntlm -u "$GOOD" "${XML[@]}" -d @"$dir/gf-boss.xml" $EWS)"
contains "fault detail ResponseCode" "$dir/body" '<e:ResponseCode xmlns:e="http://schemas.microsoft.com/exchange/services/2006/errors">ErrorImpersonateUserDenied</e:ResponseCode>'
expect "unknown RequestServerVersion -> 500" "500 0" "$(c --ntlm -u "$GOOD" "${XML[@]}" -d @"$dir/gf-badversion.xml" $EWS)"
contains "ErrorInvalidServerVersion fault" "$dir/body" ">ErrorInvalidServerVersion</e:ResponseCode>"
expect "status:503 -> 503" "503 0" "$(c -d @"$here/getfolder.xml" https://busy.contoso.test/EWS/Exchange.asmx)"
expect "OAB oab.xml -> 200" "200 0" "$(c --ntlm -u "$GOOD" https://mail.contoso.test/OAB/abc/oab.xml)"
contains "OAB manifest" "$dir/body" "<OAL id="

# --- host-level overrides -------------------------------------------------------------------
expect "reset: connection reset (curl 56)" "000 56" "$(c -d @"$dir/ad-alice.xml" https://reset.contoso.test/autodiscover/autodiscover.xml)"
contains "reset reported as reset by peer" "$dir/curl-err" "reset by peer"
expect "status 500" "500 0" "$(c https://status.contoso.test/autodiscover/autodiscover.xml)"
expect "redirect 302" "302 0" "$(c -d x https://redirect.contoso.test/autodiscover/autodiscover.xml)"
contains "redirect Location" "$dir/headers" "Location: https://mail.contoso.test/autodiscover/autodiscover.xml"
expect "oversize (Content-Length): --max-filesize aborts (63)" "200 63" "$(c --max-filesize 1000000 https://big.contoso.test/autodiscover/autodiscover.xml)"
size=$(curl -sS --cacert "$CA" "${CONNECT[@]}" -D "$dir/headers" https://bigchunked.contoso.test/x | wc -c)
expect "oversize chunked streams 20000000 bytes" "20000000" "$size"
contains "oversize chunked is chunked" "$dir/headers" "Transfer-Encoding: chunked"
expect "invalidXml -> 200" "200 0" "$(c -d x https://broken.contoso.test/autodiscover/autodiscover.xml)"
expect "invalidXml body does not parse" "ParseError" \
    "$(python3 -c 'import sys, xml.etree.ElementTree as ET
try: ET.parse(sys.argv[1]); print("parsed")
except ET.ParseError: print("ParseError")' "$dir/body")"
t=$(curl -sS --cacert "$CA" "${CONNECT[@]}" -o /dev/null -w '%{time_total}' -d @"$dir/ad-alice.xml" https://slow.contoso.test/autodiscover/autodiscover.xml)
expect "delayMs 300 is honoured" "yes" "$(python3 -c "print('yes' if $t >= 0.3 else 'no')")"

# --- plain HTTP -----------------------------------------------------------------------------
expect "plain HTTP redirect -> 302" "302 0" "$(c http://autodiscover.contoso.test/autodiscover/autodiscover.xml)"
contains "plain HTTP Location" "$dir/headers" "Location: https://mail.contoso.test/autodiscover/autodiscover.xml"
expect "plain HTTP unknown host -> 404" "404 0" "$(c http://nowhere.contoso.test/autodiscover/autodiscover.xml)"
expect "plain HTTP hang -> curl -m 2 times out" "000 28" "$(c -m 2 http://hang.contoso.test/autodiscover/autodiscover.xml)"

# --- DNS ------------------------------------------------------------------------------------
# A DNS client written here, not shared with the fixture, so both sides are checked.
out=$(python3 - "$DNS" 2>&1 <<'EOF'
import random, socket, struct, sys

port = int(sys.argv[1])

def name_at(packet, offset):
    labels, jumped, end = [], False, None
    while True:
        n = packet[offset]
        if n & 0xC0 == 0xC0:
            if end is None:
                end = offset + 2
            offset = ((n & 0x3F) << 8) | packet[offset + 1]
            continue
        offset += 1
        if n == 0:
            break
        labels.append(packet[offset:offset + n].decode())
        offset += n
    return ".".join(labels), (end if end is not None else offset)

def query(name, qtype):
    ident = random.randrange(1 << 16)
    question = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    packet = struct.pack("!6H", ident, 0x0100, 1, 0, 0, 0) + question + struct.pack("!HH", qtype, 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(2)
    s.sendto(packet, ("127.0.0.1", port))
    reply, _ = s.recvfrom(4096)
    rid, flags, qd, an, _, _ = struct.unpack("!6H", reply[:12])
    assert rid == ident and flags & 0x8000, "not a reply to our query"
    _, offset = name_at(reply, 12)
    offset += 4
    records = []
    for _ in range(an):
        _, offset = name_at(reply, offset)
        rtype, _, _, length = struct.unpack("!HHIH", reply[offset:offset + 10])
        offset += 10
        rdata = reply[offset:offset + length]
        if rtype == 33:
            prio, weight, port_ = struct.unpack("!3H", rdata[:6])
            target, _ = name_at(reply, offset + 6)
            records.append((prio, weight, port_, target))
        elif rtype == 1:
            records.append(socket.inet_ntoa(rdata))
        offset += length
    return flags & 0xF, records

failures = 0
def check(label, expected, actual):
    global failures
    print(("ok    " if expected == actual else "FAIL  ") + label + ("" if expected == actual else " (expected %r, got %r)" % (expected, actual)))
    failures += expected != actual

check("DNS SRV _autodiscover._tcp.contoso.test", (0, [(10, 5, 443, "mail.contoso.test"), (20, 0, 8443, "other.contoso.test")]),
      query("_autodiscover._tcp.contoso.test", 33))
check("DNS SRV unknown name -> NXDOMAIN", (3, []), query("_autodiscover._tcp.nowhere.test", 33))
check("DNS SRV rcode SERVFAIL", (2, []), query("_autodiscover._tcp.fail.test", 33))
check("DNS A mail.contoso.test -> 127.0.0.1", (0, ["127.0.0.1"]), query("mail.contoso.test", 1))
check("DNS A SRV target -> 127.0.0.1", (0, ["127.0.0.1"]), query("other.contoso.test", 1))
EOF
)
tally "$out"

# --- the log --------------------------------------------------------------------------------
out=$(python3 - "$dir/log.jsonl" 2>&1 <<'EOF'
import json, sys
entries = [json.loads(line) for line in open(sys.argv[1])]
requests = [e for e in entries if e["kind"] == "request"]
failures = 0
def check(label, condition):
    global failures
    print(("ok    " if condition else "FAIL  ") + label)
    failures += not condition
keys = {"t", "kind", "listener", "connection", "host", "hostHeader", "method", "path", "authScheme",
        "ntlmMessage", "authenticatedUser", "status", "outcome", "impersonating", "anchorMailbox", "serverVersion",
        "impersonationIdType", "operation", "folder", "mailbox", "emailAddress"}
check("log: every request entry has the documented keys", all(set(e) == keys for e in requests))
ok200 = [e for e in requests if e["path"] == "/EWS/Exchange.asmx" and e["status"] == 200 and e["host"] == "mail.contoso.test"]
check("log: NTLM success records authScheme and user", any(e["authScheme"] == "NTLM" and e["authenticatedUser"] == "CONTOSO\\alice" for e in ok200))
check("log: impersonation and X-AnchorMailbox recorded",
      any(e["impersonating"] == "alice@contoso.test" and e["anchorMailbox"] == "alice@contoso.test"
          and e["impersonationIdType"] == "PrimarySmtpAddress" and e["serverVersion"] == "Exchange2016" for e in ok200))
check("log: RequestServerVersion recorded", any(e["serverVersion"] == "Exchange2013_SP1" for e in ok200))
check("log: failed NTLM has no user", all(e["authenticatedUser"] is None for e in requests if e["status"] == 401))
check("log: Basic user recorded", any(e["authScheme"] == "Basic" and e["authenticatedUser"] == "CONTOSO\\alice" for e in requests))
check("log: Autodiscover emailAddress recorded", any(e["emailAddress"] == "old@contoso.test" for e in requests))
check("log: hang host logged as connection hang",
      any(e["kind"] == "connection" and e["host"] == "contoso.test" and e["outcome"] == "hang" for e in entries))
check("log: untrusted handshake failed, no request reached it with the wrong CA",
      any(e["kind"] == "connection" and e["host"] == "untrusted.contoso.test" and e["outcome"] == "handshakeFailed" for e in entries))
check("log: reset logged", any(e["host"] == "reset.contoso.test" and e["outcome"] == "reset" for e in requests))
check("log: plain HTTP request without credentials",
      any(e["listener"] == "http" and e["status"] == 302 and e["authScheme"] is None for e in requests))
check("log: DNS queries logged", any(e["kind"] == "dns" and e["method"] == "SRV" and e["status"] == "NOERROR" for e in entries))
EOF
)
tally "$out"
for secret in 'Passw0rd' 'Wr0ngPass' 'TlRMTVNT' 'Authorization' 'Envelope' 'EMailAddress' 'Q09OVE9TT1xhbGljZT'; do
    if grep -q -- "$secret" "$dir/log.jsonl" "$dir/ready" "$dir/stderr"; then
        bad "log/stdout/stderr free of '$secret'"
    else
        ok "log/stdout/stderr free of '$secret'"
    fi
done
expect "stderr is empty" "" "$(cat "$dir/stderr")"

# --- shutdown on stdin EOF ------------------------------------------------------------------
exec 3>&-
for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$pid" 2>/dev/null; then bad "exits when stdin closes"; else
    wait "$pid"; expect "exits 0 when stdin closes" "0" "$?"; fi

echo "$((checks - failures))/$checks checks passed"
[ "$failures" -eq 0 ]
