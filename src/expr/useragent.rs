//! `req.user_agent.*`: a small parser for the User-Agent strings seen most (browsers, HTTP
//! libraries and tools, crawlers). It reads tokens only; what it cannot tell stays empty.

/// What a User-Agent string says about the client.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct UserAgent {
    pub name: String,
    pub version: String,
    pub os: String,
    pub os_version: String,
    pub device: String,
    /// The URL a crawler names for itself (`+https://openai.com/gptbot`).
    pub url: String,
    pub is_mobile: bool,
    pub is_tablet: bool,
    pub is_desktop: bool,
    pub is_bot: bool,
}

/// Crawlers that announce themselves, by the product token they send (lower-case: matched
/// without regard to case; the name reported is as the client wrote it).
const BOTS: &[&str] = &[
    "googlebot",
    "google-extended",
    "googleother",
    "adsbot-google",
    "bingbot",
    "bingpreview",
    "gptbot",
    "chatgpt-user",
    "oai-searchbot",
    "claudebot",
    "claude-user",
    "claude-searchbot",
    "anthropic-ai",
    "ccbot",
    "perplexitybot",
    "perplexity-user",
    "applebot-extended",
    "applebot",
    "duckduckbot",
    "yandexbot",
    "baiduspider",
    "bytespider",
    "facebookexternalhit",
    "meta-externalagent",
    "twitterbot",
    "linkedinbot",
    "slackbot",
    "discordbot",
    "ahrefsbot",
    "semrushbot",
    "mj12bot",
    "dotbot",
    "petalbot",
    "amazonbot",
    "uptimerobot",
];

/// Programs that are neither browsers nor crawlers (HTTP libraries, command-line tools).
const TOOLS: &[&str] = &[
    "curl",
    "Wget",
    "python-requests",
    "python-httpx",
    "Python-urllib",
    "aiohttp",
    "Go-http-client",
    "okhttp",
    "axios",
    "node-fetch",
    "undici",
    "PostmanRuntime",
    "insomnia",
    "HTTPie",
    "Java",
    "Apache-HttpClient",
    "libwww-perl",
    "Ruby",
    "Faraday",
    "Dart",
    "reqwest",
    "k6",
];

/// The version after `token/` (up to a space, `;` or `)`).
fn version_after(ua: &str, token: &str) -> Option<String> {
    let needle = format!("{token}/");
    let at = ua.find(&needle)? + needle.len();
    let rest = &ua[at..];
    let end = rest.find([' ', ';', ')', ',']).unwrap_or(rest.len());
    Some(rest[..end].to_string())
}

fn starts_with_token<'a>(ua: &'a str, token: &str) -> Option<&'a str> {
    let rest = ua.strip_prefix(token)?;
    (rest.is_empty() || rest.starts_with('/') || rest.starts_with(' ')).then_some(rest)
}

/// `+https://...` or a bare `https://...` inside the comment.
fn self_url(ua: &str) -> String {
    let Some(at) = ua.find("http://").or_else(|| ua.find("https://")) else {
        return String::new();
    };
    let rest = &ua[at..];
    let end = rest.find([' ', ';', ')']).unwrap_or(rest.len());
    rest[..end].to_string()
}

pub fn parse(ua: &str) -> UserAgent {
    let mut out = UserAgent::default();
    let ua = ua.trim();
    if ua.is_empty() {
        return out;
    }
    read_os(ua, &mut out);
    let lower = ua.to_ascii_lowercase();
    if let Some((at, bot)) = BOTS.iter().find_map(|b| lower.find(b).map(|at| (at, b))) {
        out.name = ua[at..at + bot.len()].to_string();
        out.version = version_after(&ua[at..], &out.name).unwrap_or_default();
        out.url = self_url(ua);
        out.is_bot = true;
        out.is_mobile = false;
        out.is_tablet = false;
        out.is_desktop = false;
        return out;
    }
    for tool in TOOLS {
        if let Some(rest) = starts_with_token(ua, tool) {
            out.name = tool.to_string();
            out.version = rest
                .strip_prefix('/')
                .map(|r| r.split([' ', ';', '(']).next().unwrap_or("").to_string())
                .unwrap_or_default();
            return out;
        }
    }
    // Unknown self-described crawlers: a product token with bot, crawler or spider in it.
    if ["bot", "crawler", "spider", "scraper"]
        .iter()
        .any(|w| lower.contains(w))
    {
        let token = ua
            .split([' ', ';', '(', ')'])
            .find(|t| {
                let t = t.to_ascii_lowercase();
                t.contains("bot") || t.contains("crawler") || t.contains("spider")
            })
            .unwrap_or("");
        let (name, version) = token.split_once('/').unwrap_or((token, ""));
        out.name = name.to_string();
        out.version = version.to_string();
        out.url = self_url(ua);
        out.is_bot = true;
        return out;
    }
    read_browser(ua, &mut out);
    out
}

