//! End to end: CEL variables filled from what the real Worker has, under `wrangler dev`: the
//! request head, the platform's `request.cf` (in `wrangler dev`, miniflare's stand-in object:
//! a cached copy of Cloudflare's or its built-in placeholder, so only its shape is asserted),
//! the clock, and the IP-intelligence list uploaded with the policy (policies/ip-intel), against
//! which the reference policy's bot-blocking rule runs. Runs when `EDGE_GATEWAY_E2E=1`.

use crate::support::scenario::repo_root;
use crate::support::stack::Stack;
use std::time::Duration;

const POLICY: &str = r#"
on_http_request:
  - expressions:
      - "('com.anthropic' in conn.client_ip.categories) || ('com.openai' in conn.client_ip.categories) || ('com.perplexity' in conn.client_ip.categories) || ('tor' in conn.client_ip.categories) || ('tor.exit' in conn.client_ip.categories) || ('proxy' in conn.client_ip.categories) || ('proxy.anonymous' in conn.client_ip.categories) || ('vpn' in conn.client_ip.categories)"
    actions:
      - type: deny
        config: {status_code: 404}
  - expressions: ["req.url.path == '/vars'"]
    actions:
      - type: custom-response
        config:
          body: "${conn.client_ip}|${has(conn.client_port)}|${conn.server_region.matches('^[A-Z]{3}$')}|${conn.client_ip.as.number > 0}|${conn.geo.country_code.matches('^[A-Z]{2}$')}|${conn.tls.version in ['1.0', '1.1', '1.2', '1.3']}|${has(conn.tls.client)}|${req.version.startsWith('HTTP/')}|${req.user_agent.name}/${req.user_agent.version}|${req.user_agent}|${req.cookies['a'][1].value}|${req.url.path}|${req.url.query_params['q'][0]}|${endpoint.protocol}|${conn.client_ip.categories}|${time.now}|${rand.int(1, 6) >= 1}"
  - actions:
      - type: custom-response
        config: {body: "VERSION"}
"#;

#[test]
fn variables_end_to_end() {
    if !crate::support::stack::e2e_enabled() {
        return;
    }
    let stack = Stack::start(&[("POLICY_REFRESH_SECONDS", "1")]);
    let dir = stack.acme_copy("vars", |t| t);
    std::fs::write(
        dir.join("cloud-endpoint.yaml"),
        POLICY.replace("VERSION", "v1"),
    )
    .unwrap();
    stack.upload(&[&dir, &repo_root().join("policies/ip-intel")]);
    stack.wait_until("v1 is live", Duration::from_secs(30), |s| {
        s.get("/", &[("CF-Connecting-IP", "203.0.113.1")])
            .is_ok_and(|r| r.body == "v1")
    });

    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let r = stack
        .get(
            "/vars?q=x%20y",
            &[
                ("CF-Connecting-IP", "203.0.113.5"),
                ("User-Agent", "curl/8.5.0"),
                ("Cookie", "a=1; b=2; a=3"),
            ],
        )
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let parts: Vec<&str> = r.body.split('|').collect();
    assert_eq!(parts.len(), 17, "{}", r.body);
    assert_eq!(
        &parts[..15],
        &[
            "203.0.113.5",
            // Workers do not expose the client's port.
            "false",
            // From request.cf: colo, asn, country, TLS version, no client certificate.
            "true",
            "true",
            "true",
            "true",
            "false",
            "true",
            "curl/8.5.0",
            "curl/8.5.0",
            "3",
            "/vars",
            "x y",
            "http",
            "[]",
        ],
        "{}",
        r.body
    );
    // time.now comes from the Worker's clock, in RFC 3339 UTC to the second.
    let now = chrono::DateTime::parse_from_rfc3339(parts[15])
        .unwrap_or_else(|e| panic!("time.now `{}`: {e}", parts[15]));
    assert!(parts[15].ends_with('Z'), "{}", parts[15]);
    assert!(
        (now.timestamp() - before).abs() <= 60,
        "time.now {} is not the Worker's clock (test clock {before})",
        parts[15]
    );
    assert_eq!(parts[16], "true");

    // The reference policy's bot rule against the uploaded list: GPTBot's published range.
    let r = stack
        .get("/vars", &[("CF-Connecting-IP", "20.171.206.9")])
        .unwrap();
    assert_eq!(r.status, 404, "{}", r.body);
    // ... and a Tor exit of the example list (through its parent category `proxy`).
    let r = stack
        .get("/", &[("CF-Connecting-IP", "198.51.100.20")])
        .unwrap();
    assert_eq!(r.status, 404, "{}", r.body);
    let r = stack
        .get("/", &[("CF-Connecting-IP", "203.0.113.6")])
        .unwrap();
    assert_eq!((r.status, r.body.as_str()), (200, "v1"));
}
