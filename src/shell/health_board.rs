//! Active health in the Worker: the Cron Trigger probes every member that has a
//! `edge-gateway.dev/health-path` and reports to one Durable Object, the board; every isolate
//! reads the board at most every [`READ_EVERY_MS`] and applies it (see `gateway::probe`).
//!
//! One object is enough: it is written once a minute and read once per isolate every few
//! seconds, and a read that fails or times out leaves passive health in charge.

use super::timeout::within;
use crate::exchange::Exchange;
use crate::gateway::probe::{merge, Board, ProbeResult};
use crate::gateway::Gateway;
use crate::http::{Headers, RequestHead};
use std::cell::{Cell, RefCell};
use worker::{
    durable_object, Date, DurableObject, Env, Fetch, Method, Request, RequestInit, Response,
    Result, State,
};

const BINDING: &str = "HEALTH_BOARD";
const STATE_KEY: &str = "board";
/// How often an isolate reads the board.
pub const READ_EVERY_MS: u64 = 10_000;
const READ_TIMEOUT_MS: u64 = 1_000;
const PROBE_TIMEOUT_MS: u64 = 5_000;

#[durable_object]
pub struct HealthBoard {
    state: State,
}

impl DurableObject for HealthBoard {
    fn new(state: State, _env: Env) -> Self {
        HealthBoard { state }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let storage = self.state.storage();
        let mut board: Board = storage.get(STATE_KEY).await?.unwrap_or_default();
        if req.method() == Method::Post {
            let report: Board = match req.json().await {
                Ok(r) => r,
                Err(e) => return Response::error(format!("bad report: {e}"), 400),
            };
            merge(&mut board, report);
            storage.put(STATE_KEY, &board).await?;
        }
        Response::from_json(&board)
    }
}

async fn call_board(env: &Env, report: Option<&Board>) -> Result<Board> {
    let stub = env
        .durable_object(BINDING)?
        .id_from_name("board")?
        .get_stub()?;
    let mut init = RequestInit::new();
    match report {
        Some(r) => {
            let body =
                serde_json::to_string(r).map_err(|e| worker::Error::RustError(e.to_string()))?;
            init.with_method(Method::Post).with_body(Some(body.into()));
        }
        None => {
            init.with_method(Method::Get);
        }
    }
    let req = Request::new_with_init("https://health.board/board", &init)?;
    stub.fetch_with_request(req).await?.json().await
}

thread_local! {
    static LAST_READ: Cell<u64> = const { Cell::new(0) };
    static LAST_VERSION: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Applies the board to this isolate's gateway when the last read is older than
/// [`READ_EVERY_MS`] (or the policy version changed). Failures are logged, never fatal.
pub async fn refresh(env: &Env, gateway: &Gateway) {
    if !gateway.has_probes() {
        return;
    }
    let now = Date::now().as_millis();
    let same_version = LAST_VERSION.with(|v| *v.borrow() == gateway.version);
    if same_version && now.saturating_sub(LAST_READ.with(Cell::get)) < READ_EVERY_MS {
        return;
    }
    LAST_READ.with(|t| t.set(now));
    LAST_VERSION.with(|v| *v.borrow_mut() = gateway.version.clone());
    match within(READ_TIMEOUT_MS, call_board(env, None)).await {
        Some(Ok(board)) => gateway.apply_board(&board),
        Some(Err(e)) => worker::console_log!("edge-gateway: health board unreadable: {e}"),
        None => worker::console_log!("edge-gateway: health board did not answer in time"),
    }
}

/// The Cron Trigger's work: probe every member that asks for it, report to the board.
pub async fn probe_all(env: &Env, gateway: &Gateway) {
    let probes = gateway.probes();
    if probes.is_empty() {
        return;
    }
    let checks = probes
        .iter()
        .map(|(key, url, expect, member)| probe(gateway, key, url, *expect, member));
    let report: Board = futures_util::future::join_all(checks)
        .await
        .into_iter()
        .flatten()
        .collect();
    let down: Vec<&String> = report
        .iter()
        .filter(|(_, r)| !r.up)
        .map(|(k, _)| k)
        .collect();
    worker::console_log!(
        "edge-gateway: probed {} member(s), {} down {down:?}",
        report.len(),
        down.len()
    );
    match within(READ_TIMEOUT_MS * 3, call_board(env, Some(&report))).await {
        Some(Ok(_)) => {}
        Some(Err(e)) => worker::console_log!("edge-gateway: health board refused the report: {e}"),
        None => worker::console_log!("edge-gateway: health board did not answer in time"),
    }
}

/// One probe. A member whose credentials do not render is not probed (no result, no verdict).
async fn probe(
    gateway: &Gateway,
    key: &str,
    url: &str,
    expect: u16,
    member: &crate::gateway::Member,
) -> Option<(String, ProbeResult)> {
    // The member's Access credentials, rendered as for a request (they read secrets).
    let headers = worker::Headers::new();
    let head = RequestHead::from_url("GET", url, Headers::new(), [0u8; 4].into())?;
    let mut ex = Exchange::new(head).with_secrets(std::sync::Arc::clone(&gateway.secrets));
    for (name, value) in &member.origin_auth {
        let v = ex.render(value, "health probe", "origin auth").ok()?;
        headers.set(name, &v).ok()?;
    }
    let _ = headers.set("user-agent", "edge-gateway-health-probe");
    let mut init = RequestInit::new();
    // Never follow a redirect: it could carry the credentials elsewhere, or end on an Access
    // login page that answers 200.
    init.with_method(Method::Get)
        .with_headers(headers)
        .with_redirect(worker::RequestRedirect::Manual);
    let outcome = match Request::new_with_init(url, &init) {
        Ok(req) => within(PROBE_TIMEOUT_MS, Fetch::Request(req).send()).await,
        Err(e) => Some(Err(e)),
    };
    let (up, detail) = match outcome {
        Some(Ok(resp)) => {
            let status = resp.status_code();
            // The response itself is not needed: free its connection.
            if let worker::ResponseBody::Stream(s) = resp.body() {
                let _ = s.cancel();
            }
            (status == expect, status.to_string())
        }
        Some(Err(e)) => (false, e.to_string()),
        None => (false, format!("no answer within {PROBE_TIMEOUT_MS} ms")),
    };
    let result = ProbeResult {
        up,
        at_ms: Date::now().as_millis(),
        fails: 0,
        detail,
    };
    Some((key.to_string(), result))
}
