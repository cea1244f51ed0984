//! End to end: ngrok's documented examples (tests/scenarios/ngrok-docs/) against the built Worker
//! in `wrangler dev`. Each scenario's documents are uploaded the way users upload them
//! (scripts/upload-policy.sh, through devstack), then its end-to-end cases are sent over HTTP.
//! Runs when `EDGE_GATEWAY_E2E=1`.
//!
//! How the corpus maps onto the stack:
//! - The actions pages (`actions-*.yaml`): each scenario has one CloudEndpoint, which serves every
//!   Host, so the Worker on `127.0.0.1:PORT` answers for the page's public URL
//!   (`https://example.ngrok.app`). What a case expects of that URL (a `Location`, an
//!   `X-Forwarded-Host`) is expected of the stack's.
//! - The other files (macros, variables, concepts, guides) tell their CloudEndpoints apart by
//!   host: their scenario is uploaded once and each case is sent to `127.0.0.1:PORT` with `Host:`
//!   the host of its URL (path and query from the URL), so the Worker sees the page's host with
//!   the scheme `http` (`req.url` is `http://HOST/...`). Expectations are the page's, unmapped.
//! - Internal endpoints point at the demo origins' ports from policies/acme (`127.0.0.1:18101` is
//!   a catalog-eks replica), moved to this stack's ports. The demo origin names itself
//!   (`catalog-eks`), so a case that expects `forwarded_to: httpbin` expects the name of the origin
//!   behind `https://httpbin.internal`. Every other origin port the corpus names (1024 and up:
//!   `127.0.0.1:18301`) gets a demo origin of its own, named after its port (`docs-18301`), on a
//!   free port; ports below 1024 (`127.0.0.1:9`) are left as written: nothing listens there.
//! - What only a native run observes (`log_contains`) is not checked here.

use crate::support::live::check_case;
use crate::support::scenario::{load_ngrok_docs, repo_root, Case, Scenario};
use crate::support::stack::Stack;
use edge_gateway::source::Node;
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const LIVE: &str = "is live";
const REJECTED: &str = "rejected policy version";

/// `(spec.url, upstream port)` of every AgentEndpoint among `docs`.
fn agent_ports<'a>(docs: impl Iterator<Item = &'a Node>) -> Vec<(String, u16)> {
    let text = |n: Option<&Node>| {
        n.map(Node::to_json)
            .and_then(|j| j.as_str().map(String::from))
    };
    docs.filter(|d| text(d.get("kind")).as_deref() == Some("AgentEndpoint"))
        .filter_map(|d| {
            let spec = d.get("spec")?;
            let url = text(spec.get("url"))?;
            let upstream = text(spec.get("upstream").and_then(|u| u.get("url")))?;
            let port = upstream
                .rsplit(':')
                .next()?
                .trim_end_matches('/')
                .parse()
                .ok()?;
            Some((url, port))
        })
        .collect()
}

/// The demo origin's name (`catalog-eks`) for each of policies/acme's origin ports.
fn demo_names() -> HashMap<u16, String> {
    let files = edge_gateway::files::expand(&[repo_root().join("policies/acme")]).unwrap();
    let (docs, _) = edge_gateway::files::load(&files);
    agent_ports(docs.iter().map(|d| &d.node))
        .into_iter()
        .map(|(url, port)| {
            let name = url
                .trim_start_matches("https://")
                .trim_end_matches(".internal");
            (port, name.to_string())
        })
        .collect()
}

/// Whether the scenario's CloudEndpoints are told apart by host (every file but the actions
/// pages'), so its cases are sent with their URL's `Host`.
fn by_host(sc: &Scenario) -> bool {
    let name = std::path::Path::new(&sc.file)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    !name.starts_with("actions-")
}

/// The pool a forward to `endpoint` reached, as the native run names it:
/// `https://catalog-eks.internal` -> `catalog-eks`.
fn pool_of(endpoint: &str) -> &str {
    endpoint
        .trim_start_matches("https://")
        .trim_end_matches(".internal")
}

