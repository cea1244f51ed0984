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
//! A candidate is evaluated exactly as the plain loop would (every expression, the key
//! included); a rule that is not a candidate would have evaluated to "no match". The index is
//! looked up with the request as the CEL scope sees it (its snapshot), and looked up again
//! whenever that snapshot changes (an action changed headers, the path, or result variables),
//! so later rules see what earlier actions did.

use crate::expr::{percent_decode, Test};
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

/// The tests a rule may be keyed on: those of its first expression, and of each following one
/// while every expression before it never errors.
fn eligible_keys(rule: &Rule) -> Vec<Test> {
    let mut keys = Vec::new();
    for e in &rule.expressions {
        let shape = e.shape();
        keys.extend(shape.tests);
        if !shape.never_errors {
            break;
        }
    }
    keys
}

impl Dispatch {
    /// Indexes `rules`; `None` when fewer than `min_keyed` rules have a key.
    pub fn build(rules: &[Rule], min_keyed: usize) -> Option<Dispatch> {
        let eligible: Vec<Vec<Test>> = rules.iter().map(eligible_keys).collect();
        if eligible.iter().filter(|k| !k.is_empty()).count() < min_keyed.max(1) {
            return None;
        }
        // The most selective key: the test fewest rules share.
        let mut shared: HashMap<&Test, usize> = HashMap::new();
        for t in eligible.iter().flatten() {
            *shared.entry(t).or_default() += 1;
        }
        let mut d = Dispatch::default();
        for (i, keys) in eligible.iter().enumerate() {
            let i = u32::try_from(i).ok()?;
            match keys.iter().min_by_key(|t| (shared[t], rank(t))) {
                None => d.always.push(i),
                Some(key) => d.insert(i, key.clone()),
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
        let mut lists: Vec<&'a [u32]> = Vec::with_capacity(8);
        if !self.always.is_empty() {
            lists.push(&self.always);
        }
        let path = percent_decode(&req.path, false);
        lists.extend(self.path_eq.get(path.as_str()).map(Vec::as_slice));
        for &len in &self.prefix_lens {
            if len > path.len() {
                break;
            }
            if path.is_char_boundary(len) {
                lists.extend(self.path_prefix.get(&path[..len]).map(Vec::as_slice));
            }
        }
        lists.extend(self.host.get(req.host.as_str()).map(Vec::as_slice));
        lists.extend(self.method.get(req.method.as_str()).map(Vec::as_slice));
        for (name, h) in &self.headers {
            let mut values = req.headers.get_all(name);
            match values.next() {
                None => lists.push(&h.erring),
                Some(first) => {
                    lists.extend(h.first.get(first).map(Vec::as_slice));
                    if !h.any.is_empty() {
                        for v in std::iter::once(first).chain(values) {
                            lists.extend(h.any.get(v).map(Vec::as_slice));
                        }
                    }
                }
            }
        }
        Candidates { lists }
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

/// Sorted lists of candidate positions, merged on the fly.
pub struct Candidates<'a> {
    lists: Vec<&'a [u32]>,
}

impl Candidates<'_> {
    /// The first candidate at or after `pos`, in document order.
    pub fn next_from(&mut self, pos: usize) -> Option<usize> {
        let mut best: Option<u32> = None;
        for list in &mut self.lists {
            let skip = list.partition_point(|&i| (i as usize) < pos);
            *list = &list[skip..];
            if let Some(&head) = list.first() {
                best = Some(best.map_or(head, |b| b.min(head)));
            }
        }
        best.map(|b| b as usize)
    }
}

#[cfg(test)]
mod tests;
