//! Passive health of pool members and the retry budget, per isolate, with the clock passed in.
//!
//! A member is ejected after `eject_after` consecutive failures (a connection error, a timeout,
//! or a 502/503/504) for a back-off that doubles with each ejection in a row (`base_ms` up to
//! `max_ms`). When the back-off ends it is on probation: it gets a quarter of a healthy member's
//! share of picks, and `recover_after` consecutive successes make it healthy again; one failure
//! ejects it again, for longer. Flipping only after several results in a row (as pingora does)
//! keeps one slow request from ejecting a member and one lucky request from restoring it.
//!
//! The state lives in each isolate, in the compiled gateway: an isolate learns from its own
//! traffic at no cost per request. A Durable Object would let every isolate learn at once, but
//! every request would pay a round trip to it; the active probes of a later issue fill that gap.

use std::cell::RefCell;

#[derive(Clone, Copy, Debug)]
pub struct HealthPolicy {
    pub eject_after: u32,
    pub recover_after: u32,
    pub base_ms: u64,
    pub max_ms: u64,
}

impl Default for HealthPolicy {
    fn default() -> Self {
        HealthPolicy {
            eject_after: 3,
            recover_after: 2,
            base_ms: 5_000,
            max_ms: 60_000,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Healthy,
    /// Out of rotation until the time given.
    Ejected {
        until_ms: u64,
    },
    /// Back in rotation with a smaller share, until enough successes in a row.
    Probation,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberHealth {
    state: State,
    /// Active probes (the board) said down, until this time (0: not down). Checked when
    /// used, so a board that stops being read cannot keep a member out for good.
    pub probed_down_until_ms: u64,
    /// Consecutive failures (healthy) or successes (probation).
    streak: u32,
    /// Ejections in a row without a full recovery: the back-off doubles with each.
    ejections: u32,
    /// Counts every ejection: an attempt that started before the latest one reports too late
    /// to count (see `Pool::busy`).
    pub epoch: u32,
}

impl Default for MemberHealth {
    fn default() -> Self {
        MemberHealth {
            state: State::Healthy,
            probed_down_until_ms: 0,
            streak: 0,
            ejections: 0,
            epoch: 0,
        }
    }
}

impl MemberHealth {
    /// The member's state at `now_ms` (an ejection that has run out is probation).
    pub fn state(&self, now_ms: u64) -> State {
        match self.state {
            State::Ejected { until_ms } if now_ms >= until_ms => State::Probation,
            s => s,
        }
    }

    /// Its share of picks: healthy 4, probation 1, ejected or probed down 0.
    pub fn weight(&self, now_ms: u64) -> u32 {
        if now_ms < self.probed_down_until_ms {
            return 0;
        }
        match self.state(now_ms) {
            State::Healthy => 4,
            State::Probation => 1,
            State::Ejected { .. } => 0,
        }
    }

    pub fn record(&mut self, ok: bool, now_ms: u64, p: &HealthPolicy) {
        let state = self.state(now_ms);
        if self.state != state {
            // The back-off ran out: probation starts with a clean streak.
            self.state = state;
            self.streak = 0;
        }
        match (self.state, ok) {
            (State::Healthy, true) => self.streak = 0,
            (State::Healthy, false) => {
                self.streak += 1;
                if self.streak >= p.eject_after {
                    self.eject(now_ms, p);
                }
            }
            (State::Probation, true) => {
                self.streak += 1;
                if self.streak >= p.recover_after {
                    *self = MemberHealth {
                        probed_down_until_ms: self.probed_down_until_ms,
                        epoch: self.epoch,
                        ..MemberHealth::default()
                    };
                }
            }
            (State::Probation, false) => self.eject(now_ms, p),
            // A request sent before the ejection finished: it changes nothing.
            (State::Ejected { .. }, _) => {}
        }
    }

    fn eject(&mut self, now_ms: u64, p: &HealthPolicy) {
        let backoff = p
            .base_ms
            .saturating_mul(1 << self.ejections.min(16))
            .min(p.max_ms);
        self.ejections += 1;
        self.epoch = self.epoch.wrapping_add(1);
        self.streak = 0;
        self.state = State::Ejected {
            until_ms: now_ms.saturating_add(backoff),
        };
    }
}

/// How many retries an isolate may make: each first attempt adds a fifth of a retry, up to 20
/// banked, so when a whole pool fails retries stay near 20% of the traffic instead of doubling
/// it (linkerd's and Envoy's retry budgets follow the same idea).
#[derive(Debug)]
pub struct RetryBudget {
    tokens: RefCell<f64>,
}

impl Default for RetryBudget {
    fn default() -> Self {
        RetryBudget {
            tokens: RefCell::new(10.0),
        }
    }
}

impl RetryBudget {
    const RATIO: f64 = 0.2;
    const MAX: f64 = 20.0;

    pub fn deposit(&self) {
        let mut t = self.tokens.borrow_mut();
        *t = (*t + Self::RATIO).min(Self::MAX);
    }

    /// Takes one retry from the budget; `false` when it is spent.
    pub fn withdraw(&self) -> bool {
        let mut t = self.tokens.borrow_mut();
        if *t >= 1.0 {
            *t -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ejects_after_consecutive_failures_and_recovers_gradually() {
        let p = HealthPolicy::default();
        let mut m = MemberHealth::default();
        m.record(false, 0, &p);
        m.record(false, 1, &p);
        m.record(true, 2, &p); // a success resets the streak
        m.record(false, 3, &p);
        m.record(false, 4, &p);
        assert_eq!(m.state(4), State::Healthy);
        m.record(false, 5, &p);
        assert_eq!(
            m.state(6),
            State::Ejected {
                until_ms: 5 + 5_000
            }
        );
        assert_eq!(m.weight(6), 0);
        // The back-off runs out: probation, a quarter of the share.
        assert_eq!(m.state(5_005), State::Probation);
        assert_eq!(m.weight(5_005), 1);
        // One failure on probation: ejected again, for twice as long.
        m.record(false, 5_010, &p);
        assert_eq!(m.state(5_011), State::Ejected { until_ms: 15_010 });
        // Two successes on probation: healthy again, and the back-off starts over.
        m.record(true, 15_010, &p);
        assert_eq!(m.state(15_011), State::Probation);
        m.record(true, 15_012, &p);
        assert_eq!(m.state(15_013), State::Healthy);
        for t in 0..3 {
            m.record(false, 20_000 + t, &p);
        }
        assert_eq!(m.state(20_003), State::Ejected { until_ms: 25_002 });
    }

    #[test]
    fn backoff_is_capped() {
        let p = HealthPolicy::default();
        let mut m = MemberHealth::default();
        let mut now = 0;
        for _ in 0..3 {
            m.record(false, now, &p);
        }
        for _ in 0..20 {
            let State::Ejected { until_ms } = m.state(now) else {
                panic!("ejected")
            };
            assert!(until_ms - now <= p.max_ms);
            now = until_ms;
            m.record(false, now, &p);
        }
    }

    #[test]
    fn the_retry_budget_is_a_fifth_of_first_attempts() {
        let b = RetryBudget::default();
        let mut retries = 0;
        for _ in 0..1000 {
            b.deposit();
            if b.withdraw() {
                retries += 1;
            }
        }
        // 10 banked at the start, then one per five requests.
        assert!((205..=211).contains(&retries), "{retries}");
    }

    /// Property: over random outcomes, times and members, the choice never returns a member that
    /// is tried, ejected or probed down, always returns one when any is eligible, and a member that
    /// only succeeds after its last failure is healthy again within the longest back-off plus its
    /// probation.
    #[test]
    fn random_histories_keep_the_invariants() {
        use crate::gateway::Want;
        let hp = HealthPolicy::default();
        let mut rng = fastrand::Rng::with_seed(5);
        struct R<'a>(&'a mut fastrand::Rng);
        impl crate::gateway::Random for R<'_> {
            fn below(&mut self, n: usize) -> usize {
                self.0.usize(0..n)
            }
        }
        for _ in 0..200 {
            let n = rng.usize(1..5);
            let mut pool = crate::gateway::Pool::new("https://p.internal");
            for i in 0..n {
                pool.members.push(crate::gateway::Member {
                    name: format!("m{i}"),
                    cluster: None,
                    origin: crate::endpoint_url::Origin::parse("http://127.0.0.1:1").unwrap(),
                    policy: None,
                    weight: rng.u32(1..4),
                    origin_auth: Vec::new(),
                    probe: None,
                });
            }
            let mut now = 0u64;
            for _ in 0..300 {
                now += rng.u64(0..3_000);
                let member = rng.usize(0..n);
                match rng.u8(0..10) {
                    0 => pool.set_probed_down(member, rng.bool().then_some(now + 60_000)),
                    1..=4 => pool.record(member, false, now, &hp),
                    _ => pool.record(member, true, now, &hp),
                }
                let tried: Vec<usize> = (0..n).filter(|_| rng.u8(0..4) == 0).collect();
                let health = pool.health.borrow().clone();
                let eligible: Vec<usize> = (0..n)
                    .filter(|i| !tried.contains(i) && health[*i].weight(now) > 0)
                    .collect();
                let chosen = pool.choose(&mut R(&mut rng), now, &tried, &Want::default());
                match chosen {
                    Some(i) => assert!(eligible.contains(&i), "chose {i}, eligible {eligible:?}"),
                    None => assert!(eligible.is_empty(), "nothing chosen from {eligible:?}"),
                }
            }
            // Quiet recovery: no probe says down, and every member succeeds once its back-off ends.
            for i in 0..n {
                pool.set_probed_down(i, None);
            }
            now += hp.max_ms;
            for _ in 0..hp.recover_after {
                for i in 0..n {
                    pool.record(i, true, now, &hp);
                }
            }
            for h in pool.health.borrow().iter() {
                assert_eq!(h.state(now), State::Healthy);
            }
        }
    }
}
