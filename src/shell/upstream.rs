//! The [`Upstream`] port over `fetch`: streams the client's body to the origin, enforces the
//! timeout with an `AbortSignal`, and never follows redirects (a proxy passes 3xx through).

use super::timeout::within;
use crate::gateway::{Outbound, Upstream, UpstreamError};
use crate::http::{Headers, ResponseHead};
use std::cell::RefCell;
use worker::{
    AbortController, Env, Fetch, Method, Request, RequestInit, RequestRedirect, ResponseBody,
};

pub struct FetchUpstream {
    /// The client's body stream, handed to the one upstream request that is made.
    body: RefCell<Option<worker::wasm_bindgen::JsValue>>,
    timeout_ms: u64,
}

impl FetchUpstream {
    pub fn new(req: &Request, env: &Env) -> FetchUpstream {
        let timeout_ms = env
            .var("UPSTREAM_TIMEOUT_MS")
            .ok()
            .and_then(|v| v.to_string().parse().ok())
            .unwrap_or(30_000);
        FetchUpstream {
            body: RefCell::new(req.inner().body().map(Into::into)),
            timeout_ms,
        }
    }
}

impl Upstream for FetchUpstream {
    type Body = ResponseBody;

    async fn send(&self, out: Outbound<'_>) -> Result<(ResponseHead, ResponseBody), UpstreamError> {
        let unreachable = |e: worker::Error| UpstreamError::Unreachable(e.to_string());
        let headers = worker::Headers::new();
        for (name, value) in out.headers.iter() {
            headers.append(name, value).map_err(unreachable)?;
        }
        let method = Method::from(out.method.to_string());
        let mut init = RequestInit::new();
        init.with_method(method.clone())
            .with_headers(headers)
            .with_redirect(RequestRedirect::Manual);
        if !matches!(method, Method::Get | Method::Head) {
            init.with_body(self.body.borrow_mut().take());
        }
        let request = Request::new_with_init(&out.url, &init).map_err(unreachable)?;
        let controller = AbortController::default();
        let signal = controller.signal();
        let fetch = Fetch::Request(request);
        let response = match within(self.timeout_ms, fetch.send_with_signal(&signal)).await {
            Some(result) => result.map_err(unreachable)?,
            None => {
                controller.abort();
                return Err(UpstreamError::Timeout {
                    after_ms: self.timeout_ms,
                });
            }
        };
        let mut head = ResponseHead {
            status: response.status_code(),
            headers: Headers::new(),
        };
        for (name, value) in response.headers().entries() {
            head.headers.append(&name, &value);
        }
        let body = match response.body() {
            ResponseBody::Stream(s) => ResponseBody::Stream(s.clone()),
            ResponseBody::Body(b) => ResponseBody::Body(b.clone()),
            ResponseBody::Empty => ResponseBody::Empty,
        };
        Ok((head, body))
    }
}
