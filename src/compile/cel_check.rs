//! The CEL checks of validation (native only): each expression's static type check
//! (schema.rs) and cost estimate (cost.rs), and the policy-wide cost limit.

use super::cost::{self, show_ns};
use super::schema::{self, Ty};
use super::{
    EXPRESSION_WARN_NS, INVALID_EXPRESSION, INVALID_TEMPLATE, POLICY_LIMIT_NS, POLICY_WARN_NS,
};
use crate::actions::Cx;
use crate::exchange::Phase;
use crate::source::ExprCost;
use crate::source::Node;
use crate::source::{At, Diagnostic, Severity};

/// Where a CEL source sits: a bare expression (rule, bucket key) or inside a `${}`.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Expression,
    Template,
}

/// Type-checks and costs one CEL source at `offset` in the string value `node`; returns its
/// static type, or `None` when it does not parse (the compiler reports that).
fn check_cel(
    src: &str,
    offset: usize,
    node: &Node,
    path: &str,
    phase: Phase,
    kind: Kind,
    cx: &mut Cx<'_>,
) -> Option<Ty> {
    // The gateway's own parser, so its macros (`sortBy`, two-variable `all`, ...) expand as
    // they will when the policy runs.
    let program = crate::expr::ext::env().compile(src).ok()?;
    let (ty, problems, ip_intel) =
        schema::check(program.expression(), program.source_info(), phase);
    for read in ip_intel {
        let var = read.variable;
        let value = if var.ends_with("categories") {
            "`[]`"
        } else {
            "`false`"
        };
        cx.diags.ip_intel_reads.push(Diagnostic {
            severity: Severity::Warning,
            code: None,
            file: None,
            pos: node.pos,
            path: path.to_string(),
            message: format!(
                "`{var}` is {value} for every client here: this bundle has no IP-intelligence list"
            ),
            hint: Some(
                "keep the shipped list (policy-check and upload-policy.sh add it unless \
                 `--no-ip-intel`), or give `kind: IPIntelligence` documents \
                 (docs/ip-intelligence.md)"
                    .into(),
            ),
            // At the expression, as the other whole-bundle warnings are.
            span: None,
        });
    }
    let code = match kind {
        Kind::Expression => INVALID_EXPRESSION,
        Kind::Template => INVALID_TEMPLATE,
    };
    for p in problems {
        let (severity, code) = if p.warning {
            (Severity::Warning, None)
        } else {
            (Severity::Error, code)
        };
        cx.diags.push_full(Diagnostic {
            severity,
            code,
            file: None,
            pos: node.pos,
            path: path.to_string(),
            message: format!("{} in `{}`", p.message, one_line(src)),
            hint: p.hint,
            span: Some((p.span.0 + offset as u32, p.span.1 + offset as u32)),
        });
    }
    let estimate = cost::estimate(program.expression());
    let what = estimate.parts.first().map(|(_, w)| w.clone());
    if estimate.ns > EXPRESSION_WARN_NS {
        let parts: Vec<String> = estimate
            .parts
            .iter()
            .take(3)
            .map(|(ns, w)| format!("{w} (~{})", show_ns(*ns)))
            .collect();
        // A warning even past the whole budget: the estimate is a worst case an attacker can
        // force, but a policy ngrok accepts must load here unchanged.
        cx.diags.push_full(Diagnostic {
            severity: Severity::Warning,
            code: None,
            file: None,
            pos: node.pos,
            path: path.to_string(),
            message: format!(
                "`{}` may cost up to {} of Worker CPU per evaluation: {}",
                one_line(src),
                show_ns(estimate.ns),
                parts.join("; ")
            ),
            hint: Some(cost_hint(&estimate.parts)),
            span: Some((offset as u32, (offset + src.len()) as u32)),
        });
    }
    cx.diags.costs.push(ExprCost {
        path: path.to_string(),
        ns: estimate.ns,
        what,
    });
    Some(ty)
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn cost_hint(parts: &[(f64, String)]) -> String {
    match parts.first() {
        Some((_, w)) if w.contains("matches") => {
            "prefer `startsWith`/`endsWith`/`contains`, or match on a short, bounded value".into()
        }
        Some((_, w)) if w.contains("QueryParam") => {
            "read `req.url.query_params['name']` instead: it is decoded once per request".into()
        }
        Some((_, w)) if w.contains("comprehension") => {
            "look the item up by key (`req.headers['name']`) instead of iterating".into()
        }
        _ => "check a smaller value (a single header, the path) first".into(),
    }
}

/// Checks a rule's expression; reports a static type that is not bool.
pub(crate) fn rule_expression(src: &str, node: &Node, path: &str, phase: Phase, cx: &mut Cx<'_>) {
    let Some(ty) = check_cel(src, 0, node, path, phase, Kind::Expression, cx) else {
        return;
    };
    if !matches!(ty, Ty::Bool | Ty::Dyn) {
        let message = format!(
            "a rule expression must be a bool, but `{}` is a {}",
            one_line(src),
            ty.name()
        );
        cx.diags.push_full(Diagnostic {
            severity: Severity::Error,
            code: INVALID_EXPRESSION,
            file: None,
            pos: node.pos,
            path: path.to_string(),
            message,
            hint: schema::rule_hint(&ty),
            span: Some((0, src.len() as u32)),
        });
    }
}

/// Checks a bare expression (a `rate-limit` bucket key).
pub(crate) fn expression(src: &str, node: &Node, path: &str, phase: Phase, cx: &mut Cx<'_>) {
    check_cel(src, 0, node, path, phase, Kind::Expression, cx);
}

/// Checks every `${...}` of a config string.
pub(crate) fn template(text: &str, node: &Node, path: &str, phase: Phase, cx: &mut Cx<'_>) {
    let mut from = 0;
    while let Some(start) = text[from..].find("${").map(|i| i + from) {
        let body = &text[start + 2..];
        let Some(end) = crate::expr::closing_brace(body) else {
            return;
        };
        let raw = &body[..end];
        let lead = raw.len() - raw.trim_start().len();
        let src = raw.trim();
        // `${name}` / `${1}` in redirect, url-rewrite and find-replace `to` may name a capture
        // group of `from`; the action resolves that, so a bare name is not checked here.
        let group_like = src.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !src.is_empty() && !group_like {
            check_cel(src, start + 2 + lead, node, path, phase, Kind::Template, cx);
        }
        from = start + 2 + end + 1;
    }
}

/// The policy-wide cost check over the estimates recorded since `mark`.
pub(crate) fn policy_cost(mark: usize, path: &str, node: &Node, cx: &mut Cx<'_>) {
    let costs = &cx.diags.costs[mark..];
    let total: f64 = costs.iter().map(|c| c.ns).sum();
    if total <= POLICY_WARN_NS {
        return;
    }
    let mut top: Vec<&ExprCost> = costs.iter().collect();
    top.sort_by(|a, b| b.ns.total_cmp(&a.ns));
    let list: Vec<String> = top
        .iter()
        .take(3)
        .map(|c| {
            let what = c
                .what
                .as_deref()
                .map_or(String::new(), |w| format!(": {w}"));
            format!("`{}` ~{}{what}", c.path, show_ns(c.ns))
        })
        .collect();
    // A warning, not an error: the sum counts every rule's expressions, while indexed dispatch
    // and terminating actions skip most of them on any one request.
    let message = format!(
        "the policy's expressions may cost up to {} of Worker CPU per request if every rule's \
         expressions ran (budget {}, warning above {}); most expensive: {}",
        show_ns(total),
        show_ns(POLICY_LIMIT_NS),
        show_ns(POLICY_WARN_NS),
        list.join("; ")
    );
    let hint = "see docs/validation.md#cost for the model; bound the inputs or drop regexes";
    cx.diags
        .warning_hint(None, At::new(path, node), message, hint);
}

#[cfg(test)]
mod tests {
    use crate::compile::testing::compile_json;
    use crate::compile::EndpointKind;
    use crate::source::Severity;

    /// A documented variable this platform cannot fill loads with a warning (the policy still
    /// compiles); a misspelt one is an error.
    #[test]
    fn unfillable_variables_are_warnings_at_upload() {
        let policy = |expr: &str| {
            serde_json::json!({"on_http_request": [
                {"expressions": [expr], "actions": [{"type": "deny"}]},
                {"actions": [{"type": "deny", "config": {"status_code": 404}}]}
            ]})
        };
        let (compiled, diags) = compile_json(&policy("conn.bytes_in > 1000"), EndpointKind::Cloud);
        assert!(compiled.is_some(), "{:?}", diags.items);
        assert!(
            diags.items.iter().any(|d| d.severity == Severity::Warning
                && d.message.contains("conn.bytes_in")
                && d.code.is_none()),
            "{:?}",
            diags.items
        );
        let (compiled, diags) = compile_json(&policy("conn.bytes_inn > 1"), EndpointKind::Cloud);
        assert!(compiled.is_none());
        assert!(diags.items.iter().any(|d| d.severity == Severity::Error
            && d.hint.as_deref() == Some("did you mean `conn.bytes_in`?")));
    }
}
