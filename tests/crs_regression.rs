//! OWASP CRS's own regression tests (go-ftw files under `tests/crs-regression/`) run natively
//! against the WAF engine, as the conformance test of `owasp-crs-request` / `-response`.
//!
//! Each stage's request is built the way go-ftw sends it and parsed the way the web server
//! receives it (`support/ftw.rs`), inspected by the engine ([`inspect`], the one place the
//! engine is called), and judged by go-ftw's rules: every `expect_ids` id matched, no
//! `no_expect_ids` id matched, `match_regex` found in the log lines, `status` equal.
//!
//! Two configurations (`tests/crs-regression/README.md` says where each value comes from):
//! - `ci`: CRS's CI setup (paranoia level 4, DetectionOnly, the test SecAction's limits), every
//!   stage;
//! - `pl1`: ngrok's defaults (paranoia level 1, thresholds 5/4, PUT PATCH DELETE allowed),
//!   blocking, only the files of rules that run at paranoia level 1.
//!
//! `tests/crs-regression/baseline.txt` lists the stages that pass; one of them failing fails
//! the test, new passes are printed (`CRS_BASELINE=write` rewrites the file). `CRS_REPORT=1`
//! (with `--nocapture`) prints the per-file tables and the skipped stages for `docs/waf.md`.

#[path = "support/baseline.rs"]
mod baseline;
#[path = "support/ftw.rs"]
mod ftw;

use edge_gateway::waf::program::EngineMode;
use edge_gateway::waf::{Budget, CrsRules, Profile, RequestView, ResponseView};
use ftw::{BackendResponse, Received, Stage};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;

const TESTS_DIR: &str = "tests/crs-regression";
const BASELINE: &str = "tests/crs-regression/baseline.txt";
const RULES_DIR: &str = "crs/rules";

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum ConfigName {
    Ci,
    Pl1,
}

impl ConfigName {
    fn as_str(self) -> &'static str {
        match self {
            ConfigName::Ci => "ci",
            ConfigName::Pl1 => "pl1",
        }
    }
}

struct Config {
    name: ConfigName,
    profile: Profile,
    /// `tx.*` values set before CRS's own initialization, as crs-setup.conf's SecActions do.
    settings: Vec<(String, String)>,
    /// ModSecurity's `SecRuleEngine DetectionOnly`: rules match and log, nothing is refused,
    /// so the status is always the backend's.
    detection_only: bool,
}

fn setting(name: &str, value: &str) -> (String, String) {
    (name.to_string(), value.to_string())
}

/// CRS's CI: tests/docker-compose.yml (owasp/modsecurity-crs image, `BLOCKING_PARANOIA: 4`,
/// `MODSEC_RULE_ENGINE: DetectionOnly`, request body access on) and the test SecAction 900005
/// of CRS's testing documentation.
fn ci_config() -> Config {
    Config {
        name: ConfigName::Ci,
        profile: Profile {
            paranoia_level: 4,
            inbound_threshold: 5,
            outbound_threshold: 4,
            exclude_rule_ids: Vec::new(),
            process_body: true,
            // The image's SecRequestBodyLimit (MODSEC_REQ_BODY_LIMIT).
            body_limit: 13_107_200,
            ..Profile::default()
        },
        settings: vec![
            setting("blocking_paranoia_level", "4"),
            setting("crs_validate_utf8_encoding", "1"),
            setting("arg_name_length", "100"),
            setting("arg_length", "400"),
            setting("total_arg_length", "64000"),
            setting("max_num_args", "255"),
            setting("max_file_size", "64100"),
            setting("combined_file_sizes", "65535"),
        ],
        detection_only: true,
    }
}

/// ngrok's defaults: paranoia level 1, thresholds 5 and 4, blocking, with PUT PATCH DELETE
/// added to CRS's allowed methods; bodies inspected (ngrok's `process_body: true`) up to its
/// 4 KB.
fn pl1_config() -> Config {
    Config {
        name: ConfigName::Pl1,
        profile: Profile {
            paranoia_level: 1,
            inbound_threshold: 5,
            outbound_threshold: 4,
            exclude_rule_ids: Vec::new(),
            process_body: true,
            body_limit: 4096,
            ..Profile::default()
        },
        // The gateway's defaults: PUT PATCH DELETE allowed, and the JSON media types APIs use.
        settings: Profile::default().settings,
        detection_only: false,
    }
}

