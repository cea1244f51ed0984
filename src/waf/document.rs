//! The compiled rule set as a bundle document (`kind: CoreRuleSet`), beside the policies that
//! use it, the way IP-intelligence lists travel:
//!
//! ```yaml
//! apiVersion: edge-gateway.dev/v1
//! kind: CoreRuleSet
//! metadata: {name: owasp-crs}
//! spec:
//!   version: OWASP_CRS/4.28.0-dev       # for people and logs
//!   program: '{"format":1,...}'         # waf::program::Program as JSON text
//! ```
//!
//! The program is JSON text inside the document, not a YAML tree: the Worker parses it once,
//! straight into the typed program, without building a document tree of ~10,000 nodes first.

use super::program::{Program, FORMAT};
use super::RuleSet;
use crate::source::{At, Diagnostics, Node};
use std::sync::Arc;

pub const KIND: &str = "CoreRuleSet";
pub const API_VERSION: &str = "edge-gateway.dev/v1";

/// Reads a `CoreRuleSet` document into a rule set ready to run.
pub fn read(doc: &Node, d: &mut Diagnostics) -> Option<Arc<RuleSet>> {
    let Some(text) = doc
        .get("spec")
        .and_then(|s| s.get("program"))
        .and_then(Node::as_str)
    else {
        d.error(
            None,
            At::new("spec", doc),
            "a CoreRuleSet document needs `spec.program` (made by `policy-check bundle`)",
        );
        return None;
    };
    let program: Program = match serde_json::from_str(text) {
        Ok(p) => p,
        Err(e) => {
            d.error(
                None,
                At::new("spec.program", doc),
                format!("not a compiled rule set: {e}"),
            );
            return None;
        }
    };
    if program.format != FORMAT {
        d.error(
            None,
            At::new("spec.program", doc),
            format!(
                "rule-set format {} is not this gateway's {FORMAT}: bundle it again with this version's policy-check",
                program.format
            ),
        );
        return None;
    }
    Some(Arc::new(RuleSet::new(program)))
}

/// The document for a compiled program (what `policy-check` adds to a bundle).
pub fn document(program: &Program) -> serde_json::Value {
    serde_json::json!({
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": "owasp-crs"},
        "spec": {
            "version": program.crs_version,
            "program": serde_json::to_string(program).unwrap_or_default(),
        }
    })
}
