#!/usr/bin/env bash
# scripts/bench-waf.sh [BASE_URL]: what owasp-crs-request costs a request inside the Worker,
# against a running scripts/dev.sh (default http://127.0.0.1:8787). Uploads benches/load/waf.yaml
# (the WAF with process_body in front of a custom-response, and the same answer without it), then
# runs wrk for 8 s per row: a browser GET, a 1 KB JSON POST and a 4 KB form post, each without and
# with the WAF. The requests are benches/waf_requests.rs's. Puts policies/acme back at the end.
# Needs wrk. The engine alone in wasm: scripts/bench-waf-wasm.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

base=${1:-http://127.0.0.1:8787}
bench_policy "$base" benches/load/waf.yaml
work=$BENCH_WORK

# workerd's CPU time (user + system, all its processes), in clock ticks.
ticks_per_s=$(getconf CLK_TCK)
workerd_ticks() {
    local pid total=0
    for pid in $(pgrep -f 'workerd serve'); do
        total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat")))
    done
    echo "$total"
}
pgrep -f 'workerd serve' >/dev/null || die "no workerd process found (is scripts/dev.sh running here?)"

# row NAME FILE: wrk -t1 -c4 -d${secs}s over FILE's requests; every answer must be 2xx. Prints
# throughput, latency, and workerd's CPU time per request (its CPU over the run / requests):
# the difference between two rows is what the WAF costs, measured in CPU rather than
# throughput, which the client sharing the two cores makes noisy.
secs=8
row() {
    local name=$1 file=$2 out before after
    before=$(workerd_ticks)
    out=$(REQUESTS_FILE=$file wrk -t1 -c4 -d${secs}s --latency -s benches/load/requests.lua "$base")
    after=$(workerd_ticks)
    if grep -q 'Non-2xx' <<<"$out"; then
        die "$name: some answers were not 2xx (the WAF refused a benign request?): $(grep 'Non-2xx' <<<"$out")"
    fi
    awk -v name="$name" -v ticks=$((after - before)) -v hz="$ticks_per_s" '
        / requests in / {n=$1} /Requests\/sec/ {rps=$2} / 50%/ {p50=$2} / 99%/ {p99=$2}
        END {printf "%-28s %7s req/s  p50 %8s  p99 %8s  workerd CPU %.2f ms/request\n",
            name, rps, p50, p99, ticks * 1000 / hz / n}' <<<"$out"
}

# The requests of benches/waf_requests.rs (a browser's headers; a 1 KB JSON order; a 4 KB form).
# The Host is wrangler dev's (an IP address: CRS's 920350 scores 3, under the threshold).
browser=$'User-Agent: Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36\tAccept: application/json, text/plain, */*\tAccept-Language: en-US,en;q=0.9\tAccept-Encoding: gzip, deflate, br\tReferer: https://shop.example.com/cart\tOrigin: https://shop.example.com\tCookie: _ga=GA1.2.1784503914.1716282731; _gid=GA1.2.55512.1716282731; session=eyJ1aWQiOjQyfQ.ZkXw9A.h7sQmLr4; theme=dark'
items=""
for i in 0 1 2 3 4 5 6 7 8; do
    items+=$(printf '{"sku":"SKU-%05d-BLK","qty":%d,"price":49.99,"name":"Trail Runner X%d","gift":false}' "$i" $((i % 3 + 1)) "$i")
    [[ $i == 8 ]] || items+=","
done
json="{\"customer_id\":\"cus_9a8b7c\",\"items\":[$items],\"shipping\":{\"name\":\"Seán O'Connor\",\"line1\":\"12 Drury Lane\",\"city\":\"Dublin\",\"postcode\":\"D02 X285\",\"country\":\"IE\"},\"notes\":\"Please leave at the door if nobody's home\"}"
form="csrf_token=a81f3b2c9d&name=Jane+O%27Brien"
i=0
while ((${#form} < 4000)); do
    form+="&comment$i=Great+product%2C+fits+well+%26+arrived+on+time.+Would+order+again%21+Size+$i"
    i=$((i + 1))
done
query="category=shoes&color=red&size=42&sort=-price&page=3&utm_source=google&utm_campaign=spring_sale"
for tag in plain waf; do
    prefix=/
    [[ $tag == waf ]] && prefix=/waf/
    printf 'GET\t%sproducts?%s\t\t%s\n' "$prefix" "$query" "$browser" >"$work/get-$tag"
    printf 'POST\t%sorders\t%s\t%s\tContent-Type: application/json\n' "$prefix" "$json" "$browser" >"$work/json-$tag"
    printf 'POST\t%sreviews\t%s\t%s\tContent-Type: application/x-www-form-urlencoded\n' "$prefix" "$form" "$browser" >"$work/form-$tag"
done

row "(warm-up)" "$work/json-waf" >/dev/null
for kind in get json form; do
    case $kind in
    get) what="GET, 7 query args" ;;
    json) what="1 KB JSON POST" ;;
    form) what="4 KB form POST" ;;
    esac
    row "$what: no WAF" "$work/$kind-plain"
    row "$what: WAF" "$work/$kind-waf"
done