/// The case as the stack answers it: the public URL is the stack's (or, by host, the Host
/// header's), a pool is its demo origin.
fn on_stack(case: &Case, sc: &Scenario, stack: &Stack, names: &HashMap<u16, String>) -> Case {
    let mut case = case.clone();
    let public = case
        .url
        .splitn(4, '/')
        .take(3)
        .collect::<Vec<_>>()
        .join("/");
    let host = public.split("://").nth(1).unwrap_or_default().to_string();
    if by_host(sc) {
        // The Worker sees the page's host: expectations stay the page's.
        let host = host
            .split(['?', '#'])
            .next()
            .unwrap_or_default()
            .to_string();
        if !case
            .headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("host"))
        {
            case.headers.push(("Host".into(), host));
        }
    } else {
        let local = stack.url("");
        let local_host = local.trim_start_matches("http://").to_string();
        // A whole value that is the public host (`X-Forwarded-Host`) is the stack's; elsewhere
        // only the public origin is (`https://new.example.com` is another host).
        let map = |v: &str| match v == host {
            true => local_host.clone(),
            false => v.replace(&public, &local),
        };
        let exp = &mut case.expect;
        for (_, v) in exp
            .headers
            .iter_mut()
            .chain(exp.upstream_headers.iter_mut())
        {
            *v = map(v);
        }
        exp.body_contains = exp.body_contains.as_deref().map(map);
    }
    let exp = &mut case.expect;
    exp.log_contains.clear();
    let agents = agent_ports(sc.documents.iter());
    exp.forwarded_to = exp.forwarded_to.as_ref().map(|pool| {
        agents
            .iter()
            .find(|(u, _)| pool_of(u) == pool)
            .and_then(|(_, port)| names.get(port))
            .cloned()
            .unwrap_or_else(|| format!("{pool} (no demo origin behind it)"))
    });
    case
}

/// Demo origins for the origin ports the corpus names beyond policies/acme's, each named after
/// its port (`docs-18301`), on free ports. Stopped when dropped.
struct DocOrigins {
    child: Option<Child>,
    /// `(port in the corpus, port served)`
    ports: Vec<(u16, u16)>,
}

impl DocOrigins {
    fn start(corpus: &[Scenario], acme: &[(u16, u16)]) -> DocOrigins {
        let mut wanted: Vec<u16> = corpus
            .iter()
            .flat_map(|sc| agent_ports(sc.documents.iter()))
            .map(|(_, port)| port)
            .filter(|p| *p >= 1024 && !acme.iter().any(|(from, _)| from == p))
            .collect();
        wanted.sort_unstable();
        wanted.dedup();
        if wanted.is_empty() {
            return DocOrigins {
                child: None,
                ports: Vec::new(),
            };
        }
        // Held together so no two are the same; released just before demo-origins binds them.
        let listeners: Vec<std::net::TcpListener> = wanted
            .iter()
            .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
            .collect();
        let ports: Vec<(u16, u16)> = wanted
            .iter()
            .zip(&listeners)
            .map(|(p, l)| (*p, l.local_addr().unwrap().port()))
            .collect();
        drop(listeners);
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_demo-origins"));
        cmd.arg("--quiet");
        for (from, to) in &ports {
            cmd.arg(format!("--origin=127.0.0.1:{to}=docs/{from}/1"));
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("demo-origins starts");
        let out = BufReader::new(child.stdout.take().unwrap());
        let ready = out
            .lines()
            .map_while(Result::ok)
            .any(|l| l == "demo-origins: ready");
        assert!(ready, "the corpus's demo origins did not start");
        DocOrigins {
            child: Some(child),
            ports,
        }
    }

    /// `docs-18301` for each corpus port.
    fn names(&self) -> impl Iterator<Item = (u16, String)> + '_ {
        self.ports
            .iter()
            .map(|(from, _)| (*from, format!("docs-{from}")))
    }
}

impl Drop for DocOrigins {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            child.kill().ok();
            child.wait().ok();
        }
    }
}

/// `text` with every `127.0.0.1:PORT` whose port `ports` moves, moved (one pass, so a moved
/// port is never moved again).
fn move_ports(text: &str, ports: &[(u16, u16)]) -> String {
    const LOOPBACK: &str = "127.0.0.1:";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(LOOPBACK) {
        let (head, tail) = rest.split_at(i + LOOPBACK.len());
        out.push_str(head);
        let digits = tail.bytes().take_while(u8::is_ascii_digit).count();
        let (port, after) = tail.split_at(digits);
        let moved = port
            .parse::<u16>()
            .ok()
            .and_then(|p| ports.iter().find(|(from, _)| *from == p))
            .map(|(_, to)| to.to_string());
        out.push_str(moved.as_deref().unwrap_or(port));
        rest = after;
    }
    out.push_str(rest);
    out
}

