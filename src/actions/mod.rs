//! The actions of a Traffic Policy, one file per action `type`, dispatched by one exhaustive match.

mod add_headers;
mod basic_auth;
mod circuit_breaker;
mod close_connection;
mod compress_response;
pub mod config;
mod custom_response;
mod deny;
mod forward_internal;
mod http_request;
mod jwt_validation;
mod log;
mod not_implemented;
mod owasp_crs;
mod owasp_crs_request;
mod owasp_crs_response;
mod rate_limit;
mod redirect;
mod remove_headers;
mod request_body_find_replace;
mod response_body_find_replace;
mod restrict_ips;
mod set_vars;
pub mod spec;
#[cfg(test)]
pub(crate) mod testing;
mod url_rewrite;
mod verify_webhook;

pub use add_headers::AddHeaders;
pub use basic_auth::BasicAuth;
pub use circuit_breaker::CircuitBreaker;
pub use close_connection::CloseConnection;
pub use compress_response::{negotiate, CompressResponse};
pub use custom_response::CustomResponse;
pub use deny::Deny;
pub use forward_internal::ForwardInternal;
pub use http_request::HttpRequest;
pub use jwt_validation::JwtValidation;
pub use log::Log;
pub use not_implemented::NotImplemented;
pub use owasp_crs_request::OwaspCrsRequest;
pub use owasp_crs_response::OwaspCrsResponse;
pub use rate_limit::{bucket_name, parse_duration_ms, RateLimit};
pub use redirect::Redirect;
pub use remove_headers::RemoveHeaders;
pub use request_body_find_replace::RequestBodyFindReplace;
pub use response_body_find_replace::ResponseBodyFindReplace;
pub use restrict_ips::RestrictIps;
pub use set_vars::SetVars;
pub use spec::{ActionSpec, ConfigShape, Cx, ACTIONS};
pub use url_rewrite::UrlRewrite;
pub use verify_webhook::VerifyWebhook;

use crate::error::GatewayError;
use crate::exchange::{Context, Step};
use crate::exchange::{Exchange, Phase};
use crate::source::Node;

/// A compiled action.
#[derive(Debug)]
pub enum Action {
    ForwardInternal(ForwardInternal),
    CustomResponse(CustomResponse),
    Deny(Deny),
    AddHeaders(AddHeaders),
    RemoveHeaders(RemoveHeaders),
    RateLimit(RateLimit),
    RestrictIps(Box<RestrictIps>),
    BasicAuth(BasicAuth),
    JwtValidation(Box<JwtValidation>),
    VerifyWebhook(Box<VerifyWebhook>),
    Redirect(Box<Redirect>),
    UrlRewrite(UrlRewrite),
    SetVars(SetVars),
    Log(Box<Log>),
    CloseConnection(CloseConnection),
    HttpRequest(Box<HttpRequest>),
    CircuitBreaker(CircuitBreaker),
    CompressResponse(CompressResponse),
    RequestBodyFindReplace(RequestBodyFindReplace),
    ResponseBodyFindReplace(ResponseBodyFindReplace),
    OwaspCrsRequest(Box<OwaspCrsRequest>),
    OwaspCrsResponse(Box<OwaspCrsResponse>),
    NotImplemented(NotImplemented),
}

/// Every action type ngrok documents that this gateway does not run yet. They load (so ngrok
/// policies are accepted) but fail closed at run time.
const LATER: &[&str] = &[
    "oauth",
    "oidc",
    "openid-connect",
    "terminate-tls",
    "sse-find-replace",
    "saml",
    "ai-gateway",
];

