//! Runtime errors of the gateway, and [`GatewayError::rescue`]: the one place that turns an
//! error into an HTTP status, an `ngrok-error-code` and a short machine-readable body.

use crate::expr::EvalError;
use crate::http::Headers;
use crate::http::Synthetic;
use std::fmt;

#[derive(Clone, Debug, PartialEq)]
pub enum GatewayError {
    /// No valid policy has ever loaded in this isolate (fail closed).
    NoPolicy { reason: String },
    /// The request itself is unusable (e.g. no client address from the platform).
    BadRequest { reason: String },
    /// No public (cloud) endpoint serves this host.
    NoPublicEndpoint { host: String },
    /// `forward-internal` named an internal endpoint that is not declared (ngrok: offline).
    EndpointOffline { url: String },
    /// A `${...}` in an action's config failed at run time (e.g. a missing header indexed).
    Interpolation {
        action: &'static str,
        field: &'static str,
        error: EvalError,
    },
    /// A typed value (`set-vars`, `log` metadata) failed to evaluate (ngrok's `ERR_NGROK_2253`).
    ValueFailed {
        action: &'static str,
        field: String,
        error: EvalError,
    },
    /// An interpolated `from` is not a valid regex (ngrok's `ERR_NGROK_3901`).
    BadRegex {
        action: &'static str,
        field: &'static str,
        message: String,
    },
    /// A `url-rewrite` produced something that is not an absolute http(s) URL.
    BadRewrite { action: &'static str, url: String },
    /// A rule's expression failed at run time.
    Expression { error: EvalError },
    /// Internal endpoints forwarded to each other more than the hop limit.
    TooManyHops { limit: usize },
    /// The request phase ended without a terminating action.
    NotTerminated,
    /// `basic-auth` found no valid credentials.
    Unauthorized { realm: String },
    /// `restrict-ips` refused the client's address.
    IpRestricted {
        ip: std::net::IpAddr,
        matched: Option<String>,
    },
    /// A `rate-limit` refused the request.
    RateLimited {
        name: String,
        limit: crate::limiter::Limit,
        decision: crate::limiter::Decision,
    },
    /// A `rate-limit` with `on_error: halt` could not reach its bucket (fail closed).
    RateLimiterUnavailable { reason: String },
    /// An action this gateway does not run yet (fails closed).
    ActionNotImplemented { action: String },
    /// The upstream (tunnel origin) could not be reached.
    UpstreamUnreachable { endpoint: String, detail: String },
    /// The upstream did not answer in time.
    UpstreamTimeout { endpoint: String, after_ms: u64 },
    /// Every member of the pool is ejected by passive health: answered at once, not tried.
    PoolUnavailable {
        endpoint: String,
        retry_after_s: u64,
    },
    /// `jwt-validation` refused the request's token.
    JwtRejected {
        rejection: crate::jwt::Rejection,
        realm: String,
    },
    /// `verify-webhook` found no valid signature (ngrok's `ERR_NGROK_3204`).
    WebhookRejected {
        provider: &'static str,
        reason: crate::webhook::Failure,
    },
    /// An action needed the body and it is larger than the gateway buffers.
    BodyTooLarge { limit: usize },
    /// Replay protection could not reach its log (fail closed).
    ReplayLogUnavailable { reason: String },
    /// A `circuit-breaker` is open: the request is refused without reaching the upstream.
    CircuitOpen { retry_after_s: u64 },
    /// An `http-request` response body was larger than the cap (ngrok's `ERR_NGROK_3601`).
    SubrequestBodyTooLarge { limit: usize },
    /// An `http-request` did not finish within its `timeout` (ngrok's `ERR_NGROK_3602`).
    SubrequestTimeout { after_ms: u64 },
    /// `http-request`s nested too deep through internal endpoints' policies (`ERR_NGROK_3603`).
    SubrequestLoop { limit: usize },
    /// An `http-request` met more redirects than `max_redirects` (`ERR_NGROK_3214`).
    TooManyRedirects { limit: u32 },
    /// `response-body-find-replace` met a response body larger than the gateway buffers.
    ResponseBodyTooLarge { limit: usize },
    /// An action needed the upstream's response body and it broke off while being read.
    ResponseBodyUnreadable { detail: String },
    /// A find-replace `from` rendered (`${}`) to an invalid regular expression.
    InvalidPattern {
        action: &'static str,
        pattern: String,
        reason: String,
    },
    /// `owasp-crs-request` / `-response` scored the exchange at or above its threshold
    /// (ngrok's `ERR_NGROK_3700` for a request, `ERR_NGROK_3702` for a response).
    WafBlocked {
        response: bool,
        anomaly_score: u32,
        threshold: u32,
        rule_ids: Vec<u32>,
    },
    /// The WAF was to inspect the body and it could not be read.
    WafBodyUnreadable { detail: String },
    /// The WAF itself failed (ngrok's `ERR_NGROK_3701`).
    WafInternal { detail: String },
}

/// How an error is shown to the client.
struct ErrorShape {
    status: u16,
    code: Option<&'static str>,
    reason: &'static str,
}

impl GatewayError {
    fn shape(&self) -> ErrorShape {
        use GatewayError::*;
        let (status, code, reason) = match self {
            NoPolicy { .. } => (503, None, "no_valid_policy"),
            BadRequest { .. } => (400, None, "bad_request"),
            NoPublicEndpoint { .. } => (404, Some("ERR_NGROK_3200"), "no_endpoint_for_host"),
            EndpointOffline { .. } => (404, Some("ERR_NGROK_3200"), "endpoint_offline"),
            // The usual cause is a request without the header or parameter the policy routes on:
            // a client error, so 400 rather than a 5xx that would page someone.
            Interpolation { .. } => (400, Some("ERR_NGROK_3900"), "interpolation_failed"),
            Expression { .. } => (400, None, "expression_failed"),
            ValueFailed { .. } => (400, Some("ERR_NGROK_2253"), "evaluation_failed"),
            // The policy (its `from` with the request's values) made the bad regex or URL.
            BadRegex { .. } => (500, Some("ERR_NGROK_3901"), "invalid_regex"),
            BadRewrite { .. } => (500, None, "invalid_rewritten_url"),
            TooManyHops { .. } => (508, Some("ERR_NGROK_3501"), "too_many_hops"),
            NotTerminated => (502, Some("ERR_NGROK_2235"), "policy_not_terminated"),
            ActionNotImplemented { .. } => (501, None, "action_not_implemented"),
            RateLimited { .. } => (429, None, "rate_limited"),
            IpRestricted { .. } => (403, Some("ERR_NGROK_3205"), "ip_restricted"),
            Unauthorized { .. } => (401, None, "unauthorized"),
            RateLimiterUnavailable { .. } => (503, None, "rate_limiter_unavailable"),
            UpstreamUnreachable { .. } => (502, Some("ERR_NGROK_8012"), "upstream_unreachable"),
            UpstreamTimeout { .. } => (504, None, "upstream_timeout"),
            PoolUnavailable { .. } => (503, Some("ERR_NGROK_3200"), "pool_unavailable"),
            JwtRejected { rejection, .. } => {
                let status = match rejection {
                    crate::jwt::Rejection::KeysUnavailable(_) => 503,
                    _ => 401,
                };
                (status, Some(rejection.code()), rejection.reason())
            }
            WebhookRejected { reason, .. } => (403, Some("ERR_NGROK_3204"), reason.reason()),
            BodyTooLarge { .. } => (413, None, "body_too_large"),
            ReplayLogUnavailable { .. } => (503, None, "replay_log_unavailable"),
            CircuitOpen { .. } => (503, Some("ERR_NGROK_3202"), "circuit_open"),
            SubrequestBodyTooLarge { .. } => {
                (502, Some("ERR_NGROK_3601"), "subrequest_body_too_large")
            }
            SubrequestTimeout { .. } => (504, Some("ERR_NGROK_3602"), "subrequest_timeout"),
            SubrequestLoop { .. } => (508, Some("ERR_NGROK_3603"), "subrequest_loop"),
            TooManyRedirects { .. } => (502, Some("ERR_NGROK_3214"), "too_many_redirects"),
            ResponseBodyTooLarge { .. } => (502, None, "response_body_too_large"),
            ResponseBodyUnreadable { .. } => (502, None, "response_body_unreadable"),
            InvalidPattern { .. } => (500, Some("ERR_NGROK_3901"), "invalid_regex"),
            WafBlocked {
                response: false, ..
            } => (403, Some("ERR_NGROK_3700"), "waf_blocked"),
            WafBlocked { response: true, .. } => {
                (403, Some("ERR_NGROK_3702"), "waf_blocked_response")
            }
            WafBodyUnreadable { .. } => (500, None, "waf_body_unreadable"),
            WafInternal { .. } => (500, Some("ERR_NGROK_3701"), "waf_failed"),
        };
        ErrorShape {
            status,
            code,
            reason,
        }
    }

