//! Macros in strings (`%{tx.anomaly_score}`, `%{MATCHED_VAR}`) split into [`Piece`]s.

use super::error::Reason;
use super::targets::collection;
use crate::waf::program::{Expand, Piece};

/// Splits `text` at its macros. A `%{` without a closing `}` is text, as ModSecurity leaves it.
pub fn expand(text: &str) -> Result<Expand, Reason> {
    let mut pieces = Vec::new();
    let mut literal = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("%{") {
        let after = rest.get(start + 2..).unwrap_or_default();
        let Some(end) = after.find('}') else {
            break;
        };
        literal.push_str(rest.get(..start).unwrap_or_default());
        let name = after.get(..end).unwrap_or_default();
        let (coll, key) = match name.split_once('.') {
            Some((c, k)) => (c, Some(k.to_ascii_lowercase())),
            None => (name, None),
        };
        let coll = collection(coll.trim()).ok_or_else(|| Reason::UnknownMacro(name.to_string()))?;
        if !literal.is_empty() {
            pieces.push(Piece::Text(std::mem::take(&mut literal)));
        }
        pieces.push(Piece::Var(coll, key));
        rest = after.get(end + 1..).unwrap_or_default();
    }
    literal.push_str(rest);
    if !literal.is_empty() {
        pieces.push(Piece::Text(literal));
    }
    Ok(Expand(pieces))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::waf::program::Collection;

    #[test]
    fn pieces() {
        let e = expand("Matched %{TX.0} in %{matched_var_name}: %{REQUEST_HEADERS.User-Agent}%{")
            .expect("expands");
        assert_eq!(
            e.0,
            [
                Piece::Text("Matched ".into()),
                Piece::Var(Collection::Tx, Some("0".into())),
                Piece::Text(" in ".into()),
                Piece::Var(Collection::MatchedVarName, None),
                Piece::Text(": ".into()),
                Piece::Var(Collection::RequestHeaders, Some("user-agent".into())),
                Piece::Text("%{".into()),
            ]
        );
        assert_eq!(
            expand("%{rule.id}").expect("expands").0,
            [Piece::Var(Collection::Rule, Some("id".into()))]
        );
        assert_eq!(expand("").expect("expands").0, []);
        assert_eq!(
            expand("%{nope.x}"),
            Err(Reason::UnknownMacro("nope.x".into()))
        );
    }
}
