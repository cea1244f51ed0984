//! SQL injection detection in libinjection's method, written here: tokenize the value as SQL in
//! three contexts (as is, after a closing `'`, after a closing `"`) and look at the shape of the
//! first tokens. Injection has a recognisable shape right where it breaks out of the
//! application's literal (`' OR 'a'='a`, `1 UNION SELECT`, `'; DROP`, `' AND SLEEP(5)`,
//! `admin'--`), while prose with SQL words ("select a plan", "drop us a line", O'Brien) does not.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tok {
    /// A quoted string; `closed` when its closing quote was in the input.
    Str {
        closed: bool,
    },
    Num,
    Union,
    /// A statement keyword that can follow `;` (`drop`, `select`, ...).
    Stmt,
    /// A clause keyword (`where`, `order`, `by`, `having`, ...).
    Clause,
    /// `from` or `into`: what follows a select list or an insert.
    From,
    /// `*`, which is a select list on its own.
    Star,
    Logic,
    /// Comparison or arithmetic operator, or an operator word (`like`, `is`, `in`, ...).
    Op,
    Func,
    Word,
    Var,
    LParen,
    RParen,
    Comma,
    Semi,
    Comment,
    Other,
}

/// What a word is to SQL. A `match` on the lowercased word: the compiler builds a decision
/// tree, where a list of keywords would be compared one by one.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kw {
    Union,
    Logic,
    /// An operator word (`like`, `is`, `in`, ...).
    OpWord,
    /// `from` or `into`.
    From,
    /// A statement keyword that can follow `;`.
    Stmt,
    Clause,
    None,
}

fn keyword(word: &[u8]) -> Kw {
    match word {
        b"union" => Kw::Union,
        b"and" | b"or" | b"xor" | b"not" => Kw::Logic,
        b"like" | b"rlike" | b"regexp" | b"is" | b"in" | b"between" | b"sounds" | b"div"
        | b"mod" | b"collate" | b"escape" => Kw::OpWord,
        b"from" | b"into" => Kw::From,
        b"select" | b"insert" | b"update" | b"delete" | b"drop" | b"alter" | b"create"
        | b"truncate" | b"exec" | b"execute" | b"declare" | b"shutdown" | b"waitfor"
        | b"replace" | b"merge" | b"grant" | b"revoke" | b"rename" | b"load" | b"handler"
        | b"call" | b"set" | b"use" => Kw::Stmt,
        b"where" | b"values" | b"table" | b"having" | b"group" | b"order" | b"by" | b"limit"
        | b"offset" | b"procedure" | b"delay" | b"outfile" | b"dumpfile" | b"all" | b"distinct"
        | b"top" | b"case" | b"when" | b"then" | b"else" | b"end" | b"null" | b"true"
        | b"false" | b"asc" | b"desc" => Kw::Clause,
        _ => Kw::None,
    }
}

#[inline]
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c | 0xa0)
}

#[inline]
fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

/// Reads SQL tokens one at a time, so a caller that decides on the first token stops there.
struct Lexer<'a> {
    input: &'a [u8],
    i: usize,
}

