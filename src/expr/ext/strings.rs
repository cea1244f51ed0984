//! The strings extension comes from `cel` (`cel::extensions::strings`); ngrok adds the
//! Unicode `lower()` and `upper()`.

use super::{member, overload, str_arg, string};
use cel::common::types::STRING_TYPE;
use cel::{DeclarationError, Env, ExecutionError, Value};

pub fn register(env: &mut Env) -> Result<(), DeclarationError> {
    member(env, "lower", STRING_TYPE, vec![], overload!(lower))?;
    member(env, "upper", STRING_TYPE, vec![], overload!(upper))?;
    Ok(())
}

fn lower(args: &[Value]) -> Result<Value, ExecutionError> {
    Ok(string(str_arg(args, 0, "lower")?.to_lowercase()))
}

fn upper(args: &[Value]) -> Result<Value, ExecutionError> {
    Ok(string(str_arg(args, 0, "upper")?.to_uppercase()))
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{eval, ok, s};
    use cel::Value;

    #[test]
    fn unicode_and_ascii_case() {
        assert_eq!(s("'ÀbÇ'.lower()"), "àbç");
        assert_eq!(s("'straße'.upper()"), "STRASSE");
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
