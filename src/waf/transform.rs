//! Transformations (CRS's `t:` functions) on bytes: a decoded value need not be UTF-8.

/// The transformations rules can ask for, applied in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Transform {
    /// `%XX`, `+`, and IIS's `%uXXXX` (full-width ASCII folded to ASCII).
    UrlDecodeUni,
    HtmlEntityDecode,
    JsDecode,
    CssDecode,
    Lowercase,
    RemoveNulls,
    CompressWhitespace,
    /// Resolves `.` and `..` segments and repeated slashes; backslashes count as slashes.
    NormalisePath,
    /// Windows/Unix shell normalisation: drops `\ " ' ^`, spaces before `/` and `(`, turns `,`
    /// and `;` into spaces, compresses whitespace, lowercases.
    CmdLine,
    /// Available to rules; no paranoia-level-1 rule needs it yet (tested below).
    #[cfg_attr(
        not(test),
        expect(dead_code, reason = "no paranoia-level-1 rule uses it yet")
    )]
    Base64Decode,
    /// `/* ... */` comments become a space (SQL evasion).
    ReplaceComments,
    /// Ours (not CRS's): drops the shell's quoting tricks (`c'a't`, `w\"h\"o`, `c^md`, `c\at`)
    /// but keeps separators (`;`, `|`, `&`), which `CmdLine` turns into spaces.
    ShellUnquote,
}

/// Which byte values occur in a value: computed in one pass, it answers every transformation's
/// "is there anything to do?" without scanning the value again per pipeline.
#[derive(Clone, Copy)]
pub(crate) struct ByteSet([u64; 4]);

impl ByteSet {
    pub(crate) fn of(input: &[u8]) -> ByteSet {
        // Four registers and no branch per byte: indexing an array here made every byte a
        // load-modify-store on the same few words.
        let (mut w0, mut w1, mut w2, mut w3) = (0u64, 0u64, 0u64, 0u64);
        for &b in input {
            let bit = 1u64 << (b & 63);
            let word = b >> 6;
            w0 |= bit & 0u64.wrapping_sub((word == 0) as u64);
            w1 |= bit & 0u64.wrapping_sub((word == 1) as u64);
            w2 |= bit & 0u64.wrapping_sub((word == 2) as u64);
            w3 |= bit & 0u64.wrapping_sub((word == 3) as u64);
        }
        ByteSet([w0, w1, w2, w3])
    }

    fn has(&self, b: u8) -> bool {
        self.0[(b >> 6) as usize] & (1 << (b & 63)) != 0
    }

    fn any(&self, bytes: &[u8]) -> bool {
        bytes.iter().any(|&b| self.has(b))
    }

    fn has_upper(&self) -> bool {
        // b'A'..=b'Z' are bits 1..=26 of the second word.
        self.0[1] & (((1u64 << 26) - 1) << 1) != 0
    }

    fn has_space(&self) -> bool {
        self.any(b" \t\n\r\x0b\x0c\xa0")
    }
}

/// Whether `t` could change a value whose bytes are `set`; when not, the value passes through
/// without being read.
pub(crate) fn may_change(t: Transform, set: &ByteSet) -> bool {
    match t {
        Transform::UrlDecodeUni => set.any(b"%+"),
        Transform::HtmlEntityDecode => set.has(b'&'),
        Transform::JsDecode | Transform::CssDecode => set.has(b'\\'),
        Transform::Lowercase => set.has_upper(),
        Transform::RemoveNulls => set.has(0),
        Transform::CompressWhitespace => set.has_space(),
        Transform::NormalisePath => set.any(b"/\\"),
        Transform::CmdLine => set.any(b"\\\"'^,;") || set.has_upper() || set.has_space(),
        Transform::Base64Decode => true,
        Transform::ReplaceComments => set.has(b'/') && set.has(b'*'),
        Transform::ShellUnquote => set.any(b"'\"^\\"),
    }
}

#[cfg(test)]
fn apply(t: Transform, input: &[u8]) -> Vec<u8> {
    apply_if_changes(t, input).unwrap_or_else(|| input.to_vec())
}

