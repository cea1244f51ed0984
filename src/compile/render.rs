//! Diagnostics as a compiler prints them (native tooling only): `file:line:col`, the code, the
//! message, the source line with a caret under the problem, and the hint. Also as JSON.

use crate::source::{Diagnostic, Severity};
use std::collections::HashMap;

/// Where a diagnostic points, resolved against its file's text.
#[derive(Clone, Debug, PartialEq)]
pub struct Located {
    pub line: u32,
    /// 1-based column, in characters.
    pub col: u32,
    /// Caret length, in characters (at least 1).
    pub len: u32,
    pub text: String,
}

/// Reads each file once.
#[derive(Default)]
pub struct Sources {
    files: HashMap<String, Option<String>>,
}

impl Sources {
    pub fn text(&mut self, file: &str) -> Option<&str> {
        self.files
            .entry(file.to_string())
            .or_insert_with(|| std::fs::read_to_string(file).ok())
            .as_deref()
    }

    /// Resolves a diagnostic's position (its span inside a string value included).
    pub fn locate(&mut self, d: &Diagnostic) -> Option<Located> {
        let text = self.text(d.file.as_deref()?)?;
        locate(d, text)
    }
}

/// Resolves the position of `d` in `text`, the source of its file.
pub fn locate(d: &Diagnostic, text: &str) -> Option<Located> {
    let pos = d.pos?;
    let lines: Vec<&str> = text.lines().collect();
    let first = *lines.get(pos.line.checked_sub(1)? as usize)?;
    let start = char_to_byte(first, pos.col.saturating_sub(1) as usize)?;
    let here = &first[start..];
    let Some((s, e)) = d.span else {
        if let Some(l) = key_of(d, &lines, pos.line, start) {
            return Some(l);
        }
        return Some(Located {
            line: pos.line,
            col: pos.col,
            len: token_len(here),
            text: first.to_string(),
        });
    };
    // The string value's segments: the rest of the first line (inside its quotes), or the lines
    // of a block scalar; a line break inside the value counts as one byte (`\n` or a folded
    // space).
    let mut segments: Vec<(u32, usize, &str)> = Vec::new();
    match here.chars().next() {
        Some('|' | '>') => {
            let indent = lines
                .iter()
                .skip(pos.line as usize)
                .find(|l| !l.trim().is_empty())
                .map_or(0, |l| l.len() - l.trim_start().len());
            for (i, l) in lines.iter().enumerate().skip(pos.line as usize) {
                let ind = l.len() - l.trim_start().len();
                if !l.trim().is_empty() && ind < indent {
                    break;
                }
                segments.push((i as u32 + 1, indent, l.get(indent..).unwrap_or("")));
            }
        }
        Some(q @ ('"' | '\'')) => {
            let body = &here[1..];
            let end = body.find(q).unwrap_or(body.len());
            segments.push((pos.line, start + 1, &body[..end]));
            if end == body.len() {
                for (i, l) in lines.iter().enumerate().skip(pos.line as usize).take(50) {
                    let trimmed = l.trim_start();
                    let off = l.len() - trimmed.len();
                    let end = trimmed.find(q).unwrap_or(trimmed.len());
                    segments.push((i as u32 + 1, off, &trimmed[..end]));
                    if end < trimmed.len() {
                        break;
                    }
                }
            }
        }
        _ => {
            segments.push((pos.line, start, here.trim_end()));
            for (i, l) in lines.iter().enumerate().skip(pos.line as usize).take(50) {
                let trimmed = l.trim_start();
                let off = l.len() - trimmed.len();
                segments.push((i as u32 + 1, off, trimmed.trim_end()));
            }
        }
    }
    let mut at = s as usize;
    for (line, off, seg) in &segments {
        if at <= seg.len() {
            let line_text = lines[*line as usize - 1];
            let b = off + at;
            let end = (off + seg.len()).min(b + (e.saturating_sub(s)) as usize);
            let col = line_text.get(..b)?.chars().count() as u32 + 1;
            let len = line_text.get(b..end).map_or(1, |t| t.chars().count()) as u32;
            return Some(Located {
                line: *line,
                col,
                len: len.max(1),
                text: line_text.to_string(),
            });
        }
        at -= seg.len() + 1;
    }
    Some(Located {
        line: pos.line,
        col: pos.col,
        len: token_len(here),
        text: first.to_string(),
    })
}

/// An unknown key is reported at its value (nodes do not keep key positions): find the key
/// itself, on the value's line before it or on the lines just above.
fn key_of(d: &Diagnostic, lines: &[&str], line: u32, start: usize) -> Option<Located> {
    let key = d.path.rsplit('.').next()?;
    if !d.message.starts_with("unknown") || !d.message.contains(&format!("`{key}`")) {
        return None;
    }
    let pattern = format!("{key}:");
    let first = line as usize - 1;
    for i in (first.saturating_sub(3)..=first).rev() {
        let text = lines[i];
        let upto = if i == first { start } else { text.len() };
        if let Some(b) = text[..upto.min(text.len())].rfind(&pattern) {
            return Some(Located {
                line: i as u32 + 1,
                col: text[..b].chars().count() as u32 + 1,
                len: key.chars().count() as u32,
                text: text.to_string(),
            });
        }
    }
    None
}

