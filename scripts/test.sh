#!/bin/bash
# The one test command (make test): installs what the tests need, builds, and runs every test
# against a real gnome-keyring in a throwaway D-Bus session.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --test
scripts/embed-openrpc.sh
swift build --build-tests "$@"
scripts/with-test-keyring.sh swift test --skip-build "$@"