impl Action {
    /// Compiles one action of `type_name`; `None` when it was rejected (diagnostics say why).
    pub fn compile(
        type_name: &str,
        config: Option<&Node>,
        phase: Phase,
        path: &str,
        type_node: &Node,
        cx: &mut Cx<'_>,
    ) -> Option<Action> {
        let supported: &[Phase] = match type_name {
            "forward-internal"
            | "deny"
            | "rate-limit"
            | "basic-auth"
            | "jwt-validation"
            | "verify-webhook"
            | "circuit-breaker"
            | "redirect"
            | "url-rewrite"
            | "close-connection"
            | "request-body-find-replace"
            | "owasp-crs-request" => &[Phase::Request],
            "compress-response" | "response-body-find-replace" | "owasp-crs-response" => {
                &[Phase::Response]
            }
            "custom-response" | "add-headers" | "remove-headers" | "restrict-ips"
            | "http-request" | "set-vars" | "log" => &[Phase::Request, Phase::Response],
            t if LATER.contains(&t) => {
                return Some(Action::NotImplemented(NotImplemented::compile(
                    t, path, type_node, cx,
                )))
            }
            other => {
                cx.diags.error(
                    Some("ERR_NGROK_2201"),
                    crate::source::At::new(path, type_node),
                    format!("invalid action type `{other}`"),
                );
                return None;
            }
        };
        if !supported.contains(&phase) {
            cx.diags.error(
                Some("ERR_NGROK_2202"),
                crate::source::At::new(path, type_node),
                format!(
                    "action `{type_name}` is not supported in `{}`",
                    phase.name()
                ),
            );
            return None;
        }
        let config_path = crate::source::child(path, "config");
        Some(match type_name {
            "forward-internal" => {
                Action::ForwardInternal(ForwardInternal::compile(config, config_path, cx)?)
            }
            "custom-response" => {
                Action::CustomResponse(CustomResponse::compile(config, config_path, cx)?)
            }
            "deny" => Action::Deny(Deny::compile(config, config_path, cx)?),
            "add-headers" => Action::AddHeaders(AddHeaders::compile(config, config_path, cx)?),
            "basic-auth" => Action::BasicAuth(BasicAuth::compile(config, config_path, cx)?),
            "jwt-validation" => {
                Action::JwtValidation(Box::new(JwtValidation::compile(config, config_path, cx)?))
            }
            "verify-webhook" => {
                Action::VerifyWebhook(Box::new(VerifyWebhook::compile(config, config_path, cx)?))
            }
            "rate-limit" => Action::RateLimit(RateLimit::compile(config, config_path, cx)?),
            "redirect" => Action::Redirect(Box::new(Redirect::compile(config, config_path, cx)?)),
            "url-rewrite" => Action::UrlRewrite(UrlRewrite::compile(config, config_path, cx)?),
            "set-vars" => Action::SetVars(SetVars::compile(config, config_path, cx)?),
            "log" => Action::Log(Box::new(Log::compile(config, config_path, phase, cx)?)),
            "close-connection" => {
                Action::CloseConnection(CloseConnection::compile(config, config_path, cx)?)
            }
            "http-request" => {
                Action::HttpRequest(Box::new(HttpRequest::compile(config, config_path, cx)?))
            }
            "circuit-breaker" => {
                Action::CircuitBreaker(CircuitBreaker::compile(config, config_path, cx)?)
            }
            "restrict-ips" => {
                Action::RestrictIps(Box::new(RestrictIps::compile(config, config_path, cx)?))
            }
            "compress-response" => {
                Action::CompressResponse(CompressResponse::compile(config, config_path, cx)?)
            }
            "request-body-find-replace" => Action::RequestBodyFindReplace(
                RequestBodyFindReplace::compile(config, config_path, cx)?,
            ),
            "response-body-find-replace" => Action::ResponseBodyFindReplace(
                ResponseBodyFindReplace::compile(config, config_path, cx)?,
            ),
            "owasp-crs-request" => Action::OwaspCrsRequest(Box::new(OwaspCrsRequest::compile(
                config,
                config_path,
                cx,
            )?)),
            "owasp-crs-response" => Action::OwaspCrsResponse(Box::new(OwaspCrsResponse::compile(
                config,
                config_path,
                cx,
            )?)),
            _ => Action::RemoveHeaders(RemoveHeaders::compile(config, config_path, cx)?),
        })
    }

    /// Whether the chain always stops after this action (ngrok's "terminating" actions).
    pub fn terminates(&self) -> bool {
        match self {
            Action::ForwardInternal(f) => !f.continues_on_error(),
            Action::CustomResponse(_) | Action::Deny(_) | Action::CloseConnection(_) => true,
            Action::AddHeaders(_)
            | Action::RemoveHeaders(_)
            | Action::RateLimit(_)
            | Action::RestrictIps(_)
            | Action::BasicAuth(_)
            | Action::JwtValidation(_)
            | Action::VerifyWebhook(_)
            | Action::Redirect(_)
            | Action::UrlRewrite(_)
            | Action::SetVars(_)
            | Action::Log(_)
            | Action::HttpRequest(_)
            | Action::CircuitBreaker(_)
            | Action::CompressResponse(_)
            | Action::RequestBodyFindReplace(_)
            | Action::ResponseBodyFindReplace(_)
            | Action::OwaspCrsRequest(_)
            | Action::OwaspCrsResponse(_)
            | Action::NotImplemented(_) => false,
        }
    }

    /// Tells the action the name of its rule (`log` writes it).
    pub fn set_rule_name(&mut self, name: Option<&str>) {
        if let Action::Log(l) = self {
            l.set_rule_name(name);
        }
    }

    pub async fn apply<C: Context>(&self, ex: &mut Exchange, cx: &C) -> Result<Step, GatewayError> {
        match self {
            Action::ForwardInternal(a) => a.apply(ex, cx),
            Action::RateLimit(a) => a.apply(ex, cx).await,
            Action::RestrictIps(a) => a.apply(ex),
            Action::BasicAuth(a) => a.apply(ex),
            Action::JwtValidation(a) => a.apply(ex, cx).await,
            Action::VerifyWebhook(a) => a.apply(ex, cx).await,
            Action::HttpRequest(a) => a.apply(ex, cx).await,
            Action::CircuitBreaker(a) => a.apply(ex, cx),
            Action::CustomResponse(a) => a.apply(ex),
            Action::Deny(a) => Ok(a.apply()),
            Action::AddHeaders(a) => a.apply(ex),
            Action::RemoveHeaders(a) => Ok(a.apply(ex)),
            Action::Redirect(a) => a.apply(ex),
            Action::UrlRewrite(a) => a.apply(ex),
            Action::SetVars(a) => a.apply(ex),
            Action::Log(a) => a.apply(ex),
            Action::CloseConnection(a) => Ok(a.apply()),
            Action::CompressResponse(a) => Ok(a.apply(ex)),
            Action::RequestBodyFindReplace(a) => a.apply(ex, cx).await,
            Action::ResponseBodyFindReplace(a) => a.apply(ex, cx).await,
            Action::OwaspCrsRequest(a) => a.apply(ex, cx).await,
            Action::OwaspCrsResponse(a) => a.apply(ex, cx).await,
            Action::NotImplemented(a) => Err(a.apply()),
        }
    }
}
