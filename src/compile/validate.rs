//! Validation beyond what compiling needs (docs/validation.md): every action against the
//! action table (phases, config keys, CEL in config strings), the static type check and cost estimate
//! of every CEL expression, and the whole-policy checks (unreachable actions and rules, a cloud
//! endpoint that may not answer). All of it works on the written policy, so one broken action
//! or expression never hides a problem elsewhere.

#[cfg(not(target_arch = "wasm32"))]
pub(crate) use super::cel_check::{policy_cost, rule_expression};
use crate::actions::spec::{self, ConfigShape};
use crate::actions::Cx;
use crate::exchange::Phase;
use crate::source::{child, index, At};
use crate::source::{Node, Value};

/// The CEL checks run where policies are written (policy-check, tests), not in the Worker: it
/// only loads bundles policy-check made, and they cost wasm size and cold-start CPU there.
#[cfg(not(target_arch = "wasm32"))]
use super::cel_check as cel;

#[cfg(target_arch = "wasm32")]
mod cel {
    use super::{Node, Phase};
    use crate::actions::Cx;
    pub fn template(_: &str, _: &Node, _: &str, _: Phase, _: &mut Cx<'_>) {}
    pub fn expression(_: &str, _: &Node, _: &str, _: Phase, _: &mut Cx<'_>) {}
}
#[cfg(target_arch = "wasm32")]
pub(crate) fn rule_expression(_: &str, _: &Node, _: &str, _: Phase, _: &mut Cx<'_>) {}
#[cfg(target_arch = "wasm32")]
pub(crate) fn policy_cost(_: usize, _: &str, _: &Node, _: &mut Cx<'_>) {}

const BAD_CONFIG: Option<&str> = Some("ERR_NGROK_2203");

/// Checks one action against its declaration ([`ActionSpec`](crate::actions::ActionSpec)) before its own compile runs. Returns `false` when it
/// must not be compiled (it cannot run in this phase).
pub(crate) fn action(
    type_name: &str,
    type_node: &Node,
    config: Option<&Node>,
    path: &str,
    phase: Phase,
    cx: &mut Cx<'_>,
) -> bool {
    let Some(spec) = spec::find(type_name) else {
        return true;
    };
    if !spec.phases.contains(&phase.name()) {
        cx.diags.error_hint(
            Some("ERR_NGROK_2202"),
            At::new(path, type_node),
            format!(
                "action `{type_name}` is not supported in `{}`",
                phase.name()
            ),
            format!("`{type_name}` runs in: {}", spec.phases.join(", ")),
        );
        return false;
    }
    close_connection(type_name, type_node, path, cx);
    if let Some(config) = config {
        shape(
            config,
            &spec.config,
            &child(path, "config"),
            type_name,
            phase,
            cx,
        );
        upstream_host(type_name, config, path, phase, cx);
    }
    true
}

/// Platform difference: on ngrok, `add-headers` of `host` in `on_http_request` overwrites the
/// Host the upstream sees. Here the Worker's `fetch` sets Host to the upstream URL's host (the
/// tunnel hostname) and drops any other, so the header never reaches the upstream.
fn upstream_host(type_name: &str, config: &Node, path: &str, phase: Phase, cx: &mut Cx<'_>) {
    if type_name != "add-headers" || phase != Phase::Request {
        return;
    }
    let Some(headers) = config.get("headers").and_then(Node::as_map) else {
        return;
    };
    for (name, value) in headers {
        if name.eq_ignore_ascii_case("host") {
            cx.diags.warning_hint(
                None,
                At::new(
                    &child(&child(&child(path, "config"), "headers"), name),
                    value,
                ),
                "`host` does not reach the upstream here: the Worker's fetch sends the upstream \
                 URL's own host (its tunnel hostname), where ngrok would send this value",
                "the upstream finds the public host in `X-Forwarded-Host`; to serve another \
                 host, point `spec.upstream.url` (or the tunnel's ingress) at it \
                 (docs/ngrok-compatibility.md)",
            );
        }
    }
}

/// Platform difference: ngrok closes the client's connection before any response byte. A
/// Worker cannot: the client gets a 502 head and a body that ends early (docs/actions.md).
fn close_connection(type_name: &str, type_node: &Node, path: &str, cx: &mut Cx<'_>) {
    if type_name == "close-connection" {
        cx.diags.warning_hint(
            None,
            At::new(path, type_node),
            "`close-connection` cannot close the connection on Cloudflare Workers: the client \
             gets a 502 head whose body ends early, which most clients report as a failed \
             request, where ngrok sends nothing",
            "for a defined answer use `deny` or `custom-response` (docs/ngrok-compatibility.md)",
        );
    }
}

/// The hint for an unknown action type (added to the compiler's `ERR_NGROK_2201`).
pub(crate) fn unknown_type_hint(type_name: &str) -> String {
    match crate::source::closest(type_name, crate::actions::ACTIONS.iter().map(|a| a.name)) {
        Some(c) => format!("did you mean `{c}`?"),
        None => format!(
            "action types are: {}",
            crate::actions::ACTIONS
                .iter()
                .map(|a| a.name)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn shape(node: &Node, want: &ConfigShape, path: &str, action: &str, phase: Phase, cx: &mut Cx<'_>) {
    match (want, &node.value) {
        (ConfigShape::Interpolated, Value::Str(s)) => cel::template(s, node, path, phase, cx),
        (ConfigShape::Cel, Value::Str(s)) => cel::expression(s, node, path, phase, cx),
        (ConfigShape::Fields(fields), Value::Map(entries)) => {
            for (k, v) in entries {
                let p = child(path, k);
                match fields.iter().find(|(name, _)| name == k) {
                    Some((_, s)) => shape(v, s, &p, action, phase, cx),
                    None => {
                        let names = fields.iter().map(|(n, _)| *n);
                        let hint = match crate::source::closest(k, names.clone()) {
                            Some(c) => format!("did you mean `{c}`?"),
                            None if fields.is_empty() => format!("`{action}` takes no config"),
                            None => format!(
                                "the fields here are: {}",
                                names.collect::<Vec<_>>().join(", ")
                            ),
                        };
                        cx.diags.error_hint(
                            BAD_CONFIG,
                            At::new(&p, v),
                            format!("unknown field `{k}` in `{action}` config"),
                            hint,
                        );
                    }
                }
            }
        }
        // Documented as a list but written as one object (jwt-validation `keys`), or the reverse.
        (ConfigShape::Fields(_), Value::Seq(items)) => {
            for (i, item) in items.iter().enumerate() {
                shape(item, want, &index(path, i), action, phase, cx);
            }
        }
        (ConfigShape::MapOf(s), Value::Map(entries)) => {
            for (k, v) in entries {
                shape(v, s, &child(path, k), action, phase, cx);
            }
        }
        (ConfigShape::ListOf(s), Value::Seq(items)) => {
            for (i, item) in items.iter().enumerate() {
                shape(item, s, &index(path, i), action, phase, cx);
            }
        }
        _ => {}
    }
}

/// What the whole-policy checks need of one written rule.
struct RuleShape<'a> {
    node: &'a Node,
    /// No expressions: matches every request.
    always: bool,
    /// Index and type of the first action that always ends the phase.
    ends_at: Option<(usize, String)>,
    /// Some action's type is unknown: whether the rule ends the phase cannot be told.
    unknown: bool,
    actions: Vec<&'a Node>,
}

fn rule_shape(node: &Node) -> Option<RuleShape<'_>> {
    let always = match node.get("expressions") {
        None => true,
        Some(e) => e.value == Value::Null || e.as_seq().is_some_and(<[Node]>::is_empty),
    };
    let actions: Vec<&Node> = node.get("actions")?.as_seq()?.iter().collect();
    let ends_at = actions.iter().enumerate().find_map(|(i, a)| {
        let t = a.get("type")?.as_str()?;
        let spec = spec::find(t)?;
        let continues = a
            .get("config")
            .and_then(|c| c.get("on_error"))
            .and_then(Node::as_str)
            == Some("continue");
        (spec.terminating && !continues).then(|| (i, t.to_string()))
    });
    let unknown = actions.iter().any(|a| {
        a.get("type")
            .and_then(Node::as_str)
            .is_none_or(|t| spec::find(t).is_none())
    });
    Some(RuleShape {
        node,
        always,
        ends_at,
        unknown,
        actions,
    })
}

/// Unreachable actions and rules (ngrok's `ERR_NGROK_2207`) in one phase's rule list.
pub(crate) fn reachability(phase: &Node, path: &str, cx: &mut Cx<'_>) -> bool {
    let Some(items) = phase.as_seq() else {
        return false;
    };
    let rules: Vec<(usize, RuleShape<'_>)> = items
        .iter()
        .enumerate()
        .filter_map(|(i, r)| rule_shape(r).map(|s| (i, s)))
        .collect();
    for (i, rule) in &rules {
        if let Some((t, ty)) = &rule.ends_at {
            if let Some(next) = rule.actions.get(t + 1) {
                let p = index(&child(&index(path, *i), "actions"), t + 1);
                let at = next.get("type").unwrap_or(next);
                let later = next.get("type").and_then(Node::as_str).unwrap_or("?");
                cx.diags.error_hint(
                    Some("ERR_NGROK_2207"),
                    At::new(&p, at),
                    format!(
                        "action `{later}` can never run: `{ty}` before it always ends the phase"
                    ),
                    format!("remove it, or move it before `{ty}`"),
                );
            }
        }
    }
    let first_final = rules.iter().find(|(_, r)| r.always && r.ends_at.is_some());
    if let Some((i, rule)) = first_final {
        if let Some((j, next)) = items.iter().enumerate().nth(i + 1) {
            let ty = rule.ends_at.as_ref().map_or("", |(_, t)| t.as_str());
            let name = rule
                .node
                .get("name")
                .and_then(Node::as_str)
                .map_or(String::new(), |n| format!(" (`{n}`)"));
            let more = items.len() - j - 1;
            let also = if more > 0 {
                format!(", nor can the {more} after it")
            } else {
                String::new()
            };
            cx.diags.error_hint(
                Some("ERR_NGROK_2207"),
                At::new(&index(path, j), next),
                format!(
                    "this rule can never run{also}: rule {i}{name} has no expressions and always \
                     ends the phase with `{ty}`"
                ),
                format!("move rule {i} last, or give it `expressions`"),
            );
        }
        return true;
    }
    false
}

/// Whether a phase's rules may end it (some rule matches everything and terminates, or its
/// actions are too broken to tell: their own errors say what is wrong).
pub(crate) fn always_ends(phase: Option<&Node>) -> bool {
    let Some(phase) = phase else {
        return false;
    };
    let rules: Vec<&Node> = match (&phase.value, phase.get("actions")) {
        (Value::Seq(items), _) => items.iter().collect(),
        // A map-shaped phase (reference §1.5) is one rule.
        (Value::Map(_), Some(_)) => vec![phase],
        _ => return false,
    };
    rules
        .into_iter()
        .filter_map(rule_shape)
        .any(|r| r.always && (r.ends_at.is_some() || r.unknown))
}

/// Platform difference: Cloudflare compresses eligible responses (text, JSON, ... with status
/// 200, 403 or 404) with gzip or br for clients that accept them, after the Worker and whatever
/// it decided. So a `compress-response` whose rule has conditions cannot keep the responses it
/// does not match uncompressed, as ngrok would.
pub(crate) fn runtime_compression(item: &Node, path: &str, conditional: bool, cx: &mut Cx<'_>) {
    let Some(type_node) = item
        .get("type")
        .filter(|t| t.as_str() == Some("compress-response"))
    else {
        return;
    };
    if !conditional {
        return;
    }
    cx.diags.warning_hint(
        None,
        At::new(path, type_node),
        "`compress-response` under expressions: Cloudflare compresses eligible responses (text \
         and JSON types; status 200, 403 or 404) with gzip or br on its own for clients that \
         accept them, so a response this rule does not match may still arrive compressed",
        "the client still gets a coding it asked for; Cloudflare documents its Compression \
         Rules and `Cache-Control: no-transform` for responses it must leave alone \
         (docs/ngrok-compatibility.md)",
    );
}
