//! Rule dispatch: finding and running the matching rule among 10, 100 and 1,000 routes, with
//! the compiled index and with the plain in-order loop (`RuleSet::linear`). Each request is
//! routed by the last route (the plain loop's worst case; its average is about half).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use edge_gateway::gateway::{
    Body, BodyError, Gateway, LocalTrust, Outbound, Random, RateLimiter, Upstream, UpstreamError,
};
use edge_gateway::http::{Headers, RequestHead, ResponseHead};
use edge_gateway::limiter::{Decision, LimitCheck};
use edge_gateway::manifest::{build_gateway, Options, SourceDoc};
use edge_gateway::program::RuleSet;
use serde_json::json;
use std::hint::black_box;

/// Never reached: every route answers with custom-response.
struct NoUpstream;

impl Upstream for NoUpstream {
    type Body = ();
    async fn send(&self, _: Outbound<'_>) -> Result<(ResponseHead, ()), UpstreamError> {
        unreachable!("the routes answer themselves")
    }

    fn body_replayable(&self) -> bool {
        true
    }

    async fn request_body(&self, _limit: usize) -> Result<std::rc::Rc<[u8]>, BodyError> {
        Ok(std::rc::Rc::from(&b""[..]))
    }
}

struct NoLimiter;

impl RateLimiter for NoLimiter {
    async fn check(&self, _: &str, _: &[LimitCheck]) -> Result<Vec<Decision>, String> {
        Err("no rate limits here".into())
    }
}

struct Zero;

impl Random for Zero {
    fn below(&mut self, _: usize) -> usize {
        0
    }
}

#[derive(Clone, Copy)]
enum Routing {
    Header,
    Path,
}

impl Routing {
    fn name(self) -> &'static str {
        match self {
            Routing::Header => "header-routed",
            Routing::Path => "path-routed",
        }
    }

    fn expression(self, i: usize) -> String {
        match self {
            Routing::Header => format!("getReqHeader('X-Acme-Api')[0] == 'svc-{i}'"),
            Routing::Path => format!("req.url.path.startsWith('/svc-{i}/')"),
        }
    }

    fn request(self, i: usize) -> RequestHead {
        let (path, headers): (String, Headers) = match self {
            Routing::Header => (
                "/items".into(),
                [
                    ("X-Acme-Api", format!("svc-{i}").as_str()),
                    ("Accept", "*/*"),
                ]
                .into_iter()
                .collect(),
            ),
            Routing::Path => (
                format!("/svc-{i}/items"),
                [("Accept", "*/*")].into_iter().collect(),
            ),
        };
        let url = format!("https://api.acme.example{path}");
        RequestHead::from_url("GET", &url, headers, "203.0.113.9".parse().unwrap()).unwrap()
    }
}

/// `n` routes, then a catch-all 404.
fn gateway(routing: Routing, n: usize, indexed: bool) -> Gateway {
    let mut rules: Vec<_> = (0..n)
        .map(|i| {
            json!({"expressions": [routing.expression(i)], "actions": [
                {"type": "custom-response", "config": {"body": format!("svc-{i}")}}]})
        })
        .collect();
    rules.push(json!({"actions": [{"type": "deny", "config": {"status_code": 404}}]}));
    let node = edge_gateway::source::from_json(&json!({ "on_http_request": rules }));
    let docs = [SourceDoc {
        file: "bench.yaml".into(),
        node,
    }];
    let (gw, diags) = build_gateway(&docs, Options::default(), "bench");
    let mut gw = gw.unwrap_or_else(|| panic!("{diags:?}"));
    let phase = &mut gw.public[0].policy.on_http_request;
    assert!(phase.dispatch().is_some(), "{n} routes are indexed");
    if !indexed {
        *phase = RuleSet::linear(std::mem::take(phase).into_rules());
    }
    gw
}

fn benches(c: &mut Criterion) {
    let trust = LocalTrust::default();
    for routing in [Routing::Header, Routing::Path] {
        let mut group = c.benchmark_group(format!("dispatch {}", routing.name()));
        for n in [10, 100, 1000] {
            let req = routing.request(n - 1);
            for (label, indexed) in [("indexed", true), ("linear", false)] {
                let gw = gateway(routing, n, indexed);
                let mut rng = Zero;
                let reply = pollster::block_on(gw.handle(
                    req.clone(),
                    &NoUpstream,
                    &NoLimiter,
                    &trust,
                    &mut rng,
                ));
                let want = format!("svc-{}", n - 1);
                assert!(
                    matches!(&reply.body, Body::Text(t) if *t == want),
                    "the last route answers"
                );
                group.bench_with_input(BenchmarkId::new(label, n), &req, |b, req| {
                    b.iter(|| {
                        pollster::block_on(gw.handle(
                            black_box(req.clone()),
                            &NoUpstream,
                            &NoLimiter,
                            &trust,
                            &mut rng,
                        ))
                    })
                });
            }
        }
        group.finish();
    }
}

criterion_group!(dispatch, benches);
criterion_main!(dispatch);
