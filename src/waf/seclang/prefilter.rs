//! A regex's prefilter: lowercase literals one of which every match contains, so the runtime can
//! skip the regex when none occurs in the ASCII-lowercased value.
//!
//! Read from `regex-syntax`'s HIR, parsed with the runtime's flags ([`program::rx_builder`]).
//! For every node we know, where we can, the exact set of (lowercased) strings it matches, and a
//! set of literals one of which every match contains (`required`). A concatenation's required
//! set is the best of its parts' sets and of the products of its runs of exact parts; an
//! alternation's is the union of its branches'. Soundness first: whenever a node could match
//! without any literal (an empty string possible, a set too large), it has no required set, and
//! the regex gets `None` and always runs.
//!
//! [`program::rx_builder`]: crate::waf::program::rx_builder

use regex_syntax::hir::{Class, Hir, HirKind};
use std::collections::BTreeSet;

/// At most this many literals in an exact set, a product or a concatenation's candidate.
const MAX_LITERALS: usize = 64;
/// At most this many in an alternation's union of required sets (CRS's lists of commands and
/// functions): a union grows linearly, and every literal shares the one automaton.
const MAX_UNION: usize = 1024;
/// A union too large is cut to prefixes no shorter than this: a set of one- or two-letter
/// prefixes fires on nearly every value of ordinary traffic, which costs more than the regex.
const MIN_CUT: usize = 3;
/// Classes larger than this are not enumerated.
const MAX_CLASS: usize = 256;

type Set = BTreeSet<Vec<u8>>;

struct Info {
    /// Every string the node can match, lowercased.
    exact: Option<Set>,
    /// Literals one of which every match contains: non-empty, no empty literal.
    required: Option<Set>,
}

/// The prefilter for `pattern`, or `None` when there is none we are sure of, or none worth
/// its cost: a single letter, digit or space occurs in most values, so a set with one only
/// adds the scan's matches to a regex it cannot spare.
pub fn literals(pattern: &str) -> Option<Vec<String>> {
    let set = required(pattern)?;
    let common = |l: &String| l.len() == 1 && (l.as_bytes()[0].is_ascii_alphanumeric() || l == " ");
    (!set.iter().any(common)).then_some(set)
}

/// The literals one of which every match of `pattern` contains, or `None`.
fn required(pattern: &str) -> Option<Vec<String>> {
    let hir = regex_syntax::ParserBuilder::new()
        .unicode(false)
        .utf8(false)
        .build()
        .parse(pattern)
        .ok()?;
    let set = minimal(analyze(&hir).required?);
    let mut out = Vec::with_capacity(set.len());
    for lit in set {
        out.push(String::from_utf8(lit).ok()?);
    }
    Some(out)
}

fn analyze(hir: &Hir) -> Info {
    match hir.kind() {
        HirKind::Empty | HirKind::Look(_) => exact(Some(Set::from([Vec::new()]))),
        HirKind::Literal(lit) => exact(Some(Set::from([lit.0.to_ascii_lowercase()]))),
        HirKind::Class(class) => exact(class_members(class)),
        HirKind::Capture(cap) => analyze(&cap.sub),
        HirKind::Repetition(rep) => {
            let sub = analyze(&rep.sub);
            let exact_set = match (rep.min, rep.max) {
                (0, Some(0)) => Some(Set::from([Vec::new()])),
                (0, Some(1)) => sub.exact.as_ref().and_then(|e| {
                    let mut e = e.clone();
                    e.insert(Vec::new());
                    capped(e)
                }),
                (n, Some(m)) if n == m && n <= 8 => sub.exact.as_ref().and_then(|e| {
                    (0..n).try_fold(Set::from([Vec::new()]), |acc, _| product(&acc, e))
                }),
                _ => None,
            };
            let mut info = exact(exact_set);
            if rep.min >= 1 {
                info.required = best([info.required.take(), sub.required]);
            }
            info
        }
        HirKind::Concat(parts) => {
            let infos: Vec<Info> = parts.iter().map(analyze).collect();
            let whole = infos.iter().try_fold(Set::from([Vec::new()]), |acc, i| {
                product(&acc, i.exact.as_ref()?)
            });
            let mut candidates: Vec<Option<Set>> = Vec::new();
            for (i, info) in infos.iter().enumerate() {
                candidates.push(info.required.clone());
                // The runs of exact parts starting here: their product is matched whole.
                let mut acc = Set::from([Vec::new()]);
                for next in infos.get(i..).unwrap_or_default() {
                    let Some(p) = next.exact.as_ref().and_then(|e| product(&acc, e)) else {
                        break;
                    };
                    acc = p;
                    candidates.push(usable(acc.clone()));
                }
            }
            let mut info = exact(whole);
            candidates.push(info.required.take());
            info.required = best(candidates);
            info
        }
        HirKind::Alternation(branches) => {
            let infos: Vec<Info> = branches.iter().map(analyze).collect();
            // A branch that matches nothing (an empty class) adds nothing.
            let live = infos
                .iter()
                .filter(|i| !i.exact.as_ref().is_some_and(Set::is_empty));
            let mut exact_set = Some(Set::new());
            let mut required = Some(Set::new());
            for info in live {
                exact_set = match (exact_set, &info.exact) {
                    (Some(mut acc), Some(e)) => {
                        acc.extend(e.iter().cloned());
                        capped(acc)
                    }
                    _ => None,
                };
                required = match (required, &info.required) {
                    (Some(mut acc), Some(r)) => {
                        acc.extend(r.iter().cloned());
                        Some(acc)
                    }
                    _ => None,
                };
            }
            Info {
                required: best([
                    required.and_then(shrink),
                    exact_set.clone().and_then(usable),
                ]),
                exact: exact_set,
            }
        }
    }
}

