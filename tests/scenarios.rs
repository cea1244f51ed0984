//! Runs every scenario in `tests/scenarios/` through the core with a recording fake upstream.

mod support;

use edge_gateway::gateway::{
    Body, BodyError, Gateway, LocalTrust, Outbound, Random, RateLimiter, Upstream, UpstreamError,
};
use edge_gateway::http::{Headers, RequestHead, ResponseHead};
use edge_gateway::limiter::{Bucket, Decision, LimitCheck};
use edge_gateway::manifest::{build_gateway, Options};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use support::scenario::{load_all, Case, Observed, Scenario};

/// Records what would have been sent and answers like a demo origin.
#[derive(Default)]
struct FakeUpstream {
    sent: RefCell<Vec<(String, String, Headers)>>,
    /// The client's body, as the shell would hold it.
    body: Vec<u8>,
    /// How often an action read the body.
    body_reads: Cell<usize>,
}

impl Upstream for FakeUpstream {
    type Body = String;
    async fn send(&self, out: Outbound<'_>) -> Result<(ResponseHead, String), UpstreamError> {
        self.sent.borrow_mut().push((
            out.endpoint.to_string(),
            out.url.clone(),
            out.headers.clone(),
        ));
        if out.url.contains(":9") {
            return Err(UpstreamError::Unreachable("connection refused".into()));
        }
        if out.url.contains(":8503") {
            let mut headers = Headers::new();
            headers.set("content-type", "text/plain");
            return Ok((
                ResponseHead {
                    status: 503,
                    headers,
                },
                "overloaded".into(),
            ));
        }
        let mut headers = Headers::new();
        headers.set("content-type", "application/json");
        headers.set("x-demo-origin", out.member);
        headers.set("connection", "keep-alive");
        Ok((
            ResponseHead {
                status: 200,
                headers,
            },
            format!("{{\"member\":\"{}\"}}", out.member),
        ))
    }

    fn body_replayable(&self) -> bool {
        true
    }

    async fn request_body(&self, limit: usize) -> Result<Rc<[u8]>, BodyError> {
        self.body_reads.set(self.body_reads.get() + 1);
        if self.body.len() > limit {
            return Err(BodyError::TooLarge { limit });
        }
        Ok(self.body.as_slice().into())
    }
}

/// The identity provider's JWKS as a scenario says: the dev keys named, or down.
fn serve_jwks(trust: &LocalTrust, jwks: &[(String, Option<Vec<String>>)]) {
    for (url, kids) in jwks {
        let doc = match kids {
            Some(kids) => {
                let kids: Vec<&str> = kids.iter().map(String::as_str).collect();
                Ok(edge_gateway::devkeys::jwks(&kids).to_string())
            }
            None => Err("503 Service Unavailable (test)".to_string()),
        };
        trust.serve(url, doc);
    }
}

/// The limiter's arithmetic in memory with a settable clock, or down.
#[derive(Default)]
struct MemoryLimiter {
    buckets: RefCell<HashMap<String, Bucket>>,
    now: Cell<u64>,
    down: Cell<bool>,
}

impl RateLimiter for MemoryLimiter {
    async fn check(&self, bucket: &str, checks: &[LimitCheck]) -> Result<Vec<Decision>, String> {
        if self.down.get() {
            return Err("bucket object unreachable (test)".into());
        }
        Ok(self
            .buckets
            .borrow_mut()
            .entry(bucket.to_string())
            .or_default()
            .apply(checks, self.now.get()))
    }
}

struct Cycle(usize);

impl Random for Cycle {
    fn below(&mut self, n: usize) -> usize {
        self.0 += 1;
        self.0 % n
    }
}

