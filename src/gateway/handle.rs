//! The request path: public policy → forward-internal hops ([`super::forward`]) → member
//! policy → upstream → response phases (innermost first). Platform work goes through the
//! ports ([`super::ports`]); every error becomes a response here.

use super::attempt::Forwarded;
use super::context::Ports;
use super::ports::{Random, RateLimiter, Trust, Upstream};
use super::reply::{discard, Reply};
use super::Gateway;
use crate::error::rate_limit_headers;
use crate::error::GatewayError;
use crate::eval::{run_phase, run_phase_from, Stop};
use crate::exchange::Exchange;
use crate::exchange::Step;
use crate::expr::{EndpointInfo, Facts};
use crate::http::RequestHead;
use crate::program::{Policy, RuleSet};
use std::cell::RefCell;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

/// The most internal endpoints one request may pass through (ngrok's `ERR_NGROK_3501`).
pub const MAX_HOPS: usize = 8;

/// The policies whose response phases run on a reply, outermost first, each with its
/// `endpoint.*`.
type ResponsePolicies<'g> = Vec<(&'g Policy, Arc<EndpointInfo>)>;

/// Where a request-phase step was made: a forward from there that fails may resume the phase.
pub(super) type Made<'g> = Option<(&'g RuleSet, Stop)>;

/// Where the hops ended.
enum Hopped<B> {
    /// A reply the response phases run on.
    Answer(Reply<B>),
    /// `deny` or `close-connection`: nothing else runs.
    Final(Reply<B>),
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
            .with_secrets(Arc::clone(&self.secrets))
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
        let rules = &endpoint.policy.on_http_request;
        let (step, at) = run_phase_from(rules, None, ex, ports).await?;
        let made = at.map(|at| (rules, at));
        self.follow(step, made, ex, ports, vec![(&endpoint.policy, public_info)])
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
        step: Step,
        made: Made<'g>,
        ex: &mut Exchange,
        ports: &Ports<'_, U, L, T>,
        mut response_policies: ResponsePolicies<'g>,
    ) -> Result<Reply<U::Body>, GatewayError> {
        let hopped = self.hops(step, made, ex, ports, &mut response_policies);
        let mut reply = match hopped.await? {
            Hopped::Answer(reply) => reply,
            Hopped::Final(reply) => return Ok(reply),
        };
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
            let req = &ex.req;
            let sub = ex.subrequest.as_ref();
            let notes = &mut ex.notes;
            reply = respond(policy, req, sub, reply, &response_ports, notes, facts).await?;
        }
        Ok(reply)
    }

    /// Forward-internal hops from `step` to a reply, adding each pool's member policy to the
    /// response phases to run. A forward that fails (no member answered) made by a
    /// `forward-internal` with `on_error: continue` resumes its phase after that action, with
    /// the failure in `actions.ngrok.forward_internal.error`: ngrok's documented fallback to an
    /// error page when the service is down.
    async fn hops<'g, U: Upstream, L: RateLimiter, T: Trust>(
        &'g self,
        mut step: Step,
        mut made: Made<'g>,
        ex: &mut Exchange,
        ports: &Ports<'_, U, L, T>,
        response_policies: &mut ResponsePolicies<'g>,
    ) -> Result<Hopped<U::Body>, GatewayError> {
        let mut hops = 0;
        loop {
            let key = match step {
                Step::Forward(key) => key,
                Step::Respond(s) => return Ok(Hopped::Answer(Reply::synthetic(s))),
                Step::Deny(status) => return Ok(Hopped::Final(Reply::deny(status))),
                Step::Close => return Ok(Hopped::Final(Reply::closed())),
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
            match self.forward(pool, ex, ports).await {
                Ok(Forwarded::Reply(reply, policy)) => {
                    response_policies.extend(policy.map(|p| (p, Arc::clone(&pool.info))));
                    return Ok(Hopped::Answer(reply));
                }
                Ok(Forwarded::Step(next, policy, at)) => {
                    response_policies.push((policy, Arc::clone(&pool.info)));
                    step = next;
                    made = at.map(|at| (&policy.on_http_request, at));
                }
                Err(e) => {
                    let Some((rules, at)) = made.filter(|_| e.is_forward_failure()) else {
                        return Err(e);
                    };
                    if rules[at.rule].actions[at.action].terminates() {
                        return Err(e);
                    }
                    ex.note(format!("{}: {e}; on_error: continue", pool.url));
                    ex.set_forward_failure(&key, &e);
                    let (next, resumed) = run_phase_from(rules, Some(at), ex, ports).await?;
                    step = next;
                    made = resumed.map(|at| (rules, at));
                }
            }
        }
    }
}

/// Runs a policy's `on_http_response` over a reply. The body stays as it is (streaming) unless
/// an action reads it.
async fn respond<U: Upstream, L: RateLimiter, T: Trust>(
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
        .with_secrets(Arc::clone(&ports.gateway.secrets))
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
    Ok(match step {
        Step::Continue => Reply {
            head,
            body,
            notes: reply_notes,
            compress: ex.compress,
        },
        replaced => {
            discard(upstream, body);
            match replaced {
                Step::Respond(s) => Reply::synthetic(s),
                Step::Deny(status) => Reply::deny(status),
                // The compiler rejects these in on_http_response (ERR_NGROK_2202).
                Step::Close => Reply::closed(),
                Step::Forward(_) | Step::Continue => return Err(GatewayError::NotTerminated),
            }
        }
    })
}
