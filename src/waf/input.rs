//! What the WAF inspects: a typed view of a request or response, and its split into SecLang's
//! collections (ARGS, ARGS_NAMES, REQUEST_COOKIES, ...), with the body processors (urlencoded,
//! JSON, multipart, XML). Bad bodies never panic: they set REQBODY_ERROR, which the engine
//! setup's rule 200002 reads (`seclang/engine-setup.conf`).

use super::program::{BodyProcessor, Collection};
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
    /// REMOTE_ADDR: the client address (`CF-Connecting-IP` in the Worker).
    pub remote_addr: String,
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
            remote_addr: String::new(),
        }
    }

    /// The view of a gateway request; `body` is what was read (at most the limit), `truncated`
    /// whether more remained.
    pub fn from_head(head: &'a RequestHead, body: &'a [u8], truncated: bool) -> Self {
        let headers: Vec<(&'a str, &'a str)> = head.headers.iter().collect();
        RequestView {
            method: &head.method,
            path: &head.path,
            query: &head.query,
            // What the client spoke to the edge (`request.cf.httpProtocol`): CRS's checks of
            // Content-Length and Connection differ between HTTP/1 and HTTP/2.
            protocol: match head.conn.http_version.as_deref() {
                Some("HTTP/2") | Some("HTTP/2.0") => "HTTP/2.0",
                Some("HTTP/3") | Some("HTTP/3.0") => "HTTP/3.0",
                Some("HTTP/1.0") => "HTTP/1.0",
                _ => "HTTP/1.1",
            },
            host: &head.host,
            headers,
            body,
            body_truncated: truncated,
            remote_addr: head.client_ip.to_string(),
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

/// One member of a collection: its name (empty for a scalar) and value.
#[derive(Clone, Debug)]
pub(crate) struct Member<'a> {
    pub name: Cow<'a, str>,
    pub value: Cow<'a, [u8]>,
    /// The value's byte classes ([`super::transform::classes`]).
    pub classes: u16,
}

/// A transaction's collections, indexed by [`Collection`]; TX and the MATCHED_* variables live
/// in the evaluator.
#[derive(Debug)]
pub(crate) struct Vars<'a> {
    lists: Vec<Vec<Member<'a>>>,
    /// The collections whose members [`Vars::set`] replaced since [`Vars::take_replaced`]: a
    /// member's index then names another value (pushing keeps every index's value).
    replaced: u64,
}

const COLLECTIONS: usize = Collection::Rule as usize + 1;

impl<'a> Vars<'a> {
    pub(crate) fn new() -> Self {
        Vars {
            lists: (0..COLLECTIONS).map(|_| Vec::new()).collect(),
            replaced: 0,
        }
    }

    pub(crate) fn push(
        &mut self,
        c: Collection,
        name: impl Into<Cow<'a, str>>,
        value: impl Into<Cow<'a, [u8]>>,
    ) {
        if let Some(list) = self.lists.get_mut(c as usize) {
            let value = value.into();
            list.push(Member {
                name: name.into(),
                classes: super::transform::classes(&value),
                value,
            });
        }
    }

    pub(crate) fn get(&self, c: Collection) -> &[Member<'a>] {
        self.lists.get(c as usize).map_or(&[], Vec::as_slice)
    }

    /// Member `i` of `c`: its value and the value's byte classes (empty when there is none).
    pub(crate) fn value(&self, c: Collection, i: usize) -> (&[u8], u16) {
        self.get(c)
            .get(i)
            .map_or((&[][..], 0), |m| (&m.value, m.classes))
    }

    pub(crate) fn set(&mut self, c: Collection, value: impl Into<Cow<'a, [u8]>>) {
        if let Some(list) = self.lists.get_mut(c as usize) {
            list.clear();
        }
        self.replaced |= 1 << (c as u32 % 64);
        self.push(c, "", value);
    }

    /// The collections replaced since the last call, as a bitset over [`Collection`].
    pub(crate) fn take_replaced(&mut self) -> u64 {
        std::mem::take(&mut self.replaced)
    }
}

/// Arguments in order: (name, value).
type Args<'a> = Vec<(Cow<'a, str>, Cow<'a, [u8]>)>;

/// What the multipart processor found.
#[derive(Debug, Default)]
struct Multipart {
    args: Vec<(String, Vec<u8>)>,
    /// (field name, file name, size)
    files: Vec<(String, Vec<u8>, usize)>,
    /// (part name, one header line)
    part_headers: Vec<(String, Vec<u8>)>,
}