fn run_case(
    gw: &Gateway,
    sc: &Scenario,
    limiter: &MemoryLimiter,
    trust: &LocalTrust,
    rng: &mut Cycle,
    case: &Case,
) -> Result<(), String> {
    if let Some(t) = case.at_ms {
        limiter.now.set(t);
        trust.now_ms.set(t);
    }
    limiter.down.set(case.limiter_down);
    serve_jwks(trust, &case.jwks);
    let (url, filled, body) = sc.request_at(case, (trust.now_ms.get() / 1000) as i64);
    let headers: Headers = filled
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let mut head =
        RequestHead::from_url(&case.method, &url, headers, case.client_ip.parse().unwrap())
            .ok_or("bad request url")?;
    if let Some(cf) = &case.cf {
        head.conn = std::sync::Arc::new(edge_gateway::conn::ConnFacts::from_cf(cf));
    }
    let up = FakeUpstream {
        body: body.into_bytes(),
        ..FakeUpstream::default()
    };
    let reply = pollster::block_on(gw.handle(head, &up, limiter, trust, rng));
    let body = match &reply.body {
        Body::Empty => String::new(),
        Body::Text(t) | Body::Upstream(t) => t.clone(),
    };
    let sent = up.sent.borrow();
    let pairs = |h: &Headers| {
        h.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let seen = Observed {
        status: reply.head.status,
        headers: pairs(&reply.head.headers),
        body,
        // `https://catalog-eks.internal` -> `catalog-eks`
        forwarded_to: sent.first().map(|(pool, ..)| {
            pool.trim_start_matches("https://")
                .trim_end_matches(".internal")
                .to_string()
        }),
        upstream_headers: sent.first().map(|(_, _, h)| pairs(h)),
    };
    case.expect.check(&seen)
}

#[test]
fn scenarios() {
    let mut failures = Vec::new();
    let mut count = 0;
    for sc in load_all() {
        let (gw, diags) = build_gateway(&sc.source_docs(), Options::default(), "test");
        let mut gw = gw.unwrap_or_else(|| panic!("{}: does not compile: {diags:#?}", sc.file));
        gw.set_secrets(sc.secrets.iter().cloned().collect());
        let limiter = MemoryLimiter::default();
        let trust = LocalTrust::default();
        serve_jwks(&trust, &sc.jwks);
        // One balancer per scenario: consecutive cases reach different pool members, as they
        // would in the Worker (state shared by a pool, like a replay log, must hold across them).
        let mut rng = Cycle(0);
        for case in &sc.cases {
            count += 1;
            if let Err(e) = run_case(&gw, &sc, &limiter, &trust, &mut rng, case) {
                failures.push(format!("{} / {}: {e}", sc.file, case.name));
            }
        }
    }
    assert!(count >= 20, "only {count} cases ran");
    assert!(
        failures.is_empty(),
        "{} failing case(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Several rate-limit actions on one key cost one round trip to the bucket, not one each.
#[test]
fn limits_sharing_a_key_share_one_round_trip() {
    struct Counting(RefCell<Vec<usize>>, MemoryLimiter);
    impl RateLimiter for Counting {
        async fn check(
            &self,
            bucket: &str,
            checks: &[LimitCheck],
        ) -> Result<Vec<Decision>, String> {
            self.0.borrow_mut().push(checks.len());
            self.1.check(bucket, checks).await
        }
    }
    let sc = support::scenario::load(
        &support::scenario::repo_root().join("tests/scenarios/rate-limit.yaml"),
    );
    let gw = build_gateway(&sc.source_docs(), Options::default(), "t")
        .0
        .unwrap();
    let limiter = Counting(RefCell::new(Vec::new()), MemoryLimiter::default());
    let head = RequestHead::from_url(
        "GET",
        "https://gw.example/two",
        Headers::new(),
        "192.0.2.1".parse().unwrap(),
    )
    .unwrap();
    let reply = pollster::block_on(gw.handle(
        head,
        &FakeUpstream::default(),
        &limiter,
        &LocalTrust::default(),
        &mut Cycle(0),
    ));
    assert_eq!(reply.head.status, 200);
    assert_eq!(
        *limiter.0.borrow(),
        vec![2],
        "one call carrying both limits"
    );
}

/// The orders pool's per-caller limit (100 a minute per token subject) counts across the pool's
/// replicas: the balancer alternates members, and the 101st request is refused.
#[test]
fn a_pools_rate_limit_is_shared_by_its_members() {
    let sc =
        support::scenario::load(&support::scenario::repo_root().join("tests/scenarios/acme.yaml"));
    let mut gw = build_gateway(&sc.source_docs(), Options::default(), "t")
        .0
        .unwrap();
    gw.set_secrets(sc.secrets.iter().cloned().collect());
    let limiter = MemoryLimiter::default();
    let trust = LocalTrust::default();
    serve_jwks(&trust, &sc.jwks);
    let now_s = 1_800_000_000;
    limiter.now.set(now_s * 1000);
    trust.now_ms.set(now_s * 1000);
    let claims = serde_json::json!({"iss": "https://idp.acme.example/", "aud": "orders-api",
                                    "sub": "busy", "exp": now_s + 600});
    let token =
        edge_gateway::devkeys::mint("rsa-1", None, &serde_json::json!({}), &claims).unwrap();
    let auth = format!("Bearer {token}");
    let mut rng = Cycle(0);
    let mut members = std::collections::HashSet::new();
    let mut statuses = Vec::new();
    for i in 0..101 {
        let headers: Headers = [
            ("X-Acme-Api", "orders-eks"),
            ("Authorization", auth.as_str()),
        ]
        .into_iter()
        .collect();
        // A new address each time: the public endpoint's own limit is per address.
        let ip = format!("198.18.{}.{}", i / 250, i % 250 + 1);
        let head = RequestHead::from_url(
            "GET",
            "https://api.acme.example/orders",
            headers,
            ip.parse().unwrap(),
        )
        .unwrap();
        let up = FakeUpstream::default();
        let reply = pollster::block_on(gw.handle(head, &up, &limiter, &trust, &mut rng));
        if let Body::Upstream(b) = &reply.body {
            members.insert(b.clone());
        }
        statuses.push(reply.head.status);
    }
    assert_eq!(members.len(), 2, "both replicas served: {members:?}");
    assert!(statuses[..100].iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!(statuses[100], 429);
}
