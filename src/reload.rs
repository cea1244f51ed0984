//! When an isolate looks for a new policy version, and what it serves meanwhile.
//!
//! Pure state with time passed in (the shell owns KV and the clock). Rules: check KV at most once
//! per interval; compile a version once; a version that fails to load is remembered and not
//! retried until `current` points elsewhere; the last good gateway keeps serving; with none, the
//! answer is "no policy" (fail closed).

use crate::error::GatewayError;
use crate::gateway::Gateway;
use std::rc::Rc;

#[derive(Default)]
pub struct PolicyCache {
    live: Option<Rc<Gateway>>,
    last_check_ms: Option<f64>,
    rejected: Option<String>,
    problem: Option<String>,
}

/// What the shell should do about the `current` pointer it just read.
#[derive(Debug, PartialEq, Eq)]
pub enum Pointer {
    /// Already serving (or already rejected) this version: nothing to do.
    Unchanged,
    /// Fetch and compile this version.
    Load(String),
}

impl PolicyCache {
    /// Whether the interval since the last look at KV has passed.
    pub fn due(&self, now_ms: f64, interval_ms: f64) -> bool {
        self.last_check_ms
            .is_none_or(|t| now_ms - t >= interval_ms || now_ms < t)
    }

    pub fn checked(&mut self, now_ms: f64) {
        self.last_check_ms = Some(now_ms);
    }

    /// Decides on the pointer's value (`None`: the key is missing).
    pub fn pointer(&mut self, current: Option<&str>) -> Pointer {
        match current.map(str::trim) {
            None | Some("") => {
                self.problem = Some("KV key `current` is missing: no policy was uploaded".into());
                Pointer::Unchanged
            }
            Some(v) if self.live.as_ref().is_some_and(|g| g.version == v) => Pointer::Unchanged,
            Some(v) if self.rejected.as_deref() == Some(v) => Pointer::Unchanged,
            Some(v) => Pointer::Load(v.to_string()),
        }
    }

    pub fn install(&mut self, gateway: Gateway) {
        self.live = Some(Rc::new(gateway));
        self.rejected = None;
        self.problem = None;
    }

    /// Records a version that failed to load; the last good gateway (if any) keeps serving.
    pub fn reject(&mut self, version: &str, reason: String) {
        self.rejected = Some(version.to_string());
        self.problem = Some(reason);
    }

    /// Records a problem that may go away by itself (KV unreachable, a bundle not yet visible):
    /// the version is tried again at the next check.
    pub fn transient(&mut self, reason: String) {
        self.problem = Some(reason);
    }

    /// Whether a gateway is being served.
    pub fn is_live(&self) -> bool {
        self.live.is_some()
    }

    /// The last problem seen (for logs and the fail-closed answer).
    pub fn problem(&self) -> Option<&str> {
        self.problem.as_deref()
    }

    pub fn gateway(&self) -> Result<Rc<Gateway>, GatewayError> {
        self.live.clone().ok_or_else(|| GatewayError::NoPolicy {
            reason: self
                .problem
                .clone()
                .unwrap_or_else(|| "no policy loaded yet".into()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gateway(version: &str) -> Gateway {
        Gateway {
            version: version.into(),
            public: Vec::new(),
            pools: Default::default(),
            secret_refs: Default::default(),
            secrets: Default::default(),
            routing: Default::default(),
            ip_intel: Default::default(),
        }
    }

    #[test]
    fn checks_at_most_once_per_interval() {
        let mut c = PolicyCache::default();
        assert!(c.due(0.0, 60_000.0), "the first request looks");
        c.checked(1_000.0);
        assert!(!c.due(30_000.0, 60_000.0));
        assert!(c.due(61_000.0, 60_000.0));
        assert!(
            c.due(500.0, 60_000.0),
            "a clock that went backwards looks again"
        );
    }

    #[test]
    fn fails_closed_until_a_version_loads() {
        let mut c = PolicyCache::default();
        assert_eq!(c.pointer(None), Pointer::Unchanged);
        let err = c.gateway().unwrap_err();
        assert_eq!(err.status(), 503);
        assert!(err.to_string().contains("`current` is missing"), "{err}");
        assert_eq!(c.pointer(Some(" v1 \n")), Pointer::Load("v1".into()));
        c.install(gateway("v1"));
        assert_eq!(c.gateway().unwrap().version, "v1");
        assert_eq!(
            c.pointer(Some("v1")),
            Pointer::Unchanged,
            "a version compiles once"
        );
    }

    #[test]
    fn a_bad_version_keeps_the_last_good_and_is_not_retried() {
        let mut c = PolicyCache::default();
        c.install(gateway("v1"));
        assert_eq!(c.pointer(Some("v2")), Pointer::Load("v2".into()));
        c.reject("v2", "corrupt bundle".into());
        assert_eq!(c.gateway().unwrap().version, "v1");
        assert_eq!(c.problem(), Some("corrupt bundle"));
        assert_eq!(
            c.pointer(Some("v2")),
            Pointer::Unchanged,
            "rejected once, not recompiled"
        );
        assert_eq!(c.pointer(Some("v3")), Pointer::Load("v3".into()));
        c.transient("KV unreachable".into());
        assert_eq!(
            c.pointer(Some("v3")),
            Pointer::Load("v3".into()),
            "a transient problem retries"
        );
        assert_eq!(c.pointer(None), Pointer::Unchanged);
        assert_eq!(
            c.gateway().unwrap().version,
            "v1",
            "a missing pointer keeps serving"
        );
    }
}
