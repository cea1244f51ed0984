//! The shipped policies: the Acme gateway compiles cleanly; ngrok's published seed policies load
//! with `ERR_NGROK_9026` warnings and are rejected under `--strict`.

mod support;

use edge_gateway::files;
use edge_gateway::manifest::{build_gateway, Options};
use edge_gateway::source::{Diagnostic, Severity};
use std::path::PathBuf;

fn check(paths: &[&str], strict: bool) -> (bool, Vec<Diagnostic>) {
    let root = support::scenario::repo_root();
    let paths: Vec<PathBuf> = paths.iter().map(|p| root.join(p)).collect();
    let (docs, mut diags) = files::load(&files::expand(&paths).unwrap());
    let (gw, more) = build_gateway(&docs, Options { strict }, "t");
    diags.extend(more);
    (gw.is_some(), diags)
}

const AGENTS: [&str; 2] = ["policies/acme/eks.yaml", "policies/acme/gke.yaml"];

#[test]
fn acme_compiles_with_only_the_guides_rate_warning() {
    let (ok, diags) = check(&["policies/acme"], false);
    assert!(ok, "{diags:#?}");
    let codes: Vec<_> = diags.iter().map(|d| (d.severity, d.code)).collect();
    assert_eq!(
        codes,
        vec![(Severity::Warning, Some("ERR_NGROK_2215"))],
        "{diags:#?}"
    );
    let (ok, diags) = check(&["policies/acme"], true);
    assert!(!ok, "--strict refuses the guide's `rate: 1s`");
    assert!(
        diags.iter().all(|d| d.code == Some("ERR_NGROK_2215")),
        "{diags:#?}"
    );
}

#[test]
fn acme_declares_four_pools_of_two() {
    let root = support::scenario::repo_root();
    let (docs, _) = files::load(&files::expand(&[root.join("policies/acme")]).unwrap());
    let gw = build_gateway(&docs, Options::default(), "t").0.unwrap();
    let mut pools: Vec<(String, usize)> = gw
        .pools
        .values()
        .map(|p| (p.url.clone(), p.members.len()))
        .collect();
    pools.sort();
    let want = ["catalog-eks", "inventory-gke", "orders-eks", "webhook-gke"];
    assert_eq!(
        pools,
        want.map(|n| (format!("https://{n}.internal"), 2)).to_vec()
    );
}

#[test]
fn seed_policies_load_with_warnings_and_strict_rejects_them() {
    for seed in [
        "policies/reference/multicloud-routing.yaml",
        "policies/reference/multicloud-full.yaml",
    ] {
        let paths = [seed, AGENTS[0], AGENTS[1]];
        let (ok, diags) = check(&paths, false);
        assert!(ok, "{seed} must load: {diags:#?}");
        let normalised = diags
            .iter()
            .filter(|d| d.code == Some("ERR_NGROK_9026"))
            .count();
        assert!(normalised >= 1, "{seed}: a 9026 warning is expected");
        assert!(
            diags.iter().all(|d| d.severity == Severity::Warning),
            "{diags:#?}"
        );

        let (ok, diags) = check(&paths, true);
        assert!(!ok, "{seed} must be rejected under --strict");
        let first = diags
            .iter()
            .find(|d| d.severity == Severity::Error)
            .unwrap();
        assert_eq!(first.code, Some("ERR_NGROK_9026"));
        assert!(
            first
                .message
                .contains("received invalid value of type 'map' for traffic policy rule array"),
            "{first}"
        );
        assert_eq!(first.pos.map(|p| p.line), Some(2));
    }
}

#[test]
fn full_seed_policy_normalises_into_the_canonical_rules() {
    let paths = [
        "policies/reference/multicloud-full.yaml",
        AGENTS[0],
        AGENTS[1],
    ];
    let root = support::scenario::repo_root();
    let paths: Vec<PathBuf> = paths.iter().map(|p| root.join(p)).collect();
    let (docs, _) = files::load(&files::expand(&paths).unwrap());
    let gw = build_gateway(&docs, Options::default(), "t").0.unwrap();
    let policy = &gw.public[0].policy;
    // §1.5: [rate-limit, owasp] / [deny if category] / [forward-internal]; response: [owasp].
    let shape: Vec<(usize, usize)> = policy
        .on_http_request
        .iter()
        .map(|r| (r.expressions.len(), r.actions.len()))
        .collect();
    assert_eq!(shape, vec![(0, 2), (1, 1), (0, 1)]);
    assert_eq!(policy.on_http_response.len(), 1);
}

/// The shipped IP-intelligence lists load beside the Acme gateway without a new diagnostic, and
/// a bad range in such a list is an error that names its place.
#[test]
fn ip_intelligence_lists_load_and_bad_ranges_are_errors() {
    let (ok, diags) = check(&["policies/acme", "policies/ip-intel"], false);
    assert!(ok, "{diags:#?}");
    assert!(
        diags.iter().all(|d| d.code == Some("ERR_NGROK_2215")),
        "{diags:#?}"
    );
    let yaml = "apiVersion: edge-gateway.dev/v1\nkind: IPIntelligence\nmetadata: {name: x}\nspec:\n  ranges:\n    - category: com.example\n      cidrs: [10.0.0.0/8, 10.0.0.300/32]\n---\non_http_request:\n  - actions: [{type: deny}]\n";
    let docs: Vec<_> = edge_gateway::source::parse_yaml_documents(yaml)
        .unwrap()
        .into_iter()
        .map(|node| edge_gateway::manifest::SourceDoc {
            file: "intel.yaml".into(),
            node,
        })
        .collect();
    let (gw, diags) = build_gateway(&docs, Options::default(), "t");
    assert!(gw.is_none());
    assert!(
        diags.iter().any(|d| d.severity == Severity::Error
            && d.path == "spec.ranges[0].cidrs[1]"
            && d.message.contains("10.0.0.300/32")),
        "{diags:#?}"
    );
}
