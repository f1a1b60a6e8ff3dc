#!/usr/bin/env python3
"""Where a stdio JSON-RPC server's resident memory goes, library by library.

Starts the server, sends one ping (and optionally N pipelined pings, read back in full),
then reads /proc/PID/smaps while the server is still alive and prints RSS per mapped file
(shared libraries, the binary itself, anonymous memory), largest first.

    python3 Benchmarks/rss_breakdown.py [--pipelined N] -- BIN [ARGS...]

Example: SYNCWIZARD_CONFIG_DIR=$(mktemp -d) python3 Benchmarks/rss_breakdown.py \\
             -- .build/release/syncwizard --secret-store memory
"""
import argparse
import collections
import os
import subprocess
import sys
import threading


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pipelined", type=int, default=0, metavar="N")
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("command", nargs=argparse.REMAINDER)
    args = ap.parse_args()
    cmd = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not cmd:
        ap.error("give the server's command after --")
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
    wfd, rfd = proc.stdin.fileno(), proc.stdout.fileno()
    os.write(wfd, b'{"jsonrpc":"2.0","id":0,"method":"ping"}\n')
    buf = b""
    while not buf.endswith(b"\n"):
        chunk = os.read(rfd, 65536)
        if not chunk:
            sys.exit("the server closed its output")
        buf += chunk
    if args.pipelined:
        payload = b"".join(b'{"jsonrpc":"2.0","id":%d,"method":"ping"}\n' % i
                           for i in range(1, args.pipelined + 1))
        t = threading.Thread(target=os.write, args=(wfd, payload), daemon=True)
        t.start()
        got = 0
        while got < args.pipelined:
            chunk = os.read(rfd, 1 << 20)
            if not chunk:
                break
            got += chunk.count(b"\n")
        t.join()
    rss = collections.Counter()
    pss = collections.Counter()
    name = "?"
    with open(f"/proc/{proc.pid}/smaps") as f:
        for line in f:
            parts = line.split()
            if parts and not parts[0].endswith(":"):   # a mapping header line
                name = os.path.basename(parts[5]) if len(parts) > 5 else "[anonymous]"
            elif parts[0] == "Rss:":
                rss[name] += int(parts[1])
            elif parts[0] == "Pss:":
                pss[name] += int(parts[1])
    with open(f"/proc/{proc.pid}/status") as f:
        status = {l.split(":")[0]: l.split(":", 1)[1].strip() for l in f}
    proc.stdin.close()
    proc.wait()
    print(f"VmHWM {status.get('VmHWM')}, RssAnon {status.get('RssAnon')}, RssFile {status.get('RssFile')}, "
          f"threads {status.get('Threads')}")
    print(f"{'RSS KiB':>8} {'PSS KiB':>8}  mapping")
    for key, value in rss.most_common(args.top):
        print(f"{value:8d} {pss[key]:8d}  {key}")
    rest = sum(v for _, v in rss.most_common()[args.top:])
    if rest:
        print(f"{rest:8d} {'':8}  ({len(rss) - args.top} more)")
    print(f"{sum(rss.values()):8d} {sum(pss.values()):8d}  total")


if __name__ == "__main__":
    main()
