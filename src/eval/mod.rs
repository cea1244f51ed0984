//! The interpreter: runs one phase's rules over an exchange.

mod exchange;

pub use exchange::Exchange;

use crate::actions::{Context, Step};
use crate::error::GatewayError;
use crate::http::Headers;
use crate::program::Rule;

/// The two HTTP phases of a Traffic Policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Request,
    Response,
}

impl Phase {
    /// The YAML key of the phase.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Request => "on_http_request",
            Phase::Response => "on_http_response",
        }
    }
}

/// A response made by the gateway itself (custom-response, deny, errors).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Synthetic {
    pub status: u16,
    pub headers: Headers,
    pub body: String,
}

/// Runs `rules` in order; returns at the first step that is not [`Step::Continue`].
pub async fn run_phase<C: Context>(
    rules: &[Rule],
    ex: &mut Exchange,
    cx: &C,
) -> Result<Step, GatewayError> {
    for rule in rules {
        let mut matched = true;
        for expr in &rule.expressions {
            if !ex.eval_condition(expr)? {
                matched = false;
                break;
            }
        }
        if !matched {
            continue;
        }
        for action in &rule.actions {
            match action.apply(ex, cx).await? {
                Step::Continue => {}
                stop => return Ok(stop),
            }
        }
    }
    Ok(Step::Continue)
}
