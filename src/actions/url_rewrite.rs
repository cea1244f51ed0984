//! `url-rewrite`: rewrite the URL the upstream is asked for (the client's URL is unchanged).
//!
//! The rewritten URL replaces the request the later rules and the upstream see: its path and
//! query are what the origin is asked for. A rewritten host (or scheme, port) shows in `req.*`,
//! in the `Host` header later rules read and in `X-Forwarded-Host`, but chooses nothing: the
//! public endpoint was chosen by the client's host, the pool by `forward-internal`, and the
//! `Host` the origin gets comes from the pool's upstream URL.

use crate::exchange::Context;
use super::spec::{ActionSpec, ActionType, REQ};
use super::ConfigShape::{Interpolated, Fields};
use super::redirect::{encode_url, results, UrlReplace};
use crate::actions::config::Config;
use crate::actions::Cx;
use crate::error::GatewayError;
use crate::exchange::Exchange;
use crate::exchange::Step;
use crate::http::RequestHead;
use crate::source::Node;

#[derive(Debug)]
pub struct UrlRewrite {
    url: UrlReplace,
}

impl ActionType for UrlRewrite {
    const SPEC: ActionSpec = ActionSpec {
        name: "url-rewrite",
        phases: &[REQ],
        terminating: false,
        results: Some("url_rewrite"),
        config: Fields(&[("from", Interpolated), ("to", Interpolated)]),
    };

    fn compile(config: Option<&Node>, path: String, cx: &mut Cx<'_>) -> Option<UrlRewrite> {
        let mut c = Config::new(config, path, cx.diags);
        let url = UrlReplace::compile(&mut c);
        c.finish();
        Some(UrlRewrite { url: url? })
    }

    async fn apply<C: Context>(&self, ex: &mut Exchange, _: &C) -> Result<Step, GatewayError> {
        let original = ex.req.url();
        let outcome = self
            .url
            .apply(ex, "url-rewrite", &original)
            .and_then(|replaced| {
                let Some(r) = replaced else {
                    return Ok((None, Vec::new()));
                };
                // A network path (`//host/x`, only when `to` is written so) keeps the scheme.
                let url = match r.text.strip_prefix("//") {
                    Some(rest) => encode_url(&format!("{}://{rest}", ex.req.scheme)),
                    None => encode_url(&r.text),
                };
                if url == original {
                    return Ok((None, r.matches));
                }
                let mut req = RequestHead::from_url(
                    &ex.req.method,
                    &url,
                    ex.req.headers.clone(),
                    ex.req.client_ip,
                )
                .filter(|q| matches!(q.scheme.as_str(), "http" | "https") && !q.host.is_empty())
                .ok_or_else(|| GatewayError::BadRewrite {
                    action: "url-rewrite",
                    url: url.clone(),
                })?;
                if req.authority() != ex.req.authority() {
                    let authority = req.authority();
                    req.headers.set("host", &authority);
                }
                Ok((Some(req), r.matches))
            });
        match outcome {
            Ok((req, matches)) => {
                let url = req.as_ref().map_or(original, RequestHead::url);
                if let Some(req) = req {
                    ex.set_request(req);
                }
                ex.set_outcome("url_rewrite", results(&url, &matches), None);
                Ok(Step::Continue)
            }
            Err(e) => {
                ex.set_outcome("url_rewrite", Vec::new(), Some(&e));
                Err(e)
            }
        }
    }
}

