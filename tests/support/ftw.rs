//! CRS's regression tests, in go-ftw's format (github.com/coreruleset/go-ftw, test schema
//! ftw-tests-schema v2): loading the files, and for each stage the request **as the web server
//! in front of ModSecurity receives it** and what go-ftw then checks.
//!
//! A stage goes through three steps, each modelled on what CRS's CI runs (go-ftw 1.3 against
//! Apache httpd + ModSecurity 2, backend albedo):
//! 1. [`wire`]: the bytes go-ftw sends (`ftwhttp.BuildRequest`): the request line with the `uri`
//!    as written (never re-encoded), the headers sorted by name (go-ftw builds them from a YAML
//!    map), and with `autocomplete_headers` (the default) a `Content-Type` for a body that has
//!    none, form data percent-encoded when it looks unencoded, `Connection: close` and
//!    `Content-Length` added; multipart bodies get CRLF line ends. `encoded_request` is sent
//!    as decoded. `data` is a Go template (`{{ "1" | repeat 10 }}`).
//! 2. [`receive`]: those bytes parsed as an HTTP/1 server does: what it would refuse (a request
//!    line it does not accept, a header line without a colon, a body shorter than its
//!    `Content-Length`) is a skip with the reason, since the WAF never sees it; the body is what
//!    `Content-Length` or chunked encoding delimits, nothing else.
//! 3. [`backend_response`]: the response albedo gives (`POST /reflect` answers the status,
//!    headers and body the request's JSON asks for; anything else an empty 200), which the
//!    response rules inspect.
//!
//! Every stage that cannot be run this way is a [`Stage::request`] `Err` with the reason.

use base64::Engine as _;
use edge_gateway::source::{parse_yaml_documents, Node, Value};
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

/// `<rule_id>-<test_id>-<stage>` (the stage counted from 1), go-ftw's test id plus the stage.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StageId {
    pub rule_id: u32,
    pub test_id: u32,
    pub stage: usize,
}

impl fmt::Display for StageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}-{}", self.rule_id, self.test_id, self.stage)
    }
}

/// A request as the server parsed it off the wire.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received {
    pub method: String,
    /// The request target exactly as sent.
    pub uri: String,
    pub version: String,
    /// In wire order, repeated names kept.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The path (before the first `?`) and the raw query (after it).
    pub fn path_and_query(&self) -> (&str, &str) {
        self.uri.split_once('?').unwrap_or((&self.uri, ""))
    }
}

/// The backend's answer (albedo).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackendResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// What go-ftw checks after a stage (`output`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Expect {
    /// `log.expect_ids`: each must have matched.
    pub expect_ids: Vec<u32>,
    /// `log.no_expect_ids`: none may have matched.
    pub no_expect_ids: Vec<u32>,
    /// `log.match_regex`: some log line must match.
    pub match_regex: Option<String>,
    /// `log.no_match_regex`: no log line may match.
    pub no_match_regex: Option<String>,
    /// `status`: the response status (one of them, in the older list form).
    pub status: Vec<u16>,
}

/// One stage's exchange: what go-ftw sends, what the server makes of it, what the backend says.
#[derive(Clone, Debug)]
pub struct Exchange {
    pub wire: Vec<u8>,
    pub request: Received,
    pub response: BackendResponse,
}

#[derive(Clone, Debug)]
pub struct Stage {
    /// The rule file's directory, e.g. `REQUEST-920-PROTOCOL-ENFORCEMENT`.
    pub rule_file: String,
    pub id: StageId,
    /// The exchange, or why the stage cannot run.
    pub exchange: Result<Exchange, String>,
    pub expect: Expect,
}

/// Loads every `<dir>/<RULE-FILE>/<id>.yaml`, sorted by path.
pub fn load_dir(dir: &Path) -> Result<Vec<Stage>, String> {
    let mut stages = Vec::new();
    for rule_dir in sorted_entries(dir)? {
        if !rule_dir.is_dir() {
            continue;
        }
        let rule_file = file_name(&rule_dir);
        for path in sorted_entries(&rule_dir)? {
            if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
                continue;
            }
            let text =
                std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            let file =
                load_file(&text, &rule_file).map_err(|e| format!("{}: {e}", path.display()))?;
            stages.extend(file);
        }
    }
    Ok(stages)
}

