//! Find-and-replace over a body: the `replacements` of `request-body-find-replace` and
//! `response-body-find-replace`. A `from` without `${}` is compiled with the policy; one with
//! `${}` is rendered per request and compiled through a small per-isolate cache, so a pattern
//! that repeats (the usual case: it depends on a header or a variable with few values) is
//! compiled once.

use super::Template;
use regex::bytes::{Regex, RegexBuilder};
use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

/// The most compiled program one pattern may take: patterns can come from request data
/// through `${}`, and a pathological one must not take the isolate's memory or time.
const REGEX_SIZE_LIMIT: usize = 1 << 20;
/// Patterns rendered at run time (possibly from request data) get less: one near this limit
/// grows to about 2.7 times it once searched, and the cache keeps [`CACHE_CAPACITY`] of them
/// (about 11 MiB at most).
const RUNTIME_SIZE_LIMIT: usize = 256 << 10;
/// Patterns rendered at run time kept compiled per isolate.
const CACHE_CAPACITY: usize = 16;
// The compiled size of a full cache, whatever requests send (searched, about 2.7 times this).
const _: () = assert!(CACHE_CAPACITY * RUNTIME_SIZE_LIMIT <= 4 << 20);
/// The largest body a rewrite may produce, the cap on a buffered body: every match replaced by
/// a long `to` (or `$0$0...`) would otherwise multiply the body past the isolate's memory.
pub const MAX_REWRITTEN: usize = crate::http::MAX_BUFFERED_BODY;

/// One `{from, to}` entry.
#[derive(Debug)]
pub struct Replacement {
    from: Pattern,
    to: Template,
}

#[derive(Debug)]
enum Pattern {
    Fixed(Regex),
    Rendered(Template),
}

/// What one replacement found: ngrok's `replacements[]` result entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    pub replacement_index: usize,
    /// The first match, as text (invalid UTF-8 replaced).
    pub matched_content: String,
}

/// Why a replacement could not run.
#[derive(Debug, Clone, PartialEq)]
pub enum FindReplaceError<E> {
    /// A `${}` in `from` or `to` failed (the renderer's error).
    Render(E),
    /// `from` rendered to something that is not a valid regular expression (`ERR_NGROK_3901`).
    BadPattern { pattern: String, reason: String },
    /// The rewritten body would be larger than [`MAX_REWRITTEN`].
    TooLarge { limit: usize },
}

/// Compiles a regular expression as the gateway runs it: RE2-compatible syntax (the `regex`
/// crate's), a bounded program size.
pub fn compile_regex(pattern: &str) -> Result<Regex, String> {
    build_regex(pattern, REGEX_SIZE_LIMIT)
}

fn build_regex(pattern: &str, limit: usize) -> Result<Regex, String> {
    RegexBuilder::new(pattern)
        .size_limit(limit)
        .dfa_size_limit(limit)
        .build()
        .map_err(|e| one_line(&e.to_string()))
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

impl Replacement {
    /// `from` and `to` as written; `Err` says why `from` is not a regular expression (the
    /// caller reports `ERR_NGROK_2261`).
    pub fn new(from: Template, to: Template) -> Result<Replacement, String> {
        let from = match from.literal() {
            Some(p) => Pattern::Fixed(compile_regex(p)?),
            None => Pattern::Rendered(from),
        };
        Ok(Replacement { from, to })
    }
}

thread_local! {
    static CACHE: RefCell<HashMap<String, Rc<Regex>>> = RefCell::new(HashMap::new());
}

/// A pattern rendered at run time, compiled once per isolate while it stays in the cache
/// (a full cache is emptied: simple, and a burst of distinct patterns cannot grow it).
fn cached_regex(pattern: &str) -> Result<Rc<Regex>, String> {
    if let Some(re) = CACHE.with(|c| c.borrow().get(pattern).cloned()) {
        return Ok(re);
    }
    let re = Rc::new(build_regex(pattern, RUNTIME_SIZE_LIMIT)?);
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if c.len() >= CACHE_CAPACITY {
            c.clear();
        }
        c.insert(pattern.to_string(), Rc::clone(&re));
    });
    Ok(re)
}

/// The body after the replacements (borrowed when nothing matched) and what matched.
pub type Rewritten<'b> = (Cow<'b, [u8]>, Vec<Found>);

/// Applies `replacements` in order, each to the result of the one before, every match
/// replaced. `render` renders a template (the exchange's scope). Returns the new body (borrowed
/// when nothing matched) and the first match of each replacement that matched.
pub fn apply<'b, E>(
    replacements: &[Replacement],
    body: &'b [u8],
    mut render: impl FnMut(&Template, &'static str) -> Result<String, E>,
) -> Result<Rewritten<'b>, FindReplaceError<E>> {
    let mut out: Cow<'b, [u8]> = Cow::Borrowed(body);
    let mut found = Vec::new();
    for (i, r) in replacements.iter().enumerate() {
        let rendered;
        let re: &Regex = match &r.from {
            Pattern::Fixed(re) => re,
            Pattern::Rendered(t) => {
                let pattern = render(t, "from").map_err(FindReplaceError::Render)?;
                rendered = cached_regex(&pattern)
                    .map_err(|reason| FindReplaceError::BadPattern { pattern, reason })?;
                &rendered
            }
        };
        let Some(first) = re.find(&out) else {
            continue;
        };
        found.push(Found {
            replacement_index: i,
            matched_content: String::from_utf8_lossy(first.as_bytes()).into_owned(),
        });
        let to = render(&r.to, "to").map_err(FindReplaceError::Render)?;
        let replaced = replace_all(re, &out, to.as_bytes(), MAX_REWRITTEN).ok_or(
            FindReplaceError::TooLarge {
                limit: MAX_REWRITTEN,
            },
        )?;
        out = Cow::Owned(replaced);
    }
    Ok((out, found))
}

