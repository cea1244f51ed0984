//! `http-request`: a subrequest to a declared internal endpoint, whose result
//! (`actions.ngrok.http_request.*`) later rules can branch on, e.g. an authorization service
//! whose status decides between `deny` and `forward-internal`.
//!
//! Security: as in ngrok (without its support-enabled external mode), only internal endpoints
//! can be reached. The URL may come from request data, so it is only ever a lookup key into the
//! declared pools; an undeclared name is `ERR_NGROK_3200` and never fetched. The subrequest goes
//! through the pool machinery (member choice, failover, passive health) and the target member's
//! own traffic policy runs on it, as ngrok runs the target endpoint's policy.

use super::spec::{ActionSpec, ActionType, HEADERS, ON_ERROR, REQ, RES};
use super::ConfigShape::{Any, Interpolated, Fields, ListOf};
use super::circuit_breaker::duration;
use crate::actions::config::Config;
use crate::actions::config::{BAD_CONFIG, OUT_OF_RANGE, TOO_MANY};
use crate::actions::Cx;
use crate::endpoint_url::internal_key;
use crate::error::GatewayError;
use crate::exchange::Exchange;
use crate::exchange::{Context, Step};
use crate::exchange::{Subrequest, Subresponse};
use crate::expr::{map, to_text, Expr, Template};
use crate::http::Headers;
use crate::source::At;
use crate::source::{Node, Value as Yaml};
use cel::Value;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;

/// Retries after the first attempt, at most (ngrok: 3).
pub const MAX_RETRIES: usize = 3;

const METHODS: [&str; 6] = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

#[derive(Debug)]
pub struct HttpRequest {
    url: Template,
    method: &'static str,
    query_params: Vec<(String, Template)>,
    headers: Vec<(String, Template)>,
    body: Option<Template>,
    timeout_ms: u64,
    retry_condition: Option<Expr>,
    max_redirects: u32,
    on_error_continue: bool,
}

impl ActionType for HttpRequest {
    const SPEC: ActionSpec = ActionSpec {
        name: "http-request",
        phases: &[REQ, RES],
        terminating: false,
        results: Some("http_request"),
        config: Fields(&[
            ("url", Interpolated),
            ("method", Any),
            (
                "query_params",
                ListOf(&Fields(&[("key", Any), ("value", Interpolated)])),
            ),
            ("headers", HEADERS),
            ("body", Interpolated),
            ("timeout", Any),
            // Its variables (`attempts`, `last_attempt`) are the action's own: not checked here.
            ("retry_condition", Any),
            ("max_redirects", Any),
            ON_ERROR,
        ]),
    };

