#!/usr/bin/env python3
"""Issue 16: every verdict of the wizard step in round trips, over a real 50 ms RTT.

syncwizard (and exchangelib beside it on the Exchange rows) runs in one private network
namespace, the test fakes (Tests/Fixtures/exchange/fake_exchange.py with pyspnego's NTLM
acceptor, Tests/Fixtures/oauth/fake_idp.py) in another; netlab.py's userspace delay line joins
them and holds every packet RTT/2 in each direction. Each row is timed at 0 ms and at the RTT on
the same path, medians of N runs; round trips = (median wall at RTT - median wall at 0) / RTT,
with the RTT measured by timed TCP connects (not the nominal one). Connections, TLS handshakes
(ClientHellos; resumption offers) are counted by the delay line, requests by the fakes' logs.

Rows (a fresh syncwizard process per run, so every connection starts cold, as for a user):
  autodiscover   submitExchangeCredentials, Autodiscover answering at the first candidate
  exchangeTest   testConnection calendar on an Exchange profile (EWS GetFolder + the OAB manifest)
  exchangeBoth   both, as the wizard runs them (submitExchangeCredentials, then testConnection)
  m365SignIn     Microsoft 365: from the browser's callback request to signInCompleted
  m365Test       Microsoft 365: testConnection calendar right after that sign-in

exchangelib 5.6.0 in its own process, routed to the same fake through the same delay line:
  autodiscover   exchangelib.autodiscover.discover (POX: PoxAutodiscovery, which the fake speaks)
  exchangeTest   Account(autodiscover=False, NTLM, version given) and GetFolder of the calendar
  exchangeBoth   Account(autodiscover=True) and GetFolder of the calendar

Run by Benchmarks/wan/run.sh (root: namespaces, TUN devices). Standard library only, except the
exchangelib child (Benchmarks/wan/.venv) and the fakes (pyspnego, trustme, cryptography).
"""
from __future__ import annotations

import argparse
import datetime
import http.client
import json
import os
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
BENCH = os.path.dirname(HERE)
ROOT = os.path.dirname(BENCH)
sys.path.insert(0, BENCH)
sys.path.insert(0, HERE)
import exchange_bench as xb  # noqa: E402  (Fake, Server, the Exchange constants)
import netlab  # noqa: E402

FAKE_EXCHANGE = os.path.join(ROOT, "Tests", "Fixtures", "exchange", "fake_exchange.py")
FAKE_IDP = os.path.join(ROOT, "Tests", "Fixtures", "oauth", "fake_idp.py")
SERVER_IP = netlab.SERVER_IP
BUILD = {"MajorVersion": 15, "MinorVersion": 1, "MajorBuildNumber": 2507, "MinorBuildNumber": 6}

# The paper minimum of each verdict at HTTP/1.1 over TLS 1.3, one round trip each for TCP and
# TLS, counted in the issue (and in BENCHMARKS.md "Round trips at 50 ms RTT").
MINIMUM = {"autodiscover": 4, "exchangeTest": 5, "exchangeBoth": 9, "m365SignIn": 3, "m365Test": 4}
LABEL = {"autodiscover": "submitExchangeCredentials (Autodiscover), happy path",
         "exchangeTest": "testConnection Exchange (GetFolder + OAB)",
         "exchangeBoth": "both, as the wizard runs them",
         "m365SignIn": "Microsoft 365: browser callback → signInCompleted",
         "m365Test": "Microsoft 365: testConnection"}


class Failure(Exception):
    pass


def now():
    return time.perf_counter()


def start_fake(lab, script, config, workdir, label, python):
    """A fake in the server namespace, bound to its address (SYNCWIZARD_FAKE_BIND)."""
    os.makedirs(workdir, exist_ok=True)
    env = dict(os.environ, SYNCWIZARD_FAKE_BIND=SERVER_IP)
    real_popen = subprocess.Popen

    def popen(argv, **kw):   # xb.Fake spawns with subprocess.Popen: run it through ip netns exec
        return real_popen(["ip", "netns", "exec", lab.server_ns] + list(argv), env=env, **kw)

    subprocess.Popen = popen
    try:
        return xb.Fake(script, config, workdir, python, label)
    finally:
        subprocess.Popen = real_popen


# ---------------------------------------------------------------------------------------------
# syncwizard


