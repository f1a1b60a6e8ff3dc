#!/usr/bin/env python3
"""A fake on-premises Exchange for syncwizard's tests: Autodiscover (POX), EWS GetFolder, OAB.

    python3 fake_exchange.py --config CONFIG.json --log LOG.jsonl --workdir DIR

Starts on 127.0.0.1, each on an ephemeral port:
  * one HTTPS listener serving every configured host, certificate chosen per SNI name
    (trustme CA in DIR/ca.pem; hosts marked "untrusted" get a leaf from DIR/untrusted-ca.pem);
  * one plain-HTTP listener (the unauthenticated redirect step, host chosen by the Host header);
  * one UDP DNS server answering SRV (and A) queries from the config.
NTLM is checked by pyspnego's acceptor (NTLM_USER_FILE built from the config's "users").

When ready it prints ONE JSON line on stdout, then serves until stdin reaches EOF (or it is
killed). Every request, TLS connection and DNS query is appended to LOG as a JSON line, written
before the answer's first byte is sent. Neither the log nor stdout/stderr ever carry an
Authorization value, a password or a request body. See README.md for the formats.

Needs: pip install trustme pyspnego
"""

import argparse
import base64
import hashlib
import http.server
import itertools
import json
import os
import select
import socket
import socketserver
import ssl
import struct
import sys
import threading
import time
import urllib.parse
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta, timezone
from xml.sax.saxutils import escape

import spnego
import spnego._ntlm
import trustme
from spnego._ntlm_raw.messages import AvId, Challenge, FileTime, NegotiateFlags, TargetInfo

# ---------------------------------------------------------------------------------------------
# Constants

NS_AD_REQUEST = "http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"
NS_AD_RESPONSE = "http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006"
NS_AD_OUTLOOK = "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"
NS_SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
NS_SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
NS_T = "http://schemas.microsoft.com/exchange/services/2006/types"
NS_M = "http://schemas.microsoft.com/exchange/services/2006/messages"
NS_E = "http://schemas.microsoft.com/exchange/services/2006/errors"

AUTODISCOVER_PATH = "/autodiscover/autodiscover.xml"
DEFAULT_EWS_PATH = "/EWS/Exchange.asmx"
MAX_REQUEST_BODY = 16 << 20

# RequestServerVersion values Exchange accepts (ExchangeVersionType); anything else is a fault.
ACCEPTED_VERSIONS = [
    "Exchange2007", "Exchange2007_SP1", "Exchange2010", "Exchange2010_SP1", "Exchange2010_SP2",
    "Exchange2013", "Exchange2013_SP1", "Exchange2015", "Exchange2016",
    "V2015_10_05", "V2016_01_06", "V2016_04_13", "V2016_07_13", "V2016_10_10",
    "V2017_01_07", "V2017_04_14", "V2017_07_11", "V2017_10_09", "V2018_01_08",
]

DEFAULT_SERVER_VERSION = {
    "MajorVersion": 15, "MinorVersion": 1, "MajorBuildNumber": 2507,
    "MinorBuildNumber": 6, "Version": "V2017_07_11",
}

EWS_MESSAGES = {
    "ErrorNonExistentMailbox": "The SMTP address has no mailbox associated with it.",
    "ErrorImpersonateUserDenied": "The account does not have permission to impersonate the requested user.",
    "ErrorImpersonationDenied": "The account does not have permission to impersonate.",
    "ErrorImpersonationFailed": "Impersonation failed.",
    "ErrorAccessDenied": "Access is denied. Check credentials and try again.",
    "ErrorFolderNotFound": "The specified folder could not be found in the store.",
    "ErrorInvalidServerVersion": "The specified server version is invalid.",
    "ErrorSchemaValidation": "The request failed schema validation.",
    "ErrorInvalidRequest": "The request is invalid.",
    "ErrorServerBusy": "The server cannot service this request right now. Try again later.",
    "ErrorMailboxStoreUnavailable": "The mailbox database is temporarily unavailable.",
    "ErrorInternalServerError": "An internal server error occurred. The operation failed.",
}

AUTODISCOVER_MESSAGES = {
    500: "The e-mail address cannot be found.",
    501: "The directory service could not be reached.",
    600: "Invalid Request",
    601: "The requested schema version is not supported.",
    602: "The e-mail address is not valid.",
    603: "An internal server error occurred.",
}

HOST_KEYS = {
    "behaviour", "untrusted", "expired", "certificateName", "delayMs", "auth", "offerNegotiate",
    "offerNTLM", "ntlmDomain", "status", "reset", "redirect", "oversizeBytes", "oversizeChunked",
    "invalidXml", "autodiscover", "ews", "oab",
}
HTTP_HOST_KEYS = {"behaviour", "delayMs", "auth", "offerNegotiate", "offerNTLM", "ntlmDomain", "status",
                  "reset", "redirect", "oversizeBytes", "oversizeChunked", "invalidXml", "autodiscover",
                  "ews", "oab"}
NTLM_DOMAIN_KEYS = {"netbios", "dns", "forest", "computer"}
BEHAVIOURS = {"normal", "hang", "hangAfterHandshake"}


def fail(message):
    sys.stderr.write("fake_exchange: %s\n" % message)
    sys.stderr.flush()
    sys.exit(2)


# ---------------------------------------------------------------------------------------------
# Request log


class Log:
    def __init__(self, path):
        self._file = open(path, "a", encoding="utf-8")
        self._lock = threading.Lock()

    def write(self, entry):
        line = json.dumps({"t": round(time.time(), 3), **entry}, separators=(",", ":"))
        with self._lock:
            self._file.write(line + "\n")
            self._file.flush()


# ---------------------------------------------------------------------------------------------
# Configuration


