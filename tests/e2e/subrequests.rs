//! End to end: `http-request` and `circuit-breaker` through the real Worker in `wrangler dev`
//! and the demo origins. An authorization subrequest to an internal endpoint decides, by its
//! status, whether the request is forwarded (and later rules use its result); a target name
//! that is not declared is refused without any fetch; a breaker in front of a failing origin
//! trips, answers 503 `ERR_NGROK_3202` without reaching the origin, and closes again once a
//! probe succeeds after `tripped_duration`. Runs when `EDGE_GATEWAY_E2E=1`.

use crate::support::stack::{next_client_ip, Stack};
use std::time::Duration;

/// The policy; `PORT_*` become the demo origins' ports.
const GATEWAY: &str = r#"
apiVersion: ngrok.k8s.ngrok.com/v1alpha1
kind: CloudEndpoint
metadata: {name: subrequests}
spec:
  url: https://gw.example
  trafficPolicy:
    inline:
      on_http_request:
        - expressions: ["req.url.path.startsWith('/api') || req.url.path == '/whoami'"]
          actions:
            - type: http-request
              config:
                url: https://authz.internal/check
                method: POST
                query_params: [{key: path, value: "${req.url.path}"}]
                headers: {x-user: "${req.headers['x-user'][0]}"}
                body: '{"path":"${req.url.path}"}'
        - expressions: ["req.url.path == '/whoami'"]
          actions:
            - type: custom-response
              config:
                headers: {content-type: application/json}
                body: "${actions.ngrok.http_request.res.body}"
        - expressions: ["req.url.path.startsWith('/api') && has(actions.ngrok.http_request.error)"]
          actions:
            - type: custom-response
              config: {status_code: 503, body: "authz error ${actions.ngrok.http_request.error.code}"}
        - expressions: ["req.url.path.startsWith('/api') && actions.ngrok.http_request.res.status_code != 200"]
          actions:
            - type: custom-response
              config: {status_code: 403, body: "authz said ${actions.ngrok.http_request.res.status_code}"}
        - expressions: ["req.url.path.startsWith('/api')"]
          actions:
            - type: add-headers
              config: {headers: {x-authz-replica: "${actions.ngrok.http_request.res.header['x-demo-origin'][0]}"}}
            - type: forward-internal
              config: {url: https://app.internal}
        - expressions: ["req.url.path == '/target'"]
          actions:
            - type: http-request
              config: {url: "https://${req.headers['x-target'][0]}.internal/"}
            - type: custom-response
              config: {body: "error=${actions.ngrok.http_request.error.code}"}
        - expressions: ["req.url.path.startsWith('/flaky')"]
          actions:
            - type: circuit-breaker
              config: {volume_threshold: 4, error_threshold: 0.5, tripped_duration: 2s}
            - type: forward-internal
              config: {url: https://flaky.internal}
        - actions: [{type: custom-response, config: {status_code: 404, body: "no route"}}]
---
apiVersion: ngrok.k8s.ngrok.com/v1alpha1
kind: AgentEndpoint
metadata: {name: authz}
spec: {bindings: [internal], url: https://authz.internal, upstream: {url: "http://127.0.0.1:PORT_AUTHZ"}}
---
apiVersion: ngrok.k8s.ngrok.com/v1alpha1
kind: AgentEndpoint
metadata: {name: app}
spec: {bindings: [internal], url: https://app.internal, upstream: {url: "http://127.0.0.1:PORT_APP"}}
---
apiVersion: ngrok.k8s.ngrok.com/v1alpha1
kind: AgentEndpoint
metadata: {name: flaky}
spec: {bindings: [internal], url: https://flaky.internal, upstream: {url: "http://127.0.0.1:PORT_FLAKY"}}
"#;

const AUTHZ: &str = "inventory/gke/1";
const APP: &str = "catalog/eks/1";
const FLAKY: &str = "orders/eks/1";

fn port_of(stack: &Stack, acme_port: u16) -> String {
    let (_, port) = stack
        .origin_ports
        .iter()
        .find(|(p, _)| *p == acme_port)
        .expect("a demo origin");
    port.to_string()
}

fn get(stack: &Stack, path: &str, extra: &[(&str, &str)]) -> crate::support::stack::Reply {
    let ip = next_client_ip();
    let mut headers = vec![("CF-Connecting-IP", ip.as_str())];
    headers.extend_from_slice(extra);
    stack.get(path, &headers).unwrap()
}

fn counter(stack: &Stack, replica: &str, name: &str) -> u64 {
    stack.fault_state(replica)[name].as_u64().unwrap_or(0)
}

#[test]
fn subrequests_and_breakers_end_to_end() {
    if !crate::support::stack::e2e_enabled() {
        return;
    }
    let stack = Stack::start(&[("POLICY_REFRESH_SECONDS", "1")]);
    let dir = stack.dir.join("subrequests");
    std::fs::create_dir_all(&dir).unwrap();
    let policy = GATEWAY
        .replace("PORT_AUTHZ", &port_of(&stack, 18105))
        .replace("PORT_APP", &port_of(&stack, 18101))
        .replace("PORT_FLAKY", &port_of(&stack, 18103));
    std::fs::write(dir.join("gateway.yaml"), policy).unwrap();
    stack.upload(&[&dir]);
    stack.wait_until("the policy is live", Duration::from_secs(30), |s| {
        s.get("/nothing", &[("CF-Connecting-IP", "198.51.100.1")])
            .is_ok_and(|r| r.body == "no route")
    });

    // What the internal endpoint received, as it echoes it back: the method, body, query,
    // configured and injected headers, and the platform's client address.
    let r = get(&stack, "/whoami", &[("x-user", "ada")]);
    assert_eq!(r.status, 200, "{}", r.body);
    let echo = r.json();
    assert_eq!(echo["method"], "POST", "{echo}");
    assert_eq!(echo["path"], "/check", "{echo}");
    assert_eq!(echo["query"], "path=%2Fwhoami", "{echo}");
    assert_eq!(echo["body_bytes"], 18, "{echo}");
    assert_eq!(echo["headers"]["x-user"], "ada", "{echo}");
    assert_eq!(echo["headers"]["edge-gateway-req-type"], "http-request");
    assert!(
        echo["headers"]["x-forwarded-for"]
            .as_str()
            .is_some_and(|v| v.starts_with("198.18.")),
        "{echo}"
    );

    // The authorization service says yes: forwarded, and a later rule used the result.
    let r = get(&stack, "/api/orders", &[("x-user", "ada")]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("x-demo-origin"), Some(APP));
    assert_eq!(r.json()["headers"]["x-authz-replica"], AUTHZ, "{}", r.body);

    // It says no: the next rule answers 403 and the app is not reached.
    stack.fault(AUTHZ, "403");
    let app_before = counter(&stack, APP, "served");
    let r = get(&stack, "/api/orders", &[("x-user", "mallory")]);
    assert_eq!((r.status, r.body.as_str()), (403, "authz said 403"));
    assert_eq!(counter(&stack, APP, "served"), app_before);
    stack.fault(AUTHZ, "ok");

    // It cannot be reached: the error is a result later rules see (on_error: continue).
    stack.fault(AUTHZ, "down");
    let r = get(&stack, "/api/orders", &[("x-user", "ada")]);
    assert_eq!(
        (r.status, r.body.as_str()),
        (503, "authz error ERR_NGROK_8012")
    );
    stack.fault(AUTHZ, "ok");

    // A target that is not declared is refused, and nothing anywhere is fetched.
    let served = |s: &Stack| {
        [AUTHZ, APP, FLAKY]
            .iter()
            .map(|r| counter(s, r, "served") + counter(s, r, "faulted"))
            .sum::<u64>()
    };
    let before = served(&stack);
    let app_port = port_of(&stack, 18101);
    for target in [
        "nobody".to_string(),
        "metadata.google".to_string(),
        format!("127.0.0.1:{app_port}/x?"),
    ] {
        let r = get(&stack, "/target", &[("x-target", target.as_str())]);
        assert_eq!(
            (r.status, r.body.as_str()),
            (200, "error=ERR_NGROK_3200"),
            "{target}"
        );
    }
    assert_eq!(served(&stack), before, "an undeclared target was fetched");

    // The breaker: 4 failures (volume 4, 100% errors) trip it; then 503 ERR_NGROK_3202
    // without reaching the origin.
    stack.fault(FLAKY, "500");
    for i in 0..4 {
        let r = get(&stack, &format!("/flaky/{i}"), &[]);
        assert_eq!(r.status, 500, "request {i}: {}", r.body);
    }
    let faulted = counter(&stack, FLAKY, "faulted");
    for i in 0..5 {
        let r = get(&stack, &format!("/flaky/open/{i}"), &[]);
        assert_eq!(r.status, 503, "{}", r.body);
        assert_eq!(r.header("ngrok-error-code"), Some("ERR_NGROK_3202"));
        assert!(r.header("retry-after").is_some());
    }
    assert_eq!(
        counter(&stack, FLAKY, "faulted"),
        faulted,
        "a tripped breaker let requests through"
    );

    // The origin recovers; after tripped_duration (2 s) a probe goes through and closes it.
    stack.fault(FLAKY, "ok");
    std::thread::sleep(Duration::from_millis(2_100));
    let r = get(&stack, "/flaky/probe", &[]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("x-demo-origin"), Some(FLAKY));
    for i in 0..5 {
        assert_eq!(get(&stack, &format!("/flaky/after/{i}"), &[]).status, 200);
    }
}
