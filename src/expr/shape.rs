//! Recognises the request tests a rule dispatcher can answer without CEL (docs/dispatch.md).
//!
//! Only shapes whose CEL result is known exactly from the request are recognised, with their
//! error case: `getReqHeader('h')[0] == 'v'` raises an error when the request has no `h` header
//! (indexing an empty list), and `req.headers['h']` raises one for a missing key.

use super::Expr;
use cel::common::ast::{operators, Expr as Ast, LiteralValue};
use cel::IdedExpr;

/// A test on the request, true exactly when the CEL expression it came from yields `true`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Test {
    /// `req.url.path == 'p'` (the decoded path, as `req.url.path` reads).
    PathEq(String),
    /// `req.url.path.startsWith('p')`.
    PathPrefix(String),
    /// `req.host == 'h'` or `req.url.host == 'h'`.
    Host(String),
    /// `req.method == 'M'` (case-sensitive, as CEL compares).
    Method(String),
    /// A header test; `name` is lower case (header names match case-insensitively).
    Header {
        name: String,
        value: String,
        /// `true`: the first value equals `value` (`[0] == 'v'`); `false`: any value does (`in`).
        first: bool,
        /// Whether evaluation raises an error when the request has no such header.
        errors_if_absent: bool,
    },
}

impl Test {
    /// Whether evaluating the test can raise an error (only when its header is absent).
    pub fn can_error(&self) -> bool {
        matches!(
            self,
            Test::Header {
                errors_if_absent: true,
                ..
            }
        )
    }
}

/// What is known of a whole condition expression.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Shape {
    /// Recognised conjuncts of a top-level `&&` chain. In cel 0.15, `a && b` is `false`
    /// whenever either side is `false` without error, whatever the other side does (even if it
    /// errors), so any one of these being false (without error) makes the expression false.
    pub tests: Vec<Test>,
    /// Every conjunct was recognised.
    pub whole: bool,
}

impl Shape {
    /// Every conjunct was recognised and none can error: the expression never errors.
    pub fn never_errors(&self) -> bool {
        self.whole && !self.tests.iter().any(Test::can_error)
    }

    /// The expression is exactly one recognised test.
    pub fn single(&self) -> Option<&Test> {
        match self.tests.as_slice() {
            [t] if self.whole => Some(t),
            _ => None,
        }
    }
}

impl Expr {
    /// The request tests this expression is made of (computed at compile time, for dispatch).
    pub fn shape(&self) -> Shape {
        let mut shape = Shape {
            tests: Vec::new(),
            whole: true,
        };
        conjuncts(self.program.expression(), &mut shape);
        shape
    }
}

fn conjuncts(e: &IdedExpr, shape: &mut Shape) {
    if let Ast::Call(call) = &e.expr {
        if call.func_name == operators::LOGICAL_AND && call.args.len() == 2 && call.target.is_none()
        {
            conjuncts(&call.args[0], shape);
            conjuncts(&call.args[1], shape);
            return;
        }
    }
    match test(e) {
        Some(t) => shape.tests.push(t),
        None => shape.whole = false,
    }
}

