//! `${...}` interpolation: a string split once into literal text and compiled expressions.

use super::{to_text, CompileError, EvalError, Expr, Scope};

#[derive(Debug)]
pub enum Part {
    Text(String),
    Expr(Expr),
    /// `${1}` or `${name}` in a regex replacement (`to`): a capture group, written back in the
    /// regex crate's `${name}` syntax for the expansion that follows interpolation.
    Group(String),
}

/// A config string that may contain `${expr}` parts.
#[derive(Debug)]
pub struct Template {
    parts: Vec<Part>,
}

impl Template {
    /// Splits `source` at `${` ... `}` (respecting CEL string literals and nested braces) and
    /// compiles each expression. ngrok reports failures here as `ERR_NGROK_2224`.
    pub fn compile(source: &str) -> Result<Template, CompileError> {
        Template::compile_with_groups(source, &|_| false)
    }

    /// Like [`Template::compile`], but a `${...}` whose body `is_group` accepts (a capture group
    /// number or name) stays a group reference instead of being compiled as CEL.
    pub fn compile_with_groups(
        source: &str,
        is_group: &dyn Fn(&str) -> bool,
    ) -> Result<Template, CompileError> {
        let mut parts = Vec::new();
        let mut text = String::new();
        let mut rest = source;
        while let Some(start) = rest.find("${") {
            text.push_str(&rest[..start]);
            let body = &rest[start + 2..];
            let end = closing_brace(body)
                .ok_or_else(|| CompileError(format!("unterminated `${{` in `{source}`")))?;
            let expr_src = body[..end].trim();
            if expr_src.is_empty() {
                return Err(CompileError(format!("empty `${{}}` in `{source}`")));
            }
            if !text.is_empty() {
                parts.push(Part::Text(std::mem::take(&mut text)));
            }
            if is_group(expr_src) {
                parts.push(Part::Group(expr_src.to_string()));
            } else {
                parts.push(Part::Expr(Expr::compile(expr_src)?));
            }
            rest = &body[end + 1..];
        }
        text.push_str(rest);
        if !text.is_empty() {
            parts.push(Part::Text(text));
        }
        Ok(Template { parts })
    }

    /// Whether any `${}` reads the request, connection or response (rather than only
    /// `secrets.get` or constants).
    pub fn reads_request(&self) -> bool {
        self.parts.iter().any(|p| match p {
            Part::Text(_) | Part::Group(_) => false,
            Part::Expr(e) => {
                let n = e.needs;
                n.req || n.conn || n.conn_ip || n.res || n.actions || n.vars || {
                    const READERS: [&str; 4] = [
                        "getReqHeader",
                        "hasReqHeader",
                        "getQueryParam",
                        "hasQueryParam",
                    ];
                    READERS.iter().any(|f| e.source.contains(f))
                }
            }
        })
    }

    /// True when the template has no `${}` (its value is known at compile time).
    pub fn literal(&self) -> Option<&str> {
        match self.parts.as_slice() {
            [] => Some(""),
            [Part::Text(t)] => Some(t),
            _ => None,
        }
    }

    pub fn render(&self, scope: &Scope) -> Result<String, EvalError> {
        self.render_escaped(scope, |s| s.into())
    }

    /// Renders with every interpolated value passed through `escape` (literal text and group
    /// references are written as they are): a regex replacement escapes `$` in values so a
    /// header cannot smuggle in `$1`, a redirect percent-encodes them.
    pub fn render_escaped(
        &self,
        scope: &Scope,
        escape: impl Fn(&str) -> std::borrow::Cow<'_, str>,
    ) -> Result<String, EvalError> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Expr(e) => out.push_str(&escape(&to_text(&e.eval(scope)?))),
                Part::Group(g) => {
                    out.push_str("${");
                    out.push_str(g);
                    out.push('}');
                }
            }
        }
        Ok(out)
    }

    /// The value of the template with its type: a template that is exactly one `${expr}` keeps
    /// the expression's type (int, bool, list, map ...); anything else is a string.
    pub fn eval_typed(&self, scope: &Scope) -> Result<cel::Value, EvalError> {
        match self.parts.as_slice() {
            [Part::Expr(e)] => e.eval(scope),
            _ => Ok(cel::Value::String(std::sync::Arc::new(self.render(scope)?))),
        }
    }
}

/// Index of the `}` that closes an interpolation body, skipping braces inside CEL strings and
/// nested map literals.
pub(crate) fn closing_brace(body: &str) -> Option<usize> {
    let bytes = body.as_bytes();
    let mut depth = 0usize;
    let mut quote: Option<u8> = None;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match quote {
            Some(q) => {
                if b == b'\\' {
                    i += 1;
                } else if b == q {
                    quote = None;
                }
            }
            None => match b {
                b'\'' | b'"' => quote = Some(b),
                b'{' => depth += 1,
                b'}' if depth == 0 => return Some(i),
                b'}' => depth -= 1,
                _ => {}
            },
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_text_and_expressions() {
        let t = Template::compile("https://${getReqHeader('X-Acme-Api')[0]}.internal").unwrap();
        assert_eq!(t.parts.len(), 3);
        assert!(t.literal().is_none());
        assert_eq!(Template::compile("plain").unwrap().literal(), Some("plain"));
    }

    #[test]
    fn braces_inside_strings_and_maps() {
        let t = Template::compile("${'}' + {'a': '}'}['a']}!").unwrap();
        assert_eq!(t.parts.len(), 2);
    }

    #[test]
    fn errors() {
        assert!(Template::compile("${req.method").is_err());
        assert!(Template::compile("${}").is_err());
        assert!(Template::compile("${1 +}").is_err());
    }
}
