//! The same stack `scripts/dev.sh` runs, started by a test: the demo origins, the built Worker
//! under `wrangler dev` (workerd) with its own local KV state, and policy uploads through
//! `scripts/upload-policy.sh`. Every process runs in its own process group and is killed on drop.
#![allow(dead_code, reason = "each test binary uses a different part")]

use super::scenario::repo_root;
use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Stack {
    pub dir: PathBuf,
    pub port: u16,
    pub config: PathBuf,
    pub log: PathBuf,
    /// (port in policies/acme, port the test's demo origin listens on)
    pub origin_ports: Vec<(u16, u16)>,
    /// The dev identity provider (`dev-auth serve`): `http://127.0.0.1:PORT`.
    pub idp: String,
    /// The demo origins' fault-control listener: `http://127.0.0.1:PORT`.
    pub faults: String,
    vars: Vec<(String, String)>,
    wrangler: Option<Child>,
    children: Vec<Child>,
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

/// A port nothing listens on now and that this process has not handed out before. The kernel
/// may give a just-released ephemeral port to the next `bind(…:0)`, so two calls in a row can
/// return the same port (CI once started demo-origins with one address twice); remember them.
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

fn path_env() -> String {
    let bin = repo_root().join("node_modules/.bin");
    format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

fn wrangler_env(cmd: &mut Command) -> &mut Command {
    cmd.env("PATH", path_env())
        .env("WRANGLER_SEND_METRICS", "false")
        .env("WRANGLER_SEND_ERROR_REPORTS", "false")
        .env("CLOUDFLARE_CF_FETCH_ENABLED", "false")
        .env("WRANGLER_HIDE_BANNER", "true")
}

impl Stack {
    /// Starts the demo origins and `wrangler dev` on the prebuilt Worker (no policy uploaded).
    pub fn start(vars: &[(&str, &str)]) -> Stack {
        let root = repo_root();
        for needed in [
            "build/index_bg.wasm",
            "build/worker/shim.mjs",
            "node_modules/.bin/wrangler",
        ] {
            assert!(
                root.join(needed).exists(),
                "{needed} is missing: run scripts/test.sh (it builds the Worker and installs wrangler)"
            );
        }
        let dir = std::env::temp_dir().join(format!(
            "edge-gateway-e2e-{}-{}",
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let config = dir.join("wrangler.toml");
        write_nobuild_config(&root.join("wrangler.toml"), &config);
        let mut stack = Stack {
            port: 0, // chosen just before wrangler starts, after the children bind theirs
            log: dir.join("wrangler.log"),
            config,
            dir,
            origin_ports: Vec::new(),
            idp: String::new(),
            faults: String::new(),
            vars: Vec::new(),
            wrangler: None,
            children: Vec::new(),
        };

        // The demo origins of policies/acme (ports 18101..18108 there) on free ports, so the
        // tests can run beside a developer's scripts/dev.sh.
        let table = [
            "catalog/eks/1",
            "catalog/eks/2",
            "orders/eks/1",
            "orders/eks/2",
            "inventory/gke/1",
            "inventory/gke/2",
            "webhook/gke/1",
            "webhook/gke/2",
        ];
        let mut origin_args = Vec::new();
        for (i, name) in table.iter().enumerate() {
            let port = free_port();
            stack.origin_ports.push((18101 + i as u16, port));
            origin_args.push(format!("--origin=127.0.0.1:{port}={name}"));
        }
        let mut origins = Command::new(env!("CARGO_BIN_EXE_demo-origins"))
            .arg("--quiet")
            .args(&origin_args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .expect("demo-origins starts");
        let mut lines = BufReader::new(origins.stdout.take().unwrap()).lines();
        let ready = lines.any(|l| {
            let l = l.unwrap_or_default();
            if let Some(addr) = l.strip_prefix("demo-origins: control ") {
                stack.faults = addr.trim().to_string();
            }
            l.contains("demo-origins: ready")
        });
        if !ready {
            let mut err = String::new();
            origins.stderr.take().unwrap().read_to_string(&mut err).ok();
            panic!("demo-origins did not start: {err}");
        }
        stack.children.push(origins);

        // The dev identity provider policies/acme trusts (127.0.0.1:18200 there).
        let mut idp = Command::new(env!("CARGO_BIN_EXE_dev-auth"))
            .args(["serve", "--addr", "127.0.0.1:0", "--quiet"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("dev-auth serve starts");
        let mut first = String::new();
        BufReader::new(idp.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        stack.idp = first
            .trim()
            .strip_prefix("dev-auth: serving ")
            .unwrap_or_else(|| panic!("dev-auth serve said {first:?}"))
            .to_string();
        stack.children.push(idp);

        stack.vars = vars
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
            if !stack.vars.iter().any(|(name, _)| name == k) {
                stack.vars.push((k.into(), v.into()));
            }
        }
        // Chosen last so the children's own `:0` binds cannot take it before wrangler does.
        stack.port = free_port();
        stack.start_wrangler();
        stack
    }

    /// Stops `wrangler dev` (its whole process group) and starts it again on the same state.
    pub fn restart_wrangler(&mut self) {
        if let Some(mut child) = self.wrangler.take() {
            stop_group(&mut child);
        }
        self.start_wrangler();
    }

    fn start_wrangler(&mut self) {
        let root = repo_root();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let port = self.port.to_string();
        let mut cmd = Command::new(root.join("node_modules/.bin/wrangler"));
        cmd.args(["dev", "--config"])
            .arg(&self.config)
            .args(["--local", "--ip", "127.0.0.1", "--port", &port])
            .args(["--inspector-port", &free_port().to_string(), "--persist-to"])
            .arg(self.dir.join("state"))
            .arg("--show-interactive-dev-session=false")
            // GET /__scheduled runs the Cron Trigger (active health probes).
            .arg("--test-scheduled");
        for (k, v) in &self.vars {
            cmd.args(["--var", &format!("{k}:{v}")]);
        }
        wrangler_env(&mut cmd)
            .current_dir(&root)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .process_group(0);
        self.wrangler = Some(cmd.spawn().expect("wrangler dev starts"));
        self.wait_until("wrangler dev answers", Duration::from_secs(60), |s| {
            s.get("/", &[]).is_ok()
        });
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
        let body = resp
            .body_mut()
            .with_config()
            .limit(64 << 20)
            .read_to_string()?;
        Ok(Reply {
            status,
            headers,
            body,
        })
    }

    /// Uploads through the real script, as a user does.
    pub fn upload(&self, paths: &[&Path]) {
        let out = wrangler_env(&mut Command::new("bash"))
            .arg(repo_root().join("scripts/upload-policy.sh"))
            .args(["--local", "--persist-to"])
            .arg(self.dir.join("state"))
            .arg("--config")
            .arg(&self.config)
            .args(paths)
            .current_dir(repo_root())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "upload-policy.sh failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Writes one KV key directly (to put values the upload script would refuse).
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
        .arg("--persist-to")
        .arg(self.dir.join("state"))
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
    fn drop(&mut self) {
        if let Some(mut child) = self.wrangler.take() {
            stop_group(&mut child);
        }
        for child in &mut self.children {
            stop_group(child);
        }
        std::fs::remove_dir_all(&self.dir).ok();
    }
}

/// SIGTERM to the child's process group, then SIGKILL after 10 s (wrangler leaves workerd behind
/// when only the parent is signalled).
#[expect(
    unsafe_code,
    reason = "kill(2) on a process group: std has no call for it"
)]
fn stop_group(child: &mut Child) {
    let pgid = child.id() as i32;
    // SAFETY: signalling a process group this test created; no memory is involved.
    unsafe { libc::kill(-pgid, libc::SIGTERM) };
    let start = Instant::now();
    while child.try_wait().ok().flatten().is_none() && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(100));
    }
    // SAFETY: as above.
    unsafe { libc::kill(-pgid, libc::SIGKILL) };
    child.wait().ok();
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

/// wrangler.toml without `[build]` (the test runs the prebuilt Worker) and with `main` absolute.
fn write_nobuild_config(src: &Path, dst: &Path) {
    let text = std::fs::read_to_string(src).unwrap();
    let mut out = String::new();
    let mut in_build = false;
    for line in text.lines() {
        if line.starts_with('[') {
            in_build = line.trim() == "[build]";
        }
        if in_build {
            continue;
        }
        if line.starts_with("main = ") {
            out.push_str(&format!(
                "main = {:?}\n",
                repo_root()
                    .join("build/worker/shim.mjs")
                    .display()
                    .to_string()
            ));
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    std::fs::write(dst, out).unwrap();
}
