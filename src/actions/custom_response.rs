//! `custom-response`: answer from the gateway with a status, body and headers (all interpolated).

use crate::exchange::Context;
use super::spec::{ActionSpec, ActionType, HEADERS, REQ, RES};
use super::ConfigShape::{Any, Interpolated, Fields};
use crate::actions::config::Config;
use crate::actions::Cx;
use crate::error::GatewayError;
use crate::exchange::Exchange;
use crate::exchange::Step;
use crate::expr::Template;
use crate::http::Headers;
use crate::http::Synthetic;
use crate::source::Node;

#[derive(Debug)]
pub struct CustomResponse {
    status_code: u16,
    body: Option<Template>,
    headers: Vec<(String, Template)>,
}

impl ActionType for CustomResponse {
    const SPEC: ActionSpec = ActionSpec {
        name: "custom-response",
        phases: &[REQ, RES],
        terminating: true,
        results: None,
        config: Fields(&[
            ("status_code", Any),
            ("body", Interpolated),
            ("headers", HEADERS),
        ]),
    };

    fn compile(config: Option<&Node>, path: String, cx: &mut Cx<'_>) -> Option<CustomResponse> {
        let mut c = Config::new(config, path, cx.diags);
        let status_code = c.status("status_code", 200, (100, 599));
        let body = match c.string("body") {
            Some((node, text)) => Some(c.template("body", node, &text)?),
            None => None,
        };
        let headers = super::add_headers::header_templates(&mut c, 0, 10)?;
        if matches!(status_code, 100..=199 | 204 | 304) && body.is_some() {
            if let Some(node) = config {
                c.error_at(
                    Some("ERR_NGROK_3604"),
                    "body",
                    node,
                    format!("status code {status_code} does not allow a body"),
                );
            }
        }
        c.finish();
        Some(CustomResponse {
            status_code,
            body,
            headers,
        })
    }

    async fn apply<C: Context>(&self, ex: &mut Exchange, _: &C) -> Result<Step, GatewayError> {
        let body = match &self.body {
            Some(t) => ex.render(t, "custom-response", "body")?,
            None => String::new(),
        };
        let mut headers = Headers::new();
        for (name, value) in &self.headers {
            let v = ex.render(value, "custom-response", "headers")?;
            headers.append(name, &v);
        }
        if !headers.contains("content-type") && !body.is_empty() {
            headers.set("content-type", infer_content_type(&body));
        }
        Ok(Step::Respond(Synthetic {
            status: self.status_code,
            headers,
            body,
        }))
    }
}


/// ngrok infers a content type when none is given; this guesses from the body's first byte.
fn infer_content_type(body: &str) -> &'static str {
    let trimmed = body.trim_start();
    if (trimmed.starts_with('{') || trimmed.starts_with('['))
        && serde_json::from_str::<serde_json::Value>(trimmed).is_ok()
    {
        "application/json"
    } else if trimmed.starts_with('<') {
        "text/html; charset=utf-8"
    } else {
        "text/plain; charset=utf-8"
    }
}

#[cfg(test)]
mod tests {
    use super::infer_content_type;

    #[test]
    fn content_type_guess() {
        assert_eq!(infer_content_type(" {\"a\":1}"), "application/json");
        assert_eq!(infer_content_type("{not json"), "text/plain; charset=utf-8");
        assert_eq!(infer_content_type("<h1>x</h1>"), "text/html; charset=utf-8");
    }
}
