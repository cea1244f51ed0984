//! Compiling the rule table once per isolate, and running it on a request or response.

use super::input::{
    extract_request, extract_response, Extracted, Field, RequestView, ResponseView, Target,
};
use super::rules::{table, CheckCtx, Op, RuleDef, Stage};
use super::transform::{apply_if_changes, may_change, ByteSet, Transform};
use super::{sqli, xss, Budget, Disposition, MatchedRule, OnBudget, Profile, Verdict};
use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};
use regex::bytes::{Regex, RegexBuilder};
use std::borrow::Cow;
use std::cell::OnceCell;
use std::collections::HashMap;
use std::sync::OnceLock;

/// A distinct transformation chain.
struct Pipeline {
    tf: &'static [Transform],
}

struct Rule {
    def: RuleDef,
    mask: u32,
    pipeline: usize,
    /// The rule's chain ends with `Lowercase`, which is left out of the pipeline: the literal
    /// scan ignores ASCII case and the detectors read case themselves, so only a regex needs
    /// the lowercased copy, made when one runs.
    lower: bool,
    /// Ids of `def.lits` in the shared automaton.
    lits: Vec<u32>,
    /// The same as a bitset, to test against a value's hits in a few word operations.
    lit_mask: [u64; HIT_WORDS],
    /// Compiled on first use (after a literal was seen), or by [`CrsRules::compile_all`].
    regex: OnceLock<Option<Regex>>,
}

struct Compiled {
    /// In evaluation order: highest value first (severity, then id).
    rules: Vec<Rule>,
    pipelines: Vec<Pipeline>,
    /// Every rule's literals (lowercase), deduplicated, in one automaton: a value scanned once
    /// serves every pipeline that transforms the field to the same bytes (most pipelines leave
    /// most values as they are).
    literals: Vec<&'static str>,
    ac: Option<AhoCorasick>,
}

static COMPILED: OnceLock<Compiled> = OnceLock::new();

fn compiled() -> &'static Compiled {
    COMPILED.get_or_init(build)
}

fn build() -> Compiled {
    let mut defs = table();
    // Highest value first, so a spent budget skips the least valuable rules. The two detectors
    // and the critical rules come before the scoring-only notices and warnings.
    defs.sort_by_key(|d| {
        (
            std::cmp::Reverse(d.severity),
            !matches!(d.op, Op::Sqli | Op::Xss),
            d.id,
        )
    });
    let mut pipelines: Vec<Pipeline> = Vec::new();
    let mut literals: Vec<&'static str> = Vec::new();
    let mut lit_ids: HashMap<&'static str, u32> = HashMap::new();
    let mut rules = Vec::with_capacity(defs.len());
    for def in defs {
        let (tf, lower) = match def.tf.split_last() {
            Some((Transform::Lowercase, rest)) => (rest, true),
            _ => (def.tf, false),
        };
        let p = match pipelines.iter().position(|p| p.tf == tf) {
            Some(p) => p,
            None => {
                pipelines.push(Pipeline { tf });
                pipelines.len() - 1
            }
        };
        let lits: Vec<u32> = def
            .lits
            .iter()
            .map(|l| {
                *lit_ids.entry(l).or_insert_with(|| {
                    literals.push(l);
                    literals.len() as u32 - 1
                })
            })
            .collect();
        let mut lit_mask = [0u64; HIT_WORDS];
        for &id in &lits {
            if let Some(w) = lit_mask.get_mut(id as usize / 64) {
                *w |= 1 << (id % 64);
            }
        }
        let mask = def.targets.iter().fold(0, |m, t| m | t.bit());
        rules.push(Rule {
            def,
            mask,
            pipeline: p,
            lower,
            lits,
            lit_mask,
            regex: OnceLock::new(),
        });
    }
    assert!(
        literals.len() <= HIT_WORDS * 64,
        "{} prefilter literals: raise HIT_WORDS",
        literals.len()
    );
    // A DFA: the slowest to build (a few ms) but the fastest to scan, and the scan runs on
    // every distinct value.
    let ac = AhoCorasickBuilder::new()
        .kind(Some(AhoCorasickKind::DFA))
        .ascii_case_insensitive(true)
        .match_kind(MatchKind::Standard)
        .build(&literals)
        .ok();
    Compiled {
        rules,
        pipelines,
        literals,
        ac,
    }
}