fn sorted_entries(dir: &Path) -> Result<Vec<std::path::PathBuf>, String> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    Ok(entries)
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// One test file's stages. A file whose tests are all commented out has none.
pub fn load_file(text: &str, rule_file: &str) -> Result<Vec<Stage>, String> {
    let docs = parse_yaml_documents(text).map_err(|e| format!("{}: {}", e.pos, e.message))?;
    let mut stages = Vec::new();
    for doc in docs.iter().filter(|d| d.value != Value::Null) {
        let rule_id = int(doc.get("rule_id")).ok_or("no rule_id")?;
        let tests = doc.get("tests").and_then(Node::as_seq).ok_or("no tests")?;
        for test in tests {
            let test_id = int(test.get("test_id")).ok_or("a test without test_id")?;
            let list = test.get("stages").and_then(Node::as_seq).unwrap_or(&[]);
            for (i, stage) in list.iter().enumerate() {
                // The v1 schema wrapped each stage in `stage:`.
                let stage = stage.get("stage").unwrap_or(stage);
                let id = StageId {
                    rule_id,
                    test_id,
                    stage: i + 1,
                };
                let output = stage.get("output");
                let expect = expectations(output)?;
                let exchange = stage
                    .get("input")
                    .ok_or_else(|| "no input".to_string())
                    .and_then(|input| runnable(output).and_then(|()| wire(input)))
                    .and_then(|wire| {
                        let request = receive(&wire)?;
                        let response = backend_response(&request);
                        Ok(Exchange {
                            wire,
                            request,
                            response,
                        })
                    });
                stages.push(Stage {
                    rule_file: rule_file.to_string(),
                    id,
                    exchange,
                    expect,
                });
            }
        }
    }
    Ok(stages)
}

fn int(node: Option<&Node>) -> Option<u32> {
    match node?.value {
        Value::Int(i) => u32::try_from(i).ok(),
        _ => None,
    }
}

fn ids(node: Option<&Node>) -> Result<Vec<u32>, String> {
    match node.map(|n| &n.value) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Seq(items)) => items
            .iter()
            .map(|n| int(Some(n)).ok_or_else(|| format!("not a rule id: {:?}", n.value)))
            .collect(),
        Some(v) => Err(format!("not a list of ids: {v:?}")),
    }
}

fn expectations(output: Option<&Node>) -> Result<Expect, String> {
    let Some(output) = output else {
        return Ok(Expect::default());
    };
    let log = output.get("log");
    let log_field = |key: &str| log.and_then(|l| l.get(key));
    let text = |node: Option<&Node>| node.and_then(Node::as_str).map(str::to_string);
    let status = match output.get("status").map(|n| &n.value) {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Int(_)) => vec![int(output.get("status")).ok_or("bad status")? as u16],
        Some(Value::Seq(items)) => items
            .iter()
            .map(|n| int(Some(n)).map(|s| s as u16).ok_or("bad status"))
            .collect::<Result<_, _>>()?,
        Some(v) => return Err(format!("bad status {v:?}")),
    };
    Ok(Expect {
        // v1 spelled these at the top of `output`.
        expect_ids: ids(log_field("expect_ids").or(output.get("expect_ids")))?,
        no_expect_ids: ids(log_field("no_expect_ids").or(output.get("no_expect_ids")))?,
        match_regex: text(log_field("match_regex").or(output.get("log_contains"))),
        no_match_regex: text(log_field("no_match_regex").or(output.get("no_log_contains"))),
        status,
    })
}

