#!/bin/bash
# Builds the libFuzzer targets in Fuzz/ and runs each for N seconds.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]     default: 60 s, all targets
#
# Targets: FuzzMessages (framing, decoding, params of every method), FuzzExchangeXML (Autodiscover
# POX and EWS SOAP answers), FuzzOAuthCallback (redirects, query strings, JWKS, id_tokens),
# FuzzTokenResponses (token, device code and error bodies from identity providers),
# FuzzNTLMChallenge (NTLM CHALLENGE messages, raw and in SPNEGO, against a reference reader).
#
# Each target first replays its inputs in Fuzz/regressions/<target>/ (any failure fails the run),
# then runs over a working corpus in Fuzz/.build/fuzz-corpus/<target>/ (seeded from, and
# growing beside, the committed Fuzz/corpus/<target>/); at the end the inputs that add coverage
# are merged into the committed corpus with -merge=1, so it only grows by what is new. A crash,
# a broken invariant, a timeout (-timeout=10) or running out of memory (-rss_limit_mb=2048)
# leaves its input in Fuzz/crashes/<target>/ and makes the script exit 1.
#
# Environment:
#   FUZZ_SANITIZERS  "fuzzer,address" (default) or "fuzzer" (no AddressSanitizer, about 2x faster)
#   FUZZ_NICE        niceness of the fuzzer processes (default 10)
#   FUZZ_KNOWN_BUGS  ids of reported, unfixed findings whose checks to skip (see Fuzz/README.md)
#   FUZZ_MERGE       0 to leave the committed corpus alone (default 1)
#   FUZZ_MINIMIZE    1 to also shrink the committed corpus to a minimal set with the same
#                    coverage after the merge (seed-* files are always kept)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
fuzz=$root/Fuzz
all_targets=(FuzzMessages FuzzExchangeXML FuzzOAuthCallback FuzzTokenResponses FuzzNTLMChallenge)

seconds=${1:-60}
[ $# -gt 0 ] && shift
if ! [[ $seconds =~ ^[0-9]+$ ]] || [ "$seconds" -lt 1 ]; then
    echo "usage: scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]   (targets: ${all_targets[*]})" >&2
    exit 2
fi
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=("${all_targets[@]}")
for t in "${targets[@]}"; do
    [[ " ${all_targets[*]} " == *" $t "* ]] || { echo "fuzz.sh: unknown target '$t' (known: ${all_targets[*]})" >&2; exit 2; }
done

# --- Build ---------------------------------------------------------------------------------
# swift build --sanitize=fuzzer --sanitize=address hands swiftc two -sanitize= flags and the
# last one wins, so Swift code would get AddressSanitizer but no coverage. One combined
# -sanitize=fuzzer,address for swiftc (and -fsanitize=address for the C targets) keeps both.
sanitizers=${FUZZ_SANITIZERS:-fuzzer,address}
case $sanitizers in
    fuzzer,address|address,fuzzer)
        scratch=$fuzz/.build
        build_flags=(--sanitize=fuzzer -Xswiftc -sanitize=fuzzer,address -Xcc -fsanitize=address) ;;
    fuzzer)
        scratch=$fuzz/.build/fuzzer-only
        build_flags=(--sanitize=fuzzer) ;;
    *) echo "fuzz.sh: FUZZ_SANITIZERS must be 'fuzzer,address' or 'fuzzer'" >&2; exit 2 ;;
esac
echo "fuzz.sh: building Fuzz/ (release, -sanitize=$sanitizers)" >&2
build_start=$SECONDS
# Product by product: a plain `swift build` would also build the main package's executable.
for t in "${targets[@]}"; do
    swift build --package-path "$fuzz" --scratch-path "$scratch" -c release "${build_flags[@]}" --product "$t" >&2
done
bin=$(swift build --package-path "$fuzz" --scratch-path "$scratch" -c release "${build_flags[@]}" --show-bin-path)
echo "fuzz.sh: built in $((SECONDS - build_start)) s" >&2

# Swift's in-process crash backtracer trips AddressSanitizer and hides libFuzzer's stack.
export SWIFT_BACKTRACE=enable=no
# llvm-symbolizer ships with the Swift toolchain; stacks are symbolized with it.
if [ -z "${ASAN_SYMBOLIZER_PATH:-}" ] && command -v llvm-symbolizer >/dev/null; then
    export ASAN_SYMBOLIZER_PATH=$(command -v llvm-symbolizer)
fi
# Swift code allocates a lot; recording 30 frames per allocation cost ~25% of the exec/s.
export ASAN_OPTIONS=${ASAN_OPTIONS:-malloc_context_size=8}
nice_level=${FUZZ_NICE:-10}

