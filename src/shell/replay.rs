//! A body of which an inspection read only the first bytes (the WAF's `body_limit`) is sent on
//! whole without being held: those bytes, then the rest of the stream copied as it comes. The
//! copy is JavaScript so that a body nobody reads (a refused request, a failed fetch) leaves no
//! pending Rust future behind, only promises the isolate collects.

use wasm_bindgen::prelude::wasm_bindgen;
use worker::js_sys::Uint8Array;
use worker::wasm_bindgen::JsValue;
use worker::web_sys::ReadableStream;

#[wasm_bindgen(inline_js = r#"
export function replay(head, rest, length) {
  // FixedLengthStream keeps the message's Content-Length; without one the body goes chunked.
  const { readable, writable } =
    length === undefined ? new TransformStream() : new FixedLengthStream(length);
  const writer = writable.getWriter();
  const reader = rest.getReader();
  // Copied chunk by chunk, not piped: workerd cannot pipe one identity stream into another
  // (a body replayed twice, by two response phases that each read its first bytes).
  (async () => {
    await writer.write(head);
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      await writer.write(value);
    }
    await writer.close();
  })().catch((e) => {
    // The reader of `readable` sees the failure instead of waiting for the rest.
    writer.abort(e).catch(() => {});
    reader.cancel(e).catch(() => {});
  });
  return readable;
}
"#)]
extern "C" {
    #[wasm_bindgen(catch, js_name = replay)]
    fn replay_js(
        head: &Uint8Array,
        rest: &ReadableStream,
        length: Option<f64>,
    ) -> Result<ReadableStream, JsValue>;
}

/// `head` then what is left of `rest` (unlocked: its reader released), as one stream of
/// `length` bytes when that is known.
pub fn replay(
    head: &[u8],
    rest: &ReadableStream,
    length: Option<u64>,
) -> Result<ReadableStream, JsValue> {
    // Copied into JavaScript: a view of wasm memory would not survive the asynchronous write.
    replay_js(&Uint8Array::from(head), rest, length.map(|n| n as f64))
}