fn read_browser(ua: &str, out: &mut UserAgent) {
    // Order matters: Edge and Opera also say Chrome and Safari; Chrome also says Safari.
    const BROWSERS: [(&str, &str); 10] = [
        ("Edg", "Edge"),
        ("EdgA", "Edge"),
        ("EdgiOS", "Edge"),
        ("OPR", "Opera"),
        ("SamsungBrowser", "Samsung Internet"),
        ("FxiOS", "Firefox"),
        ("Firefox", "Firefox"),
        ("CriOS", "Chrome"),
        ("Chromium", "Chromium"),
        ("Chrome", "Chrome"),
    ];
    if let Some((token, name)) = BROWSERS.iter().find(|(t, _)| ua.contains(&format!("{t}/"))) {
        out.name = name.to_string();
        out.version = version_after(ua, token).unwrap_or_default();
    } else if ua.contains("Safari/") {
        out.name = "Safari".into();
        out.version = version_after(ua, "Version").unwrap_or_default();
    } else if ua.contains("MSIE ") || ua.contains("Trident/") {
        out.name = "Internet Explorer".into();
        let after = |sep: &str, end: char| {
            ua.split(sep)
                .nth(1)
                .map(|r| r.split(end).next().unwrap_or("").to_string())
        };
        out.version = after("MSIE ", ';')
            .or_else(|| after("rv:", ')'))
            .unwrap_or_default();
    }
    if out.name.is_empty() {
        return;
    }
    // Form factor, from the platform tokens browsers send.
    out.is_tablet = out.device == "iPad" || (out.os == "Android" && !ua.contains("Mobile"));
    out.is_mobile = !out.is_tablet && (ua.contains("Mobile") || out.device == "iPhone");
    out.is_desktop = !out.is_tablet && !out.is_mobile;
}

