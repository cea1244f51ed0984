//! Lists and maps: `cel::extensions::lists` provides `slice`, `flatten([depth])`, `sort`,
//! `sortBy`, `distinct`, `reverse` and `lists.range`; the standard macros (`all`, `exists`,
//! `exists_one`, `filter`, `map`) bind a map's keys.
//!
//! Added here: CEL's two-variable comprehensions (`all`, `exists`, `existsOne`,
//! `transformList`, `transformMap` with an index or key *and* a value), which the crate's
//! evaluator has no support for. They are rewritten at parse time into one-variable
//! comprehensions over the target's indexes (a list) or keys (a map), with the value bound
//! as `target[i]`:
//!
//! `T.all(i, v, P)` → `cel.bind(@t, T, @ngrok_keys(@t).all(i, cel.bind(v, @t[i], P)))`

use super::{err, global, overload};
use cel::common::ast::{
    operators, CallExpr, ComprehensionExpr, Expr, IdedExpr, ListExpr, LiteralValue,
};
use cel::common::types::DYN_TYPE;
use cel::objects::{Key, Map};
use cel::parser::{Macro, MacroExprHelper, ParseError};
use cel::{DeclarationError, Env, ExecutionError, Value};
use std::collections::HashMap;
use std::sync::Arc;

/// The variable the target is bound to; an inner comprehension's binding shadows an outer's.
const TARGET: &str = "@__ngrok_two_var_target__";
const RESULT: &str = "@result";
const KEYS: &str = "@ngrok_keys";
const TO_MAP: &str = "@ngrok_pairs_to_map";

#[derive(Clone, Copy)]
enum Kind {
    All,
    Exists,
    ExistsOne,
    TransformList,
    TransformMap,
}

pub fn register(env: &mut Env) -> Result<(), DeclarationError> {
    global(env, KEYS, vec![DYN_TYPE], overload!(keys))?;
    global(env, TO_MAP, vec![DYN_TYPE], overload!(pairs_to_map))?;
    for (name, kind) in [
        ("all", Kind::All),
        ("exists", Kind::Exists),
        ("existsOne", Kind::ExistsOne),
        ("exists_one", Kind::ExistsOne),
        ("transformList", Kind::TransformList),
        ("transformMap", Kind::TransformMap),
    ] {
        env.add_macro(Macro::receiver(name, 3, move |h, t, a| {
            expand(kind, h, t, a)
        }))?;
        if matches!(kind, Kind::TransformList | Kind::TransformMap) {
            env.add_macro(Macro::receiver(name, 4, move |h, t, a| {
                expand(kind, h, t, a)
            }))?;
        }
    }
    Ok(())
}

/// A list's indexes or a map's keys.
fn keys(args: &[Value]) -> Result<Value, ExecutionError> {
    match args.first() {
        Some(Value::List(items)) => Ok(Value::List(Arc::new(
            (0..items.len() as i64).map(Value::Int).collect(),
        ))),
        Some(Value::Map(m)) => Ok(Value::List(Arc::new(
            m.map.keys().map(Value::from).collect(),
        ))),
        Some(other) => Err(err(
            "comprehension",
            format!("cannot iterate over a {}", crate::expr::type_name(other)),
        )),
        None => Err(err("comprehension", "missing target")),
    }
}

/// `[[k, v], ...]` to `{k: v, ...}`.
fn pairs_to_map(args: &[Value]) -> Result<Value, ExecutionError> {
    let Some(Value::List(pairs)) = args.first() else {
        return Err(err("transformMap", "expected a list of pairs"));
    };
    let mut map: HashMap<Key, Value> = HashMap::with_capacity(pairs.len());
    for pair in pairs.iter() {
        let Value::List(kv) = pair else {
            return Err(err("transformMap", "expected a pair"));
        };
        let [k, v] = kv.as_slice() else {
            return Err(err("transformMap", "expected a pair"));
        };
        let key: Key = k
            .clone()
            .try_into()
            .map_err(|_| err("transformMap", "unsupported key type"))?;
        map.insert(key, v.clone());
    }
    Ok(Value::Map(Map { map: Arc::new(map) }))
}

