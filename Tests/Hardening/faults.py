#!/usr/bin/env python3
"""Fault injection through the real syncwizard binary (standard library only).

    python3 Tests/Hardening/faults.py kill9 [--rounds N] [--seed S]
    python3 Tests/Hardening/faults.py concurrent [--processes P] [--writes N]
    python3 Tests/Hardening/faults.py trickle

kill9       spawn syncwizard on one config directory, wait until it answers, pipeline profile
            writes (createProfile, selectCalendarSystem, trustCertificate, setProviderSettings),
            SIGKILL it 1-30 ms later; repeat. After every round the files touched are checked,
            at the end every file: each profile/provider file parses and is valid, no temporary
            file is mistaken for a profile, every acknowledged write is on disk, modes are
            0600/0700. Default 100 rounds; 1000 with SYNCWIZARD_HARDENING_FULL=1.
concurrent  P processes on one directory doing read-modify-writes of the same profile
            (trustCertificate adds a pin) and of providers.json at the same time: nothing lost.
trickle     Exchange testConnection against trickle_server.py (TLS, one byte per second in the
            headers, in the body, in the handshake): `timeout` within the 20 s deadline.

The binary is $SYNCWIZARD_BINARY, else .build/debug/syncwizard. Exit status 0 when all passed.
"""

import argparse
import json
import os
import random
import re
import signal
import stat
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from protocol_client import Server, binary_path, temporary_directory  # noqa: E402

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
TEMP = re.compile(r"^\.(.+)\.tmp-\d+-[0-9A-Za-z]+$")
CALENDARS = ["microsoft365", "exchange", "google"]
PROVIDERS = ["superOffice", "microsoft365", "google"]


def full_run():
    return os.environ.get("SYNCWIZARD_HARDENING_FULL") == "1"


# ---------------------------------------------------------------------------------------------
# Validating the directory


def check_profile_file(path, problems):
    try:
        with open(path, "rb") as f:
            data = json.loads(f.read().decode("utf-8"))
    except Exception as error:  # noqa: BLE001
        problems.append("%s does not parse: %s" % (path, error))
        return None
    stem = os.path.basename(path)[:-5]
    checks = [
        (isinstance(data, dict), "not an object"),
        (data.get("formatVersion") == 1 if isinstance(data, dict) else False, "formatVersion is not 1"),
    ]
    if isinstance(data, dict):
        checks += [
            (data.get("id") == stem, "id %r differs from the file name" % data.get("id")),
            (isinstance(data.get("name"), str) and data["name"] != "", "no name"),
            (isinstance(data.get("createdAt"), str) and isinstance(data.get("updatedAt"), str), "timestamps missing"),
            (isinstance(data.get("superOffice"), dict), "superOffice is not an object"),
            (isinstance(data.get("calendar"), dict) and data["calendar"].get("system") in [None] + CALENDARS, "bad calendar"),
            (all(isinstance(p, dict) and isinstance(p.get("host"), str) and isinstance(p.get("sha256"), str)
                 for p in data.get("trustedCertificates", [])), "bad trustedCertificates"),
        ]
    for good, what in checks:
        if not good:
            problems.append("%s: %s" % (path, what))
            return None
    return data


def check_providers_file(path, problems):
    try:
        with open(path, "rb") as f:
            data = json.loads(f.read().decode("utf-8"))
    except Exception as error:  # noqa: BLE001
        problems.append("%s does not parse: %s" % (path, error))
        return None
    if not (isinstance(data, dict) and data.get("formatVersion") == 1 and isinstance(data.get("providers"), list)
            and all(isinstance(p, dict) and p.get("system") in PROVIDERS and isinstance(p.get("clientId"), str)
                    for p in data["providers"])):
        problems.append("%s is not a valid providers file: %r" % (path, data))
        return None
    return data


def check_mode(path, expected, problems):
    mode = stat.S_IMODE(os.lstat(path).st_mode)
    if mode != expected:
        problems.append("%s has mode %o, expected %o" % (path, mode, expected))


