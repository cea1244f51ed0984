//! The platform ports the request path goes through: the origin ([`Upstream`]), the clock and
//! crypto ([`Trust`]), the global rate-limit buckets ([`RateLimiter`]) and randomness
//! ([`Random`]). The shell implements them for the Worker; tests and benches bring fakes.

use crate::error::GatewayError;
use crate::http::{Headers, ResponseHead};
use crate::jwt::{Alg, Jwk, JwtCache};
use crate::limiter::{Decision, LimitCheck};
use std::cell::RefCell;
use std::rc::Rc;

/// The request to send to a pool member's origin.
pub struct Outbound<'a> {
    pub method: &'a str,
    pub url: String,
    pub headers: Headers,
    /// The internal endpoint URL and member, for errors and logs.
    pub endpoint: &'a str,
    pub member: &'a str,
    /// `Some`: send these bytes, not the client's body (an `http-request`'s body, or the
    /// body `request-body-find-replace` rewrote).
    pub body: Option<Rc<[u8]>>,
    /// `Some`: give up sooner than the shell's own upstream timeout (what is left of an
    /// `http-request`'s `timeout`).
    pub timeout_ms: Option<u64>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum UpstreamError {
    Unreachable(String),
    Timeout {
        after_ms: u64,
    },
    /// The request itself could not be built (a header value the platform refuses): the
    /// client's problem, not the member's, so no retry and no mark against its health.
    Invalid(String),
}

impl UpstreamError {
    /// Whether the member failed, not the request, so that another member may take it
    /// (pingora's `Error::retry`): it could not be reached or did not answer in time. The
    /// request path still decides whether the request can be sent again.
    pub fn retry(&self) -> bool {
        !matches!(self, UpstreamError::Invalid(_))
    }

    /// The error the client gets, naming the internal endpoint.
    pub(super) fn at(self, endpoint: &str) -> GatewayError {
        match self {
            UpstreamError::Unreachable(detail) => GatewayError::UpstreamUnreachable {
                endpoint: endpoint.to_string(),
                detail,
            },
            UpstreamError::Timeout { after_ms } => GatewayError::UpstreamTimeout {
                endpoint: endpoint.to_string(),
                after_ms,
            },
            UpstreamError::Invalid(reason) => GatewayError::BadRequest { reason },
        }
    }
}

/// Sends a request to an origin (the shell's `fetch`; a fake in tests). The request body is the
/// shell's business: it streams the client's body into the one call it makes, unless an action
/// asked to read it first ([`Upstream::request_body`]), in which case the buffered bytes go.
#[expect(
    async_fn_in_trait,
    reason = "single-threaded on wasm: no Send bound wanted"
)]
pub trait Upstream {
    type Body;
    async fn send(&self, req: Outbound<'_>) -> Result<(ResponseHead, Self::Body), UpstreamError>;
    /// The client's whole request body, read once and kept for the upstream request.
    async fn request_body(&self, limit: usize) -> Result<Rc<[u8]>, BodyError>;
    /// The first bytes of the client's body, for an inspection that reads no further (the
    /// WAF's `body_limit`): all of it when it is at most `limit` bytes, otherwise more than
    /// `limit` bytes of it, so the reader knows it was cut. Only those are held; the body is
    /// still forwarded whole, and [`Upstream::request_body`] still reads all of it. This
    /// default reads the whole body (at most [`crate::http::MAX_BUFFERED_BODY`]).
    async fn request_body_prefix(&self, limit: usize) -> Result<Rc<[u8]>, BodyError> {
        let _ = limit;
        self.request_body(crate::http::MAX_BUFFERED_BODY).await
    }
    /// Whether the body could be sent again: none, or buffered, or not streamed yet.
    fn body_replayable(&self) -> bool;
    /// Throws away a response that will not be used (a failed attempt that was retried).
    fn discard(&self, _body: Self::Body) {}
    /// Reads a response body whole, giving up past `limit` bytes: the content, decoded when
    /// its coding is one [`Upstream::decodes`] names. An upstream that cannot read bodies says so.
    async fn read_body(&self, _body: Self::Body, limit: usize) -> Result<Vec<u8>, BodyError> {
        let _ = limit;
        Err(BodyError::Unreadable(
            "this upstream cannot read response bodies".into(),
        ))
    }
    /// A response body's first bytes, as [`Upstream::request_body_prefix`] reads the request's,
    /// and the body to send on in its place (all of it, as it comes): `None` when those bytes
    /// are the whole body. This default reads the whole body (at most
    /// [`crate::http::MAX_BUFFERED_BODY`]).
    async fn read_body_prefix(
        &self,
        body: Self::Body,
        limit: usize,
    ) -> Result<(Vec<u8>, Option<Self::Body>), BodyError> {
        let _ = limit;
        let bytes = self.read_body(body, crate::http::MAX_BUFFERED_BODY).await?;
        Ok((bytes, None))
    }
    /// Whether response bodies of this content coding arrive decoded (the Worker's `fetch`
    /// decodes gzip and br).
    fn decodes(&self, _coding: &str) -> bool {
        false
    }
}

/// Why the request body could not be read.
#[derive(Debug, Clone, PartialEq)]
pub enum BodyError {
    TooLarge { limit: usize },
    Unreadable(String),
}

impl BodyError {
    /// The error for the client's request body: too large, or a broken request.
    pub(super) fn of_request(self) -> GatewayError {
        match self {
            BodyError::TooLarge { limit } => GatewayError::BodyTooLarge { limit },
            BodyError::Unreadable(reason) => GatewayError::BadRequest { reason },
        }
    }

