//! End to end: CRS's regression stages
//! (`tests/crs-regression/`, see its README) sent through the real Worker under `wrangler dev`,
//! byte for byte as go-ftw sends them, with the `pl1` configuration of `tests/crs_regression.rs`
//! (the action's defaults: paranoia level 1, thresholds 5/4, `process_body: true`).
//!
//! The policy runs `owasp-crs-request` with `on_error: continue`, then answers every request
//! itself with the verdict in a header and the matched rule ids in the body, so no origin is
//! involved. A stage is judged as the native run judges it (ids expected and not expected; a
//! `status` of 403 means a deny, 200 an allow); a stage the Worker never saw (refused by workerd,
//! or a connection error) is skipped with the reason, as are `match_regex` checks (there is no
//! log to read) and the RESPONSE-* files (they need albedo's `/reflect` behind the Worker).
//!
//! Differences from the native run that can change results: the Worker's request also carries
//! what Cloudflare adds (`CF-Connecting-IP`, `X-Forwarded-Proto`, ...), and the Host is whatever
//! the stage sends. The configuration is the action's defaults, as the native `pl1` one.
//!
//! Fails when a stage of `tests/crs-regression/baseline.txt`'s `pl1/` part fails through the
//! Worker: the Worker must do what the native engine does.

#[expect(
    dead_code,
    reason = "the native runner (tests/crs_regression.rs) uses the rest"
)]
#[path = "../support/ftw.rs"]
mod ftw;

use crate::support::scenario::repo_root;
use crate::support::stack::{e2e_enabled, Stack};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

const NOT_ANSWERED: &str = "not answered";

const POLICY: &str = r#"
on_http_request:
  - expressions: ["req.url.path == '/__crs_ready'"]
    actions:
      - type: custom-response
        config: {body: "VERSION"}
  - actions:
      - type: owasp-crs-request
        config: {on_error: continue, process_body: true}
      - type: custom-response
        config:
          status_code: 200
          headers:
            x-crs-decision: "${actions.ngrok.owasp_crs_request.decision}"
          body: "${actions.ngrok.owasp_crs_request.matched_rules.map(r, r.id)}"
"#;

/// A response read off the connection.
struct RawReply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl RawReply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Writes the bytes as they are and reads one response (by its `Content-Length`, chunked
/// encoding, or the connection's end).
fn send_raw(port: u16, wire: &[u8]) -> Result<RawReply, String> {
    let head = wire.starts_with(b"HEAD ");
    let mut conn = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    conn.set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    conn.write_all(wire).map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 << 10];
    loop {
        if let Some(reply) = parse_reply(&buf, false, head) {
            return Ok(reply);
        }
        match conn.read(&mut chunk) {
            Ok(0) => {
                return parse_reply(&buf, true, head).ok_or("connection closed mid-response".into())
            }
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) => return Err(format!("no complete response: {e}")),
        }
    }
}

/// A complete response in `buf`, if there is one; `closed` says the connection ended.
fn parse_reply(buf: &[u8], closed: bool, to_head: bool) -> Option<RawReply> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let text = std::str::from_utf8(&buf[..end]).ok()?;
    let mut lines = text.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    let rest = &buf[end + 4..];
    let get = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let body = if to_head {
        // A HEAD answer has the GET's headers and no body.
        Vec::new()
    } else if get("Transfer-Encoding").is_some_and(|te| te.eq_ignore_ascii_case("chunked")) {
        ftw::dechunk(rest).ok()?
    } else if let Some(len) = get("Content-Length").and_then(|l| l.parse::<usize>().ok()) {
        rest.get(..len)?.to_vec()
    } else if closed {
        rest.to_vec()
    } else {
        return None;
    };
    // The Worker compresses its answer when the stage's request accepts it.
    let body = match get("Content-Encoding").as_deref() {
        Some(coding @ ("gzip" | "deflate" | "br")) => {
            let mut decoder: Box<dyn Read> = match coding {
                "gzip" => Box::new(flate2::read::GzDecoder::new(&body[..])),
                "deflate" => Box::new(flate2::read::ZlibDecoder::new(&body[..])),
                _ => Box::new(brotli_decompressor::Decompressor::new(&body[..], 4096)),
            };
            let mut out = Vec::new();
            decoder.read_to_end(&mut out).ok()?;
            out
        }
        _ => body,
    };
    Some(RawReply {
        status,
        headers,
        body,
    })
}

