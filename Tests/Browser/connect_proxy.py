"""A tiny HTTP CONNECT proxy for the browser test (standard library only).

A real browser cannot be told "HOST:443 is 127.0.0.1:PORT" the way libcurl's CONNECT_TO can, but
it can be given a proxy. Every CONNECT to a host in `hosts` (the fake identity provider's host
names, any port) is tunnelled to 127.0.0.1:`target_port`, so the browser reaches
https://online.superoffice.com/... on the fake over real TLS, end to end (the proxy never sees
plaintext). A CONNECT to any other host, and every plain-HTTP proxy request, is refused with 403
and logged: the browser's own background traffic never reaches the fake, and a loopback request
that went through the proxy instead of straight to 127.0.0.1 shows up in `log`.

    proxy = ConnectProxy(target_port=43085, hosts={"online.superoffice.com"})
    proxy.start()            # proxy.port: the 127.0.0.1 port to hand to --proxy-server
    ...
    proxy.stop(); proxy.log  # [{"method": "CONNECT", "target": "online.superoffice.com:443", "tunnelled": True}, ...]

Standalone (prints {"port": N} once ready, serves until stdin reaches EOF):

    python3 connect_proxy.py --target-port 43085 [--host online.superoffice.com ...]
"""

import argparse
import json
import select
import socket
import sys
import threading

BUFFER = 65536


class ConnectProxy:
    def __init__(self, target_port, hosts=None, target_host="127.0.0.1", listen_host="127.0.0.1"):
        self.target = (target_host, int(target_port))
        # None: tunnel every CONNECT.
        self.hosts = None if hosts is None else {h.lower().rstrip(".") for h in hosts}
        self.listen_host = listen_host
        self.port = None
        self.log = []
        self._lock = threading.Lock()
        self._listener = None
        self._stopping = threading.Event()
        self._sockets = set()

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self):
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.listen_host, 0))
        listener.listen(64)
        self._listener = listener
        self.port = listener.getsockname()[1]
        threading.Thread(target=self._accept_loop, name="connect-proxy", daemon=True).start()
        return self

    def stop(self):
        self._stopping.set()
        if self._listener is not None:
            try:
                self._listener.close()
            except OSError:
                pass
        with self._lock:
            sockets = list(self._sockets)
        for s in sockets:
            try:
                s.close()
            except OSError:
                pass

    def entries(self):
        with self._lock:
            return [dict(e) for e in self.log]

    # -- serving -----------------------------------------------------------------------------

    def _record(self, entry):
        with self._lock:
            self.log.append(entry)

    def _track(self, s):
        with self._lock:
            self._sockets.add(s)

    def _untrack(self, s):
        with self._lock:
            self._sockets.discard(s)
        try:
            s.close()
        except OSError:
            pass

    def _accept_loop(self):
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self._track(client)
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client):
        upstream = None
        try:
            client.settimeout(10)
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = client.recv(BUFFER)
                if not chunk:
                    return
                head += chunk
                if len(head) > 65536:
                    return
            head, _, rest = head.partition(b"\r\n\r\n")
            request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
            parts = request_line.split()
            if len(parts) != 3:
                self._record({"method": None, "target": request_line[:200], "tunnelled": False})
                client.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                return
            method, target, _ = parts
            if method.upper() != "CONNECT":
                # A plain-HTTP proxy request (e.g. http://127.0.0.1:PORT/ if the browser did not
                # bypass the proxy for loopback): refused, and the test sees it in the log.
                self._record({"method": method, "target": target[:200], "tunnelled": False})
                client.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                return
            host = target.rsplit(":", 1)[0].strip("[]").lower().rstrip(".")
            allowed = self.hosts is None or host in self.hosts
            self._record({"method": "CONNECT", "target": target, "tunnelled": allowed})
            if not allowed:
                client.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                return
            try:
                upstream = socket.create_connection(self.target, timeout=10)
            except OSError:
                client.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                return
            self._track(upstream)
            client.sendall(b"HTTP/1.1 200 Connection Established\r\n\r\n")
            if rest:
                upstream.sendall(rest)
            self._pump(client, upstream)
        except OSError:
            pass
        finally:
            self._untrack(client)
            if upstream is not None:
                self._untrack(upstream)

    def _pump(self, a, b):
        a.settimeout(None)
        b.settimeout(None)
        peers = {a: b, b: a}
        while not self._stopping.is_set():
            readable, _, _ = select.select([a, b], [], [], 0.5)
            for s in readable:
                data = s.recv(BUFFER)
                if not data:
                    return
                peers[s].sendall(data)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target-port", type=int, required=True)
    parser.add_argument("--host", action="append", help="host name to tunnel (repeatable; default: every host)")
    args = parser.parse_args()
    proxy = ConnectProxy(args.target_port, hosts=args.host).start()
    sys.stdout.write(json.dumps({"port": proxy.port}) + "\n")
    sys.stdout.flush()
    sys.stdin.read()
    proxy.stop()
    json.dump(proxy.entries(), sys.stderr)
    sys.stderr.write("\n")


if __name__ == "__main__":
    main()
