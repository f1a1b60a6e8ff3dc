#!/bin/bash
# Runs a command inside a throwaway D-Bus session with its own unlocked gnome-keyring, so
# tests use a real Secret Service without touching the user's keyring. The keyring files live
# in a temporary directory that is removed afterwards.
#   scripts/with-test-keyring.sh COMMAND [ARGS...]
set -eu
tmp=$(mktemp -d "${TMPDIR:-/tmp}/syncwizard-keyring.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/data" "$tmp/runtime"
chmod 700 "$tmp/runtime"
export XDG_DATA_HOME="$tmp/data" XDG_RUNTIME_DIR="$tmp/runtime"
# With a display the unlock prompter could open and wait for a click that never comes.
unset DISPLAY WAYLAND_DISPLAY
export SYNCWIZARD_TEST_KEYRING=1

dbus-run-session -- sh -c '
    password=$(od -An -N16 -tx1 /dev/urandom | tr -d " \n")
    printf %s "$password" | gnome-keyring-daemon --unlock --components=secrets >/dev/null
    pid=""
    for _ in $(seq 1 200); do
        pid=$(dbus-send --session --print-reply=literal --dest=org.freedesktop.DBus /org/freedesktop/DBus \
              org.freedesktop.DBus.GetConnectionUnixProcessID string:org.freedesktop.secrets 2>/dev/null \
              | awk "{print \$2}") || true
        [ -n "$pid" ] && break
        sleep 0.05
    done
    if [ -z "$pid" ]; then
        echo "with-test-keyring: gnome-keyring-daemon did not appear on the session bus" >&2
        exit 1
    fi
    status=0
    "$@" || status=$?
    kill "$pid" 2>/dev/null || true
    exit $status
' sh "$@" 2> >(grep -v "Failed to set fd limit" >&2 || true)
