//! Scenario files (`tests/scenarios/*.yaml`): documents + requests + expected outcomes, read by
//! the native scenario tests, the end-to-end tests against `wrangler dev`, and the benchmarks.
//!
//! ```yaml
//! page: https://ngrok.com/docs/...  # optional: the page the cases come from (tests/scenarios/
//!                                   # ngrok-docs/ requires one, here or per case)
//! e2e: true                        # optional: the cases' default for `e2e` (below)
//! files: [policies/acme]            # documents from the repository, and/or
//! documents: [ {kind: ...}, ... ]   # inline documents
//! cases:
//!   - name: routes catalog
//!     page: https://ngrok.com/docs/...#anchor   # optional: overrides the file's page
//!     e2e: false                    # optional: native only (default: the file's `e2e`, else
//!                                   # true when files-only)
//!     repeat: 30                    # optional: sent this many times, each meeting `expect`
//!     at_ms: 60000                  # optional: the rate limiter's clock (native runs)
//!     limiter: down                 # optional: the rate limiter is unreachable (native runs)
//!     request: {method: GET, url: https://api.acme.example/items, client_ip: 203.0.113.9,
//!               headers: {X-Acme-Api: catalog-eks}, body: "",
//!               cf: {colo: FRA, asn: 3320}}   # optional: Cloudflare's request.cf (native runs)
//!     expect:
//!       status: 200
//!       forwarded_to: catalog-eks   # the pool host (demo origin: `api-cluster`)
//!       error_code: ERR_NGROK_3200  # ngrok-error-code response header
//!       headers: {x-acme-api: catalog-eks}     # response headers (exact value)
//!       absent_headers: [x-demo-origin]        # response headers that must be missing
//!       upstream_headers: {x-acme-gateway: edge-gateway}   # headers the origin received
//!       upstream_absent_headers: [x-acme-internal-debug]
//!       body_contains: missing_routing_header
//!       upstream_uri: /v2/items?a=1           # the path and query the origin was asked for
//!       log_contains: '"rule":"audit"'         # a line the shell would log (native runs)
//!       aborted: true                          # the body aborts (close-connection)
//! ```
//!
//! A file may hold several scenarios, one per YAML document (`---`): each is compiled and run on
//! its own, as one upload (`load` reads the first; the directory loaders read them all).
#![allow(dead_code, reason = "each test binary uses a different part")]

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
    /// `jwks: {URL: [kid, ...] | down}`: what the identity provider serves at first.
    pub jwks: Vec<(String, Option<Vec<String>>)>,
    /// `tokens: {NAME: {key, alg, header, claims}}`: minted per case with the dev keys; a
    /// request header holding `{{token NAME}}` gets one. Claim strings `now`, `now+N`, `now-N`
    /// are seconds relative to the case's clock.
    pub tokens: Vec<(String, serde_json::Value)>,
    pub cases: Vec<Case>,
}

#[derive(Debug, Clone)]
pub struct Case {
    pub name: String,
    /// The documentation page this case's outcome is taken from (the case's, else the file's).
    pub page: Option<String>,
    pub e2e: bool,
    /// `repeat: N`: the request is sent N times and each response must meet `expect`.
    pub repeat: u32,
    pub method: String,
    pub url: String,
    pub client_ip: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
    /// The limiter's clock for this case (ms); cases without it keep the previous time.
    pub at_ms: Option<u64>,
    /// `limiter: down`: the rate limiter cannot be reached.
    pub limiter_down: bool,
    /// `jwks:` changes to what the identity provider serves from this case on (native runs).
    pub jwks: Vec<(String, Option<Vec<String>>)>,
    /// `request.sign_webhook: {provider, secret, id, body}`: the headers `dev-auth sign-webhook`
    /// (an implementation independent of the verifier) makes for the request's body, or for
    /// `body` when given (a tampered delivery).
    pub sign_webhook: Option<serde_json::Value>,
    /// `request.cf: {colo: FRA, asn: 3320, ...}`: Cloudflare's `request.cf` for the request, by
    /// its own field names (native runs; see `edge_gateway::conn`).
    pub cf: Option<serde_json::Value>,
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
    pub upstream_uri: Option<String>,
    pub log_contains: Vec<String>,
    pub aborted: Option<bool>,
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

/// The project's own scenarios: `tests/scenarios/*.yaml`.
pub fn load_all() -> Vec<Scenario> {
    load_dir(&repo_root().join("tests/scenarios"))
}

/// The corpus of ngrok's documented examples (`tests/scenarios/ngrok-docs/*.yaml`); each case
/// names its page.
pub fn load_ngrok_docs() -> Vec<Scenario> {
    let all = load_dir(&repo_root().join("tests/scenarios/ngrok-docs"));
    for sc in &all {
        for c in &sc.cases {
            let page = c.page.as_deref().unwrap_or_default();
            assert!(
                page.starts_with("https://ngrok.com/docs/"),
                "{}: case `{}` must cite its ngrok.com/docs page (`page:`), not `{page}`",
                sc.file,
                c.name
            );
        }
    }
    all
}

fn load_dir(dir: &Path) -> Vec<Scenario> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    paths.sort();
    paths.iter().flat_map(|p| load_each(p)).collect()
}

