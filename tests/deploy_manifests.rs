//! `deploy/<cluster>/cloudflared.yaml` are what `policy-check deploy` makes from policies/acme:
//! this fails while a committed manifest is stale, and checks what the manifests promise (two
//! connectors, every AgentEndpoint's hostname published, nothing else reachable).

mod support;

use edge_gateway::source::{parse_yaml_documents, Node};

#[test]
fn committed_tunnel_manifests_match_the_agent_endpoints() {
    let root = support::scenario::repo_root();
    let files = edge_gateway::files::expand(&[root.join("policies/acme")]).unwrap();
    let (docs, diags) = edge_gateway::files::load(&files);
    assert!(diags.is_empty(), "{diags:?}");
    let clusters = edge_gateway::deploy::routes(&docs).unwrap();
    assert_eq!(
        clusters.keys().collect::<Vec<_>>(),
        ["eks", "gke"],
        "one tunnel per cluster"
    );
    for (cluster, routes) in &clusters {
        let path = root.join("deploy").join(cluster).join("cloudflared.yaml");
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        let generated = edge_gateway::deploy::cloudflared(cluster, routes);
        assert!(
            committed == generated,
            "{} is stale: run `cargo run --bin policy-check -- deploy --out deploy policies/acme`",
            path.display()
        );
        let manifests = parse_yaml_documents(&committed).unwrap();
        let kind = |k: &str| {
            manifests
                .iter()
                .find(|m| m.get("kind").and_then(Node::as_str) == Some(k))
                .unwrap_or_else(|| panic!("{cluster}: no {k}"))
        };
        let replicas = kind("Deployment")
            .get("spec")
            .and_then(|s| s.get("replicas"));
        assert_eq!(
            replicas.map(|r| r.value.clone()),
            Some(edge_gateway::source::Value::Int(2))
        );
        let config = kind("ConfigMap")
            .get("data")
            .and_then(|d| d.get("config.yaml"))
            .and_then(Node::as_str)
            .unwrap();
        let config = parse_yaml_documents(config).unwrap().remove(0);
        let ingress = config.get("ingress").and_then(Node::as_seq).unwrap();
        assert_eq!(ingress.len(), routes.len() + 1);
        for (rule, route) in ingress.iter().zip(routes) {
            assert_eq!(
                rule.get("hostname").and_then(Node::as_str),
                Some(route.hostname.as_str())
            );
            assert_eq!(
                rule.get("service").and_then(Node::as_str),
                Some(route.service.as_str())
            );
        }
        let last = ingress.last().unwrap();
        assert!(last.get("hostname").is_none(), "the catch-all comes last");
        assert_eq!(
            last.get("service").and_then(Node::as_str),
            Some("http_status:404")
        );
    }
}
