#!/usr/bin/env bash
# scripts/test.sh: every check CI runs, in one command from a fresh machine:
# toolchain (scripts/setup.sh's checks), cargo fmt --check, clippy (host, all
# targets), clippy (wasm32 lib), the Worker build (scripts/build-worker.sh),
# cargo test --release (unit tests + the wrangler-dev end-to-end test, which is
# told to run, not skip, by EDGE_GATEWAY_E2E=1). Stops at the first failure.
# CI=true: no colors, nothing interactive.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

case ${1:-} in
    "") ;;
    -h | --help) sed -n '2,7s/^# \{0,1\}//p' "$0"; exit 0 ;;
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
log "ok: toolchain ($((SECONDS - total_start)) s)"

step "rustfmt" cargo fmt --all -- --check
step "clippy (host, all targets)" cargo clippy --all-targets -- -D warnings
step "clippy (wasm32 lib)" cargo clippy --lib --target "$WASM_TARGET" -- -D warnings
step "worker build" bash scripts/build-worker.sh
step "cargo test" cargo test --release

summary=$(printf '%s, ' "${steps_done[@]}")
log "PASSED: all ${#steps_done[@]} checks in $((SECONDS - total_start)) s (${summary%, })"
