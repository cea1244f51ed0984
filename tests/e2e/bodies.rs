//! End to end: the body actions through the real Worker in `wrangler dev` (workerd) in front of
//! the demo origins. compress-response: gzip and br made by the runtime and deflate by its
//! CompressionStream decode to exactly what the origin sent; an origin's own gzip passes as it
//! is. Find-replace: the origin receives the rewritten request body; the client receives the
//! rewritten response body, also from an origin that gzips its responses (the Worker's fetch
//! decodes it, the runtime encodes it again). Runs when `EDGE_GATEWAY_E2E=1`.

use crate::support::stack::Stack;
use sha2::{Digest, Sha256};
use std::io::Read;
use std::time::Duration;

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
        .header("CF-Connecting-IP", crate::support::stack::next_client_ip())
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

/// A decoder for one content coding.
type Decode = fn(&[u8]) -> Vec<u8>;

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .expect("a valid gzip body");
    out
}

fn inflate(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::ZlibDecoder::new(bytes)
        .read_to_end(&mut out)
        .expect("a valid zlib (HTTP deflate) body");
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
    if !crate::support::stack::e2e_enabled() {
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
        s.get("/ready", &[("X-Acme-Api", "catalog-eks")])
            .is_ok_and(|r| r.body == "v1")
    });

    // A compressible text the origin echoes back.
    let text: Vec<u8> = (0..400)
        .map(|i| format!("line {i}: the origin said hello\n"))
        .collect::<String>()
        .into_bytes();
    let echo = |accept: &[(&str, &str)]| send(&stack, "POST", "/__body/echo", accept, &text);

    // Negotiated on the client's own Accept-Encoding; gzip and br encoded by workerd (from the
    // Content-Encoding the core set), deflate by its CompressionStream. Streaming, all three.
    let codecs: [(&str, Decode); 3] = [("gzip", gunzip), ("br", unbrotli), ("deflate", inflate)];
    for (coding, decode) in codecs {
        let r = echo(&[("Accept-Encoding", coding)]);
        assert_eq!(r.status, 200, "{coding}");
        assert_eq!(
            r.header("content-encoding"),
            Some(coding),
            "{:?}",
            r.headers
        );
        assert_eq!(r.header("vary"), Some("Accept-Encoding"));
        assert_eq!(
            r.header("x-compress"),
            Some(format!("{coding}/false").as_str())
        );
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

    // q-values: the highest wins, whichever order.
    let r = echo(&[("Accept-Encoding", "gzip;q=0.4, br")]);
    assert_eq!(r.header("content-encoding"), Some("br"));
    assert_eq!(unbrotli(&r.body), text);
    let r = echo(&[("Accept-Encoding", "gzip, br;q=0.5")]);
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    assert_eq!(gunzip(&r.body), text);

    // No Accept-Encoding, or nothing acceptable: identity, byte for byte.
    for accept in [&[][..], &[("Accept-Encoding", "zstd, gzip;q=0")][..]] {
        let r = echo(accept);
        assert_eq!(r.header("content-encoding"), None, "{accept:?}");
        assert_eq!(r.header("x-compress"), Some("/false"));
        assert_eq!(r.body, text);
    }

    // The origin's own gzip is passed as it is (not compressed twice). (A client that also
    // accepts br may get br: workerd re-encodes a passed-through body by its own preference.)
    let r = send(
        &stack,
        "GET",
        "/__body/gzip",
        &[("Accept-Encoding", "gzip, deflate")],
        b"",
    );
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    assert_eq!(r.header("x-compress"), Some("/true"));
    assert_eq!(gunzip(&r.body), b"compressed by the origin itself\n");

    // request-body-find-replace: the origin receives the rewritten body (its echo reports the
    // SHA-256 of what arrived; /__body/echo sends it back).
    let form = b"name=ada&card=4111111111111111&note=hi";
    let want = b"name=ada&card=4111-redacted&note=hi";
    let ctype = [("Content-Type", "application/x-www-form-urlencoded")];
    let r = send(&stack, "PUT", "/echo?plain", &ctype, form);
    assert_eq!(r.status, 200);
    let echo: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(echo["body_bytes"], want.len());
    assert_eq!(echo["body_sha256"], hex(&Sha256::digest(want)));
    let r = send(&stack, "PUT", "/__body/echo?plain", &ctype, form);
    assert_eq!(r.body, want);

    // response-body-find-replace: the client receives the rewritten body, Content-Length fixed.
    let made = b"from the origin, origin-made";
    let r = send(&stack, "POST", "/__body/echo?rewrite&plain", &[], made);
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
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    assert_eq!(gunzip(&r.body), b"compressed by the edge itself\n");
    // ... and then compressed by compress-response.
    let r = send(
        &stack,
        "POST",
        "/__body/echo?rewrite",
        &[("Accept-Encoding", "br")],
        b"origin text",
    );
    assert_eq!(r.header("content-encoding"), Some("br"));
    assert_eq!(unbrotli(&r.body), b"edge text");
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
