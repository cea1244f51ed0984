//! A scenario case checked against the live Worker (`wrangler dev`): the demo origin's echo
//! stands in for the native run's fake upstream. Used by the end-to-end tests.
#![allow(dead_code, reason = "each test binary uses a different part")]

use super::scenario::{Case, Observed, Scenario};
use super::stack::Stack;
use sha2::{Digest, Sha256};

/// Sends `case` to the stack and checks what came back against its expectation.
pub fn check_case(stack: &Stack, scenario: &Scenario, case: &Case) -> Result<(), String> {
    let now_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let (url, filled, body) = scenario.request_at(case, now_s);
    let path = url
        .splitn(4, '/')
        .nth(3)
        .map_or("/".to_string(), |p| format!("/{p}"));
    // What a browser escapes in a URL (`<`, `"`, a space ...) and an HTTP client refuses raw.
    let path: String = path
        .chars()
        .map(|c| match c {
            ' ' | '"' | '<' | '>' | '\\' | '^' | '`' | '{' | '|' | '}' => {
                format!("%{:02X}", c as u32)
            }
            c => c.to_string(),
        })
        .collect();
    let mut headers: Vec<(&str, &str)> = filled
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    headers.push(("CF-Connecting-IP", case.client_ip.as_str()));
    // The gateway's own answer: a redirect is checked, not followed.
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(std::time::Duration::from_secs(30)))
        .build()
        .into();
    let r = stack
        .send(&agent, &case.method, &path, &headers, body.as_bytes())
        .map_err(|e| e.to_string())?;
    // The demo origin echoes who it is and what it received; a body without `api` and `cluster`
    // was answered by the gateway itself.
    let echo: Option<serde_json::Value> = serde_json::from_str(&r.body).ok();
    let echo = echo.filter(|j| j["api"].is_string() && j["cluster"].is_string());
    let text = |j: &serde_json::Value, k: &str| j[k].as_str().unwrap_or_default().to_string();
    let seen = Observed {
        status: r.status,
        headers: r.headers.clone(),
        forwarded_to: echo
            .as_ref()
            .map(|j| format!("{}-{}", text(j, "api"), text(j, "cluster"))),
        upstream_headers: echo
            .as_ref()
            .and_then(|j| j["headers"].as_object())
            .map(|h| {
                h.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                    .collect()
            }),
        upstream_uri: echo.as_ref().map(|j| match text(j, "query") {
            q if q.is_empty() => text(j, "path"),
            q => format!("{}?{q}", text(j, "path")),
        }),
        body: r.body,
        ..Observed::default()
    };
    // Whatever reached an origin arrived byte for byte (signature checks buffer the body).
    if let Some(sha) = echo.as_ref().and_then(|j| j["body_sha256"].as_str()) {
        let want = format!("{:x}", Sha256::digest(body.as_bytes()));
        if sha != want {
            return Err(format!(
                "the origin got a different body: sha256 {sha}, sent {want}"
            ));
        }
    }
    case.expect.check(&seen)
}
