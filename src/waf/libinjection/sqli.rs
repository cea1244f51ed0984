//! libinjection's SQL-injection detector (`libinjection_sqli.c`, libinjection 4.0.0), ported
//! function by function. The C names are kept in comments so the two can be read side by side.
//!
//! Differences from the C are only in memory safety: every read is bounds-checked; where the C
//! reads one byte past the input (it assumes a NUL-terminated string), the port reads 0; index
//! arithmetic saturates where the C asserts it cannot underflow.

use super::parser::Parser;
use super::sqli_data::{CHAR_PARSERS, KEYWORDS};

/// `LIBINJECTION_SQLI_TOKEN_SIZE`: a token keeps at most 31 bytes of its value (+ NUL in C).
const TOKEN_SIZE: usize = 32;
/// `LIBINJECTION_SQLI_MAX_TOKENS`.
const MAX_TOKENS: usize = 5;
/// `tokenvec` has `MAX_TOKENS + 3` slots.
const TOKEN_SLOTS: usize = MAX_TOKENS + 3;

/// `sqli_token_types`: each type's fingerprint letter.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum TokenType {
    #[default]
    None = 0,
    Keyword = b'k',
    Union = b'U',
    Group = b'B',
    Expression = b'E',
    SqlType = b't',
    Function = b'f',
    Bareword = b'n',
    Number = b'1',
    Variable = b'v',
    String = b's',
    Operator = b'o',
    LogicOperator = b'&',
    Comment = b'c',
    Collate = b'A',
    LeftParens = b'(',
    RightParens = b')',
    LeftBrace = b'{',
    RightBrace = b'}',
    Dot = b'.',
    Comma = b',',
    Colon = b':',
    Semicolon = b';',
    Tsql = b'T',
    Unknown = b'?',
    Evil = b'X',
    Fingerprint = b'F',
    Backslash = b'\\',
}

impl TokenType {
    fn from_byte(b: u8) -> TokenType {
        match b {
            b'k' => TokenType::Keyword,
            b'U' => TokenType::Union,
            b'B' => TokenType::Group,
            b'E' => TokenType::Expression,
            b't' => TokenType::SqlType,
            b'f' => TokenType::Function,
            b'n' => TokenType::Bareword,
            b'1' => TokenType::Number,
            b'v' => TokenType::Variable,
            b's' => TokenType::String,
            b'o' => TokenType::Operator,
            b'&' => TokenType::LogicOperator,
            b'c' => TokenType::Comment,
            b'A' => TokenType::Collate,
            b'(' => TokenType::LeftParens,
            b')' => TokenType::RightParens,
            b'{' => TokenType::LeftBrace,
            b'}' => TokenType::RightBrace,
            b'.' => TokenType::Dot,
            b',' => TokenType::Comma,
            b':' => TokenType::Colon,
            b';' => TokenType::Semicolon,
            b'T' => TokenType::Tsql,
            b'?' => TokenType::Unknown,
            b'X' => TokenType::Evil,
            b'F' => TokenType::Fingerprint,
            b'\\' => TokenType::Backslash,
            _ => TokenType::None,
        }
    }
}

/// `stoken_t`.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Token {
    pub(crate) ty: TokenType,
    pub(crate) str_open: u8,
    pub(crate) str_close: u8,
    pub(crate) pos: usize,
    pub(crate) len: usize,
    /// A variable's number of '@' (1 or 2); only serves to print it.
    pub(crate) count: u8,
    val: [u8; TOKEN_SIZE],
}

impl Token {
    /// `st_assign`: the value is truncated to 31 bytes, and so is `len`.
    fn assign(&mut self, ty: TokenType, pos: usize, value: &[u8]) {
        let last = value.len().min(TOKEN_SIZE - 1);
        self.ty = ty;
        self.pos = pos;
        self.len = last;
        for (d, s) in self.val.iter_mut().zip(value.iter().take(last)) {
            *d = *s;
        }
        if let Some(v) = self.val.get_mut(last) {
            *v = 0;
        }
    }

    /// `st_assign_char`.
    fn assign_char(&mut self, ty: TokenType, pos: usize, value: u8) {
        self.ty = ty;
        self.pos = pos;
        self.len = 1;
        self.val[0] = value;
        self.val[1] = 0;
    }

    pub(crate) fn value(&self) -> &[u8] {
        self.val.get(..self.len).unwrap_or(&[])
    }

    /// The value as C's string functions see it: up to the first NUL.
    pub(crate) fn c_str(&self) -> &[u8] {
        let v = self.value();
        let end = v.iter().position(|&c| c == 0).unwrap_or(v.len());
        v.get(..end).unwrap_or(&[])
    }

    fn first(&self) -> u8 {
        self.val[0]
    }

    /// `st_is_arithmetic_op`.
    fn is_arithmetic_op(&self) -> bool {
        self.ty == TokenType::Operator
            && self.len == 1
            && matches!(self.first(), b'*' | b'/' | b'-' | b'+' | b'%')
    }

    /// `st_is_unary_op`.
    fn is_unary_op(&self) -> bool {
        if self.ty != TokenType::Operator {
            return false;
        }
        match self.len {
            1 => matches!(self.first(), b'+' | b'-' | b'!' | b'~'),
            2 => self.value() == b"!!",
            3 => eq_upper(b"NOT", self.value()),
            _ => false,
        }
    }
}

/// Which quote the input is pretended to start inside (`FLAG_QUOTE_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Quote {
    None,
    Single,
    Double,
}

/// `FLAG_SQL_ANSI` / `FLAG_SQL_MYSQL`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dialect {
    Ansi,
    Mysql,
}

/// `cstrcasecmp(a, b, n) == 0` with `n == b.len()`: `a` (upper case) equals `b` upper-cased.
/// A NUL in `b` never matches (the C stops at `a`'s terminator).
fn eq_upper(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(&x, &y)| y != 0 && x == y.to_ascii_uppercase())
}

