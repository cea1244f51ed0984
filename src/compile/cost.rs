//! A static, worst-case CPU estimate for one CEL expression, so that a policy an attacker could
//! make expensive is flagged before upload instead of failing with "exceeded CPU" in the Worker.
//!
//! The model (docs/validation.md): every node costs a fixed amount; string functions cost per
//! byte of their input, bounded by the platform's size limits (a URL is at most 16 KiB, all
//! request headers together 128 KiB); `matches` compiles a literal regex once per isolate (a
//! bounded cache; a pattern that varies is compiled per new value) and then scans its input; a comprehension (`all`, `exists`, `map`,
//! `filter`...) multiplies its body by the number of items its list can hold. Constants are
//! native nanoseconds measured with `cargo bench --bench engine -- "cost model"`;
//! [`WASM_FACTOR`] turns them into Worker CPU time.

use cel::common::ast::{operators as op, Expr, IdedExpr, LiteralValue};

/// Native ns per AST node visited (variable lookups, operators, literal values).
pub const NODE_NS: f64 = 60.0;
/// Native ns per byte compared, searched or copied by a simple string function.
pub const BYTE_NS: f64 = 0.35;
/// Native ns of one comprehension step beyond its body's nodes (binding the variable in a
/// new scope, copying the item).
pub const ITERATION_NS: f64 = 1_800.0;
/// Native ns per header line a header helper (`getReqHeader`) scans.
pub const HEADER_SCAN_NS: f64 = 7.0;
/// Native ns per query parameter a query helper (`getQueryParam`) splits and decodes.
pub const QUERY_PARAM_NS: f64 = 280.0;
/// Native ns per byte transformed (case mapping, hashing, decoding, parsing).
pub const TRANSFORM_NS: f64 = 3.0;
/// Native ns to compile a regex, plus per byte of its pattern.
pub const REGEX_COMPILE_NS: f64 = 30_000.0;
pub const REGEX_PATTERN_NS: f64 = 450.0;
/// Native ns per byte a compiled regex scans.
pub const REGEX_SCAN_NS: f64 = 2.8;
/// The Worker (wasm32 in V8) runs this interpreter about this many times slower than native.
pub const WASM_FACTOR: f64 = 2.0;

/// Size bounds of what the request can carry (Cloudflare's limits).
const URL_BYTES: f64 = 16.0 * 1024.0;
const HEADER_BYTES: f64 = 128.0 * 1024.0;
/// Header lines a request can carry within [`HEADER_BYTES`] (Cloudflare's edge rejects far
/// more than this many lines in practice; 2000 keeps the bound honest without being absurd).
const HEADER_COUNT: f64 = 2000.0;
/// Distinct query parameter names a 16 KiB URL can carry (`abcd&`, 5 bytes each).
const QUERY_PARAMS: f64 = 3000.0;
/// What is assumed of values whose size nothing bounds (`vars.*`, action results, JSON).
const DYN_BYTES: f64 = 4096.0;
const DYN_COUNT: f64 = 100.0;

/// How big a value can be: how many items (1 for a scalar) and how many bytes in all.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Size {
    pub count: f64,
    pub bytes: f64,
}

impl Size {
    const fn scalar(bytes: f64) -> Size {
        Size { count: 1.0, bytes }
    }
    const fn items(count: f64, bytes: f64) -> Size {
        Size { count, bytes }
    }
}

/// The estimate for one expression.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Estimate {
    /// Worst-case Worker CPU, nanoseconds.
    pub ns: f64,
    /// The expensive parts, most expensive first: (Worker ns, what).
    pub parts: Vec<(f64, String)>,
}

/// Estimates the worst-case cost of evaluating `expr` once in the Worker.
pub fn estimate(expr: &IdedExpr) -> Estimate {
    let mut w = Walker {
        scopes: Vec::new(),
        keys: Vec::new(),
        parts: Vec::new(),
    };
    let (ns, _) = w.walk(expr);
    let mut parts: Vec<(f64, String)> = w
        .parts
        .into_iter()
        .map(|(c, s)| (c * WASM_FACTOR, s))
        .collect();
    parts.sort_by(|a, b| b.0.total_cmp(&a.0));
    parts.dedup_by(|a, b| a.1 == b.1);
    Estimate {
        ns: ns * WASM_FACTOR,
        parts,
    }
}

