//! What `owasp-crs-request` and `owasp-crs-response` share: their configuration, the rule set
//! compiled with it, and the result variables (`docs/waf.md`).
//!
//! The rule set is the bundle's compiled OWASP CRS ([`crate::waf::document`]), shared by every
//! action; [`CrsRules::new`] applies one action's configuration to it. Its regexes compile the
//! first time a request's values pass their prefilters, once per isolate.

use crate::actions::config::Config;
use crate::actions::config::{BAD_CONFIG, OUT_OF_RANGE};
use crate::actions::Cx;
use crate::error::GatewayError;
use crate::exchange::Exchange;
use crate::expr::map;
use crate::source::At;
use crate::source::{Node, Value as Yaml};
use crate::waf::{Budget, CrsRules, Disposition, OnBudget, Verdict};
use cel::Value;
use std::rc::Rc;
use std::sync::Arc;

/// The default step budget: a fixed part for the request line, headers and cookies, and a part
/// per inspected body byte. Steps are bytes run through transformations and operators. Measured
/// with CRS at PL1 (`benches/waf_requests.rs`): a browser GET with 7 arguments takes 44k steps,
/// a 1 KB JSON body 236k, a 4 KB form 675k (about 150 per body byte). The default leaves
/// twice that and stops a pathological request from spending the Worker's CPU (a step is about
/// 4 ns natively, 5 in wasm: 2.9M steps for the default 4 KB body are about 15 ms).
const DEFAULT_BASE_STEPS: u64 = 1_000_000;
const DEFAULT_STEPS_PER_BODY_BYTE: u64 = 450;
/// The largest body prefix an operator may ask to inspect.
const MAX_BODY_LIMIT: i64 = 128 << 10;

/// Which of the two actions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Request,
    Response,
}

impl Side {
    pub fn result_name(self) -> &'static str {
        match self {
            Side::Request => "owasp_crs_request",
            Side::Response => "owasp_crs_response",
        }
    }
}

/// The compiled action (either side).
pub struct Waf {
    pub side: Side,
    pub rules: CrsRules,
    /// `on_error: halt` (ngrok's default): a deny or a failure ends the request.
    pub halt: bool,
    pub max_steps: u64,
}

impl std::fmt::Debug for Waf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Waf")
            .field("side", &self.side)
            .field("config", self.rules.config())
            .field("halt", &self.halt)
            .field("max_steps", &self.max_steps)
            .finish()
    }
}

