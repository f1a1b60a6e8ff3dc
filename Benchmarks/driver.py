#!/usr/bin/env python3
"""Benchmark driver: syncwizard side by side with its peers, in one run, on one machine.

Python 3.11, standard library only. Every program under test is a stdio JSON-RPC server
answering `{"jsonrpc":"2.0","id":N,"method":"ping"}`. For each program this measures

  cold     spawn, one ping, read its answer, close stdin, wait for exit       (ms)
  rt       one request at a time: median and p99 round trip, with client and server pinned
           to one CPU and unpinned                                           (us)
  tput     100,000 pipelined requests written by one thread while this thread reads the
           answers; stdin stays open until the last answer is in        (requests/s)
  rss      peak RSS of the server during the throughput run: VmHWM from /proc/PID/status,
           read once the last answer is in and before stdin is closed         (MiB)
           (not wait4's ru_maxrss: for a child spawned from this Python process, Linux
           folds the pre-exec image's high-water mark, i.e. the driver's own ~30 MiB, into it)
  eof      the same 100,000 requests with stdin closed right after the last one: how many
           answers arrive before the server exits; and many short bursts (1,000 requests in
           one write, then EOF at once), which is where a server that exits on EOF without
           waiting for its running handlers loses answers

Rounds alternate the programs (A B C A B C ..., the order rotated each round), so a slow
moment of the machine is shared out instead of landing on one program. Each figure is
reported as median, min and max over the rounds, and syncwizard's medians as ratios to the
peers' medians from the same run. Ratios, never absolute times, decide the exit status.

Usage: driver.py [--quick] --syncwizard BIN [--swiftline BIN] [--mcp BIN] [--cfloor BIN]
                 [--pylsp PYTHON:SCRIPT] [--out FILE]
"""
from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

PING_BODY = '{"jsonrpc":"2.0","id":%d,"method":"ping"}'
ID_RE = re.compile(rb'"id"\s*:\s*(\d+)')
CL_MARK = b"Content-Length:"


# ---------------------------------------------------------------------------------------------
# Programs

class Program:
    """One server under test. `framing` is "ndjson" or "cl" (Content-Length)."""

    def __init__(self, key, label, argv, framing="ndjson", checks_id=True, env=None,
                 rt_requests=None, note=""):
        self.key = key
        self.label = label
        self.argv = argv
        self.framing = framing
        self.checks_id = checks_id   # false for the fixed-answer C floor
        self.env = env
        self.rt_requests = rt_requests  # cap on round-trip requests (a server that polls)
        self.note = note

    def request(self, i: int) -> bytes:
        body = (PING_BODY % i).encode()
        if self.framing == "cl":
            return b"Content-Length: %d\r\n\r\n" % len(body) + body
        return body + b"\n"

    def count_answers(self, data: bytes) -> int:
        """Answers in a complete stream (NDJSON: lines; Content-Length: header blocks)."""
        return data.count(b"\n") if self.framing == "ndjson" else data.count(CL_MARK)


def message_complete(buf: bytes, framing: str) -> bool:
    """True once `buf` holds one whole answer (it never holds more: one request is out)."""
    if framing == "ndjson":
        return buf.endswith(b"\n")
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return False
    m = re.search(rb"Content-Length:\s*(\d+)", buf[:end], re.I)
    return m is not None and len(buf) - (end + 4) >= int(m.group(1))


class Failure(Exception):
    pass


class Watchdog:
    """Kills a server that stops answering, so a run can never hang the benchmark."""

    def __init__(self, proc, seconds):
        self.fired = False
        self.timer = threading.Timer(seconds, self._fire, args=(proc,))
        self.timer.daemon = True
        self.timer.start()

    def _fire(self, proc):
        self.fired = True
        try:
            proc.kill()
        except OSError:
            pass

    def cancel(self):
        self.timer.cancel()


def spawn(prog: Program, stderr):
    return subprocess.Popen(prog.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=stderr, bufsize=0, env=prog.env)