/// Output checks a native run cannot make: the stage is skipped with the reason.
fn runnable(output: Option<&Node>) -> Result<(), String> {
    let Some(output) = output.and_then(Node::as_map) else {
        return Ok(());
    };
    for (key, value) in output {
        match key.as_str() {
            "log" | "status" | "retry_once" | "expect_ids" | "no_expect_ids" | "log_contains"
            | "no_log_contains" => {}
            "expect_error" if value.value == Value::Bool(true) => {
                return Err("expect_error: the server is expected to drop the connection".into())
            }
            "expect_error" => {}
            "isolated" if value.value == Value::Bool(true) => {
                return Err("isolated: not implemented by this runner".into())
            }
            "isolated" => {}
            "response_contains" => {
                return Err("response_contains: checks the web server's own response text".into())
            }
            other => return Err(format!("unknown output field `{other}`")),
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 1. What go-ftw sends.

/// `^POST|PUT|PATCH|DELETE$` in go-ftw: as Go's regexp reads it (an alternation of the four,
/// the anchors binding only the first and last), not as it was perhaps meant.
fn method_takes_body(method: &str) -> bool {
    method.starts_with("POST")
        || method.contains("PUT")
        || method.contains("PATCH")
        || method.ends_with("DELETE")
}

/// An ordered header list with go-ftw's name matching (Go's canonical MIME header key, which
/// for the names the tests use is ASCII case-insensitive).
struct Headers(Vec<(String, String)>);

impl Headers {
    fn has(&self, name: &str) -> bool {
        self.0.iter().any(|(n, _)| n.eq_ignore_ascii_case(name))
    }
    fn has_value(&self, name: &str, value: &str) -> bool {
        self.0
            .iter()
            .any(|(n, v)| n.eq_ignore_ascii_case(name) && v.eq_ignore_ascii_case(value))
    }
    fn has_value_containing(&self, name: &str, needle: &str) -> bool {
        self.0
            .iter()
            .any(|(n, v)| n.eq_ignore_ascii_case(name) && v.to_ascii_lowercase().contains(needle))
    }
}

const INPUT_FIELDS: &[&str] = &[
    "dest_addr",
    "port",
    "protocol",
    "method",
    "uri",
    "version",
    "headers",
    "data",
    "encoded_data",
    "encoded_request",
    "raw_request",
    "autocomplete_headers",
    "stop_magic",
    "save_cookie",
    "follow_redirect",
    "virtual_host_mode",
];

/// The bytes go-ftw writes to the connection for a stage's `input`.
pub fn wire(input: &Node) -> Result<Vec<u8>, String> {
    for (key, value) in input.as_map().ok_or("input is not a map")? {
        if !INPUT_FIELDS.contains(&key.as_str()) {
            return Err(format!("unknown input field `{key}`"));
        }
        let on = value.value == Value::Bool(true);
        if on && key == "save_cookie" {
            return Err("save_cookie: needs the previous stage's cookies".into());
        }
        if on && key == "follow_redirect" {
            return Err("follow_redirect: needs a second request".into());
        }
    }
    let text = |key: &str| -> Result<Option<String>, String> {
        match input.get(key).map(|n| &n.value) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Str(s)) => Ok(Some(s.clone())),
            Some(Value::Int(i)) => Ok(Some(i.to_string())),
            Some(v) => Err(format!("`{key}` is not a string: {v:?}")),
        }
    };
    let data = text("data")?;
    let encoded_request = text("encoded_request")?;
    let raw_request = text("raw_request")?;
    if data.as_deref().is_some_and(|d| !d.is_empty()) && encoded_request.is_some() {
        return Err("'data' and 'encoded_request' must not be set simultaneously".into());
    }
    if let Some(encoded) = encoded_request.filter(|e| !e.is_empty()) {
        return base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .map_err(|e| format!("encoded_request is not base64: {e}"));
    }
    if let Some(raw) = raw_request.filter(|r| !r.is_empty()) {
        return Ok(raw.into_bytes());
    }
    // `stop_magic: true` is v1's `autocomplete_headers: false`.
    let autocomplete = match (input.get("autocomplete_headers"), input.get("stop_magic")) {
        (Some(n), _) => n.value != Value::Bool(false),
        (None, Some(n)) => n.value != Value::Bool(true),
        (None, None) => true,
    };
    let method = text("method")?.unwrap_or_else(|| "GET".into());
    let uri = text("uri")?.unwrap_or_else(|| "/".into());
    let version = text("version")?.unwrap_or_else(|| "HTTP/1.1".into());

    // The headers, from a YAML map: go-ftw sorts the names (NewHeaderFromMap).
    let mut headers = Vec::new();
    if let Some(map) = input.get("headers").and_then(Node::as_map) {
        for (name, value) in map {
            let value = match &value.value {
                Value::Str(s) => s.clone(),
                Value::Int(i) => i.to_string(),
                Value::Bool(b) => b.to_string(),
                Value::Null => String::new(),
                v => return Err(format!("header `{name}` is not a scalar: {v:?}")),
            };
            headers.push((name.clone(), value));
        }
    }
    headers.sort_by(|a, b| a.0.cmp(&b.0));
    let mut headers = Headers(headers);

    let mut body: Vec<u8> = match (data, text("encoded_data")?) {
        (Some(d), _) => render_template(&d)?.into_bytes(),
        (None, Some(e)) => base64::engine::general_purpose::STANDARD
            .decode(e.trim())
            .map_err(|e| format!("encoded_data is not base64: {e}"))?,
        (None, None) => Vec::new(),
    };
    if !body.is_empty() && autocomplete {
        if !headers.has("Content-Type") {
            headers
                .0
                .push(("Content-Type".into(), FORM_URLENCODED.into()));
        }
        body = encode_form_data(&headers, body);
    }
    if headers.has_value_containing("Content-Type", "multipart/form-data;") {
        body = lf_to_crlf(&body);
    }
    if autocomplete {
        if !headers.has("Connection") {
            headers.0.push(("Connection".into(), "close".into()));
        }
        if !headers.has("Content-Length") && (!body.is_empty() || method_takes_body(&method)) {
            headers
                .0
                .push(("Content-Length".into(), body.len().to_string()));
        }
    }
    let mut out = format!("{method} {uri} {version}\r\n").into_bytes();
    for (name, value) in &headers.0 {
        out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(&body);
    Ok(out)
}

const FORM_URLENCODED: &str = "application/x-www-form-urlencoded";

/// go-ftw's `encodeDataParameters`: with exactly `Content-Type: application/x-www-form-urlencoded`
/// and data that Go's `url.QueryUnescape` leaves unchanged (no `%`, no `+`), each key and value
/// between `&` and `=` is `url.QueryEscape`d.
fn encode_form_data(headers: &Headers, data: Vec<u8>) -> Vec<u8> {
    if !headers.has_value("Content-Type", FORM_URLENCODED)
        || data.iter().any(|&b| b == b'%' || b == b'+')
    {
        return data;
    }
    let mut out = Vec::with_capacity(data.len() * 2);
    for (i, token) in data.split(|&b| b == b'&').enumerate() {
        if i > 0 {
            out.push(b'&');
        }
        match token.iter().position(|&b| b == b'=') {
            None => query_escape(token, &mut out),
            Some(eq) => {
                query_escape(&token[..eq], &mut out);
                out.push(b'=');
                query_escape(&token[eq + 1..], &mut out);
            }
        }
    }
    // go-ftw drops the `&` after the last token; a trailing `&` in the data leaves no token,
    // so split's empty last piece reproduces that.
    if data.last() == Some(&b'&') {
        out.pop();
    }
    out
}

/// Go's `url.QueryEscape`: unreserved bytes stay, space becomes `+`, the rest `%XX`.
fn query_escape(bytes: &[u8], out: &mut Vec<u8>) {
    for &b in bytes {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b);
        } else if b == b' ' {
            out.push(b'+');
        } else {
            out.extend_from_slice(format!("%{b:02X}").as_bytes());
        }
    }
}

