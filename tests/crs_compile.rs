//! The SecLang compiler against the vendored CRS (`crs/rules`): every file compiles, the
//! compiled rules say what the rule text says, bad input is refused with its file and line, and
//! every regex prefilter is a necessary condition on the regex's matches.

use edge_gateway::waf::program::{
    self, Collection, Disruptive, OperatorKind, Program, Rule, RuleKind, Selector, Severity,
    Transform,
};
use edge_gateway::waf::seclang::{
    self, compile, compile_traced, vendored, vendored_data, Reason, SeclangError, Source,
    DATA_FILES, RULE_FILES,
};
use std::collections::{BTreeSet, HashMap};
use std::path::Path;

const RULES_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/crs/rules");

fn data(name: &str) -> Option<String> {
    vendored_data(name).map(str::to_string)
}

fn rule(p: &Program, id: u32) -> &Rule {
    p.rules
        .iter()
        .find(|r| r.id == id)
        .unwrap_or_else(|| panic!("rule {id} missing"))
}

/// The rule text without comments, continuation lines joined (as ModSecurity reads it).
fn logical_lines(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        match line.strip_suffix('\\') {
            Some(head) => current.push_str(head),
            None => {
                current.push_str(line);
                let l = std::mem::take(&mut current);
                if !l.trim_start().starts_with('#') && !l.trim().is_empty() {
                    out.push(l);
                }
            }
        }
    }
    out
}

#[test]
fn the_embedded_lists_name_every_vendored_file() {
    let mut conf = Vec::new();
    let mut data = Vec::new();
    for entry in std::fs::read_dir(RULES_DIR).expect("crs/rules") {
        let name = entry
            .expect("entry")
            .file_name()
            .to_string_lossy()
            .to_string();
        if name.ends_with(".conf") {
            conf.push(name);
        } else if name.ends_with(".data") {
            data.push(name);
        }
    }
    // ModSecurity's `Include rules/*.conf` loads them in name order.
    conf.sort();
    data.sort();
    let listed: Vec<&str> = RULE_FILES.iter().map(|(n, _)| *n).collect();
    assert_eq!(listed, conf, "RULE_FILES in src/waf/seclang/vendored.rs");
    let listed: Vec<&str> = DATA_FILES.iter().map(|(n, _)| *n).collect();
    assert_eq!(listed, data, "DATA_FILES in src/waf/seclang/vendored.rs");
    for (name, text) in RULE_FILES.iter().chain(DATA_FILES) {
        let on_disk = std::fs::read_to_string(Path::new(RULES_DIR).join(name)).expect("read");
        assert_eq!(*text, on_disk, "{name} is embedded as it is on disk");
    }
}

#[test]
fn every_vendored_file_compiles_with_one_rule_per_id() {
    let sources = seclang::vendored_sources();
    let (program, origins) = match compile_traced(&sources, &data) {
        Ok(x) => x,
        Err(errors) => panic!(
            "{}",
            errors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        ),
    };
    assert_eq!(&program, vendored());
    assert_eq!(program.format, program::FORMAT);
    assert!(
        program.crs_version.starts_with("OWASP_CRS/4."),
        "{}",
        program.crs_version
    );
    let id = regex::Regex::new(r"\bid:[0-9]+").expect("regex");
    let marker = regex::Regex::new(r"^\s*SecMarker\b").expect("regex");
    let mut total = 0;
    for (index, source) in sources.iter().enumerate() {
        let lines = logical_lines(source.text);
        let ids: usize = lines.iter().map(|l| id.find_iter(l).count()).sum();
        let markers = lines.iter().filter(|l| marker.is_match(l)).count();
        let here: Vec<&Rule> = program
            .rules
            .iter()
            .zip(&origins)
            .filter(|(_, o)| o.source == index)
            .map(|(r, _)| r)
            .collect();
        let rules = here.iter().filter(|r| r.id != 0).count();
        assert_eq!(rules, ids, "{}: rules against `id:`s", source.file);
        assert_eq!(here.len() - rules, markers, "{}: markers", source.file);
        total += here.len();
    }
    assert_eq!(total, program.rules.len());
    eprintln!(
        "{} rules and markers from {} files",
        program.rules.len(),
        sources.len()
    );
}