def reap(proc):
    """Waits for the server; returns its exit status."""
    _, status = os.waitpid(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode


def peak_rss_mib(pid):
    """The process's resident high-water mark so far (all its threads share one mm)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return None


def set_cpus(cpus):
    os.sched_setaffinity(0, cpus)


# ---------------------------------------------------------------------------------------------
# Measurements (one process run each)

def measure_cold(prog: Program, log) -> dict:
    req = prog.request(1)
    t0 = time.perf_counter_ns()
    proc = spawn(prog, log)
    dog = Watchdog(proc, 30)
    try:
        os.write(proc.stdin.fileno(), req)
        buf = b""
        rfd = proc.stdout.fileno()
        while not message_complete(buf, prog.framing):
            chunk = os.read(rfd, 65536)
            if not chunk:
                raise Failure(f"{prog.label}: no answer before its output closed")
            buf += chunk
        proc.stdin.close()
        code = reap(proc)
        t1 = time.perf_counter_ns()
    finally:
        dog.cancel()
        proc.stdout.close()
    if dog.fired:
        raise Failure(f"{prog.label}: cold start timed out")
    if prog.checks_id:
        m = ID_RE.search(buf)
        if not m or int(m.group(1)) != 1:
            raise Failure(f"{prog.label}: unexpected answer {buf[:200]!r}")
    return {"ms": (t1 - t0) / 1e6, "exit": code}


def measure_roundtrip(prog: Program, n: int, warmup: int, log) -> dict:
    n = min(n, prog.rt_requests or n)
    warmup = min(warmup, n // 10 + 1)
    reqs = [prog.request(i) for i in range(1, n + warmup + 1)]
    proc = spawn(prog, log)
    dog = Watchdog(proc, 20 + n * 0.05)
    wfd, rfd = proc.stdin.fileno(), proc.stdout.fileno()
    framing = prog.framing
    lat = []
    bad = 0
    clock = time.perf_counter_ns
    try:
        for i, req in enumerate(reqs, 1):
            t0 = clock()
            os.write(wfd, req)
            buf = os.read(rfd, 65536)
            while not message_complete(buf, framing):
                chunk = os.read(rfd, 65536)
                if not chunk:
                    raise Failure(f"{prog.label}: output closed during the round-trip run")
                buf += chunk
            t1 = clock()
            if i > warmup:
                lat.append(t1 - t0)
            if prog.checks_id:
                m = ID_RE.search(buf)
                if not m or int(m.group(1)) != i:
                    bad += 1
        proc.stdin.close()
        reap(proc)
    except OSError as e:
        raise Failure(f"{prog.label}: {e}") from e
    finally:
        dog.cancel()
        proc.stdout.close()
    if dog.fired:
        raise Failure(f"{prog.label}: round-trip run timed out")
    if bad:
        raise Failure(f"{prog.label}: {bad} answers with the wrong id")
    lat.sort()
    return {"median_us": statistics.median(lat) / 1e3,
            "p99_us": lat[math.ceil(0.99 * len(lat)) - 1] / 1e3,
            "requests": len(lat)}


def measure_pipelined(prog: Program, n: int, close_at_once: bool, log) -> dict:
    """Writer thread sends n requests as fast as the pipe takes them; this thread reads.

    close_at_once=False (throughput): stdin stays open until the n-th answer is in.
    close_at_once=True (EOF delivery): stdin is closed right after the last request and
    everything up to the server's exit is counted."""
    payload = b"".join(prog.request(i) for i in range(1, n + 1))
    proc = spawn(prog, log)
    dog = Watchdog(proc, 120)
    wfd, rfd = proc.stdin.fileno(), proc.stdout.fileno()
    write_error = []

    def writer():
        view = memoryview(payload)
        try:
            while view:
                k = os.write(wfd, view[:1 << 16])
                view = view[k:]
            if close_at_once:
                proc.stdin.close()
        except OSError as e:   # the server went away early
            write_error.append(e)

    chunks = []
    rss = None
    got = 0
    tail = b""
    ndjson = prog.framing == "ndjson"
    t0 = time.perf_counter_ns()
    t_last = t0
    th = threading.Thread(target=writer, daemon=True)
    th.start()
    try:
        while close_at_once or got < n:
            chunk = os.read(rfd, 1 << 20)
            if not chunk:
                break
            t_last = time.perf_counter_ns()
            chunks.append(chunk)
            if ndjson:
                got += chunk.count(b"\n")
            else:   # a header may straddle two reads: keep a short tail of the last read
                joined = tail + chunk
                got += joined.count(CL_MARK)
                tail = joined[-(len(CL_MARK) - 1):]
        th.join()
        if not close_at_once:
            rss = peak_rss_mib(proc.pid)   # every answer is out; the server is idle, still alive
            proc.stdin.close()
            # Drain anything further (there should be nothing) so the server never blocks.
            while os.read(rfd, 1 << 20):
                pass
        code = reap(proc)
    finally:
        dog.cancel()
        proc.stdout.close()
    if dog.fired:
        raise Failure(f"{prog.label}: pipelined run timed out after {got} answers")
    result = {"answers": got, "requests": n, "exit": code, "rss_mib": rss,
              "seconds": (t_last - t0) / 1e9}
    if not close_at_once:
        if got < n:
            raise Failure(f"{prog.label}: only {got}/{n} answers with stdin open")
        result["rps"] = n / result["seconds"]
    if prog.checks_id:
        ids = set(int(m) for m in ID_RE.findall(b"".join(chunks)))
        result["distinct_ids_ok"] = len(ids & set(range(1, n + 1)))
        if not close_at_once and result["distinct_ids_ok"] != n:
            raise Failure(f"{prog.label}: answers missing ids ({result['distinct_ids_ok']}/{n})")
    return result


# ---------------------------------------------------------------------------------------------
# Orchestration

def summarize(values):
    values = [v for v in values if v is not None]
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "n": len(values)}


