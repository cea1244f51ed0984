//! devstack: the local stack, the one implementation `scripts/dev.sh` and the end-to-end tests
//! (`tests/support/stack.rs`) both run.
//!
//! It starts, each in a process group of its own:
//! 1. `demo-origins`: the eight Acme origins and their fault-control listener;
//! 2. `dev-auth serve`: the development identity provider (a JWKS);
//! 3. optionally uploads a policy to local KV through `scripts/upload-policy.sh --local`;
//! 4. `wrangler dev --env dev` on the Worker `scripts/build-worker.sh` built: wrangler.toml's
//!    `[env.dev]` has no `[build]` command (nothing is rebuilt per start) and the development
//!    values of the Worker's variables; `--var NAME:VALUE` overrides them.
//!
//! Then it waits until wrangler answers and runs until it is told to stop: Ctrl-C (SIGINT),
//! SIGTERM or SIGHUP, or, with `--control`, the end of its standard input. It stops everything
//! it started on the way out, also when a service dies or startup fails.
//!
//! Two ways to run it:
//! - foreground (scripts/dev.sh): the ports `policies/acme` names (origins 127.0.0.1:18101..18108,
//!   fault control :18100, identity provider :18200), wrangler on :8787, `policies/acme`
//!   uploaded, wrangler's output on this terminal, and a greeting with curl examples;
//! - `--control --free-ports` (the tests): every port free and never handed out twice, no
//!   policy, wrangler's output in `LOG_DIR/wrangler.log`; one JSON line on stdout describes the
//!   stack once it answers, and stdin takes commands, one a line, as words or as a JSON array
//!   of strings: `upload PATH...` (through scripts/upload-policy.sh; answered by
//!   `{"event":"uploaded"}` or `{"event":"error",...}`), `restart-wrangler` (stop wrangler and
//!   start it again on the same state; answered by a new `ready` line) and `stop`.
//!
//! Exit status: 0 after a requested stop, 1 when the stack failed (a service did not start or
//! died), 2 on a usage error.

#[path = "devstack/group.rs"]
mod group;
#[path = "devstack/probe.rs"]
mod probe;

use clap::Parser;
use serde_json::json;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The demo origins `policies/acme` names: (port, API/CLUSTER/REPLICA).
const ACME_ORIGINS: [(u16, &str); 8] = [
    (18101, "catalog/eks/1"),
    (18102, "catalog/eks/2"),
    (18103, "orders/eks/1"),
    (18104, "orders/eks/2"),
    (18105, "inventory/gke/1"),
    (18106, "inventory/gke/2"),
    (18107, "webhook/gke/1"),
    (18108, "webhook/gke/2"),
];
/// demo-origins' fault-control listener in the fixed layout.
const ACME_CONTROL_PORT: u16 = 18100;
/// The identity provider `policies/acme` trusts (its JWKS URL).
const ACME_IDP_PORT: u16 = 18200;
/// The wrangler environment (wrangler.toml `[env.dev]`) the stack runs.
const WRANGLER_ENV: &str = "dev";
/// wrangler.toml `[env.dev.vars]`'s value of the webhook secret, for the greeting's example.
const DEV_WEBHOOK_SECRET: &str = "dev-webhook-secret";
/// How long a service may take to say it is ready (wrangler: until it answers HTTP).
const SERVICE_READY: Duration = Duration::from_secs(60);
const WRANGLER_READY: Duration = Duration::from_secs(120);
/// SIGTERM to SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(10);

