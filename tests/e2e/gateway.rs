//! End to end: the built Worker in `wrangler dev` (workerd, local KV) in front of the demo origins,
//! driven over real HTTP. Runs when `EDGE_GATEWAY_E2E=1` (scripts/test.sh sets it, after building
//! the Worker); a plain `cargo test` says it skipped.

use crate::support::live::check_case;
use crate::support::scenario::{load, repo_root};
use crate::support::stack::{Reply, Stack};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::Read;
use std::net::TcpListener;
use std::time::Duration;

fn routed(r: &Reply) -> String {
    let j = r.json();
    format!(
        "{}-{}",
        j["api"].as_str().unwrap_or("?"),
        j["cluster"].as_str().unwrap_or("?")
    )
}

/// policies/acme with a changed tag and two extra pools: one whose origin refuses connections,
/// one whose origin accepts and never answers.
fn acme_v2(stack: &Stack, refused_port: u16, silent_port: u16) -> std::path::PathBuf {
    let out = stack.acme_copy("acme-v2", |t| {
        t.replace(
            "x-acme-gateway: edge-gateway",
            "x-acme-gateway: edge-gateway-v2",
        )
    });
    let extra = format!(
        "apiVersion: ngrok.k8s.ngrok.com/v1alpha1\nkind: AgentEndpoint\nmetadata: {{name: down}}\n\
         spec: {{bindings: [internal], url: https://down-eks.internal, upstream: {{url: \"http://127.0.0.1:{refused_port}\"}}}}\n---\n\
         apiVersion: ngrok.k8s.ngrok.com/v1alpha1\nkind: AgentEndpoint\nmetadata: {{name: slow}}\n\
         spec: {{bindings: [internal], url: https://slow-eks.internal, upstream: {{url: \"http://127.0.0.1:{silent_port}\"}}}}\n"
    );
    std::fs::write(out.join("faulty.yaml"), extra).unwrap();
    out
}

