//! What the benches and tests/waf_body_prefix.rs, which run requests through `Gateway::handle`,
//! share: a gateway built from a YAML text as the upload tool would build it, and randomness that
//! always picks the first.

use edge_gateway::gateway::{Gateway, Random};
use edge_gateway::manifest::{build_gateway, Options, SourceDoc};

/// The gateway for `yaml` (one or more documents); panics with the diagnostics.
pub fn gateway_from_yaml(yaml: &str) -> Gateway {
    let docs: Vec<SourceDoc> = edge_gateway::source::parse_yaml_documents(yaml)
        .unwrap()
        .into_iter()
        .map(|node| SourceDoc {
            file: "bench.yaml".into(),
            node,
        })
        .collect();
    let (gw, diags) = build_gateway(&docs, Options::default(), "bench");
    gw.unwrap_or_else(|| panic!("{diags:?}"))
}

/// Always the first member or choice.
pub struct First;
impl Random for First {
    fn below(&mut self, _: usize) -> usize {
        0
    }
}
