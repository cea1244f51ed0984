//! Fault injection: per-replica modes that make a demo origin fail the way a
//! real backend does (an error status, a hang, a dropped connection, a closed
//! port), so gateway failover can be watched with curl and tested end to end.
//!
//! Every replica carries a [`Mode`] (plus an optional `fail-next` budget) and
//! request counters. Two ways to change them, both answering with the state:
//!
//! * the process-wide control listener (`--control`): `GET /faults`,
//!   `GET /faults/REPLICA`, `POST /faults[/REPLICA]?mode=...`;
//! * `/__fault` on any replica, for itself or, with `replica=REPLICA`, for
//!   another one. It is exempt from the faults, so it answers in every mode
//!   except `down`, where the replica's port is closed.
//!
//! `down` really closes the listening socket (connect is refused, as if the
//! process died) and re-binds the same address when the mode leaves `down`.
//! Kept-alive connections survive until their next request, which is then
//! dropped unanswered like `reset`.

use std::io::{self, BufReader, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::Duration;

use super::{
    http_response, json_object, json_str, log_request, read_head, read_rest, refuse,
    serve_connection, Origin, ReadError, Request, IDLE_TIMEOUT,
};

/// The replica-local control route; requests to it are never faulted.
pub const FAULT_PATH: &str = "/__fault";
/// How long a mode change waits for the listener to close or re-open, so that
/// the answer to `mode=down` (or back to `ok`) means the port already changed.
const LISTENER_SWITCH_WAIT: Duration = Duration::from_secs(2);
/// A hung request holds its thread until the client gives up; this bounds
/// clients that never do.
const HANG_LIMIT: Duration = Duration::from_secs(600);
/// Re-binding after `down` retries this often while the port is taken.
const REBIND_RETRY: Duration = Duration::from_millis(200);

// ---------------------------------------------------------------------------
// Modes and their query syntax
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Ok,
    /// Answer every request with this status (400..=599).
    Status(u16),
    Hang,
    Reset,
    Down,
}

impl Mode {
    pub fn parse(text: &str) -> Result<Mode, String> {
        match text.to_ascii_lowercase().as_str() {
            "ok" => Ok(Mode::Ok),
            "hang" => Ok(Mode::Hang),
            "reset" => Ok(Mode::Reset),
            "down" => Ok(Mode::Down),
            other => parse_status(other).map(Mode::Status).map_err(|_| {
                format!(
                    "unknown mode '{text}': expected ok, 503 (or another 400..599 status), \
                     hang, reset or down"
                )
            }),
        }
    }

    /// The `mode=` value that sets this mode again.
    pub fn name(self) -> String {
        match self {
            Mode::Ok => "ok".into(),
            Mode::Status(code) => code.to_string(),
            Mode::Hang => "hang".into(),
            Mode::Reset => "reset".into(),
            Mode::Down => "down".into(),
        }
    }
}

fn parse_status(text: &str) -> Result<u16, String> {
    let code = (text.len() == 3 && text.bytes().all(|b| b.is_ascii_digit()))
        .then(|| text.parse::<u16>().ok())
        .flatten();
    match code {
        Some(code) if (400..=599).contains(&code) => Ok(code),
        _ => Err(format!("status '{text}' must be 400..599")),
    }
}

/// A mode to set; `fail_next` limits it to that many requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FaultSpec {
    pub mode: Mode,
    pub fail_next: Option<u64>,
}

/// The query of a control request: what to set (if anything) and on whom.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct FaultQuery {
    pub spec: Option<FaultSpec>,
    pub replica: Option<String>,
}