#[derive(Parser, Debug)]
#[command(
    name = "devstack",
    version,
    about = "Run the local stack: demo origins, the dev identity provider and `wrangler dev` \
             on the built Worker",
    long_about = None,
    after_help = "Exit status: 0 after a requested stop (Ctrl-C, SIGTERM, SIGHUP; with \
                  --control: `stop` or end of input), 1 when the stack failed, 2 on a usage \
                  error.\nscripts/dev.sh builds everything and runs `devstack`; the end-to-end \
                  tests run `devstack --control --free-ports`."
)]
struct Cli {
    /// wrangler dev's port on 127.0.0.1 (0: a free one) [default: 8787, with --free-ports 0]
    #[arg(long, value_name = "PORT")]
    port: Option<u16>,
    /// Put every service on a free port instead of those policies/acme names
    #[arg(long)]
    free_ports: bool,
    /// A policy file or directory to upload before wrangler starts [default: policies/acme,
    /// none with --free-ports]
    #[arg(long, value_name = "FILE|DIR", conflicts_with = "no_policy")]
    policy: Option<PathBuf>,
    /// Upload no policy (the Worker answers 503 until one is uploaded)
    #[arg(long)]
    no_policy: bool,
    /// wrangler's local state, KV and Durable Objects (`--persist-to`) [default: .wrangler/state]
    #[arg(long, value_name = "DIR")]
    state: Option<PathBuf>,
    /// Where the services write their logs [default: build/dev]
    #[arg(long, value_name = "DIR")]
    log_dir: Option<PathBuf>,
    /// A Worker variable for wrangler dev (`--var`), overriding wrangler.toml's [env.dev.vars];
    /// repeatable
    #[arg(long = "var", value_name = "NAME:VALUE", value_parser = parse_var)]
    vars: Vec<(String, String)>,
    /// For programs: print the stack as one JSON line when it answers, read commands from stdin
    /// (`upload PATH...`, `restart-wrangler`, `stop`), stop at end of input; wrangler's output
    /// goes to LOG_DIR/wrangler.log
    #[arg(long)]
    control: bool,
    /// Only check that the fixed ports are free, then exit (0: all free, 1: one is taken)
    #[arg(long, conflicts_with = "free_ports")]
    check_ports: bool,
    /// The repository (wrangler.toml, build/, node_modules/, scripts/) [default: the one this
    /// binary was built from]
    #[arg(long, value_name = "DIR")]
    root: Option<PathBuf>,
}

fn parse_var(s: &str) -> Result<(String, String), String> {
    match s.split_once(':') {
        Some((name, value)) if !name.is_empty() => Ok((name.to_string(), value.to_string())),
        _ => Err(format!("expected NAME:VALUE, got '{s}'")),
    }
}

/// Why the stack stopped.
enum Stop {
    /// Asked to: a signal, `stop`, end of input.
    Requested(String),
    /// Something failed; the message says what.
    Failed(String),
}

impl From<String> for Stop {
    fn from(message: String) -> Stop {
        Stop::Failed(message)
    }
}

