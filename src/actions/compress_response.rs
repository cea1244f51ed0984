//! `compress-response`: compress the response body with the best coding the client accepts
//! (`Accept-Encoding`, q-values). The core decides here; the shell compresses as the body
//! streams out (workerd itself for gzip and br, its `CompressionStream` for deflate).

use crate::error::GatewayError;
use crate::exchange::Context;
use super::spec::{ActionSpec, ActionType, RES};
use super::ConfigShape::{Any, Fields};
use crate::actions::config::Config;
use crate::actions::config::BAD_CONFIG;
use crate::actions::Cx;
use crate::exchange::Exchange;
use crate::exchange::Step;
use crate::http::Coding;
use crate::source::{Node, Value};
use cel::Value as Cel;

/// ngrok's default `algorithms`, in its order (the order breaks q-value ties).
const DEFAULT: [Coding; 4] = [Coding::Gzip, Coding::Deflate, Coding::Br, Coding::Compress];

#[derive(Debug)]
pub struct CompressResponse {
    /// The configured codings the gateway can produce, in configuration order.
    algorithms: Vec<Coding>,
}

/// Why a response is sent as it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Skip {
    /// The upstream (or an earlier action) encoded it already.
    AlreadyCompressed,
    /// No `Accept-Encoding`, or nothing acceptable among `algorithms`.
    NotAccepted,
    /// A HEAD request, a status without a body (1xx, 204, 304), or `Content-Length: 0`.
    NoBody,
    /// `Cache-Control: no-transform` (RFC 9111 §5.2.2.6).
    NoTransform,
    /// Server-sent events (compression would hold messages back) or a media type that is
    /// compressed already (images, audio, video, archives, woff2).
    Unsuitable,
}

impl ActionType for CompressResponse {
    const SPEC: ActionSpec = ActionSpec {
        name: "compress-response",
        // The action page says on_http_response; the hub adds on_http_request (CONFLICT §4.1).
        // Compressing needs the response, so only the response phase runs it.
        phases: &[RES],
        terminating: false,
        results: Some("compress"),
        config: Fields(&[("algorithms", Any)]),
    };

    fn compile(
        config: Option<&Node>,
        path: String,
        cx: &mut Cx<'_>,
    ) -> Option<CompressResponse> {
        let mut c = Config::new(config, path, cx.diags);
        let field = c.field("algorithms");
        let configured = match field {
            None => DEFAULT.to_vec(),
            Some(node) => algorithms(&mut c, node)?,
        };
        if let (Some(node), true) = (field, configured.contains(&Coding::Compress)) {
            let path = crate::source::child(&c.path, "algorithms");
            c.diags.warning(
                None,
                crate::source::At::new(&path, node),
                "`compress` (LZW) is never negotiated by this gateway: it has no encoder for it",
            );
        }
        let algorithms: Vec<Coding> = configured.into_iter().filter(|a| a.produced()).collect();
        c.finish();
        Some(CompressResponse { algorithms })
    }

    async fn apply<C: Context>(&self, ex: &mut Exchange, _: &C) -> Result<Step, GatewayError> {
        Ok(self.step(ex))
    }
}

impl Skip {
    fn name(self) -> &'static str {
        match self {
            Skip::AlreadyCompressed => "already_compressed",
            Skip::NotAccepted => "not_accepted",
            Skip::NoBody => "no_body",
            Skip::NoTransform => "no_transform",
            Skip::Unsuitable => "unsuitable_content_type",
        }
    }
}

impl CompressResponse {