class Config:
    def __init__(self, raw):
        if not isinstance(raw, dict):
            fail("config must be a JSON object")
        unknown = set(raw) - {"hosts", "httpHosts", "srv", "users"}
        if unknown:
            fail("unknown top-level config keys: %s" % sorted(unknown))
        self.hosts = self._hosts(raw.get("hosts", {}), HOST_KEYS, "hosts")
        self.http_hosts = self._hosts(raw.get("httpHosts", {}), HTTP_HOST_KEYS, "httpHosts")
        self.srv = {}
        for name, value in (raw.get("srv") or {}).items():
            if not isinstance(value, (list, dict)):
                fail("srv %r: expected a list of records or an object" % name)
            self.srv[norm(name)] = value
        self.users = []
        for line in raw.get("users", []):
            parts = line.split(":") if isinstance(line, str) else []
            if len(parts) != 3 or not parts[1]:
                fail("users entries are 'DOMAIN:USER:PASSWORD' (no ':' in any part; DOMAIN may be empty)")
            self.users.append(tuple(parts))

    @staticmethod
    def _hosts(table, allowed, label):
        if not isinstance(table, dict):
            fail("%s must be an object" % label)
        out = {}
        for name, spec in table.items():
            if not isinstance(spec, dict):
                fail("%s[%r] must be an object" % (label, name))
            unknown = set(spec) - allowed
            if unknown:
                fail("%s[%r]: unknown keys %s" % (label, name, sorted(unknown)))
            if spec.get("behaviour", "normal") not in BEHAVIOURS:
                fail("%s[%r]: behaviour must be one of %s" % (label, name, sorted(BEHAVIOURS)))
            if spec.get("auth", "ntlm") not in ("ntlm", "basic", "none"):
                fail("%s[%r]: auth must be ntlm, basic or none" % (label, name))
            where = "%s[%r]" % (label, name)
            nd = spec.get("ntlmDomain")
            if nd is not None and not (isinstance(nd, dict) and set(nd) <= NTLM_DOMAIN_KEYS
                                       and all(isinstance(v, str) and v for v in nd.values())):
                fail(where + '.ntlmDomain is {"netbios": "CONTOSO", "dns": "corp.contoso.com", '
                     '"forest": "contoso.com", "computer": "EXCH01"} (non-empty strings, all optional)')
            if "autodiscover" in spec:
                check_autodiscover(spec["autodiscover"], where + ".autodiscover")
            if "ews" in spec:
                ews = spec["ews"]
                if not isinstance(ews, dict):
                    fail(where + ".ews must be an object")
                for result in [ews.get("result", "success")] + list((ews.get("byMailbox") or {}).values()):
                    check_ews_result(result, where + ".ews")
            if "oab" in spec and not (isinstance(spec["oab"], dict) and spec["oab"].get("path")):
                fail(where + ".oab needs a path, e.g. /OAB/abc/oab.xml")
            out[norm(name)] = spec
        return out

    def address_names(self):
        """Names with an A record (127.0.0.1): every configured host and every SRV target."""
        names = set(self.hosts) | set(self.http_hosts)
        for records in self.srv.values():
            if isinstance(records, list):
                names |= {norm(r.get("target", "")) for r in records}
        return names


def check_autodiscover(config, where):
    if not isinstance(config, dict):
        fail(where + " must be an object")
    mailboxes = config.get("mailboxes")
    if mailboxes is not None and not (isinstance(mailboxes, dict) and all(
            isinstance(a, list) and all(isinstance(x, str) for x in a) for a in mailboxes.values())):
        fail(where + '.mailboxes must be {"primary@domain": ["alias@domain", ...]}')
    for address, answer in [(None, config)] + list((config.get("byAddress") or {}).items()):
        at = where if address is None else "%s.byAddress[%r]" % (where, address)
        action = answer.get("action", "settings") if isinstance(answer, dict) else None
        required = {"settings": None, "redirectAddr": "redirectAddr", "redirectUrl": "redirectUrl", "error": None}
        if action not in required:
            fail(at + ": action must be settings, redirectAddr, redirectUrl or error")
        if required[action] and not answer.get(required[action]):
            fail("%s: action %s needs %r" % (at, action, required[action]))


def check_ews_result(result, where):
    ok = isinstance(result, str) and (
        result == "success" or result.startswith("Error")
        or (result.startswith("soapFault:") and len(result) > 10)
        or (result.startswith("status:") and result[7:].isdigit()))
    if not ok:
        fail("%s: result %r is not success, Error…, soapFault:Error… or status:NNN" % (where, result))


def norm(name):
    return (name or "").strip().rstrip(".").lower()


# ---------------------------------------------------------------------------------------------
# TLS: one listener, certificate per SNI name


class TLS:
    def __init__(self, config, workdir, log):
        self.log = log
        self.config = config
        self.ca = trustme.CA(organization_name="syncwizard fake Exchange CA")
        self.untrusted_ca = trustme.CA(organization_name="syncwizard untrusted CA")
        self.ca_file = os.path.join(workdir, "ca.pem")
        self.untrusted_ca_file = os.path.join(workdir, "untrusted-ca.pem")
        self.ca.cert_pem.write_to_path(self.ca_file)
        self.untrusted_ca.cert_pem.write_to_path(self.untrusted_ca_file)
        self.lock = threading.Lock()
        self.contexts = {}
        self.fingerprints = {}
        for host, spec in config.hosts.items():
            self.contexts[host] = self._context(host, spec)
        # Used until the SNI callback picks a host (and for clients that send no SNI).
        self.base = self._context("no-sni.invalid", {})
        self.base.sni_callback = self._on_sni
        self.local = threading.local()

    def _context(self, host, spec):
        ca = self.untrusted_ca if spec.get("untrusted") else self.ca
        name = spec.get("certificateName", host)
        kwargs = {}
        if spec.get("expired"):
            now = datetime.now(timezone.utc)
            kwargs = {"not_before": now - timedelta(days=30), "not_after": now - timedelta(days=1)}
        leaf = ca.issue_cert(name, common_name=name, **kwargs)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.set_alpn_protocols(["http/1.1"])
        leaf.configure_cert(context)
        der = ssl.PEM_cert_to_DER_cert(leaf.cert_chain_pems[0].bytes().decode())
        self.fingerprints[host] = hashlib.sha256(der).hexdigest()
        return context

    def context_for(self, name):
        with self.lock:
            if name not in self.contexts:
                # An unconfigured name still gets a trusted certificate so that what the client
                # sends there shows up in the log (every request answers 404).
                self.contexts[name] = self._context(name, {})
            return self.contexts[name]

    def _on_sni(self, sock, server_name, _context):
        name = norm(server_name)
        self.local.sni = name or None
        if not name:
            return None
        spec = self.config.hosts.get(name, {})
        if spec.get("behaviour") == "hang":
            self.local.hung = True
            self.log.write({"kind": "connection", "listener": "https", "connection": self.local.conn_id,
                            "host": name, "outcome": "hang", "error": None})
            stall_until_peer_closes(sock)
            return ssl.ALERT_DESCRIPTION_HANDSHAKE_FAILURE
        sock.context = self.context_for(name)
        return None