def scan_directory(directory, only_ids=None):
    """Every file under the config directory: (profiles by id, providers or None, temp files, problems)."""
    problems = []
    profiles = {}
    temps = []
    providers = None
    check_mode(directory, 0o700, problems)
    for root, dirs, files in os.walk(directory):
        for d in dirs:
            check_mode(os.path.join(root, d), 0o700, problems)
        rel_root = os.path.relpath(root, directory)
        for name in files:
            path = os.path.join(root, name)
            if TEMP.match(name):
                temps.append(path)  # a write that was killed before its rename: never read
                continue
            check_mode(path, 0o600, problems)
            if rel_root == "." and name == ".lock":
                continue
            if rel_root == "." and name == "providers.json":
                providers = check_providers_file(path, problems)
                continue
            if rel_root == "profiles" and name.endswith(".json") and UUID.match(name[:-5]):
                if only_ids is not None and name[:-5] not in only_ids:
                    profiles[name[:-5]] = None  # exists; content checked in the full scan
                    continue
                profiles[name[:-5]] = check_profile_file(path, problems)
                continue
            problems.append("an unexpected file: %s" % os.path.relpath(path, directory))
    return profiles, providers, temps, problems


# ---------------------------------------------------------------------------------------------
# kill -9 during writes


class History:
    """What was sent and what was acknowledged, in order, per profile and per provider."""

    def __init__(self):
        self.created = {}  # id -> name (acknowledged)
        self.pins = {}  # id -> set of hosts acknowledged
        self.calendar = {}  # id -> [(value, acked)] in send order (one per round)
        self.provider = {}  # system -> [(clientId, acked)]

    @staticmethod
    def allowed(sequence, initial):
        """The final value may be the last acknowledged one or anything sent after it."""
        last_ack = max((i for i, (_, acked) in enumerate(sequence) if acked), default=None)
        if last_ack is None:
            return {initial} | {v for v, _ in sequence}
        return {v for v, _ in sequence[last_ack:]}