/// Recognises one test (either operand order for `==`).
pub(crate) fn test(e: &IdedExpr) -> Option<Test> {
    let Ast::Call(call) = &e.expr else {
        return None;
    };
    match (call.func_name.as_str(), &call.target, call.args.as_slice()) {
        (operators::EQUALS, None, [a, b]) => {
            let (subject, lit) = match (string_lit(a), string_lit(b)) {
                (None, Some(lit)) => (a, lit),
                (Some(lit), None) => (b, lit),
                _ => return None,
            };
            let value = lit.to_string();
            if let Some(field) = req_field(subject) {
                return Some(match field {
                    ReqField::Path => Test::PathEq(value),
                    ReqField::Host => Test::Host(value),
                    ReqField::Method => Test::Method(value),
                });
            }
            let (name, errors_if_absent) = first_header(subject)?;
            Some(Test::Header {
                name,
                value,
                first: true,
                errors_if_absent,
            })
        }
        ("startsWith", Some(target), [prefix]) => {
            let prefix = string_lit(prefix)?;
            (req_field(target)? == ReqField::Path).then(|| Test::PathPrefix(prefix.to_string()))
        }
        (operators::IN, None, [needle, list]) => {
            let value = string_lit(needle)?.to_string();
            let (name, errors_if_absent) = header_list(list)?;
            Some(Test::Header {
                name,
                value,
                first: false,
                errors_if_absent,
            })
        }
        _ => None,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ReqField {
    Path,
    Host,
    Method,
}

/// `req.url.path`, `req.host`, `req.url.host`, `req.method`.
fn req_field(e: &IdedExpr) -> Option<ReqField> {
    let path = select_path(e)?;
    match path.as_slice() {
        ["req", "url", "path"] => Some(ReqField::Path),
        ["req", "host"] | ["req", "url", "host"] => Some(ReqField::Host),
        ["req", "method"] => Some(ReqField::Method),
        _ => None,
    }
}

/// `a.b.c` as `["a", "b", "c"]` (no `has()` tests).
fn select_path(e: &IdedExpr) -> Option<Vec<&str>> {
    match &e.expr {
        Ast::Ident(name) => Some(vec![name.as_str()]),
        Ast::Select(s) if !s.test => {
            let mut path = select_path(&s.operand)?;
            path.push(s.field.as_str());
            Some(path)
        }
        _ => None,
    }
}

/// `getReqHeader('h')[0]` or `req.headers['h'][0]`: the header's first value. Both raise an
/// error when the header is absent.
fn first_header(e: &IdedExpr) -> Option<(String, bool)> {
    let Ast::Call(call) = &e.expr else {
        return None;
    };
    match (call.func_name.as_str(), &call.target, call.args.as_slice()) {
        (operators::INDEX, None, [list, index]) => {
            if !matches!(&index.expr, Ast::Literal(LiteralValue::Int(i)) if *i.inner() == 0) {
                return None;
            }
            let (name, _) = header_list(list)?;
            Some((name, true))
        }
        _ => None,
    }
}

/// `getReqHeader('h')` (never errors; empty when absent) or `req.headers['h']` (errors when
/// absent). A literal name with upper case is lower-cased before it runs (header_keys.rs); it is
/// not recognised here, only left unindexed.
fn header_list(e: &IdedExpr) -> Option<(String, bool)> {
    let Ast::Call(call) = &e.expr else {
        return None;
    };
    match (call.func_name.as_str(), &call.target, call.args.as_slice()) {
        ("getReqHeader", None, [name]) => Some((string_lit(name)?.to_ascii_lowercase(), false)),
        (operators::INDEX, None, [map, name]) => {
            let name = string_lit(name)?;
            let lower = select_path(map)? == ["req", "headers"]
                && !name.bytes().any(|b| b.is_ascii_uppercase());
            lower.then(|| (name.to_string(), true))
        }
        _ => None,
    }
}

fn string_lit(e: &IdedExpr) -> Option<&str> {
    match &e.expr {
        Ast::Literal(LiteralValue::String(s)) => Some(s.inner()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(src: &str) -> Shape {
        Expr::compile(src).unwrap().shape()
    }

    fn one(src: &str) -> Option<Test> {
        let s = shape(src);
        match s.tests.as_slice() {
            [t] => {
                assert_eq!(s.never_errors(), !t.can_error(), "{src}");
                assert_eq!(s.single(), Some(t), "{src}");
                Some(t.clone())
            }
            [] => None,
            _ => panic!("{src}: {s:?}"),
        }
    }

    fn header(name: &str, value: &str, first: bool, errors_if_absent: bool) -> Test {
        Test::Header {
            name: name.into(),
            value: value.into(),
            first,
            errors_if_absent,
        }
    }

    #[test]
    fn recognised_shapes() {
        assert_eq!(one("req.url.path == '/a'"), Some(Test::PathEq("/a".into())));
        assert_eq!(one("'/a' == req.url.path"), Some(Test::PathEq("/a".into())));
        assert_eq!(
            one("req.url.path.startsWith('/api/')"),
            Some(Test::PathPrefix("/api/".into()))
        );
        assert_eq!(one("req.host == 'x'"), Some(Test::Host("x".into())));
        assert_eq!(one("req.url.host == 'x'"), Some(Test::Host("x".into())));
        assert_eq!(one("req.method == 'GET'"), Some(Test::Method("GET".into())));
        assert_eq!(
            one("getReqHeader('X-Acme-Api')[0] == 'catalog-eks'"),
            Some(header("x-acme-api", "catalog-eks", true, true))
        );
        assert_eq!(
            one("req.headers['x-acme-api'][0] == 'v'"),
            Some(header("x-acme-api", "v", true, true))
        );
        assert_eq!(
            one("'v' in getReqHeader('X-A')"),
            Some(header("x-a", "v", false, false))
        );
        assert_eq!(
            one("'v' in req.headers['x-a']"),
            Some(header("x-a", "v", false, true))
        );
        // Escapes are the literal's value, not its spelling.
        assert_eq!(
            one(r"req.url.path == '/a\x62'"),
            Some(Test::PathEq("/ab".into()))
        );
    }

    #[test]
    fn unrecognised_shapes() {
        for src in [
            "req.url.path != '/a'",
            "req.url.raw_path == '/a'",
            "req.url.path.endsWith('/a')",
            "req.url.path == 1",
            "req.url.path == req.host",
            "getReqHeader('x')[1] == 'v'",
            "getReqHeader('x')[0u] == 'v'",
            "req.headers['X-Upper'][0] == 'v'",
            "'v' in req.headers['X-Upper']",
            "hasReqHeader('x')",
            "res.headers['x'][0] == 'v'",
            "req.url.path == '/a' || req.host == 'x'",
            "!(req.url.path == '/a')",
            "has(req.url.path)",
            "x.url.path == '/a'",
        ] {
            assert_eq!(shape(src).tests, vec![], "{src}");
            assert!(!shape(src).never_errors(), "{src}");
        }
    }

    #[test]
    fn conjunctions() {
        let s = shape("req.method == 'GET' && req.url.path.startsWith('/a') && req.host == 'h'");
        assert_eq!(
            s.tests,
            vec![
                Test::Method("GET".into()),
                Test::PathPrefix("/a".into()),
                Test::Host("h".into())
            ]
        );
        assert!(s.never_errors() && s.single().is_none());
        let s = shape("size(req.url.query) > 0 && req.url.path == '/a'");
        assert_eq!(s.tests, vec![Test::PathEq("/a".into())]);
        assert!(!s.never_errors() && s.single().is_none());
        let s = shape("getReqHeader('x')[0] == 'v' && size(req.url.query) > 0");
        assert_eq!(s.tests.len(), 1);
        assert!(!s.never_errors() && s.single().is_none());
        let s = shape("req.url.path == '/a' && getReqHeader('x')[0] == 'v'");
        assert_eq!(s.tests.len(), 2);
        assert!(!s.never_errors());
    }
}
