//! A small static type checker for policy CEL (cel 0.15 has none): ngrok's variables (reference
//! §3.2), its functions and macros (§3.3) and CEL's standard ones, checked over the parsed
//! expression before anything is uploaded.
//!
//! It is conservative: a problem is reported only when the types involved are known. Anything
//! read from a map, `vars.*`, JSON, or an action's results is `dyn` and passes.

use crate::exchange::Phase;
use cel::common::ast::{operators as op, Expr, IdedExpr, LiteralValue};

/// A static type.
#[derive(Clone, Debug, PartialEq)]
pub enum Ty {
    Dyn,
    Null,
    Bool,
    Int,
    Uint,
    Double,
    Str,
    Bytes,
    Timestamp,
    Duration,
    /// A type name used as a value (`type(x) == string`).
    Type,
    List(Box<Ty>),
    /// A map with string keys and values of this type.
    Map(Box<Ty>),
    Obj(&'static Obj),
}

/// One of ngrok's object-valued variables.
#[derive(Debug)]
pub struct Obj {
    /// How the object is named in messages (`req.url`).
    pub name: &'static str,
    pub fields: &'static [(&'static str, F)],
    /// "Hybrid" variables (§3.2) are also their string value (`req.url == '...'`).
    pub string_like: bool,
    /// Unlisted fields are allowed (and `dyn`).
    pub open: bool,
}

/// Objects are static: one object is equal only to itself.
impl PartialEq for Obj {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self, other)
    }
}

