//! Running a compiled rule set ([`Program`]) on a request or response, with ModSecurity's
//! semantics: rules in load order per phase, chains whose links must all match, `setvar`
//! scoring into TX, `skipAfter` markers, `ctl` exceptions, and the disruptive `deny` of the
//! blocking-evaluation rules.
//!
//! Cost: a [`RuleSet`] is made once per bundle; every regex and phrase automaton in it is
//! compiled the first time a request needs it. Within a request:
//! - a target list is resolved once per phase (CRS's rules share a few dozen lists);
//! - a value's transformed forms are computed once and shared along the trie of
//!   transformation chains ([`super::forms`]), and a chain none of whose transformations the
//!   value gives anything to change costs nothing;
//! - each distinct form is scanned once, by one automaton, for every regex's prefilter
//!   literals and every `@pm` phrase; a regex then looks only at the values holding one of its
//!   literals, and `@pm` is decided by the scan.

use super::forms::{in_collections, slot, uncached, Chains, Forms, Node, SlotHash, SlotMap};
use super::input::{
    default_processor, extract_request_body, extract_request_head, extract_response, mime,
    RequestView, ResponseView, Vars,
};
use super::operate::{atoi, run_operator, LinkCache, OpOutcome};
use super::program::{
    Actions, Collection, Ctl, Disruptive, EngineMode, Exclusion, Expand, Link, OperatorKind, Piece,
    Program, Rule, RuleKind, Selector, SetOp, Severity, Target,
};
use super::transform::apply;
use super::{Budget, CrsSeverity, Disposition, MatchedRule, OnBudget, Profile, Verdict};
use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};
use regex::bytes::Regex;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::{Arc, OnceLock};

/// A program ready to run: the rules and their lazily compiled operators. Made once per
/// bundle and shared by every action and request.
pub struct RuleSet {
    program: Program,
    /// Per rule, per link.
    links: Vec<Vec<LinkCache>>,
    /// Per rule, per link: its transformation chain's node in `chains` (links share the
    /// forms of a value their chains have in common, within a request).
    nodes: Vec<Vec<Node>>,
    chains: Chains,
    /// Per rule, per link: its target list's index in `views` when every target names request
    /// values (not TX, not MATCHED_*, not a count): a transaction resolves such a list once per
    /// phase, and rules with the same list share it.
    view_ids: Vec<Vec<Option<u16>>>,
    views: Vec<(Vec<Target>, Vec<Exclusion>)>,
    /// Member-name regexes of target selectors (`ARGS:/^id_/`, `!REQUEST_COOKIES:/__utm/`),
    /// each compiled on first use; found by pattern without a lock.
    selector_index: HashMap<String, usize>,
    selectors: Vec<OnceLock<Option<Regex>>>,
    /// The literals of the request's rules (phases 1 and 2) and of the response's: each
    /// transaction builds only the automaton it needs (CRS's response rules carry 100 KB of
    /// error messages).
    scanners: [Scanner; 2],
}

/// Every prefilter literal and `@pm` phrase of one side's rules, deduplicated, and one
/// automaton over them, built on first use: a value is scanned once for all of them (per
/// distinct transformed form), not once per rule.
#[derive(Default)]
struct Scanner {
    literals: Vec<String>,
    ac: OnceLock<Option<AhoCorasick>>,
}

/// The scanner a rule's links use: 0 for the request's phases, 1 for the response's.
fn side(phase: u8) -> usize {
    usize::from(phase >= 3)
}

impl std::fmt::Debug for RuleSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuleSet")
            .field("crs_version", &self.program.crs_version)
            .field("rules", &self.program.rules.len())
            .finish()
    }
}