impl Waf {
    pub fn compile(
        side: Side,
        config: Option<&Node>,
        path: String,
        cx: &mut Cx<'_>,
    ) -> Option<Waf> {
        let mut c = Config::new(config, path, cx.diags);
        let mut waf = crate::waf::Profile::default();
        let mut ok = true;
        let halt = match c.string("on_error") {
            None => true,
            Some((_, v)) if v == "halt" => true,
            Some((_, v)) if v == "continue" => false,
            Some((n, v)) => {
                let msg = format!("`on_error` must be `halt` or `continue`, not `{v}`");
                c.error_at(BAD_CONFIG, "on_error", n, msg);
                ok = false;
                true
            }
        };
        waf.process_body = c.bool("process_body", false);
        if let Some(node) = c.field("exclude_rule_ids") {
            let list = crate::source::child(&c.path, "exclude_rule_ids");
            let known = cx.crs.map(|set| set.rule_ids()).unwrap_or_default();
            match node.as_seq() {
                Some(items) => {
                    for (i, item) in items.iter().enumerate() {
                        let (code, msg) = match item.value {
                            // CRS's ids, and the engine setup's 200002.
                            Yaml::Int(id) if (900_000..=999_999).contains(&id) || id == 200_002 => {
                                waf.exclude_rule_ids.push(id as u32);
                                if !known.contains(&(id as u32)) {
                                    let at = crate::source::index(&list, i);
                                    let msg = format!("no rule {id} in the bundled Core Rule Set: excluding it changes nothing");
                                    c.diags.warning(None, At::new(&at, item), msg);
                                }
                                continue;
                            }
                            Yaml::Int(id) => (
                                OUT_OF_RANGE,
                                format!(
                                    "rule ids are CRS's (900000 to 999999) or 200002, not {id}"
                                ),
                            ),
                            _ => (
                                BAD_CONFIG,
                                format!("a rule id must be an integer, not {}", item.kind()),
                            ),
                        };
                        let at = crate::source::index(&list, i);
                        c.diags.error(code, At::new(&at, item), msg);
                        ok = false;
                    }
                }
                None => {
                    c.wrong_type("exclude_rule_ids", node, "a list of rule ids (integers)");
                    ok = false;
                }
            }
        }
        // Our extensions (docs/waf.md): CRS's tunables and the per-request budget.
        if let Some(pl) = ranged(&mut c, "paranoia_level", 1, 4, &mut ok) {
            waf.paranoia_level = pl as u8;
        }
        if let Some(t) = ranged(&mut c, "anomaly_score_threshold", 1, 10_000, &mut ok) {
            match side {
                Side::Request => waf.inbound_threshold = t as u32,
                Side::Response => waf.outbound_threshold = t as u32,
            }
        }
        if let Some(limit) = ranged(&mut c, "body_limit", 1, MAX_BODY_LIMIT, &mut ok) {
            waf.body_limit = limit as usize;
        }
        let max_steps = ranged(&mut c, "max_steps", 1_000, 1_000_000_000, &mut ok).map_or(
            DEFAULT_BASE_STEPS + DEFAULT_STEPS_PER_BODY_BYTE * waf.body_limit as u64,
            |s| s as u64,
        );
        waf.on_budget = match c.string("on_budget_exceeded") {
            None => OnBudget::Block,
            Some((_, v)) if v == "block" => OnBudget::Block,
            Some((_, v)) if v == "pass" => OnBudget::Pass,
            Some((n, v)) => {
                let msg = format!("`on_budget_exceeded` must be `block` or `pass`, not `{v}`");
                c.error_at(BAD_CONFIG, "on_budget_exceeded", n, msg);
                ok = false;
                OnBudget::Block
            }
        };
        let Some(set) = cx.crs else {
            let path = c.path.clone();
            let at = At {
                path: &path,
                node: config,
            };
            c.diags.error(
                BAD_CONFIG,
                at,
                "this bundle carries no Core Rule Set: bundle the policy with `policy-check bundle`, which adds it",
            );
            return None;
        };
        c.finish();
        if !ok {
            return None;
        }
        let rules = CrsRules::new(std::sync::Arc::clone(set), &waf);
        Some(Waf {
            side,
            rules,
            halt,
            max_steps,
        })
    }

    /// Records the verdict (or the failure) as `actions.ngrok.<side>.*` and says what the chain
    /// does: `Err` stops it (`on_error: halt`), `Ok` goes on.
    pub fn finish(
        &self,
        ex: &mut Exchange,
        outcome: Result<Verdict, GatewayError>,
    ) -> Result<(), GatewayError> {
        let name = self.side.result_name();
        let (fields, error) = match outcome {
            Ok(v) => {
                let error = (v.decision == Disposition::Deny).then(|| GatewayError::WafBlocked {
                    response: self.side == Side::Response,
                    anomaly_score: v.anomaly_score,
                    threshold: v.threshold,
                    rule_ids: v.matched_ids(),
                });
                (verdict_fields(&v), error)
            }
            Err(e) => (Vec::new(), Some(e)),
        };
        ex.set_outcome(name, fields, error.as_ref());
        match error {
            Some(e) if self.halt => Err(e),
            _ => Ok(()),
        }
    }

    /// A body read for inspection (its first `body_limit` bytes). A read that failed is this
    /// action's outcome: reported, and returned as the error when it halts; `Ok(None)` then
    /// means "continue without inspecting". A body too large to read is the gateway's own 413,
    /// as verify-webhook answers (the Worker's prefix reads never are; a port that reads bodies
    /// whole may be); anything else that stops the read is the WAF's 500.
    pub fn body(
        &self,
        ex: &mut Exchange,
        read: Result<Rc<[u8]>, GatewayError>,
    ) -> Result<Option<Rc<[u8]>>, GatewayError> {
        match read {
            Ok(b) => Ok(Some(b)),
            Err(e) => {
                let e = match e {
                    GatewayError::BodyTooLarge { .. } => e,
                    e => GatewayError::WafBodyUnreadable {
                        detail: e.to_string(),
                    },
                };
                self.finish(ex, Err(e))?;
                Ok(None)
            }
        }
    }

