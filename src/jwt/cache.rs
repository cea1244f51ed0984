//! What one isolate remembers between requests: the key sets of JWKS URLs and the tokens whose
//! signatures already verified. Pure bookkeeping with the clock passed in; fetching and
//! verifying are the caller's (see `actions::jwt_validation`), so no borrow is held across an
//! `await`.
//!
//! Key sets: fresh for `refresh_ms`, then fetched again on the next request (the old set serves
//! if that fails). A `kid` the set lacks triggers a fetch that bypasses the edge cache, at most
//! once per `unknown_kid_ms` per URL, so a stream of made-up `kid`s cannot hammer the identity
//! provider. A failed fetch is remembered for `failure_backoff_ms` (negative caching), and a set
//! keeps serving for up to `max_stale_ms` while its identity provider is down.

use super::{KeySet, Token};
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

#[derive(Clone, Copy, Debug)]
pub struct CacheSettings {
    pub refresh_ms: u64,
    pub unknown_kid_ms: u64,
    pub failure_backoff_ms: u64,
    pub max_stale_ms: u64,
    pub max_verified: usize,
    pub max_urls: usize,
}

impl Default for CacheSettings {
    fn default() -> Self {
        CacheSettings {
            // ngrok: "cached and refreshed roughly every 15 minutes".
            refresh_ms: 15 * 60_000,
            unknown_kid_ms: 30_000,
            failure_backoff_ms: 30_000,
            max_stale_ms: 24 * 3_600_000,
            max_verified: 10_000,
            max_urls: 100,
        }
    }
}

/// What the caller should do to get keys for a URL.
#[derive(Debug)]
pub enum KeyPlan {
    Use(Arc<KeySet>),
    /// Fetch the JWKS, then [`JwtCache::store`] the outcome; `bypass_edge_cache` when the edge
    /// copy is known to be too old (a token names a `kid` it lacks).
    Fetch {
        bypass_edge_cache: bool,
    },
    /// A recent fetch failed and nothing is cached: fail fast without asking again.
    Fail(String),
}

/// A token whose signature verified, kept until it expires or any key set changes.
#[derive(Debug)]
pub struct Verified {
    pub token: Token,
    /// Which JWKS URL's key verified it.
    pub url: String,
    generation: u64,
    expires_ms: u64,
}

#[derive(Default)]
struct Entry {
    keys: Option<Arc<KeySet>>,
    fetched_ms: u64,
    attempt_ms: Option<u64>,
    failure: Option<(u64, String)>,
}

#[derive(Default)]
struct Inner {
    sets: HashMap<String, Entry>,
    verified: HashMap<[u8; 32], Arc<Verified>>,
    /// Bumped whenever a key set's content changes: every cached verification is then void.
    generation: u64,
    fetches: u64,
}

#[derive(Default)]
pub struct JwtCache {
    pub settings: CacheSettings,
    inner: RefCell<Inner>,
}

impl JwtCache {
    pub fn new(settings: CacheSettings) -> JwtCache {
        JwtCache {
            settings,
            inner: RefCell::default(),
        }
    }

    /// Decides how to get the keys of `url` for a token naming `kid`, and marks an attempt
    /// when it says to fetch (so concurrent requests do not all fetch).
    pub fn plan(&self, url: &str, kid: Option<&str>, now_ms: u64) -> KeyPlan {
        let s = self.settings;
        let mut inner = self.inner.borrow_mut();
        if !inner.sets.contains_key(url) && inner.sets.len() >= s.max_urls {
            // Bounded: forget the set fetched longest ago.
            if let Some(oldest) = inner
                .sets
                .iter()
                .min_by_key(|(_, e)| e.fetched_ms)
                .map(|(k, _)| k.clone())
            {
                inner.sets.remove(&oldest);
            }
        }
        let entry = inner.sets.entry(url.to_string()).or_default();
        let since = |t: Option<u64>| t.map_or(u64::MAX, |t| now_ms.saturating_sub(t));
        let Some(keys) = entry.keys.clone() else {
            if let Some((at, why)) = &entry.failure {
                if now_ms.saturating_sub(*at) < s.failure_backoff_ms {
                    return KeyPlan::Fail(why.clone());
                }
            }
            entry.attempt_ms = Some(now_ms);
            return KeyPlan::Fetch {
                bypass_edge_cache: false,
            };
        };
        let recently_tried = since(entry.attempt_ms);
        if now_ms.saturating_sub(entry.fetched_ms) >= s.refresh_ms {
            if recently_tried < s.failure_backoff_ms {
                return KeyPlan::Use(keys);
            }
            entry.attempt_ms = Some(now_ms);
            return KeyPlan::Fetch {
                bypass_edge_cache: false,
            };
        }
        if let Some(kid) = kid {
            if !keys.has_kid(kid) && recently_tried >= s.unknown_kid_ms {
                entry.attempt_ms = Some(now_ms);
                return KeyPlan::Fetch {
                    bypass_edge_cache: true,
                };
            }
        }
        KeyPlan::Use(keys)
    }

