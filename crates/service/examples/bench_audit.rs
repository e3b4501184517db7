//! Benchmark of the audit chain: durable batched appends, then a full verification.
//!
//! Usage: bench_audit STORE_URL_OR_SQLITE_PATH [EVENTS] [BATCH]

use std::sync::Arc;
use std::time::Instant;

use serde_json::json;
use vigil_domain::{NewAuditEvent, UserName};
use vigil_service::{Location, SystemClock, Vigil};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let target = args.get(1).ok_or("usage: bench_audit HOME_DIR|postgres://URL [EVENTS] [BATCH]")?;
    let n: usize = args.get(2).map_or(Ok(1_000_000), |s| s.parse())?;
    let batch: usize = args.get(3).map_or(Ok(1000), |s| s.parse())?;
    let (home, url) = if target.starts_with("postgres") {
        (std::env::temp_dir().join("vigil-bench-audit"), Some(target.clone()))
    } else {
        (std::path::PathBuf::from(target), None)
    };
    let loc = Location { home, database_url: url };
    let actor = UserName::parse("bench")?;
    let (vigil, _) = Vigil::init(&loc, Arc::new(SystemClock), &actor).await?;
    let store = vigil.store();
    let events: Vec<NewAuditEvent> = (0..batch)
        .map(|i| {
            NewAuditEvent::new(
                &actor,
                "prediction.recorded",
                format!("release:{i:064x}"),
                json!({"request_id": format!("req-{i}"), "score": 0.123456, "decision": "alert", "latency_us": 812}),
            )
        })
        .collect::<Result<_, _>>()?;
    let started = Instant::now();
    let mut written = 0;
    while written < n {
        let k = batch.min(n - written);
        let mut tx = store.begin().await?;
        tx.append_audit_batch(vigil.clock().now(), &events[..k]).await?;
        tx.commit().await?;
        written += k;
    }
    let append_s = started.elapsed().as_secs_f64();
    println!(
        "append: {written} events in batches of {batch}: {append_s:.2} s = {:.0} events/s (each batch one durable commit)",
        written as f64 / append_s
    );
    let started = Instant::now();
    let report = vigil.verify_audit().await?;
    let verify_s = started.elapsed().as_secs_f64();
    println!(
        "verify: {} events in {verify_s:.2} s = {:.0} events/s, intact: {}",
        report.verified,
        report.verified as f64 / verify_s,
        report.is_intact()
    );
    Ok(())
}
