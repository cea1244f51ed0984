//! Scenario files (`tests/scenarios/*.yaml`): documents + requests + expected outcomes, read by
//! the native scenario tests, the end-to-end tests against `wrangler dev`, and the benchmarks.
//!
//! ```yaml
//! files: [policies/acme]            # documents from the repository, and/or
//! documents: [ {kind: ...}, ... ]   # inline documents
//! cases:
//!   - name: routes catalog
//!     e2e: false                    # optional: native only (default true when files-only)
//!     at_ms: 60000                  # optional: the rate limiter's clock (native runs)
//!     limiter: down                 # optional: the rate limiter is unreachable (native runs)
//!     request: {method: GET, url: https://api.acme.example/items, client_ip: 203.0.113.9,
//!               headers: {X-Acme-Api: catalog-eks}, body: ""}
//!     expect:
//!       status: 200
//!       forwarded_to: catalog-eks   # the pool host (demo origin: `api-cluster`)
//!       error_code: ERR_NGROK_3200  # ngrok-error-code response header
//!       headers: {x-acme-api: catalog-eks}     # response headers (exact value)
//!       absent_headers: [x-demo-origin]        # response headers that must be missing
//!       upstream_headers: {x-acme-gateway: edge-gateway}   # headers the origin received
//!       upstream_absent_headers: [x-acme-internal-debug]
//!       body_contains: missing_routing_header
//! ```
#![allow(dead_code)] // each test binary uses a different part

use edge_gateway::manifest::SourceDoc;
use edge_gateway::source::{parse_yaml_documents, Node, Value};
use std::path::{Path, PathBuf};

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[derive(Debug, Clone)]
pub struct Scenario {
    pub file: String,
    pub files: Vec<PathBuf>,
    pub documents: Vec<Node>,
    /// `secrets: {"vault/name": value}`: what the Worker's secrets would hold.
    pub secrets: Vec<((String, String), String)>,
    pub cases: Vec<Case>,
}

#[derive(Debug, Clone)]
pub struct Case {
    pub name: String,
    pub e2e: bool,
    pub method: String,
    pub url: String,
    pub client_ip: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// The limiter's clock for this case (ms); cases without it keep the previous time.
    pub at_ms: Option<u64>,
    /// `limiter: down`: the rate limiter cannot be reached.
    pub limiter_down: bool,
    pub expect: Expect,
}

#[derive(Debug, Clone, Default)]
pub struct Expect {
    pub status: u16,
    pub forwarded_to: Option<String>,
    pub error_code: Option<String>,
    pub headers: Vec<(String, String)>,
    pub absent_headers: Vec<String>,
    pub upstream_headers: Vec<(String, String)>,
    pub upstream_absent_headers: Vec<String>,
    pub body_contains: Option<String>,
}

fn s(n: &Node) -> String {
    match &n.value {
        Value::Str(s) => s.clone(),
        Value::Int(i) => i.to_string(),
        Value::Bool(b) => b.to_string(),
        other => panic!("expected a scalar, got {other:?}"),
    }
}

fn pairs(n: Option<&Node>) -> Vec<(String, String)> {
    n.and_then(Node::as_map)
        .map(|m| m.iter().map(|(k, v)| (k.clone(), s(v))).collect())
        .unwrap_or_default()
}

fn list(n: Option<&Node>) -> Vec<String> {
    n.and_then(Node::as_seq)
        .map(|l| l.iter().map(s).collect())
        .unwrap_or_default()
}

pub fn load_all() -> Vec<Scenario> {
    let dir = repo_root().join("tests/scenarios");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/scenarios exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    paths.sort();
    paths.iter().map(|p| load(p)).collect()
}

