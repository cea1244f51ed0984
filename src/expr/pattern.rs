//! Regex `from` / replacement `to` pairs (redirect, url-rewrite, the body find-replace actions).
//!
//! A `from` without `${}` is compiled once, with the policy (a bad one is `ERR_NGROK_2261`). A
//! `from` with `${}` can only be compiled per request, after interpolation (ngrok interpolates
//! first): those regexes go through a small per-isolate cache so a repeated value is compiled
//! once, and a bad one is `ERR_NGROK_3901`. A `to` is interpolated, then expanded: `$1`, `$name`,
//! `${1}`, `${name}` name capture groups, `$$` is a `$`.

use super::{CompileError, EvalError, Scope, Template};
use regex::{Regex, RegexBuilder};
use std::borrow::Cow;
use std::cell::RefCell;
use std::sync::Arc;

/// How much memory one regex compiled at run time may take (the regex crate's default is 10 MiB).
/// A regex near this limit grows to about 2.7 times it once searched (its search caches), and
/// the cache keeps [`CACHE_ENTRIES`] of them: about 11 MiB at most, whatever requests send.
const RUNTIME_SIZE_LIMIT: usize = 256 << 10;
/// The longest interpolated pattern compiled at run time.
const RUNTIME_MAX_LEN: usize = 4096;
/// Regexes compiled at run time kept per isolate.
const CACHE_ENTRIES: usize = 16;
// The compiled size of a full cache, whatever requests send (searched, about 2.7 times this).
const _: () = assert!(CACHE_ENTRIES * RUNTIME_SIZE_LIMIT <= 4 << 20);

/// A compiled regex, or why the text is not one.
type Compiled = Result<Arc<Regex>, String>;

thread_local! {
    // Most recently used first. Failures are kept too, so a bad value is not recompiled.
    // Regexes are shared (`Arc`), not cloned: a clone of a `Regex` starts with empty caches.
    static CACHE: RefCell<Vec<(String, Compiled)>> = const { RefCell::new(Vec::new()) };
}

/// A compiled `from`.
#[derive(Debug)]
pub struct Pattern {
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    Fixed(Arc<Regex>),
    Templated(Template),
}

/// Why a `from` could not be compiled with the policy.
#[derive(Debug, Clone, PartialEq)]
pub enum PatternError {
    /// A bad `${}` (ngrok's `ERR_NGROK_2224`).
    Template(CompileError),
    /// Not a valid regex (ngrok's `ERR_NGROK_2261`).
    Regex(String),
}

/// Why a `from` could not be made into a regex for this request.
#[derive(Debug, Clone, PartialEq)]
pub enum ResolveError {
    /// An interpolation failed (ngrok's `ERR_NGROK_3900`).
    Interpolation(EvalError),
    /// The interpolated text is not a valid regex (ngrok's `ERR_NGROK_3901`).
    Regex(String),
}

impl Pattern {
    pub fn compile(source: &str) -> Result<Pattern, PatternError> {
        let template = Template::compile(source).map_err(PatternError::Template)?;
        let kind = match template.literal() {
            Some(text) => Kind::Fixed(Arc::new(
                Regex::new(text).map_err(|e| PatternError::Regex(e.to_string()))?,
            )),
            None => Kind::Templated(template),
        };
        Ok(Pattern { kind })
    }

    /// The names of the capture groups, when the regex is known at compile time.
    fn group_names(&self) -> Option<Vec<&str>> {
        match &self.kind {
            Kind::Fixed(re) => Some(re.capture_names().flatten().collect()),
            Kind::Templated(_) => None,
        }
    }

    /// The regex for this request: the compiled one, or the interpolated text compiled (cached).
    pub fn resolve(&self, scope: &Scope) -> Result<Arc<Regex>, ResolveError> {
        match &self.kind {
            Kind::Fixed(re) => Ok(Arc::clone(re)),
            Kind::Templated(t) => {
                let text = t.render(scope).map_err(ResolveError::Interpolation)?;
                compile_cached(&text).map_err(ResolveError::Regex)
            }
        }
    }
}

/// A regex for CEL's `matches` (its pattern a literal or request data), through the cache.
pub(crate) fn cached_regex(text: &str) -> Compiled {
    compile_cached(text)
}

