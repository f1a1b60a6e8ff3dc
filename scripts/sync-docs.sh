#!/bin/bash
# The option docs come from one place, the option table of the command-line parser
# (Sources/syncwizard/ServeCommand.swift). This script writes what it generates from it:
#   README.md, Protocol/README.md  the table between <!-- options:begin ... --> and <!-- options:end -->
#                                  (syncwizard --help-markdown)
#   Protocol/openrpc.json          the options sentence of info.description (the option lines of
#                                  syncwizard --help); the build embeds openrpc.json itself
# Usage: scripts/sync-docs.sh [--check] [--bin PATH]
#   --check     change nothing; fail (status 1) naming every stale place
#   --bin PATH  the syncwizard binary to ask (default: the debug build, built first)
set -euo pipefail
cd "$(dirname "$0")/.."
check=0
bin=
while [ $# -gt 0 ]; do
  case "$1" in
    --check) check=1 ;;
    --bin) bin=$2; shift ;;
    *) echo "usage: scripts/sync-docs.sh [--check] [--bin PATH]" >&2; exit 64 ;;
  esac
  shift
done
if [ -z "$bin" ]; then
  swift build --product syncwizard >&2
  bin="$(swift build --show-bin-path)/syncwizard"
fi

python3 - "$check" "$bin" <<'EOF'
import json, pathlib, re, subprocess, sys

check, binary = sys.argv[1] == "1", sys.argv[2]
run = lambda *args: subprocess.run([binary, *args], check=True, capture_output=True, text=True).stdout
table = run("--help-markdown")
options = [m for m in re.findall(r"^  (--\S+(?: <[^>]*>)?)$", run("--help"), re.M)
           if m not in ("--help", "--version")]
if not table.startswith("| option |") or len(options) != table.count("\n") - 2:
    sys.exit(f"sync-docs: unexpected output from {binary} --help-markdown / --help")

stale, problems = [], []

def update(path, old, new):
    if old == new:
        return
    stale.append(path)
    if not check:
        pathlib.Path(path).write_text(new)

# The Markdown tables.
region = re.compile(r"(<!-- options:begin[^\n]*-->\n)(.*?)(<!-- options:end -->)", re.S)
for path in ("README.md", "Protocol/README.md"):
    text = pathlib.Path(path).read_text()
    if len(region.findall(text)) != 1:
        problems.append(f"{path}: needs exactly one <!-- options:begin --> ... <!-- options:end --> region")
        continue
    update(path, text, region.sub(lambda m: m[1] + table + m[3], text))

# The sentence in openrpc.json: everything after the prefix up to the end of its paragraph line.
# Edited in the raw text, so the rest of the file stays byte for byte as it is.
path = "Protocol/openrpc.json"
raw = pathlib.Path(path).read_text()
description = json.loads(raw)["info"]["description"]
encoded = json.dumps(description, ensure_ascii=False)
prefix = "Options (each explained by `syncwizard --help`): "
sentence = re.compile(re.escape(prefix) + r"[^\n]*")
if raw.count(encoded) != 1 or len(sentence.findall(description)) != 1:
    problems.append(f"{path}: info.description needs one sentence starting {prefix!r}")
else:
    updated = sentence.sub(lambda m: prefix + ", ".join(options) + ".", description)
    update(path, raw, raw.replace(encoded, json.dumps(updated, ensure_ascii=False)))

for problem in problems:
    print("sync-docs: " + problem, file=sys.stderr)
if check and stale:
    print("sync-docs: stale option docs in " + ", ".join(stale) +
          "; run scripts/sync-docs.sh to regenerate them from the option table", file=sys.stderr)
for path in stale if not check else []:
    print("sync-docs: updated " + path, file=sys.stderr)
sys.exit(1 if problems or (check and stale) else 0)
EOF

# The binary embeds openrpc.json (rpc.discover): keep the copy in step.