fn tag_seen(stack: &Stack) -> Option<String> {
    let r = stack.get("/", &[("X-Acme-Api", "catalog-eks")]).ok()?;
    (r.status == 200).then(|| {
        r.json()["headers"]["x-acme-gateway"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    })
}

#[test]
fn acme_gateway_end_to_end() {
    if !crate::support::stack::e2e_enabled() {
        return;
    }
    let stack = Stack::start(&[
        ("POLICY_REFRESH_SECONDS", "1"),
        ("UPSTREAM_TIMEOUT_MS", "1500"),
        ("ACME__GITHUB_WEBHOOK_SECRET", "dev-webhook-secret"),
    ]);

    // 1. Nothing uploaded yet: fail closed with a clear reason.
    let r = stack.get("/", &[("X-Acme-Api", "catalog-eks")]).unwrap();
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(r.json()["error"]["reason"], "no_valid_policy");

    // 2. Upload policies/acme alone, as the README does; every e2e case of the Acme scenario
    // passes. Its bot-rule cases (OpenAI's crawler ranges denied 404) hold because every bundle
    // carries the shipped IP-intelligence list (the native run names it in `files:`).
    stack.upload(&[&stack.acme_copy("acme", |t| t)]);
    stack.wait_until(
        "the uploaded policy is live",
        Duration::from_secs(30),
        |s| tag_seen(s).is_some(),
    );
    let scenario = load(&repo_root().join("tests/scenarios/acme.yaml"));
    let failures: Vec<String> = scenario
        .cases
        .iter()
        .filter(|c| c.e2e)
        .filter_map(|c| {
            check_case(&stack, &scenario, c)
                .err()
                .map(|e| format!("{}: {e}", c.name))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    println!(
        "e2e: {} scenario cases passed",
        scenario.cases.iter().filter(|c| c.e2e).count()
    );

    // 3. 200 requests to one API reach both replicas of its pool, each at least 30%.
    let agent = Stack::agent();
    let mut replicas: HashMap<String, usize> = HashMap::new();
    for i in 0..200 {
        // 200 clients, one request each: the Acme policy limits each address to 10 per second.
        let client = format!("198.18.{}.{}", i / 250, i % 250 + 1);
        let headers = [
            ("X-Acme-Api", "catalog-eks"),
            ("CF-Connecting-IP", client.as_str()),
        ];
        let r = stack.send(&agent, "GET", "/items", &headers, b"").unwrap();
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(routed(&r), "catalog-eks");
        *replicas
            .entry(r.json()["replica"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    println!("e2e: catalog-eks spread over replicas {replicas:?}");
    assert_eq!(replicas.len(), 2, "{replicas:?}");
    assert!(
        replicas.values().all(|n| *n >= 60),
        "each replica needs at least 30%: {replicas:?}"
    );

    // 4. Bodies stream through intact, both ways (1 MiB up, the echo back).
    let body: Vec<u8> = (0..1u32 << 20).map(|i| (i * 31 % 251) as u8).collect();
    let r = stack
        .send(
            &agent,
            "PUT",
            "/bulk?x=1",
            // A content type CRS allows: the Acme endpoint runs the OWASP rules, where a body
            // without one (920340) from a client addressing an IP host (920350, as under
            // wrangler dev) reaches the threshold. The body is not parsed (no process_body).
            &[
                ("X-Acme-Api", "catalog-eks"),
                ("Content-Type", "application/json"),
            ],
            &body,
        )
        .unwrap();
    let j = r.json();
    assert_eq!(r.status, 200);
    assert_eq!(
        (
            j["method"].as_str(),
            j["path"].as_str(),
            j["query"].as_str()
        ),
        (Some("PUT"), Some("/bulk"), Some("x=1"))
    );
    assert_eq!(j["body_bytes"], body.len());
    assert_eq!(
        j["body_sha256"].as_str().unwrap(),
        format!("{:x}", Sha256::digest(&body))
    );

    // ... and a 1 MiB signed delivery is buffered, verified and forwarded byte for byte.
    let delivery: String = (0..1u32 << 20)
        .map(|i| char::from(b'a' + (i * 7 % 26) as u8))
        .collect();
    let path = stack.dir.join("delivery.json");
    std::fs::write(&path, &delivery).unwrap();
    let signed = std::process::Command::new(env!("CARGO_BIN_EXE_dev-auth"))
        .args([
            "sign-webhook",
            "--provider",
            "github",
            "--secret",
            "dev-webhook-secret",
        ])
        .arg("--body-file")
        .arg(&path)
        .output()
        .unwrap();
    let signed = String::from_utf8(signed.stdout).unwrap();
    let mut headers: Vec<(&str, &str)> =
        signed.lines().filter_map(|l| l.split_once(": ")).collect();
    headers.push(("X-Acme-Api", "webhook-gke"));
    headers.push(("Content-Type", "application/json"));
    let r = stack
        .send(&agent, "POST", "/hooks/big", &headers, delivery.as_bytes())
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.json()["body_sha256"].as_str().unwrap(),
        format!("{:x}", Sha256::digest(delivery.as_bytes()))
    );

    // A body over the 8 MiB a signature check reads is refused unread.
    let huge = vec![b'x'; 9 << 20];
    let r = stack
        .send(&agent, "POST", "/hooks/big", &headers, &huge)
        .unwrap();
    assert_eq!(r.status, 413, "{}", r.body);
    assert_eq!(r.json()["error"]["reason"], "body_too_large");

    // 5. A changed policy goes live without restarting anything (upload only).
    let refused = TcpListener::bind("127.0.0.1:0").unwrap();
    let refused_port = refused.local_addr().unwrap().port();
    drop(refused); // nothing listens there now
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let v2 = acme_v2(&stack, refused_port, silent.local_addr().unwrap().port());
    stack.upload(&[&v2]);
    stack.wait_until("policy v2 is live", Duration::from_secs(30), |s| {
        tag_seen(s).as_deref() == Some("edge-gateway-v2")
    });

    // 6. Upstream failures become 502 / 504 with a reason.
    let r = stack.get("/", &[("X-Acme-Api", "down-eks")]).unwrap();
    assert_eq!(r.status, 502, "{}", r.body);
    assert_eq!(r.json()["error"]["reason"], "upstream_unreachable");
    let held = std::thread::spawn(move || {
        // Accept and hold the connection without answering, so the Worker's timeout fires.
        let (mut conn, _) = silent.accept().unwrap();
        let mut buf = [0u8; 1024];
        conn.set_read_timeout(Some(Duration::from_secs(5))).ok();
        let _ = conn.read(&mut buf);
        std::thread::sleep(Duration::from_secs(3));
    });
    let r = stack.get("/", &[("X-Acme-Api", "slow-eks")]).unwrap();
    assert_eq!(r.status, 504, "{}", r.body);
    assert_eq!(r.json()["error"]["reason"], "upstream_timeout");
    held.join().ok();

    // 7. A corrupt value in KV leaves the last good policy serving.
    stack.kv_put(
        "bundle/corrupt-1",
        "{\"format\": 1, \"version\": \"corrupt-1\", \"documents\": [",
    );
    stack.kv_put("current", "corrupt-1");
    stack.wait_until(
        "the Worker rejects corrupt-1",
        Duration::from_secs(30),
        |s| {
            let _ = s.get("/", &[("X-Acme-Api", "catalog-eks")]);
            s.log_text().contains("rejected policy version corrupt-1")
        },
    );
    assert_eq!(
        tag_seen(&stack).as_deref(),
        Some("edge-gateway-v2"),
        "the last good policy must keep serving"
    );

    // 8. So does a pointer to a version whose bundle is missing.
    stack.kv_put("current", "missing-2");
    stack.wait_until(
        "the Worker notices missing-2",
        Duration::from_secs(30),
        |s| {
            let _ = s.get("/", &[("X-Acme-Api", "catalog-eks")]);
            s.log_text().contains("bundle/missing-2` is missing")
        },
    );
    assert_eq!(tag_seen(&stack).as_deref(), Some("edge-gateway-v2"));
}