// ---------------------------------------------------------------------------------------------
// The engine: the only code that names it.

struct Engine(CrsRules);

/// Builds the engine for a configuration: the vendored CRS, compiled by the SecLang compiler,
/// with the configuration's profile and `tx.*` settings.
fn engine(config: &Config) -> Engine {
    let mut profile = config.profile.clone();
    // The configuration's settings replace the profile's defaults (ours extend CRS's allowed
    // methods; CRS's CI runs CRS's).
    profile.settings.clone_from(&config.settings);
    if config.detection_only {
        profile.engine = EngineMode::DetectionOnly;
    }
    Engine(CrsRules::new(
        std::sync::Arc::clone(edge_gateway::waf::vendored_rule_set()),
        &profile,
    ))
}

/// What one transaction left: the ids that matched, whether the WAF refused it, and log lines
/// in ModSecurity's shape for `match_regex`.
struct Seen {
    ids: BTreeSet<u32>,
    deny: bool,
    log: Vec<String>,
}

/// Whether the body is longer than the limit, and its first `limit` bytes: what the actions
/// hand the engine.
fn cut(body: &[u8], limit: usize) -> (bool, &[u8]) {
    (body.len() > limit, body.get(..limit).unwrap_or(body))
}

/// Runs one transaction: the request, then (unless it was refused in a blocking setup) the
/// backend's response.
fn inspect(engine: &Engine, config: &Config, req: &Received, res: &BackendResponse) -> Seen {
    let blocking = !config.detection_only;
    let limit = config.profile.body_limit;
    let (req_truncated, req_body) = cut(&req.body, limit);
    let (res_truncated, res_body) = cut(&res.body, limit);
    let (path, query) = req.path_and_query();
    let view = RequestView {
        method: &req.method,
        path,
        query,
        protocol: &req.version,
        host: req.header("Host").unwrap_or_default(),
        headers: req
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect(),
        body: req_body,
        body_truncated: req_truncated,
        remote_addr: "127.0.0.1".to_string(),
    };
    let mut verdicts = vec![engine.0.inspect_request(&view, &mut Budget::unlimited())];
    if !(blocking && verdicts[0].is_deny()) {
        let view = ResponseView {
            status: res.status,
            headers: res
                .headers
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str()))
                .collect(),
            body: res_body,
            body_truncated: res_truncated,
        };
        verdicts.push(engine.0.inspect_response(&view, &mut Budget::unlimited()));
    }
    let mut seen = Seen {
        ids: BTreeSet::new(),
        deny: false,
        log: Vec::new(),
    };
    for v in &verdicts {
        seen.deny |= v.is_deny();
        for m in &v.matched_rules {
            seen.ids.insert(m.id);
            seen.log.push(format!(
                "[id \"{}\"] [msg \"{}\"] [data \"{}\"] [severity \"{}\"]",
                m.id,
                m.message,
                m.data,
                m.severity.as_str()
            ));
        }
    }
    seen
}

// ---------------------------------------------------------------------------------------------
// Judging a stage.

enum Outcome {
    Pass,
    Fail(String),
    Skip(String),
}

