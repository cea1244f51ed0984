//! Pools of internal endpoints. ngrok picks a member uniformly at random; so do we, among the
//! members passive health has not ejected (see [`super::health`]).

use super::handle::Random;
use super::health::{HealthPolicy, MemberHealth, State};
use crate::endpoint_url::Origin;
use crate::program::Policy;
use std::cell::RefCell;

#[derive(Debug)]
pub struct Pool {
    /// The URL as declared (`https://catalog-eks.internal`).
    pub url: String,
    pub members: Vec<Member>,
    /// Each member's passive health in this isolate, by index.
    pub health: RefCell<Vec<MemberHealth>>,
}

/// One AgentEndpoint: where it sends traffic, and its own policy (runs on forwarded requests).
#[derive(Debug)]
pub struct Member {
    /// `namespace/name` of the AgentEndpoint.
    pub name: String,
    pub cluster: Option<String>,
    pub origin: Origin,
    pub policy: Option<Policy>,
}

impl Pool {
    pub fn new(url: &str) -> Pool {
        Pool {
            url: url.to_string(),
            members: Vec::new(),
            health: RefCell::default(),
        }
    }

    /// A member to try, not among `tried`: uniformly at random among the healthy ones, members
    /// on probation with a quarter of the share; `None` when every member is ejected or tried.
    pub fn choose(&self, rng: &mut dyn Random, now_ms: u64, tried: &[usize]) -> Option<usize> {
        let mut health = self.health.borrow_mut();
        health.resize(self.members.len(), MemberHealth::default());
        let weights: Vec<u32> = health
            .iter()
            .enumerate()
            .map(|(i, h)| {
                if tried.contains(&i) {
                    0
                } else {
                    h.weight(now_ms)
                }
            })
            .collect();
        let candidates: Vec<usize> = (0..weights.len()).filter(|i| weights[*i] > 0).collect();
        let first = *candidates.first()?;
        if candidates.iter().all(|i| weights[*i] == weights[first]) {
            return Some(candidates[rng.below(candidates.len())]);
        }
        let total: u32 = weights.iter().sum();
        let mut ticket = rng.below(total as usize) as u32;
        for (i, w) in weights.iter().enumerate() {
            if ticket < *w {
                return Some(i);
            }
            ticket -= w;
        }
        Some(first)
    }

    pub fn record(&self, member: usize, ok: bool, now_ms: u64, policy: &HealthPolicy) {
        let mut health = self.health.borrow_mut();
        health.resize(self.members.len(), MemberHealth::default());
        health[member].record(ok, now_ms, policy);
    }

    /// When the first ejected member comes back (for `Retry-After` when all are out).
    pub fn next_return_ms(&self, now_ms: u64) -> Option<u64> {
        self.health
            .borrow()
            .iter()
            .filter_map(|h| match h.state(now_ms) {
                State::Ejected { until_ms } => Some(until_ms),
                _ => None,
            })
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Seq(Vec<usize>, usize);
    impl Random for Seq {
        fn below(&mut self, n: usize) -> usize {
            self.1 += 1;
            self.0[(self.1 - 1) % self.0.len()] % n
        }
    }

    fn pool(n: usize) -> Pool {
        let mut p = Pool::new("https://a.internal");
        for i in 0..n {
            p.members.push(Member {
                name: format!("m{i}"),
                cluster: None,
                origin: Origin::parse("http://127.0.0.1:1").unwrap(),
                policy: None,
            });
        }
        p
    }

    #[test]
    fn ejected_and_tried_members_are_skipped() {
        let p = pool(3);
        let hp = HealthPolicy::default();
        let mut rng = Seq(vec![0, 1, 2], 0);
        assert_eq!(p.choose(&mut rng, 0, &[]), Some(0));
        assert_eq!(p.choose(&mut rng, 0, &[0]), Some(2), "index 1 of [1, 2]");
        for t in 0..3 {
            p.record(1, false, t, &hp);
        }
        let picks: Vec<_> = (0..6)
            .map(|_| p.choose(&mut rng, 10, &[]).unwrap())
            .collect();
        assert!(!picks.contains(&1), "{picks:?}");
        assert_eq!(p.choose(&mut rng, 10, &[0, 2]), None);
        assert_eq!(p.next_return_ms(10), Some(2 + hp.base_ms));
    }

    #[test]
    fn probation_gets_a_quarter_share() {
        let p = pool(2);
        let hp = HealthPolicy::default();
        for t in 0..3 {
            p.record(0, false, t, &hp);
        }
        let back = 2 + hp.base_ms;
        // Weights 1 (probation) and 4: tickets 0 -> member 0, 1..=4 -> member 1.
        let mut rng = Seq((0..5).collect(), 0);
        let picks: Vec<_> = (0..5)
            .map(|_| p.choose(&mut rng, back, &[]).unwrap())
            .collect();
        assert_eq!(picks, vec![0, 1, 1, 1, 1]);
    }
}
