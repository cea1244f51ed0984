//! Demo origins: a tiny native HTTP/1.1 server that plays the four "Acme" APIs
//! (catalog, orders, inventory, webhook) in two Kubernetes "clusters" (eks,
//! gke), two replicas each.
//!
//! In production the gateway reaches these services through cloudflared
//! tunnels. For `scripts/dev.sh` and the end-to-end tests we need stand-ins
//! that listen on loopback and report exactly what arrived: every answer
//! echoes the method, path, query, headers and a SHA-256 of the body, and
//! names the replica that served it (`X-Demo-Origin`), so tests can assert on
//! routing, header rewriting and load balancing without real backends.
//!
//! To make gateway failover visible, each replica can be told to fail (see
//! `faults.rs`): answer an error status, hang, drop the connection after the
//! request head, or close its port altogether. A process-wide control
//! listener (`--control`, its address printed as `demo-origins: control
//! http://ADDR` before `demo-origins: ready`) sets and lists the modes and
//! per-replica request counts; `/__fault` on a replica does the same for
//! convenience:
//!
//! ```text
//! curl -X POST 'http://127.0.0.1:18100/faults/18101?mode=503'
//! curl -X POST 'http://127.0.0.1:18101/__fault?mode=reset&fail-next=2'
//! curl http://127.0.0.1:18100/faults
//! ```
//!
//! It is std-only (plus serde_json for string escaping and clap for the
//! command line) with one thread per connection: it has to build quickly next
//! to the worker, and demo traffic is tiny.

#[path = "demo_origins/bodies.rs"]
mod bodies;
#[path = "demo_origins/faults.rs"]
mod faults;

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::process::ExitCode;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use clap::error::ErrorKind;
use clap::{CommandFactory, FromArgMatches, Parser};
use serde_json::Value;

use faults::{Faults, Mode, Replica};

/// Request line plus headers; larger heads are refused with 431.
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Decoded body size; larger bodies are refused with 413.
const MAX_BODY_BYTES: usize = 10 * 1024 * 1024;
/// One chunk-size line (size plus extensions) of a chunked body.
const MAX_CHUNK_LINE_BYTES: usize = 4 * 1024;
/// Idle keep-alive connections end after this, so their threads do not pile up.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// The control listener of the default table (scripts/dev.sh).
const DEFAULT_CONTROL: &str = "127.0.0.1:18100";

const DEFAULT_ORIGINS: &[(&str, &str)] = &[
    ("127.0.0.1:18101", "catalog/eks/1"),
    ("127.0.0.1:18102", "catalog/eks/2"),
    ("127.0.0.1:18103", "orders/eks/1"),
    ("127.0.0.1:18104", "orders/eks/2"),
    ("127.0.0.1:18105", "inventory/gke/1"),
    ("127.0.0.1:18106", "inventory/gke/2"),
    ("127.0.0.1:18107", "webhook/gke/1"),
    ("127.0.0.1:18108", "webhook/gke/2"),
];

fn main() -> ExitCode {
    match parse_command_line(std::env::args_os()) {
        Ok(config) => serve(config),
        // Help and version on stdout with 0; usage errors on stderr with 2.
        Err(e) => e.exit(),
    }
}

// ---------------------------------------------------------------------------
// Command line
// ---------------------------------------------------------------------------

/// One demo service instance: where it listens and who it pretends to be.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Origin {
    addr: SocketAddr,
    api: String,
    cluster: String,
    replica: String,
}

impl Origin {
    /// `API/CLUSTER/REPLICA`, as used in `X-Demo-Origin` and the logs.
    fn label(&self) -> String {
        format!("{}/{}/{}", self.api, self.cluster, self.replica)
    }
}

#[derive(Debug, PartialEq, Eq)]
struct Config {
    origins: Vec<Origin>,
    /// The fault-control listener; port 0 picks a free one.
    control: SocketAddr,
    quiet: bool,
}

/// Demo "Acme" API origins for scripts/dev.sh and the e2e tests.
///
/// Every request is answered 200 with a JSON echo of what arrived, unless a fault is injected
/// (below). Startup prints 'demo-origins: control http://ADDR', then 'demo-origins: ready'.
/// Exit status: 1 if a listener cannot start, 2 on a usage error.
#[derive(Debug, Parser)]
#[command(
    name = "demo-origins",
    version,
    after_help = "Fault injection and the default table: see --help."
)]
struct Cli {
    /// Serve one origin, e.g. 127.0.0.1:18101=catalog/eks/1; repeatable, replaces the default
    /// table
    #[arg(long = "origin", value_name = "ADDR=API/CLUSTER/REPLICA", value_parser = parse_origin)]
    origins: Vec<Origin>,
    /// Fault-control listener [default: 127.0.0.1:18100, or 127.0.0.1:0 (a free port) when
    /// --origin is given]
    #[arg(long, value_name = "ADDR", value_parser = parse_control)]
    control: Option<SocketAddr>,
    /// Do not log requests or mode changes to stderr
    #[arg(short, long)]
    quiet: bool,
}

/// The parser, with the fault-injection help and the default table after `--help`.
fn command() -> clap::Command {
    Cli::command().after_long_help(fault_help())
}

/// The configuration the command line asks for; help, version and usage errors are `Err`.
fn parse_command_line<I, T>(args: I) -> Result<Config, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let matches = command().try_get_matches_from(args)?;
    let cli = Cli::from_arg_matches(&matches)?;
    cli.config()
        .map_err(|msg| command().error(ErrorKind::ArgumentConflict, msg))
}

