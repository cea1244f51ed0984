//! Robustness: mangled versions of the shipped policy files (bytes deleted, duplicated, swapped,
//! replaced with YAML punctuation) must produce diagnostics or a gateway, never a panic. A panic
//! in the Worker resets the wasm instance, and the checker is the Worker's compiler.

mod support;

use edge_gateway::gateway::{
    BodyError, LocalTrust, Outbound, Random, RateLimiter, Upstream, UpstreamError,
};
use edge_gateway::http::{Headers, RequestHead, ResponseHead};
use edge_gateway::limiter::{Bucket, Decision, LimitCheck};
use edge_gateway::manifest::{build_gateway, Options, SourceDoc};
use edge_gateway::source::parse_yaml_documents;
use std::cell::RefCell;

const PUNCTUATION: &[u8] = b"{}[]:,-'\"$#&*!|>%@` \n\t\\";

fn mangle(text: &str, rng: &mut fastrand::Rng) -> String {
    let mut bytes = text.as_bytes().to_vec();
    for _ in 0..1 + rng.usize(0..4) {
        if bytes.is_empty() {
            break;
        }
        let at = rng.usize(0..bytes.len());
        match rng.usize(0..4) {
            0 => {
                let len = rng.usize(0..8).min(bytes.len() - at);
                bytes.drain(at..at + len);
            }
            1 => {
                let len = rng.usize(0..16).min(bytes.len() - at);
                let copy: Vec<u8> = bytes[at..at + len].to_vec();
                let to = rng.usize(0..bytes.len());
                bytes.splice(to..to, copy);
            }
            2 => bytes[at] = PUNCTUATION[rng.usize(0..PUNCTUATION.len())],
            _ => {
                let other = rng.usize(0..bytes.len());
                bytes.swap(at, other);
            }
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

#[test]
fn mangled_policies_never_panic() {
    let root = support::scenario::repo_root();
    let sources: Vec<String> = [
        "policies/acme/cloud-endpoint.yaml",
        "policies/acme/eks.yaml",
        "policies/reference/multicloud-full.yaml",
        "tests/scenarios/semantics.yaml",
        "tests/scenarios/http-request.yaml",
        "tests/scenarios/circuit-breaker.yaml",
    ]
    .iter()
    .map(|p| std::fs::read_to_string(root.join(p)).unwrap())
    .collect();
    let mut rng = fastrand::Rng::with_seed(0x9e37_79b9_7f4a_7c15);
    let (mut compiled, mut rejected) = (0, 0);
    for _ in 0..3000 {
        let src = &sources[rng.usize(0..sources.len())];
        let text = mangle(src, &mut rng);
        let docs = match parse_yaml_documents(&text) {
            Ok(nodes) => nodes,
            Err(_) => {
                rejected += 1;
                continue;
            }
        };
        let mut docs: Vec<SourceDoc> = docs
            .into_iter()
            .map(|node| SourceDoc {
                file: "m.yaml".into(),
                node,
            })
            .collect();
        // Scenario files hold their documents under `documents:`; unwrap them too.
        if let Some(inner) = docs
            .first()
            .and_then(|d| d.node.get("documents"))
            .and_then(|d| d.as_seq())
        {
            docs = inner
                .iter()
                .map(|node| SourceDoc {
                    file: "m.yaml".into(),
                    node: node.clone(),
                })
                .collect();
        }
        match build_gateway(
            &docs,
            Options {
                strict: rng.usize(0..2) == 0,
            },
            "m",
        )
        .0
        {
            Some(_) => compiled += 1,
            None => rejected += 1,
        }
    }
    // Both outcomes must occur, or the mutations are too weak (or too strong) to mean anything.
    assert!(
        compiled > 100 && rejected > 100,
        "compiled {compiled}, rejected {rejected}"
    );
}

/// Hostile requests through the Acme gateway: odd routing headers, paths and queries get a
/// response (never a panic), and a forward only ever goes to a declared pool.
#[test]
fn hostile_requests_never_panic_and_never_leave_the_pools() {
    let gw = acme_gateway();
    let declared: Vec<String> = gw.pools.values().map(|p| p.url.clone()).collect();
    let seeds = [
        "catalog-eks",
        "orders-eks",
        "x.internal/",
        "evil.example:443/#",
        "[::1]",
        "a b",
        "%2e%2e",
        "${1}",
        "'",
        "\u{0}",
        "",
    ];
    let mut rng = fastrand::Rng::with_seed(42);
    let up = Recorder::with_body(b"{}");
    for _ in 0..2000 {
        let mut value: Vec<u8> = seeds[rng.usize(0..seeds.len())].as_bytes().to_vec();
        for _ in 0..rng.usize(0..3) {
            let at = rng.usize(0..value.len() + 1);
            value.insert(at, PUNCTUATION[rng.usize(0..PUNCTUATION.len())]);
        }
        let value = String::from_utf8_lossy(&value).into_owned();
        let path = ["/", "/a?b=%zz&&=", "/%ff/../x", "/?q=${x}"][rng.usize(0..4)];
        let headers: Headers = [("X-Acme-Api", value.as_str())].into_iter().collect();
        let head = RequestHead::from_url(
            "GET",
            &format!("https://api.acme.example{path}"),
            headers,
            "203.0.113.1".parse().unwrap(),
        )
        .unwrap();
        let reply =
            pollster::block_on(gw.handle(head, &up, &NoLimits, &LocalTrust::default(), &mut First));
        assert!((200..600).contains(&reply.head.status));
    }
    let sent = up.sent.borrow();
    assert!(!sent.is_empty(), "some requests must be forwarded");
    assert!(
        sent.iter().all(|e| declared.contains(e)),
        "forwarded outside the declared pools"
    );
}

/// Mangled tokens and webhook signatures against the Acme gateway: each is refused with 401 or
/// 403 (never a 5xx, never a panic), and only the untouched originals get through.
#[test]
fn mangled_tokens_and_signatures_are_refused_never_panic() {
    let mut gw = acme_gateway();
    let mut secrets: edge_gateway::secrets::Secrets = gw
        .secret_refs
        .iter()
        .map(|r| (r.clone(), format!("value-of-{}", r.1)))
        .collect();
    secrets.insert(("acme".into(), "github-webhook-secret".into()), "s".into());
    gw.set_secrets(secrets);
    let trust = LocalTrust::default();
    let now_s = 1_800_000_000;
    trust.now_ms.set(now_s * 1000);
    trust.serve(
        "http://127.0.0.1:18200/.well-known/jwks.json",
        Ok(edge_gateway::devkeys::jwks(&["rsa-1", "ec-1", "ed-1"]).to_string()),
    );
    let claims = serde_json::json!({"iss": "https://idp.acme.example/", "aud": "orders-api",
                                    "sub": "ada", "exp": now_s + 600});
    let tokens: Vec<String> = ["rsa-1", "ec-1", "ed-1"]
        .iter()
        .map(|k| edge_gateway::devkeys::mint(k, None, &serde_json::json!({}), &claims).unwrap())
        .collect();
    let body = br#"{"zen":"hi"}"#.to_vec();
    let signature = {
        use hmac::Mac;
        let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"s").unwrap();
        m.update(&body);
        let hex: String = m
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        format!("sha256={hex}")
    };
    let send = |api: &str, header: (&str, &str)| {
        let headers: Headers = [("X-Acme-Api", api), header].into_iter().collect();
        let head = RequestHead::from_url(
            "POST",
            "https://api.acme.example/x",
            headers,
            "192.0.2.1".parse().unwrap(),
        )
        .unwrap();
        pollster::block_on(gw.handle(
            head,
            &Recorder::with_body(&body),
            &Allow,
            &trust,
            &mut First,
        ))
        .head
        .status
    };
    for t in &tokens {
        assert_eq!(
            send("orders-eks", ("authorization", &format!("Bearer {t}"))),
            200
        );
    }
    assert_eq!(
        send("webhook-gke", ("x-hub-signature-256", &signature)),
        200
    );
    let alphabet = b"AZaz09-_.=+/ \0\xff{}\"";
    let mut rng = fastrand::Rng::with_seed(7);
    for i in 0..3000 {
        let (api, name, original) = match i % 4 {
            3 => ("webhook-gke", "x-hub-signature-256", signature.clone()),
            k => (
                "orders-eks",
                "authorization",
                format!("Bearer {}", tokens[k]),
            ),
        };
        let mut v = original.clone().into_bytes();
        match rng.usize(0..4) {
            0 => {
                let at = rng.usize(0..v.len());
                v[at] = alphabet[rng.usize(0..alphabet.len())];
            }
            1 => v.truncate(rng.usize(0..v.len())),
            2 => {
                let at = rng.usize(0..=v.len());
                v.insert(at, alphabet[rng.usize(0..alphabet.len())]);
            }
            _ => {
                let (a, b) = (rng.usize(0..v.len()), rng.usize(0..v.len()));
                v.swap(a, b);
            }
        }
        let value = String::from_utf8_lossy(&v).into_owned();
        let status = send(api, (name, &value));
        if value == original {
            continue;
        }
        assert!(
            status == 401
                || status == 403
                || (status == 200 && value.eq_ignore_ascii_case(&original)),
            "{name}: {value:?} got {status}"
        );
    }
}

/// policies/acme, compiled.
fn acme_gateway() -> edge_gateway::gateway::Gateway {
    let root = support::scenario::repo_root();
    let files = edge_gateway::files::expand(&[root.join("policies/acme")]).unwrap();
    let (docs, _) = edge_gateway::files::load(&files);
    let mut gw = build_gateway(&docs, Options::default(), "t").0.unwrap();
    // Every secret the policies name, as the Worker would hold them.
    let secrets = gw
        .secret_refs
        .iter()
        .map(|r| (r.clone(), format!("value-of-{}", r.1)))
        .collect();
    gw.set_secrets(secrets);
    gw
}

/// Records which internal endpoint each forward went to; the client's body is `body`.
struct Recorder {
    sent: RefCell<Vec<String>>,
    body: Vec<u8>,
}

impl Recorder {
    fn with_body(body: &[u8]) -> Recorder {
        Recorder {
            sent: RefCell::new(Vec::new()),
            body: body.to_vec(),
        }
    }
}

impl Upstream for Recorder {
    type Body = ();
    async fn send(&self, out: Outbound<'_>) -> Result<(ResponseHead, ()), UpstreamError> {
        self.sent.borrow_mut().push(out.endpoint.to_string());
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
        Ok(self.body.as_slice().into())
    }
}

/// A limiter that is down (rate-limit's `on_error` decides).
struct NoLimits;

impl RateLimiter for NoLimits {
    async fn check(&self, _: &str, _: &[LimitCheck]) -> Result<Vec<Decision>, String> {
        Err("no limiter in this test".into())
    }
}

/// A limiter with a fresh bucket per call: everything is allowed, replays too.
struct Allow;

impl RateLimiter for Allow {
    async fn check(&self, _: &str, checks: &[LimitCheck]) -> Result<Vec<Decision>, String> {
        Ok(checks
            .iter()
            .map(|c| Bucket::default().apply(std::slice::from_ref(c), 0)[0])
            .collect())
    }
}

struct First;

impl Random for First {
    fn below(&mut self, _n: usize) -> usize {
        0
    }
}

/// A policy that feeds request (and upstream) data to the issue 6 actions and macros: JSON,
/// URL, query-string and base64 decoding, cookies, the User-Agent, regexes and replacements
/// rendered from headers, http-request, circuit-breaker, the body actions, log, redirect,
/// url-rewrite, close-connection, and `res.cookies` from the upstream's `Set-Cookie`.
const HOSTILE_POLICY: &str = r#"
- apiVersion: ngrok.k8s.ngrok.com/v1alpha1
  kind: CloudEndpoint
  metadata: {name: hostile}
  spec:
    url: https://gw.example
    trafficPolicy:
      inline:
        on_http_request:
          - name: variables from request data
            actions:
              - type: set-vars
                config:
                  vars:
                    - j: "${hasReqHeader('x-json') ? json.decode(getReqHeader('x-json')[0]) : {}}"
                    - u: "${hasReqHeader('x-url') ? url.parse(getReqHeader('x-url')[0]) : {}}"
                    - q: "${req.url.query.decodeQueryString()}"
                    - b: "${hasReqHeader('x-b64') ? getReqHeader('x-b64')[0].decodeBase64() : ''}"
                    - ua: "${req.user_agent.name + '/' + req.user_agent.version + req.user_agent.os}"
                    - c: "${req.cookies.transformList(k, v, k + '=' + v[0].value)}"
                    - h: "${hash.sha256(req.url.path) + req.url.path.escapeUrl().unescapeUrl()}"
                    - l: "${req.url.path.split('/').distinct().sort().reverse()}"
                    - f: "${'%s|%d'.format([req.url.path, size(req.headers)])}"
          - name: log what was read
            actions:
              - type: log
                config:
                  metadata:
                    j: "${vars.j}"
                    u: "${vars.u}"
                    ua: "${vars.ua}"
                    c: "${vars.c}"
                    path: "${req.url.path}"
                    isjson: "${getReqHeader('x-json').all(x, x.isJson())}"
          - expressions: ["hasReqHeader('x-close')"]
            actions: [{type: close-connection}]
          - expressions: ["req.url.path.startsWith('/r')"]
            actions:
              - type: redirect
                config:
                  from: "${hasReqHeader('x-from') ? getReqHeader('x-from')[0] : '^.*$'}"
                  to: "https://gw.example/${req.url.query}$1${hasReqHeader('x-to') ? getReqHeader('x-to')[0] : ''}"
                  headers: {x-why: "${req.url.path}"}
          - expressions: ["req.url.path.startsWith('/u')"]
            actions:
              - type: url-rewrite
                config: {from: "/u/([^?]*)", to: "/${req.url.query}/$1"}
          - expressions: ["hasReqHeader('x-find')"]
            actions:
              - type: request-body-find-replace
                config:
                  replacements:
                    - from: "${getReqHeader('x-find')[0]}"
                      to: "${hasReqHeader('x-repl') ? getReqHeader('x-repl')[0] : ''}"
          - expressions: ["req.url.path.startsWith('/h')"]
            actions:
              - type: http-request
                config:
                  url: "https://${hasReqHeader('x-sub') ? getReqHeader('x-sub')[0] : 'authz'}.internal/check?${req.url.query}"
                  headers: {x-q: "${req.url.query}"}
                  body: "${req.url.path}"
          - actions:
              - type: circuit-breaker
                config: {error_threshold: 0.5, volume_threshold: 4}
              - type: forward-internal
                config: {url: "https://app.internal"}
        on_http_response:
          - actions:
              - type: compress-response
              - type: response-body-find-replace
                config:
                  replacements:
                    - {from: "o+", to: "0"}
                    - {from: "${hasReqHeader('x-rfind') ? getReqHeader('x-rfind')[0] : 'zz'}", to: "${req.url.path}"}
              - type: add-headers
                config:
                  headers:
                    x-cookies: "${res.cookies.transformList(k, v, k + string(v.size()))}"
                    x-ages: "${res.cookies.all(k, v, v.all(c, !has(c.max_age) || string(c.max_age) != ''))}"
                    x-ct: "${has(res.content_type) ? res.content_type.raw : ''}"
- {apiVersion: ngrok.k8s.ngrok.com/v1alpha1, kind: AgentEndpoint, metadata: {name: app},
   spec: {bindings: [internal], url: https://app.internal, upstream: {url: "http://127.0.0.1:18101"}}}
- {apiVersion: ngrok.k8s.ngrok.com/v1alpha1, kind: AgentEndpoint, metadata: {name: authz},
   spec: {bindings: [internal], url: https://authz.internal, upstream: {url: "http://127.0.0.1:18102"}}}
"#;

/// Answers every forward with the headers the request asked for (`x-res-NAME: v` becomes
/// `NAME: v`, so a request can make the upstream send any `Set-Cookie`) and a body.
struct Mirror {
    req_body: Vec<u8>,
    res_body: Vec<u8>,
}

impl Upstream for Mirror {
    type Body = Vec<u8>;
    async fn send(&self, out: Outbound<'_>) -> Result<(ResponseHead, Vec<u8>), UpstreamError> {
        let mut headers = Headers::new();
        for (name, value) in out.headers.iter() {
            if let Some(name) = name.strip_prefix("x-res-") {
                headers.append(name, value);
            }
        }
        let status = out
            .headers
            .get("x-res-status")
            .and_then(|s| s.parse().ok())
            .filter(|s| (200..600).contains(s))
            .unwrap_or(200);
        Ok((ResponseHead { status, headers }, self.res_body.clone()))
    }

    fn body_replayable(&self) -> bool {
        true
    }

    async fn request_body(&self, _limit: usize) -> Result<std::rc::Rc<[u8]>, BodyError> {
        Ok(self.req_body.as_slice().into())
    }

    async fn read_body(&self, body: Vec<u8>, limit: usize) -> Result<Vec<u8>, BodyError> {
        if body.len() > limit {
            return Err(BodyError::TooLarge { limit });
        }
        Ok(body)
    }
}

/// Mangles `seed`: punctuation, multi-byte characters and controls inserted, bytes dropped,
/// and sometimes the whole repeated (long values find quadratic work).
fn hostile_value(seed: &str, rng: &mut fastrand::Rng) -> String {
    const ODD: &[&str] = &[
        "é",
        "€",
        "\u{10FFFF}",
        "\u{0}",
        "\r\n",
        "%",
        "%e2%82",
        "$",
        "${",
        "\\",
        "=",
        ";",
        "\"",
        "[",
        "{",
        "(",
        "*",
        "?",
        "+",
        "//",
        "@",
        ":",
        "#",
        "&",
    ];
    let mut v = seed.to_string();
    for _ in 0..rng.usize(0..4) {
        let at = rng.usize(0..=v.len());
        let at = (0..=at).rev().find(|&i| v.is_char_boundary(i)).unwrap_or(0);
        match rng.usize(0..3) {
            0 => v.insert_str(at, ODD[rng.usize(0..ODD.len())]),
            1 => {
                let end = (at + rng.usize(0..4)).min(v.len());
                let end = (end..=v.len()).find(|&i| v.is_char_boundary(i)).unwrap();
                v.replace_range(at..end, "");
            }
            _ => v.insert(at, PUNCTUATION[rng.usize(0..PUNCTUATION.len())] as char),
        }
    }
    if rng.usize(0..12) == 0 {
        v = v.repeat(1 + rng.usize(0..2000));
    }
    v
}

/// Mangled headers, cookies, User-Agents, queries, paths and bodies (and upstream `Set-Cookie`
/// and content types) through a policy using the issue 6 actions and macros: every request gets
/// a status (no panic, which would reset the Worker's isolate), and none takes long.
#[test]
fn hostile_request_data_through_the_new_actions_never_panics() {
    let file = parse_yaml_documents(HOSTILE_POLICY).unwrap().remove(0);
    let docs: Vec<SourceDoc> = file
        .as_seq()
        .unwrap()
        .iter()
        .cloned()
        .map(|node| SourceDoc {
            file: "hostile.yaml".into(),
            node,
        })
        .collect();
    let (gw, diags) = build_gateway(&docs, Options { strict: true }, "hostile");
    let gw = gw.unwrap_or_else(|| panic!("{diags:?}"));
    let seeds: &[(&str, &[&str])] = &[
        ("x-json", &[r#"{"a": [1, 2.5, "x"], "b": {"c": null}}"#, "[[[[[[1]]]]]]", "1e400", "\"\\ud800\""]),
        ("x-url", &["https://u:p@h.example:8080/a%20b?x=1&y=%zz#f", "http://[::1]:99999/", "//a@b@c"]),
        ("x-b64", &["aGVsbG8=", "/w==", "aGVsbG8"]),
        ("user-agent", &[
            "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Mobile Safari/537.36",
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) Version/17.5 Safari/604.1",
            "Googlebot/2.1 (+http://www.google.com/bot.html)", "curl/8.5.0", "Windows NT ",
        ]),
        ("cookie", &["a=1; b=\"two\"; a=3", "=; ;;=x", "s=%zz"]),
        ("x-from", &["(.*)", "gw\\.example/(r.*)", "(a+)+$", "[", "(?P<n>x)", "\\p{L}{1000}"]),
        ("x-to", &["/ok", "\r\nset-cookie: x=1", "${1}$n$$", "\\evil.example"]),
        ("x-find", &["o", "(a|b)*", ".", "^", "\\d+", "("]),
        ("x-repl", &["$0$0", "${1}", "x", ""]),
        ("x-rfind", &["b", "(", "$"]),
        ("x-sub", &["authz", "app", "evil.example/", "authz.internal@evil", "AUTHZ."]),
        ("x-res-set-cookie", &[
            "a=b; Max-Age=9223372036854775807", "s=v; Expires=Wed, 21 Oct 2015 07:28:00 GMT; Path=/",
            "x=y; Max-Age=-1; SameSite=none", "=novalue",
        ]),
        ("x-res-content-type", &["text/html; charset=\"utf-8\"", "application/json", ";;="]),
        ("x-res-content-encoding", &["gzip", "br, gzip", "identity"]),
        ("x-res-status", &["200", "503", "302"]),
        ("x-close", &["1"]),
    ];
    let paths = ["/", "/r/a", "/u/x/y", "/h/check", "/%ff/é/..", "/r", "/u/"];
    let queries = ["", "a=1&a=2", "%zz=1", "x=${1}", "a;b", "q=é&&="];
    let bodies: [&[u8]; 4] = [b"", b"hello foo boo", b"\xff\xfe ooo", b"{\"a\":1}"];
    let mut rng = fastrand::Rng::with_seed(0x6_6006);
    let trust = LocalTrust::default();
    let mut slowest = std::time::Duration::ZERO;
    let mut statuses = std::collections::BTreeSet::new();
    for i in 0..1500 {
        let mut headers = Headers::new();
        for (name, values) in seeds {
            // The close header only rarely, so most requests go through everything.
            let odds = if *name == "x-close" { 20 } else { 2 };
            if rng.usize(0..odds) == 0 {
                let v = hostile_value(values[rng.usize(0..values.len())], &mut rng);
                headers.append(name, &v);
            }
        }
        let path = hostile_value(paths[rng.usize(0..paths.len())], &mut rng);
        let query = hostile_value(queries[rng.usize(0..queries.len())], &mut rng);
        let url = format!("https://gw.example{path}?{query}");
        let Some(head) =
            RequestHead::from_url("POST", &url, headers, "203.0.113.9".parse().unwrap())
        else {
            continue;
        };
        let mut body = bodies[rng.usize(0..bodies.len())].to_vec();
        if rng.usize(0..8) == 0 {
            body = body.repeat(1 + rng.usize(0..4000));
        }
        let up = Mirror {
            req_body: body.clone(),
            res_body: body,
        };
        trust.now_ms.set(1_000 * i);
        let started = std::time::Instant::now();
        let reply = pollster::block_on(gw.handle(head, &up, &NoLimits, &trust, &mut First));
        slowest = slowest.max(started.elapsed());
        let status = reply.head.status;
        assert!((200..600).contains(&status), "{url}: status {status}");
        statuses.insert(status);
        // A redirect's Location is built from request data: always one clean line.
        if let Some(location) = reply.head.headers.get("location") {
            assert!(
                !location.contains(['\r', '\n', ' ']),
                "{url}: Location {location:?}"
            );
        }
    }
    // The mutations must reach more than one outcome (answers, redirects, errors).
    assert!(statuses.len() >= 3, "statuses {statuses:?}");
    assert!(
        slowest < std::time::Duration::from_secs(5),
        "a request took {slowest:?}"
    );
}
