//! Carries out compress-response's decision. workerd encodes a response itself when it carries
//! `Content-Encoding: gzip` or `br` (`encodeBody: "automatic"`, the default), streaming; it
//! leaves any other coding alone (checked under wrangler dev), so deflate goes through the
//! runtime's `CompressionStream("deflate")` (zlib format, RFC 9110's `deflate`) and is sent
//! with `encodeBody: "manual"`. No coding is compressed in wasm.

use crate::http::Coding;
use worker::js_sys::{self, Reflect};
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::web_sys::ReadableStream;
use worker::{EncodeBody, ResponseBody};

/// The body to send and how the runtime must treat it for `coding` (`None`: nothing chosen
/// here; an upstream's own coding is re-applied by the runtime as it always is).
pub fn encode(
    body: ResponseBody,
    coding: Option<Coding>,
) -> worker::Result<(ResponseBody, EncodeBody)> {
    match coding {
        None | Some(Coding::Gzip | Coding::Br) => Ok((body, EncodeBody::Automatic)),
        Some(Coding::Deflate) => {
            let stream = match body {
                ResponseBody::Empty => return Ok((ResponseBody::Empty, EncodeBody::Automatic)),
                ResponseBody::Stream(s) => s,
                ResponseBody::Body(mut bytes) => {
                    match worker::web_sys::Response::new_with_opt_u8_array(Some(&mut bytes))?.body()
                    {
                        Some(s) => s,
                        None => return Ok((ResponseBody::Empty, EncodeBody::Automatic)),
                    }
                }
            };
            Ok((
                ResponseBody::Stream(through(stream, "deflate")?),
                EncodeBody::Manual,
            ))
        }
        // The core never negotiates LZW.
        Some(Coding::Compress) => Err(worker::Error::RustError("no encoder for `compress`".into())),
    }
}

/// `stream.pipeThrough(new CompressionStream(format))`.
fn through(stream: ReadableStream, format: &str) -> worker::Result<ReadableStream> {
    let ctor: js_sys::Function =
        Reflect::get(&js_sys::global(), &JsValue::from_str("CompressionStream"))?.dyn_into()?;
    let compressor = Reflect::construct(&ctor, &js_sys::Array::of1(&JsValue::from_str(format)))?;
    let pipe: js_sys::Function =
        Reflect::get(&stream, &JsValue::from_str("pipeThrough"))?.dyn_into()?;
    Ok(pipe.call1(&stream, &compressor)?.unchecked_into())
}

/// The client's own `Accept-Encoding`. Cloudflare hands a Worker a normalised one (`br, gzip`,
/// whatever the client sent; wrangler dev does the same) and keeps the original in
/// `request.cf.clientAcceptEncoding` (empty when the client sent none). compress-response
/// negotiates on the client's; `None` when the platform gave no original.
pub fn client_accept_encoding(req: &worker::Request) -> Option<String> {
    let cf = Reflect::get(req.inner(), &JsValue::from_str("cf")).ok()?;
    if cf.is_undefined() || cf.is_null() {
        return None;
    }
    Reflect::get(&cf, &JsValue::from_str("clientAcceptEncoding"))
        .ok()?
        .as_string()
}
