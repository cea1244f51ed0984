//! Criterion benches of the WAF (src/waf) running the vendored OWASP CRS: per-request
//! inspection of typical and attack traffic at ngrok's settings (PL1, thresholds 5/4, first 4 KB
//! of the body), and rule-set start-up. Budget (issue 15): under 0.3 ms per 1 KB request in
//! wasm, rule set ready in under 50 ms.

use criterion::{criterion_group, criterion_main, Criterion};
use edge_gateway::waf::program::Program;
use edge_gateway::waf::{vendored_rule_set, Budget, CrsRules, Profile, RuleSet};
use std::hint::black_box;
use std::sync::Arc;

#[path = "gateway_support.rs"]
mod gateway_support;
#[path = "waf_requests.rs"]
mod waf_requests;
use gateway_support::{gateway_from_yaml, First};
use waf_requests::{cases, form_4k, html_4k, json_1k, Case, COOKIE, UA};

fn benches(c: &mut Criterion) {
    let json_program = serde_json::to_string(vendored_rule_set().program()).unwrap();
    c.bench_function(
        "waf start-up: parse the bundled program and make the rule set (lazy operators)",
        |b| {
            b.iter(|| {
                let p: Program = serde_json::from_str(black_box(&json_program)).unwrap();
                black_box(RuleSet::new(p))
            })
        },
    );
    c.bench_function(
        "waf start-up: the same and compile every operator (eager)",
        |b| {
            b.iter(|| {
                let p: Program = serde_json::from_str(black_box(&json_program)).unwrap();
                black_box(RuleSet::new(p).compile_all())
            })
        },
    );

    let set = Arc::clone(vendored_rule_set());
    // Every operator compiled first: a long-lived isolate's steady state.
    assert!(set.compile_all().is_empty());
    let rs = CrsRules::new(
        Arc::clone(&set),
        &Profile {
            process_body: true,
            ..Profile::default()
        },
    );
    let (json, form, html) = (json_1k(), form_4k(), html_4k());
    let (jlen, flen) = (json.len().to_string(), form.len().to_string());
    for (name, case) in cases(&json, &jlen, &form, &flen, &html) {
        let attack = name.starts_with("attack");
        match case {
            Case::Request(req) => {
                let v = rs.inspect_request(&req, &mut Budget::unlimited());
                assert_eq!(v.is_deny(), attack, "{name}: {v:?}");
                c.bench_function(&format!("waf inspect: {name}"), |b| {
                    b.iter(|| {
                        black_box(rs.inspect_request(black_box(&req), &mut Budget::unlimited()))
                    })
                });
                if name.starts_with("1 KB JSON") {
                    // The same request with every rule excluded: parsing the request into
                    // targets and the engine's fixed costs, without any rule.
                    let none = CrsRules::new(
                        Arc::clone(&set),
                        &Profile {
                            process_body: true,
                            exclude_rule_ids: set.rule_ids(),
                            ..Profile::default()
                        },
                    );
                    c.bench_function(
                        &format!("waf inspect: {name}, no rules (parsing only)"),
                        |b| {
                            b.iter(|| {
                                black_box(
                                    none.inspect_request(black_box(&req), &mut Budget::unlimited()),
                                )
                            })
                        },
                    );
                }
            }
            Case::Response(res) => {
                assert!(!rs
                    .inspect_response(&res, &mut Budget::unlimited())
                    .is_deny());
                c.bench_function(&format!("waf inspect: {name}"), |b| {
                    b.iter(|| {
                        black_box(rs.inspect_response(black_box(&res), &mut Budget::unlimited()))
                    })
                });
            }
        }
    }
}

