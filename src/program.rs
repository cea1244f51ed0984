//! A compiled Traffic Policy: what the evaluator runs. Built once per policy version.

use crate::actions::Action;
use crate::expr::Expr;

#[derive(Debug, Default)]
pub struct Policy {
    pub on_http_request: Vec<Rule>,
    pub on_http_response: Vec<Rule>,
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
