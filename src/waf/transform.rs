//! SecLang's transformations (`t:` functions) on bytes, as ModSecurity defines them: a decoded
//! value need not be UTF-8. Invalid encodings are left as they are, never an error.

use super::program::Transform;
use sha1::{Digest, Sha1};

/// The transformed value, or `None` when the transformation leaves the input as it is (most
/// values have nothing to decode: no copy is made for them).
pub(crate) fn apply(t: Transform, input: &[u8]) -> Option<Vec<u8>> {
    let has = |b: u8| input.contains(&b);
    let out = match t {
        Transform::UrlDecode if has(b'%') || has(b'+') => url_decode(input, true),
        Transform::UrlDecodeUni if has(b'%') || has(b'+') => url_decode_uni(input),
        // Only `&#` or `&` and a letter can start an entity.
        Transform::HtmlEntityDecode
            if input
                .windows(2)
                .any(|w| w[0] == b'&' && (w[1] == b'#' || w[1].is_ascii_alphanumeric())) =>
        {
            html_entity_decode(input)
        }
        Transform::JsDecode if has(b'\\') => js_decode(input),
        Transform::CssDecode if has(b'\\') => css_decode(input),
        Transform::EscapeSeqDecode if has(b'\\') => escape_seq_decode(input),
        Transform::Lowercase if input.iter().any(u8::is_ascii_uppercase) => {
            input.to_ascii_lowercase()
        }
        Transform::Uppercase if input.iter().any(u8::is_ascii_lowercase) => {
            input.to_ascii_uppercase()
        }
        Transform::RemoveNulls if has(0) => input.iter().copied().filter(|&b| b != 0).collect(),
        Transform::ReplaceNulls if has(0) => input
            .iter()
            .map(|&b| if b == 0 { b' ' } else { b })
            .collect(),
        Transform::CompressWhitespace if input.iter().any(|&b| is_space(b)) => {
            compress_whitespace(input)
        }
        Transform::RemoveWhitespace if input.iter().any(|&b| is_space(b)) => {
            input.iter().copied().filter(|&b| !is_space(b)).collect()
        }
        Transform::Trim => trim(input, true, true).to_vec(),
        Transform::TrimLeft => trim(input, true, false).to_vec(),
        Transform::TrimRight => trim(input, false, true).to_vec(),
        Transform::NormalizePath if has(b'/') || has(b'.') => normalise_path(input, false),
        Transform::NormalizePathWin if has(b'/') || has(b'\\') || has(b'.') => {
            normalise_path(input, true)
        }
        Transform::CmdLine => cmd_line(input),
        Transform::Base64Decode => base64_decode(input, false),
        Transform::Base64DecodeExt => base64_decode(input, true),
        Transform::HexDecode => hex_decode(input),
        Transform::HexEncode => hex_encode(input),
        Transform::UrlEncode => url_encode(input),
        Transform::Sha1 => Sha1::digest(input).to_vec(),
        Transform::Length => input.len().to_string().into_bytes(),
        Transform::ReplaceComments if input.windows(2).any(|w| w == b"/*") => {
            replace_comments(input)
        }
        Transform::RemoveComments => remove_comments(input),
        Transform::RemoveCommentsChar => remove_comments_char(input),
        Transform::Utf8ToUnicode if input.iter().any(|&b| b >= 0x80) => utf8_to_unicode(input),
        _ => return None,
    };
    (out != input).then_some(out)
}

/// Classes of bytes, as a bitset: a transformation can change a value only if the value holds
/// a byte of one of its [`triggers`]. A value's classes are read once; a chain none of whose
/// triggers the value holds leaves it as it is, with no pass over it per transformation.
pub(crate) mod class {
    pub const PERCENT_PLUS: u16 = 1 << 0;
    pub const AMP: u16 = 1 << 1;
    pub const BACKSLASH: u16 = 1 << 2;
    pub const UPPER: u16 = 1 << 3;
    pub const LOWER: u16 = 1 << 4;
    pub const NUL: u16 = 1 << 5;
    pub const SPACE: u16 = 1 << 6;
    pub const PATH: u16 = 1 << 7;
    pub const HIGH: u16 = 1 << 8;
    pub const COMMENT: u16 = 1 << 9;
    /// Every value has it: the transformations that may change any value.
    pub const ANY: u16 = 1 << 10;
}

