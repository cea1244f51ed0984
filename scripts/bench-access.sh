#!/usr/bin/env bash
# scripts/bench-access.sh [BASE_URL] [N]: what each access-control action costs inside the Worker,
# against a running scripts/dev.sh (default http://127.0.0.1:8787). Uploads
# benches/load/access.yaml (every action in front of a custom-response), then times N (default
# 300) sequential requests per row with curl: none, restrict-ips, one JWT again and again (the
# verified-token cache), a new JWT per request (WebCrypto verify; RS256, ES256, EdDSA), and
# GitHub-signed 1 KiB deliveries with and without the replay log (a Durable Object call). Puts
# policies/acme back at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

base=${1:-http://127.0.0.1:8787}
n=${2:-300}
curl -s -o /dev/null "$base/" || die "nothing answers at $base: start scripts/dev.sh first"
dev_auth=$(cargo_target_dir)/release/dev-auth
[[ -x $dev_auth ]] || die "$dev_auth is missing: scripts/dev.sh builds it"

work=$(mktemp -d "${TMPDIR:-/tmp}/bench-access.XXXXXX")
trap 'rm -rf "$work"; bash scripts/upload-policy.sh --local policies/acme >/dev/null' EXIT
cp benches/load/access.yaml "$work/"
bash scripts/upload-policy.sh --local "$work/access.yaml" >/dev/null
sleep 3 # dev.sh checks for a new version every 2 s
[[ $(curl -s "$base/") == ok ]] || die "the bench policy did not go live"

# time_row NAME ARGS_FILE: one curl per line of ARGS_FILE (extra curl arguments, shell-quoted),
# from a partner address (the bench policy has no rate limit).
time_row() {
    local name=$1 file=$2
    while IFS= read -r args; do
        eval "curl -s -o /dev/null -w '%{http_code} %{time_total}\n' -H 'CF-Connecting-IP: 192.0.2.9' $args"
    done <"$file" >"$work/times"
    local bad
    bad=$(awk '$1 != 200' "$work/times" | wc -l)
    ((bad == 0)) || die "$name: $bad of $(wc -l <"$work/times") requests did not answer 200"
    sort -n -k2 "$work/times" | awk -v name="$name" '{a[NR]=$2} END {printf "%-44s median %6.2f ms  p90 %6.2f ms  p99 %6.2f ms\n", name, a[int(NR*0.5)]*1000, a[int(NR*0.9)]*1000, a[int(NR*0.99)]*1000}'
}

repeat() { # N LINE: LINE n times
    local i
    for ((i = 0; i < $1; i++)); do printf '%s\n' "$2"; done
}

log "minting $((3 * n)) tokens and signing $((2 * n)) deliveries"
token=$("$dev_auth" token --sub cached)
for key in rsa-1 ec-1 ed-1; do
    for ((i = 0; i < n; i++)); do
        printf '%s\n' "-H 'Authorization: Bearer $("$dev_auth" token --key "$key" --sub "u$i")' $base/jwt"
    done >"$work/fresh-$key"
done
body=$(head -c 1024 /dev/zero | tr '\0' 'x')
for path in hook hook-replay; do
    for ((i = 0; i < n; i++)); do
        args=""
        while IFS= read -r h; do args+=" -H '$h'"; done < <("$dev_auth" sign-webhook --provider github --secret dev-webhook-secret --body "$body" --id "bench-$path-$i-$RANDOM$RANDOM")
        printf '%s\n' "$args -d $body $base/$path"
    done >"$work/$path"
done

for warm in / /ips /jwt; do
    repeat 30 "-H 'Authorization: Bearer $token' $base$warm" >"$work/warm"
    time_row "(warm-up $warm)" "$work/warm" >/dev/null
done
repeat "$n" "$base/" >"$work/none"
time_row "no action (custom-response)" "$work/none"
repeat "$n" "$base/ips" >"$work/ips"
time_row "restrict-ips" "$work/ips"
repeat "$n" "-H 'Authorization: Bearer $token' $base/jwt" >"$work/cached"
time_row "jwt-validation, the same token (cached)" "$work/cached"
time_row "jwt-validation, a new RS256 token each" "$work/fresh-rsa-1"
time_row "jwt-validation, a new ES256 token each" "$work/fresh-ec-1"
time_row "jwt-validation, a new EdDSA token each" "$work/fresh-ed-1"
time_row "verify-webhook github, 1 KiB" "$work/hook"
time_row "verify-webhook github, 1 KiB, replay log" "$work/hook-replay"
