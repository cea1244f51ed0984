//! ngrok action types that a later part of this gateway implements. A policy using one loads
//! with a warning, and a request that reaches it is refused (fail closed), never waved through.

use crate::actions::Cx;
use crate::error::GatewayError;
use crate::source::At;
use crate::source::Node;

#[derive(Debug)]
pub struct NotImplemented {
    type_name: String,
}

impl NotImplemented {
    pub fn compile(type_name: &str, path: &str, node: &Node, cx: &mut Cx<'_>) -> NotImplemented {
        cx.diags.warning(
            None,
            At::new(path, node),
            format!(
                "action `{type_name}` is not implemented by this gateway yet: requests that reach \
                 it are refused with 501 (fail closed)"
            ),
        );
        NotImplemented {
            type_name: type_name.to_string(),
        }
    }

    pub fn apply(&self) -> GatewayError {
        GatewayError::ActionNotImplemented {
            action: self.type_name.clone(),
        }
    }
}