fn judge(config: &Config, engine: &Engine, stage: &Stage) -> Outcome {
    let (req, res) = match &stage.exchange {
        Ok(x) => (&x.request, &x.response),
        Err(why) => return Outcome::Skip(why.clone()),
    };
    let e = &stage.expect;
    let regex = |src: &Option<String>| match src {
        None => Ok(None),
        Some(s) => regex::Regex::new(s)
            .map(Some)
            .map_err(|err| format!("match_regex is not a regex here: {err}")),
    };
    let (must, must_not) = match (regex(&e.match_regex), regex(&e.no_match_regex)) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(why), _) | (_, Err(why)) => return Outcome::Skip(why),
    };
    let blocking = !config.detection_only;
    let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        inspect(engine, config, req, res)
    }));
    let Ok(seen) = run else {
        return Outcome::Fail("the engine panicked".into());
    };
    let mut why = Vec::new();
    let missing: Vec<_> = e
        .expect_ids
        .iter()
        .filter(|id| !seen.ids.contains(id))
        .collect();
    if !missing.is_empty() {
        why.push(format!("expected {missing:?} did not match"));
    }
    let unwanted: Vec<_> = e
        .no_expect_ids
        .iter()
        .filter(|id| seen.ids.contains(id))
        .collect();
    if !unwanted.is_empty() {
        why.push(format!("{unwanted:?} matched"));
    }
    if let Some(re) = &must {
        if !seen.log.iter().any(|l| re.is_match(l)) {
            why.push(format!("no log line matches /{re}/"));
        }
    }
    if let Some(re) = &must_not {
        if seen.log.iter().any(|l| re.is_match(l)) {
            why.push(format!("a log line matches /{re}/"));
        }
    }
    if !e.status.is_empty() {
        let status = if blocking && seen.deny {
            403
        } else {
            res.status
        };
        if !e.status.contains(&status) {
            why.push(format!("status {status}, expected {:?}", e.status));
        }
    }
    if why.is_empty() {
        Outcome::Pass
    } else {
        why.push(format!("matched {:?}", seen.ids));
        Outcome::Fail(why.join("; "))
    }
}

// ---------------------------------------------------------------------------------------------
// The run and its report.

#[derive(Default, Clone, Copy)]
struct Tally {
    stages: usize,
    passed: usize,
    failed: usize,
    skipped: usize,
}

impl Tally {
    fn add(&mut self, outcome: &Outcome) {
        self.stages += 1;
        match outcome {
            Outcome::Pass => self.passed += 1,
            Outcome::Fail(_) => self.failed += 1,
            Outcome::Skip(_) => self.skipped += 1,
        }
    }
    fn plus(mut self, o: Tally) -> Tally {
        self.stages += o.stages;
        self.passed += o.passed;
        self.failed += o.failed;
        self.skipped += o.skipped;
        self
    }
}

fn pct(part: usize, whole: usize) -> String {
    if whole == 0 {
        "–".into()
    } else {
        format!("{:.1} %", 100.0 * part as f64 / whole as f64)
    }
}

/// ngrok-facing figures of the blocking configuration.
#[derive(Default)]
struct Blocking {
    attacks: usize,
    attacks_blocked: usize,
    benign: usize,
    /// Negative stages refused because a rule the stage says must not match did: the rule's
    /// own false positive.
    false_blocks: Vec<String>,
    /// Negative stages refused by other rules only. A negative stage says one rule must not
    /// match; its request is often an attack, or malformed, for other rules (932230's
    /// negatives are command injections 932160 catches): ModSecurity blocks these too.
    other_blocks: Vec<String>,
}

struct Run {
    name: ConfigName,
    /// The configuration, as the report states it.
    described: String,
    per_file: BTreeMap<String, Tally>,
    passing: BTreeSet<String>,
    failures: BTreeMap<String, String>,
    skips: BTreeMap<String, String>,
    blocking: Blocking,
}

