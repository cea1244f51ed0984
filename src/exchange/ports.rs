//! The ports: what an action may ask of the world outside the policy. The gateway implements
//! them over the platform (the shell) and tests over fakes.

use crate::error::GatewayError;
use crate::http::Headers;
use std::rc::Rc;

/// The largest response body kept (ngrok's 256 KB, `ERR_NGROK_3601`).
pub const MAX_SUBREQUEST_BODY: usize = 256 * 1024;
/// Subrequests nested through internal endpoints' policies, at most (ngrok: loop detection
/// after 3 internal hops, `ERR_NGROK_3603`).
pub const MAX_SUBREQUEST_DEPTH: usize = 3;

/// A subrequest as the gateway's port takes it: already rendered, aimed at pool `key`.
#[derive(Debug, Clone)]
pub struct Subrequest {
    /// The internal endpoint's key (`scheme://host:port`).
    pub key: String,
    /// The full URL, path and query included.
    pub url: String,
    pub method: &'static str,
    pub headers: Headers,
    pub body: Rc<[u8]>,
    /// Absolute time (the injected clock) after which no attempt may run.
    pub deadline_ms: u64,
    /// How many subrequests enclose this one (1 for one made by the public endpoint's policy).
    pub depth: usize,
    pub client_ip: std::net::IpAddr,
}

/// What a subrequest's exchange carries through the pool: its own body and deadline, not the
/// client's.
#[derive(Debug, Clone)]
pub struct SubrequestContext {
    pub body: Rc<[u8]>,
    pub deadline_ms: u64,
    pub depth: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Subresponse {
    pub status: u16,
    pub headers: Headers,
    pub body: Vec<u8>,
}

/// What actions may ask of the world outside the policy (the gateway's ports).
#[expect(
    async_fn_in_trait,
    reason = "single-threaded on wasm: no Send bound wanted"
)]
pub trait Context {
    /// Whether an internal endpoint with this key (`scheme://host:port`) is declared.
    fn has_internal(&self, key: &str) -> bool;
    /// Applies `checks`, in order, to the bucket named `bucket` (one Durable Object); stops
    /// after the first enforced refusal. `Err` when the bucket cannot be reached.
    async fn rate_limit(
        &self,
        bucket: &str,
        checks: &[crate::limiter::LimitCheck],
    ) -> Result<Vec<crate::limiter::Decision>, String>;
    /// Milliseconds since the Unix epoch (the platform's clock, injected).
    fn now_ms(&self) -> u64;
    /// This isolate's JWKS and verified-token caches.
    fn jwt_cache(&self) -> &crate::jwt::JwtCache;
    async fn fetch_jwks(&self, url: &str, bypass_edge_cache: bool) -> Result<String, String>;
    /// Whether `signature` over `message` verifies with `key` under `alg`.
    async fn verify(
        &self,
        alg: crate::jwt::Alg,
        key: &crate::jwt::Jwk,
        message: &[u8],
        signature: &[u8],
    ) -> Result<bool, String>;
    /// Records a webhook delivery id for `ttl_ms`; `Ok(false)` if it was seen already.
    async fn first_delivery(&self, id: &str, ttl_ms: u64) -> Result<bool, String>;
    /// The request body, buffered (at most [`MAX_BUFFERED_BODY`](crate::http::MAX_BUFFERED_BODY) bytes) and still forwarded.
    async fn request_body(&self) -> Result<std::rc::Rc<[u8]>, GatewayError>;
    /// The request body's first bytes, for an inspection that reads no further: all of it when
    /// it is at most `limit` bytes, otherwise more than `limit` bytes (so the reader knows it
    /// was cut). Only those are held, whatever the body's size; it is still forwarded whole.
    async fn request_body_prefix(&self, limit: usize) -> Result<std::rc::Rc<[u8]>, GatewayError>;
    /// Sends an `http-request` to the declared internal endpoint `req.key` through its pool
    /// (the member's policy runs on it); its body is read up to 256 KB. An undeclared key is
    /// `EndpointOffline` and nothing is sent.
    async fn subrequest(&self, req: Subrequest) -> Result<Subresponse, GatewayError>;
    /// The response body, read whole (at most [`MAX_BUFFERED_BODY`](crate::http::MAX_BUFFERED_BODY) bytes) in the response
    /// phase: the content, decoded when its coding is one [`Context::decodes`] names.
    async fn response_body(&self) -> Result<std::rc::Rc<[u8]>, GatewayError>;
    /// The response body's first bytes in the response phase, as [`Context::request_body_prefix`]
    /// reads the request's; the rest streams on to the client unread.
    async fn response_body_prefix(&self, limit: usize) -> Result<std::rc::Rc<[u8]>, GatewayError>;
    /// Replaces the response body the client gets (the content; the shell encodes it as the
    /// response's Content-Encoding says).
    fn set_response_body(&self, body: std::rc::Rc<[u8]>);
    /// Whether the platform hands over upstream bodies of this content coding decoded.
    fn decodes(&self, coding: &str) -> bool;
}
