#!/usr/bin/env python3
"""Loopback test servers for HTTPClientTests.

Starts, on 127.0.0.1 with ephemeral ports:
  trusted    HTTPS, leaf for autodiscover.contoso.test from a test CA the client is given
  untrusted  HTTPS, leaf for untrusted.contoso.test from a second CA the client never sees
  plain      HTTP, same handler
  silent     accepts TCP and never answers
  reset      accepts TCP and resets it at once
  sentinel   accepts TCP, counts connections (must stay at 0)
  refused    a port that was bound and closed again (nothing listens)

Prints one JSON line with ports, the trusted CA file and the untrusted leaf, then serves
until its standard input closes (the test process ended). Needs: pip install trustme.
"""

import base64
import hashlib
import http.server
import json
import os
import socket
import socketserver
import ssl
import struct
import sys
import tempfile
import threading
import time
import urllib.parse

import trustme

LOCK = threading.Lock()
SEEN_PATHS = {}   # server name -> list of request paths
ACCEPTS = {}      # server name -> accepted TCP connections
DELAYS = {"now": 0, "max": 0}  # /delay requests being served at once, and the most seen


def note(table, name, value=None):
    with LOCK:
        if value is None:
            table[name] = table.get(name, 0) + 1
        else:
            table.setdefault(name, []).append(value)


def reset_socket(sock):
    # SO_LINGER with a zero timeout makes close() send RST instead of FIN.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body=b"", headers=()):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def handle_any(self):
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        note(SEEN_PATHS, self.server.name, url.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""

        if url.path == "/hello":
            self.reply(200, b"hello from " + self.server.name.encode(),
                       [("Content-Type", "text/plain"), ("X-Server", self.server.name)])
        elif url.path == "/delay":
            with LOCK:
                DELAYS["now"] += 1
                DELAYS["max"] = max(DELAYS["max"], DELAYS["now"])
            time.sleep(int(query.get("ms", "300")) / 1000)
            with LOCK:
                DELAYS["now"] -= 1
            self.reply(200, b"late")
        elif url.path == "/bytes":
            self.reply(200, b"x" * int(query["n"]))
        elif url.path == "/echo":
            self.reply(200, body, [("X-Method", self.command)])
        elif url.path == "/headers":
            fields = [[name, value] for name, value in self.headers.items()]
            self.reply(200, json.dumps(fields).encode(), [("Content-Type", "application/json")])
        elif url.path == "/challenge":
            self.reply(401, b"", [("WWW-Authenticate", "Negotiate"), ("WWW-Authenticate", "NTLM")])
        elif url.path == "/redirect":
            self.reply(302, b"", [("Location", "/hello")])
        elif url.path == "/hang":
            time.sleep(60)
            self.close_connection = True
        elif url.path == "/session":
            # Whether this connection resumed a TLS session; then closed, so the next request
            # needs a new connection (and may resume).
            self.close_connection = True
            self.reply(200, json.dumps({"reused": self.connection.session_reused}).encode(),
                       [("Content-Type", "application/json"), ("Connection", "close")])
        elif url.path == "/reset":
            self.close_connection = True
            reset_socket(self.connection)
        elif url.path == "/stats":
            with LOCK:
                stats = {"paths": SEEN_PATHS, "accepts": ACCEPTS, "maxConcurrentDelays": DELAYS["max"]}
                payload = json.dumps(stats).encode()
            self.reply(200, payload, [("Content-Type", "application/json")])
        else:
            self.reply(404, b"not found")

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = handle_any


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    request_queue_size = 256  # 50 parallel connects must not overflow the backlog

    def __init__(self, name, context):
        self.name = name
        self.context = context
        super().__init__(("127.0.0.1", 0), Handler)

    def finish_request(self, request, client_address):
        # The TLS handshake runs here, in the connection's own thread, so a client that
        # stalls in the handshake does not block the accept loop.
        note(ACCEPTS, self.name)
        if self.context is not None:
            request = self.context.wrap_socket(request, server_side=True, do_handshake_on_connect=False)
            request.settimeout(30)
            try:
                request.do_handshake()
            except (OSError, ssl.SSLError):
                request.close()
                return
        super().finish_request(request, client_address)

    def shutdown_request(self, request):
        try:
            super().shutdown_request(request)
        except OSError:
            pass

    def handle_error(self, request, client_address):
        pass  # clients that abort on purpose are the point of these tests


def raw_listener(name, on_accept):
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(256)
    held = []

    def loop():
        while True:
            conn, _ = listener.accept()
            note(ACCEPTS, name)
            on_accept(conn, held)

    threading.Thread(target=loop, daemon=True).start()
    return listener.getsockname()[1]


def tls_context(ca, host):
    leaf = ca.issue_cert(host, common_name=host)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    leaf.configure_cert(context)
    return context, leaf


def main():
    workdir = tempfile.mkdtemp(prefix="httpclient-tests-")
    trusted_ca = trustme.CA(organization_name="syncwizard test CA")
    untrusted_ca = trustme.CA(organization_name="untrusted test CA")
    ca_file = os.path.join(workdir, "trusted-ca.pem")
    trusted_ca.cert_pem.write_to_path(ca_file)

    trusted_context, trusted_leaf = tls_context(trusted_ca, "autodiscover.contoso.test")
    untrusted_context, untrusted_leaf = tls_context(untrusted_ca, "untrusted.contoso.test")
    untrusted_pem = untrusted_leaf.cert_chain_pems[0].bytes().decode()
    untrusted_der = ssl.PEM_cert_to_DER_cert(untrusted_pem)

    servers = {
        "trusted": Server("trusted", trusted_context),
        "untrusted": Server("untrusted", untrusted_context),
        "plain": Server("plain", None),
    }
    for server in servers.values():
        threading.Thread(target=server.serve_forever, daemon=True).start()

    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    refused_port = closed.getsockname()[1]
    closed.close()

    info = {name: server.server_address[1] for name, server in servers.items()}
    info.update({
        "silent": raw_listener("silent", lambda conn, held: held.append(conn)),
        "reset": raw_listener("reset", lambda conn, held: reset_socket(conn)),
        "sentinel": raw_listener("sentinel", lambda conn, held: conn.close()),
        "refused": refused_port,
        "caFile": ca_file,
        "untrustedPEM": untrusted_pem,
        "untrustedSHA256": hashlib.sha256(untrusted_der).hexdigest(),
        "trustedSHA256": hashlib.sha256(ssl.PEM_cert_to_DER_cert(trusted_leaf.cert_chain_pems[0].bytes().decode())).hexdigest(),
        "untrustedDER": base64.b64encode(untrusted_der).decode(),
    })
    print(json.dumps(info), flush=True)

    sys.stdin.read()  # EOF: the test process is gone
    os._exit(0)


if __name__ == "__main__":
    main()
