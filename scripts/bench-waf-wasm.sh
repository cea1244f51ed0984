#!/usr/bin/env bash
# The WAF's inspection cost and start-up in wasm: builds benches/wasm/waf.rs for wasm32 with the
# Worker's release profile and times it under node's V8 (benches/wasm/run.mjs). No wrangler, no
# HTTP: the figure is the engine's own CPU in the Worker's engine.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh
_ensure_rust
_ensure_node
cargo build --release --target wasm32-unknown-unknown --example waf-wasm
wasm=$(cargo_target_dir)/wasm32-unknown-unknown/release/examples/waf_wasm.wasm
echo "bench-waf-wasm: $(stat -c %s "$wasm") B of wasm"
# A real bundle of a policy that runs the WAF: it carries the compiled CRS.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf 'on_http_request:\n  - actions:\n      - type: owasp-crs-request\n      - type: deny\n' >"$tmp/waf.yaml"
cargo run -q --bin policy-check -- bundle --no-ip-intel --out "$tmp/bundle.json" "$tmp/waf.yaml" >/dev/null
echo "bench-waf-wasm: $(stat -c %s "$tmp/bundle.json") B bundle, $(gzip -c "$tmp/bundle.json" | wc -c) B gzip"
node benches/wasm/run.mjs "$wasm" "$tmp/bundle.json"
