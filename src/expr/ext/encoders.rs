//! Encoders beyond `cel`'s `base64.encode(bytes)`/`base64.decode(string)`: the string forms of
//! base64, `basic_auth.encode`, JSON, query strings and URLs.

use super::{bytes_arg, err, global, member, overload, str_arg, string, STRING_OR_BYTES};
use crate::http::percent_decode;
use base64::prelude::*;
use cel::common::types::{BYTES_TYPE, LIST_TYPE, MAP_TYPE, STRING_TYPE};
use cel::objects::{Key, Map};
use cel::{DeclarationError, Env, ExecutionError, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

pub fn register(env: &mut Env) -> Result<(), DeclarationError> {
    // base64
    global(
        env,
        "base64.encode",
        vec![STRING_TYPE],
        overload!(b64_encode),
    )?;
    member(
        env,
        "encodeBase64",
        STRING_TYPE,
        vec![],
        overload!(b64_encode),
    )?;
    member(
        env,
        "encodeBase64",
        BYTES_TYPE,
        vec![],
        overload!(b64_encode),
    )?;
    member(
        env,
        "decodeBase64",
        STRING_TYPE,
        vec![],
        overload!(b64_decode_string),
    )?;
    // The older utility-macro names: strings in, strings out.
    global(env, "b64.encode", vec![STRING_TYPE], overload!(b64_encode))?;
    global(
        env,
        "b64.decode",
        vec![STRING_TYPE],
        overload!(b64_decode_string),
    )?;
    global(
        env,
        "basic_auth.encode",
        vec![STRING_TYPE, STRING_TYPE],
        overload!(basic_auth),
    )?;
    // JSON
    for t in STRING_OR_BYTES {
        global(env, "json.decode", vec![t()], overload!(json_decode))?;
        member(env, "decodeJson", t(), vec![], overload!(json_decode))?;
        member(env, "isJson", t(), vec![], overload!(is_json))?;
    }
    for t in [(|| LIST_TYPE) as fn() -> _, || MAP_TYPE] {
        global(env, "json.encode", vec![t()], overload!(json_encode))?;
        member(env, "encodeJson", t(), vec![], overload!(json_encode))?;
    }
    // query strings
    global(
        env,
        "queryString.decode",
        vec![STRING_TYPE],
        overload!(qs_decode),
    )?;
    member(
        env,
        "decodeQueryString",
        STRING_TYPE,
        vec![],
        overload!(qs_decode),
    )?;
    member(env, "isQueryString", STRING_TYPE, vec![], overload!(is_qs))?;
    global(
        env,
        "queryString.encode",
        vec![MAP_TYPE],
        overload!(qs_encode),
    )?;
    member(
        env,
        "encodeQueryString",
        MAP_TYPE,
        vec![],
        overload!(qs_encode),
    )?;
    // URLs
    global(env, "url.escape", vec![STRING_TYPE], overload!(url_escape))?;
    member(env, "escapeUrl", STRING_TYPE, vec![], overload!(url_escape))?;
    global(
        env,
        "url.unescape",
        vec![STRING_TYPE],
        overload!(url_unescape),
    )?;
    member(
        env,
        "unescapeUrl",
        STRING_TYPE,
        vec![],
        overload!(url_unescape),
    )?;
    global(env, "url.parse", vec![STRING_TYPE], overload!(url_parse))?;
    member(env, "parseUrl", STRING_TYPE, vec![], overload!(url_parse))?;
    member(env, "isURL", STRING_TYPE, vec![], overload!(is_url))?;
    Ok(())
}

fn b64_encode(args: &[Value]) -> Result<Value, ExecutionError> {
    Ok(string(BASE64_STANDARD.encode(bytes_arg(
        args,
        0,
        "base64.encode",
    )?)))
}

/// `s.decodeBase64()`: the decoded bytes as a string (they must be UTF-8). Padding optional.
fn b64_decode_string(args: &[Value]) -> Result<Value, ExecutionError> {
    const F: &str = "decodeBase64";
    let s = str_arg(args, 0, F)?;
    let bytes = BASE64_STANDARD
        .decode(s)
        .or_else(|_| BASE64_STANDARD_NO_PAD.decode(s.trim_end_matches('=')))
        .map_err(|e| err(F, e))?;
    String::from_utf8(bytes)
        .map(string)
        .map_err(|_| err(F, "the decoded bytes are not UTF-8"))
}

fn basic_auth(args: &[Value]) -> Result<Value, ExecutionError> {
    const F: &str = "basic_auth.encode";
    let user = str_arg(args, 0, F)?;
    let pass = str_arg(args, 1, F)?;
    Ok(string(format!(
        "Basic {}",
        BASE64_STANDARD.encode(format!("{user}:{pass}"))
    )))
}

fn json_decode(args: &[Value]) -> Result<Value, ExecutionError> {
    const F: &str = "json.decode";
    let v: serde_json::Value =
        serde_json::from_slice(bytes_arg(args, 0, F)?).map_err(|e| err(F, e))?;
    Ok(from_json(v))
}

fn is_json(args: &[Value]) -> Result<Value, ExecutionError> {
    let data = bytes_arg(args, 0, "isJson")?;
    Ok(Value::Bool(
        serde_json::from_slice::<serde::de::IgnoredAny>(data).is_ok(),
    ))
}

fn json_encode(args: &[Value]) -> Result<Value, ExecutionError> {
    const F: &str = "json.encode";
    let v = args.first().ok_or_else(|| err(F, "missing argument"))?;
    let json = to_json(v).map_err(|e| err(F, e))?;
    Ok(string(json.to_string()))
}

/// JSON to CEL: integers that fit stay `int` (JSON has one number type; ngrok's examples
/// compare decoded numbers with integer literals), others are `double`.
pub(crate) fn from_json(v: serde_json::Value) -> Value {
    match v {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Bool(b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => match n.as_u64() {
                Some(u) => Value::UInt(u),
                None => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
            },
        },
        serde_json::Value::String(s) => string(s),
        serde_json::Value::Array(items) => {
            Value::List(Arc::new(items.into_iter().map(from_json).collect()))
        }
        serde_json::Value::Object(m) => {
            let map: HashMap<Key, Value> = m
                .into_iter()
                .map(|(k, v)| (Key::String(Arc::new(k)), from_json(v)))
                .collect();
            Value::Map(Map { map: Arc::new(map) })
        }
    }
}

/// CEL to JSON, keys sorted (serde_json's map is ordered) so the text is deterministic.
pub(crate) fn to_json(v: &Value) -> Result<serde_json::Value, String> {
    use serde_json::Value as J;
    Ok(match v {
        Value::Null => J::Null,
        Value::Bool(b) => J::Bool(*b),
        Value::Int(i) => J::from(*i),
        Value::UInt(u) => J::from(*u),
        Value::Float(f) => serde_json::Number::from_f64(*f)
            .map(J::Number)
            .ok_or_else(|| format!("{f} has no JSON form"))?,
        Value::String(s) => J::String(s.to_string()),
        Value::Bytes(b) => J::String(BASE64_STANDARD.encode(b.as_slice())),
        Value::Timestamp(t) => J::String(crate::expr::go_time(t)),
        Value::Duration(d) => J::String(format!("{}s", d.num_milliseconds() as f64 / 1000.0)),
        Value::List(items) => J::Array(items.iter().map(to_json).collect::<Result<_, _>>()?),
        Value::Map(m) => {
            let mut out = serde_json::Map::new();
            for (k, v) in m.map.iter() {
                out.insert(key_text(k), to_json(v)?);
            }
            J::Object(out)
        }
        other => {
            return Err(format!(
                "a {} has no JSON form",
                crate::expr::type_name(other)
            ))
        }
    })
}

fn key_text(k: &Key) -> String {
    match k {
        Key::String(s) => s.to_string(),
        Key::Int(i) => i.to_string(),
        Key::Uint(u) => u.to_string(),
        Key::Bool(b) => b.to_string(),
    }
}

/// Go's `url.ParseQuery`: `map[string][]string`, `+` is a space, a bad escape is an error.
fn parse_query(s: &str) -> Result<BTreeMap<String, Vec<String>>, String> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for pair in s.split('&').filter(|p| !p.is_empty()) {
        if pair.contains(';') {
            return Err("invalid semicolon separator in query".to_string());
        }
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let k = unescape(k, true)?;
        let v = unescape(v, true)?;
        out.entry(k).or_default().push(v);
    }
    Ok(out)
}

