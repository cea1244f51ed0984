//! Platform-free HTTP message heads. Bodies never enter the core: the shell streams them.

use std::net::IpAddr;

/// Header list in arrival order; names are stored lower-case (HTTP names are case-insensitive).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Headers(Vec<(String, String)>);

impl Headers {
    pub fn new() -> Self {
        Headers(Vec::new())
    }

    /// Appends a value (a repeated header keeps every value).
    pub fn append(&mut self, name: &str, value: &str) {
        self.0.push((name.to_ascii_lowercase(), value.to_string()));
    }

    /// Replaces all values of `name` with one value.
    pub fn set(&mut self, name: &str, value: &str) {
        self.remove(name);
        self.append(name, value);
    }

    pub fn remove(&mut self, name: &str) -> bool {
        let before = self.0.len();
        self.0.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        before != self.0.len()
    }

    /// Every value of `name`, in order.
    pub fn get_all<'a, 'n>(&'a self, name: &'n str) -> impl Iterator<Item = &'a str> + use<'a, 'n> {
        self.0
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.get_all(name).next()
    }

    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<'a> FromIterator<(&'a str, &'a str)> for Headers {
    fn from_iter<T: IntoIterator<Item = (&'a str, &'a str)>>(iter: T) -> Self {
        let mut h = Headers::new();
        for (n, v) in iter {
            h.append(n, v);
        }
        h
    }
}

/// The request as the gateway received it (and as actions change it before forwarding).
#[derive(Clone, Debug, PartialEq)]
pub struct RequestHead {
    pub method: String,
    /// `http` or `https`, as the client reached the gateway.
    pub scheme: String,
    /// The Host the client asked for (no port).
    pub host: String,
    pub port: Option<u16>,
    /// The path, percent-encoded as received, starting with `/`.
    pub path: String,
    /// The raw query string without `?` (empty when none).
    pub query: String,
    pub headers: Headers,
    /// The client address as the platform reports it (`CF-Connecting-IP`), never `X-Forwarded-For`.
    pub client_ip: IpAddr,
    /// What the platform says about the connection (`request.cf`): shared, never changed.
    pub conn: std::sync::Arc<crate::conn::ConnFacts>,
}

impl RequestHead {
    /// Builds a head from an absolute URL (`https://host:port/path?query`), as the shell receives it.
    pub fn from_url(method: &str, url: &str, headers: Headers, client_ip: IpAddr) -> Option<Self> {
        let (scheme, rest) = url.split_once("://")?;
        let (authority, path_query) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, "/"),
        };
        let (host, port) = split_host_port(authority)?;
        let (path, query) = match path_query.split_once('?') {
            Some((p, q)) => (p, q),
            None => (path_query, ""),
        };
        let path = path.split('#').next().unwrap_or("/");
        let query = query.split('#').next().unwrap_or("");
        Some(RequestHead {
            method: method.to_string(),
            scheme: scheme.to_ascii_lowercase(),
            host,
            port,
            path: path.to_string(),
            query: query.to_string(),
            headers,
            client_ip,
            conn: Default::default(),
        })
    }

    /// Path plus `?query` when there is one.
    pub fn uri(&self) -> String {
        if self.query.is_empty() {
            self.path.clone()
        } else {
            format!("{}?{}", self.path, self.query)
        }
    }

    /// `host` or `host:port` when the port is not the scheme's default.
    pub fn authority(&self) -> String {
        match self.port {
            Some(p) if Some(p) != default_port(&self.scheme) => format_host_port(&self.host, p),
            _ => self.host.clone(),
        }
    }

    /// The full URL, normalised (`scheme://authority/path?query`).
    pub fn url(&self) -> String {
        format!("{}://{}{}", self.scheme, self.authority(), self.uri())
    }
}

/// A response head; the body travels beside it (see `gateway::Body`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResponseHead {
    pub status: u16,
    pub headers: Headers,
}

pub fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