def alternate(programs, rounds, fn, what):
    """Runs fn(program) for rounds x programs, order rotated each round. Returns per key."""
    out = {p.key: [] for p in programs}
    for r in range(rounds):
        k = r % len(programs)
        order = programs[k:] + programs[:k]
        for p in order:
            out[p.key].append(fn(p))
        print(f"  {what}: round {r + 1}/{rounds} done", file=sys.stderr, flush=True)
    return out


def machine_info():
    info = {"nproc": os.cpu_count(), "kernel": platform.release(),
            "python": platform.python_version()}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        out = subprocess.run(["swift", "--version"], capture_output=True, text=True, timeout=30)
        info["swift"] = (out.stdout or out.stderr).splitlines()[0].strip()
    except (OSError, subprocess.SubprocessError, IndexError):
        info["swift"] = "unknown"
    try:
        here = os.path.dirname(os.path.abspath(__file__))
        rev = subprocess.run(["git", "-C", here, "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", here, "status", "--porcelain", "--", "../Sources"],
                               capture_output=True, text=True).stdout.strip()
        info["syncwizard_commit"] = rev + ("+uncommitted Sources" if dirty else "")
    except OSError:
        pass
    return info


def binary_info(path):
    """Identity of a binary under test: hash, size and how many shared libraries it loads."""
    import hashlib
    info = {"path": path}
    try:
        with open(path, "rb") as f:
            info["sha256"] = hashlib.sha256(f.read()).hexdigest()[:16]
        info["bytes"] = os.path.getsize(path)
        out = subprocess.run(["ldd", path], capture_output=True, text=True, timeout=30).stdout
        libs = [line.split()[0] for line in out.splitlines() if line.strip() and "vdso" not in line]
        info["shared_libraries"] = len(libs)
    except (OSError, subprocess.SubprocessError):
        pass
    return info