/// `queryString.decode(s)` / `s.decodeQueryString()`: each name to its first value (Go's
/// `url.Values.Get`), a plain string, as ngrok's page shows (`{a:b,c:d}`, and
/// `queryString.decode(req.url.query)["q"] == "hello"`). Every value of a repeated name is in
/// `req.url.query_params` and `url.parse(...).query_params`.
fn qs_decode(args: &[Value]) -> Result<Value, ExecutionError> {
    const F: &str = "queryString.decode";
    let q = parse_query(str_arg(args, 0, F)?).map_err(|e| err(F, e))?;
    let map: HashMap<Key, Value> = q
        .into_iter()
        .filter_map(|(k, vs)| Some((Key::String(Arc::new(k)), string(vs.into_iter().next()?))))
        .collect();
    Ok(Value::Map(Map { map: Arc::new(map) }))
}

/// A query string as `map[string][]string` (a URL's `query_params`); a bad one is empty.
fn query_params(raw: &str) -> Value {
    let map: HashMap<Key, Value> = parse_query(raw)
        .unwrap_or_default()
        .into_iter()
        .map(|(k, vs)| {
            let list = Value::List(Arc::new(vs.into_iter().map(string).collect()));
            (Key::String(Arc::new(k)), list)
        })
        .collect();
    Value::Map(Map { map: Arc::new(map) })
}

