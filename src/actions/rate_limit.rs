//! `rate-limit`: ngrok's sliding-window limit, counted exactly and globally by one Durable Object
//! per bucket (see `crate::limiter` for the arithmetic and its bounds).
//!
//! Consecutive `rate-limit` actions of a rule with the same `bucket_key` are merged at compile
//! time into one action that asks the bucket's object about all of its limits in one round trip.

use super::spec::{ActionSpec, ActionType, ON_ERROR, REQ};
use super::ConfigShape::{Any, Cel, Fields, ListOf};
use crate::actions::config::Config;
use crate::actions::config::{BAD_CONFIG, OUT_OF_RANGE, TOO_MANY};
use crate::actions::Cx;
use crate::error::GatewayError;
use crate::exchange::Exchange;
use crate::exchange::{Context, Step};
use crate::expr::{to_text, Expr};
use crate::limiter::{Limit, LimitCheck};
use crate::source::At;
use crate::source::Node;
use sha2::{Digest, Sha256};

#[derive(Debug)]
pub struct RateLimit {
    /// The endpoint and place the action was written, so buckets of different actions differ.
    scope: String,
    key: Vec<Expr>,
    key_sources: Vec<String>,
    limits: Vec<(String, LimitCheck)>,
    /// `on_error: halt` fails closed (503) when the bucket's object cannot be reached.
    halt_on_error: bool,
}

impl ActionType for RateLimit {
    const SPEC: ActionSpec = ActionSpec {
        name: "rate-limit",
        phases: &[REQ],
        terminating: false,
        results: Some("rate_limit"),
        config: Fields(&[
            ("name", Any),
            ("enforce", Any),
            ("algorithm", Any),
            ("capacity", Any),
            ("rate", Any),
            ("bucket_key", ListOf(&Cel)),
            ON_ERROR,
        ]),
    };

    fn compile(config: Option<&Node>, path: String, cx: &mut Cx<'_>) -> Option<RateLimit> {
        let scope = format!("{}#{}", cx.endpoint, path.trim_end_matches(".config"));
        let mut c = Config::new(config, path, cx.diags);
        let name = match c.string("name") {
            Some((n, s)) if s.is_empty() || s.len() >= 1024 => {
                c.error_at(
                    OUT_OF_RANGE,
                    "name",
                    n,
                    "`name` must have 1 to 1023 characters".into(),
                );
                None
            }
            Some((_, s)) => Some(s),
            None => {
                c.missing("name");
                None
            }
        };
        match c.string("algorithm") {
            Some((_, a)) if a == "sliding_window" => {}
            Some((n, a)) => c.error_at(
                BAD_CONFIG,
                "algorithm",
                n,
                format!("`algorithm` must be `sliding_window`, not `{a}`"),
            ),
            None => c.missing("algorithm"),
        }
        let capacity = match c.int("capacity") {
            Some((_, v)) if (1..=2_000_000_000).contains(&v) => Some(v as u64),
            Some((n, v)) => {
                c.error_at(
                    OUT_OF_RANGE,
                    "capacity",
                    n,
                    format!("`capacity` must be between 1 and 2000000000, not {v}"),
                );
                None
            }
            None => {
                c.missing("capacity");
                None
            }
        };
        let rate_ms = rate(&mut c, cx.strict);
        let (key, key_sources) = bucket_key(&mut c);
        let enforce = c.bool("enforce", true);
        let halt_on_error = match c.string("on_error") {
            None => false,
            Some((_, v)) if v == "continue" => false,
            Some((_, v)) if v == "halt" => true,
            Some((n, v)) => {
                c.error_at(BAD_CONFIG, "on_error", n, format!("`on_error` must be `continue` (fail open) or `halt` (fail closed), not `{v}`"));
                false
            }
        };
        c.finish();
        let check = LimitCheck {
            id: scope.clone(),
            limit: Limit {
                capacity: capacity?,
                rate_ms: rate_ms?,
            },
            enforce,
        };
        Some(RateLimit {
            scope,
            key: key?,
            key_sources,
            limits: vec![(name?, check)],
            halt_on_error,
        })
    }

    async fn apply<C: Context>(&self, ex: &mut Exchange, cx: &C) -> Result<Step, GatewayError> {
        let mut values = Vec::with_capacity(self.key.len());
        for expr in &self.key {
            let v = ex
                .eval(expr)
                .map_err(|error| GatewayError::Expression { error })?;
            values.push(to_text(&v));
        }
        let bucket_key = values.join(",");
        let bucket = bucket_name(&self.scope, &values);
        let checks: Vec<LimitCheck> = self.limits.iter().map(|(_, c)| c.clone()).collect();
        let decisions = match cx.rate_limit(&bucket, &checks).await {
            Ok(d) => d,
            Err(reason) => {
                let e = GatewayError::RateLimiterUnavailable { reason };
                if self.halt_on_error {
                    return Err(e);
                }
                ex.note(format!(
                    "rate-limit `{}` failed open: {e}",
                    self.limits[0].0
                ));
                ex.set_rate_limit_result(&bucket_key, false, Some(&e));
                return Ok(Step::Continue);
            }
        };
        for ((name, check), decision) in self.limits.iter().zip(&decisions) {
            ex.set_rate_limit_result(&bucket_key, !decision.allowed, None);
            ex.record_rate_limit(name, check.limit, *decision);
            if !decision.allowed && check.enforce {
                return Err(GatewayError::RateLimited {
                    name: name.clone(),
                    limit: check.limit,
                    decision: *decision,
                });
            }
        }
        Ok(Step::Continue)
    }
}