impl Lexer<'_> {
    fn next_tok(&mut self) -> Option<Tok> {
        let input = self.input;
        let n = input.len();
        let mut i = self.i;
        loop {
            while i < n && is_space(input[i]) {
                i += 1;
            }
            if i >= n {
                self.i = i;
                return None;
            }
            let b = input[i];
            let tok = match b {
                b'\'' | b'"' | b'`' => {
                    let (end, closed) = scan_string(input, i + 1, b);
                    i = end;
                    if b == b'`' {
                        Tok::Word
                    } else {
                        Tok::Str { closed }
                    }
                }
                b'0'..=b'9' => {
                    while i < n && (input[i].is_ascii_alphanumeric() || input[i] == b'.') {
                        i += 1;
                    }
                    Tok::Num
                }
                b'.' if input.get(i + 1).is_some_and(|c| c.is_ascii_digit()) => {
                    i += 1;
                    while i < n && (input[i].is_ascii_alphanumeric() || input[i] == b'.') {
                        i += 1;
                    }
                    Tok::Num
                }
                b'@' => {
                    i += 1;
                    while i < n && (is_word_byte(input[i]) || input[i] == b'@') {
                        i += 1;
                    }
                    Tok::Var
                }
                b'(' => {
                    i += 1;
                    Tok::LParen
                }
                b')' => {
                    i += 1;
                    Tok::RParen
                }
                b',' => {
                    i += 1;
                    Tok::Comma
                }
                b';' => {
                    i += 1;
                    Tok::Semi
                }
                b'#' => {
                    i = line_end(input, i);
                    Tok::Comment
                }
                b'-' if input.get(i + 1) == Some(&b'-') => {
                    i = line_end(input, i);
                    Tok::Comment
                }
                b'/' if input.get(i + 1) == Some(&b'*') => {
                    if input.get(i + 2) == Some(&b'!') {
                        // MySQL executes `/*!50000 ... */`: read the inside as code.
                        i += 3;
                        while i < n && input[i].is_ascii_digit() {
                            i += 1;
                        }
                        continue;
                    }
                    let end = input[i + 2..]
                        .windows(2)
                        .position(|w| w == b"*/")
                        .map(|p| i + 2 + p + 2)
                        .unwrap_or(n);
                    i = end;
                    // A comment used as a space between keywords is not a comment ending the
                    // query.
                    if end < n {
                        continue;
                    }
                    Tok::Comment
                }
                b'*' if input.get(i + 1) == Some(&b'/') => {
                    i += 2;
                    continue;
                }
                b'|' if input.get(i + 1) == Some(&b'|') => {
                    i += 2;
                    Tok::Logic
                }
                b'&' if input.get(i + 1) == Some(&b'&') => {
                    i += 2;
                    Tok::Logic
                }
                b'*' if input.get(i + 1) != Some(&b'=') => {
                    i += 1;
                    Tok::Star
                }
                b'=' | b'<' | b'>' | b'!' | b'+' | b'-' | b'*' | b'/' | b'%' | b'^' | b'|'
                | b'&' | b'~' | b':' => {
                    i += 1;
                    while i < n && matches!(input[i], b'=' | b'<' | b'>') {
                        i += 1;
                    }
                    Tok::Op
                }
                b if is_word_byte(b) => {
                    let start = i;
                    while i < n && (is_word_byte(input[i]) || input[i] == b'.') {
                        i += 1;
                    }
                    // Keywords are short ASCII: lowercase into a stack buffer, no allocation.
                    let mut buf = [0u8; 16];
                    let raw = &input[start..i];
                    let kw = if raw.len() <= buf.len() {
                        for (d, s) in buf.iter_mut().zip(raw) {
                            *d = s.to_ascii_lowercase();
                        }
                        keyword(&buf[..raw.len()])
                    } else {
                        Kw::None
                    };
                    let mut j = i;
                    while j < n && is_space(input[j]) {
                        j += 1;
                    }
                    match kw {
                        Kw::Union => Tok::Union,
                        Kw::Logic => Tok::Logic,
                        Kw::OpWord => Tok::Op,
                        _ if input.get(j) == Some(&b'(') => Tok::Func,
                        Kw::From => Tok::From,
                        Kw::Stmt => Tok::Stmt,
                        Kw::Clause => Tok::Clause,
                        Kw::None => Tok::Word,
                    }
                }
                _ => {
                    i += 1;
                    Tok::Other
                }
            };
            self.i = i;
            return Some(tok);
        }
    }
}

/// At most this many tokens are read: the shapes below look at the first few.
const MAX: usize = 12;

/// Tokens in a fixed buffer (no allocation per value).
struct Toks {
    buf: [Tok; MAX],
    len: usize,
}

impl std::ops::Deref for Toks {
    type Target = [Tok];
    fn deref(&self) -> &[Tok] {
        &self.buf[..self.len]
    }
}

impl Toks {
    fn new() -> Toks {
        Toks {
            buf: [Tok::Other; MAX],
            len: 0,
        }
    }

    fn push(&mut self, t: Tok) {
        if self.len < MAX {
            self.buf[self.len] = t;
            self.len += 1;
        }
    }

    /// Reads tokens until full or the input ends.
    fn fill(&mut self, lx: &mut Lexer<'_>) {
        while self.len < MAX {
            match lx.next_tok() {
                Some(t) => self.push(t),
                None => break,
            }
        }
    }
}

