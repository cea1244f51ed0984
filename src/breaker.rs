//! A circuit breaker's arithmetic: a rolling window of outcomes and the closed / open /
//! half-open states, with time passed in. The `circuit-breaker` action
//! (`actions/circuit_breaker.rs`) compiles the settings and asks [`Circuit::admit`]; the
//! gateway reports each admitted request's final status through its [`Admission`].
//!
//! State lives in the compiled action, so per isolate and per policy version, like ngrok's
//! per-server state.

use std::cell::RefCell;
use std::rc::Rc;

/// The thresholds, as configured.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Settings {
    pub error_threshold: f64,
    pub volume_threshold: u64,
    pub window_ms: u64,
    pub tripped_ms: u64,
    pub num_buckets: u32,
    pub enforce: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            error_threshold: 0.5,
            volume_threshold: 10,
            window_ms: 10_000,
            tripped_ms: 10_000,
            num_buckets: 10,
            enforce: true,
        }
    }
}

/// One breaker: its settings and its state in this isolate.
#[derive(Debug)]
pub struct Circuit {
    settings: Settings,
    state: RefCell<Breaker>,
}

/// A request a breaker let through; the gateway reports its outcome ([`Admission::record`]).
#[derive(Debug, Clone)]
pub struct Admission {
    circuit: Rc<Circuit>,
    /// The one request let through to test a tripped breaker (half-open).
    probe: bool,
}

impl Admission {
    /// Reports the final status of the admitted request: 5xx is an error.
    pub fn record(&self, status: u16, now_ms: u64) {
        self.circuit.state.borrow_mut().record(
            &self.circuit.settings,
            status >= 500,
            self.probe,
            now_ms,
        );
    }

    /// Whether two admissions belong to the same breaker (a request is counted once per breaker).
    pub fn same_breaker(&self, other: &Admission) -> bool {
        Rc::ptr_eq(&self.circuit, &other.circuit)
    }
}

/// The rolling window and the breaker's position.
#[derive(Debug, Clone, PartialEq)]
pub struct Breaker {
    /// `num_buckets` slots; a slot counts the outcomes of one bucket period (its `index`).
    buckets: Vec<Bucket>,
    pub state: State,
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Bucket {
    /// `now_ms / bucket width` of the period this slot counts; stale slots are ignored.
    index: u64,
    ok: u64,
    errors: u64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum State {
    /// Requests pass; outcomes are counted.
    Closed,
    /// Tripped: requests are refused until `until_ms`.
    Open { until_ms: u64 },
    /// One probe was let through at `since_ms`; others are refused until its outcome is known
    /// (or until `tripped_duration` passes without one, then another probe goes).
    HalfOpen { since_ms: u64 },
}

/// What a breaker says of a new request.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Verdict {
    Pass { probe: bool },
    Refuse { retry_after_ms: u64 },
}

impl Breaker {
    pub fn new(settings: &Settings) -> Breaker {
        Breaker {
            buckets: vec![Bucket::default(); settings.num_buckets as usize],
            state: State::Closed,
        }
    }

    fn width(settings: &Settings) -> u64 {
        settings
            .window_ms
            .div_ceil(u64::from(settings.num_buckets))
            .max(1)
    }

    /// `(requests, errors)` counted in the window ending now.
    pub fn totals(&self, settings: &Settings, now_ms: u64) -> (u64, u64) {
        let current = now_ms / Self::width(settings);
        let n = u64::from(settings.num_buckets);
        self.buckets
            .iter()
            .filter(|b| b.index <= current && current - b.index < n && b.ok + b.errors > 0)
            .fold((0, 0), |(t, e), b| (t + b.ok + b.errors, e + b.errors))
    }

    fn admit(&mut self, settings: &Settings, now_ms: u64) -> Verdict {
        if !settings.enforce {
            return Verdict::Pass { probe: false };
        }
        match self.state {
            State::Closed => Verdict::Pass { probe: false },
            State::Open { until_ms } if now_ms < until_ms => Verdict::Refuse {
                retry_after_ms: until_ms - now_ms,
            },
            State::HalfOpen { since_ms }
                if now_ms.saturating_sub(since_ms) < settings.tripped_ms =>
            {
                Verdict::Refuse {
                    retry_after_ms: settings.tripped_ms - now_ms.saturating_sub(since_ms),
                }
            }
            // Tripped long enough, or the last probe never reported (its request was dropped).
            State::Open { .. } | State::HalfOpen { .. } => {
                self.state = State::HalfOpen { since_ms: now_ms };
                Verdict::Pass { probe: true }
            }
        }
    }

