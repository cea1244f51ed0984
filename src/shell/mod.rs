//! The Worker shell (wasm32 only): wiring, no policy logic. It turns the platform's request into
//! a [`RequestHead`], keeps the compiled policy per isolate ([`policy`]), and sends upstream
//! requests with `fetch` ([`upstream`]).

mod compress;
mod health_board;
mod policy;
mod rate_limit;
mod replay;
mod timeout;
mod trust;
mod upstream;

use crate::error::GatewayError;
use crate::gateway::{Body, Random, Reply};
use crate::http::{Headers, RequestHead};
use worker::{
    event, Context, Env, Request, Response, ResponseBody, Result, ScheduleContext, ScheduledEvent,
};

#[event(fetch)]
async fn fetch(req: Request, env: Env, ctx: Context) -> Result<Response> {
    let gateway = match policy::current(&env).await {
        Ok(g) => g,
        Err(e) => return respond(Reply::synthetic(e.rescue())),
    };
    let head = match request_head(&req) {
        Ok(h) => h,
        Err(e) => return respond(Reply::synthetic(e.rescue())),
    };
    // The board is read after the response, off the request path (at most every 10 s).
    if gateway.has_probes() {
        let (env, gateway) = (env.clone(), std::rc::Rc::clone(&gateway));
        ctx.wait_until(async move { health_board::refresh(&env, &gateway).await });
    }
    let upstream = upstream::FetchUpstream::new(&req, &env);
    let limiter = rate_limit::DurableLimiter { env: &env };
    let trust = trust::WorkerTrust::new(&env);
    let reply = gateway
        .handle(head, &upstream, &limiter, &trust, &mut JsRandom)
        .await;
    // console.log, not console.warn: `wrangler dev` (4.86) does not print a Worker's warnings,
    // and these lines (a limiter failing open, stale JWKS keys) must be seen locally too.
    for note in &reply.notes {
        // A `log` action's line is a JSON object (serialised by the core): printed alone, so
        // Workers Logs can index it.
        if note.starts_with('{') {
            worker::console_log!("{note}");
        } else {
            worker::console_log!("edge-gateway: {note}");
        }
    }
    trust.refresh_in_background(&ctx);
    respond(reply)
}

/// The client's request as the core sees it. The client address comes from the platform's
/// `CF-Connecting-IP` only (Cloudflare sets it; `X-Forwarded-For` is client-controlled).
fn request_head(req: &Request) -> std::result::Result<RequestHead, GatewayError> {
    let bad = |reason: &str| GatewayError::BadRequest {
        reason: reason.to_string(),
    };
    let mut headers = Headers::new();
    for (name, value) in req.headers().entries() {
        headers.append(&name, &value);
    }
    // What the client accepts, not the platform's normalised header (see compress.rs).
    match compress::client_accept_encoding(req) {
        Some(original) if original.trim().is_empty() => {
            headers.remove("accept-encoding");
        }
        Some(original) => headers.set("accept-encoding", &original),
        None => {}
    }
    let client_ip = headers
        .get("cf-connecting-ip")
        .and_then(crate::expr::parse_ip)
        .ok_or_else(|| bad("the platform gave no client address (CF-Connecting-IP)"))?;
    let url = req.url().map_err(|_| bad("unparsable URL"))?;
    let mut head = RequestHead::from_url(req.method().as_ref(), url.as_str(), headers, client_ip)
        .ok_or_else(|| bad("unparsable URL"))?;
    head.conn = std::sync::Arc::new(crate::conn::ConnFacts::from_cf(&cf_json(req)));
    Ok(head)
}

/// The request's `cf` object as JSON (`null` when absent). Read through JSON rather than
/// workers-rs' `Cf` getters, which panic on a missing field (as `wrangler dev` may have).
fn cf_json(req: &Request) -> serde_json::Value {
    use worker::js_sys::{Reflect, JSON};
    Reflect::get(req.inner(), &"cf".into())
        .ok()
        .filter(|v| v.is_object())
        .and_then(|v| JSON::stringify(&v).ok())
        .and_then(|s| s.as_string())
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_default()
}

fn respond(reply: Reply<upstream::Fetched>) -> Result<Response> {
    let headers = worker::Headers::new();
    for (name, value) in reply.head.headers.iter() {
        headers.append(name, value)?;
    }
    let builder = Response::builder()
        .with_status(reply.head.status)
        .with_headers(headers);
    let body = match reply.body {
        Body::Empty => ResponseBody::Empty,
        Body::Text(t) => ResponseBody::Body(t.into_bytes()),
        Body::Upstream(b) => b.body,
        Body::Bytes(b) => ResponseBody::Body(b.to_vec()),
        // `close-connection`: a body promised as one byte (`Content-Length: 1`) that ends with
        // none. workerd cannot finish that message, so it drops the client's connection. (A
        // plain stream that errors is ended cleanly as an empty chunked body, workerd#6818.)
        Body::Abort => {
            let empty = futures_util::stream::empty::<Result<Vec<u8>>>();
            let fixed: worker::worker_sys::FixedLengthStream =
                worker::FixedLengthStream::wrap(empty, 1).into();
            ResponseBody::Stream(fixed.readable())
        }
    };
    let (body, encode) = compress::encode(body, reply.compress)?;
    Ok(builder.with_encode_body(encode).body(body))
}

/// `Math.random`, good enough for spreading load (not for secrets).
struct JsRandom;

impl Random for JsRandom {
    fn below(&mut self, n: usize) -> usize {
        ((worker::js_sys::Math::random() * n as f64) as usize).min(n.saturating_sub(1))
    }

    fn seed(&mut self) -> u64 {
        let half = || (worker::js_sys::Math::random() * 4_294_967_296.0) as u64;
        (half() << 32) | half()
    }
}

/// The Cron Trigger (`[triggers] crons` in wrangler.toml): active health probes.
#[event(scheduled)]
async fn scheduled(_event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
    match policy::current(&env).await {
        Ok(gateway) => health_board::probe_all(&env, &gateway).await,
        Err(e) => worker::console_log!("edge-gateway: no policy to probe: {e}"),
    }
}
