//! `dev-auth serve`: a stand-in identity provider that serves the dev keys' JWKS, with admin
//! routes to rotate keys and to simulate an outage, so the tests can exercise the gateway's
//! key cache, refresh and `KeysUnavailable` paths. HTTP/1.1, one thread and one request per
//! connection: the gateway fetches a JWKS rarely, and simplicity beats speed here.

use crate::{unknown_kid, Exit};
use edge_gateway::devkeys::{self, KIDS};
use serde_json::{json, Value};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::Duration;

pub const DEFAULT_ADDR: &str = "127.0.0.1:18200";
pub const DEFAULT_KIDS: [&str; 3] = ["rsa-1", "ec-1", "ed-1"];
/// Request line plus headers; a larger head is refused.
const MAX_HEAD_BYTES: u64 = 16 * 1024;
/// Bodies are read and dropped; a larger one is refused rather than drained.
const MAX_BODY_BYTES: u64 = 1024 * 1024;
/// A stalled client must not pin its thread forever.
const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// The issuer this dev identity provider signs as, whatever address it serves on: the name
/// `policies/acme` allows (its JWKS URL is separate, so tests can serve on any port).
pub fn default_issuer() -> String {
    "https://idp.acme.example/".to_string()
}

/// What the admin routes change and the JWKS route reads, shared by the connection threads.
#[derive(Debug)]
pub struct State {
    /// `http://IP:PORT`, as bound, for the OpenID configuration.
    base: String,
    kids: Vec<String>,
    down: bool,
    /// JWKS requests seen, including those answered 503, so tests can assert on caching.
    jwks_fetches: u64,
}

impl State {
    pub fn new(addr: SocketAddr, kids: Vec<String>) -> State {
        State {
            base: format!("http://{addr}"),
            kids,
            down: false,
            jwks_fetches: 0,
        }
    }

    fn jwks(&self) -> Value {
        let kids: Vec<&str> = self.kids.iter().map(String::as_str).collect();
        devkeys::jwks(&kids)
    }

    fn stats(&self) -> Value {
        json!({"jwks_fetches": self.jwks_fetches, "down": self.down, "kids": self.kids})
    }
}

/// A thread that panicked while holding the lock left plain data behind: keep serving.
fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[derive(Debug, PartialEq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
}

impl Response {
    fn json(status: u16, body: &Value) -> Response {
        Response {
            status,
            headers: vec![("Content-Type", "application/json".into())],
            body: format!("{body:#}\n"),
        }
    }

    fn error(status: u16, message: &str) -> Response {
        Response::json(status, &json!({ "error": message }))
    }

    fn with(mut self, name: &'static str, value: &str) -> Response {
        self.headers.push((name, value.to_string()));
        self
    }
}

/// Every route, for 405's `Allow`; `route` below says what each does.
const ROUTES: [(&str, &str); 6] = [
    ("GET", "/.well-known/jwks.json"),
    ("GET", "/.well-known/openid-configuration"),
    ("POST", "/admin/keys"),
    ("POST", "/admin/down"),
    ("POST", "/admin/up"),
    ("GET", "/admin/stats"),
];

/// Answers one request. `target` is the request target as sent, query included.
pub fn route(state: &Mutex<State>, method: &str, target: &str) -> Response {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut s = lock(state);
    let outage = || Response::error(503, "identity provider down (dev-auth /admin/down)");
    match (method, path) {
        ("GET", "/.well-known/jwks.json") => {
            s.jwks_fetches += 1;
            match s.down {
                true => outage(),
                false => Response::json(200, &s.jwks()).with("Cache-Control", "max-age=300"),
            }
        }
        ("GET", "/.well-known/openid-configuration") => match s.down {
            true => outage(),
            false => Response::json(
                200,
                &json!({
                    "issuer": default_issuer(),
                    "jwks_uri": format!("{}/.well-known/jwks.json", s.base),
                }),
            ),
        },
        ("POST", "/admin/keys") => match kids_param(query).and_then(parse_kids) {
            Ok(kids) => {
                s.kids = kids;
                Response::json(200, &s.jwks())
            }
            Err(why) => Response::error(400, &why),
        },
        ("POST", "/admin/down" | "/admin/up") => {
            s.down = path == "/admin/down";
            Response::json(200, &s.stats())
        }
        ("GET", "/admin/stats") => Response::json(200, &s.stats()),
        _ => {
            let allow: Vec<&str> = ROUTES
                .iter()
                .filter(|(_, p)| *p == path)
                .map(|(m, _)| *m)
                .collect();
            match allow.is_empty() {
                true => Response::error(404, "not found"),
                false => {
                    Response::error(405, "method not allowed").with("Allow", &allow.join(", "))
                }
            }
        }
    }
}

fn kids_param(query: &str) -> Result<&str, String> {
    let list = query.split('&').find_map(|pair| pair.strip_prefix("kids="));
    list.ok_or_else(|| "expected ?kids=KID,KID".to_string())
}

/// A comma-separated list of known kids, possibly empty (a JWKS with no keys is a case
/// worth testing too). Duplicates are dropped.
fn parse_kids(list: &str) -> Result<Vec<String>, String> {
    let mut kids: Vec<String> = Vec::new();
    // URL-encoding clients may send the comma as %2C.
    for kid in list.replace("%2C", ",").replace("%2c", ",").split(',') {
        let kid = kid.trim();
        if kid.is_empty() {
            continue;
        }
        if !KIDS.contains(&kid) {
            return Err(unknown_kid(kid));
        }
        if !kids.iter().any(|k| k == kid) {
            kids.push(kid.to_string());
        }
    }
    Ok(kids)
}

// ---------------------------------------------------------------------------
// Command line and sockets
// ---------------------------------------------------------------------------

#[derive(Debug, clap::Args)]
#[command(after_help = "\
The first stdout line is `dev-auth: serving http://IP:PORT`. Routes:
  GET  /.well-known/jwks.json      the active keys (503 while down)
  GET  /.well-known/openid-configuration
  POST /admin/keys?kids=KID,KID    switch the active keys
  POST /admin/down, /admin/up      simulate an identity-provider outage and recovery
  GET  /admin/stats                {\"jwks_fetches\", \"down\", \"kids\"}")]
