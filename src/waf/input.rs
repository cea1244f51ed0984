//! What the WAF inspects: a typed view of a request or response, and its split into CRS's
//! targets (ARGS, ARGS_NAMES, REQUEST_COOKIES, ...), with the body processors (urlencoded, JSON,
//! multipart). Bad bodies never panic: they set `body_error`, which rule 920999 reports.

use super::transform::url_decode;
use crate::http::{RequestHead, ResponseHead};
use std::borrow::Cow;

/// A request as the WAF sees it. The action builds it from the core's [`RequestHead`] and the
/// first `body_limit` bytes of the body.
#[derive(Clone, Debug)]
pub struct RequestView<'a> {
    pub method: &'a str,
    /// As received, percent-encoded, starting with `/`.
    pub path: &'a str,
    /// Raw query string without `?`.
    pub query: &'a str,
    /// `HTTP/1.1`, `HTTP/2`, ...
    pub protocol: &'a str,
    pub host: &'a str,
    pub headers: Vec<(&'a str, &'a str)>,
    pub body: &'a [u8],
    /// The body was longer than `body` (it was cut at the inspection limit).
    pub body_truncated: bool,
}

impl<'a> RequestView<'a> {
    pub fn new(method: &'a str, path: &'a str, query: &'a str) -> Self {
        RequestView {
            method,
            path,
            query,
            protocol: "HTTP/1.1",
            host: "example.com",
            headers: Vec::new(),
            body: b"",
            body_truncated: false,
        }
    }

    /// The view of a gateway request; `body` is what was read (at most the limit), `truncated`
    /// whether more remained.
    pub fn from_head(head: &'a RequestHead, body: &'a [u8], truncated: bool) -> Self {
        RequestView {
            method: &head.method,
            path: &head.path,
            query: &head.query,
            protocol: "HTTP/1.1",
            host: &head.host,
            headers: head.headers.iter().collect(),
            body,
            body_truncated: truncated,
        }
    }

    pub fn header(mut self, name: &'a str, value: &'a str) -> Self {
        self.headers.push((name, value));
        self
    }

    pub fn with_body(mut self, body: &'a [u8]) -> Self {
        self.body = body;
        self
    }

    pub(crate) fn header_value(&self, name: &str) -> Option<&'a str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }
}

/// A response as the WAF sees it.
#[derive(Clone, Debug)]
pub struct ResponseView<'a> {
    pub status: u16,
    pub headers: Vec<(&'a str, &'a str)>,
    pub body: &'a [u8],
    pub body_truncated: bool,
}

impl<'a> ResponseView<'a> {
    pub fn new(status: u16) -> Self {
        ResponseView {
            status,
            headers: Vec::new(),
            body: b"",
            body_truncated: false,
        }
    }

    pub fn from_head(head: &'a ResponseHead, body: &'a [u8], truncated: bool) -> Self {
        ResponseView {
            status: head.status,
            headers: head.headers.iter().collect(),
            body,
            body_truncated: truncated,
        }
    }

    pub fn header(mut self, name: &'a str, value: &'a str) -> Self {
        self.headers.push((name, value));
        self
    }

    pub fn with_body(mut self, body: &'a [u8]) -> Self {
        self.body = body;
        self
    }
}

/// CRS's variables (collections), each a bit in a rule's target mask.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    Method,
    Protocol,
    RequestLine,
    /// REQUEST_URI: raw path and query.
    Uri,
    /// REQUEST_FILENAME: the URL-decoded path.
    Path,
    /// REQUEST_BASENAME: the last segment of the decoded path.
    Basename,
    QueryString,
    /// Query and body arguments (values).
    Args,
    ArgsNames,
    /// REQUEST_BODY: the raw body (up to the limit).
    Body,
    HeaderNames,
    /// All request header values but Cookie.
    Headers,
    UserAgent,
    Referer,
    Cookies,
    CookieNames,
    FilesNames,
    ResStatus,
    ResHeaders,
    ResBody,
}

impl Target {
    /// How many targets there are (an index space for per-target tables).
    pub(crate) const COUNT: usize = Target::ResBody as usize + 1;

    pub(crate) fn bit(self) -> u32 {
        1 << (self as u32)
    }

