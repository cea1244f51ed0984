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
mod tests {
    //! The index against the plain loop: recognisers, lookups, and a property test over random
    //! policies and requests.

    use super::*;
    use crate::actions::testing::TestPorts;
    use crate::compile::testing::compile_node;
    use crate::compile::EndpointKind;
    use crate::error::GatewayError;
    use crate::eval::run_phase;
    use crate::exchange::Exchange;
    use crate::exchange::Step;
    use crate::expr::Expr;
    use crate::http::Headers;
    use crate::program::RuleSet;
    use serde_json::{json, Value};

    /// Compiles a policy document as an endpoint of `kind` would; panics with its diagnostics.
    fn compile(policy: &crate::source::Node, kind: EndpointKind) -> crate::program::Policy {
        let (compiled, diags) = compile_node(policy, kind);
        compiled.unwrap_or_else(|| panic!("{:?}", diags.items))
    }

    fn rules_of(policy: &Value) -> Vec<Rule> {
        compile(&crate::source::from_json(policy), EndpointKind::Agent)
            .on_http_request
            .into_rules()
    }

    fn request(method: &str, host: &str, path: &str, headers: &[(&str, &str)]) -> RequestHead {
        let headers: Headers = headers.iter().copied().collect();
        let url = format!("https://{host}{path}");
        RequestHead::from_url(method, &url, headers, "192.0.2.1".parse().unwrap()).unwrap()
    }

    /// What a phase did: its result and the request headers after it (each rule records itself).
    type Outcome = (Result<Step, GatewayError>, Vec<(String, String)>);

    fn run(rules: &RuleSet, req: &RequestHead) -> Outcome {
        let mut ex = Exchange::new(req.clone());
        let result = pollster::block_on(run_phase(rules, &mut ex, &TestPorts::default()));
        let headers = ex
            .req
            .headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        (result, headers)
    }

    fn keyed_rule(expr: &str, i: usize) -> Value {
        json!({"expressions": [expr], "actions": [
            {"type": "add-headers", "config": {"headers": {format!("x-hit-{i}"): "1"}}}]})
    }

    #[test]
    fn candidates_are_found_by_lookup() {
        let exprs = [
            "req.url.path == '/a'",                        // 0
            "req.url.path.startsWith('/a')",               // 1
            "req.url.path.startsWith('/b')",               // 2
            "req.host == 'h.example'",                     // 3
            "req.method == 'POST'",                        // 4
            "getReqHeader('X-Api')[0] == 'one'",           // 5
            "'two' in getReqHeader('x-api')",              // 6
            "hasReqHeader('x-api')",                       // 7: no key
            "req.url.path == '/a' && req.method == 'GET'", // 8: keyed on GET (no other rule has it)
            "req.url.path.startsWith('')",                 // 9
        ];
        let policy = json!({"on_http_request": exprs.iter().enumerate()
            .map(|(i, e)| keyed_rule(e, i)).collect::<Vec<_>>()});
        let set = RuleSet::indexed(rules_of(&policy));
        let d = set.dispatch().unwrap();
        let all = |req: &RequestHead| {
            let mut c = d.candidates(req);
            let mut out = Vec::new();
            let mut pos = 0;
            while let Some(c) = c.next_from(pos) {
                out.push(c.position);
                pos = c.position + 1;
            }
            out
        };
        let r = request(
            "GET",
            "h.example",
            "/a",
            &[("X-API", "one"), ("x-api", "two")],
        );
        assert_eq!(all(&r), vec![0, 1, 3, 5, 6, 7, 8, 9]);
        let r = request("POST", "other", "/b/c", &[("x-api", "two")]);
        assert_eq!(all(&r), vec![2, 4, 6, 7, 9]);
        // No x-api header: rule 5 would raise an error, so it is a candidate.
        let r = request("GET", "other", "/c", &[]);
        assert_eq!(all(&r), vec![5, 7, 8, 9]);
        // The decoded path is what `req.url.path` reads.
        let r = request("GET", "other", "/%61", &[("x-api", "none")]);
        assert_eq!(all(&r), vec![0, 1, 7, 8, 9]);
    }

    #[test]
    fn small_phases_keep_the_plain_loop() {
        let few = json!({"on_http_request": (0..MIN_KEYED - 1)
            .map(|i| keyed_rule(&format!("req.url.path == '/{i}'"), i)).collect::<Vec<_>>()});
        assert!(RuleSet::new(rules_of(&few)).dispatch().is_none());
        let many = json!({"on_http_request": (0..MIN_KEYED)
            .map(|i| keyed_rule(&format!("req.url.path == '/{i}'"), i)).collect::<Vec<_>>()});
        assert!(RuleSet::new(rules_of(&many)).dispatch().is_some());
    }

