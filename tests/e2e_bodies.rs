//! End to end: the body actions through the real Worker in `wrangler dev` (workerd) in front of
//! the demo origins. compress-response: gzip and br made by the runtime and deflate by its
//! CompressionStream decode to exactly what the origin sent; an origin's own gzip passes as it
//! is. Find-replace: the origin receives the rewritten request body; the client receives the
//! rewritten response body, also from an origin that gzips its responses (the Worker's fetch
//! decodes it, the runtime encodes it again). Runs when `EDGE_GATEWAY_E2E=1`.

mod support;

use sha2::{Digest, Sha256};
use std::io::Read;
use std::time::Duration;
use support::stack::Stack;

const POLICY: &str = r#"
on_http_request:
  - expressions: ["req.method == 'PUT'"]
    actions:
      - type: request-body-find-replace
        config:
          replacements:
            - {from: 'card=([0-9]{4})[0-9]+', to: 'card=$1-redacted'}
  - expressions: ["req.url.path == '/ready'"]
    actions:
      - type: custom-response
        config: {body: "VERSION"}
  - actions:
      - type: forward-internal
        config: {url: "https://catalog-eks.internal"}
on_http_response:
  - expressions: ["hasQueryParam('rewrite')"]
    actions:
      - type: response-body-find-replace
        config:
          replacements:
            - {from: 'origin', to: 'edge'}
  - expressions: ["!hasQueryParam('plain')"]
    actions:
      - type: compress-response
      - type: add-headers
        config:
          headers:
            x-compress: "${actions.ngrok.compress.negotiated_algorithm}/${actions.ngrok.compress.already_compressed}"
"#;

struct Raw {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Raw {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One request, the response body as raw bytes (ureq here decodes nothing).
fn send(stack: &Stack, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Raw {
    let mut req = ureq::http::Request::builder()
        .method(method)
        .uri(stack.url(path))
        .header("CF-Connecting-IP", support::stack::next_client_ip())
        .header("X-Acme-Api", "catalog-eks");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let mut resp = Stack::agent()
        .run(req.body(body.to_vec()).unwrap())
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    Raw {
        status: resp.status().as_u16(),
        headers: resp
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_string()))
            .collect(),
        body: resp
            .body_mut()
            .with_config()
            .limit(16 << 20)
            .read_to_vec()
            .unwrap(),
    }
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .expect("a valid gzip body");
    out
}

fn unbrotli(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    brotli_decompressor::Decompressor::new(bytes, 4096)
        .read_to_end(&mut out)
        .expect("a valid brotli body");
    out
}

#[test]
fn body_actions_end_to_end() {
    if !support::stack::e2e_enabled() {
        return;
    }
    let stack = Stack::start(&[("POLICY_REFRESH_SECONDS", "1")]);
    let dir = stack.acme_copy("bodies", |t| t);
    std::fs::write(
        dir.join("cloud-endpoint.yaml"),
        POLICY.replace("VERSION", "v1"),
    )
    .unwrap();
    stack.upload(&[&dir]);
    stack.wait_until("the policy is live", Duration::from_secs(30), |s| {
        // `plain`: no compression (the HTTP client may send Accept-Encoding itself).
        s.get("/ready?plain", &[("X-Acme-Api", "catalog-eks")])
            .is_ok_and(|r| r.body == "v1")
    });

    // A compressible text the origin echoes back.
    let text: Vec<u8> = (0..400)
        .map(|i| format!("line {i}: the origin said hello\n"))
        .collect::<String>()
        .into_bytes();

    // gzip and br: workerd encodes (streaming) from the Content-Encoding the core set.
    for (coding, decode) in [("gzip", gunzip as fn(&[u8]) -> Vec<u8>), ("br", unbrotli)] {
        let r = send(
            &stack,
            "POST",
            "/__body/echo",
            &[("Accept-Encoding", coding)],
            &text,
        );
        assert_eq!(r.status, 200, "{coding}");
        assert_eq!(
            r.header("content-encoding"),
            Some(coding),
            "{:?}",
            r.headers
        );
        assert_eq!(r.header("vary"), Some("Accept-Encoding"));
        // What the Worker negotiated on: workerd hands it a normalised Accept-Encoding, and
        // re-encodes to what the client accepts (docs/bodies.md), so only "compressed" is sure.
        assert!(r
            .header("x-compress")
            .is_some_and(|v| v.ends_with("/false") && v != "/false"));
        assert!(
            r.body.len() < text.len() / 4,
            "{coding}: {} bytes",
            r.body.len()
        );
        assert_eq!(
            decode(&r.body),
            text,
            "{coding} decodes to the origin's body"
        );
    }

    // Nothing acceptable: identity, byte for byte.
    let r = send(
        &stack,
        "POST",
        "/__body/echo",
        &[("Accept-Encoding", "zstd, gzip;q=0")],
        &text,
    );
    assert_eq!(r.header("content-encoding"), None);
    assert_eq!(r.body, text);

    // The origin's own gzip is passed as it is (not compressed twice).
    let r = send(
        &stack,
        "GET",
        "/__body/gzip",
        &[("Accept-Encoding", "br, gzip")],
        b"",
    );
    assert_eq!(r.header("x-compress"), Some("/true"));
    assert_eq!(decoded(&r), b"compressed by the origin itself\n");

    // request-body-find-replace: the origin receives the rewritten body.
    let form = b"name=ada&card=4111111111111111&note=hi";
    let r = send(
        &stack,
        "PUT",
        "/echo?plain",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        form,
    );
    assert_eq!(r.status, 200);
    let echo: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    let want = b"name=ada&card=4111-redacted&note=hi";
    assert_eq!(echo["body_bytes"], want.len());
    assert_eq!(echo["body_sha256"], hex(&Sha256::digest(want)));
    let r = send(&stack, "PUT", "/__body/echo?plain", &[], form);
    assert_eq!(r.body, want);

    // response-body-find-replace: the client receives the rewritten body, Content-Length fixed.
    let r = send(
        &stack,
        "POST",
        "/__body/echo?rewrite&plain",
        &[],
        b"from the origin, origin-made",
    );
    assert_eq!(r.body, b"from the edge, edge-made");
    assert_eq!(r.header("content-length"), Some("24"));
    // ... from an origin that gzips: decoded by fetch, rewritten, gzip again on the way out.
    let r = send(
        &stack,
        "GET",
        "/__body/gzip?rewrite",
        &[("Accept-Encoding", "gzip")],
        b"",
    );
    assert_eq!(decoded(&r), b"compressed by the edge itself\n");
    // ... and then compressed by compress-response.
    let r = send(
        &stack,
        "POST",
        "/__body/echo?rewrite",
        &[("Accept-Encoding", "br")],
        b"origin text",
    );
    assert!(r.header("content-encoding").is_some());
    assert_eq!(decoded(&r), b"edge text");
}

/// The body decoded as its Content-Encoding says (workerd may re-encode to what the client
/// accepts).
fn decoded(r: &Raw) -> Vec<u8> {
    match r.header("content-encoding") {
        Some("gzip") => gunzip(&r.body),
        Some("br") => unbrotli(&r.body),
        None => r.body.clone(),
        Some(other) => panic!("unexpected coding {other}"),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
