#!/bin/bash
# Issue 16's round-trip table: every verdict of the wizard step at a real 50 ms RTT and at 0 ms,
# syncwizard and the test fakes in two private network namespaces joined by a userspace delay
# line (Benchmarks/wan/netlab.py), exchangelib 5.6.0 beside it on the Exchange rows.
#
#   Benchmarks/wan/run.sh [--runs N] [--rtt-ms MS] [--only ROWS] [--syncwizard LABEL=BIN ...]
#   Benchmarks/wan/run.sh --smoke     the delay line alone (RTT by timed connects), about 5 s
#
# Needs root (ip netns, /dev/net/tun). Installs what it needs, as scripts/install-deps.sh does:
# iproute2 (Debian), the fakes' pyspnego/trustme/cryptography (pip, for python3), exchangelib
# 5.6.0 into Benchmarks/wan/.venv and 4.9.0 into Benchmarks/wan/.venv-pox (pip). Without --syncwizard it builds the release binary.
# Writes Benchmarks/results/wan.json and prints the table.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
say() { printf 'bench-wan: %s\n' "$*" >&2; }
[ "$(id -u)" = 0 ] || { say "needs root (network namespaces, TUN devices)"; exit 2; }
[ -c /dev/net/tun ] || { say "no /dev/net/tun"; exit 2; }

if ! command -v ip >/dev/null; then
    say "installing iproute2"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends iproute2 >/dev/null
fi
for pair in spnego:pyspnego trustme:trustme cryptography:cryptography; do
    python3 -c "import ${pair%%:*}" 2>/dev/null || python3 -m pip install -q --disable-pip-version-check "${pair#*:}"
done

smoke=0; have_bin=0
for a in "$@"; do
    case "$a" in --smoke) smoke=1 ;; --syncwizard|--syncwizard=*) have_bin=1 ;; esac
done
venv="$here/.venv"
if [ "$smoke" = 0 ] && ! "$venv/bin/python" -c 'import sys, exchangelib; sys.exit(exchangelib.__version__ != "5.6.0")' 2>/dev/null; then
    say "installing exchangelib 5.6.0 into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check 'exchangelib==5.6.0'
fi
# exchangelib 4.9.0 for the Autodiscover rows: 5.x speaks only SOAP Autodiscover (autodiscover.svc),
# the fake and syncwizard POX (autodiscover.xml).
pox="$here/.venv-pox"
if [ "$smoke" = 0 ] && ! "$pox/bin/python" -c 'import sys, exchangelib; sys.exit(exchangelib.__version__ != "4.9.0")' 2>/dev/null; then
    say "installing exchangelib 4.9.0 into $pox"
    python3 -m venv "$pox"
    "$pox/bin/pip" install --quiet --disable-pip-version-check 'exchangelib==4.9.0'
fi
args=()
if [ "$have_bin" = 0 ] && [ "$smoke" = 0 ]; then
    if [ -n "${SYNCWIZARD_BIN:-}" ]; then
        sw="$SYNCWIZARD_BIN"
    else
        say "building syncwizard (release)"
        (cd "$root" && swift build -c release --product syncwizard 2>&1 | tail -n 2) >&2
        sw="$(cd "$root" && swift build -c release --show-bin-path)/syncwizard"
    fi
    args=(--syncwizard "syncwizard=$sw")
fi
# netlab.py removes its namespaces when it ends, also on an error or SIGTERM/SIGINT; a run that
# was SIGKILLed leaves them for the next run to remove (their names carry the dead pid).
cleanup() {
    for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^swwan-$bench_pid-" || true); do ip netns del "$ns" 2>/dev/null || true; done
}
bench_pid=none
python3 "$here/wan_bench.py" --exchangelib-python "$venv/bin/python" --exchangelib-pox-python "$pox/bin/python" \
    ${args[@]+"${args[@]}"} "$@" &
bench_pid=$!
trap 'kill -TERM $bench_pid 2>/dev/null || true; wait $bench_pid 2>/dev/null || true; cleanup' INT TERM
status=0
wait $bench_pid || status=$?
cleanup
exit "$status"
