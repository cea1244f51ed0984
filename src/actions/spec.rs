//! Every action type ngrok documents (reference §4): the phases it runs in, whether it ends the
//! phase, and the shape of its `config`. The validator checks every action against this table
//! before the action's own compile runs, so unknown fields, wrong phases and CEL in config
//! strings are reported the same way for every action, implemented here or not.
//!
//! Adding an action: add (or extend) its entry below; its `compile` needs nothing else.

/// The shape of a config value, as far as validation needs it.
#[derive(Debug)]
pub enum ConfigShape {
    /// Anything: not looked into (scalars, enums, durations: the action checks them).
    Any,
    /// A string that may contain `${...}` interpolations.
    Template,
    /// A bare CEL expression (`rate-limit.bucket_key` entries).
    Expr,
    /// A map with exactly these keys (all optional here: the action reports missing ones).
    Fields(&'static [(&'static str, ConfigShape)]),
    /// A map with free keys (header names, metadata) and values of one shape.
    MapOf(&'static ConfigShape),
    /// A list whose items have one shape.
    ListOf(&'static ConfigShape),
}

use crate::source::Diagnostics;
use std::collections::HashSet;
use ConfigShape::*;

/// The compile context: where diagnostics go, the switches, and what endpoints exist.
pub struct Cx<'a> {
    pub diags: &'a mut Diagnostics,
    pub strict: bool,
    /// Keys (`scheme://host:port`) of every declared internal endpoint.
    pub internal: &'a HashSet<String>,
    /// The endpoint whose policy this is (`CloudEndpoint default/name`), for stable names.
    pub endpoint: &'a str,
}

/// A phase in which an action may run, by its YAML key.
pub const TCP: &str = "on_tcp_connect";
pub const REQ: &str = "on_http_request";
pub const RES: &str = "on_http_response";
pub const SSE: &str = "on_event_stream_message";

/// One action type.
#[derive(Debug)]
pub struct ActionSpec {
    pub name: &'static str,
    pub phases: &'static [&'static str],
    /// A documented terminating action (§2.3); `forward-internal` not with `on_error: continue`.
    pub terminating: bool,
    pub config: ConfigShape,
}

const HEADERS: ConfigShape = MapOf(&Template);
const ON_ERROR: (&str, ConfigShape) = ("on_error", Any);
const ALLOW_LIST: ConfigShape = Fields(&[("allow_list", ListOf(&Fields(&[("value", Template)])))]);
const REPLACEMENTS: ConfigShape = ListOf(&Fields(&[("from", Template), ("to", Template)]));
/// `owasp-crs-*`: ngrok's three keys, then ours (docs/waf.md).
const WAF_CONFIG: ConfigShape = Fields(&[
    ON_ERROR,
    ("process_body", Any),
    ("exclude_rule_ids", ListOf(&Any)),
    ("paranoia_level", Any),
    ("anomaly_score_threshold", Any),
    ("body_limit", Any),
    ("max_steps", Any),
    ("on_budget_exceeded", Any),
]);
const OAUTH_COMMON: [&str; 8] = [
    "auth_id",
    "scopes",
    "authz_url_params",
    "max_session_duration",
    "userinfo_refresh_interval",
    "allow_cors_preflight",
    "auth_cookie_domain",
    "client_id",
];