fn read_os(ua: &str, out: &mut UserAgent) {
    if let Some(rest) = ua.split("Windows NT ").nth(1) {
        out.os = "Windows".into();
        let v = rest.split([';', ')']).next().unwrap_or("");
        out.os_version = match v {
            "10.0" => "10",
            "6.3" => "8.1",
            "6.2" => "8",
            "6.1" => "7",
            other => other,
        }
        .to_string();
    } else if ua.contains("iPhone") || ua.contains("iPad") || ua.contains("iPod") {
        out.os = "iOS".into();
        out.device = ["iPhone", "iPad", "iPod"]
            .into_iter()
            .find(|d| ua.contains(d))
            .unwrap_or_default()
            .to_string();
        out.os_version = ua
            .split(" OS ")
            .nth(1)
            .and_then(|r| r.split(' ').next())
            .map(|v| v.replace('_', "."))
            .unwrap_or_default();
    } else if let Some(rest) = ua.split("Android").nth(1) {
        out.os = "Android".into();
        let rest = rest.trim_start_matches([' ', '/']);
        out.os_version = rest.split([';', ')', ' ']).next().unwrap_or("").to_string();
        // `Android 14; Pixel 8 Build/...)` or `Android 14; SM-S918B)`: the model follows.
        out.device = rest
            .split(';')
            .nth(1)
            .map(|m| m.split([')', ';']).next().unwrap_or(""))
            .map(|m| m.split(" Build/").next().unwrap_or("").trim().to_string())
            .filter(|m| !m.is_empty() && m != "K" && m != "wv")
            .unwrap_or_default();
    } else if let Some(rest) = ua.split("Mac OS X ").nth(1) {
        out.os = "macOS".into();
        out.os_version = rest
            .split([';', ')', ' '])
            .next()
            .unwrap_or("")
            .replace('_', ".");
    } else if ua.contains("CrOS") {
        out.os = "ChromeOS".into();
    } else if ua.contains("Linux") {
        out.os = "Linux".into();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn desktop_browsers() {
        let chrome = parse("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36");
        assert_eq!(
            (chrome.name.as_str(), chrome.version.as_str()),
            ("Chrome", "126.0.0.0")
        );
        assert_eq!(
            (chrome.os.as_str(), chrome.os_version.as_str()),
            ("Windows", "10")
        );
        assert!(chrome.is_desktop && !chrome.is_mobile && !chrome.is_bot);
        let edge = parse("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 Edg/126.0.2592.87");
        assert_eq!(
            (edge.name.as_str(), edge.version.as_str()),
            ("Edge", "126.0.2592.87")
        );
        let ff = parse(
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:128.0) Gecko/20100101 Firefox/128.0",
        );
        assert_eq!((ff.name.as_str(), ff.os.as_str()), ("Firefox", "macOS"));
        assert_eq!(ff.os_version, "10.15");
        let safari = parse("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15");
        assert_eq!(
            (safari.name.as_str(), safari.version.as_str()),
            ("Safari", "17.5")
        );
        assert_eq!(safari.os_version, "10.15.7");
    }

    #[test]
    fn phones_and_tablets() {
        let iphone = parse("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1");
        assert_eq!(
            (iphone.os.as_str(), iphone.os_version.as_str()),
            ("iOS", "17.5")
        );
        assert_eq!(iphone.device, "iPhone");
        assert!(iphone.is_mobile && !iphone.is_tablet && !iphone.is_desktop);
        let ipad = parse("Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/126.0.6478.54 Mobile/15E148 Safari/604.1");
        assert_eq!(
            (ipad.name.as_str(), ipad.device.as_str()),
            ("Chrome", "iPad")
        );
        assert!(ipad.is_tablet && !ipad.is_mobile);
        let pixel = parse("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.6478.71 Mobile Safari/537.36");
        assert_eq!(
            (pixel.os.as_str(), pixel.os_version.as_str()),
            ("Android", "14")
        );
        assert_eq!(pixel.device, "Pixel 8");
        assert!(pixel.is_mobile);
        let tab = parse("Mozilla/5.0 (Linux; Android 13; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36");
        assert!(tab.is_tablet && !tab.is_mobile);
    }

    #[test]
    fn crawlers_and_tools() {
        let gpt = parse("Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; +https://openai.com/gptbot)");
        assert!(gpt.is_bot && !gpt.is_desktop);
        assert_eq!((gpt.name.as_str(), gpt.version.as_str()), ("GPTBot", "1.2"));
        assert_eq!(gpt.url, "https://openai.com/gptbot");
        let google = parse("Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.6478.126 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)");
        assert_eq!(google.name, "Googlebot");
        assert!(google.is_bot && !google.is_mobile);
        let claude = parse("Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; ClaudeBot/1.0; +claudebot@anthropic.com)");
        assert_eq!(claude.name, "ClaudeBot");
        let odd = parse("FooCrawler/3.1 (+https://foo.example/crawler)");
        assert!(odd.is_bot);
        assert_eq!(
            (odd.name.as_str(), odd.version.as_str()),
            ("FooCrawler", "3.1")
        );
        let curl = parse("curl/8.5.0");
        assert_eq!(
            (curl.name.as_str(), curl.version.as_str()),
            ("curl", "8.5.0")
        );
        assert!(!curl.is_bot && !curl.is_desktop && !curl.is_mobile);
        let py = parse("python-requests/2.32.3");
        assert_eq!(py.name, "python-requests");
        assert_eq!(parse(""), UserAgent::default());
        assert_eq!(parse("???").name, "");
    }
}