def kill9(rounds, seed, binary):
    rng = random.Random(seed)
    directory = temporary_directory("syncwizard-kill9-")
    history = History()
    stats = {"rounds": 0, "killedWithWritesPending": 0, "acknowledged": 0, "sent": 0, "tempFilesLeft": 0,
             "killDelaysMs": [], "startMs": []}
    problems = []
    started = time.monotonic()
    for r in range(rounds):
        t0 = time.monotonic()
        server = Server(binary=binary, config_dir=directory)
        try:
            server.call("ping", timeout=30)
        except TimeoutError as error:
            problems.append("round %d: the process did not answer its first ping: %s" % (r, error))
            server.kill()
            continue
        stats["startMs"].append((time.monotonic() - t0) * 1000)
        lines = []
        expect = {}  # request id -> (kind, detail)
        n = 0

        def add(method, params, kind, detail):
            nonlocal n
            n += 1
            rid = "r%d-%d" % (r, n)
            lines.append(json.dumps({"jsonrpc": "2.0", "id": rid, "method": method, "params": params}))
            expect[rid] = (kind, detail)

        for i in range(rng.randint(2, 12)):
            add("createProfile", {"name": "round %d #%d" % (r, i)}, "create", "round %d #%d" % (r, i))
        known = list(history.created)
        for pid in rng.sample(known, min(len(known), rng.randint(0, 15))):
            value = rng.choice(CALENDARS)
            add("selectCalendarSystem", {"profileId": pid, "system": value}, "calendar", (pid, value))
        for pid in rng.sample(known, min(len(known), rng.randint(0, 15))):
            host = "r%d-%d.pin.test" % (r, rng.randint(0, 1 << 30))
            add("trustCertificate", {"profileId": pid, "host": host, "sha256": "%064x" % rng.getrandbits(256)}, "pin", (pid, host))
        for system in rng.sample(PROVIDERS, rng.randint(0, 2)):
            cid = "client-r%d-%s" % (r, system)
            add("setProviderSettings", {"system": system, "clientId": cid}, "provider", (system, cid))
        rng.shuffle(lines)
        stats["sent"] += len(lines)
        server.send(("\n".join(lines) + "\n").encode())
        delay = rng.uniform(0.001, 0.030)
        stats["killDelaysMs"].append(delay * 1000)
        time.sleep(delay)
        os.kill(server.proc.pid, signal.SIGKILL)
        server.proc.wait()
        server.stdout_closed.wait(5)
        acked = set()
        while True:
            m = server.get(0)
            if m is None:
                break
            v = m.value
            if isinstance(v, dict) and v.get("id") in expect and "result" in v:
                acked.add(v["id"])
                kind, detail = expect[v["id"]]
                if kind == "create":
                    history.created[v["result"]["id"]] = detail
            elif isinstance(v, dict) and v.get("id") in expect:
                problems.append("round %d: %s failed: %s" % (r, expect[v["id"]], m.raw[:300]))
        for v in server.violations:
            problems.append("round %d: stdout: %s" % (r, v))
        # Record the round in send order (requests ran concurrently, but each profile and each
        # provider got at most one write of its kind per round).
        touched = set()
        for rid, (kind, detail) in expect.items():
            ok = rid in acked
            if kind == "calendar":
                history.calendar.setdefault(detail[0], []).append((detail[1], ok))
                touched.add(detail[0])
            elif kind == "pin":
                if ok:
                    history.pins.setdefault(detail[0], set()).add(detail[1])
                touched.add(detail[0])
            elif kind == "provider":
                history.provider.setdefault(detail[0], []).append((detail[1], ok))
        if len(acked) < len(expect):
            stats["killedWithWritesPending"] += 1
        stats["acknowledged"] += len(acked)
        stats["rounds"] += 1
        # The files this round touched, right away (a torn file could be overwritten later).
        profiles, providers, temps, round_problems = scan_directory(directory, only_ids=touched)
        problems += ["round %d: %s" % (r, p) for p in round_problems]
        if len(problems) > 50:
            break

    # The whole directory, then the server's own view of it from a fresh process.
    profiles, providers, temps, final_problems = scan_directory(directory)
    problems += final_problems
    stats["tempFilesLeft"] = len(temps)
    for pid, name in history.created.items():
        if pid not in profiles:
            problems.append("acknowledged profile %s (%s) is missing" % (pid, name))
            continue
        data = profiles[pid]
        if data is None:
            continue
        if data["name"] != name:
            problems.append("profile %s has name %r, acknowledged %r" % (pid, data["name"], name))
        hosts = {p["host"] for p in data.get("trustedCertificates", [])}
        lost = history.pins.get(pid, set()) - hosts
        if lost:
            problems.append("profile %s lost acknowledged pins %s" % (pid, sorted(lost)))
        if pid in history.calendar:
            allowed = History.allowed(history.calendar[pid], None)
            if data["calendar"]["system"] not in allowed:
                problems.append("profile %s has calendar %r; allowed after the acknowledged writes: %s" % (
                    pid, data["calendar"]["system"], allowed))
    stored_providers = {p["system"]: p["clientId"] for p in (providers or {}).get("providers", [])}
    for system, sequence in history.provider.items():
        allowed = History.allowed(sequence, None)
        if stored_providers.get(system) not in allowed:
            problems.append("provider %s has clientId %r; allowed: %s" % (system, stored_providers.get(system), allowed))
    for path in temps:
        name = os.path.basename(path)
        if name.endswith(".json") or UUID.match(name):
            problems.append("a temporary file looks like a profile: %s" % path)

    server = Server(binary=binary, config_dir=directory)
    reply, _ = server.call("listProfiles", timeout=60)
    listed = {p["id"] for p in reply.get("result", {}).get("profiles", [])}
    valid = {pid for pid, data in profiles.items() if data is not None}
    if "result" not in reply:
        problems.append("listProfiles failed after the rounds: %s" % reply)
    elif listed != valid:
        problems.append("listProfiles lists %d profiles, the directory holds %d valid ones (extra %s, missing %s)" % (
            len(listed), len(valid), sorted(listed - valid)[:5], sorted(valid - listed)[:5]))
    for pid in list(history.created)[:200]:
        reply, _ = server.call("getProfile", {"profileId": pid}, timeout=30)
        if "result" not in reply:
            problems.append("getProfile %s after the rounds: %s" % (pid, json.dumps(reply)[:300]))
    reply, _ = server.call("getProviderSettings", timeout=30)
    if "result" not in reply:
        problems.append("getProviderSettings after the rounds: %s" % reply)
    server.close_input()
    server.wait(15)

    elapsed = time.monotonic() - started
    delays = sorted(stats.pop("killDelaysMs"))
    starts = sorted(stats.pop("startMs"))
    stats["profilesCreated"] = len(history.created)
    stats["profileFiles"] = len(profiles)
    stats["seconds"] = round(elapsed, 1)
    if delays:
        stats["killDelayMs"] = "%.1f-%.1f" % (delays[0], delays[-1])
    if starts:
        stats["startToFirstReplyMsMedian"] = round(starts[len(starts) // 2], 1)
    print("kill -9 during profile writes: %d rounds survived, %d killed with writes still pending, "
          "%d of %d writes acknowledged, %d profiles on disk, %d temporary files left by killed writes (never read), %.1f s"
          % (stats["rounds"], stats["killedWithWritesPending"], stats["acknowledged"], stats["sent"], len(profiles),
             stats["tempFilesLeft"], elapsed))
    print(json.dumps(stats))
    return problems, stats


# ---------------------------------------------------------------------------------------------
# Several processes on one directory


def concurrent(processes, writes, binary):
    directory = temporary_directory("syncwizard-concurrent-")
    servers = [Server(binary=binary, config_dir=directory) for _ in range(processes)]
    problems = []
    first, _ = servers[0].call("createProfile", {"name": "Shared"})
    pid = first["result"]["id"]
    started = time.monotonic()
    expected_hosts = set()
    pending = []
    for k, s in enumerate(servers):
        lines = []
        for i in range(writes):
            host = "p%d-%d.contoso.test" % (k, i)
            expected_hosts.add(host)
            lines.append({"jsonrpc": "2.0", "id": "pin-%d" % i, "method": "trustCertificate",
                          "params": {"profileId": pid, "host": host, "sha256": "%064x" % (k * 100000 + i)}})
            if i % 10 == 0:
                lines.append({"jsonrpc": "2.0", "id": "prov-%d" % i, "method": "setProviderSettings",
                              "params": {"system": PROVIDERS[k % 3], "clientId": "p%d-%d" % (k, i)}})
                lines.append({"jsonrpc": "2.0", "id": "sel-%d" % i, "method": "selectCalendarSystem",
                              "params": {"profileId": pid, "system": CALENDARS[(k + i) % 3]}})
                lines.append({"jsonrpc": "2.0", "id": "new-%d" % i, "method": "createProfile",
                              "params": {"name": "p%d-%d" % (k, i)}})
        pending.append({m["id"] for m in lines})
        s.send(("\n".join(json.dumps(m) for m in lines) + "\n").encode())
    created = set()
    for k, s in enumerate(servers):
        deadline = time.monotonic() + 120
        while pending[k] and time.monotonic() < deadline:
            m = s.get(deadline - time.monotonic())
            if m is None:
                break
            v = m.value
            if isinstance(v, dict) and v.get("id") in pending[k]:
                pending[k].discard(v["id"])
                if "result" not in v:
                    problems.append("process %d: %s failed: %s" % (k, v["id"], m.raw[:300]))
                elif v["id"].startswith("new-"):
                    created.add(v["result"]["id"])
        if pending[k]:
            problems.append("process %d: %d requests unanswered" % (k, len(pending[k])))
    elapsed = time.monotonic() - started
    reply, _ = servers[-1].call("getProfile", {"profileId": pid})
    hosts = {p["host"] for p in reply["result"].get("trustedCertificates", [])}
    lost = expected_hosts - hosts
    if lost:
        problems.append("%d of %d pins lost, e.g. %s" % (len(lost), len(expected_hosts), sorted(lost)[:5]))
    reply, _ = servers[0].call("listProfiles")
    listed = {p["id"] for p in reply["result"]["profiles"]}
    if not created <= listed:
        problems.append("%d created profiles missing" % len(created - listed))
    reply, _ = servers[0].call("getProviderSettings")
    systems = {p["system"] for p in reply["result"]["providers"]}
    if systems != set(PROVIDERS[:min(processes, 3)]):
        problems.append("providers.json lost a system: %s" % systems)
    for s in servers:
        s.close_input()
        s.wait(15)
        problems += ["stdout: %s" % v for v in s.violations]
    _, _, _, scan_problems = scan_directory(directory)
    problems += scan_problems
    total = processes * writes
    print("%d processes on one directory: %d read-modify-writes of one profile (+%d other writes) in %.1f s, %d pins lost"
          % (processes, total, processes * (writes // 10) * 3, elapsed, len(lost)))
    return problems, {"processes": processes, "pinWrites": total, "lost": len(lost), "seconds": round(elapsed, 1)}


# ---------------------------------------------------------------------------------------------
# A server that trickles one byte a second


def trickle(binary):
    """overrideEndpoints + testConnection (Exchange) against trickle_server.py: each ends with
    `timeout` within the EWS test's deadline (20 s) plus a margin, and the process keeps serving."""
    deadline_s, margin_s = 20.0, 8.0
    workdir = temporary_directory("syncwizard-trickle-")
    fixture = subprocess.Popen([sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)), "trickle_server.py"),
                                "--workdir", workdir], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    problems = []
    figures = {}
    try:
        ready = json.loads(fixture.stdout.readline() or b"{}")
        if "ports" not in ready:
            return ["trickle_server.py did not start: %s" % fixture.stderr.read(2000)], figures
        args = ["--ca-file", ready["caFile"]]
        for host, port in ready["ports"].items():
            args += ["--connect-to", "%s:443:127.0.0.1:%d" % (host, port)]
        server = Server(args=args, binary=binary)
        ids = {}
        for host in ready["ports"]:
            pid = server.call("createProfile", {"name": host})[0]["result"]["id"]
            server.call("selectCalendarSystem", {"profileId": pid, "system": "exchange"})
            r, _ = server.call("submitExchangeCredentials", {"profileId": pid, "userName": "alice", "domain": "CONTOSO",
                                                             "email": "alice@contoso.test", "password": "Passw0rd!", "autodiscover": False})
            if "result" not in r:
                problems.append("submitExchangeCredentials: %s" % r)
            r, _ = server.call("overrideEndpoints", {"profileId": pid, "ewsUrl": "https://%s/EWS/Exchange.asmx" % host})
            if "result" not in r:
                problems.append("overrideEndpoints: %s" % r)
            ids[host] = pid
        started = time.monotonic()
        for host, pid in ids.items():  # all at once: they run concurrently
            server.send((json.dumps({"jsonrpc": "2.0", "id": host, "method": "testConnection",
                                     "params": {"profileId": pid, "system": "calendar"}}) + "\n").encode())
        waiting = set(ids)
        while waiting and time.monotonic() - started < deadline_s + margin_s + 5:
            m = server.get(deadline_s + margin_s + 5 - (time.monotonic() - started))
            if m is None:
                break
            v = m.value
            if not isinstance(v, dict) or v.get("id") not in waiting:
                continue
            host = v["id"]
            waiting.discard(host)
            elapsed = time.monotonic() - started
            result = ((v.get("result") or {}).get("results") or [{}])[0]
            error = (result.get("error") or {}).get("data") or {}
            figures[host] = {"kind": error.get("kind"), "seconds": round(elapsed, 1), "host": error.get("host")}
            if error.get("kind") != "timeout":
                problems.append("%s: expected timeout, got %s" % (host, m.raw[:400]))
            if elapsed > deadline_s + margin_s:
                problems.append("%s: answered after %.1f s, the deadline is %.0f s" % (host, elapsed, deadline_s))
        for host in waiting:
            problems.append("%s: no answer within %.0f s" % (host, deadline_s + margin_s + 5))
        r, _ = server.call("ping", timeout=5)
        if r.get("result") != {}:
            problems.append("ping after the trickle: %s" % r)
        server.close_input()
        server.wait(15)
        problems += ["stdout: %s" % v for v in server.violations]
        time.sleep(2.2)  # the fixture notices the closed connections on its next byte and logs the counts
    finally:
        fixture.stdin.close()
        try:
            fixture.wait(5)
        except Exception:  # noqa: BLE001
            fixture.kill()
    log = fixture.stderr.read().decode("utf-8", "replace")
    sent = {}
    for line in log.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("kind") in ("closed", "done"):
            sent[entry["host"]] = max(sent.get(entry["host"], 0), entry.get("bytesSent", 0))
    for host in figures:
        figures[host]["bytesTrickled"] = sent.get(host)
    print("one byte per second: " + json.dumps(figures))
    return problems, figures


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=["kill9", "concurrent", "trickle", "all"])
    parser.add_argument("--rounds", type=int, default=1000 if full_run() else 100)
    parser.add_argument("--seed", type=int, default=int(time.time()))
    parser.add_argument("--processes", type=int, default=3)
    parser.add_argument("--writes", type=int, default=300)
    parser.add_argument("--binary", default=binary_path())
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args()
    problems = []
    figures = {}
    if args.what in ("kill9", "all"):
        print("kill9: seed %d" % args.seed)
        p, figures["kill9"] = kill9(args.rounds, args.seed, args.binary)
        problems += p
    if args.what in ("concurrent", "all"):
        p, figures["concurrent"] = concurrent(args.processes, args.writes, args.binary)
        problems += p
    if args.what in ("trickle", "all"):
        p, figures["trickle"] = trickle(args.binary)
        problems += p
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"figures": figures, "problems": problems}, f, indent=1)
    if problems:
        print("\n%d PROBLEMS:" % len(problems))
        for p in problems[:100]:
            print("  " + p)
        return 1
    print("all passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
