//! The actions of a Traffic Policy, one file per action `type`, dispatched by one exhaustive match.

mod add_headers;
mod basic_auth;
mod circuit_breaker;
mod close_connection;
mod compress_response;
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
#[cfg(test)]
pub(crate) mod testing;
mod url_rewrite;
mod verify_webhook;

pub use add_headers::AddHeaders;
pub use basic_auth::BasicAuth;
pub use circuit_breaker::{Admission, CircuitBreaker};
pub use close_connection::CloseConnection;
pub use compress_response::{negotiate, Coding, CompressResponse};
pub use custom_response::CustomResponse;
pub use deny::Deny;
pub use forward_internal::ForwardInternal;
pub use http_request::{
    HttpRequest, Subrequest, SubrequestContext, Subresponse, MAX_DEPTH as MAX_SUBREQUEST_DEPTH,
    MAX_RESPONSE_BODY as MAX_SUBREQUEST_BODY,
};
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
pub use url_rewrite::UrlRewrite;
pub use verify_webhook::VerifyWebhook;

use crate::compile::Cx;
use crate::error::GatewayError;
use crate::eval::{Exchange, Phase, Synthetic};
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

/// What the chain does after an action. Stopping the chain is a value, never a panic.
#[derive(Debug, PartialEq)]
pub enum Step {
    /// Go on with the next action or rule.
    Continue,
    /// Forward to the internal endpoint (pool) with this key; terminating.
    Forward(String),
    /// Answer with a response made here (`custom-response`); the response phase still runs.
    Respond(Synthetic),
    /// Answer with this status and no body (`deny`); nothing else runs.
    Deny(u16),
    /// Drop the client's connection (`close-connection`); nothing else runs.
    Close,
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
                    crate::compile::At::new(path, type_node),
                    format!("invalid action type `{other}`"),
                );
                return None;
            }
        };
        if !supported.contains(&phase) {
            cx.diags.error(
                Some("ERR_NGROK_2202"),
                crate::compile::At::new(path, type_node),
                format!(
                    "action `{type_name}` is not supported in `{}`",
                    phase.name()
                ),
            );
            return None;
        }
        let config_path = crate::compile::child(path, "config");
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

/// What actions may ask of the world outside the policy (the gateway's ports).
#[allow(async_fn_in_trait)] // single-threaded on wasm: no Send bound wanted
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
    /// The request body, buffered (at most [`MAX_BUFFERED_BODY`] bytes) and still forwarded.
    async fn request_body(&self) -> Result<std::rc::Rc<[u8]>, GatewayError>;
    /// The request body's first bytes, for an inspection that reads no further: all of it when
    /// it is at most `limit` bytes, otherwise more than `limit` bytes (so the reader knows it
    /// was cut). Only those are held, whatever the body's size; it is still forwarded whole.
    async fn request_body_prefix(&self, limit: usize) -> Result<std::rc::Rc<[u8]>, GatewayError>;
    /// Sends an `http-request` to the declared internal endpoint `req.key` through its pool
    /// (the member's policy runs on it); its body is read up to 256 KB. An undeclared key is
    /// `EndpointOffline` and nothing is sent.
    async fn subrequest(&self, req: Subrequest) -> Result<Subresponse, GatewayError>;
    /// The response body, read whole (at most [`MAX_BUFFERED_BODY`] bytes) in the response
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

/// The largest request body an action may read (signature checks, body tokens): 8 MiB.
pub const MAX_BUFFERED_BODY: usize = 8 << 20;
