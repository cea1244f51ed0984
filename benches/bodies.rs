//! Body find-replace on a 64 KiB JSON body (criterion, native): a fixed pattern compiled with
//! the policy that matches 256 times, the same with no match (the body is not copied), and a
//! `${}` pattern rendered per request and found in the per-isolate cache. See
//! docs/performance.md.

use criterion::{criterion_group, criterion_main, Criterion};
use edge_gateway::expr::find_replace::{apply, Replacement};
use edge_gateway::expr::Template;
use std::hint::black_box;

/// 256 records of 256 bytes, each with a password field: 64 KiB.
fn body() -> Vec<u8> {
    let mut out = String::new();
    for i in 0..256 {
        let record = format!(
            "{{\"id\":{i:05},\"user\":\"user{i:05}\",\"password\":\"pw-{i:08}\",\"note\":\""
        );
        out.push_str(&record);
        out.push_str(&"x".repeat(256 - record.len() - 3));
        out.push_str("\"}\n");
    }
    assert_eq!(out.len(), 64 * 1024);
    out.into_bytes()
}

fn replacement(from: &str, to: &str) -> Replacement {
    Replacement::new(
        Template::compile(from).unwrap(),
        Template::compile(to).unwrap(),
    )
    .unwrap()
}

fn literal(t: &Template, _: &'static str) -> Result<String, ()> {
    Ok(t.literal()
        .map_or_else(|| r#""password":"[^"]*""#.to_string(), str::to_string))
}

fn benches(c: &mut Criterion) {
    let body = body();
    let fixed = [replacement(
        r#""password":"[^"]*""#,
        r#""password":"[REDACTED]""#,
    )];
    let absent = [replacement(r#""ssn":"[^"]*""#, "")];
    let rendered = [replacement("${vars.pattern}", r#""password":"[REDACTED]""#)];
    let mut g = c.benchmark_group("find-replace 64 KiB");
    g.bench_function("fixed pattern, 256 matches", |b| {
        b.iter(|| apply(black_box(&fixed), black_box(&body), literal).unwrap())
    });
    g.bench_function("fixed pattern, no match", |b| {
        b.iter(|| apply(black_box(&absent), black_box(&body), literal).unwrap())
    });
    g.bench_function("rendered pattern (cached), 256 matches", |b| {
        b.iter(|| apply(black_box(&rendered), black_box(&body), literal).unwrap())
    });
    g.finish();
}

criterion_group!(bodies, benches);
criterion_main!(bodies);
