//! Hybrid variables: ngrok documents `req.url`, `req.user_agent`, `req.content_type`,
//! `res.content_type`, `conn.client_ip` and the client certificate's `issuer`/`subject`/`san`
//! both as a string and as an object with fields (`req.url == 'https://x/y'` and
//! `req.url.path`).
//!
//! Each is built as a map holding its fields plus its string under [`TEXT`]. At compile time,
//! every use of a hybrid path that does not select a field from it (`req.url`, not
//! `req.url.path`) is rewritten to read [`TEXT`]: comparisons, functions and `${}` see the
//! string; field access sees the map. Nothing is added per request.

use super::ast::children_mut;
use cel::common::ast::operators;
use cel::common::ast::{EntryExpr, Expr, SelectExpr};
use cel::IdedExpr;

/// The key a hybrid map keeps its string under; not an identifier, so no policy can select it
/// by name.
pub const TEXT: &str = "#text";

/// The hybrid paths, as written in policies.
const HYBRIDS: &[&[&str]] = &[
    &["req", "url"],
    &["req", "user_agent"],
    &["req", "content_type"],
    &["res", "content_type"],
    &["conn", "client_ip"],
    &["conn", "server_ip"],
    &["conn", "tls", "client", "issuer"],
    &["conn", "tls", "client", "subject"],
    &["conn", "tls", "client", "san"],
];

/// Rewrites `expr` in place; returns whether anything changed.
pub fn rewrite(expr: &mut IdedExpr) -> bool {
    let mut changed = false;
    walk(expr, false, &mut changed);
    changed
}

/// `selected`: the parent reads a field (or index) of this node.
fn walk(e: &mut IdedExpr, selected: bool, changed: &mut bool) {
    match &mut e.expr {
        Expr::Select(sel) => walk(&mut sel.operand, true, changed),
        Expr::Call(call) => {
            let index =
                call.func_name == operators::INDEX || call.func_name == operators::OPT_INDEX;
            if let Some(t) = &mut call.target {
                walk(t, false, changed);
            }
            for (i, a) in call.args.iter_mut().enumerate() {
                walk(a, index && i == 0, changed);
            }
        }
        _ => {
            for x in children_mut(e) {
                walk(x, false, changed);
            }
        }
    }
    if !selected && is_hybrid(e) {
        let inner = std::mem::take(e);
        *e = IdedExpr {
            id: inner.id,
            expr: Expr::Select(SelectExpr {
                operand: Box::new(inner),
                field: TEXT.to_string(),
                test: false,
            }),
        };
        *changed = true;
    }
}

/// Whether `e` spells one of the hybrid paths (`a.b.c`, plain selects only).
fn is_hybrid(e: &IdedExpr) -> bool {
    let mut path: Vec<&str> = Vec::with_capacity(4);
    let mut cur = e;
    loop {
        match &cur.expr {
            Expr::Select(s) if !s.test => {
                path.push(&s.field);
                cur = &s.operand;
            }
            Expr::Ident(name) => {
                path.push(name);
                break;
            }
            _ => return false,
        }
        if path.len() > 4 {
            return false;
        }
    }
    path.reverse();
    HYBRIDS.contains(&path.as_slice())
}

#[cfg(test)]
mod tests {
    use super::*;
    use cel::{Context, Program, Value};

    fn hybrid_url() -> Value {
        super::super::map(vec![
            ("path", Value::from("/y")),
            (TEXT, Value::from("https://x/y")),
        ])
    }

    fn run(src: &str) -> (bool, Result<Value, String>) {
        let program = Program::compile(src).unwrap();
        let mut expr = program.expression().clone();
        let changed = rewrite(&mut expr);
        let mut ctx = Context::default();
        ctx.add_variable_from_value("req", super::super::map(vec![("url", hybrid_url())]));
        let result = Value::resolve(&expr, &ctx).map_err(|e| e.to_string());
        (changed, result)
    }

    #[test]
    fn bare_paths_read_the_string_fields_stay_fields() {
        assert_eq!(
            run("req.url == 'https://x/y'"),
            (true, Ok(Value::Bool(true)))
        );
        assert_eq!(run("req.url.path"), (false, Ok(Value::from("/y"))));
        assert_eq!(run("req.url['path']"), (false, Ok(Value::from("/y"))));
        assert_eq!(run("has(req.url.path)"), (false, Ok(Value::Bool(true))));
        assert_eq!(
            run("req.url.startsWith('https://') && size(req.url) == 11"),
            (true, Ok(Value::Bool(true)))
        );
        assert_eq!(
            run("[req.url].exists(u, u.endsWith('/y'))"),
            (true, Ok(Value::Bool(true)))
        );
        assert_eq!(
            run("{'u': req.url}['u'] + req.url.path"),
            (true, Ok(Value::from("https://x/y/y")))
        );
        // Not a hybrid path: untouched.
        assert!(!run("req").0);
    }
}