    /// The name CRS prints in a match's data.
    pub(crate) fn crs_name(self) -> &'static str {
        match self {
            Target::Method => "REQUEST_METHOD",
            Target::Protocol => "REQUEST_PROTOCOL",
            Target::RequestLine => "REQUEST_LINE",
            Target::Uri => "REQUEST_URI",
            Target::Path => "REQUEST_FILENAME",
            Target::Basename => "REQUEST_BASENAME",
            Target::QueryString => "QUERY_STRING",
            Target::Args => "ARGS",
            Target::ArgsNames => "ARGS_NAMES",
            Target::Body => "REQUEST_BODY",
            Target::HeaderNames => "REQUEST_HEADERS_NAMES",
            Target::Headers => "REQUEST_HEADERS",
            Target::UserAgent => "REQUEST_HEADERS",
            Target::Referer => "REQUEST_HEADERS",
            Target::Cookies => "REQUEST_COOKIES",
            Target::CookieNames => "REQUEST_COOKIES_NAMES",
            Target::FilesNames => "FILES_NAMES",
            Target::ResStatus => "RESPONSE_STATUS",
            Target::ResHeaders => "RESPONSE_HEADERS",
            Target::ResBody => "RESPONSE_BODY",
        }
    }
}

/// One value of one target.
#[derive(Clone, Debug)]
pub(crate) struct Field<'a> {
    pub kind: Target,
    pub name: Cow<'a, str>,
    pub value: Cow<'a, [u8]>,
}

/// The request split into targets, plus what the body processors found.
pub(crate) struct Extracted<'a> {
    pub fields: Vec<Field<'a>>,
    /// Why the body could not be parsed (REQBODY_ERROR), when it could not.
    pub body_error: Option<String>,
    /// The body's media type, lowercased, without parameters.
    pub content_type: Option<String>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum BodyKind {
    UrlEncoded,
    Json,
    Multipart,
    Other,
}

fn body_kind(mime: &str) -> BodyKind {
    match mime {
        "application/x-www-form-urlencoded" => BodyKind::UrlEncoded,
        "multipart/form-data" => BodyKind::Multipart,
        m if m == "application/json" || m.ends_with("+json") => BodyKind::Json,
        _ => BodyKind::Other,
    }
}

fn push<'a>(
    fields: &mut Vec<Field<'a>>,
    kind: Target,
    name: impl Into<Cow<'a, str>>,
    value: impl Into<Cow<'a, [u8]>>,
) {
    fields.push(Field {
        kind,
        name: name.into(),
        value: value.into(),
    });
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Splits `a=1&b=2` into decoded (name, value) arguments.
fn parse_urlencoded(raw: &[u8], fields: &mut Vec<Field<'_>>) {
    for pair in raw.split(|b| *b == b'&') {
        if pair.is_empty() {
            continue;
        }
        let (n, v) = match pair.iter().position(|b| *b == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &b""[..]),
        };
        let name = lossy(&url_decode(n, true));
        let value = url_decode(v, true);
        push(
            fields,
            Target::ArgsNames,
            name.clone(),
            name.clone().into_bytes(),
        );
        push(fields, Target::Args, name, value);
    }
}

pub(crate) fn extract_request<'a>(
    req: &RequestView<'a>,
    process_body: bool,
    body_limit: usize,
) -> Extracted<'a> {
    let mut fields = Vec::with_capacity(32);
    push(&mut fields, Target::Method, "", req.method.as_bytes());
    push(&mut fields, Target::Protocol, "", req.protocol.as_bytes());
    let uri: Cow<'a, str> = if req.query.is_empty() {
        Cow::Borrowed(req.path)
    } else {
        Cow::Owned(format!("{}?{}", req.path, req.query))
    };
    push(
        &mut fields,
        Target::RequestLine,
        "",
        format!("{} {} {}", req.method, uri, req.protocol).into_bytes(),
    );
    push(&mut fields, Target::Uri, "", uri.as_bytes().to_vec());
    let path = url_decode(req.path.as_bytes(), false);
    let base = path
        .rsplit(|b| *b == b'/' || *b == b'\\')
        .next()
        .unwrap_or_default()
        .to_vec();
    push(&mut fields, Target::Path, "", path);
    push(&mut fields, Target::Basename, "", base);
    if !req.query.is_empty() {
        push(&mut fields, Target::QueryString, "", req.query.as_bytes());
        parse_urlencoded(req.query.as_bytes(), &mut fields);
    }
    for &(name, value) in &req.headers {
        push(&mut fields, Target::HeaderNames, name, name.as_bytes());
        if name.eq_ignore_ascii_case("cookie") {
            for c in value.split(';') {
                let c = c.trim();
                if c.is_empty() {
                    continue;
                }
                let (n, v) = c.split_once('=').unwrap_or((c, ""));
                push(&mut fields, Target::CookieNames, n, n.as_bytes());
                push(&mut fields, Target::Cookies, n, v.as_bytes());
            }
            continue;
        }
        push(&mut fields, Target::Headers, name, value.as_bytes());
        if name.eq_ignore_ascii_case("user-agent") {
            push(&mut fields, Target::UserAgent, name, value.as_bytes());
        } else if name.eq_ignore_ascii_case("referer") {
            push(&mut fields, Target::Referer, name, value.as_bytes());
        }
    }
    let content_type = req.header_value("content-type").map(|ct| {
        ct.split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase()
    });
    let mut body_error = None;
    if process_body && !req.body.is_empty() {
        let truncated = req.body_truncated || req.body.len() > body_limit;
        let body = &req.body[..req.body.len().min(body_limit)];
        push(&mut fields, Target::Body, "", body);
        match content_type
            .as_deref()
            .map(body_kind)
            .unwrap_or(BodyKind::Other)
        {
            BodyKind::UrlEncoded => parse_urlencoded(body, &mut fields),
            BodyKind::Json => {
                if let Err(e) = json_args(body, truncated, &mut fields) {
                    body_error = Some(e);
                }
            }
            BodyKind::Multipart => {
                let ct = req.header_value("content-type").unwrap_or_default();
                if let Err(e) = multipart_args(ct, body, truncated, &mut fields) {
                    body_error = Some(e);
                }
            }
            BodyKind::Other => {}
        }
    }
    dedupe(&mut fields);
    Extracted {
        fields,
        body_error,
        content_type,
    }
}

