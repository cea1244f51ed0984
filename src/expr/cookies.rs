//! Header values with structure: `Cookie`, `Set-Cookie` and `Content-Type`, parsed into the
//! shapes ngrok documents for `req.cookies`, `res.cookies` and `*.content_type`.

use super::hybrid::TEXT;
use super::map;
use crate::http::Headers;
use cel::objects::{Key, Map};
use cel::Value;
use std::collections::HashMap;
use std::sync::Arc;

/// A cookie value, surrounding double quotes removed (as Go's `net/http` reads them).
fn unquote(v: &str) -> &str {
    let v = v.trim();
    v.strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(v)
}

/// `Cookie: a=1; b=2; a=3` → `(name, value)` in order, from every `Cookie` header.
pub fn request_cookies(headers: &Headers) -> Vec<(String, String)> {
    headers
        .get_all("cookie")
        .flat_map(|h| h.split(';'))
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            let k = k.trim();
            (!k.is_empty()).then(|| (k.to_string(), unquote(v).to_string()))
        })
        .collect()
}

/// `req.cookies`: `map[name][]cookie`, in Cookie-header order.
pub fn request_cookies_value(headers: &Headers) -> Value {
    group(
        request_cookies(headers)
            .into_iter()
            .map(|(name, value)| (name.clone(), request_cookie_value(name, value))),
    )
}

/// A request cookie: ngrok's cookie is Go's `http.Cookie`, so a request cookie has every field
/// a response cookie has, at its zero value (`getReqCookie('s').secure` is documented).
pub fn request_cookie_value(name: String, value: String) -> Value {
    set_cookie_value(SetCookie {
        name,
        value,
        ..SetCookie::default()
    })
}

/// `getReqCookie(name)`: the first cookie of that name in Cookie-header order.
pub fn find_request_cookie(headers: &Headers, name: &str) -> Option<Value> {
    request_cookies(headers)
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(n, v)| request_cookie_value(n, v))
}

/// One `Set-Cookie` header, parsed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SetCookie {
    pub name: String,
    pub value: String,
    pub domain: String,
    pub path: String,
    /// Unix seconds.
    pub expires: Option<i64>,
    pub max_age: Option<i64>,
    pub secure: bool,
    pub http_only: bool,
    /// `Strict`, `Lax`, `None` or empty.
    pub same_site: String,
    /// Attributes not understood, by name as written (`Partitioned`, `Priority=High`).
    pub unparsed: Vec<(String, String)>,
}

pub fn parse_set_cookie(header: &str) -> Option<SetCookie> {
    let mut parts = header.split(';');
    let (name, value) = parts.next()?.split_once('=')?;
    let name = name.trim();
    if name.is_empty() {
        return None;
    }
    let mut c = SetCookie {
        name: name.to_string(),
        value: unquote(value).to_string(),
        ..SetCookie::default()
    };
    for attr in parts {
        let (k, v) = attr.split_once('=').unwrap_or((attr, ""));
        let (k, v) = (k.trim(), v.trim());
        match k.to_ascii_lowercase().as_str() {
            "" => {}
            "domain" => c.domain = v.trim_start_matches('.').to_ascii_lowercase(),
            "path" => c.path = v.to_string(),
            "expires" => c.expires = http_date(v),
            // A Max-Age that is not a number is ignored (RFC 6265 §5.2.2).
            "max-age" => c.max_age = v.parse().ok().or(c.max_age),
            "secure" => c.secure = true,
            "httponly" => c.http_only = true,
            "samesite" => {
                c.same_site = match v.to_ascii_lowercase().as_str() {
                    "strict" => "Strict",
                    "lax" => "Lax",
                    "none" => "None",
                    _ => "",
                }
                .to_string()
            }
            _ => c.unparsed.push((k.to_string(), v.to_string())),
        }
    }
    Some(c)
}

/// `Wed, 21 Oct 2015 07:28:00 GMT` (also the old `21-Oct-2015` form) to Unix seconds.
fn http_date(s: &str) -> Option<i64> {
    let s = s.replace('-', " ");
    chrono::DateTime::parse_from_rfc2822(&s.replace("GMT", "+0000"))
        .ok()
        .map(|t| t.timestamp())
}

