//! What the gateway answers: a response head and a [`Body`] (made here, the upstream's stream
//! passed through, or bytes an action read and rewrote), and how a response phase reads it.

use super::ports::Upstream;
use crate::error::GatewayError;
use crate::http::Synthetic;
use crate::http::{Headers, ResponseHead};
use std::cell::RefCell;
use std::rc::Rc;

/// A response body: made here, the upstream's stream passed through untouched, or bytes an
/// action read and rewrote. Always the content: the shell applies the response's
/// Content-Encoding on the way out.
#[derive(Debug)]
pub enum Body<B> {
    Empty,
    Text(String),
    Upstream(B),
    /// A body that fails before its first byte (`close-connection`): the shell makes the
    /// platform abort the response, the nearest a Worker comes to closing the connection.
    Abort,
    Bytes(Rc<[u8]>),
}

#[derive(Debug)]
pub struct Reply<B> {
    pub head: ResponseHead,
    pub body: Body<B>,
    /// Lines for the shell to log (e.g. a rate limiter that failed open).
    pub notes: Vec<String>,
    /// The coding `compress-response` chose (Content-Encoding is set): the shell compresses
    /// the body with it as it streams out.
    pub compress: Option<crate::http::Coding>,
}

impl<B> Reply<B> {
    /// A response made by the gateway (custom-response, errors).
    pub fn synthetic(mut s: Synthetic) -> Self {
        let body = if s.body.is_empty() {
            Body::Empty
        } else {
            // Known here, as the client will see it: `res.content_length` in the response
            // phase reads it (ngrok's res variables page), and body actions keep it current.
            if !s.headers.contains("content-length") {
                s.headers.set("content-length", &s.body.len().to_string());
            }
            Body::Text(s.body)
        };
        Reply::new(s.status, s.headers, body)
    }

    /// `close-connection`: a 502 head (what a client that ignores the abort is left with) and
    /// a body that aborts.
    pub(super) fn closed() -> Self {
        Reply::new(502, Headers::new(), Body::Abort)
    }

    /// `deny`: the status and nothing else.
    pub(super) fn deny(status: u16) -> Self {
        Reply::new(status, Headers::new(), Body::Empty)
    }

    /// An origin's response, its body still a stream.
    pub(super) fn upstream(head: ResponseHead, body: B) -> Self {
        Reply::new(head.status, head.headers, Body::Upstream(body))
    }

    fn new(status: u16, headers: Headers, body: Body<B>) -> Self {
        Reply {
            head: ResponseHead { status, headers },
            body,
            notes: Vec::new(),
            compress: None,
        }
    }
}

/// Throws away a body that will not be sent: an upstream's stream is stopped now, not when the
/// request ends.
pub(super) fn discard<U: Upstream>(upstream: &U, body: Body<U::Body>) {
    if let Body::Upstream(b) = body {
        upstream.discard(b);
    }
}

/// Reads the reply body in the response phase (`slot`; `None` outside it): whole, or with
/// `prefix` only its first bytes (the rest stays a stream and is sent on as it comes). What was
/// read stays in the slot as the body to send.
pub(super) async fn read<U: Upstream>(
    slot: Option<&RefCell<Body<U::Body>>>,
    upstream: &U,
    prefix: Option<usize>,
) -> Result<Rc<[u8]>, GatewayError> {
    let Some(slot) = slot else {
        return Err(GatewayError::BadRequest {
            reason: "no response body outside on_http_response".into(),
        });
    };
    // Taken out of the slot so no borrow is held across the read.
    let current = std::mem::replace(&mut *slot.borrow_mut(), Body::Empty);
    let bytes: Rc<[u8]> = match current {
        Body::Empty => Rc::from(&[][..]),
        Body::Text(t) => Rc::from(t.into_bytes()),
        Body::Bytes(b) => b,
        Body::Abort => {
            *slot.borrow_mut() = Body::Abort;
            return Err(GatewayError::ResponseBodyUnreadable {
                detail: "the connection was closed".into(),
            });
        }
        Body::Upstream(b) => match read_stream(upstream, b, prefix).await {
            Ok((head, Some(rest))) => {
                *slot.borrow_mut() = Body::Upstream(rest);
                return Ok(Rc::from(head));
            }
            Ok((whole, None)) => Rc::from(whole),
            // Part of it is gone: the client must not take the rest for the whole.
            Err(e) => {
                *slot.borrow_mut() = Body::Abort;
                return Err(e.of_response());
            }
        },
    };
    *slot.borrow_mut() = Body::Bytes(Rc::clone(&bytes));
    Ok(bytes)
}

/// An upstream body read whole (`None` left over), or its first `prefix` bytes and the body to
/// send on in its place.
async fn read_stream<U: Upstream>(
    upstream: &U,
    body: U::Body,
    prefix: Option<usize>,
) -> Result<(Vec<u8>, Option<U::Body>), super::BodyError> {
    match prefix {
        None => {
            let limit = crate::http::MAX_BUFFERED_BODY;
            let bytes = upstream.read_body(body, limit).await;
            bytes.map(|b| (b, None))
        }
        Some(limit) => upstream.read_body_prefix(body, limit).await,
    }
}