/// The action through `Gateway::handle`: a 1 KB JSON POST through `owasp-crs-request` (with
/// `process_body`) and `forward-internal`, against the same policy without the WAF: the
/// difference is what the action costs a request (body read, view, inspection, result
/// variables).
fn action(c: &mut Criterion) {
    use edge_gateway::gateway::{
        BodyError, LocalTrust, Outbound, RateLimiter, Upstream, UpstreamError,
    };
    use edge_gateway::http::{Headers, RequestHead, ResponseHead};

    struct JsonUpstream(std::rc::Rc<[u8]>);
    impl Upstream for JsonUpstream {
        type Body = ();
        async fn send(&self, out: Outbound<'_>) -> Result<(ResponseHead, ()), UpstreamError> {
            black_box(&out.url);
            let head = ResponseHead {
                status: 200,
                headers: Headers::new(),
            };
            Ok((head, ()))
        }
        fn body_replayable(&self) -> bool {
            true
        }
        async fn request_body(&self, _limit: usize) -> Result<std::rc::Rc<[u8]>, BodyError> {
            Ok(self.0.clone())
        }
    }
    struct NoLimiter;
    impl RateLimiter for NoLimiter {
        async fn check(
            &self,
            _bucket: &str,
            _checks: &[edge_gateway::limiter::LimitCheck],
        ) -> Result<Vec<edge_gateway::limiter::Decision>, String> {
            Err("no rate limits in this bench".into())
        }
    }
    let gateway = |waf: &str| {
        let yaml = format!(
            "apiVersion: ngrok.k8s.ngrok.com/v1alpha1\nkind: CloudEndpoint\nmetadata: {{name: waf}}\nspec:\n  url: https://gw.example\n  trafficPolicy:\n    inline:\n      on_http_request:\n        - actions:\n{waf}            - {{type: forward-internal, config: {{url: \"https://app.internal\"}}}}\n---\napiVersion: ngrok.k8s.ngrok.com/v1alpha1\nkind: AgentEndpoint\nmetadata: {{name: app}}\nspec: {{bindings: [internal], url: https://app.internal, upstream: {{url: \"http://127.0.0.1:18201\"}}}}\n"
        );
        gateway_from_yaml(&yaml)
    };
    let with_waf =
        gateway("            - {type: owasp-crs-request, config: {process_body: true}}\n");
    let without = gateway("");
    let json = json_1k();
    let len = json.len().to_string();
    let headers: Headers = [
        ("User-Agent", UA),
        ("Accept", "application/json, text/plain, */*"),
        ("Accept-Language", "en-US,en;q=0.9"),
        ("Accept-Encoding", "gzip, deflate, br"),
        ("Referer", "https://shop.example.com/cart"),
        ("Origin", "https://shop.example.com"),
        ("Cookie", COOKIE),
        ("Content-Type", "application/json"),
        ("Content-Length", len.as_str()),
    ]
    .into_iter()
    .collect();
    let head = RequestHead::from_url(
        "POST",
        "https://gw.example/api/v1/orders",
        headers,
        "198.51.100.7".parse().unwrap(),
    )
    .unwrap();
    let upstream = JsonUpstream(json.as_bytes().into());
    let trust = LocalTrust::default();
    let mut rng = First;
    let status = |gw: &edge_gateway::gateway::Gateway, rng: &mut First| {
        pollster::block_on(gw.handle(head.clone(), &upstream, &NoLimiter, &trust, rng))
            .head
            .status
    };
    assert_eq!(
        status(&with_waf, &mut rng),
        200,
        "the benign request passes"
    );
    for (name, gw) in [
        (
            "action: 1 KB JSON POST through owasp-crs-request (process_body) + forward-internal",
            &with_waf,
        ),
        (
            "action baseline: the same request, forward-internal only",
            &without,
        ),
    ] {
        c.bench_function(name, |b| {
            b.iter(|| {
                pollster::block_on(gw.handle(
                    black_box(head.clone()),
                    &upstream,
                    &NoLimiter,
                    &trust,
                    &mut rng,
                ))
            })
        });
    }
}

criterion_group!(waf, benches, action);
criterion_main!(waf);
