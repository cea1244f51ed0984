//! `forward-internal`: hand the request to a declared internal endpoint (a pool).
//!
//! Security: the URL may come from request data (`${getReqHeader(...)}`), so it is only ever
//! used as a lookup key into the declared endpoints; an undeclared name is an error, never a fetch.

use super::spec::{ActionSpec, ActionType, ON_ERROR, TCP, REQ};
use super::ConfigShape::{Any, Interpolated, Fields};
use crate::actions::config::Config;
use crate::actions::config::BAD_CONFIG;
use crate::actions::Cx;
use crate::endpoint_url::internal_key;
use crate::error::GatewayError;
use crate::exchange::Exchange;
use crate::exchange::{Context, Step};
use crate::expr::Template;
use crate::source::Node;

#[derive(Debug)]
pub struct ForwardInternal {
    url: Template,
    on_error_continue: bool,
}

impl ActionType for ForwardInternal {
    const SPEC: ActionSpec = ActionSpec {
        name: "forward-internal",
        phases: &[TCP, REQ],
        terminating: true,
        results: Some("forward_internal"),
        config: Fields(&[("url", Interpolated), ON_ERROR, ("binding", Any)]),
    };

    /// Terminating, unless `on_error: continue` lets the phase go on after a failed forward.
    fn terminates(&self) -> bool {
        !self.on_error_continue
    }

    fn compile(
        config: Option<&Node>,
        path: String,
        cx: &mut Cx<'_>,
    ) -> Option<ForwardInternal> {
        let mut c = Config::new(config, path, cx.diags);
        let url = c.string("url");
        let on_error_continue = match c.string("on_error") {
            None => false,
            Some((_, v)) if v == "halt" => false,
            Some((_, v)) if v == "continue" => true,
            Some((node, v)) => {
                let msg = format!("`on_error` must be `halt` or `continue`, not `{v}`");
                c.error_at(BAD_CONFIG, "on_error", node, msg);
                false
            }
        };
        if let Some((node, v)) = c.string("binding") {
            if v != "internal" {
                c.error_at(
                    BAD_CONFIG,
                    "binding",
                    node,
                    "`binding` can only be `internal`".into(),
                );
            }
        }
        let Some((node, text)) = url else {
            c.missing("url");
            c.finish();
            return None;
        };
        let template = c.template("url", node, &text);
        if let Some(literal) = template.as_ref().and_then(Template::literal) {
            match internal_key(literal) {
                Err(e) => c.error_at(Some("ERR_NGROK_2226"), "url", node, e),
                Ok(key) if !cx.internal.contains(&key) => {
                    let path = crate::source::child(&c.path, "url");
                    c.diags.warning(
                        Some("ERR_NGROK_3200"),
                        crate::source::At::new(&path, node),
                        format!(
                            "no internal endpoint declares `{literal}`: requests here will get 404"
                        ),
                    );
                }
                Ok(_) => {}
            }
        }
        c.finish();
        Some(ForwardInternal {
            url: template?,
            on_error_continue,
        })
    }

    async fn apply<C: Context>(&self, ex: &mut Exchange, resolve: &C) -> Result<Step, GatewayError> {
        let outcome = ex
            .render(&self.url, "forward-internal", "url")
            .and_then(|url| match internal_key(&url) {
                Ok(key) if resolve.has_internal(&key) => Ok(Step::Forward(key)),
                _ => Err(GatewayError::EndpointOffline { url }),
            });
        match outcome {
            Err(e) if self.on_error_continue => {
                ex.set_error_result("forward_internal", &e);
                Ok(Step::Continue)
            }
            other => other,
        }
    }
}

