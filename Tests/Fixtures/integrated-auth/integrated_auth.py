#!/usr/bin/env python3
"""Real peers for Windows-integrated authentication: a throwaway MIT Kerberos realm and an
HTTPS acceptor that checks Kerberos and NTLM with TLS channel binding (RFC 5929
tls-server-end-point) the way an Exchange with Extended Protection set to Require does.

    integrated_auth.py realm --dir DIR
        Creates the realm CONTOSO.TEST in DIR (kdb5_util create -s with a random master
        password; KRB5_CONFIG / KRB5_KDC_PROFILE point at generated files), principals for the
        users and HTTP/<host> for every --service-host, a keytab for those services, and runs
        krb5kdc on a loopback port. Prints one JSON ready line:
        {"realm", "kdcPort", "krb5Config", "keytab", "kdcLog", "deadRealm"}.
        DOWN.TEST in the generated krb5.conf points at a closed port (a KDC that is down).

    integrated_auth.py acceptor --dir DIR --keytab K --krb5-config C [--offer Negotiate,NTLM]
                                [--require-cbt] [--no-ntlm] [--host mail.contoso.test]
        HTTPS on a loopback port with a certificate for --host and every --alias from its own
        CA (trustme). Every request to any path needs authentication; once authenticated the
        answer depends on the path, as an Exchange CAS answers: POST /autodiscover/
        autodiscover.xml is Autodiscover POX (protocols.md §4.2/4.3: the Outlook response schema
        with an EXPR protocol naming https://--host/EWS/Exchange.asmx and the OAB, error 500 for
        an address outside @contoso.test), GET /OAB/<id>/oab.xml the OAB manifest, anything else
        an EWS GetFolder success. Kerberos is accepted for any HTTP/<name> in the keytab (the
        realm makes one per --service-host), so one acceptor serves mail. and autodiscover. NTLM is checked by pyspnego's NTLM acceptor (users from
        NTLM_USER_FILE, written from --ntlm-user DOMAIN:user:password), Kerberos by MIT
        through python-gssapi with the keytab. With --require-cbt, NTLM without (or with wrong)
        MsvAvChannelBindings is refused. Ready line: {"httpsPort", "caFile", "certSha256", "log"}.
        The log (JSON lines) records per request: connection (client port), host, path, bodyBytes, scheme, token
        (kerberos/ntlm-negotiate/ntlm-authenticate/spnego), outcome, user, error.

Both run until stdin closes. Run under libfaketime (LD_PRELOAD, FAKETIME=+10m) the acceptor's
clock is skewed against the KDC and the client: Kerberos then fails with KRB_AP_ERR_SKEW.
Needs: krb5-kdc, krb5-admin-server, python3 with trustme, pyspnego, gssapi.
"""
import argparse
import base64
import hashlib
import http.server
import json
import os
import secrets
import socket
import ssl
import subprocess
import sys
import threading
import time

REALM = "CONTOSO.TEST"
DEAD_REALM = "DOWN.TEST"
USERS = [("alice", "Passw0rd!"), ("bob", "Secr3t!!")]


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_stdin_close():
    try:
        while sys.stdin.buffer.read(1024):
            pass
    except Exception:
        pass


# --- realm ------------------------------------------------------------------------------------