/// The six-digit rule ids in the body (`[920350, 942100]`).
fn ids_in(body: &[u8]) -> BTreeSet<u32> {
    String::from_utf8_lossy(body)
        .split(|c: char| !c.is_ascii_digit())
        .filter(|d| d.len() == 6)
        .filter_map(|d| d.parse().ok())
        .collect()
}

enum Outcome {
    Pass,
    Fail(String),
    Skip(String),
}

fn judge(stack: &Stack, stage: &ftw::Stage) -> Outcome {
    let x = match &stage.exchange {
        Ok(x) => x,
        Err(why) => return Outcome::Skip(why.clone()),
    };
    let e = &stage.expect;
    if e.match_regex.is_some() || e.no_match_regex.is_some() {
        return Outcome::Skip("match_regex: the Worker has no log to read".into());
    }
    let req = &x.request;
    if matches!(req.method.as_str(), "GET" | "HEAD") && !req.body.is_empty() {
        // The Fetch API refuses such a request, and wrangler dev's local proxy dies of it.
        return Outcome::Skip(format!(
            "a {} with a body: the Fetch API refuses it",
            req.method
        ));
    }
    let reply = match send_raw(stack.port, &x.wire) {
        Ok(r) => r,
        Err(why) => return Outcome::Fail(format!("{NOT_ANSWERED}: {why}")),
    };
    let Some(decision) = reply.header("x-crs-decision") else {
        return Outcome::Skip(format!(
            "the Worker did not run: status {} from workerd: {}",
            reply.status,
            String::from_utf8_lossy(reply.body.get(..200).unwrap_or(&reply.body))
        ));
    };
    let deny = decision == "deny";
    let ids = ids_in(&reply.body);
    let mut why = Vec::new();
    let missing: Vec<_> = e.expect_ids.iter().filter(|id| !ids.contains(id)).collect();
    if !missing.is_empty() {
        why.push(format!("expected {missing:?} did not match"));
    }
    let unwanted: Vec<_> = e
        .no_expect_ids
        .iter()
        .filter(|id| ids.contains(id))
        .collect();
    if !unwanted.is_empty() {
        why.push(format!("{unwanted:?} matched"));
    }
    let status = if deny { 403 } else { 200 };
    if !e.status.is_empty() && !e.status.contains(&status) {
        why.push(format!(
            "decision {decision}, expected status {:?}",
            e.status
        ));
    }
    if why.is_empty() {
        return Outcome::Pass;
    }
    why.push(format!("matched {ids:?}"));
    // What the platform does not hand a Worker as sent: a failure that comes from it is a
    // platform difference (docs/waf.md), not the engine's.
    if let Some(diff) = platform_difference(req) {
        return Outcome::Skip(format!("{diff} ({})", why.join("; ")));
    }
    Outcome::Fail(why.join("; "))
}

/// Why the Worker cannot see this request as the native run does, if it cannot.
fn platform_difference(req: &ftw::Received) -> Option<&'static str> {
    const STANDARD: &[&str] = &["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"];
    if req.headers.iter().any(|(_, v)| v.is_empty()) {
        return Some("a header field with an empty value: the local proxy drops it");
    }
    if req.headers.iter().any(|(n, _)| {
        [
            "connection",
            "keep-alive",
            "proxy-connection",
            "te",
            "upgrade",
        ]
        .contains(&n.to_ascii_lowercase().as_str())
    }) && req
        .headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("connection"))
    {
        return Some("a Connection header: hop-by-hop, a Worker never sees it");
    }
    if !STANDARD.contains(&req.method.as_str()) {
        return Some("a method outside the Fetch standard's: the runtime does not pass it as sent");
    }
    None
}

