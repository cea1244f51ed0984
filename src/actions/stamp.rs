//! `test-stamp`: a made-up action that exists only in unit tests. It shows what adding an
//! action takes: this file and its one registration line in `actions!` (`actions/mod.rs`).
//! Nothing else names it, yet the validator checks its phases and config, the CEL schema knows
//! `actions.ngrok.test_stamp`, and the interpreter runs it.

use super::config::Config;
use super::spec::{ActionSpec, ActionType, REQ, RES};
use super::ConfigShape::{Fields, Interpolated};
use super::Cx;
use crate::error::GatewayError;
use crate::exchange::{Context, Exchange, Step};
use crate::expr::Template;
use crate::source::Node;

/// Sets the `x-stamp` header to its rendered `value`, and `actions.ngrok.test_stamp.value`.
#[derive(Debug)]
pub struct Stamp {
    value: Template,
}

impl ActionType for Stamp {
    const SPEC: ActionSpec = ActionSpec {
        name: "test-stamp",
        phases: &[REQ, RES],
        terminating: false,
        results: Some("test_stamp"),
        config: Fields(&[("value", Interpolated)]),
    };

    fn compile(config: Option<&Node>, path: String, cx: &mut Cx<'_>) -> Option<Stamp> {
        let mut c = Config::new(config, path, cx.diags);
        let value = match c.string("value") {
            Some((node, text)) => c.template("value", node, &text),
            None => {
                c.missing("value");
                None
            }
        };
        c.finish();
        Some(Stamp { value: value? })
    }

    async fn apply<C: Context>(&self, ex: &mut Exchange, _: &C) -> Result<Step, GatewayError> {
        let value = ex.render(&self.value, "test-stamp", "value")?;
        ex.headers_mut().set("x-stamp", &value);
        ex.set_result("test_stamp", vec![("value", value.as_str().into())]);
        Ok(Step::Continue)
    }
}

#[cfg(test)]
mod tests {
    use crate::actions::testing::TestPorts;
    use crate::compile::testing::compile_json;
    use crate::compile::EndpointKind;
    use crate::eval::run_phase;
    use crate::exchange::{Exchange, Step};
    use crate::http::RequestHead;
    use crate::source::{Diagnostics, Severity};

    fn compile(policy: serde_json::Value) -> (Option<crate::program::Policy>, Diagnostics) {
        compile_json(&policy, EndpointKind::Agent)
    }

    #[test]
    fn a_registered_action_is_validated_typed_and_run() {
        let (policy, diags) = compile(serde_json::json!({"on_http_request": [
            {"actions": [{"type": "test-stamp", "config": {"value": "${req.method}-1"}}]},
            {"expressions": ["actions.ngrok.test_stamp.value == 'GET-1'"],
             "actions": [{"type": "test-stamp", "config": {"value": "seen"}}]},
        ]}));
        assert!(diags.items.is_empty(), "{:?}", diags.items);
        let policy = policy.unwrap();
        let ip = "192.0.2.1".parse().unwrap();
        let req = RequestHead::from_url("GET", "https://a.example/", Default::default(), ip).unwrap();
        let mut ex = Exchange::new(req);
        let step = pollster::block_on(run_phase(
            &policy.on_http_request,
            &mut ex,
            &TestPorts::default(),
        ));
        assert_eq!(step, Ok(Step::Continue));
        // The second rule saw the first one's result variable.
        assert_eq!(ex.req.headers.get("x-stamp"), Some("seen"));
    }

    #[test]
    fn its_declaration_drives_the_validator() {
        let (policy, diags) = compile(serde_json::json!({"on_http_request": [
            {"actions": [{"type": "test-stamp", "config": {"valeu": "x"}}]},
        ], "on_http_response": [
            {"expressions": ["actions.ngrok.test_stamp.nope == ''"], "actions": []},
        ]}));
        assert!(policy.is_none());
        let errors: Vec<String> = diags
            .items
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .map(|d| format!("{:?} {}", d.code, d.path))
            .collect();
        assert!(
            errors
                .iter()
                .any(|e| e.contains("2203") && e.contains("config.valeu")),
            "{errors:?}"
        );
        let (_, diags) = compile(serde_json::json!({"on_http_request": [
            {"expressions": ["actions.ngrok.test_stampp.value == ''"],
             "actions": [{"type": "deny"}]},
        ]}));
        let hint = diags.items.iter().find_map(|d| d.hint.clone());
        assert!(
            hint.as_deref().is_some_and(|h| h.contains("test_stamp")),
            "{:?}",
            diags.items
        );
    }
}
