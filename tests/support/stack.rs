//! The stack `scripts/dev.sh` runs, started by a test through the same program: `devstack
//! --control --free-ports` (src/bin/devstack.rs) starts the demo origins, the dev identity
//! provider and the built Worker under `wrangler dev --env dev` (workerd) with its own local KV
//! and Durable Object state, each in a process group of its own, on ports nothing else uses.
//! Its first stdout line describes the stack (JSON); commands go to its stdin (`upload`,
//! `restart-wrangler`). Closing stdin stops everything: `Drop` does, and so does the end of the
//! test process, however it ends.
#![allow(dead_code, reason = "each test binary uses a different part")]

use super::scenario::repo_root;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct Stack {
    pub dir: PathBuf,
    pub port: u16,
    /// The wrangler config and environment the stack runs (`wrangler.toml`, `dev`).
    pub config: PathBuf,
    pub env: String,
    /// wrangler's local state (`--persist-to`).
    pub state: PathBuf,
    /// wrangler dev's output.
    pub log: PathBuf,
    /// (port in policies/acme, port the test's demo origin listens on)
    pub origin_ports: Vec<(u16, u16)>,
    /// The dev identity provider (`dev-auth serve`): `http://127.0.0.1:PORT`.
    pub idp: String,
    /// The demo origins' fault-control listener: `http://127.0.0.1:PORT`.
    pub faults: String,
    devstack: Child,
    channel: Mutex<Channel>,
}

/// devstack's stdin (commands) and stdout (one JSON line per event).
struct Channel {
    commands: Option<ChildStdin>,
    events: BufReader<ChildStdout>,
}

impl Channel {
    /// The next JSON line devstack prints; panics when it stops first (its stderr says why).
    fn event(&mut self) -> serde_json::Value {
        let mut line = String::new();
        let n = self.events.read_line(&mut line).unwrap_or(0);
        assert!(n > 0, "devstack stopped; its output is above");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("devstack said {line:?}: {e}"))
    }

    /// Sends one command (a JSON array of words) and answers devstack's reply.
    fn command(&mut self, words: &[String]) -> serde_json::Value {
        let line = serde_json::to_string(words).unwrap();
        let stdin = self.commands.as_mut().expect("devstack's stdin is open");
        writeln!(stdin, "{line}")
            .and_then(|()| stdin.flush())
            .expect("devstack takes a command");
        self.event()
    }
}

/// A new client address for each call (198.18.0.0/15, the benchmarking range): the Acme policy
/// limits each address to 10 requests a second, and these tests send more.
pub fn next_client_ip() -> String {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("198.18.{}.{}", (n / 250) % 250, n % 250 + 1)
}

/// Whether the end-to-end tests should run (scripts/test.sh sets `EDGE_GATEWAY_E2E=1` after it
/// builds the Worker); otherwise the test says it skipped.
pub fn e2e_enabled() -> bool {
    let on = std::env::var("EDGE_GATEWAY_E2E").as_deref() == Ok("1");
    if !on {
        eprintln!(
            "e2e skipped: set EDGE_GATEWAY_E2E=1 (scripts/test.sh builds the Worker and does)"
        );
    }
    on
}

fn wrangler_env(cmd: &mut Command) -> &mut Command {
    let bin = repo_root().join("node_modules/.bin");
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    cmd.env("PATH", path)
        .env("WRANGLER_SEND_METRICS", "false")
        .env("WRANGLER_SEND_ERROR_REPORTS", "false")
        .env("CLOUDFLARE_CF_FETCH_ENABLED", "false")
        .env("WRANGLER_HIDE_BANNER", "true")
}

