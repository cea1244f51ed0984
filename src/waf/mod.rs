//! A Web Application Firewall that runs the OWASP Core Rule Set's own rule files (see
//! `docs/waf.md`).
//!
//! `policy-check` translates CRS's SecLang files into a [`program::Program`] (natively, in
//! `seclang`), which travels in the KV bundle; the Worker deserializes it into a [`RuleSet`] and
//! runs it with ModSecurity's semantics (anomaly scoring: rules add to TX scores, and CRS's
//! blocking-evaluation rules deny at the thresholds). An action's configuration (paranoia level,
//! thresholds, excluded rules) is a [`Profile`], applied as crs-setup.conf would.
//!
//! Speed: nothing compiles before a request needs it: each regex sits behind literals one of
//! which every match contains, and is compiled the first time they are seen. A per-request
//! [`Budget`] bounds the work; when it runs out the verdict says `partial` and the configured
//! [`OnBudget`] choice decides.

pub mod document;
mod engine;
mod forms;
mod input;
pub mod libinjection;
mod operate;
pub mod program;
#[cfg(not(target_arch = "wasm32"))]
pub mod seclang;
mod transform;

pub use engine::{CrsRules, RuleSet};

/// The vendored Core Rule Set (`crs/`), compiled once: what the checker and native tests run
/// when a bundle carries no rule set of its own.
#[cfg(not(target_arch = "wasm32"))]
pub fn vendored_rule_set() -> &'static std::sync::Arc<RuleSet> {
    static SET: std::sync::OnceLock<std::sync::Arc<RuleSet>> = std::sync::OnceLock::new();
    SET.get_or_init(|| std::sync::Arc::new(RuleSet::new(seclang::vendored().clone())))
}
pub use input::{textual_response, RequestView, ResponseView};

/// Whether the engine's forward DFA for an `@rx` pattern matches each value (`None` where it
/// gave up): for the test that holds it to the `regex` crate on every CRS regex.
#[doc(hidden)]
pub fn rx_dfa_matches(pattern: &str, values: &[Vec<u8>]) -> Option<Vec<Option<bool>>> {
    operate::dfa_matches(pattern, values)
}

/// How much a match weighs, CRS's severities and their anomaly scores.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum CrsSeverity {
    Notice,
    Warning,
    Error,
    Critical,
}

impl CrsSeverity {
    pub fn score(self) -> u32 {
        match self {
            CrsSeverity::Critical => 5,
            CrsSeverity::Error => 4,
            CrsSeverity::Warning => 3,
            CrsSeverity::Notice => 2,
        }
    }

    /// The name ngrok's result variables use.
    pub fn as_str(self) -> &'static str {
        match self {
            CrsSeverity::Critical => "CRITICAL",
            CrsSeverity::Error => "ERROR",
            CrsSeverity::Warning => "WARNING",
            CrsSeverity::Notice => "NOTICE",
        }
    }
}

/// What to do when a request's [`Budget`] runs out before every rule ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum OnBudget {
    /// Fail closed: a partial inspection denies.
    #[default]
    Block,
    /// Decide on the rules that ran.
    Pass,
}

/// The WAF's configuration (the action's fields plus CRS's tunables).
#[derive(Clone, Debug, PartialEq)]
pub struct Profile {
    /// 1..=4; rules above it do not run. ngrok runs 1.
    pub paranoia_level: u8,
    pub inbound_threshold: u32,
    pub outbound_threshold: u32,
    /// CRS ids (900000–999999) of rules that never run.
    pub exclude_rule_ids: Vec<u32>,
    /// Whether bodies are inspected at all (ngrok's `process_body`, default false).
    pub process_body: bool,
    /// Only this many bytes of a body are inspected (ngrok: 4 KB).
    pub body_limit: usize,
    pub on_budget: OnBudget,
    /// TX values set before the rules run, as crs-setup.conf's `SecAction`s would
    /// (`allowed_methods`, `arg_length`, ...); keys without the `tx.` prefix.
    pub settings: Vec<(String, String)>,
    /// ModSecurity's `SecRuleEngine`: `DetectionOnly` runs every rule and reports, never denies.
    pub engine: program::EngineMode,
}

/// The methods an API uses: CRS's default (`GET HEAD POST OPTIONS`) refuses PUT, PATCH and
/// DELETE, which are legitimate on an API.
pub const API_METHODS: &str = "GET HEAD POST OPTIONS PUT PATCH DELETE";

impl Default for Profile {
    fn default() -> Self {
        Profile {
            paranoia_level: 1,
            inbound_threshold: 5,
            outbound_threshold: 4,
            exclude_rule_ids: Vec::new(),
            process_body: false,
            body_limit: 4096,
            on_budget: OnBudget::Block,
            // CRS's own list of request content types stays: it refuses
            // `application/cloudevents+json` on purpose (its advisory 9EA-241022).
            settings: vec![("allowed_methods".into(), API_METHODS.into())],
            engine: program::EngineMode::On,
        }
    }
}

/// A per-request limit on inspection work. Steps are roughly bytes processed (decoded, scanned
/// by the literal automaton, matched by a regex or a detector), so a budget is portable between
/// native and wasm; a clock (injected: `Instant` panics on wasm32) can bound it in milliseconds.
pub struct Budget<'a> {
    pub max_steps: Option<u64>,
    /// Returns milliseconds on any monotonic scale; with `max_ms` bounds the wall/CPU time.
    pub clock: Option<&'a dyn Fn() -> f64>,
    pub max_ms: Option<f64>,
}

impl<'a> Budget<'a> {
    pub fn unlimited() -> Self {
        Budget {
            max_steps: None,
            clock: None,
            max_ms: None,
        }
    }

    pub fn steps(max_steps: u64) -> Self {
        Budget {
            max_steps: Some(max_steps),
            clock: None,
            max_ms: None,
        }
    }

    pub fn clock(clock: &'a dyn Fn() -> f64, max_ms: f64) -> Self {
        Budget {
            max_steps: None,
            clock: Some(clock),
            max_ms: Some(max_ms),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disposition {
    Allow,
    Deny,
}

impl Disposition {
    /// The name ngrok's result variables use.
    pub fn as_str(self) -> &'static str {
        match self {
            Disposition::Allow => "allow",
            Disposition::Deny => "deny",
        }
    }
}

/// One rule that matched, as ngrok's `matched_rules[]` reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MatchedRule {
    pub id: u32,
    pub message: String,
    pub severity: CrsSeverity,
    /// What matched and where, e.g. `Matched Data: union select found within ARGS:q: ...`.
    pub data: String,
}

/// The outcome of one inspection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub decision: Disposition,
    pub anomaly_score: u32,
    pub threshold: u32,
    pub matched_rules: Vec<MatchedRule>,
    /// True when the budget ran out and some enabled rules did not run.
    pub partial: bool,
    /// Work done, in budget steps.
    pub steps: u64,
}

impl Verdict {
    pub fn is_deny(&self) -> bool {
        self.decision == Disposition::Deny
    }

    pub fn matched_ids(&self) -> Vec<u32> {
        self.matched_rules.iter().map(|m| m.id).collect()
    }
}