def build_programs(args, config_dir):
    progs = []
    sw_env = dict(os.environ, SYNCWIZARD_CONFIG_DIR=config_dir, SYNCWIZARD_LOG_LEVEL="notice")
    sw_argv = [args.syncwizard, "--secret-store", "memory"]
    progs.append(Program("syncwizard", "syncwizard (NDJSON)", sw_argv, "ndjson", env=sw_env))
    progs.append(Program("syncwizard-cl", "syncwizard (Content-Length)", sw_argv, "cl", env=sw_env))
    for n, spec in enumerate(args.also or []):
        label, _, path = spec.partition("=")
        progs.append(Program(f"sw-alt{n + 1}", label, [path, "--secret-store", "memory"], "ndjson",
                             env=sw_env, note="another syncwizard build, for comparison"))
    if args.swiftline:
        progs.append(Program("swiftline", "Swift line server (Foundation)", [args.swiftline]))
    if args.mcp:
        progs.append(Program("mcp", "MCP swift-sdk 0.12.1", [args.mcp],
                             rt_requests=args.mcp_rt_requests,
                             note="polls stdin every 10 ms: round trip capped at "
                                  f"{args.mcp_rt_requests} requests"))
    if args.pylsp:
        python, script = args.pylsp.split(":", 1)
        progs.append(Program("pylsp", "python-lsp-jsonrpc", [python, script], "cl"))
    if args.cfloor:
        progs.append(Program("cfloor", "C floor (fixed answer)", [args.cfloor], checks_id=False))
    if not args.no_cat:
        progs.append(Program("cat", "cat (echo)", [shutil.which("cat") or "/bin/cat"]))
    if args.only:
        keep = set(args.only.split(","))
        progs = [p for p in progs if p.key in keep]
    return progs


# Targets from issue 7, as ratios of syncwizard's median to a peer's median in the same run.
# (metric, syncwizard row, peer, comparison, bound, text)
TARGETS = [
    ("cold_ms", "syncwizard", "swiftline", "<=", 1.6, "cold start <= 1.6x the Swift line server"),
    ("cold_ms", "syncwizard", "mcp", "<=", 1 / 2.5, "cold start >= 2.5x faster than MCP swift-sdk"),
    ("cold_ms", "syncwizard", "pylsp", "<=", 1 / 2.5, "cold start >= 2.5x faster than python-lsp-jsonrpc"),
    ("rps", "syncwizard", "swiftline", ">=", 0.7, "throughput >= 0.7x the Swift line server"),
    ("rps", "syncwizard", "pylsp", ">=", 2.0, "throughput >= 2x python-lsp-jsonrpc"),
    ("rps", "syncwizard-cl", "pylsp", ">=", 2.0, "throughput (Content-Length) >= 2x python-lsp-jsonrpc"),
    ("rps", "syncwizard", "mcp", ">=", 8.0, "throughput >= 8x MCP swift-sdk"),
    ("rt_pinned_median_us", "syncwizard", "cfloor", "<=", 2.0, "pinned round trip median <= 2x the C floor"),
    ("rt_pinned_p99_us", "syncwizard", "cfloor", "<=", 3.0, "pinned round trip p99 <= 3x the C floor"),
]
# Gross regressions: the only things that fail a run (CI's quick mode). Ratios only.
GROSS = [
    ("rps", "syncwizard", "swiftline", ">=", 0.25, "throughput < 0.25x the Swift line server"),
    ("cold_ms", "syncwizard", "swiftline", "<=", 4.0, "cold start > 4x the Swift line server"),
    ("rt_pinned_median_us", "syncwizard", "cfloor", "<=", 8.0, "pinned round trip median > 8x the C floor"),
    ("rss_mib", "syncwizard", "swiftline", "<=", 8.0, "peak RSS > 8x the Swift line server's"),
]


