//! SecLang's operators, with what each compiles kept per rule link and built on first use.

use super::program::{rx_builder, Expand, OperatorKind};
use crate::ipset::IpSet;
use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use regex::bytes::Regex;
use regex_automata::hybrid::dfa::{Cache, DFA};
use regex_automata::nfa::thompson::{self, WhichCaptures};
use regex_automata::util::syntax;
use regex_automata::Input;
use std::sync::{Mutex, OnceLock};

/// The compiled parts of one link's operator, built on first use.
#[derive(Default)]
pub(crate) struct LinkCache {
    /// Whether the regex matches: a forward lazy DFA, built the first time a value gets past
    /// the prefilter.
    test: OnceLock<Option<Test>>,
    /// The whole regex, for its capture groups: built the first time it matches (or when the
    /// DFA gives up).
    regex: OnceLock<Option<Regex>>,
    /// The regex's prefilter literals (for values the shared scan does not cover), or `@pm`'s
    /// phrases.
    phrases: OnceLock<Option<AhoCorasick>>,
    ips: OnceLock<IpSet>,
    /// The regex's prefilter literals, or `@pm`'s phrases, in the rule set's shared automaton,
    /// as (word, mask) pairs over the scan's bitset: a link's literals were numbered together,
    /// so they share a few words.
    pub(crate) lits: Box<[(u32, u64)]>,
}

/// What a matching operator captured (`TX:0`.. when the rule has `capture`).
#[derive(Debug, Default)]
pub(crate) struct OpOutcome {
    pub captures: Vec<Vec<u8>>,
}

/// Each regex's lazy-DFA cache: the crate's default (2 MiB) times CRS's ~300 regexes would
/// outgrow a Worker's 128 MB as varied traffic fills the caches; at this size a full cache is
/// cleared and refilled (or the search falls back to the NFA), bounding all of them to ~40 MB.
const DFA_CACHE_LIMIT: usize = 128 << 10;

pub(crate) fn compile_regex(pattern: &str) -> Option<Regex> {
    // ModSecurity v3 compiles with PCRE2_DOTALL | PCRE2_MULTILINE (Coraza prefixes `(?sm)`).
    rx_builder(pattern)
        .dot_matches_new_line(true)
        .multi_line(true)
        .dfa_size_limit(DFA_CACHE_LIMIT)
        .build()
        .ok()
}

/// A forward lazy DFA and its cache (one per regex: a Worker runs one request at a time per
/// isolate, so the lock is never contended).
struct Test {
    dfa: DFA,
    cache: Mutex<Cache>,
}

/// The DFA that says whether `pattern` matches, compiled as [`compile_regex`] compiles it.
fn compile_test(pattern: &str) -> Option<Test> {
    let dfa = DFA::builder()
        .syntax(
            syntax::Config::new()
                .unicode(false)
                .utf8(false)
                .dot_matches_new_line(true)
                .multi_line(true),
        )
        .thompson(
            thompson::Config::new()
                .utf8(false)
                .nfa_size_limit(Some(super::program::RX_SIZE_LIMIT))
                .which_captures(WhichCaptures::None),
        )
        .configure(
            DFA::config()
                .cache_capacity(DFA_CACHE_LIMIT)
                .skip_cache_capacity_check(true),
        )
        .build(pattern)
        .ok()?;
    let cache = Mutex::new(dfa.create_cache());
    Some(Test { dfa, cache })
}

impl Test {
    /// `None` when the DFA gives up (its cache cleared too often): the caller asks the regex.
    fn is_match(&self, value: &[u8]) -> Option<bool> {
        let mut cache = self.cache.lock().ok()?;
        self.dfa
            .try_search_fwd(&mut cache, &Input::new(value).earliest(true))
            .ok()
            .map(|m| m.is_some())
    }
}

pub(crate) fn dfa_matches(pattern: &str, values: &[Vec<u8>]) -> Option<Vec<Option<bool>>> {
    let test = compile_test(pattern)?;
    Some(values.iter().map(|v| test.is_match(v)).collect())
}

fn phrases(list: &[String]) -> Option<AhoCorasick> {
    AhoCorasickBuilder::new()
        .ascii_case_insensitive(true)
        .match_kind(MatchKind::LeftmostFirst)
        .build(list)
        .ok()
}

impl LinkCache {
    /// Whether a value's literal hits include one of this link's literals.
    pub(crate) fn hit(&self, hits: &[u64]) -> bool {
        self.lits
            .iter()
            .any(|&(word, mask)| hits.get(word as usize).is_some_and(|w| w & mask != 0))
    }

