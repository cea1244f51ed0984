//! CEL expressions and `${...}` templates: compiled once per policy version, evaluated per request.

mod ast;
pub mod cookies;
pub mod ext;
pub mod find_replace;
mod functions;
mod header_keys;
pub mod hybrid;
mod pattern;
mod shape;
mod template;
pub mod useragent;
mod vars;

pub use functions::parse_ip;
pub use pattern::{replace, Pattern, PatternError, Replaced, Replacement, ResolveError, TooLong};
pub use shape::{Shape, Test};
pub(crate) use template::closing_brace;
pub use template::{Part, Template};
pub use vars::{map, EndpointInfo, Facts, Scope};

use cel::{Program, Value};

/// What the helper functions (`getReqHeader`, ...) read: a snapshot of the request head.
pub type RequestData = std::sync::Arc<crate::http::RequestHead>;
use std::fmt;

/// A compiled CEL expression and its source text (kept for messages).
pub struct Expr {
    source: String,
    program: Program,
    /// The program with hybrid variables rewritten ([`hybrid`]), when it uses any.
    hybrid: Option<Box<cel::IdedExpr>>,
    /// The variables the expression reads, found once at compile time so a request only
    /// builds those.
    needs: Needs,
}

/// Which top-level variables an expression references.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Needs {
    pub req: bool,
    pub conn: bool,
    pub res: bool,
    pub actions: bool,
    pub vars: bool,
    pub endpoint: bool,
    pub time: bool,
    /// Reads `conn` only as `conn.client_ip`'s string (then `conn` is false).
    pub conn_ip: bool,
    /// Reads the fields of `req` that cost a parse (`user_agent`, `cookies`).
    pub req_parsed: bool,
    /// Calls a request-bound helper (`getReqHeader`, ..., [`functions::HELPERS`]): they are
    /// registered in a scope when its first expression that calls one runs, not for every
    /// request.
    pub helpers: bool,
}

impl fmt::Debug for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Expr({:?})", self.source)
    }
}

/// Why an expression could not be compiled (the parser's words).
#[derive(Debug, Clone, PartialEq)]
pub struct CompileError(pub String);

/// Why an expression failed at run time.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalError {
    pub expression: String,
    pub message: String,
}

