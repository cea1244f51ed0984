#!/usr/bin/env bash
# scripts/bench-access.sh [BASE_URL] [RATE]: what each access-control action costs inside the
# Worker, against a running scripts/dev.sh (default http://127.0.0.1:8787). Uploads
# benches/load/access.yaml (every action in front of a custom-response), then runs wrk for 8 s
# per row: no action, restrict-ips, one JWT again and again (the verified-token cache), a new JWT
# per request (WebCrypto verify; RS256, ES256, EdDSA), and GitHub-signed 1 KiB deliveries with
# and without the replay log (a Durable Object call). RATE (default 1000) sizes the prepared
# requests: RATE x 8 unique tokens and deliveries per row, so none repeats within a run (a
# delivery beyond them would be a replay). Puts policies/acme back at the end. Needs wrk.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

base=${1:-http://127.0.0.1:8787}
n=${2:-1000}
curl -s -o /dev/null "$base/" || die "nothing answers at $base: start scripts/dev.sh first"
dev_auth=$(cargo_target_dir)/release/dev-auth
[[ -x $dev_auth ]] || die "$dev_auth is missing: scripts/dev.sh builds it"

work=$(mktemp -d "${TMPDIR:-/tmp}/bench-access.XXXXXX")
trap 'rm -rf "$work"; bash scripts/upload-policy.sh --local policies/acme >/dev/null' EXIT
cp benches/load/access.yaml "$work/"
bash scripts/upload-policy.sh --local "$work/access.yaml" >/dev/null
sleep 3 # dev.sh checks for a new version every 2 s
[[ $(curl -s "$base/") == ok ]] || die "the bench policy did not go live"

command -v wrk >/dev/null || die "wrk is not installed (apt-get install wrk)"

# row NAME FILE: wrk -t1 -c4 -d${secs}s over FILE's requests (benches/load/requests.lua); every
# answer must be 200. Prints throughput and latency.
secs=8
row() {
    local name=$1 file=$2 out
    out=$(REQUESTS_FILE=$file wrk -t1 -c4 -d${secs}s --latency -s benches/load/requests.lua "$base")
    if grep -q 'Non-2xx' <<<"$out"; then
        die "$name: some answers were not 2xx: $(grep 'Non-2xx' <<<"$out")"
    fi
    awk -v name="$name" '/Requests\/sec/ {rps=$2} / 50%/ {p50=$2} / 99%/ {p99=$2}
        END {printf "%-44s %8s req/s  p50 %8s  p99 %8s\n", name, rps, p50, p99}' <<<"$out"
}

tab=$'\t'
token=$("$dev_auth" token --sub cached)
total=$((n * secs))
log "minting $total tokens per key type and signing $total deliveries (once per request)"
for key in rsa-1 ec-1 ed-1; do
    "$dev_auth" token --key "$key" --sub "u" --count "$total" |
        sed 's/^/GET\t\/jwt\t\tAuthorization: Bearer /' >"$work/fresh-$key"
done
body=$(head -c 1024 /dev/zero | tr '\0' 'x')
# GitHub signs the body only: one signature serves every delivery; each gets its own id.
run_id=$(date +%s%N)
signature=$("$dev_auth" sign-webhook --provider github --secret dev-webhook-secret --body "$body" |
    grep -i '^x-hub-signature-256:')
for path in hook hook-replay; do
    for ((i = 0; i < total; i++)); do
        printf 'POST\t/%s\t%s\t%s\tX-GitHub-Delivery: bench-%s-%s-%s\n' "$path" "$body" "$signature" "$path" "$i" "$run_id"
    done >"$work/$path"
done
printf 'GET\t/\t\n' >"$work/none"
printf 'GET\t/ips\t\n' >"$work/ips"
printf 'GET\t/jwt\t\tAuthorization: Bearer %s\n' "$token" >"$work/cached"

row "(warm-up)" "$work/cached" >/dev/null
row "no action (custom-response)" "$work/none"
row "restrict-ips" "$work/ips"
row "jwt-validation, the same token (cached)" "$work/cached"
row "jwt-validation, a new RS256 token each" "$work/fresh-rsa-1"
row "jwt-validation, a new ES256 token each" "$work/fresh-ec-1"
row "jwt-validation, a new EdDSA token each" "$work/fresh-ed-1"
row "verify-webhook github, 1 KiB" "$work/hook"
row "verify-webhook github, 1 KiB, replay log" "$work/hook-replay"
