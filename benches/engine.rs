//! Criterion benches of the core: compiling the Acme gateway (once per policy version in the
//! Worker) and handling the Acme scenario's requests (per request). Cases come from
//! `tests/scenarios/acme.yaml`, the same file the tests use.

#[path = "../tests/support/scenario.rs"]
mod scenario;

use criterion::{criterion_group, criterion_main, Criterion};
use edge_gateway::gateway::{
    BodyError, LocalTrust, Outbound, Random, RateLimiter, Upstream, UpstreamError,
};
use edge_gateway::http::{Headers, RequestHead, ResponseHead};
use edge_gateway::limiter::{Bucket, Decision, LimitCheck};
use edge_gateway::manifest::{build_gateway, Options};
use std::hint::black_box;

struct NullUpstream;

impl Upstream for NullUpstream {
    type Body = ();
    async fn send(&self, out: Outbound<'_>) -> Result<(ResponseHead, ()), UpstreamError> {
        black_box(&out.url);
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
        Ok(std::rc::Rc::from(&b""[..]))
    }
}

/// The Durable Object's arithmetic, in memory: what a bucket costs apart from the round trip.
#[derive(Default)]
struct MemoryLimiter(std::cell::RefCell<std::collections::HashMap<String, Bucket>>);

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

struct Cycle(usize);

impl Random for Cycle {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_add(1);
        self.0 % n
    }
}

fn benches(c: &mut Criterion) {
    let sc = scenario::load(&scenario::repo_root().join("tests/scenarios/acme.yaml"));
    let docs = sc.source_docs();
    c.bench_function("compile acme gateway (4 files, 10 documents)", |b| {
        b.iter(|| {
            build_gateway(black_box(&docs), Options::default(), "bench")
                .0
                .unwrap()
        })
    });

    let mut gw = build_gateway(&docs, Options::default(), "bench").0.unwrap();
    gw.set_secrets(sc.secrets.iter().cloned().collect());
    const NOW_S: i64 = 1_800_000_000;
    let heads: Vec<(String, RequestHead)> = sc
        .cases
        .iter()
        .map(|c| {
            let (url, filled, _) = sc.request_at(c, NOW_S);
            let headers: Headers = filled
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let head =
                RequestHead::from_url(&c.method, &url, headers, c.client_ip.parse().unwrap())
                    .unwrap();
            (c.name.clone(), head)
        })
        .collect();
    let routed = &heads[0].1;
    let mut rng = Cycle(0);
    let limiter = MemoryLimiter::default();
    let trust = LocalTrust::default();
    trust.now_ms.set(NOW_S as u64 * 1000);
    for (url, kids) in &sc.jwks {
        let kids: Vec<&str> = kids.iter().flatten().map(String::as_str).collect();
        trust.serve(url, Ok(edge_gateway::devkeys::jwks(&kids).to_string()));
    }
    c.bench_function(
        "handle a routed request (catalog-eks, request + response phase)",
        |b| {
            b.iter(|| {
                pollster::block_on(gw.handle(
                    black_box(routed.clone()),
                    &NullUpstream,
                    &limiter,
                    &trust,
                    &mut rng,
                ))
            })
        },
    );
    c.bench_function("handle every acme scenario request once", |b| {
        b.iter(|| {
            for (_, h) in &heads {
                black_box(pollster::block_on(gw.handle(
                    h.clone(),
                    &NullUpstream,
                    &limiter,
                    &trust,
                    &mut rng,
                )));
            }
        })
    });
}

/// A request through a policy that uses many actions at once (tests/scenarios/many-actions.yaml:
/// redirect miss, restrict-ips, set-vars, rate-limit, log, remove/add-headers, url-rewrite,
/// forward-internal, the member's circuit-breaker and add-headers, and a response phase with
/// add/remove-headers and compress-response).
fn many_actions(c: &mut Criterion) {
    let sc = scenario::load(&scenario::repo_root().join("tests/scenarios/many-actions.yaml"));
    let gw = build_gateway(&sc.source_docs(), Options::default(), "bench")
        .0
        .unwrap();
    let case = &sc.cases[0];
    let headers: Headers = case
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let head = RequestHead::from_url(
        &case.method,
        &case.url,
        headers,
        case.client_ip.parse().unwrap(),
    )
    .unwrap();
    let limiter = MemoryLimiter::default();
    let trust = LocalTrust::default();
    let mut rng = Cycle(0);
    c.bench_function(
        "handle a request through 14 actions (many-actions.yaml)",
        |b| {
            b.iter(|| {
                pollster::block_on(gw.handle(
                    black_box(head.clone()),
                    &NullUpstream,
                    &limiter,
                    &trust,
                    &mut rng,
                ))
            })
        },
    );
    let unrouted = RequestHead::from_url(
        "GET",
        "https://api.busy.example/other",
        Headers::new(),
        case.client_ip.parse().unwrap(),
    )
    .unwrap();
    c.bench_function(
        "same policy, unrouted request answered by custom-response",
        |b| {
            b.iter(|| {
                pollster::block_on(gw.handle(
                    black_box(unrouted.clone()),
                    &NullUpstream,
                    &limiter,
                    &trust,
                    &mut rng,
                ))
            })
        },
    );
}

