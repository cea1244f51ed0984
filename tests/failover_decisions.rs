//! The retry decision of `forward-internal`, pinned through `Gateway::handle`: which failures
//! another member takes (a refused connection, a failing status, for an idempotent request
//! whose body can be sent again, while attempts and retry budget last), which end the request
//! (a request the platform refuses to build: no retry and no mark against the member), the
//! log line a retry leaves, the failing answer thrown away, and which member is named.

#[path = "../benches/gateway_support.rs"]
mod gateway_support;

use edge_gateway::gateway::{
    BodyError, Gateway, LocalTrust, Outbound, RateLimiter, Reply, Upstream, UpstreamError,
};
use edge_gateway::http::{Headers, RequestHead, ResponseHead};
use edge_gateway::limiter::{Decision, LimitCheck};
use gateway_support::{gateway_from_yaml, First};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

const POOL: &str = "https://app.internal";
const HEADER: &str = "x-edge-gateway-member";

#[derive(Clone, Copy)]
enum Answer {
    Status(u16),
    Refuse,
    Invalid,
}

/// Members by port (18301 is `m-a`, 18302 `m-b`, 18303 `m-c`), each answering as scripted.
struct Origins {
    answers: RefCell<HashMap<&'static str, Answer>>,
    /// The member of every request sent, in order.
    sent: RefCell<Vec<String>>,
    discarded: Cell<usize>,
    replayable: Cell<bool>,
}

