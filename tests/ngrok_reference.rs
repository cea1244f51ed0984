//! The CEL environment against ngrok's reference pages and against the checker's own table.
//!
//! - Every function the checker accepts (`schema::documented_functions`) has a sample call here,
//!   and each runs in the real runtime scope: the checker can never pass what the runtime lacks.
//! - Every documented function example (`tests/ngrok-reference/functions.txt`, from ngrok's
//!   macros page) passes the checker in the phases the page names and gives what the page says.
//! - Every documented variable (`tests/ngrok-reference/variables.txt`, from ngrok's variables
//!   pages) passes the checker and is present, or is one the platform cannot fill: then the
//!   checker warns and it is absent.
//! - Misspelt names are refused with the closest documented name.
//!
//! All run against one sample exchange ([`Sample`]) shaped after the pages' own examples.

use cel::common::ast::{EntryExpr, Expr as Ast, IdedExpr};
use edge_gateway::compile::schema::{self, FunctionInfo, Obj, Problem, F};
use edge_gateway::conn::ConnFacts;
use edge_gateway::exchange::Phase;
use edge_gateway::expr::{EndpointInfo, Expr, Facts, Scope};
use edge_gateway::http::{Headers, RequestHead, ResponseHead};
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

/// The request and response every expression here runs against.
struct Sample {
    req: RequestHead,
    res: ResponseHead,
    facts: Facts,
}

impl Sample {
    fn new() -> Sample {
        let headers: Headers = [
            (
                "User-Agent",
                "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_12_6) AppleWebKit/603.3.8 (KHTML, like \
                 Gecko) Version/10.1.2 Safari/603.3.8 Google-Images",
            ),
            ("Cookie", "session=abc123; sessionId=xyz"),
            ("X-Version-Id", "7"),
            ("X-Json-Array", r#"["first entry","second"]"#),
            ("Content-Type", "application/json; charset=UTF-8"),
            ("Content-Length", "17"),
            ("Content-Encoding", "br"),
            ("Location", "/index.html"),
            ("Baz", "Fizz"),
        ]
        .into_iter()
        .collect();
        let mut req = RequestHead::from_url(
            "GET",
            "https://nba.com:443/api/players?number=23&name=jordan&foo=bar&q=hello",
            headers,
            "66.249.66.7".parse().unwrap(),
        )
        .unwrap();
        req.conn = Arc::new(ConnFacts::from_cf(&serde_json::json!({
            "colo": "SJC", "asn": 12345, "asOrganization": "COMCAST-7922",
            "country": "US", "city": "Strongsville", "region": "California", "continent": "NA",
            "latitude": "45.5", "longitude": "-93.5", "postalCode": "94324", "metroCode": "510",
            "timezone": "America/New_York", "isEUCountry": "0", "httpProtocol": "HTTP/2",
            "tlsVersion": "TLSv1.3", "tlsCipher": "AEAD-AES128-GCM-SHA256",
            "botManagement": {"ja4": "t13d1717h2_5b57614c22b0_f0fc7018f8e8"},
            "tlsClientAuth": {
                "certPresented": "1", "certVerified": "SUCCESS", "certSerial": "0A1B",
                "certSubjectDNRFC2253": "CN=client.example.com,OU=Edge,O=Acme,STREET=1 Main St,L=Austin,ST=Texas,POSTALCODE=73301,C=US",
                "certIssuerDNRFC2253": "CN=exampleca.com,OU=Certification Authority Division,O=Example CA,STREET=1234 Encryption Way,L=Mountain View,ST=California,POSTALCODE=94043,C=US",
                "certNotBefore": "Jan  1 00:00:00 2026 GMT", "certNotAfter": "Dec 22 19:39:00 2029 GMT"
            }
        })));
        let res_headers: Headers = [
            ("Content-Type", "application/json; charset=utf-8"),
            ("Content-Length", "10"),
            ("Content-Encoding", "br"),
            ("Location", "/index.html"),
            ("Baz", "Fizz"),
            ("Set-Cookie", "_device_id=mobile-phone-14; Path=/"),
            (
                "Set-Cookie",
                "sessionId=abc; Domain=nba.com; Path=/; Max-Age=86401; \
                 Expires=Wed, 21 Oct 2037 07:28:00 GMT; Secure; HttpOnly; SameSite=Lax; Priority=High",
            ),
        ]
        .into_iter()
        .collect();
        let start_ms = 1_800_000_000_000;
        let facts = Facts {
            start_ms,
            now_ms: start_ms + 5_000,
            endpoint: Some(Arc::new(EndpointInfo::new(
                "ep_2iL8LRbQilSCKYjaslRoqBwJcfT",
                "https://my-subdomain.ngrok.app",
            ))),
            rand: Some(Arc::new(AtomicU64::new(7))),
            ..Facts::default()
        };
        Sample {
            req,
            res: ResponseHead {
                status: 302,
                headers: res_headers,
            },
            facts,
        }
    }

    /// The scope of one phase, as the gateway builds it.
    fn scope(&self, phase: Phase) -> Scope {
        let secrets: HashMap<(String, String), String> = [(
            ("vault-name".to_string(), "secret-name".to_string()),
            "the secret".to_string(),
        )]
        .into_iter()
        .collect();
        let res = (phase == Phase::Response).then_some(&self.res);
        Scope::new(&self.req, res, None, Arc::new(secrets)).with_facts(&self.facts)
    }

    fn eval(&self, src: &str, phase: Phase) -> Result<cel::Value, String> {
        let expr = Expr::compile(src).map_err(|e| e.0)?;
        expr.eval(&self.scope(phase)).map_err(|e| e.message)
    }
}

/// The checker's verdict on `src` in `phase` (a parse error is an `Err`).
fn check(src: &str, phase: Phase) -> Result<Vec<Problem>, String> {
    let program = edge_gateway::expr::ext::env()
        .compile(src)
        .map_err(|e| e.to_string())?;
    Ok(schema::check(program.expression(), program.source_info(), phase).1)
}

fn phases(response_only: bool) -> &'static [Phase] {
    if response_only {
        &[Phase::Response]
    } else {
        &[Phase::Request, Phase::Response]
    }
}