const fn byte_class(b: u8) -> u16 {
    use class::*;
    let mut c = 0;
    if b == b'%' || b == b'+' {
        c |= PERCENT_PLUS;
    }
    if b == b'&' {
        c |= AMP;
    }
    if b == b'\\' {
        c |= BACKSLASH;
    }
    if b.is_ascii_uppercase() {
        c |= UPPER;
    }
    if b.is_ascii_lowercase() {
        c |= LOWER;
    }
    if b == 0 {
        c |= NUL;
    }
    if matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c | 0xa0) {
        c |= SPACE;
    }
    if b == b'/' || b == b'.' {
        c |= PATH;
    }
    if b >= 0x80 {
        c |= HIGH;
    }
    if matches!(b, b'/' | b'*' | b'-' | b'#' | b'<') {
        c |= COMMENT;
    }
    c
}

const CLASSES: [u16; 256] = {
    let mut t = [0u16; 256];
    let mut b = 0;
    while b < 256 {
        t[b] = byte_class(b as u8);
        b += 1;
    }
    t
};

/// The classes of the bytes `value` holds, and [`class::ANY`].
pub(crate) fn classes(value: &[u8]) -> u16 {
    value
        .iter()
        .fold(class::ANY, |acc, &b| acc | CLASSES[b as usize])
}

/// The byte classes without which `t` leaves a value as it is (the guards of [`apply`]).
pub(crate) fn triggers(t: Transform) -> u16 {
    use class::*;
    match t {
        Transform::UrlDecode | Transform::UrlDecodeUni => PERCENT_PLUS,
        Transform::HtmlEntityDecode => AMP,
        Transform::JsDecode | Transform::CssDecode | Transform::EscapeSeqDecode => BACKSLASH,
        Transform::Lowercase => UPPER,
        Transform::Uppercase => LOWER,
        Transform::RemoveNulls | Transform::ReplaceNulls => NUL,
        Transform::CompressWhitespace
        | Transform::RemoveWhitespace
        | Transform::Trim
        | Transform::TrimLeft
        | Transform::TrimRight => SPACE,
        Transform::NormalizePath => PATH,
        Transform::NormalizePathWin => PATH | BACKSLASH,
        Transform::ReplaceComments | Transform::RemoveComments | Transform::RemoveCommentsChar => {
            COMMENT
        }
        Transform::Utf8ToUnicode => HIGH,
        Transform::CmdLine
        | Transform::Base64Decode
        | Transform::Base64DecodeExt
        | Transform::HexDecode
        | Transform::HexEncode
        | Transform::UrlEncode
        | Transform::Sha1
        | Transform::Length => ANY,
    }
}

/// The byte two hex digits at `at` spell (`\xHH` escapes).
fn hex_pair(input: &[u8], at: usize) -> Option<u8> {
    Some(hex(*input.get(at)?)? << 4 | hex(*input.get(at + 1)?)?)
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn push_char(out: &mut Vec<u8>, cp: u32) {
    // Full-width forms (U+FF01..U+FF5E) are how IIS-era evasions spell ASCII.
    let cp = if (0xFF01..=0xFF5E).contains(&cp) {
        cp - 0xFEE0
    } else {
        cp
    };
    match char::from_u32(cp) {
        Some(c) => {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        }
        None => out.push(b'?'),
    }
}

/// Decodes `%XX` (and `+` as space) once; invalid escapes stay as they are.
pub(crate) fn url_decode(input: &[u8], plus_as_space: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        let b = input[i];
        if b == b'%' && i + 2 < input.len() {
            if let (Some(h), Some(l)) = (hex(input[i + 1]), hex(input[i + 2])) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        if b == b'+' && plus_as_space {
            out.push(b' ');
        } else {
            out.push(b);
        }
        i += 1;
    }
    out
}

fn url_decode_uni(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        let b = input[i];
        if b == b'%' {
            if i + 5 < input.len() && matches!(input[i + 1], b'u' | b'U') {
                let digits = &input[i + 2..i + 6];
                if digits.iter().all(|d| hex(*d).is_some()) {
                    let cp = digits
                        .iter()
                        .fold(0u32, |acc, d| acc << 4 | hex(*d).unwrap_or(0) as u32);
                    push_char(&mut out, cp);
                    i += 6;
                    continue;
                }
            }
            if i + 2 < input.len() {
                if let (Some(h), Some(l)) = (hex(input[i + 1]), hex(input[i + 2])) {
                    out.push(h << 4 | l);
                    i += 3;
                    continue;
                }
            }
        }
        out.push(if b == b'+' { b' ' } else { b });
        i += 1;
    }
    out
}

