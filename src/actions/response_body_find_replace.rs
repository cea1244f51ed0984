//! `response-body-find-replace`: rewrite the response body with regular expressions. The body
//! is read whole (at most [`super::MAX_BUFFERED_BODY`]) only when a rule running this action
//! matches; other responses keep streaming.

use super::spec::{ActionSpec, ActionType, REPLACEMENTS, RES};
use super::ConfigShape::{Fields};
use super::request_body_find_replace::{encoded, replacements, run, set_results};
use crate::actions::config::Config;
use crate::actions::Cx;
use crate::error::GatewayError;
use crate::exchange::Exchange;
use crate::exchange::{Context, Step};
use crate::expr::find_replace::Replacement;
use crate::source::Node;
use std::borrow::Cow;

const ACTION: &str = "response-body-find-replace";

#[derive(Debug)]
pub struct ResponseBodyFindReplace {
    replacements: Vec<Replacement>,
}

impl ActionType for ResponseBodyFindReplace {
    const SPEC: ActionSpec = ActionSpec {
        name: "response-body-find-replace",
        phases: &[RES],
        terminating: false,
        results: Some("response_body_find_replace"),
        config: Fields(&[("replacements", REPLACEMENTS)]),
    };

    fn compile(
        config: Option<&Node>,
        path: String,
        cx: &mut Cx<'_>,
    ) -> Option<ResponseBodyFindReplace> {
        let mut c = Config::new(config, path, cx.diags);
        let replacements = replacements(&mut c)?;
        c.finish();
        Some(ResponseBodyFindReplace { replacements })
    }

    async fn apply<C: Context>(&self, ex: &mut Exchange, cx: &C) -> Result<Step, GatewayError> {
        let res = ex.res.as_ref().expect("runs in on_http_response");
        // The body is the content itself when the response is not encoded, when the platform
        // decodes its coding on the way in (the Worker's fetch: gzip, br), or when the gateway
        // set the coding itself (compress-response, applied on the way out). Anything else
        // would be corrupted by a byte-level rewrite: it goes as it is.
        let pending = ex.compress.is_some();
        let skip = encoded(&res.headers, |c| pending || cx.decodes(c));
        let identity = encoded(&res.headers, |_| false).is_none();
        if let Some(coding) = skip {
            ex.note(format!(
                "{ACTION}: response body is {coding}-encoded; left as it is"
            ));
            set_results(ex, "response_body_find_replace", &[]);
            return Ok(Step::Continue);
        }
        let body = cx.response_body().await?;
        let (out, found) = run(&self.replacements, &body, ex, ACTION)?;
        if let Cow::Owned(new) = out {
            let headers = ex.headers_mut();
            // An encoded body is re-encoded on the way out: its length is not known here.
            if identity {
                headers.set("content-length", &new.len().to_string());
            } else {
                headers.remove("content-length");
            }
            cx.set_response_body(new.into());
        }
        set_results(ex, "response_body_find_replace", &found);
        Ok(Step::Continue)
    }
}