/// Drops a field whose target and value repeat an earlier one (JSON arrays repeat their keys,
/// forms their values): every rule would decide the same on it, and report the first.
fn dedupe(fields: &mut Vec<Field<'_>>) {
    // Sorting compares the values themselves: no hash for an attacker to collide, and no
    // hashing of every value.
    let mut order: Vec<u32> = (0..fields.len() as u32).collect();
    let key = |i: &u32| {
        let f = &fields[*i as usize];
        (f.kind as u8, &*f.value)
    };
    order.sort_unstable_by(|a, b| key(a).cmp(&key(b)).then(a.cmp(b)));
    let mut keep = vec![true; fields.len()];
    for w in order.windows(2) {
        if key(&w[0]) == key(&w[1]) {
            keep[w[1] as usize] = false;
        }
    }
    let mut keep = keep.into_iter();
    fields.retain(|_| keep.next().unwrap_or(true));
}

/// Whether a response body of this `Content-Type` is inspected: CRS inspects textual bodies only
/// (`tx.response_body_mime_types`); none given counts as textual. The response action reads the
/// body only when this says yes.
pub fn textual_response(content_type: Option<&str>) -> bool {
    content_type.map(mime).as_deref().is_none_or(|m| {
        m.starts_with("text/")
            || m.ends_with("json")
            || m.ends_with("xml")
            || m == "application/javascript"
    })
}

pub(crate) fn extract_response<'a>(
    res: &ResponseView<'a>,
    process_body: bool,
    body_limit: usize,
) -> Extracted<'a> {
    let mut fields = Vec::with_capacity(16);
    push(
        &mut fields,
        Target::ResStatus,
        "",
        res.status.to_string().into_bytes(),
    );
    for &(name, value) in &res.headers {
        push(&mut fields, Target::ResHeaders, name, value.as_bytes());
    }
    let content_type = res
        .headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-type"))
        .map(|(_, v)| *v);
    if process_body && textual_response(content_type) && !res.body.is_empty() {
        push(
            &mut fields,
            Target::ResBody,
            "",
            &res.body[..res.body.len().min(body_limit)],
        );
    }
    Extracted {
        fields,
        body_error: None,
        content_type: content_type.map(mime),
    }
}