/// A field's type in the static schema.
#[derive(Clone, Copy, Debug)]
pub enum F {
    Dyn,
    Bool,
    Int,
    Double,
    Str,
    Timestamp,
    Duration,
    List(&'static F),
    Map(&'static F),
    Obj(&'static Obj),
    /// Documented by ngrok, but the platform cannot fill it: never set at run time, and the
    /// checker warns where a policy reads it (docs/variables.md lists why, per variable).
    Absent(&'static F),
}

impl F {
    pub fn ty(&self) -> Ty {
        match self {
            F::Absent(f) => f.ty(),
            F::Dyn => Ty::Dyn,
            F::Bool => Ty::Bool,
            F::Int => Ty::Int,
            F::Double => Ty::Double,
            F::Str => Ty::Str,
            F::Timestamp => Ty::Timestamp,
            F::Duration => Ty::Duration,
            F::List(f) => Ty::List(Box::new(f.ty())),
            F::Map(f) => Ty::Map(Box::new(f.ty())),
            F::Obj(o) => Ty::Obj(o),
        }
    }
}

impl Ty {
    /// How the type is named in messages.
    pub fn name(&self) -> String {
        match self {
            Ty::Dyn => "dyn".into(),
            Ty::Null => "null".into(),
            Ty::Bool => "bool".into(),
            Ty::Int => "int".into(),
            Ty::Uint => "uint".into(),
            Ty::Double => "double".into(),
            Ty::Str => "string".into(),
            Ty::Bytes => "bytes".into(),
            Ty::Timestamp => "timestamp".into(),
            Ty::Duration => "duration".into(),
            Ty::Type => "type".into(),
            Ty::List(t) => format!("list({})", t.name()),
            Ty::Map(t) => format!("map(string, {})", t.name()),
            Ty::Obj(o) if o.string_like => "string".into(),
            Ty::Obj(_) => "map".into(),
        }
    }

    /// The type for operators: hybrid objects are strings, other objects maps.
    fn plain(&self) -> Ty {
        match self {
            Ty::Obj(o) if o.string_like => Ty::Str,
            Ty::Obj(_) => Ty::Map(Box::new(Ty::Dyn)),
            t => t.clone(),
        }
    }

    fn is_dyn(&self) -> bool {
        matches!(self, Ty::Dyn)
    }

    fn numeric(&self) -> bool {
        matches!(self, Ty::Int | Ty::Uint | Ty::Double)
    }
}

/// Whether two known types could ever be equal (numbers compare across kinds, `null` with
/// anything: cel-go allows both at run time).
fn comparable(a: &Ty, b: &Ty) -> bool {
    let (a, b) = (a.plain(), b.plain());
    match (&a, &b) {
        (Ty::Dyn, _) | (_, Ty::Dyn) | (Ty::Null, _) | (_, Ty::Null) => true,
        _ if a.numeric() && b.numeric() => true,
        (Ty::List(x), Ty::List(y)) => comparable(x, y),
        (Ty::Map(_), Ty::Map(_)) => true,
        _ => std::mem::discriminant(&a) == std::mem::discriminant(&b),
    }
}

// ---- ngrok's variables (§3.2) ----

const S: F = F::Str;
const LS: F = F::List(&F::Str);
const MLS: F = F::Map(&LS);

static TS_REQ: Obj = Obj {
    name: "req.ts",
    fields: &[
        ("header_received", F::Timestamp),
        // Policies run before the body is read (it streams to the upstream).
        ("body_received", F::Absent(&F::Timestamp)),
    ],
    string_like: false,
    open: false,
};
static URL: Obj = Obj {
    name: "req.url",
    fields: &[
        ("scheme", S),
        ("host", S),
        ("authority", S),
        ("path", S),
        ("raw_path", S),
        ("query", S),
        ("uri", S),
        ("raw", S),
        ("user_password", S),
        ("port", F::Int),
        ("query_params", MLS),
    ],
    string_like: true,
    open: false,
};
static CONTENT_TYPE: Obj = Obj {
    name: "content_type",
    fields: &[("parameters", F::Map(&F::Str)), ("raw", S)],
    string_like: true,
    open: false,
};
static USER_AGENT: Obj = Obj {
    name: "req.user_agent",
    fields: &[
        ("name", S),
        ("version", S),
        ("os", S),
        ("os_version", S),
        ("device", S),
        ("url", S),
        ("is_mobile", F::Bool),
        ("is_tablet", F::Bool),
        ("is_desktop", F::Bool),
        ("is_bot", F::Bool),
    ],
    string_like: true,
    open: false,
};
/// A cookie (request cookies have name and value; response cookies the attributes too).
pub static COOKIE: Obj = Obj {
    name: "cookie",
    fields: &[
        ("name", S),
        ("value", S),
        ("domain", S),
        ("path", S),
        ("expires", F::Timestamp),
        ("max_age", F::Duration),
        ("secure", F::Bool),
        ("http_only", F::Bool),
        ("same_site", S),
        ("unparsed_attributes", F::Map(&F::Dyn)),
    ],
    string_like: false,
    open: false,
};
const COOKIES: F = F::Map(&F::List(&F::Obj(&COOKIE)));

static REQ: Obj = Obj {
    name: "req",
    fields: &[
        ("method", S),
        ("host", S),
        ("version", S),
        ("headers", MLS),
        ("trailers", MLS),
        ("cookies", COOKIES),
        ("content_encoding", LS),
        ("content_length", F::Int),
        ("content_type", F::Obj(&CONTENT_TYPE)),
        ("location", S),
        ("url", F::Obj(&URL)),
        ("user_agent", F::Obj(&USER_AGENT)),
        ("ts", F::Obj(&TS_REQ)),
    ],
    string_like: false,
    open: false,
};
static RES: Obj = Obj {
    name: "res",
    fields: &[
        ("status_code", F::Int),
        ("headers", MLS),
        ("trailers", MLS),
        ("content_encoding", LS),
        ("content_length", F::Int),
        ("content_type", F::Obj(&CONTENT_TYPE)),
        ("location", S),
        ("cookies", COOKIES),
    ],
    string_like: false,
    open: false,
};
/// Cloudflare gives no accuracy radius.
const NO_RADIUS: F = F::Absent(&S);
static GEO: Obj = Obj {
    name: "conn.geo",
    fields: &[
        ("city", S),
        ("country", S),
        ("country_code", S),
        ("subdivision", S),
        ("latitude", S),
        ("longitude", S),
        ("radius", NO_RADIUS),
    ],
    string_like: false,
    open: false,
};
static LOCATION: Obj = Obj {
    name: "geo.location",
    fields: &[
        ("city", S),
        ("continent", S),
        ("country", S),
        ("country_code", S),
        ("is_eu", F::Bool),
        ("latitude", S),
        ("longitude", S),
        ("metro_code", S),
        ("postal_code", S),
        ("radius", NO_RADIUS),
        ("subdivision", S),
        ("timezone", S),
    ],
    string_like: false,
    open: false,
};
static IP_GEO: Obj = Obj {
    name: "ip.geo",
    fields: &[
        ("location", F::Obj(&LOCATION)),
        // Cloudflare locates the address; it does not say where it is registered.
        ("registered_location", F::Absent(&F::Obj(&LOCATION))),
    ],
    string_like: false,
    open: false,
};
static AS: Obj = Obj {
    name: "ip.as",
    fields: &[("number", F::Int), ("organization", S)],
    string_like: false,
    open: false,
};
/// The variables only an IP-intelligence list in the bundle fills.
pub const IP_INTEL_VARIABLES: &[&str] = &[
    "conn.client_ip.categories",
    "conn.client_ip.is_on_blocklist",
    "conn.client_ip.is_tor_node",
];

static IP: Obj = Obj {
    name: "conn.client_ip",
    fields: &[
        ("categories", LS),
        ("is_on_blocklist", F::Bool),
        ("is_tor_node", F::Bool),
        ("as", F::Obj(&AS)),
        ("geo", F::Obj(&IP_GEO)),
    ],
    string_like: true,
    open: false,
};
/// A certificate's issuer or subject: its DN as the string, its attributes as fields.
const DN_FIELDS: &[(&str, F)] = &[
    ("common_name", S),
    ("country", LS),
    ("locality", LS),
    ("organization", LS),
    ("organizational_unit", LS),
    ("postal_code", LS),
    ("province", LS),
    ("street_address", LS),
];
static ISSUER: Obj = Obj {
    name: "conn.tls.client.issuer",
    fields: DN_FIELDS,
    string_like: true,
    open: false,
};
static SUBJECT: Obj = Obj {
    name: "conn.tls.client.subject",
    fields: DN_FIELDS,
    string_like: true,
    open: false,
};
static CERT: Obj = Obj {
    name: "conn.tls.client",
    fields: &[
        ("issuer", F::Obj(&ISSUER)),
        ("subject", F::Obj(&SUBJECT)),
        // `cf.tlsClientAuth` carries the names, serial and dates, not the certificate itself.
        ("san", F::Absent(&F::Dyn)),
        ("serial_number", S),
        ("signature_algorithm", F::Absent(&S)),
        ("validity", F::Dyn),
        ("extensions", F::Absent(&F::List(&F::Dyn))),
        ("pem", F::Absent(&S)),
    ],
    string_like: false,
    open: false,
};
static TLS: Obj = Obj {
    name: "conn.tls",
    fields: &[
        ("cipher_suite", S),
        ("ja4_fingerprint", S),
        ("negotiated_alpn", S),
        ("sni", S),
        ("version", S),
        ("session_resumed", F::Bool),
        ("client", F::Obj(&CERT)),
        // Cloudflare's edge certificate is not visible to a Worker.
        ("server", F::Absent(&F::Obj(&CERT))),
    ],
    string_like: false,
    open: false,
};
static CONN_TS: Obj = Obj {
    name: "conn.ts",
    // The connection outlives the Worker's view of it: no end time.
    fields: &[("start", F::Timestamp), ("end", F::Absent(&F::Timestamp))],
    string_like: false,
    open: false,
};
static CONN: Obj = Obj {
    name: "conn",
    fields: &[
        ("client_ip", F::Obj(&IP)),
        // A Worker sees neither its own address nor the client's port nor byte counts.
        ("server_ip", F::Absent(&F::Obj(&IP))),
        ("client_port", F::Absent(&F::Int)),
        ("server_port", F::Int),
        ("server_region", S),
        ("bytes_in", F::Absent(&F::Int)),
        ("bytes_out", F::Absent(&F::Int)),
        ("ts", F::Obj(&CONN_TS)),
        ("geo", F::Obj(&GEO)),
        ("tls", F::Obj(&TLS)),
        // There is no Kubernetes operator in front of a Worker.
        ("k8s", F::Absent(&F::Dyn)),
    ],
    string_like: false,
    open: false,
};
static ENDPOINT: Obj = Obj {
    name: "endpoint",
    fields: &[
        ("id", S),
        ("url", S),
        ("host", S),
        ("addr", S),
        ("protocol", S),
        ("port", F::Int),
    ],
    string_like: false,
    open: false,
};
static TIME: Obj = Obj {
    name: "time",
    fields: &[("now", S)],
    string_like: false,
    open: false,
};
static VARS: Obj = Obj {
    name: "vars",
    fields: &[],
    string_like: false,
    open: true,
};
/// `actions.ngrok.<action>`: one entry per action type that publishes result variables, from
/// the action table (`ActionSpec::results`; dashes as underscores, §2.7).
static NGROK_RESULTS: Obj = Obj {
    name: "actions.ngrok",
    fields: &RESULT_FIELDS,
    string_like: false,
    open: false,
};
const RESULT_COUNT: usize = {
    let (mut i, mut n) = (0, 0);
    while i < crate::actions::ACTIONS.len() {
        if crate::actions::ACTIONS[i].results.is_some() {
            n += 1;
        }
        i += 1;
    }
    n
};
static RESULT_FIELDS: [(&str, F); RESULT_COUNT] = {
    let mut fields = [("", F::Dyn); RESULT_COUNT];
    let (mut i, mut n) = (0, 0);
    while i < crate::actions::ACTIONS.len() {
        if let Some(key) = crate::actions::ACTIONS[i].results {
            fields[n] = (key, result_shape(key));
            n += 1;
        }
        i += 1;
    }
    fields
};
/// The typed shape of an action's results, where it is known; others are `dyn`.
const fn result_shape(key: &str) -> F {
    if key.len() == 10 && eq_bytes(key.as_bytes(), b"basic_auth") {
        F::Obj(&BASIC_AUTH_RESULTS)
    } else {
        F::Dyn
    }
}

const fn eq_bytes(a: &[u8], b: &[u8]) -> bool {
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// `actions.ngrok.basic_auth`: ngrok's documented `credentials.{presented, username,
/// authorized}`, and `error` (set when a credential's interpolation fails).
static BASIC_AUTH_RESULTS: Obj = Obj {
    name: "actions.ngrok.basic_auth",
    fields: &[
        ("credentials", F::Obj(&BASIC_AUTH_CREDENTIALS)),
        ("error", F::Obj(&BASIC_AUTH_ERROR)),
    ],
    string_like: false,
    open: false,
};
static BASIC_AUTH_CREDENTIALS: Obj = Obj {
    name: "actions.ngrok.basic_auth.credentials",
    fields: &[
        ("presented", F::Bool),
        ("username", F::Str),
        ("authorized", F::Bool),
    ],
    string_like: false,
    open: false,
};
static BASIC_AUTH_ERROR: Obj = Obj {
    name: "actions.ngrok.basic_auth.error",
    fields: &[("code", F::Str), ("message", F::Str)],
    string_like: false,
    open: false,
};

static ACTIONS: Obj = Obj {
    name: "actions",
    fields: &[("ngrok", F::Obj(&NGROK_RESULTS))],
    string_like: false,
    open: true,
};

/// The variable roots.
pub const ROOTS: &[(&str, &Obj)] = &[
    ("req", &REQ),
    ("res", &RES),
    ("conn", &CONN),
    ("endpoint", &ENDPOINT),
    ("time", &TIME),
    ("vars", &VARS),
    ("actions", &ACTIONS),
];

/// Function namespaces (`base64.decode(...)`): the part before the dot is not a variable.
const NAMESPACES: &[&str] = &[
    "base64",
    "basic_auth",
    "json",
    "queryString",
    "url",
    "hash",
    "rand",
    "secrets",
    "strings",
    "lists",
    // Not documented by ngrok nor provided here: named so the message is "unknown function".
    "math",
    "sets",
];

// ---- functions (§3.3 and standard CEL) ----

/// How a function is called.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Style {
    /// `f(x)`.
    Global,
    /// `x.f()`.
    Method,
    /// Either.
    Both,
}

/// What the receiver (or, for globals, the first argument) must be.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Recv {
    Any,
    Str,
    List,
    Time,
}

struct Func {
    name: &'static str,
    style: Style,
    /// Allowed argument counts, the receiver not counted.
    arity: &'static [usize],
    recv: Recv,
    ret: F,
    /// Reads the response: only in on_http_response.
    response: bool,
}

const fn f(name: &'static str, style: Style, arity: &'static [usize], recv: Recv, ret: F) -> Func {
    Func {
        name,
        style,
        arity,
        recv,
        ret,
        response: false,
    }
}

const fn res_f(name: &'static str, ret: F) -> Func {
    Func {
        name,
        style: Style::Global,
        arity: &[1],
        recv: Recv::Any,
        ret,
        response: true,
    }
}

use Recv as R;
use Style::{Both, Global, Method};

const TIME_GETTERS: [&str; 10] = [
    "getDate",
    "getDayOfMonth",
    "getDayOfWeek",
    "getDayOfYear",
    "getFullYear",
    "getHours",
    "getMinutes",
    "getSeconds",
    "getMilliseconds",
    "getMonth",
];

static FUNCS: &[Func] = &[
    // ngrok HTTP helpers
    f("getReqHeader", Global, &[1], R::Str, LS),
    f("hasReqHeader", Global, &[1], R::Str, F::Bool),
    f("getReqCookie", Global, &[1], R::Str, F::Obj(&COOKIE)),
    f("hasReqCookie", Global, &[1], R::Str, F::Bool),
    f("getQueryParam", Global, &[1], R::Str, LS),
    f("hasQueryParam", Global, &[1], R::Str, F::Bool),
    res_f("getResHeader", LS),
    res_f("hasResHeader", F::Bool),
    res_f("getResCookie", F::Obj(&COOKIE)),
    res_f("hasResCookie", F::Bool),
    // IP
    f("inCidrRange", Global, &[2], R::Str, F::Bool),
    f("inCidrRanges", Global, &[2], R::Str, F::Bool),
    f("isPrivateIp", Method, &[0], R::Str, F::Bool),
    // encoding
    f("base64.decode", Global, &[1], R::Any, F::Dyn),
    f("base64.encode", Global, &[1], R::Any, S),
    f("encodeBase64", Method, &[0], R::Str, S),
    f("decodeBase64", Method, &[0], R::Str, S),
    f("basic_auth.encode", Global, &[2], R::Str, S),
    f("json.decode", Global, &[1], R::Str, F::Dyn),
    f("json.encode", Global, &[1], R::Any, S),
    f("decodeJson", Method, &[0], R::Str, F::Dyn),
    f("isJson", Method, &[0], R::Str, F::Bool),
    f("encodeJson", Method, &[0], R::Any, S),
    // Values are strings, as ngrok's page shows them (`{a:b,c:d}`, `...["q"] == "hello"`).
    f("queryString.decode", Global, &[1], R::Str, F::Map(&S)),
    f("queryString.encode", Global, &[1], R::Any, S),
    f("decodeQueryString", Method, &[0], R::Str, F::Map(&S)),
    f("isQueryString", Method, &[0], R::Str, F::Bool),
    f("encodeQueryString", Method, &[0], R::Any, S),
    f("url.escape", Global, &[1], R::Str, S),
    f("url.unescape", Global, &[1], R::Str, S),
    f("url.parse", Global, &[1], R::Str, F::Dyn),
    f("escapeUrl", Method, &[0], R::Str, S),
    f("unescapeUrl", Method, &[0], R::Str, S),
    f("parseUrl", Method, &[0], R::Str, F::Dyn),
    f("isURL", Method, &[0], R::Str, F::Bool),
    // hashing (of strings or bytes)
    f("hash.crc32", Global, &[1, 2], R::Any, S),
    f("hash.crc64", Global, &[1, 2], R::Any, S),
    f("hash.md5", Global, &[1, 2], R::Any, S),
    f("hash.sha1", Global, &[1, 2], R::Any, S),
    f("hash.sha256", Global, &[1, 2], R::Any, S),
    f("hash.sha512", Global, &[1, 2], R::Any, S),
    f("hash.xxhash64", Global, &[1, 2], R::Any, S),
    f("crc32", Method, &[0, 1], R::Any, S),
    f("crc64", Method, &[0, 1], R::Any, S),
    f("md5", Method, &[0, 1], R::Any, S),
    f("sha1", Method, &[0, 1], R::Any, S),
    f("sha256", Method, &[0, 1], R::Any, S),
    f("sha512", Method, &[0, 1], R::Any, S),
    f("xxhash64", Method, &[0, 1], R::Any, S),
    // strings
    f("matches", Both, &[1], R::Str, F::Bool),
    f("startsWith", Method, &[1], R::Str, F::Bool),
    f("endsWith", Method, &[1], R::Str, F::Bool),
    f("contains", Method, &[1], R::Str, F::Bool),
    f("charAt", Method, &[1], R::Str, S),
    f("indexOf", Method, &[1, 2], R::Str, F::Int),
    f("lastIndexOf", Method, &[1, 2], R::Str, F::Int),
    f("format", Method, &[1], R::Str, S),
    f("split", Method, &[0, 1, 2], R::Str, LS),
    f("replace", Method, &[2, 3], R::Str, S),
    f("substring", Method, &[1, 2], R::Str, S),
    f("trim", Method, &[0], R::Str, S),
    f("lower", Method, &[0], R::Str, S),
    f("upper", Method, &[0], R::Str, S),
    f("lowerAscii", Method, &[0], R::Str, S),
    f("upperAscii", Method, &[0], R::Str, S),
    f("strings.quote", Global, &[1], R::Str, S),
    f("join", Method, &[0, 1], R::List, S),
    // lists
    f("slice", Method, &[2], R::List, F::Dyn),
    f("flatten", Method, &[0, 1], R::List, F::Dyn),
    f("sort", Method, &[0], R::List, F::Dyn),
    f("sortBy", Method, &[2], R::List, F::Dyn),
    // What the parser expands `sortBy`, two-variable comprehensions and `matches` into.
    f("@sortByAssociatedKeys", Method, &[1], R::List, F::Dyn),
    f("@ngrok_keys", Global, &[1], R::Any, F::Dyn),
    f("@ngrok_pairs_to_map", Global, &[1], R::Any, F::Dyn),
    f("@ngrok_matches", Global, &[2], R::Str, F::Bool),
    f("distinct", Method, &[0], R::List, F::Dyn),
    f("lists.range", Global, &[1], R::Any, F::List(&F::Int)),
    // reverse works on strings and lists
    f("reverse", Method, &[0], R::Any, F::Dyn),
    // size on anything sized
    f("size", Both, &[0], R::Any, F::Int),
    // conversions
    f("int", Global, &[1], R::Any, F::Int),
    f("uint", Global, &[1], R::Any, F::Dyn),
    f("double", Global, &[1], R::Any, F::Double),
    f("string", Global, &[1], R::Any, S),
    f("bytes", Global, &[1], R::Any, F::Dyn),
    f("bool", Global, &[1], R::Any, F::Bool),
    f("timestamp", Global, &[1], R::Any, F::Timestamp),
    f("duration", Global, &[1], R::Any, F::Duration),
    f("dyn", Global, &[1], R::Any, F::Dyn),
    f("type", Global, &[1], R::Any, F::Dyn),
    // time getters, optional time zone
    f(TIME_GETTERS[0], Method, &[0, 1], R::Time, F::Int),
    f(TIME_GETTERS[1], Method, &[0, 1], R::Time, F::Int),
    f(TIME_GETTERS[2], Method, &[0, 1], R::Time, F::Int),
    f(TIME_GETTERS[3], Method, &[0, 1], R::Time, F::Int),
    f(TIME_GETTERS[4], Method, &[0, 1], R::Time, F::Int),
    f(TIME_GETTERS[5], Method, &[0, 1], R::Time, F::Int),
    f(TIME_GETTERS[6], Method, &[0, 1], R::Time, F::Int),
    f(TIME_GETTERS[7], Method, &[0, 1], R::Time, F::Int),
    f(TIME_GETTERS[8], Method, &[0, 1], R::Time, F::Int),
    f(TIME_GETTERS[9], Method, &[0, 1], R::Time, F::Int),
    // random, secrets
    f("rand.double", Global, &[0], R::Any, F::Double),
    f("rand.int", Global, &[0, 2], R::Any, F::Int),
    f("secrets.get", Global, &[2], R::Str, S),
];

/// One function the checker accepts: tests hold the runtime to this same table
/// (`tests/ngrok_reference.rs`), so the checker never passes what the runtime lacks.
#[derive(Clone, Copy, Debug)]
pub struct FunctionInfo {
    pub name: &'static str,
    /// Callable as `f(x)`.
    pub global: bool,
    /// Callable as `x.f()`.
    pub method: bool,
    /// Allowed argument counts, the receiver (or a global form's first argument, for functions
    /// that are both) not counted.
    pub arity: &'static [usize],
    /// Only in on_http_response.
    pub response_only: bool,
}

/// Every function the checker accepts (including the internal names macros expand into, which
/// start with `@`).
pub fn documented_functions() -> impl Iterator<Item = FunctionInfo> {
    FUNCS.iter().map(|f| FunctionInfo {
        name: f.name,
        global: matches!(f.style, Global | Both),
        method: matches!(f.style, Method | Both),
        arity: f.arity,
        response_only: f.response,
    })
}

// ---- the checker ----

/// One problem: a message, an optional hint, and the byte range in the expression.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub message: String,
    pub hint: Option<String>,
    pub span: (u32, u32),
    /// A warning (the policy loads), not an error: a documented variable this platform
    /// cannot fill.
    pub warning: bool,
}

/// Checks one parsed expression; returns its static type and the problems found.
///
/// Also returns the reads (a `has()` test included) of the variables only an IP-intelligence
/// list fills (`conn.client_ip.categories`, `.is_on_blocklist`, `.is_tor_node`): whether they are worth a warning depends on the bundle, which the caller knows.
pub fn check(
    expr: &IdedExpr,
    info: &cel::common::ast::SourceInfo,
    phase: Phase,
) -> (Ty, Vec<Problem>, Vec<IpIntelRead>) {
    let mut c = Checker {
        info,
        phase,
        scopes: Vec::new(),
        problems: Vec::new(),
        absent_reads: Vec::new(),
        absent_tested: Vec::new(),
        ip_intel: Vec::new(),
    };
    let ty = c.expr(expr);
    // An expression that tests an absent variable with `has()` anywhere (`has(x) && x > 1`) is
    // written for its absence: its reads of that variable are not warned about.
    for (name, problem) in std::mem::take(&mut c.absent_reads) {
        if !c.absent_tested.contains(&name) {
            c.problems.push(problem);
        }
    }
    (ty, c.problems, c.ip_intel)
}

/// A read of a variable only an IP-intelligence list fills: its full name.
#[derive(Debug, Clone, PartialEq)]
pub struct IpIntelRead {
    pub variable: &'static str,
}

struct Checker<'a> {
    info: &'a cel::common::ast::SourceInfo,
    phase: Phase,
    /// Comprehension variables in scope, innermost last.
    scopes: Vec<(String, Ty)>,
    problems: Vec<Problem>,
    /// Warnings for reads of variables the platform never sets, by variable; kept unless
    /// `absent_tested` names it.
    absent_reads: Vec<(String, Problem)>,
    /// The never-set variables the expression tests with `has()`.
    absent_tested: Vec<String>,
    /// Reads of the IP-intelligence variables, once each.
    ip_intel: Vec<IpIntelRead>,
}

impl Checker<'_> {
    /// The byte range an expression covers: its own token and all of its children's.
    fn span(&self, e: &IdedExpr) -> (u32, u32) {
        extent(self.info, e)
    }