    fn compile(config: Option<&Node>, path: String, cx: &mut Cx<'_>) -> Option<HttpRequest> {
        let mut c = Config::new(config, path, cx.diags);
        let mut ok = true;
        let url = match c.string("url") {
            Some((node, text)) => {
                let t = c.template("url", node, &text);
                if let Some(literal) = t.as_ref().and_then(Template::literal) {
                    match internal_key(literal) {
                        Err(e) => {
                            let msg = format!(
                                "{e}: `http-request` only reaches internal endpoints (`.internal`)"
                            );
                            c.error_at(Some("ERR_NGROK_2226"), "url", node, msg);
                            ok = false;
                        }
                        Ok(key) if !cx.internal.contains(&key) => {
                            let path = crate::source::child(&c.path, "url");
                            c.diags.warning(
                                Some("ERR_NGROK_3200"),
                                At::new(&path, node),
                                format!(
                                    "no internal endpoint declares `{literal}`: this request \
                                     will fail with ERR_NGROK_3200"
                                ),
                            );
                        }
                        Ok(_) => {}
                    }
                }
                t
            }
            None => {
                c.missing("url");
                None
            }
        };
        let method = match c.string("method") {
            None => "GET",
            Some((node, m)) => match METHODS.iter().find(|k| k.eq_ignore_ascii_case(&m)) {
                Some(k) => k,
                None => {
                    let msg = format!("`method` must be one of {}, not `{m}`", METHODS.join(", "));
                    c.error_at(BAD_CONFIG, "method", node, msg);
                    ok = false;
                    "GET"
                }
            },
        };
        let query_params = query_params(&mut c, &mut ok);
        let headers = headers(&mut c, &mut ok);
        let body = c.string("body").and_then(|(node, text)| {
            let t = c.template("body", node, &text);
            ok &= t.is_some();
            t
        });
        if let (Some(_), "GET", Some(node)) = (&body, method, c.field("body")) {
            let path = crate::source::child(&c.path, "body");
            c.diags.warning(
                BAD_CONFIG,
                At::new(&path, node),
                "a GET sends no body: `body` is ignored (use POST, PUT or PATCH)",
            );
        }
        let timeout_ms = match duration(&mut c, "timeout", 1_000, 30_000) {
            Ok(t) => t.unwrap_or(3_000),
            Err(()) => {
                ok = false;
                3_000
            }
        };
        let retry_condition = c.string("retry_condition").and_then(|(node, text)| {
            // ngrok writes it bare or as one `${...}`: both mean the expression.
            let src = text
                .trim()
                .strip_prefix("${")
                .and_then(|s| s.strip_suffix('}'))
                .unwrap_or(text.trim());
            match Expr::compile(src) {
                Ok(e) => Some(e),
                Err(e) => {
                    let msg = format!("invalid expression `{src}`: {}", e.0);
                    c.error_at(Some("ERR_NGROK_2200"), "retry_condition", node, msg);
                    ok = false;
                    None
                }
            }
        });
        // ngrok's docs disagree (field table: default 10, 0-100; behaviour text: default 0,
        // 0-5). Default 0, as the behaviour text says and as a proxy does (the 3xx is the
        // result); any value the field table allows is accepted.
        let max_redirects = match c.int("max_redirects") {
            None => 0,
            Some((_, v)) if (0..=100).contains(&v) => v as u32,
            Some((node, v)) => {
                let msg = format!("`max_redirects` must be between 0 and 100, not {v}");
                c.error_at(OUT_OF_RANGE, "max_redirects", node, msg);
                ok = false;
                0
            }
        };
        let on_error_continue = match c.string("on_error") {
            None => true,
            Some((_, v)) if v == "continue" => true,
            Some((_, v)) if v == "halt" => false,
            Some((node, v)) => {
                let msg = format!("`on_error` must be `halt` or `continue`, not `{v}`");
                c.error_at(BAD_CONFIG, "on_error", node, msg);
                ok = false;
                true
            }
        };
        c.finish();
        let url = url?;
        ok.then_some(HttpRequest {
            url,
            method,
            query_params,
            headers,
            body,
            timeout_ms,
            retry_condition,
            max_redirects,
            on_error_continue,
        })
    }

    async fn apply<C: Context>(&self, ex: &mut Exchange, cx: &C) -> Result<Step, GatewayError> {
        let started = cx.now_ms();
        let mut record = Record::default();
        let outcome = self.run(ex, cx, started, &mut record).await;
        let mut fields = vec![("attempts", Value::List(Arc::new(record.attempts)))];
        if let Some(req) = record.req {
            fields.push(("req", req));
        }
        match outcome {
            Ok(res) => {
                fields.push((
                    "res",
                    response_value(&res, cx.now_ms().saturating_sub(started)),
                ));
                ex.set_result("http_request", fields);
                Ok(Step::Continue)
            }
            Err(e) => {
                ex.set_outcome("http_request", fields, Some(&e));
                if self.on_error_continue {
                    ex.note(format!("http-request failed (on_error: continue): {e}"));
                    Ok(Step::Continue)
                } else {
                    Err(e)
                }
            }
        }
    }
}

impl HttpRequest {


