//! Pools of internal endpoints. ngrok picks a member uniformly at random; so do we, among the
//! members passive health has not ejected (see [`super::health`]).

use super::balance::{rendezvous, Balance, PoolSettings};
use super::health::{HealthPolicy, MemberHealth, State};
use super::ports::Random;
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
    /// Requests in flight to each member from this isolate (for `least-requests`).
    outstanding: RefCell<Vec<u32>>,
    pub settings: PoolSettings,
    /// This pool's retry budget in this isolate: one failing pool cannot spend another's.
    pub retries: super::health::RetryBudget,
    /// `endpoint.*` while a member's policy runs.
    pub info: std::sync::Arc<crate::expr::EndpointInfo>,
}

/// A request in flight to a member (see [`Pool::busy`]).
pub struct Busy<'a> {
    pool: &'a Pool,
    member: usize,
    epoch: u32,
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.pool.in_flight(self.member, false);
    }
}

/// What one request asks of the choice: its hash key and preferred cluster, when the pool's
/// settings use them.
#[derive(Debug, Default)]
pub struct Want {
    pub key: Option<String>,
    pub cluster: Option<String>,
}

/// One AgentEndpoint: where it sends traffic, and its own policy (runs on forwarded requests).
#[derive(Debug)]
pub struct Member {
    /// `namespace/name` of the AgentEndpoint.
    pub name: String,
    pub cluster: Option<String>,
    pub origin: Origin,
    pub policy: Option<Policy>,
    /// Its share of the pool's traffic (`edge-gateway.dev/weight`, default 1).
    pub weight: u32,
    /// Headers that authenticate the gateway to the origin (Cloudflare Access service token),
    /// usually `${secrets.get(...)}`: a tunnel hostname is useless without them.
    pub origin_auth: Vec<(&'static str, crate::expr::Template)>,
    /// Its active health probe, if any (`edge-gateway.dev/health-path`).
    pub probe: Option<super::probe::Probe>,
}

impl Pool {
    pub fn new(url: &str) -> Pool {
        Pool {
            url: url.to_string(),
            members: Vec::new(),
            health: RefCell::default(),
            outstanding: RefCell::default(),
            settings: PoolSettings::default(),
            retries: Default::default(),
            info: std::sync::Arc::new(crate::expr::EndpointInfo::new(url, url)),
        }
    }

    /// A member to try, not among `tried` and not ejected. Healthy members count their weight
    /// four times, members on probation once; members of the wanted cluster go first; then the
    /// pool's balancing decides. `None` when no member is left.
    pub fn choose(
        &self,
        rng: &mut dyn Random,
        now_ms: u64,
        tried: &[usize],
        want: &Want,
    ) -> Option<usize> {
        let mut health = self.health.borrow_mut();
        health.resize(self.members.len(), MemberHealth::default());
        let mut eligible: Vec<(usize, u32)> = health
            .iter()
            .enumerate()
            .filter(|(i, _)| !tried.contains(i))
            .map(|(i, h)| (i, h.weight(now_ms) * self.members[i].weight))
            .filter(|(_, w)| *w > 0)
            .collect();
        if let Some(cluster) = want.cluster.as_deref() {
            let in_cluster = |i: &usize| self.members[*i].cluster.as_deref() == Some(cluster);
            if eligible.iter().any(|(i, _)| in_cluster(i)) {
                eligible.retain(|(i, _)| in_cluster(i));
            }
        }
        let &(first, first_w) = eligible.first()?;
        match (&self.settings.balance, want.key.as_deref()) {
            (Balance::Hash(_), Some(key)) => rendezvous(
                key,
                eligible
                    .iter()
                    .map(|(i, w)| (*i, self.members[*i].name.as_str(), *w)),
            ),
            (Balance::LeastRequests, _) => {
                let mut outstanding = self.outstanding.borrow_mut();
                outstanding.resize(self.members.len(), 0);
                // Fewest in flight for the weight; among equals, a random one.
                let load = |(i, w): &(usize, u32)| f64::from(outstanding[*i]) / f64::from(*w);
                let least = eligible.iter().map(load).fold(f64::INFINITY, f64::min);
                let ties: Vec<(usize, u32)> = eligible
                    .iter()
                    .filter(|c| load(c) == least)
                    .copied()
                    .collect();
                // Among equals (an idle isolate: all zero), the weights still decide.
                let total: u32 = ties.iter().map(|(_, w)| w).sum();
                let mut ticket = rng.below(total as usize) as u32;
                ties.iter()
                    .find(|(_, w)| {
                        let hit = ticket < *w;
                        ticket = ticket.saturating_sub(*w);
                        hit
                    })
                    .map(|(i, _)| *i)
            }
            _ if eligible.iter().all(|(_, w)| *w == first_w) => {
                Some(eligible[rng.below(eligible.len())].0)
            }
            _ => {
                let total: u32 = eligible.iter().map(|(_, w)| w).sum();
                let mut ticket = rng.below(total as usize) as u32;
                for (i, w) in &eligible {
                    if ticket < *w {
                        return Some(*i);
                    }
                    ticket -= w;
                }
                Some(first)
            }
        }
    }

    /// A request to `member` starts (`+1`) or ends (`-1`): the in-flight count.
    pub fn in_flight(&self, member: usize, starts: bool) {
        let mut outstanding = self.outstanding.borrow_mut();
        outstanding.resize(self.members.len(), 0);
        let n = &mut outstanding[member];
        *n = if starts { *n + 1 } else { n.saturating_sub(1) };
    }