pub struct ServeOptions {
    /// Where to listen; port 0 picks a free one
    #[arg(long, value_name = "IP:PORT", default_value = DEFAULT_ADDR)]
    addr: SocketAddr,
    /// The keys served at first, comma-separated (may be empty) [default: rsa-1,ec-1,ed-1]
    #[arg(long = "keys", value_name = "KID,KID", value_parser = kid_list)]
    kids: Option<KidList>,
    /// Do not log requests to stderr
    #[arg(short, long)]
    quiet: bool,
}

/// `--keys`: one value that is a list, so that clap does not take it for a repeated flag.
#[derive(Debug, Clone)]
pub struct KidList(Vec<String>);

fn kid_list(list: &str) -> Result<KidList, String> {
    parse_kids(list).map(KidList)
}

pub fn main(o: ServeOptions) -> Result<(), Exit> {
    let ServeOptions { addr, kids, quiet } = o;
    let kids = kids.map_or_else(|| DEFAULT_KIDS.map(String::from).to_vec(), |k| k.0);
    let listener = TcpListener::bind(addr)
        .map_err(|e| Exit::Failed(format!("cannot listen on {addr}: {e}")))?;
    let bound = listener.local_addr().unwrap_or(addr);
    // Tests read this line to learn the port; a reader that went away must not stop us.
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "dev-auth: serving http://{bound}");
    let _ = out.flush();
    drop(out);
    accept_loop(
        listener,
        Arc::new(Mutex::new(State::new(bound, kids))),
        quiet,
    );
    Ok(())
}