    /// Key sets past three quarters of `refresh_ms` and not being fetched: the shell refreshes
    /// them in the background (after the response), so requests rarely wait for a refresh. Each
    /// is marked as attempted, so one background fetch runs per URL at a time.
    pub fn due(&self, now_ms: u64) -> Vec<String> {
        let s = self.settings;
        let mut inner = self.inner.borrow_mut();
        let mut out = Vec::new();
        for (url, e) in inner.sets.iter_mut() {
            let old = now_ms.saturating_sub(e.fetched_ms) >= s.refresh_ms / 4 * 3;
            let idle = e
                .attempt_ms
                .is_none_or(|t| now_ms.saturating_sub(t) >= s.failure_backoff_ms);
            if e.keys.is_some() && old && idle {
                e.attempt_ms = Some(now_ms);
                out.push(url.clone());
            }
        }
        out
    }

    /// Records a fetch's outcome; returns the keys to use: the new set, or on failure the old
    /// one while it is within `max_stale_ms` (`Ok((keys, true))` marks it stale).
    pub fn store(
        &self,
        url: &str,
        fetched: Result<KeySet, String>,
        now_ms: u64,
    ) -> Result<(Arc<KeySet>, bool), String> {
        let max_stale = self.settings.max_stale_ms;
        let mut inner = self.inner.borrow_mut();
        inner.fetches += 1;
        let mut changed = false;
        let entry = inner.sets.entry(url.to_string()).or_default();
        let out = match fetched {
            Ok(set) => {
                changed = entry.keys.as_deref() != Some(&set);
                let set = Arc::new(set);
                entry.keys = Some(Arc::clone(&set));
                entry.fetched_ms = now_ms;
                entry.failure = None;
                Ok((set, false))
            }
            Err(why) => {
                entry.failure = Some((now_ms, why.clone()));
                match &entry.keys {
                    Some(keys) if now_ms.saturating_sub(entry.fetched_ms) < max_stale => {
                        Ok((Arc::clone(keys), true))
                    }
                    _ => Err(why),
                }
            }
        };
        if changed {
            inner.generation += 1;
            inner.verified.clear();
        }
        out
    }

    /// A cached verification of the token with this hash, if still good at `now_ms`.
    pub fn verified(&self, hash: &[u8; 32], now_ms: u64) -> Option<Arc<Verified>> {
        let mut inner = self.inner.borrow_mut();
        let generation = inner.generation;
        match inner.verified.get(hash) {
            Some(v) if v.generation == generation && now_ms < v.expires_ms => Some(Arc::clone(v)),
            Some(_) => {
                inner.verified.remove(hash);
                None
            }
            None => None,
        }
    }

    /// Remembers that `token` (with this hash) verified with a key from `url`, until its `exp`.
    pub fn remember(&self, hash: [u8; 32], token: Token, url: &str, now_ms: u64) -> Arc<Verified> {
        let expires_ms = token
            .claims
            .exp
            .map_or(0, |exp| (exp.max(0.0) * 1000.0).min(u64::MAX as f64) as u64);
        let mut inner = self.inner.borrow_mut();
        let verified = Arc::new(Verified {
            token,
            url: url.to_string(),
            generation: inner.generation,
            expires_ms,
        });
        if expires_ms <= now_ms {
            return verified;
        }
        if inner.verified.len() >= self.settings.max_verified {
            inner.verified.retain(|_, v| v.expires_ms > now_ms);
            if inner.verified.len() >= self.settings.max_verified {
                inner.verified.clear();
            }
        }
        inner.verified.insert(hash, Arc::clone(&verified));
        verified
    }