/// A node with this exact set; its required set is the exact set when that is usable.
fn exact(set: Option<Set>) -> Info {
    Info {
        required: set.clone().and_then(usable),
        exact: set,
    }
}

/// A set every match must contain one of: non-empty, without the empty string, not too large.
fn usable(set: Set) -> Option<Set> {
    usable_up_to(set, MAX_LITERALS)
}

fn usable_up_to(set: Set, max: usize) -> Option<Set> {
    (!set.is_empty() && set.len() <= max && !set.contains(&Vec::new())).then_some(set)
}

/// A set too large made small enough by cutting its literals to a shorter prefix: a string
/// that contains a literal contains its prefix.
fn shrink(set: Set) -> Option<Set> {
    let fits = |s: Set| usable_up_to(s, MAX_UNION);
    if set.len() <= MAX_UNION {
        return fits(set);
    }
    let longest = set.iter().map(Vec::len).max().unwrap_or(0);
    (MIN_CUT..longest).rev().find_map(|k| {
        let cut: Set = set
            .iter()
            .map(|l| l.get(..k).unwrap_or(l).to_vec())
            .collect();
        fits(cut)
    })
}

fn capped(set: Set) -> Option<Set> {
    (set.len() <= MAX_LITERALS).then_some(set)
}

fn product(a: &Set, b: &Set) -> Option<Set> {
    if a.len().checked_mul(b.len())? > MAX_LITERALS {
        return None;
    }
    let mut out = Set::new();
    for x in a {
        for y in b {
            let mut s = x.clone();
            s.extend_from_slice(y);
            out.insert(s);
        }
    }
    Some(out)
}

/// The most selective candidate, by [`selectivity`]; literals must be text (the prefilter is a
/// list of strings).
fn best(candidates: impl IntoIterator<Item = Option<Set>>) -> Option<Set> {
    candidates
        .into_iter()
        .flatten()
        .filter(|s| s.iter().all(|l| std::str::from_utf8(l).is_ok()))
        .max_by_key(|s| (selectivity(s), std::cmp::Reverse(s.len())))
}

/// How rarely a set fires on ordinary traffic, roughly: its least selective literal (letters,
/// digits and the punctuation of URLs and forms count 1 a byte, other bytes 2), then each
/// doubling of the number of literals costs a quarter of a byte.
fn selectivity(set: &Set) -> i64 {
    let weight = |lit: &Vec<u8>| -> i64 {
        lit.iter()
            .map(|b| match b {
                b'a'..=b'z' | b'0'..=b'9' | b' ' | b'.' | b'/' | b'-' | b'_' | b'=' | b'&' => 1,
                b'%' | b',' | b'+' | b':' => 1,
                _ => 2,
            })
            .sum()
    };
    let least = set.iter().map(weight).min().unwrap_or(0);
    let doublings = i64::from(usize::BITS - set.len().saturating_sub(1).leading_zeros());
    4 * least - doublings
}

/// The lowercased members of a class, when there are few.
fn class_members(class: &Class) -> Option<Set> {
    let mut out = Set::new();
    match class {
        Class::Bytes(bytes) => {
            let size: usize = bytes
                .iter()
                .map(|r| usize::from(r.end() - r.start()) + 1)
                .sum();
            if size > MAX_CLASS {
                return None;
            }
            for r in bytes.iter() {
                for b in r.start()..=r.end() {
                    out.insert(vec![b.to_ascii_lowercase()]);
                }
            }
        }
        Class::Unicode(chars) => {
            let mut size = 0usize;
            for r in chars.iter() {
                size =
                    size.saturating_add((r.end() as usize).saturating_sub(r.start() as usize) + 1);
            }
            if size > MAX_CLASS {
                return None;
            }
            for r in chars.iter() {
                for c in r.start()..=r.end() {
                    let mut buf = [0u8; 4];
                    out.insert(c.encode_utf8(&mut buf).as_bytes().to_ascii_lowercase());
                }
            }
        }
    }
    capped(out)
}