    /// Compiles what the operator needs now; false when it does not compile.
    pub(crate) fn prepare(&self, op: &OperatorKind) -> bool {
        match op {
            OperatorKind::Rx { pattern, prefilter } => {
                if let Some(p) = prefilter {
                    self.phrases.get_or_init(|| phrases(p));
                }
                self.test.get_or_init(|| compile_test(pattern)).is_some()
                    && self.regex.get_or_init(|| compile_regex(pattern)).is_some()
            }
            OperatorKind::Pm(list) => self.phrases.get_or_init(|| phrases(list)).is_some(),
            _ => true,
        }
    }
}

/// Runs an operator on one (transformed) value; `Some` when it matches. `expand` renders a
/// parameter's macros against the transaction. `prefiltered` is the shared scan's answer for
/// a regex's literals or `@pm`'s phrases when the engine has it (`None`: this link scans the
/// value itself).
pub(crate) fn run_operator(
    op: &OperatorKind,
    cache: &LinkCache,
    value: &[u8],
    capture: bool,
    prefiltered: Option<bool>,
    expand: &dyn Fn(&Expand) -> String,
) -> Option<OpOutcome> {
    let yes = || Some(OpOutcome::default());
    let when = |b: bool| if b { yes() } else { None };
    match op {
        OperatorKind::Rx { pattern, prefilter } => {
            match (prefiltered, prefilter) {
                (Some(false), _) => return None,
                (Some(true), _) | (None, None) => {}
                (None, Some(p)) => {
                    let ac = cache.phrases.get_or_init(|| phrases(p)).as_ref();
                    if ac.is_some_and(|ac| !ac.is_match(value)) {
                        return None;
                    }
                }
            }
            // Most values a regex sees do not match it: the forward DFA says so, and only a
            // match (or a DFA that gave up) pays for the whole regex.
            let matched = cache
                .test
                .get_or_init(|| compile_test(pattern))
                .as_ref()
                .and_then(|t| t.is_match(value));
            match (matched, capture) {
                (Some(false), _) => return None,
                (Some(true), false) => return yes(),
                _ => {}
            }
            let re = cache
                .regex
                .get_or_init(|| compile_regex(pattern))
                .as_ref()?;
            if matched.is_none() && !re.is_match(value) {
                return None;
            }
            if capture {
                let caps = re.captures(value)?;
                Some(OpOutcome {
                    captures: caps
                        .iter()
                        .take(10)
                        .map(|m| m.map(|m| m.as_bytes().to_vec()).unwrap_or_default())
                        .collect(),
                })
            } else {
                yes()
            }
        }
        OperatorKind::Pm(list) => {
            if prefiltered == Some(false) {
                return None;
            }
            let ac = cache.phrases.get_or_init(|| phrases(list)).as_ref()?;
            let m = ac.find(value)?;
            Some(OpOutcome {
                captures: vec![value.get(m.start()..m.end()).unwrap_or_default().to_vec()],
            })
        }
        OperatorKind::Eq(p) => when(atoi(value) == atoi(expand(p).as_bytes())),
        OperatorKind::Ge(p) => when(atoi(value) >= atoi(expand(p).as_bytes())),
        OperatorKind::Gt(p) => when(atoi(value) > atoi(expand(p).as_bytes())),
        OperatorKind::Le(p) => when(atoi(value) <= atoi(expand(p).as_bytes())),
        OperatorKind::Lt(p) => when(atoi(value) < atoi(expand(p).as_bytes())),
        OperatorKind::StrEq(p) => when(value == expand(p).as_bytes()),
        OperatorKind::Contains(p) => {
            let p = expand(p);
            when(find(value, p.as_bytes()))
        }
        OperatorKind::BeginsWith(p) => when(value.starts_with(expand(p).as_bytes())),
        OperatorKind::EndsWith(p) => when(value.ends_with(expand(p).as_bytes())),
        OperatorKind::Within(p) => {
            let p = expand(p);
            when(find(p.as_bytes(), value))
        }
        OperatorKind::ValidateByteRange(ranges) => when(
            value
                .iter()
                .any(|b| !ranges.iter().any(|(lo, hi)| (*lo..=*hi).contains(b))),
        ),
        OperatorKind::ValidateUrlEncoding => when(bad_url_encoding(value)),
        OperatorKind::ValidateUtf8Encoding => when(std::str::from_utf8(value).is_err()),
        OperatorKind::IpMatch(list) => {
            let set = cache.ips.get_or_init(|| {
                let mut s = IpSet::default();
                for ip in list {
                    // A bad entry was refused by the compiler; here it can only be skipped.
                    let _ = s.insert(ip);
                }
                s
            });
            let ip = std::str::from_utf8(value).ok()?.trim().parse().ok()?;
            when(set.lookup(ip).is_some())
        }
        OperatorKind::DetectSqli => {
            // ModSecurity puts the fingerprint in TX:0.
            let fp = super::libinjection::detect_sqli(value)?;
            Some(OpOutcome {
                captures: vec![fp.as_str().as_bytes().to_vec()],
            })
        }
        OperatorKind::DetectXss => when(super::libinjection::detect_xss(value)),
        OperatorKind::UnconditionalMatch => yes(),
        OperatorKind::NoMatch => None,
    }
}