impl RuleSet {
    pub fn new(program: Program) -> RuleSet {
        let mut chains = Chains::default();
        let mut view_index: HashMap<(&[Target], &[Exclusion]), u16> = HashMap::new();
        let mut view_ids = Vec::with_capacity(program.rules.len());
        let mut literal_ids: [HashMap<String, u32>; 2] = Default::default();
        let mut links = Vec::with_capacity(program.rules.len());
        let mut nodes = Vec::with_capacity(program.rules.len());
        for rule in &program.rules {
            let ls: &[Link] = match &rule.kind {
                RuleKind::Match(ls) => ls,
                _ => &[],
            };
            links.push(
                ls.iter()
                    .map(|l| {
                        let mut cache = LinkCache::default();
                        // A regex's prefilter, or `@pm`'s phrases: the shared scan decides
                        // `@pm` exactly, and a regex runs only when it may match.
                        if let OperatorKind::Rx {
                            prefilter: Some(p), ..
                        }
                        | OperatorKind::Pm(p) = &l.operator.kind
                        {
                            let mut words: Vec<(u32, u64)> = Vec::new();
                            let ids = &mut literal_ids[side(rule.phase)];
                            for lit in p {
                                let next = ids.len() as u32;
                                let id = *ids.entry(lit.to_ascii_lowercase()).or_insert(next);
                                let (word, bit) = (id / 64, 1u64 << (id % 64));
                                match words.iter_mut().find(|(w, _)| *w == word) {
                                    Some((_, mask)) => *mask |= bit,
                                    None => words.push((word, bit)),
                                }
                            }
                            cache.lits = words.into();
                        }
                        cache
                    })
                    .collect(),
            );
            nodes.push(ls.iter().map(|l| chains.node(&l.transforms)).collect());
            view_ids.push(
                ls.iter()
                    .map(|l| {
                        let fixed = l.targets.iter().all(|t| !t.count && !dynamic(t.collection));
                        let next = view_index.len() as u16;
                        fixed.then(|| {
                            *view_index
                                .entry((&l.targets, &l.exclusions))
                                .or_insert(next)
                        })
                    })
                    .collect(),
            );
        }
        let mut selector_index: HashMap<String, usize> = HashMap::new();
        for rule in &program.rules {
            let RuleKind::Match(ls) = &rule.kind else {
                continue;
            };
            let mut note = |sel: &Selector| {
                if let Selector::Regex(p) = sel {
                    let next = selector_index.len();
                    selector_index.entry(p.clone()).or_insert(next);
                }
            };
            for l in ls {
                l.targets.iter().for_each(|t| note(&t.selector));
                l.exclusions.iter().for_each(|e| note(&e.selector));
                for ctl in &l.actions.ctls {
                    if let Ctl::RuleRemoveTargetById { target, .. }
                    | Ctl::RuleRemoveTargetByTag { target, .. } = ctl
                    {
                        note(&target.selector);
                    }
                }
            }
        }
        let mut views = vec![(Vec::new(), Vec::new()); view_index.len()];
        for ((targets, exclusions), id) in view_index {
            views[id as usize] = (targets.to_vec(), exclusions.to_vec());
        }
        let scanners = literal_ids.map(|ids| {
            let mut literals = vec![String::new(); ids.len()];
            for (lit, id) in ids {
                literals[id as usize] = lit;
            }
            Scanner {
                literals,
                ac: OnceLock::new(),
            }
        });
        RuleSet {
            program,
            links,
            nodes,
            chains,
            view_ids,
            views,
            selectors: (0..selector_index.len()).map(|_| OnceLock::new()).collect(),
            selector_index,
            scanners,
        }
    }

    pub fn program(&self) -> &Program {
        &self.program
    }

    /// The ids of every rule (markers have none).
    pub fn rule_ids(&self) -> Vec<u32> {
        self.program
            .rules
            .iter()
            .filter(|r| r.id != 0)
            .map(|r| r.id)
            .collect()
    }

    /// Compiles every operator now (what a request would otherwise do lazily); returns the ids
    /// of rules with an operator that does not compile (none for a checked program).
    pub fn compile_all(&self) -> Vec<u32> {
        for scanner in &self.scanners {
            let _ = scanner.ac();
        }
        let mut bad = Vec::new();
        for (rule, caches) in self.program.rules.iter().zip(&self.links) {
            if let RuleKind::Match(ls) = &rule.kind {
                for (l, c) in ls.iter().zip(caches) {
                    if !c.prepare(&l.operator.kind) {
                        bad.push(rule.id);
                    }
                }
            }
        }
        bad
    }

    fn selector_matches(&self, pattern: &str, name: &str) -> bool {
        let Some(slot) = self.selector_index.get(pattern) else {
            return false;
        };
        self.selectors[*slot]
            .get_or_init(|| {
                super::program::rx_builder(pattern)
                    .case_insensitive(true)
                    .build()
                    .ok()
            })
            .as_ref()
            .is_some_and(|re| re.is_match(name.as_bytes()))
    }
}

impl Scanner {
    /// The automaton (overlapping matches: every literal present is reported). The literals
    /// are lowercase and the automaton matches bytes as they are: scanning a lowercased value
    /// is cheaper than an automaton that folds case (about 9 ms to build for the request
    /// rules' ~6,000 literals and phrases, against 30 ms).
    fn ac(&self) -> Option<&AhoCorasick> {
        self.ac
            .get_or_init(|| {
                AhoCorasickBuilder::new()
                    .kind(Some(AhoCorasickKind::ContiguousNFA))
                    .match_kind(MatchKind::Standard)
                    .build(&self.literals)
                    .ok()
            })
            .as_ref()
    }

    /// Which literals occur in `value` (without regard to ASCII case), as a bitset over literal
    /// ids; `None` for none.
    fn scan(&self, value: &[u8]) -> Hits {
        let ac = self.ac()?;
        let lower;
        let value = if value.iter().any(u8::is_ascii_uppercase) {
            lower = value.to_ascii_lowercase();
            &lower[..]
        } else {
            value
        };
        let mut bits: Vec<u64> = Vec::new();
        for m in ac.find_overlapping_iter(value) {
            let id = m.pattern().as_usize();
            if bits.is_empty() {
                bits = vec![0u64; self.literals.len().div_ceil(64)];
            }
            if let Some(w) = bits.get_mut(id / 64) {
                *w |= 1 << (id % 64);
            }
        }
        (!bits.is_empty()).then(|| bits.into())
    }
}

/// A rule set with one action's configuration applied.
pub struct CrsRules {
    set: Arc<RuleSet>,
    config: Profile,
    /// The TX values set before the first rule: crs-setup.conf's part.
    setup: Vec<(String, String)>,
}

