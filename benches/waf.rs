//! Criterion benches of the WAF (src/waf): per-request inspection of typical and attack traffic
//! at ngrok's settings (PL1, thresholds 5/4, first 4 KB of the body), and rule-set start-up.
//! Budget (issue 7): under 0.3 ms per 1 KB request, rule set ready in under 50 ms.

use criterion::{criterion_group, criterion_main, Criterion};
use edge_gateway::waf::{build_fresh, Budget, Config, RequestView, ResponseView, RuleSet};
use std::hint::black_box;

const UA: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36";
const COOKIE: &str = "_ga=GA1.2.1784503914.1716282731; _gid=GA1.2.55512.1716282731; session=eyJ1aWQiOjQyfQ.ZkXw9A.h7sQmLr4; theme=dark";

fn browser<'a>(v: RequestView<'a>) -> RequestView<'a> {
    v.header("User-Agent", UA)
        .header("Accept", "application/json, text/plain, */*")
        .header("Accept-Language", "en-US,en;q=0.9")
        .header("Accept-Encoding", "gzip, deflate, br")
        .header("Referer", "https://shop.example.com/cart")
        .header("Origin", "https://shop.example.com")
        .header("Cookie", COOKIE)
}

fn json_1k() -> String {
    let mut items = Vec::new();
    for i in 0..9 {
        items.push(format!(
            r#"{{"sku":"SKU-{i:05}-BLK","qty":{},"price":49.99,"name":"Trail Runner X{i}","gift":false}}"#,
            i % 3 + 1
        ));
    }
    let body = format!(
        r#"{{"customer_id":"cus_9a8b7c","items":[{}],"shipping":{{"name":"Seán O'Connor","line1":"12 Drury Lane","city":"Dublin","postcode":"D02 X285","country":"IE"}},"notes":"Please leave at the door if nobody's home"}}"#,
        items.join(",")
    );
    assert!((900..1300).contains(&body.len()), "{}", body.len());
    body
}

fn form_4k() -> String {
    let mut pairs = vec![
        "csrf_token=a81f3b2c9d".to_string(),
        "name=Jane+O%27Brien".to_string(),
    ];
    let mut i = 0;
    while pairs.iter().map(|p| p.len() + 1).sum::<usize>() < 4000 {
        pairs.push(format!(
            "comment{i}=Great+product%2C+fits+well+%26+arrived+on+time.+Would+order+again%21+Size+{i}"
        ));
        i += 1;
    }
    pairs.join("&")
}

