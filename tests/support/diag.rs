//! A diagnostic as the tests write it: "severity code line:col path" (`-` for no code or no
//! position), the form of `tests/compile_errors.yaml`.
#![allow(dead_code, reason = "each test binary uses a different part")]

use edge_gateway::source::{Diagnostic, Severity};

/// (severity, code, line:col, path).
pub fn parts(d: &Diagnostic) -> (String, String, String, String) {
    let sev = match d.severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    };
    let pos = d
        .pos
        .map_or("-".into(), |p| format!("{}:{}", p.line, p.col));
    (
        sev.into(),
        d.code.unwrap_or("-").into(),
        pos,
        d.path.clone(),
    )
}

/// "severity code line:col path".
pub fn line(d: &Diagnostic) -> String {
    let (sev, code, pos, path) = parts(d);
    format!("{sev} {code} {pos} {path}")
}