def run_realm(args):
    d = os.path.abspath(args.dir)
    os.makedirs(d, exist_ok=True)
    port, dead_port = free_port(), free_port()
    kdc_conf = os.path.join(d, "kdc.conf")
    krb5_conf = os.path.join(d, "krb5.conf")
    with open(kdc_conf, "w") as f:
        f.write(f"""[kdcdefaults]
 kdc_listen = 127.0.0.1:{port}
 kdc_tcp_listen = 127.0.0.1:{port}
[realms]
 {REALM} = {{
  database_name = {d}/principal
  key_stash_file = {d}/stash
  acl_file = {d}/kadm5.acl
  max_life = 10h
  max_renewable_life = 0
  supported_enctypes = aes256-cts-hmac-sha1-96:normal aes128-cts-hmac-sha1-96:normal
 }}
[logging]
 kdc = FILE:{d}/kdc.log
""")
    with open(krb5_conf, "w") as f:
        f.write(f"""[libdefaults]
 default_realm = {REALM}
 dns_lookup_kdc = false
 dns_lookup_realm = false
 rdns = false
 dns_canonicalize_hostname = false
 udp_preference_limit = 1
 kdc_timeout = 2000
 max_retries = 1
[realms]
 {REALM} = {{
  kdc = 127.0.0.1:{port}
 }}
 {DEAD_REALM} = {{
  kdc = 127.0.0.1:{dead_port}
 }}
[domain_realm]
 .contoso.test = {REALM}
 contoso.test = {REALM}
""")
    open(os.path.join(d, "kadm5.acl"), "w").close()
    env = dict(os.environ, KRB5_CONFIG=krb5_conf, KRB5_KDC_PROFILE=kdc_conf)
    env.pop("LD_PRELOAD", None)
    env.pop("FAKETIME", None)

    def sh(*cmd):
        r = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if r.returncode != 0:
            sys.stderr.write("%s failed: %s\n" % (" ".join(cmd[:2]), r.stdout))
            sys.exit(1)

    sbin = "/usr/sbin"
    sh(f"{sbin}/kdb5_util", "-r", REALM, "create", "-s", "-P", secrets.token_hex(16))
    keytab = os.path.join(d, "http.keytab")
    queries = ["addprinc +requires_preauth -pw %s %s" % (pw, user) for user, pw in USERS]
    for host in args.service_host:
        queries += ["addprinc -randkey HTTP/%s" % host, "ktadd -k %s HTTP/%s" % (keytab, host)]
    for q in queries:
        sh(f"{sbin}/kadmin.local", "-r", REALM, "-q", q)
    kdc = subprocess.Popen([f"{sbin}/krb5kdc", "-n", "-r", REALM], env=env,
                           stdout=subprocess.DEVNULL, stderr=open(os.path.join(d, "kdc.stderr"), "w"))
    try:
        deadline = time.time() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if kdc.poll() is not None or time.time() > deadline:
                    sys.stderr.write("krb5kdc did not start: %s\n" % open(os.path.join(d, "kdc.stderr")).read())
                    sys.exit(1)
                time.sleep(0.05)
        print(json.dumps({"realm": REALM, "kdcPort": port, "krb5Config": krb5_conf, "keytab": keytab,
                          "kdcLog": os.path.join(d, "kdc.log"), "deadRealm": DEAD_REALM,
                          "users": {u: p for u, p in USERS}, "kdcPid": kdc.pid}), flush=True)
        wait_for_stdin_close()
    finally:
        kdc.terminate()
        try:
            kdc.wait(5)
        except subprocess.TimeoutExpired:
            kdc.kill()
        if args.remove_on_exit:
            import shutil
            shutil.rmtree(d, ignore_errors=True)


# --- acceptor ---------------------------------------------------------------------------------

GETFOLDER_OK = (
    '<?xml version="1.0" encoding="utf-8"?>\n'
    '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Header>'
    '<h:ServerVersionInfo MajorVersion="15" MinorVersion="2" MajorBuildNumber="1544" MinorBuildNumber="4" '
    'Version="V2017_07_11" xmlns:h="http://schemas.microsoft.com/exchange/services/2006/types" '
    'xmlns="http://schemas.microsoft.com/exchange/services/2006/types"/></s:Header><s:Body>'
    '<m:GetFolderResponse xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages" '
    'xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"><m:ResponseMessages>'
    '<m:GetFolderResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode>'
    '<m:Folders><t:CalendarFolder><t:FolderId Id="AAMkADk0ZmFjYzE1LWNhbGVuZGFyAC4AAAAAAB0vUp3Aw+ZQ==" '
    'ChangeKey="AgAAABYAAAB7QzK6TnYlSq5TmZl/w0wLAAAAAAAD"/></t:CalendarFolder></m:Folders>'
    '</m:GetFolderResponseMessage></m:ResponseMessages></m:GetFolderResponse></s:Body></s:Envelope>'
).encode()


