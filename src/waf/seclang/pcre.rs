//! Where PCRE's syntax and the `regex` crate's differ, rewritten when a rule is compiled.

/// PCRE without UTF mode (ModSecurity's) reads `\x{hh}` as the byte hh, as it reads `\xhh`;
/// the `regex` crate reads `\x{hh}` as a code point (refused with Unicode off, or matched as
/// its UTF-8 encoding). CRS writes byte patterns this way (`\x{e2}\x91[\xa0-\x{bf}]`), so
/// they are rewritten to `\xhh`, which the crate reads as a byte.
pub(crate) fn byte_escapes(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len());
    let mut rest = pattern;
    while let Some(i) = rest.find('\\') {
        out.push_str(rest.get(..i).unwrap_or_default());
        let after = rest.get(i + 1..).unwrap_or_default();
        if let Some(hex) = after.strip_prefix("x{") {
            let digits = hex
                .find('}')
                .and_then(|end| hex.get(..end))
                .unwrap_or_default();
            let byte = (!digits.is_empty() && digits.chars().all(|c| c.is_ascii_hexdigit()))
                .then(|| u8::from_str_radix(digits, 16).ok())
                .flatten();
            if let Some(byte) = byte {
                out.push_str(&format!("\\x{byte:02x}"));
                rest = hex.get(digits.len() + 1..).unwrap_or_default();
                continue;
            }
        }
        // Any other escape is copied whole, so `\\x{..}` stays an escaped backslash.
        let mut chars = after.chars();
        out.push('\\');
        out.extend(chars.next());
        rest = chars.as_str();
    }
    out.push_str(rest);
    out
}