fn html_entity_decode(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        if input[i] != b'&' {
            out.push(input[i]);
            i += 1;
            continue;
        }
        let rest = &input[i + 1..];
        // Numeric: &#DDD; or &#xHH; (the semicolon is optional, as browsers accept).
        if rest.first() == Some(&b'#') {
            let (radix, start) = if matches!(rest.get(1), Some(b'x') | Some(b'X')) {
                (16, 2)
            } else {
                (10, 1)
            };
            let digits: usize = rest[start..]
                .iter()
                .take_while(|b| {
                    if radix == 16 {
                        b.is_ascii_hexdigit()
                    } else {
                        b.is_ascii_digit()
                    }
                })
                .count();
            if digits > 0 {
                // Any number of digits, as ModSecurity's strtol reads them
                // (`&#000000000000123;` is `{`); a value past Unicode is U+FFFD.
                let cp = rest[start..start + digits]
                    .iter()
                    .filter_map(|d| (*d as char).to_digit(radix))
                    .fold(0u32, |acc, d| acc.saturating_mul(radix).saturating_add(d));
                push_char(&mut out, if cp > 0x10FFFF { 0xFFFD } else { cp });
                let mut used = 1 + start + digits;
                if rest.get(start + digits) == Some(&b';') {
                    used += 1;
                }
                i += used;
                continue;
            }
        } else {
            const NAMED: &[(&[u8], u8)] = &[
                (b"lt", b'<'),
                (b"gt", b'>'),
                (b"amp", b'&'),
                (b"quot", b'"'),
                (b"apos", b'\''),
                (b"nbsp", b' '),
                (b"colon", b':'),
                (b"lpar", b'('),
                (b"rpar", b')'),
                (b"sol", b'/'),
                (b"tab", b'\t'),
                (b"newline", b'\n'),
            ];
            let mut hit = None;
            for (name, ch) in NAMED {
                if rest.len() >= name.len() && rest[..name.len()].eq_ignore_ascii_case(name) {
                    hit = Some((name.len(), *ch));
                    break;
                }
            }
            if let Some((n, ch)) = hit {
                out.push(ch);
                i += 1 + n;
                if input.get(i) == Some(&b';') {
                    i += 1;
                }
                continue;
            }
        }
        out.push(b'&');
        i += 1;
    }
    out
}

fn js_decode(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        if input[i] != b'\\' || i + 1 >= input.len() {
            out.push(input[i]);
            i += 1;
            continue;
        }
        let n = input[i + 1];
        match n {
            b'x' => match hex_pair(input, i + 2) {
                Some(b) => {
                    out.push(b);
                    i += 4;
                }
                None => {
                    out.push(b'x');
                    i += 2;
                }
            },
            b'u' => {
                let digits = input.get(i + 2..i + 6);
                match digits {
                    Some(d) if d.iter().all(|b| hex(*b).is_some()) => {
                        let cp = d
                            .iter()
                            .fold(0u32, |acc, b| acc << 4 | hex(*b).unwrap_or(0) as u32);
                        push_char(&mut out, cp);
                        i += 6;
                    }
                    _ => {
                        out.push(b'u');
                        i += 2;
                    }
                }
            }
            b'0'..=b'7' => {
                let mut v: u32 = 0;
                let mut j = i + 1;
                while j < input.len() && j < i + 4 && (b'0'..=b'7').contains(&input[j]) {
                    v = v * 8 + (input[j] - b'0') as u32;
                    j += 1;
                }
                out.push((v & 0xFF) as u8);
                i = j;
            }
            b'n' => {
                out.push(b'\n');
                i += 2;
            }
            b'r' => {
                out.push(b'\r');
                i += 2;
            }
            b't' => {
                out.push(b'\t');
                i += 2;
            }
            other => {
                out.push(other);
                i += 2;
            }
        }
    }
    out
}