def exchange_args(fake):
    r = fake.ready
    out = ["--secret-store", "memory", "--ca-file", r["caFile"], "--dns-server", f"{SERVER_IP}:{r['dnsPort']}",
           "--autodiscover-budget", "30"]
    for h in xb.ROUTED_HOSTS:
        out += ["--connect-to", f"{h}:443:{SERVER_IP}:{r['httpsPort']}", "--connect-to", f"{h}:80:{SERVER_IP}:{r['httpPort']}"]
    return out


def idp_args(idp):
    out = ["--secret-store", "memory", "--ca-file", idp.ready["caFile"]]
    for h in idp.ready["hosts"]:
        out += ["--connect-to", f"{h}:443:{SERVER_IP}:{idp.ready['httpsPort']}"]
    return out


def counted(lab, fakes, fn):
    """Runs fn(); returns (its result, what went over the wire meanwhile)."""
    for f in fakes:
        f.entries_since_mark()
    before = lab.counters.snapshot()
    result = fn()
    time.sleep(0.05)   # let the last ACKs through the delay line before counting
    after = lab.counters.snapshot()
    wire = {}
    for f in fakes:
        port = f.ready["httpsPort"]
        a, b = after.get(port, {}), before.get(port, {})
        entries = f.entries_since_mark()
        hosts = {}
        for e in entries:
            if e.get("kind", "request") == "request":
                hosts[e.get("host") or "?"] = hosts.get(e.get("host") or "?", 0) + 1
        wire[f.label] = {"connections": a.get("connections", 0) - b.get("connections", 0),
                         "tlsHandshakes": a.get("tlsHandshakes", 0) - b.get("tlsHandshakes", 0),
                         "tlsResumptionOffers": a.get("tlsResumptionOffers", 0) - b.get("tlsResumptionOffers", 0),
                         "requests": sum(hosts.values()), "requestsByHost": hosts}
        if "dnsPort" in f.ready:
            d = f.ready["dnsPort"]
            wire[f.label]["dnsQueries"] = after.get(d, {}).get("datagrams", 0) - before.get(d, {}).get("datagrams", 0)
    return result, wire


def sw_exchange(binary, lab, fake, workdir, row):
    server = xb.Server(binary, exchange_args(fake), workdir, "sw-" + row)
    try:
        pid = xb.new_exchange_profile(server)
        if row == "exchangeTest":
            server.call("submitExchangeCredentials", xb.submit_params(pid, autodiscover=False))
            server.call("overrideEndpoints", {"profileId": pid, "ewsUrl": xb.EWS_URL, "oabUrl": xb.OAB_URL})

        def run():
            t0 = now()
            if row in ("autodiscover", "exchangeBoth"):
                res = server.call("submitExchangeCredentials", xb.submit_params(pid))
                if res.get("ewsUrl") != xb.EWS_URL:
                    raise Failure(f"syncwizard Autodiscover found {res.get('ewsUrl')!r}")
            if row in ("exchangeTest", "exchangeBoth"):
                check_test(server.call("testConnection", {"profileId": pid, "system": "calendar"}), row)
            return now() - t0

        seconds, wire = counted(lab, [fake], run)
    finally:
        server.close()
    return {"seconds": seconds, "wire": wire}


def check_test(result, row):
    for r in result["results"]:
        if not r.get("ok"):
            raise Failure(f"{row}: testConnection failed: {json.dumps(r)[:600]}")
    return result


class Browser:
    """The user's browser in the client namespace: the provider's pages over TLS (SNI = the
    production name, the fake's CA) through the delay line, the loopback redirect locally."""

    def __init__(self, idp):
        self.port = idp.ready["httpsPort"]
        self.context = ssl.create_default_context(cafile=idp.ready["caFile"])

    def get(self, url):
        u = urllib.parse.urlsplit(url)
        path = (u.path or "/") + ("?" + u.query if u.query else "")
        if u.scheme == "https":
            conn = http.client.HTTPSConnection(u.hostname, self.port, context=self.context, timeout=30)
            raw = socket.create_connection((SERVER_IP, self.port), timeout=30)
            conn.sock = self.context.wrap_socket(raw, server_hostname=u.hostname)
        else:
            if u.hostname not in ("127.0.0.1", "localhost"):
                raise Failure(f"browser: refusing {url[:80]}")
            conn = http.client.HTTPConnection("127.0.0.1", u.port, timeout=30)
        try:
            conn.request("GET", path, headers={"Host": u.netloc})
            resp = conn.getresponse()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
        finally:
            conn.close()


