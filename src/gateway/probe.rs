//! Active health: optional probes of each member's origin, run by the Worker's Cron Trigger,
//! their results kept in one Durable Object (the board) that every isolate reads every few
//! seconds. A member its probe reports down takes no traffic in any isolate, even one that has
//! never sent it a request; passive health still acts between probes.
//!
//! Set per AgentEndpoint: `edge-gateway.dev/health-path: /healthz` (turns probing on) and
//! `edge-gateway.dev/health-expect: "200"` (the status that means up; default 200).

use super::{Gateway, Member, Pool};
use crate::source::Node;
use crate::source::{At, Diagnostics};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const HEALTH_PATH: &str = "edge-gateway.dev/health-path";
pub const HEALTH_EXPECT: &str = "edge-gateway.dev/health-expect";
/// A result older than this is ignored (the cron stopped, the board is stale): passive health
/// alone decides, rather than a stale "down" keeping a member out forever.
pub const MAX_AGE_MS: u64 = 3 * 60_000;
/// Failed probes in a row before a member is taken out: one lost probe (one location's network
/// blip) does not remove a member everywhere.
pub const DOWN_AFTER: u32 = 2;

/// Folds a new report into the board, counting failures in a row.
pub fn merge(board: &mut Board, report: Board) {
    for (key, mut result) in report {
        result.fails = match (result.up, board.get(&key)) {
            (true, _) => 0,
            (false, Some(prev)) if !prev.up => prev.fails.saturating_add(1),
            (false, _) => 1,
        };
        board.insert(key, result);
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Probe {
    pub path: String,
    pub expect: u16,
}

/// One probe's outcome, as the board keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeResult {
    pub up: bool,
    pub at_ms: u64,
    /// Failed probes in a row (the board counts them as reports arrive).
    #[serde(default)]
    pub fails: u32,
    /// `200`, `503`, `connection refused`, ...: for people reading the board.
    pub detail: String,
}

/// Every member's last probe result, by [`board_key`].
pub type Board = BTreeMap<String, ProbeResult>;

/// `pool url|member name`: stable across policy versions.
pub fn board_key(pool: &Pool, member: &Member) -> String {
    format!("{}|{}", pool.url, member.name)
}

/// A member's probe, from its annotations.
pub fn read(annotations: Option<&Node>, path: &str, d: &mut Diagnostics) -> Option<Probe> {
    let a = annotations?;
    let probe_path = a.get(HEALTH_PATH)?;
    let text = probe_path.as_str().unwrap_or_default();
    if !text.starts_with('/') {
        let msg = format!("`{HEALTH_PATH}` is a path starting with `/`");
        d.error(Some("ERR_NGROK_2203"), At::new(path, probe_path), msg);
        return None;
    }
    let expect = match a.get(HEALTH_EXPECT) {
        None => 200,
        Some(n) => match n.as_str().and_then(|t| t.trim().parse::<u16>().ok()) {
            Some(s) if (100..600).contains(&s) => s,
            _ => {
                let msg = format!("`{HEALTH_EXPECT}` is an HTTP status, in quotes");
                d.error(Some("ERR_NGROK_2215"), At::new(path, n), msg);
                return None;
            }
        },
    };
    Some(Probe {
        path: text.to_string(),
        expect,
    })
}

impl Gateway {
    /// Whether any member is probed (cheap: checked on every request).
    pub fn has_probes(&self) -> bool {
        self.pools
            .values()
            .any(|p| p.members.iter().any(|m| m.probe.is_some()))
    }

    /// What the cron probes: `(board key, URL, expected status, member)`.
    pub fn probes(&self) -> Vec<(String, String, u16, &Member)> {
        let mut out = Vec::new();
        for pool in self.pools.values() {
            for member in &pool.members {
                if let Some(p) = &member.probe {
                    let url = member.origin.url_for(&p.path);
                    out.push((board_key(pool, member), url, p.expect, member));
                }
            }
        }
        out
    }

    /// Applies the board to each member's health in this isolate: a member whose probe failed
    /// [`DOWN_AFTER`] times in a row is out until its result is [`MAX_AGE_MS`] old.
    pub fn apply_board(&self, board: &Board) {
        for pool in self.pools.values() {
            for (i, member) in pool.members.iter().enumerate() {
                let until = board
                    .get(&board_key(pool, member))
                    .filter(|r| !r.up && r.fails >= DOWN_AFTER)
                    .map(|r| r.at_ms.saturating_add(MAX_AGE_MS));
                pool.set_probed_down(i, until);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::Want;
    use crate::manifest::{build_gateway, Options, SourceDoc};

    struct Zero;
    impl crate::gateway::Random for Zero {
        fn below(&mut self, _: usize) -> usize {
            0
        }
    }

    fn gateway() -> Gateway {
        let yaml = r#"
apiVersion: ngrok.k8s.ngrok.com/v1alpha1
kind: AgentEndpoint
metadata: {name: a, annotations: {edge-gateway.dev/health-path: /healthz}}
spec: {bindings: [internal], url: https://p.internal, upstream: {url: "http://127.0.0.1:1"}}
---
apiVersion: ngrok.k8s.ngrok.com/v1alpha1
kind: AgentEndpoint
metadata: {name: b, annotations: {edge-gateway.dev/health-path: /ready, edge-gateway.dev/health-expect: "204"}}
spec: {bindings: [internal], url: https://p.internal, upstream: {url: "http://127.0.0.1:2"}}
---
on_http_request:
  - actions: [{type: forward-internal, config: {url: "https://p.internal"}}]
"#;
        let docs: Vec<SourceDoc> = crate::source::parse_yaml_documents(yaml)
            .unwrap()
            .into_iter()
            .map(|node| SourceDoc {
                file: "t.yaml".into(),
                node,
            })
            .collect();
        build_gateway(&docs, Options::default(), "t").0.unwrap()
    }

    #[test]
    fn probes_and_the_board_decide_who_takes_traffic() {
        let gw = gateway();
        let probes = gw.probes();
        let urls: Vec<(&str, u16)> = probes.iter().map(|p| (p.1.as_str(), p.2)).collect();
        assert_eq!(
            urls,
            [
                ("http://127.0.0.1:1/healthz", 200),
                ("http://127.0.0.1:2/ready", 204)
            ]
        );
        let pool = gw.pools.values().next().unwrap();
        let result = |up: bool, at_ms: u64| ProbeResult {
            up,
            at_ms,
            fails: 0,
            detail: String::new(),
        };
        let report = |a: bool, b: bool, at: u64| {
            Board::from([
                (probes[0].0.clone(), result(a, at)),
                (probes[1].0.clone(), result(b, at)),
            ])
        };
        let choose = |now| pool.choose(&mut Zero, now, &[], &Want::default());
        // One failed probe of a is not enough; two in a row take it out.
        let mut board = Board::new();
        merge(&mut board, report(false, true, 1_000));
        gw.apply_board(&board);
        assert_eq!(choose(2_000), Some(0));
        merge(&mut board, report(false, true, 61_000));
        gw.apply_board(&board);
        for _ in 0..3 {
            assert_eq!(choose(62_000), Some(1));
        }
        // Both down: nothing to choose (the request gets 503 at once).
        merge(&mut board, report(false, false, 121_000));
        merge(&mut board, report(false, false, 181_000));
        gw.apply_board(&board);
        assert_eq!(choose(182_000), None);
        // A result that grows stale stops counting, even if the board is never read again.
        assert_eq!(choose(181_000 + MAX_AGE_MS), Some(0));
        // A success resets the count.
        merge(&mut board, report(true, true, 241_000));
        assert_eq!(board[&probes[0].0].fails, 0);
    }
}
