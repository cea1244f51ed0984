//! What the platform tells about the client's connection (Cloudflare's `request.cf`), read once
//! per request into plain data the core turns into `conn.*` variables.
//!
//! The shell hands the `cf` object over as JSON ([`ConnFacts::from_cf`]); tests and scenarios
//! give the same shape. Every field is optional: `wrangler dev` fills fewer than the edge, and a
//! field of an unexpected type is dropped rather than failing the request.

pub mod countries;

use serde_json::Value as Json;

/// The connection the request arrived on, as far as the platform says.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ConnFacts {
    /// The client's source port: Workers do not expose it, so it stays `None` there.
    pub client_port: Option<u16>,
    /// The Cloudflare data centre (`cf.colo`, an IATA code such as `FRA`).
    pub server_region: Option<String>,
    /// `req.version` as ngrok gives it (Go's `Request.Proto`: `HTTP/1.1`, `HTTP/2.0`,
    /// `HTTP/3.0`), from `cf.httpProtocol` (`HTTP/2`, `HTTP/3`).
    pub http_version: Option<String>,
    pub geo: Geo,
    /// `cf.asn` / `cf.asOrganization`.
    pub asn: Option<i64>,
    pub as_organization: Option<String>,
    /// Present when the client reached the edge over TLS.
    pub tls: Option<Tls>,
}