/// Parses `mode=MODE[&status=NNN][&fail-next=N][&replica=REPLICA]`. Unknown
/// parameters are refused so that a typo does not silently do nothing.
pub fn parse_fault_query(query: &str) -> Result<FaultQuery, String> {
    let (mut mode, mut status, mut fail_next, mut replica) = (None, None, None, None);
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = percent_decode(value)?;
        match key {
            "mode" => mode = Some(Mode::parse(&value)?),
            "status" => status = Some(parse_status(&value)?),
            "fail-next" | "fail_next" => match value.parse::<u64>() {
                Ok(n) if n > 0 && value.bytes().all(|b| b.is_ascii_digit()) => fail_next = Some(n),
                _ => return Err(format!("fail-next '{value}' must be a positive integer")),
            },
            "replica" => replica = Some(value),
            _ => {
                return Err(format!(
                    "unknown parameter '{key}' (expected mode, status, fail-next, replica)"
                ))
            }
        }
    }
    let mode = match (mode, status) {
        (Some(Mode::Status(_)), Some(code)) => Some(Mode::Status(code)),
        (Some(_), Some(_)) => return Err("status= goes with an error mode such as mode=503".into()),
        (None, Some(_)) => return Err("status= needs mode=, e.g. mode=503&status=502".into()),
        (mode, None) => mode,
    };
    match (mode, fail_next) {
        (None, Some(_)) => Err("fail-next= needs mode=".into()),
        (Some(Mode::Ok), Some(_)) => Err("fail-next= needs a fault mode, not ok".into()),
        // A closed port sees no requests to count down.
        (Some(Mode::Down), Some(_)) => Err("fail-next= does not apply to down".into()),
        (mode, fail_next) => Ok(FaultQuery {
            spec: mode.map(|mode| FaultSpec { mode, fail_next }),
            replica,
        }),
    }
}

fn percent_decode(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let byte = bytes
                .get(i + 1..i + 3)
                .and_then(|hex| std::str::from_utf8(hex).ok())
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
                .ok_or_else(|| format!("bad percent-encoding in '{text}'"))?;
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("'{text}' is not UTF-8 once decoded"))
}

// ---------------------------------------------------------------------------
// Per-replica state
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy)]
struct State {
    mode: Mode,
    fail_next: Option<u64>,
    /// Whether the replica's listener is bound; false only around `down`.
    listening: bool,
}

/// One origin plus its fault mode and counters, shared by its accept thread,
/// its connections and every control route.
pub struct Replica {
    pub origin: Origin,
    state: Mutex<State>,
    /// Signalled on every mode or `listening` change.
    changed: Condvar,
    /// Requests answered normally (echo or health).
    served: AtomicU64,
    /// Requests that got the injected fault.
    faulted: AtomicU64,
    quiet: bool,
}

