//! The two DER shapes SendGrid uses: a P-256 SubjectPublicKeyInfo and an ECDSA signature
//! `SEQUENCE { INTEGER r, INTEGER s }`, turned into what WebCrypto takes (coordinates, and
//! `r || s` of 32 bytes each).

/// `SEQUENCE { SEQUENCE { id-ecPublicKey, prime256v1 }, BIT STRING 0x00 0x04 x y }`.
const P256_SPKI_PREFIX: [u8; 27] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00, 0x04,
];

/// The (x, y) of an uncompressed P-256 SPKI.
pub fn p256_spki(der: &[u8]) -> Option<([u8; 32], [u8; 32])> {
    let point = der.strip_prefix(&P256_SPKI_PREFIX)?;
    if point.len() != 64 {
        return None;
    }
    Some((point[..32].try_into().ok()?, point[32..].try_into().ok()?))
}

/// A DER ECDSA signature as 64 bytes `r || s`.
pub fn ecdsa_p256(der: &[u8]) -> Option<[u8; 64]> {
    let (tag, body, rest) = tlv(der)?;
    if tag != 0x30 || !rest.is_empty() {
        return None;
    }
    let (tag_r, r, rest) = tlv(body)?;
    let (tag_s, s, rest) = tlv(rest)?;
    if tag_r != 0x02 || tag_s != 0x02 || !rest.is_empty() {
        return None;
    }
    let mut out = [0u8; 64];
    let (left, right) = out.split_at_mut(32);
    for (int, half) in [(r, left), (s, right)] {
        let int = match int {
            [0, rest @ ..] => rest,
            other => other,
        };
        if int.len() > 32 {
            return None;
        }
        half[32 - int.len()..].copy_from_slice(int);
    }
    Some(out)
}

/// One tag-length-value with a short or one/two-byte long length.
fn tlv(data: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = data.split_first()?;
    let (&len, rest) = rest.split_first()?;
    let (len, rest) = match len {
        0..=0x7f => (len as usize, rest),
        0x81 => (*rest.first()? as usize, &rest[1..]),
        0x82 => (
            u16::from_be_bytes([*rest.first()?, *rest.get(1)?]) as usize,
            rest.get(2..)?,
        ),
        _ => return None,
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_padding_and_garbage() {
        // r with a leading 0x00 (high bit set), s short.
        let mut der = vec![0x30, 0x26, 0x02, 0x21, 0x00];
        der.extend([0x80; 32]);
        der.extend([0x02, 0x01, 0x05]);
        let raw = ecdsa_p256(&der).unwrap();
        assert_eq!(&raw[..32], &[0x80; 32]);
        assert_eq!(raw[63], 5);
        assert_eq!(&raw[32..63], &[0; 31]);
        assert!(ecdsa_p256(&der[..10]).is_none());
        assert!(ecdsa_p256(b"").is_none());
        let mut trailing = der.clone();
        trailing.push(0);
        assert!(ecdsa_p256(&trailing).is_none());
        assert!(p256_spki(&[0x30; 91]).is_none());
    }
}
