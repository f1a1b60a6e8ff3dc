#!/bin/sh
# Installs what syncwizard needs on Debian 12 and is missing. Everything it prints goes to
# stderr, so `make run` can keep stdout for the protocol.
#   scripts/install-deps.sh          runtime and build packages
#   scripts/install-deps.sh --test   also what the tests need (apt and PyPI; emacs-nox and pexpect
#                                    drive the example front ends in Examples/)
set -eu
exec 1>&2

packages="libsecret-1-0 libsecret-1-dev libcurl4-openssl-dev libssl-dev gnome-keyring libsecret-tools dbus dbus-bin jq libgssapi-krb5-2 libkrb5-dev gss-ntlmssp"
python_packages=""
if [ "${1:-}" = "--test" ]; then
    packages="$packages python3 util-linux procps curl iproute2 chromium chromium-driver emacs-nox dnsmasq-base"
    # A throwaway Kerberos realm and libfaketime for Tests/Fixtures/integrated-auth.
    packages="$packages krb5-kdc krb5-admin-server krb5-user libfaketime"
    python_packages="jsonschema referencing jsonschema_specifications trustme cryptography pyspnego:spnego gssapi krb5 selenium pexpect"
fi

missing=""
for p in $packages; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "install-deps: installing$missing"
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $missing
fi

if [ -n "$python_packages" ]; then
    # Entries are PACKAGE or PACKAGE:IMPORT_NAME (pyspnego imports as spnego).
    for entry in $python_packages; do
        package=${entry%%:*}
        module=${entry#*:}
        python3 -c "import $module" 2>/dev/null || python3 -m pip install -q --disable-pip-version-check "$package"
    done
fi
