#!/usr/bin/env python3
"""Two private network namespaces joined by a userspace delay line, for round-trip benchmarks.

This kernel has no netem qdisc (`tc qdisc add dev lo root netem` answers "Specified qdisc kind is
unknown"), and no iptables/NFQUEUE either, so the delay is made in userspace: each namespace has a
TUN device, and this process (in the root namespace) reads every IP packet one device emits,
holds it for the one-way delay and writes it into the other device. Every packet is delayed once
per direction, in order (a FIFO per direction: the delay is constant, so due times are sorted).
TUN without IFF_VNET_HDR carries no GSO super-packets, so each packet is at most the MTU.

  client namespace  <ns>-c  tun device swc0, 10.77.0.1 peer 10.77.0.2   (syncwizard, exchangelib, the browser)
  server namespace  <ns>-s  tun device sws0, 10.77.0.2 peer 10.77.0.1   (the fakes)

The delay line also counts what it carries, per server port: TCP connections (SYN without ACK
from the client), TLS ClientHellos (and of those, ones offering a pre_shared_key: session
resumption attempts), client->server UDP datagrams, packets and bytes.

Python 3.11, standard library only (ctypes for setns(2), which os has only from 3.12). Root only.
"""
from __future__ import annotations

import collections
import ctypes
import fcntl
import os
import select
import struct
import subprocess
import threading
import time

CLIENT_IP, SERVER_IP = "10.77.0.1", "10.77.0.2"
TUNSETIFF, IFF_TUN, IFF_NO_PI = 0x400454CA, 0x0001, 0x1000
CLONE_NEWNET = 0x40000000
PREFIX = "swwan"
_libc = ctypes.CDLL(None, use_errno=True)


def setns(path):
    """Moves the calling thread (only it) into the network namespace at `path`."""
    fd = os.open(path, os.O_RDONLY)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns {path}")
    finally:
        os.close(fd)


def ip(*args, ns=None):
    cmd = (["ip", "netns", "exec", ns, "ip"] if ns else ["ip"]) + list(args)
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def remove_stale():
    """Namespaces left by a run that was killed (its pid is gone)."""
    try:
        names = os.listdir("/run/netns")
    except FileNotFoundError:
        return
    for name in names:
        parts = name.split("-")
        if len(parts) == 3 and parts[0] == PREFIX and parts[1].isdigit() and not os.path.exists(f"/proc/{parts[1]}"):
            subprocess.run(["ip", "netns", "del", name], stderr=subprocess.DEVNULL)


def _open_tun(name):
    fd = os.open("/dev/net/tun", os.O_RDWR)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
    return fd


class Counters:
    def __init__(self):
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        with getattr(self, "lock", threading.Lock()):
            self.by_port = collections.defaultdict(lambda: collections.Counter())

    def snapshot(self):
        with self.lock:
            return {port: dict(c) for port, c in self.by_port.items()}


def _tls_client_hello(payload):
    """(is ClientHello, offers pre_shared_key) for a TCP payload that starts a TLS record."""
    if len(payload) < 44 or payload[0] != 0x16 or payload[5] != 0x01:
        return False, False
    p = 9 + 2 + 32
    try:
        p += 1 + payload[p]                                   # session id
        p += 2 + int.from_bytes(payload[p:p + 2], "big")      # cipher suites
        p += 1 + payload[p]                                   # compression methods
        end = p + 2 + int.from_bytes(payload[p:p + 2], "big")
        p += 2
        while p + 4 <= min(end, len(payload)):
            kind, size = int.from_bytes(payload[p:p + 2], "big"), int.from_bytes(payload[p + 2:p + 4], "big")
            if kind == 41:                                    # pre_shared_key (RFC 8446 §4.2.11)
                return True, True
            p += 4 + size
    except IndexError:
        pass
    return True, False


