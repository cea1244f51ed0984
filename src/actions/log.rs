//! `log`: write one structured line to the Worker's log (ngrok adds it to its traffic events).
//!
//! The line is a JSON object `{"log": "traffic_policy", "endpoint", "rule", "phase", "action",
//! "metadata"}` written with `console.log` (Workers Logs indexes JSON objects; `wrangler dev`
//! prints it).

use crate::exchange::Context;
use super::spec::{ActionSpec, ActionType, TCP, REQ, RES};
use super::ConfigShape::{Interpolated, Fields, MapOf};
use super::set_vars::Typed;
use crate::actions::config::Config;
use crate::actions::config::TOO_MANY;
use crate::actions::Cx;
use crate::error::GatewayError;
use crate::exchange::Step;
use crate::exchange::{Exchange, Phase};
use crate::source::Node;

/// Metadata entries one `log` may write.
const MAX_ENTRIES: usize = 50;

#[derive(Debug)]
pub struct Log {
    metadata: Vec<(String, Typed)>,
    /// Where the action is, for the line: the endpoint, the rule's name and its path.
    endpoint: String,
    rule: Option<String>,
    path: String,
}

impl ActionType for Log {
    const SPEC: ActionSpec = ActionSpec {
        name: "log",
        phases: &[TCP, REQ, RES],
        terminating: false,
        results: Some("log"),
        config: Fields(&[("metadata", MapOf(&Interpolated))]),
    };

    fn compile(config: Option<&Node>, path: String, cx: &mut Cx<'_>) -> Option<Log> {
        let action_path = path.trim_end_matches(".config").to_string();
        let mut c = Config::new(config, path, cx.diags);
        let Some(node) = c.field("metadata") else {
            c.missing("metadata");
            c.finish();
            return None;
        };
        let Some(entries) = node.as_map() else {
            c.wrong_type("metadata", node, "a map of names to values");
            c.finish();
            return None;
        };
        if entries.is_empty() || entries.len() > MAX_ENTRIES {
            let msg = format!(
                "`metadata` must have 1 to {MAX_ENTRIES} entries, not {}",
                entries.len()
            );
            c.error_at(TOO_MANY, "metadata", node, msg);
        }
        let mut metadata = Vec::new();
        let mut ok = true;
        for (name, value) in entries {
            match Typed::compile(value, &mut c, &format!("metadata.{name}"), 0) {
                Some(t) => metadata.push((name.clone(), t)),
                None => ok = false,
            }
        }
        c.finish();
        ok.then(|| Log {
            metadata,
            endpoint: cx.endpoint.to_string(),
            rule: None,
            path: action_path,
        })
    }

    fn set_rule_name(&mut self, name: Option<&str>) {
        self.rule = name.map(str::to_string);
    }

    async fn apply<C: Context>(&self, ex: &mut Exchange, _: &C) -> Result<Step, GatewayError> {
        let mut values = Vec::with_capacity(self.metadata.len());
        let mut json = serde_json::Map::new();
        for (name, value) in &self.metadata {
            let v = value
                .eval(ex.scope())
                .map_err(|error| GatewayError::ValueFailed {
                    action: "log",
                    field: format!("metadata.{name}"),
                    error,
                })?;
            json.insert(name.clone(), to_json(&v));
            values.push((name.as_str(), v));
        }
        let line = serde_json::json!({
            "log": "traffic_policy",
            "endpoint": self.endpoint,
            "rule": self.rule,
            "action": self.path,
            // Every response phase runs with the response it is about.
            "phase": if ex.res.is_some() { Phase::Response } else { Phase::Request }.name(),
            "metadata": json,
        });
        ex.note(line.to_string());
        ex.set_outcome("log", vec![("metadata", crate::expr::map(values))], None);
        Ok(Step::Continue)
    }
}


/// A CEL value as JSON (timestamps as RFC 3339, durations as `1.5s`, bytes as text).
fn to_json(v: &cel::Value) -> serde_json::Value {
    use cel::Value as V;
    use serde_json::Value as J;
    match v {
        V::Null => J::Null,
        V::Bool(b) => J::Bool(*b),
        V::Int(i) => J::from(*i),
        V::UInt(u) => J::from(*u),
        V::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
        V::List(items) => J::Array(items.iter().map(to_json).collect()),
        V::Map(m) => {
            let mut out = serde_json::Map::new();
            for (k, v) in m.map.iter() {
                let key = match k {
                    cel::objects::Key::String(s) => s.to_string(),
                    cel::objects::Key::Int(i) => i.to_string(),
                    cel::objects::Key::Uint(u) => u.to_string(),
                    cel::objects::Key::Bool(b) => b.to_string(),
                };
                out.insert(key, to_json(v));
            }
            J::Object(out)
        }
        other => J::String(crate::expr::to_text(other)),
    }
}
