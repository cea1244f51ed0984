//! Every problem in `tests/compile_errors.yaml` is reported with its code, line, column and path.

mod support;

use edge_gateway::files;
use edge_gateway::manifest::{build_gateway, Options};
use edge_gateway::source::{parse_yaml_documents, Node, Value};

fn matches(want: &str, got: &(String, String, String, String)) -> bool {
    let w: Vec<&str> = want.splitn(4, ' ').collect();
    w[0] == got.0
        && w[1] == got.1
        && (w[2] == "*" || w[2] == got.2)
        && (w[3] == "*" || w[3] == got.3)
}

#[test]
fn diagnostics_have_code_position_and_path() {
    let text =
        std::fs::read_to_string(support::scenario::repo_root().join("tests/compile_errors.yaml"))
            .unwrap();
    let doc = parse_yaml_documents(&text).unwrap().remove(0);
    let dir = std::env::temp_dir().join(format!("eg-compile-errors-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut failures = Vec::new();
    let cases = doc.get("cases").and_then(Node::as_seq).unwrap();
    for (i, case) in cases.iter().enumerate() {
        let name = case.get("name").and_then(Node::as_str).unwrap();
        let file = dir.join(format!("case{i}.yaml"));
        std::fs::write(&file, case.get("source").and_then(Node::as_str).unwrap()).unwrap();
        let strict = case
            .get("strict")
            .is_some_and(|v| v.value == Value::Bool(true));
        let (docs, mut diags) = files::load(std::slice::from_ref(&file));
        diags.extend(build_gateway(&docs, Options { strict }, "t").1);
        let got: Vec<_> = diags.iter().map(support::diag::parts).collect();
        for d in diags
            .iter()
            .filter(|d| !d.path.is_empty() || d.pos.is_some())
        {
            assert_eq!(
                d.file.as_deref(),
                Some(file.to_str().unwrap()),
                "{name}: a diagnostic names its file: {d}"
            );
        }
        let want: Vec<&str> = case
            .get("expect")
            .and_then(Node::as_seq)
            .unwrap()
            .iter()
            .filter_map(Node::as_str)
            .collect();
        let missing: Vec<_> = want
            .iter()
            .filter(|w| !got.iter().any(|g| matches(w, g)))
            .collect();
        let extra: Vec<_> = got
            .iter()
            .filter(|g| !want.iter().any(|w| matches(w, g)))
            .collect();
        if !missing.is_empty() || !extra.is_empty() {
            failures.push(format!(
                "{name}:\n  missing {missing:?}\n  unexpected {extra:?}"
            ));
        }
    }
    std::fs::remove_dir_all(&dir).ok();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_referenced_policy_is_reported_in_its_own_file() {
    let dir = std::env::temp_dir().join(format!("eg-ref-policy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let endpoint = dir.join("endpoint.yaml");
    let policy = dir.join("policy.yaml");
    std::fs::write(
        &endpoint,
        "apiVersion: ngrok.k8s.ngrok.com/v1alpha1\nkind: CloudEndpoint\nmetadata: {name: c}\n\
         spec:\n  url: https://api.example.com\n  trafficPolicy: {targetRef: {name: shared}}\n",
    )
    .unwrap();
    std::fs::write(
        &policy,
        "apiVersion: ngrok.k8s.ngrok.com/v1alpha1\nkind: NgrokTrafficPolicy\nmetadata: {name: shared}\n\
         spec:\n  policy:\n    on_http_request:\n      - actions:\n          - type: not-an-action\n",
    )
    .unwrap();
    let (docs, _) = files::load(&[endpoint, policy.clone()]);
    let (gw, diags) = build_gateway(&docs, Options::default(), "t");
    std::fs::remove_dir_all(&dir).ok();
    assert!(gw.is_none());
    let d = diags
        .iter()
        .find(|d| d.code == Some("ERR_NGROK_2201"))
        .expect("the bad action is reported");
    assert_eq!(d.file.as_deref(), Some(policy.to_str().unwrap()), "{d}");
    assert_eq!(d.pos.map(|p| p.line), Some(8), "{d}");
}