NS_AD_REQUEST = "http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"
NS_AD_RESPONSE = "http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006"
NS_AD_OUTLOOK = "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"


def autodiscover_answer(body, host):
    """POX (protocols.md §4.2/4.3, [MS-OXDSCLI]): the request's EMailAddress in the request
    schema; settings for a @contoso.test address, else Response/Error 500 (address not found)."""
    import xml.etree.ElementTree as ET
    from xml.sax.saxutils import escape
    try:
        root = ET.fromstring(body)
        email = root.findtext("{%s}Request/{%s}EMailAddress" % (NS_AD_REQUEST, NS_AD_REQUEST)) or ""
        schema = root.findtext("{%s}Request/{%s}AcceptableResponseSchema" % (NS_AD_REQUEST, NS_AD_REQUEST))
    except ET.ParseError:
        email, schema = "", None
    if schema != NS_AD_OUTLOOK or not email.lower().endswith("@contoso.test"):
        code, message = (600, "Invalid Request") if schema != NS_AD_OUTLOOK else (500, "The email address can't be found.")
        return ('<?xml version="1.0" encoding="utf-8"?>\n<Autodiscover xmlns="%s"><Response xmlns="%s">'
                '<Error Time="10:00:00.0000000" Id="2471526784"><ErrorCode>%d</ErrorCode><Message>%s</Message>'
                '<DebugData /></Error></Response></Autodiscover>' % (NS_AD_RESPONSE, NS_AD_OUTLOOK, code, message)).encode()
    return ("\n".join([
        '<?xml version="1.0" encoding="utf-8"?>',
        '<Autodiscover xmlns="%s">' % NS_AD_RESPONSE,
        '  <Response xmlns="%s">' % NS_AD_OUTLOOK,
        "    <User><DisplayName>%s</DisplayName><AutoDiscoverSMTPAddress>%s</AutoDiscoverSMTPAddress></User>"
        % (escape(email.split("@")[0]), escape(email)),
        "    <Account>",
        "      <AccountType>email</AccountType>",
        "      <Action>settings</Action>",
        "      <Protocol><Type>EXPR</Type><Server>%s</Server><ASUrl>https://%s/EWS/Exchange.asmx</ASUrl>"
        "<EwsUrl>https://%s/EWS/Exchange.asmx</EwsUrl><OABUrl>https://%s/OAB/abc/</OABUrl></Protocol>" % (host, host, host, host),
        "    </Account>",
        "  </Response>",
        "</Autodiscover>", ""])).encode()


OAB_XML = b"""<?xml version="1.0" encoding="UTF-8"?>
<OAB>
  <OAL id="3f3a5c1e-0b0e-4a1b-9a4e-2c1d7e8f9a0b" dn="/" name="\\Default Global Address List">
    <Full seq="12" ver="32" size="18432" uncompressedsize="65536" SHA="0123456789abcdef0123456789abcdef01234567">3f3a5c1e-data-12.lzx</Full>
  </OAL>
</OAB>
"""


def token_kind(raw):
    if raw.startswith(b"NTLMSSP\x00"):
        return {1: "ntlm-negotiate", 3: "ntlm-authenticate"}.get(int.from_bytes(raw[8:12], "little"), "ntlm")
    if raw[:1] == b"\x60" and b"\x2b\x06\x01\x05\x05\x02" in raw[:20]:
        return "spnego"
    if raw[:1] in (b"\x60", b"\x6e"):
        return "kerberos"
    return "unknown"


