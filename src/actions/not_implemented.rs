//! ngrok action types that a later part of this gateway implements. A policy using one loads
//! with a warning, and a request that reaches it is refused (fail closed), never waved through.

use super::spec::{ActionSpec, OAUTH_COMMON, REQ, SSE, TCP};
use super::ConfigShape::{self, Any, Fields, Interpolated, ListOf};
use crate::actions::Cx;
use crate::error::GatewayError;
use crate::source::At;
use crate::source::Node;

#[derive(Debug)]
pub struct NotImplemented {
    type_name: String,
}

impl NotImplemented {
    pub fn compile(type_name: &str, path: &str, node: &Node, cx: &mut Cx<'_>) -> NotImplemented {
        cx.diags.warning(
            None,
            At::new(path, node),
            format!(
                "action `{type_name}` is not implemented by this gateway yet: requests that reach \
                 it are refused with 501 (fail closed)"
            ),
        );
        NotImplemented {
            type_name: type_name.to_string(),
        }
    }

    pub fn apply(&self) -> GatewayError {
        GatewayError::ActionNotImplemented {
            action: self.type_name.clone(),
        }
    }
}

// The action types ngrok documents that this gateway does not run yet. They load (so ngrok
// policies are accepted) but fail closed at run time.

pub const OAUTH: ActionSpec = ActionSpec {
    name: "oauth",
    phases: &[REQ],
    terminating: false,
    results: Some("oauth"),
    config: Fields(&[
        ("provider", Any),
        (OAUTH_COMMON[0], Any),
        (OAUTH_COMMON[1], Any),
        (OAUTH_COMMON[2], Any),
        (OAUTH_COMMON[3], Any),
        (OAUTH_COMMON[4], Any),
        (OAUTH_COMMON[5], Any),
        (OAUTH_COMMON[6], Any),
        (OAUTH_COMMON[7], Interpolated),
        ("client_secret", Interpolated),
        ("idle_session_timeout", Any),
    ]),
};

pub const OIDC: ActionSpec = ActionSpec {
    name: "oidc",
    phases: &[REQ],
    terminating: false,
    results: Some("oidc"),
    config: OIDC_CONFIG,
};

pub const OPENID_CONNECT: ActionSpec = ActionSpec {
    name: "openid-connect",
    phases: &[REQ],
    terminating: false,
    results: None,
    config: OIDC_CONFIG,
};

pub const TERMINATE_TLS: ActionSpec = ActionSpec {
    name: "terminate-tls",
    phases: &[TCP],
    terminating: false,
    results: Some("terminate_tls"),
    config: Fields(&[
        ("min_version", Any),
        ("max_version", Any),
        ("server_certificate", Interpolated),
        ("server_private_key", Interpolated),
        ("mutual_tls_certificate_authorities", ListOf(&Interpolated)),
        ("mutual_tls_verification_strategy", Any),
    ]),
};

pub const SSE_FIND_REPLACE: ActionSpec = ActionSpec {
    name: "sse-find-replace",
    phases: &[SSE],
    terminating: false,
    results: Some("sse_find_replace"),
    config: Fields(&[(
        "replacements",
        ListOf(&Fields(&[
            ("from", Interpolated),
            ("to", Interpolated),
            ("field", Any),
        ])),
    )]),
};

pub const SAML: ActionSpec = ActionSpec {
    name: "saml",
    phases: &[REQ],
    terminating: false,
    results: None,
    config: Any,
};

pub const AI_GATEWAY: ActionSpec = ActionSpec {
    name: "ai-gateway",
    phases: &[REQ],
    terminating: false,
    results: Some("ai_gateway"),
    config: Any,
};

const OIDC_CONFIG: ConfigShape = Fields(&[
    ("issuer_url", Any),
    (OAUTH_COMMON[0], Any),
    (OAUTH_COMMON[1], Any),
    (OAUTH_COMMON[2], Any),
    (OAUTH_COMMON[3], Any),
    (OAUTH_COMMON[4], Any),
    (OAUTH_COMMON[5], Any),
    (OAUTH_COMMON[6], Any),
    (OAUTH_COMMON[7], Interpolated),
    ("client_secret", Interpolated),
    ("idle_session_duration", Any),
]);