impl CrsRules {
    pub fn new(set: Arc<RuleSet>, config: &Profile) -> CrsRules {
        let mut setup: Vec<(String, String)> = vec![
            // Any value: rule 901001 refuses a CRS deployed without a setup file.
            ("crs_setup_version".into(), "4280".into()),
            (
                "blocking_paranoia_level".into(),
                config.paranoia_level.to_string(),
            ),
            (
                "inbound_anomaly_score_threshold".into(),
                config.inbound_threshold.to_string(),
            ),
            (
                "outbound_anomaly_score_threshold".into(),
                config.outbound_threshold.to_string(),
            ),
        ];
        for (k, v) in &config.settings {
            let k = k.to_ascii_lowercase();
            let k = k.strip_prefix("tx.").unwrap_or(&k).to_string();
            setup.retain(|(have, _)| *have != k);
            setup.push((k, v.clone()));
        }
        CrsRules {
            set,
            config: config.clone(),
            setup,
        }
    }

    pub fn config(&self) -> &Profile {
        &self.config
    }

    pub fn rule_set(&self) -> &Arc<RuleSet> {
        &self.set
    }

    pub fn inspect_request(&self, req: &RequestView<'_>, budget: &mut Budget<'_>) -> Verdict {
        let mut vars = Vars::new();
        extract_request_head(req, &mut vars);
        let mut tx = self.transaction(vars, budget);
        let processor = req
            .header_value("content-type")
            .map(mime)
            .as_deref()
            .and_then(default_processor);
        tx.processor = processor;
        tx.set_processor_var();
        tx.run_phase(1, &|_| true);
        if tx.go_on() {
            if self.config.process_body && !req.body.is_empty() {
                extract_request_body(
                    req,
                    tx.processor,
                    tx.force_body,
                    self.config.body_limit,
                    &mut tx.vars,
                );
            } else {
                tx.vars.push(Collection::ReqbodyError, "", &b"0"[..]);
            }
            tx.run_phase(2, &|_| true);
        }
        tx.verdict(
            "blocking_inbound_anomaly_score",
            "inbound_anomaly_score_threshold",
        )
    }

    pub fn inspect_response(&self, res: &ResponseView<'_>, budget: &mut Budget<'_>) -> Verdict {
        let mut vars = Vars::new();
        extract_response(
            res,
            self.config.process_body,
            self.config.body_limit,
            &mut vars,
        );
        let mut tx = self.transaction(vars, budget);
        // The request's TX is not kept between the two actions: the initialization rules set
        // the defaults again.
        tx.run_phase(1, &|id| (901_000..902_000).contains(&id));
        if tx.go_on() {
            tx.run_phase(3, &|_| true);
        }
        if tx.go_on() {
            tx.run_phase(4, &|_| true);
        }
        tx.verdict(
            "blocking_outbound_anomaly_score",
            "outbound_anomaly_score_threshold",
        )
    }

    fn transaction<'a, 'r, 'b>(
        &'r self,
        vars: Vars<'a>,
        budget: &'r mut Budget<'b>,
    ) -> Transaction<'a, 'r, 'b> {
        let start = budget.clock.map(|clk| clk());
        Transaction {
            rules: self,
            vars,
            tx: self.setup.iter().cloned().collect(),
            matched_var: Vec::new(),
            matched_var_name: String::new(),
            matched_vars: Vec::new(),
            removed_ids: Vec::new(),
            removed_tags: Vec::new(),
            removed_targets: Vec::new(),
            processor: None,
            force_body: false,
            engine: self.config.engine,
            forms: Forms::default(),
            hits: SlotMap::with_capacity_and_hasher(512, Default::default()),
            lists: Vec::new(),
            list_index: HashMap::default(),
            cands: SlotMap::default(),
            steps: 0,
            budget,
            start,
            partial: false,
            matched: Vec::new(),
            denied: false,
            allowed: false,
        }
    }
}

/// Which rules a runtime exclusion names.
enum RuleRef {
    Ids(Vec<(u32, u32)>),
    Tag(String),
}

/// One request's (or response's) evaluation state.
struct Transaction<'a, 'r, 'b> {
    rules: &'r CrsRules,
    vars: Vars<'a>,
    tx: HashMap<String, String>,
    matched_var: Vec<u8>,
    matched_var_name: String,
    /// The current link's matches: (name, value).
    matched_vars: Vec<(String, Vec<u8>)>,
    removed_ids: Vec<(u32, u32)>,
    removed_tags: Vec<String>,
    removed_targets: Vec<(RuleRef, Exclusion)>,
    processor: Option<super::program::BodyProcessor>,
    /// `ctl:forceRequestBodyVariable=On` ran.
    force_body: bool,
    engine: EngineMode,
    forms: Forms,
    /// (member slot, the node where its form last changed) → the form's literal hits.
    hits: SlotMap<Hits>,
    /// Resolved target lists: the members each names.
    lists: Vec<Rc<[(Collection, u32)]>>,
    /// (target list of the rule set, the runtime exclusions applied) → index in `lists`.
    list_index: HashMap<(u16, u64), u32, std::hash::BuildHasherDefault<SlotHash>>,
    /// (index in `lists`, node) → the members whose form has a literal hit.
    cands: SlotMap<Rc<[Cand]>>,
    steps: u64,
    budget: &'r mut Budget<'b>,
    start: Option<f64>,
    partial: bool,
    matched: Vec<MatchedRule>,
    denied: bool,
    allowed: bool,
}

/// One value a target resolved to: a member of the request's collections (its identity keys
/// the transformation cache), or a dynamic value (TX, MATCHED_*, a count) with its name.
enum Src {
    Member(Collection, usize),
    /// The collection, the member's name (empty for a scalar), the value: the name is spelled
    /// `TX:name` only for a match.
    Owned(Collection, String, Vec<u8>),
}