    /// A forward that reached no answer: every member unreachable, timed out or out of
    /// rotation. What `forward-internal`'s `on_error: continue` covers after the action ran
    /// (ngrok: "if you take down either your upstream service or the internal Agent Endpoint").
    pub fn is_forward_failure(&self) -> bool {
        matches!(
            self,
            Self::UpstreamUnreachable { .. }
                | Self::UpstreamTimeout { .. }
                | Self::PoolUnavailable { .. }
                | Self::EndpointOffline { .. }
        )
    }

    pub fn status(&self) -> u16 {
        self.shape().status
    }

    /// ngrok's error code for this error, when there is one.
    pub fn code(&self) -> Option<&'static str> {
        self.shape().code
    }

    /// The response the client gets: JSON `{"error": {status, code, reason, message}}`.
    pub fn rescue(&self) -> Synthetic {
        let shape = self.shape();
        let body = serde_json::json!({
            "error": {
                "status": shape.status,
                "code": shape.code,
                "reason": shape.reason,
                "message": self.to_string(),
            }
        });
        let mut headers = Headers::new();
        headers.set("content-type", "application/json");
        headers.set("cache-control", "no-store");
        if let Some(code) = shape.code {
            headers.set("ngrok-error-code", code);
        }
        if let GatewayError::Unauthorized { realm } = self {
            let challenge = format!("Basic realm=\"{realm}\", charset=\"UTF-8\"");
            headers.set("www-authenticate", &challenge);
        }
        if let GatewayError::JwtRejected { rejection, realm } = self {
            // RFC 6750 §3: the challenge names the error; descriptions stay printable ASCII.
            let mut challenge = format!("Bearer realm=\"{realm}\"");
            if let Some(error) = rejection.bearer_error() {
                let description: String = rejection
                    .to_string()
                    .chars()
                    .filter(|c| (' '..='~').contains(c) && *c != '"' && *c != '\\')
                    // The message can quote the token's own text (kid, iss): keep it short.
                    .take(200)
                    .collect();
                challenge.push_str(&format!(
                    ", error=\"{error}\", error_description=\"{description}\""
                ));
            }
            headers.set("www-authenticate", &challenge);
        }
        if let GatewayError::PoolUnavailable { retry_after_s, .. } = self {
            headers.set("retry-after", &retry_after_s.to_string());
        }
        if let GatewayError::CircuitOpen { retry_after_s } = self {
            headers.set("retry-after", &retry_after_s.to_string());
        }
        if let GatewayError::RateLimited {
            name,
            limit,
            decision,
        } = self
        {
            headers.set("retry-after", &decision.retry_after_s.to_string());
            rate_limit_headers(&mut headers, &[(name.clone(), *limit, *decision)]);
        }
        Synthetic {
            status: shape.status,
            headers,
            body: body.to_string(),
        }
    }
}

