//! The compiler's errors: where (file, line, rule id when known) and why.

use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeclangError {
    pub file: String,
    /// 1-based line where the directive starts.
    pub line: u32,
    pub rule: Option<u32>,
    pub reason: Reason,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reason {
    UnterminatedQuote,
    UnknownDirective(String),
    /// A directive with the wrong number of arguments.
    Arguments {
        directive: &'static str,
        expected: &'static str,
        got: usize,
    },
    UnknownVariable(String),
    BadVariable(String),
    UnknownOperator(String),
    BadOperatorParam {
        operator: &'static str,
        param: String,
        why: String,
    },
    UnknownAction(String),
    BadActionValue {
        action: String,
        value: String,
    },
    UnknownTransform(String),
    /// A metadata or flow action in a chained rule (only the chain's first rule may carry it).
    NotInChainLink(String),
    MissingId,
    DuplicateId(u32),
    /// `chain` on the last rule: no rule follows to link.
    ChainNotContinued,
    MissingMarker(String),
    BadRegex {
        pattern: String,
        message: String,
    },
    MissingDataFile(String),
    UnknownMacro(String),
    /// `SecRuleUpdateTargetById` names a rule that is not defined before it.
    UnknownRuleId(u32),
    /// Known SecLang that this compiler does not translate (it is refused, not dropped).
    Unsupported(String),
}

impl fmt::Display for SeclangError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: ", self.file, self.line)?;
        if let Some(id) = self.rule {
            write!(f, "rule {id}: ")?;
        }
        write!(f, "{}", self.reason)
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::UnterminatedQuote => write!(f, "unterminated quote"),
            Reason::UnknownDirective(d) => write!(f, "unknown directive {d}"),
            Reason::Arguments {
                directive,
                expected,
                got,
            } => write!(f, "{directive} takes {expected} arguments, got {got}"),
            Reason::UnknownVariable(v) => write!(f, "unknown variable {v}"),
            Reason::BadVariable(v) => write!(f, "bad variable {v}"),
            Reason::UnknownOperator(o) => write!(f, "unknown operator @{o}"),
            Reason::BadOperatorParam {
                operator,
                param,
                why,
            } => write!(f, "bad parameter for @{operator} ({why}): {param}"),
            Reason::UnknownAction(a) => write!(f, "unknown action {a}"),
            Reason::BadActionValue { action, value } => {
                write!(f, "bad value for action {action}: {value}")
            }
            Reason::UnknownTransform(t) => write!(f, "unknown transformation t:{t}"),
            Reason::NotInChainLink(a) => {
                write!(f, "action {a} is allowed only in the first rule of a chain")
            }
            Reason::MissingId => write!(f, "rule without id"),
            Reason::DuplicateId(id) => write!(f, "duplicate rule id {id}"),
            Reason::ChainNotContinued => write!(f, "chain action but no rule follows"),
            Reason::MissingMarker(m) => write!(f, "skipAfter marker {m} not found after the rule"),
            Reason::BadRegex { pattern, message } => {
                write!(f, "regex does not compile: {pattern}: {message}")
            }
            Reason::MissingDataFile(d) => write!(f, "data file not found: {d}"),
            Reason::UnknownMacro(m) => write!(f, "unknown macro %{{{m}}}"),
            Reason::UnknownRuleId(id) => write!(f, "no rule with id {id} defined before"),
            Reason::Unsupported(what) => write!(f, "not supported: {what}"),
        }
    }
}

impl std::error::Error for SeclangError {}
