//! End to end: pools that survive failures, through the real Worker in `wrangler dev` and the
//! demo origins' fault injection. With one catalog replica down, hanging, or answering 503, 500
//! GET requests all succeed; with both down, requests get a prompt 502/503 and then 503
//! `pool_unavailable` without trying; when the replicas return, traffic spreads again. Runs
//! when `EDGE_GATEWAY_E2E=1`.

use crate::support::stack::Stack;
use std::time::{Duration, Instant};

fn catalog(stack: &Stack) -> (u16, String) {
    catalog_with(stack, "GET")
}

fn catalog_with(stack: &Stack, method: &str) -> (u16, String) {
    let ip = crate::support::stack::next_client_ip();
    let headers = [
        ("X-Acme-Api", "catalog-eks"),
        ("CF-Connecting-IP", ip.as_str()),
    ];
    let r = stack
        .send(&Stack::agent(), method, "/items", &headers, b"")
        .unwrap();
    (r.status, r.body)
}

fn served(stack: &Stack, replica: &str) -> u64 {
    stack.fault_state(replica)["served"].as_u64().unwrap()
}

/// 500 requests (`method`, no body) while replica 1 has `mode`: none may fail. Prints how many
/// met the fault and the time they took (docs/performance.md), asserting no timing.
fn survive(stack: &Stack, mode: &str, method: &str) {
    let r1 = "catalog/eks/1";
    stack.fault(r1, "ok");
    stack.wait_until("replica 1 serves again", Duration::from_secs(90), |s| {
        let before = served(s, r1);
        (0..8).for_each(|_| {
            catalog(s);
        });
        served(s, r1) > before
    });
    stack.fault(r1, mode);
    let faulted_before = stack.fault_state(r1)["faulted"].as_u64().unwrap();
    let start = Instant::now();
    let mut failures = Vec::new();
    let mut slowest = Duration::ZERO;
    for i in 0..500 {
        let t = Instant::now();
        let (status, body) = catalog_with(stack, method);
        slowest = slowest.max(t.elapsed());
        if status != 200 {
            failures.push(format!("request {i}: {status} {body}"));
        }
    }
    let met = stack.fault_state(r1)["faulted"].as_u64().unwrap() - faulted_before;
    println!(
        "e2e failover, replica 1 {mode}: 500 {method}s in {:?}, {} failed, {met} met the fault before ejection, slowest {:?}",
        start.elapsed(),
        failures.len(),
        slowest
    );
    assert!(failures.is_empty(), "{mode}: {}", failures.join("\n"));
}

#[test]
fn pools_survive_failures_end_to_end() {
    if !crate::support::stack::e2e_enabled() {
        return;
    }
    let stack = Stack::start(&[
        ("POLICY_REFRESH_SECONDS", "1"),
        ("UPSTREAM_TIMEOUT_MS", "1000"),
    ]);
    stack.upload(&[&stack.acme_copy("acme-failover", |t| t)]);
    stack.wait_until("the policy is live", Duration::from_secs(30), |s| {
        catalog(s).0 == 200
    });

    for mode in ["down", "503", "hang", "reset"] {
        survive(&stack, mode, "GET");
    }
    // A DELETE is idempotent too, and one without a body can always be sent again.
    survive(&stack, "503", "DELETE");

    // Both replicas down: prompt errors, then 503 pool_unavailable without trying.
    stack.fault("catalog/eks/1", "down");
    stack.fault("catalog/eks/2", "down");
    let mut statuses = Vec::new();
    for _ in 0..12 {
        let (status, body) = catalog(&stack);
        statuses.push(status);
        if status == 503 {
            assert!(body.contains("pool_unavailable"), "{body}");
        }
    }
    println!("e2e failover, both down: {statuses:?}");
    assert!(
        statuses.iter().all(|s| *s == 502 || *s == 503),
        "{statuses:?}"
    );
    assert_eq!(statuses.last(), Some(&503), "{statuses:?}");

    // They come back: after the back-off, traffic spreads over both again.
    heal_and_spread(&stack);

    // Active health: the Cron Trigger probes replica 1 (answering 503, health path included),
    // the board tells the isolate, and no request reaches replica 1 at all, where passive
    // health would have let 3 through before ejecting it.
    stack.fault("catalog/eks/1", "503");
    // Two failed probes in a row take a member out (one lost probe does not).
    for round in 1..=2 {
        let probe = stack.get("/__scheduled?cron=*+*+*+*+*", &[]).unwrap();
        assert_eq!(probe.status, 200, "{}", probe.body);
        stack.wait_until("the probe is reported", Duration::from_secs(30), |s| {
            s.log_text().matches("edge-gateway: probed").count() >= round
        });
    }
    assert!(stack.log_text().contains("1 down"), "{}", stack.log_text());
    // The isolate reads the board at most every 10 s, after a response.
    std::thread::sleep(Duration::from_millis(10_500));
    catalog(&stack);
    std::thread::sleep(Duration::from_millis(1_000));
    let faulted = stack.fault_state("catalog/eks/1")["faulted"]
        .as_u64()
        .unwrap();
    for _ in 0..30 {
        assert_eq!(catalog(&stack).0, 200);
    }
    assert_eq!(
        stack.fault_state("catalog/eks/1")["faulted"]
            .as_u64()
            .unwrap(),
        faulted,
        "no request may reach a member its probe reported down"
    );
    stack.fault("catalog/eks/1", "ok");
}

/// Both catalog replicas healthy again, and both taking traffic.
fn heal_and_spread(stack: &Stack) {
    stack.fault("catalog/eks/1", "ok");
    stack.fault("catalog/eks/2", "ok");
    let (before1, before2) = (
        served(stack, "catalog/eks/1"),
        served(stack, "catalog/eks/2"),
    );
    stack.wait_until("traffic spreads again", Duration::from_secs(90), |s| {
        for _ in 0..10 {
            catalog(s);
        }
        served(s, "catalog/eks/1") > before1 + 5 && served(s, "catalog/eks/2") > before2 + 5
    });
}
