#!/usr/bin/env bash
# The project's one test command (README, .ci/run): builds the ipfs-cluster interop tool
# (interop/ipfs-cluster), starts the test services (testenv/pvenv: the real servers the
# server-backed backends are tested against, on loopback), builds every target of the workspace,
# then runs three lanes at once: the Cassandra-backed tests followed by the loom models and a
# fuzz smoke run; the object-store tests; and the rest (unit, integration and doc tests, the
# conformance suite, the proptest differential test, the facade with its default features, each
# backend feature built alone, the out-of-tree adopter crate). It stops the services and ends
# with each phase's and lane's time and one summary line.
#
# PINVAULT_TESTENV=off skips the services (a developer's shortcut; CI never sets it): the
# server-backed tests then find no endpoints and the run says so loudly.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD
# One target dir shared by every checkout on this machine (CI's clean clones included), so
# RocksDB's C++ (~11 min on 2 cores) is compiled once per machine, not once per clone. A fresh
# machine simply builds it.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${HOME:-/root}/.cache/pinvault/target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
# Incremental data is kept per checkout path and never reused by a fresh clone; on a shared
# target dir it only piles up (34 GiB here before this was set).
export CARGO_INCREMENTAL=0

# Each phase's wall time, printed at the end: "name seconds" lines.
phase_times=()
phase_name=""
phase_started=$SECONDS
phase() {
    if [[ -n $phase_name ]]; then
        phase_times+=("$phase_name $((SECONDS - phase_started))")
    fi
    phase_name=$1
    phase_started=$SECONDS
    [[ -n $phase_name ]] && echo "== $phase_name"
    return 0
}

# Prerequisites. The test services install themselves (testenv/pvenv up) from the registries.
if ! command -v cargo >/dev/null 2>&1; then
    echo "test.sh: cargo is not installed; install a Rust toolchain (rust-version in Cargo.toml)" >&2
    exit 1
fi

phase "system packages: scripts/deps.sh"
scripts/deps.sh

echo "== tools"
cargo --version
rustc --version
go version
echo "target dir: $CARGO_TARGET_DIR"

# ipfs-cluster v1.1.6's own code, the oracle of tests/ipfs_cluster_interop.rs. Built before the
# services and the Rust build so a Go module that cannot be fetched fails the run at once.
phase "interop: interop/ipfs-cluster/build.sh (pvcluster: ipfs-cluster v1.1.6)"
go_started=$SECONDS
PINVAULT_PVCLUSTER=$(interop/ipfs-cluster/build.sh)
export PINVAULT_PVCLUSTER
echo "pvcluster built in $((SECONDS - go_started))s: $PINVAULT_PVCLUSTER"

logs=$(mktemp -d)
services_started=0

# stop_services: prints the services' status (resident memory after the run) and stops them,
# leaving no process behind. Runs once: at the end of a run, or from the exit trap.
stop_services() {
    ((services_started)) || return 0
    services_started=0
    echo "== services: testenv/pvenv status (after the run)"
    testenv/pvenv status || true
    echo "== services: testenv/pvenv down"
    testenv/pvenv down
}
on_exit() {
    local rc=$?
    stop_services || rc=1
    rm -rf "$logs"
    exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

started=$SECONDS

warn_no_services() {
    echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
    echo "!! PINVAULT_TESTENV=off: test services NOT started; server-backed tests were not prepared"
    echo "!! (no Cassandra, MinIO, fake-gcs-server or Azurite endpoints in the environment)."
    echo "!! This is a developer shortcut; CI runs without it."
    echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
}

# Services first, so a service that cannot install or start fails the run before the build.
case "${PINVAULT_TESTENV:-on}" in
    on)
        phase "services: testenv/pvenv up"
        services_started=1
        testenv/pvenv up
        # The optional 3-node cluster, for backends/scylla/tests/failover.rs (~25 s, ~2.3 GiB).
        testenv/pvenv up cassandra-cluster
        echo "services up in $((SECONDS - started))s"
        # shellcheck source=/dev/null
        source "$(testenv/pvenv env)"
        echo "== services: testenv/pvenv status"
        testenv/pvenv status
        echo "env file $(testenv/pvenv env) exports: $(grep -o '^export PINVAULT_[A-Z0-9_]*' "$(testenv/pvenv env)" | cut -d' ' -f2 | tr '\n' ' ')"
        ;;
    off) warn_no_services ;;
    *)
        echo "test.sh: PINVAULT_TESTENV must be 'on' (the default) or 'off', got '$PINVAULT_TESTENV'" >&2
        exit 2
        ;;