/// A query string parses (Go's `url.ParseQuery`) and holds no whitespace or control character,
/// which a URL's query cannot carry unescaped: ngrok's page has `'not a query string'` false.
fn is_qs(args: &[Value]) -> Result<Value, ExecutionError> {
    let s = str_arg(args, 0, "isQueryString")?;
    let clean = !s.chars().any(|c| c.is_whitespace() || c.is_control());
    Ok(Value::Bool(clean && parse_query(s).is_ok()))
}

/// Go's `url.Values.Encode`: keys sorted, each value (a string, or a list of them) escaped.
fn qs_encode(args: &[Value]) -> Result<Value, ExecutionError> {
    const F: &str = "queryString.encode";
    let Some(Value::Map(m)) = args.first() else {
        return Err(err(F, "expected a map"));
    };
    let mut entries: Vec<(String, Vec<String>)> = Vec::new();
    for (k, v) in m.map.iter() {
        let values = match v {
            Value::List(items) => items.iter().map(scalar_text).collect::<Result<_, _>>(),
            other => scalar_text(other).map(|s| vec![s]),
        }
        .map_err(|e| err(F, e))?;
        entries.push((key_text(k), values));
    }
    entries.sort();
    let mut out = String::new();
    for (k, values) in entries {
        for v in values {
            if !out.is_empty() {
                out.push('&');
            }
            out.push_str(&escape(&k, true));
            out.push('=');
            out.push_str(&escape(&v, true));
        }
    }
    Ok(string(out))
}

fn scalar_text(v: &Value) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s.to_string()),
        Value::Int(_) | Value::UInt(_) | Value::Float(_) | Value::Bool(_) => {
            Ok(crate::expr::to_text(v))
        }
        other => Err(format!(
            "a query string value must be a string or a list of strings, not a {}",
            crate::expr::type_name(other)
        )),
    }
}

/// Go's `url.QueryEscape` (`query`: space is `+`) or `url.PathEscape`.
pub(crate) fn escape(s: &str, query: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' if query => out.push('+'),
            // PathEscape leaves the sub-delims and ':' '@' of a path segment alone.
            b'$' | b'&' | b'+' | b',' | b':' | b';' | b'=' | b'@' if !query => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Go's `url.QueryUnescape`: a `%` not followed by two hex digits is an error.
fn unescape(s: &str, plus_is_space: bool) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let ok = bytes.len() >= i + 3
                && bytes[i + 1].is_ascii_hexdigit()
                && bytes[i + 2].is_ascii_hexdigit();
            if !ok {
                let end = (i + 3).min(s.len());
                return Err(format!(
                    "invalid URL escape {:?}",
                    String::from_utf8_lossy(&bytes[i..end])
                ));
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    Ok(percent_decode(s, plus_is_space))
}

fn url_escape(args: &[Value]) -> Result<Value, ExecutionError> {
    Ok(string(escape(str_arg(args, 0, "url.escape")?, true)))
}

fn url_unescape(args: &[Value]) -> Result<Value, ExecutionError> {
    const F: &str = "url.unescape";
    unescape(str_arg(args, 0, F)?, true)
        .map(string)
        .map_err(|e| err(F, e))
}

/// The parts of an absolute or relative URL, named like `req.url`'s fields.
struct Url<'a> {
    scheme: &'a str,
    user: Option<&'a str>,
    host: &'a str,
    raw_path: &'a str,
    raw_query: &'a str,
    fragment: &'a str,
}