    fn report(&mut self, at: &IdedExpr, message: String, hint: Option<String>) {
        let span = self.span(at);
        self.problems.push(Problem {
            message,
            hint,
            span,
            warning: false,
        });
    }

    /// Records a read of `object.field` when only an IP-intelligence list fills it.
    fn note_ip_intel(&mut self, object: &str, field: &str) {
        let Some(variable) = IP_INTEL_VARIABLES
            .iter()
            .find(|v| v.strip_prefix(object).and_then(|f| f.strip_prefix('.')) == Some(field))
        else {
            return;
        };
        if !self.ip_intel.iter().any(|r| r.variable == *variable) {
            self.ip_intel.push(IpIntelRead { variable });
        }
    }

    fn local(&self, name: &str) -> Option<Ty> {
        self.scopes
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, t)| t.clone())
    }

    fn expr(&mut self, e: &IdedExpr) -> Ty {
        match &e.expr {
            Expr::Unspecified => Ty::Dyn,
            Expr::Literal(l) => match l {
                LiteralValue::Boolean(_) => Ty::Bool,
                LiteralValue::Bytes(_) => Ty::Bytes,
                LiteralValue::Double(_) => Ty::Double,
                LiteralValue::Int(_) => Ty::Int,
                LiteralValue::Null => Ty::Null,
                LiteralValue::String(_) => Ty::Str,
                LiteralValue::UInt(_) => Ty::Uint,
            },
            Expr::Ident(name) => self.ident(e, name),
            Expr::Select(s) => {
                let operand = self.expr(&s.operand);
                let ty = self.select(e, &s.operand, &operand, &s.field, s.test);
                if s.test {
                    Ty::Bool
                } else {
                    ty
                }
            }
            Expr::List(l) => {
                let tys: Vec<Ty> = l.elements.iter().map(|x| self.expr(x)).collect();
                let elem = match tys.split_first() {
                    Some((first, rest)) if rest.iter().all(|t| t == first) => first.clone(),
                    _ => Ty::Dyn,
                };
                Ty::List(Box::new(elem))
            }
            Expr::Map(m) => {
                for entry in &m.entries {
                    if let cel::common::ast::EntryExpr::MapEntry(me) = &entry.expr {
                        self.expr(&me.key);
                        self.expr(&me.value);
                    }
                }
                Ty::Map(Box::new(Ty::Dyn))
            }
            Expr::Struct(s) => {
                for entry in &s.entries {
                    if let cel::common::ast::EntryExpr::StructField(sf) = &entry.expr {
                        self.expr(&sf.value);
                    }
                }
                Ty::Dyn
            }
            Expr::Comprehension(c) => {
                let range = self.expr(&c.iter_range);
                let (first, second) = match range.plain() {
                    Ty::List(t) => (Ty::Int, *t),
                    Ty::Map(t) => (Ty::Str, *t),
                    _ => (Ty::Dyn, Ty::Dyn),
                };
                // One variable binds the element (list) or key (map); two bind index/key and value.
                let first_only = match range.plain() {
                    Ty::List(t) => *t,
                    _ => first.clone(),
                };
                let accu = self.expr(&c.accu_init);
                let mark = self.scopes.len();
                match &c.iter_var2 {
                    Some(v2) => {
                        self.scopes.push((c.iter_var.clone(), first));
                        self.scopes.push((v2.clone(), second));
                    }
                    None => self.scopes.push((c.iter_var.clone(), first_only)),
                }
                self.scopes.push((c.accu_var.clone(), accu));
                self.expr(&c.loop_cond);
                let step = self.expr(&c.loop_step);
                // `map`'s accumulator starts as `[]` (list(dyn)): its step says the element type.
                if let Some(slot) = self.scopes.last_mut() {
                    if matches!(slot.1, Ty::List(_)) && matches!(step, Ty::List(_)) {
                        slot.1 = step;
                    }
                }
                let result = self.expr(&c.result);
                self.scopes.truncate(mark);
                result
            }
            Expr::Call(call) => self.call(e, call),
        }
    }

    fn ident(&mut self, e: &IdedExpr, name: &str) -> Ty {
        if let Some(t) = self.local(name) {
            return t;
        }
        if let Some((_, obj)) = ROOTS.iter().find(|(n, _)| *n == name) {
            if name == "res" && self.phase == Phase::Request {
                self.report(
                    e,
                    "`res` is not available in on_http_request: there is no response yet".into(),
                    Some("move this rule to `on_http_response`".into()),
                );
            }
            return Ty::Obj(obj);
        }
        match name {
            "bool" | "int" | "uint" | "double" | "string" | "bytes" | "list" | "map"
            | "null_type" | "type" => return Ty::Type,
            _ => {}
        }
        let mut names: Vec<&str> = ROOTS.iter().map(|(n, _)| *n).collect();
        names.extend(self.scopes.iter().map(|(n, _)| n.as_str()));
        let hint = match crate::source::closest(name, names) {
            Some(c) => format!("did you mean `{c}`?"),
            None => "variables are req, res, conn, endpoint, time, vars and actions".into(),
        };
        self.report(e, format!("unknown variable `{name}`"), Some(hint));
        Ty::Dyn
    }

    fn select(
        &mut self,
        at: &IdedExpr,
        operand_e: &IdedExpr,
        operand: &Ty,
        field: &str,
        test: bool,
    ) -> Ty {
        if let Ty::Obj(obj) = operand {
            self.note_ip_intel(obj.name, field);
        }
        match operand {
            Ty::Obj(obj) => match obj.fields.iter().find(|(n, _)| *n == field) {
                // `has(conn.bytes_in)` is how a policy tests for it: no warning there.
                Some((_, f @ F::Absent(_))) => {
                    let name = format!("{}.{field}", obj.name);
                    if test {
                        self.absent_tested.push(name);
                    } else {
                        let problem = Problem {
                            message: format!(
                                "`{name}` is documented by ngrok, but a Cloudflare Worker cannot \
                                 know it: it is never set here, so reading it fails the expression"
                            ),
                            hint: Some(format!(
                                "guard it with `has({name})`; docs/variables.md says why it is \
                                 missing"
                            )),
                            span: self.span(at),
                            warning: true,
                        };
                        self.absent_reads.push((name, problem));
                    }
                    f.ty()
                }
                Some((_, f)) => f.ty(),
                None if obj.open => Ty::Dyn,
                None => {
                    let hint = match crate::source::closest(field, obj.fields.iter().map(|f| f.0)) {
                        Some(c) => format!("did you mean `{}.{c}`?", obj.name),
                        None => format!(
                            "fields of `{}`: {}",
                            obj.name,
                            obj.fields
                                .iter()
                                .map(|f| f.0)
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    };
                    self.report(
                        at,
                        format!("`{}` has no field `{field}`", obj.name),
                        Some(hint),
                    );
                    Ty::Dyn
                }
            },
            Ty::Map(v) => (**v).clone(),
            Ty::Dyn => Ty::Dyn,
            other => {
                let what = describe(operand_e).unwrap_or_else(|| "this value".into());
                self.report(
                    at,
                    format!("{what} is a {}: it has no field `{field}`", other.name()),
                    None,
                );
                Ty::Dyn
            }
        }
    }

    fn call(&mut self, e: &IdedExpr, call: &cel::common::ast::CallExpr) -> Ty {
        let name = call.func_name.as_str();
        // A namespaced function (`base64.decode(x)`) parses as a method on an identifier.
        if let Some(target) = &call.target {
            if let Expr::Ident(ns) = &target.expr {
                if NAMESPACES.contains(&ns.as_str()) && self.local(ns).is_none() {
                    let full = format!("{ns}.{name}");
                    let args: Vec<Ty> = call.args.iter().map(|a| self.expr(a)).collect();
                    return self.function(e, &full, None, &args, &call.args);
                }
            }
        }
        match name {
            op::LOGICAL_AND | op::LOGICAL_OR | op::LOGICAL_NOT => {
                let sym = match name {
                    op::LOGICAL_AND => "&&",
                    op::LOGICAL_OR => "||",
                    _ => "!",
                };
                for a in &call.args {
                    let t = self.expr(a);
                    self.want_bool(a, &t, &format!("the operands of `{sym}`"));
                }
                Ty::Bool
            }
            op::NOT_STRICTLY_FALSE => {
                for a in &call.args {
                    self.expr(a);
                }
                Ty::Bool
            }
            op::CONDITIONAL => {
                let cond = self.expr(&call.args[0]);
                self.want_bool(&call.args[0], &cond, "the condition of `?:`");
                let a = self.expr(&call.args[1]);
                let b = self.expr(&call.args[2]);
                if a == b {
                    a
                } else {
                    Ty::Dyn
                }
            }
            op::EQUALS | op::NOT_EQUALS => {
                let (a, b) = self.two(call);
                if !comparable(&a, &b) {
                    let hint = conversion_hint(&a, &b);
                    let sym = if name == op::EQUALS { "==" } else { "!=" };
                    self.report(
                        e,
                        format!(
                            "`{sym}` compares a {} with a {}: this is never true and ngrok rejects it",
                            a.name(),
                            b.name()
                        ),
                        hint,
                    );
                }
                Ty::Bool
            }
            op::LESS | op::LESS_EQUALS | op::GREATER | op::GREATER_EQUALS => {
                let (a, b) = self.two(call);
                let ordered = |t: &Ty| {
                    matches!(
                        t.plain(),
                        Ty::Dyn
                            | Ty::Int
                            | Ty::Uint
                            | Ty::Double
                            | Ty::Str
                            | Ty::Bytes
                            | Ty::Bool
                            | Ty::Timestamp
                            | Ty::Duration
                    )
                };
                if !ordered(&a) || !ordered(&b) || !comparable(&a, &b) {
                    self.report(
                        e,
                        format!("cannot order a {} and a {}", a.name(), b.name()),
                        conversion_hint(&a, &b),
                    );
                }
                Ty::Bool
            }
            op::ADD => {
                let (a, b) = self.two(call);
                match (a.plain(), b.plain()) {
                    (Ty::Dyn, t) | (t, Ty::Dyn) => match t {
                        Ty::List(_) => Ty::List(Box::new(Ty::Dyn)),
                        Ty::Str | Ty::Bytes | Ty::Int | Ty::Uint | Ty::Double => t,
                        _ => Ty::Dyn,
                    },
                    (Ty::Str, Ty::Str) => Ty::Str,
                    (Ty::Bytes, Ty::Bytes) => Ty::Bytes,
                    (Ty::List(x), Ty::List(y)) => {
                        Ty::List(Box::new(if x == y || y.is_dyn() { *x } else { Ty::Dyn }))
                    }
                    (x, y) if x.numeric() && x == y => x,
                    (Ty::Timestamp, Ty::Duration) | (Ty::Duration, Ty::Timestamp) => Ty::Timestamp,
                    (Ty::Duration, Ty::Duration) => Ty::Duration,
                    (x, y) => {
                        let hint = if matches!(x, Ty::Str) || matches!(y, Ty::Str) {
                            Some(
                                "convert with `string(...)` first: CEL does not convert implicitly"
                                    .into(),
                            )
                        } else {
                            conversion_hint(&x, &y)
                        };
                        self.report(
                            e,
                            format!("cannot add a {} and a {}", a.name(), b.name()),
                            hint,
                        );
                        Ty::Dyn
                    }
                }
            }
            op::SUBSTRACT | op::MULTIPLY | op::DIVIDE | op::MODULO => {
                let (a, b) = self.two(call);
                let sym = match name {
                    op::SUBSTRACT => "-",
                    op::MULTIPLY => "*",
                    op::DIVIDE => "/",
                    _ => "%",
                };
                match (a.plain(), b.plain()) {
                    (Ty::Dyn, t) | (t, Ty::Dyn) if t.numeric() || t.is_dyn() => t,
                    (x, y) if x.numeric() && x == y => x,
                    (Ty::Timestamp, Ty::Timestamp) if sym == "-" => Ty::Duration,
                    (Ty::Timestamp, Ty::Duration) if sym == "-" => Ty::Timestamp,
                    (Ty::Duration, Ty::Duration) if sym == "-" => Ty::Duration,
                    (Ty::Dyn, _) | (_, Ty::Dyn) => Ty::Dyn,
                    (x, y) => {
                        let hint = if matches!(x, Ty::Str) || matches!(y, Ty::Str) {
                            Some("arithmetic needs numbers: convert with `int(...)` or `double(...)`".into())
                        } else {
                            conversion_hint(&x, &y)
                        };
                        self.report(
                            e,
                            format!(
                                "`{sym}` is not defined for a {} and a {}",
                                a.name(),
                                b.name()
                            ),
                            hint,
                        );
                        Ty::Dyn
                    }
                }
            }
            op::NEGATE => {
                let t = self.expr(&call.args[0]);
                if !(t.numeric() || t.is_dyn() || matches!(t, Ty::Duration)) {
                    self.report(e, format!("cannot negate a {}", t.name()), None);
                }
                t
            }
            op::INDEX | op::OPT_INDEX => {
                let (a, b) = self.two(call);
                match a.plain() {
                    Ty::List(t) => {
                        if !(b.numeric() || b.is_dyn()) {
                            self.report(
                                &call.args[1],
                                format!("a list index must be an int, not a {}", b.name()),
                                None,
                            );
                        }
                        *t
                    }
                    Ty::Map(_) if matches!(a, Ty::Obj(_)) => {
                        // `req['method']` reads the field like `req.method`.
                        match (&a, &call.args[1].expr) {
                            (Ty::Obj(obj), Expr::Literal(LiteralValue::String(s))) => {
                                let s: &str = s.inner();
                                obj.fields
                                    .iter()
                                    .find(|(n, _)| *n == s)
                                    .map_or(Ty::Dyn, |(_, f)| f.ty())
                            }
                            _ => Ty::Dyn,
                        }
                    }
                    Ty::Map(v) => {
                        if !matches!(b.plain(), Ty::Str | Ty::Dyn) {
                            self.report(
                                &call.args[1],
                                format!("this map's keys are strings, not {}", b.name()),
                                None,
                            );
                        }
                        *v
                    }
                    Ty::Dyn => Ty::Dyn,
                    Ty::Str => {
                        self.report(
                            e,
                            "a string cannot be indexed".into(),
                            Some("use `.charAt(i)` or `.substring(a, b)`".into()),
                        );
                        Ty::Dyn
                    }
                    other => {
                        self.report(e, format!("a {} cannot be indexed", other.name()), None);
                        Ty::Dyn
                    }
                }
            }
            op::IN => {
                let (a, b) = self.two(call);
                match b.plain() {
                    Ty::List(t) => {
                        if !comparable(&a, &t) {
                            self.report(
                                e,
                                format!("a {} is never in a list({})", a.name(), t.name()),
                                None,
                            );
                        }
                    }
                    Ty::Map(_) | Ty::Dyn => {}
                    Ty::Str => self.report(
                        e,
                        "`in` needs a list or a map on its right, not a string".into(),
                        Some("for a substring, write `haystack.contains(needle)`".into()),
                    ),
                    other => self.report(
                        e,
                        format!(
                            "`in` needs a list or a map on its right, not a {}",
                            other.name()
                        ),
                        None,
                    ),
                }
                Ty::Bool
            }
            op::OPT_SELECT => {
                for a in &call.args {
                    self.expr(a);
                }
                Ty::Dyn
            }
            _ => {
                let target = call.target.as_ref().map(|t| (self.expr(t), t.as_ref()));
                let args: Vec<Ty> = call.args.iter().map(|a| self.expr(a)).collect();
                self.function(e, name, target, &args, &call.args)
            }
        }
    }

    fn two(&mut self, call: &cel::common::ast::CallExpr) -> (Ty, Ty) {
        let a = self.expr(&call.args[0]);
        let b = call.args.get(1).map_or(Ty::Dyn, |x| self.expr(x));
        (a, b)
    }

    fn want_bool(&mut self, at: &IdedExpr, t: &Ty, what: &str) {
        if !matches!(t.plain(), Ty::Bool | Ty::Dyn) {
            self.report(
                at,
                format!("{what} must be bool, not {}", t.name()),
                bool_hint(t),
            );
        }
    }

    fn function(
        &mut self,
        e: &IdedExpr,
        name: &str,
        target: Option<(Ty, &IdedExpr)>,
        args: &[Ty],
        arg_exprs: &[IdedExpr],
    ) -> Ty {
        let Some(func) = FUNCS.iter().find(|f| f.name == name) else {
            let hint = match crate::source::closest(name, FUNCS.iter().map(|f| f.name)) {
                Some(c) => format!("did you mean `{c}`?"),
                None => "see the functions in docs/validation.md".into(),
            };
            self.report(e, format!("unknown function `{name}`"), Some(hint));
            return Ty::Dyn;
        };
        if func.response && self.phase == Phase::Request {
            self.report(
                e,
                format!("`{name}` reads the response: it is not available in on_http_request"),
                Some("move this rule to `on_http_response`".into()),
            );
        }
        // Receiver style, then arity (without the receiver for methods).
        let (recv, n_args) = match (&target, func.style) {
            (Some((t, te)), Method | Both) => (Some((t.clone(), *te)), args.len()),
            (None, Global | Both) => {
                let first = args.first().cloned().zip(arg_exprs.first());
                let n = if func.style == Both {
                    args.len().saturating_sub(1)
                } else {
                    args.len()
                };
                (if func.style == Both { first } else { None }, n)
            }
            (Some(_), Global) => {
                self.report(
                    e,
                    format!("`{name}` is a function, not a method"),
                    Some(format!("write `{name}(...)`")),
                );
                return func.ret.ty();
            }
            (None, Method) => {
                self.report(
                    e,
                    format!("`{name}` is a method"),
                    Some(format!("write `value.{name}(...)`")),
                );
                return func.ret.ty();
            }
        };
        if !func.arity.contains(&n_args) {
            let want: Vec<String> = func.arity.iter().map(|n| n.to_string()).collect();
            self.report(
                e,
                format!(
                    "`{name}` takes {} argument(s), not {n_args}",
                    want.join(" or ")
                ),
                None,
            );
        }
        // What the receiver (or a global's first argument) must be.
        let first = recv
            .or_else(|| args.first().cloned().zip(arg_exprs.first()))
            .filter(|_| func.recv != R::Any);
        if let Some((t, te)) = first {
            let ok = matches!(
                (func.recv, t.plain()),
                (_, Ty::Dyn)
                    | (R::Any, _)
                    | (R::Str, Ty::Str)
                    | (R::List, Ty::List(_))
                    | (R::Time, Ty::Timestamp | Ty::Duration)
            );
            if !ok {
                let want = match func.recv {
                    R::Str => "a string",
                    R::List => "a list",
                    R::Time => "a timestamp or duration",
                    R::Any => "a value",
                };
                let what = describe(te).unwrap_or_else(|| "the value".into());
                let hint = match (func.recv, &t) {
                    (R::Str, Ty::List(_)) => Some(format!(
                        "take one element, e.g. `{}[0]`",
                        what.trim_matches('`')
                    )),
                    (R::Time, Ty::Str) => Some(format!(
                        "convert with `timestamp({})`",
                        what.trim_matches('`')
                    )),
                    _ => None,
                };
                self.report(
                    e,
                    format!("`{name}` needs {want}, but {what} is a {}", t.name()),
                    hint,
                );
            }
        }
        // A literal pattern is compiled here: a bad one would fail every evaluation.
        if name == "matches" || name == "@ngrok_matches" {
            let pattern = if target.is_some() {
                arg_exprs.first()
            } else {
                arg_exprs.get(1)
            };
            if let Some(Expr::Literal(LiteralValue::String(p))) = pattern.map(|p| &p.expr) {
                if let Err(err) = regex::Regex::new(p.inner()) {
                    let first = err.to_string();
                    let why = first
                        .lines()
                        .last()
                        .unwrap_or("")
                        .trim()
                        .trim_start_matches("error: ")
                        .to_string();
                    self.report(
                        pattern.unwrap_or(e),
                        format!("invalid regex `{}`: {why}", p.inner()),
                        Some(
                            "RE2 syntax: close every group and class; escape a literal `(`, `[` or `.` with a backslash".into(),
                        ),
                    );
                }
            }
        }
        match (name, &target) {
            // `reverse` keeps the type of what it reverses.
            ("reverse", Some((t, _))) => t.plain(),
            _ => func.ret.ty(),
        }
    }
}