#[cfg(test)]
thread_local! {
    static COMPILES: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// How many regexes this thread compiled at run time (tests).
#[cfg(test)]
pub(crate) fn compiles() -> usize {
    COMPILES.with(std::cell::Cell::get)
}

/// Compiles a regex made at run time, at most once per distinct text while it stays in the
/// isolate's cache.
fn compile_cached(text: &str) -> Compiled {
    CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        if let Some(i) = cache.iter().position(|(k, _)| k == text) {
            let entry = cache.remove(i);
            let out = entry.1.clone();
            cache.insert(0, entry);
            return out;
        }
        #[cfg(test)]
        COMPILES.with(|c| c.set(c.get() + 1));
        let compiled = if text.len() > RUNTIME_MAX_LEN {
            Err(format!(
                "the pattern is longer than {RUNTIME_MAX_LEN} bytes"
            ))
        } else {
            RegexBuilder::new(text)
                .size_limit(RUNTIME_SIZE_LIMIT)
                .dfa_size_limit(RUNTIME_SIZE_LIMIT)
                .build()
                .map(Arc::new)
                .map_err(|e| e.to_string())
        };
        cache.truncate(CACHE_ENTRIES - 1);
        cache.insert(0, (text.to_string(), compiled.clone()));
        compiled
    })
}

/// A compiled `to`: interpolated, then expanded against the match.
#[derive(Debug)]
pub struct Replacement {
    template: Template,
}

impl Replacement {
    /// `${1}` (digits) is always a group reference; `${name}` is one when `from` is known at
    /// compile time and has a group of that name; any other `${...}` is CEL.
    pub fn compile(source: &str, from: Option<&Pattern>) -> Result<Replacement, CompileError> {
        let names = from.and_then(Pattern::group_names).unwrap_or_default();
        let is_group = |body: &str| {
            (!body.is_empty() && body.bytes().all(|b| b.is_ascii_digit())) || names.contains(&body)
        };
        Ok(Replacement {
            template: Template::compile_with_groups(source, &is_group)?,
        })
    }

    /// The replacement text with interpolations done. A `$` inside an interpolated value is
    /// escaped, so a value (a header, a query parameter) is never read as a group reference.
    pub fn render(&self, scope: &Scope) -> Result<String, EvalError> {
        match self.template.literal() {
            Some(text) => Ok(text.to_string()),
            None => self.template.render_escaped(scope, |v| {
                if v.contains('$') {
                    Cow::Owned(v.replace('$', "$$"))
                } else {
                    Cow::Borrowed(v)
                }
            }),
        }
    }
}

/// What replacing did: the new text, and the first match's groups (`[whole, $1, $2, ...]`,
/// empty strings for groups that did not take part).
#[derive(Debug, Clone, PartialEq)]
pub struct Replaced {
    pub text: String,
    pub matches: Vec<String>,
}

/// The longest URL a replacement may produce (Cloudflare takes URLs up to 16 KiB): every match
/// replaced by a long `to` would otherwise multiply the URL without bound.
pub const MAX_REPLACED: usize = 64 << 10;

/// A replacement gave up: the result would be longer than `limit` bytes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TooLong {
    pub limit: usize,
}