    pub fn step(&self, ex: &mut Exchange) -> Step {
        let decision = self.decide(ex);
        let (already, chosen) = match decision {
            Ok(coding) => {
                let headers = ex.headers_mut();
                headers.remove("content-length");
                headers.set("content-encoding", coding.name());
                if !vary_lists_accept_encoding(headers) {
                    headers.append("vary", "Accept-Encoding");
                }
                ex.compress = Some(coding);
                (false, coding.name())
            }
            Err(skip) => (skip == Skip::AlreadyCompressed, ""),
        };
        let mut fields = vec![
            ("already_compressed", Cel::Bool(already)),
            ("negotiated_algorithm", Cel::from(chosen)),
        ];
        // Beyond ngrok: why nothing was compressed, for logs and later rules.
        if let Err(skip) = decision {
            fields.push(("skipped", Cel::from(skip.name())));
        }
        ex.set_result("compress", fields);
        Step::Continue
    }

    fn decide(&self, ex: &Exchange) -> Result<Coding, Skip> {
        let res = ex
            .res
            .as_ref()
            .expect("compress-response runs in on_http_response");
        if ex.compress.is_some()
            || res
                .headers
                .get_all("content-encoding")
                .any(|v| !v.trim().is_empty() && !v.trim().eq_ignore_ascii_case("identity"))
        {
            return Err(Skip::AlreadyCompressed);
        }
        if ex.req.method == "HEAD"
            || matches!(res.status, 100..=199 | 204 | 304)
            || res.headers.get("content-length").map(str::trim) == Some("0")
        {
            return Err(Skip::NoBody);
        }
        let no_transform = res
            .headers
            .get_all("cache-control")
            .flat_map(|v| v.split(','))
            .any(|d| d.trim().eq_ignore_ascii_case("no-transform"));
        if no_transform {
            return Err(Skip::NoTransform);
        }
        if res.headers.get("content-type").is_some_and(incompressible) {
            return Err(Skip::Unsuitable);
        }
        let accept = ex
            .req
            .headers
            .get_all("accept-encoding")
            .collect::<Vec<_>>()
            .join(",");
        let accept =
            (!accept.is_empty() || ex.req.headers.contains("accept-encoding")).then_some(accept);
        negotiate(accept.as_deref(), &self.algorithms).ok_or(Skip::NotAccepted)
    }
}

fn algorithms(c: &mut Config<'_, '_>, node: &Node) -> Option<Vec<Coding>> {
    let Some(items) = node.as_seq() else {
        c.wrong_type("algorithms", node, "a list of algorithms");
        return None;
    };
    let mut out = Vec::new();
    let mut ok = true;
    for (i, item) in items.iter().enumerate() {
        let key = format!("algorithms[{i}]");
        let coding = match &item.value {
            Value::Str(s) => Coding::parse(s).filter(|_| !s.starts_with("x-")),
            _ => None,
        };
        match coding {
            Some(coding) if out.contains(&coding) => {
                let msg = format!("algorithm `{}` is listed twice", coding.name());
                c.error_at(Some("ERR_NGROK_2231"), &key, item, msg);
                ok = false;
            }
            Some(coding) => out.push(coding),
            None => {
                let msg = "an algorithm must be one of gzip, deflate, br, compress".to_string();
                c.error_at(BAD_CONFIG, &key, item, msg);
                ok = false;
            }
        }
    }
    if items.is_empty() {
        c.error_at(
            Some("ERR_NGROK_2223"),
            "algorithms",
            node,
            "`algorithms` is empty".into(),
        );
        ok = false;
    }
    ok.then_some(out)
}

/// Media types whose bodies are compressed already, or must not be held back.
fn incompressible(content_type: &str) -> bool {
    let t = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let media = |prefix: &str| t.starts_with(prefix);
    t == "text/event-stream"
        || (media("image/") && !t.ends_with("+xml") && t != "image/bmp")
        || media("audio/")
        || media("video/")
        || matches!(
            t.as_str(),
            "application/zip"
                | "application/gzip"
                | "application/x-gzip"
                | "application/zstd"
                | "application/x-7z-compressed"
                | "application/x-rar-compressed"
                | "font/woff"
                | "font/woff2"
        )
}