/// The media type of a `Content-Type` value, lowercase, without parameters.
fn mime(value: &str) -> String {
    value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// Walks JSON text and emits every string/number/literal value as an ARGS field named by its key
/// path (`json.user.name`, as Coraza names them) and every key as ARGS_NAMES. A body cut at the
/// limit is walked as far as it goes; a complete body that is not JSON is an error. Strings
/// without escapes are borrowed from the body; the key path is one buffer, cut back when a
/// container closes.
fn json_args<'a>(
    body: &'a [u8],
    truncated: bool,
    fields: &mut Vec<Field<'a>>,
) -> Result<(), String> {
    if !truncated {
        if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(body) {
            return Err(format!("JSON parsing error: {e}"));
        }
    }
    let mut path = String::from("json");
    // Per open container: the path's length outside it, and whether it is an object.
    let mut open: Vec<(usize, bool)> = Vec::new();
    let mut pending_key: Option<Cow<'a, [u8]>> = None;
    let mut i = 0;
    let n = body.len();
    while i < n {
        let b = body[i];
        match b {
            b'{' | b'[' => {
                open.push((path.len(), b == b'{'));
                if let Some(k) = pending_key.take() {
                    path.push('.');
                    path.push_str(&String::from_utf8_lossy(&k));
                }
                i += 1;
            }
            b'}' | b']' => {
                if let Some((len, _)) = open.pop() {
                    path.truncate(len);
                }
                pending_key = None;
                i += 1;
            }
            b'"' => {
                let (s, next) = json_string(body, i + 1);
                i = next;
                // A string followed by ':' is a key.
                let mut j = i;
                while j < n && body[j].is_ascii_whitespace() {
                    j += 1;
                }
                if open.last().is_some_and(|o| o.1) && j < n && body[j] == b':' {
                    fields.push(Field {
                        kind: Target::ArgsNames,
                        name: Cow::Owned(leaf_name(&path, Some(&s))),
                        value: s.clone(),
                    });
                    pending_key = Some(s);
                    i = j + 1;
                } else {
                    let name = leaf_name(&path, pending_key.take().as_deref());
                    push(fields, Target::Args, name, s);
                }
            }
            b if b == b'-' || b.is_ascii_alphanumeric() => {
                let start = i;
                while i < n
                    && (body[i].is_ascii_alphanumeric() || matches!(body[i], b'-' | b'+' | b'.'))
                {
                    i += 1;
                }
                let name = leaf_name(&path, pending_key.take().as_deref());
                push(fields, Target::Args, name, &body[start..i]);
            }
            _ => i += 1,
        }
    }
    Ok(())
}

fn leaf_name(path: &str, key: Option<&[u8]>) -> String {
    let Some(k) = key else {
        return path.to_string();
    };
    let k = String::from_utf8_lossy(k);
    let mut name = String::with_capacity(path.len() + 1 + k.len());
    name.push_str(path);
    name.push('.');
    name.push_str(&k);
    name
}