impl RateLimit {

    /// Merges `next` into this action when both key on the same expressions (one round trip).
    pub fn absorb(&mut self, next: RateLimit) -> Result<(), RateLimit> {
        if next.key_sources != self.key_sources || next.halt_on_error != self.halt_on_error {
            return Err(next);
        }
        self.limits.extend(next.limits);
        Ok(())
    }

}

/// The Durable Object name of a bucket: deterministic, and not revealing the key's values.
pub fn bucket_name<S: AsRef<str>>(scope: &str, values: &[S]) -> String {
    let mut h = Sha256::new();
    h.update(scope.as_bytes());
    for v in values {
        h.update([0x1f]);
        h.update(v.as_ref().as_bytes());
    }
    format!("{:x}", h.finalize())
}

/// `rate`: a duration string (`60s`, `1m`, `1h`). ngrok requires 60 s to 24 h in multiples of
/// 10 s; outside that it loads with a warning, and `--strict` rejects it.
fn rate(c: &mut Config<'_, '_>, strict: bool) -> Option<u64> {
    let (node, text) = match c.string("rate") {
        Some(x) => x,
        None => {
            if let Some(n) = c.field("rate") {
                c.wrong_type("rate", n, "a duration such as `60s`");
            } else {
                c.missing("rate");
            }
            return None;
        }
    };
    let Some(ms) = parse_duration_ms(&text) else {
        c.error_at(
            BAD_CONFIG,
            "rate",
            node,
            format!("`{text}` is not a duration (e.g. `60s`, `1m`, `1h`)"),
        );
        return None;
    };
    if !(60_000..=86_400_000).contains(&ms) || ms % 10_000 != 0 {
        let msg = format!("`rate` must be between 60s and 24h in multiples of 10s, not `{text}`");
        if strict {
            c.error_at(OUT_OF_RANGE, "rate", node, msg);
            return None;
        }
        let path = crate::source::child(&c.path, "rate");
        c.diags.warning(
            OUT_OF_RANGE,
            At::new(&path, node),
            format!("{msg} (accepted; `--strict` rejects it)"),
        );
    }
    (ms > 0).then_some(ms)
}

/// Parses `90s`, `1m30s`, `1h`, `500ms`.
pub fn parse_duration_ms(text: &str) -> Option<u64> {
    let mut total = 0u64;
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|ch: char| !ch.is_ascii_digit() && ch != '.')
            .unwrap_or(rest.len());
        let number: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|ch: char| ch.is_ascii_digit())
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ms" => 1.0,
            "s" => 1_000.0,
            "m" => 60_000.0,
            "h" => 3_600_000.0,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total = total.checked_add((number * scale).round() as u64)?;
    }
    Some(total)
}

fn bucket_key(c: &mut Config<'_, '_>) -> (Option<Vec<Expr>>, Vec<String>) {
    let Some(node) = c.field("bucket_key") else {
        c.missing("bucket_key");
        return (None, Vec::new());
    };
    let Some(items) = node.as_seq() else {
        c.wrong_type("bucket_key", node, "a list of CEL expressions");
        return (None, Vec::new());
    };
    if items.is_empty() || items.len() > 10 {
        c.error_at(
            TOO_MANY,
            "bucket_key",
            node,
            format!(
                "`bucket_key` must have 1 to 10 entries, not {}",
                items.len()
            ),
        );
    }
    let mut exprs = Vec::new();
    let mut sources = Vec::new();
    let mut ok = true;
    for (i, item) in items.iter().enumerate() {
        let key = format!("bucket_key[{i}]");
        match item.as_str().map(|s| (s, Expr::compile(s))) {
            Some((s, Ok(e))) => {
                sources.push(s.to_string());
                exprs.push(e);
            }
            Some((s, Err(e))) => {
                c.error_at(
                    Some("ERR_NGROK_2200"),
                    &key,
                    item,
                    format!("invalid expression `{s}`: {}", e.0),
                );
                ok = false;
            }
            None => {
                c.error_at(
                    BAD_CONFIG,
                    &key,
                    item,
                    "a bucket key is a CEL expression string".into(),
                );
                ok = false;
            }
        }
    }
    (ok.then_some(exprs), sources)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ms("60s"), Some(60_000));
        assert_eq!(parse_duration_ms("1m30s"), Some(90_000));
        assert_eq!(parse_duration_ms("1h"), Some(3_600_000));
        assert_eq!(parse_duration_ms("1s"), Some(1_000));
        assert_eq!(parse_duration_ms("250ms"), Some(250));
        assert_eq!(parse_duration_ms("5d"), None);
        assert_eq!(parse_duration_ms(""), None);
        assert_eq!(parse_duration_ms("s"), None);
    }

    #[test]
    fn bucket_names_are_stable_and_distinct() {
        let a = bucket_name("e#p", &["1.2.3.4"]);
        assert_eq!(a, bucket_name("e#p", &["1.2.3.4"]));
        assert_ne!(a, bucket_name("e#p", &["1.2.3.5"]));
        assert_ne!(a, bucket_name("e#q", &["1.2.3.4"]));
        assert_ne!(bucket_name("e", &["a,b"]), bucket_name("e", &["a", "b"]));
    }
}