/// Tokenizes up to [`MAX`] tokens of the input read as the rest of a string literal the
/// application opened with `quote`: the literal, then what follows it. Empty when the literal
/// does not close.
fn after_quote(input: &[u8], quote: u8, steps: &mut u64) -> Toks {
    let mut toks = Toks::new();
    let (end, closed) = scan_string(input, 0, quote);
    if !closed {
        return toks;
    }
    toks.push(Tok::Str { closed });
    let mut lx = Lexer { input, i: end };
    toks.fill(&mut lx);
    *steps += lx.i as u64;
    toks
}

fn scan_string(input: &[u8], mut i: usize, q: u8) -> (usize, bool) {
    while i < input.len() {
        let b = input[i];
        if b == b'\\' {
            i += 2;
            continue;
        }
        if b == q {
            if input.get(i + 1) == Some(&q) {
                i += 2;
                continue;
            }
            return (i + 1, true);
        }
        i += 1;
    }
    (input.len(), false)
}

fn line_end(input: &[u8], i: usize) -> usize {
    input[i..]
        .iter()
        .position(|b| *b == b'\n')
        .map(|p| i + p + 1)
        .unwrap_or(input.len())
}

fn operand(t: Option<&Tok>) -> bool {
    matches!(
        t,
        Some(
            Tok::Str { .. }
                | Tok::Num
                | Tok::Word
                | Tok::Func
                | Tok::Var
                | Tok::LParen
                | Tok::Clause
        )
    )
}

fn ends(t: Option<&Tok>) -> bool {
    matches!(t, None | Some(Tok::Comment | Tok::Semi))
}

/// The shape after the application's literal was closed (`rest` starts right after it).
/// `strict` is for the as-is context, where a bare `1 or 2` is too common in prose to count.
fn breakout(rest: &[Tok], strict: bool) -> Option<&'static str> {
    let mut k = 0;
    while rest.get(k) == Some(&Tok::RParen) {
        k += 1;
    }
    let t = |o: usize| rest.get(k + o);
    match t(0)? {
        Tok::Comment if !strict && k == 0 && rest.len() == 1 => Some("literal closed then comment"),
        Tok::Logic => {
            let mut o = 1;
            while t(o) == Some(&Tok::Logic) || t(o) == Some(&Tok::LParen) {
                o += 1;
            }
            match (t(o), t(o + 1)) {
                (Some(Tok::Func), _) => Some("boolean with a function call"),
                (a, Some(Tok::Op | Tok::Star)) if operand(a) => match t(o + 2) {
                    b if operand(b) => Some("tautology"),
                    _ => None,
                },
                (Some(Tok::Num | Tok::Str { .. }), after) if !strict && ends(after) => {
                    Some("boolean then comment")
                }
                (Some(Tok::Num | Tok::Str { .. } | Tok::Clause), Some(Tok::Comment)) => {
                    Some("boolean then comment")
                }
                _ => None,
            }
        }
        Tok::Union => match t(1) {
            Some(Tok::Stmt) | Some(Tok::Clause) | Some(Tok::LParen) => Some("union select"),
            _ => None,
        },
        Tok::Semi => match t(1) {
            Some(Tok::Stmt) | Some(Tok::Func) => Some("stacked query"),
            _ => None,
        },
        Tok::Op | Tok::Star => match (t(1), t(2)) {
            (a, Some(Tok::Logic | Tok::Comment | Tok::Union)) if operand(a) && !strict => {
                Some("comparison then boolean")
            }
            _ => None,
        },
        Tok::Clause => match (t(1), t(2)) {
            (Some(Tok::Clause), Some(Tok::Num)) => Some("order/group by"),
            (Some(Tok::Clause), Some(Tok::Word)) if ends(t(3)) => Some("clause injection"),
            (Some(Tok::Word | Tok::Num | Tok::Str { .. }), Some(Tok::Op)) => Some("having/where"),
            _ => None,
        },
        Tok::From => match (t(1), t(2)) {
            (Some(Tok::Clause), Some(Tok::Str { .. })) => Some("into outfile"),
            (Some(Tok::Word), b) if ends(b) => Some("from/into injection"),
            _ => None,
        },
        _ => None,
    }
}

