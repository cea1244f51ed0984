//! `request-body-find-replace`: rewrite the request body with regular expressions before it
//! is forwarded. The body is buffered (at most [`super::MAX_BUFFERED_BODY`]); the rewritten
//! bytes are what the upstream gets, on every attempt of a retry too.

use super::spec::{ActionSpec, ActionType, REPLACEMENTS, REQ};
use super::ConfigShape::{Fields};
use crate::actions::config::Config;
use crate::actions::config::{BAD_CONFIG, MISSING};
use crate::actions::Cx;
use crate::error::GatewayError;
use crate::exchange::Exchange;
use crate::exchange::{Context, Step};
use crate::expr::find_replace::{self, FindReplaceError, Found, Replacement};
use crate::source::Node;
use crate::source::{child, index, At};
use cel::Value;
use std::borrow::Cow;
use std::rc::Rc;
use std::sync::Arc;

const ACTION: &str = "request-body-find-replace";

#[derive(Debug)]
pub struct RequestBodyFindReplace {
    replacements: Vec<Replacement>,
}


/// Reads `replacements: [{from, to}]` (at least one); a `from` without `${}` must be a valid
/// regular expression now (`ERR_NGROK_2261`).
pub(super) fn replacements(c: &mut Config<'_, '_>) -> Option<Vec<Replacement>> {
    let Some(node) = c.field("replacements") else {
        c.missing("replacements");
        return None;
    };
    let Some(items) = node.as_seq() else {
        c.wrong_type("replacements", node, "a list of {from, to}");
        return None;
    };
    if items.is_empty() {
        let msg = "`replacements` needs at least one entry".to_string();
        c.error_at(MISSING, "replacements", node, msg);
        return None;
    }
    let list_path = child(&c.path, "replacements");
    let mut out = Vec::new();
    let mut ok = true;
    for (i, item) in items.iter().enumerate() {
        let mut r = Config::new(Some(item), index(&list_path, i), c.diags);
        if item.as_map().is_none() {
            ok = false;
            continue;
        }
        let from = match r.string("from") {
            Some((n, text)) if !text.is_empty() => r.template("from", n, &text).map(|t| (n, t)),
            Some((n, _)) => {
                r.error_at(BAD_CONFIG, "from", n, "`from` must not be empty".into());
                None
            }
            None => {
                r.missing("from");
                None
            }
        };
        let to = match r.string("to") {
            Some((n, text)) => r.template("to", n, &text),
            None => Some(crate::expr::Template::compile("").expect("empty template")),
        };
        match (from, to) {
            (Some((from_node, from)), Some(to)) => match Replacement::new(from, to) {
                Ok(rep) => out.push(rep),
                Err(reason) => {
                    let p = child(&r.path, "from");
                    r.diags.error(
                        Some("ERR_NGROK_2261"),
                        At::new(&p, from_node),
                        format!("`from` is not a valid regular expression: {reason}"),
                    );
                    ok = false;
                }
            },
            _ => ok = false,
        }
        r.finish();
    }
    ok.then_some(out)
}

/// The content coding of a message, when it has one other than `identity` that `decoded`
/// (what the platform hands over decoded) does not cover.
pub(super) fn encoded(
    headers: &crate::http::Headers,
    decoded: impl Fn(&str) -> bool,
) -> Option<String> {
    let codings: Vec<String> = headers
        .get_all("content-encoding")
        .flat_map(|v| v.split(','))
        .map(|c| c.trim().to_ascii_lowercase())
        .filter(|c| !c.is_empty() && c != "identity")
        .collect();
    match codings.as_slice() {
        [] => None,
        [one] if decoded(one) => None,
        _ => Some(codings.join(", ")),
    }
}

/// Runs the replacements, rendering `${}` in the exchange's scope.
pub(super) fn run<'b>(
    replacements: &[Replacement],
    body: &'b [u8],
    ex: &mut Exchange,
    action: &'static str,
) -> Result<find_replace::Rewritten<'b>, GatewayError> {
    find_replace::apply(replacements, body, |t, field| ex.render(t, action, field)).map_err(|e| {
        match e {
            FindReplaceError::Render(e) => e,
            FindReplaceError::BadPattern { pattern, reason } => GatewayError::InvalidPattern {
                action,
                pattern,
                reason,
            },
            // Answered as a body over the buffered-body cap, on the side it was rewriting.
            FindReplaceError::TooLarge { limit } => match action {
                ACTION => GatewayError::BodyTooLarge { limit },
                _ => GatewayError::ResponseBodyTooLarge { limit },
            },
        }
    })
}

/// `actions.ngrok.<name>.replacements[]`: `{replacement_index, matched_content}` for each
/// replacement that matched.
pub(super) fn set_results(ex: &mut Exchange, name: &'static str, found: &[Found]) {
    let list = found
        .iter()
        .map(|f| {
            crate::expr::map(vec![
                ("replacement_index", Value::Int(f.replacement_index as i64)),
                ("matched_content", Value::from(f.matched_content.as_str())),
            ])
        })
        .collect();
    ex.set_result(name, vec![("replacements", Value::List(Arc::new(list)))]);
}
impl ActionType for RequestBodyFindReplace {
    const SPEC: ActionSpec = ActionSpec {
        name: "request-body-find-replace",
        phases: &[REQ],
        terminating: false,
        results: Some("request_body_find_replace"),
        config: Fields(&[("replacements", REPLACEMENTS)]),
    };

    fn compile(
        config: Option<&Node>,
        path: String,
        cx: &mut Cx<'_>,
    ) -> Option<RequestBodyFindReplace> {
        let mut c = Config::new(config, path, cx.diags);
        let replacements = replacements(&mut c)?;
        c.finish();
        Some(RequestBodyFindReplace { replacements })
    }

    async fn apply<C: Context>(&self, ex: &mut Exchange, cx: &C) -> Result<Step, GatewayError> {
        // An encoded request body (the platform does not decode requests) would be corrupted
        // by a byte-level rewrite: it goes as it is.
        if let Some(coding) = encoded(&ex.req.headers, |_| false) {
            ex.note(format!(
                "{ACTION}: request body is {coding}-encoded; left as it is"
            ));
            set_results(ex, "request_body_find_replace", &[]);
            return Ok(Step::Continue);
        }
        let body = match &ex.req_body {
            Some(b) => Rc::clone(b),
            None => cx.request_body().await?,
        };
        let (out, found) = run(&self.replacements, &body, ex, ACTION)?;
        if let Cow::Owned(new) = out {
            if ex.req.headers.contains("content-length") {
                ex.headers_mut()
                    .set("content-length", &new.len().to_string());
            }
            ex.req_body = Some(new.into());
        }
        set_results(ex, "request_body_find_replace", &found);
        Ok(Step::Continue)
    }
}

