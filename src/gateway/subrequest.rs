//! `http-request` subrequests through the pools: the same path as forwarded traffic (member
//! choice, failover, passive health, the member's own policy, response phases), starting at
//! the internal endpoint instead of the public one, and ending with the body read (capped).

use super::context::Ports;
use super::ports::{BodyError, RateLimiter, Trust, Upstream};
use super::reply::{Body, Reply};
use super::Gateway;
use crate::error::GatewayError;
use crate::exchange::Exchange;
use crate::exchange::{Step, Subrequest, SubrequestContext, Subresponse, MAX_SUBREQUEST_DEPTH};
use crate::http::RequestHead;

/// The largest `http-request` response body (ngrok's 256 KB).
const MAX_BODY: usize = crate::exchange::MAX_SUBREQUEST_BODY;

impl Gateway {
    /// Sends an `http-request` to the declared internal endpoint `sub.key` through its pool and
    /// reads the answer (its body up to [`MAX_BODY`]).
    pub(super) async fn subrequest<U: Upstream, L: RateLimiter, T: Trust>(
        &self,
        sub: Subrequest,
        ports: &Ports<'_, U, L, T>,
    ) -> Result<Subresponse, GatewayError> {
        if sub.depth > MAX_SUBREQUEST_DEPTH {
            return Err(GatewayError::SubrequestLoop {
                limit: MAX_SUBREQUEST_DEPTH,
            });
        }
        // Undeclared: never fetched, whatever the URL says.
        // Errors name the key (`scheme://host:port`), never the URL: its user info, path and
        // query may carry secrets, and errors reach the client and the logs.
        if !self.pools.contains_key(&sub.key) {
            return Err(GatewayError::EndpointOffline { url: sub.key });
        }
        let head = RequestHead::from_url(sub.method, &sub.url, sub.headers, sub.client_ip)
            .ok_or_else(|| GatewayError::BadRequest {
                reason: format!("http-request: a URL for `{}` that is not one", sub.key),
            })?;
        let facts = self.facts(ports.trust.now_ms(), ports.rng.draw(usize::MAX) as u64);
        let mut ex = Exchange::new(head)
            .with_secrets(std::sync::Arc::clone(&self.secrets))
            .with_facts(facts);
        ex.subrequest = Some(SubrequestContext {
            body: sub.body,
            deadline_ms: sub.deadline_ms,
            depth: sub.depth,
        });
        // Forwarding stays possible from the response phase's ports only for the hop itself.
        let ports = Ports {
            can_forward: true,
            ..ports.clone()
        };
        let result = match self
            .follow(Step::Forward(sub.key), None, &mut ex, &ports, Vec::new())
            .await
        {
            // The target's policy refused (401, 403, 429, its own breaker's 503, ...): that is
            // the target's answer, a response like any other, as a client would get it.
            Err(e) if !reaching(&e) => Ok(Reply::synthetic(e.rescue())),
            other => other,
        };
        let status = match &result {
            Ok(reply) => reply.head.status,
            Err(e) => e.status(),
        };
        ex.record_breakers(status, ports.trust.now_ms());
        let reply = result?;
        let body = read_body(reply.body, ports.upstream, &ex).await?;
        if body.len() > MAX_BODY {
            return Err(GatewayError::SubrequestBodyTooLarge { limit: MAX_BODY });
        }
        Ok(Subresponse {
            status: reply.head.status,
            headers: reply.head.headers,
            body,
        })
    }
}

/// Whether an error is about reaching the target (an `http-request` error, in
/// `actions.ngrok.http_request.error`) rather than an answer the target's policy gave.
fn reaching(e: &GatewayError) -> bool {
    matches!(
        e,
        GatewayError::EndpointOffline { .. }
            | GatewayError::PoolUnavailable { .. }
            | GatewayError::UpstreamUnreachable { .. }
            | GatewayError::UpstreamTimeout { .. }
            | GatewayError::SubrequestTimeout { .. }
            | GatewayError::SubrequestLoop { .. }
            | GatewayError::SubrequestBodyTooLarge { .. }
            | GatewayError::TooManyRedirects { .. }
            | GatewayError::TooManyHops { .. }
            | GatewayError::BadRequest { .. }
    )
}

/// The target's response body, read whole up to [`MAX_BODY`].
async fn read_body<U: Upstream>(
    body: Body<U::Body>,
    upstream: &U,
    ex: &Exchange,
) -> Result<Vec<u8>, GatewayError> {
    Ok(match body {
        Body::Empty => Vec::new(),
        Body::Text(t) => t.into_bytes(),
        Body::Bytes(b) => b.to_vec(),
        // The target's policy ran close-connection: no response to read.
        Body::Abort => {
            return Err(GatewayError::UpstreamUnreachable {
                endpoint: reply_endpoint(ex),
                detail: "the target closed the connection".into(),
            })
        }
        Body::Upstream(b) => upstream.read_body(b, MAX_BODY).await.map_err(|e| match e {
            BodyError::TooLarge { limit } => GatewayError::SubrequestBodyTooLarge { limit },
            BodyError::Unreadable(detail) => GatewayError::UpstreamUnreachable {
                endpoint: reply_endpoint(ex),
                detail,
            },
        })?,
    })
}

fn reply_endpoint(ex: &Exchange) -> String {
    format!("{}://{}", ex.req.scheme, ex.req.authority())
}
