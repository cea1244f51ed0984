//! Spec → program: turns a traffic policy [`Node`] into a [`Policy`], reporting every problem.
//!
//! Normalisation (reference §1.5): ngrok's published multicloud guide writes a phase as a map
//! (`on_http_request: {actions: [...]}`) and nests a rule inside an actions list. ngrok itself
//! rejects both (`ERR_NGROK_9026`). We accept them with a warning, as the rules they plainly mean,
//! and reject them when `strict` is set.

#[cfg(not(target_arch = "wasm32"))]
mod cel_check;
#[cfg(not(target_arch = "wasm32"))]
pub mod cost;
#[cfg(not(target_arch = "wasm32"))]
pub mod render;
#[cfg(not(target_arch = "wasm32"))]
pub mod schema;
#[cfg(test)]
pub(crate) mod testing;
pub mod validate;

use crate::actions::Action;
use crate::actions::Cx;
use crate::exchange::Phase;
use crate::expr::Expr;
use crate::program::{Policy, Rule, RuleSet};
use crate::source::{child, index, At, Severity};
use crate::source::{Node, Value};

pub const INVALID_EXPRESSION: Option<&str> = Some("ERR_NGROK_2200");
pub const INVALID_TEMPLATE: Option<&str> = Some("ERR_NGROK_2224");

/// A single expression whose worst case is above this gets a warning (Worker CPU, ns).
pub const EXPRESSION_WARN_NS: f64 = 1_000_000.0;
/// A policy whose expressions together can cost more than this per request gets a warning
/// (half the free plan's budget)...
pub const POLICY_WARN_NS: f64 = 5_000_000.0;
/// ...and above this it is rejected: the Workers free plan's whole CPU budget per request.
pub const POLICY_LIMIT_NS: f64 = 10_000_000.0;
const STRUCTURE: Option<&str> = Some("ERR_NGROK_9026");

/// What a policy belongs to: a cloud endpoint's policy must always answer (ngrok 2235).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndpointKind {
    Cloud,
    Agent,
}

/// A §1.5 deviation: a warning normally, an error under `strict`.
trait Deviation {
    fn deviation(&mut self, at: At<'_>, message: String);
}

impl Deviation for Cx<'_> {
    fn deviation(&mut self, at: At<'_>, message: String) {
        let message = format!("The TrafficPolicy you provided is invalid: {message}");
        if self.strict {
            self.diags.error(STRUCTURE, at, message);
        } else {
            self.diags.warning(
                STRUCTURE,
                at,
                format!("{message} (accepted and normalised; `--strict` rejects it)"),
            );
        }
    }
}

fn line_of(node: &Node) -> String {
    node.pos
        .map_or(String::new(), |p| format!("line {}: ", p.line))
}

/// Compiles a traffic policy document.
pub fn compile_policy(
    node: &Node,
    path: &str,
    kind: EndpointKind,
    cx: &mut Cx<'_>,
) -> Option<Policy> {
    let Some(entries) = node.as_map() else {
        cx.diags.error(
            STRUCTURE,
            At::new(path, node),
            format!(
                "a traffic policy must be a map of phases, not {}",
                node.kind()
            ),
        );
        return None;
    };
    let mut policy = Policy::default();
    let costs_before = cx.diags.costs.len();
    let errors_before = cx
        .diags
        .items
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .count();
    for (key, value) in entries {
        let at_path = child(path, key);
        let at = At::new(&at_path, value);
        match key.as_str() {
            "on_http_request" => {
                policy.on_http_request =
                    RuleSet::new(phase_rules(value, &at_path, Phase::Request, cx));
                validate::reachability(value, &at_path, cx);
            }
            "on_http_response" => {
                policy.on_http_response =
                    RuleSet::new(phase_rules(value, &at_path, Phase::Response, cx));
                validate::reachability(value, &at_path, cx);
            }
            "on_tcp_connect" => cx.diags.error(
                Some("ERR_NGROK_2230"),
                at,
                "`on_tcp_connect` cannot run here: TCP and TLS end at Cloudflare's edge, before the Worker",
            ),
            "inbound" | "outbound" => cx.diags.error(
                STRUCTURE,
                at,
                format!("`{key}` is the legacy name; use `on_http_request` / `on_http_response`"),
            ),
            other => cx.diags.error_hint(
                STRUCTURE,
                at,
                format!("unknown phase `{other}`; expected `on_http_request` or `on_http_response`"),
                did_you_mean(other, &["on_http_request", "on_http_response"]),
            ),
        }
    }
    let error_count = |cx: &Cx<'_>| {
        cx.diags
            .items
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count()
    };
    // Whole-policy checks read the written rules, so errors elsewhere do not hide them.
    let compiled = error_count(cx) == errors_before;
    if kind == EndpointKind::Cloud {
        let ends = if compiled {
            policy.on_http_request.iter().any(Rule::always_terminates)
        } else {
            validate::always_ends(node.get("on_http_request"))
        };
        if !ends {
            cx.diags.error_hint(
                Some("ERR_NGROK_2235"),
                At::new(path, node),
                "policy not guaranteed to handle traffic: a cloud endpoint's `on_http_request` \
                 needs a rule without expressions that ends in `forward-internal`, \
                 `custom-response`, `deny` or `close-connection`",
                "add a last rule without `expressions`, e.g. `- actions: [{type: deny, config: \
                 {status_code: 404}}]`",
            );
        }
    }
    validate::policy_cost(costs_before, path, node, cx);
    (error_count(cx) == errors_before).then_some(policy)
}