    pub fn budget(&self) -> Budget<'static> {
        Budget::steps(self.max_steps)
    }
}

/// An integer field within `lo..=hi`; `None` when absent or wrong (reported).
fn ranged(
    c: &mut Config<'_, '_>,
    key: &'static str,
    lo: i64,
    hi: i64,
    ok: &mut bool,
) -> Option<i64> {
    let (node, v) = c.int(key)?;
    if (lo..=hi).contains(&v) {
        return Some(v);
    }
    let msg = format!("`{key}` must be between {lo} and {hi}, not {v}");
    c.error_at(OUT_OF_RANGE, key, node, msg);
    *ok = false;
    None
}

fn verdict_fields(v: &Verdict) -> Vec<(&'static str, Value)> {
    let rules: Vec<Value> = v
        .matched_rules
        .iter()
        .map(|m| {
            map(vec![
                ("id", Value::Int(i64::from(m.id))),
                ("message", Value::from(m.message.as_str())),
                ("severity", Value::from(m.severity.as_str())),
                ("data", Value::from(m.data.as_str())),
            ])
        })
        .collect();
    vec![
        ("decision", Value::from(v.decision.as_str())),
        ("anomaly_score", Value::Int(i64::from(v.anomaly_score))),
        (
            "anomaly_score_threshold",
            Value::Int(i64::from(v.threshold)),
        ),
        ("matched_rules", Value::List(Arc::new(rules))),
        ("partial", Value::Bool(v.partial)),
    ]
}

/// The first `limit` bytes of a body, and whether there was more.
pub fn prefix(body: &[u8], limit: usize) -> (&[u8], bool) {
    if body.len() > limit {
        (&body[..limit], true)
    } else {
        (body, false)
    }
}

#[cfg(test)]
mod tests {
    //! What the scenarios cannot reach: bodies that fail to read, a response phase without a
    //! response, and bodies that are not worth reading.
    use super::super::testing::TestPorts;
    use super::super::{Action, Step};
    use crate::actions::Cx;
    use crate::error::GatewayError;
    use crate::exchange::{Exchange, Phase};
    use crate::http::{Headers, RequestHead, ResponseHead};
    use crate::source::Diagnostics;

    fn action(type_name: &str, phase: Phase, config: serde_json::Value) -> Action {
        let mut diags = Diagnostics::default();
        let internal = Default::default();
        let mut cx = Cx {
            diags: &mut diags,
            strict: false,
            internal: &internal,
            endpoint: "t",
            crs: Some(crate::waf::vendored_rule_set()),
        };
        let node = crate::source::from_json(&config);
        let type_node = crate::source::from_json(&serde_json::json!(type_name));
        let spec = crate::actions::spec::find(type_name).unwrap();
        assert!(
            spec.phases.contains(&phase.name()),
            "{type_name} in {phase:?}"
        );
        let a = Action::compile(type_name, Some(&node), "a", &type_node, &mut cx);
        assert!(diags.items.is_empty(), "{:?}", diags.items);
        a.unwrap()
    }

    fn exchange(res: Option<(&str, &str)>) -> Exchange {
        let headers: Headers = [("content-type", "application/json")].into_iter().collect();
        let head = RequestHead::from_url(
            "POST",
            "https://gw.example/api",
            headers,
            "192.0.2.1".parse().unwrap(),
        )
        .unwrap();
        let mut ex = Exchange::new(head);
        ex.res = res.map(|(name, value)| ResponseHead {
            status: 200,
            headers: [(name, value)].into_iter().collect(),
        });
        ex
    }