impl Stack {
    /// Starts the demo origins, the dev identity provider and `wrangler dev` on the prebuilt
    /// Worker with these Worker variables (no policy uploaded).
    pub fn start(vars: &[(&str, &str)]) -> Stack {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "edge-gateway-e2e-{}-{}",
            std::process::id(),
            N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        std::fs::remove_dir_all(&dir).ok();
        std::fs::create_dir_all(&dir).unwrap();
        let mut vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        // policies/acme names these Worker secrets; a version whose secrets are missing is
        // refused. The values are the ones tests/scenarios/acme.yaml expects.
        for (k, v) in [
            ("ACME__GITHUB_WEBHOOK_SECRET", "dev-webhook-secret"),
            ("ACCESS__EKS_CLIENT_ID", "eks-id.access"),
            ("ACCESS__EKS_CLIENT_SECRET", "eks-secret"),
            ("ACCESS__GKE_CLIENT_ID", "gke-id.access"),
            ("ACCESS__GKE_CLIENT_SECRET", "gke-secret"),
        ] {
            if !vars.iter().any(|(name, _)| name == k) {
                vars.push((k.into(), v.into()));
            }
        }
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_devstack"));
        cmd.args(["--control", "--free-ports", "--no-policy", "--state"])
            .arg(dir.join("state"))
            .arg("--log-dir")
            .arg(&dir);
        for (k, v) in &vars {
            cmd.arg("--var").arg(format!("{k}:{v}"));
        }
        let mut devstack = cmd
            .current_dir(repo_root())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            // devstack's progress and what went wrong, in the test's output
            .stderr(Stdio::inherit())
            .spawn()
            .expect("devstack starts");
        let mut channel = Channel {
            commands: devstack.stdin.take(),
            events: BufReader::new(devstack.stdout.take().unwrap()),
        };
        let ready = channel.event();
        let mut stack = Stack {
            dir,
            port: 0,
            config: PathBuf::new(),
            env: String::new(),
            state: PathBuf::new(),
            log: PathBuf::new(),
            origin_ports: Vec::new(),
            idp: String::new(),
            faults: String::new(),
            devstack,
            channel: Mutex::new(channel),
        };
        stack.describe(&ready);
        stack
    }

    /// Takes devstack's description of the stack (its `ready` line).
    fn describe(&mut self, ready: &serde_json::Value) {
        assert_eq!(ready["event"], "ready", "devstack said {ready}");
        let text = |key: &str| {
            ready[key]
                .as_str()
                .unwrap_or_else(|| panic!("no {key} in {ready}"))
                .to_string()
        };
        self.port = ready["port"].as_u64().unwrap() as u16;
        self.config = PathBuf::from(text("config"));
        self.env = text("env");
        self.state = PathBuf::from(text("state"));
        self.log = PathBuf::from(text("wrangler_log"));
        self.idp = text("idp");
        self.faults = text("faults");
        self.origin_ports = ready["origins"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| {
                (
                    o["policy_port"].as_u64().unwrap() as u16,
                    o["port"].as_u64().unwrap() as u16,
                )
            })
            .collect();
    }

    fn command(&self, words: &[String]) -> serde_json::Value {
        self.channel
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .command(words)
    }

    /// Stops `wrangler dev` (its whole process group) and starts it again on the same state.
    pub fn restart_wrangler(&mut self) {
        let ready = self.command(&["restart-wrangler".to_string()]);
        self.describe(&ready);
    }

    /// Uploads through devstack, which runs scripts/upload-policy.sh as a user does.
    pub fn upload(&self, paths: &[&Path]) {
        let mut words = vec!["upload".to_string()];
        words.extend(paths.iter().map(|p| p.display().to_string()));
        let reply = self.command(&words);
        assert_eq!(
            reply["event"], "uploaded",
            "upload failed (devstack's output above): {reply}"
        );
    }

    /// Copies policies/acme into `name` under the stack's dir, pointing at this stack's origins,
    /// with `edit` applied to every file's text.
    pub fn acme_copy(&self, name: &str, edit: impl Fn(String) -> String) -> PathBuf {
        let out = self.dir.join(name);
        std::fs::create_dir_all(&out).unwrap();
        for f in ["cloud-endpoint.yaml", "eks.yaml", "gke.yaml"] {
            let mut text =
                std::fs::read_to_string(repo_root().join("policies/acme").join(f)).unwrap();
            for (from, to) in &self.origin_ports {
                text = text.replace(&format!("127.0.0.1:{from}"), &format!("127.0.0.1:{to}"));
            }
            text = text.replace("http://127.0.0.1:18200", &self.idp);
            std::fs::write(out.join(f), edit(text)).unwrap();
        }
        out
    }