impl From<&str> for Stop {
    fn from(message: &str) -> Stop {
        Stop::Failed(message.to_string())
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    group::catch_stop_signals();
    group::adopt_orphans();
    let mut stack = Stack::default();
    let outcome = run(cli, &mut stack);
    stack.stop_all();
    match outcome {
        Stop::Requested(why) => {
            say(&format!("stopped ({why})"));
            ExitCode::SUCCESS
        }
        Stop::Failed(message) => {
            eprintln!("devstack: error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// A progress message on stderr.
fn say(message: &str) {
    eprintln!("devstack: {message}");
}

/// Where everything goes, decided before anything starts.
struct Layout {
    root: PathBuf,
    bins: PathBuf,
    wrangler_port: u16,
    inspector_port: Option<u16>,
    /// (port in policies/acme, port it listens on, API/CLUSTER/REPLICA)
    origins: Vec<(u16, u16, &'static str)>,
    control_port: u16,
    idp_port: u16,
    state: PathBuf,
    log_dir: PathBuf,
    /// None: this terminal.
    wrangler_log: Option<PathBuf>,
    policy: Option<PathBuf>,
    vars: Vec<(String, String)>,
    control: bool,
}

impl Layout {
    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.wrangler_port)
    }
    fn config(&self) -> PathBuf {
        self.root.join("wrangler.toml")
    }
    fn bin(&self, name: &str) -> PathBuf {
        self.bins.join(name)
    }
    /// The JSON line `--control` prints when the stack answers.
    fn describe(&self) -> String {
        let origins: Vec<_> = self
            .origins
            .iter()
            .map(|(policy_port, port, name)| {
                json!({ "policy_port": policy_port, "port": port, "name": name })
            })
            .collect();
        json!({
            "event": "ready",
            "url": self.url(),
            "port": self.wrangler_port,
            "origins": origins,
            "faults": format!("http://127.0.0.1:{}", self.control_port),
            "idp": format!("http://127.0.0.1:{}", self.idp_port),
            "state": self.state,
            "config": self.config(),
            "env": WRANGLER_ENV,
            "wrangler_log": self.wrangler_log,
            "log_dir": self.log_dir,
        })
        .to_string()
    }
}

/// A running service: the leader of its own process group.
struct Service {
    name: &'static str,
    child: Child,
    log: Option<PathBuf>,
}

impl Service {
    fn stop(&mut self) {
        say(&format!(
            "stopping {} (process group {})",
            self.name,
            self.child.id()
        ));
        if group::stop(&mut self.child, STOP_GRACE) {
            say(&format!(
                "{} did not stop within {} s of SIGTERM: killed",
                self.name,
                STOP_GRACE.as_secs()
            ));
        }
    }

    /// Some(message) once it has exited.
    fn exited(&mut self) -> Option<String> {
        let status = match self.child.try_wait() {
            Ok(None) => return None,
            Ok(Some(status)) => status.to_string(),
            Err(e) => format!("cannot be waited for: {e}"),
        };
        Some(match &self.log {
            Some(log) => format!(
                "{} exited ({status}); its log {}:\n{}",
                self.name,
                log.display(),
                tail(log)
            ),
            None => format!("{} exited ({status}); its output is above", self.name),
        })
    }
}

/// The last lines of a log, indented.
fn tail(log: &Path) -> String {
    let text = fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let from = lines.len().saturating_sub(30);
    lines[from..].iter().map(|l| format!("    {l}\n")).collect()
}

#[derive(Default)]
struct Stack {
    /// In start order; stopped in reverse.
    services: Vec<Service>,
}

impl Stack {
    fn stop_all(&mut self) {
        while let Some(mut service) = self.services.pop() {
            service.stop();
        }
    }

    fn start(
        &mut self,
        name: &'static str,
        cmd: &mut Command,
        log: Option<&Path>,
    ) -> Result<usize, Stop> {
        cmd.stdin(Stdio::null());
        if let Some(log) = log {
            let file =
                File::create(log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
            let err = file
                .try_clone()
                .map_err(|e| format!("cannot open {} twice: {e}", log.display()))?;
            cmd.stdout(file).stderr(err);
        }
        let child = group::spawn(cmd).map_err(|e| {
            format!(
                "cannot start {name} ({}): {e}",
                cmd.get_program().to_string_lossy()
            )
        })?;
        self.services.push(Service {
            name,
            child,
            log: log.map(Path::to_path_buf),
        });
        Ok(self.services.len() - 1)
    }

    /// Polls `ready` until it holds, failing when the service exits, a stop signal arrives or
    /// `limit` passes.
    fn wait_ready(
        &mut self,
        index: usize,
        limit: Duration,
        mut ready: impl FnMut() -> bool,
    ) -> Result<(), Stop> {
        let start = Instant::now();
        loop {
            if let Some(signal) = group::caught() {
                return Err(Stop::Requested(group::signal_name(signal).into()));
            }
            if ready() {
                return Ok(());
            }
            let service = &mut self.services[index];
            if let Some(message) = service.exited() {
                return Err(Stop::Failed(format!("before it was ready, {message}")));
            }
            if start.elapsed() > limit {
                let log = service
                    .log
                    .as_ref()
                    .map_or(String::new(), |l| format!(" (log: {})", l.display()));
                return Err(Stop::Failed(format!(
                    "{} was not ready within {} s{log}",
                    service.name,
                    limit.as_secs()
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn run(cli: Cli, stack: &mut Stack) -> Stop {
    // With --free-ports a port is chosen free, then bound by a child a moment later: another
    // process (a test's own outgoing connection) can take it in between. Such a start is tried
    // again, on other ports, before anything was announced.
    let mut attempt = 1;
    loop {
        match start_and_serve(&cli, stack) {
            Err(Stop::Failed(why)) if cli.free_ports && attempt < 4 && port_taken(&why) => {
                say(&format!(
                    "a port was taken before its service bound it; again on other ports ({why})"
                ));
                stack.stop_all();
                attempt += 1;
            }
            Ok(stop) | Err(stop) => return stop,
        }
    }
}

/// Whether a start failed because a port was bound by someone else first.
fn port_taken(why: &str) -> bool {
    why.contains("Address already in use") || why.contains("EADDRINUSE")
}

fn start_and_serve(cli: &Cli, stack: &mut Stack) -> Result<Stop, Stop> {
    let layout = plan(cli)?;
    if cli.check_ports {
        say("all ports are free");
        return Ok(Stop::Requested("--check-ports".into()));
    }
    check_prerequisites(&layout)?;
    fs::create_dir_all(&layout.log_dir)
        .map_err(|e| format!("cannot create {}: {e}", layout.log_dir.display()))?;

    // 1. demo origins
    let log = layout.log_dir.join("demo-origins.log");
    let mut cmd = Command::new(layout.bin("demo-origins"));
    cmd.arg("--control")
        .arg(format!("127.0.0.1:{}", layout.control_port));
    for (_, port, name) in &layout.origins {
        cmd.arg(format!("--origin=127.0.0.1:{port}={name}"));
    }
    let origins = stack.start("demo-origins", &mut cmd, Some(&log))?;
    stack.wait_ready(origins, SERVICE_READY, || {
        log_has(&log, "demo-origins: ready")
    })?;
    say(&format!(
        "demo origins ready on {} (fault control http://127.0.0.1:{}, log {})",
        layout
            .origins
            .iter()
            .map(|(_, port, _)| format!("127.0.0.1:{port}"))
            .collect::<Vec<_>>()
            .join(" "),
        layout.control_port,
        log.display()
    ));

    // 2. the dev identity provider
    let log = layout.log_dir.join("dev-auth.log");
    let mut cmd = Command::new(layout.bin("dev-auth"));
    cmd.args(["serve", "--addr"])
        .arg(format!("127.0.0.1:{}", layout.idp_port));
    let idp = stack.start("dev-auth serve", &mut cmd, Some(&log))?;
    stack.wait_ready(idp, SERVICE_READY, || log_has(&log, "dev-auth: serving"))?;
    say(&format!(
        "dev identity provider: JWKS on http://127.0.0.1:{}/.well-known/jwks.json (log {})",
        layout.idp_port,
        log.display()
    ));

    // 3. the policy -> local KV
    if let Some(policy) = &layout.policy {
        upload(&layout, std::slice::from_ref(policy))?;
    }

    // 4. wrangler dev
    start_wrangler(stack, &layout)?;
    if layout.control {
        emit(&layout.describe());
    } else {
        greet(&layout);
    }
    serve(stack, &layout)
}

/// Ports, paths and variables; in the fixed layout, fails when a port is taken.
fn plan(cli: &Cli) -> Result<Layout, Stop> {
    let cwd = std::env::current_dir().map_err(|e| format!("no current directory: {e}"))?;
    let root = match &cli.root {
        Some(dir) => cwd.join(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")),
    };
    let bins = std::env::current_exe()
        .map_err(|e| format!("cannot tell where devstack is: {e}"))?
        .parent()
        .map(Path::to_path_buf)
        .ok_or("devstack's own path has no directory")?;
    let at = |given: &Option<PathBuf>, default: &str| match given {
        Some(p) => cwd.join(p),
        None => root.join(default),
    };
    let state = at(&cli.state, ".wrangler/state");
    let log_dir = at(&cli.log_dir, "build/dev");
    let policy = match (&cli.policy, cli.no_policy, cli.free_ports) {
        (Some(p), _, _) => Some(cwd.join(p)),
        (None, false, false) => Some(root.join("policies/acme")),
        _ => None,
    };
    let mut vars: Vec<(String, String)> = Vec::new();
    for (name, value) in &cli.vars {
        vars.retain(|(n, _)| n != name);
        vars.push((name.clone(), value.clone()));
    }

    let (origins, control_port, idp_port, wrangler_port, inspector_port);
    if cli.free_ports {
        // The children bind theirs first; wrangler's is chosen last of all.
        origins = ACME_ORIGINS
            .iter()
            .map(|&(policy_port, name)| (policy_port, free_port(), name))
            .collect();
        control_port = free_port();
        idp_port = free_port();
        inspector_port = Some(free_port());
        wrangler_port = match cli.port {
            Some(port) if port != 0 => port,
            _ => free_port(),
        };
    } else {
        origins = ACME_ORIGINS
            .iter()
            .map(|&(port, name)| (port, port, name))
            .collect::<Vec<_>>();
        control_port = ACME_CONTROL_PORT;
        idp_port = ACME_IDP_PORT;
        inspector_port = None;
        wrangler_port = match cli.port {
            Some(0) => free_port(),
            Some(port) => port,
            None => 8787,
        };
        check_port(
            wrangler_port,
            "wrangler dev",
            "Stop whatever listens there (an earlier scripts/dev.sh or wrangler dev?) or pass --port N.",
        )?;
        for (port, _, _) in &origins {
            check_port(
                *port,
                "demo origins",
                "The demo origins need 127.0.0.1:18101..18108: stop an earlier scripts/dev.sh or demo-origins.",
            )?;
        }
        check_port(
            control_port,
            "demo origins' fault control",
            "demo-origins needs 127.0.0.1:18100 for fault control: stop an earlier scripts/dev.sh or demo-origins.",
        )?;
        check_port(
            idp_port,
            "dev identity provider",
            "dev-auth serve needs 127.0.0.1:18200: stop an earlier scripts/dev.sh or dev-auth.",
        )?;
    }
    Ok(Layout {
        wrangler_log: cli.control.then(|| log_dir.join("wrangler.log")),
        root,
        bins,
        wrangler_port,
        inspector_port,
        origins,
        control_port,
        idp_port,
        state,
        log_dir,
        policy,
        vars,
        control: cli.control,
    })
}

/// A port nothing listens on now and that this process has not handed out before: the kernel
/// may give a just-released port to the next `bind(…:0)`, so two calls in a row could return
/// the same one.
fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("127.0.0.1 has a free port");
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

fn check_port(port: u16, what: &str, hint: &str) -> Result<(), Stop> {
    // std sets SO_REUSEADDR, as node does: a port in TIME_WAIT is no conflict.
    if TcpListener::bind(("127.0.0.1", port)).is_ok() {
        return Ok(());
    }
    let owner = Command::new("ss")
        .args(["-Htlnp", &format!("sport = :{port}")])
        .stderr(Stdio::null())
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
        .map_or(String::new(), |s| format!(" by: {s}"));
    Err(Stop::Failed(format!(
        "port {port} ({what}) is already in use{owner}. {hint}"
    )))
}

fn check_prerequisites(layout: &Layout) -> Result<(), Stop> {
    for needed in [
        "build/index_bg.wasm",
        "build/worker/shim.mjs",
        "node_modules/.bin/wrangler",
        "wrangler.toml",
    ] {
        if !layout.root.join(needed).exists() {
            return Err(Stop::Failed(format!(
                "{} is missing: scripts/dev.sh (or scripts/test.sh) builds the Worker and installs wrangler",
                layout.root.join(needed).display()
            )));
        }
    }
    for bin in ["demo-origins", "dev-auth"] {
        if !layout.bin(bin).exists() {
            return Err(Stop::Failed(format!(
                "{} is missing: build the crate's binaries (cargo build --bins) first",
                layout.bin(bin).display()
            )));
        }
    }
    if let Some(policy) = &layout.policy {
        if !policy.exists() {
            return Err(Stop::Failed(format!(
                "no such policy file or directory: {}",
                policy.display()
            )));
        }
    }
    Ok(())
}

fn log_has(log: &Path, line_start: &str) -> bool {
    fs::read_to_string(log).is_ok_and(|text| text.lines().any(|l| l.starts_with(line_start)))
}

/// The environment every wrangler call gets: no telemetry, no error-report prompt, no
/// Request.cf download, no banner; node_modules/.bin first in PATH.
fn wrangler_env(cmd: &mut Command, root: &Path) {
    let path = format!(
        "{}:{}",
        root.join("node_modules/.bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    cmd.env("PATH", path)
        .env("WRANGLER_SEND_METRICS", "false")
        .env("WRANGLER_SEND_ERROR_REPORTS", "false")
        .env("CLOUDFLARE_CF_FETCH_ENABLED", "false")
        .env("WRANGLER_HIDE_BANNER", "true");
}

/// Uploads through scripts/upload-policy.sh, as a user does, with this build's policy-check.
fn upload(layout: &Layout, policy: &[PathBuf]) -> Result<(), Stop> {
    let shown: Vec<String> = policy.iter().map(|p| p.display().to_string()).collect();
    let shown = shown.join(" ");
    say(&format!("uploading {shown} to local KV"));
    let mut cmd = Command::new("bash");
    cmd.arg(layout.root.join("scripts/upload-policy.sh"))
        .args(["--local", "--persist-to"])
        .arg(&layout.state)
        .arg("--config")
        .arg(layout.config())
        .arg("--")
        .args(policy)
        .current_dir(&layout.root)
        .stdin(Stdio::null())
        // stdout is the --control channel: the script's chatter goes to stderr.
        .stdout(Stdio::from(io::stderr()));
    wrangler_env(&mut cmd, &layout.root);
    if layout.bin("policy-check").exists() {
        cmd.env("POLICY_CHECK_BIN", layout.bin("policy-check"));
    }
    let status = cmd
        .status()
        .map_err(|e| format!("cannot run scripts/upload-policy.sh: {e}"))?;
    if let Some(signal) = group::caught() {
        return Err(Stop::Requested(group::signal_name(signal).into()));
    }
    if !status.success() {
        return Err(Stop::Failed(format!(
            "uploading {shown} to local KV failed ({status}, see above)"
        )));
    }
    Ok(())
}

fn start_wrangler(stack: &mut Stack, layout: &Layout) -> Result<(), Stop> {
    let mut cmd = Command::new(layout.root.join("node_modules/.bin/wrangler"));
    cmd.args(["dev", "--config"])
        .arg(layout.config())
        .args(["--env", WRANGLER_ENV, "--local", "--ip", "127.0.0.1"])
        .args(["--port", &layout.wrangler_port.to_string()])
        .arg("--persist-to")
        .arg(&layout.state)
        .arg("--show-interactive-dev-session=false")
        // GET /__scheduled runs the Cron Trigger (the active health probes).
        .arg("--test-scheduled")
        .current_dir(&layout.root);
    if let Some(port) = layout.inspector_port {
        cmd.args(["--inspector-port", &port.to_string()]);
    }
    for (name, value) in &layout.vars {
        cmd.arg("--var").arg(format!("{name}:{value}"));
    }
    wrangler_env(&mut cmd, &layout.root);
    say(&format!(
        "starting wrangler dev --env {WRANGLER_ENV} on {} (state {}{})",
        layout.url(),
        layout.state.display(),
        layout
            .wrangler_log
            .as_ref()
            .map_or(String::new(), |l| format!(", log {}", l.display()))
    ));
    // Appended across restarts, so a test's log shows every run.
    let index = match &layout.wrangler_log {
        Some(log) => {
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(log)
                .map_err(|e| format!("cannot open {}: {e}", log.display()))?;
            let err = file
                .try_clone()
                .map_err(|e| format!("cannot open {} twice: {e}", log.display()))?;
            cmd.stdout(file).stderr(err);
            let index = stack.start("wrangler dev", &mut cmd, None)?;
            stack.services[index].log = Some(log.clone());
            index
        }
        None => stack.start("wrangler dev", &mut cmd, None)?,
    };
    let addr = SocketAddr::from(([127, 0, 0, 1], layout.wrangler_port));
    stack.wait_ready(index, WRANGLER_READY, || {
        probe::status(addr, "GET", "/", &[], b"", Duration::from_secs(2)).is_ok()
    })?;
    say(&format!("wrangler dev answers on {}", layout.url()));
    Ok(())
}

/// One line on stdout (the --control channel); a reader that went away is no error here.
fn emit(line: &str) {
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

enum Input {
    Line(String),
    End,
}

/// Runs until a stop is requested or a service dies.
fn serve(stack: &mut Stack, layout: &Layout) -> Result<Stop, Stop> {
    let commands = layout.control.then(|| {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in io::stdin().lock().lines() {
                let Ok(line) = line else { break };
                if tx.send(Input::Line(line)).is_err() {
                    break;
                }
            }
            let _ = tx.send(Input::End);
        });
        rx
    });
    loop {
        if let Some(signal) = group::caught() {
            return Ok(Stop::Requested(group::signal_name(signal).into()));
        }
        for service in &mut stack.services {
            if let Some(message) = service.exited() {
                return Err(Stop::Failed(message));
            }
        }
        let Some(commands) = &commands else {
            std::thread::sleep(Duration::from_millis(100));
            continue;
        };
        match commands.recv_timeout(Duration::from_millis(100)) {
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Ok(Input::End) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Ok(Stop::Requested("end of input".into()))
            }
            Ok(Input::Line(line)) => {
                if let Some(stop) = command(stack, layout, &line)? {
                    return Ok(stop);
                }
            }
        }
    }
}

/// One `--control` command: a line of words, or a JSON array of strings (for paths with
/// spaces). Answers on stdout with a JSON line, except `stop`.
fn command(stack: &mut Stack, layout: &Layout, line: &str) -> Result<Option<Stop>, Stop> {
    let words: Vec<String> = if line.trim_start().starts_with('[') {
        match serde_json::from_str(line) {
            Ok(words) => words,
            Err(e) => {
                emit(
                    &json!({ "event": "error", "message": format!("bad command {line:?}: {e}") })
                        .to_string(),
                );
                return Ok(None);
            }
        }
    } else {
        line.split_whitespace().map(String::from).collect()
    };
    let Some((name, args)) = words.split_first() else {
        return Ok(None);
    };
    match (name.as_str(), args.len()) {
        ("stop", 0) => return Ok(Some(Stop::Requested("stop".into()))),
        ("restart-wrangler", 0) => {
            let index = stack
                .services
                .iter()
                .position(|s| s.name == "wrangler dev")
                .ok_or("wrangler dev is not running")?;
            stack.services.remove(index).stop();
            start_wrangler(stack, layout)?;
            emit(&layout.describe());
        }
        ("upload", 1..) => {
            let cwd = std::env::current_dir().unwrap_or_default();
            let paths: Vec<PathBuf> = args.iter().map(|p| cwd.join(p)).collect();
            match upload(layout, &paths) {
                Ok(()) => emit(&json!({ "event": "uploaded" }).to_string()),
                Err(Stop::Failed(message)) => {
                    emit(&json!({ "event": "error", "message": message }).to_string())
                }
                Err(stop) => return Err(stop),
            }
        }
        _ => emit(
            &json!({
                "event": "error",
                "message": format!(
                    "unknown command {line:?} (known: restart-wrangler, upload PATH..., stop)"
                ),
            })
            .to_string(),
        ),
    }
    Ok(None)
}

/// The foreground greeting: how to use the stack, with the status each example gets right now.
fn greet(layout: &Layout) {
    let base = layout.url();
    let addr = SocketAddr::from(([127, 0, 0, 1], layout.wrangler_port));
    let status =
        |api: Option<&str>, method: &str, path: &str, headers: &[(&str, &str)], body: &str| {
            let mut all: Vec<(String, String)> = headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            if let Some(api) = api {
                all.push(("X-Acme-Api".into(), api.into()));
            }
            // What the curl command shown sends too (the WAF scores a body without a type).
            all.push(("User-Agent".into(), "curl/8 (devstack)".into()));
            all.push(("Accept".into(), "*/*".into()));
            if !body.is_empty() {
                all.push((
                    "Content-Type".into(),
                    "application/x-www-form-urlencoded".into(),
                ));
            }
            probe::status(
                addr,
                method,
                path,
                &all,
                body.as_bytes(),
                Duration::from_secs(10),
            )
            .map_or("no answer".to_string(), |s| s.to_string())
        };
    let dev_auth = layout.bin("dev-auth");
    let shown = dev_auth
        .strip_prefix(&layout.root)
        .unwrap_or(&dev_auth)
        .display()
        .to_string();
    let run = |args: &[&str]| -> String {
        Command::new(&dev_auth)
            .args(args)
            .stderr(Stdio::inherit())
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    };
    let token = run(&["token", "--sub", "alice"]).trim().to_string();
    let bearer = format!("Bearer {token}");
    let webhook_secret = layout
        .vars
        .iter()
        .find(|(n, _)| n == "ACME__GITHUB_WEBHOOK_SECRET")
        .map_or(DEV_WEBHOOK_SECRET, |(_, v)| v.as_str())
        .to_string();
    // The replay log remembers deliveries across runs (the state persists), and the status
    // shown is taken with a delivery of its own: the body a reader pastes is new both times.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let webhook_body = format!(r#"{{"zen":"Keep it logically awesome.","at":{now}}}"#);
    let probe_body = format!(r#"{{"zen":"Keep it logically awesome.","at":{now},"probe":1}}"#);
    let signed: Vec<(String, String)> = run(&[
        "sign-webhook",
        "--provider",
        "github",
        "--secret",
        &webhook_secret,
        "--body",
        &probe_body,
    ])
    .lines()
    .filter_map(|l| l.split_once(':'))
    .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
    .collect();
    let signed: Vec<(&str, &str)> = signed
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let faults = format!("http://127.0.0.1:{}", layout.control_port);
    let idp = format!("127.0.0.1:{}", layout.idp_port);
    let default_state = layout.root.join(".wrangler/state");
    let persist = if layout.state == default_state {
        String::new()
    } else {
        format!(" --persist-to {}", layout.state.display())
    };
    let policy = layout
        .policy
        .as_ref()
        .map_or("policies/acme".to_string(), |p| {
            p.strip_prefix(&layout.root)
                .unwrap_or(p)
                .display()
                .to_string()
        });
    let origins_log = layout.log_dir.join("demo-origins.log");
    let text = format!(
        r#"
devstack: edge-gateway is running on {base} (Ctrl-C stops it and everything it started)

  # one request per API (HTTP status right now in brackets)
  curl -s -H 'X-Acme-Api: catalog-eks'   {base}/items       # [{catalog}]
  # orders need a token from the dev identity provider (policies/acme/eks.yaml)
  TOKEN=$({shown} token --sub alice)     # --key ec-1|ed-1, --ttl -60 (expired), --aud other, ...
  curl -s -H 'X-Acme-Api: orders-eks' -H "Authorization: Bearer $TOKEN" {base}/orders   # [{orders}]
  curl -s -i -H 'X-Acme-Api: orders-eks' {base}/orders     # no token: 401 [{orders_anon}]
  # inventory is for partner addresses only; wrangler dev takes the client address from
  # CF-Connecting-IP, as Cloudflare's edge sets it, so curl can act as a partner (or not)
  curl -s -H 'X-Acme-Api: inventory-gke' -H 'CF-Connecting-IP: 192.0.2.10' {base}/inventory   # [{partner}]
  curl -s -H 'X-Acme-Api: inventory-gke' {base}/inventory   # [{stranger}]
  # webhooks must be signed by GitHub with the secret (dev value: {webhook_secret}); each
  # delivery is taken once (a second identical one is a replay: 403)
  BODY='{webhook_body}'
  {shown} sign-webhook --provider github --secret {webhook_secret} --body "$BODY" > /tmp/hook.h
  curl -s -H 'X-Acme-Api: webhook-gke' -H @/tmp/hook.h -d "$BODY" {base}/hooks/github   # [{signed}]
  curl -s -i -H 'X-Acme-Api: webhook-gke' -d '{{}}' {base}/hooks/github                # unsigned: 403 [{unsigned}]
  # fault injection: a replica down (or 503, hang, reset); the pool keeps answering (docs/pools.md)
  curl -X POST '{faults}/faults/catalog/eks/1?mode=down'    # ...?mode=ok to heal
  curl -s {faults}/faults                                   # who served, who failed
  curl -s "{base}/__scheduled?cron=*+*+*+*+*"        # run the health probes now (the Cron Trigger)
  # identity provider outage and key rotation: the gateway keeps serving with cached keys
  curl -s -X POST http://{idp}/admin/down    # .../admin/up, .../admin/keys?kids=rsa-1,rsa-2
  # an unknown API -> 404; no X-Acme-Api header at all -> 400
  curl -s -i -H 'X-Acme-Api: no-such-api' {base}/          # [{unknown}]
  curl -s -i {base}/                                       # [{no_header}]

  # change the policy live: edit {policy}/*.yaml, then (picked up within ~2 s)
  scripts/upload-policy.sh --local{persist} {policy}

  # change the Worker: wrangler reloads when build/ changes
  scripts/build-worker.sh

  demo origins log: {origins_log}
"#,
        catalog = status(Some("catalog-eks"), "GET", "/items", &[], ""),
        orders = status(
            Some("orders-eks"),
            "GET",
            "/orders",
            &[("Authorization", &bearer)],
            ""
        ),
        orders_anon = status(Some("orders-eks"), "GET", "/orders", &[], ""),
        partner = status(
            Some("inventory-gke"),
            "GET",
            "/inventory",
            &[("CF-Connecting-IP", "192.0.2.10")],
            ""
        ),
        stranger = status(Some("inventory-gke"), "GET", "/inventory", &[], ""),
        signed = status(
            Some("webhook-gke"),
            "POST",
            "/hooks/github",
            &signed,
            &probe_body
        ),
        unsigned = status(Some("webhook-gke"), "POST", "/hooks/github", &[], "{}"),
        unknown = status(Some("no-such-api"), "GET", "/", &[], ""),
        no_header = status(None, "GET", "/", &[], ""),
        origins_log = origins_log.display(),
    );
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "{text}");
    let _ = out.flush();
}
