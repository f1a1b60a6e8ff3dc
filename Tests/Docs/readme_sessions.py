#!/usr/bin/env python3
"""Runs the shell sessions of the READMEs verbatim and compares what they print, byte for byte.

A session is a fenced shell block (```sh or ```bash) preceded by a marker line

    <!-- readme-test: any words for the reader -->

and followed, after some prose, by the next fenced block: the output it must print. The block is
written to a file and run as it stands with the interpreter of its #! line (bash when it has
none), in a scratch directory that is also HOME and TMPDIR, with the `syncwizard` under test first
on PATH, no SYNCWIZARD_* or XDG_CONFIG_HOME variables, and no reachable Secret Service (so a block
that forgets --secret-store memory fails instead of touching a keyring). It must exit 0 and print
exactly the expected block.

Marker words before the colon:
  skip                 do not run this block (the words after the colon say why)
  ids-and-times-vary   compare with every UUID numbered by first appearance (<uuid-1>, ...) and
                       every RFC 3339 timestamp as <time>, in both outputs

Every shell block that runs syncwizard needs a marker, so a pasteable session cannot slip
past this test. Usage:
  readme_sessions.py --bin PATH/TO/syncwizard [--repeat N] [FILE.md ...]
(default files: README.md and Protocol/README.md of this repository)
"""
import argparse
import difflib
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[2]
FENCE = re.compile(r"^```(\S*)\s*$")
MARKER = re.compile(r"^<!--\s*readme-test\b([^:>]*)(?::[^>]*)?-->\s*$")
RUNS_SYNCWIZARD = re.compile(r"(^|[\s|;&(${/])syncwizard(\s|$|[;|)])", re.M)
FLAGS = {"skip", "ids-and-times-vary"}


class Block:
    def __init__(self, path, line, info, text):
        self.path, self.line, self.info, self.text = path, line, info, text
        self.flags = None  # set of marker words when a marker precedes the block
        self.expected = None

    @property
    def where(self):
        return f"{shown(self.path)}:{self.line}"


def shown(path):
    return path.relative_to(ROOT) if path.is_relative_to(ROOT) else path


def blocks(path):
    """Every fenced block of a Markdown file, with the marker before it (if any)."""
    lines = path.read_text().split("\n")
    found, pending, i = [], None, 0
    while i < len(lines):
        marker = MARKER.match(lines[i])
        if marker:
            words = set(marker[1].split())
            if words - FLAGS:
                sys.exit(f"{path}:{i + 1}: unknown readme-test words {sorted(words - FLAGS)}")
            pending = (i + 1, words)
        fence = FENCE.match(lines[i])
        if fence:
            start = i
            i += 1
            while i < len(lines) and lines[i].strip() != "```":
                i += 1
            block = Block(path, start + 1, fence[1], "\n".join(lines[start + 1:i]) + "\n")
            if pending is not None:
                between = [l for l in lines[pending[0]:start] if l.strip()]
                if between:
                    sys.exit(f"{path}:{pending[0]}: a readme-test marker must come right before its block")
                block.flags, pending = pending[1], None
            found.append(block)
        i += 1
    if pending is not None:
        sys.exit(f"{path}:{pending[0]}: a readme-test marker without a block after it")
    return found


def sessions(path, problems):
    found = blocks(path)
    result = []
    for index, block in enumerate(found):
        shell = block.info in ("sh", "bash", "shell")
        if block.flags is None:
            if shell and RUNS_SYNCWIZARD.search(block.text):
                problems.append(f"{block.where}: this shell block runs syncwizard but has no "
                                "<!-- readme-test --> marker (add one, or '<!-- readme-test skip: why -->')")
            continue
        if not shell:
            problems.append(f"{block.where}: a readme-test marker before a ```{block.info} block (want sh or bash)")
            continue
        if "skip" in block.flags:
            continue
        if index + 1 >= len(found):
            problems.append(f"{block.where}: no block with the expected output after it")
            continue
        block.expected = found[index + 1].text
        result.append(block)
    return result


def normalize(text):
    uuids = {}
    text = re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
                  lambda m: uuids.setdefault(m[0], f"<uuid-{len(uuids) + 1}>"), text)
    return re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)", "<time>", text)


def run(block, binary):
    """Runs the block verbatim; returns a problem description or None."""
    first = block.text.split("\n", 1)[0]
    interpreter = first[2:].split()[-1].rsplit("/", 1)[-1] if first.startswith("#!") else "bash"
    if interpreter not in ("sh", "bash"):
        return f"{block.where}: cannot run a block for {interpreter!r}"
    with tempfile.TemporaryDirectory(prefix="readme-session-") as scratch:
        scratch = pathlib.Path(scratch)
        (scratch / "bin").mkdir()
        (scratch / "bin" / "syncwizard").symlink_to(binary)
        (scratch / "session.sh").write_text(block.text)
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("SYNCWIZARD_") and k not in ("XDG_CONFIG_HOME", "XDG_DATA_HOME")}
        env.update(PATH=f"{scratch / 'bin'}:{os.environ.get('PATH', '/usr/bin:/bin')}",
                   HOME=str(scratch), TMPDIR=str(scratch),
                   DBUS_SESSION_BUS_ADDRESS=f"unix:path={scratch}/no-such-bus")
        try:
            done = subprocess.run([shutil.which(interpreter), "session.sh"], cwd=scratch, env=env,
                                  stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
        except subprocess.TimeoutExpired:
            return f"{block.where}: did not finish within 120 s"
    actual, expected = done.stdout, block.expected
    if "ids-and-times-vary" in block.flags:
        actual, expected = normalize(actual), normalize(expected)
    problems = []
    if done.returncode != 0:
        problems.append(f"exited with status {done.returncode}")
    if actual != expected:
        diff = "".join(difflib.unified_diff(expected.splitlines(True), actual.splitlines(True),
                                            "expected (the README)", "printed"))
        problems.append("printed something else than the README shows:\n" + diff)
    if not problems:
        return None
    return (f"{block.where} ({interpreter}): " + "; ".join(problems) +
            (f"\n--- stderr ---\n{done.stderr}" if done.stderr else ""))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bin", required=True, help="the syncwizard binary to put on PATH")
    parser.add_argument("--repeat", type=int, default=1, help="run every session N times")
    parser.add_argument("files", nargs="*", type=pathlib.Path,
                        default=[ROOT / "README.md", ROOT / "Protocol/README.md"])
    args = parser.parse_args()
    binary = pathlib.Path(args.bin).resolve()
    if not os.access(binary, os.X_OK):
        sys.exit(f"readme_sessions: {binary} is not an executable")
    if not shutil.which("jq"):
        sys.exit("readme_sessions: the sessions need jq (scripts/install-deps.sh --test installs it)")

    problems, count = [], 0
    for path in args.files:
        path = path.resolve()
        found = sessions(path, problems)
        if not found:
            problems.append(f"{shown(path)}: no <!-- readme-test --> session to run")
        for block in found:
            for _ in range(args.repeat):
                count += 1
                problem = run(block, binary)
                if problem:
                    problems.append(problem)
                    break
    for problem in problems:
        print("FAIL " + problem, file=sys.stderr)
    print(f"readme_sessions: {count} runs, {len(problems)} problems", file=sys.stderr)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
