//! Forwarding to a pool, in three pieces: choose a member ([`Pool::choose`]), make one attempt
//! ([`Gateway::attempt`]), and decide whether to try another. The attempt's [`Failure`] says
//! whether the member failed (pingora's `retry`); the request whether it can be sent again; the
//! pool whether members and retry budget are left.

use super::attempt::{Failure, Forwarded};
use super::balance::Balance;
use super::context::Ports;
use super::ports::{Lent, RateLimiter, Trust, Upstream};
use super::{Gateway, Member, Pool, Want};
use crate::error::GatewayError;
use crate::exchange::Exchange;
use crate::http::RequestHead;
use std::rc::Rc;

impl Gateway {
    /// Sends the request to a member of `pool` (running the member's own policy first) and,
    /// when that fails in a way that is safe to retry, to another member: a connection error, a
    /// timeout, or a 502/503/504, for an idempotent method whose body can be sent again, within
    /// the isolate's retry budget. Every outcome feeds the member's passive health.
    pub(super) async fn forward<'g, U: Upstream, L: RateLimiter, T: Trust>(
        &'g self,
        pool: &'g Pool,
        ex: &mut Exchange,
        ports: &Ports<'_, U, L, T>,
    ) -> Result<Forwarded<'g, U::Body>, GatewayError> {
        pool.retries.deposit();
        let replay = Replay::capture(pool, ex);
        let want = want(pool, ex);
        let attempts = self.routing.max_attempts.min(pool.members.len());
        let mut tried: Vec<usize> = Vec::new();
        let mut last: Option<(&'g Member, Failure<U::Body>)> = None;
        loop {
            let now_ms = ports.trust.now_ms();
            let Some(i) = pool.choose(&mut Lent(ports.rng), now_ms, &tried, &want) else {
                return match last {
                    Some((member, failure)) => failure.give_up(member),
                    None => Err(unavailable(pool, now_ms)),
                };
            };
            if let Some((member, failure)) = last.take() {
                if !pool.retries.withdraw() {
                    ex.note(format!("{}: retry budget spent; not retrying", pool.url));
                    return failure.give_up(member);
                }
                failure.discard(ports.upstream);
                replay.restore(ex);
            }
            tried.push(i);
            let member = &pool.members[i];
            let mut failure = match self.attempt(pool, i, ex, ports).await {
                Ok(forwarded) => return Ok(self.name_member(forwarded, member)),
                Err(failure) => failure,
            };
            if failure.retry() && !replay.can_resend(ex, ports.upstream) {
                failure.set_retry(false);
            }
            if !failure.retry() || tried.len() >= attempts {
                return failure.give_up(member).map(|f| self.name_member(f, member));
            }
            let (url, name) = (&pool.url, &member.name);
            ex.note(format!(
                "{url}: member {name} failed ({failure}); trying another"
            ));
            last = Some((member, failure));
        }
    }

    /// Names the member that answered in the routing's member header.
    fn name_member<'g, B>(
        &self,
        mut forwarded: Forwarded<'g, B>,
        member: &Member,
    ) -> Forwarded<'g, B> {
        if let (Forwarded::Reply(reply, _), Some(header)) =
            (&mut forwarded, &self.routing.member_header)
        {
            reply.head.headers.set(header, &member.name);
        }
        forwarded
    }
}

/// What this request asks of the member choice: the pool's hash key and preferred cluster,
/// rendered for it.
fn want(pool: &Pool, ex: &mut Exchange) -> Want {
    Want {
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
    }
}

/// Every member is ejected by passive health: 503, and when the first comes back.
fn unavailable(pool: &Pool, now_ms: u64) -> GatewayError {
    GatewayError::PoolUnavailable {
        endpoint: pool.url.clone(),
        retry_after_s: pool
            .next_return_ms(now_ms)
            .map_or(30, |t| t.saturating_sub(now_ms).div_ceil(1000)),
    }
}

/// Methods that mean the same when sent twice (RFC 9110 §9.2.2): only these are retried.
fn idempotent(method: &str) -> bool {
    matches!(
        method,
        "GET" | "HEAD" | "OPTIONS" | "PUT" | "DELETE" | "TRACE"
    )
}

/// The request as it was before the first attempt, for a retry: a member policy's changes
/// (its body rewrite too) are undone, and its rate limits are not reported twice.
struct Replay {
    /// Only copied when a retry can happen (on the request path most pools never retry: one
    /// member, or a method that is not idempotent).
    original: Option<(RequestHead, Option<Rc<[u8]>>)>,
    limits_before: usize,
}

impl Replay {
    fn capture(pool: &Pool, ex: &Exchange) -> Replay {
        Replay {
            original: (pool.members.len() > 1 && idempotent(&ex.req.method))
                .then(|| (ex.req.clone(), ex.req_body.clone())),
            limits_before: ex.rate_limits.len(),
        }
    }

    /// Whether the request can be sent again: an idempotent method, and a body that is a
    /// subrequest's own, or buffered, or not streamed yet.
    fn can_resend<U: Upstream>(&self, ex: &Exchange, upstream: &U) -> bool {
        self.original.is_some()
            && (ex.subrequest.is_some() || ex.req_body.is_some() || upstream.body_replayable())
    }

    fn restore(&self, ex: &mut Exchange) {
        if let Some((req, body)) = &self.original {
            ex.req = req.clone();
            ex.req_body = body.clone();
        }
        ex.rate_limits.truncate(self.limits_before);
    }
}