impl fmt::Display for GatewayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use GatewayError::*;
        match self {
            NoPolicy { reason } => write!(f, "the gateway has no valid traffic policy: {reason}"),
            BadRequest { reason } => write!(f, "bad request: {reason}"),
            NoPublicEndpoint { host } => write!(f, "no endpoint serves host `{host}`"),
            EndpointOffline { url } => write!(f, "the endpoint `{url}` is offline"),
            Interpolation {
                action,
                field,
                error,
            } => write!(
                f,
                "CEL interpolation was unsuccessful in action `{action}` field `{field}`: {error}"
            ),
            Expression { error } => write!(f, "a rule expression failed: {error}"),
            ValueFailed {
                action,
                field,
                error,
            } => write!(
                f,
                "failed to evaluate CEL expression on `{field}` for `{action}` at runtime: {error}"
            ),
            BadRegex {
                action,
                field,
                message,
            } => write!(
                f,
                "action `{action}` field `{field}` is not a valid regular expression after interpolation: {message}"
            ),
            BadRewrite { action, url } => {
                write!(f, "action `{action}` produced `{url}`, which is not an http(s) URL")
            }
            TooManyHops { limit } => write!(f, "more than {limit} forward-internal hops"),
            NotTerminated => write!(f, "the traffic policy did not handle the request"),
            RateLimited { name, decision, .. } => write!(
                f,
                "rate limit `{name}` exceeded; retry after {} s",
                decision.retry_after_s
            ),
            Unauthorized { .. } => write!(f, "valid credentials are required"),
            IpRestricted { ip, matched } => match matched {
                Some(range) => write!(f, "the address {ip} is blocked ({range})"),
                None => write!(f, "the address {ip} is not in the allowed ranges"),
            },
            RateLimiterUnavailable { reason } => {
                write!(f, "the rate limiter could not be reached: {reason}")
            }
            ActionNotImplemented { action } => {
                write!(
                    f,
                    "action `{action}` is not implemented by this gateway yet"
                )
            }
            UpstreamUnreachable { endpoint, detail } => {
                write!(
                    f,
                    "the upstream of `{endpoint}` could not be reached: {detail}"
                )
            }
            JwtRejected { rejection, .. } => write!(f, "{rejection}"),
            WebhookRejected { provider, reason } => {
                write!(
                    f,
                    "request failed {provider} webhook verification: {reason}"
                )
            }
            BodyTooLarge { limit } => {
                write!(
                    f,
                    "the request body is larger than the {limit} bytes this check reads"
                )
            }
            ReplayLogUnavailable { reason } => {
                write!(f, "webhook replay protection is unavailable: {reason}")
            }
            ResponseBodyTooLarge { limit } => write!(
                f,
                "the upstream's response body is larger than the {limit} bytes an action reads"
            ),
            ResponseBodyUnreadable { detail } => {
                write!(f, "the upstream's response body could not be read: {detail}")
            }
            InvalidPattern {
                action,
                pattern,
                reason,
            } => write!(
                f,
                "action `{action}`: `from` rendered to `{pattern}`, not a valid regular expression: {reason}"
            ),
            PoolUnavailable {
                endpoint,
                retry_after_s,
            } => write!(
                f,
                "every member of `{endpoint}` is failing; the first is tried again in {retry_after_s} s"
            ),
            CircuitOpen { retry_after_s } => write!(
                f,
                "the circuit breaker is open; retry after {retry_after_s} s"
            ),
            SubrequestBodyTooLarge { limit } => write!(
                f,
                "the http-request response body is larger than {limit} bytes"
            ),
            SubrequestTimeout { after_ms } => {
                write!(f, "the http-request did not finish within {after_ms} ms")
            }
            SubrequestLoop { limit } => write!(
                f,
                "http-request loop: more than {limit} nested subrequests through internal endpoints"
            ),
            TooManyRedirects { limit } => {
                write!(f, "the http-request met more than {limit} redirects")
            }
            WafBlocked {
                response,
                anomaly_score,
                threshold,
                rule_ids,
            } => {
                let what = if *response { "response" } else { "request" };
                let ids: Vec<String> = rule_ids.iter().map(u32::to_string).collect();
                write!(
                    f,
                    "the {what} was blocked by the OWASP Core Rule Set: anomaly score {anomaly_score} (threshold {threshold}), rules [{}]",
                    ids.join(", ")
                )
            }
            WafBodyUnreadable { detail } => {
                write!(f, "the body the WAF inspects could not be read: {detail}")
            }
            WafInternal { detail } => write!(f, "the WAF failed: {detail}"),
            UpstreamTimeout { endpoint, after_ms } => {
                write!(
                    f,
                    "the upstream of `{endpoint}` did not answer within {after_ms} ms"
                )
            }
        }
    }
}