/// `bsearch_keyword_type` over `sql_keywords`: the key upper-cased (ASCII letters only) must
/// equal a word exactly. Keys with a NUL never match in the C; keywords are printable ASCII,
/// so a key with other bytes cannot match either.
pub(crate) fn lookup_word(key: &[u8]) -> Option<TokenType> {
    let mut buf = [0u8; TOKEN_SIZE];
    if key.len() > buf.len() || key.contains(&0) {
        return None;
    }
    for (d, s) in buf.iter_mut().zip(key) {
        *d = s.to_ascii_uppercase();
    }
    let upper = buf.get(..key.len())?;
    let i = KEYWORDS.binary_search_by(|(w, _)| (*w).cmp(upper)).ok()?;
    let (_, ty) = KEYWORDS.get(i)?;
    match TokenType::from_byte(*ty) {
        TokenType::None => None,
        t => Some(t),
    }
}

/// `char_is_white`: `strchr(" \t\n\v\f\r\240\000", ch)` (the terminator matches NUL).
fn is_white(ch: u8) -> bool {
    matches!(ch, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | 0xa0 | 0)
}

/// `memchr2`: where the pair `c0 c1` first starts.
fn memchr2(h: &[u8], c0: u8, c1: u8) -> Option<usize> {
    h.windows(2).position(|w| w == [c0, c1])
}

/// `my_memmem`.
fn memmem(h: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return None;
    }
    h.windows(needle.len()).position(|w| w == needle)
}

/// `strlenspn`: leading bytes in `accept`; `strchr` also finds NUL (the terminator).
fn strlenspn(s: &[u8], accept: &[u8]) -> usize {
    s.iter()
        .take_while(|&&c| c == 0 || accept.contains(&c))
        .count()
}

/// `strlencspn`: leading bytes not in `reject`; NUL always stops.
fn strlencspn(s: &[u8], reject: &[u8]) -> usize {
    s.iter()
        .take_while(|&&c| c != 0 && !reject.contains(&c))
        .count()
}

const WORD_DELIMS: &[u8] = b" []{}<>:\\?=@!#~+-*/&|^%(),';\t\n\x0b\x0c\r\"\xa0";
const VAR_DELIMS: &[u8] = b" <>:\\?=@!#~+-*/&|^%(),';\t\n\x0b\x0c\r'`\"";
const HEX_DIGITS: &[u8] = b"0123456789ABCDEFabcdef";
const LETTERS: &[u8] = b"abcdefghjiklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

/// `struct libinjection_sqli_state`, for one input.
pub(crate) struct State<'a> {
    s: &'a [u8],
    quote: Quote,
    dialect: Dialect,
    pos: usize,
    pub(crate) tokens: [Token; TOKEN_SLOTS],
    fingerprint: [u8; 8],
    fp_len: usize,
    stats_comment_ddx: u32,
    stats_comment_hash: u32,
    stats_tokens: u32,
}

impl<'a> State<'a> {
    /// `libinjection_sqli_init`.
    pub(crate) fn new(s: &'a [u8], quote: Quote, dialect: Dialect) -> Self {
        State {
            s,
            quote,
            dialect,
            pos: 0,
            tokens: [Token::default(); TOKEN_SLOTS],
            fingerprint: [0; 8],
            fp_len: 0,
            stats_comment_ddx: 0,
            stats_comment_hash: 0,
            stats_tokens: 0,
        }
    }

    fn at(&self, i: usize) -> u8 {
        self.s.get(i).copied().unwrap_or(0)
    }

