//! `close-connection`: ngrok closes the client's connection at once. A Worker cannot close the
//! TCP connection, so the gateway answers 502 with a body promised as one byte that ends with
//! none (the shell's `Body::Abort`): workerd drops the connection after the head, and the client
//! never gets a complete response. The response phase does not run. See docs/actions.md.

use crate::actions::config::Config;
use crate::actions::Cx;
use crate::exchange::Step;
use crate::source::Node;

#[derive(Debug)]
pub struct CloseConnection;

impl CloseConnection {
    pub fn compile(
        config: Option<&Node>,
        path: String,
        cx: &mut Cx<'_>,
    ) -> Option<CloseConnection> {
        // No config: any field is unknown.
        Config::new(config, path, cx.diags).finish();
        Some(CloseConnection)
    }

    pub fn apply(&self) -> Step {
        Step::Close
    }
}
