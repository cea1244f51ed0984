//! Reading policy and manifest files from disk (native tooling and tests only).

use crate::manifest::SourceDoc;
use crate::source::{from_json, parse_yaml_documents, Pos};
use crate::source::{Diagnostic, Severity};
use std::path::{Path, PathBuf};

/// Expands files and directories (recursively: `*.yaml`, `*.yml`, `*.json`) in a stable order.
pub fn expand(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut found = Vec::new();
            walk(p, &mut found).map_err(|e| format!("{}: {e}", p.display()))?;
            found.sort();
            if found.is_empty() {
                return Err(format!("{}: no .yaml, .yml or .json files", p.display()));
            }
            out.extend(found);
        } else if p.is_file() {
            out.push(p.clone());
        } else {
            return Err(format!("{}: no such file or directory", p.display()));
        }
    }
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            walk(&path, out)?;
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml" | "json")
        ) {
            out.push(path);
        }
    }
    Ok(())
}

/// Reads every document of every file; syntax errors come back as diagnostics.
pub fn load(files: &[PathBuf]) -> (Vec<SourceDoc>, Vec<Diagnostic>) {
    let mut docs = Vec::new();
    let mut diags = Vec::new();
    for path in files {
        let file = path.display().to_string();
        let problem = |pos: Option<Pos>, message: String| Diagnostic {
            severity: Severity::Error,
            code: Some("ERR_NGROK_2236"),
            file: Some(file.clone()),
            pos,
            path: String::new(),
            message,
            hint: None,
            span: None,
        };
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => {
                diags.push(problem(None, format!("cannot read: {e}")));
                continue;
            }
        };
        let parsed = if path.extension().and_then(|e| e.to_str()) == Some("json") {
            serde_json::from_str::<serde_json::Value>(&text)
                .map(|v| vec![from_json(&v)])
                .map_err(|e| {
                    let pos = Pos {
                        line: e.line() as u32,
                        col: e.column() as u32,
                    };
                    problem(Some(pos), format!("invalid JSON: {e}"))
                })
        } else {
            parse_yaml_documents(&text)
                .map_err(|e| problem(Some(e.pos), format!("invalid YAML: {}", e.message)))
        };
        match parsed {
            Ok(nodes) => docs.extend(nodes.into_iter().map(|node| SourceDoc {
                file: file.clone(),
                node,
            })),
            Err(d) => diags.push(d),
        }
    }
    (docs, diags)
}

/// The IP-intelligence list every bundle carries unless the user gives one: the providers'
/// published ranges as `policies/ip-intel/` keeps them (refreshed with `ip-intel`,
/// docs/ip-intelligence.md), embedded when policy-check is built. `examples.yaml` there is not
/// part of it: its documentation ranges only show the shape of a blocklist and a Tor list.
pub const SHIPPED_IP_INTEL: &[(&str, &str)] = &[(
    "policies/ip-intel/openai.yaml",
    include_str!("../policies/ip-intel/openai.yaml"),
)];

/// Where a bundle's IP-intelligence list came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IpIntelList {
    /// The inputs had `kind: IPIntelligence` documents: they replace the shipped list.
    Given,
    /// The shipped list was added.
    Shipped,
    /// Left out on request (`--no-ip-intel`).
    None,
}

/// Adds the shipped IP-intelligence list to `docs` unless they carry their own or `opt_out`.
pub fn with_ip_intel(docs: &mut Vec<SourceDoc>, opt_out: bool) -> IpIntelList {
    let given = docs.iter().any(|d| {
        d.node.get("kind").and_then(crate::source::Node::as_str) == Some(crate::ipintel::KIND)
    });
    if given {
        return IpIntelList::Given;
    }
    if opt_out {
        return IpIntelList::None;
    }
    for (file, text) in SHIPPED_IP_INTEL {
        // Embedded from files the tests load: they parse.
        let nodes = parse_yaml_documents(text).unwrap_or_default();
        docs.extend(nodes.into_iter().map(|node| SourceDoc {
            file: (*file).to_string(),
            node,
        }));
    }
    IpIntelList::Shipped
}

/// Where a bundle's Core Rule Set came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrsInBundle {
    /// The inputs had a `kind: CoreRuleSet` document.
    Given,
    /// A policy uses `owasp-crs-request`/`-response`: the vendored rule set (`crs/`), compiled.
    Vendored,
    /// No policy uses the WAF: the bundle stays small.
    NotNeeded,
}

/// Adds the compiled vendored Core Rule Set to `docs` when a policy runs the WAF and the inputs
/// carry none: the Worker has no SecLang parser, it runs what the bundle brings.
#[cfg(not(target_arch = "wasm32"))]
pub fn with_crs(docs: &mut Vec<SourceDoc>) -> CrsInBundle {
    let given = docs.iter().any(|d| {
        d.node.get("kind").and_then(crate::source::Node::as_str) == Some(crate::waf::document::KIND)
    });
    if given {
        return CrsInBundle::Given;
    }
    let uses_waf = docs
        .iter()
        .any(|d| d.node.to_json().to_string().contains("\"owasp-crs-"));
    if !uses_waf {
        return CrsInBundle::NotNeeded;
    }
    let program = crate::waf::vendored_rule_set().program();
    docs.push(SourceDoc {
        file: format!("crs/ ({})", program.crs_version),
        node: crate::source::from_json(&crate::waf::document::document(program)),
    });
    CrsInBundle::Vendored
}
