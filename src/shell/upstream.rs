//! The [`Upstream`] port over `fetch`: streams the client's body to the origin, enforces the
//! timeout with an `AbortSignal`, and never follows redirects (a proxy passes 3xx through).

use super::replay::replay;
use super::timeout::within;
use crate::gateway::{BodyError, Outbound, Upstream, UpstreamError};
use crate::http::MAX_BUFFERED_BODY;
use crate::http::{Headers, ResponseHead};
use std::cell::RefCell;
use std::rc::Rc;
use worker::js_sys::{Reflect, Uint8Array};
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::wasm_bindgen_futures::JsFuture;
use worker::web_sys;
use worker::{
    AbortController, Env, Fetch, Method, Request, RequestInit, RequestRedirect, ResponseBody,
};

pub struct FetchUpstream {
    body: RefCell<ClientBody>,
    /// The client's Content-Length, when it sent one: a body over the limit is refused unread.
    declared_length: Option<u64>,
    timeout_ms: u64,
}

/// The client's body: a stream handed to the one upstream request, unless an action read it,
/// in which case the very bytes it checked are what the upstream gets.
enum ClientBody {
    Stream(Option<JsValue>),
    Buffered(Rc<[u8]>),
    /// Its first bytes were read (an inspection's prefix); `rest` is the stream, unlocked,
    /// positioned after them.
    Prefixed {
        head: Rc<[u8]>,
        rest: web_sys::ReadableStream,
    },
    /// Streamed to an upstream already: it cannot be sent again (no retry).
    Sent,
    /// A read failed part-way: what is left must not be forwarded as if it were the body.
    Failed(String),
}

/// An origin's response body as `fetch` hands it over, and its length when its Content-Length
/// counts the bytes it yields (it arrived in no coding that fetch decodes), so that a body
/// read by its prefix and sent on keeps its Content-Length.
pub struct Fetched {
    pub body: ResponseBody,
    length: Option<u64>,
}

impl FetchUpstream {
    pub fn new(req: &Request, env: &Env) -> FetchUpstream {
        let timeout_ms = env
            .var("UPSTREAM_TIMEOUT_MS")
            .ok()
            .and_then(|v| v.to_string().parse().ok())
            .unwrap_or(30_000);
        let declared_length: Option<u64> = req
            .headers()
            .get("content-length")
            .ok()
            .flatten()
            .and_then(|v| v.trim().parse().ok());
        // `Content-Length: 0` still comes with an (empty) stream; held as the empty body it is,
        // the request can be retried on another member, which a streamed body cannot.
        let body = match declared_length {
            Some(0) => ClientBody::Buffered(Rc::from(&[][..])),
            _ => ClientBody::Stream(req.inner().body().map(Into::into)),
        };
        FetchUpstream {
            body: RefCell::new(body),
            declared_length,
            timeout_ms,
        }
    }
}

impl Upstream for FetchUpstream {
    type Body = Fetched;

