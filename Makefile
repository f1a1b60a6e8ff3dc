# Two commands for a fresh Debian 12 machine:
#   make run    install what is missing, build, serve JSON-RPC on stdin/stdout
#   make test   install what the tests need and run every test
.PHONY: run test build clean bench bench-quick fuzz fuzz-smoke

run:
	@scripts/run.sh $(ARGS)

test:
	scripts/test.sh

build:
	scripts/install-deps.sh
	swift build -c release --product syncwizard

clean:
	swift package clean

# Benchmarks against peers in one run (BENCHMARKS.md); --quick is the CI variant. The WAN
# round-trip table (Benchmarks/wan, root: network namespaces) follows the full run.
bench: build
	Benchmarks/run.sh
	SYNCWIZARD_BIN=$$(swift build -c release --show-bin-path)/syncwizard Benchmarks/wan/run.sh

bench-quick: build
	Benchmarks/run.sh --quick
	@# The delay line is the benchmark's harness, not the product: a machine that cannot make
	@# network namespaces, or is too loaded to hold 50 ms, gets a warning, not a red CI.
	@if [ "$$(id -u)" = 0 ] && [ -c /dev/net/tun ]; then Benchmarks/wan/run.sh --smoke \
	  || echo "bench-quick: WAN delay-line smoke did not pass on this machine (advisory; see above)"; \
	else echo "bench-quick: WAN delay-line smoke skipped (needs root and /dev/net/tun)"; fi

# libFuzzer targets (Fuzz/README.md). fuzz-smoke is CI's: regressions, then 60 s per target,
# the committed corpus left as it is.
fuzz:
	scripts/fuzz.sh $(or $(SECONDS_PER_TARGET),60)

fuzz-smoke:
	scripts/install-deps.sh
	FUZZ_MERGE=0 scripts/fuzz.sh 60
