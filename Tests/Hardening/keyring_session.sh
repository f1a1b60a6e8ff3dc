#!/bin/bash
# Runs a command in a private D-Bus session with a gnome-keyring-daemon that the command itself
# may kill and start again (scripts/with-test-keyring.sh hides its daemon; this one hands over).
#
#   Tests/Hardening/keyring_session.sh [--no-activation] COMMAND [ARGS...]
#
# The command gets:
#   SYNCWIZARD_KEYRING_PASSWORD  the login keyring's password (restart with it to unlock again)
#   XDG_DATA_HOME                where the keyring file lives (kept across daemon restarts)
#   SYNCWIZARD_KEYRING_ACTIVATION  1 when the bus may start gnome-keyring by D-Bus activation
#                                  (as on a desktop), 0 with --no-activation (nothing restarts it)
# Whatever daemon owns org.freedesktop.secrets when the command ends is stopped (by its PID).
# dbus-daemon's "Failed to set fd limit" warning on stderr is harmless.
set -eu
activation=1
if [ "${1:-}" = "--no-activation" ]; then activation=0; shift; fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/syncwizard-keyring-faults.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/data" "$tmp/runtime"
chmod 700 "$tmp/runtime"
export XDG_DATA_HOME="$tmp/data" XDG_RUNTIME_DIR="$tmp/runtime"
unset DISPLAY WAYLAND_DISPLAY
SYNCWIZARD_KEYRING_PASSWORD=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
export SYNCWIZARD_KEYRING_PASSWORD SYNCWIZARD_KEYRING_ACTIVATION=$activation

config=()
if [ "$activation" = 0 ]; then
    # A session bus without service directories: nothing is started on demand.
    cat > "$tmp/session.conf" <<EOF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:tmpdir=$tmp/runtime</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
EOF
    config=(--config-file="$tmp/session.conf")
fi

dbus-run-session "${config[@]}" -- sh -c '
    owner() {
        dbus-send --session --print-reply=literal --dest=org.freedesktop.DBus /org/freedesktop/DBus \
            org.freedesktop.DBus.GetConnectionUnixProcessID string:org.freedesktop.secrets 2>/dev/null | awk "{print \$2}"
    }
    printf %s "$SYNCWIZARD_KEYRING_PASSWORD" | gnome-keyring-daemon --unlock --components=secrets >/dev/null
    pid=""
    for _ in $(seq 1 200); do pid=$(owner) || true; [ -n "$pid" ] && break; sleep 0.05; done
    if [ -z "$pid" ]; then echo "keyring_session: gnome-keyring-daemon did not appear on the bus" >&2; exit 1; fi
    status=0
    "$@" || status=$?
    # SIGKILL: a caller may have left SIGTERM blocked, and a blocked mask is inherited.
    pid=$(owner) || true
    [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null || true
    exit $status
' sh "$@"
