//! Rule dispatch that stays flat as routes grow (docs/dispatch.md).
//!
//! A phase is still run rule by rule, in document order; the index only tells the loop which
//! rules it may skip. At compile time each rule gets at most one *key*: a recognised request
//! test ([`Test`]: path equal / prefix, host, method, header value) that, when false, proves the
//! whole rule does not match **and raises no error**. That holds for a test in the rule's first
//! expression, or in a later one when every expression before it is made only of recognised
//! tests that never error (each then yields a bool without error, so evaluating the rule either
//! stops at one of them or reaches the key's expression, which is a `&&` chain holding a
//! `false`, hence `false`). Tests that may error (`getReqHeader('h')[0] == 'v'` with no `h`
//! header) make the rule a candidate whenever they would error, so CEL raises the error as before.
//! Rules without a key are always candidates.
//!
//! A candidate is evaluated as the plain loop would, expression by expression; the one
//! exception is an expression that is nothing but the key test when the lookup found the key
//! true (then CEL would yield `true` without error, so it is not evaluated again). A rule that
//! is not a candidate would have evaluated to "no match".
//!
//! The index is looked up with the request as the CEL scope sees it (its snapshot), and looked
//! up again whenever that snapshot changes (an action changed headers, the path, or result
//! variables: the exchange then drops its scope), so later rules see what earlier actions did.

use crate::expr::Test;
use crate::http::percent_decode;
use crate::http::RequestHead;
use crate::program::Rule;
use std::collections::HashMap;

/// Phases with fewer keyed rules than this run the plain loop: it is as fast there.
pub const MIN_KEYED: usize = 8;

/// Rule positions in document order.
type Positions = Vec<u32>;

/// The compiled index of one phase.
#[derive(Debug, Default)]
pub struct Dispatch {
    /// Rules without a key: always candidates.
    always: Positions,
    path_eq: HashMap<String, Positions>,
    path_prefix: HashMap<String, Positions>,
    /// The distinct lengths of `path_prefix`'s keys, ascending: a path is looked up once per
    /// length, however many prefixes there are.
    prefix_lens: Vec<usize>,
    host: HashMap<String, Positions>,
    method: HashMap<String, Positions>,
    /// By lower-case header name.
    headers: Vec<(String, HeaderIndex)>,
    /// By rule position: the expression that is only the rule's key test, if one is.
    key_alone: Vec<Option<usize>>,
}

#[derive(Debug, Default)]
struct HeaderIndex {
    /// Keyed on the header's first value.
    first: HashMap<String, Positions>,
    /// Keyed on any of its values.
    any: HashMap<String, Positions>,
    /// Rules whose key raises an error when the header is absent (candidates then).
    erring: Positions,
}

/// A test a rule may be keyed on.
#[derive(Debug, PartialEq)]
struct Eligible {
    test: Test,
    /// The expression it is in.
    expression: usize,
    /// Whether that expression is this test and nothing else.
    alone: bool,
}

/// The tests a rule may be keyed on: those of its first expression, and of each following one
/// while every expression before it never errors.
fn eligible_keys(rule: &Rule) -> Vec<Eligible> {
    let mut keys = Vec::new();
    for (expression, e) in rule.expressions.iter().enumerate() {
        let shape = e.shape();
        let alone = shape.single().is_some();
        let never_errors = shape.never_errors();
        keys.extend(shape.tests.into_iter().map(|test| Eligible {
            test,
            expression,
            alone,
        }));
        if !never_errors {
            break;
        }
    }
    keys
}

impl Dispatch {
    /// Indexes `rules`; `None` when fewer than `min_keyed` rules have a key.
    pub fn build(rules: &[Rule], min_keyed: usize) -> Option<Dispatch> {
        let eligible: Vec<Vec<Eligible>> = rules.iter().map(eligible_keys).collect();
        if eligible.iter().filter(|k| !k.is_empty()).count() < min_keyed.max(1) {
            return None;
        }
        // The most selective key: the test fewest rules share.
        let mut shared: HashMap<&Test, usize> = HashMap::new();
        for e in eligible.iter().flatten() {
            *shared.entry(&e.test).or_default() += 1;
        }
        let mut d = Dispatch::default();
        for (i, keys) in eligible.iter().enumerate() {
            let i = u32::try_from(i).ok()?;
            let key = keys.iter().min_by_key(|e| (shared[&e.test], rank(&e.test)));
            d.key_alone
                .push(key.and_then(|e| e.alone.then_some(e.expression)));
            match key {
                None => d.always.push(i),
                Some(key) => d.insert(i, key.test.clone()),
            }
        }
        let mut lens: Vec<usize> = d.path_prefix.keys().map(String::len).collect();
        lens.sort_unstable();
        lens.dedup();
        d.prefix_lens = lens;
        Some(d)
    }