/// The table (reference §4.1 for phases; the action pages for config keys). Keys this gateway
/// accepts beyond ngrok's (forward-internal `binding`, verify-webhook's `hmac` fields,
/// jwt-validation `leeway`, rate-limit `on_error`) are listed too.
pub const ACTIONS: &[ActionSpec] = &[
    ActionSpec {
        name: "forward-internal",
        phases: &[TCP, REQ],
        terminating: true,
        config: Fields(&[("url", Template), ON_ERROR, ("binding", Any)]),
    },
    ActionSpec {
        name: "custom-response",
        phases: &[REQ, RES],
        terminating: true,
        config: Fields(&[
            ("status_code", Any),
            ("body", Template),
            ("headers", HEADERS),
        ]),
    },
    ActionSpec {
        name: "deny",
        phases: &[TCP, REQ],
        terminating: true,
        config: Fields(&[("status_code", Any)]),
    },
    ActionSpec {
        name: "close-connection",
        phases: &[TCP, REQ],
        terminating: true,
        config: Fields(&[]),
    },
    ActionSpec {
        name: "redirect",
        phases: &[REQ],
        terminating: false,
        config: Fields(&[
            ("from", Template),
            ("to", Template),
            ("status_code", Any),
            ("headers", HEADERS),
        ]),
    },
    ActionSpec {
        name: "url-rewrite",
        phases: &[REQ],
        terminating: false,
        config: Fields(&[("from", Template), ("to", Template)]),
    },
    ActionSpec {
        name: "add-headers",
        phases: &[REQ, RES],
        terminating: false,
        config: Fields(&[("headers", HEADERS)]),
    },
    ActionSpec {
        name: "remove-headers",
        phases: &[REQ, RES],
        terminating: false,
        config: Fields(&[("headers", ListOf(&Any))]),
    },
    ActionSpec {
        name: "set-vars",
        phases: &[TCP, REQ, RES],
        terminating: false,
        config: Fields(&[("vars", ListOf(&MapOf(&Template)))]),
    },
    ActionSpec {
        name: "log",
        phases: &[TCP, REQ, RES],
        terminating: false,
        config: Fields(&[("metadata", MapOf(&Template))]),
    },
    ActionSpec {
        name: "restrict-ips",
        // The hub says request only; the action's page adds on_http_response (CONFLICT §4.1).
        phases: &[TCP, REQ, RES],
        terminating: false,
        config: Fields(&[
            ("enforce", Any),
            ("allow", ListOf(&Template)),
            ("deny", ListOf(&Template)),
            ("ip_policies", Any),
        ]),
    },
    ActionSpec {
        name: "basic-auth",
        phases: &[REQ],
        terminating: false,
        config: Fields(&[
            ("credentials", ListOf(&Template)),
            ("realm", Any),
            ("enforce", Any),
        ]),
    },
    ActionSpec {
        name: "rate-limit",
        phases: &[REQ],
        terminating: false,
        config: Fields(&[
            ("name", Any),
            ("enforce", Any),
            ("algorithm", Any),
            ("capacity", Any),
            ("rate", Any),
            ("bucket_key", ListOf(&Expr)),
            ON_ERROR,
        ]),
    },
    ActionSpec {
        name: "jwt-validation",
        phases: &[REQ],
        terminating: false,
        config: Fields(&[
            ("issuer", ALLOW_LIST),
            ("audience", ALLOW_LIST),
            (
                "http",
                Fields(&[(
                    "tokens",
                    ListOf(&Fields(&[
                        ("type", Any),
                        ("method", Any),
                        ("name", Template),
                        ("prefix", Template),
                    ])),
                )]),
            ),
            (
                "jws",
                Fields(&[
                    ("allowed_algorithms", Any),
                    (
                        "keys",
                        Fields(&[
                            ("sources", Fields(&[("additional_jkus", ListOf(&Template))])),
                            ("identification", ListOf(&Fields(&[("token_claims", Any)]))),
                        ]),
                    ),
                ]),
            ),
            ("leeway", Any),
            ("enforce", Any),
        ]),
    },
    ActionSpec {
        name: "verify-webhook",
        phases: &[REQ],
        terminating: false,
        config: Fields(&[
            ("provider", Any),
            ("secret", Template),
            ("enforce", Any),
            ("replay_protection", Any),
            ("tolerance", Any),
            ("header", Any),
            ("algorithm", Any),
            ("encoding", Any),
            ("prefix", Any),
        ]),
    },
    ActionSpec {
        name: "owasp-crs-request",
        phases: &[REQ],
        terminating: false,
        config: WAF_CONFIG,
    },
    ActionSpec {
        name: "owasp-crs-response",
        phases: &[RES],
        terminating: false,
        config: WAF_CONFIG,
    },
    ActionSpec {
        name: "compress-response",
        // The action page says on_http_response; the hub adds on_http_request (CONFLICT §4.1).
        phases: &[REQ, RES],
        terminating: false,
        config: Fields(&[("algorithms", Any)]),
    },
    ActionSpec {
        name: "circuit-breaker",
        phases: &[REQ],
        terminating: false,
        config: Fields(&[
            ("error_threshold", Any),
            ("volume_threshold", Any),
            ("window_duration", Any),
            ("tripped_duration", Any),
            ("num_buckets", Any),
            ("enforce", Any),
        ]),
    },
    ActionSpec {
        name: "http-request",
        phases: &[REQ, RES],
        terminating: false,
        config: Fields(&[
            ("url", Template),
            ("method", Any),
            (
                "query_params",
                ListOf(&Fields(&[("key", Any), ("value", Template)])),
            ),
            ("headers", HEADERS),
            ("body", Template),
            ("timeout", Any),
            // Its variables (`attempts`, `last_attempt`) are the action's own: not checked here.
            ("retry_condition", Any),
            ("max_redirects", Any),
            ON_ERROR,
        ]),
    },
    ActionSpec {
        name: "oauth",
        phases: &[REQ],
        terminating: false,
        config: Fields(&[
            ("provider", Any),
            (OAUTH_COMMON[0], Any),
            (OAUTH_COMMON[1], Any),
            (OAUTH_COMMON[2], Any),
            (OAUTH_COMMON[3], Any),
            (OAUTH_COMMON[4], Any),
            (OAUTH_COMMON[5], Any),
            (OAUTH_COMMON[6], Any),
            (OAUTH_COMMON[7], Template),
            ("client_secret", Template),
            ("idle_session_timeout", Any),
        ]),
    },
    ActionSpec {
        name: "oidc",
        phases: &[REQ],
        terminating: false,
        config: OIDC,
    },
    ActionSpec {
        name: "openid-connect",
        phases: &[REQ],
        terminating: false,
        config: OIDC,
    },
    ActionSpec {
        name: "terminate-tls",
        phases: &[TCP],
        terminating: false,
        config: Fields(&[
            ("min_version", Any),
            ("max_version", Any),
            ("server_certificate", Template),
            ("server_private_key", Template),
            ("mutual_tls_certificate_authorities", ListOf(&Template)),
            ("mutual_tls_verification_strategy", Any),
        ]),
    },
    ActionSpec {
        name: "request-body-find-replace",
        phases: &[REQ],
        terminating: false,
        config: Fields(&[("replacements", REPLACEMENTS)]),
    },
    ActionSpec {
        name: "response-body-find-replace",
        phases: &[RES],
        terminating: false,
        config: Fields(&[("replacements", REPLACEMENTS)]),
    },
    ActionSpec {
        name: "sse-find-replace",
        phases: &[SSE],
        terminating: false,
        config: Fields(&[(
            "replacements",
            ListOf(&Fields(&[
                ("from", Template),
                ("to", Template),
                ("field", Any),
            ])),
        )]),
    },
    // Early access / separate product: no documented config to check.
    ActionSpec {
        name: "saml",
        phases: &[REQ],
        terminating: false,
        config: Any,
    },
    ActionSpec {
        name: "ai-gateway",
        phases: &[REQ],
        terminating: false,
        config: Any,
    },
];