/// The response's cookies, same-name cookies longest path first (header order otherwise).
pub fn response_cookies(headers: &Headers) -> Vec<SetCookie> {
    let mut cookies: Vec<SetCookie> = headers
        .get_all("set-cookie")
        .filter_map(parse_set_cookie)
        .collect();
    // Stable: equal paths keep header order.
    cookies.sort_by_key(|c| std::cmp::Reverse(c.path.len()));
    cookies
}

/// `res.cookies`: `map[name][]cookie`, same-name cookies longest path first.
pub fn response_cookies_value(headers: &Headers) -> Value {
    group(
        response_cookies(headers)
            .into_iter()
            .map(|c| (c.name.clone(), set_cookie_value(c))),
    )
}

/// `getResCookie(name)`: of the cookies with that name, the one with the longest path.
pub fn find_response_cookie(headers: &Headers, name: &str) -> Option<Value> {
    response_cookies(headers)
        .into_iter()
        .find(|c| c.name == name)
        .map(set_cookie_value)
}

/// One cookie as ngrok's cookie object.
fn set_cookie_value(c: SetCookie) -> Value {
    let mut fields = vec![
        ("name", Value::from(c.name)),
        ("value", Value::from(c.value)),
        ("domain", Value::from(c.domain)),
        ("path", Value::from(c.path)),
        ("secure", Value::Bool(c.secure)),
        ("http_only", Value::Bool(c.http_only)),
        ("same_site", Value::from(c.same_site)),
    ];
    if let Some(t) = c.expires.and_then(timestamp) {
        fields.push(("expires", t));
    }
    if let Some(s) = c.max_age {
        // Clamped: `Duration::seconds` panics past ±i64::MAX/1000, and the upstream's
        // headers are not trusted.
        let secs = s.clamp(-(i64::MAX / 1000), i64::MAX / 1000);
        let d = chrono::Duration::try_seconds(secs).unwrap_or(chrono::Duration::MAX);
        fields.push(("max_age", Value::Duration(d)));
    }
    let unparsed: Vec<(&str, Value)> = c
        .unparsed
        .iter()
        .map(|(k, v)| (k.as_str(), Value::from(v.as_str())))
        .collect();
    fields.push(("unparsed_attributes", map(unparsed)));
    map(fields)
}

/// A Unix time as a CEL timestamp (UTC).
pub fn timestamp(secs: i64) -> Option<Value> {
    chrono::DateTime::from_timestamp(secs, 0).map(|t| Value::Timestamp(t.fixed_offset()))
}

/// A Unix time in milliseconds as a CEL timestamp (UTC).
pub fn timestamp_ms(ms: u64) -> Option<Value> {
    let ms = i64::try_from(ms).ok()?;
    chrono::DateTime::from_timestamp_millis(ms).map(|t| Value::Timestamp(t.fixed_offset()))
}

fn group(items: impl Iterator<Item = (String, Value)>) -> Value {
    let mut m: HashMap<Key, Vec<Value>> = HashMap::new();
    for (name, v) in items {
        m.entry(Key::String(Arc::new(name))).or_default().push(v);
    }
    let m = m
        .into_iter()
        .map(|(k, v)| (k, Value::List(Arc::new(v))))
        .collect();
    Value::Map(Map { map: Arc::new(m) })
}

/// `text/html; charset="UTF-8"` → (`text/html`, {charset: UTF-8}); type and names lower-case.
pub fn parse_content_type(raw: &str) -> (String, Vec<(String, String)>) {
    let mut parts = raw.split(';');
    let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
    let params = parts
        .filter_map(|p| {
            let (k, v) = p.split_once('=')?;
            let k = k.trim().to_ascii_lowercase();
            (!k.is_empty()).then(|| (k, unquote(v).to_string()))
        })
        .collect();
    (media, params)
}

/// `*.content_type`: the media type as the string, `.parameters` and `.raw` as fields.
/// Absent (`None`) when the message has no Content-Type.
pub fn content_type_value(headers: &Headers) -> Option<Value> {
    let raw = headers.get("content-type")?;
    let (media, params) = parse_content_type(raw);
    let params: Vec<(&str, Value)> = params
        .iter()
        .map(|(k, v)| (k.as_str(), Value::from(v.as_str())))
        .collect();
    Some(map(vec![
        (TEXT, Value::from(media)),
        ("parameters", map(params)),
        ("raw", Value::from(raw)),
    ]))
}

