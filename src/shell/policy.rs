//! The live policy of this isolate: read from KV, compiled once per version, re-checked at most
//! every `POLICY_REFRESH_SECONDS`. Bad or missing values keep the last good gateway serving.

use crate::bundle::{self, bundle_key, CURRENT_KEY};
use crate::error::GatewayError;
use crate::gateway::Gateway;
use crate::reload::{Pointer, PolicyCache};
use std::cell::RefCell;
use std::rc::Rc;
use worker::{console_error, console_log, Date, Env};

const BINDING: &str = "POLICY";
/// KV's edge cache cannot be shorter than 60 s; below that, read without it (development).
const KV_CACHE_FLOOR_S: f64 = 60.0;

thread_local! {
    static CACHE: RefCell<PolicyCache> = RefCell::new(PolicyCache::default());
}

fn refresh_seconds(env: &Env) -> f64 {
    env.var("POLICY_REFRESH_SECONDS")
        .ok()
        .and_then(|v| v.to_string().parse::<f64>().ok())
        .filter(|s| *s >= 0.0)
        .unwrap_or(60.0)
}

/// The gateway to serve this request with, or the fail-closed error.
pub async fn current(env: &Env) -> Result<Rc<Gateway>, GatewayError> {
    let now = Date::now().as_millis() as f64;
    let interval_s = refresh_seconds(env);
    // Without a live gateway every request looks (cold start, or nothing valid uploaded yet).
    let due = CACHE.with(|c| {
        let c = c.borrow();
        c.due(now, interval_s * 1000.0) || !c.is_live()
    });
    if due {
        CACHE.with(|c| c.borrow_mut().checked(now));
        refresh(env, interval_s).await;
    }
    CACHE.with(|c| c.borrow().gateway())
}

async fn refresh(env: &Env, interval_s: f64) {
    let kv = match env.kv(BINDING) {
        Ok(kv) => kv,
        Err(e) => return problem(format!("KV binding `{BINDING}` is missing: {e}")),
    };
    let mut get = kv.get(CURRENT_KEY);
    if interval_s >= KV_CACHE_FLOOR_S {
        get = get.cache_ttl(interval_s as u64);
    }
    let pointer = match get.text().await {
        Ok(p) => p,
        Err(e) => return problem(format!("cannot read KV key `{CURRENT_KEY}`: {e}")),
    };
    let action = CACHE.with(|c| c.borrow_mut().pointer(pointer.as_deref()));
    let Pointer::Load(version) = action else {
        return;
    };
    // Bundles are immutable once written, so they may sit in KV's edge cache for long.
    let text = match kv.get(&bundle_key(&version)).cache_ttl(3600).text().await {
        Ok(Some(t)) => t,
        Ok(None) => return problem(format!("KV key `{}` is missing", bundle_key(&version))),
        Err(e) => return problem(format!("cannot read `{}`: {e}", bundle_key(&version))),
    };
    match bundle::load(&text)
        .and_then(|g| with_secrets(env, g))
        .map(|g| with_routing(env, g))
    {
        Ok(gateway) => {
            console_log!("edge-gateway: policy version {version} is live");
            CACHE.with(|c| c.borrow_mut().install(gateway));
        }
        Err(reason) => {
            console_error!("edge-gateway: rejected policy version {version}: {reason}");
            CACHE.with(|c| c.borrow_mut().reject(&version, reason));
        }
    }
}

/// Resolves the `secrets.get` the version names from Worker secrets, once per version. A missing
/// secret rejects the version (the last good one keeps serving); values never reach a log.
fn with_secrets(env: &Env, mut gateway: Gateway) -> Result<Gateway, String> {
    let mut secrets = crate::secrets::Secrets::new();
    for (vault, name) in &gateway.secret_refs {
        let binding = crate::secrets::binding_name(vault, name);
        match env.secret(&binding) {
            Ok(value) => {
                secrets.insert((vault.clone(), name.clone()), value.to_string());
            }
            Err(_) => {
                return Err(format!(
                    "secrets.get('{vault}', '{name}') needs the Worker secret `{binding}` \
                     (npx wrangler secret put {binding}; locally: .dev.vars)"
                ))
            }
        }
    }
    gateway.set_secrets(secrets);
    Ok(gateway)
}

/// The Worker's routing settings: `MEMBER_HEADER` names the response header that says which
/// pool member answered (empty: none).
fn with_routing(env: &Env, mut gateway: Gateway) -> Gateway {
    if let Ok(v) = env.var("MEMBER_HEADER") {
        let name = v.to_string().trim().to_ascii_lowercase();
        gateway.routing.member_header = (!name.is_empty()).then_some(name);
    }
    gateway
}

fn problem(reason: String) {
    console_error!("edge-gateway: {reason}");
    CACHE.with(|c| c.borrow_mut().transient(reason));
}