    fn run(a: &Action, ex: &mut Exchange, cx: &TestPorts) -> Result<Step, GatewayError> {
        pollster::block_on(a.apply(ex, cx))
    }

    fn unreadable() -> GatewayError {
        GatewayError::BadRequest {
            reason: "client went away".into(),
        }
    }

    #[test]
    fn a_request_body_that_cannot_be_read_is_a_500_or_only_reported() {
        let cx = TestPorts::new(Err(unreadable()), Ok(b""));
        let halt = action(
            "owasp-crs-request",
            Phase::Request,
            serde_json::json!({"process_body": true}),
        );
        let err = run(&halt, &mut exchange(None), &cx).unwrap_err();
        assert!(
            matches!(err, GatewayError::WafBodyUnreadable { .. }),
            "{err:?}"
        );
        assert_eq!(err.status(), 500);

        let go_on = action(
            "owasp-crs-request",
            Phase::Request,
            serde_json::json!({"process_body": true, "on_error": "continue"}),
        );
        let mut ex = exchange(None);
        assert_eq!(run(&go_on, &mut ex, &cx).unwrap(), Step::Continue);
        let msg = ex
            .eval(
                &crate::expr::Expr::compile("actions.ngrok.owasp_crs_request.error.message")
                    .unwrap(),
            )
            .unwrap();
        assert!(
            crate::expr::to_text(&msg).contains("client went away"),
            "{msg:?}"
        );
    }

    #[test]
    fn a_request_body_past_the_buffer_is_a_413() {
        let cx = TestPorts::new(Err(GatewayError::BodyTooLarge { limit: 8 << 20 }), Ok(b""));
        let halt = action(
            "owasp-crs-request",
            Phase::Request,
            serde_json::json!({"process_body": true}),
        );
        let err = run(&halt, &mut exchange(None), &cx).unwrap_err();
        assert!(matches!(err, GatewayError::BodyTooLarge { .. }), "{err:?}");
        assert_eq!(err.status(), 413);
    }

    #[test]
    fn without_process_body_no_body_is_read() {
        let cx = TestPorts::new(Err(unreadable()), Err(unreadable()));
        let req = action("owasp-crs-request", Phase::Request, serde_json::json!({}));
        assert_eq!(run(&req, &mut exchange(None), &cx).unwrap(), Step::Continue);
        let res = action("owasp-crs-response", Phase::Response, serde_json::json!({}));
        let mut ex = exchange(Some(("content-type", "text/plain")));
        assert_eq!(run(&res, &mut ex, &cx).unwrap(), Step::Continue);
        assert_eq!(cx.reads.get(), 0);
    }

    #[test]
    fn response_bodies_are_read_only_when_inspected() {
        let leak = b"You have an error in your SQL syntax; check the manual that corresponds to your MySQL server version";
        let cx = TestPorts::new(Ok(b""), Ok(leak));
        let res = action(
            "owasp-crs-response",
            Phase::Response,
            serde_json::json!({"process_body": true}),
        );
        // An image, or a deflate body the platform hands over still encoded: not read.
        for (name, value) in [
            ("content-type", "image/png"),
            ("content-encoding", "deflate"),
        ] {
            let mut ex = exchange(Some((name, value)));
            assert_eq!(run(&res, &mut ex, &cx).unwrap(), Step::Continue, "{value}");
        }
        assert_eq!(cx.reads.get(), 0);
        // Text (here decoded from gzip by the platform) is read and the leak refused.
        let mut ex = exchange(Some(("content-encoding", "gzip")));
        let err = run(&res, &mut ex, &cx).unwrap_err();
        assert_eq!((err.status(), err.code()), (403, Some("ERR_NGROK_3702")));
        assert_eq!(cx.reads.get(), 1);
    }

    #[test]
    fn a_response_phase_without_a_response_is_an_internal_error() {
        let cx = TestPorts::new(Ok(b""), Ok(b""));
        let res = action("owasp-crs-response", Phase::Response, serde_json::json!({}));
        let err = run(&res, &mut exchange(None), &cx).unwrap_err();
        assert_eq!((err.status(), err.code()), (500, Some("ERR_NGROK_3701")));
    }
}
