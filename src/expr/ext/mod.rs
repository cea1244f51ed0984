//! ngrok's stateless CEL macros, on top of the `cel` crate's standard library and its strings,
//! lists and encoders extensions. Registered once per isolate in one [`Env`], shared by every
//! compile and every request.
//!
//! What `cel` 0.15 already provides is used as is: the strings extension (`charAt`, `indexOf`,
//! `format`, `split`, `replace`, `substring`, `trim`, `reverse`, `lowerAscii`, `join`,
//! `strings.quote`, ...), the lists extension (`slice`, `flatten`, `sort`, `sortBy`, `distinct`,
//! `lists.range`), `base64.encode(bytes)`/`base64.decode`, and the timestamp and duration
//! getters, time zone argument included. This module adds the rest of ngrok's macro reference.

mod encoders;
mod hashes;
mod lists;
mod net;
mod strings;
mod time;

use cel::common::types::Type;
use cel::common::value::{CowVal, Val};
use cel::{DeclarationError, Env, ExecutionError, Value};
use std::sync::Arc;

thread_local! {
    // Immutable once built: one per isolate (thread), never per request.
    static ENV: Arc<Env> = Arc::new(build());
}

/// The environment every expression is compiled and run with.
pub fn env() -> Arc<Env> {
    ENV.with(Arc::clone)
}

/// A library that registers its overloads and macros on an [`Env`].
type Extension = fn(&mut Env) -> Result<(), DeclarationError>;

fn build() -> Env {
    let mut env = Env::stdlib();
    let extensions: [Extension; 9] = [
        cel::extensions::strings,
        cel::extensions::lists,
        cel::extensions::encoders,
        encoders::register,
        hashes::register,
        lists::register,
        net::register,
        strings::register,
        time::register,
    ];
    for ext in extensions {
        // Our names are fixed at build time: a clash is a programming error caught by the
        // tests (`the_environment_builds`), and the rest of the library still registers.
        if let Err(e) = env.add_extension(ext) {
            debug_assert!(false, "CEL extension: {e}");
        }
    }
    env
}

/// A function over plain [`Value`]s, as the overloads here are written.
type ValueFn = fn(&[Value]) -> Result<Value, ExecutionError>;

/// Turns a [`ValueFn`] into an overload (`cel::common::functions::Function`, a plain `fn`
/// pointer, so one wrapper per function).
macro_rules! overload {
    ($f:path) => {{
        fn wrapper<'b, 'v>(
            args: Vec<cel::common::value::CowVal<'b, 'v>>,
        ) -> Result<cel::common::value::CowVal<'b, 'v>, cel::ExecutionError> {
            $crate::expr::ext::call(&args, $f)
        }
        wrapper as cel::common::functions::Function
    }};
}
pub(crate) use overload;

pub(crate) fn call<'b, 'v>(
    args: &[CowVal<'b, 'v>],
    f: ValueFn,
) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let values = args
        .iter()
        .map(|a| Value::try_from(a.as_ref()))
        .collect::<Result<Vec<_>, _>>()?;
    let out: Box<dyn Val> = f(&values)?.try_into()?;
    Ok(CowVal::Owned(out))
}

/// Declares `name(args...)`.
pub(crate) fn global(
    env: &mut Env,
    name: &str,
    args: Vec<Type>,
    f: cel::common::functions::Function,
) -> Result<(), DeclarationError> {
    let id = format!("ngrok.{name}({})", type_list(&args));
    env.add_overload(name, &id, args, f)
}

/// Declares `target.name(args...)`.
pub(crate) fn member(
    env: &mut Env,
    name: &str,
    target: Type,
    args: Vec<Type>,
    f: cel::common::functions::Function,
) -> Result<(), DeclarationError> {
    let id = format!("ngrok.{}.{name}({})", target.name(), type_list(&args));
    env.add_member_overload(name, &id, target, args, f)
}

/// `string` and `bytes`, for the functions that take either (`Type` is not `Clone`).
pub(crate) const STRING_OR_BYTES: [fn() -> Type; 2] = [
    || cel::common::types::STRING_TYPE,
    || cel::common::types::BYTES_TYPE,
];

fn type_list(args: &[Type]) -> String {
    args.iter().map(Type::name).collect::<Vec<_>>().join(",")
}

pub(crate) fn err(function: &str, message: impl ToString) -> ExecutionError {
    ExecutionError::function_error(function, message)
}

pub(crate) fn string(s: impl Into<String>) -> Value {
    Value::String(Arc::new(s.into()))
}

/// The `i`th argument as a string (the overload's declared types guarantee it).
pub(crate) fn str_arg<'a>(
    args: &'a [Value],
    i: usize,
    function: &str,
) -> Result<&'a str, ExecutionError> {
    match args.get(i) {
        Some(Value::String(s)) => Ok(s.as_str()),
        Some(Value::Bytes(b)) => std::str::from_utf8(b).map_err(|e| err(function, e)),
        _ => Err(err(function, format!("argument {i} must be a string"))),
    }
}

