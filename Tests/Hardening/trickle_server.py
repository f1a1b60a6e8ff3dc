#!/usr/bin/env python3
"""A TLS server on loopback that answers one byte per second (test fixture; needs trustme).

    python3 Tests/Hardening/trickle_server.py --workdir DIR

It makes a CA and a leaf for every host below (trustme), writes DIR/ca.pem, opens one
listener per behaviour on 127.0.0.1 and prints one JSON line:
    {"caFile": "DIR/ca.pem", "ports": {"headers.trickle.test": 40001, ...}}
then serves until stdin reaches EOF.

  headers.trickle.test    TLS completes, the request is read, then the status line and
                          headers arrive one byte per second (a 200 that never finishes)
  body.trickle.test       the headers arrive at once (Content-Length: 100000), then the body
                          one byte per second
  handshake.trickle.test  plain TCP: the ClientHello is read, then a TLS record header and
                          random bytes, one byte per second (the handshake never completes)

Every connection and every byte count is written to stderr as a JSON line.
"""

import argparse
import json
import os
import socket
import ssl
import sys
import threading
import time

import trustme

HOSTS = ["headers.trickle.test", "body.trickle.test", "handshake.trickle.test"]


def log(**entry):
    sys.stderr.write(json.dumps(entry) + "\n")
    sys.stderr.flush()


def trickle(sock, data, label):
    sent = 0
    try:
        for i in range(len(data)):
            sock.sendall(data[i:i + 1])
            sent += 1
            time.sleep(1.0)
    except OSError as error:
        log(kind="closed", host=label, bytesSent=sent, error=str(error))
        return
    log(kind="done", host=label, bytesSent=sent)


def read_request(conn):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip() or 0)
    while len(rest) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        rest += chunk
    return head.split(b"\r\n")[0]


def serve_tls(listener, context, host):
    while True:
        try:
            raw, _ = listener.accept()
        except OSError:
            return
        threading.Thread(target=handle_tls, args=(raw, context, host), daemon=True).start()


def handle_tls(raw, context, host):
    try:
        conn = context.wrap_socket(raw, server_side=True)
    except (OSError, ssl.SSLError) as error:
        log(kind="handshakeFailed", host=host, error=str(error))
        raw.close()
        return
    request_line = read_request(conn)
    log(kind="request", host=host, request=(request_line or b"").decode("latin-1"))
    if request_line is None:
        conn.close()
        return
    if host.startswith("headers."):
        trickle(conn, b"HTTP/1.1 200 OK\r\nContent-Type: text/xml; charset=utf-8\r\nContent-Length: 5\r\n\r\n<a/>\n", host)
    else:
        try:
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/xml; charset=utf-8\r\nContent-Length: 100000\r\n\r\n")
        except OSError:
            return
        trickle(conn, b"<?xml version='1.0'?>" + b" " * 99979, host)
    conn.close()


def serve_handshake(listener, host):
    while True:
        try:
            conn, _ = listener.accept()
        except OSError:
            return

        def run(conn=conn):
            conn.recv(65536)  # the ClientHello
            log(kind="clientHello", host=host)
            trickle(conn, b"\x16\x03\x03\x40\x00" + os.urandom(600), host)
            conn.close()
        threading.Thread(target=run, daemon=True).start()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--workdir", required=True)
    args = parser.parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    ca = trustme.CA()
    ca_file = os.path.join(args.workdir, "ca.pem")
    ca.cert_pem.write_to_path(ca_file)
    ports = {}
    for host in HOSTS:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        ports[host] = listener.getsockname()[1]
        if host.startswith("handshake."):
            threading.Thread(target=serve_handshake, args=(listener, host), daemon=True).start()
        else:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ca.issue_cert(host).configure_cert(context)
            threading.Thread(target=serve_tls, args=(listener, context, host), daemon=True).start()
    print(json.dumps({"caFile": ca_file, "ports": ports}), flush=True)
    sys.stdin.read()  # until the parent closes our stdin or dies


if __name__ == "__main__":
    main()