    fn from(&self, i: usize) -> &'a [u8] {
        self.s.get(i..).unwrap_or(&[])
    }

    fn range(&self, a: usize, b: usize) -> &'a [u8] {
        self.s.get(a..b).unwrap_or(&[])
    }

    fn slen(&self) -> usize {
        self.s.len()
    }

    // ---- parsers (`parse_*`): each reads the token at `pos` into `t`, returns the next pos ----

    fn parse_operator1(&self, t: &mut Token, pos: usize) -> usize {
        t.assign_char(TokenType::Operator, pos, self.at(pos));
        pos + 1
    }

    fn parse_other(&self, t: &mut Token, pos: usize) -> usize {
        t.assign_char(TokenType::Unknown, pos, self.at(pos));
        pos + 1
    }

    fn parse_char(&self, t: &mut Token, pos: usize) -> usize {
        let c = self.at(pos);
        t.assign_char(TokenType::from_byte(c), pos, c);
        pos + 1
    }

    fn parse_eol_comment(&self, t: &mut Token, pos: usize) -> usize {
        let rest = self.from(pos);
        match rest.iter().position(|&c| c == b'\n') {
            None => {
                t.assign(TokenType::Comment, pos, rest);
                self.slen()
            }
            Some(i) => {
                t.assign(TokenType::Comment, pos, rest.get(..i).unwrap_or(&[]));
                pos + i + 1
            }
        }
    }

    fn parse_hash(&mut self, t: &mut Token, pos: usize) -> usize {
        self.stats_comment_hash += 1;
        if self.dialect == Dialect::Mysql {
            self.stats_comment_hash += 1;
            self.parse_eol_comment(t, pos)
        } else {
            t.assign_char(TokenType::Operator, pos, b'#');
            pos + 1
        }
    }

    #[expect(
        clippy::if_same_then_else,
        reason = "one branch per case of the C, so the two read side by side"
    )]
    fn parse_dash(&mut self, t: &mut Token, pos: usize) -> usize {
        let slen = self.slen();
        let dash2 = self.at(pos + 1) == b'-';
        if pos + 2 < slen && dash2 && is_white(self.at(pos + 2)) {
            self.parse_eol_comment(t, pos)
        } else if pos + 2 == slen && dash2 {
            self.parse_eol_comment(t, pos)
        } else if pos + 1 < slen && dash2 && self.dialect == Dialect::Ansi {
            self.stats_comment_ddx += 1;
            self.parse_eol_comment(t, pos)
        } else {
            t.assign_char(TokenType::Operator, pos, b'-');
            pos + 1
        }
    }

    fn parse_slash(&self, t: &mut Token, pos: usize) -> usize {
        let slen = self.slen();
        if pos + 1 >= slen || self.at(pos + 1) != b'*' {
            return self.parse_operator1(t, pos);
        }
        // skip over the initial "/*"
        let end = memchr2(self.from(pos + 2), b'*', b'/').map(|i| pos + 2 + i);
        let clen = match end {
            None => slen - pos,
            Some(p) => p + 2 - pos,
        };
        // A "/*" inside the comment (PostgreSQL nests them) or MySQL's "/*!" is evil.
        let nested = end.is_some_and(|p| memchr2(self.range(pos + 2, p + 1), b'/', b'*').is_some());
        let mysql = pos + 2 < slen && self.at(pos + 2) == b'!';
        let ty = if nested || mysql {
            TokenType::Evil
        } else {
            TokenType::Comment
        };
        t.assign(ty, pos, self.range(pos, pos + clen));
        pos + clen
    }

    fn parse_backslash(&self, t: &mut Token, pos: usize) -> usize {
        // MySQL's alias for NULL, "\N" (capital N only)
        if pos + 1 < self.slen() && self.at(pos + 1) == b'N' {
            t.assign(TokenType::Number, pos, self.range(pos, pos + 2));
            pos + 2
        } else {
            t.assign_char(TokenType::Backslash, pos, self.at(pos));
            pos + 1
        }
    }

    fn parse_operator2(&self, t: &mut Token, pos: usize) -> usize {
        let slen = self.slen();
        if pos + 1 >= slen {
            return self.parse_operator1(t, pos);
        }
        if pos + 2 < slen && self.range(pos, pos + 3) == b"<=>" {
            t.assign(TokenType::Operator, pos, self.range(pos, pos + 3));
            return pos + 3;
        }
        if let Some(ty) = lookup_word(self.range(pos, pos + 2)) {
            t.assign(ty, pos, self.range(pos, pos + 2));
            return pos + 2;
        }
        if self.at(pos) == b':' {
            t.assign(TokenType::Colon, pos, self.range(pos, pos + 1));
            pos + 1
        } else {
            self.parse_operator1(t, pos)
        }
    }

    /// `parse_string_core`: a string starting at `pos + offset`, ended by an unescaped
    /// `delim` (backslash-escaped or doubled delimiters do not end it).
    fn parse_string_core(&self, t: &mut Token, pos: usize, delim: u8, offset: usize) -> usize {
        let start = pos + offset;
        let find = |from: usize| {
            self.from(from)
                .iter()
                .position(|&c| c == delim)
                .map(|i| from + i)
        };
        let mut qpos = find(start);
        t.str_open = if offset > 0 { delim } else { 0 };
        loop {
            match qpos {
                None => {
                    t.assign(TokenType::String, start, self.from(start));
                    t.str_close = 0;
                    return self.slen();
                }
                Some(q) => {
                    // is_backslash_escaped(qpos - 1, start): an odd run of backslashes
                    let run = self
                        .range(start, q)
                        .iter()
                        .rev()
                        .take_while(|&&c| c == b'\\');
                    if run.count() % 2 == 1 {
                        qpos = find(q + 1);
                    } else if q + 1 < self.slen() && self.at(q + 1) == self.at(q) {
                        // is_double_delim_escaped
                        qpos = find(q + 2);
                    } else {
                        t.assign(TokenType::String, start, self.range(start, q));
                        t.str_close = delim;
                        return q + 1;
                    }
                }
            }
        }
    }

    fn parse_string(&self, t: &mut Token, pos: usize) -> usize {
        self.parse_string_core(t, pos, self.at(pos), 1)
    }

    /// N'…' (MySQL national charset) and E'…' (PostgreSQL escaped string).
    fn parse_estring(&self, t: &mut Token, pos: usize) -> usize {
        if pos + 2 >= self.slen() || self.at(pos + 1) != b'\'' {
            return self.parse_word(t, pos);
        }
        self.parse_string_core(t, pos, b'\'', 2)
    }

    fn parse_ustring(&self, t: &mut Token, pos: usize) -> usize {
        if pos + 2 < self.slen() && self.at(pos + 1) == b'&' && self.at(pos + 2) == b'\'' {
            let next = self.parse_string(t, pos + 2);
            t.str_open = b'u';
            if t.str_close == b'\'' {
                t.str_close = b'u';
            }
            next
        } else {
            self.parse_word(t, pos)
        }
    }

    /// Oracle's q'…' strings.
    fn parse_qstring_core(&self, t: &mut Token, pos0: usize, offset: usize) -> usize {
        let slen = self.slen();
        let pos = pos0 + offset;
        if pos >= slen
            || !matches!(self.at(pos), b'q' | b'Q')
            || pos + 2 >= slen
            || self.at(pos + 1) != b'\''
        {
            return self.parse_word(t, pos0);
        }
        let ch = self.at(pos + 2);
        // `char` is signed in the C: bytes >= 0x80 are < 33 too
        if (ch as i8) < 33 {
            return self.parse_word(t, pos0);
        }
        let close = match ch {
            b'(' => b')',
            b'[' => b']',
            b'{' => b'}',
            b'<' => b'>',
            c => c,
        };
        match memchr2(self.from(pos + 3), close, b'\'') {
            None => {
                t.assign(TokenType::String, pos + 3, self.from(pos + 3));
                t.str_open = b'q';
                t.str_close = 0;
                slen
            }
            Some(i) => {
                let end = pos + 3 + i;
                t.assign(TokenType::String, pos + 3, self.range(pos + 3, end));
                t.str_open = b'q';
                t.str_close = b'q';
                end + 2
            }
        }
    }

    fn parse_nqstring(&self, t: &mut Token, pos: usize) -> usize {
        if pos + 2 < self.slen() && self.at(pos + 1) == b'\'' {
            return self.parse_estring(t, pos);
        }
        self.parse_qstring_core(t, pos, 1)
    }

    /// b'0101' and x'0AF3' literals (`parse_bstring`, `parse_xstring`).
    fn parse_digits_string(&self, t: &mut Token, pos: usize, digits: &[u8]) -> usize {
        let slen = self.slen();
        if pos + 2 >= slen || self.at(pos + 1) != b'\'' {
            return self.parse_word(t, pos);
        }
        let wlen = strlenspn(self.from(pos + 2), digits);
        if pos + 2 + wlen >= slen || self.at(pos + 2 + wlen) != b'\'' {
            return self.parse_word(t, pos);
        }
        t.assign(TokenType::Number, pos, self.range(pos, pos + wlen + 3));
        pos + 2 + wlen + 1
    }

    /// SQL Server's [bracketed words].
    ///
    /// libinjection 4.0.0 reads '[' outside MySQL mode as a left parenthesis; this port keeps
    /// the earlier reading (a bare word up to ']' in every mode), which is what Coraza's
    /// libinjection-go, and so CRS's regression tests, use.
    fn parse_bword(&self, t: &mut Token, pos: usize) -> usize {
        let rest = self.from(pos);
        match rest.iter().position(|&c| c == b']') {
            None => {
                t.assign(TokenType::Bareword, pos, rest);
                self.slen()
            }
            Some(i) => {
                t.assign(TokenType::Bareword, pos, self.range(pos, pos + i + 1));
                pos + i + 1
            }
        }
    }

    fn parse_word(&self, t: &mut Token, pos: usize) -> usize {
        let wlen = strlencspn(self.from(pos), WORD_DELIMS);
        t.assign(TokenType::Bareword, pos, self.range(pos, pos + wlen));
        // A keyword before '.' or '`' ends the word: "SELECT.1", SELECT`column`.
        for i in 0..t.len {
            let delim = t.val.get(i).copied().unwrap_or(0);
            if delim == b'.' || delim == b'`' {
                let ty = lookup_word(t.val.get(..i).unwrap_or(&[]));
                if let Some(ty) = ty.filter(|&ty| ty != TokenType::Bareword) {
                    *t = Token::default();
                    t.assign(ty, pos, self.range(pos, pos + i));
                    return pos + i;
                }
            }
        }
        if wlen < TOKEN_SIZE {
            t.ty = lookup_word(t.value()).unwrap_or(TokenType::Bareword);
        }
        pos + wlen
    }

    /// MySQL `backticks`: a bare word, or a function if the name is one.
    fn parse_tick(&self, t: &mut Token, pos: usize) -> usize {
        let next = self.parse_string_core(t, pos, b'`', 1);
        t.ty = if lookup_word(t.value()) == Some(TokenType::Function) {
            TokenType::Function
        } else {
            TokenType::Bareword
        };
        next
    }

    fn parse_var(&self, t: &mut Token, pos0: usize) -> usize {
        let mut pos = pos0 + 1;
        t.count = 1;
        if self.at(pos) == b'@' && pos < self.slen() {
            pos += 1;
            t.count = 2;
        }
        if pos < self.slen() {
            let c = self.at(pos);
            if c == b'`' {
                let next = self.parse_tick(t, pos);
                t.ty = TokenType::Variable;
                return next;
            } else if c == b'\'' || c == b'"' {
                let next = self.parse_string(t, pos);
                t.ty = TokenType::Variable;
                return next;
            }
        }
        let xlen = strlencspn(self.from(pos), VAR_DELIMS);
        t.assign(TokenType::Variable, pos, self.range(pos, pos + xlen));
        pos + xlen
    }

    /// $1,000.00 money, PostgreSQL's $$strings$$ and $tag$strings$tag$.
    fn parse_money(&self, t: &mut Token, pos: usize) -> usize {
        let slen = self.slen();
        if pos + 1 == slen {
            t.assign_char(TokenType::Bareword, pos, b'$');
            return slen;
        }
        let xlen = strlenspn(self.from(pos + 1), b"0123456789.,");
        if xlen == 0 {
            if self.at(pos + 1) == b'$' {
                // $$ … find the ending $$
                return match memchr2(self.from(pos + 2), b'$', b'$') {
                    None => {
                        t.assign(TokenType::String, pos + 2, self.from(pos + 2));
                        t.str_open = b'$';
                        t.str_close = 0;
                        slen
                    }
                    Some(i) => {
                        let end = pos + 2 + i;
                        t.assign(TokenType::String, pos + 2, self.range(pos + 2, end));
                        t.str_open = b'$';
                        t.str_close = b'$';
                        end + 2
                    }
                };
            }
            let xlen = strlenspn(self.from(pos + 1), LETTERS);
            if xlen == 0 || pos + xlen + 1 == slen || self.at(pos + xlen + 1) != b'$' {
                // "$" something, or not $tag$: a lone '$'
                t.assign_char(TokenType::Bareword, pos, b'$');
                return pos + 1;
            }
            // $tag$ … find $tag$ again
            let body = pos + xlen + 2;
            return match memmem(self.from(body), self.range(pos, body)) {
                None => {
                    t.assign(TokenType::String, body, self.from(body));
                    t.str_open = b'$';
                    t.str_close = 0;
                    slen
                }
                Some(i) => {
                    t.assign(TokenType::String, body, self.range(body, body + i));
                    t.str_open = b'$';
                    t.str_close = b'$';
                    body + i + xlen + 2
                }
            };
        }
        if xlen == 1 && self.at(pos + 1) == b'.' {
            // "$." is a word
            return self.parse_word(t, pos);
        }
        t.assign(TokenType::Number, pos, self.range(pos, pos + 1 + xlen));
        pos + 1 + xlen
    }

    fn parse_number(&self, t: &mut Token, start: usize) -> usize {
        let slen = self.slen();
        let s = self.s;
        let digit = |i: usize| s.get(i).is_some_and(u8::is_ascii_digit);
        if self.at(start) == b'0' && start + 1 < slen {
            let digits: Option<&[u8]> = match self.at(start + 1) {
                b'X' | b'x' => Some(HEX_DIGITS),
                b'B' | b'b' => Some(b"01"),
                _ => None,
            };
            if let Some(digits) = digits {
                let xlen = strlenspn(self.from(start + 2), digits);
                if xlen == 0 {
                    t.assign(TokenType::Bareword, start, self.range(start, start + 2));
                    return start + 2;
                }
                t.assign(
                    TokenType::Number,
                    start,
                    self.range(start, start + 2 + xlen),
                );
                return start + 2 + xlen;
            }
        }
        let mut pos = start;
        while digit(pos) {
            pos += 1;
        }
        if self.at(pos) == b'.' && pos < slen {
            pos += 1;
            while digit(pos) {
                pos += 1;
            }
            if pos - start == 1 {
                // only "." so far
                t.assign_char(TokenType::Dot, start, b'.');
                return pos;
            }
        }
        let mut have_e = false;
        let mut have_exp = false;
        if pos < slen && matches!(self.at(pos), b'E' | b'e') {
            have_e = true;
            pos += 1;
            if pos < slen && matches!(self.at(pos), b'+' | b'-') {
                pos += 1;
            }
            while digit(pos) {
                have_exp = true;
                pos += 1;
            }
        }
        // Oracle's float/double suffixes: "1.2f", "1d", and "1fUNION" read as "1f UNION"
        if pos < slen && matches!(self.at(pos), b'd' | b'D' | b'f' | b'F') {
            let next = self.at(pos + 1);
            if pos + 1 == slen || is_white(next) || matches!(next, b';' | b'u' | b'U') {
                pos += 1;
            }
        }
        // "1.e", "10.10E": no token; MySQL ignores them ("1.e(1)" is "(1)").
        if !have_e || have_exp {
            t.assign(TokenType::Number, start, self.range(start, pos));
        }
        pos
    }

    /// `libinjection_sqli_tokenize`: the next token into `t`; false at the end of input.
    pub(crate) fn tokenize(&mut self, t: &mut Token) -> bool {
        let slen = self.slen();
        if slen == 0 {
            return false;
        }
        *t = Token::default();
        // In a quote context the input is pretended to start with that quote.
        if self.pos == 0 && self.quote != Quote::None {
            let delim = if self.quote == Quote::Single {
                b'\''
            } else {
                b'"'
            };
            self.pos = self.parse_string_core(t, 0, delim, 0);
            self.stats_tokens += 1;
            return true;
        }
        while self.pos < slen {
            let pos = self.pos;
            let parser = CHAR_PARSERS.get(usize::from(self.at(pos))).copied();
            let next = match parser.unwrap_or(Parser::Word) {
                Parser::White => pos + 1,
                Parser::Operator1 => self.parse_operator1(t, pos),
                Parser::Operator2 => self.parse_operator2(t, pos),
                Parser::Other => self.parse_other(t, pos),
                Parser::Char => self.parse_char(t, pos),
                Parser::Hash => self.parse_hash(t, pos),
                Parser::Dash => self.parse_dash(t, pos),
                Parser::Slash => self.parse_slash(t, pos),
                Parser::Backslash => self.parse_backslash(t, pos),
                Parser::String => self.parse_string(t, pos),
                Parser::EString => self.parse_estring(t, pos),
                Parser::UString => self.parse_ustring(t, pos),
                Parser::QString => self.parse_qstring_core(t, pos, 0),
                Parser::NqString => self.parse_nqstring(t, pos),
                Parser::BString => self.parse_digits_string(t, pos, b"01"),
                Parser::XString => self.parse_digits_string(t, pos, HEX_DIGITS),
                Parser::BWord => self.parse_bword(t, pos),
                Parser::Word => self.parse_word(t, pos),
                Parser::Tick => self.parse_tick(t, pos),
                Parser::Var => self.parse_var(t, pos),
                Parser::Money => self.parse_money(t, pos),
                Parser::Number => self.parse_number(t, pos),
            };
            // Every parser advances; `max` only makes termination evident.
            self.pos = next.max(pos + 1);
            if t.ty != TokenType::None {
                self.stats_tokens += 1;
                return true;
            }
        }
        false
    }

    fn ty(&self, i: usize) -> TokenType {
        self.tokens.get(i).map_or(TokenType::None, |t| t.ty)
    }

    fn tok(&self, i: usize) -> Token {
        self.tokens.get(i).copied().unwrap_or_default()
    }

    fn set_ty(&mut self, i: usize, ty: TokenType) {
        if let Some(t) = self.tokens.get_mut(i) {
            t.ty = ty;
        }
    }

    /// `st_copy(&tokenvec[dst], &tokenvec[src])`.
    fn copy_tok(&mut self, dst: usize, src: usize) {
        let t = self.tok(src);
        if let Some(d) = self.tokens.get_mut(dst) {
            *d = t;
        }
    }

    fn tokenize_into(&mut self, i: usize) -> bool {
        let mut t = Token::default();
        let more = self.tokenize(&mut t);
        if let Some(slot) = self.tokens.get_mut(i) {
            *slot = t;
        }
        more
    }

    /// `syntax_merge_words`: "UNION" + "ALL" → "UNION ALL" when the pair is a keyword.
    fn merge_words(&mut self, ia: usize, ib: usize) -> bool {
        use TokenType as T;
        let (a, b) = (self.tok(ia), self.tok(ib));
        let word = |t: T| {
            matches!(
                t,
                T::Keyword
                    | T::Bareword
                    | T::Operator
                    | T::Union
                    | T::Function
                    | T::Expression
                    | T::Tsql
                    | T::SqlType
            )
        };
        if !word(a.ty) || !(word(b.ty) || b.ty == T::LogicOperator) {
            return false;
        }
        let sz3 = a.len + b.len + 1;
        if sz3 >= TOKEN_SIZE {
            return false;
        }
        let mut tmp = [0u8; TOKEN_SIZE];
        let joined = a.value().iter().chain(b" ").chain(b.value());
        for (d, s) in tmp.iter_mut().zip(joined) {
            *d = *s;
        }
        let merged = tmp.get(..sz3).unwrap_or(&[]);
        match lookup_word(merged) {
            Some(ty) => {
                if let Some(t) = self.tokens.get_mut(ia) {
                    t.assign(ty, a.pos, merged);
                }
                true
            }
            None => false,
        }
    }

    /// `libinjection_sqli_fold`: tokenizes and folds into at most 5 tokens; their count.
    #[expect(
        clippy::if_same_then_else,
        reason = "one branch per folding rule of the C, so the two read side by side"
    )]
    pub(crate) fn fold(&mut self) -> usize {
        use TokenType as T;
        let mut last_comment = Token::default();
        // POS is where the next token goes; LEFT counts the tokens already folded.
        let mut pos: usize = 0;
        let mut left: usize;
        let mut more = true;

        // Skip all initial comments, left parens, SQL types and unary operators.
        while more {
            more = self.tokenize_into(0);
            let t = self.tok(0);
            if !(matches!(t.ty, T::Comment | T::LeftParens | T::SqlType) || t.is_unary_op()) {
                break;
            }
        }
        if !more {
            return 0;
        }
        pos += 1;
        left = 0;

        // Each turn consumes input or folds/retypes a token; the bound only makes that evident.
        let mut turns = (self.slen() + 8).saturating_mul(64);
        loop {
            turns = turns.saturating_sub(1);
            if turns == 0 {
                left = pos;
                break;
            }
            if pos >= MAX_TOKENS {
                let ty: [T; 5] = [self.ty(0), self.ty(1), self.ty(2), self.ty(3), self.ty(4)];
                let special = matches!(
                    ty,
                    [
                        T::Number,
                        T::Operator | T::Comma,
                        T::LeftParens,
                        T::Number,
                        T::RightParens
                    ] | [
                        T::Bareword,
                        T::Operator,
                        T::LeftParens,
                        T::Bareword | T::Number,
                        T::RightParens
                    ] | [
                        T::Number,
                        T::RightParens,
                        T::Comma,
                        T::LeftParens,
                        T::Number
                    ] | [
                        T::Bareword,
                        T::RightParens,
                        T::Operator,
                        T::LeftParens,
                        T::Bareword
                    ]
                );
                if special {
                    if pos > MAX_TOKENS {
                        self.copy_tok(1, MAX_TOKENS);
                        pos = 2;
                    } else {
                        pos = 1;
                    }
                    left = 0;
                }
            }

            if !more || left >= MAX_TOKENS {
                left = pos;
                break;
            }

            // get up to two tokens
            while more && pos <= MAX_TOKENS && pos.wrapping_sub(left) < 2 {
                more = self.tokenize_into(pos);
                if more {
                    if self.ty(pos) == T::Comment {
                        last_comment = self.tok(pos);
                    } else {
                        last_comment.ty = T::None;
                        pos += 1;
                    }
                }
            }
            if pos.wrapping_sub(left) < 2 {
                left = pos;
                continue;
            }

            let (a, b) = (self.tok(left), self.tok(left + 1));
            if a.ty == T::String && b.ty == T::String {
                // "foo" "bar" is valid SQL: ignore the second string
                pos = pos.saturating_sub(1);
                continue;
            } else if a.ty == T::Semicolon && b.ty == T::Semicolon {
                pos = pos.saturating_sub(1);
                continue;
            } else if matches!(a.ty, T::Operator | T::LogicOperator)
                && (b.is_unary_op() || b.ty == T::SqlType)
            {
                pos = pos.saturating_sub(1);
                left = 0;
                continue;
            } else if a.ty == T::LeftParens && b.is_unary_op() {
                pos = pos.saturating_sub(1);
                left = left.saturating_sub(1);
                continue;
            } else if self.merge_words(left, left + 1) {
                pos = pos.saturating_sub(1);
                left = left.saturating_sub(1);
                continue;
            } else if a.ty == T::Semicolon
                && b.ty == T::Function
                && matches!(b.first(), b'I' | b'i')
                && matches!(b.val[1], b'F' | b'f')
            {
                // T-SQL's IF statement after ';'
                self.set_ty(left + 1, T::Tsql);
                continue;
            } else if matches!(a.ty, T::Bareword | T::Variable)
                && b.ty == T::LeftParens
                && [
                    &b"USER_ID"[..],
                    b"USER_NAME",
                    b"DATABASE",
                    b"PASSWORD",
                    b"USER",
                    b"CURRENT_USER",
                    b"CURRENT_DATE",
                    b"CURRENT_TIME",
                    b"CURRENT_TIMESTAMP",
                    b"LOCALTIME",
                    b"LOCALTIMESTAMP",
                ]
                .iter()
                .any(|w| eq_upper(w, a.value()))
            {
                // words that are column names, or functions when called
                self.set_ty(left, T::Function);
                continue;
            } else if a.ty == T::Keyword
                && (eq_upper(b"IN", a.value()) || eq_upper(b"NOT IN", a.value()))
            {
                let ty = if b.ty == T::LeftParens {
                    T::Operator
                } else {
                    T::Bareword
                };
                self.set_ty(left, ty);
                continue;
            } else if a.ty == T::Operator
                && (eq_upper(b"LIKE", a.value()) || eq_upper(b"NOT LIKE", a.value()))
            {
                if b.ty == T::LeftParens {
                    // SELECT LIKE(…: a function
                    self.set_ty(left, T::Function);
                }
            } else if a.ty == T::SqlType
                && matches!(
                    b.ty,
                    T::Bareword
                        | T::Number
                        | T::SqlType
                        | T::LeftParens
                        | T::Function
                        | T::Variable
                        | T::String
                )
            {
                self.copy_tok(left, left + 1);
                pos = pos.saturating_sub(1);
                left = 0;
                continue;
            } else if a.ty == T::Collate && b.ty == T::Bareword {
                // too many collations: a bare word with '_' is a type
                if b.c_str().contains(&b'_') {
                    self.set_ty(left + 1, T::SqlType);
                    left = 0;
                }
            } else if a.ty == T::Backslash {
                if b.is_arithmetic_op() {
                    // T-SQL parses '\%1' as '0 % 1'
                    self.set_ty(left, T::Number);
                } else {
                    // and '\1' as '1'
                    self.copy_tok(left, left + 1);
                    pos = pos.saturating_sub(1);
                }
                left = 0;
                continue;
            } else if (a.ty == T::LeftParens && b.ty == T::LeftParens)
                || (a.ty == T::RightParens && b.ty == T::RightParens)
            {
                pos = pos.saturating_sub(1);
                left = 0;
                continue;
            } else if a.ty == T::LeftBrace && b.ty == T::Bareword {
                // MySQL's "{ ``" is too odd to parse: evil
                if b.len == 0 {
                    self.set_ty(left + 1, T::Evil);
                    return left + 2;
                }
                // ODBC's {foo expr} → expr
                left = 0;
                pos = pos.saturating_sub(2);
                continue;
            } else if b.ty == T::RightBrace {
                pos = pos.saturating_sub(1);
                left = 0;
                continue;
            }

            // No two-token fold: get a third token.
            while more && pos <= MAX_TOKENS && pos.wrapping_sub(left) < 3 {
                more = self.tokenize_into(pos);
                if more {
                    if self.ty(pos) == T::Comment {
                        last_comment = self.tok(pos);
                    } else {
                        last_comment.ty = T::None;
                        pos += 1;
                    }
                }
            }
            if pos.wrapping_sub(left) < 3 {
                left = pos;
                continue;
            }

            let (a, b, c) = (self.tok(left), self.tok(left + 1), self.tok(left + 2));
            if a.ty == T::Number && b.ty == T::Operator && c.ty == T::Number {
                pos = pos.saturating_sub(2);
                left = 0;
                continue;
            } else if a.ty == T::Operator && b.ty != T::LeftParens && c.ty == T::Operator {
                left = 0;
                pos = pos.saturating_sub(2);
                continue;
            } else if a.ty == T::LogicOperator && c.ty == T::LogicOperator {
                pos = pos.saturating_sub(2);
                left = 0;
                continue;
            } else if a.ty == T::Variable
                && b.ty == T::Operator
                && matches!(c.ty, T::Variable | T::Number | T::Bareword)
            {
                pos = pos.saturating_sub(2);
                left = 0;
                continue;
            } else if matches!(a.ty, T::Bareword | T::Number)
                && b.ty == T::Operator
                && matches!(c.ty, T::Number | T::Bareword)
            {
                pos = pos.saturating_sub(2);
                left = 0;
                continue;
            } else if matches!(a.ty, T::Bareword | T::Number | T::Variable | T::String)
                && b.ty == T::Operator
                && b.c_str() == b"::"
                && c.ty == T::SqlType
            {
                pos = pos.saturating_sub(2);
                left = 0;
                continue;
            } else if matches!(a.ty, T::Bareword | T::Number | T::String | T::Variable)
                && b.ty == T::Comma
                && matches!(c.ty, T::Number | T::Bareword | T::String | T::Variable)
            {
                pos = pos.saturating_sub(2);
                left = 0;
                continue;
            } else if matches!(a.ty, T::Expression | T::Group | T::Comma)
                && b.is_unary_op()
                && c.ty == T::LeftParens
            {
                // SELECT + (, LIMIT + (: drop the unary operator
                self.copy_tok(left + 1, left + 2);
                pos = pos.saturating_sub(1);
                left = 0;
                continue;
            } else if matches!(a.ty, T::Keyword | T::Expression | T::Group)
                && b.is_unary_op()
                && matches!(
                    c.ty,
                    T::Number | T::Bareword | T::Variable | T::String | T::Function
                )
            {
                // select - 1
                self.copy_tok(left + 1, left + 2);
                pos = pos.saturating_sub(1);
                left = 0;
                continue;
            } else if a.ty == T::Comma
                && b.is_unary_op()
                && matches!(c.ty, T::Number | T::Bareword | T::Variable | T::String)
            {
                // ", -1" → ",1", and back up: "1,-1" → "1"
                self.copy_tok(left + 1, left + 2);
                left = 0;
                pos = pos.saturating_sub(3);
                continue;
            } else if a.ty == T::Comma && b.is_unary_op() && c.ty == T::Function {
                // 1,-sin(1) → 1,sin(1)
                self.copy_tok(left + 1, left + 2);
                pos = pos.saturating_sub(1);
                left = 0;
                continue;
            } else if a.ty == T::Bareword && b.ty == T::Dot && c.ty == T::Bareword {
                // database.table: ignore the ".n"
                pos = pos.saturating_sub(2);
                left = 0;
                continue;
            } else if a.ty == T::Expression && b.ty == T::Dot && c.ty == T::Bareword {
                // select . `foo` → select `foo`
                self.copy_tok(left + 1, left + 2);
                pos = pos.saturating_sub(1);
                left = 0;
                continue;
            } else if a.ty == T::Function
                && b.ty == T::LeftParens
                && c.ty != T::RightParens
                && eq_upper(b"USER", a.value())
            {
                // USER() takes no arguments: USER(foo) is not the function
                self.set_ty(left, T::Bareword);
            }

            // No fold: the left-most token is final.
            left += 1;
        }

        // With 4 or fewer tokens, a trailing comment is added back.
        if left < MAX_TOKENS && last_comment.ty == T::Comment {
            if let Some(t) = self.tokens.get_mut(left) {
                *t = last_comment;
            }
            left += 1;
        }
        // A 6th token may have been read to type the 5th.
        left.min(MAX_TOKENS)
    }

    /// `libinjection_sqli_fingerprint`: folds the input read in `quote`/`dialect` context.
    pub(crate) fn fingerprint(&mut self, quote: Quote, dialect: Dialect) -> &[u8] {
        // libinjection_sqli_reset
        *self = State::new(self.s, quote, dialect);
        let tlen = self.fold();

        // PHP's magic backquote comment: an unclosed, empty trailing `…
        if tlen > 2 {
            if let Some(t) = self.tokens.get_mut(tlen - 1) {
                if t.ty == TokenType::Bareword
                    && t.str_open == b'`'
                    && t.len == 0
                    && t.str_close == 0
                {
                    t.ty = TokenType::Comment;
                }
            }
        }
        for i in 0..tlen {
            let b = self.ty(i) as u8;
            if let Some(f) = self.fingerprint.get_mut(i) {
                *f = b;
            }
        }
        // a C string: up to the first NUL
        self.fp_len = self
            .fingerprint
            .iter()
            .take(tlen)
            .take_while(|&&c| c != 0)
            .count();

        // 'X': the input could not be parsed consistently
        if self.fp().contains(&b'X') {
            self.fingerprint = [0; 8];
            self.fingerprint[0] = b'X';
            self.fp_len = 1;
            self.tokens[0].val = [0; TOKEN_SIZE];
            self.tokens[0].ty = TokenType::Evil;
            self.tokens[0].val[0] = b'X';
            self.tokens[1].ty = TokenType::None;
        }
        self.fp()
    }

    pub(crate) fn fp(&self) -> &[u8] {
        self.fingerprint.get(..self.fp_len).unwrap_or(&[])
    }

    /// `libinjection_sqli_blacklist`: "0" + the upper-cased fingerprint is a known one.
    fn blacklist(&self) -> bool {
        let fp = self.fp();
        if fp.is_empty() {
            return false;
        }
        let mut fp2 = [0u8; 8];
        fp2[0] = b'0';
        for (d, s) in fp2.iter_mut().skip(1).zip(fp) {
            *d = s.to_ascii_uppercase();
        }
        let key = fp2.get(..fp.len() + 1).unwrap_or(&[]);
        lookup_word(key) == Some(TokenType::Fingerprint)
    }

    /// `libinjection_sqli_not_whitelist`: true if SQLi; drops known false positives.
    fn not_whitelist(&self) -> bool {
        use TokenType as T;
        let fp = self.fp();
        let tlen = fp.len();
        let t0 = self.tok(0);
        let t1 = self.tok(1);

        // SQL Server's audit log hides anything with 'sp_password' in it.
        if tlen > 1
            && fp.get(tlen - 1) == Some(&(T::Comment as u8))
            && memmem(self.s, b"sp_password").is_some()
        {
            return true;
        }

        match tlen {
            2 => {
                // "very small SQLi", hard to tell from normal input
                if fp.get(1) == Some(&(T::Union as u8)) {
                    // "1 union" alone is normal text; with folding or comments it is not
                    return self.stats_tokens != 2;
                }
                // '#' comments: too many false positives
                if t1.first() == b'#' {
                    return false;
                }
                // 'nc': only /* comments are SQL
                if t0.ty == T::Bareword && t1.ty == T::Comment && t1.first() != b'/' {
                    return false;
                }
                if t0.ty == T::Number && t1.ty == T::Comment && t1.first() == b'/' {
                    return true;
                }
                // "1c": the number must really end at whitespace, "/*" or "--" in the
                // original input (base64-ish values like 1234-ABCDEF-- are not SQLi).
                if t0.ty == T::Number && t1.ty == T::Comment {
                    if self.stats_tokens > 2 {
                        return true;
                    }
                    let ch = self.at(t0.len);
                    // signed `char` in the C: bytes >= 0x80 count as <= 32
                    if (ch as i8) <= 32 {
                        return true;
                    }
                    let next = self.at(t0.len + 1);
                    if (ch == b'/' && next == b'*') || (ch == b'-' && next == b'-') {
                        return true;
                    }
                    return false;
                }
                // "--" followed by text is common in plain text
                if t1.len > 2 && t1.first() == b'-' {
                    return false;
                }
            }
            3 => {
                if fp == b"sos" || fp == b"s&s" {
                    // ...foo" + "bar...: neither quote opened nor closed here
                    let t2 = self.tok(2);
                    return t0.str_open == 0 && t2.str_close == 0 && t0.str_close == t2.str_open;
                } else if matches!(fp, b"s&n" | b"n&1" | b"1&1" | b"1&v" | b"1&s") {
                    // 'sexy and 17' is not SQLi, 'sexy and 17<18' is
                    if self.stats_tokens == 3 {
                        return false;
                    }
                } else if t1.ty == T::Keyword {
                    // only INTO OUTFILE / INTO DUMPFILE
                    let into = t1.value().get(..4).is_some_and(|p| eq_upper(b"INTO", p));
                    if t1.len < 5 || !into {
                        return false;
                    }
                }
            }
            _ => {}
        }
        true
    }

    /// `libinjection_sqli_check_fingerprint`.
    pub(crate) fn check_fingerprint(&self) -> bool {
        self.blacklist() && self.not_whitelist()
    }

    fn reparse_as_mysql(&self) -> bool {
        self.stats_comment_ddx > 0 || self.stats_comment_hash > 0
    }

    /// `libinjection_is_sqli`: tries the input as-is, then as if it started inside a ' or "
    /// string, each also as MySQL when the ANSI reading saw a '#' or '--x' comment.
    pub(crate) fn is_sqli(&mut self) -> bool {
        if self.s.is_empty() {
            return false;
        }
        self.fingerprint(Quote::None, Dialect::Ansi);
        if self.check_fingerprint() {
            return true;
        } else if self.reparse_as_mysql() {
            self.fingerprint(Quote::None, Dialect::Mysql);
            if self.check_fingerprint() {
                return true;
            }
        }
        if self.s.contains(&b'\'') {
            self.fingerprint(Quote::Single, Dialect::Ansi);
            if self.check_fingerprint() {
                return true;
            } else if self.reparse_as_mysql() {
                self.fingerprint(Quote::Single, Dialect::Mysql);
                if self.check_fingerprint() {
                    return true;
                }
            }
        }
        if self.s.contains(&b'"') {
            self.fingerprint(Quote::Double, Dialect::Mysql);
            if self.check_fingerprint() {
                return true;
            }
        }
        false
    }
}
