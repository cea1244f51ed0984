//! Operators: `@name param`, `!` negation, `@rx` when no `@` is given.

use super::error::Reason;
use super::macros::expand;
use super::pcre::byte_escapes;
use super::prefilter;
use crate::waf::program::{self, Operator, OperatorKind};

/// Reads a data file by its name as written in the rule (`sql-errors.data`).
pub type DataFile<'a> = &'a dyn Fn(&str) -> Option<String>;

pub fn parse(text: &str, data_file: DataFile<'_>) -> Result<Operator, Reason> {
    let (negated, rest) = match text.strip_prefix('!') {
        Some(r) => (true, r),
        None => (false, text),
    };
    let Some(rest) = rest.strip_prefix('@') else {
        return Ok(Operator {
            negated,
            kind: rx(rest)?,
        });
    };
    let name_end = rest.find(char::is_whitespace).unwrap_or(rest.len());
    let (name, param) = rest.split_at(name_end);
    let param = param.trim_start();
    let kind = match name.to_ascii_lowercase().as_str() {
        "rx" => rx(param)?,
        "pm" => OperatorKind::Pm(phrases(param)),
        "pmfromfile" | "pmf" => {
            let mut all = Vec::new();
            for file in param.split_whitespace() {
                let text = data_file(file).ok_or_else(|| Reason::MissingDataFile(file.into()))?;
                all.extend(data_lines(&text).map(str::to_ascii_lowercase));
            }
            OperatorKind::Pm(all)
        }
        "eq" => OperatorKind::Eq(expand(param.trim())?),
        "ge" => OperatorKind::Ge(expand(param.trim())?),
        "gt" => OperatorKind::Gt(expand(param.trim())?),
        "le" => OperatorKind::Le(expand(param.trim())?),
        "lt" => OperatorKind::Lt(expand(param.trim())?),
        "streq" => OperatorKind::StrEq(expand(param)?),
        "contains" => OperatorKind::Contains(expand(param)?),
        "beginswith" => OperatorKind::BeginsWith(expand(param)?),
        "endswith" => OperatorKind::EndsWith(expand(param)?),
        "within" => OperatorKind::Within(expand(param)?),
        "validatebyterange" => OperatorKind::ValidateByteRange(byte_ranges(param)?),
        "validateurlencoding" => OperatorKind::ValidateUrlEncoding,
        "validateutf8encoding" => OperatorKind::ValidateUtf8Encoding,
        "ipmatch" => OperatorKind::IpMatch(addresses("ipMatch", param.split(','))?),
        "ipmatchfromfile" | "ipmatchf" => {
            let text = data_file(param.trim())
                .ok_or_else(|| Reason::MissingDataFile(param.trim().into()))?;
            OperatorKind::IpMatch(addresses("ipMatchFromFile", data_lines(&text))?)
        }
        "detectsqli" => OperatorKind::DetectSqli,
        "detectxss" => OperatorKind::DetectXss,
        "unconditionalmatch" => OperatorKind::UnconditionalMatch,
        "nomatch" => OperatorKind::NoMatch,
        _ => return Err(Reason::UnknownOperator(name.to_string())),
    };
    Ok(Operator { negated, kind })
}

/// A regex, checked with the runtime's builder, with its prefilter.
fn rx(pattern: &str) -> Result<OperatorKind, Reason> {
    let pattern = byte_escapes(pattern);
    let pattern = pattern.as_str();
    program::rx_builder(pattern)
        .build()
        .map_err(|e| Reason::BadRegex {
            pattern: pattern.to_string(),
            message: e.to_string(),
        })?;
    Ok(OperatorKind::Rx {
        pattern: pattern.to_string(),
        prefilter: prefilter::literals(pattern),
    })
}

/// `@pm`'s phrases: space-separated, matched without regard to case (stored lowercase).
fn phrases(param: &str) -> Vec<String> {
    param
        .split_whitespace()
        .map(str::to_ascii_lowercase)
        .collect()
}

/// A data file's entries: one per line, without blank lines and `#` comments.
fn data_lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
}