    /// How many JWKS fetches finished in this isolate (for tests and stats).
    pub fn fetches(&self) -> u64 {
        self.inner.borrow().fetches
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const JWKS_A: &str = r#"{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"a","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#;
    const JWKS_B: &str = r#"{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"b","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}"#;

    fn fetch_plan(p: KeyPlan) -> bool {
        match p {
            KeyPlan::Fetch { bypass_edge_cache } => bypass_edge_cache,
            other => panic!("expected a fetch, got {other:?}"),
        }
    }

    #[test]
    fn refresh_unknown_kid_stale_and_negative_caching() {
        let c = JwtCache::default();
        let s = c.settings;
        let url = "https://idp/jwks";
        // First use fetches through the edge cache.
        assert!(!fetch_plan(c.plan(url, Some("a"), 0)));
        c.store(url, KeySet::parse(JWKS_A), 0).unwrap();
        assert!(matches!(c.plan(url, Some("a"), 1), KeyPlan::Use(_)));
        // Unknown kid: no fetch within `unknown_kid_ms` of the last one, then one fetch past
        // the edge cache, then none for `unknown_kid_ms` again.
        assert!(matches!(c.plan(url, Some("b"), 10), KeyPlan::Use(_)));
        let t = s.unknown_kid_ms;
        assert!(fetch_plan(c.plan(url, Some("b"), t)));
        c.store(url, KeySet::parse(JWKS_A), t).unwrap();
        assert!(matches!(c.plan(url, Some("b"), t + 1), KeyPlan::Use(_)));
        assert!(matches!(c.plan(url, Some("b"), 2 * t - 1), KeyPlan::Use(_)));
        assert!(fetch_plan(c.plan(url, Some("b"), 2 * t)));
        // Scheduled refresh after `refresh_ms`; the provider is down: the old set serves, stale.
        let later = t + s.refresh_ms;
        assert!(!fetch_plan(c.plan(url, None, later)));
        let (keys, stale) = c.store(url, Err("503".into()), later).unwrap();
        assert!(stale && keys.has_kid("a"));
        // ... and the failure is not retried at once.
        assert!(matches!(c.plan(url, None, later + 1), KeyPlan::Use(_)));
        // Beyond `max_stale_ms` a failure is an error.
        let much_later = t + s.max_stale_ms;
        assert!(!fetch_plan(c.plan(url, None, much_later)));
        assert_eq!(
            c.store(url, Err("503".into()), much_later),
            Err("503".into())
        );
        // Nothing cached and a recent failure: fail fast.
        let other = "https://down/jwks";
        assert!(!fetch_plan(c.plan(other, None, 0)));
        assert!(c.store(other, Err("refused".into()), 0).is_err());
        assert!(matches!(c.plan(other, None, 5), KeyPlan::Fail(m) if m == "refused"));
        assert!(!fetch_plan(c.plan(other, None, s.failure_backoff_ms)));
        assert_eq!(c.fetches(), 5);
    }

    #[test]
    fn background_refresh_is_due_at_three_quarters_once_at_a_time() {
        let c = JwtCache::default();
        let s = c.settings;
        let url = "https://idp/jwks";
        assert!(c.due(0).is_empty(), "nothing cached, nothing due");
        assert!(!fetch_plan(c.plan(url, None, 0)));
        c.store(url, KeySet::parse(JWKS_A), 0).unwrap();
        let three_quarters = s.refresh_ms / 4 * 3;
        assert!(c.due(three_quarters - 1).is_empty());
        assert_eq!(c.due(three_quarters), vec![url.to_string()]);
        assert!(c.due(three_quarters + 1).is_empty(), "one fetch at a time");
        // The background fetch lands: nothing is due until three quarters later.
        c.store(url, KeySet::parse(JWKS_A), three_quarters + 5)
            .unwrap();
        assert!(c.due(2 * three_quarters).is_empty());
        assert_eq!(c.due(2 * three_quarters + 5).len(), 1);
    }

    #[test]
    fn verifications_end_with_exp_or_a_key_change() {
        let c = JwtCache::default();
        let url = "https://idp/jwks";
        c.store(url, KeySet::parse(JWKS_A), 0).unwrap();
        let mut token = Token::parse(
            "eyJhbGciOiJFZERTQSJ9.eyJleHAiOjEwfQ.c2ln",
            &[crate::jwt::Alg::EdDSA],
        )
        .unwrap();
        token.claims.exp = Some(10.0);
        c.remember([1; 32], token.clone(), url, 0);
        assert!(c.verified(&[1; 32], 9_999).is_some());
        assert!(c.verified(&[1; 32], 10_000).is_none());
        c.remember([2; 32], token.clone(), url, 0);
        // The same content again changes nothing; new content voids every verification.
        c.store(url, KeySet::parse(JWKS_A), 5).unwrap();
        assert!(c.verified(&[2; 32], 6).is_some());
        c.store(url, KeySet::parse(JWKS_B), 7).unwrap();
        assert!(c.verified(&[2; 32], 8).is_none());
    }
}