/// `bytes.ReplaceAll(data, "\n", "\r\n")`: an existing CRLF becomes CR CR LF, as go-ftw sends it.
fn lf_to_crlf(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + body.len() / 16);
    for &b in body {
        if b == b'\n' {
            out.push(b'\r');
        }
        out.push(b);
    }
    out
}

/// The part of Go's text/template (with sprig) that test data uses: text, and actions
/// `{{ "s" | repeat N }}` / `{{ repeat N "s" }}`, with `{{-`/`-}}` trimming and comments.
/// Anything else is an error, so such a stage is skipped rather than sent wrong.
pub fn render_template(src: &str) -> Result<String, String> {
    let mut out = String::with_capacity(src.len());
    let mut rest = src;
    while let Some(open) = rest.find("{{") {
        let mut text = &rest[..open];
        let mut action = &rest[open + 2..];
        if let Some(a) = action.strip_prefix("- ") {
            text = text.trim_end();
            action = a;
        }
        out.push_str(text);
        let close = action
            .find("}}")
            .ok_or("template: unclosed action (go-ftw would send no body)")?;
        let mut inner = &action[..close];
        rest = &action[close + 2..];
        if let Some(i) = inner.strip_suffix(" -") {
            inner = i;
            rest = rest.trim_start();
        }
        let inner = inner.trim();
        if inner.starts_with("/*") && inner.ends_with("*/") {
            continue;
        }
        out.push_str(&template_action(inner)?);
    }
    out.push_str(rest);
    Ok(out)
}

fn template_action(action: &str) -> Result<String, String> {
    let unsupported = || format!("template action not supported by this runner: {{{{{action}}}}}");
    let (text, count) = if let Some((lhs, rhs)) = action.split_once('|') {
        let count = rhs.trim().strip_prefix("repeat ").ok_or_else(unsupported)?;
        (lhs.trim(), count.trim())
    } else {
        let args = action
            .strip_prefix("repeat ")
            .ok_or_else(unsupported)?
            .trim();
        let (count, text) = args.split_once(' ').ok_or_else(unsupported)?;
        (text.trim(), count)
    };
    let count: usize = count.parse().map_err(|_| unsupported())?;
    Ok(go_string(text).ok_or_else(unsupported)?.repeat(count))
}