/// One call of every function the checker accepts, at every arity it accepts (the receiver of
/// a method not counted). A function added to the checker's table without a line here fails
/// `every_function_the_checker_accepts_runs`.
const SAMPLES: &[(&str, usize, &str)] = &[
    ("getReqHeader", 1, "getReqHeader('User-Agent')"),
    ("hasReqHeader", 1, "hasReqHeader('X-Version-Id')"),
    ("getReqCookie", 1, "getReqCookie('session').value"),
    ("hasReqCookie", 1, "hasReqCookie('session')"),
    ("getQueryParam", 1, "getQueryParam('q')"),
    ("hasQueryParam", 1, "hasQueryParam('q')"),
    ("getResHeader", 1, "getResHeader('Content-Type')"),
    ("hasResHeader", 1, "hasResHeader('Content-Type')"),
    ("getResCookie", 1, "getResCookie('_device_id').value"),
    ("hasResCookie", 1, "hasResCookie('_device_id')"),
    (
        "inCidrRange",
        2,
        "inCidrRange(conn.client_ip, '66.249.66.0/24')",
    ),
    (
        "inCidrRanges",
        2,
        "inCidrRanges(conn.client_ip, ['10.0.0.0/8'])",
    ),
    ("isPrivateIp", 0, "'10.1.2.3'.isPrivateIp()"),
    ("base64.decode", 1, "base64.decode('aGVsbG8=')"),
    ("base64.encode", 1, "base64.encode(b'hello')"),
    ("encodeBase64", 0, "'hello'.encodeBase64()"),
    ("decodeBase64", 0, "'aGVsbG8='.decodeBase64()"),
    ("basic_auth.encode", 2, "basic_auth.encode('u', 'p')"),
    ("json.decode", 1, "json.decode('{\"a\": 1}')"),
    ("json.encode", 1, "json.encode({'a': 1})"),
    ("decodeJson", 0, "'[1]'.decodeJson()"),
    ("isJson", 0, "'[1]'.isJson()"),
    ("encodeJson", 0, "[1].encodeJson()"),
    ("queryString.decode", 1, "queryString.decode(req.url.query)"),
    ("queryString.encode", 1, "queryString.encode({'a': 'b'})"),
    ("decodeQueryString", 0, "req.url.query.decodeQueryString()"),
    ("isQueryString", 0, "'a=b'.isQueryString()"),
    ("encodeQueryString", 0, "{'a': 'b'}.encodeQueryString()"),
    ("url.escape", 1, "url.escape('a b')"),
    ("url.unescape", 1, "url.unescape('a%20b')"),
    ("url.parse", 1, "url.parse(req.url)"),
    ("escapeUrl", 0, "'a b'.escapeUrl()"),
    ("unescapeUrl", 0, "'a%20b'.unescapeUrl()"),
    ("parseUrl", 0, "'https://ngrok.com'.parseUrl()"),
    ("isURL", 0, "'https://ngrok.com'.isURL()"),
    ("hash.crc32", 1, "hash.crc32('x')"),
    ("hash.crc32", 2, "hash.crc32('x', 'base64')"),
    ("hash.crc64", 1, "hash.crc64('x')"),
    ("hash.crc64", 2, "hash.crc64(b'x', 'hex')"),
    ("hash.md5", 1, "hash.md5('x')"),
    ("hash.md5", 2, "hash.md5('x', 'base64')"),
    ("hash.sha1", 1, "hash.sha1('x')"),
    ("hash.sha1", 2, "hash.sha1('x', 'hex')"),
    ("hash.sha256", 1, "hash.sha256('x')"),
    ("hash.sha256", 2, "hash.sha256('x', 'base64')"),
    ("hash.sha512", 1, "hash.sha512('x')"),
    ("hash.sha512", 2, "hash.sha512('x', 'hex')"),
    ("hash.xxhash64", 1, "hash.xxhash64('x')"),
    ("hash.xxhash64", 2, "hash.xxhash64('x', 'base64')"),
    ("crc32", 0, "'x'.crc32()"),
    ("crc32", 1, "'x'.crc32('hex')"),
    ("crc64", 0, "'x'.crc64()"),
    ("crc64", 1, "'x'.crc64('base64')"),
    ("md5", 0, "'x'.md5()"),
    ("md5", 1, "'x'.md5('hex')"),
    ("sha1", 0, "'x'.sha1()"),
    ("sha1", 1, "'x'.sha1('base64')"),
    ("sha256", 0, "'x'.sha256()"),
    ("sha256", 1, "'x'.sha256('hex')"),
    ("sha512", 0, "'x'.sha512()"),
    ("sha512", 1, "'x'.sha512('base64')"),
    ("xxhash64", 0, "'x'.xxhash64()"),
    ("xxhash64", 1, "'x'.xxhash64('hex')"),
    (
        "@ngrok_matches",
        2,
        "req.url.path.matches('^/api') && matches(req.method, 'GET')",
    ),
    ("startsWith", 1, "req.url.path.startsWith('/api')"),
    ("endsWith", 1, "req.url.path.endsWith('s')"),
    ("contains", 1, "req.url.path.contains('play')"),
    ("charAt", 1, "'hello'.charAt(1)"),
    ("indexOf", 1, "'hello'.indexOf('l')"),
    ("indexOf", 2, "'hello'.indexOf('l', 3)"),
    ("lastIndexOf", 1, "'hello'.lastIndexOf('l')"),
    ("lastIndexOf", 2, "'hello'.lastIndexOf('l', 2)"),
    ("format", 1, "'%s-%d'.format(['a', 1])"),
    ("split", 0, "'a b'.split()"),
    ("split", 1, "'a,b'.split(',')"),
    ("split", 2, "'a,b,c'.split(',', 2)"),
    ("replace", 2, "'aa'.replace('a', 'b')"),
    ("replace", 3, "'aa'.replace('a', 'b', 1)"),
    ("substring", 1, "'hello'.substring(1)"),
    ("substring", 2, "'hello'.substring(1, 3)"),
    ("trim", 0, "' x '.trim()"),
    ("lower", 0, "'X'.lower()"),
    ("upper", 0, "'x'.upper()"),
    ("lowerAscii", 0, "'X'.lowerAscii()"),
    ("upperAscii", 0, "'x'.upperAscii()"),
    ("strings.quote", 1, "strings.quote('a')"),
    ("join", 0, "['a', 'b'].join()"),
    ("join", 1, "['a', 'b'].join('-')"),
    ("slice", 2, "[1, 2, 3].slice(0, 2)"),
    ("flatten", 0, "[[1], [2]].flatten()"),
    ("flatten", 1, "[[1], [[2]]].flatten(1)"),
    ("sort", 0, "[2, 1].sort()"),
    (
        "@sortByAssociatedKeys",
        1,
        "[{'n': 2}, {'n': 1}].sortBy(x, x.n)",
    ),
    ("@ngrok_keys", 1, "{'a': 1}.all(k, v, v > 0)"),
    (
        "@ngrok_pairs_to_map",
        1,
        "{'a': 1}.transformMap(k, v, v + 1)",
    ),
    ("distinct", 0, "[1, 1].distinct()"),
    ("lists.range", 1, "lists.range(3)"),
    (
        "reverse",
        0,
        "'abc'.reverse() == 'cba' && [1, 2].reverse() == [2, 1]",
    ),
    ("size", 0, "size(req.headers) + req.url.path.size()"),
    ("int", 1, "int('1')"),
    ("uint", 1, "uint(1)"),
    ("double", 1, "double(conn.geo.latitude)"),
    ("string", 1, "string(1)"),
    ("bytes", 1, "bytes('a')"),
    ("bool", 1, "bool('true')"),
    ("timestamp", 1, "timestamp(time.now)"),
    ("duration", 1, "duration('1h')"),
    ("dyn", 1, "dyn(1)"),
    ("type", 1, "type(1) == int"),
    ("getDate", 0, "conn.ts.start.getDate()"),
    ("getDate", 1, "conn.ts.start.getDate('Asia/Tokyo')"),
    ("getDayOfMonth", 0, "conn.ts.start.getDayOfMonth()"),
    ("getDayOfMonth", 1, "conn.ts.start.getDayOfMonth('UTC')"),
    ("getDayOfWeek", 0, "conn.ts.start.getDayOfWeek()"),
    ("getDayOfWeek", 1, "conn.ts.start.getDayOfWeek('UTC')"),
    ("getDayOfYear", 0, "conn.ts.start.getDayOfYear()"),
    ("getDayOfYear", 1, "conn.ts.start.getDayOfYear('UTC')"),
    ("getFullYear", 0, "conn.ts.start.getFullYear()"),
    ("getFullYear", 1, "conn.ts.start.getFullYear('UTC')"),
    ("getHours", 0, "duration('3h').getHours()"),
    (
        "getHours",
        1,
        "timestamp(time.now).getHours('Europe/Paris')",
    ),
    ("getMinutes", 0, "duration('3h').getMinutes()"),
    ("getMinutes", 1, "conn.ts.start.getMinutes('UTC')"),
    ("getSeconds", 0, "duration('3h').getSeconds()"),
    ("getSeconds", 1, "conn.ts.start.getSeconds('UTC')"),
    ("getMilliseconds", 0, "duration('1.5s').getMilliseconds()"),
    ("getMilliseconds", 1, "conn.ts.start.getMilliseconds('UTC')"),
    ("getMonth", 0, "conn.ts.start.getMonth()"),
    ("getMonth", 1, "conn.ts.start.getMonth('UTC')"),
    ("rand.double", 0, "rand.double()"),
    ("rand.int", 0, "rand.int()"),
    ("rand.int", 2, "rand.int(0, 10)"),
    ("secrets.get", 2, "secrets.get('vault-name', 'secret-name')"),
];