#[test]
fn compiled_rules_say_what_the_rule_text_says() {
    let p = vendored();
    // 942100: libinjection's SQLi detection on the request's usual targets, PL1, critical.
    let r = rule(p, 942100);
    assert_eq!((r.phase, r.paranoia), (2, 1));
    assert_eq!(r.severity, Some(Severity::Critical));
    assert_eq!(r.disruptive, Disruptive::Pass);
    assert!(r.log);
    let RuleKind::Match(links) = &r.kind else {
        panic!("942100 is a SecRule")
    };
    assert_eq!(links.len(), 1);
    let link = &links[0];
    assert_eq!(link.operator.kind, OperatorKind::DetectSqli);
    assert!(!link.operator.negated);
    assert!(link.capture && link.multi_match);
    assert_eq!(
        link.transforms,
        [
            Transform::Utf8ToUnicode,
            Transform::UrlDecodeUni,
            Transform::RemoveNulls
        ]
    );
    let targets: Vec<(Collection, Selector)> = link
        .targets
        .iter()
        .map(|t| (t.collection, t.selector.clone()))
        .collect();
    assert_eq!(
        targets,
        [
            (Collection::RequestCookies, Selector::All),
            (Collection::RequestCookiesNames, Selector::All),
            (
                Collection::RequestHeaders,
                Selector::Key("user-agent".into())
            ),
            (Collection::RequestHeaders, Selector::Key("referer".into())),
            (Collection::ArgsNames, Selector::All),
            (Collection::Args, Selector::All),
            (Collection::Xml, Selector::Key("/*".into())),
            (Collection::Xml, Selector::Key("//@*".into())),
        ]
    );
    // A PL2 rule.
    let r = rule(p, 942120);
    assert_eq!(r.paranoia, 2);
    // 949110 is the inbound blocking decision: `deny`, with the threshold as a macro.
    let r = rule(p, 949110);
    assert_eq!(r.disruptive, Disruptive::Deny);
    let RuleKind::Match(links) = &r.kind else {
        panic!("949110 is a SecRule")
    };
    assert_eq!(
        links[0].operator.kind,
        OperatorKind::Ge(program::Expand(vec![program::Piece::Var(
            Collection::Tx,
            Some("inbound_anomaly_score_threshold".into())
        )]))
    );
    // 920180 is a chain of four rules: the links carry no metadata.
    let RuleKind::Match(links) = &rule(p, 920180).kind else {
        panic!("920180 is a SecRule")
    };
    assert_eq!(links.len(), 4);
    assert!(links[0].operator.negated);
    assert_eq!(links[1].targets[0].collection, Collection::RequestMethod);
    assert!(links[2].targets[0].count && links[3].targets[0].count);
    assert_eq!(links[3].actions.setvars.len(), 1);
    // 901200 is a SecAction that initialises the scores.
    let RuleKind::Action(actions) = &rule(p, 901200).kind else {
        panic!("901200 is a SecAction")
    };
    assert!(!actions.setvars.is_empty());
    // REQUEST-999 removes Google Analytics cookies from 942290's targets.
    let RuleKind::Match(links) = &rule(p, 942290).kind else {
        panic!("942290 is a SecRule")
    };
    let excluded: Vec<&Selector> = links[0]
        .exclusions
        .iter()
        .filter(|e| e.collection == Collection::RequestCookies)
        .map(|e| &e.selector)
        .collect();
    assert!(excluded.contains(&&Selector::Regex(r"^_ga(?:_\w+)?$".into())));
    assert!(excluded.contains(&&Selector::Key("__gads".into())));
    // @pmFromFile lists are inlined, one phrase per data line.
    let RuleKind::Match(links) = &rule(p, 913100).kind else {
        panic!("913100 is a SecRule")
    };
    let OperatorKind::Pm(phrases) = &links[0].operator.kind else {
        panic!("913100 is @pmFromFile")
    };
    let lines = data("scanners-user-agents.data").expect("data file");
    let expected = lines
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .count();
    assert_eq!(phrases.len(), expected);
}

