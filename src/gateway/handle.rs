//! The request path: public policy → forward-internal hops → member policy → upstream →
//! response phases (innermost first). Platform work goes through the [`Upstream`] port.

use super::balance::Balance;
use super::{Gateway, Member, Pool, Want};
use crate::actions::{Context, Step};
use crate::error::rate_limit_headers;
use crate::error::GatewayError;
use crate::eval::{run_phase, Exchange, Synthetic};
use crate::expr::{EndpointInfo, Facts};
use crate::http::{Headers, RequestHead, ResponseHead};
use crate::jwt::{Alg, Jwk, JwtCache};
use crate::limiter::{Decision, LimitCheck};
use crate::program::Policy;
use crate::proxy;
use std::rc::Rc;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

/// The most internal endpoints one request may pass through (ngrok's `ERR_NGROK_3501`).
pub const MAX_HOPS: usize = 8;

/// A response body: made here, or the upstream's stream passed through untouched.
#[derive(Debug)]
pub enum Body<B> {
    Empty,
    Text(String),
    Upstream(B),
}

#[derive(Debug)]
pub struct Reply<B> {
    pub head: ResponseHead,
    pub body: Body<B>,
    /// Lines for the shell to log (e.g. a rate limiter that failed open).
    pub notes: Vec<String>,
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
    /// Whether the body could be sent again: none, or buffered, or not streamed yet.
    fn body_replayable(&self) -> bool;
    /// Throws away a response that will not be used (a failed attempt that was retried).
    fn discard(&self, _body: Self::Body) {}
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

/// Global rate-limit buckets (one Durable Object per bucket in the Worker; in memory in tests).
#[allow(async_fn_in_trait)] // single-threaded on wasm: no Send bound wanted
pub trait RateLimiter {
    /// Applies `checks` in order to `bucket`, stopping after the first enforced refusal.
    async fn check(&self, bucket: &str, checks: &[LimitCheck]) -> Result<Vec<Decision>, String>;
}

/// The ports as the actions of one phase see them.
struct Ports<'a, U, L, T> {
    gateway: &'a Gateway,
    upstream: &'a U,
    limiter: &'a L,
    trust: &'a T,
    /// The response phase cannot forward: no internal endpoint is visible from it.
    can_forward: bool,
}

