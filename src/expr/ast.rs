//! Walking a parsed expression's tree, for the compile-time rewrites (hybrid.rs,
//! header_keys.rs).

use cel::common::ast::{EntryExpr, Expr};
use cel::IdedExpr;

/// The direct children of `e`, in source order: a selection's operand, a call's target and
/// arguments, a comprehension's parts, list elements, map keys and values, struct values.
pub fn children_mut(e: &mut IdedExpr) -> Vec<&mut IdedExpr> {
    match &mut e.expr {
        Expr::Select(sel) => vec![&mut *sel.operand],
        Expr::Call(call) => {
            let mut out: Vec<&mut IdedExpr> = Vec::with_capacity(call.args.len() + 1);
            if let Some(t) = &mut call.target {
                out.push(&mut **t);
            }
            out.extend(call.args.iter_mut());
            out
        }
        Expr::Comprehension(c) => vec![
            &mut c.iter_range,
            &mut c.accu_init,
            &mut c.loop_cond,
            &mut c.loop_step,
            &mut c.result,
        ],
        Expr::List(l) => l.elements.iter_mut().collect(),
        Expr::Map(m) => m.entries.iter_mut().flat_map(entry_children).collect(),
        Expr::Struct(s) => s.entries.iter_mut().flat_map(entry_children).collect(),
        Expr::Unspecified | Expr::Ident(_) | Expr::Literal(_) => Vec::new(),
    }
}

fn entry_children(entry: &mut cel::common::ast::IdedEntryExpr) -> Vec<&mut IdedExpr> {
    match &mut entry.expr {
        EntryExpr::MapEntry(me) => vec![&mut me.key, &mut me.value],
        EntryExpr::StructField(f) => vec![&mut f.value],
    }
}
