//! Apache configuration syntax, as ModSecurity reads it: logical lines (a trailing backslash
//! joins the next line), `#` comments, and words that are bare or quoted (`"..."` or `'...'`,
//! where only a backslash before the quote character is an escape: `\"` is `"`, every other
//! backslash is kept for the regex or action list that follows).

use super::error::Reason;

/// One directive: its name and its arguments, unquoted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Directive {
    /// 1-based line where the directive starts.
    pub line: u32,
    pub name: String,
    pub args: Vec<String>,
}

/// Splits a file into directives; a line that cannot be read is an error for that line and the
/// rest are still read.
pub fn directives(text: &str) -> (Vec<Directive>, Vec<(u32, Reason)>) {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    let mut logical = String::new();
    let mut start = 0u32;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    for (i, raw) in text.lines().enumerate() {
        let number = u32::try_from(i).unwrap_or(u32::MAX).saturating_add(1);
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        if logical.is_empty() {
            start = number;
        }
        if let Some(head) = raw.strip_suffix('\\') {
            logical.push_str(head);
            continue;
        }
        logical.push_str(raw);
        let line = std::mem::take(&mut logical);
        directive(&line, start, &mut out, &mut errors);
    }
    if !logical.is_empty() {
        // A backslash on the last line: the directive ends with the file.
        directive(&logical, start, &mut out, &mut errors);
    }
    (out, errors)
}

/// Adds the directive one logical line holds (none when it is blank), or why it holds none.
fn directive(line: &str, start: u32, out: &mut Vec<Directive>, errors: &mut Vec<(u32, Reason)>) {
    match words(line) {
        Ok(words) => {
            let mut words = words.into_iter();
            if let Some(name) = words.next() {
                out.push(Directive {
                    line: start,
                    name,
                    args: words.collect(),
                });
            }
        }
        Err(reason) => errors.push((start, reason)),
    }
}

/// The words of one logical line; none for a blank line or a comment.
fn words(line: &str) -> Result<Vec<String>, Reason> {
    let mut out = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let Some(&first) = chars.peek() else {
            return Ok(out);
        };
        if out.is_empty() && first == '#' {
            return Ok(out);
        }
        let mut word = String::new();
        if first == '"' || first == '\'' {
            chars.next();
            let mut closed = false;
            while let Some(c) = chars.next() {
                if c == '\\' && chars.peek() == Some(&first) {
                    word.push(first);
                    chars.next();
                } else if c == first {
                    closed = true;
                    break;
                } else {
                    word.push(c);
                }
            }
            if !closed {
                return Err(Reason::UnterminatedQuote);
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                word.push(c);
            }
        }
        out.push(word);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continuations_comments_and_quotes() {
        let text = "# a comment\nSecRule ARGS \"@rx a\\\"b\\d\" \\\n    \"id:1,\\\n    pass\"\n\n  SecMarker END\n";
        let (d, e) = directives(text);
        assert!(e.is_empty(), "{e:?}");
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].line, 2);
        assert_eq!(d[0].name, "SecRule");
        assert_eq!(d[0].args, ["ARGS", "@rx a\"b\\d", "id:1,    pass"]);
        assert_eq!(d[1].line, 6);
        assert_eq!(d[1].args, ["END"]);
        let (d, _) = directives("\u{feff}SecMarker A\r\nSecMarker \\\r\n B\r\n");
        assert_eq!(d.len(), 2);
        assert_eq!(
            (d[0].name.as_str(), d[1].args[0].as_str()),
            ("SecMarker", "B")
        );
    }

    #[test]
    fn unterminated_quote_is_an_error_on_its_line() {
        let (d, e) = directives("SecMarker A\nSecRule ARGS \"@rx a\n  SecMarker B\n");
        assert_eq!(e, [(2, Reason::UnterminatedQuote)]);
        assert_eq!(d.len(), 2);
    }
}