/// Builds the rule set from scratch (not the isolate's shared copy), for measuring start-up:
/// `eager` also compiles every regex, as the first requests would over time. Returns the
/// number of rules.
#[doc(hidden)]
pub fn build_fresh(eager: bool) -> usize {
    let c = build();
    if eager {
        for r in &c.rules {
            if let Op::Rx(p) = &r.def.op {
                let _ = r.regex.get_or_init(|| compile_regex(p));
            }
        }
    }
    c.rules.len()
}

fn compile_regex(pattern: &str) -> Option<Regex> {
    RegexBuilder::new(pattern)
        .unicode(false)
        .size_limit(4 << 20)
        .build()
        .ok()
}

/// The compiled rule set with one configuration applied. Cheap to create after the first one in
/// an isolate: the table, pipelines and automata are built once and shared.
pub struct CrsRules {
    compiled: &'static Compiled,
    enabled: Vec<bool>,
    config: Profile,
}

/// A field's value after one or more pipelines (those that give the same bytes share it), and
/// which literals it contains.
struct Entry<'f> {
    value: Cow<'f, [u8]>,
    hits: [u64; HIT_WORDS],
    /// `value` lowercased, when a regex asked for it and it has uppercase (`Some(None)` when
    /// it has none).
    lowered: OnceCell<Option<Vec<u8>>>,
}

impl Entry<'_> {
    fn lowercase(&self) -> &[u8] {
        self.lowered
            .get_or_init(|| {
                self.value
                    .iter()
                    .any(u8::is_ascii_uppercase)
                    .then(|| self.value.to_ascii_lowercase())
            })
            .as_deref()
            .unwrap_or(&self.value)
    }
}

/// The literals' bitset size in words (checked when the rule set is built).
const HIT_WORDS: usize = 10;

/// Transformed values per (field, pipeline), computed on first use and shared between
/// pipelines that produce the same bytes.
struct Values<'f> {
    np: usize,
    /// Index into `entries` per field and pipeline; `NONE` until computed.
    slots: Vec<u32>,
    /// The bytes of each field's raw value, once a pipeline needed them.
    sets: Vec<Option<ByteSet>>,
    entries: Vec<Entry<'f>>,
    /// Per pipeline, the targets whose fields are all computed and counted in `any_hits`.
    done: Vec<u32>,
    /// Per pipeline and target, the literals found in any of the target's fields: a rule none
    /// of whose literals is there skips its fields without looking at them one by one.
    any_hits: Vec<[u64; HIT_WORDS]>,
}

const NONE: u32 = u32::MAX;

impl CrsRules {
    pub fn compile(config: &Profile) -> CrsRules {
        let compiled = compiled();
        let enabled = compiled
            .rules
            .iter()
            .map(|r| {
                r.def.pl <= config.paranoia_level && !config.exclude_rule_ids.contains(&r.def.id)
            })
            .collect();
        CrsRules {
            compiled,
            enabled,
            config: config.clone(),
        }
    }

    pub fn config(&self) -> &Profile {
        &self.config
    }

    /// Compiles every enabled rule's regex now rather than on first use; returns the ids of
    /// rules whose pattern did not compile (none, as a test checks).
    pub fn compile_all(&self) -> Vec<u32> {
        let mut bad = Vec::new();
        for (r, on) in self.compiled.rules.iter().zip(&self.enabled) {
            if let (Op::Rx(p), true) = (&r.def.op, on) {
                if r.regex.get_or_init(|| compile_regex(p)).is_none() {
                    bad.push(r.def.id);
                }
            }
        }
        bad
    }

    /// Ids of the rules that run under this configuration, in evaluation order.
    pub fn rule_ids(&self) -> Vec<u32> {
        self.compiled
            .rules
            .iter()
            .zip(&self.enabled)
            .filter(|(_, on)| **on)
            .map(|(r, _)| r.def.id)
            .collect()
    }

    pub fn inspect_request(&self, req: &RequestView<'_>, budget: &mut Budget<'_>) -> Verdict {
        let ex = extract_request(req, self.config.process_body, self.config.body_limit);
        let ctx = CheckCtx {
            req: Some(req),
            ex: &ex,
        };
        self.run(
            Stage::Request,
            &ex,
            &ctx,
            budget,
            self.config.inbound_threshold,
        )
    }