#[test]
fn skip_after_targets_are_the_markers_the_text_names() {
    let p = vendored();
    let id = regex::Regex::new(r"\bid:([0-9]+)").expect("regex");
    let skip = regex::Regex::new(r#"skipAfter:'?([^,"']+)"#).expect("regex");
    let mut checked = 0;
    for (_, text) in RULE_FILES {
        for line in logical_lines(text) {
            let (Some(id), Some(name)) = (id.captures(&line), skip.captures(&line)) else {
                continue;
            };
            let id: u32 = id[1].parse().expect("id");
            let index = p.rules.iter().position(|r| r.id == id).expect("rule");
            let target = p.rules[index].skip_after.expect("skip_after resolved") as usize;
            assert!(target > index, "rule {id} skips forward");
            assert_eq!(
                p.rules[target].kind,
                RuleKind::Marker(name[1].trim().to_string()),
                "rule {id}"
            );
            checked += 1;
        }
    }
    assert!(checked > 150, "{checked}");
    let resolved = p.rules.iter().filter(|r| r.skip_after.is_some()).count();
    assert_eq!(resolved, checked);
}

#[test]
fn the_program_survives_json() {
    let p = vendored();
    let json = serde_json::to_vec(p).expect("serialize");
    let back: Program = serde_json::from_slice(&json).expect("deserialize");
    assert_eq!(&back, p);
    let rx = p
        .rules
        .iter()
        .filter_map(|r| match &r.kind {
            RuleKind::Match(links) => Some(links),
            _ => None,
        })
        .flatten()
        .filter(|l| matches!(l.operator.kind, OperatorKind::Rx { .. }))
        .count();
    eprintln!(
        "vendored program: {} bytes of JSON, {} rules, {rx} regexes",
        json.len(),
        p.rules.len()
    );
}

fn error(file: &str, text: &str) -> Vec<SeclangError> {
    let files = |name: &str| (name == "ok.data").then(|| "a\nb\n".to_string());
    match compile(&[Source { file, text }], &files) {
        Ok(_) => panic!("{text} compiled"),
        Err(e) => e,
    }
}

#[test]
fn bad_input_is_refused_with_its_file_and_line() {
    let cases: &[(&str, u32, Option<u32>, Reason)] = &[
        (
            "SecMarker A\n\nSecRule ARGS \\\n  \"@foo x\" \"id:7,pass\"",
            3,
            Some(7),
            Reason::UnknownOperator("foo".into()),
        ),
        (
            "SecRule ARGS|NOPE \"@rx a\" \"id:8\"",
            1,
            Some(8),
            Reason::UnknownVariable("NOPE".into()),
        ),
        (
            "\nSecRule ARGS \"@rx a\" \"id:9,frob\"",
            2,
            Some(9),
            Reason::UnknownAction("frob".into()),
        ),
        (
            "SecRule ARGS \"@rx a\" \"id:10,skipAfter:END\"\nSecMarker END-X",
            1,
            Some(10),
            Reason::MissingMarker("END".into()),
        ),
        (
            "SecRule ARGS \"@pmFromFile missing.data\" \"id:11\"",
            1,
            Some(11),
            Reason::MissingDataFile("missing.data".into()),
        ),
        (
            "SecRule ARGS \"@rx a\" \"id:12,chain\"\nSecRule ARGS \"@rx b\" \"msg:'x'\"",
            2,
            Some(12),
            Reason::NotInChainLink("msg".into()),
        ),
        (
            "SecRule ARGS \"@rx a\" \"id:13,chain\"\nSecMarker X",
            1,
            Some(13),
            Reason::ChainNotContinued,
        ),
        (
            "SecRule ARGS \"@rx a\" \"phase:2\"",
            1,
            None,
            Reason::MissingId,
        ),
        (
            "SecRule ARGS \"@rx a\" \"id:14\"\nSecRule ARGS \"@rx a\" \"id:14\"",
            2,
            Some(14),
            Reason::DuplicateId(14),
        ),
        (
            "SecRuleEngine On",
            1,
            None,
            Reason::UnknownDirective("SecRuleEngine".into()),
        ),
        (
            "SecRuleUpdateTargetById 99 \"!ARGS:x\"",
            1,
            Some(99),
            Reason::UnknownRuleId(99),
        ),
        (
            "SecRule ARGS \"@rx a\" \"id:15,t:md5\"",
            1,
            Some(15),
            Reason::UnknownTransform("md5".into()),
        ),
    ];
    for (text, line, rule, reason) in cases {
        let errors = error("case.conf", text);
        assert_eq!(
            errors,
            [SeclangError {
                file: "case.conf".into(),
                line: *line,
                rule: *rule,
                reason: reason.clone(),
            }],
            "{text}"
        );
    }
    // Errors whose details come from other crates: matched by kind.
    let e = error(
        "REQUEST-942-APPLICATION-ATTACK-SQLI.conf",
        "# c\nSecRule ARGS \"@rx (a\" \"id:942100\"",
    );
    assert!(matches!(e[0].reason, Reason::BadRegex { .. }), "{e:?}");
    assert!(
        e[0].to_string().starts_with(
            "REQUEST-942-APPLICATION-ATTACK-SQLI.conf:2: rule 942100: regex does not compile: (a"
        ),
        "{}",
        e[0]
    );
    let e = error(
        "q.conf",
        "SecMarker A\nSecRule ARGS \"@rx a\" \"id:1,msg:'x\"\n",
    );
    assert_eq!((e[0].line, &e[0].reason), (2, &Reason::UnterminatedQuote));
    let e = error("q.conf", "SecMarker A\nSecRule ARGS \"@rx a\n");
    assert_eq!((e[0].line, &e[0].reason), (2, &Reason::UnterminatedQuote));
    assert_eq!(
        error("e.conf", "SecRule ARGS \"@foo\" \"id:3\"")[0].to_string(),
        "e.conf:1: rule 3: unknown operator @foo"
    );
    // A chain whose first rule is refused: its links are dropped, not joined to the rule
    // before, and their own errors are still reported.
    let e = error(
        "c.conf",
        "SecRule ARGS \"@rx a\" \"id:1\"\n\
         SecRule ARGS \"@rx a\" \"id:1,chain\"\n\
         \tSecRule ARGS \"@frob\" \"chain\"\n\
         \tSecRule ARGS \"@rx b\" \"t:none\"\n\
         SecRule ARGS \"@rx a\" \"id:2\"\n",
    );
    let found: Vec<(u32, &Reason)> = e.iter().map(|e| (e.line, &e.reason)).collect();
    assert_eq!(
        found,
        [
            (2, &Reason::DuplicateId(1)),
            (3, &Reason::UnknownOperator("frob".into()))
        ]
    );
    // Every error is reported, not only the first.
    let e = error(
        "m.conf",
        "SecRule ARGS \"@foo\" \"id:1\"\nSecRule ARGS \"@rx a\" \"id:2,frob\"\n",
    );
    assert_eq!(e.len(), 2);
    // A good file with every construct compiles.
    let files = |name: &str| (name == "ok.data").then(|| "a\nb\n".to_string());
    let ok = "SecComponentSignature \"X/1\"\n\
        SecAction \"id:1,phase:1,pass,nolog,setvar:'tx.a=1'\"\n\
        SecRule &ARGS \"@eq 0\" \"id:2,phase:1,pass,skipAfter:END\"\n\
        SecRule ARGS \"@pmFromFile ok.data\" \"id:3,phase:2,block,chain\"\n\
        \tSecRule TX:a \"@gt 0\" \"setvar:'tx.b=+%{tx.a}'\"\n\
        SecMarker \"END\"\n";
    let p = compile(
        &[Source {
            file: "ok.conf",
            text: ok,
        }],
        &files,
    )
    .expect("compiles");
    assert_eq!(p.crs_version, "X/1");
    assert_eq!(p.rules.len(), 4);
    assert_eq!(p.rules[1].skip_after, Some(3));
}

/// Strings to try every CRS regex on: every scalar of the regression tests (URIs, bodies,
/// headers), URL-decoded, split at `&` and `=`, lowercased, and random strings.
fn samples() -> Vec<Vec<u8>> {
    let mut set: BTreeSet<Vec<u8>> = BTreeSet::new();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/crs-regression");
    let mut raw = Vec::new();
    for dir in std::fs::read_dir(&root).expect("tests/crs-regression") {
        let dir = dir.expect("dir").path();
        // The rule-file folders; the runner's baseline and README sit beside them.
        if !dir.is_dir() {
            continue;
        }
        for file in std::fs::read_dir(dir).expect("dir") {
            let path = file.expect("file").path();
            if path.extension().is_none_or(|e| e != "yaml") {
                continue;
            }
            let text = std::fs::read_to_string(path).expect("yaml");
            for event in saphyr_parser::Parser::new_from_str(&text) {
                let (event, _) = event.expect("yaml parses");
                if let saphyr_parser::Event::Scalar(value, ..) = event {
                    raw.push(value.into_owned());
                }
            }
        }
    }
    for value in raw {
        let decoded = url_decode(value.as_bytes());
        for form in [value.as_bytes().to_vec(), decoded] {
            let mut parts = vec![form.clone()];
            parts.extend(form.split(|b| *b == b'&').map(<[u8]>::to_vec));
            parts.extend(form.split(|b| *b == b'&' || *b == b'=').map(<[u8]>::to_vec));
            for p in parts {
                set.insert(p.to_ascii_lowercase());
                set.insert(p);
            }
        }
    }
    let alphabet: &[u8] =
        b"aeiostnrSELCTUNIOabc019 '\"<>/\\;:()[]{}$%&|=-_.*?!@#\t\n\r\x00\x0b\xe2\x91\xa0\xbc";
    let mut rng = fastrand::Rng::with_seed(15);
    for _ in 0..2000 {
        let len = rng.usize(0..24);
        set.insert(
            (0..len)
                .map(|_| alphabet[rng.usize(..alphabet.len())])
                .collect(),
        );
    }
    set.into_iter().collect()
}

fn url_decode(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (
            s[i],
            s.get(i + 1).copied().and_then(hex),
            s.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b'+', ..) => {
                out.push(b' ');
                i += 1;
            }
            (b, ..) => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn every_prefilter_holds_on_every_match() {
    let p = vendored();
    let samples = samples();
    let mut regexes = HashMap::new();
    for r in &p.rules {
        let RuleKind::Match(links) = &r.kind else {
            continue;
        };
        for l in links {
            if let OperatorKind::Rx { pattern, prefilter } = &l.operator.kind {
                regexes.insert(pattern.clone(), (r.id, prefilter.clone()));
            }
        }
    }
    let lowered: Vec<Vec<u8>> = samples.iter().map(|s| s.to_ascii_lowercase()).collect();
    let mut with = 0;
    let mut matched = 0;
    let mut shortest = [0usize; 4];
    for (pattern, (id, prefilter)) in &regexes {
        let Some(literals) = prefilter else { continue };
        with += 1;
        let min = literals.iter().map(String::len).min().unwrap_or(0);
        shortest[min.min(3)] += 1;
        // Up to 64 from products and concatenations, up to 1,024 from the union of an
        // alternation's branches (CRS's lists of commands).
        assert!(!literals.is_empty() && literals.len() <= 1024, "rule {id}");
        // A one-letter literal would fire on nearly every value: such a regex has none.
        assert!(
            !literals
                .iter()
                .any(|l| l.len() == 1 && (l.as_bytes()[0].is_ascii_alphanumeric() || l == " ")),
            "rule {id}: {literals:?}"
        );
        assert!(literals
            .iter()
            .all(|l| !l.is_empty() && *l == l.to_ascii_lowercase()));
        let re = program::rx_builder(pattern).build().expect("compiles");
        for (sample, low) in samples.iter().zip(&lowered) {
            if literals.iter().any(|l| contains(low, l.as_bytes())) {
                matched += usize::from(re.is_match(sample));
                continue;
            }
            assert!(
                !re.is_match(sample),
                "rule {id}: {pattern} matches {:?} but none of {literals:?} is in it",
                String::from_utf8_lossy(sample)
            );
        }
    }
    eprintln!(
        "{with} of {} distinct regexes have a prefilter ({:.0}%); tried on {} samples; \
         {matched} matches, each with its prefilter holding; shortest literal 1, 2, 3+ bytes: \
         {}, {}, {}",
        regexes.len(),
        100.0 * with as f64 / regexes.len() as f64,
        samples.len(),
        shortest[1],
        shortest[2],
        shortest[3]
    );
    assert!(matched > 500, "the samples exercise the regexes: {matched}");
}

/// The engine decides `@rx` with a forward lazy DFA of its own: on every CRS regex and every
/// sample it must agree with the `regex` crate compiled as the engine compiles it.
#[test]
fn every_regex_dfa_agrees_with_the_regex_crate() {
    let p = vendored();
    let samples = samples();
    let mut patterns = std::collections::BTreeSet::new();
    for r in &p.rules {
        if let RuleKind::Match(links) = &r.kind {
            for l in links {
                if let OperatorKind::Rx { pattern, .. } = &l.operator.kind {
                    patterns.insert(pattern.clone());
                }
            }
        }
    }
    let (mut matches, mut gave_up) = (0, 0);
    for pattern in &patterns {
        let re = program::rx_builder(pattern)
            .dot_matches_new_line(true)
            .multi_line(true)
            .build()
            .expect("compiles");
        let got = edge_gateway::waf::rx_dfa_matches(pattern, &samples).expect("the DFA builds");
        for (sample, dfa) in samples.iter().zip(got) {
            let want = re.is_match(sample);
            matches += usize::from(want);
            match dfa {
                Some(d) => assert_eq!(
                    d,
                    want,
                    "{pattern} on {:?}",
                    String::from_utf8_lossy(sample)
                ),
                None => gave_up += 1,
            }
        }
    }
    eprintln!(
        "{} regexes × {} samples: {matches} matches, the DFA gave up {gave_up} times",
        patterns.len(),
        samples.len()
    );
    assert!(matches > 10_000, "{matches}");
}

/// Damaged rule text (CRS's own, with SecLang's syntax characters sprinkled in and lines cut)
/// is compiled or refused, never a panic.
#[test]
fn damaged_rule_text_never_panics() {
    let mut rng = fastrand::Rng::with_seed(42);
    let noise: &[char] = &[
        '"', '\'', '\\', ',', ':', '|', '!', '&', '@', '%', '{', '}', '/', '\n', ' ', '(', '[', '-',
    ];
    let mut refused = 0;
    for _ in 0..2000 {
        let (_, text) = RULE_FILES[rng.usize(..RULE_FILES.len())];
        let lines: Vec<&str> = text.lines().collect();
        let start = rng.usize(..lines.len());
        let end = (start + rng.usize(1..60)).min(lines.len());
        let mut chars: Vec<char> = lines[start..end].join("\n").chars().collect();
        for _ in 0..rng.usize(0..6) {
            if chars.is_empty() {
                break;
            }
            let at = rng.usize(..chars.len());
            match rng.u8(..3) {
                0 => chars[at] = noise[rng.usize(..noise.len())],
                1 => {
                    chars.remove(at);
                }
                _ => chars.insert(at, noise[rng.usize(..noise.len())]),
            }
        }
        let text: String = chars.into_iter().collect();
        if let Err(errors) = compile(
            &[Source {
                file: "x.conf",
                text: &text,
            }],
            &data,
        ) {
            assert!(!errors.is_empty());
            refused += 1;
        }
    }
    assert!(refused > 0, "some damage is noticed");
}