fn split_url(s: &str) -> Result<Url<'_>, String> {
    if s.chars().any(|c| c.is_ascii_control() || c == ' ') {
        return Err("invalid character in URL".to_string());
    }
    let (rest, fragment) = s.split_once('#').unwrap_or((s, ""));
    let (rest, raw_query) = rest.split_once('?').unwrap_or((rest, ""));
    let (scheme, rest) = match rest.split_once(':') {
        Some((scheme, rest))
            if scheme.starts_with(|c: char| c.is_ascii_alphabetic())
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')) =>
        {
            (scheme, rest)
        }
        Some((first, _)) if !first.contains('/') => {
            return Err("missing protocol scheme".to_string())
        }
        _ => ("", rest),
    };
    let (user, host, raw_path) = match rest.strip_prefix("//") {
        Some(after) => {
            let end = after.find('/').unwrap_or(after.len());
            let (authority, path) = after.split_at(end);
            let (user, host) = match authority.rsplit_once('@') {
                Some((u, h)) => (Some(u), h),
                None => (None, authority),
            };
            (user, host, path)
        }
        None => (None, "", rest),
    };
    if let Some((_, port)) = host.rsplit_once(':').filter(|_| !host.ends_with(']')) {
        if !port.chars().all(|c| c.is_ascii_digit()) {
            return Err(format!("invalid port {port:?} after host"));
        }
    }
    Ok(Url {
        scheme,
        user,
        host,
        raw_path,
        raw_query,
        fragment,
    })
}