/// Drops every literal that contains another: finding the shorter one is implied.
fn minimal(set: Set) -> Set {
    let all: Vec<&Vec<u8>> = set.iter().collect();
    let contains = |hay: &[u8], needle: &[u8]| {
        !needle.is_empty()
            && needle.len() < hay.len()
            && hay.windows(needle.len()).any(|w| w == needle)
    };
    set.iter()
        .filter(|lit| !all.iter().any(|other| contains(lit, other)))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lits(p: &str) -> Option<Vec<String>> {
        required(p)
    }

    fn v(items: &[&str]) -> Option<Vec<String>> {
        Some(items.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn required_literals() {
        assert_eq!(lits(r"(?i)union\s+select"), v(&["select"]));
        assert_eq!(
            lits(r"(?i:<script|javascript:)"),
            v(&["<script", "javascript:"])
        );
        assert_eq!(lits(r"\bSLEEP\s*\("), v(&["sleep"]));
        assert_eq!(lits(r"a(?:b|c)d"), v(&["abd", "acd"]));
        // Ten two-byte literals are no more selective than their common prefix.
        assert_eq!(lits(r"x[0-9]"), v(&["x"]));
        assert_eq!(lits(r"x[0-9]\(").map(|l| l.len()), Some(10));
        // The empty string would satisfy these: no prefilter.
        assert_eq!(lits(r"a?"), None);
        assert_eq!(lits(r".*"), None);
        assert_eq!(lits(r"foo|.*"), None);
        assert_eq!(lits(r"[^a]+"), None);
        assert_eq!(lits(r"(?:abc)*"), None);
        // Too many to enumerate: no prefilter.
        assert_eq!(lits(r"[^a]{3}"), None);
        // Sound, if weak: some letter.
        assert_eq!(lits(r"[a-z]{3}").map(|l| l.len()), Some(26));
        // A repetition needs at least one copy.
        assert_eq!(lits(r"(?:ab)+c?"), v(&["ab"]));
        // A list of words is its words; too many, their prefixes (never shorter than 3).
        let some: Vec<String> = (0..100).map(|i| format!("k{i:03}x")).collect();
        assert_eq!(lits(&some.join("|")).map(|l| l.len()), Some(100));
        let many: Vec<String> = (0..2000).map(|i| format!("k{i:04}x")).collect();
        let l = lits(&many.join("|")).expect("a prefilter");
        assert!(
            l.len() <= MAX_UNION && l.iter().all(|x| x.starts_with('k') && x.len() >= MIN_CUT),
            "{l:?}"
        );
        // Superstrings are implied by their substrings.
        assert_eq!(lits(r"ab|xaby"), v(&["ab"]));
    }

    #[test]
    fn a_prefilter_of_one_letter_is_none() {
        assert_eq!(literals(r"x[0-9]"), None);
        assert_eq!(literals(r"select|x"), None);
        assert_eq!(literals(r"[a-z]{3}"), None);
        assert_eq!(literals(r"'|select"), v(&["'", "select"]));
        assert_eq!(literals(r"(?i)union\s+select"), v(&["select"]));
    }

    /// A random regex over a small alphabet, with every construct the analysis treats apart.
    fn random_regex(rng: &mut fastrand::Rng, depth: u32) -> String {
        let leaf = |rng: &mut fastrand::Rng| {
            let leaves = [
                "a", "b", "A", "B", r"\.", "-", "[ab]", "[^a]", "[a-c]", r"\d", r"\w", ".", "^",
                "$", r"\b", "(?:)", "[Bb]",
            ];
            leaves[rng.usize(..leaves.len())].to_string()
        };
        if depth == 0 {
            return leaf(rng);
        }
        match rng.u8(..6) {
            0 => leaf(rng),
            1 => (0..rng.usize(2..4))
                .map(|_| random_regex(rng, depth - 1))
                .collect(),
            2 => {
                let branches: Vec<String> = (0..rng.usize(2..4))
                    .map(|_| random_regex(rng, depth - 1))
                    .collect();
                format!("(?:{})", branches.join("|"))
            }
            3 => {
                let ops = ["?", "*", "+", "{2}", "{1,2}", "{0,2}", "+?", "{2,}"];
                format!(
                    "(?:{}){}",
                    random_regex(rng, depth - 1),
                    ops[rng.usize(..ops.len())]
                )
            }
            4 => format!("(?i:{})", random_regex(rng, depth - 1)),
            _ => format!("({})", random_regex(rng, depth - 1)),
        }
    }

    #[test]
    fn random_regexes_never_match_without_their_prefilter() {
        let mut rng = fastrand::Rng::with_seed(7);
        let alphabet = b"aAbBc.-1 ";
        let mut with = 0;
        for _ in 0..3000 {
            let pattern = random_regex(&mut rng, 4);
            let Some(prefilter) = required(&pattern) else {
                continue;
            };
            with += 1;
            let re = crate::waf::program::rx_builder(&pattern)
                .build()
                .expect("compiles");
            for _ in 0..200 {
                let len = rng.usize(0..9);
                let s: Vec<u8> = (0..len)
                    .map(|_| alphabet[rng.usize(..alphabet.len())])
                    .collect();
                if re.is_match(&s) {
                    let low = s.to_ascii_lowercase();
                    assert!(
                        prefilter
                            .iter()
                            .any(|l| low.windows(l.len()).any(|w| w == l.as_bytes())),
                        "{pattern} matches {:?}, prefilter {prefilter:?}",
                        String::from_utf8_lossy(&s)
                    );
                }
            }
        }
        assert!(with > 500, "{with}");
    }
}
