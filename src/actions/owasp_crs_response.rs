//! `owasp-crs-response`: the WAF inspects the upstream's response (status, headers and, with
//! `process_body`, the first `body_limit` bytes of the decoded body) for leaks: SQL errors,
//! stack traces, source code, directory listings. At or above the outbound threshold the
//! response is replaced by a 403 `ERR_NGROK_3702` (`on_error: halt`) or only reported in
//! `actions.ngrok.owasp_crs_response.*` (`continue`).

use super::spec::{ActionSpec, ActionType, WAF_CONFIG, RES};
use super::owasp_crs::{prefix, Side, Waf};
use crate::actions::Cx;
use crate::error::GatewayError;
use crate::exchange::Exchange;
use crate::exchange::{Context, Step};
use crate::source::Node;
use crate::waf::{textual_response, ResponseView};

#[derive(Debug)]
pub struct OwaspCrsResponse(Waf);

impl ActionType for OwaspCrsResponse {
    const SPEC: ActionSpec = ActionSpec {
        name: "owasp-crs-response",
        phases: &[RES],
        terminating: false,
        results: Some("owasp_crs_response"),
        config: WAF_CONFIG,
    };

    fn compile(config: Option<&Node>, path: String, cx: &mut Cx<'_>) -> Option<Self> {
        Waf::compile(Side::Response, config, path, cx).map(OwaspCrsResponse)
    }

    async fn apply<C: Context>(&self, ex: &mut Exchange, cx: &C) -> Result<Step, GatewayError> {
        let waf = &self.0;
        let config = waf.rules.config();
        let body = if config.process_body && self.reads_body(ex, cx) {
            match waf.body(ex, cx.response_body_prefix(config.body_limit).await)? {
                Some(b) => Some(b),
                None => return Ok(Step::Continue),
            }
        } else {
            None
        };
        let (bytes, truncated) = prefix(body.as_deref().unwrap_or_default(), config.body_limit);
        let verdict = match &ex.res {
            Some(head) => {
                let mut view = ResponseView::from_head(head, bytes, truncated);
                if body.is_some() {
                    // Only a body the platform decodes is read, so what CRS sees is plain:
                    // with the coding still named, its rules would skip it as compressed.
                    view.headers
                        .retain(|(n, _)| !n.eq_ignore_ascii_case("content-encoding"));
                }
                Ok(waf.rules.inspect_response(&view, &mut waf.budget()))
            }
            // Only the response phase compiles this action; no head there is the gateway's bug.
            None => Err(GatewayError::WafInternal {
                detail: "no upstream response to inspect".into(),
            }),
        };
        waf.finish(ex, verdict)?;
        Ok(Step::Continue)
    }
}

impl OwaspCrsResponse {
    /// Whether the body is worth buffering: only textual bodies are inspected (an image or a
    /// download is not read into memory for nothing), and only as content, so not when it
    /// arrives in a coding the platform does not decode.
    fn reads_body<C: Context>(&self, ex: &Exchange, cx: &C) -> bool {
        let Some(head) = &ex.res else {
            return false;
        };
        let encoded = head
            .headers
            .get("content-encoding")
            .map(str::trim)
            .is_some_and(|c| {
                !c.is_empty() && !c.eq_ignore_ascii_case("identity") && !cx.decodes(c)
            });
        textual_response(head.headers.get("content-type")) && !encoded
    }
}
