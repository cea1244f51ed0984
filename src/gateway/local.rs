//! The [`Trust`] port without a platform: a settable clock, JWKS documents served from memory,
//! and the pure-Rust verifier. For the core's tests, the benches and offline simulation; the
//! Worker's port is `shell::trust`.

use super::Trust;
use crate::jwt::{native, Alg, CacheSettings, Jwk, JwtCache};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;

#[derive(Default)]
pub struct LocalTrust {
    pub now_ms: Cell<u64>,
    cache: JwtCache,
    /// JWKS documents by URL; `Err` plays an identity provider that is down.
    pub jwks: RefCell<HashMap<String, Result<String, String>>>,
    /// `(url, bypassed the edge cache)` of every fetch, in order.
    pub fetched: RefCell<Vec<(String, bool)>>,
}

impl LocalTrust {
    pub fn new(settings: CacheSettings) -> LocalTrust {
        LocalTrust {
            cache: JwtCache::new(settings),
            ..LocalTrust::default()
        }
    }

    pub fn serve(&self, url: &str, document: Result<String, String>) {
        self.jwks.borrow_mut().insert(url.to_string(), document);
    }
}

impl Trust for LocalTrust {
    fn now_ms(&self) -> u64 {
        self.now_ms.get()
    }

    fn jwt_cache(&self) -> &JwtCache {
        &self.cache
    }

    async fn fetch_jwks(&self, url: &str, bypass_edge_cache: bool) -> Result<String, String> {
        self.fetched
            .borrow_mut()
            .push((url.to_string(), bypass_edge_cache));
        self.jwks
            .borrow()
            .get(url)
            .cloned()
            .unwrap_or_else(|| Err(format!("{url}: 404")))
    }

    async fn verify(
        &self,
        alg: Alg,
        key: &Jwk,
        message: &[u8],
        signature: &[u8],
    ) -> Result<bool, String> {
        native::verify(alg, key, message, signature)
    }
}