fn fault_help() -> String {
    let mut text = String::from(
        "Fault injection. REPLICA is a port, IP:PORT or API/CLUSTER/REPLICA:\n\
         \x20 GET  http://CONTROL/faults            {\"IP:PORT\": {\"mode\", \"served\", \"faulted\", ...}}\n\
         \x20 GET  http://CONTROL/faults/REPLICA    one replica\n\
         \x20 POST http://CONTROL/faults/REPLICA?mode=MODE   set one replica\n\
         \x20 POST http://CONTROL/faults?mode=MODE           set all (mode=ok heals everything)\n\
         \x20 GET|POST http://ORIGIN/__fault[?mode=MODE][&replica=REPLICA]\n\
         \x20      the same on any replica, for itself or the one named; /__fault is never\n\
         \x20      faulted, but a replica that is down cannot answer it\n\
         Modes:\n\
         \x20 ok      answer normally (the default)\n\
         \x20 503     answer every request with 503 and a JSON body naming the replica;\n\
         \x20         &status=NNN (400..599) or mode=NNN picks another status\n\
         \x20 hang    read the request, never answer; the connection stays open until the\n\
         \x20         client gives up\n\
         \x20 reset   close the connection right after the request head, without a response\n\
         \x20 down    close the listening port (connects are refused; kept-alive connections\n\
         \x20         are dropped at their next request); leaving down re-binds it\n\
         \x20 &fail-next=N  fault only the next N requests, then back to ok (not with down)\n\
         Mode changes are logged to stderr. Counters: served = answered normally,\n\
         faulted = got the fault; /__fault requests count as neither.\n\
         \n\
         Default table:\n",
    );
    for (addr, ident) in DEFAULT_ORIGINS {
        let _ = writeln!(text, "  {addr}  {ident}");
    }
    text
}

impl Cli {
    /// Fills in the defaults and refuses addresses given twice.
    fn config(self) -> Result<Config, String> {
        let Cli {
            mut origins,
            control,
            quiet,
        } = self;
        // Custom tables (the tests) pick free ports, so a fixed control port
        // would collide between parallel runs; the default table keeps its own.
        let fallback = if origins.is_empty() {
            origins = default_origins();
            DEFAULT_CONTROL
        } else {
            "127.0.0.1:0"
        };
        let control = control.unwrap_or_else(|| fallback.parse().expect("valid fallback address"));
        // A duplicate would fail to bind with a misleading "already in use" hint.
        let mut seen = HashSet::new();
        for origin in &origins {
            if origin.addr.port() != 0 && !seen.insert(origin.addr) {
                return Err(format!("address {} is given twice", origin.addr));
            }
        }
        if control.port() != 0 && seen.contains(&control) {
            return Err(format!("--control {control} is also an origin"));
        }
        Ok(Config {
            origins,
            control,
            quiet,
        })
    }
}

fn parse_control(addr: &str) -> Result<SocketAddr, String> {
    addr.parse()
        .map_err(|_| "expected IP:PORT, e.g. 127.0.0.1:18100".to_string())
}

fn default_origins() -> Vec<Origin> {
    DEFAULT_ORIGINS
        .iter()
        .filter_map(|(addr, ident)| parse_origin(&format!("{addr}={ident}")).ok())
        .collect()
}

/// Parses `ADDR=API/CLUSTER/REPLICA`, e.g. `127.0.0.1:18101=catalog/eks/1`.
fn parse_origin(spec: &str) -> Result<Origin, String> {
    let bad = |why: &str| why.to_string();
    let (addr, ident) = spec
        .split_once('=')
        .ok_or_else(|| bad("expected ADDR=API/CLUSTER/REPLICA"))?;
    let addr: SocketAddr = addr
        .parse()
        .map_err(|_| bad("ADDR must be IP:PORT, e.g. 127.0.0.1:18101"))?;
    let parts: Vec<&str> = ident.split('/').collect();
    let [api, cluster, replica] = parts.as_slice() else {
        return Err(bad("expected API/CLUSTER/REPLICA after '='"));
    };
    // The names end up in a response header, so keep them to plain tokens.
    let is_name = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    };
    if ![api, cluster, replica].iter().all(|s| is_name(s)) {
        return Err(bad(
            "API, CLUSTER and REPLICA must be non-empty [A-Za-z0-9._-]",
        ));
    }
    Ok(Origin {
        addr,
        api: api.to_string(),
        cluster: cluster.to_string(),
        replica: replica.to_string(),
    })
}

// ---------------------------------------------------------------------------
// Listeners and connections
// ---------------------------------------------------------------------------

fn serve(config: Config) -> ExitCode {
    let running = match start(config) {
        Ok(running) => running,
        Err(msg) => {
            eprintln!("demo-origins: {msg}");
            return ExitCode::from(1);
        }
    };
    // Write errors are ignored: a script that stopped reading must not kill us.
    let mut out = io::stdout().lock();
    for replica in &running.faults.replicas {
        let _ = writeln!(
            out,
            "demo-origins: {} listening on http://{}",
            replica.origin.label(),
            replica.origin.addr
        );
    }
    // Tests parse this line, so it comes before "ready".
    let _ = writeln!(out, "demo-origins: control http://{}", running.control);
    let _ = writeln!(out, "demo-origins: ready");
    let _ = out.flush();
    drop(out);
    for handle in running.threads {
        let _ = handle.join();
    }
    ExitCode::SUCCESS
}

/// A started set of origins plus the control listener.
struct Running {
    faults: Arc<Faults>,
    control: SocketAddr,
    threads: Vec<JoinHandle<()>>,
}

/// Binds every listener, then starts their accept threads. Binding everything
/// first makes a port clash fail fast, so scripts never see "ready" from a
/// half-started set.
fn start(config: Config) -> Result<Running, String> {
    let bind = |addr: SocketAddr, what: &str| {
        TcpListener::bind(addr).map_err(|err| {
            format!(
                "cannot listen on {addr}{what}: {}",
                describe_bind_error(&err)
            )
        })
    };
    let mut listeners = Vec::new();
    let mut replicas = Vec::new();
    for mut origin in config.origins {
        let listener = bind(origin.addr, "")?;
        // `down` re-binds this exact address, so resolve port 0 now.
        origin.addr = listener.local_addr().unwrap_or(origin.addr);
        listeners.push(listener);
        replicas.push(Replica::new(origin, config.quiet));
    }
    let control_listener = bind(config.control, " (--control)")?;
    let control = control_listener
        .local_addr()
        .map_err(|err| format!("control listener: {err}"))?;
    let faults = Arc::new(Faults {
        replicas,
        quiet: config.quiet,
    });

    let spawn = |name: String, body: Box<dyn FnOnce() + Send>| {
        thread::Builder::new()
            .name(name)
            .spawn(body)
            .map_err(|err| format!("cannot start a listener thread: {err}"))
    };
    let mut threads = Vec::new();
    for (index, listener) in listeners.into_iter().enumerate() {
        let name = format!("accept {}", faults.replicas[index].origin.label());
        let faults = Arc::clone(&faults);
        threads.push(spawn(
            name,
            Box::new(move || faults::accept_loop(listener, faults, index)),
        )?);
    }
    let control_faults = Arc::clone(&faults);
    threads.push(spawn(
        "accept control".into(),
        Box::new(move || faults::control_loop(control_listener, control_faults)),
    )?);
    Ok(Running {
        faults,
        control,
        threads,
    })
}