/// Replaces the first match (`all == false`) or every match of `re` in `input` with
/// `replacement` (expanded per match); `None` when nothing matches.
pub fn replace(
    re: &Regex,
    input: &str,
    replacement: &str,
    all: bool,
) -> Result<Option<Replaced>, TooLong> {
    let Some(first) = re.captures(input) else {
        return Ok(None);
    };
    let matches = first
        .iter()
        .map(|m| m.map_or(String::new(), |m| m.as_str().to_string()))
        .collect();
    let limit = MAX_REPLACED;
    let mut text = String::with_capacity(input.len().min(limit));
    let mut last = 0;
    for caps in re
        .captures_iter(input)
        .take(if all { usize::MAX } else { 1 })
    {
        let Some(m) = caps.get(0) else { continue };
        text.push_str(&input[last..m.start()]);
        caps.expand(replacement, &mut text);
        last = m.end();
        if text.len() > limit {
            return Err(TooLong { limit });
        }
    }
    text.push_str(&input[last..]);
    if text.len() > limit {
        return Err(TooLong { limit });
    }
    Ok(Some(Replaced { text, matches }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::{Headers, RequestHead};

    fn scope(url: &str) -> Scope {
        let mut h = Headers::new();
        h.set("x-v", "a$1b");
        let req = RequestHead::from_url("GET", url, h, "192.0.2.1".parse().unwrap()).unwrap();
        Scope::new(&req, None, None, Default::default())
    }

    #[test]
    fn fixed_and_templated_patterns() {
        let s = scope("https://a.example/api/v1/users?x=1");
        let p = Pattern::compile("/api/v1/").unwrap();
        assert!(matches!(p.kind, Kind::Fixed(_)));
        let re = p.resolve(&s).unwrap();
        let to = Replacement::compile("/api/v2/", Some(&p)).unwrap();
        let r = replace(
            &re,
            "https://a.example/api/v1/users",
            &to.render(&s).unwrap(),
            false,
        );
        assert_eq!(r.unwrap().unwrap().text, "https://a.example/api/v2/users");

        let p = Pattern::compile("${req.url.path}").unwrap();
        assert!(matches!(p.kind, Kind::Templated(_)));
        assert_eq!(p.resolve(&s).unwrap().as_str(), "/api/v1/users");
        // The same text again comes from the cache.
        assert_eq!(p.resolve(&s).unwrap().as_str(), "/api/v1/users");
    }

    #[test]
    fn compile_errors() {
        assert!(matches!(
            Pattern::compile("(unclosed"),
            Err(PatternError::Regex(_))
        ));
        assert!(matches!(
            Pattern::compile("${req.url.path"),
            Err(PatternError::Template(_))
        ));
        assert!(Replacement::compile("${1 +}", None).is_err());
    }

    #[test]
    fn runtime_regex_errors_are_cached_failures() {
        let s = scope("https://a.example/(x");
        let p = Pattern::compile("${req.url.path}").unwrap();
        assert!(matches!(p.resolve(&s), Err(ResolveError::Regex(_))));
        assert!(matches!(p.resolve(&s), Err(ResolveError::Regex(_))));
        let p = Pattern::compile("${req.headers['missing'][0]}").unwrap();
        assert!(matches!(p.resolve(&s), Err(ResolveError::Interpolation(_))));
    }

    #[test]
    fn groups_and_escaping() {
        let s = scope("https://a.example/v0/user/42/x");
        let p = Pattern::compile("v0/user/(?P<id>[0-9]+)").unwrap();
        let re = p.resolve(&s).unwrap();
        // `$1`, `${1}` and `${id}` are groups; `${req.host}` is CEL; a `$` from a value stays.
        let to = Replacement::compile(
            "v1/$1/${1}/${id}/${req.host}/${req.headers['x-v'][0]}",
            Some(&p),
        )
        .unwrap();
        let r = replace(
            &re,
            "https://a.example/v0/user/42/x",
            &to.render(&s).unwrap(),
            false,
        )
        .unwrap()
        .unwrap();
        assert_eq!(r.text, "https://a.example/v1/42/42/42/a.example/a$1b/x");
        assert_eq!(r.matches, vec!["v0/user/42", "42"]);
        // Without a known group named `id`, `${id}` is CEL (an unknown variable at run time).
        let to = Replacement::compile("${id}", None).unwrap();
        assert!(to.render(&s).is_err());
    }

    /// Every match of a URL replaced by a long `to` (rendered from a header, say): 8 KiB of
    /// matches times 1 KiB is 8 MiB of URL. It stops at the cap instead.
    #[test]
    fn a_replacement_past_the_url_cap_is_an_error() {
        let re = Regex::new("a").unwrap();
        let input = "a".repeat(8 << 10);
        let to = "b".repeat(1 << 10);
        let limit = MAX_REPLACED;
        assert_eq!(replace(&re, &input, &to, true), Err(TooLong { limit }));
        assert_eq!(
            replace(&re, &input, "$0$0$0$0$0$0$0$0$0", true),
            Err(TooLong { limit })
        );
        assert_eq!(
            replace(&re, &input, "$0$0", true)
                .unwrap()
                .unwrap()
                .text
                .len(),
            16 << 10
        );
        // The same text as the regex crate's own replace and replace_all.
        for (from, to, input) in [
            ("a*", "-", "baaac"),
            ("(a)|b", "[$1]", "abxba"),
            ("", ".", "hé"),
        ] {
            let re = Regex::new(from).unwrap();
            let all = replace(&re, input, to, true).unwrap().unwrap().text;
            assert_eq!(all, re.replace_all(input, to));
            let first = replace(&re, input, to, false).unwrap().unwrap().text;
            assert_eq!(first, re.replace(input, to));
        }
    }

    #[test]
    fn all_or_first() {
        let re = Regex::new("a").unwrap();
        let r = |all| replace(&re, "banana", "o", all).unwrap().unwrap().text;
        assert_eq!(r(true), "bonono");
        assert_eq!(r(false), "bonana");
        assert!(replace(&re, "xyz", "o", true).unwrap().is_none());
    }

    /// Patterns from request data are compiled and kept per isolate: a full cache of the
    /// largest one allowed must stay well inside a Worker's 128 MiB. `(?:ab|cd|ef){3000}` (18
    /// bytes) compiles to ~0.7 MiB and grows to ~2.6 MiB once searched, so 64 of those at a
    /// 1 MiB limit came to ~170 MiB; the run-time limit refuses it.
    #[test]
    fn run_time_patterns_have_a_memory_budget() {
        assert!(Regex::new("(?:ab|cd|ef){3000}").is_ok());
        assert!(compile_cached("(?:ab|cd|ef){3000}").is_err());
        assert!(compile_cached("(?:ab|cd|ef){700}").is_ok());
    }

    #[test]
    fn cache_is_bounded() {
        for i in 0..(CACHE_ENTRIES + 10) {
            compile_cached(&format!("x{i}")).unwrap();
        }
        CACHE.with(|c| assert_eq!(c.borrow().len(), CACHE_ENTRIES));
    }
}