/// The transformed value, or `None` when the transformation would leave the input as it is
/// (checked cheaply first: most values have nothing to decode, and this saves the copy).
pub(crate) fn apply_if_changes(t: Transform, input: &[u8]) -> Option<Vec<u8>> {
    let has = |b: u8| input.contains(&b);
    let out = match t {
        Transform::UrlDecodeUni if has(b'%') || has(b'+') => url_decode_uni(input),
        // Only `&#` or `&` and a letter or digit can start an entity ("fits well & arrived"
        // cannot).
        Transform::HtmlEntityDecode
            if input
                .windows(2)
                .any(|w| w[0] == b'&' && (w[1] == b'#' || w[1].is_ascii_alphanumeric())) =>
        {
            html_entity_decode(input)
        }
        Transform::JsDecode if has(b'\\') => js_decode(input),
        Transform::CssDecode if has(b'\\') => css_decode(input),
        Transform::Lowercase if input.iter().any(u8::is_ascii_uppercase) => {
            input.to_ascii_lowercase()
        }
        Transform::RemoveNulls if has(0) => input.iter().copied().filter(|&b| b != 0).collect(),
        Transform::CompressWhitespace
            if input.iter().enumerate().any(|(i, &b)| {
                is_space(b) && (b != b' ' || input.get(i + 1).is_some_and(|&n| is_space(n)))
            }) =>
        {
            compress_whitespace(input)
        }
        Transform::NormalisePath if has(b'/') || has(b'\\') => normalise_path(input),
        Transform::CmdLine
            if input.iter().enumerate().any(|(i, &b)| {
                matches!(b, b'\\' | b'"' | b'\'' | b'^' | b',' | b';')
                    || b.is_ascii_uppercase()
                    || (is_space(b)
                        && (b != b' '
                            || matches!(input.get(i + 1), Some(b' ' | b'/' | b'(') | None)))
                    || (i == 0 && is_space(b))
            }) =>
        {
            cmd_line(input)
        }
        Transform::Base64Decode => base64_decode(input),
        Transform::ReplaceComments if input.windows(2).any(|w| w == b"/*") => {
            replace_comments(input)
        }
        Transform::ShellUnquote
            if input
                .iter()
                .any(|b| matches!(b, b'\'' | b'"' | b'^' | b'\\')) =>
        {
            shell_unquote(input)
        }
        _ => return None,
    };
    (out != input).then_some(out)
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
            if digits > 0 && digits <= 8 {
                let text = std::str::from_utf8(&rest[start..start + digits]).unwrap_or("0");
                let cp = u32::from_str_radix(text, radix).unwrap_or(0xFFFD);
                push_char(&mut out, cp);
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
            b'x' => {
                match (
                    input.get(i + 2).and_then(|b| hex(*b)),
                    input.get(i + 3).and_then(|b| hex(*b)),
                ) {
                    (Some(h), Some(l)) => {
                        out.push(h << 4 | l);
                        i += 4;
                    }
                    _ => {
                        out.push(b'x');
                        i += 2;
                    }
                }
            }
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

fn normalise_path(input: &[u8]) -> Vec<u8> {
    let absolute = matches!(input.first(), Some(b'/') | Some(b'\\'));
    let trailing = matches!(input.last(), Some(b'/') | Some(b'\\')) && input.len() > 1;
    let mut segs: Vec<&[u8]> = Vec::new();
    for seg in input.split(|b| *b == b'/' || *b == b'\\') {
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

fn base64_decode(input: &[u8]) -> Vec<u8> {
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
            b'=' => break,
            b if is_space(b) => continue,
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

fn shell_unquote(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    for (i, &b) in input.iter().enumerate() {
        match b {
            b'\'' | b'"' | b'^' => {}
            b'\\'
                if i > 0
                    && input[i - 1].is_ascii_alphanumeric()
                    && input.get(i + 1).is_some_and(|c| c.is_ascii_alphanumeric()) => {}
            _ => out.push(b),
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

#[cfg(test)]
mod tests {
    #[test]
    fn may_change_is_never_wrong() {
        use Transform::*;
        // Whenever a transformation changes a value, `may_change` said it might.
        let mut rng = fastrand::Rng::with_seed(0x2545_F491_4F6C_DD1D);
        const SPECIAL: &[u8] = b"%+&\\/*'\"^,;#\0\t\n\r \x0b\x0c\xa0AZaz09.-()<>u";
        let all = [
            UrlDecodeUni,
            HtmlEntityDecode,
            JsDecode,
            CssDecode,
            Lowercase,
            RemoveNulls,
            CompressWhitespace,
            NormalisePath,
            CmdLine,
            Base64Decode,
            ReplaceComments,
            ShellUnquote,
        ];
        for _ in 0..20_000 {
            let len = rng.usize(..24);
            let v: Vec<u8> = (0..len)
                .map(|_| SPECIAL[rng.usize(..SPECIAL.len())])
                .collect();
            let set = ByteSet::of(&v);
            for t in all {
                if apply_if_changes(t, &v).is_some() {
                    assert!(may_change(t, &set), "{t:?} changed {v:?}");
                }
            }
        }
    }

    use super::*;

    fn t(tf: Transform, s: &str) -> String {
        String::from_utf8_lossy(&apply(tf, s.as_bytes())).into_owned()
    }

    #[test]
    fn decoders() {
        assert_eq!(t(Transform::UrlDecodeUni, "a%27+b%u0027%uff1c%"), "a' b'<%");
        assert_eq!(t(Transform::UrlDecodeUni, "%2"), "%2");
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
        assert_eq!(t(Transform::Base64Decode, "!!"), "");
    }

    #[test]
    fn normalisers() {
        assert_eq!(
            t(Transform::NormalisePath, "/a/./b/../../../etc//passwd"),
            "/etc/passwd"
        );
        assert_eq!(
            t(Transform::NormalisePath, "..\\..\\windows\\win.ini"),
            "../../windows/win.ini"
        );
        assert_eq!(
            t(Transform::CmdLine, "C^AT  /e\"tc\"/pa's'swd;id"),
            "cat/etc/passwd id"
        );
        assert_eq!(t(Transform::CompressWhitespace, "a \t\r\n b"), "a b");
        assert_eq!(
            t(Transform::ReplaceComments, "union/**/select/*x"),
            "union select "
        );
        assert_eq!(t(Transform::RemoveNulls, "a\0b"), "ab");
        assert_eq!(
            t(Transform::ShellUnquote, r#";c'a't /e"t"c/p\asswd c:\w"#),
            r";cat /etc/passwd c:\w"
        );
    }
}