/// C's `atoi`, as ModSecurity reads numbers: leading space, a sign, digits; otherwise 0.
pub(crate) fn atoi(s: &[u8]) -> i64 {
    let s = s.trim_ascii_start();
    let (neg, digits) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let mut n: i64 = 0;
    for &d in digits.iter().take_while(|d| d.is_ascii_digit()) {
        n = n.saturating_mul(10).saturating_add(i64::from(d - b'0'));
    }
    if neg {
        -n
    } else {
        n
    }
}

fn find(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

/// `@validateUrlEncoding`: a `%` not followed by two hex digits.
fn bad_url_encoding(v: &[u8]) -> bool {
    let mut i = 0;
    while i < v.len() {
        if v[i] == b'%' {
            match (v.get(i + 1), v.get(i + 2)) {
                (Some(a), Some(b)) if a.is_ascii_hexdigit() && b.is_ascii_hexdigit() => i += 3,
                _ => return true,
            }
        } else {
            i += 1;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(op: OperatorKind, v: &str) -> bool {
        let cache = LinkCache::default();
        run_operator(&op, &cache, v.as_bytes(), false, None, &|e| {
            e.0.iter()
                .map(|p| match p {
                    super::super::program::Piece::Text(t) => t.clone(),
                    _ => String::new(),
                })
                .collect()
        })
        .is_some()
    }

    fn run_bytes(op: OperatorKind, v: &[u8]) -> bool {
        run_operator(&op, &LinkCache::default(), v, false, None, &|_| {
            String::new()
        })
        .is_some()
    }

    fn text(s: &str) -> Expand {
        Expand(vec![super::super::program::Piece::Text(s.into())])
    }

    #[test]
    fn operators_follow_modsecurity() {
        assert!(run(OperatorKind::Eq(text("0")), "abc"), "atoi of text is 0");
        assert!(run(OperatorKind::Ge(text("3")), " 12x"));
        assert!(!run(OperatorKind::Lt(text("-1")), "0"));
        assert!(run(OperatorKind::Within(text("GET HEAD POST")), "HEAD"));
        assert!(!run(OperatorKind::Within(text("GET HEAD POST")), "PUT"));
        assert!(run(
            OperatorKind::Pm(vec!["Select".into(), "union".into()]),
            "x UNION y"
        ));
        assert!(run(
            OperatorKind::ValidateByteRange(vec![(32, 126)]),
            "a\tb"
        ));
        assert!(!run(
            OperatorKind::ValidateByteRange(vec![(32, 126)]),
            "a b"
        ));
        assert!(run(OperatorKind::ValidateUrlEncoding, "a%zz"));
        assert!(run(OperatorKind::ValidateUrlEncoding, "a%2"));
        assert!(!run(OperatorKind::ValidateUrlEncoding, "a%2f"));
        assert!(!run(OperatorKind::ValidateUtf8Encoding, "\u{e9}"));
        assert!(run_bytes(OperatorKind::ValidateUtf8Encoding, b"\xc3"));
        assert!(run(
            OperatorKind::IpMatch(vec!["10.0.0.0/8".into()]),
            "10.2.3.4"
        ));
        assert!(!run(
            OperatorKind::IpMatch(vec!["10.0.0.0/8".into()]),
            "11.2.3.4"
        ));
        let rx = |p: &str, pre: Option<Vec<String>>| OperatorKind::Rx {
            pattern: p.into(),
            prefilter: pre,
        };
        assert!(run(rx("(?i)union\\s+select", None), "1 UNION  SELECT"));
        assert!(run(rx("a.b", None), "a\nb"), "dot matches newline");
        assert!(
            !run(rx("x", Some(vec!["zz".into()])), "x"),
            "a prefilter that does not hold skips the regex"
        );
    }
}