/// The `i`th argument as bytes (a string's UTF-8 bytes).
pub(crate) fn bytes_arg<'a>(
    args: &'a [Value],
    i: usize,
    function: &str,
) -> Result<&'a [u8], ExecutionError> {
    match args.get(i) {
        Some(Value::String(s)) => Ok(s.as_bytes()),
        Some(Value::Bytes(b)) => Ok(b.as_slice()),
        _ => Err(err(
            function,
            format!("argument {i} must be a string or bytes"),
        )),
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    use cel::{Context, Value};

    /// Compiles and runs `src` in the shared environment, with no variables.
    pub fn eval(src: &str) -> Result<Value, String> {
        let env = super::env();
        let program = env.compile(src).map_err(|e| e.to_string())?;
        program
            .execute(&Context::with_env(env))
            .map_err(|e| e.to_string())
    }

    pub fn ok(src: &str) -> Value {
        eval(src).unwrap_or_else(|e| panic!("{src}: {e}"))
    }

    pub fn s(src: &str) -> String {
        match ok(src) {
            Value::String(s) => s.to_string(),
            other => panic!("{src}: expected a string, got {other:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::*;

    #[test]
    fn the_environment_builds() {
        // Registers every extension without a clash (a clash only trips a debug_assert).
        let _ = super::build();
    }

    /// Odd inputs give values or CEL errors, never a panic (which would reset the isolate).
    #[test]
    fn odd_inputs_never_panic() {
        for src in [
            "hash.md5(b'\\xff')",
            "hash.crc64('')",
            "json.decode(b'\\xff')",
            "json.decode('1e400')",
            "json.decode('[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[')",
            "json.encode({1: 2.5, true: [null]})",
            "json.encode([1.0 / 0.0])",
            "''.decodeJson()",
            "'%'.unescapeUrl()",
            "'%e2%82'.unescapeUrl()",
            "url.parse('')",
            "url.parse('://')",
            "url.parse('http://[::1')",
            "url.parse('http://@:/')",
            "url.parse('mailto:a@b')",
            "'%zz'.decodeQueryString()",
            "queryString.encode({'a': {'b': 1}})",
            "queryString.encode({1: [true, 2.5]})",
            "'x'.decodeBase64()",
            "'/w=='.decodeBase64()",
            "basic_auth.encode('', '')",
            "ip('')",
            "cidr('1.2.3.4/99')",
            "cidr('::/0').containsIP('1.2.3.4')",
            "[1].transformMap(i, v, i)",
            "{}.all(k, v, true)",
            "1.transformList(i, v, v)",
            "[1, 2].existsOne(i, v, 1 / 0 == 1)",
            "''.upper().lower()",
            "timestamp('2024-01-01T00:00:00Z').getHours('')",
            "timestamp('2024-01-01T00:00:00Z').getHours('+99:99')",
            "timestamp('2024-01-01T00:00:00Z').getHours('-24:00')",
            "timestamp('0001-01-01T00:00:00Z').getFullYear('-23:59')",
            "timestamp('9999-12-31T23:59:59Z').getDayOfYear('+23:59')",
            "timestamp('2024-01-01T00:00:00Z').getMinutes('é')",
            "timestamp('2024-01-01T00:00:00Z').getMinutes('+')",
            "timestamp('2024-01-01T00:00:00Z').getMinutes('America/')",
            "timestamp('9999-12-31T23:59:59Z') + duration('315576000000s')",
            "duration('9223372036854775807s')",
            "duration('-9223372036854775808ns')",
            "timestamp('2024-01-01T00:00:00Z') - timestamp('0001-01-01T00:00:00Z')",
            "int(timestamp('9999-12-31T23:59:59Z')) * 1000000000",
            "string(duration('315576000000s'))",
        ] {
            let _ = eval(src);
        }
    }

    #[test]
    fn the_crate_extensions_are_on() {
        assert_eq!(s("'TacoCat'.lowerAscii()"), "tacocat");
        assert_eq!(s("['a', 'b'].join('-')"), "a-b");
        assert_eq!(ok("[3, 1, 2].sort()"), ok("[1, 2, 3]"));
        assert_eq!(ok("[{'n': 2}, {'n': 1}].sortBy(x, x.n)[0].n"), ok("1"));
        assert_eq!(s("base64.encode(b'hello')"), "aGVsbG8=");
        assert_eq!(ok("lists.range(3)"), ok("[0, 1, 2]"));
    }
}

#[cfg(test)]
mod multibyte {
    use super::test_support::eval;

    /// The strings functions take offsets in code points; request data is full of multi-byte
    /// characters. Every function at every offset gives a value or an error, never a panic.
    #[test]
    fn string_functions_on_multibyte_text_never_panic() {
        let texts = [
            "",
            "é",
            "€x€",
            "a\u{10FFFF}b",
            "ßẞ",
            "\u{0}\u{301}e\u{301}",
            "İi",
        ];
        let calls = [
            "charAt(N)",
            "indexOf('x', N)",
            "indexOf('', N)",
            "indexOf('€', N)",
            "lastIndexOf('€', N)",
            "lastIndexOf('', N)",
            "substring(N)",
            "substring(N, N)",
            "substring(0, N)",
            "replace('', '€', N)",
            "replace('€', '', N)",
            "split('', N)",
            "split('€', N)",
            "reverse()",
            "upper()",
            "lower()",
            "upperAscii()",
            "trim()",
            "escapeUrl().unescapeUrl()",
            "encodeBase64().decodeBase64()",
            "decodeQueryString()",
            "isJson()",
            "parseUrl()",
            "format([N])",
            "matches('.{' + string(N) + '}')",
        ];
        let mut values = 0;
        for t in texts {
            for call in calls {
                for n in [-1, 0, 1, 2, 3, 4, 5, 100] {
                    let src = format!("'{t}'.{}", call.replace('N', &n.to_string()));
                    values += usize::from(eval(&src).is_ok());
                }
            }
        }
        // Most calls are in range: the test exercises the functions, not just the parser.
        assert!(values > 600, "{values} values");
    }
}