impl fmt::Display for EvalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}`: {}", self.expression, self.message)
    }
}

impl Expr {
    pub fn compile(source: &str) -> Result<Expr, CompileError> {
        // The shared environment's parser, so its macros (`sortBy`, ...) expand.
        let program = ext::env()
            .compile(source)
            .map_err(|e| CompileError(one_line(&e.to_string())))?;
        let refs = program.references();
        let mut needs = Needs {
            req: refs.has_variable("req"),
            conn: refs.has_variable("conn"),
            res: refs.has_variable("res"),
            actions: refs.has_variable("actions"),
            vars: refs.has_variable("vars"),
            endpoint: refs.has_variable("endpoint"),
            time: refs.has_variable("time"),
            conn_ip: false,
            req_parsed: false,
            // `secrets.get(...)` is seen as the function `get` on the name `secrets`.
            helpers: functions::HELPERS.iter().any(|f| refs.has_function(f))
                || refs.has_variable("secrets"),
        };
        let mut rewritten = program.expression().clone();
        needs.req_parsed =
            needs.req && hybrid::reads_fields(program.expression(), "req", vars::PARSED_REQ_FIELDS);
        let changed = header_keys::rewrite(&mut rewritten) | hybrid::rewrite(&mut rewritten);
        if needs.conn && hybrid::reads_only_client_ip(&rewritten) {
            needs.conn = false;
            needs.conn_ip = true;
        }
        let hybrid = changed.then(|| Box::new(rewritten));
        Ok(Expr {
            source: source.to_string(),
            program,
            hybrid,
            needs,
        })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn eval(&self, scope: &Scope) -> Result<Value, EvalError> {
        scope
            .execute(
                self.hybrid.as_deref().unwrap_or(self.program.expression()),
                self.needs,
            )
            .map_err(|e| EvalError {
                expression: self.source.clone(),
                message: e.to_string(),
            })
    }

    /// Evaluates a rule condition: it must yield a bool.
    pub fn eval_bool(&self, scope: &Scope) -> Result<bool, EvalError> {
        match self.eval(scope)? {
            Value::Bool(b) => Ok(b),
            other => Err(EvalError {
                expression: self.source.clone(),
                message: format!("expected a bool, got {}", type_name(&other)),
            }),
        }
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::List(_) => "list",
        Value::Map(_) => "map",
        Value::Function(..) => "function",
        Value::Int(_) => "int",
        Value::UInt(_) => "uint",
        Value::Float(_) => "double",
        Value::String(_) => "string",
        Value::Bytes(_) => "bytes",
        Value::Bool(_) => "bool",
        Value::Duration(_) => "duration",
        Value::Timestamp(_) => "timestamp",
        Value::Opaque(_) => "opaque",
        Value::Struct(_) => "struct",
        Value::Null => "null",
    }
}

/// Renders a value the way interpolation writes it into a string.
/// A timestamp as Go writes it (`time.RFC3339Nano`, in UTC as cel-go's timestamps are): `Z`,
/// and a fraction only when there is one, without trailing zeros. ngrok's pages show
/// `2024-06-24T15:30:00Z`.
pub fn go_time(t: &chrono::DateTime<chrono::FixedOffset>) -> String {
    let t = t.with_timezone(&chrono::Utc);
    let mut out = t.format("%Y-%m-%dT%H:%M:%S").to_string();
    let nanos = t.timestamp_subsec_nanos();
    if nanos > 0 {
        let fraction = format!("{nanos:09}");
        out.push('.');
        out.push_str(fraction.trim_end_matches('0'));
    }
    out.push('Z');
    out
}

pub fn to_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.to_string(),
        Value::Int(i) => i.to_string(),
        Value::UInt(u) => u.to_string(),
        Value::Float(f) => f.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => "null".to_string(),
        Value::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
        Value::Timestamp(t) => go_time(t),
        Value::Duration(d) => format!("{}s", d.num_milliseconds() as f64 / 1000.0),
        Value::List(items) => {
            let parts: Vec<String> = items.iter().map(to_json_text).collect();
            format!("[{}]", parts.join(","))
        }
        Value::Map(m) => {
            let mut parts: Vec<String> = m
                .map
                .iter()
                .map(|(k, v)| format!("{}:{}", to_json_text(&key_value(k)), to_json_text(v)))
                .collect();
            parts.sort();
            format!("{{{}}}", parts.join(","))
        }
        Value::Function(..) | Value::Opaque(_) | Value::Struct(_) => format!("{v:?}"),
    }
}

fn key_value(k: &cel::objects::Key) -> Value {
    use cel::objects::Key;
    match k {
        Key::Int(i) => Value::Int(*i),
        Key::Uint(u) => Value::UInt(*u),
        Key::Bool(b) => Value::Bool(*b),
        Key::String(s) => Value::String(s.clone()),
    }
}

fn to_json_text(v: &Value) -> String {
    match v {
        Value::String(s) => serde_json::Value::String(s.to_string()).to_string(),
        other => to_text(other),
    }
}

#[cfg(test)]
mod tests {
    use super::go_time;
    use chrono::DateTime;

    /// Go's `time.RFC3339Nano` in UTC, as ngrok interpolates timestamps.
    #[test]
    fn timestamps_are_written_as_go_writes_them() {
        let t = |s: &str| go_time(&DateTime::parse_from_rfc3339(s).unwrap());
        assert_eq!(t("2024-06-24T15:30:00+00:00"), "2024-06-24T15:30:00Z");
        assert_eq!(t("2024-06-24T17:30:00.5+02:00"), "2024-06-24T15:30:00.5Z");
        assert_eq!(
            t("2024-06-24T15:30:00.000001Z"),
            "2024-06-24T15:30:00.000001Z"
        );
        assert_eq!(t("2024-06-24T15:30:00.120Z"), "2024-06-24T15:30:00.12Z");
    }
}
