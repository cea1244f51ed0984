//! What each access-control action adds to a request (criterion, native): the same one-rule
//! policy with and without the action in front of a `custom-response`, so the difference is the
//! action. JWT: a fresh RS256 token (parse, claims, RSA verify; keys already cached) and the same
//! token again (the verified-token cache). Webhooks: a GitHub HMAC over 1 KiB and 64 KiB, and
//! SendGrid's ECDSA. Signature verification here is RustCrypto; the Worker uses WebCrypto (see
//! docs/performance.md for both).

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};

#[path = "gateway_support.rs"]
mod gateway_support;
use edge_gateway::gateway::{
    BodyError, Gateway, LocalTrust, Outbound, RateLimiter, Upstream, UpstreamError,
};
use edge_gateway::http::{Headers, RequestHead, ResponseHead};
use edge_gateway::limiter::{Bucket, Decision, LimitCheck};
use gateway_support::{gateway_from_yaml, First};
use hmac::Mac;
use serde_json::json;
use std::cell::RefCell;
use std::rc::Rc;

/// The client's body for the request being handled.
struct BodyUpstream(RefCell<Rc<[u8]>>);

impl Upstream for BodyUpstream {
    type Body = ();
    async fn send(&self, _: Outbound<'_>) -> Result<(ResponseHead, ()), UpstreamError> {
        unreachable!("these policies answer themselves")
    }
    fn body_replayable(&self) -> bool {
        true
    }

    async fn request_body(&self, _limit: usize) -> Result<Rc<[u8]>, BodyError> {
        Ok(Rc::clone(&self.0.borrow()))
    }
}

#[derive(Default)]
struct MemoryLimiter(RefCell<std::collections::HashMap<String, Bucket>>);

impl RateLimiter for MemoryLimiter {
    async fn check(&self, bucket: &str, checks: &[LimitCheck]) -> Result<Vec<Decision>, String> {
        Ok(self
            .0
            .borrow_mut()
            .entry(bucket.to_string())
            .or_default()
            .apply(checks, 0))
    }
}

const JWKS: &str = "https://idp.acme.example/jwks.json";
const NOW_S: i64 = 1_800_000_000;

fn gateway(action: &str) -> Gateway {
    let yaml = format!(
        "on_http_request:\n  - actions:\n{action}      - type: custom-response\n        config: {{body: ok}}\n"
    );
    gateway_from_yaml(&yaml)
}

fn head(method: &str, headers: &[(&str, &str)]) -> RequestHead {
    let h: Headers = headers.iter().copied().collect();
    RequestHead::from_url(
        method,
        "https://gw.example/x",
        h,
        "192.0.2.7".parse().unwrap(),
    )
    .unwrap()
}

fn token(sub: usize) -> String {
    let claims = json!({"iss": "https://idp.acme.example/", "aud": "orders-api",
                        "sub": format!("user-{sub}"), "exp": NOW_S + 3600});
    edge_gateway::devkeys::mint("rsa-1", None, &json!({}), &claims).unwrap()
}

fn github(secret: &str, body: &[u8]) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}

fn benches(c: &mut Criterion) {
    let limiter = MemoryLimiter::default();
    let trust = LocalTrust::default();
    trust.now_ms.set(NOW_S as u64 * 1000);
    trust.serve(
        JWKS,
        Ok(edge_gateway::devkeys::jwks(&["rsa-1", "ec-1"]).to_string()),
    );
    let up = BodyUpstream(RefCell::new(Rc::from(&b""[..])));
    let run = |gw: &Gateway, req: RequestHead| {
        let reply = pollster::block_on(gw.handle(req, &up, &limiter, &trust, &mut First));
        assert_eq!(reply.head.status, 200, "{:?}", reply.body);
    };

    let baseline = gateway("");
    c.bench_function("baseline: custom-response only", |b| {
        b.iter(|| run(&baseline, head("GET", &[])))
    });

    let ranges: String = (0..1000)
        .map(|i| format!("\"10.{}.{}.0/24\", ", i / 256, i % 256))
        .collect();
    let ips = gateway(&format!(
        "      - type: restrict-ips\n        config: {{allow: [{ranges}\"192.0.2.0/24\"]}}\n"
    ));
    c.bench_function("restrict-ips, 1001 ranges", |b| {
        b.iter(|| run(&ips, head("GET", &[])))
    });

    let basic = gateway(
        "      - type: basic-auth\n        config: {credentials: [\"ada:correct-horse\", \"bob:battery-staple\"]}\n",
    );
    c.bench_function("basic-auth, 2 credentials", |b| {
        b.iter(|| {
            run(
                &basic,
                head(
                    "GET",
                    &[("authorization", "Basic YWRhOmNvcnJlY3QtaG9yc2U=")],
                ),
            )
        })
    });

    let jwt = gateway(&format!(
        "      - type: jwt-validation\n        config:\n          issuer: {{allow_list: [{{value: \"https://idp.acme.example/\"}}]}}\n          audience: {{allow_list: [{{value: orders-api}}]}}\n          http: {{tokens: [{{type: jwt, method: header, name: Authorization, prefix: \"Bearer \"}}]}}\n          jws: {{allowed_algorithms: [RS256, ES256], keys: {{sources: {{additional_jkus: [\"{JWKS}\"]}}}}}}\n"
    ));
    let cached = format!("Bearer {}", token(0));
    run(&jwt, head("GET", &[("authorization", &cached)])); // keys fetched and cached
    c.bench_function("jwt-validation, cached RS256 token", |b| {
        b.iter(|| run(&jwt, head("GET", &[("authorization", &cached)])))
    });
    let mut n = 1;
    c.bench_function(
        "jwt-validation, fresh RS256 token (native RSA verify)",
        |b| {
            b.iter_batched(
                || {
                    n += 1;
                    head("GET", &[("authorization", &format!("Bearer {}", token(n)))])
                },
                |req| run(&jwt, req),
                BatchSize::SmallInput,
            )
        },
    );

    let hook = gateway(
        "      - type: verify-webhook\n        config: {provider: github, secret: gh-secret}\n",
    );
    for size in [1024usize, 64 * 1024] {
        let body: Vec<u8> = (0..size).map(|i| b'a' + (i % 26) as u8).collect();
        let sig = github("gh-secret", &body);
        *up.0.borrow_mut() = Rc::from(body.as_slice());
        c.bench_function(
            &format!("verify-webhook github, {} KiB body", size / 1024),
            |b| b.iter(|| run(&hook, head("POST", &[("x-hub-signature-256", &sig)]))),
        );
    }
    let replay = gateway(
        "      - type: verify-webhook\n        config: {provider: github, secret: gh-secret, replay_protection: true}\n",
    );
    let body: Vec<u8> = vec![b'x'; 1024];
    let sig = github("gh-secret", &body);
    *up.0.borrow_mut() = Rc::from(body.as_slice());
    let mut d = 0;
    c.bench_function(
        "verify-webhook github 1 KiB + replay log (in-memory bucket)",
        |b| {
            b.iter(|| {
                d += 1;
                let id = d.to_string();
                run(
                    &replay,
                    head(
                        "POST",
                        &[("x-hub-signature-256", &sig), ("x-github-delivery", &id)],
                    ),
                )
            })
        },
    );
}

criterion_group!(access, benches);
criterion_main!(access);