/// Whether the value looks like SQL injection; returns a short description of the shape.
pub(crate) fn detect(input: &[u8], steps: &mut u64) -> Option<&'static str> {
    for q in [b'\'', b'"'] {
        if input.contains(&q) {
            let toks = after_quote(input, q, steps);
            if toks.len() > 1 {
                if let Some(why) = breakout(&toks[1..], false) {
                    return Some(why);
                }
            }
        }
    }
    // As is, only a value that starts like SQL (after parentheses or an operator) can be
    // injection: the lexer stops at the first other token, which is where prose stops.
    let mut lx = Lexer { input, i: 0 };
    let mut toks = Toks::new();
    let first = loop {
        if toks.len == MAX {
            break None;
        }
        match lx.next_tok() {
            Some(t @ (Tok::LParen | Tok::Op)) => toks.push(t),
            other => break other,
        }
    };
    let verdict = match first {
        Some(t @ (Tok::Num | Tok::Var | Tok::Union | Tok::Stmt)) => {
            let k = toks.len;
            toks.push(t);
            toks.fill(&mut lx);
            match t {
                Tok::Num | Tok::Var => breakout(&toks[k + 1..], true),
                Tok::Union => breakout(&toks[k..], true),
                _ => full_statement(&toks[k..]),
            }
        }
        _ => None,
    };
    *steps += lx.i as u64;
    verdict
}

/// A value that is a whole statement: `select * from x`, `select a, b from t where ...`,
/// `drop table x`, `insert into x values`. Prose starting with "select" lacks SQL's shape: a
/// select list with `*` or a function, or a `from <name>` followed by a clause or the end of the
/// statement.
fn full_statement(t: &[Tok]) -> Option<&'static str> {
    if let Some(from) = t.iter().position(|x| *x == Tok::From) {
        let list = &t[1..from];
        let strong_list = list
            .iter()
            .any(|x| matches!(x, Tok::Star | Tok::Func | Tok::Var));
        let tail = &t[from..];
        let named = matches!(tail.get(1), Some(Tok::Word | Tok::Clause));
        let sql_tail = named
            && matches!(
                tail.get(2),
                Some(
                    Tok::Clause | Tok::Semi | Tok::Comment | Tok::Union | Tok::Logic | Tok::LParen
                )
            );
        if (strong_list && named) || sql_tail {
            return Some("SQL statement");
        }
        return None;
    }
    // `drop table users`, `truncate table x;`
    match (t.get(1), t.get(2)) {
        (Some(Tok::Clause), Some(Tok::Word)) if ends(t.get(3)) && t.len() >= 3 => {
            Some("SQL statement")
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> bool {
        detect(s.as_bytes(), &mut 0).is_some()
    }

    #[test]
    fn attacks() {
        for a in [
            "' or '1'='1",
            "1' OR 1=1--",
            "admin'--",
            "admin' #",
            "1 union select username, password from users",
            "-1 UNION ALL SELECT NULL,NULL--",
            "' union select 1,2,3--",
            "'; drop table users; --",
            "1; DROP TABLE users",
            "' and sleep(5)--",
            "1 and sleep(5)",
            "') or ('a'='a",
            "\" or \"\"=\"",
            "1' order by 3--",
            "' having 1=1--",
            "1/*!50000union*/ select 1",
            "select * from users where id=1",
            "' or 1=1 limit 1 -- -",
            "1 or 1=1",
            "' || '1'='1",
            "1' and extractvalue(1,concat(0x7e,version()))--",
            "drop table users",
            "select name from users where id=1",
            "1' into outfile '/tmp/x",
        ] {
            assert!(d(a), "missed {a}");
        }
    }

    #[test]
    fn prose() {
        for b in [
            "select a plan",
            "Please select from the list below",
            "drop us a line",
            "O'Brien",
            "rock 'n' roll",
            "It's 5 o'clock",
            "Tom and Jerry",
            "1 or 2 items",
            "we're open 9-5, or later",
            "Select your country",
            "update: it's fixed",
            "he said \"hi\" and left",
            "order by price",
            "SELECT is my favourite keyword, after FROM",
            "The 'select' element needs a label",
            "Call the function() when ready",
            "Set-top box not working",
            "I'd like more colours; also the \"Select all\" button is hard to find.",
            "select one from below",
            "drop table tennis is fun",
            "2 + 2 = 4",
            "C'est la vie -- vraiment",
            "I'd like to order 3 and 4",
        ] {
            assert!(!d(b), "false positive on {b}");
        }
    }
}
