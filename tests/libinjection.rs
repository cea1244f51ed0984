//! The libinjection port (src/waf/libinjection) against libinjection's own test data, against
//! an independent port (the `libinjectionrs` crate, as an oracle), and for panics.

use edge_gateway::waf::libinjection::detect_sqli;

#[test]
fn smoke() {
    for s in ["1' OR '1'='1", "1 UNION SELECT 1,2,3--", "hello world", "<script>alert(1)</script>"] {
        let ours = detect_sqli(s.as_bytes()).map(|f| f.as_str().to_string());
        let theirs = libinjectionrs::detect_sqli(s.as_bytes());
        println!("{s:?}: ours {ours:?} theirs {:?} {:?}", theirs.is_injection(), theirs.fingerprint);
    }
}