/// The file's first scenario.
pub fn load(path: &Path) -> Scenario {
    load_each(path).remove(0)
}

/// Every scenario in the file, one per YAML document; the Nth after the first is named `file#N`.
pub fn load_each(path: &Path) -> Vec<Scenario> {
    let text = std::fs::read_to_string(path).unwrap();
    let docs = parse_yaml_documents(&text).unwrap();
    docs.into_iter()
        .enumerate()
        .map(|(i, doc)| {
            let mut sc = load_doc(path, doc);
            if i > 0 {
                sc.file = format!("{}#{}", sc.file, i + 1);
            }
            sc
        })
        .collect()
}

fn load_doc(path: &Path, doc: Node) -> Scenario {
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
    let file_page = doc.get("page").map(s);
    let file_e2e = doc
        .get("e2e")
        .map_or(!inline, |v| v.value == Value::Bool(true));
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
                page: c.get("page").map(s).or_else(|| file_page.clone()),
                e2e: c
                    .get("e2e")
                    .map_or(file_e2e, |v| v.value == Value::Bool(true)),
                repeat: c.get("repeat").map_or(1, |v| s(v).parse().unwrap()),
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
                jwks: jwks(c.get("jwks")),
                sign_webhook: req.get("sign_webhook").map(Node::to_json),
                cf: req.get("cf").map(Node::to_json),
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
                    upstream_uri: exp.get("upstream_uri").map(s),
                    log_contains: match exp.get("log_contains") {
                        Some(n) if n.as_seq().is_some() => list(Some(n)),
                        Some(n) => vec![s(n)],
                        None => Vec::new(),
                    },
                    aborted: exp.get("aborted").map(|v| v.value == Value::Bool(true)),
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
    let tokens = doc
        .get("tokens")
        .and_then(Node::as_map)
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.to_json())).collect())
        .unwrap_or_default();
    Scenario {
        file: path.display().to_string(),
        files,
        documents,
        secrets,
        jwks: jwks(doc.get("jwks")),
        tokens,
        cases,
    }
}

