#!/bin/bash
# make run: installs what is missing, builds, and serves JSON-RPC on this terminal's
# stdin/stdout. Without a reachable Secret Service it starts a private keyring for this run
# only (its secrets are gone afterwards) and says so on stderr.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
swift build -c release --product syncwizard >&2
binary="$(swift build -c release --show-bin-path)/syncwizard"

secret_service_reachable() {
    [ -n "${DBUS_SESSION_BUS_ADDRESS:-}" ] || return 1
    dbus-send --session --print-reply=literal --dest=org.freedesktop.DBus /org/freedesktop/DBus \
        org.freedesktop.DBus.NameHasOwner string:org.freedesktop.secrets 2>/dev/null | grep -q true
}

if secret_service_reachable || [[ " $* " == *" --secret-store memory "* ]]; then
    exec "$binary" "$@"
fi
echo "run: no Secret Service is reachable; starting a private keyring for this run only (its secrets are discarded when syncwizard exits)." >&2
exec scripts/with-test-keyring.sh "$binary" "$@"
