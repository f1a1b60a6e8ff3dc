#!/usr/bin/env python3
"""A small authoritative DNS server (UDP and TCP, RFC 1035) that misbehaves on request.

Tests/DNSTests drive it to check what glibc's resolver and Sources/DNS do with answers a
well-behaved server (dnsmasq, the other fixture) never gives. See README.md next to it.

    python3 odd_dns.py --log LOG.jsonl

Binds UDP and TCP on one ephemeral port of 127.0.0.1 (and of ::1 when the machine has it), prints
one JSON line {"port": N, "port6": M or null, "pid": P} and serves until stdin reaches EOF.
Every query is appended to LOG as {"name": ..., "qtype": ..., "transport": "udp"|"tcp"}.
"""

import argparse
import json
import os
import socket
import struct
import sys
import threading
import time

SRV, CNAME, IN = 33, 5, 1
NOERROR, SERVFAIL, NXDOMAIN = 0, 2, 3


def name_bytes(labels):
    """Wire form of a name given as a list of raw labels (bytes), so a label may hold '.' or '/'."""
    return b"".join(bytes([len(label)]) + label for label in labels) + b"\x00"


def dotted(text):
    return [label.encode("ascii") for label in text.split(".") if label]


def srv(priority, weight, port, target_wire):
    rdata = struct.pack("!HHH", priority, weight, port) + target_wire
    return struct.pack("!HHHIH", 0xC00C, SRV, IN, 60, len(rdata)) + rdata


def parse_query(packet):
    ident, flags, qdcount = struct.unpack("!HHH", packet[:6])
    offset, labels = 12, []
    while packet[offset]:
        length = packet[offset]
        labels.append(packet[offset + 1: offset + 1 + length].decode("ascii", "replace"))
        offset += 1 + length
    qtype, = struct.unpack("!H", packet[offset + 1: offset + 3])
    return ident, flags, qdcount, ".".join(labels).lower(), qtype, packet[12: offset + 5]


def reply(ident, query_flags, question, rcode=NOERROR, answers=(), tc=False, qr=True):
    flags = (0x8000 if qr else 0) | 0x0400 | (query_flags & 0x0100) | 0x0080 | rcode | (0x0200 if tc else 0)
    return struct.pack("!HHHHHH", ident, flags, 1, len(answers), 0, 0) + question + b"".join(answers)


def zone_of(name):
    """'_autodiscover._tcp.truncated.test' -> 'truncated'."""
    parts = name.split(".")
    return parts[2] if len(parts) == 4 and parts[:2] == ["_autodiscover", "_tcp"] and parts[3] == "test" else None