fn vary_lists_accept_encoding(headers: &crate::http::Headers) -> bool {
    headers
        .get_all("vary")
        .flat_map(|v| v.split(','))
        .any(|v| matches!(v.trim(), "*") || v.trim().eq_ignore_ascii_case("accept-encoding"))
}

/// The coding to use for a client's `Accept-Encoding` (`None` when the header is absent),
/// choosing among `allowed` (in preference order): the highest q-value wins, ties go to the
/// earlier entry of `allowed`; `q=0` refuses a coding; `*` covers codings not named. `identity`
/// needs nothing from us: when no coding is acceptable the response goes as it is (RFC 9110
/// §12.5.3 lets a server do that rather than answer 406).
pub fn negotiate(accept_encoding: Option<&str>, allowed: &[Coding]) -> Option<Coding> {
    let header = accept_encoding?;
    let mut named: Vec<(Coding, u16)> = Vec::new();
    let mut star: Option<u16> = None;
    for entry in header.split(',') {
        let mut parts = entry.split(';');
        let token = parts.next().unwrap_or("").trim();
        if token.is_empty() {
            continue;
        }
        let mut q = Some(1000);
        for param in parts {
            if let Some((k, v)) = param.split_once('=') {
                if k.trim().eq_ignore_ascii_case("q") {
                    q = parse_q(v.trim());
                }
            }
        }
        // A malformed q-value makes the entry meaningless: ignore it.
        let Some(q) = q else { continue };
        if token == "*" {
            star = Some(star.map_or(q, |s| s.max(q)));
        } else if let Some(coding) = Coding::parse(token) {
            match named.iter_mut().find(|(c, _)| *c == coding) {
                Some((_, existing)) => *existing = (*existing).max(q),
                None => named.push((coding, q)),
            }
        }
    }
    let mut best: Option<(Coding, u16)> = None;
    for &coding in allowed {
        let q = named
            .iter()
            .find(|(c, _)| *c == coding)
            .map(|(_, q)| *q)
            .or(star)
            .unwrap_or(0);
        if q > 0 && best.is_none_or(|(_, b)| q > b) {
            best = Some((coding, q));
        }
    }
    best.map(|(c, _)| c)
}

