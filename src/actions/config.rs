//! Reads one action's `config` map field by field, reporting every problem with its path.

use crate::expr::Template;
use crate::source::{child, At, Diagnostics};
use crate::source::{Node, Value};

/// Codes from ngrok's validator for malformed action configuration.
pub const BAD_CONFIG: Option<&str> = Some("ERR_NGROK_2203");
pub const MISSING: Option<&str> = Some("ERR_NGROK_2234");
pub const OUT_OF_RANGE: Option<&str> = Some("ERR_NGROK_2215");
pub const TOO_MANY: Option<&str> = Some("ERR_NGROK_2218");
pub const BAD_TEMPLATE: Option<&str> = Some("ERR_NGROK_2224");

/// A cursor over an action's `config`; [`Config::finish`] reports keys nobody asked for.
pub struct Config<'a, 'd> {
    node: Option<&'a Node>,
    pub path: String,
    used: Vec<&'static str>,
    pub diags: &'d mut Diagnostics,
}

impl<'a, 'd> Config<'a, 'd> {
    pub fn new(node: Option<&'a Node>, path: String, diags: &'d mut Diagnostics) -> Self {
        if let Some(n) = node {
            if n.as_map().is_none() && n.value != Value::Null {
                diags.error(
                    BAD_CONFIG,
                    At::new(&path, n),
                    format!("`config` must be a map, not {}", n.kind()),
                );
            }
        }
        Config {
            node,
            path,
            used: Vec::new(),
            diags,
        }
    }

    /// The raw node under `key`, marking the key as known.
    pub fn field(&mut self, key: &'static str) -> Option<&'a Node> {
        self.used.push(key);
        self.node?.get(key).filter(|n| n.value != Value::Null)
    }

    pub fn at(&self) -> At<'_> {
        At {
            path: &self.path,
            node: self.node,
        }
    }

    pub fn missing(&mut self, key: &str) {
        let path = child(&self.path, key);
        let node = self.node;
        self.diags.error(
            MISSING,
            At { path: &path, node },
            format!("`{key}` is required"),
        );
    }

    pub fn wrong_type(&mut self, key: &str, node: &Node, want: &str) {
        let path = child(&self.path, key);
        self.diags.error(
            BAD_CONFIG,
            At::new(&path, node),
            format!("`{key}` must be {want}, not {}", node.kind()),
        );
    }

    pub fn error_at(&mut self, code: Option<&'static str>, key: &str, node: &Node, msg: String) {
        let path = child(&self.path, key);
        self.diags.error(code, At::new(&path, node), msg);
    }

    pub fn string(&mut self, key: &'static str) -> Option<(&'a Node, String)> {
        let node = self.field(key)?;
        match &node.value {
            Value::Str(s) => Some((node, s.clone())),
            _ => {
                self.wrong_type(key, node, "a string");
                None
            }
        }
    }

    /// A bool field, `default` when absent (ngrok's `enforce`, ...).
    pub fn bool(&mut self, key: &'static str, default: bool) -> bool {
        match self.field(key) {
            Some(Node {
                value: Value::Bool(b),
                ..
            }) => *b,
            Some(node) => {
                self.wrong_type(key, node, "a bool");
                default
            }
            None => default,
        }
    }

    pub fn int(&mut self, key: &'static str) -> Option<(&'a Node, i64)> {
        let node = self.field(key)?;
        match node.value {
            Value::Int(i) => Some((node, i)),
            _ => {
                self.wrong_type(key, node, "an integer");
                None
            }
        }
    }

    /// A string that may contain `${...}`; bad templates are ngrok's `ERR_NGROK_2224`.
    pub fn template(&mut self, key: &'static str, node: &Node, text: &str) -> Option<Template> {
        match Template::compile(text) {
            Ok(t) => Some(t),
            Err(e) => {
                self.error_at(
                    BAD_TEMPLATE,
                    key,
                    node,
                    format!("invalid CEL interpolation: {}", e.0),
                );
                None
            }
        }
    }

    /// An HTTP status code field within `range`.
    pub fn status(&mut self, key: &'static str, default: u16, range: (u16, u16)) -> u16 {
        match self.int(key) {
            Some((_, v)) if v >= i64::from(range.0) && v <= i64::from(range.1) => v as u16,
            Some((node, v)) => {
                let msg = format!(
                    "`{key}` must be between {} and {}, not {v}",
                    range.0, range.1
                );
                self.error_at(OUT_OF_RANGE, key, node, msg);
                default
            }
            None => default,
        }
    }

    /// Reports keys of the config map that no reader asked for.
    pub fn finish(self) {
        let Some(entries) = self.node.and_then(Node::as_map) else {
            return;
        };
        for (k, v) in entries {
            if !self.used.contains(&k.as_str()) {
                let path = child(&self.path, k);
                self.diags.error(
                    BAD_CONFIG,
                    At::new(&path, v),
                    format!(
                        "unknown field `{k}`; expected one of: {}",
                        self.used.join(", ")
                    ),
                );
            }
        }
    }
}
