#!/usr/bin/env bash
# scripts/dev.sh [--port N] [DEVSTACK_OPTIONS...]: run the gateway locally, from a fresh machine,
# in one command: install/check the toolchain, build the native binaries and the Worker, then
# run the local stack (target/release/devstack, src/bin/devstack.rs): the 8 demo origins
# (127.0.0.1:18101..18108), the dev identity provider (JWKS on 127.0.0.1:18200), policies/acme
# uploaded to local KV with the shipped IP-intelligence list (policies/ip-intel/openai.yaml,
# as every upload-policy.sh bundle) and `wrangler dev --env dev` on 127.0.0.1:8787 (policy
# refresh every 2 s). Prints curl examples, a token and a signed webhook once it answers. Ctrl-C stops
# everything it started. Options after --port go to devstack (see `devstack --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

usage() {
    sed -n '2,9s/^# \{0,1\}//p' "$0"
}

case ${1:-} in
    -h | --help) usage; exit 0 ;;
esac

target_dir=$(cargo_target_dir) || die "'cargo metadata' failed"
devstack=$target_dir/release/devstack

# An earlier run still holding the ports fails now, not after minutes of building (when a
# devstack from an earlier build is there to ask; it checks again before it starts anything).
# Exit 2 (usage) from an older build is left to the new one to judge.
if [[ -x $devstack ]]; then
    rc=0
    out=$("$devstack" --check-ports "$@" 2>&1) || rc=$?
    if ((rc == 1)); then
        printf '%s\n' "$out" >&2
        exit 1
    fi
fi

ensure_toolchain
log "building the native binaries (cargo build --release --bins)"
cargo build --release --bins || die "cargo build --release --bins failed (see above)"
bash scripts/build-worker.sh || die "the Worker build failed (see above)"
[[ -x $devstack ]] || die "$devstack is missing after the build: the crate must have a [[bin]] devstack"

exec "$devstack" "$@"
