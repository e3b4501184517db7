//! Benchmark helper: drift of a current sample against a reference, through the same
//! function and options the monitor uses (`vigil_stats::drift` with the defaults), on
//! column-major f64 files written by `bench/monitor/run.sh`.
//! Usage: bench_monitor_drift REF.f64 CUR.f64 FEATURES

use std::collections::BTreeMap;
use std::time::Instant;

use vigil_stats::{DriftOptions, FeatureValues};

fn read(path: &str, features: usize) -> Vec<Vec<f64>> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    let all: Vec<f64> = bytes
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
        .collect();
    let rows = all.len() / features;
    all.chunks_exact(rows).map(<[f64]>::to_vec).collect()
}

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let [_, r, c, k] = a.as_slice() else {
        eprintln!("usage: bench_monitor_drift REF.f64 CUR.f64 FEATURES");
        std::process::exit(2);
    };
    let k: usize = k.parse().unwrap_or(30);
    let t0 = Instant::now();
    let (r, c) = (read(r, k), read(c, k));
    let load = t0.elapsed().as_secs_f64();
    let to_map = |cols: Vec<Vec<f64>>| -> BTreeMap<String, FeatureValues> {
        cols.into_iter()
            .enumerate()
            .map(|(i, v)| (format!("f{i}"), FeatureValues::Numeric(v)))
            .collect()
    };
    let (r, c) = (to_map(r), to_map(c));
    let t1 = Instant::now();
    let d = vigil_stats::drift(&r, &c, &DriftOptions::default());
    let secs = t1.elapsed().as_secs_f64();
    let mut out = serde_json::Map::new();
    for (name, f) in &d.features {
        out.insert(
            name.clone(),
            serde_json::json!({
                "psi": f.psi.as_ref().ok(),
                "ks_pvalue": f.ks_pvalue.as_ref().ok(),
                "ks_statistic": f.ks_statistic.as_ref().ok(),
                "js": f.js_distance.as_ref().ok(),
                "wasserstein_normed": f.wasserstein_normed.as_ref().ok(),
            }),
        );
    }
    println!(
        "{}",
        serde_json::json!({ "load_seconds": load, "drift_seconds": secs, "features": out })
    );
}