fn format_host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Splits `host[:port]` (IPv6 in brackets) into a lower-case host and an optional port.
pub fn split_host_port(authority: &str) -> Option<(String, Option<u16>)> {
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p.parse().ok()?),
            None if after.is_empty() => None,
            None => return None,
        };
        return Some((host.to_ascii_lowercase(), port));
    }
    match authority.rsplit_once(':') {
        Some((host, port)) => Some((host.to_ascii_lowercase(), Some(port.parse().ok()?))),
        None => Some((authority.to_ascii_lowercase(), None)),
    }
}

/// Splits a query string into decoded `(name, value)` pairs (`+` is a space, as in forms).
pub fn query_pairs(query: &str) -> impl Iterator<Item = (String, String)> + '_ {
    query.split('&').filter(|s| !s.is_empty()).map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(k, true), percent_decode(v, true))
    })
}

/// Decodes `%XX` escapes (and `+` when `plus_is_space`); invalid escapes stay as written.
pub fn percent_decode(s: &str, plus_is_space: bool) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = s
                    .get(i + 1..i + 3)
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b'+' if plus_is_space => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A response made by the gateway itself (custom-response, deny, errors).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Synthetic {
    pub status: u16,
    pub headers: Headers,
    pub body: String,
}

/// A content coding of `algorithms` (RFC 9110 §8.4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Coding {
    Gzip,
    Deflate,
    Br,
    /// LZW (`compress`): accepted in a policy, never produced (no runtime encoder; no
    /// client in use asks for it).
    Compress,
}

impl Coding {
    pub fn name(self) -> &'static str {
        match self {
            Coding::Gzip => "gzip",
            Coding::Deflate => "deflate",
            Coding::Br => "br",
            Coding::Compress => "compress",
        }
    }

    pub fn parse(token: &str) -> Option<Coding> {
        match token.to_ascii_lowercase().as_str() {
            "gzip" | "x-gzip" => Some(Coding::Gzip),
            "deflate" => Some(Coding::Deflate),
            "br" => Some(Coding::Br),
            "compress" | "x-compress" => Some(Coding::Compress),
            _ => None,
        }
    }

    /// Whether the gateway can produce this coding.
    pub fn produced(self) -> bool {
        !matches!(self, Coding::Compress)
    }
}

/// The largest request body an action may read (signature checks, body tokens): 8 MiB.
pub const MAX_BUFFERED_BODY: usize = 8 << 20;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_from_url() {
        let h = RequestHead::from_url(
            "GET",
            "https://API.acme.test:8443/a/b?x=1&y=2",
            Headers::new(),
            "127.0.0.1".parse().unwrap(),
        )
        .unwrap();
        assert_eq!(h.host, "api.acme.test");
        assert_eq!(h.port, Some(8443));
        assert_eq!(h.path, "/a/b");
        assert_eq!(h.query, "x=1&y=2");
        assert_eq!(h.url(), "https://api.acme.test:8443/a/b?x=1&y=2");
        assert_eq!(h.uri(), "/a/b?x=1&y=2");
    }

    #[test]
    fn headers_are_case_insensitive_and_keep_repeats() {
        let mut h = Headers::new();
        h.append("X-A", "1");
        h.append("x-a", "2");
        assert_eq!(h.get_all("X-a").collect::<Vec<_>>(), vec!["1", "2"]);
        h.set("X-A", "3");
        assert_eq!(h.get_all("x-a").collect::<Vec<_>>(), vec!["3"]);
        assert!(h.remove("X-A"));
        assert!(!h.contains("x-a"));
    }

    #[test]
    fn host_port_forms() {
        assert_eq!(split_host_port("a.b"), Some(("a.b".into(), None)));
        assert_eq!(split_host_port("a.b:80"), Some(("a.b".into(), Some(80))));
        assert_eq!(split_host_port("[::1]:8"), Some(("::1".into(), Some(8))));
        assert_eq!(split_host_port("u@a.b"), None);
        assert_eq!(split_host_port("a.b:x"), None);
    }
}