/// A Go string literal: `"..."` with the common escapes, or a raw `` `...` ``.
fn go_string(lit: &str) -> Option<String> {
    if let Some(raw) = lit.strip_prefix('`').and_then(|l| l.strip_suffix('`')) {
        return Some(raw.to_string());
    }
    let body = lit.strip_prefix('"')?.strip_suffix('"')?;
    let mut out = String::new();
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next()? {
            'n' => out.push('\n'),
            'r' => out.push('\r'),
            't' => out.push('\t'),
            '\\' => out.push('\\'),
            '"' => out.push('"'),
            _ => return None,
        }
    }
    Some(out)
}

// ---------------------------------------------------------------------------------------------
// 2. What the server receives.

/// Parses the bytes as an HTTP/1 server (Apache httpd with its default `HttpProtocolOptions
/// Strict`) does before ModSecurity runs. `Err` says why the server would refuse the request or
/// why the WAF could not see it.
pub fn receive(wire: &[u8]) -> Result<Received, String> {
    let mut lines = Lines { rest: wire };
    // Empty lines before the request line are ignored.
    let request_line = loop {
        let line = lines.next().ok_or("no request line")?;
        if !line.is_empty() {
            break line;
        }
    };
    let request_line = std::str::from_utf8(request_line)
        .map_err(|_| "request line is not UTF-8 (RequestView holds text)".to_string())?;
    let parts: Vec<&str> = request_line.split(' ').collect();
    let [method, uri, version] = parts[..] else {
        return Err(if parts.len() == 2 {
            "request line without a version (HTTP/0.9): the server answers with no headers".into()
        } else {
            format!("request line `{request_line}` is not `METHOD URI VERSION`: the server refuses it (400)")
        });
    };
    if method.is_empty() || !method.bytes().all(is_token_byte) {
        return Err(format!(
            "method `{method}` is not a token: the server refuses it (400)"
        ));
    }
    if uri.is_empty() || uri.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return Err("control character in the URI: the server refuses it (400)".into());
    }
    let known_version = version
        .strip_prefix("HTTP/1.")
        .is_some_and(|minor| minor.len() == 1 && minor.bytes().all(|b| b.is_ascii_digit()));
    if !known_version {
        return Err(format!(
            "version `{version}` in an HTTP/1 request line: the server refuses it (400/505) \
             before the WAF runs"
        ));
    }
    let mut headers = Vec::new();
    loop {
        let line = lines
            .next()
            .ok_or("the headers do not end with an empty line")?;
        if line.is_empty() {
            break;
        }
        if line.first().is_some_and(|b| *b == b' ' || *b == b'\t') {
            return Err("obsolete header line folding: the server refuses it (400)".into());
        }
        let line = std::str::from_utf8(line)
            .map_err(|_| "a header line is not UTF-8 (RequestView holds text)".to_string())?;
        let (name, value) = line.split_once(':').ok_or_else(|| {
            format!("header line `{line}` has no colon: the server refuses it (400)")
        })?;
        if name.is_empty() || !name.bytes().all(is_token_byte) {
            return Err(format!(
                "header name `{name}` is not a token: the server refuses it (400)"
            ));
        }
        headers.push((
            name.to_string(),
            value.trim_matches([' ', '\t']).to_string(),
        ));
    }
    let rest = lines.rest;
    let get = |name: &str| -> Vec<&str> {
        headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    };
    if version == "HTTP/1.1" && get("Host").is_empty() {
        return Err("HTTP/1.1 without Host: the server refuses it (400)".into());
    }
    if let Some(host) = get("Host").into_iter().find(|h| !valid_host(h)) {
        return Err(format!(
            "Host `{host}` is not a host name: the server refuses it (400)"
        ));
    }
    let body = match (
        get("Transfer-Encoding")[..].first(),
        &get("Content-Length")[..],
    ) {
        (Some(te), _) if te.eq_ignore_ascii_case("chunked") => dechunk(rest)?,
        (Some(te), _) => {
            return Err(format!(
                "Transfer-Encoding `{te}`: the server refuses it (501)"
            ))
        }
        (None, []) => Vec::new(),
        (None, [cl]) => {
            let len: usize = cl
                .parse()
                .map_err(|_| format!("Content-Length `{cl}`: the server refuses it (400)"))?;
            if rest.len() < len {
                return Err(format!(
                    "Content-Length {len} but {} bytes sent: the server waits for the rest",
                    rest.len()
                ));
            }
            rest[..len].to_vec()
        }
        (None, _) => {
            return Err("several Content-Length headers: the server refuses it (400)".into())
        }
    };
    // Repeated fields reach the WAF as one, joined with ", ": httpd merges them, and so does
    // the Fetch API's Headers that the Worker reads (CRS's 920620 test says so for httpd).
    let mut merged: Vec<(String, String)> = Vec::with_capacity(headers.len());
    for (name, value) in headers {
        match merged
            .iter_mut()
            .find(|(n, _)| n.eq_ignore_ascii_case(&name))
        {
            Some((_, v)) => {
                v.push_str(", ");
                v.push_str(&value);
            }
            None => merged.push((name, value)),
        }
    }
    Ok(Received {
        method: method.to_string(),
        uri: uri.to_string(),
        version: version.to_string(),
        headers: merged,
        body,
    })
}

