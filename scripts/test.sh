#!/bin/bash
# The one test command (make test): installs what the tests need, builds, and runs every test
# against a real gnome-keyring in a throwaway D-Bus session.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --test
# Formatting: the tree is as swift-format (.swift-format: indent 4, line length 160) leaves it.
swift format lint --strict -r -p Sources Tests Fuzz Benchmarks Package.swift
swift build --build-tests "$@"
# The docs: the option lists generated from the option table are current (scripts/sync-docs.sh).
bin="$(swift build --show-bin-path "$@")/syncwizard"
scripts/sync-docs.sh --check --bin "$bin"
# The READMEs' shell sessions, run verbatim; their output must be what the READMEs show.
python3 Tests/Docs/readme_sessions.py --bin "$bin"
# The generated client types are what scripts/generate-python-types.py makes from openrpc.json now.
scripts/generate-python-types.py --check
# Every example front end in Examples/, end to end against this syncwizard and the test fakes.
python3 Tests/Examples/test_examples.py --bin "$bin"
# The hardening suite (thousands of malformed inputs, kill -9 rounds, keyring restarts) runs on
# its own afterwards, so its load does not starve the timing-sensitive tests of the main run.
# --no-parallel: many tests drive real processes and servers with blocking calls; one at a time
# they cannot starve each other on a 2-core machine (timing-sensitive checks stay honest).
scripts/with-test-keyring.sh swift test --skip-build --no-parallel --skip HardeningTests "$@"
scripts/with-test-keyring.sh swift test --skip-build --filter HardeningTests "$@"
