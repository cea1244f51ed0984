#!/usr/bin/env bash
# scripts/dev.sh [--port N]: run the gateway locally, from a fresh machine, in
# one command: install/check the toolchain, build the native binaries and the
# Worker, start the 8 demo origins (127.0.0.1:18101..18108) and the dev
# identity provider (JWKS on 127.0.0.1:18200), upload policies/acme/ to local
# KV and run `wrangler dev` on 127.0.0.1:8787 (policy refresh every 2 s).
# Prints curl examples, a token and a signed webhook once it answers. Ctrl-C
# stops everything it started (each service runs in its own process group).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

usage() {
    sed -n '2,7s/^# \{0,1\}//p' "$0"
}

port=8787
while (($#)); do
    case $1 in
        --port)
            (($# >= 2)) || { usage >&2; die "--port needs a number"; }
            port=$2
            shift
            ;;
        --port=*) port=${1#*=} ;;
        -h | --help) usage; exit 0 ;;
        *) usage >&2; die "unknown argument '$1'" ;;
    esac
    shift
done
if ! [[ $port =~ ^[0-9]+$ ]] || ((port < 1 || port > 65535)); then
    die "--port must be a TCP port number, got '$port'"
fi

readonly POLICY_DIR=policies/acme
readonly STATE_DIR=$REPO_ROOT/.wrangler/state # wrangler's default for ./wrangler.toml
readonly DEV_CONFIG=build/wrangler.dev.toml
readonly LOG_DIR=build/dev
readonly ORIGIN_PORTS=(18101 18102 18103 18104 18105 18106 18107 18108)
readonly IDP_ADDR=127.0.0.1:18200
# A development value for the Worker secret policies/acme/gke.yaml names (production: `wrangler
# secret put ACME__GITHUB_WEBHOOK_SECRET`).
readonly DEV_WEBHOOK_SECRET=dev-webhook-secret
readonly BASE_URL=http://127.0.0.1:$port

check_port() { # PORT WHAT HINT
    port_is_free "$1" && return 0
    local owner
    owner=$(port_owner "$1")
    die "port $1 ($2) is already in use${owner:+ by: $owner}. $3"
}
check_ports() {
    check_port "$port" "wrangler dev" "Stop whatever listens there (an earlier scripts/dev.sh or wrangler dev?) or pass --port N."
    local p
    for p in "${ORIGIN_PORTS[@]}"; do
        check_port "$p" "demo origins" "The demo origins need 127.0.0.1:18101..18108: stop an earlier scripts/dev.sh or demo-origins."
    done
    check_port "${IDP_ADDR#*:}" "dev identity provider" "dev-auth serve needs $IDP_ADDR: stop an earlier scripts/dev.sh or dev-auth."
    check_port 18100 "demo origins' fault control" "demo-origins needs 127.0.0.1:18100 for fault control: stop an earlier scripts/dev.sh or demo-origins."
}

# --- background services, each in its own process group ------------------------
group_pids=()
group_names=()
# shellcheck disable=SC2317 # invoked by the EXIT trap
cleanup() {
    local rc=$?
    # Finish cleaning up even on a second Ctrl-C, or when our stdout/stderr
    # pipe (e.g. `dev.sh | tee`) died with the first one.
    trap '' INT TERM HUP PIPE
    trap - EXIT
    set +e
    local i
    for ((i = ${#group_pids[@]} - 1; i >= 0; i--)); do
        if group_alive "${group_pids[i]}"; then
            log "stopping ${group_names[i]} (process group ${group_pids[i]})"
            kill_group "${group_pids[i]}" "${group_names[i]}"
        fi
        wait "${group_pids[i]}" 2>/dev/null || true
    done
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# start_group NAME LOG CMD...: run CMD in a new session/process group (setsid)
# in the background, stdin from /dev/null, stdout+stderr to file LOG ("-": this
# terminal). Sets STARTED_PID (= its process group id).
start_group() {
    local name=$1 out=$2
    shift 2
    if [[ $out == - ]]; then
        setsid "$@" </dev/null &
    else
        setsid "$@" </dev/null >"$out" 2>&1 &
    fi
    STARTED_PID=$!
    group_pids+=("$STARTED_PID")
    group_names+=("$name")
    wait_own_group "$STARTED_PID" || die "$name did not start in its own process group (setsid failed?)"
}

# --- 1. toolchain and builds ---------------------------------------------------
check_ports # fail before minutes of building
[[ -d $POLICY_DIR ]] || die "$POLICY_DIR/ is missing: nothing to upload"

ensure_toolchain
log "building the native binaries (cargo build --release --bins)"
cargo build --release --bins || die "cargo build --release --bins failed (see above)"
bash scripts/build-worker.sh || die "the Worker build failed (see above)"
write_nobuild_config wrangler.toml "$DEV_CONFIG"
target_dir=$(cargo_target_dir) || die "'cargo metadata' failed"
demo_origins=$target_dir/release/demo-origins
[[ -x $demo_origins ]] || die "$demo_origins is missing after the build: the crate must have a [[bin]] demo-origins"

# --- 2. demo origins -------------------------------------------------------------
check_ports
mkdir -p "$LOG_DIR"
origins_log=$LOG_DIR/demo-origins.log
log "starting demo-origins (log: $origins_log)"
: >"$origins_log"
start_group demo-origins "$origins_log" "$demo_origins"
origins_pid=$STARTED_PID
deadline=$((SECONDS + 60))
until grep -q '^demo-origins: ready' "$origins_log"; do
    if ! group_alive "$origins_pid"; then
        sed 's/^/    /' "$origins_log" >&2
        die "demo-origins exited before it was ready (output above)"
    fi
    ((SECONDS < deadline)) || die "demo-origins did not print 'demo-origins: ready' within 60 s (see $origins_log)"
    sleep 0.1
done
log "demo origins ready on 127.0.0.1:${ORIGIN_PORTS[0]}..${ORIGIN_PORTS[-1]}"

# --- 2b. the dev identity provider (policies/acme trusts its JWKS for Orders) -----------
dev_auth=$target_dir/release/dev-auth
[[ -x $dev_auth ]] || die "$dev_auth is missing after the build"
idp_log=$LOG_DIR/dev-auth.log
: >"$idp_log"
start_group "dev-auth serve" "$idp_log" "$dev_auth" serve --addr "$IDP_ADDR"
idp_pid=$STARTED_PID
deadline=$((SECONDS + 30))
until grep -q '^dev-auth: serving' "$idp_log"; do
    group_alive "$idp_pid" || die "dev-auth serve exited (see $idp_log)"
    ((SECONDS < deadline)) || die "dev-auth serve did not start within 30 s (see $idp_log)"
    sleep 0.1
done
log "dev identity provider: JWKS on http://$IDP_ADDR/.well-known/jwks.json (log: $idp_log)"

# --- 3. policy -> local KV ---------------------------------------------------------
bash scripts/upload-policy.sh --local --persist-to "$STATE_DIR" "$POLICY_DIR" ||
    die "uploading $POLICY_DIR to local KV failed (see above)"

# --- 4. wrangler dev -----------------------------------------------------------------
check_port "$port" "wrangler dev" "Something took it while building; pass --port N."
log "starting wrangler dev on $BASE_URL (config $DEV_CONFIG, state $STATE_DIR)"
start_group "wrangler dev" - wrangler dev --config "$DEV_CONFIG" --local --ip 127.0.0.1 --port "$port" \
    --persist-to "$STATE_DIR" --show-interactive-dev-session=false --test-scheduled --var POLICY_REFRESH_SECONDS:2 \
    --var "ACME__GITHUB_WEBHOOK_SECRET:$DEV_WEBHOOK_SECRET" \
    --var ACCESS__EKS_CLIENT_ID:dev-eks.access --var ACCESS__EKS_CLIENT_SECRET:dev-eks-secret \
    --var ACCESS__GKE_CLIENT_ID:dev-gke.access --var ACCESS__GKE_CLIENT_SECRET:dev-gke-secret
wrangler_pid=$STARTED_PID

deadline=$((SECONDS + 120))
until curl -s -o /dev/null --max-time 2 "$BASE_URL/"; do
    group_alive "$wrangler_pid" || die "wrangler dev exited before it answered (output above)"
    ((SECONDS < deadline)) || die "wrangler dev did not answer on $BASE_URL within 120 s"
    sleep 0.2
done

# --- 5. how to use it -------------------------------------------------------------
status() { # API PATH [CURL_ARGS...]: the HTTP status the gateway answers right now
    local api=$1 path=$2
    shift 2
    curl -s -o /dev/null -w '%{http_code}' --max-time 10 -H "X-Acme-Api: $api" "$@" "$BASE_URL$path" || echo "no answer"
}
token=$("$dev_auth" token --sub alice)
rel_dev_auth=${dev_auth#"$REPO_ROOT"/}
webhook_body='{"zen":"Keep it logically awesome."}'
mapfile -t signed < <("$dev_auth" sign-webhook --provider github --secret "$DEV_WEBHOOK_SECRET" --body "$webhook_body")
signed_args=()
for h in "${signed[@]}"; do signed_args+=(-H "$h"); done
cat <<EOF

$SCRIPT_NAME: edge-gateway is running on $BASE_URL (Ctrl-C stops it and the demo origins)

  # one request per API (HTTP status right now in brackets)
  curl -s -H 'X-Acme-Api: catalog-eks'   $BASE_URL/items       # [$(status catalog-eks /items)]
  # orders need a token from the dev identity provider (policies/acme/eks.yaml)
  TOKEN=\$($rel_dev_auth token --sub alice)     # --key ec-1|ed-1, --ttl -60 (expired), --aud other, ...
  curl -s -H 'X-Acme-Api: orders-eks' -H "Authorization: Bearer \$TOKEN" $BASE_URL/orders   # [$(status orders-eks /orders -H "Authorization: Bearer $token")]
  curl -s -i -H 'X-Acme-Api: orders-eks' $BASE_URL/orders     # no token: 401 [$(status orders-eks /orders)]
  # inventory is for partner addresses only; wrangler dev takes the client address from
  # CF-Connecting-IP, as Cloudflare's edge sets it, so curl can act as a partner (or not)
  curl -s -H 'X-Acme-Api: inventory-gke' -H 'CF-Connecting-IP: 192.0.2.10' $BASE_URL/inventory   # [$(status inventory-gke /inventory -H 'CF-Connecting-IP: 192.0.2.10')]
  curl -s -H 'X-Acme-Api: inventory-gke' $BASE_URL/inventory   # [$(status inventory-gke /inventory)]
  # webhooks must be signed by GitHub with the secret (dev value: $DEV_WEBHOOK_SECRET); each
  # delivery is taken once (a second identical one is a replay: 403)
  BODY='$webhook_body'
  $rel_dev_auth sign-webhook --provider github --secret $DEV_WEBHOOK_SECRET --body "\$BODY" > /tmp/hook.h
  curl -s -H 'X-Acme-Api: webhook-gke' -H @/tmp/hook.h -d "\$BODY" $BASE_URL/hooks/github   # [$(status webhook-gke /hooks/github "${signed_args[@]}" -d "$webhook_body")]
  curl -s -i -H 'X-Acme-Api: webhook-gke' -d '{}' $BASE_URL/hooks/github                # unsigned: 403 [$(status webhook-gke /hooks/github -d '{}')]
  # fault injection: a replica down (or 503, hang, reset); the pool keeps answering (docs/pools.md)
  curl -X POST 'http://127.0.0.1:18100/faults/catalog/eks/1?mode=down'    # ...?mode=ok to heal
  curl -s http://127.0.0.1:18100/faults                                   # who served, who failed
  curl -s "$BASE_URL/__scheduled?cron=*+*+*+*+*"        # run the health probes now (the Cron Trigger)
  # identity provider outage and key rotation: the gateway keeps serving with cached keys
  curl -s -X POST http://$IDP_ADDR/admin/down    # .../admin/up, .../admin/keys?kids=rsa-1,rsa-2
  # an unknown API -> 404; no X-Acme-Api header at all -> 400
  curl -s -i -H 'X-Acme-Api: no-such-api' $BASE_URL/          # [$(status no-such-api /)]
  curl -s -i $BASE_URL/                                       # [$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$BASE_URL/" || echo "no answer")]

  # change the policy live: edit $POLICY_DIR/*.yaml, then (picked up within ~2 s)
  scripts/upload-policy.sh --local $POLICY_DIR

  # change the Worker: wrangler reloads when build/ changes
  scripts/build-worker.sh

  demo origins log: $origins_log

EOF

# --- 6. run until Ctrl-C or until a service dies ----------------------------------------
rc=0
wait -n "$wrangler_pid" "$origins_pid" || rc=$?
if ! group_alive "$wrangler_pid"; then
    die "wrangler dev exited (status $rc): stopping the demo origins"
fi
die "demo-origins exited (status $rc, log: $origins_log): stopping wrangler dev"