fn css_decode(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        if input[i] != b'\\' || i + 1 >= input.len() {
            out.push(input[i]);
            i += 1;
            continue;
        }
        let digits = input[i + 1..]
            .iter()
            .take(6)
            .take_while(|b| b.is_ascii_hexdigit())
            .count();
        if digits > 0 {
            let cp = input[i + 1..i + 1 + digits]
                .iter()
                .fold(0u32, |acc, b| acc << 4 | hex(*b).unwrap_or(0) as u32);
            push_char(&mut out, cp);
            i += 1 + digits;
            if input.get(i).is_some_and(|b| b.is_ascii_whitespace()) {
                i += 1;
            }
        } else if input[i + 1] == b'\n' {
            i += 2;
        } else {
            out.push(input[i + 1]);
            i += 2;
        }
    }
    out
}

#[inline]
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c | 0xa0)
}

fn compress_whitespace(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut in_space = false;
    for &b in input {
        if is_space(b) {
            if !in_space {
                out.push(b' ');
            }
            in_space = true;
        } else {
            out.push(b);
            in_space = false;
        }
    }
    out
}

/// ModSecurity's `normalizePath`: `.` and `..` segments and repeated slashes resolved;
/// `normalizePathWin` first turns backslashes into slashes.
fn normalise_path(input: &[u8], windows: bool) -> Vec<u8> {
    let sep = |b: &u8| *b == b'/' || (windows && *b == b'\\');
    let absolute = input.first().is_some_and(sep);
    let trailing = input.last().is_some_and(sep) && input.len() > 1;
    let mut segs: Vec<&[u8]> = Vec::new();
    for seg in input.split(sep) {
        match seg {
            b"" | b"." => {}
            b".." => {
                if segs.last().is_some_and(|s| *s != b"..") {
                    segs.pop();
                } else if !absolute {
                    segs.push(seg);
                }
            }
            _ => segs.push(seg),
        }
    }
    let mut out = Vec::with_capacity(input.len());
    if absolute {
        out.push(b'/');
    }
    for (i, s) in segs.iter().enumerate() {
        if i > 0 {
            out.push(b'/');
        }
        out.extend_from_slice(s);
    }
    if trailing && out.last() != Some(&b'/') {
        out.push(b'/');
    }
    out
}

fn cmd_line(input: &[u8]) -> Vec<u8> {
    let mut out: Vec<u8> = Vec::with_capacity(input.len());
    for &b in input {
        match b {
            b'\\' | b'"' | b'\'' | b'^' => {}
            b',' | b';' => push_space(&mut out),
            b if is_space(b) => push_space(&mut out),
            b'/' | b'(' => {
                if out.last() == Some(&b' ') {
                    out.pop();
                }
                out.push(b);
            }
            b => out.push(b.to_ascii_lowercase()),
        }
    }
    out
}

fn push_space(out: &mut Vec<u8>) {
    if out.last() != Some(&b' ') {
        out.push(b' ');
    }
}