def sw_microsoft(binary, lab, idp, workdir, think_seconds):
    """One process: sign in (timing the callback → signInCompleted), then testConnection."""
    server = xb.Server(binary, idp_args(idp), workdir, "sw-m365")
    try:
        server.call("setProviderSettings", {"system": "microsoft365", "clientId": "syncwizard-microsoft"})
        pid = server.call("createProfile", {"name": "M365"})["id"]
        server.call("selectCalendarSystem", {"profileId": pid, "system": "microsoft365"})
        started = server.call("startSignIn", {"profileId": pid, "system": "microsoft365"})
        browser = Browser(idp)
        status, headers, body = browser.get(started["authorizationUrl"])
        if status != 302 or "location" not in headers:
            raise Failure(f"sign-in: the fake answered {status}: {body[:300]!r}")
        # The user is at the provider's pages for a while (password, MFA, consent): the time
        # syncwizard has to get ready for the callback.
        time.sleep(think_seconds)

        def sign_in():
            # The browser's callback request runs on a thread (in this namespace too: threads
            # inherit it) while this one reads syncwizard's output, so the notification is
            # stamped when it arrives.
            import threading
            page = {}
            t = threading.Thread(target=lambda: page.update(answer=browser.get(headers["location"])))
            t0 = now()
            t.start()
            deadline = xb.now_ns() + 60_000_000_000
            while True:
                for msg, stamp in server.notifications:
                    if msg.get("method") == "signInCompleted":
                        server.notifications.clear()
                        t.join(30)
                        if page.get("answer", (0,))[0] != 200:
                            raise Failure(f"sign-in: the redirect page answered {page.get('answer')!r:.300}")
                        return stamp / 1e9 - t0
                    if msg.get("method") == "signInFailed":
                        raise Failure(f"sign-in failed: {json.dumps(msg)[:600]}")
                if xb.now_ns() > deadline:
                    raise Failure("no signInCompleted within 60 s")
                server.pump_until(xb.now_ns() + 2_000_000)

        sign_in_seconds, sign_in_wire = counted(lab, [idp], sign_in)
        time.sleep(0.3)   # what the wizard does between the two (EWS discovery may still run)

        def test():
            t0 = now()
            check_test(server.call("testConnection", {"profileId": pid, "system": "calendar"}), "m365Test")
            return now() - t0

        test_seconds, test_wire = counted(lab, [idp], test)
    finally:
        server.close()
    return ({"seconds": sign_in_seconds, "wire": sign_in_wire}, {"seconds": test_seconds, "wire": test_wire})


# ---------------------------------------------------------------------------------------------
# exchangelib 5.6.0 (child process in the client namespace)


def exl_run(python, fake, workdir, row):
    r = fake.ready
    spec = {"httpsPort": r["httpsPort"], "httpPort": r["httpPort"], "dnsPort": r["dnsPort"], "hosts": xb.ROUTED_HOSTS,
            "user": f"{xb.DOMAIN}\\{xb.USER}", "password": xb.PASSWORD, "email": xb.EMAIL, "row": row,
            "ews": xb.EWS_URL, "build": BUILD}
    tmp = tempfile.mkdtemp(prefix="exl-", dir=workdir)   # fresh autodiscover cache
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": tmp, "TMPDIR": tmp, "LANG": "C.UTF-8",
           "REQUESTS_CA_BUNDLE": r["caFile"], "NO_PROXY": "*"}
    holder = {}

    def run():
        out = subprocess.run([python, os.path.abspath(__file__), "--exchangelib-child", json.dumps(spec)],
                             capture_output=True, text=True, env=env, timeout=300)
        holder["out"] = out
        return None

    _, wire = counted(LAB[0], [fake], run)
    shutil.rmtree(tmp, ignore_errors=True)
    out = holder["out"]
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    if out.returncode != 0 or not lines:
        raise Failure(f"exchangelib child failed ({out.returncode}): {out.stderr[-2000:]}")
    res = json.loads(lines[-1])
    if res.get("ews") != xb.EWS_URL:
        raise Failure(f"exchangelib found {res.get('ews')!r}")
    return {"seconds": res["seconds"], "version": res["version"], "blocked": res["blocked"], "wire": wire}


LAB = [None]


