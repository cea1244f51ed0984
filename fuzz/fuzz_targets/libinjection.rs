//! libinjection's detectors must not panic (or overflow, with debug assertions) on any input.
//! The module has no dependencies, so it is compiled here from its sources rather than with the
//! whole gateway crate. Run: `cargo +nightly fuzz run libinjection` (from the repository root).
#![no_main]

#[path = "../../src/waf/libinjection/mod.rs"]
#[allow(dead_code, reason = "only the two detectors are exercised")]
mod libinjection;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let sqli = libinjection::detect_sqli(data);
    if let Some(fp) = sqli {
        // a fingerprint is 1 to 5 token-type letters
        assert!((1..=5).contains(&fp.as_str().len()), "{fp:?}");
    }
    let _ = libinjection::detect_xss(data);
});