/// Bounds by variable path (prefix match, longest first in the table's order).
fn path_size(path: &str) -> Size {
    const TABLE: &[(&str, Size)] = &[
        ("req.url.query_params", Size::items(QUERY_PARAMS, URL_BYTES)),
        ("req.url", Size::scalar(URL_BYTES)),
        ("req.headers", Size::items(HEADER_COUNT, HEADER_BYTES)),
        ("req.trailers", Size::items(HEADER_COUNT, HEADER_BYTES)),
        ("req.cookies", Size::items(HEADER_COUNT, HEADER_BYTES)),
        ("res.headers", Size::items(HEADER_COUNT, HEADER_BYTES)),
        ("res.trailers", Size::items(HEADER_COUNT, HEADER_BYTES)),
        ("res.cookies", Size::items(HEADER_COUNT, HEADER_BYTES)),
        (
            "req.content_encoding",
            Size::items(HEADER_COUNT, HEADER_BYTES),
        ),
        (
            "res.content_encoding",
            Size::items(HEADER_COUNT, HEADER_BYTES),
        ),
        ("req.method", Size::scalar(32.0)),
        ("req.host", Size::scalar(255.0)),
        ("req.version", Size::scalar(16.0)),
        ("req", Size::scalar(HEADER_BYTES)),
        ("res.status_code", Size::scalar(8.0)),
        ("res", Size::scalar(HEADER_BYTES)),
        (
            "conn.client_ip.categories",
            Size::items(DYN_COUNT, DYN_BYTES),
        ),
        ("conn.client_ip", Size::scalar(45.0)),
        ("conn.server_ip", Size::scalar(45.0)),
        ("conn", Size::scalar(256.0)),
        ("endpoint", Size::scalar(256.0)),
        ("time", Size::scalar(40.0)),
    ];
    TABLE
        .iter()
        .find(|(p, _)| path == *p || path.starts_with(&format!("{p}.")))
        .map_or(Size::items(DYN_COUNT, DYN_BYTES), |(_, s)| *s)
}

struct Walker {
    /// Comprehension variables and the size of one item.
    scopes: Vec<(String, Size)>,
    /// Map keys being iterated: (variable, the map's path, how many keys). `map[key]` inside
    /// such a loop is one of `n` shares of the map: all of them together are the map's size.
    keys: Vec<(String, String, f64)>,
    parts: Vec<(f64, String)>,
}

fn dotted(e: &IdedExpr) -> Option<String> {
    match &e.expr {
        Expr::Ident(n) => Some(n.clone()),
        Expr::Select(s) if !s.test => Some(format!("{}.{}", dotted(&s.operand)?, s.field)),
        _ => None,
    }
}

fn short(e: &IdedExpr) -> String {
    super::schema::describe(e).unwrap_or_else(|| "a value".into())
}

fn kib(bytes: f64) -> String {
    if bytes >= 1024.0 {
        format!("{:.0} KiB", bytes / 1024.0)
    } else {
        format!("{bytes:.0} bytes")
    }
}

impl Walker {
    fn walk(&mut self, e: &IdedExpr) -> (f64, Size) {
        match &e.expr {
            Expr::Literal(LiteralValue::String(s)) => (NODE_NS, Size::scalar(s.len() as f64)),
            Expr::Literal(LiteralValue::Bytes(b)) => (NODE_NS, Size::scalar(b.len() as f64)),
            Expr::Literal(_) | Expr::Unspecified => (NODE_NS, Size::scalar(8.0)),
            Expr::Ident(name) => {
                let size = self
                    .scopes
                    .iter()
                    .rev()
                    .find(|(n, _)| n == name)
                    .map_or_else(|| path_size(name), |(_, s)| *s);
                (NODE_NS, size)
            }
            Expr::Select(s) => {
                let (c, base) = self.walk(&s.operand);
                let size = match dotted(e) {
                    Some(p) if !self.scopes.iter().any(|(n, _)| p.starts_with(n.as_str())) => {
                        path_size(&p)
                    }
                    _ => Size::scalar(base.bytes.min(DYN_BYTES)),
                };
                (c + NODE_NS, size)
            }
            Expr::List(l) => {
                let mut c = NODE_NS;
                let mut bytes = 0.0;
                for x in &l.elements {
                    let (xc, xs) = self.walk(x);
                    c += xc;
                    bytes += xs.bytes;
                }
                (c, Size::items(l.elements.len() as f64, bytes))
            }
            Expr::Map(m) => {
                let mut c = NODE_NS;
                for entry in &m.entries {
                    if let cel::common::ast::EntryExpr::MapEntry(me) = &entry.expr {
                        c += self.walk(&me.key).0 + self.walk(&me.value).0;
                    }
                }
                (c, Size::items(m.entries.len() as f64, DYN_BYTES))
            }
            Expr::Struct(_) => (NODE_NS, Size::items(DYN_COUNT, DYN_BYTES)),
            Expr::Comprehension(c) => {
                let (rc, range) = self.walk(&c.iter_range);
                let n = range.count.max(1.0);
                let item = Size::scalar(range.bytes / n);
                let (ic, accu) = self.walk(&c.accu_init);
                let mark = self.scopes.len();
                let keys_mark = self.keys.len();
                if let Some(p) = dotted(&c.iter_range) {
                    self.keys.push((c.iter_var.clone(), p, n));
                }
                self.scopes.push((c.iter_var.clone(), item));
                if let Some(v2) = &c.iter_var2 {
                    self.scopes.push((v2.clone(), item));
                }
                self.scopes.push((c.accu_var.clone(), accu));
                let (cc, _) = self.walk(&c.loop_cond);
                let (sc, _) = self.walk(&c.loop_step);
                let (res, _) = self.walk(&c.result);
                self.scopes.truncate(mark);
                self.keys.truncate(keys_mark);
                let body = n * (cc + sc + ITERATION_NS);
                if n > 1.0 {
                    self.parts.push((
                        body,
                        format!(
                            "a comprehension over {} runs its body up to {n:.0} times",
                            short(&c.iter_range)
                        ),
                    ));
                }
                (rc + ic + body + res, range)
            }
            Expr::Call(call) => self.call(e, call),
        }
    }