/// The byte range `e` covers in its source (its tokens and its children's).
pub fn extent(info: &cel::common::ast::SourceInfo, e: &IdedExpr) -> (u32, u32) {
    let own = info.offset_for(e.id).map(|(a, b)| (a, b.max(a) + 1));
    let mut lo = own.map_or(u32::MAX, |o| o.0);
    let mut hi = own.map_or(0, |o| o.1);
    let mut take = |r: (u32, u32)| {
        if r.0 < r.1 {
            lo = lo.min(r.0);
            hi = hi.max(r.1);
        }
    };
    match &e.expr {
        Expr::Select(s) => {
            take(extent(info, &s.operand));
            // The node is the `.`; the field follows it.
            if let Some((dot, _)) = info.offset_for(e.id) {
                take((dot, dot + 1 + s.field.len() as u32));
            }
        }
        Expr::Call(c) => {
            if let Some(t) = &c.target {
                take(extent(info, t));
            }
            for a in &c.args {
                take(extent(info, a));
            }
            let named = !c.func_name.starts_with('_') && !c.func_name.starts_with('@');
            if named && hi > 0 {
                hi += 1; // the closing parenthesis
            }
            // A global call's node is its `(`: the name comes before it.
            if let (true, None, Some((open, _))) = (named, &c.target, info.offset_for(e.id)) {
                let n = c.func_name.len() as u32;
                if info.source.as_bytes().get(open as usize) == Some(&b'(') && open >= n {
                    lo = lo.min(open - n);
                }
            }
        }
        Expr::List(l) => {
            for x in &l.elements {
                take(extent(info, x));
            }
        }
        _ => {}
    }
    if lo > hi {
        (0, 0)
    } else {
        (lo, hi)
    }
}

