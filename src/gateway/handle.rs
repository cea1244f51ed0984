//! The request path: public policy → forward-internal hops → member policy → upstream →
//! response phases (innermost first). Platform work goes through the [`Upstream`] port.

use super::balance::Balance;
use super::{Gateway, Member, Pool, Want};
use crate::error::rate_limit_headers;
use crate::error::GatewayError;
use crate::eval::run_phase;
use crate::exchange::Exchange;
use crate::exchange::{Context, Step};
use crate::expr::{EndpointInfo, Facts};
use crate::http::Synthetic;
use crate::http::{Headers, RequestHead, ResponseHead};
use crate::jwt::{Alg, Jwk, JwtCache};
use crate::limiter::{Decision, LimitCheck};
use crate::program::Policy;
use crate::proxy;
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

/// The most internal endpoints one request may pass through (ngrok's `ERR_NGROK_3501`).
pub const MAX_HOPS: usize = 8;

/// A response body: made here, the upstream's stream passed through untouched, or bytes an
/// action read and rewrote. Always the content: the shell applies the response's
/// Content-Encoding on the way out.
#[derive(Debug)]
pub enum Body<B> {
    Empty,
    Text(String),
    Upstream(B),
    /// A body that fails before its first byte (`close-connection`): the shell makes the
    /// platform abort the response, the nearest a Worker comes to closing the connection.
    Abort,
    Bytes(Rc<[u8]>),
}

#[derive(Debug)]
pub struct Reply<B> {
    pub head: ResponseHead,
    pub body: Body<B>,
    /// Lines for the shell to log (e.g. a rate limiter that failed open).
    pub notes: Vec<String>,
    /// The coding `compress-response` chose (Content-Encoding is set): the shell compresses
    /// the body with it as it streams out.
    pub compress: Option<crate::http::Coding>,
}

impl<B> Reply<B> {
    /// A response made by the gateway (custom-response, errors).
    pub fn synthetic(s: Synthetic) -> Self {
        let body = if s.body.is_empty() {
            Body::Empty
        } else {
            Body::Text(s.body)
        };
        Reply {
            head: ResponseHead {
                status: s.status,
                headers: s.headers,
            },
            body,
            notes: Vec::new(),
            compress: None,
        }
    }

    /// `close-connection`: a 502 head (what a client that ignores the abort is left with) and
    /// a body that aborts.
    fn closed() -> Self {
        Reply {
            head: ResponseHead {
                status: 502,
                headers: Headers::new(),
            },
            body: Body::Abort,
            notes: Vec::new(),
            compress: None,
        }
    }

    fn deny(status: u16) -> Self {
        Reply {
            head: ResponseHead {
                status,
                headers: Headers::new(),
            },
            body: Body::Empty,
            notes: Vec::new(),
            compress: None,
        }
    }
}

/// What forwarding to a pool came to: a reply (and the member policy whose response phase runs
/// on it), or the member policy's own step (it answered, or forwarded further).
enum Forwarded<'g, B> {
    Reply(Reply<B>, Option<&'g Policy>),
    Step(Step, &'g Policy),
}

/// Statuses that mean the member (not the request) failed: a gateway error, an overloaded
/// service, a timeout, and Cloudflare's own answers when a tunnel or origin is unreachable
/// (520-527 origin errors, 530 no tunnel connector).
fn member_failed(status: u16) -> bool {
    matches!(status, 502..=504 | 520..=527 | 530)
}

/// Methods that mean the same when sent twice (RFC 9110 §9.2.2): only these are retried.
fn idempotent(method: &str) -> bool {
    matches!(
        method,
        "GET" | "HEAD" | "OPTIONS" | "PUT" | "DELETE" | "TRACE"
    )
}

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

/// Sends a request to an origin (the shell's `fetch`; a fake in tests). The request body is the
/// shell's business: it streams the client's body into the one call it makes, unless an action
/// asked to read it first ([`Upstream::request_body`]), in which case the buffered bytes go.
#[allow(async_fn_in_trait)] // single-threaded on wasm: no Send bound wanted
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

/// What identity and integrity checks need from the platform: the clock, the per-isolate JWT
/// caches, JWKS documents and signature verification (WebCrypto in the Worker).
#[allow(async_fn_in_trait)] // single-threaded on wasm: no Send bound wanted
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
struct Lent<'a>(&'a dyn SharedRandom);