fn describe_bind_error(err: &io::Error) -> String {
    match err.kind() {
        io::ErrorKind::AddrInUse => {
            "Address already in use (is scripts/dev.sh already running?)".to_string()
        }
        _ => err.to_string(),
    }
}

/// Serves requests on one keep-alive connection of replica `index` until the
/// client closes, asks to close, idles out, sends something we refuse or
/// meets an injected fault.
fn serve_connection(stream: TcpStream, faults: &Faults, index: usize) {
    let replica = &faults.replicas[index];
    let origin = &replica.origin;
    let label = origin.label();
    let quiet = faults.quiet;
    // Nagle plus the client's delayed ACK would add ~40 ms per round trip.
    let _ = stream.set_nodelay(true);
    let _ = stream.set_read_timeout(Some(IDLE_TIMEOUT));
    let _ = stream.set_write_timeout(Some(IDLE_TIMEOUT));
    // One BufReader for the whole connection: it may already hold the start
    // of the next pipelined request.
    let mut reader = BufReader::new(stream);
    loop {
        let mut request = match read_head(&mut reader) {
            Ok(Some(request)) => request,
            Ok(None) | Err(ReadError::Closed) => return,
            Err(ReadError::Reject(rejection)) => {
                return refuse(reader, Some(&label), quiet, &rejection)
            }
        };
        // The control route is exempt, so a faulty replica can be healed through itself.
        let is_control = request.path() == faults::FAULT_PATH;
        let fault = if is_control {
            None
        } else {
            replica.take_fault()
        };
        match fault {
            // Dropping the stream closes it before any byte of an answer;
            // `down` treats kept-alive connections the same way.
            Some(mode @ (Mode::Reset | Mode::Down)) => {
                return log_request(quiet, &label, &request, mode.name())
            }
            Some(Mode::Hang) => {
                log_request(quiet, &label, &request, "hang");
                return faults::hang(reader);
            }
            _ => {}
        }
        match read_rest(&mut reader, &mut request) {
            Ok(()) => {}
            Err(ReadError::Closed) => return,
            Err(ReadError::Reject(rejection)) => {
                return refuse(reader, Some(&label), quiet, &rejection)
            }
        }
        let keep_alive = request.keep_alive();
        let send_body = request.method != "HEAD";
        let (status, response) = if is_control {
            let (status, body) = faults.control(&request, Some(index));
            let response = http_response(Some(&label), status, &body, send_body, keep_alive);
            (status, response)
        } else if let Some(Mode::Status(status)) = fault {
            let body = faults::fault_json(origin, status);
            let response = http_response(Some(&label), status, &body, send_body, keep_alive);
            (status, response)
        } else {
            replica.count_served();
            (200, respond(origin, &request, keep_alive))
        };
        log_request(quiet, &label, &request, status);
        // One write for the whole response: see the TCP_NODELAY note above.
        if reader.get_mut().write_all(&response).is_err() || !keep_alive {
            return;
        }
    }
}

/// After the head: answers `Expect: 100-continue` and reads the body.
fn read_rest(reader: &mut BufReader<TcpStream>, request: &mut Request) -> Result<(), ReadError> {
    if request.expects_continue() {
        reader.get_mut().write_all(CONTINUE)?;
    }
    request.body = read_body(reader, &request.framing)?;
    Ok(())
}

fn log_request(quiet: bool, label: &str, request: &Request, outcome: impl std::fmt::Display) {
    if !quiet {
        eprintln!("{label} {} {} {outcome}", request.method, request.target);
    }
}

const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// Answers a refused request and closes the connection gently. `label` names
/// the replica (`None` on the control listener).
fn refuse(
    mut reader: BufReader<TcpStream>,
    label: Option<&str>,
    quiet: bool,
    rejection: &Rejection,
) {
    if !quiet {
        eprintln!(
            "{} - - {} {}",
            label.unwrap_or("control"),
            rejection.status,
            rejection.reason
        );
    }
    let stream = reader.get_mut();
    if stream
        .write_all(&rejection_response(label, rejection))
        .is_err()
    {
        return;
    }
    // Closing with unread input makes the kernel send RST, which can destroy
    // the answer before the client reads it; drain a little first.
    let _ = stream.shutdown(Shutdown::Write);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    let _ = io::copy(&mut reader.take(1024 * 1024), &mut io::sink());
}

// ---------------------------------------------------------------------------
// Request parsing
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Version {
    Http10,
    Http11,
}

/// How the request body is delimited.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Framing {
    Length(usize),
    Chunked,
}

#[derive(Debug)]
struct Request {
    method: String,
    /// The raw request target, e.g. `/items?a=1`.
    target: String,
    version: Version,
    /// Lower-cased names, in arrival order, repeats kept.
    headers: Vec<(String, String)>,
    framing: Framing,
    body: Vec<u8>,
}

impl Request {
    /// The target without its query.
    fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or_default()
    }

    fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Comma-separated tokens of a header, lower-cased, across all its lines.
    fn header_tokens(&self, name: &str) -> Vec<String> {
        self.header_values(name)
            .flat_map(|v| v.split(','))
            .map(|t| t.trim().to_ascii_lowercase())
            .filter(|t| !t.is_empty())
            .collect()
    }

    /// HTTP/1.1 stays open unless told to close; HTTP/1.0 closes unless told
    /// to keep alive.
    fn keep_alive(&self) -> bool {
        let tokens = self.header_tokens("connection");
        if tokens.iter().any(|t| t == "close") {
            return false;
        }
        self.version == Version::Http11 || tokens.iter().any(|t| t == "keep-alive")
    }

    /// curl and friends wait ~1 s for "100 Continue" before sending a large body.
    fn expects_continue(&self) -> bool {
        self.version == Version::Http11
            && self.framing != Framing::Length(0)
            && self
                .header_tokens("expect")
                .iter()
                .any(|t| t == "100-continue")
    }
}