/// `base64Decode` stops at the first byte outside the alphabet; `base64DecodeExt` skips it.
fn base64_decode(input: &[u8], lenient: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for &b in input {
        let v = match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            b'=' if !lenient => break,
            b if is_space(b) || lenient => continue,
            _ => break,
        };
        acc = acc << 6 | v as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

fn replace_comments(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        if input[i] == b'/' && input.get(i + 1) == Some(&b'*') {
            let end = input[i + 2..]
                .windows(2)
                .position(|w| w == b"*/")
                .map(|p| i + 2 + p + 2)
                .unwrap_or(input.len());
            out.push(b' ');
            i = end;
        } else {
            out.push(input[i]);
            i += 1;
        }
    }
    out
}

fn trim(input: &[u8], left: bool, right: bool) -> &[u8] {
    let mut s = input;
    while left && s.first().is_some_and(|&b| is_space(b)) {
        s = &s[1..];
    }
    while right && s.last().is_some_and(|&b| is_space(b)) {
        s = &s[..s.len() - 1];
    }
    s
}

/// ANSI C escapes: `\n`, `\xHH`, `\0oo` ...; an unknown escape drops the backslash.
fn escape_seq_decode(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        let Some(&n) = input.get(i + 1).filter(|_| input[i] == b'\\') else {
            out.push(input[i]);
            i += 1;
            continue;
        };
        let simple = match n {
            b'a' => Some(7),
            b'b' => Some(8),
            b'f' => Some(12),
            b'n' => Some(b'\n'),
            b'r' => Some(b'\r'),
            b't' => Some(b'\t'),
            b'v' => Some(11),
            b'\\' | b'?' | b'\'' | b'"' => Some(n),
            _ => None,
        };
        if let Some(c) = simple {
            out.push(c);
            i += 2;
        } else if n == b'x' {
            match hex_pair(input, i + 2) {
                Some(b) => {
                    out.push(b);
                    i += 4;
                }
                None => {
                    out.push(n);
                    i += 2;
                }
            }
        } else if (b'0'..=b'7').contains(&n) {
            let mut v: u32 = 0;
            let mut j = i + 1;
            while j < input.len() && j < i + 4 && (b'0'..=b'7').contains(&input[j]) {
                v = v * 8 + u32::from(input[j] - b'0');
                j += 1;
            }
            out.push((v & 0xFF) as u8);
            i = j;
        } else {
            out.push(n);
            i += 2;
        }
    }
    out
}

fn hex_decode(input: &[u8]) -> Vec<u8> {
    input
        .chunks(2)
        .filter_map(|p| match p {
            [h, l] => Some(hex(*h)? << 4 | hex(*l)?),
            _ => None,
        })
        .collect()
}

fn hex_encode(input: &[u8]) -> Vec<u8> {
    const D: &[u8; 16] = b"0123456789abcdef";
    let mut out = Vec::with_capacity(input.len() * 2);
    for &b in input {
        out.push(D[usize::from(b >> 4)]);
        out.push(D[usize::from(b & 15)]);
    }
    out
}

fn url_encode(input: &[u8]) -> Vec<u8> {
    const D: &[u8; 16] = b"0123456789abcdef";
    let mut out = Vec::with_capacity(input.len());
    for &b in input {
        match b {
            b' ' => out.push(b'+'),
            b if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'*') => out.push(b),
            b => out.extend_from_slice(&[b'%', D[usize::from(b >> 4)], D[usize::from(b & 15)]]),
        }
    }
    out
}

/// `removeComments`: `/* ... */`, `<!-- ... -->`, and `--` or `#` to the end of the value.
fn remove_comments(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        let rest = &input[i..];
        if rest.starts_with(b"/*") {
            i = find_from(input, i + 2, b"*/").map_or(input.len(), |p| p + 2);
        } else if rest.starts_with(b"<!--") {
            i = find_from(input, i + 4, b"-->").map_or(input.len(), |p| p + 3);
        } else if rest.starts_with(b"--") || rest[0] == b'#' {
            break;
        } else {
            out.push(rest[0]);
            i += 1;
        }
    }
    out
}