/// The body processor ModSecurity's recommended configuration picks for a media type (rules
/// 200000/200001 of modsecurity.conf-recommended name XML and JSON; the others are built in).
pub(crate) fn default_processor(mime: &str) -> Option<BodyProcessor> {
    match mime {
        "application/x-www-form-urlencoded" => Some(BodyProcessor::UrlEncoded),
        "multipart/form-data" => Some(BodyProcessor::Multipart),
        m if m == "application/json" || m.ends_with("+json") => Some(BodyProcessor::Json),
        m if m == "text/xml" || m == "application/xml" || m.ends_with("+xml") => {
            Some(BodyProcessor::Xml)
        }
        _ => None,
    }
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Splits `a=1&b=2` into decoded (name, value) arguments.
fn parse_urlencoded<'a>(raw: &'a [u8], out: &mut Args<'a>) {
    for pair in raw.split(|b| *b == b'&') {
        if pair.is_empty() {
            continue;
        }
        let (n, v) = match pair.iter().position(|b| *b == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &b""[..]),
        };
        out.push((
            lossy(&url_decode(n, true)).into(),
            url_decode(v, true).into(),
        ));
    }
}

/// Adds arguments to ARGS_<origin>, ARGS and their _NAMES.
fn add_args<'a>(vars: &mut Vars<'a>, args: Args<'a>, get: bool) {
    let (values, names) = if get {
        (Collection::ArgsGet, Collection::ArgsGetNames)
    } else {
        (Collection::ArgsPost, Collection::ArgsPostNames)
    };
    for (name, value) in args {
        vars.push(names, name.clone(), name.as_bytes().to_vec());
        vars.push(
            Collection::ArgsNames,
            name.clone(),
            name.as_bytes().to_vec(),
        );
        vars.push(values, name.clone(), value.clone());
        vars.push(Collection::Args, name, value);
    }
}

/// The request's phase-1 collections (line, headers, cookies, query arguments).
pub(crate) fn extract_request_head<'a>(req: &RequestView<'a>, vars: &mut Vars<'a>) {
    vars.push(Collection::RequestMethod, "", req.method.as_bytes());
    vars.push(Collection::RequestProtocol, "", req.protocol.as_bytes());
    let uri: Cow<'a, str> = if req.query.is_empty() {
        Cow::Borrowed(req.path)
    } else {
        Cow::Owned(format!("{}?{}", req.path, req.query))
    };
    vars.push(
        Collection::RequestLine,
        "",
        format!("{} {} {}", req.method, uri, req.protocol).into_bytes(),
    );
    vars.push(Collection::RequestUri, "", uri.as_bytes().to_vec());
    vars.push(Collection::RequestUriRaw, "", uri.as_bytes().to_vec());
    // REQUEST_FILENAME is the path percent-decoded once (as Coraza's URL parser and
    // ModSecurity give it); REQUEST_BASENAME its last segment.
    let path = url_decode(req.path.as_bytes(), false);
    let base = path
        .rsplit(|b| *b == b'/' || *b == b'\\')
        .next()
        .unwrap_or_default()
        .to_vec();
    vars.push(Collection::RequestFilename, "", path);
    vars.push(Collection::RequestBasename, "", base);
    vars.push(Collection::QueryString, "", req.query.as_bytes());
    vars.push(
        Collection::RemoteAddr,
        "",
        req.remote_addr.as_bytes().to_vec(),
    );
    let mut args = Vec::new();
    parse_urlencoded(req.query.as_bytes(), &mut args);
    add_args(vars, args, true);
    // HTTP/1.1 requires Host and CRS checks it (920280); the platform hands the request over
    // with the host in its URL, not always as a header.
    if !req.host.is_empty() && req.header_value("host").is_none() {
        vars.push(Collection::RequestHeadersNames, "Host", &b"Host"[..]);
        vars.push(Collection::RequestHeaders, "Host", req.host.as_bytes());
    }
    for &(name, value) in &req.headers {
        vars.push(Collection::RequestHeadersNames, name, name.as_bytes());
        vars.push(Collection::RequestHeaders, name, value.as_bytes());
        if name.eq_ignore_ascii_case("cookie") {
            for c in value.split(';') {
                let c = c.trim();
                if c.is_empty() {
                    continue;
                }
                let (n, v) = c.split_once('=').unwrap_or((c, ""));
                vars.push(Collection::RequestCookiesNames, n, n.as_bytes());
                vars.push(Collection::RequestCookies, n, v.as_bytes());
            }
        }
    }
}

