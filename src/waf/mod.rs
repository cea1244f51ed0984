//! A Web Application Firewall in the OWASP Core Rule Set's model, with rules written by this
//! project (see `docs/waf.md`).
//!
//! The concepts are CRS's so that an ngrok or ModSecurity user's configuration means the same:
//! rules have CRS ids (so `exclude_rule_ids` excludes the same category), a paranoia level and a
//! severity; a match adds the severity's score (critical 5, error 4, warning 3, notice 2) to the
//! anomaly score; the request is denied when the score reaches the inbound threshold (5), a
//! response when it reaches the outbound threshold (4).
//!
//! Speed: the rule table is compiled once per isolate ([`CrsRules::compile`] is cheap after the
//! first call); every regex sits behind literals that an Aho-Corasick automaton finds in one pass
//! per input, so most regexes never run, and each regex is compiled only the first time one of
//! its literals is seen. A per-request [`Budget`] bounds the work: rules run highest value first,
//! and when the budget is spent the rest are skipped, the verdict says `partial` and the
//! configured [`OnBudget`] choice decides.
//!
//! Use:
//! ```
//! use edge_gateway::waf::{Budget, Profile, RequestView, CrsRules};
//! let rules = CrsRules::compile(&Profile::default());
//! let req = RequestView::new("GET", "/search", "q=1%27%20OR%20%271%27%3D%271");
//! let verdict = rules.inspect_request(&req, &mut Budget::unlimited());
//! assert!(verdict.is_deny());
//! ```

mod engine;
mod input;
pub mod libinjection;
pub mod program;
mod rules;
mod sqli;
mod transform;
mod xss;

#[doc(hidden)]
pub use engine::build_fresh;
pub use engine::CrsRules;
pub use input::{textual_response, RequestView, ResponseView};

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
}

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
    pub message: &'static str,
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