def exchangelib_child(spec_json):
    """exchangelib routed to the fake: every test host name resolves to the fake's address and
    ports (getaddrinfo), dnspython asks the fake's DNS server, and a guard refuses any connection
    or datagram to an address other than the fake's, so nothing leaves the two namespaces."""
    spec = json.loads(spec_json)
    routes = {}
    for h in spec["hosts"]:
        routes[(h, 443)] = spec["httpsPort"]
        routes[(h, 80)] = spec["httpPort"]
    blocked = []
    real_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):
        name = (host.decode() if isinstance(host, bytes) else host or "").lower().rstrip(".")
        key = (name, int(port) if port not in (None, "") else None)
        if key in routes:
            return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (SERVER_IP, routes[key]))]
        if name in (SERVER_IP, "127.0.0.1"):
            return real_getaddrinfo(name, port, socket.AF_INET, type, proto, flags)
        blocked.append(f"getaddrinfo {name}:{port}")
        raise socket.gaierror(socket.EAI_NONAME, f"benchmark: {name}:{port} is not routed")

    def allowed(address):
        return isinstance(address, tuple) and str(address[0]) in (SERVER_IP, "127.0.0.1")

    real_connect, real_connect_ex, real_sendto = socket.socket.connect, socket.socket.connect_ex, socket.socket.sendto

    def connect(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6) and not allowed(address):
            blocked.append(f"connect {address}")
            raise OSError(f"benchmark guard: refusing to connect to {address}")
        return real_connect(self, address)

    def connect_ex(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6) and not allowed(address):
            blocked.append(f"connect {address}")
            return 111
        return real_connect_ex(self, address)

    def sendto(self, data, *args):
        address = args[-1]
        if self.family in (socket.AF_INET, socket.AF_INET6) and not allowed(address):
            blocked.append(f"sendto {address}")
            raise OSError(f"benchmark guard: refusing to send to {address}")
        return real_sendto(self, data, *args)

    socket.getaddrinfo = getaddrinfo
    socket.socket.connect, socket.socket.connect_ex, socket.socket.sendto = connect, connect_ex, sendto

    import exchangelib
    from exchangelib import DELEGATE, NTLM, Account, Build, Configuration, Credentials, Version
    if exchangelib.__version__.startswith("4."):   # 4.9.0: POX Autodiscover, the fake's protocol
        from exchangelib.autodiscover.discovery.base import BaseAutodiscovery
    else:                                          # 5.x: SOAP Autodiscover only
        from exchangelib.autodiscover.discovery import Autodiscovery as BaseAutodiscovery
    # dnspython (exchangelib checks each host's A record, and looks up SRV) asks the fake only.
    BaseAutodiscovery.DNS_RESOLVER_KWARGS = {"configure": False}
    BaseAutodiscovery.DNS_RESOLVER_ATTRS = dict(BaseAutodiscovery.DNS_RESOLVER_ATTRS,
                                                nameservers=[SERVER_IP], port=spec["dnsPort"])
    credentials = Credentials(spec["user"], spec["password"])
    b = spec["build"]
    version = Version(build=Build(b["MajorVersion"], b["MinorVersion"], b["MajorBuildNumber"], b["MinorBuildNumber"]))
    row = spec["row"]
    t0 = time.perf_counter()
    if row == "autodiscover":
        from exchangelib.autodiscover import discover
        ad, _protocol = discover(spec["email"], credentials)
        ews = ad.protocol.ews_url
    elif row == "exchangeTest":
        config = Configuration(service_endpoint=spec["ews"], credentials=credentials, auth_type=NTLM, version=version)
        account = Account(spec["email"], config=config, autodiscover=False, access_type=DELEGATE)
        _ = account.calendar
        ews = account.protocol.service_endpoint
    else:
        # The version given, as in the GetFolder row: its guess (ResolveNames) is no verdict here.
        config = Configuration(credentials=credentials, auth_type=NTLM, version=version)
        account = Account(spec["email"], config=config, autodiscover=True, access_type=DELEGATE)
        _ = account.calendar
        ews = account.protocol.service_endpoint
    t1 = time.perf_counter()
    print(json.dumps({"seconds": t1 - t0, "ews": ews, "version": exchangelib.__version__, "blocked": blocked}), flush=True)
    return 0


# ---------------------------------------------------------------------------------------------


