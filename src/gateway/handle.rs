//! The request path: public policy → forward-internal hops → member policy → upstream →
//! response phases (innermost first). Platform work goes through the ports ([`super::ports`]).

use super::balance::Balance;
use super::context::Ports;
use super::ports::{Lent, Outbound, Random, RateLimiter, Trust, Upstream};
use super::reply::{discard, Body, Reply};
use super::{Gateway, Member, Pool, Want};
use crate::actions::Step;
use crate::error::rate_limit_headers;
use crate::error::GatewayError;
use crate::eval::{run_phase, Exchange};
use crate::expr::{EndpointInfo, Facts};
use crate::http::RequestHead;
use crate::program::Policy;
use crate::proxy;
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

/// The most internal endpoints one request may pass through (ngrok's `ERR_NGROK_3501`).
pub const MAX_HOPS: usize = 8;

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
                Ok(Reply::upstream(head, body))
            }
            Err(e) => Err(e.at(&pool.url)),
        }
    }
}

/// Runs a policy's `on_http_response` over a reply. The body stays as it is (streaming) unless
/// an action reads it.
pub(super) async fn respond<U: Upstream, L: RateLimiter, T: Trust>(
    policy: &Policy,
    req: &RequestHead,
    subrequest: Option<&crate::actions::SubrequestContext>,
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
