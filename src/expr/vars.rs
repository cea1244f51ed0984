//! The CEL variables of one request (`req.*`, `res.*`, `conn.*`, `endpoint.*`, `time.*`) and the
//! scope expressions run in. docs/variables.md says where each comes from.

use super::hybrid::TEXT;
use super::{cookies, functions, useragent, Needs, RequestData};
use crate::http::{percent_decode, query_pairs, Headers, RequestHead, ResponseHead};
use crate::ipintel::IpIntel;
use crate::secrets::Secrets;
use cel::objects::{Key, Map};
use cel::{Context, IdedExpr, ResolveResult, Value};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

/// What the scope reads besides the request head: the clock, the running endpoint, the IP
/// list and the request's random stream. Set per request by the gateway; cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct Facts {
    /// When the gateway received the request head (`req.ts.header_received`, `conn.ts.start`).
    pub start_ms: u64,
    /// The clock when this phase started (`time.now`).
    pub now_ms: u64,
    /// The endpoint whose policy is running (`endpoint.*`).
    pub endpoint: Option<Arc<EndpointInfo>>,
    /// The IP-intelligence list of the policy version (`conn.client_ip.categories`, ...).
    pub ip_intel: Arc<IpIntel>,
    /// `rand.*`: one stream per request, seeded by the gateway's injected randomness.
    pub rand: Option<Arc<AtomicU64>>,
}

/// `endpoint.*` of one endpoint, built once per policy version.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EndpointInfo {
    pub id: String,
    pub url: String,
    pub host: String,
    pub protocol: String,
    pub port: Option<u16>,
}

impl EndpointInfo {
    /// From an endpoint's URL (`https://api.acme.example`, `https://catalog-eks.internal`).
    pub fn new(id: &str, url: &str) -> EndpointInfo {
        let (scheme, rest) = url.split_once("://").unwrap_or(("https", url));
        let scheme = scheme.to_ascii_lowercase();
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        let (host, port) = crate::http::split_host_port(authority).unwrap_or_default();
        EndpointInfo {
            id: id.to_string(),
            url: url.to_string(),
            port: port.or(crate::http::default_port(&scheme)),
            host,
            protocol: scheme,
        }
    }

    fn value(&self) -> Value {
        let mut fields = vec![
            ("id", string(&self.id)),
            ("url", string(&self.url)),
            ("host", string(&self.host)),
            ("protocol", string(&self.protocol)),
        ];
        if let Some(port) = self.port {
            fields.push(("port", Value::Int(i64::from(port))));
            let addr = if self.host.contains(':') {
                format!("[{}]:{port}", self.host)
            } else {
                format!("{}:{port}", self.host)
            };
            fields.push(("addr", Value::from(addr)));
        }
        map(fields)
    }
}

/// The scope one phase's expressions run in: the request-bound helpers, and the variables,
/// each built on the first evaluation that reads it.
pub struct Scope {
    ctx: RefCell<Context<'static, 'static>>,
    req: RequestData,
    /// Shared with the response helpers (`getResHeader`, ...).
    res: Option<Arc<ResponseHead>>,
    actions: Option<Value>,
    /// `vars.*` from `set-vars` (an empty map until one runs).
    vars: Option<Value>,
    /// For `secrets.get`, registered with the other helpers when first needed.
    secrets: Arc<Secrets>,
    facts: Facts,
    built: Cell<Needs>,
}

impl Scope {
    pub fn new(
        req: &RequestHead,
        res: Option<&ResponseHead>,
        actions: Option<Value>,
        secrets: Arc<Secrets>,
    ) -> Scope {
        let data: RequestData = Arc::new(req.clone());
        let ctx = Context::with_env(super::ext::env());
        let res = res.map(|r| Arc::new(r.clone()));
        Scope {
            ctx: RefCell::new(ctx),
            req: data,
            res,
            actions,
            vars: None,
            secrets,
            facts: Facts::default(),
            built: Cell::new(Needs::default()),
        }
    }

    /// The `vars` this phase has set so far.
    pub fn with_vars(mut self, vars: Value) -> Scope {
        self.vars = Some(vars);
        self
    }

