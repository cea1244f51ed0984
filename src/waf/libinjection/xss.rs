//! libinjection's XSS detector (`libinjection_xss.c`, libinjection 4.0.0): tokenizes the input as
//! HTML from five starting contexts and flags dangerous tags, attributes, URLs and comments.

use super::html5::{Html5, Start, TokenType};
use super::xss_events::EVENTS;

/// `attribute_t`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Attr {
    None,
    /// always banned
    Black,
    /// the value is URL-like
    Url,
    Style,
    /// the value names an attribute
    Indirect,
}

/// `BLACKATTR`.
const BLACK_ATTRS: [(&[u8], Attr); 20] = [
    (b"ACTION", Attr::Url),             // form
    (b"ATTRIBUTENAME", Attr::Indirect), // SVG
    (b"BY", Attr::Url),                 // SVG
    (b"BACKGROUND", Attr::Url),         // IE6, O11
    (b"DATAFORMATAS", Attr::Black),     // IE
    (b"DATASRC", Attr::Black),          // IE
    (b"DYNSRC", Attr::Url),             // obsolete img attribute
    (b"FILTER", Attr::Style),           // Opera, SVG inline style
    (b"FORMACTION", Attr::Url),         // HTML 5
    (b"FOLDER", Attr::Url),             // A tags, IE only
    (b"FROM", Attr::Url),               // SVG
    (b"HANDLER", Attr::Url),            // SVG Tiny, Opera
    (b"HREF", Attr::Url),
    (b"LOWSRC", Attr::Url), // obsolete img attribute
    (b"POSTER", Attr::Url), // Opera 10, 11
    (b"SRC", Attr::Url),
    (b"STYLE", Attr::Style),
    (b"TO", Attr::Url),     // SVG
    (b"VALUES", Attr::Url), // SVG
    (b"XLINK:HREF", Attr::Url),
];

/// `BLACKTAG`.
const BLACK_TAGS: [&[u8]; 20] = [
    b"APPLET",
    b"BASE",
    b"COMMENT",
    b"EMBED",
    b"FRAME",
    b"FRAMESET",
    b"HANDLER",
    b"IFRAME",
    b"IMPORT",
    b"ISINDEX",
    b"LINK",
    b"LISTENER",
    b"META",
    b"NOSCRIPT",
    b"OBJECT",
    b"SCRIPT",
    b"STYLE",
    b"VMLFRAME",
    b"XML",
    b"XSS",
];

/// `cstrcasecmp_with_null(a, b, n) == 0`: `b` without its NULs, upper-cased, equals `a`.
fn eq_upper_skip_nul(a: &[u8], b: impl IntoIterator<Item = u8>) -> bool {
    let mut a = a.iter();
    for cb in b {
        if cb == 0 {
            continue;
        }
        if a.next() != Some(&cb.to_ascii_uppercase()) {
            return false;
        }
    }
    a.next().is_none()
}

/// `n` bytes of `s` from `at`; past the end the C reads the string's terminator (NUL).
fn window(s: &[u8], at: usize, n: usize) -> impl Iterator<Item = u8> + '_ {
    (0..n).map(move |i| s.get(at.saturating_add(i)).copied().unwrap_or(0))
}

/// `is_black_tag`.
fn is_black_tag(tag: &[u8]) -> bool {
    if tag.len() < 3 {
        return false;
    }
    if BLACK_TAGS
        .iter()
        .any(|b| eq_upper_skip_nul(b, tag.iter().copied()))
    {
        return true;
    }
    // anything SVG or XSL(T)
    let p = tag.get(..3).unwrap_or(&[]);
    p.eq_ignore_ascii_case(b"SVG") || p.eq_ignore_ascii_case(b"XSL")
}

/// `is_black_attr` of the token `s[start..start + len]`. The event-name comparison reads
/// `strlen(name)` bytes after "on", which may run past the token into the input.
fn is_black_attr(s: &[u8], start: usize, len: usize) -> Attr {
    let token = s.get(start..start.saturating_add(len)).unwrap_or(&[]);
    if len < 2 {
        return Attr::None;
    }
    if len >= 5 {
        // JavaScript on* event handlers
        if token
            .get(..2)
            .is_some_and(|p| p.eq_ignore_ascii_case(b"on"))
        {
            let after_on = start + 2;
            if EVENTS
                .iter()
                .any(|name| eq_upper_skip_nul(name, window(s, after_on, name.len())))
            {
                return Attr::Black;
            }
        }
        // XMLNS and XLINK can create arbitrary tags
        let head = token.get(..5).unwrap_or(&[]);
        if eq_upper_skip_nul(b"XMLNS", head.iter().copied())
            || eq_upper_skip_nul(b"XLINK", head.iter().copied())
        {
            return Attr::Black;
        }
    }
    BLACK_ATTRS
        .iter()
        .find(|(name, _)| eq_upper_skip_nul(name, token.iter().copied()))
        .map_or(Attr::None, |(_, a)| *a)
}