# --- Run -----------------------------------------------------------------------------------
failed=()
summary=()
mkdir -p "$fuzz/.build/fuzz-logs"
for t in "${targets[@]}"; do
    committed=$fuzz/corpus/$t
    work=$fuzz/.build/fuzz-corpus/$t
    crashes=$fuzz/crashes/$t
    log=$fuzz/.build/fuzz-logs/$t.log
    mkdir -p "$committed" "$work" "$crashes"
    before=$(ls "$crashes" | wc -l)
    # Every input of a fixed finding must run clean before any new fuzzing.
    regressions=("$fuzz/regressions/$t"/*)
    if [ -e "${regressions[0]}" ]; then
        if ! "$bin/$t" -rss_limit_mb=2048 -timeout=10 "${regressions[@]}" >"$log.regressions" 2>&1; then
            echo "fuzz.sh: $t fails on a regression input (see ${log#$root/}.regressions)" >&2
            grep -m1 -E 'Running: |Fatal error|invariant violated' "$log.regressions" >&2 || true
            failed+=("$t")
            summary+=("$(printf '%-18s %-5s regression inputs fail' "$t" FAIL)")
            continue
        fi
        echo "fuzz.sh: $t: ${#regressions[@]} regression inputs pass" >&2
    fi
    echo "fuzz.sh: $t for $seconds s (log: ${log#$root/})" >&2
    set +e
    nice -n "$nice_level" "$bin/$t" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 \
        -dict="$fuzz/dictionaries/$t.dict" -artifact_prefix="$crashes/" -print_final_stats=1 \
        "$work" "$committed" >"$log" 2>&1
    rc=$?
    set -e

    executions=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    last=$(grep -E '^#[0-9]+' "$log" | tail -1 || true)
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
    ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")

    status=ok
    if [ $rc -ne 0 ]; then
        status=CRASH
        failed+=("$t")
        artifact=$(ls -t "$crashes" | head -1)
        echo "fuzz.sh: $t FAILED (exit $rc); input: Fuzz/crashes/$t/$artifact" >&2
        grep -m1 -E 'Fatal error|ERROR: (libFuzzer|AddressSanitizer|LeakSanitizer)' "$log" >&2 || true
        grep -m1 '^SUMMARY' "$log" >&2 || true
        [ "$(ls "$crashes" | wc -l)" -gt "$before" ] || echo "fuzz.sh: (no new file in Fuzz/crashes/$t; see the log)" >&2
    fi

    merged=""
    if [ "${FUZZ_MERGE:-1}" != 0 ]; then
        # Keeps the committed corpus small: only inputs with new coverage move into it.
        set +e
        nice -n "$nice_level" "$bin/$t" -merge=1 -rss_limit_mb=2048 -timeout=10 "$committed" "$work" >"$log.merge" 2>&1
        merge_rc=$?
        set -e
        merged=$(sed -n 's/.*MERGE-OUTER: \([0-9]*\) new files.*/\1/p' "$log.merge" | tail -1)
        [ $merge_rc -eq 0 ] || echo "fuzz.sh: merge for $t exited $merge_rc (see ${log#$root/}.merge)" >&2
        if [ "${FUZZ_MINIMIZE:-0}" = 1 ] && [ $merge_rc -eq 0 ]; then
            minimal=$(mktemp -d "$fuzz/.build/minimize.XXXXXX")
            if nice -n "$nice_level" "$bin/$t" -merge=1 -rss_limit_mb=2048 -timeout=10 "$minimal" "$committed" >"$log.minimize" 2>&1; then
                # Seeds stay under their names; drop their sha1-named copies.
                for seed in "$committed"/seed-*; do
                    [ -e "$seed" ] && rm -f "$minimal/$(sha1sum "$seed" | cut -d' ' -f1)"
                done
                find "$committed" -maxdepth 1 -type f ! -name 'seed-*' -delete
                mv "$minimal"/* "$committed"/ 2>/dev/null || true
            else
                echo "fuzz.sh: minimizing the corpus of $t failed (see ${log#$root/}.minimize)" >&2
            fi
            rm -rf "$minimal"
        fi
    fi

    line=$(printf '%-18s %-5s executions %-10s exec/s %-7s cov %-6s ft %-7s corpus %s working / %s committed (+%s merged)' \
        "$t" "$status" "${executions:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" \
        "$(ls "$work" | wc -l)" "$(ls "$committed" | wc -l)" "${merged:-0}")
    summary+=("$line")
    echo "$line"
done

echo
echo "fuzz.sh summary ($seconds s per target, -sanitize=$sanitizers):"
for line in "${summary[@]}"; do echo "  $line"; done
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz.sh: crashes in: ${failed[*]} (inputs under Fuzz/crashes/; reproduce: $bin/<target> <file>)" >&2
    exit 1
fi