/// A host name or address with an optional port, as httpd's `fix_hostname` accepts it.
fn valid_host(host: &str) -> bool {
    let (name, port) = match host.strip_prefix('[') {
        Some(v6) => match v6.split_once(']') {
            Some((addr, rest)) => {
                if !addr
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
                {
                    return false;
                }
                ("", rest.strip_prefix(':').unwrap_or(rest))
            }
            None => return false,
        },
        None => host.split_once(':').unwrap_or((host, "")),
    };
    name.bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
        && port.bytes().all(|b| b.is_ascii_digit())
}

/// RFC 9110's `tchar`.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Lines ending in LF, a CR before it dropped (servers accept a bare LF).
struct Lines<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Lines<'a> {
    type Item = &'a [u8];
    fn next(&mut self) -> Option<&'a [u8]> {
        let end = self.rest.iter().position(|&b| b == b'\n')?;
        let line = &self.rest[..end];
        self.rest = &self.rest[end + 1..];
        Some(line.strip_suffix(b"\r").unwrap_or(line))
    }
}

pub fn dechunk(mut rest: &[u8]) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    loop {
        let end = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or("a chunk size line does not end")?;
        let line = String::from_utf8_lossy(&rest[..end]);
        let size = line.trim_end_matches('\r');
        let size = size.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size, 16)
            .map_err(|_| format!("chunk size `{size}`: the server refuses it (400)"))?;
        rest = &rest[end + 1..];
        if size == 0 {
            return Ok(body);
        }
        let chunk = rest
            .get(..size)
            .ok_or("a chunk is shorter than its size: the server waits for the rest")?;
        body.extend_from_slice(chunk);
        rest = rest.get(size..).unwrap_or_default();
        rest = rest
            .strip_prefix(b"\r\n")
            .or_else(|| rest.strip_prefix(b"\n"))
            .ok_or("a chunk does not end with CRLF: the server refuses it (400)")?;
    }
}

// ---------------------------------------------------------------------------------------------
// 3. What the backend answers.

/// albedo (the backend of CRS's test setup): `POST /reflect` answers the JSON's `status`,
/// `headers` and `body` (or base64 `encodedBody`); every other request an empty 200. Go's
/// net/http sniffs a `Content-Type` for a body that has none.
pub fn backend_response(req: &Received) -> BackendResponse {
    let (path, _) = req.path_and_query();
    let reflect = req.method == "POST" && (path == "/reflect" || path == "/reflect/");
    let empty = BackendResponse {
        status: 200,
        headers: vec![("Content-Length".into(), "0".into())],
        body: Vec::new(),
    };
    if !reflect {
        return empty;
    }
    let bad = |msg: &str| BackendResponse {
        status: 400,
        headers: vec![("Content-Type".into(), "text/plain; charset=utf-8".into())],
        body: msg.as_bytes().to_vec(),
    };
    let Ok(spec) = serde_json::from_slice::<serde_json::Value>(&req.body) else {
        return bad("Invalid JSON in request body");
    };
    let status = spec.get("status").and_then(|s| s.as_u64()).unwrap_or(0);
    if (1..100).contains(&status) || status >= 600 {
        return bad(&format!("Invalid status code: {status}"));
    }
    let status = if status == 0 { 200 } else { status as u16 };
    let mut headers: Vec<(String, String)> = spec
        .get("headers")
        .and_then(|h| h.as_object())
        .map(|h| {
            h.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                .collect()
        })
        .unwrap_or_default();
    let body = match spec.get("body").and_then(|b| b.as_str()) {
        Some(b) if !b.is_empty() => b.as_bytes().to_vec(),
        _ => match spec.get("encodedBody").and_then(|b| b.as_str()) {
            Some(e) if !e.is_empty() => match base64::engine::general_purpose::STANDARD.decode(e) {
                Ok(b) => b,
                Err(_) => return bad("invalid base64 encoding of response body"),
            },
            _ => Vec::new(),
        },
    };
    if !body.is_empty()
        && !headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("content-type"))
    {
        headers.push(("Content-Type".into(), sniff(&body).into()));
    }
    headers.push(("Content-Length".into(), body.len().to_string()));
    BackendResponse {
        status,
        headers,
        body,
    }
}

