//! Runs every data check on a dataset and prints the verdict and the wall time, for the
//! side-by-side benchmark in bench/data/.
//!
//! Usage: bench_checks DATA.csv CONTRACT.toml [--label COL] [--time COL] [--site COL] [--patient COL]

use std::time::Instant;

use vigil_data::{CheckOptions, check_dataset};
use vigil_domain::{FeatureContract, Timestamp};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(data), Some(contract)) = (args.first(), args.get(1)) else {
        return Err("usage: bench_checks DATA CONTRACT.toml [--label COL] [--time COL] [--site COL] [--patient COL]".into());
    };
    let contract = FeatureContract::from_toml(&std::fs::read_to_string(contract)?)?;
    let mut opts = CheckOptions::new(Timestamp::parse("2026-12-01T00:00:00Z")?);
    let mut it = args[2..].iter();
    while let Some(flag) = it.next() {
        let value = it.next().ok_or("a flag needs a value")?.clone();
        match flag.as_str() {
            "--label" => opts.label_col = Some(value),
            "--time" => opts.prediction_time_col = Some(value),
            "--site" => opts.site_col = Some(value),
            "--patient" => opts.patient_col = Some(value),
            other => return Err(format!("unknown flag {other}").into()),
        }
    }
    let t = Instant::now();
    let report = check_dataset(data, &contract, &opts)?;
    let secs = t.elapsed().as_secs_f64();
    let text = report.to_text();
    // The verdict and the failing rows (with their wrapped summaries); passing rows are many.
    let mut show = true;
    for (i, line) in text.lines().enumerate() {
        if !line.starts_with(' ') {
            show = i < 5 || line.starts_with("FAIL") || line.starts_with("WARN");
        }
        if show {
            println!("{line}");
        }
    }
    println!(
        "vigil checks: {} rows, {} checks, {secs:.2} s",
        report.rows,
        report.checks.len()
    );
    Ok(())
}