    /// New `actions.*` results: only that root is rebuilt (on its next read), not the scope.
    pub fn replace_actions(&mut self, actions: Value) {
        self.actions = Some(actions);
        let mut built = self.built.get();
        built.actions = false;
        self.built.set(built);
    }

    /// New `vars.*`: only that root is rebuilt (on its next read), not the scope.
    pub fn replace_vars(&mut self, vars: Value) {
        self.vars = Some(vars);
        let mut built = self.built.get();
        built.vars = false;
        self.built.set(built);
    }

    /// Adds a variable beyond the request's (e.g. `http-request`'s `last_attempt`).
    pub fn add_variable(&self, name: &str, value: Value) {
        self.ctx
            .borrow_mut()
            .add_variable_from_value(name.to_string(), value);
    }

    /// The request snapshot the variables and helpers read.
    pub(crate) fn request(&self) -> &RequestData {
        &self.req
    }

    /// Adds what the request head does not carry (clock, endpoint, IP list, `rand.*`).
    pub fn with_facts(mut self, facts: &Facts) -> Scope {
        if let Some(state) = &facts.rand {
            functions::register_rand(self.ctx.get_mut(), Arc::clone(state));
        }
        self.facts = facts.clone();
        self
    }

    pub(crate) fn execute(&self, program: &IdedExpr, needs: Needs) -> ResolveResult {
        let built = self.built.get();
        if (needs.req && !built.req)
            || (needs.conn && !built.conn)
            || (needs.res && !built.res)
            || (needs.actions && !built.actions)
            || (needs.vars && !built.vars)
            || (needs.endpoint && !built.endpoint)
            || (needs.time && !built.time)
            || (needs.conn_ip && !built.conn_ip && !built.conn)
            || (needs.req_parsed && !built.req_parsed)
            || (needs.helpers && !built.helpers)
        {
            let mut ctx = self.ctx.borrow_mut();
            if needs.helpers && !built.helpers {
                let (req, res) = (Arc::clone(&self.req), self.res.clone());
                functions::register(&mut ctx, req, res, Arc::clone(&self.secrets));
            }
            // `req` is (re)built when first read, and again, whole, when an expression first
            // reads a field that costs a parse.
            if (needs.req && !built.req) || (needs.req_parsed && !built.req_parsed) {
                let parsed = needs.req_parsed || built.req_parsed;
                ctx.add_variable_from_value("req", req_value(&self.req, &self.facts, parsed));
            }
            if needs.conn && !built.conn {
                ctx.add_variable_from_value("conn", conn_value(&self.req, &self.facts));
            } else if needs.conn_ip && !built.conn_ip && !built.conn {
                // Only the address is read (a rate-limit key): skip geo, TLS and the IP list.
                let ip = map(vec![(TEXT, string(&self.req.client_ip.to_string()))]);
                ctx.add_variable_from_value("conn", map(vec![("client_ip", ip)]));
            }
            if let (true, false, Some(res)) = (needs.res, built.res, &self.res) {
                ctx.add_variable_from_value("res", res_value(res));
            }
            if let (true, false, Some(actions)) = (needs.actions, built.actions, &self.actions) {
                ctx.add_variable_from_value("actions", actions.clone());
            }
            if needs.vars && !built.vars {
                let vars = self.vars.clone().unwrap_or_else(|| map(Vec::new()));
                ctx.add_variable_from_value("vars", vars);
            }
            if let (true, false, Some(e)) = (needs.endpoint, built.endpoint, &self.facts.endpoint) {
                ctx.add_variable_from_value("endpoint", e.value());
            }
            if needs.time && !built.time {
                ctx.add_variable_from_value("time", time_value(self.facts.now_ms));
            }
            self.built.set(Needs {
                req: built.req || needs.req,
                conn: built.conn || needs.conn,
                res: built.res || needs.res,
                actions: built.actions || needs.actions,
                vars: built.vars || needs.vars,
                endpoint: built.endpoint || needs.endpoint,
                time: built.time || needs.time,
                conn_ip: built.conn_ip || needs.conn_ip,
                req_parsed: built.req_parsed || needs.req_parsed,
                helpers: built.helpers || needs.helpers,
            });
        }
        Value::resolve(program, &self.ctx.borrow())
    }
}