fn run(config: &Config, stages: &[&Stage]) -> Run {
    let engine = engine(config);
    let settings: Vec<String> = config
        .settings
        .iter()
        .map(|(k, v)| format!("tx.{k}={v}"))
        .collect();
    let p = &config.profile;
    let described = format!(
        "paranoia level {}, thresholds {}/{}, bodies {} (up to {} bytes), {}; settings: {}",
        p.paranoia_level,
        p.inbound_threshold,
        p.outbound_threshold,
        if p.process_body {
            "inspected"
        } else {
            "not inspected"
        },
        p.body_limit,
        if config.detection_only {
            "DetectionOnly"
        } else {
            "blocking"
        },
        settings.join(", ")
    );
    let mut out = Run {
        name: config.name,
        described,
        per_file: BTreeMap::new(),
        passing: BTreeSet::new(),
        failures: BTreeMap::new(),
        skips: BTreeMap::new(),
        blocking: Blocking::default(),
    };
    for stage in stages {
        let key = format!("{}/{}", config.name.as_str(), stage.id);
        let outcome = judge(config, &engine, stage);
        out.per_file
            .entry(stage.rule_file.clone())
            .or_default()
            .add(&outcome);
        if !config.detection_only {
            blocking_figures(&mut out.blocking, &engine, config, stage, &key);
        }
        match outcome {
            Outcome::Pass => {
                out.passing.insert(key);
            }
            Outcome::Fail(why) => {
                out.failures.insert(key, why);
            }
            Outcome::Skip(why) => {
                out.skips.insert(key, why);
            }
        }
    }
    out
}

fn blocking_figures(b: &mut Blocking, engine: &Engine, config: &Config, stage: &Stage, key: &str) {
    let Ok(x) = &stage.exchange else {
        return;
    };
    let (req, res) = (&x.request, &x.response);
    let e = &stage.expect;
    let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        inspect(engine, config, req, res)
    }));
    let Ok(seen) = run else { return };
    if !e.expect_ids.is_empty() {
        b.attacks += 1;
        if seen.deny && e.expect_ids.iter().all(|id| seen.ids.contains(id)) {
            b.attacks_blocked += 1;
        }
    } else if !e.no_expect_ids.is_empty() {
        b.benign += 1;
        if seen.deny {
            let line = format!("{key} (matched {:?})", seen.ids);
            if e.no_expect_ids.iter().any(|id| seen.ids.contains(id)) {
                b.false_blocks.push(line);
            } else {
                b.other_blocks.push(line);
            }
        }
    }
}