/// Writes the scenario's documents, pointed at this stack's origins (`ports`), as one upload.
fn write_upload(
    stack: &Stack,
    n: usize,
    sc: &Scenario,
    ports: &[(u16, u16)],
) -> std::path::PathBuf {
    let dir = stack.dir.join(format!("ngrok-docs-{n}"));
    std::fs::create_dir_all(&dir).unwrap();
    let text = sc
        .documents
        .iter()
        .map(|d| serde_json::to_string_pretty(&d.to_json()).unwrap())
        .collect::<Vec<_>>()
        .join("\n---\n");
    std::fs::write(dir.join("endpoints.yaml"), move_ports(&text, ports)).unwrap();
    dir
}

/// Runs the scenario's first end-to-end case until the request that runs it is served by the
/// newly uploaded version (the Worker loads a version on the first request after its refresh
/// interval and logs it live), so no probe request of our own touches the policy's state. The
/// outer error: the version never went live.
fn first_on_new_version(
    stack: &Stack,
    sc: &Scenario,
    case: &Case,
    (live_before, rejected_before): (usize, usize),
) -> Result<Result<(), String>, String> {
    let start = Instant::now();
    loop {
        std::thread::sleep(Duration::from_millis(1100));
        let outcome = check_case(stack, sc, case);
        let log = stack.log_text();
        if log.matches(REJECTED).count() > rejected_before {
            return Err("the Worker rejected the upload (see its log)".into());
        }
        if log.matches(LIVE).count() > live_before {
            return Ok(outcome);
        }
        if start.elapsed() > Duration::from_secs(30) {
            return Err("the upload never went live".into());
        }
    }
}

#[test]
fn ngrok_docs_end_to_end() {
    if !crate::support::stack::e2e_enabled() {
        return;
    }
    let corpus: Vec<Scenario> = load_ngrok_docs()
        .into_iter()
        .filter(|sc| sc.cases.iter().any(|c| c.e2e))
        .collect();
    let mut vars = vec![("POLICY_REFRESH_SECONDS".to_string(), "1".to_string())];
    for sc in &corpus {
        for ((vault, name), value) in &sc.secrets {
            let binding = edge_gateway::secrets::binding_name(vault, name);
            vars.push((binding, value.clone()));
        }
    }
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let started = Instant::now();
    let stack = Stack::start(&vars);
    let doc_origins = DocOrigins::start(&corpus, &stack.origin_ports);
    let mut names = demo_names();
    names.extend(doc_origins.names());
    let ports: Vec<(u16, u16)> = stack
        .origin_ports
        .iter()
        .chain(&doc_origins.ports)
        .copied()
        .collect();
    let mut failures = Vec::new();
    let mut ran = 0;
    for (n, sc) in corpus.iter().enumerate() {
        let log = stack.log_text();
        let before = (log.matches(LIVE).count(), log.matches(REJECTED).count());
        // The repository files it names (`policies/ip-intel`) go up with it, as in the native run.
        let dir = write_upload(&stack, n, sc, &ports);
        let paths: Vec<&std::path::Path> = std::iter::once(dir.as_path())
            .chain(sc.files.iter().map(|f| f.as_path()))
            .collect();
        stack.upload(&paths);
        let cases: Vec<Case> = sc
            .cases
            .iter()
            .filter(|c| c.e2e)
            .map(|c| on_stack(c, sc, &stack, &names))
            .collect();
        'cases: for (i, case) in cases.iter().enumerate() {
            ran += 1;
            for k in 1..=case.repeat {
                let outcome = if i == 0 && k == 1 {
                    match first_on_new_version(&stack, sc, case, before) {
                        Ok(outcome) => outcome,
                        Err(e) => {
                            failures.push(format!("{}: {e}", sc.file));
                            break 'cases;
                        }
                    }
                } else {
                    check_case(&stack, sc, case)
                };
                if let Err(e) = outcome {
                    failures.push(format!("{} / {} (#{k}): {e}", sc.file, case.name));
                    break;
                }
            }
        }
        // As it goes: a stack that dies part way still shows what ran before.
        println!(
            "e2e: {} ({} cases), {} failing so far, {:.0?}",
            sc.file,
            cases.len(),
            failures.len(),
            started.elapsed()
        );
    }
    println!(
        "e2e: {ran} documented examples run against the Worker in {:.0?}",
        started.elapsed()
    );
    for sc in &corpus {
        let n = sc.cases.iter().filter(|c| c.e2e).count();
        println!("e2e:   {n:3} of {:3}  {}", sc.cases.len(), sc.file);
    }
    // 321 when the corpus was written: fewer means cases stopped running live unnoticed.
    assert!(
        ran >= 321,
        "only {ran} documented examples ran against the Worker"
    );
    assert!(
        failures.is_empty(),
        "{} failing case(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}