    fn call(&mut self, e: &IdedExpr, call: &cel::common::ast::CallExpr) -> (f64, Size) {
        let mut cost = NODE_NS;
        let target = call.target.as_ref().map(|t| {
            let (c, s) = self.walk(t);
            cost += c;
            s
        });
        let args: Vec<Size> = call
            .args
            .iter()
            .map(|a| {
                let (c, s) = self.walk(a);
                cost += c;
                s
            })
            .collect();
        // The receiver of a method, or a global's first argument.
        let subject = target
            .or_else(|| args.first().copied())
            .unwrap_or(Size::scalar(8.0));
        let arg = |i: usize| args.get(i).copied().unwrap_or(Size::scalar(8.0));
        let name = call.func_name.as_str();
        let (extra, size) = match name {
            op::LOGICAL_AND
            | op::LOGICAL_OR
            | op::LOGICAL_NOT
            | op::NOT_STRICTLY_FALSE
            | op::NEGATE
            | op::SUBSTRACT
            | op::MULTIPLY
            | op::DIVIDE
            | op::MODULO => (0.0, Size::scalar(8.0)),
            op::CONDITIONAL => (
                0.0,
                if arg(1).bytes > arg(2).bytes {
                    arg(1)
                } else {
                    arg(2)
                },
            ),
            op::EQUALS
            | op::NOT_EQUALS
            | op::LESS
            | op::LESS_EQUALS
            | op::GREATER
            | op::GREATER_EQUALS => (BYTE_NS * arg(0).bytes.min(arg(1).bytes), Size::scalar(1.0)),
            op::ADD => (
                BYTE_NS * (arg(0).bytes + arg(1).bytes),
                Size::items(
                    arg(0).count + arg(1).count - 1.0,
                    arg(0).bytes + arg(1).bytes,
                ),
            ),
            op::INDEX | op::OPT_INDEX => {
                let share = match (dotted(&call.args[0]), call.args.get(1).map(|k| &k.expr)) {
                    (Some(map), Some(Expr::Ident(key))) => self
                        .keys
                        .iter()
                        .rev()
                        .find(|(v, p, _)| v == key && *p == map)
                        .map_or(1.0, |(_, _, n)| *n),
                    _ => 1.0,
                };
                (
                    NODE_NS,
                    Size::items((subject.count / share).max(1.0), subject.bytes / share),
                )
            }
            op::IN => (
                BYTE_NS * arg(1).bytes + NODE_NS * arg(1).count,
                Size::scalar(1.0),
            ),
            // A prefix or suffix test reads only as much as its argument.
            "startsWith" | "endsWith" => (BYTE_NS * arg(0).bytes, Size::scalar(8.0)),
            "contains" | "indexOf" | "lastIndexOf" => (BYTE_NS * subject.bytes, Size::scalar(8.0)),
            "matches" | "@ngrok_matches" => {
                let (pattern, input) = match (&call.target, call.args.len()) {
                    (Some(_), _) => (&call.args[0], subject),
                    (None, 2) => (&call.args[1], arg(0)),
                    _ => return (cost, Size::scalar(1.0)),
                };
                // The regex is compiled once per isolate (a bounded cache); a pattern that
                // varies per request is compiled on each new value.
                let compile = match &pattern.expr {
                    Expr::Literal(LiteralValue::String(_)) => 0.0,
                    _ => REGEX_COMPILE_NS + REGEX_PATTERN_NS * DYN_BYTES / 4.0,
                };
                let scan = REGEX_SCAN_NS * input.bytes;
                if compile > 0.0 {
                    self.parts.push((
                        compile,
                        "`matches` with a pattern that varies compiles it per new value".into(),
                    ));
                }
                if input.bytes >= 1024.0 {
                    self.parts.push((
                        scan,
                        format!("`matches` scans up to {} of {}", kib(input.bytes), short(e)),
                    ));
                }
                (compile + scan, Size::scalar(1.0))
            }
            "lower" | "upper" | "lowerAscii" | "upperAscii" | "trim" | "replace" | "split"
            | "substring" | "reverse" | "format" | "join" | "charAt" | "encodeBase64"
            | "decodeBase64" | "escapeUrl" | "unescapeUrl" | "parseUrl" | "isURL"
            | "decodeJson" | "isJson" | "encodeJson" | "decodeQueryString" | "isQueryString"
            | "md5" | "sha1" | "sha256" | "sha512" | "crc32" | "crc64" | "xxhash64" | "string"
            | "int" | "double" | "timestamp" | "duration" | "distinct" | "sort" | "flatten" => {
                let c = TRANSFORM_NS * subject.bytes;
                if subject.bytes >= 16.0 * 1024.0 {
                    self.parts.push((
                        c,
                        format!("`{name}` processes up to {}", kib(subject.bytes)),
                    ));
                }
                (c, subject)
            }
            "getReqHeader" | "getResHeader" => (
                HEADER_SCAN_NS * HEADER_COUNT,
                Size::items(HEADER_COUNT, HEADER_BYTES),
            ),
            "hasReqHeader" | "hasResHeader" | "hasReqCookie" | "hasResCookie" => {
                (HEADER_SCAN_NS * HEADER_COUNT, Size::scalar(1.0))
            }
            // The query helpers split and decode the whole query string on every call.
            "getQueryParam" | "hasQueryParam" => {
                let c = QUERY_PARAM_NS * QUERY_PARAMS;
                self.parts.push((
                    c,
                    format!("`{name}` decodes every query parameter (up to {QUERY_PARAMS:.0})"),
                ));
                (c, Size::items(QUERY_PARAMS, URL_BYTES))
            }
            "inCidrRange" => (NODE_NS * 8.0, Size::scalar(1.0)),
            "inCidrRanges" => (NODE_NS * 8.0 * arg(1).count, Size::scalar(1.0)),
            "size" => (0.0, Size::scalar(8.0)),
            _ => {
                let decode = matches!(
                    (call.target.as_ref().map(|t| &t.expr), name),
                    (Some(Expr::Ident(ns)), f) if (ns == "json" || ns == "base64" || ns == "url"
                        || ns == "queryString" || ns == "hash") && !f.is_empty()
                );
                let bytes: f64 = args.iter().map(|a| a.bytes).sum();
                let per = if decode { TRANSFORM_NS } else { BYTE_NS };
                (
                    per * bytes,
                    if decode {
                        Size::items(DYN_COUNT, bytes.max(DYN_BYTES))
                    } else {
                        Size::scalar(bytes.max(8.0))
                    },
                )
            }
        };
        (cost + extra, size)
    }
}

/// Renders nanoseconds for messages.
pub fn show_ns(ns: f64) -> String {
    if ns >= 1_000_000.0 {
        format!("{:.1} ms", ns / 1_000_000.0)
    } else if ns >= 1_000.0 {
        format!("{:.0} µs", ns / 1_000.0)
    } else {
        format!("{ns:.0} ns")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns(src: &str) -> f64 {
        estimate(cel::Program::compile(src).unwrap().expression()).ns
    }

    #[test]
    fn ordering_of_costs() {
        let cheap = ns("req.method == 'GET'");
        assert!(cheap < 1_000.0, "{cheap}");
        let regex = ns("req.url.path.matches('^/api/v[0-9]+/')");
        assert!(regex > 40_000.0, "{regex}");
        let per_header = ns("req.headers.exists(k, req.headers[k].exists(v, v.matches('x+y')))");
        assert!(per_header > 10_000_000.0, "{per_header}");
        let e = estimate(
            cel::Program::compile("req.headers.exists(k, k.matches('^x-'))")
                .unwrap()
                .expression(),
        );
        assert!(
            e.parts[0].1.contains("comprehension over `req.headers`"),
            "{e:?}"
        );
    }
}