def compare(value, op, bound):
    return value <= bound if op == "<=" else value >= bound


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="few rounds, fewer requests (CI)")
    ap.add_argument("--syncwizard", required=True)
    ap.add_argument("--swiftline")
    ap.add_argument("--mcp")
    ap.add_argument("--cfloor")
    ap.add_argument("--pylsp", help="PYTHON:SCRIPT")
    ap.add_argument("--also", action="append", metavar="LABEL=BIN",
                    help="another syncwizard build to measure alongside (NDJSON; no ratios)")
    ap.add_argument("--no-cat", action="store_true")
    ap.add_argument("--only", help="comma-separated program keys (for development)")
    ap.add_argument("--mcp-rt-requests", type=int, default=500)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                  "results", "latest.json"))
    ap.add_argument("--markdown", help="also write the tables as Markdown to this file")
    args = ap.parse_args(argv)

    if args.quick:
        cfg = {"cold_rounds": 10, "rt_requests": 2000, "rt_rounds": 2, "tput_requests": 20000,
               "tput_rounds": 2, "eof_rounds": 1, "burst_rounds": 10}
    else:
        cfg = {"cold_rounds": 40, "rt_requests": 10000, "rt_rounds": 5, "tput_requests": 100000,
               "tput_rounds": 5, "eof_rounds": 3, "burst_rounds": 20}
    cfg["rt_warmup"] = 200
    cfg["burst_requests"] = 1000
    cfg["pin_cpu"] = 0

    all_cpus = os.sched_getaffinity(0)
    workdir = tempfile.mkdtemp(prefix="syncwizard-bench-")
    config_dir = os.path.join(workdir, "config")
    os.mkdir(config_dir)
    progs = build_programs(args, config_dir)
    logs = {p.key: open(os.path.join(workdir, p.key + ".stderr"), "ab") for p in progs}
    print(f"programs: {', '.join(p.label for p in progs)}; stderr logs in {workdir}",
          file=sys.stderr)
    machine = machine_info()   # before measuring: the commit that was built, not a later one
    started = time.time()
    raw = {}
    try:
        raw["cold"] = alternate(progs, cfg["cold_rounds"], lambda p: measure_cold(p, logs[p.key]), "cold start")
        pin = {cfg["pin_cpu"]}
        set_cpus(pin)
        try:
            raw["rt_pinned"] = alternate(progs, cfg["rt_rounds"], lambda p: measure_roundtrip(
                p, cfg["rt_requests"], cfg["rt_warmup"], logs[p.key]), "round trip pinned to CPU 0")
        finally:
            set_cpus(all_cpus)
        raw["rt_unpinned"] = alternate(progs, cfg["rt_rounds"], lambda p: measure_roundtrip(
            p, cfg["rt_requests"], cfg["rt_warmup"], logs[p.key]), "round trip unpinned")
        raw["tput"] = alternate(progs, cfg["tput_rounds"], lambda p: measure_pipelined(
            p, cfg["tput_requests"], False, logs[p.key]), "pipelined throughput")
        raw["eof"] = alternate(progs, cfg["eof_rounds"], lambda p: measure_pipelined(
            p, cfg["tput_requests"], True, logs[p.key]), "EOF right after the last request")
        raw["eof_burst"] = alternate(progs, cfg["burst_rounds"], lambda p: measure_pipelined(
            p, cfg["burst_requests"], True, logs[p.key]), "bursts of 1,000 requests, then EOF")
    except Failure as e:
        print(f"FAILED: {e} (stderr logs in {workdir})", file=sys.stderr)
        return 2
    finally:
        for f in logs.values():
            f.close()
    elapsed = time.time() - started

    # Per program summaries.
    results = {}
    for p in progs:
        k = p.key
        r = {"label": p.label, "framing": p.framing, "argv": p.argv, "note": p.note}
        if k.startswith(("syncwizard", "sw-alt")):
            r["binary"] = binary_info(p.argv[0])
        r["cold_ms"] = summarize([x["ms"] for x in raw["cold"][k]])
        for mode in ("pinned", "unpinned"):
            runs = raw["rt_" + mode][k]
            r[f"rt_{mode}_median_us"] = summarize([x["median_us"] for x in runs])
            r[f"rt_{mode}_p99_us"] = summarize([x["p99_us"] for x in runs])
            r[f"rt_{mode}_requests"] = runs[0]["requests"]
        r["rps"] = summarize([x["rps"] for x in raw["tput"][k]])
        r["rss_mib"] = summarize([x["rss_mib"] for x in raw["tput"][k]])
        r["eof_delivered"] = summarize([x["answers"] for x in raw["eof"][k]])
        r["eof_requests"] = cfg["tput_requests"]
        bursts = [x["answers"] for x in raw["eof_burst"][k]]
        r["eof_burst"] = {"runs": len(bursts), "complete": sum(b == cfg["burst_requests"] for b in bursts),
                          "fewest_answers": min(bursts), "requests": cfg["burst_requests"]}
        results[k] = r

    # Ratios of syncwizard's medians to each peer's medians (same run).
    metrics = ["cold_ms", "rt_pinned_median_us", "rt_pinned_p99_us", "rt_unpinned_median_us",
               "rt_unpinned_p99_us", "rps", "rss_mib"]
    ratios = {}
    for sw in ("syncwizard", "syncwizard-cl"):
        if sw not in results:
            continue
        ratios[sw] = {}
        for p in progs:
            if p.key.startswith(("syncwizard", "sw-alt")):
                continue
            ratios[sw][p.key] = {m: results[sw][m]["median"] / results[p.key][m]["median"]
                                 for m in metrics if results[sw][m] and results[p.key][m]
                                 and results[p.key][m]["median"]}

    def evaluate(table):
        out = []
        for metric, sw, peer, op, bound, text in table:
            if sw in ratios and peer in ratios[sw] and metric in ratios[sw][peer]:
                v = ratios[sw][peer][metric]
                out.append({"target": text, "metric": metric, "program": sw, "peer": peer,
                            "ratio": v, "bound": bound, "op": op, "met": compare(v, op, bound)})
        return out

    targets = evaluate(TARGETS)
    if "syncwizard" in results:
        sw = results["syncwizard"]
        targets.append({"target": f"peak RSS <= 15 MiB in the {cfg['tput_requests']:,}-request pipelined run",
                        "metric": "rss_mib", "program": "syncwizard", "value": sw["rss_mib"]["median"],
                        "met": sw["rss_mib"]["max"] <= 15.0, "absolute": True})
        for key in ("syncwizard", "syncwizard-cl"):
            if key in results:
                d = results[key]["eof_delivered"]
                b = results[key]["eof_burst"]
                targets.append({"target": f"every answer delivered when EOF follows at once ({results[key]['label']})",
                                "metric": "eof_delivered", "program": key, "value": d["min"],
                                "bursts": b, "met": d["min"] == cfg["tput_requests"] and b["complete"] == b["runs"]})
    gross = evaluate(GROSS)
    for key in ("syncwizard", "syncwizard-cl"):
        if key in results:
            d = results[key]["eof_delivered"]
            b = results[key]["eof_burst"]
            gross.append({"target": f"answers lost when EOF follows at once ({key})",
                          "metric": "eof_delivered", "program": key, "value": d["min"],
                          "met": d["min"] == cfg["tput_requests"] and b["complete"] == b["runs"]})

    report = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "mode": "quick" if args.quick else "full", "config": cfg, "machine": machine,
              "seconds": round(elapsed, 1), "programs": results, "ratios": ratios,
              "targets": targets, "gross_regression_checks": gross, "raw": raw}
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(report, f, indent=1)
        f.write("\n")

    text = render(report, progs)
    print(text)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(text)
    print(f"wrote {args.out} ({elapsed:.0f} s of measuring)", file=sys.stderr)
    shutil.rmtree(workdir, ignore_errors=True)

    failed = [g for g in gross if not g["met"]]
    for g in failed:
        print(f"GROSS REGRESSION: {g['target']} "
              f"({g.get('ratio', g.get('value')):.3g})", file=sys.stderr)
    return 1 if failed else 0


