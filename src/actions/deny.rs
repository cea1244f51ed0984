//! `deny`: answer with a status (default 403) and no body; nothing after it runs.

use crate::error::GatewayError;
use crate::exchange::Exchange;
use crate::exchange::Context;
use super::spec::{ActionSpec, ActionType, TCP, REQ};
use super::ConfigShape::{Any, Fields};
use crate::actions::config::Config;
use crate::actions::Cx;
use crate::exchange::Step;
use crate::source::Node;

#[derive(Debug)]
pub struct Deny {
    status_code: u16,
}

impl ActionType for Deny {
    const SPEC: ActionSpec = ActionSpec {
        name: "deny",
        phases: &[TCP, REQ],
        terminating: true,
        results: None,
        config: Fields(&[("status_code", Any)]),
    };

    fn compile(config: Option<&Node>, path: String, cx: &mut Cx<'_>) -> Option<Deny> {
        let mut c = Config::new(config, path, cx.diags);
        let status_code = c.status("status_code", 403, (100, 599));
        c.finish();
        Some(Deny { status_code })
    }

    async fn apply<C: Context>(&self, _: &mut Exchange, _: &C) -> Result<Step, GatewayError> {
        Ok(self.step())
    }
}

impl Deny {

    pub fn step(&self) -> Step {
        Step::Deny(self.status_code)
    }
}
