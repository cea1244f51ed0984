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
dev_auth=$(cargo_target_dir)/release/dev-auth
[[ -x $dev_auth ]] || die "$dev_auth is missing: scripts/dev.sh builds it"
bench_policy "$base" benches/load/access.yaml
work=$BENCH_WORK

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

token=$("$dev_auth" token --sub cached)
total=$((n * secs))
log "minting $total tokens per key type and signing $total deliveries (once per request)"
for key in rsa-1 ec-1 ed-1; do
    "$dev_auth" token --key "$key" --sub "u" --count "$total" |
        sed 's/^/GET\t\/jwt\t\tAuthorization: Bearer /' >"$work/fresh-$key"
done
# GitHub signs the body only, so the replay log keys a delivery by its body (the delivery id
# header is not signed): every delivery gets a body of its own, 1 KiB, and its signature.
run_id=$(date +%s%N)
_python - "$work" "$total" "$run_id" <<'PY'
import hashlib, hmac, sys
work, total, run = sys.argv[1], int(sys.argv[2]), sys.argv[3]
for path in ("hook", "hook-replay"):
    with open(f"{work}/{path}", "w") as out:
        for i in range(total):
            body = f"{path} {i} {run} ".ljust(1024, "x")
            mac = hmac.new(b"dev-webhook-secret", body.encode(), hashlib.sha256).hexdigest()
            out.write(f"POST\t/{path}\t{body}\tX-Hub-Signature-256: sha256={mac}"
                      f"\tX-GitHub-Delivery: bench-{path}-{i}-{run}\n")
PY
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
