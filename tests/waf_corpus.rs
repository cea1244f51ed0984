//! The WAF against the labelled corpus in tests/waf/: detection per attack category and false
//! positives per benign file, at paranoia level 1 with ngrok's settings (inbound threshold 5,
//! outbound 4, first 4 KB of the body). Fails when a rate crosses its recorded bound in
//! tests/waf/rates.txt, and rewrites the table in docs/waf.md.
//!
//! Formats (each file repeats them at its top):
//! - attacks/<category>.txt: `<position> <payload>` per line; position is `query:NAME`,
//!   `rawquery:NAME` (not re-encoded), `form:NAME`, `json:NAME`, `multipart:NAME`, `header:NAME`, `cookie:NAME`, `path`, or
//!   `request` (then the payload is a whole request, see below). Payloads are raw; the test
//!   encodes them for their position. Escapes: `\r \n \t \0 \\`.
//! - benign/*.txt (requests): `METHOD TARGET`, then TAB-separated `Name: value` headers, then
//!   optionally a TAB and `body:<body>`. Every request also gets a header profile from
//!   benign/headers.txt (round robin) for the headers it does not set.
//! - benign/text.txt: one free-text value per line, sent as a query argument, a form field and a
//!   JSON string (three requests per line).
//! - attacks/response-leakage.txt and benign/responses.txt: `STATUS CONTENT-TYPE BODY`.

use edge_gateway::waf::{Budget, CrsRules, Profile, RequestView, ResponseView, Verdict};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::Path;

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some('r') => out.push('\r'),
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('0') => out.push('\0'),
            Some('\\') => out.push('\\'),
            Some(o) => {
                out.push('\\');
                out.push(o);
            }
            None => out.push('\\'),
        }
    }
    out
}

fn lines(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

fn pct(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            write!(out, "%{b:02X}").unwrap();
        }
    }
    out
}

/// An owned request; the view borrows from it.
#[derive(Clone, Debug, Default)]
struct Req {
    method: String,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Req {
    fn get(path: &str) -> Req {
        let (p, q) = path.split_once('?').unwrap_or((path, ""));
        Req {
            method: "GET".into(),
            path: p.into(),
            query: q.into(),
            ..Req::default()
        }
    }

    fn set(&mut self, name: &str, value: &str) {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.headers.push((name.into(), value.into()));
    }

    fn has(&self, name: &str) -> bool {
        self.headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(name))
    }

    fn with_body(mut self, ct: &str, body: Vec<u8>) -> Req {
        self.method = "POST".into();
        self.set("Content-Type", ct);
        self.set("Content-Length", &body.len().to_string());
        self.body = body;
        self
    }

    fn view(&self) -> RequestView<'_> {
        let mut v = RequestView::new(&self.method, &self.path, &self.query);
        v.host = "shop.example.com";
        for (n, val) in &self.headers {
            v = v.header(n, val);
        }
        v.with_body(&self.body)
    }

    /// Adds the profile's headers the request does not set itself.
    fn with_profile(mut self, profile: &[(String, String)]) -> Req {
        for (n, v) in profile {
            if !self.has(n) {
                self.headers.push((n.clone(), v.clone()));
            }
        }
        self
    }
}

/// `METHOD TARGET<TAB>Name: value...<TAB>body:...`
fn parse_request(line: &str) -> Req {
    let mut fields = line.split('\t');
    let first = fields.next().unwrap_or_default();
    let (method, target) = first.split_once(' ').unwrap_or(("GET", first));
    // A client never sends a URL's fragment (`#how-long`): it stays in the browser.
    let target = target.split_once('#').map_or(target, |(t, _)| t);
    let mut req = Req::get(target);
    req.method = method.into();
    for f in fields {
        if let Some(b) = f.strip_prefix("body:") {
            req.body = unescape(b).into_bytes();
            if !req.has("Content-Length") {
                let n = req.body.len().to_string();
                req.headers.push(("Content-Length".into(), n));
            }
        } else if let Some((n, v)) = f.split_once(':') {
            req.headers.push((n.trim().into(), unescape(v.trim())));
        }
    }
    req
}

fn profiles(dir: &Path) -> Vec<Vec<(String, String)>> {
    lines(&dir.join("benign/headers.txt"))
        .iter()
        .map(|l| {
            l.split('\t')
                .skip(1)
                .filter_map(|f| f.split_once(':'))
                .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
                .collect()
        })
        .collect()
}

fn multipart(name: &str, value: &str) -> (String, Vec<u8>) {
    let b = "----WebKitFormBoundary7MA4YWxkTrZu0gW";
    let body = format!(
        "--{b}\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nMy upload\r\n--{b}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n--{b}--\r\n"
    );
    (
        format!("multipart/form-data; boundary={b}"),
        body.into_bytes(),
    )
}

