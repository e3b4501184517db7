//! Benchmark: single-row latency and 10,000-row throughput of `predict_proba` on an ONNX file.
//!
//! Usage: `bench_exec MODEL.onnx [N_FEATURES]`; prints one line of `key=value` pairs that
//! `bench/inference/run.sh` reads. Rows are seeded pseudo-random normals, identical to the
//! Python side's only in distribution, which is all tree walks and dot products care about.

use std::time::Instant;

use vigil_inference::Model;

fn rows(n: usize, f: usize) -> Vec<f32> {
    // xorshift + Box-Muller: deterministic without a dependency.
    let mut s: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        ((s >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    };
    (0..n * f)
        .map(|_| {
            let (u, v) = (next(), next());
            ((-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()) as f32
        })
        .collect()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .ok_or("usage: bench_exec MODEL.onnx [N_FEATURES]")?;
    let nf: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(20);
    let model = Model::from_bytes(&std::fs::read(&path)?)?;
    let single = rows(1000, nf);
    let mut sink = 0.0f32;
    // Warm up, then time many single-row calls and take the median of per-call batches.
    for r in single.chunks(nf) {
        sink += model.predict_proba(r, nf)?[0];
    }
    let mut samples = Vec::new();
    for rep in 0..200 {
        let start = Instant::now();
        for r in single.chunks(nf).skip(rep % 10).take(100) {
            sink += model.predict_proba(r, nf)?[0];
        }
        samples.push(start.elapsed().as_secs_f64() / 100.0);
    }
    samples.sort_by(f64::total_cmp);
    let single_us = samples[samples.len() / 2] * 1e6;
    let batch = rows(10_000, nf);
    let mut times = Vec::new();
    for _ in 0..7 {
        let start = Instant::now();
        let p = model.predict_proba(&batch, nf)?;
        times.push(start.elapsed().as_secs_f64());
        sink += p[0];
    }
    times.sort_by(f64::total_cmp);
    let batch_ms = times[times.len() / 2] * 1e3;
    println!(
        "single_row_us={single_us:.3} batch10k_ms={batch_ms:.3} rows_per_s={:.0} checksum={sink:.3}",
        10_000.0 / (batch_ms / 1e3)
    );
    Ok(())
}