pub fn accept_loop(listener: TcpListener, state: Arc<Mutex<State>>, quiet: bool) {
    for conn in listener.incoming() {
        match conn {
            Ok(stream) => {
                let state = Arc::clone(&state);
                if let Err(e) = thread::Builder::new()
                    .name("dev-auth conn".into())
                    .spawn(move || handle(stream, &state, quiet))
                {
                    eprintln!("dev-auth: dropping a connection, no thread: {e}");
                }
            }
            Err(e) => {
                // Usually transient (EMFILE, ECONNABORTED); back off instead of spinning.
                eprintln!("dev-auth: accept failed: {e}");
                thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

/// Serves one request and closes: `Connection: close` keeps the framing trivial.
fn handle(stream: TcpStream, state: &Mutex<State>, quiet: bool) {
    let _ = stream.set_read_timeout(Some(IO_TIMEOUT));
    let _ = stream.set_write_timeout(Some(IO_TIMEOUT));
    let mut reader = BufReader::new(&stream);
    let (line, response, head_only) = match read_request(&mut reader) {
        Ok(None) => return,
        Ok(Some((method, target))) => {
            // HEAD is GET without the body (and counts as a JWKS fetch, as it costs one).
            let as_get = if method == "HEAD" { "GET" } else { &method };
            let response = route(state, as_get, &target);
            (format!("{method} {target}"), response, method == "HEAD")
        }
        Err(response) => ("-".to_string(), response, false),
    };
    if !quiet {
        eprintln!("dev-auth: {line} {}", response.status);
    }
    let mut out = &stream;
    let _ = out.write_all(&encode(&response, head_only));
    // Closing with unread input would send RST and could destroy the answer: drain first.
    let _ = stream.shutdown(Shutdown::Write);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    let _ = io::copy(&mut reader.take(MAX_BODY_BYTES), &mut io::sink());
}

/// Reads the request line and headers, and skips a Content-Length body. `Ok(None)` is a
/// connection closed before a request; `Err` is the answer to a request we refuse.
fn read_request(reader: &mut impl BufRead) -> Result<Option<(String, String)>, Response> {
    let bad = |why: &str| Response::error(400, why);
    let mut head = reader.take(MAX_HEAD_BYTES);
    let mut line = String::new();
    match head.read_line(&mut line) {
        Ok(0) => return Ok(None),
        Ok(_) => {}
        Err(_) => return Err(bad("unreadable request line")),
    }
    let mut parts = line.split_ascii_whitespace();
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("expected METHOD TARGET HTTP/1.x"));
    };
    if !version.starts_with("HTTP/1.") {
        return Err(bad("only HTTP/1.x is spoken here"));
    }
    let mut body_len = 0;
    loop {
        let mut header = String::new();
        match head.read_line(&mut header) {
            Ok(_) if header.ends_with('\n') => {}
            Ok(_) => return Err(Response::error(431, "request head too large or cut short")),
            Err(_) => return Err(bad("unreadable header")),
        }
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header
            .split_once(':')
            .ok_or_else(|| bad("malformed header"))?;
        if name.eq_ignore_ascii_case("content-length") {
            body_len = value
                .trim()
                .parse()
                .map_err(|_| bad("bad Content-Length"))?;
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(Response::error(
                411,
                "send a Content-Length body, not chunked",
            ));
        }
    }
    if body_len > MAX_BODY_BYTES {
        return Err(Response::error(413, "body too large"));
    }
    let skipped = io::copy(&mut head.into_inner().take(body_len), &mut io::sink());
    if skipped.ok() != Some(body_len) {
        return Err(bad("body shorter than its Content-Length"));
    }
    Ok(Some((method.to_string(), target.to_string())))
}

fn encode(r: &Response, head_only: bool) -> Vec<u8> {
    let reason = match r.status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        411 => "Length Required",
        413 => "Content Too Large",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "",
    };
    let mut text = format!("HTTP/1.1 {} {reason}\r\n", r.status);
    for (name, value) in &r.headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        r.body.len()
    ));
    if !head_only {
        text.push_str(&r.body);
    }
    text.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(kids: &[&str]) -> Mutex<State> {
        let kids = kids.iter().map(|k| k.to_string()).collect();
        Mutex::new(State::new("127.0.0.1:18200".parse().unwrap(), kids))
    }

    fn body(r: &Response) -> Value {
        serde_json::from_str(&r.body).unwrap()
    }

    fn kids_of(jwks: &Value) -> Vec<&str> {
        let keys = jwks["keys"].as_array().unwrap();
        keys.iter().map(|k| k["kid"].as_str().unwrap()).collect()
    }

    #[test]
    fn jwks_rotation_outage_and_stats() {
        let s = state(&DEFAULT_KIDS);
        let r = route(&s, "GET", "/.well-known/jwks.json");
        assert_eq!(r.status, 200);
        assert!(r.headers.contains(&("Cache-Control", "max-age=300".into())));
        assert_eq!(kids_of(&body(&r)), DEFAULT_KIDS);

        let r = route(&s, "POST", "/admin/keys?kids=rsa-1%2Crsa-2");
        assert_eq!(
            (r.status, kids_of(&body(&r))),
            (200, vec!["rsa-1", "rsa-2"])
        );
        let r = route(&s, "POST", "/admin/keys?kids=rsa-2,nope");
        assert_eq!(r.status, 400, "{}", r.body);
        assert_eq!(route(&s, "POST", "/admin/keys").status, 400);
        let r = route(&s, "GET", "/.well-known/jwks.json?x=1");
        assert_eq!(
            kids_of(&body(&r)),
            ["rsa-1", "rsa-2"],
            "a failed switch changes nothing"
        );

        assert_eq!(route(&s, "POST", "/admin/down").status, 200);
        assert_eq!(route(&s, "GET", "/.well-known/jwks.json").status, 503);
        assert_eq!(
            route(&s, "GET", "/.well-known/openid-configuration").status,
            503
        );
        let r = route(&s, "POST", "/admin/up");
        assert_eq!(body(&r)["down"], json!(false));
        assert_eq!(route(&s, "GET", "/.well-known/jwks.json").status, 200);

        let r = route(&s, "GET", "/admin/stats");
        assert_eq!(
            body(&r),
            json!({"jwks_fetches": 4, "down": false, "kids": ["rsa-1", "rsa-2"]})
        );
        // An empty list is allowed: a JWKS with no keys is a case worth testing.
        let r = route(&s, "POST", "/admin/keys?kids=");
        assert_eq!((r.status, body(&r)), (200, json!({"keys": []})));
    }

    #[test]
    fn openid_configuration_and_unknown_routes() {
        let s = state(&["ec-1"]);
        let r = route(&s, "GET", "/.well-known/openid-configuration");
        assert_eq!(
            body(&r),
            json!({"issuer": "https://idp.acme.example/",
                   "jwks_uri": "http://127.0.0.1:18200/.well-known/jwks.json"})
        );
        assert_eq!(body(&r)["issuer"], json!(default_issuer()));
        assert_eq!(route(&s, "GET", "/").status, 404);
        assert_eq!(route(&s, "GET", "/admin/keys/../stats").status, 404);
        let r = route(&s, "GET", "/admin/down");
        assert_eq!((r.status, &r.headers[1]), (405, &("Allow", "POST".into())));
        assert_eq!(route(&s, "DELETE", "/.well-known/jwks.json").status, 405);
    }

    /// Sends `request` to a fresh server on 127.0.0.1:0 and returns the raw answer.
    fn exchange(addr: SocketAddr, request: &[u8]) -> String {
        let mut conn = TcpStream::connect(addr).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        conn.write_all(request).unwrap();
        let mut answer = String::new();
        conn.read_to_string(&mut answer).unwrap();
        answer
    }

    #[test]
    fn serves_over_a_socket() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State::new(addr, vec!["rsa-1".into()])));
        thread::spawn(move || accept_loop(listener, state, true));

        let a = exchange(
            addr,
            b"GET /.well-known/jwks.json HTTP/1.1\r\nHost: x\r\n\r\n",
        );
        let (head, json_body) = a.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{a}");
        assert!(head.contains("\r\nCache-Control: max-age=300\r\n"), "{a}");
        assert!(head.contains(&format!("\r\nContent-Length: {}\r\n", json_body.len())));
        assert_eq!(
            kids_of(&serde_json::from_str(json_body).unwrap()),
            ["rsa-1"]
        );

        // A body is skipped by its Content-Length.
        let a = exchange(
            addr,
            b"POST /admin/keys?kids=ec-1 HTTP/1.1\r\ncontent-length: 5\r\n\r\nhello",
        );
        assert!(a.starts_with("HTTP/1.1 200 OK\r\n"), "{a}");
        let a = exchange(addr, b"HEAD /admin/stats HTTP/1.0\r\n\r\n");
        assert!(
            a.starts_with("HTTP/1.1 200 OK\r\n") && a.ends_with("\r\n\r\n"),
            "{a}"
        );

        // Garbage gets a 400 rather than a panic, and the server keeps going.
        let a = exchange(addr, b"\x00\xff garbage\r\n\r\n");
        assert!(a.starts_with("HTTP/1.1 400 "), "{a}");
        let a = exchange(addr, b"GET / HTTP/1.1\r\nX: y\r\nContent-Length: x\r\n\r\n");
        assert!(a.starts_with("HTTP/1.1 400 "), "{a}");
        let a = exchange(addr, b"GET /admin/stats HTTP/1.1\r\n\r\n");
        let stats: Value = serde_json::from_str(a.split_once("\r\n\r\n").unwrap().1).unwrap();
        assert_eq!(
            stats,
            json!({"jwks_fetches": 1, "down": false, "kids": ["ec-1"]})
        );
    }
}