/// Which of the rule set's literals a value's form contains (a bitset over literal ids), or
/// `None` for none: most values of benign traffic.
type Hits = Option<Rc<[u64]>>;

/// The literal hits of one form of a value — (slot, form node, side) — scanned once per
/// transaction; the scan's bytes count as steps.
fn hits_of(
    cache: &mut SlotMap<Hits>,
    scanner: &Scanner,
    steps: &mut u64,
    (slot, form, side): (u32, Node, usize),
    bytes: &[u8],
) -> Hits {
    // The side is the slot's top bit: a response transaction's phase-1 rules scan with the
    // request's literals.
    let key = (slot | (side as u32) << 31, form);
    if let Some(h) = cache.get(&key) {
        return h.clone();
    }
    *steps += bytes.len() as u64;
    let h = scanner.scan(bytes);
    cache.insert(key, h.clone());
    h
}

/// One link of a rule, with what the rule set keeps for it.
struct LinkAt<'s> {
    cache: &'s LinkCache,
    node: Node,
    view: Option<u16>,
    /// The scanner its literals are numbered in ([`side`]).
    side: usize,
}

/// A value of a target list whose form contains some literal: the only values a prefiltered
/// regex needs to look at.
struct Cand {
    c: Collection,
    i: u32,
    hits: Rc<[u64]>,
}

/// Collections whose values change as rules run: read per link, never cached.
fn dynamic(c: Collection) -> bool {
    matches!(
        c,
        Collection::Tx
            | Collection::MatchedVar
            | Collection::MatchedVarName
            | Collection::MatchedVars
            | Collection::MatchedVarsNames
            | Collection::Rule
    )
}

impl<'a, 'r, 'b> Transaction<'a, 'r, 'b> {
    fn go_on(&self) -> bool {
        !self.denied && !self.allowed && !self.partial && self.engine != EngineMode::Off
    }

    fn spent(&self) -> bool {
        if self.budget.max_steps.is_some_and(|m| self.steps > m) {
            return true;
        }
        match (self.budget.clock, self.budget.max_ms, self.start) {
            (Some(clk), Some(max), Some(start)) => clk() - start > max,
            _ => false,
        }
    }

