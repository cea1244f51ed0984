//! Where a policy runs (its phase) and what an action tells the chain to do next.

use crate::http::Synthetic;

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

/// What the chain does after an action. Stopping the chain is a value, never a panic.
#[derive(Debug, PartialEq)]
pub enum Step {
    /// Go on with the next action or rule.
    Continue,
    /// Forward to the internal endpoint (pool) with this key; terminating.
    Forward(String),
    /// Answer with a response made here (`custom-response`); the response phase still runs.
    Respond(Synthetic),
    /// Answer with this status and no body (`deny`); nothing else runs.
    Deny(u16),
    /// Drop the client's connection (`close-connection`); nothing else runs.
    Close,
}