    pub fn inspect_response(&self, res: &ResponseView<'_>, budget: &mut Budget<'_>) -> Verdict {
        let ex = extract_response(res, self.config.process_body, self.config.body_limit);
        let ctx = CheckCtx { req: None, ex: &ex };
        self.run(
            Stage::Response,
            &ex,
            &ctx,
            budget,
            self.config.outbound_threshold,
        )
    }

    fn run(
        &self,
        phase: Stage,
        ex: &Extracted<'_>,
        ctx: &CheckCtx<'_, '_>,
        budget: &mut Budget<'_>,
        threshold: u32,
    ) -> Verdict {
        let c = self.compiled;
        let fields = &ex.fields;
        let np = c.pipelines.len();
        let mut values = Values {
            np,
            slots: vec![NONE; fields.len() * np],
            sets: vec![None; fields.len()],
            entries: Vec::with_capacity(fields.len() + 8),
            done: vec![0; np],
            any_hits: vec![[0; HIT_WORDS]; np * Target::COUNT],
        };
        let mut steps: u64 = fields.iter().map(|f| f.value.len() as u64).sum();
        let start = budget.clock.map(|clk| clk());
        let mut matched = Vec::new();
        let mut score = 0;
        let mut partial = false;
        for (rule, on) in c.rules.iter().zip(&self.enabled) {
            if !on || rule.def.phase != phase {
                continue;
            }
            if spent(budget, steps, start) {
                partial = true;
                break;
            }
            let hit = match &rule.def.op {
                Op::Check(f) => {
                    steps += 1;
                    f(ctx).map(|d| format!("Matched Data: {}", clip(&d)))
                }
                _ => self.match_fields(rule, fields, &mut values, &mut steps),
            };
            if let Some(data) = hit {
                score += rule.def.severity.score();
                matched.push(MatchedRule {
                    id: rule.def.id,
                    message: rule.def.msg,
                    severity: rule.def.severity,
                    data,
                });
            }
        }
        let decision =
            if score >= threshold || (partial && self.config.on_budget == OnBudget::Block) {
                Disposition::Deny
            } else {
                Disposition::Allow
            };
        Verdict {
            decision,
            anomaly_score: score,
            threshold,
            matched_rules: matched,
            partial,
            steps,
        }
    }

    /// Runs one rule over its targets; the first match wins (a rule scores once).
    fn match_fields<'f>(
        &self,
        rule: &Rule,
        fields: &'f [Field<'f>],
        values: &mut Values<'f>,
        steps: &mut u64,
    ) -> Option<String> {
        let c = self.compiled;
        if !rule.lits.is_empty() && !values.any_literal(c, fields, rule, steps) {
            return None;
        }
        for (fi, field) in fields.iter().enumerate() {
            if rule.mask & field.kind.bit() == 0 {
                continue;
            }
            let entry = values.get(c, fields, fi, rule.pipeline, steps);
            let seen = |id: u32| entry.hits[id as usize / 64] & (1 << (id % 64)) != 0;
            if !rule.lits.is_empty()
                && !entry
                    .hits
                    .iter()
                    .zip(&rule.lit_mask)
                    .any(|(h, m)| h & m != 0)
            {
                continue;
            }
            let value = &entry.value;
            let found: Option<String> = match &rule.def.op {
                Op::Rx(p) => {
                    *steps += value.len() as u64;
                    let re = rule.regex.get_or_init(|| compile_regex(p));
                    let value = if rule.lower { entry.lowercase() } else { value };
                    re.as_ref()
                        .and_then(|re| re.find(value))
                        .map(|m| String::from_utf8_lossy(m.as_bytes()).into_owned())
                }
                Op::Pm => rule
                    .lits
                    .iter()
                    .find(|&&id| seen(id))
                    .map(|&id| c.literals[id as usize].to_string()),
                Op::Sqli => {
                    sqli::detect(value, steps).map(|why| format!("{why}: {}", clip_bytes(value)))
                }
                Op::Xss => {
                    xss::detect(value, steps).map(|why| format!("{why}: {}", clip_bytes(value)))
                }
                Op::Check(_) => None,
            };
            if let Some(m) = found {
                let name = if field.name.is_empty() {
                    field.kind.crs_name().to_string()
                } else {
                    format!("{}:{}", field.kind.crs_name(), field.name)
                };
                return Some(format!(
                    "Matched Data: {} found within {}: {}",
                    clip(&m),
                    name,
                    clip_bytes(&field.value)
                ));
            }
        }
        None
    }
}