    fn set_processor_var(&mut self) {
        let name: &'static [u8] = match self.processor {
            Some(super::program::BodyProcessor::UrlEncoded) => b"URLENCODED",
            Some(super::program::BodyProcessor::Json) => b"JSON",
            Some(super::program::BodyProcessor::Multipart) => b"MULTIPART",
            Some(super::program::BodyProcessor::Xml) => b"XML",
            None => b"",
        };
        self.vars.set(Collection::ReqbodyProcessor, name);
    }

    fn removed(&self, rule: &Rule) -> bool {
        let id = rule.id;
        self.rules.config.exclude_rule_ids.contains(&id)
            || self
                .removed_ids
                .iter()
                .any(|(lo, hi)| (*lo..=*hi).contains(&id))
            || self
                .removed_tags
                .iter()
                .any(|t| rule.tags.iter().any(|rt| rt.eq_ignore_ascii_case(t)))
    }

    fn run_phase(&mut self, phase: u8, only: &dyn Fn(u32) -> bool) {
        let set = Arc::clone(&self.rules.set);
        let rules = &set.program.rules;
        // The body processor ran (or a response was read) since the last phase.
        self.vars_changed();
        let mut i = 0;
        while i < rules.len() && self.go_on() {
            let index = i;
            let rule = &rules[i];
            i += 1;
            if rule.phase != phase || !only(rule.id) || self.removed(rule) {
                continue;
            }
            if self.spent() {
                self.partial = true;
                break;
            }
            let matched = match &rule.kind {
                RuleKind::Marker(_) => continue,
                RuleKind::Action(actions) => {
                    self.matched_var.clear();
                    self.matched_var_name.clear();
                    self.run_actions(rule, actions);
                    true
                }
                RuleKind::Match(links) => self.run_chain(&set, index, rule, links),
            };
            if !matched {
                continue;
            }
            if rule.log {
                self.report(rule);
            }
            match rule.disruptive {
                Disruptive::Deny if self.engine == EngineMode::On => self.denied = true,
                Disruptive::Allow if self.engine == EngineMode::On => self.allowed = true,
                _ => {}
            }
            if let Some(target) = rule.skip_after {
                i = i.max(target as usize + 1);
            } else {
                let mut n = rule.skip;
                while n > 0 && i < rules.len() {
                    if rules[i].phase == phase && !matches!(rules[i].kind, RuleKind::Marker(_)) {
                        n -= 1;
                    }
                    i += 1;
                }
            }
        }
    }

    fn report(&mut self, rule: &Rule) {
        let msg = rule
            .msg
            .as_ref()
            .map(|m| self.expand(m, rule))
            .unwrap_or_default();
        let data = match &rule.logdata {
            Some(l) => clip(&self.expand(l, rule)),
            None => String::new(),
        };
        self.matched.push(MatchedRule {
            id: rule.id,
            message: msg,
            severity: severity(rule.severity),
            data,
        });
    }

    /// Evaluates the links in order. As in ModSecurity, a link's own actions run as soon as it
    /// matches, once per value that matched, before the next link is evaluated: CRS's chains
    /// set a TX variable in one link (`setvar:tx.extension=...`) and test it in the next, and
    /// rule 922150 collects every multipart Content-Type with a counter it increments.
    fn run_chain(&mut self, set: &RuleSet, index: usize, rule: &Rule, links: &[Link]) -> bool {
        for (n, link) in links.iter().enumerate() {
            let at = LinkAt {
                cache: &set.links[index][n],
                node: set.nodes[index][n],
                view: set.view_ids[index][n],
                side: side(rule.phase),
            };
            if !self.run_link(set, rule, link, at) {
                return false;
            }
        }
        true
    }

    fn run_link(&mut self, set: &RuleSet, rule: &Rule, link: &Link, at: LinkAt<'_>) -> bool {
        let mut found: Vec<(String, Vec<u8>)> = Vec::new();
        let list = at.view.and_then(|v| self.list(set, rule, v));
        match list {
            // A prefiltered regex looks only at the values whose form has one of its literals.
            Some(l) if !at.cache.lits.is_empty() && !link.operator.negated && !link.multi_match => {
                let cands = self.candidates(set, l, at.node, at.side);
                self.steps += cands.len() as u64;
                for cand in cands.iter() {
                    let hit = at.cache.hit(&cand.hits);
                    if hit {
                        let src = Src::Member(cand.c, cand.i as usize);
                        self.evaluate(set, rule, link, &at, &src, Some(true), &mut found);
                    }
                }
            }
            Some(l) => {
                let members = Rc::clone(&self.lists[l as usize]);
                for &(c, i) in members.iter() {
                    let src = Src::Member(c, i as usize);
                    self.evaluate(set, rule, link, &at, &src, None, &mut found);
                }
            }
            None => {
                for src in &self.resolve(set, rule, link) {
                    self.evaluate(set, rule, link, &at, src, None, &mut found);
                }
            }
        }
        if found.is_empty() {
            return false;
        }
        self.matched_vars = found;
        true
    }

    /// Runs a link's operator on one value and, when it matches, the link's actions.
    /// `prefiltered`: the shared scan's answer for a regex's literals, when already known.
    #[allow(
        clippy::too_many_arguments,
        reason = "the transaction's parts a value is read with"
    )]
    fn evaluate(
        &mut self,
        set: &RuleSet,
        rule: &Rule,
        link: &Link,
        at: &LinkAt<'_>,
        src: &Src,
        prefiltered: Option<bool>,
        found: &mut Vec<(String, Vec<u8>)>,
    ) {
        let outcome = match src {
            Src::Member(c, i) => {
                let (raw, classes) = self.vars.value(*c, *i);
                let s = slot(*c, *i);
                // `multiMatch`: the operator runs on the value and after each transformation
                // that changed it, the forms on the chain's path.
                let path = if link.multi_match {
                    set.chains.path(at.node)
                } else {
                    std::slice::from_ref(&at.node)
                };
                let mut outcome = None;
                for &node in path {
                    let (bytes, form) =
                        self.forms
                            .get(&set.chains, &mut self.steps, s, node, raw, classes);
                    if link.multi_match && form != node {
                        continue;
                    }
                    self.steps += bytes.len() as u64 + 1;
                    // The shared scan, once per distinct form of a request value.
                    let prefiltered = match prefiltered {
                        None if !at.cache.lits.is_empty() => {
                            let hits = hits_of(
                                &mut self.hits,
                                &set.scanners[at.side],
                                &mut self.steps,
                                (s, form, at.side),
                                &bytes,
                            );
                            Some(hits.is_some_and(|hits| at.cache.hit(&hits)))
                        }
                        p => p,
                    };
                    if let Some(o) = self.operate(rule, link, at.cache, &bytes, prefiltered) {
                        outcome = Some((o, bytes.to_vec()));
                        break;
                    }
                }
                outcome
            }
            Src::Owned(_, _, raw) => {
                if link.multi_match {
                    self.multi_match(rule, link, at.cache, raw)
                } else {
                    let new = uncached(&mut self.steps, &link.transforms, raw);
                    let bytes: &[u8] = new.as_deref().unwrap_or(raw);
                    self.steps += bytes.len() as u64 + 1;
                    self.operate(rule, link, at.cache, bytes, None)
                        .map(|o| (o, bytes.to_vec()))
                }
            }
        };
        let Some((out, bytes)) = outcome else {
            return;
        };
        if link.capture {
            for (k, c) in out.captures.iter().enumerate() {
                self.tx
                    .insert(k.to_string(), String::from_utf8_lossy(c).into_owned());
            }
        }
        let name = self.src_name(src);
        self.matched_var_name.clone_from(&name);
        found.push((name, bytes.clone()));
        self.matched_var = bytes;
        self.run_actions(rule, &link.actions);
    }

    /// The index in `lists` of the members a link's target list `v` names for `rule`: the
    /// list less its exclusions and those a `ctl` added for the rule (CRS's 941010 removes
    /// REQUEST_FILENAME from every XSS rule, for example). Resolved once per phase and set of
    /// exclusions; `None` past 64 runtime exclusions, which the caller resolves itself.
    fn list(&mut self, set: &RuleSet, rule: &Rule, v: u16) -> Option<u32> {
        let mut mask = 0u64;
        for (k, (r, _)) in self.removed_targets.iter().enumerate() {
            if self.names(r, rule) {
                if k >= 64 {
                    return None;
                }
                mask |= 1 << k;
            }
        }
        if let Some(&l) = self.list_index.get(&(v, mask)) {
            return Some(l);
        }
        let (targets, exclusions) = &set.views[v as usize];
        let exclusions: Vec<&Exclusion> = exclusions
            .iter()
            .chain(
                self.removed_targets
                    .iter()
                    .enumerate()
                    .filter(|(k, _)| mask & (1 << k) != 0)
                    .map(|(_, (_, e))| e),
            )
            .collect();
        let members: Rc<[(Collection, u32)]> = self
            .resolve_targets(set, targets, exclusions)
            .into_iter()
            .filter_map(|src| match src {
                Src::Member(c, i) => Some((c, i as u32)),
                Src::Owned(..) => None,
            })
            .collect();
        let l = self.lists.len() as u32;
        self.lists.push(members);
        self.list_index.insert((v, mask), l);
        Some(l)
    }

    /// The members of a target list whose form at `node` contains some literal, in order.
    fn candidates(&mut self, set: &RuleSet, l: u32, node: Node, side: usize) -> Rc<[Cand]> {
        let at = (l | (side as u32) << 31, node);
        if let Some(cands) = self.cands.get(&at) {
            return Rc::clone(cands);
        }
        let members = Rc::clone(&self.lists[l as usize]);
        let mut out = Vec::new();
        for &(c, i) in members.iter() {
            let s = slot(c, i as usize);
            let (raw, classes) = self.vars.value(c, i as usize);
            let (bytes, form) = self
                .forms
                .get(&set.chains, &mut self.steps, s, node, raw, classes);
            let hits = hits_of(
                &mut self.hits,
                &set.scanners[side],
                &mut self.steps,
                (s, form, side),
                &bytes,
            );
            if let Some(hits) = hits {
                out.push(Cand { c, i, hits });
            }
        }
        let cands: Rc<[Cand]> = out.into();
        self.cands.insert(at, Rc::clone(&cands));
        cands
    }

    /// Forgets what was resolved, and the forms of values replaced: the collections changed
    /// (members were added, or replaced).
    fn vars_changed(&mut self) {
        let replaced = self.vars.take_replaced();
        self.forms.forget(replaced);
        if replaced != 0 {
            self.hits.retain(|(s, _), _| !in_collections(*s, replaced));
        }
        self.cands.clear();
        self.lists.clear();
        self.list_index.clear();
    }

    fn src_name(&self, src: &Src) -> String {
        match src {
            Src::Owned(c, name, _) if name.is_empty() => collection_name(*c).to_string(),
            Src::Owned(c, name, _) => format!("{}:{name}", collection_name(*c)),
            Src::Member(c, i) => {
                let label = collection_name(*c);
                match self.vars.get(*c).get(*i) {
                    Some(m) if !m.name.is_empty() => format!("{label}:{}", m.name),
                    _ => label.to_string(),
                }
            }
        }
    }

    /// `multiMatch`: the operator runs on the value and after each transformation that
    /// changed it.
    fn multi_match(
        &mut self,
        rule: &Rule,
        link: &Link,
        cache: &LinkCache,
        raw: &[u8],
    ) -> Option<(OpOutcome, Vec<u8>)> {
        let mut cur: Vec<u8> = raw.to_vec();
        self.steps += cur.len() as u64 + 1;
        if let Some(o) = self.operate(rule, link, cache, &cur, None) {
            return Some((o, cur));
        }
        for t in &link.transforms {
            if let Some(next) = apply(*t, &cur) {
                cur = next;
                self.steps += cur.len() as u64 + 1;
                if let Some(o) = self.operate(rule, link, cache, &cur, None) {
                    return Some((o, cur));
                }
            }
        }
        None
    }

    fn operate(
        &self,
        rule: &Rule,
        link: &Link,
        cache: &LinkCache,
        value: &[u8],
        prefiltered: Option<bool>,
    ) -> Option<OpOutcome> {
        let out = run_operator(
            &link.operator.kind,
            cache,
            value,
            link.capture,
            prefiltered,
            &|e| self.expand(e, rule),
        );
        match (out, link.operator.negated) {
            (Some(o), false) => Some(o),
            (None, true) => Some(OpOutcome::default()),
            _ => None,
        }
    }

    /// The values a link's targets name, less its exclusions and the runtime ones.
    fn resolve(&self, set: &RuleSet, rule: &Rule, link: &Link) -> Vec<Src> {
        // The exclusions that apply to this link: its own and those a ctl added for this rule.
        let exclusions: Vec<&Exclusion> = link
            .exclusions
            .iter()
            .chain(
                self.removed_targets
                    .iter()
                    .filter(|(r, _)| self.names(r, rule))
                    .map(|(_, e)| e),
            )
            .collect();
        self.resolve_targets(set, &link.targets, exclusions)
    }

    fn resolve_targets(
        &self,
        set: &RuleSet,
        targets: &[Target],
        exclusions: Vec<&Exclusion>,
    ) -> Vec<Src> {
        let mut out = Vec::new();
        for target in targets {
            let c = target.collection;
            let these: Vec<&Exclusion> = exclusions
                .iter()
                .copied()
                .filter(|e| e.collection == c)
                .collect();
            let excluded = |name: &str| these.iter().any(|e| self.selects(set, &e.selector, name));
            let before = out.len();
            self.members(set, target, &excluded, these.is_empty(), &mut out);
            if target.count {
                let n = out.len() - before;
                out.truncate(before);
                out.push(Src::Owned(c, String::new(), n.to_string().into_bytes()));
            }
        }
        out
    }

    fn names(&self, r: &RuleRef, rule: &Rule) -> bool {
        match r {
            RuleRef::Ids(ranges) => ranges.iter().any(|(lo, hi)| (*lo..=*hi).contains(&rule.id)),
            RuleRef::Tag(t) => rule.tags.iter().any(|rt| rt.eq_ignore_ascii_case(t)),
        }
    }

    fn selects(&self, set: &RuleSet, sel: &Selector, name: &str) -> bool {
        match sel {
            Selector::All => true,
            Selector::Key(k) => k.eq_ignore_ascii_case(name),
            Selector::Regex(r) => set.selector_matches(r, name),
        }
    }

    fn members(
        &self,
        set: &RuleSet,
        target: &Target,
        excluded: &dyn Fn(&str) -> bool,
        no_exclusions: bool,
        out: &mut Vec<Src>,
    ) {
        let c = target.collection;
        let keep = |name: &str| {
            self.selects(set, &target.selector, name) && (no_exclusions || !excluded(name))
        };
        let owned = |out: &mut Vec<Src>, name: &str, bytes: &[u8]| {
            if keep(name) {
                out.push(Src::Owned(c, name.to_string(), bytes.to_vec()));
            }
        };
        match c {
            Collection::Tx => {
                if let Selector::Key(k) = &target.selector {
                    // The common case (`TX:paranoia_level`): one lookup, not a scan.
                    // The compiler lowercased the key, as TX names are kept.
                    if let Some(v) = self.tx.get(k.as_str()) {
                        owned(out, k, v.as_bytes());
                    }
                    return;
                }
                let mut keys: Vec<&String> = self.tx.keys().collect();
                keys.sort();
                for k in keys {
                    owned(out, k, self.tx[k].as_bytes());
                }
            }
            Collection::MatchedVar => {
                if !self.matched_var_name.is_empty() {
                    owned(out, "", &self.matched_var);
                }
            }
            Collection::MatchedVarName => {
                if !self.matched_var_name.is_empty() {
                    owned(out, "", self.matched_var_name.as_bytes());
                }
            }
            Collection::MatchedVars => {
                for (n, v) in &self.matched_vars {
                    owned(out, n.split_once(':').map_or(n, |x| x.1), v);
                }
            }
            Collection::MatchedVarsNames => {
                for (n, _) in &self.matched_vars {
                    owned(out, n.split_once(':').map_or(n, |x| x.1), n.as_bytes());
                }
            }
            _ => {
                for (i, m) in self.vars.get(c).iter().enumerate() {
                    if keep(&m.name) {
                        out.push(Src::Member(c, i));
                    }
                }
            }
        }
    }

    fn run_actions(&mut self, rule: &Rule, actions: &Actions) {
        for sv in &actions.setvars {
            let name = self.expand(&sv.name, rule).to_ascii_lowercase();
            let name = name.strip_prefix("tx.").unwrap_or(&name).to_string();
            match &sv.op {
                SetOp::Set(v) => {
                    let v = self.expand(v, rule);
                    self.tx.insert(name, v);
                }
                SetOp::Add(v) | SetOp::Sub(v) => {
                    let delta = atoi(self.expand(v, rule).as_bytes());
                    let old = self.tx.get(&name).map_or(0, |o| atoi(o.as_bytes()));
                    let new = if matches!(sv.op, SetOp::Add(_)) {
                        old.saturating_add(delta)
                    } else {
                        old.saturating_sub(delta)
                    };
                    self.tx.insert(name, new.to_string());
                }
                SetOp::Delete => {
                    self.tx.remove(&name);
                }
            }
        }
        for ctl in &actions.ctls {
            match ctl {
                Ctl::RuleRemoveById(ids) => self.removed_ids.extend(ids.iter().copied()),
                Ctl::RuleRemoveByTag(t) => self.removed_tags.push(t.clone()),
                Ctl::RuleRemoveTargetById { ids, target } => self
                    .removed_targets
                    .push((RuleRef::Ids(ids.clone()), target.clone())),
                Ctl::RuleRemoveTargetByTag { tag, target } => self
                    .removed_targets
                    .push((RuleRef::Tag(tag.clone()), target.clone())),
                Ctl::RequestBodyProcessor(p) => {
                    self.processor = Some(*p);
                    self.set_processor_var();
                    self.vars_changed();
                }
                Ctl::RuleEngine(mode) => self.engine = *mode,
                Ctl::ForceRequestBodyVariable(on) => self.force_body = *on,
                Ctl::Ignored => {}
            }
        }
    }

    /// Expands a macro string against the transaction.
    fn expand(&self, e: &Expand, rule: &Rule) -> String {
        let mut out = String::new();
        for piece in &e.0 {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::Var(c, key) => out.push_str(&self.macro_value(*c, key.as_deref(), rule)),
            }
        }
        out
    }

    fn macro_value(&self, c: Collection, key: Option<&str>, rule: &Rule) -> String {
        let lossy = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        match (c, key) {
            (Collection::Tx, Some(k)) => self.tx.get(k).cloned().unwrap_or_default(),
            (Collection::MatchedVar, _) => lossy(&self.matched_var),
            (Collection::MatchedVarName, _) => self.matched_var_name.clone(),
            (Collection::Rule, Some("id")) => rule.id.to_string(),
            (Collection::Rule, Some("msg")) => rule
                .msg
                .as_ref()
                .map(|m| self.expand(m, rule))
                .unwrap_or_default(),
            (Collection::Rule, Some("severity")) => rule
                .severity
                .map(|s| severity(Some(s)).as_str().to_string())
                .unwrap_or_default(),
            (c, Some(k)) => self
                .vars
                .get(c)
                .iter()
                .find(|m| m.name.eq_ignore_ascii_case(k))
                .map(|m| lossy(&m.value))
                .unwrap_or_default(),
            (c, None) => self
                .vars
                .get(c)
                .first()
                .map(|m| lossy(&m.value))
                .unwrap_or_default(),
        }
    }

    fn verdict(self, score_key: &str, threshold_key: &str) -> Verdict {
        let num = |k: &str| {
            self.tx
                .get(k)
                .map_or(0, |v| atoi(v.as_bytes()).clamp(0, u32::MAX as i64) as u32)
        };
        let score = num(score_key);
        let threshold = num(threshold_key);
        let blocked = self.denied
            || (self.partial
                && (self.rules.config.on_budget == OnBudget::Block
                    || (threshold > 0 && score >= threshold)));
        Verdict {
            decision: if blocked && self.engine == EngineMode::On {
                Disposition::Deny
            } else {
                Disposition::Allow
            },
            anomaly_score: score,
            threshold,
            matched_rules: self.matched,
            partial: self.partial,
            steps: self.steps,
        }
    }
}

