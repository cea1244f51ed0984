#!/usr/bin/env bash
# scripts/lib.sh: helpers shared by the scripts in scripts/ (sourced, never run).
#
# Relative paths below assume the caller is in the repository root (every
# script does `cd "$(dirname "$0")/.."` before sourcing this file). Provides:
#   log / warn / die          messages prefixed with the calling script's name
#   ensure_toolchain          Rust wasm32 target, rustfmt/clippy, worker-build,
#                             wasm-bindgen-cli, node_modules (npm ci); idempotent
#   ensure_node_modules       only the npm part of ensure_toolchain
#   ensure_nextest            cargo-nextest, for scripts/test.sh
#   cargo_target_dir          where cargo puts its output
#   bench_policy              a load bench's policy, live on a running scripts/dev.sh
# (The local stack itself, ports and process groups included, is src/bin/devstack.rs.)
# and exports the wrangler environment (no telemetry, no error-report prompt,
# no Request.cf fetch, no banner) with node_modules/.bin first in PATH.

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
    echo "lib.sh: this file is sourced by the other scripts in scripts/, not run" >&2
    exit 2
fi

# Versions the build depends on. WASM_BINDGEN_VERSION must equal the
# wasm-bindgen library version in Cargo.lock (Cargo.toml pins it with "=").
readonly WORKER_BUILD_VERSION=0.8.7
readonly WASM_BINDGEN_VERSION=0.2.130
readonly WASM_TARGET=wasm32-unknown-unknown
readonly MIN_NODE_MAJOR=20

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SCRIPT_NAME=${0##*/}
export REPO_ROOT

# --- output ------------------------------------------------------------------

if [[ -t 2 && -z ${NO_COLOR:-} && ${CI:-} != true ]]; then
    _c_red=$'\e[31m' _c_yellow=$'\e[33m' _c_bold=$'\e[1m' _c_off=$'\e[0m'
else
    _c_red='' _c_yellow='' _c_bold='' _c_off=''
fi

# log MSG...: progress message on stderr.
log() { printf '%s%s:%s %s\n' "$_c_bold" "$SCRIPT_NAME" "$_c_off" "$*" >&2; }
# warn MSG...: warning on stderr.
warn() { printf '%s%s: warning:%s %s\n' "$_c_yellow" "$SCRIPT_NAME" "$_c_off" "$*" >&2; }
# die MSG...: error on stderr, exit 1.
die() {
    printf '%s%s: error:%s %s\n' "$_c_red" "$SCRIPT_NAME" "$_c_off" "$*" >&2
    exit 1
}
# verbose MSG...: only when ENSURE_VERBOSE=1 (setup.sh).
verbose() { if [[ ${ENSURE_VERBOSE:-0} == 1 ]]; then log "$@"; fi; }

# --- environment -------------------------------------------------------------

export WRANGLER_SEND_METRICS=false       # no telemetry
export WRANGLER_SEND_ERROR_REPORTS=false # no "report this error?" prompt
export CLOUDFLARE_CF_FETCH_ENABLED=false # no Request.cf download (no network here)
export WRANGLER_HIDE_BANNER=true         # no banner, no update check

if [[ ${CI:-} == true ]]; then
    export NO_COLOR=1 FORCE_COLOR=0 CARGO_TERM_COLOR=never
fi

# cargo-installed tools (worker-build, wasm-bindgen) next, node_modules/.bin first.
PATH="$REPO_ROOT/node_modules/.bin:${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
export PATH

# --- toolchain -----------------------------------------------------------------

# _tool_version BIN: last word of the first line of `BIN --version`, or "".
_tool_version() {
    command -v "$1" >/dev/null 2>&1 || return 0
    "$1" --version 2>/dev/null | awk 'NR == 1 { print $NF }' || true
}

_ensure_rust() {
    command -v cargo >/dev/null 2>&1 ||
        die "cargo not found. Install Rust with rustup (https://rustup.rs) and make sure ~/.cargo/bin is in PATH."
    command -v rustc >/dev/null 2>&1 || die "rustc not found (cargo is there but rustc is not: broken Rust install?)."

    local sysroot
    sysroot=$(rustc --print sysroot) || die "'rustc --print sysroot' failed: broken Rust toolchain?"
    if [[ -d $sysroot/lib/rustlib/$WASM_TARGET/lib ]]; then
        verbose "ok: Rust target $WASM_TARGET ($(rustc --version))"
    else
        command -v rustup >/dev/null 2>&1 ||
            die "Rust target $WASM_TARGET is missing and rustup is not available to add it (install Rust with rustup)."
        log "adding Rust target $WASM_TARGET (rustup target add)"
        rustup target add "$WASM_TARGET" ||
            die "'rustup target add $WASM_TARGET' failed: rustup downloads the target from static.rust-lang.org (or RUSTUP_DIST_SERVER); is it reachable?"
    fi

    local missing=()
    cargo fmt --version >/dev/null 2>&1 || missing+=(rustfmt)
    cargo clippy --version >/dev/null 2>&1 || missing+=(clippy)
    if ((${#missing[@]} == 0)); then
        verbose "ok: rustfmt and clippy"
    else
        command -v rustup >/dev/null 2>&1 || die "Rust components missing (${missing[*]}) and rustup is not available to add them."
        log "adding Rust components: ${missing[*]} (rustup component add)"
        rustup component add "${missing[@]}" ||
            die "'rustup component add ${missing[*]}' failed: rustup downloads components from static.rust-lang.org (or RUSTUP_DIST_SERVER); is it reachable?"
    fi
}

# _ensure_cargo_tool BIN CRATE VERSION [cargo install args...]
_ensure_cargo_tool() {
    local bin=$1 crate=$2 want=$3
    shift 3
    local have
    have=$(_tool_version "$bin")
    if [[ $have == "$want" ]]; then
        verbose "ok: $bin $have ($(command -v "$bin"))"
        return 0
    fi
    if [[ -n $have ]]; then
        log "$bin is version $have, this project needs $want: installing $crate $want (cargo install, a few minutes)"
    else
        log "$bin not found: installing $crate $want (cargo install, a few minutes)"
    fi
    cargo install "$crate" --version "$want" "$@" ||
        die "'cargo install $crate --version $want $*' failed. Likely causes: no access to crates.io (network/proxy), missing system packages (worker-build needs libssl-dev and pkg-config), or a compile error (see above)."
    hash -r
    have=$(_tool_version "$bin")
    [[ $have == "$want" ]] ||
        die "installed $crate $want, but '$bin --version' still reports '${have:-nothing}' ($(command -v "$bin" || echo 'not in PATH')): is another $bin earlier in PATH, or CARGO_HOME/bin not in PATH?"
    log "installed $bin $want"
}

_ensure_node() {
    command -v node >/dev/null 2>&1 || die "node not found: Node.js >= $MIN_NODE_MAJOR is needed for wrangler."
    command -v npm >/dev/null 2>&1 || die "npm not found: it comes with Node.js; needed to install wrangler/esbuild/binaryen."
    local v major
    v=$(node --version) || die "'node --version' failed"
    major=${v#v}
    major=${major%%.*}
    if ! [[ $major =~ ^[0-9]+$ ]] || ((major < MIN_NODE_MAJOR)); then
        die "Node.js $v is too old: wrangler 4.86.0 needs Node.js >= $MIN_NODE_MAJOR."
    fi
    verbose "ok: node $v, npm $(npm --version 2>/dev/null || echo '?')"
}

# ensure_node_modules: `npm ci` when node_modules is missing, incomplete or
# older than package.json / package-lock.json.
ensure_node_modules() {
    _ensure_node
    [[ -f package-lock.json ]] ||
        die "package-lock.json is missing: run 'npm install' once and commit package-lock.json."
    local reason="" stamp=node_modules/.package-lock.json bin
    if [[ ! -d node_modules ]]; then
        reason="node_modules is missing"
    elif [[ ! -f $stamp ]]; then
        reason="node_modules was not installed by npm"
    elif [[ package-lock.json -nt $stamp ]]; then
        reason="package-lock.json is newer than node_modules"
    elif [[ package.json -nt $stamp ]]; then
        reason="package.json is newer than node_modules"
    else
        for bin in wrangler esbuild wasm-opt; do
            [[ -x node_modules/.bin/$bin ]] || reason="node_modules/.bin/$bin is missing"
        done
    fi
    if [[ -z $reason ]]; then
        verbose "ok: node_modules up to date"
        return 0
    fi
    log "$reason: running npm ci"
    local args=(ci --no-audit --no-fund)
    [[ ${CI:-} == true ]] && args+=(--no-progress)
    npm "${args[@]}" ||
        die "'npm ci' failed. Likely causes: no access to the npm registry (network/proxy), or package.json and package-lock.json out of sync (run 'npm install' and commit package-lock.json)."
    for bin in wrangler esbuild wasm-opt; do
        [[ -x node_modules/.bin/$bin ]] || die "npm ci finished but node_modules/.bin/$bin is missing (package.json must list wrangler, esbuild and binaryen)."
    done
    log "node_modules installed"
}

# ensure_toolchain: everything the build and the tests need. Idempotent; when
# all is in place it only runs a few `--version` checks.
ensure_toolchain() {
    _ensure_rust
    _ensure_cargo_tool worker-build worker-build "$WORKER_BUILD_VERSION" --locked
    # NO --locked: wasm-bindgen-cli 0.2.130's lock file does not resolve (toolchain.md, pitfall 4).
    _ensure_cargo_tool wasm-bindgen wasm-bindgen-cli "$WASM_BINDGEN_VERSION"
    ensure_node_modules
}

# ensure_nextest: cargo-nextest (scripts/test.sh runs the tests with it); installed
# with cargo when missing. Test priorities need 0.9.91 or later.
ensure_nextest() {
    if cargo nextest --version >/dev/null 2>&1; then
        verbose "ok: $(cargo nextest --version 2>/dev/null | head -n 1)"
        return 0
    fi
    log "cargo-nextest not found: installing it (cargo install cargo-nextest --locked, a few minutes)"
    cargo install cargo-nextest --locked ||
        die "'cargo install cargo-nextest --locked' failed: no access to crates.io (network/proxy), or a compile error (see above)."
    cargo nextest --version >/dev/null 2>&1 ||
        die "installed cargo-nextest, but 'cargo nextest --version' still fails: is CARGO_HOME/bin in PATH?"
}

# check_wasm_bindgen_lock: the wasm-bindgen library in Cargo.lock must be the
# version of the installed CLI, or wasm-bindgen fails on the module.
check_wasm_bindgen_lock() {
    [[ -f Cargo.lock ]] || return 0
    local versions v
    versions=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/^version = "|"$/, ""); print }' Cargo.lock)
    for v in $versions; do
        [[ $v == "$WASM_BINDGEN_VERSION" ]] ||
            die "Cargo.lock has wasm-bindgen $v but the wasm-bindgen CLI is $WASM_BINDGEN_VERSION: pin wasm-bindgen = \"=$WASM_BINDGEN_VERSION\" in Cargo.toml (or change WASM_BINDGEN_VERSION in scripts/lib.sh and run scripts/setup.sh)."
    done
}

# kv_has_preview_id CONFIG BINDING: true when the wrangler config gives the KV
# binding a preview_id. `wrangler dev` (local too) reads preview_id when there
# is one, else id, so local writes must go to the same namespace. Exit 2 (with
# a message) when the config cannot be read or has no such binding.
kv_has_preview_id() {
    local rc=0
    _python - "$1" "$2" <<'EOF' || rc=$?
import json, sys
path, binding = sys.argv[1], sys.argv[2]
try:
    with open(path, "rb") as f:
        if path.endswith(".toml"):
            import tomllib
            cfg = tomllib.load(f)
        else:
            cfg = json.load(f)  # wrangler.json (not .jsonc with comments)
except Exception as e:
    print(f"cannot read {path}: {e}", file=sys.stderr)
    sys.exit(2)
for ns in cfg.get("kv_namespaces", []):
    if ns.get("binding") == binding:
        sys.exit(0 if ns.get("preview_id") else 1)
print(f'{path}: no [[kv_namespaces]] entry with binding = "{binding}"', file=sys.stderr)
sys.exit(2)
EOF
    ((rc < 2)) || die "cannot tell which KV namespace $2 uses (see above)"
    return "$rc"
}

# _python ARGS...: python3, or a clear error (bench-access.sh, the TOML and JSON reads here).
_python() {
    if command -v python3 >/dev/null 2>&1; then python3 "$@"; else die "python3 not found"; fi
}

# --- cargo / wrangler ------------------------------------------------------------

# cargo_target_dir: cargo's target directory (honours CARGO_TARGET_DIR and .cargo/config).
cargo_target_dir() {
    cargo metadata --format-version 1 --no-deps |
        _python -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])'
}

# bench_policy BASE FILE: for the load benches (scripts/bench-*.sh) against a running
# scripts/dev.sh at BASE. Checks that it answers and that wrk is installed, uploads a copy of
# the policy FILE from a new temporary directory (BENCH_WORK, for the bench's own files too) and
# waits until the policy answers "ok" at /. On exit, BENCH_WORK goes and policies/acme is back.
bench_policy() {
    local base=$1 file=$2
    curl -s -o /dev/null "$base/" || die "nothing answers at $base: start scripts/dev.sh first"
    command -v wrk >/dev/null || die "wrk is not installed (apt-get install wrk)"
    BENCH_WORK=$(mktemp -d "${TMPDIR:-/tmp}/$SCRIPT_NAME.XXXXXX")
    trap 'rm -rf "$BENCH_WORK"; bash scripts/upload-policy.sh --local policies/acme >/dev/null' EXIT
    cp "$file" "$BENCH_WORK/"
    bash scripts/upload-policy.sh --local "$BENCH_WORK/$(basename "$file")" >/dev/null
    sleep 3 # dev.sh checks for a new version every 2 s
    [[ $(curl -s "$base/") == ok ]] || die "the bench policy did not go live"
}