fn phase_rules(value: &Node, path: &str, phase: Phase, cx: &mut Cx<'_>) -> Vec<Rule> {
    match &value.value {
        Value::Null => Vec::new(),
        Value::Seq(items) => items
            .iter()
            .enumerate()
            .flat_map(|(i, item)| compile_rule(item, &index(path, i), phase, &[], cx))
            .collect(),
        Value::Map(_) if value.get("actions").is_some() => {
            cx.deviation(
                At::new(path, value),
                format!(
                    "{}received invalid value of type 'map' for traffic policy rule array",
                    line_of(value)
                ),
            );
            compile_rule(value, path, phase, &[], cx)
        }
        _ => {
            cx.diags.error(
                STRUCTURE,
                At::new(path, value),
                format!(
                    "{}received invalid value of type '{}' for traffic policy rule array",
                    line_of(value),
                    value.kind()
                ),
            );
            Vec::new()
        }
    }
}

/// Compiles one rule. A rule nested in its actions list splits it: the actions before, the
/// nested rule (with the outer expressions and its own), and the actions after, in order.
fn compile_rule(
    node: &Node,
    path: &str,
    phase: Phase,
    outer: &[(&Node, String)],
    cx: &mut Cx<'_>,
) -> Vec<Rule> {
    let Some(entries) = node.as_map() else {
        cx.diags.error(
            STRUCTURE,
            At::new(path, node),
            format!("a rule must be a map, not {}", node.kind()),
        );
        return Vec::new();
    };
    let mut name = None;
    let mut expressions: Vec<(&Node, String)> = outer.to_vec();
    let mut actions_node = None;
    for (key, value) in entries {
        let p = child(path, key);
        match key.as_str() {
            "name" => {
                name = match &value.value {
                    Value::Str(s) => Some(s.clone()),
                    Value::Int(i) => Some(i.to_string()),
                    _ => None,
                }
            }
            "expressions" => match value.as_seq() {
                Some(items) => {
                    for (i, item) in items.iter().enumerate() {
                        match item.as_str() {
                            Some(s) => {
                                validate::rule_expression(s, item, &index(&p, i), phase, cx);
                                expressions.push((item, s.to_string()))
                            }
                            None => cx.diags.error(
                                Some("ERR_NGROK_2200"),
                                At::new(&index(&p, i), item),
                                format!("an expression must be a string, not {}", item.kind()),
                            ),
                        }
                    }
                }
                None if value.value == Value::Null => {}
                None => cx.diags.error(
                    STRUCTURE,
                    At::new(&p, value),
                    "`expressions` must be a list of strings",
                ),
            },
            "actions" => actions_node = Some(value),
            other => cx.diags.error_hint(
                STRUCTURE,
                At::new(&p, value),
                format!(
                    "unknown rule field `{other}`; expected `name`, `expressions` or `actions`"
                ),
                did_you_mean(other, &["name", "expressions", "actions"]),
            ),
        }
    }
    let items = match actions_node.map(|n| (n, n.as_seq())) {
        Some((_, Some(items))) if !items.is_empty() => items,
        Some((n, Some(_))) | Some((n, None)) if n.as_seq().is_none() && n.value != Value::Null => {
            cx.diags.error(
                STRUCTURE,
                At::new(&child(path, "actions"), n),
                "`actions` must be a list",
            );
            return Vec::new();
        }
        _ => {
            cx.diags.error(
                Some("ERR_NGROK_2206"),
                At::new(path, node),
                "a rule needs at least one action",
            );
            return Vec::new();
        }
    };

    let mut rules = Vec::new();
    let mut pending = Vec::new();
    let actions_path = child(path, "actions");
    for (i, item) in items.iter().enumerate() {
        let p = index(&actions_path, i);
        let nested = item.get("type").is_none() && item.get("actions").is_some();
        if nested {
            cx.deviation(
                At::new(&p, item),
                format!(
                    "{}a rule (`expressions` + `actions`) is nested inside an actions list",
                    line_of(item)
                ),
            );
            if !pending.is_empty() {
                rules.push(make_rule(
                    name.clone(),
                    &expressions,
                    std::mem::take(&mut pending),
                    path,
                    cx,
                ));
            }
            rules.extend(compile_rule(item, &p, phase, &expressions, cx));
        } else if let Some(action) = {
            validate::runtime_compression(item, &p, !expressions.is_empty(), cx);
            compile_action(item, &p, phase, cx)
        } {
            push_merging(&mut pending, action);
        }
    }
    if !pending.is_empty() {
        rules.push(make_rule(name, &expressions, pending, path, cx));
    }
    rules
}

