//! The WAF's `process_body` reads only the first `body_limit` bytes of a body, as ngrok does,
//! whatever the body's size: a 9 MiB request or response (past the 8 MiB an action may buffer)
//! is inspected by its prefix and sent on whole as the stream it was, never buffered. The
//! upstream here keeps the shell's contract (`src/shell/upstream.rs`): a whole read past the
//! limit is refused, a prefix read hands over a little more than asked, and a body read by its
//! prefix is sent on as a replay of the whole.

#[path = "../benches/gateway_support.rs"]
mod gateway_support;

use edge_gateway::gateway::{
    Body, BodyError, Gateway, LocalTrust, Outbound, RateLimiter, Upstream, UpstreamError,
};
use edge_gateway::http::{Headers, RequestHead, ResponseHead};
use edge_gateway::limiter::{Decision, LimitCheck};
use gateway_support::{gateway_from_yaml, First};
use std::cell::{Cell, RefCell};
use std::rc::Rc;

const BIG: usize = 9 << 20;

/// A body as the shell holds it: a stream (its bytes, for the test to look at) and whether it
/// is a replay of one that was read by its prefix.
#[derive(Clone, Debug)]
struct Stream {
    bytes: Rc<[u8]>,
    replayed: bool,
}

struct Origin {
    /// The client's body.
    request: Rc<[u8]>,
    /// What the origin answers with.
    response: Rc<[u8]>,
    /// The most bytes of a body any read held at once.
    held: Cell<usize>,
    /// The body each request carried (`None`: the client's own stream).
    sent: RefCell<Vec<Option<Rc<[u8]>>>>,
    /// How many answers were thrown away unread.
    discarded: Cell<usize>,
}

impl Origin {
    fn new(request: Vec<u8>, response: Vec<u8>) -> Origin {
        Origin {
            request: request.into(),
            response: response.into(),
            held: Cell::new(0),
            sent: RefCell::default(),
            discarded: Cell::new(0),
        }
    }

    fn hold(&self, n: usize) -> usize {
        self.held.set(self.held.get().max(n));
        n
    }

    /// The bytes a prefix read of `limit` takes: a chunk's worth past the limit, or all.
    fn prefix(&self, body: &[u8], limit: usize) -> Vec<u8> {
        body[..self.hold(body.len().min(limit + 1000))].to_vec()
    }
}

impl Upstream for Origin {
    type Body = Stream;

    async fn send(&self, out: Outbound<'_>) -> Result<(ResponseHead, Stream), UpstreamError> {
        self.sent.borrow_mut().push(out.body.clone());
        let mut headers = Headers::new();
        headers.set("content-type", "text/html");
        headers.set("content-length", &self.response.len().to_string());
        let head = ResponseHead {
            status: 200,
            headers,
        };
        let body = Stream {
            bytes: Rc::clone(&self.response),
            replayed: false,
        };
        Ok((head, body))
    }

    fn discard(&self, _: Stream) {
        self.discarded.set(self.discarded.get() + 1);
    }

    fn body_replayable(&self) -> bool {
        true
    }

    async fn request_body(&self, limit: usize) -> Result<Rc<[u8]>, BodyError> {
        if self.request.len() > limit {
            return Err(BodyError::TooLarge { limit });
        }
        self.hold(self.request.len());
        Ok(Rc::clone(&self.request))
    }

    async fn request_body_prefix(&self, limit: usize) -> Result<Rc<[u8]>, BodyError> {
        Ok(self.prefix(&self.request, limit).into())
    }

    async fn read_body(&self, body: Stream, limit: usize) -> Result<Vec<u8>, BodyError> {
        if body.bytes.len() > limit {
            return Err(BodyError::TooLarge { limit });
        }
        Ok(body.bytes[..self.hold(body.bytes.len())].to_vec())
    }

    async fn read_body_prefix(
        &self,
        body: Stream,
        limit: usize,
    ) -> Result<(Vec<u8>, Option<Stream>), BodyError> {
        let head = self.prefix(&body.bytes, limit);
        if head.len() == body.bytes.len() {
            return Ok((head, None));
        }
        let replay = Stream {
            replayed: true,
            ..body
        };
        Ok((head, Some(replay)))
    }
}

struct NoLimits;
impl RateLimiter for NoLimits {
    async fn check(&self, _: &str, _: &[LimitCheck]) -> Result<Vec<Decision>, String> {
        Err("no rate limits here".into())
    }
}