impl Random for Lent<'_> {
    fn below(&mut self, n: usize) -> usize {
        self.0.draw(n)
    }
}

/// Global rate-limit buckets (one Durable Object per bucket in the Worker; in memory in tests).
#[allow(async_fn_in_trait)] // single-threaded on wasm: no Send bound wanted
pub trait RateLimiter {
    /// Applies `checks` in order to `bucket`, stopping after the first enforced refusal.
    async fn check(&self, bucket: &str, checks: &[LimitCheck]) -> Result<Vec<Decision>, String>;
}

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

    async fn verify(
        &self,
        alg: Alg,
        key: &Jwk,
        message: &[u8],
        signature: &[u8],
    ) -> Result<bool, String> {
        self.trust.verify(alg, key, message, signature).await
    }

    /// A delivery log is a rate limit of one per window, keyed by the delivery: the same
    /// exact, global bucket objects serve both.
    async fn first_delivery(&self, id: &str, ttl_ms: u64) -> Result<bool, String> {
        let bucket = crate::actions::bucket_name("verify-webhook", &[id]);
        let check = LimitCheck {
            id: "replay".into(),
            limit: crate::limiter::Limit {
                capacity: 1,
                rate_ms: ttl_ms.max(1),
            },
            enforce: true,
        };
        let decisions = self.limiter.check(&bucket, &[check]).await?;
        Ok(decisions.first().is_some_and(|d| d.allowed))
    }

    async fn request_body(&self) -> Result<Rc<[u8]>, GatewayError> {
        self.upstream
            .request_body(crate::http::MAX_BUFFERED_BODY)
            .await
            .map_err(request_read_error)
    }

    async fn request_body_prefix(&self, limit: usize) -> Result<Rc<[u8]>, GatewayError> {
        self.upstream
            .request_body_prefix(limit)
            .await
            .map_err(request_read_error)
    }

    async fn subrequest(
        &self,
        req: crate::exchange::Subrequest,
    ) -> Result<crate::exchange::Subresponse, GatewayError> {
        // Boxed: a member policy's own http-request comes back here (bounded by its depth).
        Box::pin(self.gateway.subrequest(req, self)).await
    }

    async fn response_body(&self) -> Result<Rc<[u8]>, GatewayError> {
        self.read_reply(None).await
    }

    async fn response_body_prefix(&self, limit: usize) -> Result<Rc<[u8]>, GatewayError> {
        self.read_reply(Some(limit)).await
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

impl<U: Upstream, L, T> Ports<'_, U, L, T> {
    /// Reads the reply body in the response phase: whole, or with `prefix` only its first bytes
    /// (the rest stays a stream and is sent on as it comes).
    async fn read_reply(&self, prefix: Option<usize>) -> Result<Rc<[u8]>, GatewayError> {
        let Some(slot) = self.reply_body else {
            return Err(GatewayError::BadRequest {
                reason: "no response body outside on_http_response".into(),
            });
        };
        // Taken out of the slot so no borrow is held across the read.
        let current = std::mem::replace(&mut *slot.borrow_mut(), Body::Empty);
        let bytes: Rc<[u8]> = match current {
            Body::Empty => Rc::from(&[][..]),
            Body::Text(t) => Rc::from(t.into_bytes()),
            Body::Bytes(b) => b,
            Body::Abort => {
                *slot.borrow_mut() = Body::Abort;
                return Err(GatewayError::ResponseBodyUnreadable {
                    detail: "the connection was closed".into(),
                });
            }
            Body::Upstream(b) => {
                let read = match prefix {
                    None => {
                        let limit = crate::http::MAX_BUFFERED_BODY;
                        let bytes = self.upstream.read_body(b, limit).await;
                        bytes.map(|b| (b, None))
                    }
                    Some(limit) => self.upstream.read_body_prefix(b, limit).await,
                };
                match read {
                    Ok((head, Some(rest))) => {
                        *slot.borrow_mut() = Body::Upstream(rest);
                        return Ok(Rc::from(head));
                    }
                    Ok((whole, None)) => Rc::from(whole),
                    // Part of it is gone: the client must not take the rest for the whole.
                    Err(e) => {
                        *slot.borrow_mut() = Body::Abort;
                        return Err(response_read_error(e));
                    }
                }
            }
        };
        *slot.borrow_mut() = Body::Bytes(Rc::clone(&bytes));
        Ok(bytes)
    }
}

