//! Properties of the window arithmetic over many random arrival sequences (a deterministic
//! generator, so a failure names its seed): no window ever exceeds capacity; the exact log never
//! refuses while there is room; the bounded form refuses early by at most one sub-window;
//! Retry-After is never early.

use super::*;

/// Admissions in (t - rate, t].
fn in_window(admitted: &[u64], t: u64, rate: u64) -> u64 {
    admitted
        .iter()
        .filter(|a| **a <= t && **a + rate > t)
        .count() as u64
}

fn run(seed: u64, limit: Limit, steps: usize) {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut w = Window::new(limit);
    let mut now = rng.u64(0..10_000);
    let mut admitted = Vec::new();
    for _ in 0..steps {
        // Bursts (several requests at one instant), small steps, and long pauses.
        now += match rng.u64(0..10) {
            0..=3 => 0,
            4..=7 => rng.u64(0..limit.rate_ms / 10 + 2),
            8 => rng.u64(0..limit.rate_ms + 1),
            _ => rng.u64(0..3 * limit.rate_ms + 1),
        };
        let d = w.decide(limit, now, true);
        if d.allowed {
            admitted.push(now);
            let n = in_window(&admitted, now, limit.rate_ms);
            assert!(
                n <= limit.capacity,
                "seed {seed}: {n} > {} in the window ending {now}",
                limit.capacity
            );
            assert_eq!(d.retry_after_s, 0);
        } else {
            let n = in_window(&admitted, now, limit.rate_ms);
            match w {
                Window::Log(_) => assert_eq!(
                    n, limit.capacity,
                    "seed {seed}: refused at {now} with room ({n})"
                ),
                Window::Buckets(_) => {
                    let width = limit.rate_ms.div_ceil(SUB_WINDOWS);
                    let wider = in_window(&admitted, now, limit.rate_ms + width);
                    assert!(
                        wider >= limit.capacity,
                        "seed {seed}: refused at {now} more than one sub-window early"
                    );
                }
            }
            // Never early: alone, a request after Retry-After seconds is admitted.
            let mut probe = w.clone();
            let later = now + d.retry_after_s * 1000;
            assert!(
                probe.decide(limit, later, false).allowed,
                "seed {seed}: Retry-After {}s at {now} is early",
                d.retry_after_s
            );
            assert!(d.retry_after_s >= 1);
        }
    }
}

#[test]
fn exact_log_properties() {
    for seed in 1..400u64 {
        let mut rng = fastrand::Rng::with_seed(seed * 7919);
        let limit = Limit {
            capacity: 1 + rng.u64(0..20),
            rate_ms: 1 + rng.u64(0..5000),
        };
        run(seed, limit, 400);
    }
}

#[test]
fn bounded_buckets_properties() {
    for seed in 1..60u64 {
        let mut rng = fastrand::Rng::with_seed(seed * 104_729);
        let limit = Limit {
            capacity: EXACT_MAX + 1 + rng.u64(0..200),
            rate_ms: 60 + rng.u64(0..3000),
        };
        run(seed, limit, 4000);
    }
}

#[test]
fn ngrok_seed_limit_ten_per_second() {
    let limit = Limit {
        capacity: 10,
        rate_ms: 1000,
    };
    let mut w = Window::new(limit);
    for i in 0..10 {
        let d = w.decide(limit, 5_000, true);
        assert!(d.allowed);
        assert_eq!(d.remaining, 9 - i);
    }
    let d = w.decide(limit, 5_400, true);
    assert_eq!(
        (d.allowed, d.retry_after_s),
        (false, 1),
        "the burst at 5.000 s leaves at 6.000 s"
    );
    assert!(!w.decide(limit, 5_999, true).allowed);
    assert!(w.decide(limit, 6_000, true).allowed);
}

#[test]
fn dry_run_does_not_consume() {
    let limit = Limit {
        capacity: 1,
        rate_ms: 60_000,
    };
    let mut w = Window::new(limit);
    assert!(w.decide(limit, 0, false).allowed);
    assert!(w.decide(limit, 0, true).allowed);
    let d = w.decide(limit, 30_000, true);
    assert_eq!((d.allowed, d.retry_after_s), (false, 30));
}

#[test]
fn state_round_trips_through_storage() {
    let limit = Limit {
        capacity: 3,
        rate_ms: 10_000,
    };
    let mut w = Window::new(limit);
    w.decide(limit, 1, true);
    w.decide(limit, 2, true);
    let stored = serde_json::to_string(&w).unwrap();
    let mut back: Window = serde_json::from_str(&stored).unwrap();
    assert_eq!(back, w);
    assert!(back.decide(limit, 3, true).allowed);
    assert!(!back.decide(limit, 4, true).allowed);
}
