//! `vigil score`: batch scoring of a CSV or Parquet file with a model's release.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;
use vigil_service::scoring::ScoreFile;

use crate::commands::open;
use crate::config::Config;
use crate::output::Out;

#[derive(Args, Debug)]
pub struct ScoreArgs {
    #[arg(long)]
    pub model: String,
    /// A release id or prefix [default: the model's release in production]
    #[arg(long)]
    pub release: Option<String>,
    /// The rows to score (.csv or .parquet): one column per contract input, by feature name
    #[arg(long, value_name = "FILE")]
    pub input: PathBuf,
    /// Where to write every input column plus score, decision and fallback_reason, in the
    /// input's format (replaced atomically)
    #[arg(long = "out", value_name = "FILE")]
    pub out: PathBuf,
}

pub async fn score(cfg: &Config, out: &Out, a: ScoreArgs) -> Result<ExitCode> {
    let vigil = open(cfg).await?;
    let started = std::time::Instant::now();
    let run = vigil
        .score_file(
            &cfg.user,
            ScoreFile {
                model: a.model,
                release: a.release,
                input: a.input,
                output: a.out,
            },
        )
        .await?;
    let seconds = started.elapsed().as_secs_f64();
    let value = serde_json::json!({ "run": run, "seconds": seconds });
    out.emit(&value, || {
        let fallbacks = if run.fallbacks.is_empty() {
            "none".to_string()
        } else {
            run.fallbacks
                .iter()
                .map(|(r, n)| format!("{r} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut t = format!(
            "Scored {} of {} rows with release {} ({}) in {seconds:.2} s\n  fallbacks: {fallbacks}\n  input:  {} sha256:{}\n  output: {} sha256:{} (stored)\n  recorded as audit event {} (score.batch_completed, run {})",
            run.scored,
            run.rows,
            run.release.short(),
            run.stage,
            run.input.path.display(),
            run.input.digest,
            run.output.path.display(),
            run.output.digest,
            run.audit_seq,
            run.run_id
        );
        if !run.absent_features.is_empty() {
            t += &format!(
                "\n  the input has no column for: {}",
                run.absent_features.join(", ")
            );
        }
        t
    })?;
    Ok(ExitCode::SUCCESS)
}
