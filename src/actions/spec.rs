//! What an action type is, declared once in the action's own file ([`ActionType::SPEC`]): its
//! name, the phases it runs in, whether it ends the phase, its result variables and the shape
//! of its `config`. The enum [`Action`](super::Action), the table [`ACTIONS`], the validator and
//! the CEL schema's `actions.ngrok.*` are all derived from those declarations (`actions!` in
//! `actions/mod.rs`), so unknown fields, wrong phases and CEL in config strings are reported the
//! same way for every action, implemented here or not.

/// The shape of a config value, as far as validation needs it.
#[derive(Debug)]
pub enum ConfigShape {
    /// Anything: not looked into (scalars, enums, durations: the action checks them).
    Any,
    /// A string that may contain `${...}` interpolations.
    Interpolated,
    /// A bare CEL expression (`rate-limit.bucket_key` entries).
    Cel,
    /// A map with exactly these keys (all optional here: the action reports missing ones).
    Fields(&'static [(&'static str, ConfigShape)]),
    /// A map with free keys (header names, metadata) and values of one shape.
    MapOf(&'static ConfigShape),
    /// A list whose items have one shape.
    ListOf(&'static ConfigShape),
}

use super::ACTIONS;
use crate::error::GatewayError;
use crate::exchange::{Context, Exchange, Step};
use crate::source::{Diagnostics, Node};
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
    /// The compiled OWASP CRS the bundle carries (the checker's own when it carries none).
    pub crs: Option<&'a std::sync::Arc<crate::waf::RuleSet>>,
}

/// An action type this gateway runs: its declaration, its compile (once per policy version)
/// and its apply (once per request that reaches it).
pub trait ActionType: Sized {
    const SPEC: ActionSpec;

    /// Compiles the action's `config` (at `path`), reporting every problem; `None` when it
    /// cannot run.
    fn compile(config: Option<&Node>, path: String, cx: &mut Cx<'_>) -> Option<Self>;

    /// Whether the chain always stops after this action.
    fn terminates(&self) -> bool {
        Self::SPEC.terminating
    }

    /// Tells the action the name of its rule, known once the rule is compiled (`log` writes it).
    fn set_rule_name(&mut self, _name: Option<&str>) {}

    #[expect(
        async_fn_in_trait,
        reason = "single-threaded on wasm: no Send bound wanted"
    )]
    async fn apply<C: Context>(&self, ex: &mut Exchange, cx: &C) -> Result<Step, GatewayError>;
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
    /// Its result variables' key under `actions.ngrok` (dashes as underscores; §2.7), if any.
    pub results: Option<&'static str>,
    pub config: ConfigShape,
}

pub const HEADERS: ConfigShape = MapOf(&Interpolated);
pub const ON_ERROR: (&str, ConfigShape) = ("on_error", Any);
pub const ALLOW_LIST: ConfigShape =
    Fields(&[("allow_list", ListOf(&Fields(&[("value", Interpolated)])))]);
pub const REPLACEMENTS: ConfigShape =
    ListOf(&Fields(&[("from", Interpolated), ("to", Interpolated)]));
/// `owasp-crs-*`: ngrok's three keys, then ours (docs/waf.md).
pub const WAF_CONFIG: ConfigShape = Fields(&[
    ON_ERROR,
    ("process_body", Any),
    ("exclude_rule_ids", ListOf(&Any)),
    ("paranoia_level", Any),
    ("anomaly_score_threshold", Any),
    ("body_limit", Any),
    ("max_steps", Any),
    ("on_budget_exceeded", Any),
]);
pub const OAUTH_COMMON: [&str; 8] = [
    "auth_id",
    "scopes",
    "authz_url_params",
    "max_session_duration",
    "userinfo_refresh_interval",
    "allow_cors_preflight",
    "auth_cookie_domain",
    "client_id",
];

/// The entry for an action type.
pub fn find(name: &str) -> Option<&'static ActionSpec> {
    ACTIONS.iter().copied().find(|a| a.name == name)
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
