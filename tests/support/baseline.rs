//! A baseline of passing conformance cases, shared by the CEL and CRS runners: a case listed
//! that now fails fails the test; a case passing that is not listed is printed with the command
//! that records it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;

/// How one runner's baseline file reads and is rewritten.
pub struct Baseline<'a> {
    /// The file, relative to the repository.
    pub file: &'a str,
    /// What a case is, in messages ("CEL conformance tests", "CRS regression stages").
    pub cases: &'a str,
    /// The file's header comment lines (without `# `).
    pub header: &'a [&'a str],
    /// The command that rewrites the file, named in messages.
    pub rewrite: &'a str,
    /// Whether this run rewrites the file instead of checking it.
    pub write: bool,
}

impl Baseline<'_> {
    /// Checks `passing` against the file (or rewrites it); `failures` says why a case failed.
    pub fn check(
        &self,
        root: &Path,
        passing: &BTreeSet<String>,
        failures: &BTreeMap<String, String>,
    ) {
        let path = root.join(self.file);
        if self.write {
            let mut text: String = self.header.iter().map(|l| format!("# {l}\n")).collect();
            for id in passing {
                text.push_str(id);
                text.push('\n');
            }
            std::fs::write(&path, text).expect("write the baseline");
            eprintln!(
                "wrote {} passing {} to {}",
                passing.len(),
                self.cases,
                self.file
            );
            return;
        }
        let baseline: BTreeSet<String> = std::fs::read_to_string(&path)
            .unwrap_or_default()
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_string)
            .collect();
        let newly: Vec<_> = passing.difference(&baseline).collect();
        if !newly.is_empty() {
            // Straight to stderr: the harness captures the output of a passing test.
            let mut msg = format!(
                "{} {} pass that {} does not list; record them with {}\n",
                newly.len(),
                self.cases,
                self.file,
                self.rewrite
            );
            for id in newly.iter().take(50) {
                let _ = writeln!(msg, "  {id}");
            }
            let _ = std::io::Write::write_all(&mut std::io::stderr(), msg.as_bytes());
        }
        let regressed: Vec<String> = baseline
            .difference(passing)
            .map(|id| {
                let why = failures
                    .get(id)
                    .map(String::as_str)
                    .unwrap_or("no longer run (skipped or gone)");
                format!("  {id}: {why}")
            })
            .collect();
        assert!(
            regressed.is_empty(),
            "{} {} that passed before now fail:\n{}",
            regressed.len(),
            self.cases,
            regressed.join("\n")
        );
    }
}