/// `cf`'s location of the client address (MaxMind-derived, per Cloudflare).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Geo {
    pub city: Option<String>,
    /// The continent's English name (`North America`), from `cf.continent`'s code.
    pub continent: Option<&'static str>,
    /// `cf.country`; absent for Cloudflare's `XX` (unknown) and `T1` (Tor), which name no
    /// country.
    pub country_code: Option<String>,
    /// The country's English name (`United States`), from the code.
    pub country: Option<&'static str>,
    /// `cf.region` (ISO 3166-2 name of the first-level region).
    pub subdivision: Option<String>,
    pub latitude: Option<String>,
    pub longitude: Option<String>,
    pub postal_code: Option<String>,
    pub metro_code: Option<String>,
    pub timezone: Option<String>,
    pub is_eu: Option<bool>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Tls {
    /// `1.2`, `1.3` (ngrok's form).
    pub version: Option<String>,
    /// The IANA name ngrok (Go's `tls.CipherSuiteName`) gives, where Cloudflare's BoringSSL
    /// name is known; else Cloudflare's.
    pub cipher_suite: Option<String>,
    /// The ALPN protocol, inferred from `cf.httpProtocol` (Cloudflare does not expose ALPN).
    pub alpn: &'static str,
    /// `cf.botManagement.ja4` (only with Bot Management).
    pub ja4: Option<String>,
    /// The client certificate (mTLS, `cf.tlsClientAuth`), when one was presented.
    pub client: Option<ClientCert>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct ClientCert {
    /// RFC 2253 distinguished names (`CN=...,O=...,C=US`).
    pub issuer: String,
    pub subject: String,
    pub serial_number: Option<String>,
    /// `Dec 22 19:39:00 2029 GMT`, as Cloudflare writes it.
    pub not_before: Option<String>,
    pub not_after: Option<String>,
    pub fingerprint_sha256: Option<String>,
    /// `SUCCESS`, `FAILED:reason` or `NONE`.
    pub verified: Option<String>,
}

fn text(v: &Json, key: &str) -> Option<String> {
    match v.get(key)? {
        Json::String(s) if !s.is_empty() => Some(s.clone()),
        Json::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn int(v: &Json, key: &str) -> Option<i64> {
    match v.get(key)? {
        Json::Number(n) => n.as_i64(),
        Json::String(s) => s.parse().ok(),
        _ => None,
    }
}

impl ConnFacts {
    /// Reads Cloudflare's `request.cf` object (as JSON); anything else yields no facts.
    pub fn from_cf(cf: &Json) -> ConnFacts {
        if !cf.is_object() {
            return ConnFacts::default();
        }
        let country_code = text(cf, "country").filter(|c| countries::is_country(c));
        // Cloudflare sets `isEUCountry` only for EU countries; for any other known country
        // ngrok's `is_eu` is false, not missing (the route-by-country guide compares it).
        let is_eu = match cf.get("isEUCountry") {
            Some(Json::String(s)) => Some(s == "1"),
            Some(Json::Bool(b)) => Some(*b),
            _ => country_code.as_ref().map(|_| false),
        };
        let geo = Geo {
            city: text(cf, "city"),
            continent: text(cf, "continent").and_then(|c| countries::continent_name(&c)),
            country: country_code.as_deref().and_then(countries::country_name),
            country_code,
            subdivision: text(cf, "region"),
            latitude: text(cf, "latitude"),
            longitude: text(cf, "longitude"),
            postal_code: text(cf, "postalCode"),
            metro_code: text(cf, "metroCode"),
            timezone: text(cf, "timezone"),
            is_eu,
        };
        let client = cf.get("tlsClientAuth").and_then(|a| {
            // "1" when the client presented a certificate; the fields are empty otherwise.
            (text(a, "certPresented").as_deref() == Some("1")).then(|| ClientCert {
                issuer: text(a, "certIssuerDNRFC2253")
                    .or_else(|| text(a, "certIssuerDN"))
                    .unwrap_or_default(),
                subject: text(a, "certSubjectDNRFC2253")
                    .or_else(|| text(a, "certSubjectDN"))
                    .unwrap_or_default(),
                serial_number: text(a, "certSerial"),
                not_before: text(a, "certNotBefore"),
                not_after: text(a, "certNotAfter"),
                fingerprint_sha256: text(a, "certFingerprintSHA256"),
                verified: text(a, "certVerified"),
            })
        });
        let version = text(cf, "tlsVersion");
        let tls = version.as_ref().map(|v| Tls {
            // ngrok writes `1.3`; Cloudflare `TLSv1.3`.
            version: Some(v.trim_start_matches("TLSv").to_string()),
            cipher_suite: text(cf, "tlsCipher").map(|c| iana_cipher(&c).unwrap_or(&c).to_string()),
            alpn: alpn(text(cf, "httpProtocol").as_deref()),
            ja4: cf.get("botManagement").and_then(|b| text(b, "ja4")),
            client,
        });
        ConnFacts {
            client_port: None,
            server_region: text(cf, "colo"),
            http_version: text(cf, "httpProtocol").map(|v| go_proto(&v)),
            geo,
            asn: int(cf, "asn"),
            as_organization: text(cf, "asOrganization"),
            tls,
        }
    }
}

/// Go's form of an HTTP version: a major version alone gets its `.0`.
fn go_proto(v: &str) -> String {
    match v {
        "HTTP/2" | "HTTP/3" => format!("{v}.0"),
        other => other.to_string(),
    }
}

/// The ALPN protocol ID a request's HTTP version implies: `h2` and `h3` are only negotiated
/// that way; HTTP/1.1 over TLS is `http/1.1` for any client that offers ALPN (browsers, curl);
/// anything else `""` (ngrok's value when none was negotiated).
fn alpn(http_protocol: Option<&str>) -> &'static str {
    match http_protocol {
        Some("HTTP/2") => "h2",
        Some("HTTP/3") => "h3",
        Some("HTTP/1.1") => "http/1.1",
        _ => "",
    }
}

/// BoringSSL's cipher names (Cloudflare's `cf.tlsCipher`) to the IANA names ngrok gives.
fn iana_cipher(name: &str) -> Option<&'static str> {
    Some(match name {
        "AEAD-AES128-GCM-SHA256" => "TLS_AES_128_GCM_SHA256",
        "AEAD-AES256-GCM-SHA384" => "TLS_AES_256_GCM_SHA384",
        "AEAD-CHACHA20-POLY1305-SHA256" => "TLS_CHACHA20_POLY1305_SHA256",
        "ECDHE-ECDSA-AES128-GCM-SHA256" => "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        "ECDHE-RSA-AES128-GCM-SHA256" => "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384" => "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384" => "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305" => "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        "ECDHE-RSA-CHACHA20-POLY1305" => "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        "ECDHE-ECDSA-AES128-SHA" => "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
        "ECDHE-RSA-AES128-SHA" => "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
        "ECDHE-ECDSA-AES256-SHA" => "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
        "ECDHE-RSA-AES256-SHA" => "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
        "AES128-GCM-SHA256" => "TLS_RSA_WITH_AES_128_GCM_SHA256",
        "AES256-GCM-SHA384" => "TLS_RSA_WITH_AES_256_GCM_SHA384",
        "AES128-SHA" => "TLS_RSA_WITH_AES_128_CBC_SHA",
        "AES256-SHA" => "TLS_RSA_WITH_AES_256_CBC_SHA",
        _ => return None,
    })
}

/// A distinguished name's attributes (`CN=a,O=b,O=c`) in order, `\,`-escapes honoured.
pub fn dn_attributes(dn: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut part = String::new();
    let mut chars = dn.chars();
    let mut push = |part: &mut String| {
        if let Some((k, v)) = part.split_once('=') {
            out.push((k.trim().to_ascii_uppercase(), v.trim().to_string()));
        }
        part.clear();
    };
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    part.push(n);
                }
            }
            ',' | '/' | ';' => push(&mut part),
            c => part.push(c),
        }
    }
    push(&mut part);
    out
}