fn ident(h: &mut MacroExprHelper<'_>, name: &str) -> IdedExpr {
    h.next_expr(Expr::Ident(name.to_string()))
}

fn call(h: &mut MacroExprHelper<'_>, func: &str, args: Vec<IdedExpr>) -> IdedExpr {
    h.next_expr(Expr::Call(CallExpr {
        func_name: func.to_string(),
        target: None,
        args,
    }))
}

fn boolean(h: &mut MacroExprHelper<'_>, b: bool) -> IdedExpr {
    h.next_expr(Expr::Literal(LiteralValue::Boolean(b.into())))
}

fn int(h: &mut MacroExprHelper<'_>, i: i64) -> IdedExpr {
    h.next_expr(Expr::Literal(LiteralValue::Int(i.into())))
}

fn list(h: &mut MacroExprHelper<'_>, items: Vec<IdedExpr>) -> IdedExpr {
    h.next_expr(Expr::List(ListExpr::new(items)))
}

/// `cel.bind(name, value, body)`, as the crate's own macros write it.
fn bind(h: &mut MacroExprHelper<'_>, name: &str, value: IdedExpr, body: IdedExpr) -> IdedExpr {
    let bind = ComprehensionExpr {
        iter_range: list(h, Vec::new()),
        iter_var: "#unused".to_string(),
        iter_var2: None,
        accu_var: name.to_string(),
        accu_init: value,
        loop_cond: boolean(h, false),
        loop_step: ident(h, name),
        result: body,
    };
    h.next_expr(Expr::Comprehension(Box::new(bind)))
}

fn var_name(h: &mut MacroExprHelper<'_>, e: IdedExpr) -> Result<String, ParseError> {
    match e.expr {
        Expr::Ident(name) => Ok(name),
        _ => Err(h.new_error(e.id, "argument must be a simple name")),
    }
}