/// An RFC 9110 `qvalue` in thousandths: `0`, `0.5`, `1`, `1.000`; anything else is `None`.
fn parse_q(v: &str) -> Option<u16> {
    let (int, frac) = v.split_once('.').unwrap_or((v, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let thousandths = format!("{frac:0<3}").parse::<u16>().ok()?;
    match int {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Coding::*;

    const ALL: &[Coding] = &[Gzip, Deflate, Br];

    #[test]
    fn no_header_means_no_compression() {
        assert_eq!(negotiate(None, ALL), None);
        assert_eq!(negotiate(Some(""), ALL), None);
    }

    #[test]
    fn highest_q_wins_and_ties_follow_the_configured_order() {
        assert_eq!(negotiate(Some("gzip;q=1.0, br;q=0.8"), ALL), Some(Gzip));
        assert_eq!(negotiate(Some("gzip;q=0.5, br"), ALL), Some(Br));
        assert_eq!(negotiate(Some("br, gzip, deflate"), ALL), Some(Gzip));
        assert_eq!(negotiate(Some("br, gzip"), &[Br, Gzip]), Some(Br));
        assert_eq!(
            negotiate(Some("DEFLATE;Q=0.9, GZip;q=0.1"), ALL),
            Some(Deflate)
        );
    }

    #[test]
    fn zero_refuses_and_star_covers_the_rest() {
        assert_eq!(negotiate(Some("gzip;q=0, br;q=0"), ALL), None);
        assert_eq!(negotiate(Some("gzip;q=0, *"), ALL), Some(Deflate));
        assert_eq!(negotiate(Some("*;q=0"), ALL), None);
        assert_eq!(negotiate(Some("*;q=0.2, br;q=0.5"), ALL), Some(Br));
        assert_eq!(negotiate(Some("identity"), ALL), None);
        assert_eq!(negotiate(Some("identity;q=0, zstd"), ALL), None);
    }

    #[test]
    fn only_allowed_codings_and_x_gzip_alias() {
        assert_eq!(negotiate(Some("br"), &[Gzip]), None);
        assert_eq!(negotiate(Some("x-gzip"), ALL), Some(Gzip));
        assert_eq!(negotiate(Some("compress, gzip;q=0.1"), ALL), Some(Gzip));
    }

    #[test]
    fn malformed_q_values_are_ignored() {
        assert_eq!(negotiate(Some("br;q=2, gzip;q=0.3"), ALL), Some(Gzip));
        assert_eq!(negotiate(Some("br;q=abc"), ALL), None);
        assert_eq!(negotiate(Some("br;q=0.0001"), ALL), None);
        assert_eq!(parse_q("0.125"), Some(125));
        assert_eq!(parse_q("1.000"), Some(1000));
        assert_eq!(parse_q("1.001"), None);
    }

    /// Runs the action (default algorithms) on a response; returns the response headers and
    /// the decision.
    fn run(
        method: &str,
        accept: &str,
        status: u16,
        res_headers: &[(&str, &str)],
    ) -> (crate::http::Headers, Option<Coding>) {
        let req_headers: crate::http::Headers = [("accept-encoding", accept)].into_iter().collect();
        let req = crate::http::RequestHead::from_url(
            method,
            "https://gw.example/x",
            req_headers,
            "192.0.2.1".parse().unwrap(),
        )
        .unwrap();
        let mut ex = Exchange::new(req);
        ex.res = Some(crate::http::ResponseHead {
            status,
            headers: res_headers.iter().copied().collect(),
        });
        let action = CompressResponse {
            algorithms: vec![Gzip, Deflate, Br],
        };
        assert_eq!(action.step(&mut ex), Step::Continue);
        (ex.res.take().unwrap().headers, ex.compress)
    }

    #[test]
    fn compressing_sets_the_headers() {
        let (h, c) = run(
            "GET",
            "br",
            200,
            &[("content-length", "900"), ("vary", "Origin")],
        );
        assert_eq!(c, Some(Br));
        assert_eq!(h.get("content-encoding"), Some("br"));
        assert!(!h.contains("content-length"));
        assert_eq!(
            h.get_all("vary").collect::<Vec<_>>(),
            ["Origin", "Accept-Encoding"]
        );
        let (h, _) = run("GET", "gzip", 200, &[("vary", "accept-encoding, origin")]);
        assert_eq!(
            h.get_all("vary").count(),
            1,
            "Accept-Encoding is listed already"
        );
    }

    #[test]
    fn responses_left_alone() {
        type Case<'a> = (&'a str, u16, &'a [(&'a str, &'a str)]);
        let cases: &[Case<'_>] = &[
            ("HEAD", 200, &[]),
            ("GET", 204, &[]),
            ("GET", 304, &[]),
            ("GET", 200, &[("content-length", "0")]),
            ("GET", 200, &[("cache-control", "public, no-transform")]),
            ("GET", 200, &[("content-type", "image/png")]),
            ("GET", 200, &[("content-type", "text/event-stream")]),
            (
                "GET",
                200,
                &[("content-encoding", "gzip"), ("content-length", "10")],
            ),
        ];
        for (method, status, headers) in cases {
            let (h, c) = run(method, "gzip, br", *status, headers);
            assert_eq!(c, None, "{method} {status} {headers:?}");
            assert_eq!(
                h.get("content-encoding"),
                headers
                    .iter()
                    .find(|(k, _)| *k == "content-encoding")
                    .map(|(_, v)| *v)
            );
        }
    }

    #[test]
    fn incompressible_types() {
        assert!(incompressible("image/png"));
        assert!(!incompressible("image/svg+xml"));
        assert!(incompressible("text/event-stream; charset=utf-8"));
        assert!(!incompressible("application/json"));
    }
}
