//! The CEL variables of one request (`req.*`, `conn.*`) and the scope expressions run in.

use super::{functions, Needs};
use crate::http::{Headers, RequestHead, ResponseHead};
use crate::secrets::Secrets;
use cel::objects::{Key, Map};
use cel::{Context, Program, ResolveResult, Value};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::sync::Arc;

/// What the helper functions (`getReqHeader`, ...) read: a snapshot of the request head.
pub type RequestData = Arc<RequestHead>;

/// The scope one phase's expressions run in: the request-bound helpers, and the variables,
/// each built on the first evaluation that reads it.
pub struct Scope {
    ctx: RefCell<Context<'static, 'static>>,
    req: RequestData,
    res: Option<ResponseHead>,
    actions: Option<Value>,
    /// `vars.*` from `set-vars` (an empty map until one runs).
    vars: Option<Value>,
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
        let mut ctx = Context::with_env(super::ext::env());
        functions::register(&mut ctx, Arc::clone(&data), secrets);
        Scope {
            ctx: RefCell::new(ctx),
            req: data,
            res: res.cloned(),
            actions,
            vars: None,
            built: Cell::new(Needs::default()),
        }
    }

    /// The `vars` this phase has set so far.
    pub fn with_vars(mut self, vars: Value) -> Scope {
        self.vars = Some(vars);
        self
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

    pub(crate) fn execute(&self, program: &Program, needs: Needs) -> ResolveResult {
        let built = self.built.get();
        if (needs.req && !built.req)
            || (needs.conn && !built.conn)
            || (needs.res && !built.res)
            || (needs.actions && !built.actions)
            || (needs.vars && !built.vars)
        {
            let mut ctx = self.ctx.borrow_mut();
            if needs.req && !built.req {
                ctx.add_variable_from_value("req", req_value(&self.req));
            }
            if needs.conn && !built.conn {
                ctx.add_variable_from_value("conn", conn_value(&self.req));
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
            self.built.set(Needs {
                req: built.req || needs.req,
                conn: built.conn || needs.conn,
                res: built.res || needs.res,
                actions: built.actions || needs.actions,
                vars: built.vars || needs.vars,
            });
        }
        program.execute(&self.ctx.borrow())
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

fn res_value(res: &ResponseHead) -> Value {
    map(vec![
        ("status_code", Value::Int(i64::from(res.status))),
        ("headers", header_map(&res.headers)),
    ])
}

fn req_value(req: &RequestHead) -> Value {
    let headers = header_map(&req.headers);
    let mut url = vec![
        ("scheme", string(&req.scheme)),
        ("host", string(&req.host)),
        ("authority", string(&req.authority())),
        ("path", string(&percent_decode(&req.path, false))),
        ("raw_path", string(&req.path)),
        ("query", string(&req.query)),
        ("uri", string(&req.uri())),
        ("raw", string(&req.url())),
        ("user_password", string("")),
        ("query_params", multi_map(query_pairs(&req.query))),
    ];
    if let Some(port) = req.port {
        url.push(("port", Value::Int(i64::from(port))));
    }
    map(vec![
        ("method", string(&req.method)),
        ("host", string(&req.host)),
        ("headers", headers),
        ("url", map(url)),
    ])
}

fn conn_value(req: &RequestHead) -> Value {
    map(vec![("client_ip", string(&req.client_ip.to_string()))])
}

/// Splits a query string into decoded `(name, value)` pairs (`+` is a space, as in forms).
pub(crate) fn query_pairs(query: &str) -> impl Iterator<Item = (String, String)> + '_ {
    query.split('&').filter(|s| !s.is_empty()).map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(k, true), percent_decode(v, true))
    })
}

/// Decodes `%XX` escapes (and `+` when `plus_is_space`); invalid escapes stay as written.
pub fn percent_decode(s: &str, plus_is_space: bool) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = s
                    .get(i + 1..i + 3)
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b'+' if plus_is_space => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
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
}