    #[test]
    fn keys_come_only_from_expressions_that_are_reached_without_error() {
        let keys = |exprs: &[&str]| {
            let rule = Rule {
                name: None,
                expressions: exprs.iter().map(|e| Expr::compile(e).unwrap()).collect(),
                actions: Vec::new(),
            };
            eligible_keys(&rule)
                .into_iter()
                .map(|e| (e.test, e.expression, e.alone))
                .collect::<Vec<_>>()
        };
        // After an expression that may error, later tests may not be keys.
        assert_eq!(
            keys(&["getReqHeader('x')[1] == 'v'", "req.url.path == '/a'"]),
            vec![]
        );
        assert_eq!(
            keys(&["getReqHeader('x')[0] == 'v'", "req.url.path == '/a'"]).len(),
            1
        );
        assert_eq!(
            keys(&["req.method == 'GET'", "req.url.path == '/a'"]),
            vec![
                (Test::Method("GET".into()), 0, true),
                (Test::PathEq("/a".into()), 1, true)
            ]
        );
    }

    /// A mutation that changes what later rules see is followed by a new lookup.
    #[test]
    fn actions_that_change_headers_are_seen_by_later_rules() {
        let mut rules: Vec<Value> = (0..10)
            .map(|i| keyed_rule(&format!("getReqHeader('x-route')[0] == 'r{i}'"), i))
            .collect();
        rules.insert(
            0,
            json!({"actions": [
                {"type": "remove-headers", "config": {"headers": ["x-route"]}},
                {"type": "add-headers", "config": {"headers": {"x-route": "r7"}}}]}),
        );
        let policy = json!({ "on_http_request": rules });
        let indexed = RuleSet::indexed(rules_of(&policy));
        assert!(indexed.dispatch().is_some());
        let (result, headers) = run(&indexed, &request("GET", "h", "/", &[("x-route", "r2")]));
        assert_eq!(result, Ok(Step::Continue));
        let hits: Vec<&str> = headers.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(hits, vec!["x-route", "x-hit-7"]);
    }

    /// An absent header makes `getReqHeader(..)[0]` raise an error, indexed or not.
    #[test]
    fn errors_are_raised_as_before() {
        let policy = json!({"on_http_request": (0..10)
            .map(|i| keyed_rule(&format!("getReqHeader('x-route')[0] == 'r{i}'"), i))
            .collect::<Vec<_>>()});
        let indexed = RuleSet::indexed(rules_of(&policy));
        let linear = RuleSet::linear(rules_of(&policy));
        let req = request("GET", "h", "/", &[]);
        let (result, _) = run(&indexed, &req);
        assert!(
            matches!(result, Err(GatewayError::Expression { .. })),
            "{result:?}"
        );
        assert_eq!(run(&indexed, &req), run(&linear, &req));
    }

    const NAMES: &[&str] = &["x-a", "X-A", "x-b", "X-B"];
    const VALUES: &[&str] = &["1", "2", "3"];
    const PATHS: &[&str] = &[
        "/",
        "/a",
        "/a/b",
        "/api/x",
        "/api/",
        "/a%2Fb",
        "/caf%C3%A9",
        "/%zz",
        "/A",
    ];
    const EQ_PATHS: &[&str] = &["/", "/a", "/a/b", "/api/x", "/café", "/%zz", "/A"];
    const PREFIXES: &[&str] = &["", "/", "/a", "/a/", "/api/", "/caf", "/café", "/%"];
    const HOSTS: &[&str] = &["h1.example", "h2.example"];
    const METHODS: &[&str] = &["GET", "POST", "get"];