/// A request we answer with an error status and then close the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rejection {
    status: u16,
    reason: String,
}

impl Rejection {
    fn bad_request(reason: impl Into<String>) -> Self {
        Self {
            status: 400,
            reason: reason.into(),
        }
    }

    fn too_large(reason: impl Into<String>) -> Self {
        Self {
            status: 413,
            reason: reason.into(),
        }
    }

    fn head_too_large() -> Self {
        Self {
            status: 431,
            reason: format!("request head exceeds {MAX_HEAD_BYTES} bytes"),
        }
    }
}

#[derive(Debug)]
enum ReadError {
    /// The connection broke, timed out or closed mid-request: nothing to answer.
    Closed,
    Reject(Rejection),
}

impl From<io::Error> for ReadError {
    fn from(_: io::Error) -> Self {
        ReadError::Closed
    }
}

impl From<Rejection> for ReadError {
    fn from(rejection: Rejection) -> Self {
        ReadError::Reject(rejection)
    }
}

enum Line {
    Eof,
    TooLong,
    Data(Vec<u8>),
}

/// Reads one LF-terminated line (CR stripped), charging its bytes to `budget`
/// so that a client cannot make us buffer without bound.
fn read_line<R: BufRead>(reader: &mut R, budget: &mut usize) -> io::Result<Line> {
    if *budget == 0 {
        return Ok(Line::TooLong);
    }
    let mut line = Vec::new();
    let n = reader.take(*budget as u64).read_until(b'\n', &mut line)?;
    if n == 0 {
        return Ok(Line::Eof);
    }
    if line.last() != Some(&b'\n') {
        return Ok(if n == *budget {
            Line::TooLong
        } else {
            Line::Eof
        });
    }
    *budget -= n;
    line.pop();
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    Ok(Line::Data(line))
}

/// Like `read_line`, but inside a message, where EOF is an error.
fn expect_line<R: BufRead>(
    reader: &mut R,
    budget: &mut usize,
    too_long: impl FnOnce() -> Rejection,
) -> Result<Vec<u8>, ReadError> {
    match read_line(reader, budget)? {
        Line::Data(line) => Ok(line),
        Line::TooLong => Err(too_long().into()),
        Line::Eof => Err(ReadError::Closed),
    }
}

/// Reads the request line and headers. `Ok(None)` means the client closed the
/// connection cleanly between requests. The body is left for `read_body`.
fn read_head<R: BufRead>(reader: &mut R) -> Result<Option<Request>, ReadError> {
    let mut budget = MAX_HEAD_BYTES;
    // RFC 9112 §2.2: skip stray empty lines before the request line.
    let request_line = loop {
        match read_line(reader, &mut budget)? {
            Line::Eof => return Ok(None),
            Line::TooLong => return Err(Rejection::head_too_large().into()),
            Line::Data(line) if line.is_empty() => continue,
            Line::Data(line) => break line,
        }
    };
    let (method, target, version) = parse_request_line(&request_line)?;
    let mut headers = Vec::new();
    loop {
        let line = expect_line(reader, &mut budget, Rejection::head_too_large)?;
        if line.is_empty() {
            break;
        }
        headers.push(parse_header_line(&line)?);
    }
    let framing = body_framing(&headers)?;
    Ok(Some(Request {
        method,
        target,
        version,
        headers,
        framing,
        body: Vec::new(),
    }))
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn parse_request_line(line: &[u8]) -> Result<(String, String, Version), Rejection> {
    let line = std::str::from_utf8(line)
        .map_err(|_| Rejection::bad_request("request line is not UTF-8"))?;
    let parts: Vec<&str> = line.split(' ').collect();
    let [method, target, version] = parts.as_slice() else {
        return Err(Rejection::bad_request("malformed request line"));
    };
    if !is_token(method) {
        return Err(Rejection::bad_request("invalid method"));
    }
    if target.is_empty() || target.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err(Rejection::bad_request("invalid request target"));
    }
    let version = match *version {
        "HTTP/1.1" => Version::Http11,
        "HTTP/1.0" => Version::Http10,
        _ => return Err(Rejection::bad_request("unsupported HTTP version")),
    };
    Ok((method.to_string(), target.to_string(), version))
}

fn parse_header_line(line: &[u8]) -> Result<(String, String), Rejection> {
    if line.first().is_some_and(|b| *b == b' ' || *b == b'\t') {
        return Err(Rejection::bad_request("obsolete header line folding"));
    }
    let colon = line
        .iter()
        .position(|b| *b == b':')
        .ok_or_else(|| Rejection::bad_request("header line without a colon"))?;
    let name = std::str::from_utf8(&line[..colon])
        .ok()
        .filter(|name| is_token(name))
        .ok_or_else(|| Rejection::bad_request("invalid header name"))?;
    let value = line[colon + 1..].trim_ascii();
    if value
        .iter()
        .any(|b| (*b < b' ' && *b != b'\t') || *b == 0x7f)
    {
        return Err(Rejection::bad_request("control character in header value"));
    }
    Ok((
        name.to_ascii_lowercase(),
        String::from_utf8_lossy(value).into_owned(),
    ))
}