esac

# One style for the whole tree (rustfmt.toml); a fresh rustup profile may lack rustfmt.
phase "format: cargo fmt --all --check"
cargo fmt --version >/dev/null 2>&1 || rustup component add rustfmt
cargo fmt --all --check

phase "build: cargo build --workspace --all-targets --all-features"
cargo build --workspace --all-targets --all-features

# Each conformance check that ends in a declared refusal (Unsupported, as the capabilities say)
# appends a line here (pinvault_conformance::harness::REFUSALS_ENV): the summary counts those
# checks apart from the ones that kept a promise.
export PINVAULT_REFUSALS="$logs/refusals.log"
: >"$PINVAULT_REFUSALS"

# The tests run in three lanes at once, each into its own log, printed when the lane ends. The
# object-store and Cassandra suites spend most of their time waiting on a server (Azurite is
# single-threaded, Cassandra's schema changes are slow), so running them beside the embedded
# backends' tests and the later checks uses the two cores instead of leaving one idle.
lane_times=()
run_lanes() {
    local -A pids=()
    local name
    for name in "$@"; do
        (
            lane_started=$SECONDS
            rc=0
            "lane_$name" >"$logs/$name.log" 2>&1 || rc=$?
            echo "$((SECONDS - lane_started)) $rc" >"$logs/$name.status"
        ) &
        pids[$name]=$!
    done
    local failed=()
    for name in "$@"; do
        wait "${pids[$name]}" || true
        local seconds rc
        read -r seconds rc <"$logs/$name.status"
        echo "== lane $name: ${seconds}s, exit $rc (log follows)"
        cat "$logs/$name.log"
        lane_times+=("lane $name $seconds")
        ((rc == 0)) || failed+=("$name")
    done
    if ((${#failed[@]})); then
        echo "test.sh: lanes failed: ${failed[*]}" >&2
        return 1
    fi
}

# Each step of a lane prints its time when it ends.
step() {
    local name=$1 started=$SECONDS rc=0
    shift
    echo "-- $name"
    "$@" || rc=$?
    echo "-- $name: $((SECONDS - started))s, exit $rc"
    return "$rc"
}

# The lanes run as the left side of `||`, where bash ignores `set -e`: each step returns on
# failure. The lanes are balanced by measured time (README); the server-backed suites come
# first in theirs because the servers are their bottleneck.

# Lane 1: the ScyllaDB/Cassandra backend against Cassandra (the suite, LWT paths, schema,
# failover on the 3-node cluster), then the loom models and the fuzz smoke.
lane_scylla() {
    step "cargo test -p pinvault-scylla --all-features" \
        cargo test -p pinvault-scylla --all-features || return
    step "loom: cargo test -p pinvault-core --test loom_memory --test loom_locks --test loom_kv --release (cfg loom)" \
        env RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR="$CARGO_TARGET_DIR/loom" \
        cargo test -p pinvault-core --test loom_memory --test loom_locks --test loom_kv --release || return
    # Every cargo-fuzz target (fuzz/) for a short run from its checked-in seeds, on the stable
    # toolchain (installs cargo-fuzz if missing; fuzz/README.md has the long-run command).
    step "fuzz: scripts/fuzz-smoke.sh (${PINVAULT_FUZZ_SECONDS:-20} s per target)" \
        scripts/fuzz-smoke.sh || return
}

# Lane 2: the object-store backend against Azurite, MinIO and fake-gcs-server.
lane_object() {
    step "cargo test -p pinvault-object --all-features" \
        cargo test -p pinvault-object --all-features || return
}

# Lane 3: everything else.
lane_embedded() {
    step "cargo test --workspace --all-features (without the object and scylla crates)" \
        cargo test --workspace --all-features --exclude pinvault-object --exclude pinvault-scylla ||
        return

    # What a user gets from `cargo install pinvault` / `cargo run`: the facade with its default
    # features (the CLI and fs:), where the other schemes are refused as "not compiled in". The
    # ipfs-cluster interop tests ran in the all-features run above on every embedded backend;
    # their 100,000-pin round trips are not repeated here.
    local targets=() file
    for file in tests/*.rs; do
        [[ $(basename "$file" .rs) == ipfs_cluster_interop ]] && continue
        targets+=(--test "$(basename "$file" .rs)")
    done
    step "cargo test -p pinvault (default features; lib, bin, ${#targets[@]} test targets)" \
        cargo test -p pinvault --lib --bins "${targets[@]}" || return
    step "cargo test -p pinvault --doc (default features)" cargo test -p pinvault --doc || return

    # Every backend feature of the facade compiles on its own, not only in the default and
    # all-features builds (a cfg mistake in src/open.rs shows only in a one-feature build).
    step "each backend feature alone (cargo check -p pinvault --no-default-features)" \
        check_each_feature || return

    # A third party's crate adopting the conformance suite (its own workspace and lock file): a
    # toy backend that must pass it, and mutants that named checks must catch.
    step "cargo test --manifest-path examples/conformance-adopter/Cargo.toml" \
        cargo test --manifest-path examples/conformance-adopter/Cargo.toml || return
}

check_each_feature() {
    local feature out
    for feature in "" fs rocksdb sled s3 gcs azure scylla cli conformance; do
        echo "-- features: ${feature:-(none)}"
        # Warnings fail the build here (not through RUSTFLAGS, which would rebuild every crate).
        out=$(cargo check -q -p pinvault --no-default-features ${feature:+--features "$feature"} 2>&1) || {
            echo "$out"
            return 1
        }
        if grep -q '^warning' <<<"$out"; then
            echo "$out"
            echo "test.sh: the build with only feature '${feature:-(none)}' has warnings" >&2
            return 1
        fi
    done
}

phase "test: lanes scylla (+ loom, fuzz smoke), object, embedded (workspace tests, default features, each feature alone, the adopter crate)"
run_lanes scylla object embedded
phase ""

# Sum cargo's per-binary "test result:" lines into one closing line.
read -r passed failed ignored < <(
    grep -h '^test result:' "$logs"/*.log | awk '
        { for (i = 1; i <= NF; i++) {
              if ($(i) ~ /^passed;?$/)  p += $(i - 1)
              if ($(i) ~ /^failed;?$/)  f += $(i - 1)
              if ($(i) ~ /^ignored;?$/) g += $(i - 1) } }
        END { print p + 0, f + 0, g + 0 }'
)
# Tests named *emulator_gap* (conformance_gaps!) prove that an emulator cannot run a check;
# they are reported as gaps, not as passes.
gaps=$({ grep -h '^test .*emulator_gap.* \.\.\. ok$' "$logs"/*.log || true; } | wc -l)
# Checks that passed by proving a declared refusal, one per process, backend and check.
refusals=$(sort -u "$PINVAULT_REFUSALS" | wc -l)
passed=$((passed - gaps - refusals))
stop_services
[[ ${PINVAULT_TESTENV:-on} == off ]] && warn_no_services
echo "test.sh: services, build, workspace tests, loom models and fuzz smoke done in $((SECONDS - started))s"
grep -h '^fuzz: [0-9]* targets' "$logs/scylla.log" || true
echo "phases (seconds):"
printf '  %s\n' "${phase_times[@]}" "${lane_times[@]}"
echo "summary: $passed passed, $refusals refused as declared (checks that proved a refusal, not a promise), $failed failed, $ignored skipped, $gaps emulator gaps (checks named as not run)"
