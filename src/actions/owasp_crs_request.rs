//! `owasp-crs-request`: the WAF (`src/waf/`, `docs/waf.md`) inspects the request; at or above
//! the inbound anomaly threshold it is denied with 403 `ERR_NGROK_3700` (`on_error: halt`,
//! ngrok's default) or only reported in `actions.ngrok.owasp_crs_request.*` (`continue`).
//! With `process_body` the first `body_limit` bytes of the body (4 KB) are inspected too: only
//! those are read, and the body is still forwarded whole, whatever its size.

use super::spec::{ActionSpec, ActionType, WAF_CONFIG, REQ};
use super::owasp_crs::{prefix, Side, Waf};
use crate::actions::Cx;
use crate::error::GatewayError;
use crate::exchange::Exchange;
use crate::exchange::{Context, Step};
use crate::source::Node;
use crate::waf::RequestView;

#[derive(Debug)]
pub struct OwaspCrsRequest(Waf);

impl ActionType for OwaspCrsRequest {
    const SPEC: ActionSpec = ActionSpec {
        name: "owasp-crs-request",
        phases: &[REQ],
        terminating: false,
        results: Some("owasp_crs_request"),
        config: WAF_CONFIG,
    };

    fn compile(config: Option<&Node>, path: String, cx: &mut Cx<'_>) -> Option<Self> {
        Waf::compile(Side::Request, config, path, cx).map(OwaspCrsRequest)
    }

    async fn apply<C: Context>(&self, ex: &mut Exchange, cx: &C) -> Result<Step, GatewayError> {
        let waf = &self.0;
        let config = waf.rules.config();
        let body = if config.process_body {
            match waf.body(ex, cx.request_body_prefix(config.body_limit).await)? {
                Some(b) => Some(b),
                None => return Ok(Step::Continue),
            }
        } else {
            None
        };
        let (bytes, truncated) = prefix(body.as_deref().unwrap_or_default(), config.body_limit);
        let verdict = {
            let view = RequestView::from_head(&ex.req, bytes, truncated);
            waf.rules.inspect_request(&view, &mut waf.budget())
        };
        waf.finish(ex, Ok(verdict))?;
        Ok(Step::Continue)
    }
}