def stall_until_peer_closes(sock, limit=3600):
    """Blocks (inside the TLS handshake) until the client gives up and closes the connection."""
    deadline = time.monotonic() + limit
    fd = sock.fileno()
    poller = select.poll()  # not select(): descriptors may exceed FD_SETSIZE under load
    poller.register(fd, select.POLLIN | select.POLLHUP | select.POLLERR)
    while time.monotonic() < deadline:
        if not poller.poll(500):
            continue
        peek = socket.socket(fileno=os.dup(fd))
        try:
            if peek.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b"":
                return
        except BlockingIOError:
            pass
        except OSError:
            return
        finally:
            peek.close()
        time.sleep(0.5)  # the client sent something more; keep ignoring it


def reset_connection(sock):
    """Closes with SO_LINGER 0 so the kernel sends RST instead of FIN."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


# ---------------------------------------------------------------------------------------------
# HTTP servers


class Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256  # parallel connects must not overflow the backlog

    def __init__(self, app, listener, tls):
        self.app = app
        self.listener = listener
        self.tls = tls
        self.conn_ids = itertools.count(1)
        self.conn_lock = threading.Lock()
        # SYNCWIZARD_FAKE_BIND: another local address (Benchmarks/wan binds a namespace's own).
        super().__init__((os.environ.get("SYNCWIZARD_FAKE_BIND", "127.0.0.1"), 0), Handler)

    def finish_request(self, request, client_address):
        # Runs in the connection's own thread, TLS handshake included, so a stalled handshake
        # never blocks the accept loop.
        with self.conn_lock:
            conn_id = next(self.conn_ids)
        try:  # answers go out as headers + body writes: without this, Nagle adds 40 ms per leg
            request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        state = self.app.thread_state
        state.conn_id = conn_id
        state.sni = None
        if self.tls is not None:
            self.tls.local.conn_id = conn_id
            self.tls.local.sni = None
            self.tls.local.hung = False
            request = self.tls.base.wrap_socket(request, server_side=True, do_handshake_on_connect=False)
            request.settimeout(30)
            try:
                request.do_handshake()
            except (OSError, ssl.SSLError) as error:
                if not self.tls.local.hung:
                    reason = getattr(error, "reason", None) or type(error).__name__
                    self.app.log.write({"kind": "connection", "listener": "https", "connection": conn_id,
                                        "host": self.tls.local.sni, "outcome": "handshakeFailed",
                                        "error": str(reason)})
                try:
                    request.close()
                except OSError:
                    pass
                return
            state.sni = self.tls.local.sni
            self.app.log.write({"kind": "connection", "listener": "https", "connection": conn_id,
                                "host": state.sni, "outcome": "handshake", "error": None})
        self.RequestHandlerClass(request, client_address, self)

    def shutdown_request(self, request):
        try:
            super().shutdown_request(request)
        except OSError:
            pass

    def handle_error(self, request, client_address):
        pass  # clients that abort on purpose are the point of these tests


# ---------------------------------------------------------------------------------------------
# A domain member server's NTLM challenge
#
# pyspnego's acceptor answers a NEGOTIATE with a standalone server's CHALLENGE (TargetName = its
# host name, NTLMSSP_TARGET_TYPE_SERVER, MsvAvNbDomainName "WORKSTATION", no DNS domain). IIS on a
# domain member ([MS-NLMP] §2.2.1.2, §3.2.5.1.1) answers with TargetName = the NetBIOS domain,
# NTLMSSP_TARGET_TYPE_DOMAIN and the AV pairs ([MS-NLMP] §2.2.2.1) MsvAvNbComputerName,
# MsvAvNbDomainName, MsvAvDnsComputerName, MsvAvDnsDomainName, MsvAvDnsTreeName, MsvAvTimestamp, in
# that order. The wrapper below rebuilds pyspnego's challenge that way and stores it back as the
# acceptor's own (_temp_challenge): AUTHENTICATE verification takes the server challenge from it
# and the MIC covers its packed bytes, so pyspnego still checks the client against exactly what
# was sent (the client's NTLMv2 response echoes this TargetInfo, which is what it proves).

_NTLM_DOMAIN = threading.local()  # the domain of the host whose handshake runs on this thread
_pyspnego_accept_negotiate = spnego._ntlm.NTLMProxy._step_accept_negotiate


def ntlm_domain(spec, host):
    """The host's ntlmDomain, defaults from its name: mail.contoso.test -> CONTOSO,
    contoso.test (DNS domain and forest), computer MAIL."""
    labels = (host or "exchange.contoso.test").split(".")
    dns = ".".join(labels[1:]) if len(labels) > 2 else ".".join(labels)
    d = {"netbios": dns.split(".")[0].upper()[:15], "dns": dns, "forest": dns, "computer": labels[0].upper()[:15]}
    d.update(spec.get("ntlmDomain") or {})
    return d


def _member_server_challenge(self, token):
    standard = Challenge.unpack(_pyspnego_accept_negotiate(self, token))
    domain = getattr(_NTLM_DOMAIN, "current", None)
    if domain is None:
        return standard.pack()
    computer = domain["computer"]
    info = TargetInfo()
    info[AvId.nb_computer_name] = computer
    info[AvId.nb_domain_name] = domain["netbios"]
    info[AvId.dns_computer_name] = "%s.%s" % (computer.lower(), domain["dns"])
    info[AvId.dns_domain_name] = domain["dns"]
    info[AvId.dns_tree_name] = domain["forest"]
    info[AvId.timestamp] = FileTime.now()
    flags = (standard.flags & ~NegotiateFlags.target_type_server) | NegotiateFlags.target_type_domain
    kwargs = {"version": standard.version} if flags & NegotiateFlags.version else {}
    challenge = Challenge(flags, standard.server_challenge, target_name=domain["netbios"], target_info=info, **kwargs)
    self._temp_challenge = challenge
    return challenge.pack()


spnego._ntlm.NTLMProxy._step_accept_negotiate = _member_server_challenge


def ntlm_message_type(raw):
    """1 (NEGOTIATE), 3 (AUTHENTICATE)... of a raw or SPNEGO-wrapped NTLM token, for the log."""
    at = raw.find(b"NTLMSSP\x00")
    if at < 0 or len(raw) < at + 12:
        return None
    return {1: "negotiate", 2: "challenge", 3: "authenticate"}.get(struct.unpack("<I", raw[at + 8:at + 12])[0], "other")


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "Microsoft-IIS/10.0"
    sys_version = ""
    timeout = 120  # idle keep-alive connections

    def setup(self):
        super().setup()
        state = self.server.app.thread_state
        self.conn_id = state.conn_id
        self.sni = state.sni
        self.auth_ctx = None        # pyspnego acceptor of the handshake in progress
        self.auth_ctx_scheme = None
        self.conn_user = None       # set once NTLM/Negotiate completed: authenticates the connection
        self.reset_done = False

    def log_message(self, *args):
        pass  # never echo requests (they carry Authorization headers)

    def log_error(self, *args):
        pass

    # -- plumbing ------------------------------------------------------------------------------

    def read_body(self):
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks, total = [], 0
            while True:
                line = self.rfile.readline(1024)
                if not line:
                    return None
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                total += size
                if total > MAX_REQUEST_BODY:
                    return None
                chunks.append(self.rfile.read(size))
                self.rfile.readline(8)
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_REQUEST_BODY:
            return None
        return self.rfile.read(length) if length else b""

    def answer(self, entry, status, body=b"", content_type="text/html; charset=utf-8", headers=()):
        entry["status"] = status
        self.server.app.log.write(entry)  # before the first byte of the answer
        self.send_response(status)
        for name, value in list(headers) + self.pending_headers:
            self.send_header(name, value)
        if body or status not in (204, 304):
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        return False

    def xml(self, entry, status, text, headers=()):
        return self.answer(entry, status, text.encode("utf-8"), "text/xml; charset=utf-8", headers)

    def wait_for_client_close(self):
        try:
            while self.connection.recv(65536):
                pass
        except OSError:
            pass
        self.close_connection = True

    def reset(self):
        # rfile holds a reference on the socket; with it closed, close() really closes the fd.
        try:
            self.rfile.close()
        except OSError:
            pass
        reset_connection(self.connection)
        self.close_connection = True

    # -- dispatch ------------------------------------------------------------------------------

    def dispatch(self):
        app = self.server.app
        listener = self.server.listener
        host_header = (self.headers.get("Host") or "").strip()
        header_name = norm(host_header.rsplit(":", 1)[0] if not host_header.startswith("[") else host_header)
        name = self.sni if listener == "https" else header_name
        table = app.config.hosts if listener == "https" else app.config.http_hosts
        spec = table.get(name) if name else None
        authorization = self.headers.get("Authorization")
        scheme = authorization.split(" ", 1)[0] if authorization else None
        entry = {
            "kind": "request", "listener": listener, "connection": self.conn_id,
            "host": name, "hostHeader": host_header or None,
            "method": self.command, "path": self.path,
            "authScheme": canonical_scheme(scheme), "ntlmMessage": None, "authenticatedUser": None,
            "status": None, "outcome": "answered",
            "impersonating": None, "anchorMailbox": self.headers.get("X-AnchorMailbox"),
            "serverVersion": None, "impersonationIdType": None, "operation": None,
            "folder": None, "mailbox": None, "emailAddress": None,
        }
        self.pending_headers = []  # e.g. the final Negotiate token, sent with the answer
        body = self.read_body()
        if body is None:
            self.close_connection = True
            return self.answer(entry, 413, b"request body too large or malformed")
        if spec is None:
            return self.answer(entry, 404, b"<html><body>404 - File or directory not found.</body></html>")

        if spec.get("delayMs"):
            time.sleep(spec["delayMs"] / 1000)
        if spec.get("behaviour") in ("hang", "hangAfterHandshake"):
            entry["outcome"] = "hang"
            app.log.write(entry)
            return self.wait_for_client_close()
        if spec.get("reset"):
            entry["outcome"] = "reset"
            app.log.write(entry)
            return self.reset()
        if spec.get("status"):
            return self.answer(entry, int(spec["status"]),
                               ("<html><body>HTTP %d</body></html>" % int(spec["status"])).encode())
        if spec.get("redirect"):
            return self.answer(entry, 302, b"", headers=[("Location", spec["redirect"])])

        default_auth = "ntlm" if listener == "https" else "none"
        mode = spec.get("auth", default_auth)
        if mode != "none" and not self.authenticate(mode, spec, entry, name):
            return

        if spec.get("oversizeBytes"):
            return self.stream_oversize(entry, int(spec["oversizeBytes"]), bool(spec.get("oversizeChunked")))
        if spec.get("invalidXml"):
            return self.xml(entry, 200, INVALID_XML)

        path = urllib.parse.urlsplit(self.path).path.lower()
        if path == AUTODISCOVER_PATH and "autodiscover" in spec:
            return self.autodiscover(entry, spec["autodiscover"], body)
        ews = spec.get("ews")
        if ews is not None and path == ews.get("path", DEFAULT_EWS_PATH).lower():
            return self.ews(entry, ews, body)
        oab = spec.get("oab")
        if oab is not None and path == oab.get("path", "").lower():
            return self.oab(entry, oab)
        return self.answer(entry, 404, b"<html><body>404 - File or directory not found.</body></html>")

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = dispatch

    # -- authentication ------------------------------------------------------------------------

    def challenge(self, entry, spec, mode, host):
        self.auth_ctx = None
        self.conn_user = None
        if mode == "basic":
            headers = [("WWW-Authenticate", 'Basic realm="%s"' % host)]
        else:
            headers = [("WWW-Authenticate", "NTLM")] if spec.get("offerNTLM", True) else []
            if spec.get("offerNegotiate", True):
                headers.insert(0, ("WWW-Authenticate", "Negotiate"))
        return self.answer(entry, 401, UNAUTHORIZED_HTML, headers=headers)

    def authenticate(self, mode, spec, entry, host):
        """True when the request may proceed; otherwise a 401 has been sent."""
        authorization = self.headers.get("Authorization")
        if not authorization:
            if mode == "ntlm" and self.conn_user:
                entry["authenticatedUser"] = self.conn_user
                return True
            return self.challenge(entry, spec, mode, host)
        scheme, _, token = authorization.strip().partition(" ")
        scheme = scheme.lower()
        offers = (["ntlm"] if spec.get("offerNTLM", True) else []) + (["negotiate"] if spec.get("offerNegotiate", True) else [])
        if mode == "ntlm" and scheme in offers:
            return self.step_ntlm(entry, spec, host, scheme, token.strip())
        if mode == "basic" and scheme == "basic":
            user = self.check_basic(token.strip())
            if user:
                entry["authenticatedUser"] = user
                return True
        return self.challenge(entry, spec, mode, host)

    def step_ntlm(self, entry, spec, host, scheme, token):
        try:
            raw = base64.b64decode(token, validate=True)
        except ValueError:
            raw = b""
        if not raw:
            return self.challenge(entry, spec, "ntlm", host)
        entry["ntlmMessage"] = ntlm_message_type(raw)
        starts = (raw.startswith(b"NTLMSSP\x00") and raw[8:12] == b"\x01\x00\x00\x00") or raw[:1] == b"\x60"
        if starts or self.auth_ctx is None or self.auth_ctx_scheme != scheme:
            # A type-1 message (or SPNEGO init token) starts a new context, also on a connection
            # that was already authenticated.
            self.conn_user = None
            self.auth_ctx_scheme = scheme
            self.auth_ctx = spnego.server(hostname=host, service="HTTP",
                                          protocol="ntlm" if scheme == "ntlm" else "negotiate")
        _NTLM_DOMAIN.current = ntlm_domain(spec, host)
        try:
            out = self.auth_ctx.step(raw)
        except Exception:  # pyspnego decided: wrong password, unknown user, wrong domain...
            return self.challenge(entry, spec, "ntlm", host)
        label = "NTLM" if scheme == "ntlm" else "Negotiate"
        if self.auth_ctx.complete:
            self.conn_user = self.auth_ctx.client_principal
            entry["authenticatedUser"] = self.conn_user
            self.auth_ctx = None
            if out and scheme == "negotiate":
                self.pending_headers += [("WWW-Authenticate", "%s %s" % (label, base64.b64encode(out).decode()))]
            return True
        if not out:
            return self.challenge(entry, spec, "ntlm", host)
        return self.answer(entry, 401, UNAUTHORIZED_HTML,
                           headers=[("WWW-Authenticate", "%s %s" % (label, base64.b64encode(out).decode()))])

    def check_basic(self, token):
        """Same matching rules as pyspnego's NTLM_USER_FILE lookup: 'DOMAIN\\user' matches the
        line DOMAIN:user:…, a name without a backslash (including a UPN) matches only lines
        with an empty domain; domain and user are case-insensitive, the password is not."""
        try:
            login, _, password = base64.b64decode(token, validate=True).decode("utf-8").partition(":")
        except (ValueError, UnicodeDecodeError):
            return None
        domain, _, user = login.rpartition("\\")
        for line_domain, line_user, line_password in self.server.app.config.users:
            if (line_domain.upper() == domain.upper() and line_user.upper() == user.upper()
                    and line_password == password):
                return "%s\\%s" % (domain, user) if domain else user
        return None

    # -- answers -------------------------------------------------------------------------------

    def stream_oversize(self, entry, size, chunked):
        entry["status"] = 200
        self.server.app.log.write(entry)
        self.send_response(200)
        for name, value in self.pending_headers:
            self.send_header(name, value)
        self.send_header("Content-Type", "text/xml; charset=utf-8")
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(size))
        self.end_headers()
        head = ('<?xml version="1.0" encoding="utf-8"?><Autodiscover xmlns="%s"><!--' % NS_AD_RESPONSE).encode()
        block = b" " * 65536
        sent = 0
        try:
            while sent < size:
                piece = (head if sent == 0 else block)[: size - sent]
                if chunked:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                else:
                    self.wfile.write(piece)
                sent += len(piece)
            if chunked:
                self.wfile.write(b"0\r\n\r\n")
        except OSError:
            self.close_connection = True

    def autodiscover(self, entry, config, body):
        if self.command != "POST":
            return self.xml(entry, 200, autodiscover_error(600, None, outlook=False))
        try:
            root = ET.fromstring(body)
        except ET.ParseError:
            return self.xml(entry, 200, autodiscover_error(600, None, outlook=False))
        email = (root.findtext("{%s}Request/{%s}EMailAddress" % (NS_AD_REQUEST, NS_AD_REQUEST)) or "").strip()
        legacy_dn = (root.findtext("{%s}Request/{%s}LegacyDN" % (NS_AD_REQUEST, NS_AD_REQUEST)) or "").strip()
        schema = (root.findtext("{%s}Request/{%s}AcceptableResponseSchema" % (NS_AD_REQUEST, NS_AD_REQUEST)) or "").strip()
        entry["emailAddress"] = email or legacy_dn or None
        if root.tag != "{%s}Autodiscover" % NS_AD_REQUEST or not (email or legacy_dn):
            return self.xml(entry, 200, autodiscover_error(600, None, outlook=False))
        if schema != NS_AD_OUTLOOK:
            return self.xml(entry, 200, autodiscover_error(601, None, outlook=False))
        by_address = {k.lower(): v for k, v in (config.get("byAddress") or {}).items()}
        action = by_address.get(email.lower()) or mailbox_answer(config, email) or config
        return self.xml(entry, 200, autodiscover_response(action, email or legacy_dn))

    def ews(self, entry, config, body):
        if self.command != "POST":
            return self.answer(entry, 405, b"", headers=[("Allow", "POST")])
        try:
            root = ET.fromstring(body)
        except ET.ParseError:
            return self.xml(entry, 500, soap_fault("ErrorSchemaValidation"))
        soap = NS_SOAP12 if root.tag == "{%s}Envelope" % NS_SOAP12 else NS_SOAP11
        header = root.find("{%s}Header" % soap)
        soap_body = root.find("{%s}Body" % soap)
        mailbox = None
        folder = None
        if header is not None:
            version = header.find("{%s}RequestServerVersion" % NS_T)
            if version is not None:
                entry["serverVersion"] = version.get("Version")
            sid = header.find("{%s}ExchangeImpersonation/{%s}ConnectingSID" % (NS_T, NS_T))
            if sid is not None and len(sid):
                entry["impersonating"] = (sid[0].text or "").strip()
                entry["impersonationIdType"] = sid[0].tag.split("}")[-1]
        if soap_body is not None and len(soap_body):
            entry["operation"] = soap_body[0].tag.split("}")[-1]
            distinguished = soap_body.find(".//{%s}DistinguishedFolderId" % NS_T)
            if distinguished is not None:
                folder = distinguished.get("Id")
                mailbox = distinguished.findtext("{%s}Mailbox/{%s}EmailAddress" % (NS_T, NS_T))
        entry["folder"] = folder
        entry["mailbox"] = mailbox
        if root.tag != "{%s}Envelope" % soap or soap_body is None:
            return self.xml(entry, 500, soap_fault("ErrorSchemaValidation"))
        accepted = config.get("acceptedVersions", ACCEPTED_VERSIONS)
        if entry["serverVersion"] is not None and entry["serverVersion"] not in accepted:
            return self.xml(entry, 500, soap_fault("ErrorInvalidServerVersion"))
        if entry["operation"] != "GetFolder":
            return self.xml(entry, 500, soap_fault("ErrorInvalidRequest",
                                                   "The fake Exchange server implements GetFolder only."))
        by_mailbox = {k.lower(): v for k, v in (config.get("byMailbox") or {}).items()}
        key = (entry["impersonating"] or mailbox or "").lower()
        result = by_mailbox.get(key, config.get("result", "success"))
        version_info = config.get("serverVersionInfo", DEFAULT_SERVER_VERSION)
        if result == "success":
            return self.xml(entry, 200, ews_success(folder or "calendar", version_info))
        if result.startswith("status:"):
            status = int(result.split(":", 1)[1])
            return self.answer(entry, status, ("<html><body>HTTP %d</body></html>" % status).encode())
        if result.startswith("soapFault:"):
            return self.xml(entry, 500, soap_fault(result.split(":", 1)[1]))
        return self.xml(entry, 200, ews_error(result, version_info))

    def oab(self, entry, config):
        status = int(config.get("status", 200))
        if self.command not in ("GET", "HEAD"):
            return self.answer(entry, 405, b"", headers=[("Allow", "GET")])
        if status != 200:
            return self.answer(entry, status, ("<html><body>HTTP %d</body></html>" % status).encode())
        return self.xml(entry, 200, INVALID_XML if config.get("invalidXml") else OAB_XML)


def canonical_scheme(scheme):
    if not scheme:
        return None
    known = {"ntlm": "NTLM", "negotiate": "Negotiate", "basic": "Basic", "bearer": "Bearer", "digest": "Digest"}
    return known.get(scheme.lower(), scheme[:32])


# ---------------------------------------------------------------------------------------------
# Response bodies

UNAUTHORIZED_HTML = b"<html><body>401 - Unauthorized: Access is denied due to invalid credentials.</body></html>"

INVALID_XML = ('<?xml version="1.0" encoding="utf-8"?>\n<Autodiscover xmlns="%s">\n'
               '  <Response xmlns="%s">\n    <Account>\n      <Action>settings</Acti\n'
               '  </Respons' % (NS_AD_RESPONSE, NS_AD_OUTLOOK))

OAB_XML = """<?xml version="1.0" encoding="UTF-8"?>
<OAB>
  <OAL id="3f3a5c1e-0b0e-4a1b-9a4e-2c1d7e8f9a0b" dn="/" name="\\Default Global Address List">
    <Full seq="12" ver="32" size="18432" uncompressedsize="65536" SHA="0123456789abcdef0123456789abcdef01234567">3f3a5c1e-data-12.lzx</Full>
    <Diff seq="12" ver="32" size="512" uncompressedsize="2048" SHA="89abcdef0123456789abcdef0123456789abcdef">3f3a5c1e-binpatch-12-11.lzx</Diff>
    <Template seq="3" ver="32" size="4096" uncompressedsize="16384" SHA="fedcba9876543210fedcba9876543210fedcba98" langid="0409" type="windows">0409-lng.lzx</Template>
  </OAL>