impl Replica {
    /// `origin.addr` must be the bound address (not port 0): `down` re-binds it.
    pub fn new(origin: Origin, quiet: bool) -> Self {
        Self {
            origin,
            state: Mutex::new(State {
                mode: Mode::Ok,
                fail_next: None,
                listening: true,
            }),
            changed: Condvar::new(),
            served: AtomicU64::new(0),
            faulted: AtomicU64::new(0),
            quiet,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent under any panic, so poisoning is moot.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    #[cfg(test)]
    pub fn mode(&self) -> Mode {
        self.lock().mode
    }

    pub fn served(&self) -> u64 {
        self.served.load(Ordering::Relaxed)
    }

    pub fn faulted(&self) -> u64 {
        self.faulted.load(Ordering::Relaxed)
    }

    pub fn count_served(&self) {
        self.served.fetch_add(1, Ordering::Relaxed);
    }

    /// The fault for the request that just arrived, if any, charging it to
    /// the `fail-next` budget (which returns the replica to `ok` when spent).
    pub fn take_fault(&self) -> Option<Mode> {
        let mut state = self.lock();
        let mode = state.mode;
        if mode == Mode::Ok {
            return None;
        }
        self.faulted.fetch_add(1, Ordering::Relaxed);
        match state.fail_next {
            Some(left) if left > 1 => state.fail_next = Some(left - 1),
            Some(_) => {
                state.mode = Mode::Ok;
                state.fail_next = None;
                self.log_change(mode, &state, " (fail-next used up)");
                self.changed.notify_all();
            }
            None => {}
        }
        Some(mode)
    }

    /// Sets the mode. Entering or leaving `down` waits (bounded) until the
    /// accept thread has closed or re-bound the port.
    pub fn set(&self, spec: FaultSpec) {
        let mut state = self.lock();
        let old = state.mode;
        state.mode = spec.mode;
        state.fail_next = spec.fail_next;
        let note = spec
            .fail_next
            .map(|n| format!(" for the next {n} request(s)"))
            .unwrap_or_default();
        self.log_change(old, &state, &note);
        self.changed.notify_all();
        if spec.mode == Mode::Down && state.listening {
            // The accept thread is blocked in accept(): connect to wake it.
            drop(state);
            self.wake_acceptor();
            state = self.lock();
        }
        let _ = self
            .changed
            .wait_timeout_while(state, LISTENER_SWITCH_WAIT, |s| {
                (s.mode == Mode::Down) == s.listening
            });
    }

    fn wake_acceptor(&self) {
        let mut addr = self.origin.addr;
        if addr.ip().is_unspecified() {
            addr.set_ip(match addr.ip() {
                IpAddr::V4(_) => Ipv4Addr::LOCALHOST.into(),
                IpAddr::V6(_) => Ipv6Addr::LOCALHOST.into(),
            });
        }
        let _ = TcpStream::connect_timeout(&addr, Duration::from_millis(500));
    }

    fn log_change(&self, old: Mode, new: &State, note: &str) {
        if !self.quiet {
            eprintln!(
                "demo-origins: {} ({}) fault mode {} -> {}{note}",
                self.origin.label(),
                self.origin.addr,
                old.name(),
                new.mode.name(),
            );
        }
    }

    /// Whether connections should be refused; checked by the accept thread.
    pub fn is_down(&self) -> bool {
        self.lock().mode == Mode::Down
    }

    /// Called by the accept thread after dropping its listener: blocks until
    /// the mode leaves `down`, when the caller re-binds.
    pub fn wait_while_down(&self) {
        let mut state = self.lock();
        state.listening = false;
        self.changed.notify_all();
        let _state = self
            .changed
            .wait_while(state, |s| s.mode == Mode::Down)
            .unwrap_or_else(PoisonError::into_inner);
    }

    pub fn set_listening(&self) {
        self.lock().listening = true;
        self.changed.notify_all();
    }

    pub fn state_json(&self) -> String {
        let state = *self.lock();
        json_object(&[
            ("addr", json_str(&self.origin.addr.to_string())),
            ("origin", json_str(&self.origin.label())),
            ("mode", json_str(&state.mode.name())),
            (
                "fail_next",
                state
                    .fail_next
                    .map_or_else(|| "null".to_string(), |n| n.to_string()),
            ),
            ("listening", state.listening.to_string()),
            ("served", self.served().to_string()),
            ("faulted", self.faulted().to_string()),
        ])
    }
}

/// Accepts connections for one replica until the process ends, closing and
/// re-binding the port around `down`.
pub fn accept_loop(listener: TcpListener, faults: Arc<Faults>, index: usize) {
    let replica = &faults.replicas[index];
    let label = replica.origin.label();
    let mut listener = Some(listener);
    let mut rebind_failed = false;
    loop {
        let Some(active) = &listener else {
            replica.wait_while_down();
            match TcpListener::bind(replica.origin.addr) {
                Ok(rebound) => {
                    replica.set_listening();
                    listener = Some(rebound);
                    rebind_failed = false;
                }
                Err(err) => {
                    if !std::mem::replace(&mut rebind_failed, true) {
                        eprintln!(
                            "demo-origins: {label}: cannot re-bind {} after down (retrying): {err}",
                            replica.origin.addr
                        );
                    }
                    thread::sleep(REBIND_RETRY);
                }
            }
            continue;
        };
        match active.accept() {
            // Either the wake-up from `set` or a client racing the switch:
            // both go, and so does the listener, so new connects are refused.
            Ok(_) if replica.is_down() => listener = None,
            Ok((stream, _)) => {
                let faults = Arc::clone(&faults);
                let spawned = thread::Builder::new()
                    .name(format!("conn {label}"))
                    .spawn(move || serve_connection(stream, &faults, index));
                if let Err(err) = spawned {
                    eprintln!("demo-origins: dropping a connection, no thread: {err}");
                }
            }
            Err(err) => {
                // Usually transient (EMFILE, ECONNABORTED); back off instead of spinning.
                eprintln!("demo-origins: {label}: accept failed: {err}");
                thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

/// The `hang` fault: never answer, but keep reading (and discarding) so the
/// thread ends when the client gives up and closes.
pub fn hang(mut reader: BufReader<TcpStream>) {
    let _ = reader.get_ref().set_read_timeout(Some(HANG_LIMIT));
    let _ = io::copy(&mut reader, &mut io::sink());
}

/// The body of an injected error status: which replica failed, on purpose.
pub fn fault_json(origin: &Origin, status: u16) -> String {
    json_object(&[
        ("error", json_str("fault_injected")),
        ("status", status.to_string()),
        ("api", json_str(&origin.api)),
        ("cluster", json_str(&origin.cluster)),
        ("replica", json_str(&origin.replica)),
    ])
}

// ---------------------------------------------------------------------------
// All replicas and the control routes
// ---------------------------------------------------------------------------

pub struct Faults {
    pub replicas: Vec<Replica>,
    pub quiet: bool,
}

/// An error answer: status and JSON body.
type Failure = (u16, String);

fn failure(status: u16, error: &str, reason: &str) -> Failure {
    let body = json_object(&[("error", json_str(error)), ("reason", json_str(reason))]);
    (status, body)
}

/// Which replicas a control request is about.
enum Target {
    All,
    One(usize),
}

impl Faults {
    /// Finds a replica by `IP:PORT`, then port, then `API/CLUSTER/REPLICA`.
    pub fn find(&self, key: &str) -> Result<usize, Failure> {
        let tiers: [&dyn Fn(&Origin) -> bool; 3] = [
            &|o| o.addr.to_string() == key,
            &|o| o.addr.port().to_string() == key,
            &|o| o.label() == key,
        ];
        for matches in tiers {
            let found: Vec<usize> = (0..self.replicas.len())
                .filter(|&i| matches(&self.replicas[i].origin))
                .collect();
            match found.as_slice() {
                [] => continue,
                [one] => return Ok(*one),
                _ => {
                    return Err(failure(
                        400,
                        "ambiguous_replica",
                        &format!("'{key}' names several replicas: give IP:PORT"),
                    ))
                }
            }
        }
        Err(failure(
            404,
            "unknown_replica",
            &format!("no replica '{key}': give its port, IP:PORT or API/CLUSTER/REPLICA"),
        ))
    }

    /// `{"IP:PORT": {state}, ...}` in table order.
    pub fn all_json(&self) -> String {
        let fields: Vec<(String, String)> = self
            .replicas
            .iter()
            .map(|r| (r.origin.addr.to_string(), r.state_json()))
            .collect();
        json_object(&fields)
    }

    /// Answers a control request: `/__fault` on replica `here`, or the
    /// control listener's `/faults` routes when `here` is `None`.
    pub fn control(&self, request: &Request, here: Option<usize>) -> (u16, String) {
        self.try_control(request, here).unwrap_or_else(|err| err)
    }

    fn try_control(
        &self,
        request: &Request,
        here: Option<usize>,
    ) -> Result<(u16, String), Failure> {
        let (path, query) = request
            .target
            .split_once('?')
            .unwrap_or((&request.target, ""));
        let query = parse_fault_query(query).map_err(|why| failure(400, "bad_request", &why))?;
        let named = query
            .replica
            .as_deref()
            .map(|key| self.find(key))
            .transpose()?;
        let target = match (here, path) {
            (Some(here), FAULT_PATH) => Target::One(named.unwrap_or(here)),
            (None, "/faults") => named.map_or(Target::All, Target::One),
            (None, _) if path.starts_with("/faults/") && query.replica.is_none() => {
                let key = percent_decode(&path["/faults/".len()..])
                    .map_err(|why| failure(400, "bad_request", &why))?;
                Target::One(self.find(&key)?)
            }
            _ => {
                return Err(failure(
                    404,
                    "not_found",
                    "control routes: GET /faults[/REPLICA], POST /faults[/REPLICA]?mode=MODE",
                ))
            }
        };
        match (request.method.as_str(), query.spec) {
            ("GET" | "HEAD", None) => {}
            ("POST", Some(spec)) => match target {
                Target::All => self.replicas.iter().for_each(|r| r.set(spec)),
                Target::One(i) => self.replicas[i].set(spec),
            },
            ("POST", None) => return Err(failure(400, "bad_request", "POST needs mode=MODE")),
            ("GET" | "HEAD", Some(_)) => {
                return Err(failure(
                    405,
                    "method_not_allowed",
                    "use POST to change a mode",
                ))
            }
            _ => return Err(failure(405, "method_not_allowed", "use GET or POST")),
        }
        Ok(match target {
            Target::All => (200, self.all_json()),
            Target::One(i) => (200, self.replicas[i].state_json()),
        })
    }
}

// ---------------------------------------------------------------------------
// The control listener
// ---------------------------------------------------------------------------

pub fn control_loop(listener: TcpListener, faults: Arc<Faults>) {
    for conn in listener.incoming() {
        match conn {
            Ok(stream) => {
                let faults = Arc::clone(&faults);
                let spawned = thread::Builder::new()
                    .name("conn control".into())
                    .spawn(move || serve_control_connection(stream, &faults));
                if let Err(err) = spawned {
                    eprintln!("demo-origins: dropping a control connection, no thread: {err}");
                }
            }
            Err(err) => {
                eprintln!("demo-origins: control: accept failed: {err}");
                thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

fn serve_control_connection(stream: TcpStream, faults: &Faults) {
    let _ = stream.set_nodelay(true);
    let _ = stream.set_read_timeout(Some(IDLE_TIMEOUT));
    let _ = stream.set_write_timeout(Some(IDLE_TIMEOUT));
    let mut reader = BufReader::new(stream);
    loop {
        let mut request = match read_head(&mut reader) {
            Ok(Some(request)) => request,
            Ok(None) | Err(ReadError::Closed) => return,
            Err(ReadError::Reject(rejection)) => {
                return refuse(reader, None, faults.quiet, &rejection)
            }
        };
        match read_rest(&mut reader, &mut request) {
            Ok(()) => {}
            Err(ReadError::Closed) => return,
            Err(ReadError::Reject(rejection)) => {
                return refuse(reader, None, faults.quiet, &rejection)
            }
        }
        let keep_alive = request.keep_alive();
        let (status, body) = faults.control(&request, None);
        log_request(faults.quiet, "control", &request, status);
        let send_body = request.method != "HEAD";
        let response = http_response(None, status, &body, send_body, keep_alive);
        if reader.get_mut().write_all(&response).is_err() || !keep_alive {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::{read_response, start_origins};
    use crate::{parse_origin, Running};
    use serde_json::Value;
    use std::collections::HashMap;
    use std::io::Read;
    use std::net::SocketAddr;

    fn query(text: &str) -> Result<FaultQuery, String> {
        parse_fault_query(text)
    }

    fn spec(mode: Mode, fail_next: Option<u64>) -> Option<FaultSpec> {
        Some(FaultSpec { mode, fail_next })
    }

    #[test]
    fn parses_modes_and_fault_queries() {
        for (text, mode) in [
            ("ok", Mode::Ok),
            ("HANG", Mode::Hang),
            ("reset", Mode::Reset),
            ("down", Mode::Down),
            ("503", Mode::Status(503)),
            ("429", Mode::Status(429)),
        ] {
            assert_eq!(Mode::parse(text), Ok(mode), "{text}");
            assert_eq!(Mode::parse(&mode.name()), Ok(mode), "{text} round trip");
        }
        for bad in ["", "200", "399", "600", "+503", "5030", "error"] {
            assert!(Mode::parse(bad).is_err(), "{bad}");
        }

        assert_eq!(query(""), Ok(FaultQuery::default()));
        assert_eq!(
            query("mode=503").unwrap().spec,
            spec(Mode::Status(503), None)
        );
        assert_eq!(
            query("mode=503&status=502").unwrap().spec,
            spec(Mode::Status(502), None)
        );
        assert_eq!(
            query("mode=reset&fail-next=3").unwrap().spec,
            spec(Mode::Reset, Some(3))
        );
        assert_eq!(
            query("replica=127.0.0.1%3A18101&mode=ok"),
            Ok(FaultQuery {
                spec: spec(Mode::Ok, None),
                replica: Some("127.0.0.1:18101".into()),
            })
        );
        for bad in [
            "mode=bogus",
            "mode=200",
            "mdoe=503",
            "status=502",
            "fail-next=2",
            "mode=hang&status=502",
            "mode=503&status=200",
            "mode=ok&fail-next=1",
            "mode=down&fail-next=1",
            "mode=503&fail-next=0",
            "mode=503&fail-next=+1",
            "mode=503&fail-next=x",
            "replica=%zz",
        ] {
            assert!(query(bad).is_err(), "{bad}");
        }
    }

    fn replica(spec: &str) -> Replica {
        Replica::new(parse_origin(spec).expect("origin"), true)
    }

    #[test]
    fn fail_next_counts_down_then_returns_to_ok() {
        let replica = replica("127.0.0.1:9000=catalog/eks/1");
        assert_eq!(replica.take_fault(), None);
        replica.set(FaultSpec {
            mode: Mode::Status(503),
            fail_next: Some(2),
        });
        assert_eq!(replica.take_fault(), Some(Mode::Status(503)));
        assert!(replica.state_json().contains(r#""fail_next":1"#));
        assert_eq!(replica.take_fault(), Some(Mode::Status(503)));
        assert_eq!(replica.take_fault(), None);
        assert_eq!(replica.mode(), Mode::Ok);
        assert_eq!(replica.faulted(), 2);

        // Without a budget the mode sticks.
        replica.set(FaultSpec {
            mode: Mode::Hang,
            fail_next: None,
        });
        for _ in 0..3 {
            assert_eq!(replica.take_fault(), Some(Mode::Hang));
        }
        let state: Value = serde_json::from_str(&replica.state_json()).expect("JSON");
        assert_eq!(state["mode"], "hang");
        assert_eq!(state["fail_next"], Value::Null);
        assert_eq!(state["faulted"], 5);
        assert_eq!(state["served"], 0);
        assert_eq!(state["origin"], "catalog/eks/1");
    }

    fn table() -> Faults {
        Faults {
            replicas: vec![
                replica("127.0.0.1:9000=catalog/eks/1"),
                replica("127.0.0.2:9000=catalog/eks/2"),
                replica("127.0.0.1:9001=orders/eks/1"),
            ],
            quiet: true,
        }
    }

    #[test]
    fn finds_replicas_by_address_port_or_label() {
        let faults = table();
        assert_eq!(faults.find("127.0.0.2:9000"), Ok(1));
        assert_eq!(faults.find("9001"), Ok(2));
        assert_eq!(faults.find("catalog/eks/2"), Ok(1));
        assert_eq!(faults.find("9000").map_err(|e| e.0), Err(400));
        assert_eq!(faults.find("nope").map_err(|e| e.0), Err(404));
    }

    fn control(faults: &Faults, here: Option<usize>, method: &str, target: &str) -> (u16, Value) {
        let raw = format!("{method} {target} HTTP/1.1\r\n\r\n");
        let request = read_head(&mut raw.as_bytes())
            .ok()
            .flatten()
            .expect("request");
        let (status, body) = faults.control(&request, here);
        (status, serde_json::from_str(&body).expect("JSON"))
    }

    #[test]
    fn routes_control_requests() {
        let faults = table();
        let (status, all) = control(&faults, None, "GET", "/faults");
        assert_eq!(status, 200);
        assert_eq!(all["127.0.0.2:9000"]["mode"], "ok");

        let (status, one) = control(&faults, None, "POST", "/faults/9001?mode=502");
        assert_eq!((status, one["mode"].as_str()), (200, Some("502")));
        assert_eq!(faults.replicas[2].mode(), Mode::Status(502));
        let (_, one) = control(&faults, None, "GET", "/faults/orders%2Feks%2F1");
        assert_eq!(one["addr"], "127.0.0.1:9001");

        // /__fault acts on the replica it arrived at, or the one named.
        control(&faults, Some(0), "POST", "/__fault?mode=reset");
        control(
            &faults,
            Some(0),
            "POST",
            "/__fault?mode=hang&replica=127.0.0.2:9000",
        );
        assert_eq!(faults.replicas[0].mode(), Mode::Reset);
        assert_eq!(faults.replicas[1].mode(), Mode::Hang);

        let (_, all) = control(&faults, None, "POST", "/faults?mode=ok");
        assert!(faults.replicas.iter().all(|r| r.mode() == Mode::Ok));
        assert_eq!(all.as_object().map(|o| o.len()), Some(3));

        for (here, method, target, expected) in [
            (None, "POST", "/faults", 400),
            (None, "GET", "/faults?mode=503", 405),
            (None, "PUT", "/faults?mode=503", 405),
            (None, "GET", "/faults/nope", 404),
            (None, "GET", "/elsewhere", 404),
            (None, "GET", "/__fault", 404),
            (Some(0), "GET", "/faults", 404),
            (Some(0), "POST", "/__fault?mode=teapot", 400),
        ] {
            let (status, body) = control(&faults, here, method, target);
            assert_eq!(status, expected, "{method} {target}: {body}");
            assert!(body["reason"].is_string());
        }
    }

    // --- Over sockets -------------------------------------------------------

    /// Sends one request on a fresh connection that the server closes after.
    fn send(addr: SocketAddr, method: &str, target: &str) -> (u16, HashMap<String, String>, Value) {
        let mut stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        write!(
            stream,
            "{method} {target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
        )
        .expect("write");
        let (status, headers, body) = read_response(&mut BufReader::new(stream));
        (
            status,
            headers,
            serde_json::from_slice(&body).expect("JSON"),
        )
    }

    fn addrs(running: &Running) -> Vec<SocketAddr> {
        running
            .faults
            .replicas
            .iter()
            .map(|r| r.origin.addr)
            .collect()
    }

    /// Asserts the request gets no answer at all: the connection is closed
    /// (EOF or reset) before a single byte arrives.
    fn assert_dropped(stream: &mut TcpStream) {
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let mut got = Vec::new();
        match stream.read_to_end(&mut got) {
            Ok(_) => assert!(got.is_empty(), "unexpected answer {got:?}"),
            Err(err) => assert_ne!(err.kind(), io::ErrorKind::WouldBlock, "no close"),
        }
    }

    #[test]
    fn error_status_fault_answers_until_healed() {
        let running = start_origins(&["catalog/eks/1"]);
        let origin = addrs(&running)[0];
        let control = running.control;

        let (status, _, state) = send(
            control,
            "POST",
            &format!("/faults/{}?mode=503", origin.port()),
        );
        assert_eq!((status, state["mode"].as_str()), (200, Some("503")));
        let (status, headers, body) = send(origin, "GET", "/items");
        assert_eq!(status, 503);
        assert_eq!(headers["x-demo-origin"], "catalog/eks/1");
        assert_eq!(body["error"], "fault_injected");
        assert_eq!(body["replica"], "1");
        // Health checks fail too: that is what the gateway probes.
        assert_eq!(send(origin, "GET", "/__health").0, 503);

        // The replica's own control route answers despite the fault.
        let (status, _, state) = send(origin, "POST", "/__fault?mode=503&status=502");
        assert_eq!((status, state["mode"].as_str()), (200, Some("502")));
        assert_eq!(send(origin, "POST", "/orders").0, 502);

        send(origin, "POST", "/__fault?mode=ok");
        let (status, _, echo) = send(origin, "GET", "/items");
        assert_eq!((status, echo["path"].as_str()), (200, Some("/items")));
        let (_, _, all) = send(control, "GET", "/faults");
        let state = &all[origin.to_string()];
        assert_eq!(
            (state["served"].as_u64(), state["faulted"].as_u64()),
            (Some(1), Some(3))
        );
    }

    #[test]
    fn fail_next_faults_only_the_next_requests() {
        let running = start_origins(&["orders/eks/1"]);
        let origin = addrs(&running)[0];
        send(origin, "POST", "/__fault?mode=500&fail-next=2");
        let statuses: Vec<u16> = (0..3).map(|_| send(origin, "GET", "/").0).collect();
        assert_eq!(statuses, [500, 500, 200]);
        let (_, _, state) = send(origin, "GET", "/__fault");
        assert_eq!(state["mode"], "ok");
        assert_eq!(state["fail_next"], Value::Null);
    }

    #[test]
    fn reset_drops_the_connection_without_an_answer() {
        let running = start_origins(&["catalog/eks/1"]);
        let origin = addrs(&running)[0];
        send(origin, "POST", "/__fault?mode=reset");
        let mut stream = TcpStream::connect(origin).expect("connect");
        stream
            .write_all(b"GET /items HTTP/1.1\r\nHost: t\r\n\r\n")
            .expect("write");
        assert_dropped(&mut stream);
        assert_eq!(send(origin, "GET", "/__fault").2["faulted"], 1);
        send(origin, "POST", "/__fault?mode=ok");
        assert_eq!(send(origin, "GET", "/items").0, 200);
    }

    #[test]
    fn hang_never_answers_while_control_still_works() {
        let running = start_origins(&["inventory/gke/1"]);
        let origin = addrs(&running)[0];
        send(running.control, "POST", "/faults/inventory/gke/1?mode=hang");
        let mut stream = TcpStream::connect(origin).expect("connect");
        stream
            .write_all(b"GET /stock HTTP/1.1\r\nHost: t\r\n\r\n")
            .expect("write");
        // A bound on the wait, not a speed assertion: nothing may arrive at all.
        stream
            .set_read_timeout(Some(Duration::from_millis(300)))
            .expect("timeout");
        let mut byte = [0u8; 1];
        let err = stream.read(&mut byte).expect_err("no answer while hung");
        assert!(
            matches!(
                err.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ),
            "{err}"
        );
        // Other connections, and the control route, are not blocked.
        assert_eq!(send(origin, "GET", "/__fault").2["mode"], "hang");
        send(origin, "POST", "/__fault?mode=ok");
        assert_eq!(send(origin, "GET", "/stock").0, 200);
    }

    #[test]
    fn down_refuses_connections_until_healed_from_elsewhere() {
        let running = start_origins(&["webhook/gke/1", "webhook/gke/2"]);
        let [down, up] = addrs(&running)[..] else {
            panic!("two origins")
        };
        // A kept-alive connection from before the outage.
        let mut kept = TcpStream::connect(down).expect("connect");
        kept.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let mut reader = BufReader::new(kept.try_clone().expect("clone"));
        kept.write_all(b"GET /a HTTP/1.1\r\nHost: t\r\n\r\n")
            .expect("write");
        assert_eq!(read_response(&mut reader).0, 200);

        let (status, _, state) = send(
            running.control,
            "POST",
            &format!("/faults/{down}?mode=down"),
        );
        assert_eq!(status, 200);
        assert_eq!(
            (state["mode"].as_str(), state["listening"].as_bool()),
            (Some("down"), Some(false))
        );
        let refused = TcpStream::connect(down).expect_err("the port is closed");
        assert_eq!(refused.kind(), io::ErrorKind::ConnectionRefused);
        kept.write_all(b"GET /b HTTP/1.1\r\nHost: t\r\n\r\n")
            .expect("write");
        assert_dropped(&mut kept);
        assert_eq!(send(up, "GET", "/").0, 200);

        // Healed through the other replica; the port is open when it answers.
        let (_, _, state) = send(up, "POST", &format!("/__fault?mode=ok&replica={down}"));
        assert_eq!(
            (state["mode"].as_str(), state["listening"].as_bool()),
            (Some("ok"), Some(true))
        );
        assert_eq!(send(down, "GET", "/").0, 200);
        let (_, _, all) = send(running.control, "GET", "/faults");
        assert_eq!(all[down.to_string()]["served"], 2);
        assert_eq!(all[up.to_string()]["served"], 1);
    }
}
