//! One attempt at a pool member: its own policy, then its origin. The outcome feeds the
//! member's passive health; a [`Failure`] carries whether another member may take the request
//! (pingora's `Error` with its `retry`).

use super::context::Ports;
use super::ports::{Outbound, RateLimiter, Trust, Upstream};
use super::reply::{self, Reply};
use super::{Gateway, Member, Pool};
use crate::error::GatewayError;
use crate::eval::{run_phase_from, Stop};
use crate::exchange::Exchange;
use crate::exchange::Step;
use crate::program::Policy;
use crate::proxy;
use std::fmt;
use std::rc::Rc;
use std::sync::Arc;

/// What forwarding to a pool came to: a reply (and the member policy whose response phase runs
/// on it), or the member policy's own step (it answered, or forwarded further).
pub(super) enum Forwarded<'g, B> {
    Reply(Reply<B>, Option<&'g Policy>),
    /// The member's policy made a step (answer or forward further), at this action.
    Step(Step, &'g Policy, Option<Stop>),
}

/// Statuses that mean the member (not the request) failed: a gateway error, an overloaded
/// service, a timeout, and Cloudflare's own answers when a tunnel or origin is unreachable
/// (520-527 origin errors, 530 no tunnel connector).
fn member_failed(status: u16) -> bool {
    matches!(status, 502..=504 | 520..=527 | 530)
}

/// An attempt that did not give a reply to keep, and whether another member may take the
/// request (pingora's `RetryType`).
///
/// A failure is born retryable exactly when the member failed, not the request: that is also
/// what counts against the member's health. The request path may then take the retry back
/// ([`Failure::set_retry`]) when the request cannot be sent again.
pub(super) struct Failure<B> {
    /// What the client gets when no other member answers: the member's failing reply (a status
    /// [`member_failed`] names) or the error.
    outcome: Result<Reply<B>, GatewayError>,
    retry: bool,
}

impl<B> Failure<B> {
    /// The member failed: it answered with a status that blames it.
    fn member(reply: Reply<B>) -> Self {
        Failure {
            outcome: Ok(reply),
            retry: true,
        }
    }

    /// A failure that ends the request: the member's policy failed, or the request could not be
    /// built or ran out of time before it was sent. No mark against the member.
    fn fatal(error: GatewayError) -> Self {
        Failure {
            outcome: Err(error),
            retry: false,
        }
    }

    pub(super) fn retry(&self) -> bool {
        self.retry
    }

    pub(super) fn set_retry(&mut self, retry: bool) {
        self.retry = retry;
    }

    /// The failure as the request's outcome, when no other member is tried.
    pub(super) fn give_up(self, member: &Member) -> Result<Forwarded<'_, B>, GatewayError> {
        self.outcome
            .map(|reply| Forwarded::Reply(reply, member.policy.as_ref()))
    }

    /// Throws the failing reply away, for a retry.
    pub(super) fn discard<U: Upstream<Body = B>>(self, upstream: &U) {
        if let Ok(reply) = self.outcome {
            reply::discard(upstream, reply.body);
        }
    }

    /// Whether the origin did not answer in time.
    fn timed_out(&self) -> bool {
        matches!(self.outcome, Err(GatewayError::UpstreamTimeout { .. }))
    }
}

impl<B> fmt::Display for Failure<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.outcome {
            Ok(reply) => write!(f, "status {}", reply.head.status),
            Err(e) => write!(f, "{e}"),
        }
    }
}

impl Gateway {
    /// One attempt at member `i` of `pool`: its policy runs on the request (and may answer or
    /// forward further itself), then the request goes to its origin. The origin's outcome
    /// feeds the member's passive health.
    pub(super) async fn attempt<'g, U: Upstream, L: RateLimiter, T: Trust>(
        &'g self,
        pool: &'g Pool,
        i: usize,
        ex: &mut Exchange,
        ports: &Ports<'_, U, L, T>,
    ) -> Result<Forwarded<'g, U::Body>, Failure<U::Body>> {
        let member = &pool.members[i];
        ex.enter_endpoint();
        ex.set_endpoint(Arc::clone(&pool.info));
        if let Some(policy) = &member.policy {
            let ran = run_phase_from(&policy.on_http_request, None, ex, ports).await;
            let (step, at) = ran.map_err(Failure::fatal)?;
            if step != Step::Continue {
                return Ok(Forwarded::Step(step, policy, at));
            }
        }
        let out = outbound(pool, member, ex, ports.trust).map_err(Failure::fatal)?;
        // Counted in flight until the attempt ends, however it ends (even if the request
        // is dropped mid-way: the guard's Drop).
        let busy = pool.busy(i);
        let sent = send(ports.upstream, out).await;
        // Fresh from `send`, a failure is retryable exactly when it is the member's.
        let member_ok = match &sent {
            Ok(_) => Some(true),
            Err(failure) => failure.retry().then_some(false),
        };
        // A subrequest that ran out of the time its caller chose (`timeout`, 1 s to 30 s)
        // says little about the member: only the shell's own timeout counts against it.
        let budget_spent = ex.subrequest.is_some() && sent.as_ref().is_err_and(Failure::timed_out);
        if let Some(ok) = member_ok.filter(|_| !budget_spent) {
            let health = &self.routing.health;
            pool.record_attempt(&busy, ok, ports.trust.now_ms(), health);
        }
        drop(busy);
        Ok(Forwarded::Reply(sent?, member.policy.as_ref()))
    }
}

/// The request for `member`'s origin: the exchange's request with the member's credentials,
/// and its body. A subrequest sends its own body, within what is left of its timeout;
/// otherwise the body an action rewrote, if any (`None`: the client's).
fn outbound<'a, T: Trust>(
    pool: &'a Pool,
    member: &'a Member,
    ex: &'a mut Exchange,
    trust: &T,
) -> Result<Outbound<'a>, GatewayError> {
    let mut credentials = Vec::with_capacity(member.origin_auth.len());
    for (header, value) in &member.origin_auth {
        let value = ex.render(value, "forward-internal", "origin auth")?;
        credentials.push((*header, value));
    }
    let (body, timeout_ms) = match &ex.subrequest {
        None => (ex.req_body.clone(), None),
        Some(sub) => {
            let left = sub.deadline_ms.saturating_sub(trust.now_ms());
            if left == 0 {
                return Err(GatewayError::UpstreamTimeout {
                    endpoint: pool.url.clone(),
                    after_ms: 0,
                });
            }
            (Some(Rc::clone(&sub.body)), Some(left))
        }
    };
    let mut headers = proxy::forward_headers(&ex.req);
    for (name, value) in &credentials {
        headers.set(name, value);
    }
    Ok(Outbound {
        method: &ex.req.method,
        url: member.origin.url_for(&ex.req.uri()),
        headers,
        endpoint: &pool.url,
        member: &member.name,
        body,
        timeout_ms,
    })
}

/// Sends `out` to the origin: the reply, or a failure that says whether another member may
/// take the request.
async fn send<U: Upstream>(
    upstream: &U,
    out: Outbound<'_>,
) -> Result<Reply<U::Body>, Failure<U::Body>> {
    let endpoint = out.endpoint;
    match upstream.send(out).await {
        Ok((mut head, body)) => {
            proxy::clean_response_headers(&mut head.headers);
            let reply = Reply::upstream(head, body);
            if member_failed(reply.head.status) {
                Err(Failure::member(reply))
            } else {
                Ok(reply)
            }
        }
        Err(e) => Err(Failure {
            retry: e.retry(),
            outcome: Err(e.at(endpoint)),
        }),
    }
}