    async fn run<C: Context>(
        &self,
        ex: &mut Exchange,
        cx: &C,
        started: u64,
        record: &mut Record,
    ) -> Result<Subresponse, GatewayError> {
        let render = |ex: &mut Exchange, t: &Template, field| ex.render(t, "http-request", field);
        let mut url = render(ex, &self.url, "url")?;
        if !self.query_params.is_empty() {
            let mut pairs = Vec::with_capacity(self.query_params.len());
            for (key, value) in &self.query_params {
                let value = render(ex, value, "query_params")?;
                pairs.push(format!("{}={}", encode(key), encode(&value)));
            }
            // A fragment is never sent.
            let base = url.split('#').next().unwrap_or_default();
            let sep = if base.contains('?') { '&' } else { '?' };
            url = format!("{base}{sep}{}", pairs.join("&"));
        }
        let mut headers = Headers::new();
        for (name, value) in &self.headers {
            headers.set(name, &render(ex, value, "headers")?);
        }
        // Honest names: the request comes from this gateway, not from ngrok's cloud.
        headers.set("edge-gateway-req-type", "http-request");
        if !headers.contains("user-agent") {
            headers.set("user-agent", "edge-gateway/http-request");
        }
        let body: Rc<[u8]> = match &self.body {
            Some(t) if self.method != "GET" => render(ex, t, "body")?.into_bytes().into(),
            _ => Rc::from(&[][..]),
        };
        record.req = Some(map(vec![
            ("method", Value::from(self.method)),
            ("url", Value::from(url.as_str())),
            ("header", header_value(&headers)),
            (
                "body",
                Value::from(String::from_utf8_lossy(&body).into_owned()),
            ),
        ]));
        let deadline_ms = started + self.timeout_ms;
        let depth = ex.subrequest.as_ref().map_or(0, |s| s.depth) + 1;
        let mut retries = 0;
        loop {
            let attempt_start = cx.now_ms();
            let result = self
                .attempt(cx, ex, &url, &headers, &body, deadline_ms, depth)
                .await
                .map_err(|e| match e {
                    // The send was cut at what was left of `timeout`.
                    GatewayError::UpstreamTimeout { .. } => GatewayError::SubrequestTimeout {
                        after_ms: self.timeout_ms,
                    },
                    e => e,
                });
            let time_ms = cx.now_ms().saturating_sub(attempt_start);
            record.attempts.push(attempt_value(&result, time_ms));
            let out_of_time = cx.now_ms() >= deadline_ms;
            // ngrok evaluates the condition "after each failed attempt": an error or a 4xx/5xx.
            let failed = result.as_ref().map_or(true, |r| r.status >= 400);
            let retry = match &self.retry_condition {
                Some(cond) if failed && retries < MAX_RETRIES && !out_of_time => {
                    let res = match &result {
                        Ok(r) => {
                            // ngrok's own example reads `last_attempt.res.statusCode`.
                            let mut fields = response_fields(r, time_ms);
                            fields.push(("statusCode", Value::Int(i64::from(r.status))));
                            map(fields)
                        }
                        Err(_) => Value::Null,
                    };
                    // ngrok: "the error string (if any)".
                    let error = match &result {
                        Err(e) => Value::from(match e.code() {
                            Some(code) => format!("{code}: {e}"),
                            None => e.to_string(),
                        }),
                        Ok(_) => Value::Null,
                    };
                    let last = map(vec![
                        ("req", record.req.clone().unwrap_or(Value::Null)),
                        ("res", res),
                        ("error", error),
                    ]);
                    let vars = vec![
                        ("attempts", Value::Int(record.attempts.len() as i64)),
                        ("last_attempt", last),
                    ];
                    match ex.eval_with(cond, vars) {
                        Ok(Value::Bool(b)) => b,
                        Ok(other) => {
                            return Err(GatewayError::Expression {
                                error: crate::expr::EvalError {
                                    expression: cond.source().to_string(),
                                    message: format!(
                                        "retry_condition must be a bool, not {}",
                                        to_text(&other)
                                    ),
                                },
                            })
                        }
                        Err(error) => return Err(GatewayError::Expression { error }),
                    }
                }
                _ => false,
            };
            if retry {
                retries += 1;
                continue;
            }
            return result;
        }
    }

