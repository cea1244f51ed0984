//! `close-connection`: ngrok closes the client's connection at once. A Worker cannot close the
//! TCP connection, so the gateway answers with a response whose body fails before its first
//! byte: the client sees the status line and headers, then the connection aborted mid-response
//! (curl: "transfer closed"), never a complete response. The response phase does not run.

use super::Step;
use crate::compile::{Config, Cx};
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
