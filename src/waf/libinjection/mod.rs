//! A Rust port of libinjection (<https://github.com/libinjection/libinjection>, version 4.0.0:
//! `libinjection_sqli.c` at commit 011cac91e9662131a9c7a19023e9d639dfafde2d, `libinjection_xss.c`
//! at 04508dabbe4acd2b3819bb9abb9d57ba00991525, `libinjection_html5.c` at
//! 07030021d1f25763dca0d529ccaa0efbc2e3ebdc; BSD-3-Clause, see `LICENSE` here), the detectors
//! behind SecLang's `@detectSQLi` and `@detectXSS`.
//!
//! Both are total functions of the input bytes: fixed-size state, no allocation, no panics
//! (every read is bounds-checked, the HTML tokenizer's mutual recursion is a loop), and the
//! C library's verdicts, including its quirks: `char` is signed as on x86 (a byte >= 0x80 after
//! a number counts as whitespace in the "1c" check; 0xFF ends an HTML tag like EOF), NUL is
//! white to the HTML tokenizer, event handler names are matched as prefixes.
//!
//! One deliberate difference: '[' opens an SQL Server [bracketed word] in every mode, as in
//! libinjection before 4.0.0 and in libinjection-go (Coraza's, which CRS's regression
//! tests run against); 4.0.0 reads it as '(' outside MySQL mode.

mod html5;
mod parser;
mod sqli;
mod sqli_data;
mod xss;
mod xss_events;

use sqli::{Dialect, Quote, State as SqliState};

/// A libinjection SQLi fingerprint: up to 5 token-type letters (e.g. `s&sos`, `1UEkn`), or `X`
/// for input that could not be parsed consistently.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint {
    bytes: [u8; 8],
    len: u8,
}

impl Fingerprint {
    fn new(fp: &[u8]) -> Fingerprint {
        let mut bytes = [0u8; 8];
        for (d, s) in bytes.iter_mut().zip(fp) {
            *d = *s;
        }
        Fingerprint {
            bytes,
            len: fp.len().min(8) as u8,
        }
    }

    pub fn as_str(&self) -> &str {
        let b = self.bytes.get(..usize::from(self.len)).unwrap_or(&[]);
        // token types are ASCII letters and punctuation
        core::str::from_utf8(b).unwrap_or("")
    }
}

impl core::fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Fingerprint({:?})", self.as_str())
    }
}

impl core::fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `libinjection_sqli(s, len, fingerprint)`: the fingerprint when the input is SQL injection.
pub fn detect_sqli(input: &[u8]) -> Option<Fingerprint> {
    let mut state = SqliState::new(input, Quote::None, Dialect::Ansi);
    state.is_sqli().then(|| Fingerprint::new(state.fp()))
}

/// `libinjection_xss(s, len)`: whether the input is XSS, read as HTML from the data state and
/// from inside an unquoted, single-, double- and back-quoted attribute value.
pub fn detect_xss(input: &[u8]) -> bool {
    xss::detect(input)
}

/// libinjection's test driver (src/testdriver.c) output, for tests against its test files.
#[doc(hidden)]
#[cfg(not(target_arch = "wasm32"))]
pub mod testing {
    use super::html5::{Html5, Start, TokenType as H5};
    use super::sqli::{Dialect, Quote, State, Token};

    /// `print_token`: the type letter, a space, the value (strings with their quotes,
    /// variables with their '@'s), a newline.
    fn print_token(out: &mut Vec<u8>, t: &Token) {
        out.push(t.ty as u8);
        out.push(b' ');
        let ty = t.ty as u8;
        if ty == b'v' {
            out.extend(std::iter::repeat_n(b'@', usize::from(t.count.min(2))));
        }
        if ty == b's' || ty == b'v' {
            out.extend((t.str_open != 0).then_some(t.str_open));
            out.extend_from_slice(t.c_str());
            out.extend((t.str_close != 0).then_some(t.str_close));
        } else {
            out.extend_from_slice(t.c_str());
        }
        out.push(b'\n');
    }

    /// `libinjection_sqli_fingerprint` in one context: `quote` is `'`, `"` or anything else
    /// for none; and whether that fingerprint passes the blacklist and whitelist.
    pub fn sqli_fingerprint(input: &[u8], quote: char, mysql: bool) -> (String, bool) {
        let quote = match quote {
            '\'' => Quote::Single,
            '"' => Quote::Double,
            _ => Quote::None,
        };
        let dialect = if mysql { Dialect::Mysql } else { Dialect::Ansi };
        let mut state = State::new(input, quote, dialect);
        let fp = String::from_utf8_lossy(state.fingerprint(quote, dialect)).into_owned();
        (fp, state.check_fingerprint())
    }

    /// Test type 0: every token (ANSI, no quote context).
    pub fn sqli_tokens(input: &[u8]) -> Vec<u8> {
        let mut state = State::new(input, Quote::None, Dialect::Ansi);
        let mut out = Vec::new();
        let mut t = Token::default();
        while state.tokenize(&mut t) {
            print_token(&mut out, &t);
        }
        out
    }

    /// Test type 1: the folded tokens.
    pub fn sqli_folded(input: &[u8]) -> Vec<u8> {
        let mut state = State::new(input, Quote::None, Dialect::Ansi);
        let n = state.fold();
        let mut out = Vec::new();
        for t in state.tokens.iter().take(n) {
            print_token(&mut out, t);
        }
        out
    }

    /// Test type 3: the HTML5 tokens from the data state, "TYPE,len,value".
    pub fn html5_tokens(input: &[u8]) -> Vec<u8> {
        let mut h5 = Html5::new(input, Start::Data);
        let mut out = Vec::new();
        while h5.next() {
            let name = match h5.token_type {
                H5::DataText => "DATA_TEXT",
                H5::TagNameOpen => "TAG_NAME_OPEN",
                H5::TagNameClose => "TAG_NAME_CLOSE",
                H5::TagNameSelfClose => "TAG_NAME_SELFCLOSE",
                H5::TagClose => "TAG_CLOSE",
                H5::AttrName => "ATTR_NAME",
                H5::AttrValue => "ATTR_VALUE",
                H5::TagComment => "TAG_COMMENT",
                H5::Doctype => "DOCTYPE",
            };
            out.extend_from_slice(format!("{name},{},", h5.token_len).as_bytes());
            let tok = h5.token();
            let end = tok.iter().position(|&c| c == 0).unwrap_or(tok.len());
            out.extend_from_slice(tok.get(..end).unwrap_or(&[]));
            out.push(b'\n');
        }
        out
    }
}