    /// The error for the upstream's response body, read in a response phase.
    pub(super) fn of_response(self) -> GatewayError {
        match self {
            BodyError::TooLarge { limit } => GatewayError::ResponseBodyTooLarge { limit },
            BodyError::Unreadable(detail) => GatewayError::ResponseBodyUnreadable { detail },
        }
    }
}

/// What identity and integrity checks need from the platform: the clock, the per-isolate JWT
/// caches, JWKS documents and signature verification (WebCrypto in the Worker).
#[expect(
    async_fn_in_trait,
    reason = "single-threaded on wasm: no Send bound wanted"
)]
pub trait Trust {
    fn now_ms(&self) -> u64;
    fn jwt_cache(&self) -> &JwtCache;
    /// The JWKS document at `url`; `bypass_edge_cache` asks the identity provider itself.
    async fn fetch_jwks(&self, url: &str, bypass_edge_cache: bool) -> Result<String, String>;
    async fn verify(
        &self,
        alg: Alg,
        key: &Jwk,
        message: &[u8],
        signature: &[u8],
    ) -> Result<bool, String>;
}

/// Randomness for balancing, injected so tests are deterministic.
pub trait Random {
    /// A number in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize;
    /// The seed of one request's `rand.*` stream. The default is a constant, for test fakes
    /// (their `rand.*` results stay the same run to run); the Worker's draws a fresh one.
    fn seed(&mut self) -> u64 {
        0x5EED_0F7E_57AB
    }
}

/// One request's random source, drawn from through a shared reference (the request and its
/// subrequests share it).
pub(super) trait SharedRandom {
    fn draw(&self, n: usize) -> usize;
}

impl SharedRandom for RefCell<&mut dyn Random> {
    fn draw(&self, n: usize) -> usize {
        self.borrow_mut().below(n)
    }
}

/// A [`SharedRandom`] lent as a [`Random`].
pub(super) struct Lent<'a>(pub(super) &'a dyn SharedRandom);

impl Random for Lent<'_> {
    fn below(&mut self, n: usize) -> usize {
        self.0.draw(n)
    }
}

/// Global rate-limit buckets (one Durable Object per bucket in the Worker; in memory in tests).
#[expect(
    async_fn_in_trait,
    reason = "single-threaded on wasm: no Send bound wanted"
)]
pub trait RateLimiter {
    /// Applies `checks` in order to `bucket`, stopping after the first enforced refusal.
    async fn check(&self, bucket: &str, checks: &[LimitCheck]) -> Result<Vec<Decision>, String>;
}

/// Records a webhook delivery for `ttl_ms`; `Ok(false)` if it was seen already. A delivery log
/// is a rate limit of one per window, keyed by the delivery: the same exact, global bucket
/// objects serve both.
pub(super) async fn first_delivery<L: RateLimiter>(
    limiter: &L,
    id: &str,
    ttl_ms: u64,
) -> Result<bool, String> {
    let bucket = crate::actions::bucket_name("verify-webhook", &[id]);
    let check = LimitCheck {
        id: "replay".into(),
        limit: crate::limiter::Limit {
            capacity: 1,
            rate_ms: ttl_ms.max(1),
        },
        enforce: true,
    };
    let decisions = limiter.check(&bucket, &[check]).await?;
    Ok(decisions.first().is_some_and(|d| d.allowed))
}
