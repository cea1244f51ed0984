#!/usr/bin/env bash
# scripts/test.sh: every check CI runs, in one command from a fresh machine:
# toolchain (scripts/setup.sh's checks, and cargo-nextest), cargo fmt --check,
# clippy (host, all targets), clippy (wasm32 lib), the Worker build
# (scripts/build-worker.sh, release, as it ships) alongside the test binaries
# (Cargo profile `ci`, docs/development.md), every test with cargo nextest (unit,
# scenario and end-to-end tests, the latter told to run, not skip, by
# EDGE_GATEWAY_E2E=1), and the doc tests. Prints each step's time; stops at the
# first failure. CI=true: no colors, nothing interactive.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

case ${1:-} in
    "") ;;
    -h | --help) sed -n '2,9s/^# \{0,1\}//p' "$0"; exit 0 ;;
    *) die "unknown argument '$1' (test.sh takes none)" ;;
esac

exec </dev/null # nothing below may wait for input
export EDGE_GATEWAY_E2E=1

total_start=$SECONDS
steps_done=()

# step NAME CMD...: run one check; stop everything on failure.
step() {
    local name=$1 t0=$SECONDS rc=0
    shift
    log "── $name: $*"
    "$@" || rc=$?
    if ((rc != 0)); then
        die "FAILED: $name (exit $rc, after $((SECONDS - t0)) s). Passed before it: ${steps_done[*]:-none}."
    fi
    log "ok: $name ($((SECONDS - t0)) s)"
    steps_done+=("$name")
}

log "── toolchain"
ensure_toolchain
ensure_nextest
log "ok: toolchain ($((SECONDS - total_start)) s)"

# The test targets: lib, bins (their unit tests; the e2e tests run demo-origins, dev-auth,
# policy-check and devstack) and tests/. Examples and benches are not tests; clippy checks them.
tests=(--cargo-profile ci --lib --bins --tests)
step "rustfmt" cargo fmt --all -- --check
step "clippy (host, all targets)" cargo clippy --all-targets -- -D warnings
step "clippy (wasm32 lib)" cargo clippy --lib --target "$WASM_TARGET" -- -D warnings
# The Worker (release, wasm32) and the test binaries (profile ci) lock different parts of
# target/, so they build at once: on 2 cores each fills the other's single-threaded stretches
# (the Worker's one codegen unit and LTO). The Worker's output is shown when it is done.
worker_log=$(mktemp "${TMPDIR:-/tmp}/worker-build.XXXXXX")
worker_start=$SECONDS
log "── worker build: bash scripts/build-worker.sh (alongside the test build; output below when done)"
setsid bash scripts/build-worker.sh >"$worker_log" 2>&1 &
worker_pid=$!
# shellcheck disable=SC2064 # expand now: the pid and log of this run
# `|| true`: under set -e a failing command in an EXIT trap becomes the script's exit
# status, and the Worker's group has normally ended by then.
trap "kill -TERM -- -$worker_pid 2>/dev/null || true; rm -f '$worker_log'" EXIT
step "test build" cargo nextest run "${tests[@]}" --no-run
worker_rc=0
wait "$worker_pid" || worker_rc=$?
sed 's/^/    /' "$worker_log" >&2
if ((worker_rc != 0)); then
    die "FAILED: worker build (exit $worker_rc, after $((SECONDS - worker_start)) s). Passed before it: ${steps_done[*]:-none}."
fi
log "ok: worker build ($((SECONDS - worker_start)) s, from the start of the test build)"
steps_done+=("worker build")
step "tests" cargo nextest run "${tests[@]}"
step "doc tests" cargo test --profile ci --doc

summary=$(printf '%s, ' "${steps_done[@]}")
log "PASSED: all ${#steps_done[@]} checks in $((SECONDS - total_start)) s (${summary%, })"
