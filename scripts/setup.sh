#!/usr/bin/env bash
# scripts/setup.sh: install or check everything the build needs: Rust target
# wasm32-unknown-unknown, rustfmt + clippy, worker-build 0.8.7 and
# wasm-bindgen-cli 0.2.130 (cargo install), and node_modules (npm ci: wrangler,
# esbuild, binaryen). Idempotent: a second run only checks versions.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

case ${1:-} in
    "") ;;
    -h | --help) sed -n '2,5s/^# \{0,1\}//p' "$0"; exit 0 ;;
    *) die "unknown argument '$1' (setup.sh takes none)" ;;
esac

ENSURE_VERBOSE=1
ensure_toolchain
log "toolchain ready: $(rustc --version), worker-build $(_tool_version worker-build), wasm-bindgen $(_tool_version wasm-bindgen), node $(node --version), wrangler $(wrangler --version 2>/dev/null | tail -n 1)"
