//! Robustness: mangled versions of the shipped policy files (bytes deleted, duplicated, swapped,
//! replaced with YAML punctuation) must produce diagnostics or a gateway, never a panic. A panic
//! in the Worker resets the wasm instance, and the checker is the Worker's compiler.

mod support;

use edge_gateway::gateway::{
    BodyError, LocalTrust, Outbound, Random, RateLimiter, Upstream, UpstreamError,
};
use edge_gateway::http::{Headers, RequestHead, ResponseHead};
use edge_gateway::limiter::{Bucket, Decision, LimitCheck};
use edge_gateway::manifest::{build_gateway, Options, SourceDoc};
use edge_gateway::source::parse_yaml_documents;
use std::cell::RefCell;

const PUNCTUATION: &[u8] = b"{}[]:,-'\"$#&*!|>%@` \n\t\\";

fn mangle(text: &str, rng: &mut fastrand::Rng) -> String {
    let mut bytes = text.as_bytes().to_vec();
    for _ in 0..1 + rng.usize(0..4) {
        if bytes.is_empty() {
            break;
        }
        let at = rng.usize(0..bytes.len());
        match rng.usize(0..4) {
            0 => {
                let len = rng.usize(0..8).min(bytes.len() - at);
                bytes.drain(at..at + len);
            }
            1 => {
                let len = rng.usize(0..16).min(bytes.len() - at);
                let copy: Vec<u8> = bytes[at..at + len].to_vec();
                let to = rng.usize(0..bytes.len());
                bytes.splice(to..to, copy);
            }
            2 => bytes[at] = PUNCTUATION[rng.usize(0..PUNCTUATION.len())],
            _ => {
                let other = rng.usize(0..bytes.len());
                bytes.swap(at, other);
            }
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

#[test]
fn mangled_policies_never_panic() {
    let root = support::scenario::repo_root();
    let sources: Vec<String> = [
        "policies/acme/cloud-endpoint.yaml",
        "policies/acme/eks.yaml",
        "policies/reference/multicloud-full.yaml",
        "tests/scenarios/semantics.yaml",
        "tests/scenarios/http-request.yaml",
        "tests/scenarios/circuit-breaker.yaml",
    ]
    .iter()
    .map(|p| std::fs::read_to_string(root.join(p)).unwrap())
    .collect();
    let mut rng = fastrand::Rng::with_seed(0x9e37_79b9_7f4a_7c15);
    let (mut compiled, mut rejected) = (0, 0);
    for _ in 0..3000 {
        let src = &sources[rng.usize(0..sources.len())];
        let text = mangle(src, &mut rng);
        let docs = match parse_yaml_documents(&text) {
            Ok(nodes) => nodes,
            Err(_) => {
                rejected += 1;
                continue;
            }
        };
        let mut docs: Vec<SourceDoc> = docs
            .into_iter()
            .map(|node| SourceDoc {
                file: "m.yaml".into(),
                node,
            })
            .collect();
        // Scenario files hold their documents under `documents:`; unwrap them too.
        if let Some(inner) = docs
            .first()
            .and_then(|d| d.node.get("documents"))
            .and_then(|d| d.as_seq())
        {
            docs = inner
                .iter()
                .map(|node| SourceDoc {
                    file: "m.yaml".into(),
                    node: node.clone(),
                })
                .collect();
        }
        match build_gateway(
            &docs,
            Options {
                strict: rng.usize(0..2) == 0,
            },
            "m",
        )
        .0
        {
            Some(_) => compiled += 1,
            None => rejected += 1,
        }
    }
    // Both outcomes must occur, or the mutations are too weak (or too strong) to mean anything.
    assert!(
        compiled > 100 && rejected > 100,
        "compiled {compiled}, rejected {rejected}"
    );
}

/// Hostile requests through the Acme gateway: odd routing headers, paths and queries get a
/// response (never a panic), and a forward only ever goes to a declared pool.
#[test]
fn hostile_requests_never_panic_and_never_leave_the_pools() {
    let gw = acme_gateway();
    let declared: Vec<String> = gw.pools.values().map(|p| p.url.clone()).collect();
    let seeds = [
        "catalog-eks",
        "orders-eks",
        "x.internal/",
        "evil.example:443/#",
        "[::1]",
        "a b",
        "%2e%2e",
        "${1}",
        "'",
        "\u{0}",
        "",
    ];
    let mut rng = fastrand::Rng::with_seed(42);
    let up = Recorder::with_body(b"{}");
    for _ in 0..2000 {
        let mut value: Vec<u8> = seeds[rng.usize(0..seeds.len())].as_bytes().to_vec();
        for _ in 0..rng.usize(0..3) {
            let at = rng.usize(0..value.len() + 1);
            value.insert(at, PUNCTUATION[rng.usize(0..PUNCTUATION.len())]);
        }
        let value = String::from_utf8_lossy(&value).into_owned();
        let path = ["/", "/a?b=%zz&&=", "/%ff/../x", "/?q=${x}"][rng.usize(0..4)];
        let headers: Headers = [("X-Acme-Api", value.as_str())].into_iter().collect();
        let head = RequestHead::from_url(
            "GET",
            &format!("https://api.acme.example{path}"),
            headers,
            "203.0.113.1".parse().unwrap(),
        )
        .unwrap();
        let reply =
            pollster::block_on(gw.handle(head, &up, &NoLimits, &LocalTrust::default(), &mut First));
        assert!((200..600).contains(&reply.head.status));
    }
    let sent = up.sent.borrow();
    assert!(!sent.is_empty(), "some requests must be forwarded");
    assert!(
        sent.iter().all(|e| declared.contains(e)),
        "forwarded outside the declared pools"
    );
}

/// Mangled tokens and webhook signatures against the Acme gateway: each is refused with 401 or
/// 403 (never a 5xx, never a panic), and only the untouched originals get through.
#[test]
fn mangled_tokens_and_signatures_are_refused_never_panic() {
    let mut gw = acme_gateway();
    let mut secrets: edge_gateway::secrets::Secrets = gw
        .secret_refs
        .iter()
        .map(|r| (r.clone(), format!("value-of-{}", r.1)))
        .collect();
    secrets.insert(("acme".into(), "github-webhook-secret".into()), "s".into());
    gw.set_secrets(secrets);
    let trust = LocalTrust::default();
    let now_s = 1_800_000_000;
    trust.now_ms.set(now_s * 1000);
    trust.serve(
        "http://127.0.0.1:18200/.well-known/jwks.json",
        Ok(edge_gateway::devkeys::jwks(&["rsa-1", "ec-1", "ed-1"]).to_string()),
    );
    let claims = serde_json::json!({"iss": "https://idp.acme.example/", "aud": "orders-api",
                                    "sub": "ada", "exp": now_s + 600});
    let tokens: Vec<String> = ["rsa-1", "ec-1", "ed-1"]
        .iter()
        .map(|k| edge_gateway::devkeys::mint(k, None, &serde_json::json!({}), &claims).unwrap())
        .collect();
    let body = br#"{"zen":"hi"}"#.to_vec();
    let signature = {
        use hmac::Mac;
        let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"s").unwrap();
        m.update(&body);
        let hex: String = m
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        format!("sha256={hex}")
    };
    let send = |api: &str, header: (&str, &str)| {
        let headers: Headers = [("X-Acme-Api", api), header].into_iter().collect();
        let head = RequestHead::from_url(
            "POST",
            "https://api.acme.example/x",
            headers,
            "192.0.2.1".parse().unwrap(),
        )
        .unwrap();
        pollster::block_on(gw.handle(
            head,
            &Recorder::with_body(&body),
            &Allow,
            &trust,
            &mut First,
        ))
        .head
        .status
    };
    for t in &tokens {
        assert_eq!(
            send("orders-eks", ("authorization", &format!("Bearer {t}"))),
            200
        );
    }
    assert_eq!(
        send("webhook-gke", ("x-hub-signature-256", &signature)),
        200
    );
    let alphabet = b"AZaz09-_.=+/ \0\xff{}\"";
    let mut rng = fastrand::Rng::with_seed(7);
    for i in 0..3000 {
        let (api, name, original) = match i % 4 {
            3 => ("webhook-gke", "x-hub-signature-256", signature.clone()),
            k => (
                "orders-eks",
                "authorization",
                format!("Bearer {}", tokens[k]),
            ),
        };
        let mut v = original.clone().into_bytes();
        match rng.usize(0..4) {
            0 => {
                let at = rng.usize(0..v.len());
                v[at] = alphabet[rng.usize(0..alphabet.len())];
            }
            1 => v.truncate(rng.usize(0..v.len())),
            2 => {
                let at = rng.usize(0..=v.len());
                v.insert(at, alphabet[rng.usize(0..alphabet.len())]);
            }
            _ => {
                let (a, b) = (rng.usize(0..v.len()), rng.usize(0..v.len()));
                v.swap(a, b);
            }
        }
        let value = String::from_utf8_lossy(&v).into_owned();
        let status = send(api, (name, &value));
        if value == original {
            continue;
        }
        assert!(
            status == 401
                || status == 403
                || (status == 200 && value.eq_ignore_ascii_case(&original)),
            "{name}: {value:?} got {status}"
        );
    }
}

/// policies/acme, compiled.
fn acme_gateway() -> edge_gateway::gateway::Gateway {
    let root = support::scenario::repo_root();
    let files = edge_gateway::files::expand(&[root.join("policies/acme")]).unwrap();
    let (docs, _) = edge_gateway::files::load(&files);
    let mut gw = build_gateway(&docs, Options::default(), "t").0.unwrap();
    // Every secret the policies name, as the Worker would hold them.
    let secrets = gw
        .secret_refs
        .iter()
        .map(|r| (r.clone(), format!("value-of-{}", r.1)))
        .collect();
    gw.set_secrets(secrets);
    gw
}

/// Records which internal endpoint each forward went to; the client's body is `body`.
struct Recorder {
    sent: RefCell<Vec<String>>,
    body: Vec<u8>,
}

impl Recorder {
    fn with_body(body: &[u8]) -> Recorder {
        Recorder {
            sent: RefCell::new(Vec::new()),
            body: body.to_vec(),
        }
    }
}

impl Upstream for Recorder {
    type Body = ();
    async fn send(&self, out: Outbound<'_>) -> Result<(ResponseHead, ()), UpstreamError> {
        self.sent.borrow_mut().push(out.endpoint.to_string());
        Ok((
            ResponseHead {
                status: 200,
                headers: Headers::new(),
            },
            (),
        ))
    }

    fn body_replayable(&self) -> bool {
        true
    }

    async fn request_body(&self, _limit: usize) -> Result<std::rc::Rc<[u8]>, BodyError> {
        Ok(self.body.as_slice().into())
    }
}

/// A limiter that is down (rate-limit's `on_error` decides).
struct NoLimits;

impl RateLimiter for NoLimits {
    async fn check(&self, _: &str, _: &[LimitCheck]) -> Result<Vec<Decision>, String> {
        Err("no limiter in this test".into())
    }
}

/// A limiter with a fresh bucket per call: everything is allowed, replays too.
struct Allow;

impl RateLimiter for Allow {
    async fn check(&self, _: &str, checks: &[LimitCheck]) -> Result<Vec<Decision>, String> {
        Ok(checks
            .iter()
            .map(|c| Bucket::default().apply(std::slice::from_ref(c), 0)[0])
            .collect())
    }
}

struct First;

impl Random for First {
    fn below(&mut self, _n: usize) -> usize {
        0
    }
}
