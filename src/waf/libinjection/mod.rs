//! A Rust port of libinjection (<https://github.com/libinjection/libinjection>, version 4.0.0,
//! commit 011cac91e9662131a9c7a19023e9d639dfafde2d; BSD-3-Clause, see `LICENSE` here), the
//! detectors behind SecLang's `@detectSQLi` and `@detectXSS`.
//!
//! Both are total functions of the input bytes: no allocation beyond fixed-size state, no
//! panics (every read is bounds-checked), and the same verdict as the C library.

mod html5;
mod sqli;
mod sqli_data;
mod xss;
mod xss_events;

pub(crate) use sqli::{Dialect, Quote, State as SqliState};

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

/// The folded fingerprint of `input` read in one context, whether or not it is SQLi
/// (`libinjection_sqli_fingerprint`), for tests and diagnostics.
#[doc(hidden)]
pub fn sqli_fingerprint(input: &[u8], quote: char, mysql: bool) -> Fingerprint {
    let quote = match quote {
        '\'' => Quote::Single,
        '"' => Quote::Double,
        _ => Quote::None,
    };
    let dialect = if mysql { Dialect::Mysql } else { Dialect::Ansi };
    let mut state = SqliState::new(input, quote, dialect);
    Fingerprint::new(state.fingerprint(quote, dialect))
}

/// The tokens of `input` read in one context, each as libinjection's test files print them
/// (type letter, space, value), for tests.
#[doc(hidden)]
pub fn sqli_tokens(input: &[u8], quote: char, mysql: bool) -> Vec<String> {
    let quote = match quote {
        '\'' => Quote::Single,
        '"' => Quote::Double,
        _ => Quote::None,
    };
    let dialect = if mysql { Dialect::Mysql } else { Dialect::Ansi };
    let mut state = SqliState::new(input, quote, dialect);
    let mut out = Vec::new();
    let mut t = sqli::Token::default();
    while state.tokenize(&mut t) {
        out.push(format!(
            "{} {}",
            t.ty as u8 as char,
            String::from_utf8_lossy(t.value())
        ));
    }
    out
}