class Server:
    def __init__(self, log_path):
        self.log = open(log_path, "a", encoding="utf-8")
        self.log_lock = threading.Lock()
        self.decoy = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # the "attacker": another port
        self.decoy.bind(("127.0.0.1", 0))
        self.decoy6 = None

    def record(self, name, qtype, transport):
        with self.log_lock:
            self.log.write(json.dumps({"name": name, "qtype": qtype, "transport": transport}) + "\n")
            self.log.flush()

    def answer(self, packet, transport):
        """The reply to send (bytes or None), after any decoy replies for UDP."""
        ident, flags, qdcount, name, qtype, question = parse_query(packet)
        self.record(name, qtype, transport)
        zone = zone_of(name)
        if flags & 0x8000 or qdcount != 1 or zone is None or zone == "nxdomain":
            return reply(ident, flags, question, NXDOMAIN)
        ok = lambda answers, **kw: reply(ident, flags, question, NOERROR, answers, **kw)
        if zone == "plain":
            return ok([srv(10, 60, 443, name_bytes(dotted("mail1.plain.test"))),
                       srv(10, 20, 443, name_bytes(dotted("mail2.plain.test"))),
                       srv(5, 0, 443, name_bytes(dotted("first.plain.test")))])
        if zone == "servfail":
            return reply(ident, flags, question, SERVFAIL)
        if zone in ("truncated", "tcphang"):
            if transport == "udp":
                return ok([], tc=True)
            if zone == "tcphang":
                return None
            return ok([srv(0, 0, 443, name_bytes(dotted("mail.truncated.test"))),
                       srv(1, 0, 443, name_bytes(dotted("backup.truncated.test")))])
        if zone == "spoofed":
            return ok([srv(0, 0, 443, name_bytes(dotted("mail.spoofed.test")))])
        if zone == "wrongquestion":
            return ok([srv(0, 0, 443, name_bytes(dotted("mail.wrongquestion.test")))])
        if zone == "notaresponse":
            return ok([srv(0, 0, 443, name_bytes(dotted("mail.notaresponse.test")))], qr=False)
        if zone in ("odd", "allodd"):
            answers = [srv(0, 0, 443, name_bytes([b"we/b"] + dotted("odd.test"))),
                       srv(0, 0, 443, name_bytes([b"a.b"] + dotted("odd.test"))),
                       srv(0, 0, 443, name_bytes([b"evil.test\\"] + dotted("odd.test")))]
            if zone == "odd":
                answers.append(srv(1, 0, 443, name_bytes(dotted("mail.odd.test"))))
            return ok(answers)
        if zone == "loop":
            # The target is a compression pointer to itself: 12 header + question + 12 fixed
            # record bytes + 6 (priority, weight, port) is where it sits.
            at = 12 + len(question) + 12 + 6
            rdata = struct.pack("!HHH", 0, 0, 443) + struct.pack("!H", 0xC000 | at)
            return ok([struct.pack("!HHHIH", 0xC00C, SRV, IN, 60, len(rdata)) + rdata])
        if zone == "hang":
            return None
        return reply(ident, flags, question, NXDOMAIN)

    def decoys(self, packet, sock, peer):
        """Replies that must be ignored, sent before the real one: right id from another port,
        or right id and port with another question."""
        ident, flags, _, name, _, question = parse_query(packet)
        zone = zone_of(name)
        if zone == "spoofed":
            decoy = self.decoy if sock.family == socket.AF_INET else self.decoy6
            forged = reply(ident, flags, question, NOERROR, [srv(0, 0, 443, name_bytes(dotted("evil.test")))])
            decoy.sendto(forged, peer)
            time.sleep(0.3)
        elif zone == "wrongquestion":
            other = name_bytes(dotted("_autodiscover._tcp.evil.test")) + struct.pack("!HH", SRV, IN)
            forged = reply(ident, flags, other, NOERROR, [struct.pack("!HHHIH", 0xC00C, SRV, IN, 60, 17)
                                                            + struct.pack("!HHH", 0, 0, 443) + name_bytes(dotted("evil.test"))])
            sock.sendto(forged, peer)
            time.sleep(0.3)

    def serve_udp(self, sock):
        while True:
            packet, peer = sock.recvfrom(4096)
            threading.Thread(target=self.handle_udp, args=(sock, packet, peer), daemon=True).start()

    def handle_udp(self, sock, packet, peer):
        try:
            self.decoys(packet, sock, peer)
            out = self.answer(packet, "udp")
            if out:
                sock.sendto(out, peer)
        except (OSError, IndexError, struct.error):
            pass

    def serve_tcp(self, listener):
        while True:
            conn, _ = listener.accept()
            threading.Thread(target=self.handle_tcp, args=(conn,), daemon=True).start()

    def handle_tcp(self, conn):
        try:
            while True:
                head = conn.recv(2)
                if len(head) < 2:
                    return
                length, = struct.unpack("!H", head)
                packet = b""
                while len(packet) < length:
                    chunk = conn.recv(length - len(packet))
                    if not chunk:
                        return
                    packet += chunk
                out = self.answer(packet, "tcp")
                if out is None:
                    conn.recv(1)  # hang until the client gives up or we exit
                    return
                conn.sendall(struct.pack("!H", len(out)) + out)
        except (OSError, IndexError, struct.error):
            pass
        finally:
            conn.close()


def bind_pair(family, host):
    """A UDP and a TCP socket on the same ephemeral port."""
    for _ in range(20):
        udp = socket.socket(family, socket.SOCK_DGRAM)
        udp.bind((host, 0))
        port = udp.getsockname()[1]
        tcp = socket.socket(family, socket.SOCK_STREAM)
        tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            tcp.bind((host, port))
        except OSError:
            udp.close()
            tcp.close()
            continue
        tcp.listen(16)
        return udp, tcp, port
    raise OSError("no port free for both UDP and TCP")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--log", required=True)
    args = parser.parse_args()
    server = Server(args.log)
    udp, tcp, port = bind_pair(socket.AF_INET, "127.0.0.1")
    pairs = [(udp, tcp)]
    port6 = None
    try:
        udp6, tcp6, port6 = bind_pair(socket.AF_INET6, "::1")
        server.decoy6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        server.decoy6.bind(("::1", 0))
        pairs.append((udp6, tcp6))
    except OSError:
        port6 = None
    for u, t in pairs:
        threading.Thread(target=server.serve_udp, args=(u,), daemon=True).start()
        threading.Thread(target=server.serve_tcp, args=(t,), daemon=True).start()
    print(json.dumps({"port": port, "port6": port6, "pid": os.getpid()}), flush=True)
    sys.stdin.read()


if __name__ == "__main__":
    main()