/// Parses Cloudflare's certificate dates (`Dec 22 19:39:00 2029 GMT`) to Unix seconds.
pub fn cert_time(s: &str) -> Option<i64> {
    let f: Vec<&str> = s.split_whitespace().collect();
    let [mon, day, time, year, ..] = f.as_slice() else {
        return None;
    };
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = MONTHS.iter().position(|m| m == mon)? as u32 + 1;
    let day: u32 = day.parse().ok()?;
    let year: i32 = year.parse().ok()?;
    let hms: Vec<u32> = time.split(':').filter_map(|p| p.parse().ok()).collect();
    let [h, m, sec] = hms.as_slice() else {
        return None;
    };
    let date = chrono::NaiveDate::from_ymd_opt(year, month, day)?;
    let t = date.and_hms_opt(*h, *m, *sec)?;
    Some(t.and_utc().timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cf_and_drops_what_does_not_fit() {
        let cf = serde_json::json!({
            "colo": "FRA", "asn": 3320, "asOrganization": "Deutsche Telekom AG",
            "country": "DE", "city": "Berlin", "latitude": "52.52", "longitude": 13.4,
            "isEUCountry": "1", "httpProtocol": "HTTP/2", "tlsVersion": "TLSv1.3",
            "tlsCipher": "AEAD-AES128-GCM-SHA256", "region": ["not", "a", "string"],
            "tlsClientAuth": {"certPresented": "0", "certIssuerDN": ""}
        });
        let f = ConnFacts::from_cf(&cf);
        assert_eq!(f.server_region.as_deref(), Some("FRA"));
        assert_eq!(f.asn, Some(3320));
        assert_eq!(f.geo.longitude.as_deref(), Some("13.4"));
        assert_eq!(f.geo.subdivision, None);
        assert_eq!(f.geo.is_eu, Some(true));
        assert_eq!(f.geo.country, Some("Germany"));
        let tls = f.tls.unwrap();
        assert_eq!(tls.version.as_deref(), Some("1.3"));
        assert_eq!(tls.cipher_suite.as_deref(), Some("TLS_AES_128_GCM_SHA256"));
        assert_eq!(tls.alpn, "h2");
        assert!(tls.client.is_none(), "no certificate presented");
        assert_eq!(
            ConnFacts::from_cf(&serde_json::json!("x")),
            ConnFacts::default()
        );
    }

    /// `isEUCountry` comes only with EU countries: elsewhere `is_eu` is false, and without a
    /// known country it is unknown.
    #[test]
    fn is_eu_is_false_outside_the_eu() {
        let us = ConnFacts::from_cf(&serde_json::json!({"country": "US"}));
        assert_eq!(us.geo.is_eu, Some(false));
        let none = ConnFacts::from_cf(&serde_json::json!({"country": "XX"}));
        assert_eq!(none.geo.is_eu, None);
    }

    /// Cloudflare's `XX` (unknown) and `T1` (Tor) are not countries: no code, no name.
    #[test]
    fn special_country_codes_and_continents() {
        for code in ["XX", "T1"] {
            let f = ConnFacts::from_cf(&serde_json::json!({"country": code, "continent": "T1"}));
            assert_eq!(
                (f.geo.country_code, f.geo.country, f.geo.continent),
                (None, None, None)
            );
        }
        let f = ConnFacts::from_cf(&serde_json::json!({"country": "US", "continent": "NA"}));
        assert_eq!(f.geo.country, Some("United States"));
        assert_eq!(f.geo.continent, Some("North America"));
        // A code the table lacks keeps its code, without a name.
        let f = ConnFacts::from_cf(&serde_json::json!({"country": "QQ"}));
        assert_eq!(
            (f.geo.country_code.as_deref(), f.geo.country),
            (Some("QQ"), None)
        );
    }

    #[test]
    fn distinguished_names_and_dates() {
        let dn = dn_attributes(r"CN=Acme Client,O=Acme\, Inc.,OU=Ops,OU=Edge,C=US");
        assert_eq!(dn[1], ("O".into(), "Acme, Inc.".into()));
        assert_eq!(dn.iter().filter(|(k, _)| k == "OU").count(), 2);
        assert_eq!(cert_time("Dec 22 19:39:00 2029 GMT"), Some(1892662740));
        assert_eq!(cert_time("Feb 30 00:00:00 2029 GMT"), None);
        assert_eq!(cert_time("garbage"), None);
    }
}