def summarize(values):
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--syncwizard", action="append", required=False, default=[],
                    help="LABEL=BIN (repeatable; the first is the one the table is about)")
    ap.add_argument("--exchangelib-python", default=os.path.join(HERE, ".venv", "bin", "python"),
                    help="exchangelib 5.6.0 (Benchmarks/wan/.venv): the GetFolder row")
    ap.add_argument("--exchangelib-pox-python", default=os.path.join(HERE, ".venv-pox", "bin", "python"),
                    help="exchangelib 4.9.0 (Benchmarks/wan/.venv-pox): the Autodiscover rows. 5.x speaks only SOAP "
                         "Autodiscover (autodiscover.svc); the fake, like syncwizard, speaks POX (autodiscover.xml)")
    ap.add_argument("--fake-python", default=sys.executable)
    ap.add_argument("--rtt-ms", type=float, default=50.0)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--think-seconds", type=float, default=1.0, help="time the user spends at the provider's pages")
    ap.add_argument("--only", help="comma-separated rows")
    ap.add_argument("--no-exchangelib", action="store_true")
    ap.add_argument("--out", default=os.path.join(BENCH, "results", "wan.json"))
    ap.add_argument("--smoke", action="store_true", help="the delay line alone: RTT by timed connects, then exit")
    ap.add_argument("--exchangelib-child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.exchangelib_child:
        return exchangelib_child(args.exchangelib_child)
    # SIGTERM/SIGINT end the run through the with-block below: namespaces and fakes removed.
    import signal
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if os.geteuid() != 0:
        print("wan_bench.py needs root (network namespaces, TUN devices)", file=sys.stderr)
        return 2
    binaries = []
    for spec in args.syncwizard or [os.path.join(ROOT, ".build", "release", "syncwizard")]:
        label, _, path = spec.rpartition("=")
        binaries.append((label or "syncwizard", path))
    rows = (args.only or "autodiscover,exchangeTest,exchangeBoth,m365SignIn,m365Test").split(",")
    use_exl = not args.no_exchangelib and not args.smoke and os.access(args.exchangelib_python, os.X_OK)
    workdir = tempfile.mkdtemp(prefix="syncwizard-wan-")
    copies = []
    for label, path in ([] if args.smoke else binaries):   # private copies: a rebuild cannot swap them
        dst = os.path.join(workdir, f"bin-{len(copies)}")
        shutil.copy2(path, dst)
        copies.append((label, dst, path))
    one_way = args.rtt_ms / 2
    raw = {}
    started = time.time()
    with netlab.Lab(0) as lab:
        LAB[0] = lab
        fakes = []
        try:
            ex = start_fake(lab, FAKE_EXCHANGE, {
                "users": xb.USERS,
                "hosts": {"contoso.test": {"autodiscover": xb.SETTINGS},
                          "autodiscover.contoso.test": {"autodiscover": xb.SETTINGS},
                          "mail.contoso.test": xb.MAIL}}, os.path.join(workdir, "fake-exchange"), "exchange", args.fake_python)
            fakes.append(ex)
            idp = start_fake(lab, FAKE_IDP, {}, os.path.join(workdir, "fake-idp"), "idp", args.fake_python)
            fakes.append(idp)
            lab.enter_client()
            rtt = {}
            for ms in (0, one_way):
                lab.set_delay(ms)
                med, lo, hi = netlab.timed_connects(ex.ready["httpsPort"], 21)
                rtt[str(ms * 2)] = {"median_ms": med * 1e3, "min_ms": lo * 1e3, "max_ms": hi * 1e3}
                print(f"delay line at {ms * 2:g} ms nominal RTT: TCP connect median {med * 1e3:.2f} ms "
                      f"(min {lo * 1e3:.2f}, max {hi * 1e3:.2f})", file=sys.stderr)
            ex.entries_since_mark()
            raw["rtt"] = rtt
            if args.smoke:
                ok = abs(rtt[str(args.rtt_ms)]["median_ms"] - args.rtt_ms) < 0.25 * args.rtt_ms
                print(json.dumps({"smoke": "ok" if ok else "RTT off", "rtt": rtt}))
                return 0 if ok else 1
            measured = {}
            for r in range(args.runs):
                for delay in ((0, one_way) if r % 2 == 0 else (one_way, 0)):
                    lab.set_delay(delay)
                    key = "rtt" if delay else "zero"
                    for label, binary, _ in copies:
                        for row in rows:
                            if row in ("autodiscover", "exchangeTest", "exchangeBoth"):
                                out = sw_exchange(binary, lab, ex, workdir, row)
                                measured.setdefault(label, {}).setdefault(row, {}).setdefault(key, []).append(out)
                        if "m365SignIn" in rows or "m365Test" in rows:
                            a, b = sw_microsoft(binary, lab, idp, workdir, args.think_seconds)
                            measured.setdefault(label, {}).setdefault("m365SignIn", {}).setdefault(key, []).append(a)
                            measured.setdefault(label, {}).setdefault("m365Test", {}).setdefault(key, []).append(b)
                    if use_exl:
                        for row in ("autodiscover", "exchangeTest", "exchangeBoth"):
                            if row in rows:
                                py = args.exchangelib_python if row == "exchangeTest" else args.exchangelib_pox_python
                                out = exl_run(py, ex, workdir, row)
                                measured.setdefault("exchangelib", {}).setdefault(row, {}).setdefault(key, []).append(out)
                print(f"  round {r + 1}/{args.runs} done", file=sys.stderr, flush=True)
            raw["measured"] = measured
        except (Failure, xb.Failure) as e:
            print(f"FAILED: {e} (work files in {workdir})", file=sys.stderr)
            return 2
        finally:
            for f in fakes:
                f.stop()
    rtt_s = raw["rtt"][str(args.rtt_ms)]["median_ms"] / 1e3
    summary = {}
    for prog, by_row in raw["measured"].items():
        for row, by_key in by_row.items():
            z, d = [x["seconds"] for x in by_key["zero"]], [x["seconds"] for x in by_key["rtt"]]
            s = {"zero": summarize(z), "rtt": summarize(d)}
            s["roundTrips"] = (s["rtt"]["median"] - s["zero"]["median"]) / rtt_s
            s["wire"] = by_key["rtt"][len(by_key["rtt"]) // 2]["wire"]
            summary.setdefault(prog, {})[row] = s
    report = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "rttNominalMs": args.rtt_ms, "rtt": raw["rtt"], "runs": args.runs, "thinkSeconds": args.think_seconds,
              "binaries": {label: path for label, _, path in copies}, "minimum": MINIMUM,
              "seconds": round(time.time() - started, 1), "summary": summary, "raw": raw["measured"]}
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(report, f, indent=1)
        f.write("\n")
    print(render(report, [label for label, _, _ in copies], rows))
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


def wire_text(wire):
    parts = []
    for label, w in wire.items():
        t = f"{label}: {w['connections']} conn, {w['tlsHandshakes']} TLS"
        if w.get("tlsResumptionOffers"):
            t += f" ({w['tlsResumptionOffers']} resumption offers)"
        t += f", {w['requests']} req"
        if w.get("dnsQueries"):
            t += f", {w['dnsQueries']} DNS"
        parts.append(t)
    return "; ".join(parts)


def render(report, labels, rows):
    s = report["summary"]
    rtt = report["rtt"][str(report["rttNominalMs"])]
    lines = [f"Round trips at {report['rttNominalMs']:g} ms nominal RTT (measured: TCP connect median {rtt['median_ms']:.2f} ms), "
             f"medians of {report['runs']} runs, {report['date']}", ""]
    head = "| verdict | " + " | ".join(f"{l} RT" for l in labels) + " | exchangelib RT | minimum | " \
           + " | ".join(f"{l} ÷ min" for l in labels) + " | " + " | ".join(f"{l} s at 0 / at RTT" for l in labels) \
           + " | exchangelib s at 0 / at RTT | on the wire (" + labels[0] + ", at RTT) | exchangelib on the wire |"
    lines += [head, "|" + "---|" * (head.count("|") - 1)]
    for row in rows:
        cells = [LABEL[row]]
        cells += [f"{s[l][row]['roundTrips']:.1f}" if row in s.get(l, {}) else "–" for l in labels]
        e = s.get("exchangelib", {}).get(row)
        cells.append(f"{e['roundTrips']:.1f}" if e else "–")
        cells.append(str(MINIMUM[row]))
        cells += [f"{s[l][row]['roundTrips'] / MINIMUM[row]:.2f}" if row in s.get(l, {}) else "–" for l in labels]
        cells += [f"{s[l][row]['zero']['median']:.3f} / {s[l][row]['rtt']['median']:.3f}" if row in s.get(l, {}) else "–" for l in labels]
        cells.append(f"{e['zero']['median']:.3f} / {e['rtt']['median']:.3f}" if e else "–")
        cells.append(wire_text(s[labels[0]][row]["wire"]) if row in s.get(labels[0], {}) else "–")
        cells.append(wire_text(e["wire"]) if e else "–")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