</OAB>
"""

PROTOCOL_FIELDS = [  # config key -> element, in schema order
    ("type", "Type"), ("server", "Server"), ("serverDN", "ServerDN"), ("serverVersion", "ServerVersion"),
    ("mdbDN", "MdbDN"), ("authPackage", "AuthPackage"), ("asUrl", "ASUrl"), ("ewsUrl", "EwsUrl"),
    ("ecpUrl", "EcpUrl"), ("oofUrl", "OOFUrl"), ("umUrl", "UMUrl"), ("oabUrl", "OABUrl"),
]


def mailbox_answer(config, email):
    """With "mailboxes", Exchange answers per address, as the directory knows it: the primary SMTP
    address gets the settings, a proxy address (alias) is told to start again with the primary
    (Action redirectAddr, protocols.md §7.1; MS-OXDISCO §3.1.5.2), and an address no mailbox has
    gets error 500 "The e-mail address cannot be found" (MS-OXDSCLI §2.2.4.1.1.3.2)."""
    mailboxes = config.get("mailboxes")
    if mailboxes is None:
        return None
    wanted = email.lower()
    for primary, aliases in mailboxes.items():
        if primary.lower() == wanted:
            return dict(config, smtpAddress=primary)
        if wanted in (a.lower() for a in aliases):
            return {"action": "redirectAddr", "redirectAddr": primary}
    return {"action": "error", "errorCode": 500}


def autodiscover_response(config, email):
    action = config.get("action", "settings")
    local = email.split("@")[0]
    if action == "error":
        code = int(config.get("errorCode", 500))
        return autodiscover_error(code, config.get("message"), outlook=config.get("outlookNamespace", True))
    lines = [
        '<?xml version="1.0" encoding="utf-8"?>',
        '<Autodiscover xmlns="%s">' % NS_AD_RESPONSE,
        '  <Response xmlns="%s">' % NS_AD_OUTLOOK,
        "    <User>",
        "      <DisplayName>%s</DisplayName>" % escape(config.get("displayName", local)),
        "      <LegacyDN>/o=Contoso/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)/cn=Recipients/cn=%s</LegacyDN>" % escape(local),
        "      <AutoDiscoverSMTPAddress>%s</AutoDiscoverSMTPAddress>" % escape(config.get("smtpAddress", email)),
        "      <DeploymentId>5d3a2e4f-8a61-4c55-9b7e-0c1f2d3e4a5b</DeploymentId>",
        "    </User>",
        "    <Account>",
        "      <AccountType>email</AccountType>",
        "      <Action>%s</Action>" % escape(action),
    ]
    if action == "redirectAddr":
        lines.append("      <RedirectAddr>%s</RedirectAddr>" % escape(config["redirectAddr"]))
    elif action == "redirectUrl":
        lines.append("      <RedirectUrl>%s</RedirectUrl>" % escape(config["redirectUrl"]))
    else:
        lines.append("      <MicrosoftOnline>False</MicrosoftOnline>")
        for protocol in config.get("protocols", []):
            lines.append("      <Protocol>")
            fields = dict(protocol)
            if "server" not in fields:
                url = fields.get("ewsUrl") or fields.get("asUrl")
                if url:
                    fields["server"] = urllib.parse.urlsplit(url).hostname
            for key, element in PROTOCOL_FIELDS:
                if fields.get(key) is not None:
                    lines.append("        <%s>%s</%s>" % (element, escape(str(fields[key])), element))
            lines.append("      </Protocol>")
    lines += ["    </Account>", "  </Response>", "</Autodiscover>", ""]
    return "\n".join(lines)


def autodiscover_error(code, message, outlook):
    # Request-level errors (600, 601) come in the base namespace; provider errors in 2006a.
    response_ns = ' xmlns="%s"' % NS_AD_OUTLOOK if outlook else ""
    message = message or AUTODISCOVER_MESSAGES.get(code, "Error")
    return "\n".join([
        '<?xml version="1.0" encoding="utf-8"?>',
        '<Autodiscover xmlns="%s">' % NS_AD_RESPONSE,
        "  <Response%s>" % response_ns,
        '    <Error Time="%s" Id="2477272013">' % datetime.now(timezone.utc).strftime("%H:%M:%S.%f"),
        "      <ErrorCode>%d</ErrorCode>" % code,
        "      <Message>%s</Message>" % escape(message),
        "      <DebugData />",
        "    </Error>",
        "  </Response>",
        "</Autodiscover>",
        "",
    ])


def server_version_header(info):
    attributes = " ".join('%s="%s"' % (k, escape(str(v), {'"': "&quot;"})) for k, v in info.items())
    return ('<s:Header><h:ServerVersionInfo %s xmlns:h="%s" xmlns="%s" '
            'xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"/>'
            "</s:Header>" % (attributes, NS_T, NS_T))


def ews_envelope(info, message):
    return ('<?xml version="1.0" encoding="utf-8"?>\n'
            '<s:Envelope xmlns:s="%s">%s<s:Body xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
            'xmlns:xsd="http://www.w3.org/2001/XMLSchema">'
            '<m:GetFolderResponse xmlns:m="%s" xmlns:t="%s"><m:ResponseMessages>%s</m:ResponseMessages>'
            "</m:GetFolderResponse></s:Body></s:Envelope>" % (NS_SOAP11, server_version_header(info), NS_M, NS_T, message))


def ews_success(folder, info):
    element = "CalendarFolder" if folder == "calendar" else "Folder"
    return ews_envelope(info, (
        '<m:GetFolderResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode>'
        '<m:Folders><t:%s><t:FolderId Id="AAMkADk0ZmFjYzE1LWNhbGVuZGFyAC4AAAAAAB0vUp3Aw+ZQ==" '
        'ChangeKey="AgAAABYAAAB7QzK6TnYlSq5TmZl/w0wLAAAAAAAD"/></t:%s></m:Folders>'
        "</m:GetFolderResponseMessage>" % (element, element)))


def ews_error(code, info):
    text = EWS_MESSAGES.get(code, code)
    return ews_envelope(info, (
        '<m:GetFolderResponseMessage ResponseClass="Error"><m:MessageText>%s</m:MessageText>'
        "<m:ResponseCode>%s</m:ResponseCode><m:DescriptiveLinkKey>0</m:DescriptiveLinkKey>"
        "<m:Folders/></m:GetFolderResponseMessage>" % (escape(text), escape(code))))


def soap_fault(code, text=None):
    text = text or EWS_MESSAGES.get(code, code)
    faultcode = "a:%s" % code if code.startswith("Error") else "s:Client"
    return ('<?xml version="1.0" encoding="utf-8"?>\n'
            '<s:Envelope xmlns:s="%s"><s:Body><s:Fault>'
            '<faultcode xmlns:a="%s">%s</faultcode>'
            '<faultstring xml:lang="en-US">%s</faultstring>'
            '<detail><e:ResponseCode xmlns:e="%s">%s</e:ResponseCode>'
            '<e:Message xmlns:e="%s">%s</e:Message></detail>'
            "</s:Fault></s:Body></s:Envelope>" % (NS_SOAP11, NS_T, escape(faultcode), escape(text),
                                                  NS_E, escape(code), NS_E, escape(text)))


# ---------------------------------------------------------------------------------------------
# DNS (RFC 1035, UDP only)

QTYPES = {1: "A", 2: "NS", 5: "CNAME", 15: "MX", 16: "TXT", 28: "AAAA", 33: "SRV", 255: "ANY"}
RCODES = {"NOERROR": 0, "FORMERR": 1, "SERVFAIL": 2, "NXDOMAIN": 3, "NOTIMP": 4, "REFUSED": 5}


def encode_name(name):
    out = b""
    for label in norm(name).split("."):
        if label:
            raw = label.encode("idna")
            out += bytes([len(raw)]) + raw
    return out + b"\x00"


def decode_question(packet):
    labels, offset = [], 12
    while True:
        length = packet[offset]
        if length == 0:
            offset += 1
            break
        if length & 0xC0:
            raise ValueError("compressed name in question")
        labels.append(packet[offset + 1: offset + 1 + length].decode("ascii", "replace"))
        offset += 1 + length
    qtype, qclass = struct.unpack("!HH", packet[offset: offset + 4])
    return ".".join(labels), qtype, qclass, offset + 4


class DNSServer:
    def __init__(self, app):
        self.app = app
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((os.environ.get("SYNCWIZARD_FAKE_BIND", "127.0.0.1"), 0))
        self.port = self.sock.getsockname()[1]

    def serve(self):
        while True:
            try:
                packet, peer = self.sock.recvfrom(4096)
            except OSError:
                continue
            try:
                reply = self.answer(packet)
            except Exception:
                reply = None
                if len(packet) >= 12:  # FORMERR, echoing only the header
                    reply = packet[:2] + struct.pack("!HHHHH", 0x8001, 0, 0, 0, 0)
            if reply:
                try:
                    self.sock.sendto(reply, peer)
                except OSError:
                    pass

    def answer(self, packet):
        ident, flags, qdcount = struct.unpack("!HHH", packet[:6])
        if flags & 0x8000 or qdcount != 1:
            return None
        qname, qtype, _qclass, end = decode_question(packet)
        name = norm(qname)
        config = self.app.config
        answers = []
        rcode = "NOERROR"
        srv = config.srv.get(name)
        entry = {"kind": "dns", "listener": "dns", "host": name, "method": QTYPES.get(qtype, str(qtype))}
        if isinstance(srv, dict):
            if srv.get("behaviour") == "hang":
                entry.update({"status": None, "outcome": "hang", "answers": 0})
                self.app.log.write(entry)
                return None
            rcode = srv.get("rcode", "NOERROR")
        elif name not in config.address_names() and name not in config.srv:
            rcode = "NXDOMAIN"
        elif qtype in (33, 255) and isinstance(srv, list):
            for record in srv:
                rdata = struct.pack("!HHH", int(record.get("priority", 0)), int(record.get("weight", 0)),
                                    int(record.get("port", 443))) + encode_name(record["target"])
                answers.append(struct.pack("!HHHIH", 0xC00C, 33, 1, 60, len(rdata)) + rdata)
        if qtype in (1, 255) and rcode == "NOERROR" and name in config.address_names():
            answers.append(struct.pack("!HHHIH", 0xC00C, 1, 1, 60, 4) + socket.inet_aton("127.0.0.1"))
        entry.update({"status": rcode, "outcome": "answered", "answers": len(answers)})
        self.app.log.write(entry)
        reply_flags = 0x8000 | (flags & 0x7800) | 0x0400 | (flags & 0x0100) | 0x0080 | RCODES.get(rcode, 2)
        header = struct.pack("!HHHHHH", ident, reply_flags, 1, len(answers), 0, 0)
        return header + packet[12:end] + b"".join(answers)


# ---------------------------------------------------------------------------------------------


class App:
    def __init__(self, config, log):
        self.config = config
        self.log = log
        self.thread_state = threading.local()


def main():
    parser = argparse.ArgumentParser(description="Fake on-premises Exchange for syncwizard tests.")
    parser.add_argument("--config", required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--workdir", required=True)
    args = parser.parse_args()

    try:
        with open(args.config, encoding="utf-8") as f:
            config = Config(json.load(f))
    except (OSError, ValueError) as error:
        fail("cannot read config: %s" % error)
    os.makedirs(args.workdir, exist_ok=True)

    users_file = os.path.join(args.workdir, "ntlm-users.txt")
    fd = os.open(users_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write("".join("%s:%s:%s\n" % user for user in config.users))
    os.environ["NTLM_USER_FILE"] = users_file

    log = Log(args.log)
    app = App(config, log)
    tls = TLS(config, args.workdir, log)
    https = Server(app, "https", tls)
    plain = Server(app, "http", None)
    dns = DNSServer(app)
    for target in (https.serve_forever, plain.serve_forever, dns.serve):
        threading.Thread(target=target, daemon=True).start()

    ready = {
        "httpsPort": https.server_address[1],
        "httpPort": plain.server_address[1],
        "dnsPort": dns.port,
        "caFile": tls.ca_file,
        "untrustedCaFile": tls.untrusted_ca_file,
        "certificates": {host: {"sha256": tls.fingerprints[host]} for host in config.hosts},
        "pid": os.getpid(),
    }
    sys.stdout.write(json.dumps(ready) + "\n")
    sys.stdout.flush()

    try:
        while sys.stdin.buffer.read(65536):
            pass
    except (OSError, ValueError):
        pass
    os._exit(0)  # EOF on stdin: the test process is gone


if __name__ == "__main__":
    main()
