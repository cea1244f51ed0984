//! The [`Trust`] port in the Worker: the platform clock, JWKS through the edge cache, and
//! signatures through WebCrypto (`crypto.subtle`), which runs natively in workerd: about 8x
//! faster than RustCrypto compiled to wasm (docs/performance.md).
//!
//! Per isolate: one [`JwtCache`] (key sets, verified tokens) and the imported `CryptoKey`s, so a
//! key is imported once, not per request.

use super::timeout::within;
use crate::gateway::Trust;
use crate::jwt::{Alg, CacheSettings, Jwk, JwtCache, KeySet};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use worker::js_sys::{self, Object, Reflect, Uint8Array};
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::wasm_bindgen_futures::JsFuture;
use worker::web_sys::{self, CryptoKey, SubtleCrypto};
use worker::{Cache, Env, Fetch, Headers, Method, Request, RequestInit, Response};

/// A JWKS fetch waits this long for the identity provider (then stale keys or a 503).
const JWKS_TIMEOUT_MS: u64 = 3_000;
/// A JWKS larger than this is not a JWKS.
const MAX_JWKS_BYTES: usize = 256 * 1024;

thread_local! {
    static CACHE: RefCell<Option<Rc<JwtCache>>> = const { RefCell::new(None) };
    static KEYS: RefCell<HashMap<([u8; 32], Alg), CryptoKey>> = RefCell::new(HashMap::new());
}

pub struct WorkerTrust {
    cache: Rc<JwtCache>,
}

impl WorkerTrust {
    pub fn new(env: &Env) -> WorkerTrust {
        let cache = CACHE.with(|c| {
            Rc::clone(c.borrow_mut().get_or_insert_with(|| {
                let mut settings = CacheSettings::default();
                if let Some(s) = env
                    .var("JWKS_REFRESH_SECONDS")
                    .ok()
                    .and_then(|v| v.to_string().parse::<u64>().ok())
                {
                    settings.refresh_ms = s.max(1) * 1000;
                    settings.unknown_kid_ms = settings.unknown_kid_ms.min(s.max(1) * 1000);
                    settings.failure_backoff_ms = settings.failure_backoff_ms.min(s.max(1) * 1000);
                }
                Rc::new(JwtCache::new(settings))
            }))
        });
        WorkerTrust { cache }
    }
}

fn js_err(e: JsValue) -> String {
    e.as_string()
        .or_else(|| {
            Reflect::get(&e, &"message".into())
                .ok()
                .and_then(|m| m.as_string())
        })
        .unwrap_or_else(|| format!("{e:?}"))
}

fn object(fields: &[(&str, JsValue)]) -> Object {
    let o = Object::new();
    for (k, v) in fields {
        let _ = Reflect::set(&o, &JsValue::from_str(k), v);
    }
    o
}

fn subtle() -> Result<SubtleCrypto, String> {
    let crypto = Reflect::get(&js_sys::global(), &"crypto".into()).map_err(js_err)?;
    Ok(crypto.unchecked_into::<web_sys::Crypto>().subtle())
}

/// WebCrypto's `(importKey algorithm, verify algorithm)` for a JWS algorithm.
fn algorithms(alg: Alg) -> (Object, Object) {
    let hash = || object(&[("name", alg.hash().name().into())]);
    match alg {
        Alg::RS256 | Alg::RS384 | Alg::RS512 => {
            let name: JsValue = "RSASSA-PKCS1-v1_5".into();
            (
                object(&[("name", name.clone()), ("hash", hash().into())]),
                object(&[("name", name)]),
            )
        }
        Alg::PS256 | Alg::PS384 | Alg::PS512 => {
            let name: JsValue = "RSA-PSS".into();
            let salt = JsValue::from_f64(alg.hash().len() as f64);
            (
                object(&[("name", name.clone()), ("hash", hash().into())]),
                object(&[("name", name), ("saltLength", salt)]),
            )
        }
        Alg::ES256 | Alg::ES384 | Alg::ES512 => {
            let curve = alg.key_type().1.unwrap_or("P-256");
            (
                object(&[("name", "ECDSA".into()), ("namedCurve", curve.into())]),
                object(&[("name", "ECDSA".into()), ("hash", hash().into())]),
            )
        }
        Alg::EdDSA => (
            object(&[("name", "Ed25519".into())]),
            object(&[("name", "Ed25519".into())]),
        ),
    }
}

async fn crypto_key(subtle: &SubtleCrypto, alg: Alg, key: &Jwk) -> Result<CryptoKey, String> {
    if let Some(k) = KEYS.with(|m| m.borrow().get(&(key.fingerprint, alg)).cloned()) {
        return Ok(k);
    }
    let jwk: Object = js_sys::JSON::parse(&key.to_json().to_string())
        .map_err(js_err)?
        .unchecked_into();
    let usages = js_sys::Array::of1(&"verify".into());
    let (import, _) = algorithms(alg);
    let promise = subtle
        .import_key_with_object("jwk", &jwk, &import, false, &usages)
        .map_err(js_err)?;
    let k: CryptoKey = JsFuture::from(promise)
        .await
        .map_err(js_err)?
        .unchecked_into();
    KEYS.with(|m| {
        let mut m = m.borrow_mut();
        if m.len() > 1000 {
            m.clear();
        }
        m.insert((key.fingerprint, alg), k.clone());
    });
    Ok(k)
}