#[test]
fn crs_regression_through_the_worker() {
    if !e2e_enabled() {
        return;
    }
    let root = repo_root();
    let stages =
        ftw::load_dir(&root.join("tests/crs-regression")).unwrap_or_else(|e| panic!("{e}"));
    let levels = ftw::paranoia_levels(&root.join("crs/rules"));
    let baseline: BTreeSet<String> =
        std::fs::read_to_string(root.join("tests/crs-regression/baseline.txt"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.strip_prefix("pl1/"))
            .map(str::to_string)
            .collect();

    let chosen: Vec<&ftw::Stage> = stages
        .iter()
        .filter(|stage| levels.get(&stage.id.rule_id).is_some_and(|pl| *pl <= 1))
        .filter(|stage| {
            std::env::var("CRS_ONLY").map_or(true, |o| stage.id.to_string().starts_with(&o))
        })
        .collect();
    let (mut passed, mut failed) = (0, 0);
    let mut skipped: BTreeMap<String, String> = BTreeMap::new();
    let mut regressed = Vec::new();
    let mut unanswered = Vec::new();
    // wrangler dev's local proxy has died in the middle of these requests ("Network connection
    // lost" in its log; each stage alone passes). When a stage is not answered, a fresh stack
    // takes over and the stage is sent again once; a stage not answered twice fails the test.
    let start = || {
        let stack = Stack::start(&[("POLICY_REFRESH_SECONDS", "1")]);
        let dir = stack.dir.join("crs-regression");
        std::fs::create_dir_all(&dir).expect("policy dir");
        std::fs::write(dir.join("policy.yaml"), POLICY.replace("VERSION", "crs-v1"))
            .expect("policy");
        stack.upload(&[&dir]);
        stack.wait_until("the CRS policy is live", Duration::from_secs(30), |s| {
            s.get("/__crs_ready", &[]).is_ok_and(|r| r.body == "crs-v1")
        });
        stack
    };
    let mut stack = start();
    let mut restarts = 0;
    for stage in chosen {
        let id = stage.id.to_string();
        let mut outcome = if stage.rule_file.starts_with("RESPONSE-") {
            Outcome::Skip("a response rule: needs albedo's /reflect behind the Worker".into())
        } else {
            judge(&stack, stage)
        };
        if matches!(&outcome, Outcome::Fail(why) if why.starts_with(NOT_ANSWERED)) {
            restarts += 1;
            drop(stack);
            stack = start();
            outcome = judge(&stack, stage);
        }
        match outcome {
            Outcome::Pass => passed += 1,
            Outcome::Fail(why) => {
                failed += 1;
                if why.starts_with(NOT_ANSWERED) {
                    unanswered.push(format!("  {id}: {why}"));
                } else if baseline.contains(&id) {
                    regressed.push(format!("  {id}: {why}"));
                }
            }
            Outcome::Skip(why) => {
                skipped.insert(id, why);
            }
        }
    }
    eprintln!(
        "crs_regression through the Worker: the local stack was restarted {restarts} time(s)"
    );
    eprintln!(
        "crs_regression through the Worker: {passed} passed, {failed} failed, {} skipped",
        skipped.len()
    );
    for (id, why) in &skipped {
        eprintln!("  skipped {id}: {why}");
    }
    assert!(
        unanswered.is_empty(),
        "{} stages were not answered:\n{}",
        unanswered.len(),
        unanswered.join("\n")
    );
    assert!(
        passed >= 1_000,
        "only {passed} stages ran through the Worker and passed: the run fell short"
    );
    assert!(
        regressed.is_empty(),
        "{} stages that pass natively (baseline pl1/) fail through the Worker:\n{}",
        regressed.len(),
        regressed.join("\n")
    );
}