impl std::error::Error for GatewayError {}

/// The IETF `RateLimit-Policy` and `RateLimit` fields (draft-ietf-httpapi-ratelimit-headers):
/// every policy applied, and the state of the tightest one.
pub fn rate_limit_headers(
    headers: &mut Headers,
    applied: &[(String, crate::limiter::Limit, crate::limiter::Decision)],
) {
    let Some((name, _, tightest)) = applied
        .iter()
        .min_by_key(|(_, _, d)| (d.allowed, d.remaining))
    else {
        return;
    };
    let policies: Vec<String> = applied
        .iter()
        .map(|(n, l, _)| {
            format!(
                "{};q={};w={}",
                sf_string(n),
                l.capacity,
                l.rate_ms.div_ceil(1000)
            )
        })
        .collect();
    headers.set("ratelimit-policy", &policies.join(", "));
    let reset = if tightest.allowed {
        tightest.reset_s
    } else {
        tightest.retry_after_s
    };
    headers.set(
        "ratelimit",
        &format!("{};r={};t={}", sf_string(name), tightest.remaining, reset),
    );
}

/// A structured-field string (RFC 8941): quoted, `"` and `\` escaped, printable ASCII only.
fn sf_string(s: &str) -> String {
    let inner: String = s
        .chars()
        .filter(|c| (' '..='~').contains(c))
        .flat_map(|c| match c {
            '"' | '\\' => vec!['\\', c],
            c => vec![c],
        })
        .collect();
    format!("\"{inner}\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offline_endpoint_is_404_with_ngrok_code() {
        let r = GatewayError::EndpointOffline {
            url: "https://nope.internal".into(),
        }
        .rescue();
        assert_eq!(r.status, 404);
        assert_eq!(r.headers.get("ngrok-error-code"), Some("ERR_NGROK_3200"));
        let body: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(body["error"]["reason"], "endpoint_offline");
    }
}
