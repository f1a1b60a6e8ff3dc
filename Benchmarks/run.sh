#!/bin/bash
# Benchmarks syncwizard side by side with its peers, in one run on this machine.
#
#   Benchmarks/run.sh            full run (about 5 minutes, plus about 4 for the Exchange rows):
#                                Benchmarks/results/latest.json and Benchmarks/results/exchange.json
#   Benchmarks/run.sh --quick    CI variant (under 2 minutes): Benchmarks/results/quick.json;
#                                exits non-zero only on a gross regression, measured as a
#                                ratio against a peer in the same run
#
# Any further arguments go to driver.py (e.g. --only syncwizard,cfloor). Environment:
#   SYNCWIZARD_BIN=PATH   use this binary instead of building syncwizard
#   BENCH_MCP=0|1         build and measure the MCP swift-sdk peer (default: 1, 0 with --quick)
#   BENCH_HYPERFINE=0|1   hyperfine cross-check of cold start (default: 1, 0 with --quick)
#   BENCH_EXCHANGE=0|1    Benchmarks/exchange_bench.py: ping under 50 Autodiscovers, Autodiscover
#                         with a hanging candidate against exchangelib, testConnection of both
#                         sides (default: 1, 0 with --quick; needs python3 with pyspnego, trustme)
#
# Installs what it needs: python-lsp-jsonrpc (and, for the Exchange rows, exchangelib 4.9.0)
# into Benchmarks/.venv (PyPI), hyperfine from Debian when the cross-check is on (optional:
# skipped if it cannot be installed).
# Builds every peer in release mode under Benchmarks/ (ignored by git).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/.." && pwd)"
quick=0
driver_args=()
for a in "$@"; do
    case "$a" in
        --quick) quick=1; driver_args+=("$a") ;;
        *) driver_args+=("$a") ;;
    esac
done
if [ "$quick" = 1 ]; then
    want_mcp="${BENCH_MCP:-0}"; want_hyperfine="${BENCH_HYPERFINE:-0}"; out="$here/results/quick.json"
    want_exchange="${BENCH_EXCHANGE:-0}"
else
    want_mcp="${BENCH_MCP:-1}"; want_hyperfine="${BENCH_HYPERFINE:-1}"; out="$here/results/latest.json"
    want_exchange="${BENCH_EXCHANGE:-1}"
fi
say() { printf 'bench: %s\n' "$*" >&2; }
started=$SECONDS

# --- syncwizard -------------------------------------------------------------------------------
if [ -n "${SYNCWIZARD_BIN:-}" ]; then
    sw="$SYNCWIZARD_BIN"
else
    say "building syncwizard (release)"
    (cd "$root" && swift build -c release --product syncwizard 2>&1 | tail -n 3) >&2
    sw="$(cd "$root" && swift build -c release --show-bin-path)/syncwizard"
fi
[ -x "$sw" ] || { say "no syncwizard binary at $sw (run 'make build' first)"; exit 2; }

# --- peers --------------------------------------------------------------------------------------
say "building the Swift line server (release)"
(cd "$here/Peers/SwiftLineServer" && swift build -c release 2>&1 | tail -n 1) >&2
swiftline="$(cd "$here/Peers/SwiftLineServer" && swift build -c release --show-bin-path)/SwiftLineServer"

mcp_args=()
if [ "$want_mcp" = 1 ]; then
    say "building the MCP swift-sdk 0.12.1 peer (release; about 40 s the first time)"
    (cd "$here/Peers/MCPServer" && swift build -c release 2>&1 | tail -n 1) >&2
    mcp_args=(--mcp "$(cd "$here/Peers/MCPServer" && swift build -c release --show-bin-path)/MCPServer")
fi

say "building the C floor"
mkdir -p "$here/.build"
cc -O2 -Wall -Wextra -o "$here/.build/cfloor" "$here/Peers/cfloor.c"

venv="$here/.venv"
if ! "$venv/bin/python" -c 'import pylsp_jsonrpc' 2>/dev/null; then
    say "installing python-lsp-jsonrpc into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check 'python-lsp-jsonrpc==1.1.2'
fi
# exchangelib 4.9.0: the last release whose Autodiscover is POX (autodiscover.xml), the protocol
# syncwizard and the fake Exchange speak; 5.x only does SOAP Autodiscover (autodiscover.svc).
if [ "$want_exchange" = 1 ] \
    && ! "$venv/bin/python" -c 'import sys, exchangelib; sys.exit(exchangelib.__version__ != "4.9.0")' 2>/dev/null; then
    say "installing exchangelib 4.9.0 into $venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check 'exchangelib==4.9.0'
fi

# --- measure ------------------------------------------------------------------------------------
mkdir -p "$here/results"
status=0
python3 "$here/driver.py" --syncwizard "$sw" --swiftline "$swiftline" "${mcp_args[@]}" \
    --cfloor "$here/.build/cfloor" --pylsp "$venv/bin/python:$here/Peers/pylsp_server.py" \
    --out "$out" "${driver_args[@]}" || status=$?

# --- Exchange rows: responsiveness, hanging Autodiscover candidate vs exchangelib, testConnection -
if [ "$want_exchange" = 1 ] && [ "$status" -ne 2 ]; then
    if python3 -c 'import spnego, trustme, cryptography' 2>/dev/null; then
        say "Exchange rows (Benchmarks/exchange_bench.py, about 4 minutes)"
        exchange_args=(--out "$here/results/exchange.json")
        if [ "$quick" = 1 ]; then   # BENCH_EXCHANGE=1 with --quick: fewer rounds, no exchangelib
            exchange_args=(--quick --out "$here/results/exchange-quick.json")
        fi
        python3 "$here/exchange_bench.py" --syncwizard "$sw" --exchangelib-python "$venv/bin/python" \
            "${exchange_args[@]}" || { s=$?; [ "$status" -ne 0 ] || status=$s; }
    else
        say "python3 lacks pyspnego/trustme/cryptography (scripts/install-deps.sh): Exchange rows skipped"
    fi
fi

# --- optional cross-check with hyperfine (cold start through a shell pipe, EOF at once) ----------
if [ "$want_hyperfine" = 1 ] && [ "$status" -ne 2 ]; then
    if ! command -v hyperfine >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        say "installing hyperfine (optional)"
        apt-get install -y -qq --no-install-recommends hyperfine >/dev/null 2>&1 \
            || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq --no-install-recommends hyperfine >/dev/null 2>&1; } \
            || say "hyperfine not installable; skipping the cross-check"
    fi
    if command -v hyperfine >/dev/null; then
        cfg="$(mktemp -d)"
        ping="printf '%s\\n' '{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}'"
        SYNCWIZARD_CONFIG_DIR="$cfg" hyperfine --style basic --warmup 5 --runs 40 \
            --export-json "$here/results/hyperfine-cold.json" \
            -n syncwizard "$ping | $sw --secret-store memory" \
            -n swiftline "$ping | $swiftline" \
            -n cfloor "$ping | $here/.build/cfloor" >&2 || say "hyperfine cross-check failed"
        rm -rf "$cfg"
    fi
fi

say "done in $((SECONDS - started)) s; results in $out"
exit "$status"
