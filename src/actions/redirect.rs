//! `redirect`: rewrite the request URL with a regex and answer with a 3xx `Location` to it.

use crate::exchange::Context;
use super::spec::{ActionSpec, ActionType, HEADERS, REQ};
use super::ConfigShape::{Any, Interpolated, Fields};
use crate::actions::config::Config;
use crate::actions::config::BAD_TEMPLATE;
use crate::actions::Cx;
use crate::error::GatewayError;
use crate::exchange::Exchange;
use crate::exchange::Step;
use crate::expr::{
    replace, Pattern, PatternError, Replaced, Replacement, ResolveError, Template, TooLong,
};
use crate::http::Headers;
use crate::http::Synthetic;
use crate::source::Node;
use regex::Regex;
use std::sync::Arc;

/// ngrok's code for a `from` that is not a regex.
const BAD_REGEX: Option<&str> = Some("ERR_NGROK_2261");

#[derive(Debug)]
pub struct Redirect {
    url: UrlReplace,
    status_code: u16,
    headers: Vec<(String, Template)>,
}


/// `actions.ngrok.<action>.{url, matches}`.
pub(super) fn results<'a>(url: &str, matches: &[String]) -> Vec<(&'a str, cel::Value)> {
    let matches: Vec<cel::Value> = matches
        .iter()
        .map(|m| cel::Value::from(m.as_str()))
        .collect();
    vec![
        ("url", cel::Value::from(url)),
        ("matches", cel::Value::List(std::sync::Arc::new(matches))),
    ]
}

/// The `from` / `to` pair of `redirect` and `url-rewrite`, applied to the whole request URL.
#[derive(Debug)]
pub(super) struct UrlReplace {
    /// No `from`: the whole URL is the match.
    from: Option<Pattern>,
    to: Replacement,
    /// `to` is written as a network path (`//host/...`): only then may a result starting with
    /// `//` leave this host. A path the policy wrote with `/` stays one whatever the request
    /// puts after it (`/${next}` with `next=/evil.example` is not an open redirect).
    network_path: bool,
}

thread_local! {
    static WHOLE: Arc<Regex> = Arc::new(Regex::new(r"(?s)\A.*\z").expect("a valid regex"));
}

impl ActionType for Redirect {
    const SPEC: ActionSpec = ActionSpec {
        name: "redirect",
        phases: &[REQ],
        terminating: false,
        results: Some("redirect"),
        config: Fields(&[
            ("from", Interpolated),
            ("to", Interpolated),
            ("status_code", Any),
            ("headers", HEADERS),
        ]),
    };

    fn compile(config: Option<&Node>, path: String, cx: &mut Cx<'_>) -> Option<Redirect> {
        let mut c = Config::new(config, path, cx.diags);
        let url = UrlReplace::compile(&mut c);
        let status_code = c.status("status_code", 302, (300, 399));
        let headers = super::add_headers::header_templates(&mut c, 0, 10);
        c.finish();
        Some(Redirect {
            url: url?,
            status_code,
            headers: headers?,
        })
    }

    async fn apply<C: Context>(&self, ex: &mut Exchange, _: &C) -> Result<Step, GatewayError> {
        let original = ex.req.url();
        let replaced = match self.url.apply(ex, "redirect", &original) {
            Ok(r) => r,
            Err(e) => {
                ex.set_outcome("redirect", Vec::new(), Some(&e));
                return Err(e);
            }
        };
        let (location, matches) = match replaced {
            Some(r) => (encode_url(&r.text), r.matches),
            None => (original.clone(), Vec::new()),
        };
        ex.set_outcome("redirect", results(&location, &matches), None);
        // An unchanged URL is no redirect: the chain goes on.
        if location == original {
            return Ok(Step::Continue);
        }
        let mut headers = Headers::new();
        for (name, value) in &self.headers {
            let v = ex.render(value, "redirect", "headers")?;
            headers.append(name, &v);
        }
        headers.set("location", &location);
        Ok(Step::Respond(Synthetic {
            status: self.status_code,
            headers,
            body: String::new(),
        }))
    }
}

impl UrlReplace {
    pub(super) fn compile(c: &mut Config<'_, '_>) -> Option<UrlReplace> {
        let mut ok = true;
        let from = match c.string("from") {
            Some((node, text)) => match Pattern::compile(&text) {
                Ok(p) => Some(p),
                Err(PatternError::Template(e)) => {
                    let msg = format!("invalid CEL interpolation: {}", e.0);
                    c.error_at(BAD_TEMPLATE, "from", node, msg);
                    ok = false;
                    None
                }
                Err(PatternError::Regex(e)) => {
                    let msg = format!("`from` is not a valid regular expression: {e}");
                    c.error_at(BAD_REGEX, "from", node, one_line(&msg));
                    ok = false;
                    None
                }
            },
            None => None,
        };
        let mut network_path = false;
        let to = match c.string("to") {
            Some((node, text)) => match Replacement::compile(&text, from.as_ref()) {
                Ok(t) => {
                    network_path = text.starts_with("//");
                    Some(t)
                }
                Err(e) => {
                    let msg = format!("invalid CEL interpolation: {}", e.0);
                    c.error_at(BAD_TEMPLATE, "to", node, msg);
                    None
                }
            },
            None => {
                c.missing("to");
                None
            }
        };
        let to = to?;
        ok.then_some(UrlReplace {
            from,
            to,
            network_path,
        })
    }

