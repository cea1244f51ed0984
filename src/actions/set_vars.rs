//! `set-vars`: set `vars.<name>` for the rest of the phase, each value typed.
//!
//! `vars` live in one policy's one phase: an internal endpoint's policy starts without the
//! forwarding endpoint's, and `on_http_response` starts without `on_http_request`'s (ngrok:
//! "scoped to the policy and the phase where set"). Entries run in order, so a later one may
//! read an earlier one's `vars.*`.

use crate::exchange::Context;
use super::spec::{ActionSpec, ActionType, TCP, REQ, RES};
use super::ConfigShape::{Interpolated, Fields, MapOf, ListOf};
use crate::actions::config::Config;
use crate::actions::config::BAD_TEMPLATE;
use crate::actions::Cx;
use crate::error::GatewayError;
use crate::exchange::Exchange;
use crate::exchange::Step;
use crate::expr::{EvalError, Scope, Template};
use crate::source::{Node, Value};
use cel::objects::{Key, Map};
use std::collections::HashMap;
use std::sync::Arc;

/// ngrok's code for a `vars` list of the wrong shape.
const BAD_VARS: Option<&str> = Some("ERR_NGROK_2252");
/// ngrok's code for values nested too deep.
const TOO_DEEP: Option<&str> = Some("ERR_NGROK_2250");
/// How deep lists and maps may nest in a typed value.
const MAX_DEPTH: usize = 10;

#[derive(Debug)]
pub struct SetVars {
    vars: Vec<(String, Typed)>,
}


/// A config value of any YAML type whose strings may interpolate; a string that is exactly
/// `${expr}` takes the expression's type (used by `set-vars` and `log`).
#[derive(Debug)]
pub(super) enum Typed {
    Const(cel::Value),
    Text(Template),
    List(Vec<Typed>),
    Map(Vec<(String, Typed)>),
}

impl ActionType for SetVars {
    const SPEC: ActionSpec = ActionSpec {
        name: "set-vars",
        phases: &[TCP, REQ, RES],
        terminating: false,
        results: None,
        config: Fields(&[("vars", ListOf(&MapOf(&Interpolated)))]),
    };

    fn compile(config: Option<&Node>, path: String, cx: &mut Cx<'_>) -> Option<SetVars> {
        let mut c = Config::new(config, path, cx.diags);
        let Some(node) = c.field("vars") else {
            c.missing("vars");
            c.finish();
            return None;
        };
        let mut vars = Vec::new();
        let mut ok = true;
        match node.as_seq() {
            Some(items) => {
                for (i, item) in items.iter().enumerate() {
                    let key = format!("vars[{i}]");
                    match item.as_map() {
                        Some([(name, value)]) if !name.is_empty() => {
                            match Typed::compile(value, &mut c, &format!("{key}.{name}"), 0) {
                                Some(t) => vars.push((name.clone(), t)),
                                None => ok = false,
                            }
                        }
                        _ => {
                            let msg = "each entry of `vars` must be a map with exactly one \
                                       key, the variable's name (`- name: value`)";
                            c.error_at(BAD_VARS, &key, item, msg.into());
                            ok = false;
                        }
                    }
                }
            }
            None => {
                let msg = format!(
                    "`vars` must be a list of `name: value` maps, not {}",
                    node.kind()
                );
                c.error_at(BAD_VARS, "vars", node, msg);
                ok = false;
            }
        }
        c.finish();
        ok.then_some(SetVars { vars })
    }

    async fn apply<C: Context>(&self, ex: &mut Exchange, _: &C) -> Result<Step, GatewayError> {
        for (name, value) in &self.vars {
            let v = value
                .eval(ex.scope())
                .map_err(|error| GatewayError::ValueFailed {
                    action: "set-vars",
                    field: format!("vars.{name}"),
                    error,
                })?;
            ex.set_var(name, v);
        }
        Ok(Step::Continue)
    }
}

impl Typed {
    pub(super) fn compile(
        node: &Node,
        c: &mut Config<'_, '_>,
        key: &str,
        depth: usize,
    ) -> Option<Typed> {
        if depth > MAX_DEPTH {
            let msg = format!("values nest deeper than {MAX_DEPTH} levels");
            c.error_at(TOO_DEEP, key, node, msg);
            return None;
        }
        Some(match &node.value {
            Value::Null => Typed::Const(cel::Value::Null),
            Value::Bool(b) => Typed::Const(cel::Value::Bool(*b)),
            Value::Int(i) => Typed::Const(cel::Value::Int(*i)),
            Value::Float(f) => Typed::Const(cel::Value::Float(*f)),
            Value::Str(s) => match Template::compile(s) {
                Ok(t) => match t.literal() {
                    Some(text) => Typed::Const(cel::Value::from(text)),
                    None => Typed::Text(t),
                },
                Err(e) => {
                    let msg = format!("invalid CEL interpolation: {}", e.0);
                    c.error_at(BAD_TEMPLATE, key, node, msg);
                    return None;
                }
            },
            Value::Seq(items) => {
                let mut out = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    out.push(Typed::compile(item, c, &format!("{key}[{i}]"), depth + 1)?);
                }
                Typed::List(out)
            }
            Value::Map(entries) => {
                let mut out = Vec::new();
                for (k, v) in entries {
                    out.push((
                        k.clone(),
                        Typed::compile(v, c, &format!("{key}.{k}"), depth + 1)?,
                    ));
                }
                Typed::Map(out)
            }
        })
    }

    pub(super) fn eval(&self, scope: &Scope) -> Result<cel::Value, EvalError> {
        Ok(match self {
            Typed::Const(v) => v.clone(),
            Typed::Text(t) => t.eval_typed(scope)?,
            Typed::List(items) => cel::Value::List(Arc::new(
                items
                    .iter()
                    .map(|i| i.eval(scope))
                    .collect::<Result<_, _>>()?,
            )),
            Typed::Map(entries) => {
                let mut m = HashMap::with_capacity(entries.len());
                for (k, v) in entries {
                    m.insert(Key::String(Arc::new(k.clone())), v.eval(scope)?);
                }
                cel::Value::Map(Map { map: Arc::new(m) })
            }
        })
    }
}