fn body_framing(headers: &[(String, String)]) -> Result<Framing, Rejection> {
    let values = |name: &str| -> Vec<&str> {
        headers
            .iter()
            .filter(|(n, _)| n == name)
            .flat_map(|(_, v)| v.split(','))
            .map(str::trim)
            .collect()
    };
    let transfer_encoding = values("transfer-encoding");
    let content_length = values("content-length");
    if !transfer_encoding.is_empty() {
        // Both at once is the classic request-smuggling shape; refuse it.
        if !content_length.is_empty() {
            return Err(Rejection::bad_request(
                "both Transfer-Encoding and Content-Length",
            ));
        }
        return match transfer_encoding.last() {
            Some(last) if last.eq_ignore_ascii_case("chunked") => Ok(Framing::Chunked),
            _ => Err(Rejection::bad_request("unsupported Transfer-Encoding")),
        };
    }
    let Some(first) = content_length.first() else {
        return Ok(Framing::Length(0));
    };
    if content_length.iter().any(|v| v != first) {
        return Err(Rejection::bad_request("conflicting Content-Length values"));
    }
    if first.is_empty() || !first.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Rejection::bad_request("invalid Content-Length"));
    }
    match first.parse::<usize>() {
        Ok(len) if len <= MAX_BODY_BYTES => Ok(Framing::Length(len)),
        _ => Err(body_too_large()),
    }
}

fn body_too_large() -> Rejection {
    Rejection::too_large(format!("body exceeds {MAX_BODY_BYTES} bytes"))
}

fn read_body<R: BufRead>(reader: &mut R, framing: &Framing) -> Result<Vec<u8>, ReadError> {
    match *framing {
        Framing::Length(len) => {
            let mut body = Vec::with_capacity(len);
            reader.take(len as u64).read_to_end(&mut body)?;
            if body.len() < len {
                return Err(ReadError::Closed);
            }
            Ok(body)
        }
        Framing::Chunked => read_chunked(reader),
    }
}

fn read_chunked<R: BufRead>(reader: &mut R) -> Result<Vec<u8>, ReadError> {
    let line_too_long = || Rejection::bad_request("chunk size line too long");
    let mut body = Vec::new();
    loop {
        let mut budget = MAX_CHUNK_LINE_BYTES;
        let size = parse_chunk_size(&expect_line(reader, &mut budget, line_too_long)?)?;
        if size == 0 {
            break;
        }
        if size > MAX_BODY_BYTES - body.len() {
            return Err(body_too_large().into());
        }
        let start = body.len();
        reader.take(size as u64).read_to_end(&mut body)?;
        if body.len() - start < size {
            return Err(ReadError::Closed);
        }
        let mut budget = MAX_CHUNK_LINE_BYTES;
        if !expect_line(reader, &mut budget, line_too_long)?.is_empty() {
            return Err(Rejection::bad_request("chunk data not followed by CRLF").into());
        }
    }
    // Trailers are read and dropped: the echo only reports the body.
    let mut budget = MAX_HEAD_BYTES;
    while !expect_line(reader, &mut budget, Rejection::head_too_large)?.is_empty() {}
    Ok(body)
}

/// Parses `1a;ext=value` into 0x1a; extensions are ignored.
fn parse_chunk_size(line: &[u8]) -> Result<usize, Rejection> {
    let bad = || Rejection::bad_request("invalid chunk size");
    let digits = line
        .split(|b| *b == b';')
        .next()
        .unwrap_or_default()
        .trim_ascii();
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_hexdigit) {
        return Err(bad());
    }
    let digits = std::str::from_utf8(digits).map_err(|_| bad())?;
    // All hex digits, so the only possible failure is overflow.
    usize::from_str_radix(digits, 16).map_err(|_| body_too_large())
}

// ---------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------

/// Builds the complete answer to `request`, head and body in one buffer.
fn respond(origin: &Origin, request: &Request, keep_alive: bool) -> Vec<u8> {
    let path = request.target.split('?').next().unwrap_or("");
    if let Some(answer) = bodies::answer(path, &request.body) {
        let send_body = request.method != "HEAD";
        return bodies::response(&origin.label(), answer, send_body, keep_alive);
    }
    let is_health = matches!(request.method.as_str(), "GET" | "HEAD")
        && request.target.split('?').next() == Some("/__health");
    let body = if is_health {
        health_json(origin)
    } else {
        echo_json(origin, request)
    };
    let send_body = request.method != "HEAD";
    http_response(Some(&origin.label()), 200, &body, send_body, keep_alive)
}

#[cfg(test)]
fn error_response(origin: &Origin, rejection: &Rejection) -> Vec<u8> {
    rejection_response(Some(&origin.label()), rejection)
}

fn rejection_response(label: Option<&str>, rejection: &Rejection) -> Vec<u8> {
    let error = match rejection.status {
        413 => "payload_too_large",
        431 => "header_too_large",
        _ => "bad_request",
    };
    let body = json_object(&[
        ("error", json_str(error)),
        ("reason", json_str(&rejection.reason)),
    ]);
    http_response(label, rejection.status, &body, true, false)
}

/// `label` becomes `X-Demo-Origin`; the control listener has none.
fn http_response(
    label: Option<&str>,
    status: u16,
    body: &str,
    send_body: bool,
    keep_alive: bool,
) -> Vec<u8> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Payload Too Large",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Unknown",
    };
    let connection = if keep_alive { "keep-alive" } else { "close" };
    let origin_header = label
        .map(|label| format!("X-Demo-Origin: {label}\r\n"))
        .unwrap_or_default();
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\n\
         Content-Type: application/json\r\n\
         Content-Length: {}\r\n\
         {origin_header}\
         Connection: {connection}\r\n\
         \r\n",
        body.len(),
    );
    let mut out = Vec::with_capacity(head.len() + body.len());
    out.extend_from_slice(head.as_bytes());
    if send_body {
        out.extend_from_slice(body.as_bytes());
    }
    out
}

fn health_json(origin: &Origin) -> String {
    json_object(&[
        ("ok", "true".to_string()),
        ("api", json_str(&origin.api)),
        ("cluster", json_str(&origin.cluster)),
        ("replica", json_str(&origin.replica)),
    ])
}