fn severity(s: Option<Severity>) -> CrsSeverity {
    match s {
        Some(Severity::Emergency | Severity::Alert | Severity::Critical) => CrsSeverity::Critical,
        Some(Severity::Error) => CrsSeverity::Error,
        Some(Severity::Warning) => CrsSeverity::Warning,
        _ => CrsSeverity::Notice,
    }
}

/// The name SecLang prints for a collection in MATCHED_VAR_NAME.
pub(crate) fn collection_name(c: Collection) -> &'static str {
    match c {
        Collection::Args => "ARGS",
        Collection::ArgsNames => "ARGS_NAMES",
        Collection::ArgsGet => "ARGS_GET",
        Collection::ArgsGetNames => "ARGS_GET_NAMES",
        Collection::ArgsPost => "ARGS_POST",
        Collection::ArgsPostNames => "ARGS_POST_NAMES",
        Collection::ArgsCombinedSize => "ARGS_COMBINED_SIZE",
        Collection::Files => "FILES",
        Collection::FilesNames => "FILES_NAMES",
        Collection::FilesSizes => "FILES_SIZES",
        Collection::FilesCombinedSize => "FILES_COMBINED_SIZE",
        Collection::MultipartPartHeaders => "MULTIPART_PART_HEADERS",
        Collection::MultipartStrictError => "MULTIPART_STRICT_ERROR",
        Collection::MultipartUnmatchedBoundary => "MULTIPART_UNMATCHED_BOUNDARY",
        Collection::QueryString => "QUERY_STRING",
        Collection::RemoteAddr => "REMOTE_ADDR",
        Collection::ReqbodyError => "REQBODY_ERROR",
        Collection::ReqbodyProcessor => "REQBODY_PROCESSOR",
        Collection::RequestBasename => "REQUEST_BASENAME",
        Collection::RequestBody => "REQUEST_BODY",
        Collection::RequestBodyLength => "REQUEST_BODY_LENGTH",
        Collection::RequestCookies => "REQUEST_COOKIES",
        Collection::RequestCookiesNames => "REQUEST_COOKIES_NAMES",
        Collection::RequestFilename => "REQUEST_FILENAME",
        Collection::RequestHeaders => "REQUEST_HEADERS",
        Collection::RequestHeadersNames => "REQUEST_HEADERS_NAMES",
        Collection::RequestLine => "REQUEST_LINE",
        Collection::RequestMethod => "REQUEST_METHOD",
        Collection::RequestProtocol => "REQUEST_PROTOCOL",
        Collection::RequestUri => "REQUEST_URI",
        Collection::RequestUriRaw => "REQUEST_URI_RAW",
        Collection::ResponseBody => "RESPONSE_BODY",
        Collection::ResponseContentType => "RESPONSE_CONTENT_TYPE",
        Collection::ResponseHeaders => "RESPONSE_HEADERS",
        Collection::ResponseHeadersNames => "RESPONSE_HEADERS_NAMES",
        Collection::ResponseProtocol => "RESPONSE_PROTOCOL",
        Collection::ResponseStatus => "RESPONSE_STATUS",
        Collection::Tx => "TX",
        Collection::UniqueId => "UNIQUE_ID",
        Collection::UrlencodedError => "URLENCODED_ERROR",
        Collection::Xml => "XML",
        Collection::MatchedVar => "MATCHED_VAR",
        Collection::MatchedVarName => "MATCHED_VAR_NAME",
        Collection::MatchedVars => "MATCHED_VARS",
        Collection::MatchedVarsNames => "MATCHED_VARS_NAMES",
        Collection::Rule => "RULE",
    }
}

/// Match data as ModSecurity logs it: control characters escaped (`\x0d\x0a`), cut at 512
/// bytes.
fn clip(s: &str) -> String {
    const MAX: usize = 512;
    let mut out = String::with_capacity(s.len().min(MAX + 3));
    for c in s.chars() {
        if out.len() >= MAX {
            out.push_str("...");
            break;
        }
        if c.is_ascii_control() {
            out.push_str(&format!("\\x{:02x}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}