impl Origins {
    fn new(answers: &[(&'static str, Answer)]) -> Origins {
        Origins {
            answers: RefCell::new(answers.iter().copied().collect()),
            sent: RefCell::default(),
            discarded: Cell::new(0),
            replayable: Cell::new(true),
        }
    }

    fn sent(&self) -> Vec<String> {
        std::mem::take(&mut *self.sent.borrow_mut())
    }
}

impl Upstream for Origins {
    type Body = ();

    async fn send(&self, out: Outbound<'_>) -> Result<(ResponseHead, ()), UpstreamError> {
        let member = out.member.trim_start_matches("default/");
        self.sent.borrow_mut().push(member.to_string());
        match self.answers.borrow().get(member).copied() {
            Some(Answer::Refuse) => Err(UpstreamError::Unreachable("refused".into())),
            Some(Answer::Invalid) => Err(UpstreamError::Invalid("bad header".into())),
            Some(Answer::Status(status)) => Ok((
                ResponseHead {
                    status,
                    headers: Headers::new(),
                },
                (),
            )),
            None => panic!("no answer for {member}"),
        }
    }

    fn discard(&self, _: ()) {
        self.discarded.set(self.discarded.get() + 1);
    }

    fn body_replayable(&self) -> bool {
        self.replayable.get()
    }

    async fn request_body(&self, _: usize) -> Result<Rc<[u8]>, BodyError> {
        Ok(Rc::from(&b""[..]))
    }
}

struct NoLimits;
impl RateLimiter for NoLimits {
    async fn check(&self, _: &str, _: &[LimitCheck]) -> Result<Vec<Decision>, String> {
        Err("no rate limits here".into())
    }
}

fn gateway() -> Gateway {
    let member = |name: &str, port: u16| {
        format!(
            "---\napiVersion: ngrok.k8s.ngrok.com/v1alpha1\nkind: AgentEndpoint\n\
             metadata: {{name: {name}}}\n\
             spec: {{bindings: [internal], url: {POOL}, upstream: {{url: \"http://127.0.0.1:{port}\"}}}}\n"
        )
    };
    let yaml = format!(
        r#"
apiVersion: ngrok.k8s.ngrok.com/v1alpha1
kind: CloudEndpoint
metadata: {{name: gw}}
spec:
  url: https://gw.example
  trafficPolicy:
    inline:
      on_http_request:
        - actions: [{{type: forward-internal, config: {{url: "{POOL}"}}}}]
{}{}{}"#,
        member("m-a", 18301),
        member("m-b", 18302),
        member("m-c", 18303)
    );
    gateway_from_yaml(&yaml)
}

fn request(gw: &Gateway, origins: &Origins, method: &str) -> Reply<()> {
    let head = RequestHead::from_url(
        method,
        "https://gw.example/x",
        Headers::new(),
        "198.51.100.7".parse().unwrap(),
    )
    .unwrap();
    let trust = LocalTrust::default();
    trust.now_ms.set(1_000);
    pollster::block_on(gw.handle(head, origins, &NoLimits, &trust, &mut First))
}

fn named(reply: &Reply<()>) -> Option<&str> {
    reply.head.headers.get(HEADER)
}

/// The status, and the member the reply names.
fn outcome(reply: &Reply<()>) -> (u16, Option<&str>) {
    (reply.head.status, named(reply))
}

#[test]
fn a_refused_connection_is_retried_on_another_member() {
    let gw = gateway();
    let origins = Origins::new(&[("m-a", Answer::Refuse), ("m-b", Answer::Status(200))]);
    let reply = request(&gw, &origins, "GET");
    assert_eq!(reply.head.status, 200);
    assert_eq!(named(&reply), Some("default/m-b"));
    assert_eq!(origins.sent(), ["m-a", "m-b"]);
    assert_eq!(
        reply.notes,
        [format!(
            "{POOL}: member default/m-a failed (the upstream of `{POOL}` could not be reached: \
             refused); trying another"
        )]
    );
}

#[test]
fn a_failing_status_is_retried_and_its_answer_thrown_away() {
    let gw = gateway();
    let origins = Origins::new(&[("m-a", Answer::Status(503)), ("m-b", Answer::Status(200))]);
    let reply = request(&gw, &origins, "GET");
    assert_eq!(outcome(&reply), (200, Some("default/m-b")));
    assert_eq!(origins.discarded.get(), 1);
    assert_eq!(
        reply.notes,
        [format!(
            "{POOL}: member default/m-a failed (status 503); trying another"
        )]
    );
}

#[test]
fn the_last_attempt_s_failure_is_the_answer_and_names_its_member() {
    let gw = gateway();
    let origins = Origins::new(&[
        ("m-a", Answer::Status(502)),
        ("m-b", Answer::Status(503)),
        ("m-c", Answer::Status(504)),
    ]);
    let reply = request(&gw, &origins, "GET");
    assert_eq!(outcome(&reply), (504, Some("default/m-c")));
    assert_eq!(origins.sent(), ["m-a", "m-b", "m-c"]);
    assert_eq!(reply.notes.len(), 2, "{:?}", reply.notes);
}

#[test]
fn a_post_or_a_streamed_body_is_not_sent_twice() {
    let gw = gateway();
    let origins = Origins::new(&[("m-a", Answer::Status(503)), ("m-b", Answer::Status(200))]);
    let reply = request(&gw, &origins, "POST");
    assert_eq!(outcome(&reply), (503, Some("default/m-a")));
    assert_eq!(origins.sent(), ["m-a"]);
    origins.replayable.set(false);
    let reply = request(&gw, &origins, "PUT");
    assert_eq!(outcome(&reply), (503, Some("default/m-a")));
    assert_eq!(origins.sent(), ["m-a"]);
    assert!(reply.notes.is_empty(), "{:?}", reply.notes);
}

#[test]
fn a_request_the_platform_refuses_is_neither_retried_nor_held_against_the_member() {
    let gw = gateway();
    let origins = Origins::new(&[("m-a", Answer::Invalid), ("m-b", Answer::Status(200))]);
    for _ in 0..5 {
        let reply = request(&gw, &origins, "GET");
        assert_eq!(reply.head.status, 400);
        // Never ejected: every request still goes to `m-a` first.
        assert_eq!(origins.sent(), ["m-a"]);
    }
}

#[test]
fn when_no_member_is_left_to_try_the_last_failure_is_the_answer_unnamed() {
    let gw = gateway();
    let pool = gw.pools.values().next().unwrap();
    for t in 0..3 {
        pool.record(2, false, 1_000 - 10 + t, &gw.routing.health);
    }
    let origins = Origins::new(&[("m-a", Answer::Status(502)), ("m-b", Answer::Status(503))]);
    let reply = request(&gw, &origins, "GET");
    // `m-c` is ejected: the failover ends at `m-b`, whose answer is not named (as before the
    // request path was split into rooms).
    assert_eq!(outcome(&reply), (503, None));
    assert_eq!(origins.sent(), ["m-a", "m-b"]);
    assert_eq!(reply.notes.len(), 2, "{:?}", reply.notes);
}

#[test]
fn a_spent_retry_budget_answers_with_the_first_failure_unnamed() {
    let mut gw = gateway();
    gw.routing.health.eject_after = u32::MAX;
    let origins = Origins::new(&[("m-a", Answer::Status(503)), ("m-b", Answer::Status(200))]);
    let mut spent = None;
    for n in 0..30 {
        let reply = request(&gw, &origins, "GET");
        if reply.head.status == 503 {
            spent = Some((n, reply));
            break;
        }
        assert_eq!(origins.sent(), ["m-a", "m-b"]);
    }
    let (n, reply) = spent.expect("the budget runs out");
    // 10 retries banked, a fifth more with each request, one spent by each: the 13th finds
    // less than one.
    assert_eq!(n, 12);
    assert_eq!(named(&reply), None);
    assert_eq!(origins.sent(), ["m-a"]);
    assert_eq!(
        reply.notes,
        [
            format!("{POOL}: member default/m-a failed (status 503); trying another"),
            format!("{POOL}: retry budget spent; not retrying"),
        ]
    );
}