fn discard<U: Upstream>(upstream: &U, body: Body<U::Body>) {
    if let Body::Upstream(b) = body {
        upstream.discard(b);
    }
}

fn request_read_error(e: BodyError) -> GatewayError {
    match e {
        BodyError::TooLarge { limit } => GatewayError::BodyTooLarge { limit },
        BodyError::Unreadable(reason) => GatewayError::BadRequest { reason },
    }
}

fn response_read_error(e: BodyError) -> GatewayError {
    match e {
        BodyError::TooLarge { limit } => GatewayError::ResponseBodyTooLarge { limit },
        BodyError::Unreadable(detail) => GatewayError::ResponseBodyUnreadable { detail },
    }
}

impl Gateway {
    /// Handles one request; every error becomes a response here (never a panic).
    pub async fn handle<U: Upstream, L: RateLimiter, T: Trust>(
        &self,
        req: RequestHead,
        upstream: &U,
        limiter: &L,
        trust: &T,
        rng: &mut dyn Random,
    ) -> Reply<U::Body> {
        let facts = self.facts(trust.now_ms(), rng.seed());
        let rng: RefCell<&mut dyn Random> = RefCell::new(rng);
        let ports = Ports {
            gateway: self,
            upstream,
            limiter,
            trust,
            can_forward: true,
            rng: &rng,
            reply_body: None,
        };
        let mut ex = Exchange::new(req)
            .with_secrets(std::sync::Arc::clone(&self.secrets))
            .with_facts(facts);
        let result = self.run(&mut ex, &ports).await;
        let mut reply = match result {
            Ok(reply) => reply,
            Err(e) => Reply::synthetic(e.rescue()),
        };
        ex.record_breakers(reply.head.status, trust.now_ms());
        if !ex.rate_limits.is_empty() && reply.head.status != 429 {
            rate_limit_headers(&mut reply.head.headers, &ex.rate_limits);
        }
        reply.notes = std::mem::take(&mut ex.notes);
        reply
    }

    async fn run<U: Upstream, L: RateLimiter, T: Trust>(
        &self,
        ex: &mut Exchange,
        ports: &Ports<'_, U, L, T>,
    ) -> Result<Reply<U::Body>, GatewayError> {
        let endpoint = self.public_for(&ex.req.host)?;
        // A policy serving any host is, for `endpoint.*`, the endpoint the request asked for.
        let public_info = endpoint.info.clone().unwrap_or_else(|| {
            let url = format!("{}://{}", ex.req.scheme, ex.req.authority());
            Arc::new(EndpointInfo::new(&endpoint.name, &url))
        });
        ex.set_endpoint(Arc::clone(&public_info));
        let step = run_phase(&endpoint.policy.on_http_request, ex, ports).await?;
        self.follow(step, ex, ports, vec![(&endpoint.policy, public_info)])
            .await
    }

