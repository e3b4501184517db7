//! `vigil predictions list`: prediction records read back, newest filters first.

use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Subcommand;
use vigil_domain::Timestamp;
use vigil_domain::prediction::{PredictionFilter, PredictionMode};

use crate::commands::open;
use crate::config::Config;
use crate::output::{Out, table};

#[derive(Subcommand, Debug)]
pub enum PredictionsCmd {
    /// Recorded predictions of a model, oldest first (pseudonymised keys, never identifiers)
    List {
        #[arg(long)]
        model: String,
        /// Only records at or after this time (YYYY-MM-DD or RFC 3339)
        #[arg(long, value_name = "TIME")]
        since: Option<String>,
        /// Only records of this release (id or prefix)
        #[arg(long)]
        release: Option<String>,
        /// active or shadow
        #[arg(long)]
        mode: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
}

pub async fn predictions(cfg: &Config, out: &Out, cmd: PredictionsCmd) -> Result<ExitCode> {
    let vigil = open(cfg).await?;
    let PredictionsCmd::List {
        model,
        since,
        release,
        mode,
        limit,
    } = cmd;
    let model = vigil.get_model(&model).await?.name;
    let release = match release {
        Some(r) => Some(vigil.resolve_release(&r).await?),
        None => None,
    };
    let mode = mode
        .as_deref()
        .map(str::parse::<PredictionMode>)
        .transpose()
        .context("--mode is active or shadow")?;
    let since = since
        .as_deref()
        .map(Timestamp::parse)
        .transpose()
        .context("--since is YYYY-MM-DD or RFC 3339")?;
    let records = vigil
        .list_predictions(&PredictionFilter {
            model: Some(model.to_string()),
            release,
            mode,
            since,
            limit: Some(limit.max(1)),
            ..PredictionFilter::default()
        })
        .await?;
    out.emit(&records, || {
        let rows: Vec<Vec<String>> = records
            .iter()
            .map(|r| {
                vec![
                    r.seq.map_or_else(String::new, |s| s.to_string()),
                    r.recorded_at.to_string(),
                    r.release.short(),
                    r.mode.as_str().to_owned(),
                    r.channel.clone(),
                    r.score.map_or_else(|| "-".into(), |s| format!("{s:.4}")),
                    r.decision.clone().unwrap_or_else(|| "-".into()),
                    r.fallback_reason.clone().unwrap_or_default(),
                    r.request_id.clone(),
                ]
            })
            .collect();
        table(
            &[
                "SEQ", "TIME", "RELEASE", "MODE", "CHANNEL", "SCORE", "DECISION", "FALLBACK",
                "REQUEST",
            ],
            &rows,
        )
    })?;
    Ok(ExitCode::SUCCESS)
}
