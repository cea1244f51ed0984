//! `circuit-breaker`: refuses requests with 503 (`ERR_NGROK_3202`) while the upstream behind it
//! is failing, so a struggling service gets room to recover.
//!
//! Errors are responses with a 5xx status (ngrok's legacy module docs) and failures to reach the
//! upstream (which the gateway answers with 502/503/504). The action runs before the request is
//! forwarded, so it cannot see the outcome itself: it leaves an [`Admission`] on the exchange,
//! and the gateway reports the final status to every breaker that admitted the request.
//!
//! State lives in the compiled action, so per isolate and per policy version, like ngrok's
//! per-server state; a Durable Object would make it global at the cost of a round trip on every
//! request and every outcome (see docs/subrequests.md). The clock is the injected `now_ms`.

use super::spec::{ActionSpec, ActionType, REQ};
use super::ConfigShape::{Any, Fields};
use crate::actions::config::Config;
use crate::actions::config::{BAD_CONFIG, OUT_OF_RANGE};
use crate::actions::Cx;
use crate::breaker::{Circuit, Settings};
use crate::error::GatewayError;
use crate::exchange::Exchange;
use crate::exchange::{Context, Step};
use crate::source::{Node, Value};
use std::rc::Rc;

#[derive(Debug)]
pub struct CircuitBreaker {
    circuit: Rc<Circuit>,
}

/// A duration field (`10s`, `2m`) within `min..=max` ms: `Ok(None)` when absent.
pub(super) fn duration(
    c: &mut Config<'_, '_>,
    key: &'static str,
    min: u64,
    max: u64,
) -> Result<Option<u64>, ()> {
    let Some((node, text)) = c.string(key) else {
        return if c.field(key).is_some() {
            Err(())
        } else {
            Ok(None)
        };
    };
    let Some(ms) = super::parse_duration_ms(&text) else {
        let msg = format!("`{text}` is not a duration (e.g. `10s`, `1m`)");
        c.error_at(BAD_CONFIG, key, node, msg);
        return Err(());
    };
    if !(min..=max).contains(&ms) {
        let msg = format!(
            "`{key}` must be between {} and {}, not `{text}`",
            human(min),
            human(max)
        );
        c.error_at(OUT_OF_RANGE, key, node, msg);
        return Err(());
    }
    Ok(Some(ms))
}

fn human(ms: u64) -> String {
    if ms.is_multiple_of(60_000) {
        format!("{}m", ms / 60_000)
    } else {
        format!("{}s", ms / 1000)
    }
}
impl ActionType for CircuitBreaker {
    const SPEC: ActionSpec = ActionSpec {
        name: "circuit-breaker",
        phases: &[REQ],
        terminating: false,
        results: None,
        config: Fields(&[
            ("error_threshold", Any),
            ("volume_threshold", Any),
            ("window_duration", Any),
            ("tripped_duration", Any),
            ("num_buckets", Any),
            ("enforce", Any),
        ]),
    };

    fn compile(config: Option<&Node>, path: String, cx: &mut Cx<'_>) -> Option<CircuitBreaker> {
        let mut c = Config::new(config, path, cx.diags);
        let mut s = Settings::default();
        let mut ok = true;
        if let Some(node) = c.field("error_threshold") {
            match node.value {
                Value::Float(f) if (0.0..=1.0).contains(&f) => s.error_threshold = f,
                Value::Int(i @ 0..=1) => s.error_threshold = i as f64,
                Value::Float(_) | Value::Int(_) => {
                    let msg = "`error_threshold` must be between 0.0 and 1.0".to_string();
                    c.error_at(OUT_OF_RANGE, "error_threshold", node, msg);
                    ok = false;
                }
                _ => {
                    c.wrong_type("error_threshold", node, "a number between 0.0 and 1.0");
                    ok = false;
                }
            }
        }
        if let Some((node, v)) = c.int("volume_threshold") {
            if (1..=2_000_000_000).contains(&v) {
                s.volume_threshold = v as u64;
            } else {
                let msg = format!("`volume_threshold` must be between 1 and 2000000000, not {v}");
                c.error_at(OUT_OF_RANGE, "volume_threshold", node, msg);
                ok = false;
            }
        }
        for (key, target) in [
            ("window_duration", &mut s.window_ms),
            ("tripped_duration", &mut s.tripped_ms),
        ] {
            match duration(&mut c, key, 1_000, 120_000) {
                Ok(Some(ms)) => *target = ms,
                Ok(None) => {}
                Err(()) => ok = false,
            }
        }
        // ngrok's page: "Fixed at `10`". The key is accepted (a policy naming it runs
        // unchanged), but another value changes nothing there, so it changes nothing here.
        match c.int("num_buckets") {
            None | Some((_, 10)) => {}
            Some((node, v @ 1..=100)) => {
                let path = crate::source::child(&c.path, "num_buckets");
                let msg = format!(
                    "`num_buckets` is fixed at 10 in ngrok's reference; 10 is used, not {v}"
                );
                c.diags
                    .warning(BAD_CONFIG, crate::source::At::new(&path, node), msg);
            }
            Some((node, v)) => {
                let msg = format!("`num_buckets` must be between 1 and 100, not {v}");
                c.error_at(OUT_OF_RANGE, "num_buckets", node, msg);
                ok = false;
            }
        }
        s.enforce = c.bool("enforce", true);
        c.finish();
        ok.then(|| CircuitBreaker {
            circuit: Rc::new(Circuit::new(s)),
        })
    }

    async fn apply<C: Context>(&self, ex: &mut Exchange, cx: &C) -> Result<Step, GatewayError> {
        match Circuit::admit(&self.circuit, cx.now_ms()) {
            Ok(admission) => {
                ex.breakers.push(admission);
                Ok(Step::Continue)
            }
            Err(retry_after_ms) => Err(GatewayError::CircuitOpen {
                retry_after_s: retry_after_ms.div_ceil(1000).max(1),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::compile::testing::compile_json;
    use crate::compile::EndpointKind;
    use crate::source::Severity;

    /// ngrok's page: `num_buckets` is "Fixed at `10`". Naming it is accepted; another value in
    /// range is a warning (10 is used), one out of range an error.
    #[test]
    fn num_buckets_is_fixed_at_ten() {
        let diags = |n: i64| {
            let policy = serde_json::json!({"on_http_request": [{"actions": [
                {"type": "circuit-breaker", "config": {"error_threshold": 0, "num_buckets": n}},
            ]}]});
            let (policy, diags) = compile_json(&policy, EndpointKind::Agent);
            let found: Vec<_> = diags.items.iter().map(|d| (d.severity, d.path.clone())).collect();
            (policy.is_some(), found)
        };
        assert_eq!(diags(10), (true, vec![]));
        let path = "policy.on_http_request[0].actions[0].config.num_buckets".to_string();
        assert_eq!(diags(5), (true, vec![(Severity::Warning, path.clone())]));
        assert_eq!(diags(0), (false, vec![(Severity::Error, path)]));
    }
}