fn char_to_byte(s: &str, chars: usize) -> Option<usize> {
    if chars == s.chars().count() {
        return Some(s.len());
    }
    s.char_indices().nth(chars).map(|(b, _)| b)
}

/// The length of the YAML token starting `here`: a quoted scalar, a plain scalar or a key.
fn token_len(here: &str) -> u32 {
    let mut chars = here.chars();
    let n = match chars.next() {
        Some(q @ ('"' | '\'')) => chars.position(|c| c == q).map_or(1, |p| p + 2),
        Some('{' | '[' | '|' | '>') | None => 1,
        Some(_) => {
            let mut n = 0;
            let cs: Vec<char> = here.chars().collect();
            while n < cs.len() {
                let c = cs[n];
                if matches!(c, ',' | ']' | '}' | '#')
                    || (c == ':' && cs.get(n + 1).is_none_or(|x| x.is_whitespace()))
                {
                    break;
                }
                n += 1;
            }
            cs[..n]
                .iter()
                .rev()
                .skip_while(|c| c.is_whitespace())
                .count()
        }
    };
    n.max(1) as u32
}

fn level(d: &Diagnostic) -> &'static str {
    match d.severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    }
}

/// Renders one diagnostic like a compiler does.
pub fn render(d: &Diagnostic, sources: &mut Sources) -> String {
    let mut out = String::new();
    out.push_str(level(d));
    if let Some(code) = d.code {
        out.push_str(&format!("[{code}]"));
    }
    out.push_str(&format!(": {}\n", d.message));
    let located = sources.locate(d);
    match (&d.file, &located) {
        (Some(f), Some(l)) => out.push_str(&format!("  --> {f}:{}:{}\n", l.line, l.col)),
        (Some(f), None) => out.push_str(&format!("  --> {f}\n")),
        _ => {}
    }
    if let Some(l) = &located {
        let num = l.line.to_string();
        let pad = " ".repeat(num.len());
        let before: String = l
            .text
            .chars()
            .take((l.col as usize).saturating_sub(1))
            .collect();
        let indent: String = before
            .chars()
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        out.push_str(&format!(" {pad} |\n"));
        out.push_str(&format!(" {num} | {}\n", l.text));
        out.push_str(&format!(
            " {pad} | {indent}{}\n",
            "^".repeat(l.len as usize)
        ));
    }
    let pad = located
        .as_ref()
        .map_or(String::new(), |l| " ".repeat(l.line.to_string().len()));
    if !d.path.is_empty() {
        out.push_str(&format!(" {pad} = at: {}\n", d.path));
    }
    if let Some(h) = &d.hint {
        out.push_str(&format!(" {pad} = hint: {h}\n"));
    }
    out
}

/// Sorts diagnostics by file and position, as a compiler prints them (stable).
pub fn sort(diags: &mut [Diagnostic]) {
    diags.sort_by(|a, b| {
        (&a.file, a.pos.map(|p| (p.line, p.col))).cmp(&(&b.file, b.pos.map(|p| (p.line, p.col))))
    });
}

/// One diagnostic as JSON (positions resolved like [`render`]'s).
pub fn to_json(d: &Diagnostic, sources: &mut Sources) -> serde_json::Value {
    let l = sources.locate(d);
    serde_json::json!({
        "severity": level(d),
        "code": d.code,
        "file": d.file,
        "line": l.as_ref().map(|l| l.line),
        "column": l.as_ref().map(|l| l.col),
        "end_column": l.as_ref().map(|l| l.col + l.len),
        "path": (!d.path.is_empty()).then_some(&d.path),
        "message": d.message,
        "hint": d.hint,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::Pos;

    fn diag(line: u32, col: u32, span: Option<(u32, u32)>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            code: Some("ERR_NGROK_2200"),
            file: None,
            pos: Some(Pos { line, col }),
            path: String::new(),
            message: String::new(),
            hint: None,
            span,
        }
    }

    #[test]
    fn spans_inside_quoted_plain_and_block_scalars() {
        let text = "a:\n  - expressions: [\"req.methd == 'GET'\"]\n  - x: |\n      foo &&\n      req.methd\n  - plain req.x\n";
        let l = locate(&diag(2, 19, Some((4, 9))), text).unwrap();
        assert_eq!((l.line, l.col, l.len), (2, 24, 5));
        let l = locate(&diag(3, 8, Some((7, 16))), text).unwrap();
        assert_eq!((l.line, l.col, l.len), (5, 7, 9));
        let l = locate(&diag(6, 5, Some((6, 11))), text).unwrap();
        assert_eq!((l.line, l.col, l.len), (6, 11, 5));
        let l = locate(&diag(2, 5, None), text).unwrap();
        assert_eq!(l.len, 11, "the key `expressions`");
    }
}
