//! Compile diagnostics: every problem found, with where it is and ngrok's code when one exists.

use crate::source::{Node, Pos};
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Warning,
    Error,
}

/// One problem in a policy or endpoint file.
#[derive(Clone, Debug, PartialEq)]
pub struct Diagnostic {
    pub severity: Severity,
    /// ngrok's error code (`ERR_NGROK_2201`), when ngrok defines one for this problem.
    pub code: Option<&'static str>,
    /// The file the value came from (set by the caller that knows it).
    pub file: Option<String>,
    pub pos: Option<Pos>,
    /// Path of the value inside its document, e.g. `spec.trafficPolicy.policy.on_http_request[0]`.
    pub path: String,
    pub message: String,
    /// A short "how to fix" (the closest valid name, the phases an action allows, a range).
    pub hint: Option<String>,
    /// Byte range inside the string value at `pos` that the problem is about (a CEL
    /// sub-expression), so the caret can point into the expression.
    pub span: Option<(u32, u32)>,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(file) = &self.file {
            write!(f, "{file}:")?;
        }
        if let Some(pos) = self.pos {
            write!(f, "{}:{}:", pos.line, pos.col)?;
        }
        let level = match self.severity {
            Severity::Warning => "warning",
            Severity::Error => "error",
        };
        write!(f, " {level}")?;
        if let Some(code) = self.code {
            write!(f, " [{code}]")?;
        }
        if !self.path.is_empty() {
            write!(f, " at `{}`", self.path)?;
        }
        write!(f, ": {}", self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, " (hint: {hint})")?;
        }
        Ok(())
    }
}

/// One expression's estimate, kept until the whole policy is summed.
#[derive(Clone, Debug)]
pub struct ExprCost {
    pub path: String,
    pub ns: f64,
    pub what: Option<String>,
}

/// Collects diagnostics while compiling; compiling goes on after an error so all are reported.
#[derive(Debug, Default)]
pub struct Diagnostics {
    pub items: Vec<Diagnostic>,
    /// Every expression's cost estimate, summed per policy (validate.rs).
    pub costs: Vec<ExprCost>,
    /// Warnings that hold only for a bundle without an IP-intelligence list: the reads of the
    /// variables one fills (the manifest knows the bundle; manifest.rs).
    pub ip_intel_reads: Vec<Diagnostic>,
}

impl Diagnostics {
    pub fn error(&mut self, code: Option<&'static str>, at: At<'_>, message: impl Into<String>) {
        self.push(Severity::Error, code, at, message.into());
    }

    pub fn warning(&mut self, code: Option<&'static str>, at: At<'_>, message: impl Into<String>) {
        self.push(Severity::Warning, code, at, message.into());
    }

    /// Adds a hint to the diagnostics with this code at this path that have none.
    pub fn add_hint(&mut self, path: &str, code: &str, hint: &str) {
        for d in &mut self.items {
            if d.path == path && d.code == Some(code) && d.hint.is_none() {
                d.hint = Some(hint.to_string());
            }
        }
    }

    /// An error with a "how to fix" hint.
    pub fn error_hint(
        &mut self,
        code: Option<&'static str>,
        at: At<'_>,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) {
        if self.push(Severity::Error, code, at, message.into()) {
            self.set_hint(hint.into());
        }
    }

    /// A warning with a "how to fix" hint.
    pub fn warning_hint(
        &mut self,
        code: Option<&'static str>,
        at: At<'_>,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) {
        if self.push(Severity::Warning, code, at, message.into()) {
            self.set_hint(hint.into());
        }
    }

    /// Adds a hint to the diagnostic pushed last.
    fn set_hint(&mut self, hint: String) {
        if let Some(d) = self.items.last_mut() {
            if d.hint.is_none() && !hint.is_empty() {
                d.hint = Some(hint);
            }
        }
    }

    /// Pushes a diagnostic, unless the same problem is there already (same severity, code, place,
    /// and the same message or a hinted one): the generic checks (config keys, phases) and an
    /// action's own compile may both see a problem; it is reported once, with the hinted message.
    /// Returns whether it was added.
    pub fn push_full(&mut self, d: Diagnostic) -> bool {
        let dup = self.items.iter().any(|e| {
            e.severity == d.severity
                && e.code == d.code
                && e.path == d.path
                && e.pos == d.pos
                && e.span == d.span
                && (e.hint.is_some() || e.message == d.message)
        });
        if !dup {
            self.items.push(d);
        }
        !dup
    }

    fn push(
        &mut self,
        severity: Severity,
        code: Option<&'static str>,
        at: At<'_>,
        message: String,
    ) -> bool {
        self.push_full(Diagnostic {
            severity,
            code,
            file: None,
            pos: at.node.and_then(|n| n.pos),
            path: at.path.to_string(),
            message,
            hint: None,
            span: None,
        })
    }

    pub fn has_errors(&self) -> bool {
        self.items.iter().any(|d| d.severity == Severity::Error)
    }

    /// Labels every diagnostic not yet labelled with the file it belongs to.
    pub fn set_file(&mut self, file: &str) {
        for d in self.items.iter_mut().chain(&mut self.ip_intel_reads) {
            d.file.get_or_insert_with(|| file.to_string());
        }
    }
}

/// The place a diagnostic points at: a path and, when known, the node (for its position).
#[derive(Clone, Copy)]
pub struct At<'a> {
    pub path: &'a str,
    pub node: Option<&'a Node>,
}

impl<'a> At<'a> {
    pub fn new(path: &'a str, node: &'a Node) -> Self {
        At {
            path,
            node: Some(node),
        }
    }
}

/// Joins a path and a map key (`a.b`) or list index (`a[0]`).
pub fn child(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

pub fn index(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}
/// Levenshtein distance (names are short; two rows suffice).
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// The candidate closest to `word`, when it is close enough to be a likely typo (at most a
/// third of the word's length, at least 1, edits; or `word` is a prefix or suffix of it).
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).max(1);
    let lower = word.to_ascii_lowercase();
    candidates
        .into_iter()
        .filter(|c| !c.is_empty())
        .map(|c| {
            let d = edit_distance(&lower, &c.to_ascii_lowercase());
            let affix = c.starts_with(word) || c.ends_with(word) || word.starts_with(c);
            (
                if affix && word.len() >= 3 {
                    d.min(limit)
                } else {
                    d
                },
                c,
            )
        })
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}