/// The echo the e2e tests assert on: who answered and what arrived.
fn echo_json(origin: &Origin, request: &Request) -> String {
    let (path, query) = request
        .target
        .split_once('?')
        .unwrap_or((&request.target, ""));
    let headers: Vec<(&str, String)> = merged_headers(&request.headers)
        .into_iter()
        .map(|(name, value)| (name, json_str(&value)))
        .collect();
    let sha = if request.body.is_empty() {
        "null".to_string()
    } else {
        json_str(&hex(&sha256(&request.body)))
    };
    json_object(&[
        ("api", json_str(&origin.api)),
        ("cluster", json_str(&origin.cluster)),
        ("replica", json_str(&origin.replica)),
        ("method", json_str(&request.method)),
        ("path", json_str(path)),
        ("query", json_str(query)),
        ("headers", json_object(&headers)),
        ("body_bytes", request.body.len().to_string()),
        ("body_sha256", sha),
    ])
}

/// Joins repeated headers with ", ", keeping first-arrival order.
fn merged_headers(headers: &[(String, String)]) -> Vec<(&str, String)> {
    let mut merged: Vec<(&str, String)> = Vec::new();
    let mut index: HashMap<&str, usize> = HashMap::new();
    for (name, value) in headers {
        match index.get(name.as_str()) {
            Some(&i) => {
                merged[i].1.push_str(", ");
                merged[i].1.push_str(value);
            }
            None => {
                index.insert(name, merged.len());
                merged.push((name, value.clone()));
            }
        }
    }
    merged
}

fn json_str(s: &str) -> String {
    Value::from(s).to_string()
}

/// Writes a JSON object from already-encoded values, keeping field order
/// (serde_json's map would sort keys, which makes the echo harder to read).
fn json_object<K: AsRef<str>>(fields: &[(K, String)]) -> String {
    let mut out = String::from("{");
    for (i, (key, value)) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&json_str(key.as_ref()));
        out.push(':');
        out.push_str(value);
    }
    out.push('}');
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

// ---------------------------------------------------------------------------
// SHA-256 (FIPS 180-4), so the echo can fingerprint bodies without a crate
// ---------------------------------------------------------------------------

const SHA256_K: [u32; 64] = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
];

fn sha256(data: &[u8]) -> [u8; 32] {
    let mut state: [u32; 8] = [
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
        0x5be0cd19,
    ];
    // Padding: 0x80, zeros up to 56 mod 64, then the length in bits (big-endian).
    let whole = data.len() - data.len() % 64;
    let mut tail = data[whole..].to_vec();
    tail.push(0x80);
    while tail.len() % 64 != 56 {
        tail.push(0);
    }
    tail.extend_from_slice(&((data.len() as u64).wrapping_mul(8)).to_be_bytes());
    for block in data[..whole].chunks_exact(64).chain(tail.chunks_exact(64)) {
        sha256_compress(&mut state, block);
    }
    let mut digest = [0u8; 32];
    for (out, word) in digest.chunks_exact_mut(4).zip(state) {
        out.copy_from_slice(&word.to_be_bytes());
    }
    digest
}