const OIDC: ConfigShape = Fields(&[
    ("issuer_url", Any),
    (OAUTH_COMMON[0], Any),
    (OAUTH_COMMON[1], Any),
    (OAUTH_COMMON[2], Any),
    (OAUTH_COMMON[3], Any),
    (OAUTH_COMMON[4], Any),
    (OAUTH_COMMON[5], Any),
    (OAUTH_COMMON[6], Any),
    (OAUTH_COMMON[7], Template),
    ("client_secret", Template),
    ("idle_session_duration", Any),
]);

/// The entry for an action type.
pub fn find(name: &str) -> Option<&'static ActionSpec> {
    ACTIONS.iter().find(|a| a.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::{closest, edit_distance};

    #[test]
    fn distances_and_suggestions() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        let names = ACTIONS.iter().map(|a| a.name);
        assert_eq!(
            closest("forward-external", names.clone()),
            Some("forward-internal")
        );
        assert_eq!(
            closest("forwad-internal", names.clone()),
            Some("forward-internal")
        );
        assert_eq!(closest("rate-limits", names.clone()), Some("rate-limit"));
        assert_eq!(closest("Deny", names.clone()), Some("deny"));
        assert_eq!(closest("xyz", names), None);
    }

    #[test]
    fn every_action_is_listed_once() {
        for (i, a) in ACTIONS.iter().enumerate() {
            assert!(
                ACTIONS[..i].iter().all(|b| b.name != a.name),
                "{} twice",
                a.name
            );
        }
    }
}