/// `*.content_encoding`: the codings of `Content-Encoding`, in order, lower-case.
pub fn content_encoding_value(headers: &Headers) -> Value {
    Value::List(Arc::new(
        headers
            .get_all("content-encoding")
            .flat_map(|h| h.split(','))
            .map(|c| c.trim().to_ascii_lowercase())
            .filter(|c| !c.is_empty())
            .map(Value::from)
            .collect(),
    ))
}

/// `*.content_length`: absent unless the header holds a number.
pub fn content_length(headers: &Headers) -> Option<i64> {
    headers.get("content-length")?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_cookies_keep_order_and_repeats() {
        let h: Headers = [("Cookie", "a=1; b=\"two\""), ("cookie", "a=3;;=x; c")]
            .into_iter()
            .collect();
        assert_eq!(
            request_cookies(&h),
            vec![
                ("a".into(), "1".into()),
                ("b".into(), "two".into()),
                ("a".into(), "3".into())
            ]
        );
    }

    #[test]
    fn set_cookie_attributes() {
        let c = parse_set_cookie(
            "sid=abc; Domain=.Acme.Example; Path=/app; Expires=Wed, 21 Oct 2015 07:28:00 GMT; \
             Max-Age=3600; Secure; HttpOnly; SameSite=lax; Partitioned; Priority=High",
        )
        .unwrap();
        assert_eq!(c.domain, "acme.example");
        assert_eq!(c.path, "/app");
        assert_eq!(c.expires, Some(1445412480));
        assert_eq!(c.max_age, Some(3600));
        assert!(c.secure && c.http_only);
        assert_eq!(c.same_site, "Lax");
        assert_eq!(
            c.unparsed,
            vec![
                ("Partitioned".into(), "".into()),
                ("Priority".into(), "High".into())
            ]
        );
        let old =
            parse_set_cookie("a=b; expires=Thu, 01-Jan-2037 00:00:00 GMT; max-age=x").unwrap();
        assert_eq!(old.expires, Some(2114380800));
        assert_eq!(old.max_age, None);
        assert!(parse_set_cookie("novalue").is_none());
        assert!(parse_set_cookie("=v").is_none());
    }

    #[test]
    fn response_cookies_longest_path_first() {
        let h: Headers = [
            ("set-cookie", "s=root; Path=/"),
            ("set-cookie", "s=deep; Path=/a/b"),
            ("set-cookie", "t=1"),
        ]
        .into_iter()
        .collect();
        let Value::Map(m) = response_cookies_value(&h) else {
            panic!()
        };
        let Some(Value::List(s)) = m.map.get(&Key::from("s")) else {
            panic!()
        };
        let Value::Map(first) = &s[0] else { panic!() };
        assert_eq!(
            first.map.get(&Key::from("value")),
            Some(&Value::from("deep"))
        );
    }

    #[test]
    fn content_type() {
        let (media, params) = parse_content_type("Text/HTML; Charset=\"UTF-8\"; q");
        assert_eq!(media, "text/html");
        assert_eq!(params, vec![("charset".into(), "UTF-8".into())]);
        let h: Headers = [("content-encoding", "gzip, BR")].into_iter().collect();
        assert_eq!(
            content_encoding_value(&h),
            Value::List(Arc::new(vec![Value::from("gzip"), Value::from("br")]))
        );
        assert_eq!(content_length(&h), None);
        assert!(content_type_value(&h).is_none());
    }
}

#[cfg(test)]
mod hostile {
    use super::*;

    /// A `Max-Age` beyond what a duration holds (chrono panics past ±i64::MAX/1000 seconds)
    /// is read as the largest one, never a panic: the upstream's headers are not trusted.
    #[test]
    fn huge_max_age_never_panics() {
        for age in [
            "9223372036854775807",
            "-9223372036854775808",
            "9223372036854776",
        ] {
            let v = format!("a=b; Max-Age={age}");
            let h: Headers = [("set-cookie", v.as_str())].into_iter().collect();
            let Value::Map(m) = response_cookies_value(&h) else {
                panic!()
            };
            let Some(Value::List(a)) = m.map.get(&Key::from("a")) else {
                panic!()
            };
            let Value::Map(c) = &a[0] else { panic!() };
            assert!(matches!(
                c.map.get(&Key::from("max_age")),
                Some(Value::Duration(_))
            ));
        }
    }
}