fn sha256_compress(state: &mut [u32; 8], block: &[u8]) {
    let mut w = [0u32; 64];
    for (word, bytes) in w.iter_mut().zip(block.chunks_exact(4)) {
        *word = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    }
    for i in 16..64 {
        let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
        let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16]
            .wrapping_add(s0)
            .wrapping_add(w[i - 7])
            .wrapping_add(s1);
    }
    let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut h] = *state;
    for (k, w) in SHA256_K.iter().zip(w) {
        let s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
        let ch = (e & f) ^ (!e & g);
        let t1 = h
            .wrapping_add(s1)
            .wrapping_add(ch)
            .wrapping_add(*k)
            .wrapping_add(w);
        let s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
        let maj = (a & b) ^ (a & c) ^ (b & c);
        let t2 = s0.wrapping_add(maj);
        h = g;
        g = f;
        f = e;
        e = d.wrapping_add(t1);
        d = c;
        c = b;
        b = a;
        a = t1.wrapping_add(t2);
    }
    for (s, v) in state.iter_mut().zip([a, b, c, d, e, f, g, h]) {
        *s = s.wrapping_add(v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin() -> Origin {
        parse_origin("127.0.0.1:0=catalog/eks/1").expect("valid origin")
    }

    /// Parses one complete request (head and body) from raw bytes.
    fn parse(raw: &[u8]) -> Result<Request, ReadError> {
        let mut reader = raw;
        let mut request = read_head(&mut reader)?.expect("a request, not EOF");
        request.body = read_body(&mut reader, &request.framing)?;
        Ok(request)
    }

    fn rejection_status(raw: &[u8]) -> u16 {
        match parse(raw) {
            Err(ReadError::Reject(rejection)) => rejection.status,
            other => panic!("expected a rejection, got {other:?}"),
        }
    }

    fn sha_hex(data: &[u8]) -> String {
        hex(&sha256(data))
    }

    #[test]
    fn sha256_matches_fips_vectors() {
        assert_eq!(
            sha_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            sha_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            sha_hex(b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
        );
        assert_eq!(
            sha_hex(&vec![b'a'; 1_000_000]),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"
        );
    }

    #[test]
    fn parses_content_length_body() {
        let request =
            parse(b"POST /orders?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhelloEXTRA")
                .expect("valid request");
        assert_eq!(request.method, "POST");
        assert_eq!(request.target, "/orders?x=1");
        assert_eq!(request.version, Version::Http11);
        assert_eq!(request.framing, Framing::Length(5));
        assert_eq!(request.body, b"hello");
    }

    #[test]
    fn leaves_the_next_pipelined_request_unread() {
        let mut reader: &[u8] = b"GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n";
        let first = read_head(&mut reader).expect("ok").expect("request");
        let second = read_head(&mut reader).expect("ok").expect("request");
        assert_eq!(
            (first.target.as_str(), second.target.as_str()),
            ("/a", "/b")
        );
        assert!(read_head(&mut reader).expect("clean EOF").is_none());
    }

    #[test]
    fn decodes_chunked_body_and_drops_trailers() {
        let request = parse(
            b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n\
              4;name=value\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nX-Trailer: 1\r\n\r\n",
        )
        .expect("valid chunked request");
        assert_eq!(request.framing, Framing::Chunked);
        assert_eq!(request.body, b"Wikipedia in\r\n\r\nchunks.");
    }

    #[test]
    fn keep_alive_follows_version_and_connection_header() {
        let keep = |raw: &[u8]| parse(raw).expect("valid").keep_alive();
        assert!(keep(b"GET / HTTP/1.1\r\n\r\n"));
        assert!(!keep(b"GET / HTTP/1.1\r\nConnection: Close\r\n\r\n"));
        assert!(!keep(
            b"GET / HTTP/1.1\r\nConnection: upgrade, close\r\n\r\n"
        ));
        assert!(!keep(b"GET / HTTP/1.0\r\n\r\n"));
        assert!(keep(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"));
    }

    #[test]
    fn rejects_malformed_requests() {
        assert_eq!(rejection_status(b"GET /\r\n\r\n"), 400);
        assert_eq!(rejection_status(b"GET / HTTP/2.0\r\n\r\n"), 400);
        assert_eq!(rejection_status(b"G(T / HTTP/1.1\r\n\r\n"), 400);
        assert_eq!(rejection_status(b"GET / HTTP/1.1\r\nno colon\r\n\r\n"), 400);
        assert_eq!(
            rejection_status(b"GET / HTTP/1.1\r\nBad Name: x\r\n\r\n"),
            400
        );
        assert_eq!(
            rejection_status(b"GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n"),
            400
        );
        assert_eq!(
            rejection_status(b"GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n"),
            400
        );
        assert_eq!(
            rejection_status(b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"),
            400
        );
        assert_eq!(
            rejection_status(
                b"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
            ),
            400
        );
        assert_eq!(
            rejection_status(b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n"),
            400
        );
        assert_eq!(
            rejection_status(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"),
            400
        );
        assert_eq!(
            rejection_status(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n"),
            400
        );
    }

    #[test]
    fn enforces_size_caps() {
        let too_long = format!(
            "POST / HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
            MAX_BODY_BYTES + 1
        );
        assert_eq!(rejection_status(too_long.as_bytes()), 413);
        assert_eq!(
            rejection_status(b"POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n"),
            413
        );
        let big_chunk = format!(
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n",
            MAX_BODY_BYTES + 1
        );
        assert_eq!(rejection_status(big_chunk.as_bytes()), 413);
        let huge_header = format!(
            "GET / HTTP/1.1\r\nX-Big: {}\r\n\r\n",
            "a".repeat(MAX_HEAD_BYTES)
        );
        assert_eq!(rejection_status(huge_header.as_bytes()), 431);
    }

    #[test]
    fn truncated_requests_close_without_an_answer() {
        for raw in [
            &b"GET / HTTP/1.1\r\nHost: a"[..],
            b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nshort",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
        ] {
            assert!(matches!(parse(raw), Err(ReadError::Closed)), "{raw:?}");
        }
    }

    #[test]
    fn echo_reports_request_and_merges_headers() {
        let request = parse(
            b"PUT /items/7?a=1&b=%22x%22 HTTP/1.1\r\nHost: api.acme.test\r\n\
              X-Acme-Api: catalog\r\nAccept: a/b\r\naccept: c/d\r\nContent-Length: 3\r\n\r\nabc",
        )
        .expect("valid");
        let text = echo_json(&origin(), &request);
        assert!(
            text.starts_with(r#"{"api":"catalog","cluster":"eks","replica":"1","method":"PUT""#)
        );
        let echo: Value = serde_json::from_str(&text).expect("valid JSON");
        assert_eq!(echo["path"], "/items/7");
        assert_eq!(echo["query"], "a=1&b=%22x%22");
        assert_eq!(echo["headers"]["host"], "api.acme.test");
        assert_eq!(echo["headers"]["x-acme-api"], "catalog");
        assert_eq!(echo["headers"]["accept"], "a/b, c/d");
        assert_eq!(echo["body_bytes"], 3);
        assert_eq!(echo["body_sha256"], sha_hex(b"abc"));

        let empty = parse(b"GET / HTTP/1.1\r\nX-Quote: \"hi\"\\\r\n\r\n").expect("valid");
        let echo: Value = serde_json::from_str(&echo_json(&origin(), &empty)).expect("valid JSON");
        assert_eq!(echo["query"], "");
        assert_eq!(echo["body_bytes"], 0);
        assert_eq!(echo["body_sha256"], Value::Null);
        assert_eq!(echo["headers"]["x-quote"], "\"hi\"\\");
    }

    /// Splits a serialised response into its head and body.
    fn split_response(response: &[u8]) -> (String, &[u8]) {
        let end = response
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("end of head");
        (
            String::from_utf8(response[..end].to_vec()).expect("UTF-8 head"),
            &response[end + 4..],
        )
    }

    #[test]
    fn health_head_and_error_responses() {
        let health = parse(b"GET /__health HTTP/1.1\r\n\r\n").expect("valid");
        let response = respond(&origin(), &health, true);
        let (head, body) = split_response(&response);
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(head.contains("\r\nX-Demo-Origin: catalog/eks/1"));
        assert_eq!(
            body,
            br#"{"ok":true,"api":"catalog","cluster":"eks","replica":"1"}"#
        );

        let head_req = parse(b"HEAD /items HTTP/1.1\r\n\r\n").expect("valid");
        let response = respond(&origin(), &head_req, false);
        let (head, body) = split_response(&response);
        let expected_len = echo_json(&origin(), &head_req).len();
        assert!(head.contains(&format!("\r\nContent-Length: {expected_len}\r\n")));
        assert!(head.contains("\r\nConnection: close"));
        assert!(body.is_empty());

        let response = error_response(&origin(), &Rejection::bad_request("nope"));
        let (head, body) = split_response(&response);
        assert!(head.starts_with("HTTP/1.1 400 Bad Request\r\n"));
        assert_eq!(body, br#"{"error":"bad_request","reason":"nope"}"#);
    }

    #[test]
    fn parses_command_line() {
        command().debug_assert();
        let args = |list: &[&str]| parse_command_line(std::iter::once(&"demo-origins").chain(list));
        let defaults = args(&[]).expect("defaults");
        assert_eq!(defaults.origins.len(), 8);
        assert_eq!(defaults.control.to_string(), DEFAULT_CONTROL);
        assert!(!defaults.quiet);
        assert_eq!(defaults.origins[7].label(), "webhook/gke/2");

        let custom = args(&[
            "--origin",
            "127.0.0.1:9000=orders/eks/3",
            "--origin=[::1]:9001=a/b/c",
            "--quiet",
        ])
        .expect("custom");
        assert!(custom.quiet);
        // Free-port tables get a free control port too.
        assert_eq!(custom.control.to_string(), "127.0.0.1:0");
        assert_eq!(custom.origins.len(), 2);
        assert_eq!(custom.origins[0].label(), "orders/eks/3");
        assert_eq!(custom.origins[1].addr.port(), 9001);

        for control in [
            &["--control", "127.0.0.1:9100"][..],
            &["--control=127.0.0.1:9100"],
        ] {
            let config = args(control).unwrap_or_else(|e| panic!("{control:?}: {e}"));
            assert_eq!(config.control.port(), 9100);
        }

        let help = args(&["--help"]).unwrap_err();
        assert_eq!(help.kind(), ErrorKind::DisplayHelp);
        assert!(help.to_string().contains("127.0.0.1:18108  webhook/gke/2"));
        for bad in [
            &["--bogus"][..],
            &["--origin"],
            &["--origin", "127.0.0.1:1"],
            &["--origin", "localhost:1=a/b/c"],
            &["--origin", "127.0.0.1:1=a/b"],
            &["--origin", "127.0.0.1:1=a/b/c d"],
            &["--control"],
            &["--control", "localhost:1"],
            &["--control", "127.0.0.1:18101"],
            &[
                "--origin",
                "127.0.0.1:1=a/b/c",
                "--origin",
                "127.0.0.1:1=d/e/f",
            ],
        ] {
            let err = args(bad).expect_err(&format!("{bad:?}"));
            assert_eq!(err.exit_code(), 2, "{bad:?}: {err}");
        }
    }

    /// Starts origins on ephemeral loopback ports, plus the control listener.
    pub(crate) fn start_origins(labels: &[&str]) -> Running {
        let origins = labels
            .iter()
            .map(|label| parse_origin(&format!("127.0.0.1:0={label}")).expect("valid origin"))
            .collect();
        start(Config {
            origins,
            control: "127.0.0.1:0".parse().expect("addr"),
            quiet: true,
        })
        .expect("start")
    }

    /// Starts one origin; returns its address.
    fn start_origin() -> SocketAddr {
        start_origins(&["catalog/eks/1"]).faults.replicas[0]
            .origin
            .addr
    }

    /// Reads one response; returns the status, lower-cased headers and body.
    pub(crate) fn read_response(
        reader: &mut impl BufRead,
    ) -> (u16, HashMap<String, String>, Vec<u8>) {
        let mut status_line = String::new();
        reader.read_line(&mut status_line).expect("status line");
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("status code");
        let mut headers = HashMap::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).expect("header line");
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            let (name, value) = line.split_once(':').expect("colon");
            headers.insert(name.to_ascii_lowercase(), value.trim().to_string());
        }
        let len: usize = headers["content-length"].parse().expect("length");
        let mut body = vec![0; len];
        reader.read_exact(&mut body).expect("body");
        (status, headers, body)
    }

    #[test]
    fn serves_keep_alive_pipelined_and_chunked_requests_on_one_connection() {
        let addr = start_origin();
        let mut stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let mut reader = BufReader::new(stream.try_clone().expect("clone"));

        // Two requests in one write, answered in order on the same connection.
        stream
            .write_all(
                b"GET /items?a=1&b=2 HTTP/1.1\r\nHost: catalog.acme.test\r\nX-Acme-Api: catalog\r\n\r\n\
                  GET /__health HTTP/1.1\r\nHost: catalog.acme.test\r\n\r\n",
            )
            .expect("write");
        let (status, headers, body) = read_response(&mut reader);
        assert_eq!(status, 200);
        assert_eq!(headers["x-demo-origin"], "catalog/eks/1");
        assert_eq!(headers["content-type"], "application/json");
        let echo: Value = serde_json::from_slice(&body).expect("JSON");
        assert_eq!(echo["method"], "GET");
        assert_eq!(echo["path"], "/items");
        assert_eq!(echo["query"], "a=1&b=2");
        assert_eq!(echo["headers"]["x-acme-api"], "catalog");
        assert_eq!(echo["body_sha256"], Value::Null);

        let (status, _, body) = read_response(&mut reader);
        assert_eq!(status, 200);
        let health: Value = serde_json::from_slice(&body).expect("JSON");
        assert_eq!(health["ok"], true);
        assert_eq!(health["replica"], "1");

        // Then a chunked POST that asks to close.
        stream
            .write_all(
                b"POST /orders HTTP/1.1\r\nHost: catalog.acme.test\r\nTransfer-Encoding: chunked\r\n\
                  Connection: close\r\n\r\n1\r\na\r\n2;x=y\r\nbc\r\n0\r\n\r\n",
            )
            .expect("write");
        let (status, headers, body) = read_response(&mut reader);
        assert_eq!(status, 200);
        assert_eq!(headers["connection"], "close");
        let echo: Value = serde_json::from_slice(&body).expect("JSON");
        assert_eq!(echo["method"], "POST");
        assert_eq!(echo["body_bytes"], 3);
        assert_eq!(echo["body_sha256"], sha_hex(b"abc"));
        let mut rest = Vec::new();
        reader.read_to_end(&mut rest).expect("server closes");
        assert!(rest.is_empty());
    }

    #[test]
    fn answers_garbage_with_400_and_closes() {
        let addr = start_origin();
        let mut stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        stream.write_all(b"NOT HTTP AT ALL\r\n\r\n").expect("write");
        let mut reader = BufReader::new(stream);
        let (status, headers, body) = read_response(&mut reader);
        assert_eq!(status, 400);
        assert_eq!(headers["connection"], "close");
        let error: Value = serde_json::from_slice(&body).expect("JSON");
        assert_eq!(error["error"], "bad_request");
        let mut rest = Vec::new();
        reader.read_to_end(&mut rest).expect("server closes");
        assert!(rest.is_empty());
    }
}
