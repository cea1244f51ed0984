//! What changes on the way through a proxy: hop-by-hop headers and the `X-Forwarded-*` family.

use crate::http::{Headers, RequestHead};

/// Connection-scoped headers (RFC 9110 §7.6.1) that must not be forwarded.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

fn is_hop_by_hop(name: &str, connection_listed: &[String]) -> bool {
    HOP_BY_HOP.contains(&name) || connection_listed.iter().any(|c| c == name)
}

fn connection_listed(headers: &Headers) -> Vec<String> {
    headers
        .get_all("connection")
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .collect()
}

/// The headers sent to the origin: the client's, minus hop-by-hop ones, `Host` (the fetch URL
/// sets it) and Cloudflare's own `cf-*` (a client could forge them); plus `X-Forwarded-For`
/// (appended with the platform's client address), `-Proto` and `-Host` (set, never trusted).
pub fn forward_headers(req: &RequestHead) -> Headers {
    let listed = connection_listed(&req.headers);
    let mut out = Headers::new();
    for (name, value) in req.headers.iter() {
        let skip = is_hop_by_hop(name, &listed)
            || name == "host"
            || name.starts_with("cf-")
            || name == "content-length"
            || name == "x-forwarded-proto"
            || name == "x-forwarded-host";
        if !skip {
            out.append(name, value);
        }
    }
    let client = req.client_ip.to_string();
    let xff = match req.headers.get("x-forwarded-for") {
        Some(prior) if !prior.trim().is_empty() => format!("{prior}, {client}"),
        _ => client,
    };
    out.set("x-forwarded-for", &xff);
    out.set("x-forwarded-proto", &req.scheme);
    out.set("x-forwarded-host", &req.authority());
    out
}

/// Cleans an origin's response: hop-by-hop headers go, and `ngrok-error-code`, which only the
/// gateway may set (as in ngrok), is dropped.
pub fn clean_response_headers(headers: &mut Headers) {
    let listed = connection_listed(headers);
    let names: Vec<String> = headers
        .iter()
        .map(|(n, _)| n.to_string())
        .filter(|n| is_hop_by_hop(n, &listed) || n == "ngrok-error-code")
        .collect();
    for n in names {
        headers.remove(&n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(headers: &[(&str, &str)]) -> RequestHead {
        RequestHead::from_url(
            "GET",
            "https://api.acme.test/x",
            headers.iter().copied().collect(),
            "203.0.113.7".parse().unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn forwarded_headers() {
        let r = req(&[
            ("Host", "api.acme.test"),
            ("Connection", "keep-alive, X-Secret-Hop"),
            ("X-Secret-Hop", "1"),
            ("Keep-Alive", "timeout=5"),
            ("CF-Connecting-IP", "1.2.3.4"),
            ("X-Forwarded-For", "10.0.0.1"),
            ("X-Forwarded-Host", "evil.example"),
            ("Accept", "application/json"),
        ]);
        let h = forward_headers(&r);
        assert_eq!(h.get("x-forwarded-for"), Some("10.0.0.1, 203.0.113.7"));
        assert_eq!(h.get("x-forwarded-proto"), Some("https"));
        assert_eq!(h.get("x-forwarded-host"), Some("api.acme.test"));
        assert_eq!(h.get("accept"), Some("application/json"));
        for gone in [
            "host",
            "connection",
            "x-secret-hop",
            "keep-alive",
            "cf-connecting-ip",
        ] {
            assert!(!h.contains(gone), "{gone} must not be forwarded");
        }
    }

    #[test]
    fn response_cleaning() {
        let mut h: Headers = [
            ("Transfer-Encoding", "chunked"),
            ("ngrok-error-code", "ERR_NGROK_1"),
            ("Content-Type", "text/plain"),
        ]
        .into_iter()
        .collect();
        clean_response_headers(&mut h);
        assert_eq!(h.len(), 1);
        assert_eq!(h.get("content-type"), Some("text/plain"));
    }
}
