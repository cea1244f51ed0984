#!/usr/bin/env bash
# scripts/bench-rate-limit.sh [BASE_URL]: load-tests rate-limit decisions against a running
# scripts/dev.sh (default http://127.0.0.1:8787): uploads benches/load/rate-limit.yaml, runs wrk
# on a path without a limit, with one hot bucket, with a new bucket per request, and with an
# exact log of 1000, then puts policies/acme back. Needs wrk (apt-get install wrk).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

base=${1:-http://127.0.0.1:8787}
command -v wrk >/dev/null || die "wrk is not installed (apt-get install wrk)"
curl -s -o /dev/null "$base/" || die "nothing answers at $base: start scripts/dev.sh first"

bench_dir=$(mktemp -d "${TMPDIR:-/tmp}/bench-rate-limit.XXXXXX")
trap 'rm -rf "$bench_dir"; bash scripts/upload-policy.sh --local policies/acme >/dev/null' EXIT
cp benches/load/rate-limit.yaml policies/acme/eks.yaml policies/acme/gke.yaml "$bench_dir/"
bash scripts/upload-policy.sh --local "$bench_dir" >/dev/null
sleep 3 # dev.sh checks for a new version every 2 s
[[ $(curl -s "$base/one") == ok ]] || die "the bench policy did not go live"

for path in /none /one /exact; do
    log "wrk -t2 -c8 -d10s $base$path"
    wrk -t2 -c8 -d10s --latency "$base$path" | grep -E 'Requests/sec|50%|99%|Non-2xx'
done
log "wrk -t2 -c8 -d10s $base/many (a new bucket per request)"
wrk -t2 -c8 -d10s --latency -s benches/load/random-key.lua "$base" | grep -E 'Requests/sec|50%|99%|Non-2xx'

for path in /none /one; do
    for _ in $(seq 30); do curl -s -o /dev/null "$base$path"; done
    for _ in $(seq 300); do curl -s -o /dev/null -w '%{time_total}\n' "$base$path"; done | sort -n |
        awk -v p="$path" '{a[NR]=$1} END {printf "sequential %s: median %.2f ms  p90 %.2f ms  p99 %.2f ms\n", p, a[int(NR*0.5)]*1000, a[int(NR*0.9)]*1000, a[int(NR*0.99)]*1000}'
done
