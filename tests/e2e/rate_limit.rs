//! End to end: `rate-limit` through the real Worker and its local Durable Objects.
//! 50 concurrent clients hammer one bucket for several windows; every window admits exactly
//! `capacity`; Retry-After is never early; buckets are independent; counts survive a restart.
//! Runs when `EDGE_GATEWAY_E2E=1` (scripts/test.sh sets it).

use crate::support::stack::Stack;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const CAPACITY: usize = 10;
const RATE_MS: u64 = 2_000;
const WINDOWS: u64 = 3;
const CLIENTS: usize = 50;

/// The rate-limit policy used here, with the Acme pools behind it.
const POLICY: &str = r#"
on_http_request:
  - name: "a hot bucket, 10 per 2 s (below ngrok's 60 s floor, so accepted with a warning)"
    expressions: ["req.url.path == '/burst'"]
    actions:
      - type: rate-limit
        config:
          name: burst
          algorithm: sliding_window
          capacity: 10
          rate: 2s
          bucket_key: ["getReqHeader('X-Bucket')[0]"]
      - type: custom-response
        config: {body: "ok"}
  - name: a slow bucket, 3 per minute
    expressions: ["req.url.path == '/slow'"]
    actions:
      - type: rate-limit
        config: {name: slow, algorithm: sliding_window, capacity: 3, rate: 60s, bucket_key: ["getReqHeader('X-Bucket')[0]"]}
      - type: forward-internal
        config: {url: "https://catalog-eks.internal"}
  - actions:
      - type: forward-internal
        config: {url: "https://${getReqHeader('X-Acme-Api')[0]}.internal"}
"#;

struct Sample {
    sent: Instant,
    received: Instant,
    status: u16,
    retry_after: Option<u64>,
}

fn hammer(stack: &Stack, bucket: &str, until: Instant) -> Vec<Sample> {
    let samples = Arc::new(Mutex::new(Vec::new()));
    std::thread::scope(|s| {
        for _ in 0..CLIENTS {
            let samples = Arc::clone(&samples);
            s.spawn(move || {
                let agent = Stack::agent();
                while Instant::now() < until {
                    let sent = Instant::now();
                    let r = stack
                        .send(&agent, "GET", "/burst", &[("X-Bucket", bucket)], b"")
                        .expect("the gateway answers");
                    let retry_after = r
                        .header("retry-after")
                        .map(|v| v.parse().expect("Retry-After is whole seconds"));
                    samples.lock().unwrap().push(Sample {
                        sent,
                        received: Instant::now(),
                        status: r.status,
                        retry_after,
                    });
                }
            });
        }
    });
    Arc::try_unwrap(samples).ok().unwrap().into_inner().unwrap()
}