impl<'f> Values<'f> {
    /// Whether one of the rule's literals occurs in any of its target fields (after its
    /// pipeline), computing those fields' values first.
    fn any_literal(
        &mut self,
        c: &Compiled,
        fields: &'f [Field<'f>],
        rule: &Rule,
        steps: &mut u64,
    ) -> bool {
        let p = rule.pipeline;
        let need = rule.mask & !self.done[p];
        if need != 0 {
            for (fi, field) in fields.iter().enumerate() {
                if need & field.kind.bit() != 0 {
                    let hits = self.get(c, fields, fi, p, steps).hits;
                    let acc = &mut self.any_hits[p * Target::COUNT + field.kind as usize];
                    for (a, h) in acc.iter_mut().zip(hits) {
                        *a |= h;
                    }
                }
            }
            self.done[p] |= need;
        }
        let row = &self.any_hits[p * Target::COUNT..(p + 1) * Target::COUNT];
        row.iter().enumerate().any(|(kind, hits)| {
            rule.mask & (1 << kind) != 0 && hits.iter().zip(&rule.lit_mask).any(|(h, m)| h & m != 0)
        })
    }

    /// Field `fi` through pipeline `p`: transformed once, and scanned once per distinct result.
    fn get(
        &mut self,
        c: &Compiled,
        fields: &'f [Field<'f>],
        fi: usize,
        p: usize,
        steps: &mut u64,
    ) -> &Entry<'f> {
        let slot = fi * self.np + p;
        if self.slots[slot] == NONE {
            let raw: &'f [u8] = &fields[fi].value;
            let mut set = *self.sets[fi].get_or_insert_with(|| ByteSet::of(raw));
            let mut value: Cow<'f, [u8]> = Cow::Borrowed(raw);
            for t in c.pipelines[p].tf {
                if !may_change(*t, &set) {
                    continue;
                }
                *steps += value.len() as u64;
                if let Some(v) = apply_if_changes(*t, &value) {
                    set = ByteSet::of(&v);
                    value = Cow::Owned(v);
                }
            }
            // The same bytes from another pipeline: share its scan.
            let row = &self.slots[fi * self.np..(fi + 1) * self.np];
            let same = row.iter().copied().find(|&e| {
                e != NONE && {
                    let other = &self.entries[e as usize];
                    match (&value, &other.value) {
                        (Cow::Borrowed(_), Cow::Borrowed(_)) => true,
                        (a, b) => **a == **b,
                    }
                }
            });
            self.slots[slot] = match same {
                Some(e) => e,
                None => {
                    let mut hits = [0u64; HIT_WORDS];
                    if let Some(ac) = &c.ac {
                        *steps += value.len() as u64;
                        for m in ac.find_overlapping_iter(&*value) {
                            let id = m.pattern().as_usize();
                            hits[id / 64] |= 1 << (id % 64);
                        }
                    }
                    self.entries.push(Entry {
                        value,
                        hits,
                        lowered: OnceCell::new(),
                    });
                    self.entries.len() as u32 - 1
                }
            };
        }
        &self.entries[self.slots[slot] as usize]
    }
}

fn spent(b: &Budget<'_>, steps: u64, start: Option<f64>) -> bool {
    if b.max_steps.is_some_and(|m| steps >= m) {
        return true;
    }
    match (b.clock, b.max_ms, start) {
        (Some(clk), Some(max), Some(s)) => clk() - s >= max,
        _ => false,
    }
}

