#!/usr/bin/env bash
# Fuzz smoke test: builds every cargo-fuzz target in fuzz/ on the STABLE toolchain and runs each
# for a short time from a temporary copy of its checked-in seed corpus (fuzz/corpus/<target>),
# so the checked-in corpus is never modified. Fails if any target crashes (a panic, a failed
# property assertion, a timeout or an out-of-memory); the crashing input is in
# fuzz/artifacts/<target>/. See fuzz/README.md for what each target checks.
#
#   scripts/fuzz-smoke.sh                               # 20 s per target
#   PINVAULT_FUZZ_SECONDS=3600 scripts/fuzz-smoke.sh    # a long run of every target
#   PINVAULT_FUZZ_TARGETS="names url_parse" scripts/fuzz-smoke.sh   # only some targets
#
# A long run of one target that keeps what it finds (grows fuzz/corpus/<target>; see
# fuzz/.gitignore before committing anything from it):
#
#   cd fuzz && cargo fuzz run -s none <target> corpus/<target> -- -max_total_time=3600
#
# Always pass `-s none`: cargo-fuzz's default AddressSanitizer needs a nightly compiler.
# Environment: PINVAULT_FUZZ_SECONDS (default 20), PINVAULT_FUZZ_TARGETS (default: all),
# CARGO_TARGET_DIR (default $HOME/.cache/pinvault/fuzz-target, shared by every checkout on the
# machine so CI reuses the instrumented build).
set -euo pipefail

CARGO_FUZZ_VERSION=0.13.2

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
seconds="${PINVAULT_FUZZ_SECONDS:-20}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/pinvault/fuzz-target}"

if ! [[ "$seconds" =~ ^[1-9][0-9]*$ ]]; then
    echo "fuzz: PINVAULT_FUZZ_SECONDS must be a positive whole number of seconds, not '$seconds'" >&2
    exit 2
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz $CARGO_FUZZ_VERSION"
    cargo install --locked cargo-fuzz --version "$CARGO_FUZZ_VERSION"
fi
installed="$(cargo fuzz --version 2>/dev/null | awk '{print $2}')"
if [[ "$installed" != "$CARGO_FUZZ_VERSION" ]]; then
    echo "fuzz: note: using cargo-fuzz $installed (this script is tested with $CARGO_FUZZ_VERSION)"
fi

cd "$root/fuzz"
if [[ -n "${PINVAULT_FUZZ_TARGETS:-}" ]]; then
    read -r -a targets <<<"$PINVAULT_FUZZ_TARGETS"
else
    mapfile -t targets < <(cargo fuzz list)
fi
if [[ ${#targets[@]} -eq 0 ]]; then
    echo "fuzz: no targets" >&2
    exit 2
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/pinvault-fuzz.XXXXXX")"
trap 'rm -rf "$work"' EXIT

echo "fuzz: building ${#targets[@]} targets (CARGO_TARGET_DIR=$CARGO_TARGET_DIR)"
build_start=$SECONDS
cargo fuzz build -s none
echo "fuzz: build took $((SECONDS - build_start)) s"

total_execs=0
crashes=0
failed=()
run_start=$SECONDS
for t in "${targets[@]}"; do
    corpus="$work/corpus/$t"
    mkdir -p "$corpus"
    if [[ -d "corpus/$t" ]]; then
        cp -R "corpus/$t/." "$corpus/"
    fi
    log="$work/$t.log"
    rc=0
    cargo fuzz run -s none "$t" "$corpus" -- \
        -max_total_time="$seconds" -timeout=30 -print_final_stats=1 >"$log" 2>&1 || rc=$?
    # libFuzzer's last words: "Done 123456 runs in 20 second(s)"; on a crash, the last "#N" line.
    execs="$(sed -n 's/^Done \([0-9][0-9]*\) runs in .*/\1/p' "$log" | tail -n 1)"
    if [[ -z "$execs" ]]; then
        execs="$(sed -n 's/^stat::number_of_executed_units: *\([0-9][0-9]*\).*/\1/p' "$log" | tail -n 1)"
    fi
    if [[ -z "$execs" ]]; then
        execs="$(sed -n 's/^#\([0-9][0-9]*\)[[:space:]].*/\1/p' "$log" | tail -n 1)"
    fi
    execs="${execs:-0}"
    total_execs=$((total_execs + execs))
    units="$(find "$corpus" -type f | wc -l | tr -d ' ')"
    if [[ $rc -ne 0 ]]; then
        crashes=$((crashes + 1))
        failed+=("$t")
        echo "fuzz: $t: CRASH after $execs execs (exit $rc):"
        # The panic message (up to its backtrace) and libFuzzer's summary, else the log's tail.
        panic_text="$(awk '/panicked at/ {p = 1} p && /^stack backtrace:/ {exit} p' "$log")"
        if [[ -n "$panic_text" ]]; then
            sed 's/^/    /' <<<"$panic_text"
            grep -E '^(==[0-9]+== ERROR|SUMMARY):' "$log" | sed 's/^/    /' || true
        else
            tail -n 40 "$log" | sed 's/^/    /'
        fi
        artifact="$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n 1)"
        if [[ -n "$artifact" ]]; then
            echo "fuzz: $t: crashing input: $artifact"
            echo "fuzz: $t: replay: cd $root/fuzz && cargo fuzz run -s none $t $artifact"
        fi
    else
        echo "fuzz: $t: $execs execs in ${seconds} s, corpus $units inputs, 0 crashes"
    fi
done

echo "fuzz: runs took $((SECONDS - run_start)) s"
echo "fuzz: ${#targets[@]} targets, $total_execs execs, $crashes crashes"
if [[ $crashes -ne 0 ]]; then
    echo "fuzz: crashed: ${failed[*]}" >&2
    exit 1
fi
