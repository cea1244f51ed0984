//! End to end: redirect, url-rewrite, set-vars, log and close-connection through the real Worker
//! in `wrangler dev`, in front of the demo origins. Runs when `EDGE_GATEWAY_E2E=1`.

use crate::support::stack::Stack;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// The policy under test; `MARKER` makes this run's log lines unique.
const POLICY: &str = r#"
on_http_request:
  - name: moved api
    expressions: ["req.url.path.startsWith('/api/v1/')"]
    actions:
      - type: redirect
        config: {from: "/api/v1/", to: "/api/v2/", status_code: 301, headers: {x-moved: "${req.method}"}}
  - name: weather
    expressions: ["req.url.path == '/weather'"]
    actions:
      - type: redirect
        config: {to: "https://weather.example/city/${getQueryParam('city')[0]}"}
  - name: vars
    actions:
      - type: set-vars
        config:
          vars:
            - tier: "${hasReqHeader('x-tier') ? getReqHeader('x-tier')[0] : 'free'}"
            - path_length: "${size(req.url.path)}"
  - name: audit
    expressions: ["hasReqHeader('x-log')"]
    actions:
      - type: log
        config:
          metadata:
            marker: "${getReqHeader('x-log')[0]}"
            tier: "${vars.tier}"
            path_length: "${vars.path_length}"
            get: "${req.method == 'GET'}"
  - name: show vars
    expressions: ["req.url.path == '/vars'"]
    actions:
      - type: custom-response
        config: {body: "tier=${vars.tier} next=${vars.path_length + 1}"}
  - name: drop
    expressions: ["req.url.path == '/close'"]
    actions:
      - type: close-connection
  - name: rewrite
    expressions: ["req.url.path.startsWith('/v1/')"]
    actions:
      - type: url-rewrite
        config: {from: "/v1/([a-z]+)", to: "/v2/$1"}
      - type: add-headers
        config: {headers: {x-seen-path: "${req.url.path}", x-rewrite-match: "${actions.ngrok.url_rewrite.matches[1]}"}}
  - actions:
      - type: forward-internal
        config: {url: "https://catalog-eks.internal"}
"#;

/// What a raw HTTP/1.1 client reads for `path` until the connection ends (or 10 s pass).
fn raw_get(stack: &Stack, path: &str) -> (Vec<u8>, Option<std::io::Error>) {
    let addr = stack.url("").trim_start_matches("http://").to_string();
    let mut s = TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nCF-Connecting-IP: 198.51.100.7\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return (out, None),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) => return (out, Some(e)),
        }
    }
}

#[test]
fn actions_end_to_end() {
    if !crate::support::stack::e2e_enabled() {
        return;
    }
    let stack = Stack::start(&[("POLICY_REFRESH_SECONDS", "1")]);
    let dir = stack.acme_copy("actions", |t| t);
    std::fs::write(dir.join("cloud-endpoint.yaml"), POLICY).unwrap();
    stack.upload(&[&dir]);
    stack.wait_until("the policy is live", Duration::from_secs(30), |s| {
        s.get("/vars", &[]).is_ok_and(|r| r.status == 200)
    });
    let no_redirects: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let ip = ("CF-Connecting-IP", "198.51.100.7");

    // redirect: the matched part replaced, status and headers as configured.
    let r = stack
        .send(&no_redirects, "GET", "/api/v1/users?x=1", &[ip], b"")
        .unwrap();
    assert_eq!(r.status, 301, "{}", r.body);
    assert_eq!(
        r.header("location"),
        Some(stack.url("/api/v2/users?x=1").as_str())
    );
    assert_eq!(r.header("x-moved"), Some("GET"));
    // Interpolated values are URL-encoded in the Location.
    let r = stack
        .send(
            &no_redirects,
            "GET",
            "/weather?city=San%20Francisco",
            &[ip],
            b"",
        )
        .unwrap();
    assert_eq!(r.status, 302);
    assert_eq!(
        r.header("location"),
        Some("https://weather.example/city/San%20Francisco")
    );

    // url-rewrite: the origin is asked for the new path; later rules see it; the client's URL
    // (no redirect) is unchanged.
    let r = stack.get("/v1/items?a=1", &[ip]).unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let echo = r.json();
    assert_eq!(echo["path"], "/v2/items", "{echo}");
    assert_eq!(echo["query"], "a=1");
    assert_eq!(echo["headers"]["x-seen-path"], "/v2/items");
    assert_eq!(echo["headers"]["x-rewrite-match"], "items");

    // set-vars: typed (an int stays an int), read by later rules.
    let r = stack.get("/vars", &[ip, ("X-Tier", "gold")]).unwrap();
    assert_eq!(r.body, "tier=gold next=6");

    // log: one JSON line in the Worker's log, with the endpoint, rule and typed metadata.
    let marker = format!("e2e-{}", std::process::id());
    let r = stack
        .get("/vars", &[ip, ("X-Log", marker.as_str())])
        .unwrap();
    assert_eq!(r.status, 200);
    let mut line = None;
    stack.wait_until("the log line", Duration::from_secs(10), |s| {
        line = s
            .log_text()
            .lines()
            .find(|l| l.contains(&marker))
            .map(str::to_string);
        line.is_some()
    });
    let line = line.unwrap();
    let json: serde_json::Value = serde_json::from_str(&line[line.find('{').unwrap()..])
        .unwrap_or_else(|e| panic!("not one JSON object ({e}): {line}"));
    assert_eq!(json["log"], "traffic_policy", "{json}");
    assert_eq!(json["rule"], "audit");
    assert_eq!(json["phase"], "on_http_request");
    assert_eq!(json["metadata"]["marker"], marker.as_str());
    assert_eq!(json["metadata"]["tier"], "free");
    assert_eq!(json["metadata"]["path_length"], 5);
    assert_eq!(json["metadata"]["get"], true);

    // close-connection: the client reads a head promising one byte, then the connection ends
    // with none; no client can take that for a complete response.
    let (bytes, _) = raw_get(&stack, "/close");
    let text = String::from_utf8_lossy(&bytes).to_ascii_lowercase();
    assert!(text.starts_with("http/1.1 502"), "{text:?}");
    assert!(text.contains("content-length: 1\r\n"), "{text:?}");
    assert!(
        text.ends_with("\r\n\r\n"),
        "no body byte may follow the head: {text:?}"
    );
    let err = stack
        .get("/close", &[ip])
        .err()
        .expect("ureq must fail to read the body");
    assert!(
        matches!(&err, ureq::Error::Io(e) if e.kind() == std::io::ErrorKind::UnexpectedEof),
        "{err:?}"
    );
    // The gateway still answers other requests.
    assert_eq!(stack.get("/vars", &[ip]).unwrap().status, 200);
}