fn clip(s: &str) -> String {
    const MAX: usize = 100;
    if s.len() <= MAX {
        return s.to_string();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

fn clip_bytes(b: &[u8]) -> String {
    clip(&String::from_utf8_lossy(&b[..b.len().min(200)]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::waf::{CrsSeverity, ResponseView};

    fn all() -> CrsRules {
        CrsRules::compile(&Profile {
            process_body: true,
            ..Profile::default()
        })
    }

    #[test]
    fn every_rule_compiles_and_ids_are_crs_ranged_and_unique() {
        let rs = CrsRules::compile(&Profile {
            paranoia_level: 4,
            ..Profile::default()
        });
        assert_eq!(rs.compile_all(), Vec::<u32>::new());
        let mut ids = rs.rule_ids();
        assert!(ids.len() > 80, "{}", ids.len());
        assert!(ids.iter().all(|id| (900_000..=999_999).contains(id)));
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), rs.rule_ids().len());
        // Prefilter literals are written lowercase (the automaton is case-insensitive, but a
        // literal's transform is lowercase, so an uppercase literal would be a typo).
        for r in &compiled().rules {
            for l in r.def.lits {
                assert_eq!(*l, l.to_ascii_lowercase(), "rule {}", r.def.id);
            }
        }
    }

    #[test]
    fn sqli_in_query_denies_with_ids_and_data() {
        let req = RequestView::new("GET", "/items", "id=1%27%20OR%20%271%27%3D%271")
            .header("User-Agent", "Mozilla/5.0");
        let v = all().inspect_request(&req, &mut Budget::unlimited());
        assert!(v.is_deny());
        assert!(v.matched_ids().contains(&942100), "{:?}", v.matched_rules);
        let m = v.matched_rules.iter().find(|m| m.id == 942100).unwrap();
        assert_eq!(m.severity, CrsSeverity::Critical);
        assert!(m.data.contains("ARGS:id"), "{}", m.data);
        assert!(v.anomaly_score >= 5 && v.threshold == 5);
    }

    #[test]
    fn exclude_rule_ids_and_paranoia() {
        let req = RequestView::new("GET", "/", "q=%3Cscript%3Ealert(1)%3C/script%3E");
        let base = all().inspect_request(&req, &mut Budget::unlimited());
        assert!(base.is_deny());
        let ids = base.matched_ids();
        let rs = CrsRules::compile(&Profile {
            exclude_rule_ids: ids.clone(),
            ..Profile::default()
        });
        let v = rs.inspect_request(&req, &mut Budget::unlimited());
        assert_eq!(v.decision, Disposition::Allow, "{:?}", v.matched_rules);
        assert!(rs.rule_ids().iter().all(|id| !ids.contains(id)));
    }

    #[test]
    fn body_processor_errors_are_a_rule_not_a_panic() {
        let bad_json = RequestView::new("POST", "/api", "")
            .header("Content-Type", "application/json")
            .header("Content-Length", "9")
            .with_body(b"{\"a\": tru");
        let v = all().inspect_request(&bad_json, &mut Budget::unlimited());
        assert!(v.matched_ids().contains(&920999), "{:?}", v.matched_rules);
        assert!(v.is_deny());
        // Cut at the limit, the same body is walked as far as it goes, not an error.
        let mut cut = bad_json.clone();
        cut.body_truncated = true;
        let v = all().inspect_request(&cut, &mut Budget::unlimited());
        assert!(!v.matched_ids().contains(&920999));
        let bad_mp = RequestView::new("POST", "/up", "")
            .header("Content-Type", "multipart/form-data")
            .with_body(b"--x\r\n\r\n");
        let v = all().inspect_request(&bad_mp, &mut Budget::unlimited());
        assert!(v.matched_ids().contains(&920999));
        // Bodies are not inspected unless asked (ngrok's process_body defaults to false).
        let v = CrsRules::compile(&Profile::default())
            .inspect_request(&bad_json, &mut Budget::unlimited());
        assert!(!v.matched_ids().contains(&920999));
    }

    #[test]
    fn body_limit_hides_what_lies_beyond() {
        let mut body = b"comment=".to_vec();
        body.extend(std::iter::repeat_n(b'a', 5000));
        body.extend_from_slice(b"%27%20union%20select%20password%20from%20users--");
        let req = RequestView::new("POST", "/f", "")
            .header("Content-Type", "application/x-www-form-urlencoded")
            .with_body(&body);
        assert!(!all()
            .inspect_request(&req, &mut Budget::unlimited())
            .is_deny());
        let rs = CrsRules::compile(&Profile {
            process_body: true,
            body_limit: 8192,
            ..Profile::default()
        });
        assert!(rs.inspect_request(&req, &mut Budget::unlimited()).is_deny());
    }

    #[test]
    fn budget_spent_reports_partial_and_follows_the_choice() {
        let req = RequestView::new("GET", "/search", "q=hello%20world&page=2")
            .header("User-Agent", "Mozilla/5.0");
        let full = all().inspect_request(&req, &mut Budget::unlimited());
        assert!(!full.partial && !full.is_deny());
        let v = all().inspect_request(&req, &mut Budget::steps(full.steps / 2));
        assert!(v.partial);
        assert!(v.is_deny(), "fail closed by default");
        let pass = CrsRules::compile(&Profile {
            process_body: true,
            on_budget: OnBudget::Pass,
            ..Profile::default()
        });
        let v = pass.inspect_request(&req, &mut Budget::steps(full.steps / 2));
        assert!(v.partial && !v.is_deny());
        // The highest-value rules run first: an attack caught by the detector is still caught
        // on a budget that skips most of the rest.
        let atk = RequestView::new(
            "GET",
            "/search",
            "q=1%20union%20select%20password%20from%20users",
        );
        let atk_full = pass.inspect_request(&atk, &mut Budget::unlimited());
        let v = pass.inspect_request(&atk, &mut Budget::steps(atk_full.steps / 3));
        assert!(
            v.partial && v.is_deny() && v.matched_ids().contains(&942100),
            "{v:?}"
        );
        // An injected clock bounds time the same way.
        let t = std::cell::Cell::new(0.0);
        let clock = || {
            t.set(t.get() + 1.0);
            t.get()
        };
        let v = pass.inspect_request(&req, &mut Budget::clock(&clock, 3.0));
        assert!(v.partial);
    }

    #[test]
    fn response_leakage() {
        let rs = all();
        let body = b"<html><body><b>Warning</b>: mysql_fetch_array() expects parameter 1 in /var/www/a.php on line 12<br>You have an error in your SQL syntax; check the manual";
        let res = ResponseView::new(500)
            .header("Content-Type", "text/html")
            .with_body(body);
        let v = rs.inspect_response(&res, &mut Budget::unlimited());
        assert!(v.is_deny() && v.threshold == 4);
        assert!(v.matched_ids().contains(&951230), "{:?}", v.matched_rules);
        let ok = ResponseView::new(200)
            .header("Content-Type", "application/json")
            .with_body(b"{\"items\":[{\"id\":1,\"name\":\"Index of products\"}]}");
        assert!(!rs.inspect_response(&ok, &mut Budget::unlimited()).is_deny());
        // Binary responses are not scanned.
        let img = ResponseView::new(200)
            .header("Content-Type", "image/png")
            .with_body(b"<?php");
        assert!(!rs
            .inspect_response(&img, &mut Budget::unlimited())
            .is_deny());
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // A fixed-seed generator: random bytes biased towards the characters parsers and
        // decoders treat specially, through every body processor and target.
        let mut rng = fastrand::Rng::with_seed(0x9E37_79B9_7F4A_7C15);
        const SPECIAL: &[u8] = b"%&=;\\\"'<>{}[]:,/\\*-#\r\n\0+u.$()`";
        let rs = all();
        for round in 0..3000 {
            let len = rng.usize(..300);
            let bytes: Vec<u8> = (0..len)
                .map(|_| match rng.u8(..3) {
                    0 => SPECIAL[rng.usize(..SPECIAL.len())],
                    _ => rng.u8(..),
                })
                .collect();
            let text = String::from_utf8_lossy(&bytes).into_owned();
            let ct = [
                "application/json",
                "multipart/form-data; boundary=-",
                "application/x-www-form-urlencoded",
                "text/plain",
            ][round % 4];
            let req = RequestView::new("POST", "/", &text)
                .header("Content-Type", ct)
                .header("Cookie", &text)
                .header("User-Agent", &text)
                .with_body(&bytes);
            let v = rs.inspect_request(&req, &mut Budget::unlimited());
            assert!(v.anomaly_score < 10_000);
            let res = ResponseView::new(500)
                .header("Content-Type", "text/html")
                .with_body(&bytes);
            rs.inspect_response(&res, &mut Budget::unlimited());
        }
    }
}