    async fn send(&self, out: Outbound<'_>) -> Result<(ResponseHead, Fetched), UpstreamError> {
        let unreachable = |e: worker::Error| UpstreamError::Unreachable(e.to_string());
        // A header or URL the platform refuses is the request's fault, not the member's.
        let invalid = |e: worker::Error| UpstreamError::Invalid(e.to_string());
        let headers = worker::Headers::new();
        for (name, value) in out.headers.iter() {
            headers.append(name, value).map_err(invalid)?;
        }
        let method = Method::from(out.method.to_string());
        let mut init = RequestInit::new();
        init.with_method(method.clone())
            .with_headers(headers)
            .with_redirect(RequestRedirect::Manual);
        if let Some(bytes) = &out.body {
            // An `http-request` sends its own body (`fetch` refuses one on a GET).
            if !bytes.is_empty() && !matches!(method, Method::Get | Method::Head) {
                init.with_body(Some(Uint8Array::from(&bytes[..]).into()));
            }
        } else if !matches!(method, Method::Get | Method::Head) {
            let mut state = self.body.borrow_mut();
            let body = match std::mem::replace(&mut *state, ClientBody::Sent) {
                ClientBody::Stream(Some(s)) => Some(s),
                // No body: one can be "sent again" as often as a retry needs.
                ClientBody::Stream(None) => {
                    *state = ClientBody::Stream(None);
                    None
                }
                ClientBody::Buffered(bytes) => {
                    let body = Uint8Array::from(&bytes[..]).into();
                    *state = ClientBody::Buffered(bytes);
                    Some(body)
                }
                ClientBody::Prefixed { head, rest } => {
                    match replay(&head, &rest, self.declared_length) {
                        Ok(whole) => Some(whole.into()),
                        Err(e) => {
                            let e = format!("the request body could not be sent on: {e:?}");
                            *state = ClientBody::Failed(e.clone());
                            return Err(UpstreamError::Invalid(e));
                        }
                    }
                }
                ClientBody::Sent => None,
                ClientBody::Failed(reason) => {
                    let e = format!("the request body could not be read: {reason}");
                    *state = ClientBody::Failed(reason);
                    return Err(UpstreamError::Invalid(e));
                }
            };
            drop(state);
            init.with_body(body);
        }
        let request = Request::new_with_init(&out.url, &init).map_err(invalid)?;
        let controller = AbortController::default();
        let signal = controller.signal();
        let fetch = Fetch::Request(request);
        let timeout_ms = out
            .timeout_ms
            .map_or(self.timeout_ms, |t| t.min(self.timeout_ms));
        let response = match within(timeout_ms, fetch.send_with_signal(&signal)).await {
            Some(result) => result.map_err(unreachable)?,
            None => {
                controller.abort();
                return Err(UpstreamError::Timeout {
                    after_ms: timeout_ms,
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
        let coding = head.headers.get("content-encoding").map(str::trim);
        let length = match coding {
            Some(c) if self.decodes(&c.to_ascii_lowercase()) => None,
            _ => head.headers.get("content-length"),
        };
        let length = length.and_then(|v| v.trim().parse().ok());
        Ok((head, Fetched { body, length }))
    }

    /// An answer that will not be used (a failed attempt, a response replaced by the policy)
    /// is not read: cancel its stream so the connection is freed.
    fn discard(&self, body: Fetched) {
        if let ResponseBody::Stream(stream) = body.body {
            let _ = stream.cancel();
        }
    }

    /// `fetch` hands gzip and br bodies over decoded (checked under wrangler dev; deflate
    /// arrives as sent).
    fn decodes(&self, coding: &str) -> bool {
        matches!(coding, "gzip" | "br")
    }

    async fn read_body_prefix(
        &self,
        body: Fetched,
        limit: usize,
    ) -> Result<(Vec<u8>, Option<Fetched>), BodyError> {
        let Fetched { body, length } = body;
        let ResponseBody::Stream(stream) = body else {
            let whole = self.read_body(Fetched { body, length }, MAX_BUFFERED_BODY);
            return Ok((whole.await?, None));
        };
        let reader: web_sys::ReadableStreamDefaultReader = stream.get_reader().unchecked_into();
        let mut head = Vec::new();
        if read_onto(&reader, &mut head, limit, usize::MAX).await? {
            return Ok((head, None));
        }
        reader.release_lock();
        let whole = replay(&head, &stream, length).map_err(unreadable)?;
        let body = ResponseBody::Stream(whole);
        Ok((head, Some(Fetched { body, length })))
    }

    async fn read_body(&self, body: Fetched, limit: usize) -> Result<Vec<u8>, BodyError> {
        match body.body {
            ResponseBody::Empty => Ok(Vec::new()),
            ResponseBody::Body(bytes) if bytes.len() > limit => Err(BodyError::TooLarge { limit }),
            ResponseBody::Body(bytes) => Ok(bytes),
            ResponseBody::Stream(stream) => read_capped(stream.unchecked_into(), limit).await,
        }
    }

    fn body_replayable(&self) -> bool {
        !matches!(
            *self.body.borrow(),
            ClientBody::Sent | ClientBody::Failed(_)
        )
    }

    async fn request_body(&self, limit: usize) -> Result<Rc<[u8]>, BodyError> {
        if self.declared_length.is_some_and(|n| n > limit as u64) {
            return Err(BodyError::TooLarge { limit });
        }
        let taken = std::mem::replace(&mut *self.body.borrow_mut(), ClientBody::Sent);
        let (mut bytes, rest) = match taken {
            ClientBody::Buffered(bytes) => {
                *self.body.borrow_mut() = ClientBody::Buffered(Rc::clone(&bytes));
                return Ok(bytes);
            }
            ClientBody::Stream(s) => (Vec::new(), s.map(JsCast::unchecked_into)),
            ClientBody::Prefixed { head, rest } => (head.to_vec(), Some(rest)),
            gone => return Err(self.gone(gone)),
        };
        if let Some(rest) = rest {
            let reader: web_sys::ReadableStreamDefaultReader = rest.get_reader().unchecked_into();
            if bytes.len() > limit {
                let _ = reader.cancel();
                return Err(self.failed(BodyError::TooLarge { limit }));
            }
            let read = read_onto(&reader, &mut bytes, usize::MAX, limit).await;
            read.map_err(|e| self.failed(e))?;
        }
        let bytes: Rc<[u8]> = bytes.into();
        *self.body.borrow_mut() = ClientBody::Buffered(Rc::clone(&bytes));
        Ok(bytes)
    }

    async fn request_body_prefix(&self, limit: usize) -> Result<Rc<[u8]>, BodyError> {
        let taken = std::mem::replace(&mut *self.body.borrow_mut(), ClientBody::Sent);
        let (mut head, rest) = match taken {
            ClientBody::Buffered(bytes) => {
                *self.body.borrow_mut() = ClientBody::Buffered(Rc::clone(&bytes));
                return Ok(bytes);
            }
            ClientBody::Prefixed { head, rest } if head.len() > limit => {
                *self.body.borrow_mut() = ClientBody::Prefixed {
                    head: Rc::clone(&head),
                    rest,
                };
                return Ok(head);
            }
            ClientBody::Prefixed { head, rest } => (head.to_vec(), rest),
            ClientBody::Stream(Some(s)) => (Vec::new(), s.unchecked_into()),
            ClientBody::Stream(None) => {
                let none: Rc<[u8]> = Rc::from(&[][..]);
                *self.body.borrow_mut() = ClientBody::Buffered(Rc::clone(&none));
                return Ok(none);
            }
            gone => return Err(self.gone(gone)),
        };
        let reader: web_sys::ReadableStreamDefaultReader = rest.get_reader().unchecked_into();
        let read = read_onto(&reader, &mut head, limit, usize::MAX).await;
        let ended = read.map_err(|e| self.failed(e))?;
        let head: Rc<[u8]> = head.into();
        *self.body.borrow_mut() = if ended {
            ClientBody::Buffered(Rc::clone(&head))
        } else {
            reader.release_lock();
            ClientBody::Prefixed {
                head: Rc::clone(&head),
                rest,
            }
        };
        Ok(head)
    }
}

impl FetchUpstream {
    /// Why a body in this state cannot be read (it is put back as it was).
    fn gone(&self, state: ClientBody) -> BodyError {
        let e = match &state {
            ClientBody::Failed(reason) => reason.clone(),
            _ => "the body was already streamed upstream".into(),
        };
        *self.body.borrow_mut() = state;
        BodyError::Unreadable(e)
    }

    /// A read that failed part-way: the body is marked so that it is never forwarded short.
    fn failed(&self, e: BodyError) -> BodyError {
        let reason = match &e {
            BodyError::TooLarge { limit } => format!("it is over {limit} bytes"),
            BodyError::Unreadable(reason) => reason.clone(),
        };
        *self.body.borrow_mut() = ClientBody::Failed(reason);
        e
    }
}

fn unreadable(e: JsValue) -> BodyError {
    BodyError::Unreadable(format!("{e:?}"))
}

/// Reads a stream chunk by chunk, giving up as soon as it passes `limit` bytes: a body
/// without Content-Length (chunked) cannot make the isolate hold more than that.
async fn read_capped(stream: web_sys::ReadableStream, limit: usize) -> Result<Vec<u8>, BodyError> {
    let reader = stream.get_reader().unchecked_into();
    let mut out = Vec::new();
    read_onto(&reader, &mut out, usize::MAX, limit).await?;
    Ok(out)
}

/// Appends chunks from `reader` to `out` until the stream ends (`true`) or `out` holds more
/// than `want` bytes (`false`, the rest unread). Past `cap` bytes it gives up and cancels the
/// stream.
async fn read_onto(
    reader: &web_sys::ReadableStreamDefaultReader,
    out: &mut Vec<u8>,
    want: usize,
    cap: usize,
) -> Result<bool, BodyError> {
    while out.len() <= want {
        let chunk = JsFuture::from(reader.read()).await.map_err(unreadable)?;
        let done = Reflect::get(&chunk, &"done".into()).map_err(unreadable)?;
        if done.as_bool() == Some(true) {
            return Ok(true);
        }
        let value = Reflect::get(&chunk, &"value".into()).map_err(unreadable)?;
        let part = Uint8Array::new(&value);
        if out.len() + part.length() as usize > cap {
            let _ = reader.cancel();
            return Err(BodyError::TooLarge { limit: cap });
        }
        out.extend(part.to_vec());
    }
    Ok(false)
}
