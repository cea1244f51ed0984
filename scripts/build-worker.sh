#!/usr/bin/env bash
# scripts/build-worker.sh [--opt] [-- CARGO_ARGS...]: build the Worker with
# worker-build (release) into build/ (build/worker/shim.mjs, build/index.js,
# build/index_bg.wasm) and print the wasm size, raw and gzip -9.
#
# Without --opt wasm-opt is skipped (dev/CI: it costs ~35 s and saves ~2 % gzip).
# With --opt it runs node_modules/.bin/wasm-opt (npm binaryen 132). Nothing is
# downloaded: WASM_BINDGEN_BIN, ESBUILD_BIN (and WASM_OPT_BIN) point at local
# tools. wrangler.toml's [build] command runs this script.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

usage() {
    sed -n '2,9s/^# \{0,1\}//p' "$0"
}

opt=false
cargo_args=()
while (($#)); do
    case $1 in
        --opt) opt=true ;;
        --no-opt) opt=false ;;
        -h | --help) usage; exit 0 ;;
        --) shift; cargo_args=("$@"); break ;;
        *) usage >&2; die "unknown argument '$1' (cargo arguments go after --)" ;;
    esac
    shift
done

ensure_toolchain
check_wasm_bindgen_lock

export WASM_BINDGEN_BIN ESBUILD_BIN
WASM_BINDGEN_BIN=$(command -v wasm-bindgen)
ESBUILD_BIN=$REPO_ROOT/node_modules/.bin/esbuild

# worker-build's own flags must come before the first cargo flag: everything
# from the first flag it does not know on is passed to `cargo build`.
wb_args=(--release)
if [[ $opt == true ]]; then
    export WASM_OPT_BIN=$REPO_ROOT/node_modules/.bin/wasm-opt
    log "building the worker: worker-build ${wb_args[*]}${cargo_args[*]:+ ${cargo_args[*]}} (with wasm-opt: slow)"
else
    unset WASM_OPT_BIN
    wb_args+=(--no-opt)
    log "building the worker: worker-build ${wb_args[*]}${cargo_args[*]:+ ${cargo_args[*]}}"
fi

start=$SECONDS
worker-build "${wb_args[@]}" "${cargo_args[@]}" ||
    die "worker-build failed (see above). If it tried to download something, a tool override is missing; if cargo failed, the crate does not build for $WASM_TARGET."
check_wasm_bindgen_lock

wasm=build/index_bg.wasm
for f in build/worker/shim.mjs build/index.js "$wasm"; do
    [[ -s $f ]] || die "worker-build succeeded but $f is missing or empty (worker-build $WORKER_BUILD_VERSION layout expected)"
done
raw=$(wc -c <"$wasm")
gz=$(gzip -9 -c "$wasm" | wc -c)
log "built in $((SECONDS - start)) s"
log "wasm size: $wasm raw $((raw)) B, gzip $((gz)) B"