fn jwks(n: Option<&Node>) -> Vec<(String, Option<Vec<String>>)> {
    n.and_then(Node::as_map)
        .map(|m| {
            m.iter()
                .map(|(url, v)| {
                    let kids = v.as_seq().map(|l| l.iter().map(s).collect());
                    (url.clone(), kids)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A claim value: `now`, `now+N`, `now-N` become seconds relative to `now_s`.
fn claim(v: &serde_json::Value, now_s: i64) -> serde_json::Value {
    match v.as_str().and_then(|t| t.strip_prefix("now")) {
        Some("") => now_s.into(),
        Some(rel) => match rel.strip_prefix('+').unwrap_or(rel).parse::<i64>() {
            Ok(d) => (now_s + d).into(),
            Err(_) => v.clone(),
        },
        None => v.clone(),
    }
}

impl Scenario {
    /// A case's URL, headers and body with every `{{token NAME}}` minted at `now_s`.
    pub fn request_at(&self, case: &Case, now_s: i64) -> (String, Vec<(String, String)>, String) {
        let mut headers: Vec<(String, String)> = case
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), self.fill_tokens(v, now_s)))
            .collect();
        let body = self.fill_tokens(&case.body, now_s);
        if let Some(sign) = &case.sign_webhook {
            headers.extend(sign_webhook(sign, &body, now_s));
        }
        (self.fill_tokens(&case.url, now_s), headers, body)
    }

    fn fill_tokens(&self, text: &str, now_s: i64) -> String {
        let mut out = text.to_string();
        while let Some(start) = out.find("{{token ") {
            let end = out[start..].find("}}").expect("`{{token NAME}}` is closed") + start;
            let name = out[start + 8..end].trim().to_string();
            let spec = &self
                .tokens
                .iter()
                .find(|(n, _)| *n == name)
                .unwrap_or_else(|| panic!("{}: no token `{name}`", self.file))
                .1;
            let claims: serde_json::Map<String, serde_json::Value> = spec["claims"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.clone(), claim(v, now_s)))
                        .collect()
                })
                .unwrap_or_default();
            let alg = spec["alg"]
                .as_str()
                .map(|a| edge_gateway::jwt::Alg::parse(a).expect("a known alg"));
            let token = edge_gateway::devkeys::mint(
                spec["key"].as_str().unwrap_or("rsa-1"),
                alg,
                &spec["header"],
                &serde_json::Value::Object(claims.clone()),
            )
            .expect("a dev key");
            let token = match spec["tamper"].as_str() {
                // Swap the payload for another one, keeping header and signature.
                Some("payload") => {
                    let parts: Vec<&str> = token.split('.').collect();
                    let mut forged = serde_json::Value::Object(claims.clone());
                    forged["sub"] = "mallory".into();
                    let forged = base64_url(forged.to_string().as_bytes());
                    format!("{}.{}.{}", parts[0], forged, parts[2])
                }
                // Algorithm confusion: HS256, keyed with the RSA public key the JWKS publishes.
                Some("hs256-with-public-key") => {
                    use hmac::Mac;
                    let public = edge_gateway::devkeys::jwks(&["rsa-1"])["keys"][0]["n"]
                        .as_str()
                        .unwrap()
                        .to_string();
                    let header = base64_url(br#"{"alg":"HS256","typ":"JWT","kid":"rsa-1"}"#);
                    let payload = token.split('.').nth(1).unwrap().to_string();
                    let input = format!("{header}.{payload}");
                    let mut mac =
                        hmac::Hmac::<sha2::Sha256>::new_from_slice(public.as_bytes()).unwrap();
                    mac.update(input.as_bytes());
                    format!("{input}.{}", base64_url(&mac.finalize().into_bytes()))
                }
                Some("strip-signature") => {
                    let cut = token.rfind('.').unwrap();
                    token[..=cut].to_string()
                }
                _ => token,
            };
            out.replace_range(start..end + 2, &token);
        }
        out
    }
}

fn base64_url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
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
    /// The path and query the origin was asked for, when a request reached one.
    pub upstream_uri: Option<String>,
    /// The lines the shell would log (native runs only).
    pub notes: Vec<String>,
    /// Whether the response body aborts (`close-connection`).
    pub aborted: bool,
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
        if let Some(want) = &self.upstream_uri {
            if seen.upstream_uri.as_ref() != Some(want) {
                problems.push(format!("upstream uri {:?}, want {want}", seen.upstream_uri));
            }
        }
        for want in &self.log_contains {
            if !seen.notes.iter().any(|n| n.contains(want.as_str())) {
                problems.push(format!("no log line has {want:?}: {:?}", seen.notes));
            }
        }
        if let Some(want) = self.aborted {
            if seen.aborted != want {
                problems.push(format!("aborted {}, want {want}", seen.aborted));
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

/// The headers `dev-auth sign-webhook` prints for `body` (or `spec.body`) at `now_s`.
fn sign_webhook(spec: &serde_json::Value, body: &str, now_s: i64) -> Vec<(String, String)> {
    let text = |k: &str| spec[k].as_str().map(str::to_string);
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_dev-auth"));
    cmd.args(["sign-webhook", "--provider"])
        .arg(text("provider").expect("sign_webhook.provider"))
        .arg("--secret")
        .arg(text("secret").expect("sign_webhook.secret"))
        .arg("--body")
        .arg(text("body").unwrap_or_else(|| body.to_string()))
        .arg("--timestamp")
        .arg(
            claim(&spec["timestamp"], now_s)
                .as_i64()
                .unwrap_or(now_s)
                .to_string(),
        );
    for flag in ["id", "url"] {
        if let Some(v) = text(flag) {
            cmd.arg(format!("--{flag}")).arg(v);
        }
    }
    let out = cmd.output().expect("dev-auth runs");
    assert!(
        out.status.success(),
        "dev-auth sign-webhook: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}