/// Places an attack payload at its position in an otherwise ordinary browser request.
fn place(position: &str, payload: &str, profile: &[(String, String)]) -> Req {
    let (kind, name) = position.split_once(':').unwrap_or((position, ""));
    let req = match kind {
        "query" => Req::get(&format!(
            "/products/search?page=1&{}={}",
            pct(name),
            pct(payload)
        )),
        // Sent as written: the attacker chose the encoding.
        "rawquery" => Req::get(&format!("/products/search?page=1&{name}={payload}")),
        "form" => Req::get("/account/profile").with_body(
            "application/x-www-form-urlencoded",
            format!("csrf_token=a81f3b2c&{}={}", pct(name), pct(payload)).into_bytes(),
        ),
        "json" => {
            let mut m = serde_json::Map::new();
            m.insert("orderId".into(), serde_json::json!(1042));
            m.insert(name.into(), serde_json::Value::String(payload.into()));
            Req::get("/api/v1/orders")
                .with_body("application/json", serde_json::to_vec(&m).unwrap())
        }
        "multipart" => {
            let (ct, body) = multipart(name, payload);
            Req::get("/upload").with_body(&ct, body)
        }
        "header" => {
            let mut r = Req::get("/");
            r.set(name, payload);
            r
        }
        "cookie" => {
            let mut r = Req::get("/dashboard");
            r.set("Cookie", &format!("_ga=GA1.2.1234.5678; {name}={payload}"));
            r
        }
        "path" => {
            let enc: String = payload
                .bytes()
                .map(|b| {
                    if b.is_ascii_graphic() && b != b'?' && b != b'#' {
                        (b as char).to_string()
                    } else {
                        format!("%{b:02X}")
                    }
                })
                .collect();
            Req::get(&enc)
        }
        "request" => parse_request(payload),
        other => panic!("unknown position {other}"),
    };
    req.with_profile(profile)
}

#[derive(Default)]
struct Tally {
    total: usize,
    hits: usize,
    examples: Vec<String>,
}

fn rate(t: &Tally) -> f64 {
    if t.total == 0 {
        0.0
    } else {
        100.0 * t.hits as f64 / t.total as f64
    }
}

fn response(line: &str) -> (u16, String, String) {
    let mut it = line.splitn(3, ' ');
    let status = it.next().unwrap().parse().expect("status");
    let ct = it.next().unwrap().to_string();
    (status, ct, unescape(it.next().unwrap_or_default()))
}

fn inspect_res(rs: &CrsRules, status: u16, ct: &str, body: &str) -> Verdict {
    let v = ResponseView::new(status)
        .header("Content-Type", ct)
        .with_body(body.as_bytes());
    rs.inspect_response(&v, &mut Budget::unlimited())
}