    fn insert(&mut self, i: u32, key: Test) {
        let list = match key {
            Test::PathEq(p) => self.path_eq.entry(p).or_default(),
            Test::PathPrefix(p) => self.path_prefix.entry(p).or_default(),
            Test::Host(h) => self.host.entry(h).or_default(),
            Test::Method(m) => self.method.entry(m).or_default(),
            Test::Header {
                name,
                value,
                first,
                errors_if_absent,
            } => {
                let at = match self.headers.iter().position(|(n, _)| *n == name) {
                    Some(at) => at,
                    None => {
                        self.headers.push((name, HeaderIndex::default()));
                        self.headers.len() - 1
                    }
                };
                let h = &mut self.headers[at].1;
                if errors_if_absent {
                    h.erring.push(i);
                }
                match first {
                    true => h.first.entry(value).or_default(),
                    false => h.any.entry(value).or_default(),
                }
            }
        };
        list.push(i);
    }

    /// The candidate rules for `req` (the request as the CEL scope sees it).
    pub fn candidates<'a>(&'a self, req: &RequestHead) -> Candidates<'a> {
        // `true`: the rules of that list have their key true for `req`.
        let mut lists: Vec<(&'a [u32], bool)> = Vec::with_capacity(8);
        if !self.always.is_empty() {
            lists.push((&self.always, false));
        }
        let hit = |l: &'a Positions| (l.as_slice(), true);
        let path = percent_decode(&req.path, false);
        lists.extend(self.path_eq.get(path.as_str()).map(hit));
        for &len in &self.prefix_lens {
            if len > path.len() {
                break;
            }
            if path.is_char_boundary(len) {
                lists.extend(self.path_prefix.get(&path[..len]).map(hit));
            }
        }
        lists.extend(self.host.get(req.host.as_str()).map(hit));
        lists.extend(self.method.get(req.method.as_str()).map(hit));
        for (name, h) in &self.headers {
            let mut values = req.headers.get_all(name);
            match values.next() {
                None => lists.push((&h.erring, false)),
                Some(first) => {
                    lists.extend(h.first.get(first).map(hit));
                    if !h.any.is_empty() {
                        for v in std::iter::once(first).chain(values) {
                            lists.extend(h.any.get(v).map(hit));
                        }
                    }
                }
            }
        }
        Candidates { lists }
    }

    /// The expression of rule `i` that need not be evaluated when its key holds.
    pub fn key_alone(&self, i: usize) -> Option<usize> {
        self.key_alone.get(i).copied().flatten()
    }
}

/// How generally a kind of test separates routes: breaks ties between equally shared keys.
fn rank(t: &Test) -> u8 {
    match t {
        Test::PathEq(_) => 0,
        Test::Header { .. } => 1,
        Test::PathPrefix(_) => 2,
        Test::Host(_) => 3,
        Test::Method(_) => 4,
    }
}

/// Sorted lists of candidate positions, merged on the fly, each marked when its rules' keys
/// hold.
pub struct Candidates<'a> {
    lists: Vec<(&'a [u32], bool)>,
}

/// A rule to evaluate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Candidate {
    pub position: usize,
    /// The lookup found the rule's key true.
    pub key_holds: bool,
}

impl Candidates<'_> {
    /// The first candidate at or after `pos`, in document order.
    pub fn next_from(&mut self, pos: usize) -> Option<Candidate> {
        let mut best: Option<(u32, bool)> = None;
        for (list, holds) in &mut self.lists {
            let skip = list.partition_point(|&i| (i as usize) < pos);
            *list = &list[skip..];
            if let Some(&head) = list.first() {
                best = match best {
                    Some((b, h)) if b < head => Some((b, h)),
                    Some((b, h)) if b == head => Some((b, h || *holds)),
                    _ => Some((head, *holds)),
                };
            }
        }
        best.map(|(b, key_holds)| Candidate {
            position: b as usize,
            key_holds,
        })
    }
}

#[cfg(test)]
mod tests;
