//! Snapshot tests of the rendered diagnostics: each `tests/diagnostics/NAME.yaml` is checked as
//! `policy-check check` would, and its rendered output must equal `NAME.out`.
//! `UPDATE_SNAPSHOTS=1 cargo test --test diagnostics` rewrites the `.out` files.

mod support;

use edge_gateway::compile::render::{self, Sources};
use edge_gateway::files;
use edge_gateway::manifest::{build_gateway, Options};

fn rendered(root: &std::path::Path, file: &std::path::Path) -> String {
    let (docs, mut diags) = files::load(&[file.to_path_buf()]);
    diags.extend(build_gateway(&docs, Options::default(), "t").1);
    render::sort(&mut diags);
    let mut sources = Sources::default();
    let mut out = String::new();
    for d in &diags {
        out.push_str(&render::render(d, &mut sources));
        out.push('\n');
    }
    let prefix = format!("{}/", root.display());
    out.replace(&prefix, "")
}

#[test]
fn rendered_diagnostics_match_the_snapshots() {
    let root = support::scenario::repo_root();
    let dir = root.join("tests/diagnostics");
    let update = std::env::var_os("UPDATE_SNAPSHOTS").is_some_and(|v| v == "1");
    let mut inputs: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    inputs.sort();
    assert!(!inputs.is_empty(), "no inputs in {}", dir.display());
    let mut failures = Vec::new();
    for input in &inputs {
        let got = rendered(&root, input);
        let out = input.with_extension("out");
        if update {
            std::fs::write(&out, &got).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&out).unwrap_or_default();
        if got != want {
            failures.push(format!(
                "{}: rendered output differs from {} (UPDATE_SNAPSHOTS=1 regenerates)\n--- got\n{got}--- want\n{want}",
                input.display(),
                out.display()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn json_output_has_positions_and_hints() {
    let root = support::scenario::repo_root();
    let file = root.join("tests/diagnostics/many-problems.yaml");
    let (docs, mut diags) = files::load(std::slice::from_ref(&file));
    diags.extend(build_gateway(&docs, Options::default(), "t").1);
    let mut sources = Sources::default();
    let typo = diags
        .iter()
        .find(|d| d.code == Some("ERR_NGROK_2201"))
        .expect("the misspelt action is reported");
    let j = render::to_json(typo, &mut sources);
    assert_eq!(j["severity"], "error");
    assert!(
        j["line"].as_u64().is_some() && j["column"].as_u64().is_some(),
        "{j}"
    );
    assert!(j["end_column"].as_u64() > j["column"].as_u64(), "{j}");
    assert!(
        j["hint"]
            .as_str()
            .is_some_and(|h| h.contains("forward-internal")),
        "{j}"
    );
}