impl<U, L, T> Clone for Ports<'_, U, L, T> {
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
            .request_body(crate::actions::MAX_BUFFERED_BODY)
            .await
            .map_err(|e| match e {
                BodyError::TooLarge { limit } => GatewayError::BodyTooLarge { limit },
                BodyError::Unreadable(reason) => GatewayError::BadRequest { reason },
            })
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
        let ports = Ports {
            gateway: self,
            upstream,
            limiter,
            trust,
            can_forward: true,
        };
        let now_ms = trust.now_ms();
        let facts = Facts {
            start_ms: now_ms,
            now_ms,
            endpoint: None,
            ip_intel: Arc::clone(&self.ip_intel),
            rand: Some(Arc::new(AtomicU64::new(rng.seed()))),
        };
        let mut ex = Exchange::new(req)
            .with_secrets(std::sync::Arc::clone(&self.secrets))
            .with_facts(facts);
        let result = self.run(&mut ex, upstream, &ports, rng).await;
        let mut reply = match result {
            Ok(reply) => reply,
            Err(e) => Reply::synthetic(e.rescue()),
        };
        if !ex.rate_limits.is_empty() && reply.head.status != 429 {
            rate_limit_headers(&mut reply.head.headers, &ex.rate_limits);
        }
        reply.notes = std::mem::take(&mut ex.notes);
        reply
    }

    async fn run<U: Upstream, L: RateLimiter, T: Trust>(
        &self,
        ex: &mut Exchange,
        upstream: &U,
        ports: &Ports<'_, U, L, T>,
        rng: &mut dyn Random,
    ) -> Result<Reply<U::Body>, GatewayError> {
        let endpoint = self.public_for(&ex.req.host)?;
        // A policy serving any host is, for `endpoint.*`, the endpoint the request asked for.
        let public_info = endpoint.info.clone().unwrap_or_else(|| {
            let url = format!("{}://{}", ex.req.scheme, ex.req.authority());
            Arc::new(EndpointInfo::new(&endpoint.name, &url))
        });
        ex.set_endpoint(Arc::clone(&public_info));
        let mut response_policies: Vec<(&Policy, &Arc<EndpointInfo>)> =
            vec![(&endpoint.policy, &public_info)];
        let mut step = run_phase(&endpoint.policy.on_http_request, ex, ports).await?;
        let mut hops = 0;
        let reply = loop {
            let key = match step {
                Step::Forward(key) => key,
                Step::Respond(s) => break Reply::synthetic(s),
                Step::Deny(status) => return Ok(Reply::deny(status)),
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
            match self.forward(pool, ex, upstream, ports, rng).await? {
                Forwarded::Reply(reply, policy) => {
                    response_policies.extend(policy.map(|p| (p, &pool.info)));
                    break reply;
                }
                Forwarded::Step(next, policy) => {
                    response_policies.push((policy, &pool.info));
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
            reply = respond(policy, &ex.req, reply, &response_ports, facts).await?;
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
        rng: &mut dyn Random,
    ) -> Result<Forwarded<'g, U::Body>, GatewayError> {
        let routing = &self.routing;
        pool.retries.deposit();
        // The request as it was, for a retry; only copied when one can happen (on the request
        // path most pools never retry: one member, or a method that is not idempotent).
        let original =
            (pool.members.len() > 1 && idempotent(&ex.req.method)).then(|| ex.req.clone());
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
            let Some(i) = pool.choose(rng, ports.trust.now_ms(), &tried, &want) else {
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
                if let Some(original) = &original {
                    ex.req = original.clone();
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
            // Counted in flight until the attempt ends, however it ends (even if the request
            // is dropped mid-way: the guard's Drop).
            let busy = pool.busy(i);
            let result = self
                .fetch(pool, member, &ex.req, &credentials, upstream)
                .await;
            let failed = match result {
                Ok(ref reply) => member_failed(reply.head.status),
                Err(e @ GatewayError::BadRequest { .. }) => return Err(e),
                Err(_) => true,
            };
            pool.record_attempt(&busy, !failed, ports.trust.now_ms(), &routing.health);
            drop(busy);
            tried.push(i);
            let retryable = failed
                && tried.len() < routing.max_attempts.min(pool.members.len())
                && original.is_some()
                && upstream.body_replayable();
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

    async fn fetch<U: Upstream>(
        &self,
        pool: &Pool,
        member: &Member,
        req: &RequestHead,
        credentials: &[(&str, String)],
        upstream: &U,
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
        };
        match upstream.send(out).await {
            Ok((mut head, body)) => {
                proxy::clean_response_headers(&mut head.headers);
                Ok(Reply {
                    head,
                    body: Body::Upstream(body),
                    notes: Vec::new(),
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

/// Runs a policy's `on_http_response` over a reply.
async fn respond<U: Upstream, L: RateLimiter, T: Trust>(
    policy: &Policy,
    req: &RequestHead,
    reply: Reply<U::Body>,
    ports: &Ports<'_, U, L, T>,
    facts: Facts,
) -> Result<Reply<U::Body>, GatewayError> {
    if policy.on_http_response.is_empty() {
        return Ok(reply);
    }
    let mut ex = Exchange::new(req.clone())
        .with_secrets(std::sync::Arc::clone(&ports.gateway.secrets))
        .with_facts(facts);
    ex.res = Some(reply.head);
    let step = run_phase(&policy.on_http_response, &mut ex, ports).await?;
    let head = ex
        .res
        .take()
        .expect("the response phase keeps its response");
    Ok(match step {
        Step::Continue => Reply { head, ..reply },
        Step::Respond(s) => Reply::synthetic(s),
        Step::Deny(status) => Reply::deny(status),
        // The compiler rejects forward-internal in on_http_response (ERR_NGROK_2202).
        Step::Forward(_) => return Err(GatewayError::NotTerminated),
    })
}