    fn pick<'a>(rng: &mut fastrand::Rng, from: &[&'a str]) -> &'a str {
        from[rng.usize(..from.len())]
    }

    fn leaf(rng: &mut fastrand::Rng) -> String {
        let name = pick(rng, NAMES);
        let lower = name.to_ascii_lowercase();
        let v = pick(rng, VALUES);
        match rng.u8(..40) {
            0 => format!("req.url.path == '{}'", pick(rng, EQ_PATHS)),
            1 => format!("'{}' == req.url.path", pick(rng, EQ_PATHS)),
            2 => format!("req.url.path.startsWith('{}')", pick(rng, PREFIXES)),
            3 => format!("req.host == '{}'", pick(rng, HOSTS)),
            4 => format!("req.url.host == '{}'", pick(rng, HOSTS)),
            5 => format!("req.method == '{}'", pick(rng, METHODS)),
            6 => format!("getReqHeader('{name}')[0] == '{v}'"),
            7 => format!("req.headers['{lower}'][0] == '{v}'"),
            8 => format!("'{v}' in getReqHeader('{name}')"),
            9 => format!("'{v}' in req.headers['{lower}']"),
            // Not recognised: evaluated every time, some raise errors.
            10 => format!("hasReqHeader('{name}')"),
            11 => format!("getReqHeader('{name}')[1] == '{v}'"),
            12 => format!("req.headers['{name}'][0] == '{v}'"),
            13 => "req.url.path.endsWith('b')".into(),
            14 => format!("req.url.path != '{}'", pick(rng, EQ_PATHS)),
            15 => "req.url.query == ''".into(),
            16 => "true".into(),
            17 => "false".into(),
            // The common routing shapes again, so that phases get deep before an error.
            18 | 19 => format!("req.url.path == '{}'", pick(rng, EQ_PATHS)),
            20 | 21 => format!("req.url.path.startsWith('{}')", pick(rng, PREFIXES)),
            22 | 23 => format!("getReqHeader('{name}')[0] == '{v}'"),
            24..=29 => format!("'{v}' in getReqHeader('{name}')"),
            30..=34 => format!("req.method == '{}'", pick(rng, METHODS)),
            _ => format!("req.host == '{}'", pick(rng, HOSTS)),
        }
    }

    fn expression(rng: &mut fastrand::Rng) -> String {
        match rng.u8(..6) {
            0 => format!("{} && {}", leaf(rng), leaf(rng)),
            1 => format!("{} || {}", leaf(rng), leaf(rng)),
            2 => format!("{} && {} && {}", leaf(rng), leaf(rng), leaf(rng)),
            _ => leaf(rng),
        }
    }

    fn random_policy(rng: &mut fastrand::Rng) -> Value {
        let n = rng.usize(1..40);
        let rules: Vec<Value> = (0..n)
            .map(|i| {
                let exprs: Vec<String> = (0..rng.usize(..4)).map(|_| expression(rng)).collect();
                let mut actions = vec![json!({"type": "add-headers",
                    "config": {"headers": {format!("x-hit-{i}"): "1"}}})];
                match rng.u8(..10) {
                    0 => actions.push(json!({"type": "add-headers",
                        "config": {"headers": {pick(rng, NAMES): pick(rng, VALUES)}}})),
                    1 => actions.push(json!({"type": "remove-headers",
                        "config": {"headers": [pick(rng, NAMES)]}})),
                    // Terminating actions only where a rule has expressions (else later rules
                    // are unreachable, a compile error).
                    2 if !exprs.is_empty() => actions.push(json!({"type": "custom-response",
                        "config": {"body": format!("r{i}")}})),
                    3 if !exprs.is_empty() => actions.push(json!({"type": "deny"})),
                    _ => {}
                }
                json!({"expressions": exprs, "actions": actions})
            })
            .collect();
        json!({ "on_http_request": rules })
    }

    fn random_request(rng: &mut fastrand::Rng) -> RequestHead {
        let mut headers = Vec::new();
        for name in ["x-a", "X-B"] {
            // Absent one time in five: `getReqHeader(..)[0]` then raises an error.
            for _ in 0..[0, 1, 1, 1, 2][rng.usize(..5)] {
                headers.push((name, pick(rng, VALUES)));
            }
        }
        rng.shuffle(&mut headers);
        request(
            pick(rng, METHODS),
            pick(rng, HOSTS),
            pick(rng, PATHS),
            &headers,
        )
    }

    #[test]
    fn indexed_dispatch_equals_the_plain_loop() {
        let seed = std::env::var("DISPATCH_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0x5eed);
        let mut rng = fastrand::Rng::with_seed(seed);
        let (mut indexed_phases, mut skipped, mut errors, mut stops) = (0, 0, 0, 0);
        for _ in 0..250 {
            let policy = random_policy(&mut rng);
            let linear = RuleSet::linear(rules_of(&policy));
            let indexed = RuleSet::indexed(rules_of(&policy));
            let Some(d) = indexed.dispatch() else {
                continue;
            };
            indexed_phases += 1;
            for _ in 0..20 {
                let req = random_request(&mut rng);
                let want = run(&linear, &req);
                let got = run(&indexed, &req);
                assert_eq!(got, want, "seed {seed}\npolicy {policy}\nrequest {req:?}");
                let mut c = d.candidates(&req);
                skipped += linear.len()
                    - std::iter::successors(c.next_from(0), |p| c.next_from(p.position + 1))
                        .count();
                match &want.0 {
                    Err(_) => errors += 1,
                    Ok(Step::Continue) => {}
                    Ok(_) => stops += 1,
                }
            }
        }
        eprintln!(
            "{indexed_phases} indexed phases, {skipped} rules skipped, {errors} errors, {stops} stops"
        );
        // The generator must exercise what it claims to: indexes, skipped rules, errors, stops.
        assert!(indexed_phases > 200, "{indexed_phases}");
        assert!(skipped > 10_000, "{skipped}");
        assert!(
            errors > 300 && stops > 300,
            "{errors} errors, {stops} stops"
        );
    }

    /// tests/scenarios/dispatch.yaml runs through the index, not the plain loop.
    #[test]
    fn the_dispatch_scenario_is_indexed() {
        let text = include_str!("../../tests/scenarios/dispatch.yaml");
        let file = crate::source::parse_yaml_documents(text).unwrap().remove(0);
        let policy = file.get("documents").and_then(|d| d.as_seq()).unwrap()[0]
            .get("spec")
            .and_then(|s| s.get("trafficPolicy"))
            .and_then(|t| t.get("inline"))
            .unwrap();
        let policy = compile(policy, EndpointKind::Cloud);
        assert!(policy.on_http_request.dispatch().is_some());
    }
}