    /// The facts a new exchange's variables read besides the request: the clock, the IP list
    /// and its own `rand.*` stream.
    pub(super) fn facts(&self, now_ms: u64, seed: u64) -> Facts {
        Facts {
            start_ms: now_ms,
            now_ms,
            endpoint: None,
            ip_intel: Arc::clone(&self.ip_intel),
            rand: Some(Arc::new(AtomicU64::new(seed))),
        }
    }

    /// Follows a policy's step through forward-internal hops to a reply, then runs the
    /// response phases of `response_policies` and of every policy met, innermost first.
    pub(super) async fn follow<'g, U: Upstream, L: RateLimiter, T: Trust>(
        &'g self,
        mut step: Step,
        ex: &mut Exchange,
        ports: &Ports<'_, U, L, T>,
        mut response_policies: Vec<(&'g Policy, Arc<EndpointInfo>)>,
    ) -> Result<Reply<U::Body>, GatewayError> {
        let upstream = ports.upstream;
        let mut hops = 0;
        let reply = loop {
            let key = match step {
                Step::Forward(key) => key,
                Step::Respond(s) => break Reply::synthetic(s),
                Step::Deny(status) => return Ok(Reply::deny(status)),
                Step::Close => return Ok(Reply::closed()),
                Step::Continue => return Err(GatewayError::NotTerminated),
            };
            hops += 1;
            if hops > MAX_HOPS {
                return Err(GatewayError::TooManyHops { limit: MAX_HOPS });
            }
            let pool = self
                .pools
                .get(&key)
                .ok_or_else(|| GatewayError::EndpointOffline { url: key.clone() })?;
            match self.forward(pool, ex, upstream, ports).await? {
                Forwarded::Reply(reply, policy) => {
                    response_policies.extend(policy.map(|p| (p, Arc::clone(&pool.info))));
                    break reply;
                }
                Forwarded::Step(next, policy) => {
                    response_policies.push((policy, Arc::clone(&pool.info)));
                    step = next;
                }
            }
        };
        let mut reply = reply;
        let response_ports = Ports {
            can_forward: false,
            ..ports.clone()
        };
        for (policy, info) in response_policies.iter().rev() {
            let facts = Facts {
                endpoint: Some(Arc::clone(info)),
                now_ms: ports.trust.now_ms(),
                ..ex.facts.clone()
            };
            reply = respond(
                policy,
                &ex.req,
                ex.subrequest.as_ref(),
                reply,
                &response_ports,
                &mut ex.notes,
                facts,
            )
            .await?;
        }
        Ok(reply)
    }

