#!/usr/bin/env bash
# scripts/upload-policy.sh [--local|--remote] [--strict] [--no-ip-intel]
#                          [--persist-to DIR] [--config FILE] FILE|DIR...
# Check the policy/endpoint files (a DIR means all *.yaml, *.yml, *.json in it),
# compile them into one bundle with `policy-check bundle` and, only if that
# passes, publish it to the POLICY KV namespace: first bundle/<version>, then
# `current` = <version> (the switch the Worker follows). Default: --local
# (wrangler's local state, as `wrangler dev` uses). --strict: warnings fail too.
# The bundle carries the shipped IP-intelligence list (policies/ip-intel/openai.yaml)
# unless the files include IPIntelligence documents (they replace it) or
# --no-ip-intel is given. POLICY_CHECK_BIN=PATH: use that policy-check.
set -euo pipefail
orig_pwd=$PWD
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

usage() {
    sed -n '2,12s/^# \{0,1\}//p' "$0"
}
usage_error() {
    usage >&2
    printf '%s: error: %s\n' "$SCRIPT_NAME" "$1" >&2
    exit 2
}
# abspath P: P resolved against the directory the script was started from.
abspath() {
    case $1 in
        /*) printf '%s\n' "$1" ;;
        *) printf '%s\n' "$orig_pwd/$1" ;;
    esac
}

where=local
strict=()
no_ip_intel=()
persist_to=""
config=""
inputs=()
while (($#)); do
    case $1 in
        --local) where=local ;;
        --remote) where=remote ;;
        --strict) strict=(--strict) ;;
        --no-ip-intel) no_ip_intel=(--no-ip-intel) ;;
        --persist-to)
            (($# >= 2)) || usage_error "--persist-to needs a directory"
            persist_to=$(abspath "$2")
            shift
            ;;
        --persist-to=*) persist_to=$(abspath "${1#*=}") ;;
        --config | -c)
            (($# >= 2)) || usage_error "--config needs a file"
            config=$(abspath "$2")
            shift
            ;;
        --config=*) config=$(abspath "${1#*=}") ;;
        -h | --help) usage; exit 0 ;;
        --) shift; inputs+=("$@"); break ;;
        -*) usage_error "unknown option '$1'" ;;
        *) inputs+=("$1") ;;
    esac
    shift
done

((${#inputs[@]})) || usage_error "no policy FILE or DIR given (e.g. policies/acme)"
[[ -z $persist_to || $where == local ]] || usage_error "--persist-to only applies to --local"
for p in "${inputs[@]}"; do
    [[ -e $(abspath "$p") ]] || die "no such file or directory: $p (nothing was uploaded)"
done
if [[ -n $config ]]; then
    [[ -f $config ]] || die "wrangler config not found: $config (nothing was uploaded)"
else
    config=$REPO_ROOT/wrangler.toml
fi
if [[ $where == remote ]] && grep -q 'REPLACE_WITH_KV_NAMESPACE_ID' "$config"; then
    die "$config still has id = \"REPLACE_WITH_KV_NAMESPACE_ID\" for the POLICY namespace: create one ('wrangler kv namespace create POLICY') and put its id there (nothing was uploaded)"
fi

# Which namespace: `wrangler dev` binds POLICY to its preview_id when the config
# has one (else its id), so --local writes there; --remote writes the
# production id, which the deployed Worker reads.
kv_args=(--binding POLICY "--$where" --config "$config")
if [[ $where == local ]] && kv_has_preview_id "$config" POLICY; then
    kv_args+=(--preview)
else
    kv_args+=(--preview false)
fi
[[ -n $persist_to ]] && kv_args+=(--persist-to "$persist_to")

ensure_node_modules

tmp=$(mktemp -d "${TMPDIR:-/tmp}/upload-policy.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
bundle=$tmp/bundle.json

# 1. check + compile. cargo build keeps the binary fresh (quick when it is), unless
# POLICY_CHECK_BIN names one already built (devstack passes its own build's, so a
# test never starts a release build). policy-check runs from the caller's
# directory so paths in diagnostics are as given.
if [[ -n ${POLICY_CHECK_BIN:-} ]]; then
    policy_check=$POLICY_CHECK_BIN
    [[ -x $policy_check ]] || die "POLICY_CHECK_BIN=$policy_check is not an executable: nothing was uploaded"
else
    cargo build --release --bin policy-check ||
        die "building policy-check failed (cargo build --release --bin policy-check): nothing was uploaded"
    policy_check=$(cargo_target_dir)/release/policy-check || die "'cargo metadata' failed: nothing was uploaded"
    [[ -x $policy_check ]] || die "cargo built policy-check but $policy_check does not exist: nothing was uploaded"
fi
log "checking ${inputs[*]}"
rc=0
version=$(cd "$orig_pwd" && "$policy_check" bundle "${strict[@]}" "${no_ip_intel[@]}" --out "$bundle" "${inputs[@]}") || rc=$?
case $rc in
    0) ;;
    1) die "the policy check failed (diagnostics above): nothing was uploaded" ;;
    *) die "policy-check bundle exited $rc (usage error or crash): nothing was uploaded" ;;
esac
[[ $version =~ ^[A-Za-z0-9._-]+$ ]] ||
    die "policy-check printed an unexpected version string '$version' (want one line of [A-Za-z0-9._-]): nothing was uploaded"
[[ -s $bundle ]] || die "policy-check passed but wrote no bundle to $bundle: nothing was uploaded"

# 2. publish: the bundle first, then the pointer (the Worker only ever sees a
# `current` whose bundle already exists).
# kv_put ARGS...: wrangler kv key put, its chatter shown only when it fails.
kv_put() {
    local out
    if out=$(wrangler kv key put "$@" "${kv_args[@]}" 2>&1); then
        return 0
    fi
    printf '%s\n' "$out" >&2
    return 1
}
log "writing bundle/$version ($(wc -c <"$bundle") B, $where)"
kv_put "bundle/$version" --path "$bundle" ||
    die "writing bundle/$version to KV failed (wrangler output above): 'current' was not changed, the live policy is unchanged"
log "switching current -> $version ($where)"
kv_put current "$version" ||
    die "writing 'current' failed (wrangler output above): bundle/$version was stored, but the live policy is unchanged"

printf 'policy version %s is now live (%s)\n' "$version" "$where"