fn report(runs: &[Run]) -> String {
    let mut md = String::new();
    for r in runs {
        let _ = writeln!(md, "\n### Configuration `{}`\n", r.name.as_str());
        let _ = writeln!(md, "{}.\n", r.described);
        md.push_str("| rule file | stages | passed | failed | skipped | passed (of run) |\n");
        md.push_str("| --- | ---: | ---: | ---: | ---: | ---: |\n");
        let mut total = Tally::default();
        for (file, t) in &r.per_file {
            let _ = writeln!(
                md,
                "| {file} | {} | {} | {} | {} | {} |",
                t.stages,
                t.passed,
                t.failed,
                t.skipped,
                pct(t.passed, t.passed + t.failed)
            );
            total = total.plus(*t);
        }
        let _ = writeln!(
            md,
            "| **total** | **{}** | **{}** | **{}** | **{}** | **{}** |",
            total.stages,
            total.passed,
            total.failed,
            total.skipped,
            pct(total.passed, total.passed + total.failed)
        );
        let b = &r.blocking;
        if b.attacks + b.benign > 0 {
            let _ = writeln!(
                md,
                "\nAttack stages (non-empty `expect_ids`) blocked with the expected ids: {} of {} \
                 ({}). Negative stages (only `no_expect_ids`): {}; refused because a rule they \
                 name matched (a false block): {} ({}); refused by other rules only (an attack or \
                 a malformed request for those rules): {} ({}).",
                b.attacks_blocked,
                b.attacks,
                pct(b.attacks_blocked, b.attacks),
                b.benign,
                b.false_blocks.len(),
                pct(b.false_blocks.len(), b.benign),
                b.other_blocks.len(),
                pct(b.other_blocks.len(), b.benign)
            );
            for fb in &b.false_blocks {
                let _ = writeln!(md, "- false block: `{fb}`");
            }
            for ob in &b.other_blocks {
                let _ = writeln!(md, "- refused by other rules: `{ob}`");
            }
        }
    }
    // A stage skipped in one configuration is skipped in both (the reasons are the request's).
    let mut skipped: BTreeMap<String, String> = BTreeMap::new();
    for r in runs {
        for (key, why) in &r.skips {
            let id = key.split_once('/').map_or(key.as_str(), |(_, id)| id);
            skipped.entry(id.to_string()).or_insert_with(|| why.clone());
        }
    }
    let _ = writeln!(md, "\n### Skipped stages ({})\n", skipped.len());
    for (id, why) in &skipped {
        let _ = writeln!(md, "- `{id}`: {why}");
    }
    md
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn crs_regression() {
    let stages = ftw::load_dir(&root().join(TESTS_DIR)).unwrap_or_else(|e| panic!("{e}"));
    assert!(!stages.is_empty(), "no stages under {TESTS_DIR}");
    let levels = ftw::paranoia_levels(&root().join(RULES_DIR));
    let all: Vec<&Stage> = stages.iter().collect();
    let pl1: Vec<&Stage> = stages
        .iter()
        .filter(|s| levels.get(&s.id.rule_id).is_some_and(|pl| *pl <= 1))
        .collect();

    // Engine panics are counted as failures; keep their messages out of the output.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let runs = [run(&ci_config(), &all), run(&pl1_config(), &pl1)];
    std::panic::set_hook(hook);

    let mut passing = BTreeSet::new();
    let mut failures = BTreeMap::new();
    for r in &runs {
        passing.extend(r.passing.iter().cloned());
        failures.extend(r.failures.clone());
    }
    let summary = runs
        .iter()
        .map(|r| {
            let t = r
                .per_file
                .values()
                .fold(Tally::default(), |a, t| a.plus(*t));
            format!(
                "{}: {} stages, {} passed, {} failed, {} skipped",
                r.name.as_str(),
                t.stages,
                t.passed,
                t.failed,
                t.skipped
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    eprintln!("crs_regression: {summary}");
    if std::env::var_os("CRS_REPORT").is_some() {
        println!("{}", report(&runs));
        if std::env::var_os("CRS_REPORT_FAILURES").is_some() {
            for (key, why) in &failures {
                println!("FAIL {key}: {why}");
            }
        }
    }

    baseline::Baseline {
        file: BASELINE,
        cases: "CRS regression stages",
        header: &[
            "CRS regression stages that pass (tests/crs_regression.rs): <config>/<rule>-<test>-<stage>.",
            "Regenerate with CRS_BASELINE=write cargo test --test crs_regression",
        ],
        rewrite: "CRS_BASELINE=write cargo test --test crs_regression",
        write: std::env::var("CRS_BASELINE").as_deref() == Ok("write"),
    }
    .check(root(), &passing, &failures);
}

#[test]
fn paranoia_levels_come_from_the_tags() {
    let levels = ftw::paranoia_levels(&root().join(RULES_DIR));
    // 920100 is tagged paranoia-level/1, 920272 paranoia-level/3, 949110 has no tag.
    assert_eq!(levels.get(&920100), Some(&1));
    assert_eq!(levels.get(&920272), Some(&3));
    assert_eq!(levels.get(&949110), Some(&0));
}

#[test]
fn every_test_file_loads() {
    let dir = root().join(TESTS_DIR);
    let stages = ftw::load_dir(&dir).unwrap_or_else(|e| panic!("{e}"));
    let loaded: BTreeSet<u32> = stages.iter().map(|s| s.id.rule_id).collect();
    let mut declared = BTreeSet::new();
    for rule_dir in std::fs::read_dir(&dir).expect("tests dir").flatten() {
        let Ok(files) = std::fs::read_dir(rule_dir.path()) else {
            continue;
        };
        for file in files.flatten() {
            let text = std::fs::read_to_string(file.path()).unwrap_or_default();
            // A file whose tests are all commented out (920539.yaml) declares no rule.
            declared.extend(text.lines().filter_map(|l| {
                l.strip_prefix("rule_id:")
                    .and_then(|id| id.trim().parse::<u32>().ok())
            }));
        }
    }
    assert!(declared.len() > 100, "only {} test files", declared.len());
    assert_eq!(
        declared, loaded,
        "files declaring a rule_id vs files that gave stages"
    );
}
