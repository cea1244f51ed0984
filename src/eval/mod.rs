//! The interpreter: runs one phase's rules over an exchange.

use crate::actions::Action;
use crate::error::GatewayError;
use crate::exchange::Exchange;
use crate::exchange::{Context, Step};
use crate::program::dispatch;
use crate::program::{Rule, RuleSet};
use std::sync::Arc;

/// Where a phase stopped: the rule (its position in the rule set) and the action in it whose
/// step ended the phase. A failed `forward-internal` with `on_error: continue` resumes after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stop {
    pub rule: usize,
    pub action: usize,
}

/// Runs `rules` in order; returns at the first step that is not [`Step::Continue`].
pub async fn run_phase<C: Context>(
    rules: &RuleSet,
    ex: &mut Exchange,
    cx: &C,
) -> Result<Step, GatewayError> {
    Ok(run_phase_from(rules, None, ex, cx).await?.0)
}

/// Runs `rules` from the start, or, given `after`, from the action after it: the rest of that
/// rule's actions (its expressions held already), then the later rules. Returns the step that
/// ended the phase and where it was made (`None` for [`Step::Continue`]: no action stopped it).
///
/// With an index (see [`dispatch`]), rules it proves cannot match are skipped without
/// evaluating them; the candidates are looked up again whenever the request the expressions
/// see has changed (the scope's snapshot is a new one).
pub async fn run_phase_from<C: Context>(
    rules: &RuleSet,
    after: Option<Stop>,
    ex: &mut Exchange,
    cx: &C,
) -> Result<(Step, Option<Stop>), GatewayError> {
    let mut pos = 0;
    if let Some(at) = after {
        let rest = rules[at.rule]
            .actions
            .iter()
            .enumerate()
            .skip(at.action + 1);
        if let Some((step, action)) = run_actions(rest, ex, cx).await? {
            return Ok((
                step,
                Some(Stop {
                    rule: at.rule,
                    action,
                }),
            ));
        }
        pos = at.rule + 1;
    }
    let Some(index) = rules.dispatch() else {
        for (i, rule) in rules.iter().enumerate().skip(pos) {
            if let Some((step, action)) = run_rule(rule, None, ex, cx).await? {
                return Ok((step, Some(Stop { rule: i, action })));
            }
        }
        return Ok((Step::Continue, None));
    };
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
            return Ok((Step::Continue, None));
        };
        let known_true = c.key_holds.then(|| index.key_alone(c.position)).flatten();
        if let Some((step, action)) = run_rule(&rules[c.position], known_true, ex, cx).await? {
            return Ok((
                step,
                Some(Stop {
                    rule: c.position,
                    action,
                }),
            ));
        }
        pos = c.position + 1;
    }
}

/// Evaluates one rule's expressions (except `known_true`, one the index found `true`) and,
/// when all hold, runs its actions; `Some` (the step and the action's position) when an
/// action stopped the chain.
async fn run_rule<C: Context>(
    rule: &Rule,
    known_true: Option<usize>,
    ex: &mut Exchange,
    cx: &C,
) -> Result<Option<(Step, usize)>, GatewayError> {
    for (i, expr) in rule.expressions.iter().enumerate() {
        if Some(i) != known_true && !ex.eval_condition(expr)? {
            return Ok(None);
        }
    }
    run_actions(rule.actions.iter().enumerate(), ex, cx).await
}

/// Runs actions (with their positions) until one stops the chain.
async fn run_actions<'a, C: Context>(
    actions: impl Iterator<Item = (usize, &'a Action)>,
    ex: &mut Exchange,
    cx: &C,
) -> Result<Option<(Step, usize)>, GatewayError> {
    for (i, action) in actions {
        match action.apply(ex, cx).await? {
            Step::Continue => {}
            stop => return Ok(Some((stop, i))),
        }
    }
    Ok(None)
}
