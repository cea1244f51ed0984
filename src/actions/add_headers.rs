//! `add-headers`: append headers (values interpolated) to the request or the response.

use crate::exchange::Context;
use super::spec::{ActionSpec, ActionType, HEADERS, REQ, RES};
use super::ConfigShape::{Fields};
use crate::actions::config::Config;
use crate::actions::config::{BAD_CONFIG, TOO_MANY};
use crate::actions::Cx;
use crate::error::GatewayError;
use crate::exchange::Exchange;
use crate::exchange::Step;
use crate::expr::Template;
use crate::source::Node;

#[derive(Debug)]
pub struct AddHeaders {
    headers: Vec<(String, Template)>,
}

/// Headers ngrok will not let a policy add or remove.
pub(super) const PROTECTED: &[&str] = &["user-agent"];


/// Reads `headers: {name: value-template}` with between `min` and `max` entries; names are
/// lower-cased as ngrok does.
pub(super) fn header_templates(
    c: &mut Config<'_, '_>,
    min: usize,
    max: usize,
) -> Option<Vec<(String, Template)>> {
    let Some(node) = c.field("headers") else {
        if min > 0 {
            c.missing("headers");
            return None;
        }
        return Some(Vec::new());
    };
    let Some(entries) = node.as_map() else {
        c.wrong_type("headers", node, "a map of header names to values");
        return None;
    };
    if entries.len() < min || entries.len() > max {
        let msg = format!(
            "`headers` must have {min} to {max} entries, not {}",
            entries.len()
        );
        c.error_at(TOO_MANY, "headers", node, msg);
    }
    let mut out = Vec::new();
    let mut ok = true;
    for (name, value) in entries {
        let key = format!("headers.{name}");
        let lower = name.to_ascii_lowercase();
        if PROTECTED.contains(&lower.as_str()) || !is_token(&lower) {
            let why = if is_token(&lower) {
                "may not be changed by a policy"
            } else {
                "is not a valid header name"
            };
            c.error_at(BAD_CONFIG, &key, value, format!("header `{name}` {why}"));
            ok = false;
            continue;
        }
        let text = match &value.value {
            crate::source::Value::Str(s) => s.clone(),
            crate::source::Value::Int(i) => i.to_string(),
            crate::source::Value::Bool(b) => b.to_string(),
            _ => {
                c.error_at(
                    BAD_CONFIG,
                    &key,
                    value,
                    "header values must be strings".into(),
                );
                ok = false;
                continue;
            }
        };
        match c.template("headers", value, &text) {
            Some(t) => out.push((lower, t)),
            None => ok = false,
        }
    }
    ok.then_some(out)
}

/// RFC 9110 token characters, the only ones allowed in a header name.
pub(super) fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}
impl ActionType for AddHeaders {
    const SPEC: ActionSpec = ActionSpec {
        name: "add-headers",
        phases: &[REQ, RES],
        terminating: false,
        results: Some("add_headers"),
        config: Fields(&[("headers", HEADERS)]),
    };

    fn compile(config: Option<&Node>, path: String, cx: &mut Cx<'_>) -> Option<AddHeaders> {
        let mut c = Config::new(config, path, cx.diags);
        let headers = header_templates(&mut c, 1, 10)?;
        c.finish();
        Some(AddHeaders { headers })
    }

    async fn apply<C: Context>(&self, ex: &mut Exchange, _: &C) -> Result<Step, GatewayError> {
        let mut added = Vec::with_capacity(self.headers.len());
        for (name, value) in &self.headers {
            let v = match ex.render(value, "add-headers", "headers") {
                Ok(v) => v,
                Err(e) => {
                    ex.set_outcome("add_headers", Vec::new(), Some(&e));
                    return Err(e);
                }
            };
            let headers = ex.headers_mut();
            // ngrok appends, except `host`, which can only have one value.
            if name == "host" {
                headers.set(name, &v);
            } else {
                headers.append(name, &v);
            }
            added.push((name.as_str(), cel::Value::from(v)));
        }
        // `actions.ngrok.add_headers.headers_added`: name -> value added.
        ex.set_result(
            "add_headers",
            vec![("headers_added", crate::expr::map(added))],
        );
        Ok(Step::Continue)
    }
}