/// The `(function, arity)` calls in a parsed expression, named and counted as the checker
/// does (`ns.f` for namespaces, a global form of a method-or-global function without its first
/// argument).
fn calls(e: &IdedExpr, table: &[FunctionInfo], out: &mut BTreeSet<(String, usize)>) {
    let namespaces: BTreeSet<&str> = table
        .iter()
        .filter_map(|f| f.name.split_once('.').map(|(ns, _)| ns))
        .collect();
    let mut stack = vec![e];
    while let Some(e) = stack.pop() {
        match &e.expr {
            Ast::Call(c) => {
                let name = match c.target.as_deref().map(|t| &t.expr) {
                    Some(Ast::Ident(ns)) if namespaces.contains(ns.as_str()) => {
                        format!("{ns}.{}", c.func_name)
                    }
                    _ => c.func_name.clone(),
                };
                let both = table.iter().any(|f| f.name == name && f.global && f.method);
                let n = if c.target.is_none() && both {
                    c.args.len().saturating_sub(1)
                } else {
                    c.args.len()
                };
                out.insert((name, n));
                stack.extend(c.target.as_deref());
                stack.extend(c.args.iter());
            }
            Ast::Select(s) => stack.push(&s.operand),
            Ast::List(l) => stack.extend(l.elements.iter()),
            Ast::Map(m) => {
                for entry in &m.entries {
                    if let EntryExpr::MapEntry(me) = &entry.expr {
                        stack.push(&me.key);
                        stack.push(&me.value);
                    }
                }
            }
            Ast::Comprehension(c) => {
                stack.extend([
                    &c.iter_range,
                    &c.accu_init,
                    &c.loop_cond,
                    &c.loop_step,
                    &c.result,
                ]);
            }
            _ => {}
        }
    }
}

