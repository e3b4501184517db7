//! Benchmark: AUROC, AUPRC, 1,000 bootstrap replicates and per-subgroup metrics on a CSV
//! of `score,label,group`, and drift of raw little-endian f64 feature matrices.
//!
//! Usage: bench_eval EVAL_CSV [REFERENCE_F64 CURRENT_F64 N_FEATURES]
//! (run by `bench/stats/run.sh`, which writes the inputs).

use std::collections::BTreeMap;
use std::time::Instant;

use vigil_stats::drift::{DriftOptions, FeatureValues, drift};
use vigil_stats::*;

/// Scores, labels and subgroup values, one per row.
type Rows = (Vec<f64>, Vec<bool>, Vec<String>);

fn read_csv(path: &str) -> Result<Rows, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("reading {path}: {e}"))?;
    let mut scores = Vec::new();
    let mut labels = Vec::new();
    let mut groups = Vec::new();
    for (i, line) in text.lines().enumerate().skip(1) {
        let mut f = line.split(',');
        let (Some(s), Some(y), Some(g)) = (f.next(), f.next(), f.next()) else {
            return Err(format!("line {}: expected score,label,group", i + 1));
        };
        scores.push(
            s.parse::<f64>()
                .map_err(|e| format!("line {}: {e}", i + 1))?,
        );
        labels.push(y.trim() == "1");
        groups.push(g.trim().to_string());
    }
    Ok((scores, labels, groups))
}

fn read_matrix(path: &str, features: usize) -> Result<BTreeMap<String, FeatureValues>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("reading {path}: {e}"))?;
    let values: Vec<f64> = bytes
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
        .collect();
    let rows = values.len() / features;
    // Row-major on disk, as NumPy's tofile writes a C-ordered (rows, features) array.
    let mut out = BTreeMap::new();
    for j in 0..features {
        let col: Vec<f64> = (0..rows).map(|i| values[i * features + j]).collect();
        out.insert(format!("f{j:02}"), FeatureValues::Numeric(col));
    }
    Ok(out)
}

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().collect();
    let csv = args
        .get(1)
        .ok_or("usage: bench_eval EVAL_CSV [REF CUR N_FEATURES]")?;
    let (scores, labels, groups) = read_csv(csv)?;
    println!(
        "rows {} threads {}",
        scores.len(),
        rayon::current_num_threads()
    );

    let t = Instant::now();
    let auc = auroc(&scores, &labels).map_err(|e| e.reason)?;
    let ap = average_precision(&scores, &labels).map_err(|e| e.reason)?;
    let point = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let sample = RankedSample::new(&scores, &labels);
    let boot = bootstrap_ranked(&sample, &BootstrapOptions::default());
    let bootstrap = t.elapsed().as_secs_f64();

    let t = Instant::now();
    let mut by_group: BTreeMap<&str, (Vec<f64>, Vec<bool>)> = BTreeMap::new();
    for i in 0..scores.len() {
        let e = by_group.entry(groups[i].as_str()).or_default();
        e.0.push(scores[i]);
        e.1.push(labels[i]);
    }
    let mut sub = Vec::new();
    for (g, (s, y)) in &by_group {
        sub.push((g.to_string(), auroc(s, y), average_precision(s, y)));
    }
    let subgroups = t.elapsed().as_secs_f64();

    let a = boot.auroc.map_err(|e| e.reason)?;
    let p = boot.average_precision.map_err(|e| e.reason)?;
    println!(
        "auroc {auc:.6} [{:.6}, {:.6}] auprc {ap:.6} [{:.6}, {:.6}]",
        a.low, a.high, p.low, p.high
    );
    for (g, a, p) in &sub {
        println!(
            "group {g} auroc {:.6} auprc {:.6}",
            a.clone().unwrap_or(f64::NAN),
            p.clone().unwrap_or(f64::NAN)
        );
    }
    println!("TIME point {point:.3}");
    println!("TIME bootstrap {bootstrap:.3}");
    println!("TIME subgroups {subgroups:.3}");
    println!("TIME eval_total {:.3}", point + bootstrap + subgroups);

    if let (Some(r), Some(c), Some(k)) = (args.get(2), args.get(3), args.get(4)) {
        let k: usize = k.parse().map_err(|e| format!("N_FEATURES: {e}"))?;
        let reference = read_matrix(r, k)?;
        let current = read_matrix(c, k)?;
        let t = Instant::now();
        let report = drift(&reference, &current, &DriftOptions::default());
        let secs = t.elapsed().as_secs_f64();
        let drifted = report
            .features
            .values()
            .filter(|f| f.drifted == Ok(true))
            .count();
        println!("drift features {} drifted {drifted}", report.features.len());
        println!("TIME drift {secs:.3}");
    }
    Ok(())
}