    pub fn record(&mut self, settings: &Settings, error: bool, probe: bool, now_ms: u64) {
        match self.state {
            State::HalfOpen { .. } if probe => {
                self.clear();
                self.state = if error {
                    State::Open {
                        until_ms: now_ms + settings.tripped_ms,
                    }
                } else {
                    State::Closed
                };
            }
            // Requests admitted before the breaker tripped say nothing about it now.
            State::HalfOpen { .. } | State::Open { .. } => {}
            State::Closed => {
                let index = now_ms / Self::width(settings);
                let slot = &mut self.buckets[(index % u64::from(settings.num_buckets)) as usize];
                if slot.index != index {
                    *slot = Bucket {
                        index,
                        ok: 0,
                        errors: 0,
                    };
                }
                if error {
                    slot.errors += 1;
                } else {
                    slot.ok += 1;
                }
                if settings.enforce && Self::over(settings, self.totals(settings, now_ms)) {
                    self.clear();
                    self.state = State::Open {
                        until_ms: now_ms + settings.tripped_ms,
                    };
                }
            }
        }
    }

    /// Whether a window's `(requests, errors)` trips the breaker: at least `volume_threshold`
    /// requests, and an error share that meets `error_threshold` (`>=`, ngrok's "must be met").
    /// Successes count too: with `error_threshold: 0` the breaker trips as soon as the volume is
    /// reached, errors or not, as in ngrok's example (volume 1: the first request passes, the
    /// second gets 503).
    fn over(settings: &Settings, (total, errors): (u64, u64)) -> bool {
        total >= settings.volume_threshold
            && errors as f64 >= settings.error_threshold * total as f64
    }

    fn clear(&mut self) {
        self.buckets.fill(Bucket::default());
    }
}

impl Circuit {
    pub fn new(settings: Settings) -> Circuit {
        Circuit {
            state: RefCell::new(Breaker::new(&settings)),
            settings,
        }
    }