/// The dotted name an expression spells (`req.url.path`), for messages.
pub fn describe(e: &IdedExpr) -> Option<String> {
    match &e.expr {
        Expr::Ident(n) => Some(format!("`{n}`")),
        Expr::Select(s) if !s.test => {
            let base = describe(&s.operand)?;
            Some(format!("{}.{}`", base.trim_end_matches('`'), s.field))
        }
        Expr::Call(c) if c.func_name == op::INDEX => {
            let base = describe(&c.args[0])?;
            Some(format!("{}[...]`", base.trim_end_matches('`')))
        }
        Expr::Call(c) if c.target.is_none() && !c.func_name.starts_with('_') => {
            Some(format!("`{}(...)`", c.func_name))
        }
        _ => None,
    }
}

fn conversion_hint(a: &Ty, b: &Ty) -> Option<String> {
    let (a, b) = (a.plain(), b.plain());
    match (&a, &b) {
        (Ty::Str, t) | (t, Ty::Str) if t.numeric() => {
            Some("convert one side: `int(text)` or `string(number)`".into())
        }
        (Ty::List(x), y) | (y, Ty::List(x)) if comparable(x, y) => {
            Some("this side is a list: take an element (`[0]`) or test membership with `in`".into())
        }
        (Ty::Timestamp, Ty::Str) | (Ty::Str, Ty::Timestamp) => {
            Some("convert the string with `timestamp(...)`".into())
        }
        _ => None,
    }
}