/// The text answers of Go's `http.DetectContentType` (HTML and XML signatures, else plain text
/// unless binary).
fn sniff(body: &[u8]) -> &'static str {
    let head = &body[..body.len().min(512)];
    let start = head
        .iter()
        .position(|b| !b"\t\n\x0c\r ".contains(b))
        .unwrap_or(head.len());
    let data = &head[start..];
    const HTML: &[&[u8]] = &[
        b"<!DOCTYPE HTML",
        b"<HTML",
        b"<HEAD",
        b"<SCRIPT",
        b"<IFRAME",
        b"<H1",
        b"<DIV",
        b"<FONT",
        b"<TABLE",
        b"<A",
        b"<STYLE",
        b"<TITLE",
        b"<B",
        b"<BODY",
        b"<BR",
        b"<P",
        b"<!--",
    ];
    for sig in HTML {
        let matches = data.len() > sig.len()
            && data[..sig.len()].eq_ignore_ascii_case(sig)
            && matches!(data[sig.len()], b' ' | b'>');
        if matches {
            return "text/html; charset=utf-8";
        }
    }
    if data.starts_with(b"<?xml") {
        return "text/xml; charset=utf-8";
    }
    let binary = head.iter().any(|&b| {
        b <= 0x08 || b == 0x0b || (0x0e..=0x1a).contains(&b) || (0x1c..=0x1f).contains(&b)
    });
    if binary {
        "application/octet-stream"
    } else {
        "text/plain; charset=utf-8"
    }
}

// ---------------------------------------------------------------------------------------------
// Paranoia levels of CRS's rules, from their `paranoia-level/N` tags.

