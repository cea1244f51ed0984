//! The strings extension comes from `cel` (`cel::extensions::strings`); ngrok adds the
//! Unicode `lower()` and `upper()`.
//!
//! `matches` is routed (a parse-time macro) to one that shares compiled regexes through
//! `pattern.rs`'s bounded per-isolate cache: the crate's compiles its pattern on every call, with
//! a 10 MiB limit, so a literal pattern was compiled per request and a pattern taken from
//! request data could cost tens of milliseconds of CPU per call.

use super::{err, global, member, overload, str_arg, string};
use cel::common::ast::{CallExpr, Expr};
use cel::common::types::STRING_TYPE;
use cel::parser::Macro;
use cel::{DeclarationError, Env, ExecutionError, Value};

const MATCHES: &str = "@ngrok_matches";

pub fn register(env: &mut Env) -> Result<(), DeclarationError> {
    member(env, "lower", STRING_TYPE, vec![], overload!(lower))?;
    member(env, "upper", STRING_TYPE, vec![], overload!(upper))?;
    // ngrok's page documents `'hello mellow'.split()` → `['hello', 'mellow']`; the strings
    // extension has only the one- and two-argument forms.
    member(env, "split", STRING_TYPE, vec![], overload!(split_fields))?;
    global(
        env,
        MATCHES,
        vec![STRING_TYPE, STRING_TYPE],
        overload!(matches),
    )?;
    // `s.matches(re)` and `matches(s, re)` both become `@ngrok_matches(s, re)`.
    env.add_macro(Macro::receiver("matches", 1, |h, target, args| {
        let Some(target) = target.take() else {
            return Ok(None);
        };
        let mut call_args = vec![target];
        call_args.append(args);
        Ok(Some(h.next_expr(Expr::Call(CallExpr {
            func_name: MATCHES.to_string(),
            target: None,
            args: call_args,
        }))))
    }))?;
    env.add_macro(Macro::global("matches", 2, |h, _, args| {
        Ok(Some(h.next_expr(Expr::Call(CallExpr {
            func_name: MATCHES.to_string(),
            target: None,
            args: std::mem::take(args),
        }))))
    }))?;
    Ok(())
}

fn matches(args: &[Value]) -> Result<Value, ExecutionError> {
    const F: &str = "matches";
    let text = str_arg(args, 0, F)?;
    let pattern = str_arg(args, 1, F)?;
    let re = crate::expr::pattern::cached_regex(pattern)
        .map_err(|e| err(F, format!("'{pattern}' not a valid regex: {e}")))?;
    Ok(Value::Bool(re.is_match(text)))
}

/// `s.split()`: Go's `strings.Fields`, the words between runs of Unicode whitespace.
fn split_fields(args: &[Value]) -> Result<Value, ExecutionError> {
    let words = str_arg(args, 0, "split")?
        .split_whitespace()
        .map(string)
        .collect();
    Ok(Value::List(std::sync::Arc::new(words)))
}

fn lower(args: &[Value]) -> Result<Value, ExecutionError> {
    Ok(string(go_lower(str_arg(args, 0, "lower")?)))
}

fn upper(args: &[Value]) -> Result<Value, ExecutionError> {
    Ok(string(go_upper(str_arg(args, 0, "upper")?)))
}

/// Go's `strings.ToLower`: each character mapped alone by Unicode's simple lowercase mapping,
/// never to several characters and with no context (`Σ` is always `σ`). Rust's
/// `str::to_lowercase` uses the full mappings: `İ` becomes `i̇` and a final `Σ` becomes `ς`.
fn go_lower(s: &str) -> String {
    s.chars()
        .map(|c| {
            let mut full = c.to_lowercase();
            match (full.next(), full.next()) {
                (Some(one), None) => one,
                // The only character whose full lowercase is several: its simple one is `i`.
                _ if c == '\u{130}' => 'i',
                _ => c,
            }
        })
        .collect()
}

/// Go's `strings.ToUpper`: simple uppercase mapping per character (`ß` stays `ß`, where Rust's
/// `to_uppercase` gives `SS`).
fn go_upper(s: &str) -> String {
    s.chars()
        .map(|c| {
            let mut full = c.to_uppercase();
            match (full.next(), full.next()) {
                (Some(one), None) => one,
                _ => simple_upper_of_expanding(c),
            }
        })
        .collect()
}