#[test]
fn corpus_rates_hold() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/waf");
    let rs = CrsRules::new(
        std::sync::Arc::clone(edge_gateway::waf::vendored_rule_set()),
        &Profile {
            process_body: true,
            ..Profile::default()
        },
    );
    let profiles = profiles(&dir);
    let browser = &profiles[0];

    let mut attacks: BTreeMap<String, Tally> = BTreeMap::new();
    let mut ids: BTreeMap<String, BTreeMap<u32, usize>> = BTreeMap::new();
    let mut files: Vec<_> = fs::read_dir(dir.join("attacks"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for f in files {
        let cat = f.file_stem().unwrap().to_string_lossy().to_string();
        let t = attacks.entry(cat.clone()).or_default();
        for line in lines(&f) {
            let v = if cat == "response-leakage" {
                let (s, ct, body) = response(&line);
                inspect_res(&rs, s, &ct, &body)
            } else {
                let (pos, payload) = line.split_once(' ').unwrap_or((&line, ""));
                let req = place(pos, &unescape(payload), browser);
                rs.inspect_request(&req.view(), &mut Budget::unlimited())
            };
            t.total += 1;
            if v.is_deny() {
                t.hits += 1;
                for id in v.matched_ids() {
                    *ids.entry(cat.clone()).or_default().entry(id).or_default() += 1;
                }
            } else {
                t.examples.push(line.clone());
            }
        }
    }

    let mut benign: BTreeMap<String, Tally> = BTreeMap::new();
    let mut n = 0usize;
    let mut files: Vec<_> = fs::read_dir(dir.join("benign"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for f in files {
        let name = f.file_stem().unwrap().to_string_lossy().to_string();
        if name == "headers" {
            continue;
        }
        let t = benign.entry(name.clone()).or_default();
        let check = |t: &mut Tally, v: Verdict, what: String| {
            t.total += 1;
            if v.is_deny() {
                t.hits += 1;
                t.examples.push(format!("{what} -> {:?}", v.matched_ids()));
            }
        };
        for line in lines(&f) {
            match name.as_str() {
                "responses" => {
                    let (s, ct, body) = response(&line);
                    check(t, inspect_res(&rs, s, &ct, &body), line.clone());
                }
                "text" => {
                    let text = unescape(&line);
                    for pos in ["query:q", "form:comment", "json:message"] {
                        n += 1;
                        let req = place(pos, &text, &profiles[n % profiles.len()]);
                        check(
                            t,
                            rs.inspect_request(&req.view(), &mut Budget::unlimited()),
                            format!("{pos} {line}"),
                        );
                    }
                }
                _ => {
                    n += 1;
                    let req = parse_request(&line).with_profile(&profiles[n % profiles.len()]);
                    check(
                        t,
                        rs.inspect_request(&req.view(), &mut Budget::unlimited()),
                        line.clone(),
                    );
                }
            }
        }
    }

    // Bounds.
    let bounds: BTreeMap<String, f64> = lines(&dir.join("rates.txt"))
        .iter()
        .map(|l| {
            let mut it = l.split_whitespace();
            let k = format!("{} {}", it.next().unwrap(), it.next().unwrap());
            (k, it.next().unwrap().parse().unwrap())
        })
        .collect();
    let mut failures = Vec::new();
    let (mut at, mut ah, mut bt, mut bh) = (0, 0, 0, 0);
    for (cat, t) in &attacks {
        at += t.total;
        ah += t.hits;
        let floor = bounds
            .get(&format!("attack {cat}"))
            .copied()
            .unwrap_or(100.0);
        if rate(t) < floor {
            failures.push(format!(
                "attack {cat}: {:.1}% < floor {floor}%; missed: {:#?}",
                rate(t),
                t.examples
            ));
        }
    }
    for (name, t) in &benign {
        bt += t.total;
        bh += t.hits;
        let ceiling = bounds
            .get(&format!("benign {name}"))
            .copied()
            .unwrap_or(0.0);
        if rate(t) > ceiling {
            failures.push(format!(
                "benign {name}: {:.2}% > ceiling {ceiling}%; blocked: {:#?}",
                rate(t),
                t.examples
            ));
        }
    }
    let total_a = Tally {
        total: at,
        hits: ah,
        examples: vec![],
    };
    let total_b = Tally {
        total: bt,
        hits: bh,
        examples: vec![],
    };
    let floor = bounds.get("attack total").copied().unwrap_or(95.0);
    let ceiling = bounds.get("benign total").copied().unwrap_or(0.5);
    if rate(&total_a) < floor {
        failures.push(format!("attack total {:.1}% < {floor}%", rate(&total_a)));
    }
    if rate(&total_b) > ceiling {
        failures.push(format!("benign total {:.2}% > {ceiling}%", rate(&total_b)));
    }

    // The table for docs/waf.md.
    let mut table = String::new();
    table.push_str("| attack category | payloads | detected | rate | floor | rules that fired (count) |\n|---|---:|---:|---:|---:|---|\n");
    for (cat, t) in &attacks {
        let fired: Vec<String> = ids
            .get(cat)
            .map(|m| m.iter().map(|(id, c)| format!("{id} ({c})")).collect())
            .unwrap_or_default();
        let floor = bounds
            .get(&format!("attack {cat}"))
            .copied()
            .unwrap_or(100.0);
        writeln!(
            table,
            "| {cat} | {} | {} | {:.1}% | {floor}% | {} |",
            t.total,
            t.hits,
            rate(t),
            fired.join(", ")
        )
        .unwrap();
    }
    writeln!(
        table,
        "| **all attacks** | {at} | {ah} | **{:.1}%** | {floor}% | |",
        rate(&total_a)
    )
    .unwrap();
    table.push_str("\n| benign set | requests | blocked | false-positive rate | ceiling |\n|---|---:|---:|---:|---:|\n");
    for (name, t) in &benign {
        let ceiling = bounds
            .get(&format!("benign {name}"))
            .copied()
            .unwrap_or(0.0);
        writeln!(
            table,
            "| {name} | {} | {} | {:.2}% | {ceiling}% |",
            t.total,
            t.hits,
            rate(t)
        )
        .unwrap();
    }
    writeln!(
        table,
        "| **all benign** | {bt} | {bh} | **{:.2}%** | {ceiling}% |",
        rate(&total_b)
    )
    .unwrap();
    let missed: Vec<String> = attacks
        .iter()
        .flat_map(|(c, t)| {
            t.examples
                .iter()
                .map(move |e| format!("- `{c}`: `{}`", e.replace('`', "'")))
        })
        .collect();
    if !missed.is_empty() {
        table.push_str("\nAttack payloads not blocked at PL1 (kept in the corpus on purpose):\n\n");
        table.push_str(&missed.join("\n"));
        table.push('\n');
    }
    let fps: Vec<String> = benign
        .iter()
        .flat_map(|(c, t)| {
            t.examples
                .iter()
                .map(move |e| format!("- `{c}`: `{}`", e.replace('`', "'")))
        })
        .collect();
    if !fps.is_empty() {
        table.push_str("\nBenign requests blocked (false positives):\n\n");
        table.push_str(&fps.join("\n"));
        table.push('\n');
    }
    let doc = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/waf.md");
    if let Ok(text) = fs::read_to_string(&doc) {
        let (b, e) = ("<!-- corpus-rates:begin -->", "<!-- corpus-rates:end -->");
        if let (Some(i), Some(j)) = (text.find(b), text.find(e)) {
            let new = format!("{}{b}\n{table}{}", &text[..i], &text[j..]);
            if new != text {
                fs::write(&doc, new).unwrap();
            }
        }
    }
    println!("{table}");
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
