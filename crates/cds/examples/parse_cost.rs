//! What parsing a CDS Hooks request costs (bench/cds/run.sh runs it on one of its calls):
//! `parse_cost FILE [N]` parses the request body in FILE N times (default 2,000) as a
//! patient-view call, as a plain `serde_json::Value` and skimmed without keeping anything,
//! and prints the time per parse.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

fn main() {
    let mut args = std::env::args().skip(1);
    let body = std::fs::read(args.next().expect("usage: parse_cost FILE [N]")).unwrap();
    let n: usize = args.next().map_or(2000, |s| s.parse().unwrap());
    let per = |t: Instant| t.elapsed().as_secs_f64() * 1e6 / n as f64;
    let t = Instant::now();
    for _ in 0..n {
        std::hint::black_box(vigil_cds::CdsRequest::parse(&body, "patient-view").unwrap());
    }
    let request = per(t);
    let t = Instant::now();
    for _ in 0..n {
        std::hint::black_box(serde_json::from_slice::<serde_json::Value>(&body).unwrap());
    }
    let value = per(t);
    let t = Instant::now();
    for _ in 0..n {
        std::hint::black_box(serde_json::from_slice::<serde::de::IgnoredAny>(&body).unwrap());
    }
    let skim = per(t);
    println!(
        "{} bytes: CdsRequest::parse {request:.1} µs, serde_json::Value {value:.1} µs, skimmed (IgnoredAny) {skim:.1} µs",
        body.len()
    );
}