    /// Sends the request to a member of `pool` (running the member's own policy first) and,
    /// when that fails in a way that is safe to retry, to another member: a connection error, a
    /// timeout, or a 502/503/504, for an idempotent method whose body can be sent again, within
    /// the isolate's retry budget. Every outcome feeds the member's passive health.
    async fn forward<'g, U: Upstream, L: RateLimiter, T: Trust>(
        &'g self,
        pool: &'g Pool,
        ex: &mut Exchange,
        upstream: &U,
        ports: &Ports<'_, U, L, T>,
    ) -> Result<Forwarded<'g, U::Body>, GatewayError> {
        let routing = &self.routing;
        pool.retries.deposit();
        // The request as it was, for a retry; only copied when one can happen (on the request
        // path most pools never retry: one member, or a method that is not idempotent).
        let original = (pool.members.len() > 1 && idempotent(&ex.req.method))
            .then(|| (ex.req.clone(), ex.req_body.clone()));
        let limits_before = ex.rate_limits.len();
        let want = Want {
            key: match &pool.settings.balance {
                // A key that cannot be read (a header missing) falls back to random.
                Balance::Hash(key) => ex.eval(key).ok().map(|v| crate::expr::to_text(&v)),
                _ => None,
            },
            // A preference that cannot be rendered is no preference.
            cluster: pool
                .settings
                .prefer_cluster
                .as_ref()
                .and_then(|t| ex.render(t, "forward-internal", "prefer-cluster").ok()),
        };
        let mut tried: Vec<usize> = Vec::new();
        let mut last = None;
        loop {
            let choice = pool.choose(&mut Lent(ports.rng), ports.trust.now_ms(), &tried, &want);
            let Some(i) = choice else {
                return match last {
                    Some(failure) => failure,
                    None => Err(GatewayError::PoolUnavailable {
                        endpoint: pool.url.clone(),
                        retry_after_s: pool.next_return_ms(ports.trust.now_ms()).map_or(30, |t| {
                            t.saturating_sub(ports.trust.now_ms()).div_ceil(1000)
                        }),
                    }),
                };
            };
            if let Some(failure) = last.take() {
                if !pool.retries.withdraw() {
                    ex.note(format!("{}: retry budget spent; not retrying", pool.url));
                    return failure;
                }
                if let Ok(Forwarded::Reply(reply, _)) = failure {
                    if let Body::Upstream(body) = reply.body {
                        upstream.discard(body);
                    }
                }
                // A member policy's body rewrite is undone with the rest of its changes.
                if let Some((req, body)) = &original {
                    ex.req = req.clone();
                    ex.req_body = body.clone();
                }
                // The failed attempt's member-policy rate limits are not reported twice.
                ex.rate_limits.truncate(limits_before);
            }
            let member = &pool.members[i];
            ex.enter_endpoint();
            ex.set_endpoint(Arc::clone(&pool.info));
            if let Some(policy) = &member.policy {
                let step = run_phase(&policy.on_http_request, ex, ports).await?;
                if step != Step::Continue {
                    return Ok(Forwarded::Step(step, policy));
                }
            }
            let mut credentials = Vec::with_capacity(member.origin_auth.len());
            for (header, value) in &member.origin_auth {
                credentials.push((
                    *header,
                    ex.render(value, "forward-internal", "origin auth")?,
                ));
            }
            // A subrequest sends its own body, within what is left of its timeout; otherwise
            // the body an action rewrote, if any (`None`: the client's).
            let (body, timeout_ms) = match &ex.subrequest {
                None => (ex.req_body.clone(), None),
                Some(sub) => {
                    let left = sub.deadline_ms.saturating_sub(ports.trust.now_ms());
                    if left == 0 {
                        return Err(GatewayError::UpstreamTimeout {
                            endpoint: pool.url.clone(),
                            after_ms: 0,
                        });
                    }
                    (Some(Rc::clone(&sub.body)), Some(left))
                }
            };
            // Counted in flight until the attempt ends, however it ends (even if the request
            // is dropped mid-way: the guard's Drop).
            let busy = pool.busy(i);
            let result = self
                .fetch(
                    pool,
                    member,
                    &ex.req,
                    &credentials,
                    upstream,
                    body,
                    timeout_ms,
                )
                .await;
            let failed = match result {
                Ok(ref reply) => member_failed(reply.head.status),
                Err(e @ GatewayError::BadRequest { .. }) => return Err(e),
                Err(_) => true,
            };
            // A subrequest that ran out of the time its caller chose (`timeout`, 1 s to 30 s)
            // says little about the member: only the shell's own timeout counts against it.
            let budget_spent = ex.subrequest.is_some()
                && matches!(result, Err(GatewayError::UpstreamTimeout { .. }));
            if !budget_spent {
                pool.record_attempt(&busy, !failed, ports.trust.now_ms(), &routing.health);
            }
            drop(busy);
            tried.push(i);
            let retryable = failed
                && tried.len() < routing.max_attempts.min(pool.members.len())
                && original.is_some()
                && (ex.subrequest.is_some() || ex.req_body.is_some() || upstream.body_replayable());
            if retryable {
                ex.note(format!(
                    "{}: member {} failed ({}); trying another",
                    pool.url,
                    member.name,
                    match &result {
                        Ok(r) => format!("status {}", r.head.status),
                        Err(e) => e.to_string(),
                    }
                ));
                last = Some(result.map(|r| Forwarded::Reply(r, member.policy.as_ref())));
                continue;
            }
            let mut reply = result?;
            if let Some(header) = &routing.member_header {
                reply.head.headers.set(header, &member.name);
            }
            return Ok(Forwarded::Reply(reply, member.policy.as_ref()));
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn fetch<U: Upstream>(
        &self,
        pool: &Pool,
        member: &Member,
        req: &RequestHead,
        credentials: &[(&str, String)],
        upstream: &U,
        body: Option<Rc<[u8]>>,
        timeout_ms: Option<u64>,
    ) -> Result<Reply<U::Body>, GatewayError> {
        let mut headers = proxy::forward_headers(req);
        for (name, value) in credentials {
            headers.set(name, value);
        }
        let out = Outbound {
            method: &req.method,
            url: member.origin.url_for(&req.uri()),
            headers,
            endpoint: &pool.url,
            member: &member.name,
            body,
            timeout_ms,
        };
        match upstream.send(out).await {
            Ok((mut head, body)) => {
                proxy::clean_response_headers(&mut head.headers);
                Ok(Reply {
                    head,
                    body: Body::Upstream(body),
                    notes: Vec::new(),
                    compress: None,
                })
            }
            Err(UpstreamError::Unreachable(detail)) => Err(GatewayError::UpstreamUnreachable {
                endpoint: pool.url.clone(),
                detail,
            }),
            Err(UpstreamError::Timeout { after_ms }) => Err(GatewayError::UpstreamTimeout {
                endpoint: pool.url.clone(),
                after_ms,
            }),
            Err(UpstreamError::Invalid(reason)) => Err(GatewayError::BadRequest { reason }),
        }
    }
}

