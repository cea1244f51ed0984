//! The ports as the actions of one phase see them: [`Ports`] is the [`Context`] actions call.
//! Every method is a call into a port (or into the gateway, for a subrequest); the work lives
//! with the ports ([`super::ports`]) and the reply ([`super::reply`]).

use super::ports::{first_delivery, RateLimiter, SharedRandom, Trust, Upstream};
use super::reply::{self, Body};
use super::Gateway;
use crate::error::GatewayError;
use crate::exchange::{Context, Subrequest, Subresponse};
use crate::http::MAX_BUFFERED_BODY;
use crate::jwt::{Alg, Jwk, JwtCache};
use crate::limiter::{Decision, LimitCheck};
use std::cell::RefCell;
use std::rc::Rc;

/// The ports as the actions of one phase see them.
pub(super) struct Ports<'a, U: Upstream, L, T> {
    pub(super) gateway: &'a Gateway,
    pub(super) upstream: &'a U,
    pub(super) limiter: &'a L,
    pub(super) trust: &'a T,
    /// The response phase cannot forward: no internal endpoint is visible from it.
    pub(super) can_forward: bool,
    /// Shared by the request and its subrequests; borrowed only to draw a number.
    /// (Behind a trait object so `Ports` stays covariant in `'a`: a response phase narrows it.)
    pub(super) rng: &'a dyn SharedRandom,
    /// The reply body while a response phase runs (read and rewritten only if an action asks).
    pub(super) reply_body: Option<&'a RefCell<Body<U::Body>>>,
}

impl<U: Upstream, L, T> Clone for Ports<'_, U, L, T> {
    fn clone(&self) -> Self {
        Ports { ..*self }
    }
}

impl<U: Upstream, L: RateLimiter, T: Trust> Context for Ports<'_, U, L, T> {
    fn has_internal(&self, key: &str) -> bool {
        self.can_forward && self.gateway.pools.contains_key(key)
    }

    async fn rate_limit(
        &self,
        bucket: &str,
        checks: &[LimitCheck],
    ) -> Result<Vec<Decision>, String> {
        self.limiter.check(bucket, checks).await
    }

    fn now_ms(&self) -> u64 {
        self.trust.now_ms()
    }

    fn jwt_cache(&self) -> &JwtCache {
        self.trust.jwt_cache()
    }

    async fn fetch_jwks(&self, url: &str, bypass_edge_cache: bool) -> Result<String, String> {
        self.trust.fetch_jwks(url, bypass_edge_cache).await
    }

    async fn verify(&self, alg: Alg, key: &Jwk, msg: &[u8], sig: &[u8]) -> Result<bool, String> {
        self.trust.verify(alg, key, msg, sig).await
    }

    async fn first_delivery(&self, id: &str, ttl_ms: u64) -> Result<bool, String> {
        first_delivery(self.limiter, id, ttl_ms).await
    }

    async fn request_body(&self) -> Result<Rc<[u8]>, GatewayError> {
        let body = self.upstream.request_body(MAX_BUFFERED_BODY).await;
        body.map_err(|e| e.of_request())
    }

    async fn request_body_prefix(&self, limit: usize) -> Result<Rc<[u8]>, GatewayError> {
        let body = self.upstream.request_body_prefix(limit).await;
        body.map_err(|e| e.of_request())
    }

    async fn subrequest(&self, req: Subrequest) -> Result<Subresponse, GatewayError> {
        // Boxed: a member policy's own http-request comes back here (bounded by its depth).
        Box::pin(self.gateway.subrequest(req, self)).await
    }

    async fn response_body(&self) -> Result<Rc<[u8]>, GatewayError> {
        reply::read(self.reply_body, self.upstream, None).await
    }

    async fn response_body_prefix(&self, limit: usize) -> Result<Rc<[u8]>, GatewayError> {
        reply::read(self.reply_body, self.upstream, Some(limit)).await
    }

    fn set_response_body(&self, body: Rc<[u8]>) {
        if let Some(slot) = self.reply_body {
            *slot.borrow_mut() = Body::Bytes(body);
        }
    }

    fn decodes(&self, coding: &str) -> bool {
        self.upstream.decodes(coding)
    }
}