    /// Lets a request through (`Ok`, with what the gateway reports its outcome to) or refuses
    /// it (`Err`: milliseconds until the breaker lets a probe through).
    pub fn admit(circuit: &Rc<Circuit>, now_ms: u64) -> Result<Admission, u64> {
        let verdict = circuit.state.borrow_mut().admit(&circuit.settings, now_ms);
        match verdict {
            Verdict::Pass { probe } => Ok(Admission {
                circuit: Rc::clone(circuit),
                probe,
            }),
            Verdict::Refuse { retry_after_ms } => Err(retry_after_ms),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        Settings {
            error_threshold: 0.5,
            volume_threshold: 4,
            window_ms: 10_000,
            tripped_ms: 5_000,
            num_buckets: 10,
            enforce: true,
        }
    }

    #[test]
    fn trips_on_volume_and_threshold_then_recovers_through_a_probe() {
        let s = settings();
        let mut b = Breaker::new(&s);
        // Three errors: below the volume threshold, no trip.
        for t in 0..3 {
            b.record(&s, true, false, t * 100);
        }
        assert_eq!(b.state, State::Closed);
        // The fourth outcome reaches the volume, 4/4 errors: trips.
        b.record(&s, true, false, 400);
        assert_eq!(b.state, State::Open { until_ms: 5_400 });
        assert_eq!(
            b.admit(&s, 1_000),
            Verdict::Refuse {
                retry_after_ms: 4_400
            }
        );
        // After tripped_duration one probe goes; others wait for it.
        assert_eq!(b.admit(&s, 5_400), Verdict::Pass { probe: true });
        assert!(matches!(b.admit(&s, 5_500), Verdict::Refuse { .. }));
        // A request admitted before the trip ends now: it does not decide.
        b.record(&s, false, false, 5_600);
        assert_eq!(b.state, State::HalfOpen { since_ms: 5_400 });
        b.record(&s, false, true, 5_700);
        assert_eq!(b.state, State::Closed);
        assert_eq!(
            b.totals(&s, 5_700),
            (0, 0),
            "a closed breaker starts afresh"
        );
    }

    #[test]
    fn a_failed_probe_trips_again_and_a_lost_probe_is_replaced() {
        let s = settings();
        let mut b = Breaker::new(&s);
        for t in 0..4 {
            b.record(&s, true, false, t);
        }
        assert_eq!(b.admit(&s, 6_000), Verdict::Pass { probe: true });
        b.record(&s, true, true, 6_100);
        assert_eq!(b.state, State::Open { until_ms: 11_100 });
        assert_eq!(b.admit(&s, 11_100), Verdict::Pass { probe: true });
        // The probe never reports (client went away): after tripped_duration, another probe.
        assert!(matches!(b.admit(&s, 16_099), Verdict::Refuse { .. }));
        assert_eq!(b.admit(&s, 16_100), Verdict::Pass { probe: true });
    }

    #[test]
    fn below_the_error_threshold_or_outside_the_window_it_stays_closed() {
        let s = settings();
        let mut b = Breaker::new(&s);
        // 1 error in 4: 25% < 50%.
        for (t, e) in [(0, false), (1, false), (2, false), (3, true)] {
            b.record(&s, e, false, t);
        }
        assert_eq!(b.state, State::Closed);
        // Errors spread so that no window of 10 s holds 4 outcomes.
        let mut b = Breaker::new(&s);
        for t in 0..10 {
            b.record(&s, true, false, t * 4_000);
        }
        assert_eq!(b.state, State::Closed);
        assert_eq!(b.totals(&s, 36_000), (3, 3));
        // enforce: false never trips.
        let lax = Settings {
            enforce: false,
            ..s
        };
        let mut b = Breaker::new(&lax);
        for t in 0..20 {
            b.record(&lax, true, false, t);
        }
        assert_eq!(b.admit(&lax, 30), Verdict::Pass { probe: false });
    }

    /// ngrok's circuit-breaker page: `error_threshold: 0, volume_threshold: 1,
    /// window_duration: 60s, tripped_duration: 2m` "allows only 1 request every 60 seconds":
    /// attempt 1 gets 200, attempt 2 gets 503. A share of 0 errors meets a threshold of 0.
    #[test]
    fn a_zero_error_threshold_trips_once_the_volume_is_reached_errors_or_not() {
        let s = Settings {
            error_threshold: 0.0,
            volume_threshold: 1,
            window_ms: 60_000,
            tripped_ms: 120_000,
            num_buckets: 10,
            enforce: true,
        };
        let mut b = Breaker::new(&s);
        assert_eq!(b.admit(&s, 0), Verdict::Pass { probe: false });
        b.record(&s, false, false, 10);
        assert_eq!(b.state, State::Open { until_ms: 120_010 });
        assert_eq!(
            b.admit(&s, 20),
            Verdict::Refuse {
                retry_after_ms: 119_990
            }
        );
        // After tripped_duration a probe goes; its success closes the breaker, and the next
        // outcome reaches the volume again.
        assert_eq!(b.admit(&s, 120_010), Verdict::Pass { probe: true });
        b.record(&s, false, true, 120_020);
        assert_eq!(b.state, State::Closed);
        assert_eq!(b.admit(&s, 120_030), Verdict::Pass { probe: false });
        b.record(&s, false, false, 120_040);
        assert!(matches!(b.state, State::Open { .. }));
        // Below the volume, a zero threshold does not trip.
        let s2 = Settings {
            volume_threshold: 3,
            ..s
        };
        let mut b = Breaker::new(&s2);
        b.record(&s2, false, false, 0);
        b.record(&s2, true, false, 1);
        assert_eq!(b.state, State::Closed);
        b.record(&s2, false, false, 2);
        assert!(matches!(b.state, State::Open { .. }));
    }

    /// The threshold is met, not exceeded: 2 errors in 4 trip at 0.5, whichever outcome comes
    /// last; a threshold of 1.0 needs every request to fail.
    #[test]
    fn the_error_share_must_meet_the_threshold() {
        let s = settings();
        let mut b = Breaker::new(&s);
        for (t, e) in [(0, true), (1, true), (2, false)] {
            b.record(&s, e, false, t);
        }
        assert_eq!(b.state, State::Closed);
        b.record(&s, false, false, 3);
        assert_eq!(b.state, State::Open { until_ms: 5_003 });
        let all = Settings {
            error_threshold: 1.0,
            ..s
        };
        let mut b = Breaker::new(&all);
        for (t, e) in [(0, true), (1, true), (2, true), (3, false), (4, true)] {
            b.record(&all, e, false, t);
        }
        assert_eq!(b.state, State::Closed, "4 of 5 is below 1.0");
        let mut b = Breaker::new(&all);
        for t in 0..4 {
            b.record(&all, true, false, t);
        }
        assert!(matches!(b.state, State::Open { .. }));
    }

    /// The bucketed window counts exactly the outcomes of the last `num_buckets` bucket periods
    /// (the current one included), whatever the timing: compared with a plain list of events.
    #[test]
    fn bucket_totals_match_a_naive_count() {
        let mut rng = fastrand::Rng::with_seed(7);
        for _ in 0..300 {
            let s = Settings {
                error_threshold: 1.0,
                volume_threshold: 2_000_000_000, // never trips: only counting is tested
                window_ms: rng.u64(1_000..=120_000),
                tripped_ms: 1_000,
                num_buckets: rng.u32(1..=20),
                enforce: true,
            };
            let width = s.window_ms.div_ceil(u64::from(s.num_buckets));
            let mut b = Breaker::new(&s);
            let mut events: Vec<(u64, bool)> = Vec::new();
            let mut now = rng.u64(0..1_000_000);
            for _ in 0..rng.usize(1..200) {
                now += rng.u64(0..=width * 2);
                let error = rng.bool();
                b.record(&s, error, false, now);
                events.push((now, error));
                let current = now / width;
                let in_window: Vec<_> = events
                    .iter()
                    .filter(|(t, _)| current - t / width < u64::from(s.num_buckets))
                    .collect();
                let naive = (
                    in_window.len() as u64,
                    in_window.iter().filter(|(_, e)| *e).count() as u64,
                );
                assert_eq!(b.totals(&s, now), naive, "{s:?} at {now}");
            }
        }
    }
}