/// `re.replace_all(input, to)`, giving up (`None`) as soon as the result passes `limit`.
fn replace_all(re: &Regex, input: &[u8], to: &[u8], limit: usize) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(input.len().min(limit));
    let mut last = 0;
    let mut push = |out: &mut Vec<u8>, start: usize, end: usize, expand: &dyn Fn(&mut Vec<u8>)| {
        out.extend_from_slice(&input[last..start]);
        expand(out);
        last = end;
        out.len() <= limit
    };
    if to.contains(&b'$') {
        for caps in re.captures_iter(input) {
            let Some(m) = caps.get(0) else { continue };
            if !push(&mut out, m.start(), m.end(), &|o| caps.expand(to, o)) {
                return None;
            }
        }
    } else {
        for m in re.find_iter(input) {
            if !push(&mut out, m.start(), m.end(), &|o| o.extend_from_slice(to)) {
                return None;
            }
        }
    }
    out.extend_from_slice(&input[last..]);
    (out.len() <= limit).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(from: &str, to: &str) -> Replacement {
        Replacement::new(
            Template::compile(from).unwrap(),
            Template::compile(to).unwrap(),
        )
        .unwrap()
    }

    fn literal(t: &Template, _: &'static str) -> Result<String, ()> {
        Ok(t.literal().unwrap_or("PATTERN").to_string())
    }

    #[test]
    fn in_order_all_matches_with_groups() {
        let reps = [
            r("error_code: ([0-9]+)", "code=$1"),
            r("code=", "c:"),
            r("none", "x"),
        ];
        let (out, found) = apply(&reps, b"error_code: 12, error_code: 7", literal).unwrap();
        assert_eq!(&*out, b"c:12, c:7");
        assert_eq!(
            found,
            vec![
                Found {
                    replacement_index: 0,
                    matched_content: "error_code: 12".into()
                },
                Found {
                    replacement_index: 1,
                    matched_content: "code=".into()
                },
            ]
        );
    }

    #[test]
    fn empty_to_deletes_and_no_match_borrows() {
        let (out, _) = apply(&[r("secret-[a-z]+ ?", "")], b"a secret-xyz b", literal).unwrap();
        assert_eq!(&*out, b"a b");
        let (out, found) = apply(&[r("zzz", "y")], b"abc", literal).unwrap();
        assert!(matches!(out, Cow::Borrowed(_)) && found.is_empty());
    }

    #[test]
    fn binary_bodies_do_not_panic() {
        let body = [0xff, 0xfe, b'a', 0x00, b'a'];
        let (out, found) = apply(&[r("a", "b")], &body, literal).unwrap();
        assert_eq!(&*out, &[0xff, 0xfe, b'b', 0x00, b'b']);
        assert_eq!(found[0].matched_content, "a");
    }

    /// Every match replaced by a long `to` (one rendered from a header, say) must not grow the
    /// body without bound: 64 KiB of matches times 1 KiB would be 64 MiB, past the isolate's
    /// memory. It stops at the buffered-body cap instead.
    #[test]
    fn a_rewrite_past_the_body_cap_is_an_error() {
        let long = "b".repeat(1024);
        let body = vec![b'a'; 64 << 10];
        let e = apply(&[r("a", &long)], &body, literal).unwrap_err();
        assert_eq!(
            e,
            FindReplaceError::TooLarge {
                limit: MAX_REWRITTEN
            }
        );
        let e = apply(&[r("a", "$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0$0")], &body, literal).unwrap_err();
        assert_eq!(
            e,
            FindReplaceError::TooLarge {
                limit: MAX_REWRITTEN
            }
        );
        // The same text as the regex crate's own replace_all, empty matches included.
        for (from, to, input) in [
            ("a*", "-", "baaac"),
            ("(a)|b", "[$1]", "abxba"),
            ("", "$0.", "héllo"),
            ("(?P<x>l+)", "${x}$$", "hello"),
        ] {
            let re = compile_regex(from).unwrap();
            let want = re.replace_all(input.as_bytes(), to.as_bytes()).into_owned();
            assert_eq!(
                replace_all(&re, input.as_bytes(), to.as_bytes(), usize::MAX),
                Some(want)
            );
        }
        // Up to the cap is fine, expansions included.
        let (out, _) = apply(&[r("(a)", "$1$1")], &body, literal).unwrap();
        assert_eq!(out.len(), 128 << 10);
    }

    /// As in `pattern.rs`: a pattern rendered from request data is compiled under a smaller
    /// budget than the policy's own, so a full cache stays far inside the isolate's memory.
    #[test]
    fn rendered_patterns_have_a_memory_budget() {
        assert!(compile_regex("(?:ab|cd|ef){3000}").is_ok());
        assert!(cached_regex("(?:ab|cd|ef){3000}").is_err());
        assert!(cached_regex("(?:ab|cd|ef){700}").is_ok());
    }

    #[test]
    fn rendered_patterns_are_checked_and_cached() {
        let bad = Replacement::new(
            Template::compile("${'('}").unwrap(),
            Template::compile("").unwrap(),
        )
        .unwrap();
        let e = apply(&[bad], b"x", |_, _| Ok::<_, ()>("(".into())).unwrap_err();
        assert!(matches!(e, FindReplaceError::BadPattern { .. }), "{e:?}");
        let a = cached_regex("ab+c").unwrap();
        let b = cached_regex("ab+c").unwrap();
        assert!(Rc::ptr_eq(&a, &b));
        assert!(Replacement::new(
            Template::compile("(").unwrap(),
            Template::compile("").unwrap()
        )
        .is_err());
    }
}