#[test]
fn rate_limits_are_exact_across_concurrent_clients_and_restarts() {
    if !crate::support::stack::e2e_enabled() {
        return;
    }
    let mut stack = Stack::start(&[("POLICY_REFRESH_SECONDS", "1")]);
    let dir = stack.acme_copy("rl", |t| t);
    std::fs::write(dir.join("cloud-endpoint.yaml"), POLICY).unwrap();
    stack.upload(&[&dir]);
    stack.wait_until("the policy is live", Duration::from_secs(30), |s| {
        s.get("/", &[("X-Acme-Api", "catalog-eks")])
            .is_ok_and(|r| r.status == 200)
    });

    // 1. A burst from 50 clients over several windows.
    let start = Instant::now();
    let until = start + Duration::from_millis(RATE_MS * WINDOWS + RATE_MS / 2);
    let samples = hammer(&stack, "hot", until);
    assert!(
        samples.iter().all(|s| s.status == 200 || s.status == 429),
        "only 200 and 429 expected"
    );
    // Each admission happened between sending and receiving: its midpoint is off by at most
    // half that answer's latency.
    let mut admitted: Vec<(Instant, Duration)> = samples
        .iter()
        .filter(|s| s.status == 200)
        .map(|s| {
            (
                s.sent + (s.received - s.sent) / 2,
                (s.received - s.sent) / 2,
            )
        })
        .collect();
    admitted.sort();
    let t0 = admitted[0].0;
    let worst = admitted.iter().map(|(_, e)| *e).max().unwrap();
    println!(
        "e2e rate-limit: {} requests, {} admitted, largest timing error of an admission {worst:?}",
        samples.len(),
        admitted.len()
    );
    assert!(
        worst < Duration::from_millis(RATE_MS / 4),
        "answers too slow to attribute windows: {worst:?}"
    );
    // Demand exceeds capacity throughout, so each window's capacity is taken as soon as it frees:
    // admissions cluster at t0 + k*rate. Bin them around those instants.
    let mut per_window = vec![0usize; WINDOWS as usize + 1];
    for (a, _) in &admitted {
        let k = ((a.duration_since(t0).as_millis() as u64 + RATE_MS / 2) / RATE_MS) as usize;
        per_window[k.min(WINDOWS as usize)] += 1;
    }
    println!("e2e rate-limit: admitted per window {per_window:?}");
    for (k, n) in per_window.iter().take(WINDOWS as usize).enumerate() {
        assert_eq!(
            *n, CAPACITY,
            "window {k} admitted {n}, want exactly {CAPACITY}: {per_window:?}"
        );
    }
    // No window of length `rate` ever holds more than `capacity`: admission i and i+capacity are
    // at least `rate` apart, less the timing error of both.
    for w in admitted.windows(CAPACITY + 1) {
        let gap = w[CAPACITY].0.duration_since(w[0].0);
        assert!(
            gap + w[0].1 + w[CAPACITY].1 >= Duration::from_millis(RATE_MS),
            "{} admissions within {gap:?}",
            CAPACITY + 1
        );
    }
    // Retry-After is in whole seconds and never early: by then the oldest admission still in the
    // window at the refusal has left it, so a slot is free. (And it is at most one second late.)
    let refused: Vec<&Sample> = samples.iter().filter(|s| s.status == 429).collect();
    assert!(!refused.is_empty());
    let rate = Duration::from_millis(RATE_MS);
    for s in &refused {
        let r = s.retry_after.expect("a 429 carries Retry-After");
        assert!((1..=RATE_MS / 1000).contains(&r), "Retry-After {r}");
        let (at, err) = (
            s.sent + (s.received - s.sent) / 2,
            (s.received - s.sent) / 2,
        );
        let retry_at = at + Duration::from_secs(r);
        // The earliest admission that may still be in the window at the refusal: once it leaves,
        // a slot may be free. Never early means Retry-After reaches at least that far.
        if let Some((m, e)) = admitted.iter().find(|(m, e)| *m + *e + rate + err > at) {
            let frees = *m + rate;
            assert!(
                retry_at + err + *e >= frees,
                "Retry-After {r}s is early: a slot frees {:?} after the refusal",
                frees.saturating_duration_since(at)
            );
        }
        // The earliest admission certainly in the window: a slot is certainly free once it
        // leaves, and Retry-After is whole seconds, so it is at most a second later than that.
        if let Some((m, e)) = admitted.iter().find(|(m, e)| *m > at - rate + err + *e) {
            let frees = *m + rate;
            assert!(
                retry_at <= frees + Duration::from_secs(1) + err + *e,
                "Retry-After {r}s is more than a second late"
            );
        }
    }

    // 2. Another bucket is not affected.
    let r = stack.get("/burst", &[("X-Bucket", "cold")]).unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("ratelimit"), Some("\"burst\";r=9;t=2"));

    // 3. Counts live in Durable Object storage: they survive a restart of wrangler dev.
    for i in 0..3 {
        let r = stack.get("/slow", &[("X-Bucket", "persist")]).unwrap();
        assert_eq!(r.status, 200, "request {i}: {}", r.body);
    }
    stack.restart_wrangler();
    let r = stack.get("/slow", &[("X-Bucket", "persist")]).unwrap();
    assert_eq!(
        r.status, 429,
        "the fourth request after a restart must still be limited: {}",
        r.body
    );
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    assert_eq!(r.header("ratelimit-policy"), Some("\"slow\";q=3;w=60"));
}