    /// The URL with every match of `from` replaced (and made absolute when the result is a
    /// path); `None` when `from` does not match.
    pub(super) fn apply(
        &self,
        ex: &mut Exchange,
        action: &'static str,
        url: &str,
    ) -> Result<Option<Replaced>, GatewayError> {
        let to = self
            .to
            .render(ex.scope())
            .map_err(|error| GatewayError::Interpolation {
                action,
                field: "to",
                error,
            })?;
        let regex = match &self.from {
            Some(p) => p.resolve(ex.scope()).map_err(|e| match e {
                ResolveError::Interpolation(error) => GatewayError::Interpolation {
                    action,
                    field: "from",
                    error,
                },
                ResolveError::Regex(message) => GatewayError::BadRegex {
                    action,
                    field: "from",
                    message: one_line(&message),
                },
            })?,
            None => WHOLE.with(Arc::clone),
        };
        let replaced = replace(&regex, url, &to, true).map_err(|TooLong { limit }| {
            GatewayError::BadRewrite {
                action,
                url: format!("a URL longer than {limit} bytes"),
            }
        })?;
        Ok(replaced.map(|mut r| {
            r.text = absolute(r.text, &ex.req.scheme, &ex.req.authority(), self.network_path);
            r
        }))
    }
}

/// The replaced URL with what it lacks taken from the request, as a path resolves against the
/// page it is on: a path (`/api/v2/x`) gets the request's `scheme://authority`, and a URL whose
/// authority the match consumed (`https:///products.php`, from ngrok's own url-rewrite example
/// `from: ${req.url.authority}/products/?([.*]+)?`) gets the request's authority back. A
/// network path (`//host/x`) is kept only when `to` was written as one.
fn absolute(text: String, scheme: &str, authority: &str, network_path: bool) -> String {
    if text.starts_with("//") && network_path {
        return text;
    }
    if text.starts_with('/') {
        return format!("{scheme}://{authority}{text}");
    }
    match text.split_once(":///") {
        Some((s, path)) if is_scheme(s) => format!("{s}://{authority}/{path}"),
        _ => text,
    }
}

/// RFC 3986's `scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )`.
fn is_scheme(s: &str) -> bool {
    s.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Percent-encodes what may not appear in a URL as written (spaces, controls, non-ASCII, and
/// `"<>\^`{|}`), leaving its delimiters and existing escapes alone: `San Francisco` becomes
/// `San%20Francisco`, as in ngrok's `Location`.
pub(super) fn encode_url(url: &str) -> String {
    let mut out = String::with_capacity(url.len());
    for b in url.bytes() {
        if b.is_ascii_graphic() && !b"\"<>\\^`{|}".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{absolute, encode_url};

    #[test]
    fn what_a_replaced_url_lacks_comes_from_the_request() {
        let abs = |t: &str, network_path| absolute(t.into(), "https", "a.example:8443", network_path);
        assert_eq!(abs("/x?q=1", false), "https://a.example:8443/x?q=1");
        // ngrok's url-rewrite example: the interpolated authority consumed the host.
        assert_eq!(
            abs("https:///products.php?query=123", false),
            "https://a.example:8443/products.php?query=123"
        );
        assert_eq!(abs("http:///", false), "http://a.example:8443/");
        assert_eq!(abs("https://b.example/x", false), "https://b.example/x");
        // A network path only when `to` was written as one; otherwise it stays on this host.
        assert_eq!(abs("//c.example/x", true), "//c.example/x");
        assert_eq!(abs("//c.example/x", false), "https://a.example:8443//c.example/x");
        // Not a scheme before `:///`: left alone (and refused later where a URL is needed).
        assert_eq!(abs("a b:///x", false), "a b:///x");
        assert_eq!(abs("not a url", false), "not a url");
    }

    #[test]
    fn encoding() {
        assert_eq!(
            encode_url("https://a.example/city/San Francisco?q=a b&x=%20"),
            "https://a.example/city/San%20Francisco?q=a%20b&x=%20"
        );
        assert_eq!(
            encode_url("https://a.example/é"),
            "https://a.example/%C3%A9"
        );
    }
}
