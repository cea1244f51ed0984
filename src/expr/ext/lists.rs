//! Lists and maps: `cel::extensions::lists` provides `slice`, `flatten([depth])`, `sort`,
//! `sortBy`, `distinct`, `reverse` and `lists.range`; the standard macros (`all`, `exists`,
//! `exists_one`, `filter`, `map`) bind a map's keys. Nothing to add, so nothing registered here:
//! the tests pin down the behaviour ngrok documents.

use cel::{DeclarationError, Env};

pub fn register(_env: &mut Env) -> Result<(), DeclarationError> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{eval, ok};

    #[test]
    fn list_macros() {
        assert_eq!(ok("[1, 2, 3, 4].slice(1, 3)"), ok("[2, 3]"));
        assert_eq!(ok("[1, [2, [3, [4]]]].flatten()"), ok("[1, 2, [3, [4]]]"));
        assert_eq!(ok("[1, [2, [3, [4]]]].flatten(2)"), ok("[1, 2, 3, [4]]"));
        assert_eq!(ok("['b', 'c', 'a'].sort()"), ok("['a', 'b', 'c']"));
        assert_eq!(ok("[1, 2, 1, 3].distinct()"), ok("[1, 2, 3]"));
        assert_eq!(ok("lists.range(4)"), ok("[0, 1, 2, 3]"));
        assert_eq!(
            ok("[{'n': 'b', 'a': 2}, {'n': 'a', 'a': 1}].sortBy(p, p.a).map(p, p.n)"),
            ok("['a', 'b']")
        );
        assert_eq!(ok("{'a': 1, 'b': 2}.filter(k, k != 'a')"), ok("['b']"));
        assert!(eval("[1, 2].slice(1, 5)").is_err());
        assert!(eval("[1, 'a'].sort()").is_err());
    }
}