    /// Sets a demo origin replica's fault mode (`ok`, `503`, `hang`, `reset`, `down`), the replica
    /// named `api/cluster/replica`; answers the replica's state (`served`, `faulted`, ...).
    pub fn fault(&self, replica: &str, mode: &str) -> serde_json::Value {
        let url = format!("{}/faults/{replica}?mode={mode}", self.faults);
        let mut resp = Stack::agent()
            .post(&url)
            .send(&[][..])
            .unwrap_or_else(|e| panic!("POST {url}: {e}"));
        let text = resp.body_mut().read_to_string().unwrap();
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("{url} answered {text}"))
    }

    /// A replica's counters (`served`, `faulted`).
    pub fn fault_state(&self, replica: &str) -> serde_json::Value {
        let url = format!("{}/faults/{replica}", self.faults);
        let mut resp = Stack::agent()
            .get(&url)
            .call()
            .unwrap_or_else(|e| panic!("GET {url}: {e}"));
        serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap()
    }

    /// Calls the dev identity provider's admin API (`POST /admin/down`, ...).
    pub fn idp_admin(&self, method: &str, path: &str) -> serde_json::Value {
        let agent = Stack::agent();
        let url = format!("{}{path}", self.idp);
        let mut resp = match method {
            "POST" => agent.post(&url).send(&[][..]),
            _ => agent.get(&url).call(),
        }
        .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
        let text = resp.body_mut().read_to_string().unwrap();
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("{url} answered {text}"))
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn agent() -> ureq::Agent {
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into()
    }

    pub fn get(&self, path: &str, headers: &[(&str, &str)]) -> Result<Reply, ureq::Error> {
        self.send(&Self::agent(), "GET", path, headers, b"")
    }

    pub fn send(
        &self,
        agent: &ureq::Agent,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<Reply, ureq::Error> {
        let mut req = ureq::http::Request::builder()
            .method(method)
            .uri(self.url(path));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let mut resp = if body.is_empty() && method != "POST" {
            agent.run(req.body(()).unwrap())?
        } else {
            agent.run(req.body(body.to_vec()).unwrap())?
        };
        let status = resp.status().as_u16();
        let headers = resp
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    v.to_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
        // Bytes, not text: a body the runtime encoded (a `Content-Encoding` the client did not
        // ask to decode) is still a response whose status and headers can be checked.
        let body = resp
            .body_mut()
            .with_config()
            .limit(64 << 20)
            .read_to_vec()?;
        let body = String::from_utf8_lossy(&body).into_owned();
        Ok(Reply {
            status,
            headers,
            body,
        })
    }

    pub fn kv_put(&self, key: &str, value: &str) {
        let file = self.dir.join("kv-value");
        std::fs::write(&file, value).unwrap();
        let out = wrangler_env(&mut Command::new(
            repo_root().join("node_modules/.bin/wrangler"),
        ))
        .args(["kv", "key", "put", "--binding", "POLICY", key, "--path"])
        .arg(&file)
        .args(["--local", "--preview", "--config"])
        .arg(&self.config)
        .args(["--env", &self.env])
        .arg("--persist-to")
        .arg(&self.state)
        .current_dir(repo_root())
        .output()
        .unwrap();
        assert!(
            out.status.success(),
            "kv put {key}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Polls `ready` until it holds; the deadline only bounds a hang, nothing is timed.
    pub fn wait_until(
        &self,
        what: &str,
        deadline: Duration,
        mut ready: impl FnMut(&Stack) -> bool,
    ) {
        let start = Instant::now();
        while !ready(self) {
            assert!(
                start.elapsed() < deadline,
                "gave up waiting: {what}\n--- wrangler log ---\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Stack {
    /// Closes devstack's stdin: it stops everything it started and exits.
    fn drop(&mut self) {
        let channel = self.channel.get_mut().unwrap_or_else(|e| e.into_inner());
        drop(channel.commands.take());
        let start = Instant::now();
        while self.devstack.try_wait().ok().flatten().is_none() {
            if start.elapsed() > Duration::from_secs(60) {
                // Its children get SIGTERM when it dies (PR_SET_PDEATHSIG).
                self.devstack.kill().ok();
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.devstack.wait().ok();
        std::fs::remove_dir_all(&self.dir).ok();
    }
}

pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}
