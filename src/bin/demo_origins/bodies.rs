//! Body endpoints for the body actions' end-to-end tests, on every replica:
//!
//! * `/__body/echo`: answers `text/plain` with exactly the request body it received;
//! * `/__body/gzip`: answers `Content-Encoding: gzip` with the gzip of the request body (or of
//!   a fixed text when there is none), as an origin that compresses its own responses.
//!
//! The gzip is made here with stored (uncompressed) deflate blocks: a valid gzip member any
//! decoder reads, with no compression library in the demo origins.

pub const ECHO_PATH: &str = "/__body/echo";
pub const GZIP_PATH: &str = "/__body/gzip";
/// What `/__body/gzip` encodes when the request has no body.
pub const GZIP_DEFAULT_TEXT: &str = "compressed by the origin itself\n";

/// The answer for a body path: (content type, content encoding, body).
pub fn answer(
    path: &str,
    request_body: &[u8],
) -> Option<(&'static str, Option<&'static str>, Vec<u8>)> {
    match path {
        ECHO_PATH => Some(("text/plain", None, request_body.to_vec())),
        GZIP_PATH => {
            let text = if request_body.is_empty() {
                GZIP_DEFAULT_TEXT.as_bytes()
            } else {
                request_body
            };
            Some(("text/plain", Some("gzip"), gzip_stored(text)))
        }
        _ => None,
    }
}

/// RFC 1952 gzip of `data` with RFC 1951 stored blocks.
pub fn gzip_stored(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    let mut chunks = data.chunks(0xffff).peekable();
    if chunks.peek().is_none() {
        out.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
    }
    while let Some(chunk) = chunks.next() {
        let last = chunks.peek().is_none();
        let len = chunk.len() as u16;
        out.push(u8::from(last));
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(chunk);
    }
    out.extend_from_slice(&crc32(data).to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A 200 response carrying `body` as bytes (the JSON responses of the echo are text).
pub fn response(
    label: &str,
    (content_type, encoding, body): (&str, Option<&str>, Vec<u8>),
    send_body: bool,
    keep_alive: bool,
) -> Vec<u8> {
    let encoding = encoding
        .map(|e| format!("Content-Encoding: {e}\r\n"))
        .unwrap_or_default();
    let connection = if keep_alive { "keep-alive" } else { "close" };
    let mut out = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\n{encoding}Content-Length: {}\r\n\
         X-Demo-Origin: {label}\r\nConnection: {connection}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if send_body {
        out.extend_from_slice(&body);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_check_value() {
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
    }

    #[test]
    fn gzip_member_shape() {
        let g = gzip_stored(b"abc");
        assert_eq!(&g[..3], &[0x1f, 0x8b, 8]);
        assert_eq!(&g[10..15], &[1, 3, 0, 0xfc, 0xff]);
        assert_eq!(&g[15..18], b"abc");
        assert_eq!(g.len(), 10 + 5 + 3 + 8);
    }
}