/// `url.parse(s)`: the parts of a URL, named like `req.url`'s fields so a policy reads both the
/// same way: `scheme`, `host` (no port, no brackets), `authority` (host[:port] as written),
/// `port` (an int, absent when the URL has none), `path` (decoded), `raw_path`, `query` (raw,
/// without `?`), `query_params` (map of value lists), `uri` (path and query), `fragment`,
/// `user_password` (`user:pass` as written) and `raw` (the input).
fn url_parse(args: &[Value]) -> Result<Value, ExecutionError> {
    const F: &str = "url.parse";
    let raw = str_arg(args, 0, F)?;
    let u = split_url(raw).map_err(|e| err(F, e))?;
    let (host, port) = match u.host.rsplit_once(':') {
        Some((h, p)) if !u.host.ends_with(']') => (h, Some(p)),
        _ => (u.host, None),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let query_params = query_params(u.raw_query);
    let uri = if u.raw_query.is_empty() {
        u.raw_path.to_string()
    } else {
        format!("{}?{}", u.raw_path, u.raw_query)
    };
    let mut fields = vec![
        ("scheme", string(u.scheme)),
        ("host", string(host)),
        ("authority", string(u.host)),
        ("path", string(percent_decode(u.raw_path, false))),
        ("raw_path", string(u.raw_path)),
        ("query", string(u.raw_query)),
        ("query_params", query_params),
        ("uri", string(uri)),
        ("fragment", string(percent_decode(u.fragment, false))),
        ("user_password", string(u.user.unwrap_or(""))),
        ("raw", string(raw)),
    ];
    // `split_url` checked that a port is digits; one too large for a port is an error.
    if let Some(p) = port.filter(|p| !p.is_empty()) {
        let port: u16 = p
            .parse()
            .map_err(|_| err(F, format!("invalid port {p:?}")))?;
        fields.push(("port", Value::Int(i64::from(port))));
    }
    Ok(crate::expr::map(fields))
}

/// An absolute URL: a scheme and a host.
fn is_url(args: &[Value]) -> Result<Value, ExecutionError> {
    let ok = split_url(str_arg(args, 0, "isURL")?)
        .is_ok_and(|u| !u.scheme.is_empty() && !u.host.is_empty());
    Ok(Value::Bool(ok))
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{eval, ok, s};
    use cel::Value;

    #[test]
    fn base64_forms() {
        assert_eq!(s("base64.encode('hello')"), "aGVsbG8=");
        assert_eq!(s("'hello'.encodeBase64()"), "aGVsbG8=");
        assert_eq!(s("'aGVsbG8='.decodeBase64()"), "hello");
        assert_eq!(s("'aGVsbG8'.decodeBase64()"), "hello");
        assert_eq!(s("b64.encode('hello')"), "aGVsbG8=");
        assert_eq!(s("b64.decode('aGVsbG8=')"), "hello");
        assert!(eval("'!!!'.decodeBase64()").is_err());
        assert_eq!(s("basic_auth.encode('user', 'pass')"), "Basic dXNlcjpwYXNz");
    }

    #[test]
    fn json() {
        assert_eq!(
            ok("json.decode('{\"a\": [1, 2.5, true, null]}').a[0]"),
            Value::Int(1)
        );
        assert_eq!(ok("'{\"a\": {\"b\": \"c\"}}'.decodeJson().a.b"), ok("'c'"));
        assert_eq!(ok("'[1,2]'.isJson()"), Value::Bool(true));
        assert_eq!(ok("'{nope'.isJson()"), Value::Bool(false));
        assert!(eval("json.decode('{nope')").is_err());
        assert_eq!(
            s("json.encode({'b': [1, 'x'], 'a': true})"),
            r#"{"a":true,"b":[1,"x"]}"#
        );
        assert_eq!(s("[1, {'k': null}].encodeJson()"), r#"[1,{"k":null}]"#);
    }

    #[test]
    fn query_strings() {
        // The page's own examples: values are strings; a repeated name keeps its first value.
        assert_eq!(
            ok("queryString.decode('a=b&c=d')"),
            ok("{'a': 'b', 'c': 'd'}")
        );
        assert_eq!(
            ok("queryString.decode('a=1&b=x%20y&a=2')"),
            ok("{'a': '1', 'b': 'x y'}")
        );
        assert_eq!(ok("'q=a+b'.decodeQueryString().q"), ok("'a b'"));
        assert_eq!(
            ok("queryString.decode('q=hello')['q'] == 'hello'"),
            Value::Bool(true)
        );
        assert_eq!(ok("'a=%zz'.isQueryString()"), Value::Bool(false));
        assert_eq!(ok("'a=1&b'.isQueryString()"), Value::Bool(true));
        assert_eq!(
            ok("'not a query string'.isQueryString()"),
            Value::Bool(false)
        );
        assert_eq!(ok("'a=b\\nc'.isQueryString()"), Value::Bool(false));
        assert_eq!(
            s("queryString.encode({'b': 'x y', 'a': ['1', '&']})"),
            "a=1&a=%26&b=x+y"
        );
        assert_eq!(s("{'k': 'v'}.encodeQueryString()"), "k=v");
    }

    #[test]
    fn urls() {
        assert_eq!(s("url.escape('a b/c?d=é')"), "a+b%2Fc%3Fd%3D%C3%A9");
        assert_eq!(s("'a+b%2Fc'.unescapeUrl()"), "a b/c");
        assert_eq!(s("'x y'.escapeUrl()"), "x+y");
        assert!(eval("url.unescape('%zz')").is_err());
        let parsed = "url.parse('https://u:p@example.com:8443/a%20b/c?x=1&x=2#frag')";
        assert_eq!(s(&format!("{parsed}.scheme")), "https");
        assert_eq!(s(&format!("{parsed}.host")), "example.com");
        assert_eq!(s(&format!("{parsed}.authority")), "example.com:8443");
        assert_eq!(ok(&format!("{parsed}.port")), Value::Int(8443));
        assert_eq!(s(&format!("{parsed}.path")), "/a b/c");
        assert_eq!(s(&format!("{parsed}.raw_path")), "/a%20b/c");
        assert_eq!(s(&format!("{parsed}.query")), "x=1&x=2");
        assert_eq!(ok(&format!("{parsed}.query_params.x")), ok("['1', '2']"));
        assert_eq!(s(&format!("{parsed}.uri")), "/a%20b/c?x=1&x=2");
        assert_eq!(s(&format!("{parsed}.fragment")), "frag");
        assert_eq!(s(&format!("{parsed}.user_password")), "u:p");
        assert_eq!(
            ok("has(url.parse('https://a.example/').port)"),
            Value::Bool(false)
        );
        assert_eq!(s("url.parse('http://[::1]:80/').host"), "::1");
        assert!(eval("url.parse('http://a.example:99999/')").is_err());
        assert_eq!(s("'/just/a/path'.parseUrl().path"), "/just/a/path");
        assert_eq!(ok("'https://example.com'.isURL()"), Value::Bool(true));
        assert_eq!(ok("'example.com/path'.isURL()"), Value::Bool(false));
        assert_eq!(ok("'http://a b'.isURL()"), Value::Bool(false));
        assert!(eval("url.parse('http://host:port/')").is_err());
    }
}
