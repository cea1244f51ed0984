//! The SecLang compiler: OWASP CRS v4's `.conf` text to a [`Program`] (native only; the Worker
//! carries only the program).
//!
//! It reads what CRS v4's request and response rule files use: `SecRule`, `SecAction`,
//! `SecMarker`, `SecComponentSignature` and `SecRuleUpdateTargetById`, with chains, and settles
//! what can be settled before upload (see [`program`](crate::waf::program)). Anything it does
//! not know (a directive, variable, operator, action or transformation) is an error with its
//! file and line, never dropped; actions with no effect on a verdict here (`ver`, `auditlog`,
//! `initcol` ...) are known and dropped.
//!
//! ```
//! use edge_gateway::waf::seclang::{compile, Source};
//! let text = "SecRule ARGS \"@rx (?i)union\\s+select\" \"id:1,phase:2,deny,msg:'sqli'\"";
//! let program = compile(&[Source { file: "x.conf", text }], &|_| None).expect("compiles");
//! assert_eq!(program.rules[0].id, 1);
//! ```

mod actions;
mod compiler;
mod error;
mod lexer;
mod macros;
mod operators;
mod pcre;
mod prefilter;
mod targets;
mod vendored;

pub use compiler::Origin;
pub use error::{Reason, SeclangError};
pub use prefilter::literals as prefilter;
pub use vendored::{vendored, vendored_data, vendored_sources, DATA_FILES, RULE_FILES};

use crate::waf::program::Program;

/// One rule file: its name (for errors) and its text.
#[derive(Clone, Copy, Debug)]
pub struct Source<'a> {
    pub file: &'a str,
    pub text: &'a str,
}

/// Compiles rule files, in load order, into one program. `data_file` reads the data files that
/// `@pmFromFile` and `@ipMatchFromFile` name. Every error found is returned, not just the first.
pub fn compile(
    sources: &[Source<'_>],
    data_file: &dyn Fn(&str) -> Option<String>,
) -> Result<Program, Vec<SeclangError>> {
    compile_traced(sources, data_file).map(|(program, _)| program)
}

/// [`compile`], also returning where each of the program's rules was written.
pub fn compile_traced(
    sources: &[Source<'_>],
    data_file: &dyn Fn(&str) -> Option<String>,
) -> Result<(Program, Vec<Origin>), Vec<SeclangError>> {
    compiler::build(sources, data_file)
}

#[cfg(test)]
mod tests {
    #[test]
    fn vendored_compiles() {
        let p = super::vendored();
        assert!(p.rules.len() > 600);
    }
}