fn gateway() -> Gateway {
    let yaml = r#"
apiVersion: ngrok.k8s.ngrok.com/v1alpha1
kind: CloudEndpoint
metadata: {name: waf}
spec:
  url: https://gw.example
  trafficPolicy:
    inline:
      on_http_request:
        - actions:
            - {type: owasp-crs-request, config: {process_body: true}}
            - {type: forward-internal, config: {url: "https://app.internal"}}
      on_http_response:
        - actions:
            - {type: owasp-crs-response, config: {process_body: true}}
---
apiVersion: ngrok.k8s.ngrok.com/v1alpha1
kind: AgentEndpoint
metadata: {name: app}
spec: {bindings: [internal], url: https://app.internal, upstream: {url: "http://127.0.0.1:18201"}}
"#;
    gateway_from_yaml(yaml)
}

fn post(gw: &Gateway, origin: &Origin) -> edge_gateway::gateway::Reply<Stream> {
    let len = origin.request.len().to_string();
    let headers: Headers = [
        (
            "User-Agent",
            "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0",
        ),
        ("Accept", "*/*"),
        ("Content-Type", "application/x-www-form-urlencoded"),
        ("Content-Length", len.as_str()),
    ]
    .into_iter()
    .collect();
    let head = RequestHead::from_url(
        "POST",
        "https://gw.example/upload",
        headers,
        "198.51.100.7".parse().unwrap(),
    )
    .unwrap();
    let trust = LocalTrust::default();
    pollster::block_on(gw.handle(head, origin, &NoLimits, &trust, &mut First))
}

/// `note=…` of `len` bytes with `attack` at byte `at` of the value.
fn form(len: usize, attack: &str, at: usize) -> Vec<u8> {
    let mut body = b"note=".to_vec();
    body.resize(len, b'a');
    body[5 + at..5 + at + attack.len()].copy_from_slice(attack.as_bytes());
    body
}

fn page(len: usize, leak: &str, at: usize) -> Vec<u8> {
    let mut body = b"<html><body><p>".to_vec();
    body.resize(len, b'p');
    body[15 + at..15 + at + leak.len()].copy_from_slice(leak.as_bytes());
    body
}

const SQLI: &str = "x%27+OR+1%3D1+--+";
const LEAK: &str = "You have an error in your SQL syntax; check the manual that corresponds to your MySQL server version";

#[test]
fn nine_mib_bodies_pass_by_their_prefix_and_go_on_whole() {
    let gw = gateway();
    let origin = Origin::new(form(BIG, "", 0), page(BIG, "", 0));
    let reply = post(&gw, &origin);
    assert_eq!(reply.head.status, 200, "{:?}", reply.body);
    // The client's stream went upstream as it was: no buffered copy.
    assert_eq!(&*origin.sent.borrow(), &[None]);
    // The response goes on as the replay of the whole stream.
    match &reply.body {
        Body::Upstream(s) => assert!(s.replayed && s.bytes.len() == BIG, "{s:?}"),
        other => panic!("the response body was {other:?}"),
    }
    // Nothing held more than the 4 KB inspected and the chunk it came in.
    assert!(
        origin.held.get() < 8 << 10,
        "held {} bytes",
        origin.held.get()
    );
    assert_eq!(origin.discarded.get(), 0);
}

#[test]
fn an_attack_in_the_first_four_kb_of_a_big_body_is_refused() {
    let gw = gateway();
    let origin = Origin::new(form(BIG, SQLI, 100), page(BIG, "", 0));
    let reply = post(&gw, &origin);
    assert_eq!(reply.head.status, 403);
    assert!(origin.sent.borrow().is_empty(), "nothing went upstream");

    let origin = Origin::new(form(BIG, "", 0), page(BIG, LEAK, 100));
    let reply = post(&gw, &origin);
    assert_eq!(reply.head.status, 403);
    match &reply.body {
        Body::Text(t) => assert!(t.contains("ERR_NGROK_3702"), "{t}"),
        other => panic!("the response body was {other:?}"),
    }
    // The refused answer's body is stopped, not left for the end of the request.
    assert_eq!(origin.discarded.get(), 1);
}

#[test]
fn past_the_body_limit_nothing_is_inspected_as_in_ngrok() {
    let gw = gateway();
    let origin = Origin::new(form(BIG, SQLI, 8 << 10), page(BIG, LEAK, 8 << 10));
    assert_eq!(post(&gw, &origin).head.status, 200);
}

#[test]
fn a_small_body_read_whole_by_its_prefix_is_sent_as_read() {
    let gw = gateway();
    let origin = Origin::new(form(600, "", 0), page(700, "", 0));
    let reply = post(&gw, &origin);
    assert_eq!(reply.head.status, 200);
    match &reply.body {
        Body::Bytes(b) => assert_eq!(b.len(), 700),
        other => panic!("the response body was {other:?}"),
    }
}