/// `@validateByteRange 9,10,13,32-126`.
fn byte_ranges(param: &str) -> Result<Vec<(u8, u8)>, Reason> {
    let bad = |why: &str| Reason::BadOperatorParam {
        operator: "validateByteRange",
        param: param.to_string(),
        why: why.to_string(),
    };
    let byte = |s: &str| s.trim().parse::<u8>().map_err(|_| bad("not a byte 0-255"));
    let mut out = Vec::new();
    for item in param.split(',') {
        let range = match item.split_once('-') {
            Some((a, b)) => (byte(a)?, byte(b)?),
            None => {
                let b = byte(item)?;
                (b, b)
            }
        };
        if range.0 > range.1 {
            return Err(bad("range start above its end"));
        }
        out.push(range);
    }
    Ok(out)
}

/// `@ipMatch`'s addresses and CIDR ranges, checked.
fn addresses<'a>(
    operator: &'static str,
    items: impl Iterator<Item = &'a str>,
) -> Result<Vec<String>, Reason> {
    let mut out = Vec::new();
    for item in items.map(str::trim).filter(|s| !s.is_empty()) {
        let ok = item.parse::<std::net::IpAddr>().is_ok() || item.parse::<ipnet::IpNet>().is_ok();
        if !ok {
            return Err(Reason::BadOperatorParam {
                operator,
                param: item.to_string(),
                why: "not an address or CIDR range".into(),
            });
        }
        out.push(item.to_string());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::waf::program::{Collection, Expand, Piece};

    fn no_files(_: &str) -> Option<String> {
        None
    }

    fn op(text: &str) -> Result<Operator, Reason> {
        let files = |name: &str| (name == "x.data").then(|| "# c\n\nOne\n  two  \n".to_string());
        parse(text, &files)
    }

    #[test]
    fn operators() {
        let o = op("!@within %{tx.allowed_methods}").expect("parses");
        assert!(o.negated);
        assert_eq!(
            o.kind,
            OperatorKind::Within(Expand(vec![Piece::Var(
                Collection::Tx,
                Some("allowed_methods".into())
            )]))
        );
        let o = op("^a.*b$").expect("parses");
        assert!(matches!(o.kind, OperatorKind::Rx { ref pattern, .. } if pattern == "^a.*b$"));
        assert_eq!(
            op("@pmFromFile x.data").expect("parses").kind,
            OperatorKind::Pm(vec!["one".into(), "two".into()])
        );
        assert_eq!(
            op("@pm ( )").expect("parses").kind,
            OperatorKind::Pm(vec!["(".into(), ")".into()])
        );
        assert_eq!(
            op("@validateByteRange 9,10,32-126").expect("parses").kind,
            OperatorKind::ValidateByteRange(vec![(9, 9), (10, 10), (32, 126)])
        );
        assert_eq!(
            op("@ipMatch 127.0.0.1,::1,10.0.0.0/8")
                .expect("parses")
                .kind,
            OperatorKind::IpMatch(vec!["127.0.0.1".into(), "::1".into(), "10.0.0.0/8".into()])
        );
        assert_eq!(
            op("@detectSQLi").expect("parses").kind,
            OperatorKind::DetectSqli
        );
    }

    #[test]
    fn pcre_byte_escapes() {
        assert_eq!(
            byte_escapes(r"\x{bc}[^>\x{be}]\\x{41}\x{100}\x{}\d"),
            r"\xbc[^>\xbe]\\x{41}\x{100}\x{}\d"
        );
        let OperatorKind::Rx { pattern, .. } = op(r"\x{e2}\x91[\xa0-\x{bf}]").expect("parses").kind
        else {
            panic!("not a regex")
        };
        let re = program::rx_builder(&pattern).build().expect("compiles");
        assert!(re.is_match(b"\xe2\x91\xa0"));
        assert!(!re.is_match("\u{e2}".as_bytes()));
    }

    #[test]
    fn bad_operators() {
        assert_eq!(op("@foo bar"), Err(Reason::UnknownOperator("foo".into())));
        assert!(matches!(op("@rx (a"), Err(Reason::BadRegex { .. })));
        assert!(matches!(op("(?<=a)b"), Err(Reason::BadRegex { .. })));
        assert_eq!(
            parse("@pmFromFile y.data", &no_files),
            Err(Reason::MissingDataFile("y.data".into()))
        );
        assert!(matches!(
            op("@validateByteRange 1-256"),
            Err(Reason::BadOperatorParam { .. })
        ));
        assert!(matches!(
            op("@validateByteRange 9-1"),
            Err(Reason::BadOperatorParam { .. })
        ));
        assert!(matches!(
            op("@ipMatch 1.2.3"),
            Err(Reason::BadOperatorParam { .. })
        ));
    }
}
