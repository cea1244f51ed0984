//! Endpoint URLs: the key an internal endpoint is found by, and upstream origins.

use crate::http::{default_port, split_host_port};

/// The lookup key of an internal endpoint URL: `scheme://host:port`, lower-case, default port
/// made explicit, so `https://a.internal` and `https://A.internal:443` name the same pool.
pub fn internal_key(url: &str) -> Result<String, String> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| format!("`{url}` is not a URL (expected scheme://host)"))?;
    let scheme = scheme.to_ascii_lowercase();
    let port_default = match scheme.as_str() {
        "http" | "https" => default_port(&scheme),
        "tcp" | "tls" => {
            return Err(format!(
                "`{url}`: only http and https internal endpoints can be reached from HTTP traffic"
            ))
        }
        _ => return Err(format!("`{url}`: unsupported scheme `{scheme}`")),
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let (host, port) =
        split_host_port(authority).ok_or_else(|| format!("`{url}` has an invalid host or port"))?;
    if !host.ends_with(".internal") || host.len() <= ".internal".len() {
        return Err(format!(
            "`{url}`: an internal endpoint's host must end in `.internal`"
        ));
    }
    if !host
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'*')
    {
        return Err(format!("`{url}` has an invalid host"));
    }
    let port = port.or(port_default).unwrap_or(443);
    Ok(format!("{scheme}://{host}:{port}"))
}

/// Where an internal endpoint's traffic goes (`spec.upstream.url`): an HTTP origin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    pub scheme: String,
    pub host: String,
    pub port: u16,
}

impl Origin {
    /// Parses the operator's upstream forms: `http(s)://host[:port]`, `host[:port]` (http), or a
    /// bare port (`8080` = `http://localhost:8080`).
    pub fn parse(url: &str) -> Result<Origin, String> {
        let url = url.trim();
        if !url.is_empty() && url.bytes().all(|b| b.is_ascii_digit()) {
            let port = url.parse().map_err(|_| format!("invalid port `{url}`"))?;
            return Ok(Origin {
                scheme: "http".into(),
                host: "localhost".into(),
                port,
            });
        }
        let (scheme, rest) = match url.split_once("://") {
            Some((s, r)) => (s.to_ascii_lowercase(), r),
            None => ("http".to_string(), url),
        };
        if scheme != "http" && scheme != "https" {
            return Err(format!(
                "upstream `{url}`: only http and https upstreams are supported"
            ));
        }
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        if rest.len() > authority.len() && rest[authority.len()..] != *"/" {
            return Err(format!(
                "upstream `{url}` must be an origin, without a path"
            ));
        }
        let (host, port) = split_host_port(authority)
            .ok_or_else(|| format!("upstream `{url}` has an invalid host or port"))?;
        let port = port.or(default_port(&scheme)).unwrap_or(80);
        Ok(Origin { scheme, host, port })
    }

    /// `scheme://host:port` with the path and query appended.
    pub fn url_for(&self, uri: &str) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        format!("{}://{}:{}{}", self.scheme, host, self.port, uri)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_keys() {
        assert_eq!(
            internal_key("https://Catalog-EKS.internal").unwrap(),
            "https://catalog-eks.internal:443"
        );
        assert_eq!(
            internal_key("http://a.internal:8080/x").unwrap(),
            "http://a.internal:8080"
        );
        assert!(internal_key("https://evil.com").is_err());
        assert!(internal_key("https://evil.com/x?.internal").is_err());
        assert!(internal_key("https://a b.internal").is_err());
        assert!(internal_key("https://.internal").is_err());
        assert!(internal_key("tcp://db.internal:5432").is_err());
        assert!(internal_key("https://user@a.internal").is_err());
        assert!(internal_key("catalog").is_err());
    }

    #[test]
    fn origins() {
        assert_eq!(
            Origin::parse("8080").unwrap().url_for("/a"),
            "http://localhost:8080/a"
        );
        assert_eq!(
            Origin::parse("http://catalog-svc.default:80").unwrap().port,
            80
        );
        assert_eq!(
            Origin::parse("https://t.example.com").unwrap().url_for("/"),
            "https://t.example.com:443/"
        );
        assert_eq!(Origin::parse("svc.ns").unwrap().scheme, "http");
        assert!(Origin::parse("ftp://x").is_err());
        assert!(Origin::parse("http://x/y").is_err());
    }
}