/// The request body's collections (phase 2), parsed by `processor`.
/// REQUEST_BODY holds the raw body only for the URLENCODED processor or when a rule forced it
/// (`ctl:forceRequestBodyVariable`, which CRS's 901340 sets when no processor runs), as in
/// ModSecurity: a JSON or XML body is inspected through ARGS and XML, not as one string.
pub(crate) fn extract_request_body<'a>(
    req: &RequestView<'a>,
    processor: Option<BodyProcessor>,
    force_body: bool,
    body_limit: usize,
    vars: &mut Vars<'a>,
) {
    let truncated = req.body_truncated || req.body.len() > body_limit;
    let body = &req.body[..req.body.len().min(body_limit)];
    if force_body || processor == Some(BodyProcessor::UrlEncoded) {
        vars.set(Collection::RequestBody, body);
    }
    vars.set(
        Collection::RequestBodyLength,
        req.body.len().to_string().into_bytes(),
    );
    let mut error: Option<String> = None;
    match processor {
        Some(BodyProcessor::UrlEncoded) => {
            vars.set(Collection::ReqbodyProcessor, &b"URLENCODED"[..]);
            let mut args = Vec::new();
            parse_urlencoded(body, &mut args);
            add_args(vars, args, false);
        }
        Some(BodyProcessor::Json) => {
            vars.set(Collection::ReqbodyProcessor, &b"JSON"[..]);
            let mut args = Vec::new();
            if let Err(e) = json_args(body, truncated, &mut args) {
                error = Some(e);
            }
            add_args(vars, args, false);
        }
        Some(BodyProcessor::Multipart) => {
            vars.set(Collection::ReqbodyProcessor, &b"MULTIPART"[..]);
            let ct = req.header_value("content-type").unwrap_or_default();
            let mut mp = Multipart::default();
            let result = multipart_args(ct, body, truncated, &mut mp);
            vars.set(
                Collection::MultipartStrictError,
                if result.is_err() {
                    &b"1"[..]
                } else {
                    &b"0"[..]
                },
            );
            if let Err(e) = result {
                error = Some(e);
            }
            let mut combined = 0usize;
            for (name, file, size) in mp.files {
                combined = combined.saturating_add(size);
                vars.push(
                    Collection::FilesNames,
                    name.clone(),
                    name.clone().into_bytes(),
                );
                vars.push(
                    Collection::FilesSizes,
                    name.clone(),
                    size.to_string().into_bytes(),
                );
                vars.push(Collection::Files, name, file);
            }
            vars.set(
                Collection::FilesCombinedSize,
                combined.to_string().into_bytes(),
            );
            for (name, header) in mp.part_headers {
                vars.push(Collection::MultipartPartHeaders, name, header);
            }
            let args = mp
                .args
                .into_iter()
                .map(|(n, v)| (Cow::Owned(n), Cow::Owned(v)))
                .collect();
            add_args(vars, args, false);
        }
        Some(BodyProcessor::Xml) => {
            vars.set(Collection::ReqbodyProcessor, &b"XML"[..]);
            match xml_values(body, truncated) {
                Ok(values) => {
                    for v in values.text {
                        vars.push(Collection::Xml, "/*", v);
                    }
                    for v in values.attrs {
                        vars.push(Collection::Xml, "//@*", v);
                    }
                }
                Err(e) => error = Some(e),
            }
        }
        None => {}
    }
    vars.set(
        Collection::ReqbodyError,
        if error.is_some() {
            &b"1"[..]
        } else {
            &b"0"[..]
        },
    );
    if let Some(e) = error {
        vars.push(Collection::UrlencodedError, "", e.into_bytes());
    }
    let combined: usize = vars
        .get(Collection::Args)
        .iter()
        .map(|m| m.name.len() + m.value.len())
        .sum();
    vars.set(
        Collection::ArgsCombinedSize,
        combined.to_string().into_bytes(),
    );
}