def fmt(s, digits=None, scale=1.0):
    if not s:
        return "-"
    def f(v):
        v *= scale
        if digits is not None:
            return f"{v:.{digits}f}"
        return f"{v:,.0f}" if v >= 100 else f"{v:.3g}"
    return f"{f(s['median'])} ({f(s['min'])}–{f(s['max'])})"


def render(report, progs):
    res = report["programs"]
    cfg = report["config"]
    lines = []
    m = report["machine"]
    lines.append(f"Mode {report['mode']}; {m.get('cpu', '?')}, {m['nproc']} CPUs, kernel {m['kernel']}, "
                 f"{m.get('swift', '?')}; syncwizard {m.get('syncwizard_commit', '?')}; {report['date']}")
    lines.append(f"Rounds: cold {cfg['cold_rounds']}, round trip {cfg['rt_rounds']} x {cfg['rt_requests']} requests, "
                 f"pipelined {cfg['tput_rounds']} x {cfg['tput_requests']} (EOF check {cfg['eof_rounds']}x, "
                 f"plus {cfg['burst_rounds']} bursts of {cfg['burst_requests']} then EOF). "
                 "Cells: median (min–max over rounds).")
    lines.append("")
    lines.append("| program | cold start ms | RT pinned median µs | RT pinned p99 µs | RT unpinned median µs "
                 "| RT unpinned p99 µs | throughput req/s | peak RSS MiB | answers, EOF at once | bursts complete |")
    lines.append("|---|---|---|---|---|---|---|---|---|---|")
    for p in progs:
        r = res[p.key]
        capped = "" if r["rt_pinned_requests"] >= cfg["rt_requests"] else f" [{r['rt_pinned_requests']} req]"
        d = r["eof_delivered"]
        delivered = f"{d['min']:,.0f}/{r['eof_requests']:,}" + ("" if d["min"] == d["max"] else f" (max {d['max']:,.0f})")
        lines.append(f"| {r['label']} | {fmt(r['cold_ms'])} | {fmt(r['rt_pinned_median_us'])}{capped} "
                     f"| {fmt(r['rt_pinned_p99_us'])} | {fmt(r['rt_unpinned_median_us'])} | {fmt(r['rt_unpinned_p99_us'])} "
                     f"| {fmt(r['rps'])} | {fmt(r['rss_mib'], 1)} | {delivered} "
                     f"| {r['eof_burst']['complete']}/{r['eof_burst']['runs']}"
                     + ("" if r['eof_burst']['complete'] == r['eof_burst']['runs']
                        else f" (fewest {r['eof_burst']['fewest_answers']})") + " |")
    lines.append("")
    names = {"cold_ms": "cold start", "rt_pinned_median_us": "RT pinned median",
             "rt_pinned_p99_us": "RT pinned p99", "rt_unpinned_median_us": "RT unpinned median",
             "rt_unpinned_p99_us": "RT unpinned p99", "rps": "throughput", "rss_mib": "peak RSS"}
    for sw, per_peer in report["ratios"].items():
        peers = list(per_peer)
        lines.append(f"Ratios, {res[sw]['label']} ÷ peer (medians; < 1 is faster/smaller, except throughput "
                     "where > 1 is better):")
        lines.append("")
        lines.append("| metric | " + " | ".join(res[k]["label"] for k in peers) + " |")
        lines.append("|---|" + "---|" * len(peers))
        for metric, name in names.items():
            cells = [f"{per_peer[k][metric]:.3g}" if metric in per_peer[k] else "-" for k in peers]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines.append("")
    lines.append("Targets (issue 7):")
    lines.append("")
    lines.append("| target | measured | met |")
    lines.append("|---|---|---|")
    for t in report["targets"]:
        if "ratio" in t:
            measured = f"{t['ratio']:.2f}x (bound {t['op']} {t['bound']:.2f})"
        elif t["metric"] == "rss_mib":
            measured = f"{t['value']:.1f} MiB"
        else:
            measured = (f"{t['value']:,.0f}/{cfg['tput_requests']:,}; bursts complete "
                        f"{t['bursts']['complete']}/{t['bursts']['runs']}")
        lines.append(f"| {t['target']} | {measured} | {'met' if t['met'] else 'MISSED'} |")
    lines.append("")
    bad = [g for g in report["gross_regression_checks"] if not g["met"]]
    lines.append("Gross-regression checks: " + ("all passed" if not bad else
                 "FAILED: " + "; ".join(g["target"] for g in bad)))
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