/// Appends an action; a `rate-limit` right after one with the same bucket key joins it, so
/// both are decided in one round trip to the bucket.
fn push_merging(pending: &mut Vec<Action>, action: Action) {
    let action = match (pending.last_mut(), action) {
        (Some(Action::RateLimit(prev)), Action::RateLimit(next)) => match prev.absorb(next) {
            Ok(()) => return,
            Err(next) => Action::RateLimit(next),
        },
        (_, action) => action,
    };
    pending.push(action);
}

fn make_rule(
    name: Option<String>,
    sources: &[(&Node, String)],
    actions: Vec<Action>,
    path: &str,
    cx: &mut Cx<'_>,
) -> Rule {
    let mut expressions = Vec::new();
    for (node, src) in sources {
        match Expr::compile(src) {
            Ok(e) => expressions.push(e),
            Err(e) => cx.diags.error(
                Some("ERR_NGROK_2200"),
                At::new(&child(path, "expressions"), node),
                format!("invalid expression `{src}`: {}", e.0),
            ),
        }
    }
    let mut actions = actions;
    for action in &mut actions {
        action.set_rule_name(name.as_deref());
    }
    Rule {
        name,
        expressions,
        actions,
    }
}

fn compile_action(item: &Node, path: &str, phase: Phase, cx: &mut Cx<'_>) -> Option<Action> {
    let Some(entries) = item.as_map() else {
        cx.diags.error(
            STRUCTURE,
            At::new(path, item),
            format!("an action must be a map, not {}", item.kind()),
        );
        return None;
    };
    for (key, value) in entries {
        if key != "type" && key != "config" {
            cx.diags.error_hint(
                Some("ERR_NGROK_2203"),
                At::new(&child(path, key), value),
                format!("unknown action field `{key}`; expected `type` and `config`"),
                did_you_mean(key, &["type", "config"]),
            );
        }
    }
    let Some(type_node) = item.get("type") else {
        cx.diags.error(
            Some("ERR_NGROK_2201"),
            At::new(path, item),
            "an action needs a `type`",
        );
        return None;
    };
    let Some(type_name) = type_node.as_str() else {
        cx.diags.error(
            Some("ERR_NGROK_2201"),
            At::new(&child(path, "type"), type_node),
            "`type` must be a string",
        );
        return None;
    };
    if !validate::action(type_name, type_node, item.get("config"), path, phase, cx) {
        return None;
    }
    let action = Action::compile(type_name, item.get("config"), path, type_node, cx);
    if action.is_none() {
        let hint = validate::unknown_type_hint(type_name);
        cx.diags.add_hint(path, "ERR_NGROK_2201", &hint);
    }
    action
}

/// "did you mean `x`?" for the closest of `names`, or nothing when none is close.
fn did_you_mean(word: &str, names: &[&str]) -> String {
    crate::source::closest(word, names.iter().copied())
        .map_or(String::new(), |c| format!("did you mean `{c}`?"))
}