/// Decodes a JSON string starting after its opening quote; returns it and the index after the
/// closing quote (or the end, when cut). Borrowed when it has no escapes.
fn json_string(body: &[u8], start: usize) -> (Cow<'_, [u8]>, usize) {
    let mut i = start;
    while i < body.len() {
        match body[i] {
            b'"' => return (Cow::Borrowed(&body[start..i]), i + 1),
            b'\\' => break,
            _ => i += 1,
        }
    }
    if i >= body.len() {
        return (Cow::Borrowed(&body[start..]), body.len());
    }
    let mut out = body[start..i].to_vec();
    while i < body.len() {
        match body[i] {
            b'"' => return (Cow::Owned(out), i + 1),
            b'\\' if i + 1 < body.len() => {
                let e = body[i + 1];
                i += 2;
                match e {
                    b'n' => out.push(b'\n'),
                    b'r' => out.push(b'\r'),
                    b't' => out.push(b'\t'),
                    b'b' => out.push(8),
                    b'f' => out.push(12),
                    b'u' => {
                        let cp = body
                            .get(i..i + 4)
                            .and_then(|h| std::str::from_utf8(h).ok())
                            .and_then(|h| u32::from_str_radix(h, 16).ok());
                        match cp.and_then(char::from_u32) {
                            Some(c) => {
                                let mut buf = [0u8; 4];
                                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                                i += 4;
                            }
                            None => out.push(b'?'),
                        }
                    }
                    other => out.push(other),
                }
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    (Cow::Owned(out), i)
}

/// Parses `multipart/form-data`: form fields become ARGS, file names FILES_NAMES (file contents
/// are not inspected, as in CRS). A complete body without its closing boundary is an error.
fn multipart_args(
    content_type: &str,
    body: &[u8],
    truncated: bool,
    fields: &mut Vec<Field<'_>>,
) -> Result<(), String> {
    let boundary = content_type
        .split(';')
        .skip(1)
        .filter_map(|p| p.trim().split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("boundary"))
        .map(|(_, v)| v.trim().trim_matches('"').to_string())
        .filter(|b| !b.is_empty() && b.len() <= 200)
        .ok_or_else(|| "multipart: no boundary".to_string())?;
    let delim = format!("--{boundary}").into_bytes();
    let mut parts = split_on(body, &delim);
    // Before the first delimiter is the preamble.
    if parts.len() < 2 {
        return Err("multipart: boundary not found".to_string());
    }
    parts.remove(0);
    let mut closed = false;
    for part in parts {
        if part.starts_with(b"--") {
            closed = true;
            break;
        }
        let part = part
            .strip_prefix(b"\r\n")
            .or_else(|| part.strip_prefix(b"\n"))
            .unwrap_or(part);
        let (head, content) = match find(part, b"\r\n\r\n") {
            Some(i) => (&part[..i], &part[i + 4..]),
            None => match find(part, b"\n\n") {
                Some(i) => (&part[..i], &part[i + 2..]),
                None if truncated => (part, &b""[..]),
                None => return Err("multipart: part without headers".to_string()),
            },
        };
        let content = content
            .strip_suffix(b"\r\n")
            .or_else(|| content.strip_suffix(b"\n"))
            .unwrap_or(content);
        let head = String::from_utf8_lossy(head);
        let disposition = head
            .lines()
            .find(|l| l.to_ascii_lowercase().starts_with("content-disposition:"))
            .unwrap_or_default();
        let name = disposition_param(disposition, "name");
        let filename = disposition_param(disposition, "filename");
        let Some(name) = name else {
            if truncated {
                continue;
            }
            return Err("multipart: part without a name".to_string());
        };
        push(
            fields,
            Target::ArgsNames,
            name.clone(),
            name.clone().into_bytes(),
        );
        match filename {
            Some(f) => push(fields, Target::FilesNames, name, f.into_bytes()),
            None => push(fields, Target::Args, name, content.to_vec()),
        }
    }
    if !closed && !truncated {
        return Err("multipart: no closing boundary".to_string());
    }
    Ok(())
}

fn disposition_param(line: &str, key: &str) -> Option<String> {
    line.split(';').skip(1).find_map(|p| {
        let (k, v) = p.trim().split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case(key)
            .then(|| v.trim().trim_matches('"').to_string())
    })
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn split_on<'b>(hay: &'b [u8], delim: &[u8]) -> Vec<&'b [u8]> {
    let mut out = Vec::new();
    let mut rest = hay;
    while let Some(i) = find(rest, delim) {
        out.push(&rest[..i]);
        rest = &rest[i + delim.len()..];
    }
    out.push(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(f: &[Field<'_>]) -> Vec<(String, String)> {
        f.iter()
            .filter(|f| f.kind == Target::Args)
            .map(|f| (f.name.to_string(), lossy(&f.value)))
            .collect()
    }

    #[test]
    fn json_paths_and_truncation() {
        let mut f = Vec::new();
        json_args(br#"{"a":{"b":"x\"y","c":[1,"z"]},"d":true}"#, false, &mut f).unwrap();
        assert_eq!(
            args(&f),
            vec![
                ("json.a.b".into(), "x\"y".into()),
                ("json.a.c".into(), "1".into()),
                ("json.a.c".into(), "z".into()),
                ("json.d".into(), "true".into())
            ]
        );
        let mut f = Vec::new();
        assert!(json_args(br#"{"a": "#, false, &mut f).is_err());
        let mut f = Vec::new();
        json_args(br#"{"a":"one","b":"tw"#, true, &mut f).unwrap();
        assert_eq!(args(&f).len(), 2);
        // Deep nesting is an error, not a stack overflow.
        let deep = "[".repeat(100_000);
        assert!(json_args(deep.as_bytes(), false, &mut Vec::new()).is_err());
    }

    #[test]
    fn multipart_fields_and_errors() {
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"t\"\r\n\r\nhello\r\n--XyZ\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a.php\"\r\nContent-Type: text/plain\r\n\r\n<?php\r\n--XyZ--\r\n";
        let mut f = Vec::new();
        multipart_args("multipart/form-data; boundary=XyZ", body, false, &mut f).unwrap();
        assert_eq!(args(&f), vec![("t".into(), "hello".into())]);
        assert!(f
            .iter()
            .any(|x| x.kind == Target::FilesNames && &*x.value == b"a.php"));
        assert!(multipart_args("multipart/form-data", body, false, &mut Vec::new()).is_err());
        assert!(multipart_args(
            "multipart/form-data; boundary=XyZ",
            &body[..60],
            false,
            &mut Vec::new()
        )
        .is_err());
        assert!(multipart_args(
            "multipart/form-data; boundary=XyZ",
            &body[..60],
            true,
            &mut Vec::new()
        )
        .is_ok());
    }
}