/// Rule id → paranoia level (0 for a rule without the tag: it runs at every level).
pub fn paranoia_levels(dir: &Path) -> BTreeMap<u32, u8> {
    let id_re = regex::Regex::new(r#"["',\s]id:(\d+)"#).expect("regex");
    let pl_re = regex::Regex::new(r"paranoia-level/(\d)").expect("regex");
    let mut levels = BTreeMap::new();
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().and_then(|e| e.to_str()) == Some("conf"))
        .collect();
    paths.sort();
    for path in paths {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        // One directive per logical line: a trailing backslash continues it.
        let mut directive = String::new();
        for line in text.lines() {
            if directive.is_empty() && line.trim_start().starts_with('#') {
                continue;
            }
            match line.strip_suffix('\\') {
                Some(part) => directive.push_str(part),
                None => {
                    directive.push_str(line);
                    if let Some(id) = id_re
                        .captures(&directive)
                        .and_then(|c| c.get(1)?.as_str().parse().ok())
                    {
                        let pl = pl_re
                            .captures(&directive)
                            .and_then(|c| c.get(1)?.as_str().parse().ok())
                            .unwrap_or(0);
                        levels.entry(id).or_insert(pl);
                    }
                    directive.clear();
                }
            }
        }
    }
    levels
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(yaml: &str) -> Node {
        parse_yaml_documents(yaml).expect("yaml").remove(0)
    }

    #[test]
    fn form_data_is_encoded_and_measured_like_go_ftw() {
        let wire = wire(&input(
            "method: POST\nuri: /post?a=b c\nheaders:\n  Host: localhost\n  Accept: '*/*'\n\
             data: \"x=a b&y=<script>&z\"\n",
        ))
        .unwrap();
        let text = String::from_utf8(wire).unwrap();
        assert_eq!(
            text,
            "POST /post?a=b c HTTP/1.1\r\nAccept: */*\r\nHost: localhost\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nConnection: close\r\n\
             Content-Length: 22\r\n\r\nx=a+b&y=%3Cscript%3E&z"
        );
    }

    #[test]
    fn encoded_looking_data_is_sent_as_is() {
        let w = wire(&input(
            "method: POST\nheaders: {Host: h}\ndata: 'a=%27+b&c=d'\n",
        ))
        .unwrap();
        assert!(w.ends_with(b"\r\n\r\na=%27+b&c=d"));
    }

    #[test]
    fn without_autocomplete_the_body_is_what_content_length_says() {
        let w = wire(&input(
            "method: POST\nautocomplete_headers: false\nheaders: {Host: h, Content-Length: 2}\n\
             data: abcdef\n",
        ))
        .unwrap();
        let r = receive(&w).unwrap();
        assert_eq!(r.body, b"ab");
        assert_eq!(r.header("Connection"), None);
        let w = wire(&input(
            "method: POST\nautocomplete_headers: false\nheaders: {Host: h}\ndata: abc\n",
        ))
        .unwrap();
        assert_eq!(receive(&w).unwrap().body, b"");
    }

    #[test]
    fn multipart_gets_crlf_and_the_method_regex_is_go_s() {
        let w = wire(&input(
            "method: POST\nheaders: {Host: h, Content-Type: 'multipart/form-data; boundary=x'}\n\
             data: |\n  --x\n  a\n",
        ))
        .unwrap();
        let r = receive(&w).unwrap();
        assert_eq!(r.body, b"--x\r\na\r\n");
        assert_eq!(r.header("Content-Length"), Some("8"));
        assert!(method_takes_body("POSTX") && method_takes_body("XPUTX"));
        assert!(!method_takes_body("GET") && !method_takes_body("DELETEX"));
    }

    #[test]
    fn templates_repeat_and_refuse_the_rest() {
        assert_eq!(
            render_template("a{{ \"1\" | repeat 3 }}b").unwrap(),
            "a111b"
        );
        assert_eq!(render_template("a {{- repeat 2 `x` -}} b").unwrap(), "axxb");
        assert!(render_template("{{ .Foo }}").is_err());
    }

    #[test]
    fn the_server_refuses_what_apache_refuses() {
        assert!(receive(b"GET / HTTP/2\r\nHost: h\r\n\r\n").is_err());
        assert!(receive(b"GET /\r\n\r\n").is_err());
        assert!(receive(b"GET / HTTP/1.1\r\n\r\n").is_err());
        assert!(receive(b"GET / HTTP/1.1\r\nHost h\r\n\r\n").is_err());
        let r = receive(
            b"POST /x?q=1 HTTP/1.1\nHost: h\nTransfer-Encoding: chunked\n\n3\r\nabc\r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!(
            (r.body.as_slice(), r.path_and_query()),
            (&b"abc"[..], ("/x", "q=1"))
        );
    }

    #[test]
    fn a_file_gives_its_stages_and_skips_with_reasons() {
        let yaml = "---\nmeta: {author: x}\nrule_id: 920100\ntests:\n  - test_id: 1\n    stages:\n\
                    \x20     - input: {headers: {Host: h}, uri: '/a?b=<c>'}\n\
                    \x20       output: {log: {expect_ids: [920100], no_expect_ids: [1]}}\n\
                    \x20 - test_id: 2\n    stages:\n\
                    \x20     - input: {version: HTTP/2, headers: {Host: h}}\n\
                    \x20       output: {status: 400}\n";
        let stages = load_file(yaml, "REQUEST-920").unwrap();
        assert_eq!(stages.len(), 2);
        assert_eq!(stages[0].id.to_string(), "920100-1-1");
        assert_eq!(stages[0].expect.expect_ids, [920100]);
        let x = stages[0].exchange.as_ref().unwrap();
        assert_eq!(
            x.wire,
            b"GET /a?b=<c> HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n"
        );
        assert_eq!(x.request.path_and_query(), ("/a", "b=<c>"));
        assert_eq!(stages[1].expect.status, [400]);
        assert!(stages[1].exchange.as_ref().unwrap_err().contains("HTTP/2"));
    }

    #[test]
    fn albedo_reflects() {
        let req = Received {
            method: "POST".into(),
            uri: "/reflect".into(),
            version: "HTTP/1.1".into(),
            headers: vec![],
            body: br#"{"status":500,"body":"<html><b>x</b>"}"#.to_vec(),
        };
        let res = backend_response(&req);
        assert_eq!(res.status, 500);
        assert_eq!(res.body, b"<html><b>x</b>");
        assert_eq!(res.headers[0].1, "text/html; charset=utf-8");
    }
}