/// Runs a policy's `on_http_response` over a reply. The body stays as it is (streaming) unless
/// an action reads it.
pub(super) async fn respond<U: Upstream, L: RateLimiter, T: Trust>(
    policy: &Policy,
    req: &RequestHead,
    subrequest: Option<&crate::exchange::SubrequestContext>,
    reply: Reply<U::Body>,
    ports: &Ports<'_, U, L, T>,
    notes: &mut Vec<String>,
    facts: Facts,
) -> Result<Reply<U::Body>, GatewayError> {
    if policy.on_http_response.is_empty() {
        return Ok(reply);
    }
    let Reply {
        head,
        body,
        notes: reply_notes,
        compress,
    } = reply;
    let upstream = ports.upstream;
    let slot = RefCell::new(body);
    let ports = Ports {
        reply_body: Some(&slot),
        ..ports.clone()
    };
    let mut ex = Exchange::new(req.clone())
        .with_secrets(std::sync::Arc::clone(&ports.gateway.secrets))
        .with_facts(facts);
    ex.res = Some(head);
    ex.compress = compress;
    // A subrequest's response phase nests its own http-requests as deep as its request phase.
    ex.subrequest = subrequest.cloned();
    let step = run_phase(&policy.on_http_response, &mut ex, &ports).await;
    // What the phase logged is kept even when it failed.
    notes.append(&mut ex.notes);
    let body = slot.into_inner();
    // When the origin's answer is replaced, its body is stopped now, not when the request ends.
    let step = match step {
        Ok(step) => step,
        Err(e) => {
            discard(upstream, body);
            return Err(e);
        }
    };
    let head = ex
        .res
        .take()
        .expect("the response phase keeps its response");
    let body = match step {
        Step::Continue => body,
        _ => {
            discard(upstream, body);
            Body::Empty
        }
    };
    Ok(match step {
        Step::Continue => Reply {
            head,
            body,
            notes: reply_notes,
            compress: ex.compress,
        },
        Step::Respond(s) => Reply::synthetic(s),
        Step::Deny(status) => Reply::deny(status),
        // The compiler rejects these in on_http_response (ERR_NGROK_2202).
        Step::Close => Reply::closed(),
        Step::Forward(_) => return Err(GatewayError::NotTerminated),
    })
}