/// The XML processor's two selections, entities decoded, each value its own: `XML:/*` every
/// text node, `XML://@*` every attribute value (CRS targets both: `<a probe="&#x7B;7*7&#x7D;">`
/// is inspected as `{7*7}`). The `<?xml ...?>` declaration's pseudo-attributes count as
/// attributes. An unbalanced document is an error.
fn xml_values(body: &[u8], truncated: bool) -> Result<XmlValues, String> {
    let mut out: Vec<Vec<u8>> = Vec::new();
    let mut attrs: Vec<Vec<u8>> = Vec::new();
    let mut text = Vec::new();
    let mut depth: i64 = 0;
    let mut i = 0;
    let flush = |text: &mut Vec<u8>, out: &mut Vec<Vec<u8>>| {
        if text.iter().any(|b| !b.is_ascii_whitespace()) {
            out.push(xml_unescape(text));
        }
        text.clear();
    };
    while i < body.len() {
        if body[i] != b'<' {
            text.push(body[i]);
            i += 1;
            continue;
        }
        flush(&mut text, &mut out);
        if body[i..].starts_with(b"<![CDATA[") {
            let start = i + 9;
            let end = find(&body[start..], b"]]>").map(|p| start + p);
            out.push(body[start..end.unwrap_or(body.len())].to_vec());
            i = end.map_or(body.len(), |e| e + 3);
            continue;
        }
        if body[i..].starts_with(b"<!--") {
            i = find(&body[i..], b"-->").map_or(body.len(), |p| i + p + 3);
            continue;
        }
        // The tag, up to a `>` outside quotes.
        let mut j = i + 1;
        let mut quote = None;
        let mut value = Vec::new();
        while j < body.len() {
            let c = body[j];
            match quote {
                Some(q) if c == q => {
                    attrs.push(xml_unescape(&value));
                    value.clear();
                    quote = None;
                }
                Some(_) => value.push(c),
                None if c == b'"' || c == b'\'' => quote = Some(c),
                None if c == b'>' => break,
                None => {}
            }
            j += 1;
        }
        if j >= body.len() {
            if truncated {
                break;
            }
            return Err("XML parser error: unterminated tag".into());
        }
        match body.get(i + 1) {
            Some(b'/') => depth -= 1,
            Some(b'?' | b'!') => {}
            _ if body[j - 1] == b'/' => {}
            _ => depth += 1,
        }
        if depth < 0 {
            return Err("XML parser error: unbalanced end tag".into());
        }
        i = j + 1;
    }
    flush(&mut text, &mut out);
    if depth != 0 && !truncated {
        return Err("XML parser error: unclosed element".into());
    }
    Ok(XmlValues { text: out, attrs })
}

/// What `XML:/*` (text nodes) and `XML://@*` (attribute values) select.
struct XmlValues {
    text: Vec<Vec<u8>>,
    attrs: Vec<Vec<u8>>,
}

/// XML's five named entities and character references.
fn xml_unescape(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'&' {
            if let Some(end) = s[i..].iter().take(12).position(|&c| c == b';') {
                let name = &s[i + 1..i + end];
                let ch: Option<u32> = match name {
                    b"lt" => Some(u32::from(b'<')),
                    b"gt" => Some(u32::from(b'>')),
                    b"amp" => Some(u32::from(b'&')),
                    b"quot" => Some(u32::from(b'"')),
                    b"apos" => Some(u32::from(b'\'')),
                    [b'#', b'x' | b'X', hex @ ..] => std::str::from_utf8(hex)
                        .ok()
                        .and_then(|h| u32::from_str_radix(h, 16).ok()),
                    [b'#', dec @ ..] => std::str::from_utf8(dec).ok().and_then(|d| d.parse().ok()),
                    _ => None,
                };
                if let Some(c) = ch.and_then(char::from_u32) {
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                    i += end + 1;
                    continue;
                }
            }
        }
        out.push(s[i]);
        i += 1;
    }
    out
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

/// Adds the response's collections (phases 3 and 4).
pub(crate) fn extract_response<'a>(
    res: &ResponseView<'a>,
    process_body: bool,
    body_limit: usize,
    vars: &mut Vars<'a>,
) {
    vars.push(
        Collection::ResponseStatus,
        "",
        res.status.to_string().into_bytes(),
    );
    vars.push(Collection::ResponseProtocol, "", &b"HTTP/1.1"[..]);
    for &(name, value) in &res.headers {
        vars.push(Collection::ResponseHeadersNames, name, name.as_bytes());
        vars.push(Collection::ResponseHeaders, name, value.as_bytes());
    }
    let content_type = res
        .headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-type"))
        .map(|(_, v)| *v);
    if let Some(ct) = content_type {
        vars.push(Collection::ResponseContentType, "", mime(ct).into_bytes());
    }
    if process_body && textual_response(content_type) && !res.body.is_empty() {
        vars.push(
            Collection::ResponseBody,
            "",
            &res.body[..res.body.len().min(body_limit)],
        );
    }
}

/// The media type of a `Content-Type` value, lowercase, without parameters.
pub(crate) fn mime(value: &str) -> String {
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
fn json_args<'a>(body: &'a [u8], truncated: bool, fields: &mut Args<'a>) -> Result<(), String> {
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
                    pending_key = Some(s);
                    i = j + 1;
                } else {
                    let name = leaf_name(&path, pending_key.take().as_deref());
                    fields.push((name.into(), s));
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
                fields.push((name.into(), Cow::Borrowed(&body[start..i])));
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
    out: &mut Multipart,
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
        let headers: Vec<String> = head.lines().map(str::to_string).collect();
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
        for h in headers {
            out.part_headers.push((name.clone(), h.into_bytes()));
        }
        match filename {
            Some(f) => out.files.push((name, f.into_bytes(), content.len())),
            None => out.args.push((name, content.to_vec())),
        }
    }
    if !closed && !truncated {
        return Err("multipart: no closing boundary".to_string());
    }
    Ok(())
}