impl WorkerTrust {
    /// Refreshes, after the response has gone, every key set near the end of its life (the
    /// schedule of [`JwtCache::due`]), so requests seldom wait for an identity provider. The
    /// fetch bypasses the edge cache, whose copy is as old, and refills it.
    pub fn refresh_in_background(&self, ctx: &worker::Context) {
        let now = worker::Date::now().as_millis();
        for url in self.cache.due(now) {
            let cache = Rc::clone(&self.cache);
            ctx.wait_until(async move {
                let fetched = fetch_jwks(cache.settings.refresh_ms, &url, true)
                    .await
                    .and_then(|text| KeySet::parse(&text));
                let now = worker::Date::now().as_millis();
                if let Err(why) = &fetched {
                    worker::console_log!(
                        "edge-gateway: jwt-validation: background refresh of {url} failed ({why}); serving cached keys"
                    );
                }
                let _ = cache.store(&url, fetched, now);
            });
        }
    }
}

impl Trust for WorkerTrust {
    fn now_ms(&self) -> u64 {
        worker::Date::now().as_millis()
    }

    fn jwt_cache(&self) -> &JwtCache {
        &self.cache
    }

    async fn fetch_jwks(&self, url: &str, bypass_edge_cache: bool) -> Result<String, String> {
        fetch_jwks(self.cache.settings.refresh_ms, url, bypass_edge_cache).await
    }

    async fn verify(
        &self,
        alg: Alg,
        key: &Jwk,
        message: &[u8],
        signature: &[u8],
    ) -> Result<bool, String> {
        if !key.fits(alg) {
            return Ok(false);
        }
        let subtle = subtle()?;
        let crypto_key = crypto_key(&subtle, alg, key).await?;
        let (_, verify) = algorithms(alg);
        let sig = Uint8Array::from(signature);
        let data = Uint8Array::from(message);
        let promise = subtle
            .verify_with_object_and_buffer_source_and_buffer_source(
                &verify,
                &crypto_key,
                &sig,
                &data,
            )
            .map_err(js_err)?;
        let ok = JsFuture::from(promise).await.map_err(js_err)?;
        Ok(ok.as_bool() == Some(true))
    }
}

/// The edge cache first (shared by the isolates of a location), then the identity provider;
/// a fresh document goes back into the edge cache for `refresh_ms`.
async fn fetch_jwks(refresh_ms: u64, url: &str, bypass_edge_cache: bool) -> Result<String, String> {
    let cache = Cache::default();
    if !bypass_edge_cache {
        if let Ok(Some(mut hit)) = cache.get(url, false).await {
            if let Ok(text) = hit.text().await {
                return Ok(text);
            }
        }
    }
    let call = async {
        let headers = Headers::new();
        headers.set("accept", "application/json")?;
        let mut init = RequestInit::new();
        // No redirects: one could lead from https to plain http.
        init.with_method(Method::Get)
            .with_headers(headers)
            .with_redirect(worker::RequestRedirect::Manual);
        let req = Request::new_with_init(url, &init)?;
        let mut resp = Fetch::Request(req).send().await?;
        let status = resp.status_code();
        let declared: Option<usize> = resp
            .headers()
            .get("content-length")?
            .and_then(|v| v.trim().parse().ok());
        if status != 200 || declared.is_some_and(|n| n > MAX_JWKS_BYTES) {
            return Ok((status, declared, String::new()));
        }
        let text = resp.text().await?;
        Ok::<_, worker::Error>((status, declared, text))
    };
    let (status, declared, text) = match within(JWKS_TIMEOUT_MS, call).await {
        Some(Ok(r)) => r,
        Some(Err(e)) => return Err(format!("fetch failed: {e}")),
        None => return Err(format!("no answer within {JWKS_TIMEOUT_MS} ms")),
    };
    if status != 200 {
        return Err(format!("answered {status}"));
    }
    if text.len() > MAX_JWKS_BYTES || declared.is_some_and(|n| n > MAX_JWKS_BYTES) {
        return Err(format!("larger than {MAX_JWKS_BYTES} bytes"));
    }
    let max_age = refresh_ms / 1000;
    let headers = Headers::new();
    let stored = headers
        .set("cache-control", &format!("max-age={max_age}"))
        .and_then(|()| headers.set("content-type", "application/json"))
        .and_then(|()| Response::ok(text.clone()))
        .map(|r| r.with_headers(headers));
    if let Ok(stored) = stored {
        if let Err(e) = cache.put(url, stored).await {
            worker::console_log!(
                "edge-gateway: could not keep the JWKS of {url} in the edge cache: {e}"
            );
        }
    }
    Ok(text)
}
