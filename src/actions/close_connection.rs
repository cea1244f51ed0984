//! `close-connection`: ngrok closes the client's connection at once. A Worker cannot close the
//! TCP connection, so the gateway answers 502 with a body promised as one byte that ends with
//! none (the shell's `Body::Abort`): workerd drops the connection after the head, and the client
//! never gets a complete response. The response phase does not run. See docs/actions.md.

use crate::error::GatewayError;
use crate::exchange::Exchange;
use crate::exchange::Context;
use super::spec::{ActionSpec, ActionType, TCP, REQ};
use super::ConfigShape::{Fields};
use crate::actions::config::Config;
use crate::actions::Cx;
use crate::exchange::Step;
use crate::source::Node;

#[derive(Debug)]
pub struct CloseConnection;

impl ActionType for CloseConnection {
    const SPEC: ActionSpec = ActionSpec {
        name: "close-connection",
        phases: &[TCP, REQ],
        terminating: true,
        results: None,
        config: Fields(&[]),
    };

    fn compile(
        config: Option<&Node>,
        path: String,
        cx: &mut Cx<'_>,
    ) -> Option<CloseConnection> {
        // No config: any field is unknown.
        Config::new(config, path, cx.diags).finish();
        Some(CloseConnection)
    }

    async fn apply<C: Context>(&self, _: &mut Exchange, _: &C) -> Result<Step, GatewayError> {
        Ok(self.step())
    }
}

impl CloseConnection {

    pub fn step(&self) -> Step {
        Step::Close
    }
}
