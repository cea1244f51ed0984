//! Header names ignore case (RFC 9110 §5.1). `req.headers` and `res.headers` are keyed by lower
//! case names, as ngrok's variables page says, yet ngrok's own pages also read
//! `req.headers['User-Agent']` and `'2' in req.headers['X-Api-Version']` and show them working.
//! So a literal key is lower-cased once, at compile time: `req.headers['User-Agent']` runs as
//! `req.headers['user-agent']`, and `'X-A' in req.headers` as `'x-a' in req.headers`. A key
//! computed at run time is left as it is.

use super::ast::children_mut;
use cel::common::ast::{operators, Expr, LiteralValue};
use cel::IdedExpr;

/// Lower-cases the literal header names `expr` looks up; returns whether any changed.
pub fn rewrite(expr: &mut IdedExpr) -> bool {
    let mut changed = false;
    walk(expr, &mut changed);
    changed
}

fn walk(e: &mut IdedExpr, changed: &mut bool) {
    if let Expr::Call(call) = &mut e.expr {
        let key = match (call.func_name.as_str(), call.args.as_mut_slice()) {
            (operators::INDEX | operators::OPT_INDEX, [map, key]) if is_headers(map) => Some(key),
            (operators::IN, [key, map]) if is_headers(map) => Some(key),
            _ => None,
        };
        if let Some(key) = key {
            lower(key, changed);
        }
    }
    for child in children_mut(e) {
        walk(child, changed);
    }
}

/// `req.headers` or `res.headers`.
fn is_headers(e: &IdedExpr) -> bool {
    let Expr::Select(sel) = &e.expr else {
        return false;
    };
    if sel.field != "headers" || sel.test {
        return false;
    }
    matches!(&sel.operand.expr, Expr::Ident(root) if root == "req" || root == "res")
}

fn lower(key: &mut IdedExpr, changed: &mut bool) {
    if let Expr::Literal(LiteralValue::String(s)) = &key.expr {
        let name: &str = s.inner();
        if name.bytes().any(|b| b.is_ascii_uppercase()) {
            let lowered = name.to_ascii_lowercase();
            key.expr = Expr::Literal(LiteralValue::String(lowered.into()));
            *changed = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::expr::Expr;

    /// What the rewritten expression reads, through the hybrid (rewritten) program.
    fn rewritten(src: &str) -> bool {
        Expr::compile(src).unwrap().hybrid.is_some()
    }

    #[test]
    fn literal_header_names_are_lower_cased() {
        assert!(rewritten("req.headers['User-Agent'][0] == 'x'"));
        assert!(rewritten("'2' in req.headers['X-Api-Version']"));
        assert!(rewritten("'X-A' in res.headers"));
        assert!(!rewritten("req.headers['user-agent'][0] == 'x'"));
        // Not a header map, or not a literal: left alone.
        assert!(!rewritten("vars['User']"));
        assert!(!rewritten("req.headers[vars.name]"));
    }
}
