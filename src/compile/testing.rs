//! What unit tests share to compile a policy (the dispatch index's, the made-up action's).

use super::{compile_policy, EndpointKind};
use crate::actions::Cx;
use crate::source::Diagnostics;
use std::collections::HashSet;

/// Compiles a policy document as an endpoint of `kind` with no internal endpoints declared:
/// the policy, when it compiled, and every diagnostic.
pub(crate) fn compile_node(
    policy: &crate::source::Node,
    kind: EndpointKind,
) -> (Option<crate::program::Policy>, Diagnostics) {
    let mut diags = Diagnostics::default();
    let internal = HashSet::new();
    let mut cx = Cx {
        diags: &mut diags,
        strict: false,
        internal: &internal,
        endpoint: "t",
        crs: Some(crate::waf::vendored_rule_set()),
    };
    let compiled = compile_policy(policy, "policy", kind, &mut cx);
    (compiled, diags)
}

/// [`compile_node`] for a JSON document.
pub(crate) fn compile_json(
    policy: &serde_json::Value,
    kind: EndpointKind,
) -> (Option<crate::program::Policy>, Diagnostics) {
    compile_node(&crate::source::from_json(policy), kind)
}