    /// One attempt, following redirects (each to a declared internal endpoint) up to
    /// `max_redirects`.
    #[expect(
        clippy::too_many_arguments,
        reason = "one attempt needs the whole rendered request and its budget"
    )]
    async fn attempt<C: Context>(
        &self,
        cx: &C,
        ex: &Exchange,
        url: &str,
        headers: &Headers,
        body: &Rc<[u8]>,
        deadline_ms: u64,
        depth: usize,
    ) -> Result<Subresponse, GatewayError> {
        let mut url = url.to_string();
        let mut method = self.method;
        let mut body = Rc::clone(body);
        let mut redirects = 0;
        loop {
            if cx.now_ms() >= deadline_ms {
                return Err(GatewayError::SubrequestTimeout {
                    after_ms: self.timeout_ms,
                });
            }
            let key = internal_key(&url)
                .map_err(|_| GatewayError::EndpointOffline { url: origin(&url) })?;
            let res = cx
                .subrequest(Subrequest {
                    key,
                    url: url.clone(),
                    method,
                    headers: headers.clone(),
                    body: Rc::clone(&body),
                    deadline_ms,
                    depth,
                    client_ip: ex.req.client_ip,
                })
                .await?;
            let location = res.headers.get("location").map(str::to_string);
            let (true, Some(location)) = (matches!(res.status, 301..=303 | 307 | 308), location)
            else {
                return Ok(res);
            };
            if self.max_redirects == 0 {
                return Ok(res);
            }
            if redirects == self.max_redirects {
                return Err(GatewayError::TooManyRedirects {
                    limit: self.max_redirects,
                });
            }
            redirects += 1;
            url = resolve(&url, &location);
            // As browsers do: 303, and 301/302 after a POST, become a GET without a body.
            if res.status == 303 || (matches!(res.status, 301 | 302) && method == "POST") {
                method = "GET";
                body = Rc::from(&[][..]);
            }
        }
    }
}

#[derive(Default)]
struct Record {
    req: Option<Value>,
    attempts: Vec<Value>,
}

/// A `Location` against the URL it answered: absolute, host-relative (`/x`) or relative.
fn resolve(base: &str, location: &str) -> String {
    if location.contains("://") {
        return location.to_string();
    }
    let (scheme, rest) = base.split_once("://").unwrap_or(("https", base));
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    if let Some(path) = location.strip_prefix("//") {
        return format!("{scheme}://{path}");
    }
    if location.starts_with('/') {
        return format!("{scheme}://{authority}{location}");
    }
    let path = rest[authority_end..].split(['?', '#']).next().unwrap_or("");
    let dir = path.rfind('/').map_or("/", |i| &path[..=i]);
    format!("{scheme}://{authority}{dir}{location}")
}

/// `scheme://host[:port]` of a URL, for errors: its user info, path and query may carry
/// secrets (an API key in `query_params`), and errors reach the client and the logs.
fn origin(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let authority = rest.split(['/', '?', '#', '\\']).next().unwrap_or("");
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    format!("{scheme}://{host}")
}

/// Percent-encodes a query component (RFC 3986 unreserved characters stay).
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn header_value(headers: &Headers) -> Value {
    let mut m: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for (k, v) in headers.iter() {
        m.entry(k.to_ascii_lowercase())
            .or_default()
            .push(Value::from(v));
    }
    map(m
        .iter()
        .map(|(k, v)| (k.as_str(), Value::List(Arc::new(v.clone()))))
        .collect())
}

fn response_value(res: &Subresponse, time_ms: u64) -> Value {
    map(response_fields(res, time_ms))
}

fn response_fields(res: &Subresponse, time_ms: u64) -> Vec<(&'static str, Value)> {
    vec![
        ("status_code", Value::Int(i64::from(res.status))),
        ("header", header_value(&res.headers)),
        (
            "body",
            Value::from(String::from_utf8_lossy(&res.body).into_owned()),
        ),
        ("time_ms", Value::Int(time_ms as i64)),
    ]
}

fn error_value(e: &GatewayError) -> Value {
    map(vec![
        ("code", Value::from(e.code().unwrap_or_default())),
        ("message", Value::from(e.to_string())),
    ])
}

fn attempt_value(result: &Result<Subresponse, GatewayError>, time_ms: u64) -> Value {
    let mut fields = vec![("response_time_ms", Value::Int(time_ms as i64))];
    match result {
        Ok(r) => {
            fields.push(("response_status_code", Value::Int(i64::from(r.status))));
            fields.push(("response_header", header_value(&r.headers)));
        }
        Err(e) => fields.push(("error", error_value(e))),
    }
    map(fields)
}

