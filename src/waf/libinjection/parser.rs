//! The token parsers libinjection's `char_parse_map` names, shared by the generated table
//! (`sqli_data.rs`) and the tokenizer (`sqli.rs`).

/// The parser `char_parse_map` names for a token's first byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Parser {
    White,
    Operator1,
    Operator2,
    Other,
    Char,
    Hash,
    Dash,
    Slash,
    Backslash,
    String,
    EString,
    UString,
    QString,
    NqString,
    BString,
    XString,
    BWord,
    Word,
    Tick,
    Var,
    Money,
    Number,
}
