//! A compiled Traffic Policy: what the evaluator runs. Built once per policy version.

use crate::actions::Action;
pub mod dispatch;

use crate::expr::Expr;
use dispatch::{Dispatch, MIN_KEYED};
use std::ops::Deref;

#[derive(Debug, Default)]
pub struct Policy {
    pub on_http_request: RuleSet,
    pub on_http_response: RuleSet,
}

/// A rule: when every expression holds, its actions run in order.
#[derive(Debug)]
pub struct Rule {
    pub name: Option<String>,
    pub expressions: Vec<Expr>,
    pub actions: Vec<Action>,
}

impl Rule {
    /// True when the rule always matches and always stops the chain.
    pub fn always_terminates(&self) -> bool {
        self.expressions.is_empty() && self.actions.iter().any(Action::terminates)
    }
}

/// One phase's rules, in document order, with the index that finds the candidate rules for a
/// request (`None`: every rule is evaluated in turn). Reads as a slice of rules.
#[derive(Debug, Default)]
pub struct RuleSet {
    rules: Vec<Rule>,
    dispatch: Option<Dispatch>,
}

impl RuleSet {
    /// As the compiler builds it: indexed when at least [`MIN_KEYED`] rules have a key.
    pub fn new(rules: Vec<Rule>) -> RuleSet {
        let dispatch = Dispatch::build(&rules, MIN_KEYED);
        RuleSet { rules, dispatch }
    }

    /// Every rule evaluated in turn (the plain loop, for comparisons).
    pub fn linear(rules: Vec<Rule>) -> RuleSet {
        RuleSet {
            rules,
            dispatch: None,
        }
    }

    /// Indexed whenever any rule has a key, however few (for tests).
    pub fn indexed(rules: Vec<Rule>) -> RuleSet {
        let dispatch = Dispatch::build(&rules, 1);
        RuleSet { rules, dispatch }
    }

    pub fn dispatch(&self) -> Option<&Dispatch> {
        self.dispatch.as_ref()
    }

    pub fn into_rules(self) -> Vec<Rule> {
        self.rules
    }
}

impl Deref for RuleSet {
    type Target = [Rule];

    fn deref(&self) -> &[Rule] {
        &self.rules
    }
}