/// `html_decode_char_at`: the character at the start of `src`, decoding a numeric
/// character reference; and the number of bytes it took.
fn html_decode_char_at(src: &[u8]) -> (i32, usize) {
    let Some(&first) = src.first() else {
        return (-1, 0);
    };
    if first != b'&' || src.len() < 2 {
        return (i32::from(first), 1);
    }
    if src.get(1) != Some(&b'#') {
        // named entities do not matter here
        return (i32::from(b'&'), 1);
    }
    let len = src.len();
    let (radix, mut i) = match src.get(2) {
        Some(b'x' | b'X') => (16, 3),
        _ => (10, 2),
    };
    let digit = |i: usize| src.get(i).and_then(|&c| (c as char).to_digit(radix));
    let Some(d) = digit(i) else {
        return (i32::from(b'&'), 1);
    };
    let mut val = d as i32;
    i += 1;
    while i < len {
        let c = src.get(i).copied().unwrap_or(0);
        if c == b';' {
            return (val, i + 1);
        }
        let Some(d) = digit(i) else {
            return (val, i);
        };
        val = val * radix as i32 + d as i32;
        if val > 0x1000FF {
            return (i32::from(b'&'), 1);
        }
        i += 1;
    }
    (val, i)
}

/// `htmlencode_startswith`: does the HTML-encoded `b` start with `a` (upper case), ignoring
/// leading whitespace/control characters and any NUL or '\n'?
fn htmlencode_startswith(a: &[u8], mut b: &[u8]) -> bool {
    let mut a = a.iter().peekable();
    let mut first = true;
    while !b.is_empty() {
        let Some(&&want) = a.peek() else {
            return true;
        };
        let (cb, consumed) = html_decode_char_at(b);
        b = b.get(consumed.max(1)..).unwrap_or(&[]);
        if first && cb <= 32 {
            continue;
        }
        first = false;
        if cb == 0 || cb == 10 {
            continue;
        }
        let cb = if (i32::from(b'a')..=i32::from(b'z')).contains(&cb) {
            cb - 0x20
        } else {
            cb
        };
        // the C compares as `char`: the low byte
        if want != (cb & 0xff) as u8 {
            return false;
        }
        a.next();
    }
    a.peek().is_none()
}

/// `is_black_url`: javascript:, vbscript:, data: and view-source: URLs.
fn is_black_url(mut s: &[u8]) -> bool {
    // skip whitespace, control and high bytes (signed `char` <= 32 or >= 127)
    while let Some((&c, rest)) = s.split_first() {
        if c > 32 && c < 127 {
            break;
        }
        s = rest;
    }
    [&b"DATA"[..], b"VIEW-SOURCE", b"JAVA", b"VBSCRIPT"]
        .iter()
        .any(|p| htmlencode_startswith(p, s))
}

/// `libinjection_is_xss`: XSS when read from one starting context.
pub(crate) fn is_xss(s: &[u8], start: Start) -> bool {
    let mut h5 = Html5::new(s, start);
    let mut attr = Attr::None;
    while h5.next() {
        if h5.token_type != TokenType::AttrValue {
            attr = Attr::None;
        }
        let token = h5.token();
        match h5.token_type {
            TokenType::Doctype => return true,
            TokenType::TagNameOpen => {
                if is_black_tag(token) {
                    return true;
                }
            }
            TokenType::AttrName => attr = is_black_attr(s, h5.token_start, h5.token_len),
            TokenType::AttrValue => {
                match attr {
                    Attr::None => {}
                    Attr::Black | Attr::Style => return true,
                    Attr::Url => {
                        if is_black_url(token) {
                            return true;
                        }
                    }
                    Attr::Indirect => {
                        if is_black_attr(s, h5.token_start, h5.token_len) != Attr::None {
                            return true;
                        }
                    }
                }
                attr = Attr::None;
            }
            TokenType::TagComment => {
                // IE ends tags with '`'
                if token.contains(&b'`') {
                    return true;
                }
                if token.len() > 3 {
                    let head = token.get(..3).unwrap_or(&[]);
                    // IE conditional comments, XML
                    let cond = head.first() == Some(&b'[')
                        && head
                            .get(1..3)
                            .is_some_and(|p| p.eq_ignore_ascii_case(b"if"));
                    if cond || head.eq_ignore_ascii_case(b"xml") {
                        return true;
                    }
                }
                if token.len() > 5 {
                    // IE's <?import pseudo-tag; XML entity definitions
                    let head = token.get(..6).unwrap_or(&[]);
                    if eq_upper_skip_nul(b"IMPORT", head.iter().copied())
                        || eq_upper_skip_nul(b"ENTITY", head.iter().copied())
                    {
                        return true;
                    }
                }
            }
            TokenType::DataText
            | TokenType::TagNameClose
            | TokenType::TagNameSelfClose
            | TokenType::TagClose => {}
        }
    }
    false
}

/// `libinjection_xss`: XSS from any of the five starting contexts.
pub(crate) fn detect(s: &[u8]) -> bool {
    [
        Start::Data,
        Start::ValueNoQuote,
        Start::ValueSingleQuote,
        Start::ValueDoubleQuote,
        Start::ValueBackQuote,
    ]
    .into_iter()
    .any(|start| is_xss(s, start))
}
