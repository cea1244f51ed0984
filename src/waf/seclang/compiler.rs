//! The driver: directives to rules, chains to links, markers to indexes.

use super::actions::{self, ActionSet, Item};
use super::error::{Reason, SeclangError};
use super::lexer::{directives, Directive};
use super::operators::{self, DataFile};
use super::targets;
use super::Source;
use crate::waf::program::{Actions, Disruptive, Link, Program, Rule, RuleKind, FORMAT};
use std::collections::HashSet;

/// Where a rule was written: the index of its source and the line it starts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Origin {
    pub source: usize,
    pub line: u32,
}

/// Whether the rule just read asked for a chained rule to follow.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Chain {
    Closed,
    /// The next directive must be a `SecRule`: a link of the last rule.
    Open,
    /// The chain's first rule had an error: its links are read and dropped.
    Broken,
}

struct Builder<'a> {
    sources: &'a [Source<'a>],
    data_file: DataFile<'a>,
    rules: Vec<Rule>,
    origins: Vec<Origin>,
    /// Parallel to `rules`: the `skipAfter` marker name, resolved at the end.
    skip_after: Vec<Option<String>>,
    ids: HashSet<u32>,
    crs_version: String,
    chain: Chain,
    errors: Vec<SeclangError>,
}

pub fn build(
    sources: &[Source<'_>],
    data_file: DataFile<'_>,
) -> Result<(Program, Vec<Origin>), Vec<SeclangError>> {
    let mut b = Builder {
        sources,
        data_file,
        rules: Vec::new(),
        origins: Vec::new(),
        skip_after: Vec::new(),
        ids: HashSet::new(),
        crs_version: String::new(),
        chain: Chain::Closed,
        errors: Vec::new(),
    };
    for (index, source) in sources.iter().enumerate() {
        let (list, errors) = directives(source.text);
        for (line, reason) in errors {
            b.error(index, line, None, reason);
        }
        for d in &list {
            b.directive(index, d);
        }
        if b.chain == Chain::Open {
            let (origin, id) = b.last_rule();
            b.error(origin.source, origin.line, id, Reason::ChainNotContinued);
        }
        b.chain = Chain::Closed;
    }
    b.resolve_markers();
    if !b.errors.is_empty() {
        return Err(b.errors);
    }
    let program = Program {
        format: FORMAT,
        crs_version: b.crs_version,
        rules: b.rules,
    };
    Ok((program, b.origins))
}

impl Builder<'_> {
    fn error(&mut self, source: usize, line: u32, rule: Option<u32>, reason: Reason) {
        let file = self.sources.get(source).map(|s| s.file).unwrap_or_default();
        self.errors.push(SeclangError {
            file: file.to_string(),
            line,
            rule,
            reason,
        });
    }

    fn last_rule(&self) -> (Origin, Option<u32>) {
        let origin = self
            .origins
            .last()
            .copied()
            .unwrap_or(Origin { source: 0, line: 0 });
        (origin, self.rules.last().map(|r| r.id))
    }

    fn directive(&mut self, source: usize, d: &Directive) {
        let name = d.name.to_ascii_lowercase();
        if name != "secrule" && self.chain != Chain::Closed {
            if self.chain == Chain::Open {
                let (origin, id) = self.last_rule();
                self.error(origin.source, origin.line, id, Reason::ChainNotContinued);
            }
            self.chain = Chain::Closed;
        }
        let origin = Origin {
            source,
            line: d.line,
        };
        let result = match name.as_str() {
            "secrule" => self.sec_rule(origin, d),
            "secaction" => self.sec_action(origin, d),
            "secmarker" => self.sec_marker(origin, d),
            "seccomponentsignature" => args(d, "SecComponentSignature", "1", 1, 1).map(|a| {
                if let Some(v) = a.first() {
                    self.crs_version.clone_from(v);
                }
            }),
            "secruleupdatetargetbyid" => self.update_target(d),
            _ => Err((None, Reason::UnknownDirective(d.name.clone()))),
        };
        if let Err((id, reason)) = result {
            self.error(source, d.line, id, reason);
        }
    }

    /// `SecRule VARIABLES OPERATOR [ACTIONS]`: a rule, or a link of the open chain.
    fn sec_rule(&mut self, origin: Origin, d: &Directive) -> Result<(), (Option<u32>, Reason)> {
        let state = std::mem::replace(&mut self.chain, Chain::Closed);
        let link_of = match state {
            Chain::Open => self.rules.last().map(|r| r.id),
            _ => None,
        };
        let items = args(d, "SecRule", "2 or 3", 2, 3)
            .map_err(|e| e.1)
            .and_then(|a| Ok((a, actions::split(a.get(2).map_or("", String::as_str))?)));
        let chains = items
            .as_ref()
            .is_ok_and(|(_, items)| items.iter().any(|i| i.name.eq_ignore_ascii_case("chain")));
        let id = link_of.or_else(|| items.as_ref().ok().and_then(|(_, i)| actions::id(i)));
        let parsed = items.and_then(|(a, items)| self.link(a, &items));
        // A chain whose first rule or a link failed is read to its end and dropped.
        self.chain = match (chains, state, &parsed) {
            (false, ..) => Chain::Closed,
            (true, Chain::Broken, _) | (true, _, Err(_)) => Chain::Broken,
            (true, _, Ok(_)) => Chain::Open,
        };
        let (link, acts) = parsed.map_err(|e| (id, e))?;
        if state == Chain::Broken {
            return Ok(());
        }
        if link_of.is_none() {
            let skip_after = acts.skip_after.clone();
            let pushed = self
                .rule(&acts, RuleKind::Match(vec![link]))
                .and_then(|rule| self.push(rule, origin, skip_after).map_err(|e| (id, e)));
            if pushed.is_err() && chains {
                // Its links must not join the rule before it.
                self.chain = Chain::Broken;
            }
            return pushed;
        }
        if let Some(action) = acts.starter_only.first() {
            self.chain = if chains { Chain::Broken } else { Chain::Closed };
            return Err((id, Reason::NotInChainLink(action.clone())));
        }
        if let Some(Rule {
            kind: RuleKind::Match(links),
            ..
        }) = self.rules.last_mut()
        {
            links.push(link);
        }
        Ok(())
    }

    /// A link: targets, operator and the actions a link may carry.
    fn link(&self, a: &[String], items: &[Item]) -> Result<(Link, ActionSet), Reason> {
        let acts = ActionSet::from_items(items)?;
        let (targets, exclusions) = targets::parse(a.first().map_or("", String::as_str))?;
        let operator = operators::parse(a.get(1).map_or("", String::as_str), self.data_file)?;
        let link = Link {
            targets,
            exclusions,
            transforms: acts.transforms.clone(),
            operator,
            actions: Actions {
                setvars: acts.setvars.clone(),
                ctls: acts.ctls.clone(),
            },
            capture: acts.capture,
            multi_match: acts.multi_match,
        };
        Ok((link, acts))
    }

    /// A rule from its first link's actions.
    fn rule(&self, acts: &ActionSet, kind: RuleKind) -> Result<Rule, (Option<u32>, Reason)> {
        let id = acts.id.ok_or((None, Reason::MissingId))?;
        let paranoia = paranoia(&acts.tags).map_err(|e| (Some(id), e))?;
        Ok(Rule {
            id,
            phase: acts.phase.unwrap_or(2),
            paranoia,
            kind,
            msg: acts.msg.clone(),
            logdata: acts.logdata.clone(),
            severity: acts.severity,
            tags: acts.tags.clone(),
            log: acts.log.unwrap_or(true),
            disruptive: acts.disruptive.unwrap_or(Disruptive::Pass),
            skip_after: None,
            skip: acts.skip.unwrap_or(0),
            status: acts.status,
        })
    }

    fn push(
        &mut self,
        rule: Rule,
        origin: Origin,
        skip_after: Option<String>,
    ) -> Result<(), Reason> {
        if rule.id != 0 && !self.ids.insert(rule.id) {
            return Err(Reason::DuplicateId(rule.id));
        }
        self.rules.push(rule);
        self.origins.push(origin);
        self.skip_after.push(skip_after);
        Ok(())
    }

    /// `SecAction ACTIONS`: actions that run unconditionally.
    fn sec_action(&mut self, origin: Origin, d: &Directive) -> Result<(), (Option<u32>, Reason)> {
        let a = args(d, "SecAction", "1", 1, 1)?;
        let items = actions::split(a.first().map_or("", String::as_str)).map_err(|e| (None, e))?;
        let id = actions::id(&items);
        let acts = ActionSet::from_items(&items).map_err(|e| (id, e))?;
        if acts.chain {
            return Err((id, Reason::Unsupported("chain on SecAction".into())));
        }
        let kind = RuleKind::Action(Actions {
            setvars: acts.setvars.clone(),
            ctls: acts.ctls.clone(),
        });
        let skip_after = acts.skip_after.clone();
        let rule = self.rule(&acts, kind)?;
        self.push(rule, origin, skip_after).map_err(|e| (id, e))
    }

    /// `SecMarker NAME`.
    fn sec_marker(&mut self, origin: Origin, d: &Directive) -> Result<(), (Option<u32>, Reason)> {
        let a = args(d, "SecMarker", "1", 1, 1)?;
        let name = a.first().cloned().unwrap_or_default();
        let rule = Rule {
            id: 0,
            phase: 0,
            paranoia: 0,
            kind: RuleKind::Marker(name),
            msg: None,
            logdata: None,
            severity: None,
            tags: Vec::new(),
            log: false,
            disruptive: Disruptive::Pass,
            skip_after: None,
            skip: 0,
            status: None,
        };
        self.push(rule, origin, None).map_err(|e| (None, e))
    }

    /// `SecRuleUpdateTargetById ID TARGETS`: adds targets and exclusions to rules already
    /// defined (their first link, as ModSecurity does).
    fn update_target(&mut self, d: &Directive) -> Result<(), (Option<u32>, Reason)> {
        let a = args(d, "SecRuleUpdateTargetById", "2", 2, 3)?;
        let bad = || Reason::BadVariable(a.join(" "));
        if a.len() == 3 {
            return Err((
                None,
                Reason::Unsupported("SecRuleUpdateTargetById with a replaced target".into()),
            ));
        }
        let ranges =
            actions::id_ranges(a.first().map_or("", String::as_str)).ok_or((None, bad()))?;
        let first = ranges.first().map(|r| r.0);
        let (targets, exclusions) =
            targets::parse_update(a.get(1).map_or("", String::as_str)).map_err(|e| (first, e))?;
        let mut found = false;
        for rule in &mut self.rules {
            if !ranges.iter().any(|(lo, hi)| (*lo..=*hi).contains(&rule.id)) {
                continue;
            }
            if let RuleKind::Match(links) = &mut rule.kind {
                if let Some(link) = links.first_mut() {
                    link.targets.extend(targets.iter().cloned());
                    link.exclusions.extend(exclusions.iter().cloned());
                    found = true;
                }
            }
        }
        if !found {
            return Err((first, Reason::UnknownRuleId(first.unwrap_or(0))));
        }
        Ok(())
    }

    /// Each `skipAfter` name becomes the index of the first marker of that name after the rule.
    fn resolve_markers(&mut self) {
        let mut missing = Vec::new();
        for (i, name) in self.skip_after.iter().enumerate() {
            let Some(name) = name else { continue };
            let target = self
                .rules
                .iter()
                .enumerate()
                .skip(i + 1)
                .find_map(|(j, r)| {
                    matches!(&r.kind, RuleKind::Marker(m) if m == name).then_some(j)
                });
            match target.and_then(|j| u32::try_from(j).ok()) {
                Some(j) => {
                    if let Some(rule) = self.rules.get_mut(i) {
                        rule.skip_after = Some(j);
                    }
                }
                None => missing.push((i, name.clone())),
            }
        }
        for (i, name) in missing {
            let origin = self
                .origins
                .get(i)
                .copied()
                .unwrap_or(Origin { source: 0, line: 0 });
            let id = self.rules.get(i).map(|r| r.id);
            self.error(origin.source, origin.line, id, Reason::MissingMarker(name));
        }
    }
}

/// The directive's arguments, `min..=max` of them.
fn args<'d>(
    d: &'d Directive,
    directive: &'static str,
    expected: &'static str,
    min: usize,
    max: usize,
) -> Result<&'d [String], (Option<u32>, Reason)> {
    if (min..=max).contains(&d.args.len()) {
        Ok(&d.args)
    } else {
        Err((
            None,
            Reason::Arguments {
                directive,
                expected,
                got: d.args.len(),
            },
        ))
    }
}

/// The paranoia level from a `paranoia-level/N` tag; 0 without one.
fn paranoia(tags: &[String]) -> Result<u8, Reason> {
    for tag in tags {
        if let Some(n) = tag.strip_prefix("paranoia-level/") {
            return n.parse().map_err(|_| Reason::BadActionValue {
                action: "tag".into(),
                value: tag.clone(),
            });
        }
    }
    Ok(0)
}