/// A `Content-Disposition` parameter. Quoted values may hold `;` and `\"` (`name="fi;le"`), as
/// ModSecurity's multipart parser reads them: splitting on every `;` would hide the name CRS's
/// rule 920120 looks at.
fn disposition_param(line: &str, key: &str) -> Option<String> {
    let b = line.as_bytes();
    let mut i = b.iter().position(|&c| c == b';')? + 1;
    while i < b.len() {
        while b
            .get(i)
            .is_some_and(|c| *c == b' ' || *c == b'\t' || *c == b';')
        {
            i += 1;
        }
        let start = i;
        while b.get(i).is_some_and(|c| *c != b'=' && *c != b';') {
            i += 1;
        }
        let name = line.get(start..i)?.trim();
        let mut value = String::new();
        if b.get(i) == Some(&b'=') {
            i += 1;
            while b.get(i) == Some(&b' ') {
                i += 1;
            }
            if b.get(i) == Some(&b'"') {
                i += 1;
                let mut raw = Vec::new();
                while let Some(&c) = b.get(i) {
                    i += 1;
                    match c {
                        b'\\' if matches!(b.get(i), Some(b'"' | b'\\')) => {
                            raw.push(b[i]);
                            i += 1;
                        }
                        b'"' => break,
                        c => raw.push(c),
                    }
                }
                value = String::from_utf8_lossy(&raw).into_owned();
            } else {
                let vstart = i;
                while b.get(i).is_some_and(|c| *c != b';') {
                    i += 1;
                }
                value = line.get(vstart..i)?.trim().to_string();
            }
        }
        if name.eq_ignore_ascii_case(key) {
            return Some(value);
        }
    }
    None
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

    fn args(f: &Args<'_>) -> Vec<(String, String)> {
        f.iter().map(|(n, v)| (n.to_string(), lossy(v))).collect()
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
        let mut f = Vec::new();
        json_args(br#"["a"]"#, false, &mut f).unwrap();
        assert_eq!(args(&f), vec![("json".into(), "a".into())]);
    }

    #[test]
    fn xml_text_and_attributes() {
        let v = xml_values(
            br#"<?xml version="1.0"?><root><a probe="&#x7B;7*7&#x7D;">x &lt; y</a><b/><![CDATA[<c>]]></root>"#,
            false,
        )
        .unwrap();
        let text: Vec<String> = v.text.iter().map(|b| lossy(b)).collect();
        let attrs: Vec<String> = v.attrs.iter().map(|b| lossy(b)).collect();
        assert_eq!(text, vec!["x < y", "<c>"]);
        assert_eq!(attrs, vec!["1.0", "{7*7}"]);
        assert!(xml_values(b"<a><b></a>", false).is_err());
        assert!(xml_values(b"<a><b>", true).is_ok());
    }

    #[test]
    fn multipart_fields_and_errors() {
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"t\"\r\n\r\nhello\r\n--XyZ\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a.php\"\r\nContent-Type: text/plain\r\n\r\n<?php\r\n--XyZ--\r\n";
        let mut f = Multipart::default();
        multipart_args("multipart/form-data; boundary=XyZ", body, false, &mut f).unwrap();
        assert_eq!(f.args, vec![("t".to_string(), b"hello".to_vec())]);
        assert_eq!(f.files, vec![("f".to_string(), b"a.php".to_vec(), 5)]);
        assert!(f
            .part_headers
            .iter()
            .any(|(n, h)| n == "f" && h.starts_with(b"Content-Type")));
        let mp = |b: &[u8], t| {
            multipart_args(
                "multipart/form-data; boundary=XyZ",
                b,
                t,
                &mut Multipart::default(),
            )
        };
        assert!(multipart_args(
            "multipart/form-data",
            body,
            false,
            &mut Multipart::default()
        )
        .is_err());
        let line = r#"form-data; name="fi;le"; filename="a\"b.php""#;
        assert_eq!(disposition_param(line, "name").as_deref(), Some("fi;le"));
        assert_eq!(
            disposition_param(line, "filename").as_deref(),
            Some("a\"b.php")
        );
        assert!(mp(&body[..60], false).is_err());
        assert!(mp(&body[..60], true).is_ok());
    }
}