fn bool_hint(t: &Ty) -> Option<String> {
    match t.plain() {
        Ty::List(_) => Some("test it, e.g. `size(...) > 0` or `'value' in ...`".into()),
        Ty::Str => Some("compare it, e.g. `... == 'value'`".into()),
        Ty::Int | Ty::Uint | Ty::Double => Some("compare it, e.g. `... == 200`".into()),
        _ => None,
    }
}

/// Hint for a rule expression whose type is not bool.
pub fn rule_hint(t: &Ty) -> Option<String> {
    bool_hint(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(src: &str, phase: Phase) -> (Ty, Vec<String>) {
        let p = cel::Program::compile(src).unwrap();
        let (t, ps, _) = check(p.expression(), p.source_info(), phase);
        (t, ps.into_iter().map(|p| p.message).collect())
    }

    fn ok(src: &str) {
        let (_, ps) = problems(src, Phase::Request);
        assert!(ps.is_empty(), "{src}: {ps:?}");
    }

    fn bad(src: &str, phase: Phase, want: &str) {
        let (_, ps) = problems(src, phase);
        assert!(
            ps.iter().any(|p| p.contains(want)),
            "{src}: want `{want}` in {ps:?}"
        );
    }

    #[test]
    fn clean_expressions_pass() {
        for src in [
            "req.method == 'GET'",
            "req.url.path.startsWith('/api')",
            "req.url == 'https://a/'",
            "hasQueryParam('debug') && req.headers['x-team'][0] == 'a'",
            "!has(actions.ngrok.jwt_validation.tokens[0].payload.scope)",
            "inCidrRange(conn.client_ip, '192.0.2.0/24')",
            "getReqHeader('X-Acme-Api')[0]",
            "req.headers.exists(k, k.startsWith('x-'))",
            "getReqHeader('a').exists(v, v.contains('b'))",
            "req.url.query_params.map(k, k + '=').size() > 0",
            "[1, 2].map(x, x * 2)[0] == 2",
            "vars.anything.goes + 1 == vars.x",
            "timestamp(time.now).getHours('Europe/Paris') > 8",
            "int(req.headers['content-length'][0]) > 10",
            "base64.decode('aGk=') == b'hi'",
            "secrets.get('v', 'k') != ''",
            "size(req.url.path) < 100 && req.url.path.size() > 1",
            "req.url.port == 443 && req.content_length > 10.0",
            "conn.client_ip.geo.location.country_code in ['DE', 'FR']",
            "'a' in req.headers",
            "rand.int(0, 10) < 5 ? true : false",
            "req.url.path.matches('^/v[0-9]+/')",
            "matches(req.url.path, '^/x')",
        ] {
            ok(src);
        }
    }

    /// A documented variable the platform cannot fill is a warning where it is read, and
    /// nothing where `has()` tests for it.
    #[test]
    fn unfillable_variables_warn_unless_tested() {
        let p = cel::Program::compile("conn.bytes_in > 1000").unwrap();
        let (_, ps, _) = check(p.expression(), p.source_info(), Phase::Request);
        assert!(
            ps.len() == 1 && ps[0].warning && ps[0].message.contains("`conn.bytes_in`"),
            "{ps:?}"
        );
        assert!(ps[0]
            .hint
            .as_deref()
            .unwrap()
            .contains("has(conn.bytes_in)"));
        for src in [
            "has(conn.bytes_in) && conn.geo.country != ''",
            "conn.server_port == 443",
        ] {
            let p = cel::Program::compile(src).unwrap();
            let (_, ps, _) = check(p.expression(), p.source_info(), Phase::Request);
            assert!(ps.is_empty(), "{src}: {ps:?}");
        }
    }

    #[test]
    fn problems_are_found() {
        let r = Phase::Request;
        bad("req.methd == 'GET'", r, "`req` has no field `methd`");
        bad("rq.method == 'GET'", r, "unknown variable `rq`");
        bad("res.status_code == 200", r, "`res` is not available");
        bad("hasResHeader('x')", r, "reads the response");
        bad("req.method == 1", r, "compares a string with a int");
        bad(
            "req.url.path + 1 == 'x'",
            r,
            "cannot add a string and a int",
        );
        bad("req.method * 2 > 1", r, "`*` is not defined for a string");
        bad("getReqHeadr('x')", r, "unknown function `getReqHeadr`");
        bad("getReqHeader('x', 'y')", r, "takes 1 argument(s), not 2");
        bad("startsWith(req.url.path, '/')", r, "is a method");
        bad("getReqHeader('x').startsWith('a')", r, "needs a string");
        bad(
            "req.method.foo == 'a'",
            r,
            "is a string: it has no field `foo`",
        );
        bad("'a' in req.method", r, "not a string");
        bad(
            "actions.ngrok.jwt_validaton.x",
            r,
            "has no field `jwt_validaton`",
        );
        let (t, _) = problems("req.url.path", r);
        assert_eq!(t, Ty::Str);
        let (t, _) = problems("getReqHeader('x')", r);
        assert_eq!(t, Ty::List(Box::new(Ty::Str)));
        let (t, ps) = problems("res.status_code >= 500", Phase::Response);
        assert_eq!((t, ps.len()), (Ty::Bool, 0));
    }
}