fn expand(
    kind: Kind,
    h: &mut MacroExprHelper<'_>,
    target: &mut Option<IdedExpr>,
    args: &mut Vec<IdedExpr>,
) -> Result<Option<IdedExpr>, ParseError> {
    let Some(range) = target.take() else {
        return Ok(None);
    };
    let mut rest = std::mem::take(args).into_iter();
    let (Some(i), Some(v)) = (rest.next(), rest.next()) else {
        unreachable!("the macro is registered for 3 or 4 arguments");
    };
    let i = var_name(h, i)?;
    let v = var_name(h, v)?;
    let mut exprs: Vec<IdedExpr> = rest.collect();
    // Each user expression sees `v` bound to `@t[i]`.
    let with_value = |h: &mut MacroExprHelper<'_>, body: IdedExpr| {
        let t = ident(h, TARGET);
        let idx = ident(h, &i);
        let value = call(h, operators::INDEX, vec![t, idx]);
        bind(h, &v, value, body)
    };
    let body = exprs.pop().expect("at least one expression");
    let body = with_value(h, body);
    let filter = exprs.pop().map(|f| with_value(h, f));

    let accu = |h: &mut MacroExprHelper<'_>| ident(h, RESULT);
    let (init, cond, step, result) = match kind {
        Kind::All => {
            let a = accu(h);
            let cond = call(h, operators::NOT_STRICTLY_FALSE, vec![a]);
            let a = accu(h);
            let step = call(h, operators::LOGICAL_AND, vec![a, body]);
            (boolean(h, true), cond, step, accu(h))
        }
        Kind::Exists => {
            let a = accu(h);
            let not = call(h, operators::LOGICAL_NOT, vec![a]);
            let cond = call(h, operators::NOT_STRICTLY_FALSE, vec![not]);
            let a = accu(h);
            let step = call(h, operators::LOGICAL_OR, vec![a, body]);
            (boolean(h, false), cond, step, accu(h))
        }
        Kind::ExistsOne => {
            let a = accu(h);
            let one = int(h, 1);
            let plus = call(h, operators::ADD, vec![a, one]);
            let a = accu(h);
            let step = call(h, operators::CONDITIONAL, vec![body, plus, a]);
            let a = accu(h);
            let one = int(h, 1);
            let result = call(h, operators::EQUALS, vec![a, one]);
            (int(h, 0), boolean(h, true), step, result)
        }
        Kind::TransformList | Kind::TransformMap => {
            let item = match kind {
                Kind::TransformMap => {
                    let k = ident(h, &i);
                    list(h, vec![k, body])
                }
                _ => body,
            };
            let a = accu(h);
            let one = list(h, vec![item]);
            let mut step = call(h, operators::ADD, vec![a, one]);
            if let Some(filter) = filter {
                let a = accu(h);
                step = call(h, operators::CONDITIONAL, vec![filter, step, a]);
            }
            let result = match kind {
                Kind::TransformMap => {
                    let a = accu(h);
                    call(h, TO_MAP, vec![a])
                }
                _ => accu(h),
            };
            (list(h, Vec::new()), boolean(h, true), step, result)
        }
    };
    let t = ident(h, TARGET);
    let iter_range = call(h, KEYS, vec![t]);
    let loop_expr = ComprehensionExpr {
        iter_range,
        iter_var: i.clone(),
        iter_var2: None,
        accu_var: RESULT.to_string(),
        accu_init: init,
        loop_cond: cond,
        loop_step: step,
        result,
    };
    let loop_expr = h.next_expr(Expr::Comprehension(Box::new(loop_expr)));
    Ok(Some(bind(h, TARGET, range, loop_expr)))
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{eval, ok};

    #[test]
    fn list_macros() {
        assert_eq!(ok("[1, 2, 3, 4].slice(1, 3)"), ok("[2, 3]"));
        assert_eq!(ok("[1, [2, [3, [4]]]].flatten()"), ok("[1, 2, [3, [4]]]"));
        assert_eq!(ok("[1, [2, [3, [4]]]].flatten(2)"), ok("[1, 2, 3, [4]]"));
        assert_eq!(ok("['b', 'c', 'a'].sort()"), ok("['a', 'b', 'c']"));
        assert_eq!(ok("[1, 2, 1, 3].distinct()"), ok("[1, 2, 3]"));
        assert_eq!(ok("lists.range(4)"), ok("[0, 1, 2, 3]"));
        assert_eq!(
            ok("[{'n': 'b', 'a': 2}, {'n': 'a', 'a': 1}].sortBy(p, p.a).map(p, p.n)"),
            ok("['a', 'b']")
        );
        assert_eq!(ok("{'a': 1, 'b': 2}.filter(k, k != 'a')"), ok("['b']"));
        assert!(eval("[1, 2].slice(1, 5)").is_err());
        assert!(eval("[1, 'a'].sort()").is_err());
    }

    #[test]
    fn two_variable_comprehensions() {
        assert_eq!(ok("[10, 20].all(i, v, v == (i + 1) * 10)"), ok("true"));
        assert_eq!(
            ok("{'a': 1, 'b': 2}.exists(k, v, k == 'b' && v == 2)"),
            ok("true")
        );
        assert_eq!(ok("[5, 7, 8].existsOne(i, v, v % 5 == i)"), ok("true"));
        assert_eq!(
            ok("[2, 4, 6].transformList(i, v, i != 1, v / 2 + i)"),
            ok("[1, 5]")
        );
        assert_eq!(
            ok("{'a': 'x'}.transformMap(k, v, k + v)"),
            ok("{'a': 'ax'}")
        );
        // Nested: the inner target binding shadows the outer one only inside.
        assert_eq!(
            ok("[[1], [2, 3]].all(i, l, l.all(j, x, x > i))"),
            ok("true")
        );
        // The one-variable forms are untouched.
        assert_eq!(ok("[1, 2].all(x, x > 0)"), ok("true"));
        assert!(eval("1.all(i, v, true)").is_err());
        assert!(eval("[1].all(1, v, true)").is_err());
    }
}
