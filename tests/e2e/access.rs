//! End to end: restrict-ips and basic-auth through the real Worker in `wrangler dev`. Addresses
//! come from the platform (`CF-Connecting-IP`), never `X-Forwarded-For`; a password comes from a
//! Worker secret; a policy version naming a secret the Worker lacks is rejected while the last
//! good version keeps serving. Runs when `EDGE_GATEWAY_E2E=1` (scripts/test.sh sets it).

use crate::support::stack::Stack;
use base64::Engine;
use std::time::Duration;

const POLICY: &str = r#"
on_http_request:
  - expressions: ["req.url.path == '/partners'"]
    actions:
      - type: restrict-ips
        config: {allow: ["192.0.2.0/24", "2001:db8::/32"]}
      - type: custom-response
        config: {body: "partner ${actions.ngrok.restrict_ips.matched_cidr}"}
  - expressions: ["req.url.path.startsWith('/staff')"]
    actions:
      - type: basic-auth
        config: {realm: acme, credentials: ["ops:${secrets.get('acme', 'ops-password')}"]}
      - type: forward-internal
        config: {url: "https://catalog-eks.internal"}
  - actions:
      - type: custom-response
        config: {body: "VERSION"}
"#;

fn basic(user_pass: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(user_pass)
    )
}

#[test]
fn access_control_end_to_end() {
    if !crate::support::stack::e2e_enabled() {
        return;
    }
    let stack = Stack::start(&[
        ("POLICY_REFRESH_SECONDS", "1"),
        ("ACME__OPS_PASSWORD", "s3cret-from-the-worker"),
    ]);
    let dir = stack.acme_copy("access", |t| t);
    std::fs::write(
        dir.join("cloud-endpoint.yaml"),
        POLICY.replace("VERSION", "v1"),
    )
    .unwrap();
    stack.upload(&[&dir]);
    stack.wait_until("v1 is live", Duration::from_secs(30), |s| {
        s.get("/", &[]).is_ok_and(|r| r.body == "v1")
    });

    // restrict-ips on the platform's address.
    let r = stack
        .get("/partners", &[("CF-Connecting-IP", "192.0.2.44")])
        .unwrap();
    assert_eq!((r.status, r.body.as_str()), (200, "partner 192.0.2.0/24"));
    let r = stack
        .get("/partners", &[("CF-Connecting-IP", "2001:db8::9")])
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let r = stack
        .get(
            "/partners",
            &[
                ("CF-Connecting-IP", "203.0.113.5"),
                ("X-Forwarded-For", "192.0.2.44"),
            ],
        )
        .unwrap();
    assert_eq!(
        r.status, 403,
        "X-Forwarded-For must not grant access: {}",
        r.body
    );
    assert_eq!(r.header("ngrok-error-code"), Some("ERR_NGROK_3205"));

    // basic-auth with the password from a Worker secret.
    let r = stack.get("/staff", &[]).unwrap();
    assert_eq!(r.status, 401);
    assert_eq!(
        r.header("www-authenticate"),
        Some("Basic realm=\"acme\", charset=\"UTF-8\"")
    );
    let auth = basic("ops:s3cret-from-the-worker");
    let r = stack
        .get("/staff/x", &[("Authorization", auth.as_str())])
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["api"], "catalog");
    let wrong = basic("ops:s3cret-from-the-workeR");
    assert_eq!(
        stack
            .get("/staff", &[("Authorization", wrong.as_str())])
            .unwrap()
            .status,
        401
    );

    // A version naming a secret the Worker lacks is rejected; v1 keeps serving.
    let v2 = POLICY
        .replace("VERSION", "v2")
        .replace("'ops-password'", "'not-set'");
    std::fs::write(dir.join("cloud-endpoint.yaml"), v2).unwrap();
    stack.upload(&[&dir]);
    stack.wait_until("the Worker rejects v2", Duration::from_secs(30), |s| {
        let _ = s.get("/", &[]);
        s.log_text()
            .contains("needs the Worker secret `ACME__NOT_SET`")
    });
    assert_eq!(
        stack.get("/", &[]).unwrap().body,
        "v1",
        "the last good version keeps serving"
    );
    assert!(
        !stack.log_text().contains("s3cret-from-the-worker"),
        "a secret's value reached the log"
    );
}