class Lab:
    """The two namespaces and the delay line; a context manager that removes everything on exit."""

    def __init__(self, one_way_ms=0.0):
        remove_stale()
        self.client_ns = f"{PREFIX}-{os.getpid()}-c"
        self.server_ns = f"{PREFIX}-{os.getpid()}-s"
        self.one_way = one_way_ms / 1e3
        self.counters = Counters()
        self.stopping = False
        self.fds = []
        self.threads = []
        self.home = None

    def __enter__(self):
        try:
            self._up()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()

    def set_delay(self, one_way_ms):
        self.one_way = one_way_ms / 1e3

    def _up(self):
        for ns in (self.client_ns, self.server_ns):
            subprocess.run(["ip", "netns", "add", ns], check=True)
            ip("link", "set", "lo", "up", ns=ns)
        own = f"/proc/{os.getpid()}/task/{threading.get_native_id()}/ns/net"
        home = os.open(own, os.O_RDONLY)
        try:
            setns(f"/run/netns/{self.client_ns}")
            cfd = _open_tun("swc0")
            setns(f"/run/netns/{self.server_ns}")
            sfd = _open_tun("sws0")
        finally:
            _libc.setns(home, CLONE_NEWNET)
            os.close(home)
        self.fds = [cfd, sfd]
        for ns, dev, mine, peer in ((self.client_ns, "swc0", CLIENT_IP, SERVER_IP), (self.server_ns, "sws0", SERVER_IP, CLIENT_IP)):
            ip("addr", "add", mine, "peer", peer, "dev", dev, ns=ns)
            ip("link", "set", dev, "mtu", "1500", "up", ns=ns)
        for src, dst, upstream in ((cfd, sfd, True), (sfd, cfd, False)):
            line = collections.deque()
            cond = threading.Condition()
            for target in (self._reader, self._writer):
                t = threading.Thread(target=target, args=(src, dst, line, cond, upstream), daemon=True)
                t.start()
                self.threads.append(t)

    @staticmethod
    def _realtime():
        # The delay line's threads run SCHED_FIFO, so a busy machine (a build on both cores)
        # does not add its scheduling latency to the delay; they sleep nearly all the time.
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))
        except OSError:
            pass

    def _reader(self, src, dst, line, cond, upstream):
        self._realtime()
        while not self.stopping:
            # A timeout so that close() finds every thread gone before it closes the fds (a
            # closed fd number is soon reused, and a packet must never go into someone's pipe).
            if not select.select([src], [], [], 0.2)[0]:
                continue
            try:
                pkt = os.read(src, 65535)
            except OSError:
                return
            due = time.monotonic() + self.one_way
            if upstream:
                self._count(pkt)
            with cond:
                line.append((due, pkt))
                cond.notify()

    def _writer(self, src, dst, line, cond, upstream):
        self._realtime()
        while not self.stopping:
            with cond:
                while not line and not self.stopping:
                    cond.wait(0.2)
                if self.stopping:
                    return
                due, pkt = line[0]
            left = due - time.monotonic()
            if left > 0:
                time.sleep(left)
            with cond:
                line.popleft()
            try:
                os.write(dst, pkt)
            except OSError:
                pass

    def _count(self, pkt):
        """Client -> server packets only: connections, ClientHellos, datagrams, per server port."""
        if len(pkt) < 20 or pkt[0] >> 4 != 4:
            return
        ihl = (pkt[0] & 15) * 4
        proto = pkt[9]
        seg = pkt[ihl:]
        if proto == 6 and len(seg) >= 20:
            port = int.from_bytes(seg[2:4], "big")
            flags = seg[13]
            payload = seg[(seg[12] >> 4) * 4:]
            with self.counters.lock:
                c = self.counters.by_port[port]
                c["packets"] += 1
                c["bytes"] += len(pkt)
                if flags & 0x02 and not flags & 0x10:
                    c["connections"] += 1
                hello, psk = _tls_client_hello(payload) if payload else (False, False)
                if hello:
                    c["tlsHandshakes"] += 1
                    if psk:
                        c["tlsResumptionOffers"] += 1
        elif proto == 17 and len(seg) >= 8:
            port = int.from_bytes(seg[2:4], "big")
            with self.counters.lock:
                self.counters.by_port[port]["datagrams"] += 1

    def popen(self, ns, argv, **kw):
        """A process in one of the namespaces (ip netns exec), stdio as given."""
        return subprocess.Popen(["ip", "netns", "exec", ns] + list(argv), **kw)

    def enter_client(self):
        """Moves the calling thread into the client namespace (its sockets and children live
        there); close() brings it back."""
        if self.home is None:
            self.home = os.open(f"/proc/self/task/{threading.get_native_id()}/ns/net", os.O_RDONLY)
        setns(f"/run/netns/{self.client_ns}")

    def close(self):
        self.stopping = True
        for t in self.threads:
            t.join(2)
        self.threads = []
        if self.home is not None:
            _libc.setns(self.home, CLONE_NEWNET)
            os.close(self.home)
            self.home = None
        for fd in self.fds:
            try:
                os.close(fd)
            except OSError:
                pass
        self.fds = []
        for ns in (self.client_ns, self.server_ns):
            # Processes still inside keep the namespace; ip netns pids lists them.
            out = subprocess.run(["ip", "netns", "pids", ns], capture_output=True)
            for pid in out.stdout.decode("ascii", "replace").split():
                if pid == str(os.getpid()):
                    continue   # this process, when a thread of it entered the namespace
                try:
                    os.kill(int(pid), 9)
                except (ProcessLookupError, ValueError):
                    pass
            subprocess.run(["ip", "netns", "del", ns], stderr=subprocess.DEVNULL)


def timed_connects(port, count=15, host=SERVER_IP):
    """Median of `count` timed TCP connects (SYN -> SYN-ACK: one round trip), in seconds."""
    import socket
    import statistics
    out = []
    for _ in range(count):
        s = socket.socket()
        t0 = time.perf_counter()
        s.connect((host, port))
        out.append(time.perf_counter() - t0)
        s.close()
    return statistics.median(out), min(out), max(out)


if __name__ == "__main__":   # self-check: RTT at 0 and 50 ms
    import sys
    with Lab(0) as lab:
        srv = lab.popen(lab.server_ns, [sys.executable, "-c",
                                         "import socket\ns=socket.socket();s.bind(('10.77.0.2',0));s.listen(256)\n"
                                         "print(s.getsockname()[1],flush=True)\nwhile True: s.accept()[0].close()"],
                        stdout=subprocess.PIPE, text=True)
        port = int(srv.stdout.readline())
        lab.enter_client()
        for ms in (0, 25, 5):
            lab.set_delay(ms)
            med, lo, hi = timed_connects(port)
            print(f"one-way {ms} ms: TCP connect median {med * 1e3:.2f} ms (min {lo * 1e3:.2f}, max {hi * 1e3:.2f})")
        print(lab.counters.snapshot())
        srv.kill()