/// Names the parser expands away (`x.sortBy(v, k)` becomes `@sortByAssociatedKeys`, both forms
/// of `matches` become `@ngrok_matches`): the checker's table keeps them for the record; their
/// expansion is what is sampled.
const EXPANDED: &[&str] = &["sortBy", "matches"];

#[test]
fn every_function_the_checker_accepts_runs() {
    let table: Vec<FunctionInfo> = schema::documented_functions().collect();
    let wanted: BTreeSet<(String, usize)> = table
        .iter()
        .filter(|f| !EXPANDED.contains(&f.name))
        .flat_map(|f| f.arity.iter().map(|n| (f.name.to_string(), *n)))
        .collect();
    let sampled: BTreeSet<(String, usize)> = SAMPLES
        .iter()
        .map(|(f, n, _)| (f.to_string(), *n))
        .collect();
    let missing: Vec<_> = wanted.difference(&sampled).collect();
    let extra: Vec<_> = sampled.difference(&wanted).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "checker table and samples differ: unsampled {missing:?}, not in the table {extra:?}"
    );
    let sample = Sample::new();
    let mut failures = Vec::new();
    for (name, arity, src) in SAMPLES {
        let info = table.iter().find(|f| f.name == *name).unwrap();
        // The sample really calls the function at that arity.
        let program = edge_gateway::expr::ext::env().compile(src).unwrap();
        let mut found = BTreeSet::new();
        calls(program.expression(), &table, &mut found);
        if !found.contains(&(name.to_string(), *arity)) {
            failures.push(format!("`{src}` does not call {name}/{arity}: {found:?}"));
            continue;
        }
        for phase in phases(info.response_only) {
            match check(src, *phase) {
                Ok(p) if p.is_empty() => {}
                other => failures.push(format!("{phase:?} `{src}`: checker {other:?}")),
            }
            if let Err(e) = sample.eval(src, *phase) {
                failures.push(format!("{phase:?} `{src}`: runtime: {e}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn data(file: &str) -> Vec<Vec<String>> {
    let path = format!(
        "{}/tests/ngrok-reference/{file}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| l.split('\t').map(str::to_string).collect())
        .collect()
}

/// The phases a data line names.
fn named_phases(s: &str) -> &'static [Phase] {
    match s {
        "both" => phases(false),
        "response" => phases(true),
        other => panic!("unknown phases `{other}`"),
    }
}

/// Whether the checker refuses `src` (a parse error or an error problem) with `want` in the
/// message.
fn refused(src: &str, phase: Phase, want: &str) -> Result<(), String> {
    match check(src, phase) {
        Err(parse) if parse.contains(want) => Ok(()),
        Ok(p) if p.iter().any(|p| !p.warning && p.message.contains(want)) => Ok(()),
        other => Err(format!("want refused with `{want}`, got {other:?}")),
    }
}

#[test]
fn ngrok_documented_functions() {
    let sample = Sample::new();
    let mut failures = Vec::new();
    let lines = data("functions.txt");
    assert!(lines.len() > 100, "{} examples", lines.len());
    for line in &lines {
        let (name, phases, src, want) = match line.as_slice() {
            [n, p, s, w] => (n, p, s, w),
            [n, p, s, w, note] if note.starts_with("differs: ") => (n, p, s, w),
            _ => panic!("bad line {line:?}"),
        };
        for phase in named_phases(phases) {
            let outcome = if let Some(m) = want.strip_prefix("refused: ") {
                refused(src, *phase, m)
            } else {
                match check(src, *phase) {
                    Ok(p) if p.is_empty() => match (want.as_str(), sample.eval(src, *phase)) {
                        ("true", Ok(cel::Value::Bool(true)))
                        | ("false", Ok(cel::Value::Bool(false)))
                        | ("runs", Ok(_))
                        | ("error", Err(_)) => Ok(()),
                        (_, got) => Err(format!("want {want}, got {got:?}")),
                    },
                    other => Err(format!("checker: {other:?}")),
                }
            };
            if let Err(e) = outcome {
                failures.push(format!("{name} {phase:?} `{src}`: {e}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn ngrok_documented_variables() {
    let sample = Sample::new();
    let mut failures = Vec::new();
    let lines = data("variables.txt");
    assert!(lines.len() > 100, "{} variables", lines.len());
    for line in &lines {
        let [name, _page, phases, probe, src, status] = line.as_slice() else {
            panic!("bad line {line:?}");
        };
        for phase in named_phases(phases) {
            let has = sample.eval(&format!("has({probe})"), *phase);
            let outcome = match status.as_str() {
                "filled" => match (check(src, *phase), &has) {
                    (Ok(p), Ok(cel::Value::Bool(true))) if p.is_empty() => sample
                        .eval(src, *phase)
                        .map(|_| ())
                        .map_err(|e| format!("the example fails: {e}")),
                    (checked, has) => Err(format!("checker {checked:?}, has {has:?}")),
                },
                "empty" => match (check(src, *phase), &has) {
                    (Ok(p), Ok(cel::Value::Bool(true))) if p.is_empty() => Ok(()),
                    (checked, has) => Err(format!("checker {checked:?}, has {has:?}")),
                },
                "absent" => match (check(src, *phase), &has) {
                    (Ok(p), Ok(cel::Value::Bool(false)))
                        if !p.is_empty() && p.iter().all(|p| p.warning) =>
                    {
                        Ok(())
                    }
                    (checked, has) => {
                        Err(format!("want a warning and absent: {checked:?}, {has:?}"))
                    }
                },
                refusal => match refusal.strip_prefix("refused: ") {
                    Some(m) => refused(src, *phase, m),
                    None => Err(format!("unknown status `{refusal}`")),
                },
            };
            if let Err(e) = outcome {
                failures.push(format!("{name} {phase:?} `{src}`: {e}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A misspelt function or variable is refused, and the hint names the closest documented one.
#[test]
fn misspelt_names_get_the_closest_documented_name() {
    for (src, phase, message, hint) in [
        (
            "getReqHeadr('x')",
            Phase::Request,
            "unknown function `getReqHeadr`",
            "`getReqHeader`",
        ),
        (
            "hasResHedaer('x')",
            Phase::Response,
            "unknown function `hasResHedaer`",
            "`hasResHeader`",
        ),
        (
            "getReqCookei('s')",
            Phase::Request,
            "unknown function",
            "`getReqCookie`",
        ),
        (
            "queryString.decod('a=b')",
            Phase::Request,
            "unknown function",
            "`queryString.decode`",
        ),
        (
            "'A'.lowr()",
            Phase::Request,
            "unknown function `lowr`",
            "`lower`",
        ),
        (
            "conn.geo.contry == 'x'",
            Phase::Request,
            "has no field `contry`",
            "`conn.geo.country`",
        ),
        (
            "req.url.pth == '/'",
            Phase::Request,
            "has no field `pth`",
            "`req.url.path`",
        ),
        (
            "conn.client_ip.geo.location.contnent",
            Phase::Request,
            "no field",
            "`geo.location.continent`",
        ),
        (
            "res.status_cod == 200",
            Phase::Response,
            "has no field",
            "`res.status_code`",
        ),
        (
            "rq.method == 'GET'",
            Phase::Request,
            "unknown variable `rq`",
            "`req`",
        ),
        (
            "endpont.id == ''",
            Phase::Request,
            "unknown variable",
            "`endpoint`",
        ),
    ] {
        let problems = check(src, phase).unwrap();
        assert!(
            problems.iter().any(|p| !p.warning
                && p.message.contains(message)
                && p.hint.as_deref().is_some_and(|h| h.contains(hint))),
            "{src}: want `{message}` with a hint naming {hint}: {problems:?}"
        );
    }
}

/// `math.*` and `sets.*` are neither documented by ngrok nor provided at run time: refused.
#[test]
fn undocumented_namespaces_are_refused() {
    for src in ["math.greatest(1, 2) == 2", "sets.contains([1], [1])"] {
        let problems = check(src, Phase::Request).unwrap();
        assert!(
            problems
                .iter()
                .any(|p| p.message.contains("unknown function")),
            "{src}: {problems:?}"
        );
        assert!(Sample::new().eval(src, Phase::Request).is_err(), "{src}");
    }
}

/// Every field the checker's schema accepts under `req`, `res`, `conn`, `endpoint` and `time` is
/// set at run time against the sample exchange, unless the schema marks it absent (then it is
/// not): the checker's variables and the runtime's agree, as its functions do.
#[test]
fn every_variable_the_checker_accepts_is_set() {
    fn walk(path: &str, obj: &Obj, out: &mut Vec<(String, bool)>) {
        for (name, f) in obj.fields {
            let here = format!("{path}.{name}");
            match f {
                F::Absent(_) => out.push((here, false)),
                F::Obj(inner) => {
                    out.push((here.clone(), true));
                    walk(&here, inner, out);
                }
                _ => out.push((here, true)),
            }
        }
    }
    let sample = Sample::new();
    let mut failures = Vec::new();
    let mut count = 0;
    for (root, obj) in schema::ROOTS {
        if obj.open {
            continue; // `vars.*`, `actions.*`: whatever the policy's actions set
        }
        let mut paths = Vec::new();
        walk(root, obj, &mut paths);
        let phase = if *root == "res" {
            Phase::Response
        } else {
            Phase::Request
        };
        for (path, set) in paths {
            count += 1;
            match sample.eval(&format!("has({path})"), phase) {
                Ok(cel::Value::Bool(b)) if b == set => {}
                other => failures.push(format!("{path}: want has() {set}, got {other:?}")),
            }
        }
    }
    assert!(count > 100, "{count} fields");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
