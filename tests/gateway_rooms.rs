//! The request path stays in rooms one can read in one sitting (issue 13): no file under
//! `src/gateway/` over 400 lines, no function there over 80. Functions are found by a small
//! scan that skips comments, strings and character literals, then counts braces: the lines from
//! `fn` to the closing brace of its body.

use std::path::Path;

const ROOMS: &[&str] = &["src/gateway"];
const MAX_FILE_LINES: usize = 400;
const MAX_FN_LINES: usize = 80;

#[test]
fn the_request_path_fits_in_rooms() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut over = Vec::new();
    let mut files = 0;
    for room in ROOMS {
        let mut paths: Vec<_> = std::fs::read_dir(root.join(room))
            .unwrap_or_else(|e| panic!("{room}: {e}"))
            .map(|entry| entry.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "rs"))
            .collect();
        paths.sort();
        for path in paths {
            files += 1;
            let text = std::fs::read_to_string(&path).unwrap();
            let name = path.strip_prefix(root).unwrap().display().to_string();
            let lines = text.lines().count();
            if lines > MAX_FILE_LINES {
                over.push(format!("{name}: {lines} lines (at most {MAX_FILE_LINES})"));
            }
            for f in functions(&text) {
                if f.lines > MAX_FN_LINES {
                    over.push(format!(
                        "{name}:{}: fn {} is {} lines (at most {MAX_FN_LINES})",
                        f.line, f.name, f.lines
                    ));
                }
            }
        }
    }
    assert!(files > 0, "no files under {ROOMS:?}");
    assert!(over.is_empty(), "too big:\n{}", over.join("\n"));
}

#[derive(Debug, PartialEq)]
struct Function {
    name: String,
    /// Where `fn` is (1-based).
    line: usize,
    /// From the line of `fn` to the line of the body's closing brace, both counted.
    lines: usize,
}

/// The source with comments, string and character literals blanked to spaces (newlines kept),
/// so braces and `fn` in them are not seen.
fn code_only(src: &str) -> Vec<char> {
    let s: Vec<char> = src.chars().collect();
    let at = |i: usize| s.get(i).copied().unwrap_or('\0');
    let mut out = s.clone();
    let mut i = 0;
    while i < s.len() {
        let ident_before = i > 0 && (s[i - 1].is_alphanumeric() || s[i - 1] == '_');
        let start = i;
        if at(i) == '/' && at(i + 1) == '/' {
            while i < s.len() && s[i] != '\n' {
                i += 1;
            }
        } else if at(i) == '/' && at(i + 1) == '*' {
            let mut depth = 0;
            while i < s.len() {
                if at(i) == '/' && at(i + 1) == '*' {
                    depth += 1;
                    i += 2;
                } else if at(i) == '*' && at(i + 1) == '/' {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if let Some((prefix, hashes)) = raw_string(&s[i..]).filter(|_| !ident_before) {
            i += prefix + hashes + 1;
            while i < s.len() && !(at(i) == '"' && (1..=hashes).all(|j| at(i + j) == '#')) {
                i += 1;
            }
            i += 1 + hashes;
        } else if at(i) == '"' {
            i += 1;
            while i < s.len() && s[i] != '"' {
                i += if s[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
        } else if at(i) == '\'' && (at(i + 1) == '\\' || at(i + 2) == '\'') {
            // A character literal ('{', '\'', '\u{7b}'); a lifetime has no closing quote.
            i += 1;
            while i < s.len() && s[i] != '\'' {
                i += if s[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
        } else {
            i += 1;
            continue;
        }
        for c in &mut out[start..i.min(s.len())] {
            if *c != '\n' {
                *c = ' ';
            }
        }
    }
    out
}

/// At a raw string (`r"`, `r#"`, `br##"`, ...): the length of its `r` or `br`, and its `#`s.
fn raw_string(s: &[char]) -> Option<(usize, usize)> {
    let prefix = match s {
        ['r', ..] => 1,
        ['b', 'r', ..] => 2,
        _ => return None,
    };
    let hashes = s[prefix..].iter().take_while(|c| **c == '#').count();
    (s.get(prefix + hashes) == Some(&'"')).then_some((prefix, hashes))
}

/// Every `fn` with a body, and its length in lines.
fn functions(src: &str) -> Vec<Function> {
    let code = code_only(src);
    let line_at = |i: usize| code[..i].iter().filter(|c| **c == '\n').count() + 1;
    let is_ident = |c: char| c.is_alphanumeric() || c == '_';
    let mut found = Vec::new();
    for i in 0..code.len() {
        let keyword = code[i..].starts_with(&['f', 'n'])
            && (i == 0 || !is_ident(code[i - 1]))
            && code.get(i + 2).is_some_and(|c| c.is_whitespace());
        if !keyword {
            continue;
        }
        let name: String = code[i + 2..]
            .iter()
            .skip_while(|c| c.is_whitespace())
            .take_while(|c| is_ident(**c))
            .collect();
        // The body opens at the first `{` outside the signature's parentheses; a `;` first
        // means a declaration without one.
        let mut j = i;
        let mut parens = 0i32;
        let open = loop {
            match code.get(j) {
                None => break None,
                Some('(' | '[') => parens += 1,
                Some(')' | ']') => parens -= 1,
                Some(';') if parens == 0 => break None,
                Some('{') if parens == 0 => break Some(j),
                _ => {}
            }
            j += 1;
        };
        let Some(open) = open else { continue };
        let mut depth = 0;
        let close = (open..code.len()).find(|&k| {
            match code[k] {
                '{' => depth += 1,
                '}' => depth -= 1,
                _ => {}
            }
            depth == 0
        });
        let close = close.unwrap_or_else(|| panic!("fn {name}: no closing brace"));
        found.push(Function {
            name,
            line: line_at(i),
            lines: line_at(close) - line_at(i) + 1,
        });
    }
    found
}

#[test]
fn the_scan_skips_what_is_not_code() {
    let src = r####"
/// fn in a doc { comment
fn one<'a>(x: &'a str) -> char {
    let _ = "fn not_a_fn() { \" {";
    let _ = r#"{ "# ;
    let _ = '{';
    let _ = '\'';
    /* { /* nested { */ */
    '}'
}

trait T {
    fn declared(&self) -> u8;
    fn with_default(&self) -> [u8; 2] {
        let f: fn(u8) -> u8 = |x| { x };
        [f(1), 2]
    }
}
"####;
    let got: Vec<(String, usize, usize)> = functions(src)
        .into_iter()
        .map(|f| (f.name, f.line, f.lines))
        .collect();
    assert_eq!(
        got,
        [
            ("one".to_string(), 3, 8),
            ("with_default".to_string(), 14, 4)
        ]
    );
}
