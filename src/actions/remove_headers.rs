//! `remove-headers`: drop headers from the request or the response.

use crate::error::GatewayError;
use crate::exchange::Context;
use super::spec::{ActionSpec, ActionType, REQ, RES};
use super::ConfigShape::{Any, Fields, ListOf};
use super::add_headers::{is_token, PROTECTED};
use crate::actions::config::Config;
use crate::actions::config::{BAD_CONFIG, TOO_MANY};
use crate::actions::Cx;
use crate::exchange::Exchange;
use crate::exchange::Step;
use crate::source::Node;

#[derive(Debug)]
pub struct RemoveHeaders {
    headers: Vec<String>,
}

impl ActionType for RemoveHeaders {
    const SPEC: ActionSpec = ActionSpec {
        name: "remove-headers",
        phases: &[REQ, RES],
        terminating: false,
        results: Some("remove_headers"),
        config: Fields(&[("headers", ListOf(&Any))]),
    };

    fn compile(config: Option<&Node>, path: String, cx: &mut Cx<'_>) -> Option<RemoveHeaders> {
        let mut c = Config::new(config, path, cx.diags);
        let Some(node) = c.field("headers") else {
            c.missing("headers");
            return None;
        };
        let Some(items) = node.as_seq() else {
            c.wrong_type("headers", node, "a list of header names");
            return None;
        };
        if items.is_empty() || items.len() > 10 {
            let msg = format!("`headers` must have 1 to 10 entries, not {}", items.len());
            c.error_at(TOO_MANY, "headers", node, msg);
        }
        let mut headers = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let key = format!("headers[{i}]");
            match item.as_str().map(str::to_ascii_lowercase) {
                Some(name) if PROTECTED.contains(&name.as_str()) => {
                    let msg = format!("header `{name}` may not be removed by a policy");
                    c.error_at(BAD_CONFIG, &key, item, msg);
                }
                Some(name) if is_token(&name) => headers.push(name),
                _ => c.error_at(BAD_CONFIG, &key, item, "not a valid header name".into()),
            }
        }
        c.finish();
        Some(RemoveHeaders { headers })
    }

    async fn apply<C: Context>(&self, ex: &mut Exchange, _: &C) -> Result<Step, GatewayError> {
        Ok(self.step(ex))
    }
}

impl RemoveHeaders {

    pub fn step(&self, ex: &mut Exchange) -> Step {
        let headers = ex.headers_mut();
        for name in &self.headers {
            headers.remove(name);
        }
        // `actions.ngrok.remove_headers.headers_removed`: the names configured.
        let removed = self.headers.iter().map(|n| cel::Value::from(n.as_str()));
        let removed = cel::Value::List(std::sync::Arc::new(removed.collect()));
        ex.set_result("remove_headers", vec![("headers_removed", removed)]);
        Step::Continue
    }
}
