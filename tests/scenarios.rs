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
use support::scenario::{load_all, load_ngrok_docs, Case, Observed, Scenario};

/// Records what would have been sent and answers like a demo origin. Port 9 refuses, port
/// 8999 times out, port 8NNN answers status NNN (a 3xx with `location` = the `to` query
/// parameter), port 8201 answers 200 with a 300 KiB body.
#[derive(Default)]
struct FakeUpstream {
    sent: RefCell<Vec<(String, String, Headers)>>,
    /// The body each request carried (`None`: the client's, as forwarded).
    sent_bodies: RefCell<Vec<Option<String>>>,
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
        self.sent_bodies.borrow_mut().push(
            out.body
                .as_ref()
                .map(|b| String::from_utf8_lossy(b).into_owned()),
        );
        if out.url.contains(":9/") {
            return Err(UpstreamError::Unreachable("connection refused".into()));
        }
        if out.url.contains(":8999/") {
            return Err(UpstreamError::Timeout {
                after_ms: out.timeout_ms.unwrap_or(30_000),
            });
        }
        let port_status = out
            .url
            .split_once(":8")
            .and_then(|(_, rest)| rest.get(..3))
            .and_then(|s| s.parse::<u16>().ok())
            .filter(|s| (300..600).contains(s));
        if let Some(status) = port_status {
            let mut headers = Headers::new();
            headers.set("content-type", "text/plain");
            if let Some((_, to)) = out.url.split_once("?to=") {
                headers.set("location", &edge_gateway::http::percent_decode(to, true));
            }
            return Ok((
                ResponseHead { status, headers },
                if status == 503 {
                    "overloaded".into()
                } else {
                    format!("status {status} from {}", out.member)
                },
            ));
        }
        if out.url.contains(":8201/") {
            return Ok((
                ResponseHead {
                    status: 200,
                    headers: Headers::new(),
                },
                "x".repeat(300 << 10),
            ));
        }
        // Body actions: `/echo` answers with the body it received (as rewritten, if it was), with
        // the status and content type the request's `x-echo-status` / `x-echo-content-type` name
        // (default 200, text/plain); `/gzipped` and `/deflated` answer encoded responses (gzip
        // arrives decoded, as from the Worker's fetch; deflate does not).
        if out.url.contains("/echo") {
            let body = out.body.as_deref().unwrap_or(&self.body);
            let mut headers = Headers::new();
            let asked = |name: &str| out.headers.get(name).map(str::to_string);
            let content_type = asked("x-echo-content-type").unwrap_or("text/plain".into());
            headers.set("content-type", &content_type);
            headers.set("content-length", &body.len().to_string());
            let status = asked("x-echo-status").and_then(|s| s.parse().ok());
            let body = String::from_utf8_lossy(body).into_owned();
            return Ok((
                ResponseHead {
                    status: status.unwrap_or(200),
                    headers,
                },
                body,
            ));
        }
        for (path, coding) in [("/gzipped", "gzip"), ("/deflated", "deflate")] {
            if out.url.contains(path) {
                let mut headers = Headers::new();
                headers.set("content-type", "text/plain");
                headers.set("content-encoding", coding);
                let body = format!("{coding} body from {}", out.member);
                return Ok((
                    ResponseHead {
                        status: 200,
                        headers,
                    },
                    body,
                ));
            }
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

    async fn read_body(&self, body: String, limit: usize) -> Result<Vec<u8>, BodyError> {
        if body.len() > limit {
            return Err(BodyError::TooLarge { limit });
        }
        Ok(body.into_bytes())
    }

    fn decodes(&self, coding: &str) -> bool {
        matches!(coding, "gzip" | "br")
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
        Body::Abort => "<aborted>".to_string(),
        Body::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
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
        // `http://127.0.0.1:18201/x?y` -> `/x?y`
        upstream_uri: sent.first().map(|(_, url, _)| {
            let rest = url.split_once("://").map_or(url.as_str(), |(_, r)| r);
            rest.find('/')
                .map_or("/".to_string(), |i| rest[i..].to_string())
        }),
        notes: reply.notes.clone(),
        aborted: matches!(reply.body, Body::Abort),
    };
    case.expect.check(&seen)
}

#[test]
fn scenarios() {
    let count = run_all(load_all());
    assert!(count >= 20, "only {count} cases ran");
}

/// ngrok's own documented examples, each with the outcome its page states.
#[test]
fn ngrok_docs() {
    let corpus = load_ngrok_docs();
    // The cases tests/e2e/ngrok_docs.rs sends to the Worker: 321 when the corpus was written.
    let live = corpus
        .iter()
        .flat_map(|s| &s.cases)
        .filter(|c| c.e2e)
        .count();
    assert!(
        live >= 321,
        "only {live} documented examples are marked to run end to end"
    );
    let count = run_all(corpus);
    // 395 cases when the corpus was written (70 from the action pages, 325 from the macros,
    // variables, concepts and guides): a corpus that shrinks has lost examples (a file the
    // loader skips, a scenario cut short), which must be a decision, not an accident.
    assert!(count >= 395, "only {count} documented examples ran");
}

/// Runs every case of `scenarios`; fails listing every failing case. Returns the cases run.
fn run_all(scenarios: Vec<Scenario>) -> usize {
    let mut failures = Vec::new();
    let mut count = 0;
    for sc in scenarios {
        let (gw, diags) = build_gateway(&sc.source_docs(), Options::default(), "test");
        let Some(mut gw) = gw else {
            // Every case of a scenario that does not compile fails; the other files still run.
            count += sc.cases.len();
            failures.push(format!("{}: does not compile: {diags:#?}", sc.file));
            continue;
        };
        gw.set_secrets(sc.secrets.iter().cloned().collect());
        let limiter = MemoryLimiter::default();
        let trust = LocalTrust::default();
        serve_jwks(&trust, &sc.jwks);
        // One balancer per scenario: consecutive cases reach different pool members, as they
        // would in the Worker (state shared by a pool, like a replay log, must hold across them).
        let mut rng = Cycle(0);
        for case in &sc.cases {
            count += 1;
            for n in 1..=case.repeat {
                if let Err(e) = run_case(&gw, &sc, &limiter, &trust, &mut rng, case) {
                    failures.push(format!("{} / {} (#{n}): {e}", sc.file, case.name));
                    break;
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failing case(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
    count
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

/// An http-request URL built from a request header: whatever the client sends, only declared
/// internal endpoints are ever contacted, and every request gets an answer.
#[test]
fn hostile_subrequest_targets_never_leave_the_pools() {
    let sc = support::scenario::load(
        &support::scenario::repo_root().join("tests/scenarios/http-request.yaml"),
    );
    let gw = build_gateway(&sc.source_docs(), Options::default(), "t")
        .0
        .unwrap();
    let declared: Vec<String> = gw.pools.values().map(|p| p.url.clone()).collect();
    let seeds = [
        "acme",
        "evil.example/x#",
        "acme.internal@evil.example",
        "acme.internal:1/..",
        "127.0.0.1:18301/",
        "[::1]",
        "%2e%2e",
        "a b",
        "\u{0}",
        "",
    ];
    let punctuation = b"{}[]:/?#@%.-' \\";
    let mut rng = fastrand::Rng::with_seed(6);
    let up = FakeUpstream::default();
    let limiter = MemoryLimiter::default();
    let trust = LocalTrust::default();
    for _ in 0..1000 {
        let mut value = seeds[rng.usize(0..seeds.len())].as_bytes().to_vec();
        for _ in 0..rng.usize(0..3) {
            let at = rng.usize(0..value.len() + 1);
            value.insert(at, punctuation[rng.usize(0..punctuation.len())]);
        }
        let value = String::from_utf8_lossy(&value).into_owned();
        let headers: Headers = [("x-tenant", value.as_str())].into_iter().collect();
        let head = RequestHead::from_url(
            "GET",
            "https://gw.example/api/x",
            headers,
            "192.0.2.1".parse().unwrap(),
        )
        .unwrap();
        let reply = pollster::block_on(gw.handle(head, &up, &limiter, &trust, &mut Cycle(0)));
        assert!(
            [200, 403, 503].contains(&reply.head.status),
            "{value:?}: {}",
            reply.head.status
        );
    }
    let sent = up.sent.borrow();
    // An unmangled `acme` names a declared endpoint, so the checks below have requests to see.
    assert!(sent.len() > 30, "only {} requests were sent", sent.len());
    for (endpoint, url, _) in sent.iter() {
        assert!(declared.contains(endpoint), "{endpoint} ({url})");
        assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    }
}