/// The simple uppercase of a character whose full uppercase is several characters (UnicodeData's
/// field 12): the Greek letters with ypogegrammeni map to their title-case forms; the rest (ß,
/// ŉ, ǰ, ΐ, the ligatures ﬀ–ﬆ, ...) have none and stay as they are.
fn simple_upper_of_expanding(c: char) -> char {
    let cp = c as u32;
    let mapped = match cp {
        0x1F80..=0x1F87 | 0x1F90..=0x1F97 | 0x1FA0..=0x1FA7 => cp + 8,
        0x1FB3 | 0x1FC3 | 0x1FF3 => cp + 9,
        _ => cp,
    };
    char::from_u32(mapped).unwrap_or(c)
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{eval, ok, s};
    use cel::Value;

    #[test]
    fn matches_shares_compiled_regexes_and_bounds_them() {
        assert_eq!(
            ok("'/api/v2/x'.matches('^/api/v[0-9]+/')"),
            Value::Bool(true)
        );
        assert_eq!(ok("matches('abc', 'b')"), Value::Bool(true));
        assert_eq!(ok("'abc'.matches('^b')"), Value::Bool(false));
        assert!(eval("'abc'.matches('(')").is_err());
        // ~70 ms to compile natively, more in wasm, per call: refused (Go's RE2 refuses it too).
        assert!(eval("'ab'.matches('(?:ab|cd|ef){20000}')").is_err());
        // Compiled once: the second use is the cache's.
        let before = crate::expr::pattern::compiles();
        assert_eq!(
            ok("'x9'.matches('^x[0-9]$') && 'x8'.matches('^x[0-9]$')"),
            Value::Bool(true)
        );
        assert!(crate::expr::pattern::compiles() - before <= 1);
    }

    /// ngrok's page: `"Ärger in Österreich, ÉCOLE, İSTANBUL, ЙОГА!".lower()` returns
    /// `"ärger in österreich, école, istanbul, йога!"` and `.upper()` keeps `İ`.
    #[test]
    fn go_case_mapping() {
        let text = "'Ärger in Österreich, ÉCOLE, İSTANBUL, ЙОГА!'";
        assert_eq!(
            s(&format!("{text}.lower()")),
            "ärger in österreich, école, istanbul, йога!"
        );
        assert_eq!(
            s(&format!("{text}.upper()")),
            "ÄRGER IN ÖSTERREICH, ÉCOLE, İSTANBUL, ЙОГА!"
        );
        // Go maps rune by rune (unicode.ToLower/ToUpper): no final sigma, no expansion.
        assert_eq!(s("'ΟΔΟΣ'.lower()"), "οδοσ");
        assert_eq!(s("'straße'.upper()"), "STRAßE");
        assert_eq!(s("'ﬁ ŉ ǰ'.upper()"), "ﬁ ŉ ǰ");
        assert_eq!(s("'ᾳ ᾀ ᾈ'.upper()"), "ᾼ ᾈ ᾈ");
        assert_eq!(s("'ẞ Ǆ ǅ'.lower()"), "ß ǆ ǆ");
        assert_eq!(s("'ı ſ ǅ'.upper()"), "I S Ǆ");
        // Where Rust's full mappings differ: the Go result is never longer than the input.
        assert_ne!("İ".to_lowercase(), s("'İ'.lower()"));
        assert_ne!("ß".to_uppercase(), s("'ß'.upper()"));
    }

    #[test]
    fn unicode_and_ascii_case() {
        assert_eq!(s("'ÀbÇ'.lower()"), "àbç");
        assert_eq!(s("'ÀBÇ'.lowerAscii()"), "ÀbÇ");
        assert_eq!(s("'ÀbÇ'.upperAscii()"), "ÀBÇ");
    }

    #[test]
    fn the_crate_strings_extension() {
        assert_eq!(s("'hello'.charAt(1)"), "e");
        assert_eq!(ok("'hello mellow'.indexOf('ello')"), Value::Int(1));
        assert_eq!(ok("'hello mellow'.lastIndexOf('ello')"), Value::Int(7));
        assert_eq!(ok("'a,b,c'.split(',')"), ok("['a', 'b', 'c']"));
        assert_eq!(ok("'a,b,c'.split(',', 2)"), ok("['a', 'b,c']"));
        assert_eq!(
            ok("' hello \\t mellow\\n'.split()"),
            ok("['hello', 'mellow']")
        );
        assert_eq!(s("'aaa'.replace('a', 'b', 2)"), "bba");
        assert_eq!(s("'tacocat'.substring(4)"), "cat");
        assert_eq!(s("'tacocat'.substring(0, 4)"), "taco");
        assert_eq!(s("'  x  '.trim()"), "x");
        assert_eq!(s("'abc'.reverse()"), "cba");
        assert_eq!(s("strings.quote('a\"b')"), "\"a\\\"b\"");
        assert_eq!(s("['a', 'b'].join()"), "ab");
        assert_eq!(
            s("'%s %d %.2f %e %b %x %X %o'.format(['s', 42, 3.14159, 1200.0, 5, 255, 255, 8])"),
            "s 42 3.14 1.200000e+03 101 ff FF 10"
        );
        assert!(eval("'abc'.charAt(9)").is_err());
    }
}
