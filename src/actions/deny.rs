//! `deny`: answer with a status (default 403) and no body; nothing after it runs.

use crate::actions::config::Config;
use crate::actions::Cx;
use crate::exchange::Step;
use crate::source::Node;

#[derive(Debug)]
pub struct Deny {
    status_code: u16,
}

impl Deny {
    pub fn compile(config: Option<&Node>, path: String, cx: &mut Cx<'_>) -> Option<Deny> {
        let mut c = Config::new(config, path, cx.diags);
        let status_code = c.status("status_code", 403, (100, 599));
        c.finish();
        Some(Deny { status_code })
    }

    pub fn apply(&self) -> Step {
        Step::Deny(self.status_code)
    }
}
