//! The interpreter: runs one phase's rules over an exchange.

use crate::error::GatewayError;
use crate::exchange::Exchange;
use crate::exchange::{Context, Step};
use crate::program::dispatch;
use crate::program::{Rule, RuleSet};
use std::sync::Arc;

/// Runs `rules` in order; returns at the first step that is not [`Step::Continue`].
///
/// With an index (see [`dispatch`]), rules it proves cannot match are skipped without
/// evaluating them; the candidates are looked up again whenever the request the expressions
/// see has changed (the scope's snapshot is a new one).
pub async fn run_phase<C: Context>(
    rules: &RuleSet,
    ex: &mut Exchange,
    cx: &C,
) -> Result<Step, GatewayError> {
    let Some(index) = rules.dispatch() else {
        for rule in rules.iter() {
            if let Some(stop) = run_rule(rule, None, ex, cx).await? {
                return Ok(stop);
            }
        }
        return Ok(Step::Continue);
    };
    let mut pos = 0;
    let mut looked_up: Option<(crate::expr::RequestData, dispatch::Candidates<'_>)> = None;
    loop {
        let seen = ex.request_data();
        let candidates = match &mut looked_up {
            Some((data, candidates)) if Arc::ptr_eq(data, &seen) => candidates,
            _ => {
                let candidates = index.candidates(&seen);
                // Holding `seen` keeps its allocation alive, so a new snapshot never has its
                // address.
                &mut looked_up.insert((seen, candidates)).1
            }
        };
        let Some(c) = candidates.next_from(pos) else {
            return Ok(Step::Continue);
        };
        let known_true = c.key_holds.then(|| index.key_alone(c.position)).flatten();
        if let Some(stop) = run_rule(&rules[c.position], known_true, ex, cx).await? {
            return Ok(stop);
        }
        pos = c.position + 1;
    }
}

/// Evaluates one rule's expressions (except `known_true`, one the index found `true`) and,
/// when all hold, runs its actions; `Some` when an action stopped the chain.
async fn run_rule<C: Context>(
    rule: &Rule,
    known_true: Option<usize>,
    ex: &mut Exchange,
    cx: &C,
) -> Result<Option<Step>, GatewayError> {
    for (i, expr) in rule.expressions.iter().enumerate() {
        if Some(i) != known_true && !ex.eval_condition(expr)? {
            return Ok(None);
        }
    }
    for action in &rule.actions {
        match action.apply(ex, cx).await? {
            Step::Continue => {}
            stop => return Ok(Some(stop)),
        }
    }
    Ok(None)
}