fn query_params(c: &mut Config<'_, '_>, ok: &mut bool) -> Vec<(String, Template)> {
    let Some(node) = c.field("query_params") else {
        return Vec::new();
    };
    let Some(items) = node.as_seq() else {
        c.wrong_type("query_params", node, "a list of {key, value}");
        *ok = false;
        return Vec::new();
    };
    if items.len() > 32 {
        let msg = format!("`query_params` has at most 32 entries, not {}", items.len());
        c.error_at(TOO_MANY, "query_params", node, msg);
        *ok = false;
    }
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let at = format!("query_params[{i}]");
        let text = |k: &str| match item.get(k).map(|n| (n, &n.value)) {
            Some((n, Yaml::Str(s))) => Some((n, s.clone())),
            Some((n, Yaml::Int(v))) => Some((n, v.to_string())),
            _ => None,
        };
        let (Some((kn, key)), Some((vn, value))) = (text("key"), text("value")) else {
            let msg = "a query parameter is `{key: NAME, value: VALUE}`".to_string();
            c.error_at(BAD_CONFIG, &at, item, msg);
            *ok = false;
            continue;
        };
        if key.is_empty() || key.len() > 128 {
            let msg = "a query parameter's `key` has 1 to 128 characters".to_string();
            c.error_at(OUT_OF_RANGE, &format!("{at}.key"), kn, msg);
            *ok = false;
        }
        if value.len() > 8192 {
            let msg = "a query parameter's `value` has at most 8192 characters".to_string();
            c.error_at(OUT_OF_RANGE, &format!("{at}.value"), vn, msg);
            *ok = false;
        }
        match Template::compile(&value) {
            Ok(t) => out.push((key, t)),
            Err(e) => {
                let msg = format!("invalid CEL interpolation: {}", e.0);
                c.error_at(Some("ERR_NGROK_2224"), &format!("{at}.value"), vn, msg);
                *ok = false;
            }
        }
    }
    out
}

fn headers(c: &mut Config<'_, '_>, ok: &mut bool) -> Vec<(String, Template)> {
    let Some(node) = c.field("headers") else {
        return Vec::new();
    };
    let Some(entries) = node.as_map() else {
        c.wrong_type("headers", node, "a map of header names to values");
        *ok = false;
        return Vec::new();
    };
    if entries.len() > 10 {
        let msg = format!("`headers` has at most 10 entries, not {}", entries.len());
        c.error_at(TOO_MANY, "headers", node, msg);
        *ok = false;
    }
    let mut out = Vec::new();
    for (name, value) in entries {
        let at = format!("headers.{name}");
        let token = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
        if !token {
            let msg = format!("`{name}` is not a valid header name");
            c.error_at(BAD_CONFIG, &at, value, msg);
            *ok = false;
            continue;
        }
        let text = match &value.value {
            Yaml::Str(s) => s.clone(),
            Yaml::Int(i) => i.to_string(),
            Yaml::Bool(b) => b.to_string(),
            _ => {
                c.wrong_type(&at, value, "a string");
                *ok = false;
                continue;
            }
        };
        match Template::compile(&text) {
            Ok(t) => out.push((name.to_ascii_lowercase(), t)),
            Err(e) => {
                let msg = format!("invalid CEL interpolation: {}", e.0);
                c.error_at(Some("ERR_NGROK_2224"), &at, value, msg);
                *ok = false;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_resolve_against_the_request_url() {
        let base = "https://auth.internal/v1/check?x=1";
        assert_eq!(resolve(base, "/login"), "https://auth.internal/login");
        assert_eq!(resolve(base, "ok"), "https://auth.internal/v1/ok");
        assert_eq!(
            resolve(base, "https://other.internal/a"),
            "https://other.internal/a"
        );
        assert_eq!(resolve(base, "//evil.com/a"), "https://evil.com/a");
        assert!(internal_key(&resolve(base, "//evil.com/a")).is_err());
    }

    #[test]
    fn query_components_are_encoded() {
        assert_eq!(encode("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
        assert_eq!(encode("Az09-._~"), "Az09-._~");
    }
}