fn benches(c: &mut Criterion) {
    c.bench_function(
        "waf start-up: build rule table and literal automata (lazy regexes)",
        |b| b.iter(|| black_box(build_fresh(false))),
    );
    c.bench_function("waf start-up: build and compile every regex (eager)", |b| {
        b.iter(|| black_box(build_fresh(true)))
    });

    let rs = RuleSet::compile(&Config {
        process_body: true,
        ..Config::default()
    });
    let json = json_1k();
    let len = json.len().to_string();
    let req = browser(RequestView::new("POST", "/api/v1/orders", ""))
        .header("Content-Type", "application/json")
        .header("Content-Length", &len)
        .with_body(json.as_bytes());
    assert!(!rs.inspect_request(&req, &mut Budget::unlimited()).is_deny());
    c.bench_function("waf inspect: 1 KB JSON API request", |b| {
        b.iter(|| black_box(rs.inspect_request(black_box(&req), &mut Budget::unlimited())))
    });

    // The same request with every rule excluded: parsing the request into targets and the
    // engine's fixed costs, without any rule.
    let none = RuleSet::compile(&Config {
        process_body: true,
        exclude_rule_ids: rs.rule_ids(),
        ..Config::default()
    });
    c.bench_function(
        "waf inspect: 1 KB JSON API request, no rules (parsing only)",
        |b| b.iter(|| black_box(none.inspect_request(black_box(&req), &mut Budget::unlimited()))),
    );

    let get = browser(RequestView::new(
        "GET",
        "/api/v1/products",
        "category=shoes&color=red&size=42&sort=-price&page=3&utm_source=google&utm_campaign=spring_sale",
    ));
    assert!(!rs.inspect_request(&get, &mut Budget::unlimited()).is_deny());
    c.bench_function("waf inspect: GET with 7 query args, browser headers", |b| {
        b.iter(|| black_box(rs.inspect_request(black_box(&get), &mut Budget::unlimited())))
    });

    let form = form_4k();
    let flen = form.len().to_string();
    let post = browser(RequestView::new("POST", "/account/reviews", ""))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header("Content-Length", &flen)
        .with_body(form.as_bytes());
    assert!(!rs
        .inspect_request(&post, &mut Budget::unlimited())
        .is_deny());
    c.bench_function("waf inspect: 4 KB form post", |b| {
        b.iter(|| black_box(rs.inspect_request(black_box(&post), &mut Budget::unlimited())))
    });

    let atk_body =
        br#"{"comment":"<img src=x onerror=alert(document.cookie)>","id":"1; cat /etc/passwd"}"#;
    let atk = browser(RequestView::new(
        "POST",
        "/api/v1/comments",
        "id=1%27%20UNION%20SELECT%20password%20FROM%20users--&file=../../../../etc/passwd",
    ))
    .header("Content-Type", "application/json")
    .with_body(atk_body);
    assert!(rs.inspect_request(&atk, &mut Budget::unlimited()).is_deny());
    c.bench_function("waf inspect: attack request (SQLi, LFI, XSS, RCE)", |b| {
        b.iter(|| black_box(rs.inspect_request(black_box(&atk), &mut Budget::unlimited())))
    });

    let html = format!(
        "<!doctype html><html><head><title>Acme</title></head><body>{}</body></html>",
        "<div class=\"card\"><h2>Trail Runner</h2><p>Select a size. Free returns within 30 days.</p></div>".repeat(40)
    );
    let res = ResponseView::new(200)
        .header("Content-Type", "text/html; charset=utf-8")
        .with_body(html.as_bytes());
    assert!(!rs
        .inspect_response(&res, &mut Budget::unlimited())
        .is_deny());
    c.bench_function("waf inspect: 4 KB HTML response", |b| {
        b.iter(|| black_box(rs.inspect_response(black_box(&res), &mut Budget::unlimited())))
    });
}

/// The action through `Gateway::handle`: a 1 KB JSON POST through `owasp-crs-request` (with
/// `process_body`) and `forward-internal`, against the same policy without the WAF: the
/// difference is what the action costs a request (body read, view, inspection, result
/// variables).
fn action(c: &mut Criterion) {
    use edge_gateway::gateway::{
        BodyError, LocalTrust, Outbound, Random, RateLimiter, Upstream, UpstreamError,
    };
    use edge_gateway::http::{Headers, RequestHead, ResponseHead};
    use edge_gateway::manifest::{build_gateway, Options, SourceDoc};

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
    struct First;
    impl Random for First {
        fn below(&mut self, _n: usize) -> usize {
            0
        }
    }

    let gateway = |waf: &str| {
        let yaml = format!(
            "apiVersion: ngrok.k8s.ngrok.com/v1alpha1\nkind: CloudEndpoint\nmetadata: {{name: waf}}\nspec:\n  url: https://gw.example\n  trafficPolicy:\n    inline:\n      on_http_request:\n        - actions:\n{waf}            - {{type: forward-internal, config: {{url: \"https://app.internal\"}}}}\n---\napiVersion: ngrok.k8s.ngrok.com/v1alpha1\nkind: AgentEndpoint\nmetadata: {{name: app}}\nspec: {{bindings: [internal], url: https://app.internal, upstream: {{url: \"http://127.0.0.1:18201\"}}}}\n"
        );
        let docs: Vec<SourceDoc> = edge_gateway::source::parse_yaml_documents(&yaml)
            .unwrap()
            .into_iter()
            .map(|node| SourceDoc {
                file: "bench.yaml".into(),
                node,
            })
            .collect();
        build_gateway(&docs, Options::default(), "bench").0.unwrap()
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
