//! The WAF benches' requests, shared by `benches/waf.rs` (native criterion) and
//! `benches/wasm/waf.rs` (the same inspections in wasm under node's V8, workerd's engine), so
//! both measure the same work.

use edge_gateway::waf::{RequestView, ResponseView};

pub const UA: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36";
pub const COOKIE: &str = "_ga=GA1.2.1784503914.1716282731; _gid=GA1.2.55512.1716282731; session=eyJ1aWQiOjQyfQ.ZkXw9A.h7sQmLr4; theme=dark";

/// A browser's usual headers.
pub fn browser<'a>(v: RequestView<'a>) -> RequestView<'a> {
    v.header("User-Agent", UA)
        .header("Accept", "application/json, text/plain, */*")
        .header("Accept-Language", "en-US,en;q=0.9")
        .header("Accept-Encoding", "gzip, deflate, br")
        .header("Referer", "https://shop.example.com/cart")
        .header("Origin", "https://shop.example.com")
        .header("Cookie", COOKIE)
}

/// A 1 KB JSON order (nested objects, an array, an apostrophe in free text).
pub fn json_1k() -> String {
    let mut items = Vec::new();
    for i in 0..9 {
        items.push(format!(
            r#"{{"sku":"SKU-{i:05}-BLK","qty":{},"price":49.99,"name":"Trail Runner X{i}","gift":false}}"#,
            i % 3 + 1
        ));
    }
    let body = format!(
        r#"{{"customer_id":"cus_9a8b7c","items":[{}],"shipping":{{"name":"Seán O'Connor","line1":"12 Drury Lane","city":"Dublin","postcode":"D02 X285","country":"IE"}},"notes":"Please leave at the door if nobody's home"}}"#,
        items.join(",")
    );
    assert!((900..1300).contains(&body.len()), "{}", body.len());
    body
}

/// A 4 KB urlencoded form of about 60 fields of prose.
pub fn form_4k() -> String {
    let mut pairs = vec![
        "csrf_token=a81f3b2c9d".to_string(),
        "name=Jane+O%27Brien".to_string(),
    ];
    let mut i = 0;
    while pairs.iter().map(|p| p.len() + 1).sum::<usize>() < 4000 {
        pairs.push(format!(
            "comment{i}=Great+product%2C+fits+well+%26+arrived+on+time.+Would+order+again%21+Size+{i}"
        ));
        i += 1;
    }
    pairs.join("&")
}

pub const GET_QUERY: &str =
    "category=shoes&color=red&size=42&sort=-price&page=3&utm_source=google&utm_campaign=spring_sale";

pub const ATTACK_QUERY: &str =
    "id=1%27%20UNION%20SELECT%20password%20FROM%20users--&file=../../../../etc/passwd";
pub const ATTACK_BODY: &[u8] =
    br#"{"comment":"<img src=x onerror=alert(document.cookie)>","id":"1; cat /etc/passwd"}"#;

/// A 4 KB HTML page.
pub fn html_4k() -> String {
    format!(
        "<!doctype html><html><head><title>Acme</title></head><body>{}</body></html>",
        "<div class=\"card\"><h2>Trail Runner</h2><p>Select a size. Free returns within 30 days.</p></div>".repeat(40)
    )
}

/// The cases, by name: (name, request or response).
pub enum Case<'a> {
    Request(RequestView<'a>),
    Response(ResponseView<'a>),
}

/// Every inspected case, over the strings `json`, `form` and `html` made by the functions
/// above (the caller keeps them alive).
pub fn cases<'a>(
    json: &'a str,
    json_len: &'a str,
    form: &'a str,
    form_len: &'a str,
    html: &'a str,
) -> Vec<(&'static str, Case<'a>)> {
    vec![
        (
            "1 KB JSON API request",
            Case::Request(
                browser(RequestView::new("POST", "/api/v1/orders", ""))
                    .header("Content-Type", "application/json")
                    .header("Content-Length", json_len)
                    .with_body(json.as_bytes()),
            ),
        ),
        (
            "GET with 7 query args, browser headers",
            Case::Request(browser(RequestView::new(
                "GET",
                "/api/v1/products",
                GET_QUERY,
            ))),
        ),
        (
            "4 KB form post",
            Case::Request(
                browser(RequestView::new("POST", "/account/reviews", ""))
                    .header("Content-Type", "application/x-www-form-urlencoded")
                    .header("Content-Length", form_len)
                    .with_body(form.as_bytes()),
            ),
        ),
        (
            "attack request (SQLi, LFI, XSS, RCE)",
            Case::Request(
                browser(RequestView::new("POST", "/api/v1/comments", ATTACK_QUERY))
                    .header("Content-Type", "application/json")
                    .with_body(ATTACK_BODY),
            ),
        ),
        (
            "4 KB HTML response",
            Case::Response(
                ResponseView::new(200)
                    .header("Content-Type", "text/html; charset=utf-8")
                    .with_body(html.as_bytes()),
            ),
        ),
    ]
}
