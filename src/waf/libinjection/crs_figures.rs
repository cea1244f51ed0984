//! A measurement, not a correctness test: the share of the shared CRS regression tests of rules
//! 942100 (`@detectSQLi`) and 941100 (`@detectXSS`) whose inputs the detectors flag after the
//! rules' transformations. Nothing is tuned to it. Run:
//! `cargo test --lib waf::libinjection::crs_figures -- --ignored --nocapture`
//!
//! Approximations: ARGS come from the query string and, unless the test names an XML or JSON
//! content type, an urlencoded body; an XML/JSON body counts as one value (no XML:/* parser
//! here); `t:utf8toUnicode` is not applied (transform.rs has no such step yet).

use super::{detect_sqli, detect_xss};
use crate::source::{parse_yaml_documents, Node};
use crate::waf::transform::{apply_if_changes, url_decode, Transform};

fn str_of(n: Option<&Node>) -> Option<String> {
    n.and_then(Node::as_str).map(str::to_string)
}

/// The values the rule inspects (names and values of ARGS and cookies, and the headers).
fn inspected(input: &Node, headers: &[&str]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let hdrs = input.get("headers");
    let header = |name: &str| {
        hdrs.and_then(Node::as_map).and_then(|m| {
            m.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .and_then(|(_, v)| v.as_str().map(str::to_string))
        })
    };
    let mut urlencoded = |s: &str| {
        for pair in s.split('&') {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            out.push(url_decode(name.as_bytes(), true));
            out.push(url_decode(value.as_bytes(), true));
        }
    };
    if let Some(uri) = str_of(input.get("uri")) {
        if let Some((_, query)) = uri.split_once('?') {
            urlencoded(query);
        }
    }
    let ctype = header("Content-Type")
        .unwrap_or_default()
        .to_ascii_lowercase();
    if let Some(data) = str_of(input.get("data")) {
        if ctype.contains("xml") || ctype.contains("json") {
            out.push(data.into_bytes());
        } else {
            urlencoded(&data);
        }
    }
    for h in headers {
        out.extend(header(h).map(String::into_bytes));
    }
    if let Some(cookies) = header("Cookie") {
        for c in cookies.split(';') {
            let (name, value) = c.trim().split_once('=').unwrap_or((c.trim(), ""));
            out.push(name.as_bytes().to_vec());
            out.push(value.as_bytes().to_vec());
        }
    }
    out
}

fn transformed(v: &[u8], ts: &[Transform]) -> Vec<u8> {
    ts.iter().fold(v.to_vec(), |acc, &t| {
        apply_if_changes(t, &acc).unwrap_or(acc)
    })
}

/// (expected to match, flagged) per test of `file`.
fn run(
    file: &str,
    rule: u64,
    headers: &[&str],
    ts: &[Transform],
    detect: fn(&[u8]) -> bool,
) -> Vec<(String, bool, bool)> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
    let text = std::fs::read_to_string(path).expect("regression file");
    let docs = parse_yaml_documents(&text).expect("yaml");
    let mut out = Vec::new();
    for test in docs
        .iter()
        .filter_map(|d| d.get("tests")?.as_seq())
        .flatten()
    {
        let id = test
            .get("test_id")
            .map(|n| format!("{:?}", n.value))
            .unwrap_or_default();
        for stage in test.get("stages").and_then(Node::as_seq).unwrap_or(&[]) {
            let stage = stage.get("stage").unwrap_or(stage);
            let (Some(input), Some(output)) = (stage.get("input"), stage.get("output")) else {
                continue;
            };
            let log = output.get("log").unwrap_or(output);
            let lists = |key: &str| {
                log.get(key).and_then(Node::as_seq).is_some_and(|s| {
                    s.iter()
                        .any(|n| format!("{:?}", n.value).contains(&rule.to_string()))
                })
            };
            let expected = lists("expect_ids");
            let flagged = inspected(input, headers)
                .iter()
                .any(|v| detect(&transformed(v, ts)));
            out.push((id.clone(), expected, flagged));
        }
    }
    out
}

fn report(name: &str, results: &[(String, bool, bool)]) {
    let expect: Vec<_> = results.iter().filter(|r| r.1).collect();
    let hit = expect.iter().filter(|r| r.2).count();
    let quiet: Vec<_> = results.iter().filter(|r| !r.1).collect();
    let fp = quiet.iter().filter(|r| r.2).count();
    eprintln!(
        "{name}: {hit}/{} tests expecting the rule flagged; {fp}/{} others flagged",
        expect.len(),
        quiet.len()
    );
    for r in results {
        eprintln!("  test {}: expected {}, flagged {}", r.0, r.1, r.2);
    }
}

#[test]
#[ignore = "a measurement (prints figures), run on demand"]
fn crs_regression_figures() {
    let sqli = run(
        "tests/crs-regression/REQUEST-942-APPLICATION-ATTACK-SQLI/942100.yaml",
        942100,
        &["User-Agent", "Referer"],
        &[Transform::UrlDecodeUni, Transform::RemoveNulls],
        |v| detect_sqli(v).is_some(),
    );
    let xss = run(
        "tests/crs-regression/REQUEST-941-APPLICATION-ATTACK-XSS/941100.yaml",
        941100,
        &["User-Agent"],
        &[
            Transform::UrlDecodeUni,
            Transform::HtmlEntityDecode,
            Transform::JsDecode,
            Transform::CssDecode,
            Transform::RemoveNulls,
        ],
        detect_xss,
    );
    report("942100 @detectSQLi", &sqli);
    report("941100 @detectXSS", &xss);
    assert!(!sqli.is_empty() && !xss.is_empty(), "no tests read");
}