pub fn load(path: &Path) -> Scenario {
    let text = std::fs::read_to_string(path).unwrap();
    let doc = parse_yaml_documents(&text).unwrap().remove(0);
    let files: Vec<PathBuf> = list(doc.get("files"))
        .iter()
        .map(|f| repo_root().join(f))
        .collect();
    let documents = doc
        .get("documents")
        .and_then(Node::as_seq)
        .map(<[Node]>::to_vec)
        .unwrap_or_default();
    let inline = !documents.is_empty();
    let cases = doc
        .get("cases")
        .and_then(Node::as_seq)
        .expect("a scenario has cases")
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let req = c.get("request").expect("case.request");
            let exp = c.get("expect").expect("case.expect");
            Case {
                name: s(c.get("name").expect("case.name")),
                e2e: c
                    .get("e2e")
                    .map_or(!inline, |v| v.value == Value::Bool(true)),
                method: req.get("method").map_or("GET".into(), s),
                url: req.get("url").map_or("https://api.acme.example/".into(), s),
                // Each case is its own client unless it says otherwise (rate limits are per address).
                client_ip: req
                    .get("client_ip")
                    .map_or(format!("203.0.113.{}", i + 1), s),
                headers: pairs(req.get("headers")),
                body: req.get("body").map_or(String::new(), s),
                at_ms: c.get("at_ms").map(|v| s(v).parse().unwrap()),
                limiter_down: c.get("limiter").is_some_and(|v| s(v) == "down"),
                expect: Expect {
                    status: s(exp.get("status").expect("expect.status"))
                        .parse()
                        .unwrap(),
                    forwarded_to: exp.get("forwarded_to").map(s),
                    error_code: exp.get("error_code").map(s),
                    headers: pairs(exp.get("headers")),
                    absent_headers: list(exp.get("absent_headers")),
                    upstream_headers: pairs(exp.get("upstream_headers")),
                    upstream_absent_headers: list(exp.get("upstream_absent_headers")),
                    body_contains: exp.get("body_contains").map(s),
                },
            }
        })
        .collect();
    let secrets = pairs(doc.get("secrets"))
        .into_iter()
        .map(|(k, v)| {
            let (vault, name) = k.split_once('/').expect("secrets are keyed vault/name");
            ((vault.to_string(), name.to_string()), v)
        })
        .collect();
    Scenario {
        file: path.display().to_string(),
        files,
        documents,
        secrets,
        cases,
    }
}

impl Scenario {
    /// The scenario's documents, from files and inline, as the compiler takes them.
    pub fn source_docs(&self) -> Vec<SourceDoc> {
        let files = edge_gateway::files::expand(&self.files).unwrap();
        let (mut docs, diags) = edge_gateway::files::load(&files);
        assert!(diags.is_empty(), "{diags:?}");
        docs.extend(self.documents.iter().map(|n| SourceDoc {
            file: self.file.clone(),
            node: n.clone(),
        }));
        docs
    }
}

/// What one run of a case observed. The native run fills it from the recording fake upstream,
/// the end-to-end run from the live Worker and the demo origin's echo; both check it the same way.
#[derive(Debug, Default)]
pub struct Observed {
    pub status: u16,
    /// Response headers (names compared case-insensitively).
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// The pool the request reached (`catalog-eks`), when it reached one.
    pub forwarded_to: Option<String>,
    /// The headers the origin received, when a request reached one.
    pub upstream_headers: Option<Vec<(String, String)>>,
}

fn lookup<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

impl Expect {
    /// Every way `seen` differs from this expectation, or `Ok` when none.
    pub fn check(&self, seen: &Observed) -> Result<(), String> {
        let mut problems = Vec::new();
        if seen.status != self.status {
            problems.push(format!(
                "status {} (want {}), body {}",
                seen.status, self.status, seen.body
            ));
        }
        match (&self.forwarded_to, &seen.forwarded_to) {
            (Some(want), Some(got)) if want != got => {
                problems.push(format!("reached {got}, want {want}"))
            }
            (Some(want), None) => problems.push(format!("nothing forwarded, want {want}")),
            (None, Some(got)) if self.status != 502 => {
                problems.push(format!("unexpected forward to {got}"))
            }
            _ => {}
        }
        if let Some(code) = &self.error_code {
            let got = lookup(&seen.headers, "ngrok-error-code");
            if got != Some(code) {
                problems.push(format!("ngrok-error-code {got:?}, want {code}"));
            }
        }
        for (k, v) in &self.headers {
            let got = lookup(&seen.headers, k);
            if got != Some(v.as_str()) {
                problems.push(format!("response header {k}: {got:?}, want {v}"));
            }
        }
        for k in &self.absent_headers {
            if lookup(&seen.headers, k).is_some() {
                problems.push(format!("response header {k} must be absent"));
            }
        }
        let upstream = seen.upstream_headers.as_deref();
        for (k, v) in &self.upstream_headers {
            let got = upstream.and_then(|h| lookup(h, k));
            if got != Some(v.as_str()) {
                problems.push(format!("upstream header {k}: {got:?}, want {v}"));
            }
        }
        for k in &self.upstream_absent_headers {
            if upstream.and_then(|h| lookup(h, k)).is_some() {
                problems.push(format!("upstream header {k} must be absent"));
            }
        }
        if let Some(want) = &self.body_contains {
            if !seen.body.contains(want.as_str()) {
                problems.push(format!("body {:?} lacks {want:?}", seen.body));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }
}
