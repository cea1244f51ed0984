//! `hash.<alg>(s[, 'hex'|'base64'])` and the method forms `s.<alg>([fmt])`, for CRC-32 (IEEE),
//! CRC-64 (ISO), MD5, SHA-1, SHA-256, SHA-512 and xxHash64 (seed 0). The digest is written in
//! lower-case hex unless `'base64'` (standard alphabet, padded) is asked for; checksums are
//! their big-endian bytes, as Go's `hash.Hash.Sum` gives them.

use super::{bytes_arg, err, global, member, overload, str_arg, string, STRING_OR_BYTES};
use base64::prelude::*;
use cel::common::types::STRING_TYPE;
use cel::{DeclarationError, Env, ExecutionError, Value};
use sha2::Digest;

#[derive(Clone, Copy)]
enum Alg {
    Crc32,
    Crc64,
    Md5,
    Sha1,
    Sha256,
    Sha512,
    XxHash64,
}

const CRC32: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);
const CRC64: crc::Crc<u64> = crc::Crc::<u64>::new(&crc::CRC_64_GO_ISO);

impl Alg {
    fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            Alg::Crc32 => CRC32.checksum(data).to_be_bytes().to_vec(),
            Alg::Crc64 => CRC64.checksum(data).to_be_bytes().to_vec(),
            Alg::Md5 => md5::Md5::digest(data).to_vec(),
            Alg::Sha1 => sha1::Sha1::digest(data).to_vec(),
            Alg::Sha256 => sha2::Sha256::digest(data).to_vec(),
            Alg::Sha512 => sha2::Sha512::digest(data).to_vec(),
            Alg::XxHash64 => xxhash_rust::xxh64::xxh64(data, 0).to_be_bytes().to_vec(),
        }
    }
}

fn hash(alg: Alg, name: &str, args: &[Value]) -> Result<Value, ExecutionError> {
    let digest = alg.digest(bytes_arg(args, 0, name)?);
    let format = if args.len() > 1 {
        str_arg(args, 1, name)?
    } else {
        "hex"
    };
    match format {
        "hex" => Ok(string(hex(&digest))),
        "base64" => Ok(string(BASE64_STANDARD.encode(digest))),
        other => Err(err(
            name,
            format!("unknown encoding `{other}` (expected 'hex' or 'base64')"),
        )),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

macro_rules! algs {
    ($($fn:ident => $alg:ident, $method:literal;)*) => {
        $(fn $fn(args: &[Value]) -> Result<Value, ExecutionError> {
            hash(Alg::$alg, concat!("hash.", $method), args)
        })*

        pub fn register(env: &mut Env) -> Result<(), DeclarationError> {
            $(
                for input in STRING_OR_BYTES {
                    let f = overload!($fn);
                    global(env, concat!("hash.", $method), vec![input()], f)?;
                    global(env, concat!("hash.", $method), vec![input(), STRING_TYPE], f)?;
                    member(env, $method, input(), vec![], f)?;
                    member(env, $method, input(), vec![STRING_TYPE], f)?;
                }
            )*
            Ok(())
        }
    };
}

algs! {
    crc32 => Crc32, "crc32";
    crc64 => Crc64, "crc64";
    md5_ => Md5, "md5";
    sha1_ => Sha1, "sha1";
    sha256 => Sha256, "sha256";
    sha512 => Sha512, "sha512";
    xxhash64 => XxHash64, "xxhash64";
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{eval, s};

    #[test]
    fn known_digests() {
        // Reference values: `crc32`/`md5sum`/`sha*sum` of "hello", Go's crc64.ISO table,
        // and xxh64("hello", 0).
        for (expr, want) in [
            ("hash.crc32('hello')", "3610a686"),
            ("hash.crc64('hello')", "3c3eeee2d8100000"),
            ("hash.md5('hello')", "5d41402abc4b2a76b9719d911017c592"),
            (
                "hash.sha1('hello')",
                "aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d",
            ),
            (
                "hash.sha256('hello')",
                "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
            ),
            ("hash.xxhash64('hello')", "26c7827d889f6da3"),
            ("'hello'.md5()", "5d41402abc4b2a76b9719d911017c592"),
            (
                "b'hello'.sha1('hex')",
                "aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d",
            ),
            ("hash.md5('hello', 'base64')", "XUFAKrxLKna5cZ2REBfFkg=="),
            ("'hello'.crc32('base64')", "NhCmhg=="),
        ] {
            assert_eq!(s(expr), want, "{expr}");
        }
        assert!(s("hash.sha512('')").starts_with("cf83e1357eefb8bdf1542850d66d8007"));
    }

    #[test]
    fn an_unknown_format_is_an_error() {
        let e = eval("hash.sha256('x', 'binary')").unwrap_err();
        assert!(e.contains("unknown encoding"), "{e}");
    }
}