/// Whether the (rewritten) expression reads `conn` only as `conn.client_ip`'s string, as a
/// rate-limit `bucket_key` does: then a request builds that one string, not the whole `conn`.
pub fn reads_only_client_ip(e: &IdedExpr) -> bool {
    fn is_ip_text(e: &IdedExpr) -> bool {
        matches!(&e.expr, Expr::Select(s) if !s.test && s.field == TEXT && is_client_ip(&s.operand))
    }
    fn is_client_ip(e: &IdedExpr) -> bool {
        matches!(&e.expr, Expr::Select(s) if !s.test && s.field == "client_ip"
            && matches!(&s.operand.expr, Expr::Ident(n) if n == "conn"))
    }
    fn ok(e: &IdedExpr) -> bool {
        if is_ip_text(e) {
            return true;
        }
        match &e.expr {
            Expr::Ident(n) => n != "conn",
            Expr::Unspecified | Expr::Literal(_) => true,
            Expr::Select(s) => ok(&s.operand),
            Expr::Call(c) => c.target.as_deref().is_none_or(ok) && c.args.iter().all(ok),
            Expr::Comprehension(c) => [
                &c.iter_range,
                &c.accu_init,
                &c.loop_cond,
                &c.loop_step,
                &c.result,
            ]
            .into_iter()
            .all(ok),
            Expr::List(l) => l.elements.iter().all(ok),
            Expr::Map(m) => m.entries.iter().all(|entry| match &entry.expr {
                EntryExpr::MapEntry(me) => ok(&me.key) && ok(&me.value),
                EntryExpr::StructField(f) => ok(&f.value),
            }),
            Expr::Struct(s) => s.entries.iter().all(|entry| match &entry.expr {
                EntryExpr::MapEntry(me) => ok(&me.key) && ok(&me.value),
                EntryExpr::StructField(f) => ok(&f.value),
            }),
        }
    }
    ok(e)
}

#[cfg(test)]
mod client_ip_only {
    use super::*;

    fn only(src: &str) -> bool {
        let mut e = cel::Program::compile(src).unwrap().expression().clone();
        rewrite(&mut e);
        reads_only_client_ip(&e)
    }

    #[test]
    fn detects_string_only_reads() {
        assert!(only("conn.client_ip"));
        assert!(only(
            "inCidrRange(conn.client_ip, '10.0.0.0/8') && req.method == 'GET'"
        ));
        assert!(!only("conn.client_ip.categories"));
        assert!(!only("conn.geo.city"));
        assert!(!only("has(conn.client_ip)"));
        assert!(!only("conn"));
        assert!(!only("[conn].size()"));
    }
}

/// Whether the expression reads any of `fields` of the variable `root`, or `root` as a whole
/// (bare, indexed, iterated): the fields worth building only for the expressions that read them.
pub fn reads_fields(e: &IdedExpr, root: &str, fields: &[&str]) -> bool {
    let is_root = |x: &IdedExpr| matches!(&x.expr, Expr::Ident(n) if n == root);
    match &e.expr {
        Expr::Ident(n) => n == root,
        Expr::Select(s) if is_root(&s.operand) => fields.contains(&s.field.as_str()),
        Expr::Select(s) => reads_fields(&s.operand, root, fields),
        Expr::Unspecified | Expr::Literal(_) => false,
        Expr::Call(c) => {
            c.target
                .as_deref()
                .is_some_and(|t| reads_fields(t, root, fields))
                || c.args.iter().any(|a| reads_fields(a, root, fields))
        }
        Expr::Comprehension(c) => [
            &c.iter_range,
            &c.accu_init,
            &c.loop_cond,
            &c.loop_step,
            &c.result,
        ]
        .into_iter()
        .any(|x| reads_fields(x, root, fields)),
        Expr::List(l) => l.elements.iter().any(|x| reads_fields(x, root, fields)),
        Expr::Map(m) => m.entries.iter().any(|entry| match &entry.expr {
            EntryExpr::MapEntry(me) => {
                reads_fields(&me.key, root, fields) || reads_fields(&me.value, root, fields)
            }
            EntryExpr::StructField(f) => reads_fields(&f.value, root, fields),
        }),
        Expr::Struct(s) => s.entries.iter().any(|entry| match &entry.expr {
            EntryExpr::MapEntry(me) => {
                reads_fields(&me.key, root, fields) || reads_fields(&me.value, root, fields)
            }
            EntryExpr::StructField(f) => reads_fields(&f.value, root, fields),
        }),
    }
}

#[cfg(test)]
mod field_reads {
    use super::*;

    fn reads(src: &str) -> bool {
        let e = cel::Program::compile(src).unwrap().expression().clone();
        reads_fields(&e, "req", &["user_agent", "cookies"])
    }

    #[test]
    fn finds_heavy_fields() {
        assert!(reads("req.user_agent.is_bot"));
        assert!(reads("req.url.path == '/' && size(req.cookies) > 0"));
        assert!(reads("req"));
        assert!(reads("req['user_agent']"));
        assert!(!reads("req.url.path == '/' && req.headers['a'][0] == 'b'"));
        assert!(!reads("getReqHeader('User-Agent')"));
    }
}
