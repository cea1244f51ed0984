//! The rate limiter's arithmetic: ngrok's `sliding_window`, exact, with time passed in.
//!
//! A request at `now` is admitted when fewer than `capacity` admissions lie in the window
//! `(now - rate, now]`. Then no window of length `rate` ever holds more than `capacity`
//! admissions, whatever the interleaving: the state lives in one Durable Object per bucket, which
//! applies requests one at a time.
//!
//! Two representations:
//! - **Log** (capacity up to [`EXACT_MAX`]): the admission times themselves. Exact both ways:
//!   never more than `capacity` in a window, never a refusal while the window has room.
//! - **Buckets** (larger capacities): admissions counted in [`SUB_WINDOWS`] sub-windows of
//!   `rate / SUB_WINDOWS`; a sub-window that overlaps the window at all counts whole. Bound:
//!   **never over-admits**; it may refuse early by at most the admissions of the one sub-window
//!   that is partly outside the window (at most `capacity` over `rate / SUB_WINDOWS` of time).
//!   Memory is constant.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};

/// The largest capacity kept as an exact log (8 bytes per admission).
pub const EXACT_MAX: u64 = 1000;
/// Sub-windows per window in the bounded representation.
pub const SUB_WINDOWS: u64 = 60;

/// One limit: at most `capacity` requests in any window of `rate_ms`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limit {
    pub capacity: u64,
    pub rate_ms: u64,
}

/// One limit as a bucket applies it: the request the Worker sends a bucket's Durable Object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimitCheck {
    /// Stable id of the limit inside its bucket (where the action is written).
    pub id: String,
    #[serde(flatten)]
    pub limit: Limit,
    /// `false`: count and report, never refuse (ngrok's dry run).
    pub enforce: bool,
}

/// Every limit of one bucket: the state of one Durable Object.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bucket {
    pub windows: BTreeMap<String, Window>,
}

impl Bucket {
    /// Applies `checks` in order at `now`, as one atomic step. After an enforced refusal the
    /// request ends (ngrok's chain stops), so the limits after it are neither asked nor charged.
    pub fn apply(&mut self, checks: &[LimitCheck], now: u64) -> Vec<Decision> {
        let mut out = Vec::with_capacity(checks.len());
        for check in checks {
            let window = self
                .windows
                .entry(check.id.clone())
                .or_insert_with(|| Window::new(check.limit));
            if matches!(window, Window::Log(_)) != (check.limit.capacity <= EXACT_MAX) {
                // The capacity crossed EXACT_MAX in a policy update: start the new form afresh.
                *window = Window::new(check.limit);
            }
            let decision = window.decide(check.limit, now, true);
            out.push(decision);
            if !decision.allowed && check.enforce {
                break;
            }
        }
        out
    }
}

/// What the limiter decided for one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub allowed: bool,
    /// Admissions still possible in the current window after this decision.
    pub remaining: u64,
    /// When refused: whole seconds until a request would be admitted (never early). 0 if allowed.
    pub retry_after_s: u64,
    /// Whole seconds until the window has fully slid past the oldest admission it holds.
    pub reset_s: u64,
}

/// The state of one limit of one bucket; what the Durable Object stores.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Window {
    /// Admission times (ms), oldest first.
    Log(VecDeque<u64>),
    /// `(sub-window index, admissions)`, oldest first; index = time / width.
    Buckets(VecDeque<(u64, u64)>),
}

fn ceil_s(ms: u64) -> u64 {
    ms.div_ceil(1000)
}

impl Window {
    pub fn new(limit: Limit) -> Window {
        if limit.capacity <= EXACT_MAX {
            Window::Log(VecDeque::new())
        } else {
            Window::Buckets(VecDeque::new())
        }
    }

    fn width(limit: Limit) -> u64 {
        limit.rate_ms.div_ceil(SUB_WINDOWS).max(1)
    }

    /// Decides on a request at `now` (ms) and records it when admitted. `consume: false` asks
    /// without recording (a dry run).
    pub fn decide(&mut self, limit: Limit, now: u64, consume: bool) -> Decision {
        let rate = limit.rate_ms.max(1);
        // The window is (now - rate, now]: an admission at `t` counts while t > now - rate.
        let horizon = now.saturating_sub(rate);
        match self {
            Window::Log(log) => {
                // A clock that went backwards must not let old entries count twice or vanish:
                // entries are only ever compared with the horizon.
                while log.front().is_some_and(|t| *t <= horizon && now >= rate) {
                    log.pop_front();
                }
                let used = log.len() as u64;
                if used < limit.capacity {
                    if consume {
                        log.push_back(now.max(log.back().copied().unwrap_or(0)));
                    }
                    let used = used + u64::from(consume);
                    let reset = log.front().map_or(0, |t| t + rate - now.min(t + rate));
                    return Decision {
                        allowed: true,
                        remaining: limit.capacity - used,
                        retry_after_s: 0,
                        reset_s: ceil_s(reset),
                    };
                }
                // Full: admission is possible again once the oldest of the last `capacity`
                // admissions leaves the window.
                let pivot = log[(used - limit.capacity) as usize];
                let wait = (pivot + rate).saturating_sub(now);
                Decision {
                    allowed: false,
                    remaining: 0,
                    retry_after_s: ceil_s(wait).max(1),
                    reset_s: ceil_s(log.front().map_or(0, |t| (t + rate).saturating_sub(now))),
                }
            }
            Window::Buckets(buckets) => {
                let width = Self::width(limit);
                // Sub-windows overlapping (horizon, now] count whole: conservative, never over.
                let first = if now >= rate {
                    (horizon + 1) / width
                } else {
                    0
                };
                while buckets.front().is_some_and(|(i, _)| *i < first) {
                    buckets.pop_front();
                }
                let used: u64 = buckets.iter().map(|(_, n)| n).sum();
                let current = now / width;
                if used < limit.capacity {
                    if consume {
                        match buckets.back_mut() {
                            Some((i, n)) if *i >= current => *n += 1,
                            _ => buckets.push_back((current, 1)),
                        }
                    }
                    let oldest = buckets.front().map_or(current, |(i, _)| *i);
                    return Decision {
                        allowed: true,
                        remaining: limit.capacity - used - u64::from(consume),
                        retry_after_s: 0,
                        reset_s: ceil_s(((oldest + 1) * width + rate - 1).saturating_sub(now)),
                    };
                }
                // Drop sub-windows oldest first until the count falls below capacity; sub-window
                // `i` stops overlapping once (t - rate + 1) / width > i, i.e. t >= (i+1)*width + rate - 1.
                let mut remaining = used;
                let mut until = now;
                for (i, n) in buckets.iter() {
                    remaining -= n;
                    until = (i + 1) * width + rate - 1;
                    if remaining < limit.capacity {
                        break;
                    }
                }
                let oldest = buckets.front().map_or(current, |(i, _)| *i);
                Decision {
                    allowed: false,
                    remaining: 0,
                    retry_after_s: ceil_s(until.saturating_sub(now)).max(1),
                    reset_s: ceil_s(((oldest + 1) * width + rate - 1).saturating_sub(now)),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