fn find_from(hay: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    hay.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

/// `removeCommentsChar`: drops the comment markers `/*`, `*/`, `--`, `#` themselves.
fn remove_comments_char(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        let rest = &input[i..];
        if rest.starts_with(b"/*") || rest.starts_with(b"*/") || rest.starts_with(b"--") {
            i += 2;
        } else if rest[0] == b'#' {
            i += 1;
        } else {
            out.push(rest[0]);
            i += 1;
        }
    }
    out
}

/// `utf8toUnicode`: each multi-byte UTF-8 character becomes `%uXXXX`; invalid bytes stay.
fn utf8_to_unicode(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    for chunk in input.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c.is_ascii() {
                out.push(c as u8);
            } else {
                out.extend_from_slice(format!("%u{:04x}", u32::from(c) & 0xFFFF).as_bytes());
            }
        }
        out.extend_from_slice(chunk.invalid());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(tf: Transform, s: &str) -> String {
        String::from_utf8_lossy(&apply(tf, s.as_bytes()).unwrap_or_else(|| s.as_bytes().to_vec()))
            .into_owned()
    }

    const ALL: [Transform; 29] = [
        Transform::Base64Decode,
        Transform::Base64DecodeExt,
        Transform::CmdLine,
        Transform::CompressWhitespace,
        Transform::CssDecode,
        Transform::EscapeSeqDecode,
        Transform::HexDecode,
        Transform::HexEncode,
        Transform::HtmlEntityDecode,
        Transform::JsDecode,
        Transform::Length,
        Transform::Lowercase,
        Transform::NormalizePath,
        Transform::NormalizePathWin,
        Transform::RemoveComments,
        Transform::RemoveCommentsChar,
        Transform::RemoveNulls,
        Transform::RemoveWhitespace,
        Transform::ReplaceComments,
        Transform::ReplaceNulls,
        Transform::Sha1,
        Transform::Trim,
        Transform::TrimLeft,
        Transform::TrimRight,
        Transform::Uppercase,
        Transform::UrlDecode,
        Transform::UrlDecodeUni,
        Transform::UrlEncode,
        Transform::Utf8ToUnicode,
    ];

    /// The engine skips a transformation when the value holds none of its triggers: that must
    /// never skip a change. Random values built from the bytes outside a transformation's
    /// triggers must come out as they went in.
    #[test]
    fn triggers_are_sound() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for t in ALL {
            let quiet: Vec<u8> = (0..=255u8)
                .filter(|&b| CLASSES[b as usize] & triggers(t) == 0)
                .collect();
            if triggers(t) & class::ANY != 0 {
                continue;
            }
            assert!(!quiet.is_empty(), "{t:?}");
            for _ in 0..4000 {
                let len = (next() % 24) as usize;
                let value: Vec<u8> = (0..len)
                    .map(|_| quiet[(next() % quiet.len() as u64) as usize])
                    .collect();
                assert_eq!(classes(&value) & triggers(t), 0);
                assert!(
                    apply(t, &value).is_none(),
                    "{t:?} changed {:?} though it holds none of its triggers",
                    String::from_utf8_lossy(&value)
                );
            }
        }
    }

    /// A trigger present does make some values change (the classes are not vacuous).
    #[test]
    fn triggers_name_bytes_that_change_values() {
        for (t, v) in [
            (Transform::UrlDecode, "a%41"),
            (Transform::HtmlEntityDecode, "&lt;"),
            (Transform::JsDecode, "\\x41"),
            (Transform::Lowercase, "A"),
            (Transform::RemoveNulls, "a\0"),
            (Transform::CompressWhitespace, "a \t b"),
            (Transform::NormalizePath, "a/./b"),
            (Transform::RemoveComments, "a/*b*/"),
            (Transform::Utf8ToUnicode, "é"),
        ] {
            assert_ne!(classes(v.as_bytes()) & triggers(t), 0, "{t:?}");
            assert!(apply(t, v.as_bytes()).is_some(), "{t:?} on {v:?}");
        }
    }

    #[test]
    fn decoders() {
        assert_eq!(t(Transform::UrlDecodeUni, "a%27+b%u0027%uff1c%"), "a' b'<%");
        assert_eq!(t(Transform::UrlDecodeUni, "%2"), "%2");
        assert_eq!(t(Transform::UrlDecode, "a%27+b%u0027"), "a' b%u0027");
        assert_eq!(
            t(
                Transform::HtmlEntityDecode,
                "&lt;script&gt;&#97;&#x6c;ert&#40x&"
            ),
            "<script>alert(x&"
        );
        assert_eq!(
            t(Transform::JsDecode, r"\x3cs\u0063ript\076\"),
            "<script>\\"
        );
        assert_eq!(t(Transform::CssDecode, r"\65 xpression\("), "expression(");
        assert_eq!(t(Transform::Base64Decode, "PHNjcmlwdD4="), "<script>");
        assert_eq!(
            t(
                Transform::HtmlEntityDecode,
                "&#x24;&#0000000000000000000123;"
            ),
            "${"
        );
        assert_eq!(t(Transform::Base64Decode, "!!"), "");
        assert_eq!(t(Transform::Base64DecodeExt, "PHNj!cmlwdD4="), "<script>");
        assert_eq!(t(Transform::EscapeSeqDecode, r"a\x41\n\101\q"), "aA\nAq");
        assert_eq!(t(Transform::HexDecode, "414a"), "AJ");
        assert_eq!(t(Transform::HexEncode, "AJ"), "414a");
        assert_eq!(
            t(Transform::Utf8ToUnicode, "a\u{e9}\u{ff1c}"),
            "a%u00e9%uff1c"
        );
        assert_eq!(t(Transform::Length, "abcd"), "4");
        assert_eq!(
            apply(Transform::Sha1, b"abc").map(|d| hex_encode(&d)),
            Some(b"a9993e364706816aba3e25717850c26c9cd0d89d".to_vec()),
            "sha1 is the 20 raw bytes (FIPS 180 test vector)"
        );
        assert_eq!(t(Transform::UrlEncode, "a b/é"), "a+b%2f%c3%a9");
    }

    #[test]
    fn normalisers() {
        assert_eq!(
            t(Transform::NormalizePath, "/a/./b/../../../etc//passwd"),
            "/etc/passwd"
        );
        assert_eq!(
            t(Transform::NormalizePathWin, "..\\..\\windows\\win.ini"),
            "../../windows/win.ini"
        );
        assert_eq!(t(Transform::NormalizePath, "a\\..\\b"), "a\\..\\b");
        assert_eq!(
            t(Transform::CmdLine, "C^AT  /e\"tc\"/pa's'swd;id"),
            "cat/etc/passwd id"
        );
        assert_eq!(t(Transform::CompressWhitespace, "a \t\r\n b"), "a b");
        assert_eq!(t(Transform::RemoveWhitespace, "a \t\r\n b"), "ab");
        assert_eq!(
            t(Transform::ReplaceComments, "union/**/select/*x"),
            "union select "
        );
        assert_eq!(t(Transform::RemoveComments, "a/*x*/b--c"), "ab");
        assert_eq!(t(Transform::RemoveCommentsChar, "a/*x*/b--c#"), "axbc");
        assert_eq!(t(Transform::RemoveNulls, "a\0b"), "ab");
        assert_eq!(t(Transform::ReplaceNulls, "a\0b"), "a b");
        assert_eq!(t(Transform::Trim, " \ta b\n"), "a b");
    }

    #[test]
    fn never_panics() {
        let all = ALL;
        let mut rng = fastrand::Rng::with_seed(0x2545_F491_4F6C_DD1D);
        const SPECIAL: &[u8] = b"%+&#;\\/*'\"^,-<!>x0u7Aa \0\t\xa0\xc3\xa9\xff";
        for _ in 0..20_000 {
            let len = rng.usize(..24);
            let v: Vec<u8> = (0..len)
                .map(|_| SPECIAL[rng.usize(..SPECIAL.len())])
                .collect();
            for tf in all {
                if let Some(out) = apply(tf, &v) {
                    assert_ne!(out, v, "{tf:?}: Some means changed");
                }
            }
        }
    }
}