def run_acceptor(args):
    import spnego
    import spnego.channel_bindings
    import trustme

    d = os.path.abspath(args.dir)
    os.makedirs(d, exist_ok=True)
    os.environ["KRB5_CONFIG"] = args.krb5_config
    os.environ["KRB5_KTNAME"] = "FILE:" + args.keytab
    users_file = os.path.join(d, "ntlm-users")
    with open(users_file, "w") as f:
        for entry in args.ntlm_user:
            f.write(entry + "\n")
    os.environ["NTLM_USER_FILE"] = users_file

    ca = trustme.CA()
    cert = ca.issue_cert(args.host, *args.alias)
    ca_file = os.path.join(d, "ca.pem")
    ca.cert_pem.write_to_path(ca_file)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    cert.configure_cert(context)
    context.set_alpn_protocols(["http/1.1"])
    der = ssl.PEM_cert_to_DER_cert(cert.cert_chain_pems[0].bytes().decode())
    # RFC 5929 §4.1: SHA-256 for a certificate signed with SHA-256 (trustme's), MD5 or SHA-1.
    cert_hash = hashlib.sha256(der).digest()
    bindings = spnego.channel_bindings.GssChannelBindings(application_data=b"tls-server-end-point:" + cert_hash)
    offer = [s.strip() for s in args.offer.split(",") if s.strip()]
    log_path = os.path.join(d, "log.jsonl")
    log_lock = threading.Lock()

    def log(entry):
        with log_lock, open(log_path, "a") as f:
            f.write(json.dumps(entry) + "\n")

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self):
            super().setup()
            self.ctx = None
            self.ctx_kind = None
            self.user = None

        def log_message(self, *a):
            pass

        def do_GET(self):
            self.guarded()

        def do_POST(self):
            self.guarded()

        def guarded(self):
            try:
                self.serve()
            except Exception:  # a fixture bug: in the log, not just on stderr
                import traceback
                log({"connection": self.client_address[1], "outcome": "crash", "error": traceback.format_exc()})
                raise

        def reply(self, status, body, headers=()):
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Type", "text/xml; charset=utf-8" if status == 200 else "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def challenge(self, entry, error=None, token=None, scheme="Negotiate"):
            entry["outcome"] = "challenge" if error is None else "refused"
            if error:
                entry["error"] = error
            if error and token:
                entry["errorToken"] = True
            log(entry)
            headers = [("WWW-Authenticate", "%s %s" % (scheme, base64.b64encode(token).decode()))] if token else \
                [("WWW-Authenticate", s) for s in offer]
            self.reply(401, b"<html>401 Unauthorized</html>", headers)

        def answer(self, headers=()):
            """What an authenticated request gets, by path (an Exchange CAS's virtual directories)."""
            path = self.path.split("?")[0].lower()
            if path == "/autodiscover/autodiscover.xml" and self.command == "POST":
                return self.reply(200, autodiscover_answer(self.body, args.host), headers)
            if path.startswith("/oab/") and path.endswith("/oab.xml") and self.command == "GET":
                return self.reply(200, OAB_XML, headers)
            return self.reply(200, GETFOLDER_OK, headers)

        def serve(self):
            length = int(self.headers.get("Content-Length") or 0)
            self.body = self.rfile.read(length) if length else b""
            entry = {"connection": self.client_address[1], "host": (self.headers.get("Host") or "").split(":")[0],
                     "method": self.command, "path": self.path, "bodyBytes": len(self.body)}
            header = self.headers.get("Authorization") or ""
            scheme, _, value = header.partition(" ")
            entry["scheme"] = scheme
            if self.user and not header:
                entry["outcome"] = "ok"
                entry["user"] = self.user
                log(entry)
                return self.answer()
            if scheme.lower() not in [s.lower() for s in offer] or not value:
                return self.challenge(entry)
            try:
                raw = base64.b64decode(value.strip(), validate=True)
            except ValueError:
                return self.challenge(entry, "token is not base64")
            kind = token_kind(raw)
            entry["token"] = kind
            ntlm = kind.startswith("ntlm")
            if ntlm and args.no_ntlm:
                return self.challenge(entry, "NTLM is disabled on this acceptor")
            if kind == "kerberos":
                return self.kerberos(entry, raw, scheme)
            if kind in ("ntlm-negotiate", "spnego") or self.ctx is None:
                protocol = "ntlm" if ntlm else "negotiate"
                self.ctx = spnego.server(hostname=args.host, service="HTTP", protocol=protocol,
                                         channel_bindings=bindings if (args.require_cbt or not ntlm) else None)
                self.ctx_kind = protocol
                self.user = None
            try:
                out = self.ctx.step(raw)
            except Exception as e:  # pyspnego / GSSAPI decided: bad password, bindings, skew...
                self.ctx = None
                return self.challenge(entry, "%s: %s" % (type(e).__name__, e))
            if not self.ctx.complete:
                return self.challenge(entry, token=out, scheme=scheme)
            self.user = self.ctx.client_principal
            entry.update(outcome="ok", user=self.user, protocol=self.ctx_kind)
            if ntlm:
                entry["cbt"] = args.require_cbt  # pyspnego checked MsvAvChannelBindings when required
            log(entry)
            self.ctx = None
            headers = [("WWW-Authenticate", "%s %s" % (scheme, base64.b64encode(out).decode()))] if out else []
            self.answer(headers)

    def kerberos(self, entry, raw, scheme):
        """A raw Kerberos AP-REQ, checked by MIT through python-gssapi directly, so that a
        failure's KRB-ERROR token (KRB_AP_ERR_SKEW, ...) goes back to the client as Windows does."""
        import gssapi
        import gssapi.raw
        context = gssapi.SecurityContext(
            creds=gssapi.Credentials(usage="accept"), usage="accept",
            channel_bindings=gssapi.raw.ChannelBindings(application_data=b"tls-server-end-point:" + cert_hash))
        out = None
        try:
            # python-gssapi returns a failed step's error token and raises on the next access.
            out = context.step(raw)
            complete = context.complete
        except gssapi.exceptions.GSSError as e:
            return self.challenge(entry, "GSSError: %s" % e.gen_message(), token=out or getattr(e, "token", None),
                                  scheme=scheme)
        if not complete:
            return self.challenge(entry, "Kerberos needs no second leg", scheme=scheme)
        self.user = str(context.initiator_name)
        entry.update(outcome="ok", user=self.user, protocol="kerberos")
        log(entry)
        headers = [("WWW-Authenticate", "%s %s" % (scheme, base64.b64encode(out).decode()))] if out else []
        self.answer(headers)

    Handler.kerberos = kerberos
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    open(log_path, "a").close()
    print(json.dumps({"httpsPort": server.server_address[1], "caFile": ca_file,
                      "certSha256": cert_hash.hex(), "log": log_path}), flush=True)
    wait_for_stdin_close()
    server.shutdown()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="role", required=True)
    realm = sub.add_parser("realm")
    realm.add_argument("--dir", required=True)
    realm.add_argument("--service-host", action="append", default=None)
    realm.add_argument("--remove-on-exit", action="store_true", help="delete DIR (database, keytab) when stdin closes")
    acceptor = sub.add_parser("acceptor")
    acceptor.add_argument("--dir", required=True)
    acceptor.add_argument("--keytab", required=True)
    acceptor.add_argument("--krb5-config", required=True)
    acceptor.add_argument("--host", default="mail.contoso.test")
    acceptor.add_argument("--alias", action="append", default=[], help="another name on the certificate")
    acceptor.add_argument("--offer", default="Negotiate,NTLM")
    acceptor.add_argument("--require-cbt", action="store_true")
    acceptor.add_argument("--no-ntlm", action="store_true")
    acceptor.add_argument("--ntlm-user", action="append", default=[])
    args = parser.parse_args()
    if args.role == "realm":
        args.service_host = args.service_host or ["mail.contoso.test", "autodiscover.contoso.test"]
        run_realm(args)
    else:
        run_acceptor(args)


if __name__ == "__main__":
    main()