/// The cost model's calibration (src/compile/cost.rs, docs/validation.md): each expression timed
/// on a request at the platform's limits, beside what the model predicts for native code.
fn cost_calibration(c: &mut Criterion) {
    use edge_gateway::compile::cost;
    use edge_gateway::expr::{ext, Expr, Scope};
    let mut headers = Headers::new();
    for i in 0..2000 {
        headers.append(&format!("x-h{i:04}"), &"v".repeat(50));
    }
    let query: Vec<String> = (0..3000).map(|i| format!("{i:04}")).collect();
    let url = format!(
        "https://api.example.com/{}?{}",
        "a".repeat(16 * 1024 - 1),
        query.join("&")
    );
    let req = RequestHead::from_url("GET", &url, headers, "192.0.2.1".parse().unwrap()).unwrap();
    let scope = Scope::new(&req, None, None, Default::default());
    let mut group = c.benchmark_group("cost model calibration (request at the limits)");
    for src in [
        "req.method == 'GET'",
        "req.url.path.startsWith('/api')",
        "req.url.path.contains('zzz')",
        "req.url.path.lower() == 'x'",
        "req.url.path.matches('^/api/v[0-9]+/users/[a-z0-9-]+$')",
        "'/x'.matches('^/api/v[0-9]+/users/[a-z0-9-]+$')",
        "req.headers.exists(k, k == 'nope')",
        "req.headers.exists(k, k.startsWith('y-'))",
        "req.url.query_params.exists(k, k == 'nope')",
        "getReqHeader('x-h0001')[0] == 'v'",
        "hasQueryParam('zzzz')",
    ] {
        let e = Expr::compile(src).unwrap();
        let model =
            cost::estimate(ext::env().compile(src).unwrap().expression()).ns / cost::WASM_FACTOR;
        group.bench_function(format!("{src} (model: {model:.0} ns)"), |b| {
            b.iter(|| black_box(e.eval(&scope)))
        });
    }
    group.finish();
}

criterion_group!(engine, benches, many_actions, cost_calibration);
criterion_main!(engine, part_benches, ipset_benches);

fn parts(c: &mut Criterion) {
    use edge_gateway::expr::{Expr, Scope, Template};
    let headers: Headers = [
        ("X-Acme-Api", "catalog-eks"),
        ("Accept", "*/*"),
        ("User-Agent", "bench"),
    ]
    .into_iter()
    .collect();
    let head = RequestHead::from_url(
        "GET",
        "https://api.acme.example/items?a=1",
        headers,
        "203.0.113.9".parse().unwrap(),
    )
    .unwrap();
    c.bench_function("part: Scope::new", |b| {
        b.iter(|| black_box(Scope::new(&head, None, None, Default::default())))
    });
    let scope = Scope::new(&head, None, None, Default::default());
    let e = Expr::compile("!hasReqHeader('X-Acme-Api')").unwrap();
    c.bench_function("part: eval hasReqHeader", |b| {
        b.iter(|| black_box(e.eval(&scope).unwrap()))
    });
    let t = Template::compile("https://${getReqHeader('X-Acme-Api')[0]}.internal").unwrap();
    c.bench_function("part: render forward url", |b| {
        b.iter(|| black_box(t.render(&scope).unwrap()))
    });
    // Variables are built on first read, per scope: each iteration is a new scope (compare with
    // `part: Scope::new`). The IP lists are policies/ip-intel: the shipped one and the examples.
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let files = edge_gateway::files::expand(&[root.join("policies/ip-intel")]).unwrap();
    let (mut docs, _) = edge_gateway::files::load(&files);
    docs.extend(
        edge_gateway::source::parse_yaml_documents("on_http_request: [{actions: [{type: deny}]}]")
            .unwrap()
            .into_iter()
            .map(|node| edge_gateway::manifest::SourceDoc {
                file: "b.yaml".into(),
                node,
            }),
    );
    let gw = edge_gateway::manifest::build_gateway(&docs, Default::default(), "b")
        .0
        .unwrap();
    let facts = edge_gateway::expr::Facts {
        ip_intel: std::sync::Arc::clone(&gw.ip_intel),
        ..Default::default()
    };
    for (name, src) in [
        ("conn.client_ip (a rate-limit key)", "conn.client_ip"),
        (
            "conn.client_ip.categories (all of conn)",
            "'com.openai' in conn.client_ip.categories",
        ),
        ("req.url.path", "req.url.path"),
        ("req.user_agent.name", "req.user_agent.name"),
    ] {
        let e = Expr::compile(src).unwrap();
        c.bench_function(&format!("part: new scope + first read of {name}"), |b| {
            b.iter(|| {
                let s = Scope::new(&head, None, None, Default::default()).with_facts(&facts);
                black_box(e.eval(&s).unwrap())
            })
        });
    }
}
criterion_group!(part_benches, parts);

/// restrict-ips: the lookup must not grow with the number of ranges.
fn ipset(c: &mut Criterion) {
    use edge_gateway::ipset::IpSet;
    let mut rng = fastrand::Rng::with_seed(1);
    for n in [10usize, 10_000] {
        let mut set = IpSet::default();
        for _ in 0..n {
            let len = rng.u8(16..=32);
            let net = format!("{}.{}.{}.0/{len}", rng.u8(1..224), rng.u8(..), rng.u8(..));
            let net: ipnet::IpNet = net.parse().unwrap();
            set.insert(&net.trunc().to_string()).unwrap();
        }
        let probes: Vec<std::net::IpAddr> = (0..64)
            .map(|_| std::net::IpAddr::from([rng.u8(1..224), rng.u8(..), rng.u8(..), rng.u8(..)]))
            .collect();
        c.bench_function(&format!("ipset lookup, {n} ranges"), |b| {
            let mut i = 0;
            b.iter(|| {
                i = (i + 1) % probes.len();
                black_box(set.lookup(probes[i]))
            })
        });
    }
}
criterion_group!(ipset_benches, ipset);