    /// Counts a request to `member` in flight until the guard drops, and remembers the
    /// member's health epoch when it started.
    pub fn busy(&self, member: usize) -> Busy<'_> {
        self.in_flight(member, true);
        let epoch = {
            let mut health = self.health.borrow_mut();
            health.resize(self.members.len(), MemberHealth::default());
            health[member].epoch
        };
        Busy {
            pool: self,
            member,
            epoch,
        }
    }

    /// Records an attempt's outcome, unless the member was ejected after the attempt started:
    /// a request that set off before an ejection and failed during the probation that followed
    /// says nothing about the member now, and must not eject it again.
    pub fn record_attempt(&self, attempt: &Busy<'_>, ok: bool, now_ms: u64, policy: &HealthPolicy) {
        let current = self.health.borrow().get(attempt.member).map(|h| h.epoch);
        if current == Some(attempt.epoch) {
            self.record(attempt.member, ok, now_ms, policy);
        }
    }

    /// What the active probes say of `member`: down until the given time, or `None`.
    pub fn set_probed_down(&self, member: usize, until_ms: Option<u64>) {
        let mut health = self.health.borrow_mut();
        health.resize(self.members.len(), MemberHealth::default());
        health[member].probed_down_until_ms = until_ms.unwrap_or(0);
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
                weight: 1,
                origin_auth: Vec::new(),
                probe: None,
            });
        }
        p
    }

    #[test]
    fn ejected_and_tried_members_are_skipped() {
        let p = pool(3);
        let hp = HealthPolicy::default();
        let mut rng = Seq(vec![0, 1, 2], 0);
        assert_eq!(p.choose(&mut rng, 0, &[], &Want::default()), Some(0));
        assert_eq!(
            p.choose(&mut rng, 0, &[0], &Want::default()),
            Some(2),
            "index 1 of [1, 2]"
        );
        for t in 0..3 {
            p.record(1, false, t, &hp);
        }
        let picks: Vec<_> = (0..6)
            .map(|_| p.choose(&mut rng, 10, &[], &Want::default()).unwrap())
            .collect();
        assert!(!picks.contains(&1), "{picks:?}");
        assert_eq!(p.choose(&mut rng, 10, &[0, 2], &Want::default()), None);
        assert_eq!(p.next_return_ms(10), Some(2 + hp.base_ms));
    }

    #[test]
    fn preferred_cluster_first_then_failover() {
        let mut p = pool(3);
        p.members[0].cluster = Some("gke".into());
        p.members[1].cluster = Some("eks".into());
        p.members[2].cluster = Some("eks".into());
        let want = Want {
            key: None,
            cluster: Some("gke".into()),
        };
        let mut rng = Seq((0..9).collect(), 0);
        for _ in 0..5 {
            assert_eq!(p.choose(&mut rng, 0, &[], &want), Some(0));
        }
        // The preferred member fails: the other cluster takes over.
        assert!(matches!(p.choose(&mut rng, 0, &[0], &want), Some(1 | 2)));
    }

    #[test]
    fn least_requests_and_weights() {
        let mut p = pool(2);
        p.settings.balance = Balance::LeastRequests;
        let mut rng = Seq(vec![0], 0);
        p.in_flight(0, true);
        assert_eq!(p.choose(&mut rng, 0, &[], &Want::default()), Some(1));
        p.in_flight(1, true);
        p.in_flight(1, true);
        assert_eq!(p.choose(&mut rng, 0, &[], &Want::default()), Some(0));
        // Weight 3 on member 1: 2 in flight over weight 3 is less load than 1 over 1.
        p.members[1].weight = 3;
        assert_eq!(p.choose(&mut rng, 0, &[], &Want::default()), Some(1));
        p.in_flight(1, false);
        p.in_flight(1, false);
        p.in_flight(0, false);
        p.in_flight(0, false); // never below zero
        assert_eq!(p.outstanding.borrow()[0], 0);
    }

    #[test]
    fn hashing_keeps_a_key_on_one_member() {
        let mut p = pool(3);
        p.settings.balance = Balance::Hash(crate::expr::Expr::compile("'x'").unwrap());
        let mut rng = Seq(vec![0, 1, 2], 0);
        for user in ["ada", "bob", "cy"] {
            let want = Want {
                key: Some(user.into()),
                cluster: None,
            };
            let first = p.choose(&mut rng, 0, &[], &want);
            for _ in 0..5 {
                assert_eq!(p.choose(&mut rng, 0, &[], &want), first);
            }
        }
    }

    #[test]
    fn an_attempt_older_than_the_ejection_does_not_count() {
        let p = pool(2);
        let hp = HealthPolicy::default();
        let slow = p.busy(0); // sets off, then hangs
        for t in 0..3 {
            let quick = p.busy(0);
            p.record_attempt(&quick, false, t, &hp);
        }
        // Ejected; the back-off runs out and probation starts ...
        let back = 2 + hp.base_ms;
        // ... and the slow attempt's failure arrives now: it started before the ejection.
        p.record_attempt(&slow, false, back, &hp);
        assert_eq!(p.health.borrow()[0].state(back), State::Probation);
        // A fresh attempt's failure on probation does eject it.
        let fresh = p.busy(0);
        p.record_attempt(&fresh, false, back + 1, &hp);
        assert!(matches!(
            p.health.borrow()[0].state(back + 1),
            State::Ejected { .. }
        ));
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
            .map(|_| p.choose(&mut rng, back, &[], &Want::default()).unwrap())
            .collect();
        assert_eq!(picks, vec![0, 1, 1, 1, 1]);
    }
}