pub fn map(entries: Vec<(&str, Value)>) -> Value {
    let m: HashMap<Key, Value> = entries
        .into_iter()
        .map(|(k, v)| (Key::String(Arc::new(k.to_string())), v))
        .collect();
    Value::Map(Map { map: Arc::new(m) })
}

fn string(s: &str) -> Value {
    Value::String(Arc::new(s.to_string()))
}

/// `map[string][]string` with lower-case keys, values in arrival order.
fn multi_map<'a>(pairs: impl Iterator<Item = (String, String)> + 'a) -> Value {
    let mut m: HashMap<Key, Vec<Value>> = HashMap::new();
    for (k, v) in pairs {
        m.entry(Key::String(Arc::new(k)))
            .or_default()
            .push(string(&v));
    }
    let m = m
        .into_iter()
        .map(|(k, v)| (k, Value::List(Arc::new(v))))
        .collect();
    Value::Map(Map { map: Arc::new(m) })
}

fn header_map(headers: &Headers) -> Value {
    multi_map(headers.iter().map(|(k, v)| (k.to_string(), v.to_string())))
}

/// Fields both messages have: headers, trailers (none reach a Worker), content fields, Location.
fn message_fields(headers: &Headers, fields: &mut Vec<(&'static str, Value)>) {
    fields.push(("headers", header_map(headers)));
    fields.push(("trailers", map(Vec::new())));
    fields.push(("content_encoding", cookies::content_encoding_value(headers)));
    if let Some(n) = cookies::content_length(headers) {
        fields.push(("content_length", Value::Int(n)));
    }
    if let Some(ct) = cookies::content_type_value(headers) {
        fields.push(("content_type", ct));
    }
    if let Some(location) = headers.get("location") {
        fields.push(("location", string(location)));
    }
}

fn res_value(res: &ResponseHead) -> Value {
    let mut fields = vec![
        ("status_code", Value::Int(i64::from(res.status))),
        ("cookies", cookies::response_cookies_value(&res.headers)),
    ];
    message_fields(&res.headers, &mut fields);
    map(fields)
}

/// The fields of `req` built only for expressions that read them.
pub(crate) const PARSED_REQ_FIELDS: &[&str] = &["user_agent", "cookies"];

fn req_value(req: &RequestHead, facts: &Facts, parsed: bool) -> Value {
    // `.raw` and the hybrid's string are the same URL: one string, shared.
    let full = Value::String(Arc::new(req.url()));
    let mut url = vec![
        ("scheme", string(&req.scheme)),
        ("host", string(&req.host)),
        ("authority", string(&req.authority())),
        ("path", string(&percent_decode(&req.path, false))),
        ("raw_path", string(&req.path)),
        ("query", string(&req.query)),
        ("uri", string(&req.uri())),
        ("raw", full.clone()),
        ("user_password", string("")),
        ("query_params", multi_map(query_pairs(&req.query))),
        (TEXT, full),
    ];
    if let Some(port) = req.port {
        url.push(("port", Value::Int(i64::from(port))));
    }
    let mut fields = vec![
        ("method", string(&req.method)),
        ("host", string(&req.host)),
        ("url", map(url)),
    ];
    if parsed {
        fields.push((
            "user_agent",
            user_agent_value(req.headers.get("user-agent")),
        ));
        fields.push(("cookies", cookies::request_cookies_value(&req.headers)));
    }
    if let Some(v) = &req.conn.http_version {
        fields.push(("version", string(v)));
    }
    if let Some(t) = cookies::timestamp_ms(facts.start_ms) {
        fields.push(("ts", map(vec![("header_received", t)])));
    }
    message_fields(&req.headers, &mut fields);
    map(fields)
}

fn user_agent_value(header: Option<&str>) -> Value {
    let header = header.unwrap_or("");
    let ua = useragent::parse(header);
    map(vec![
        (TEXT, string(header)),
        ("name", Value::from(ua.name)),
        ("version", Value::from(ua.version)),
        ("os", Value::from(ua.os)),
        ("os_version", Value::from(ua.os_version)),
        ("device", Value::from(ua.device)),
        ("url", Value::from(ua.url)),
        ("is_mobile", Value::Bool(ua.is_mobile)),
        ("is_tablet", Value::Bool(ua.is_tablet)),
        ("is_desktop", Value::Bool(ua.is_desktop)),
        ("is_bot", Value::Bool(ua.is_bot)),
    ])
}

/// Adds `key` when the platform gave a value.
fn opt<S: AsRef<str>>(fields: &mut Vec<(&'static str, Value)>, key: &'static str, v: &Option<S>) {
    if let Some(v) = v {
        fields.push((key, string(v.as_ref())));
    }
}

fn conn_value(req: &RequestHead, facts: &Facts) -> Value {
    let c = &req.conn;
    let verdict = facts.ip_intel.lookup(req.client_ip);
    let mut location = Vec::new();
    opt(&mut location, "city", &c.geo.city);
    opt(&mut location, "continent", &c.geo.continent);
    opt(&mut location, "country_code", &c.geo.country_code);
    opt(&mut location, "country", &c.geo.country);
    opt(&mut location, "subdivision", &c.geo.subdivision);
    opt(&mut location, "latitude", &c.geo.latitude);
    opt(&mut location, "longitude", &c.geo.longitude);
    opt(&mut location, "postal_code", &c.geo.postal_code);
    opt(&mut location, "metro_code", &c.geo.metro_code);
    opt(&mut location, "timezone", &c.geo.timezone);
    if let Some(eu) = c.geo.is_eu {
        location.push(("is_eu", Value::Bool(eu)));
    }
    let mut geo = Vec::new();
    opt(&mut geo, "city", &c.geo.city);
    opt(&mut geo, "country_code", &c.geo.country_code);
    opt(&mut geo, "country", &c.geo.country);
    opt(&mut geo, "subdivision", &c.geo.subdivision);
    opt(&mut geo, "latitude", &c.geo.latitude);
    opt(&mut geo, "longitude", &c.geo.longitude);
    let mut asn = Vec::new();
    if let Some(n) = c.asn {
        asn.push(("number", Value::Int(n)));
    }
    opt(&mut asn, "organization", &c.as_organization);
    let client_ip = map(vec![
        (TEXT, string(&req.client_ip.to_string())),
        ("categories", verdict.categories_value()),
        ("is_on_blocklist", Value::Bool(verdict.is_on_blocklist)),
        ("is_tor_node", Value::Bool(verdict.is_tor_node)),
        ("as", map(asn)),
        ("geo", map(vec![("location", map(location))])),
    ]);
    let mut fields = vec![("client_ip", client_ip), ("geo", map(geo))];
    if let Some(port) = c.client_port {
        fields.push(("client_port", Value::Int(i64::from(port))));
    }
    // The port the client connected to: the URL's, else its scheme's.
    if let Some(port) = req.port.or(crate::http::default_port(&req.scheme)) {
        fields.push(("server_port", Value::Int(i64::from(port))));
    }
    opt(&mut fields, "server_region", &c.server_region);
    if let Some(tls) = &c.tls {
        fields.push(("tls", tls_value(tls, &req.host)));
    }
    if let Some(t) = cookies::timestamp_ms(facts.start_ms) {
        fields.push(("ts", map(vec![("start", t)])));
    }
    map(fields)
}

/// `conn.tls`. `sni` is the request's host: Cloudflare does not expose the SNI, and serves a
/// request only when its SNI names a host of the same zone.
fn tls_value(tls: &crate::conn::Tls, host: &str) -> Value {
    let mut fields = vec![
        ("session_resumed", Value::Bool(false)),
        ("negotiated_alpn", string(tls.alpn)),
        ("sni", string(host)),
    ];
    opt(&mut fields, "version", &tls.version);
    opt(&mut fields, "cipher_suite", &tls.cipher_suite);
    opt(&mut fields, "ja4_fingerprint", &tls.ja4);
    if let Some(cert) = &tls.client {
        let mut c = vec![
            ("issuer", dn_value(&cert.issuer)),
            ("subject", dn_value(&cert.subject)),
        ];
        opt(&mut c, "serial_number", &cert.serial_number);
        let mut validity = Vec::new();
        for (key, when) in [
            ("not_before", &cert.not_before),
            ("not_after", &cert.not_after),
        ] {
            if let Some(t) = when
                .as_deref()
                .and_then(crate::conn::cert_time)
                .and_then(cookies::timestamp)
            {
                validity.push((key, t));
            }
        }
        c.push(("validity", map(validity)));
        fields.push(("client", map(c)));
    }
    map(fields)
}

/// A certificate name: the DN as the string, its attributes as lists.
fn dn_value(dn: &str) -> Value {
    // The list-valued attributes; `CN` is `common_name`, a string (below).
    const FIELDS: [(&str, &str); 7] = [
        ("C", "country"),
        ("L", "locality"),
        ("O", "organization"),
        ("OU", "organizational_unit"),
        ("POSTALCODE", "postal_code"),
        ("ST", "province"),
        ("STREET", "street_address"),
    ];
    let attrs = crate::conn::dn_attributes(dn);
    let mut fields = vec![(TEXT, string(dn))];
    // ngrok documents `common_name` as a string, the other attributes as lists.
    let cn = attrs.iter().find(|(k, _)| k == "CN").map_or("", |(_, v)| v);
    fields.push(("common_name", string(cn)));
    for (short, name) in FIELDS {
        let values: Vec<Value> = attrs
            .iter()
            .filter(|(k, _)| k == short)
            .map(|(_, v)| string(v))
            .collect();
        fields.push((name, Value::List(Arc::new(values))));
    }
    map(fields)
}

/// `time.now`: an RFC 3339 string in UTC, to the second (as ngrok documents it).
fn time_value(now_ms: u64) -> Value {
    let now = chrono::DateTime::from_timestamp_millis(i64::try_from(now_ms).unwrap_or(0))
        .unwrap_or_default();
    map(vec![(
        "now",
        Value::from(now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
    )])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoding() {
        assert_eq!(percent_decode("a%20b+c", true), "a b c");
        assert_eq!(percent_decode("a%20b+c", false), "a b+c");
        assert_eq!(percent_decode("100%", false), "100%");
        assert_eq!(percent_decode("%zz%4", false), "%zz%4");
        assert_eq!(percent_decode("%41", false), "A");
        let pairs: Vec<_> = query_pairs("a=1&b=x%26y&a=2&flag").collect();
        assert_eq!(pairs[1], ("b".into(), "x&y".into()));
        assert_eq!(pairs[3], ("flag".into(), "".into()));
    }

    #[test]
    fn endpoint_info_from_urls() {
        let e = EndpointInfo::new("api", "https://API.acme.example");
        assert_eq!((e.host.as_str(), e.port), ("api.acme.example", Some(443)));
        let e = EndpointInfo::new("i", "http://catalog-eks.internal:8080/x");
        assert_eq!((e.protocol.as_str(), e.port), ("http", Some(8080)));
        let e = EndpointInfo::new("v6", "https://[2001:db8::1]:8443");
        let Value::Map(m) = e.value() else { panic!() };
        assert_eq!(
            m.map.get(&Key::from("addr")),
            Some(&Value::from("[2001:db8::1]:8443"))
        );
    }

    /// A rate-limit key reads only the address; a later rule reading more of `conn` still
    /// gets all of it in the same scope.
    #[test]
    fn conn_is_built_minimal_then_whole() {
        let mut head = RequestHead::from_url(
            "GET",
            "https://a.example/",
            Headers::new(),
            "192.0.2.1".parse().unwrap(),
        )
        .unwrap();
        head.conn = Arc::new(crate::conn::ConnFacts::from_cf(
            &serde_json::json!({"colo": "FRA"}),
        ));
        let scope = Scope::new(&head, None, None, Arc::default());
        let key = super::super::Expr::compile("conn.client_ip").unwrap();
        assert!(key.needs.conn_ip && !key.needs.conn);
        assert_eq!(key.eval(&scope).unwrap(), Value::from("192.0.2.1"));
        let colo = super::super::Expr::compile("conn.server_region").unwrap();
        assert_eq!(colo.eval(&scope).unwrap(), Value::from("FRA"));
        assert_eq!(key.eval(&scope).unwrap(), Value::from("192.0.2.1"));
    }
}
