//! `vigil evaluate`, `vigil evaluation`, `vigil compare` and `vigil drift`: the clinical
//! evidence of a score column or a release, and the drift of a dataset's inputs.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use serde_json::{Value, json};
use vigil_domain::{Evaluation, FeatureContract};
use vigil_service::drift::{DriftRequest, DriftSource};
use vigil_service::evaluation::{
    BootstrapOptions, CompareReleases, EvaluateRelease, EvaluateScores, EvaluationSettings, Period,
};
use vigil_service::{Clock, SystemClock};

use crate::commands::{open, read_text};
use crate::config::Config;
use crate::output::{Out, table};

#[derive(Subcommand, Debug)]
pub enum EvaluateCmd {
    /// Evaluate a score column of a CSV or Parquet file against its outcomes
    Scores(ScoresArgs),
    /// Score a registered snapshot with a release, evaluate it, and record the evaluation
    Release(ReleaseArgs),
}

#[derive(Subcommand, Debug)]
pub enum EvaluationCmd {
    /// List recorded evaluations
    List {
        /// Only this release's (id or unambiguous prefix)
        #[arg(long)]
        release: Option<String>,
    },
    /// Show a recorded evaluation (id or unambiguous prefix); --json prints its full report
    Show {
        id: String,
        /// Also write the stored JSON report here
        #[arg(long, value_name = "report.json")]
        out: Option<PathBuf>,
        /// Also write the stored HTML report here
        #[arg(long, value_name = "report.html")]
        html: Option<PathBuf>,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum PeriodArg {
    Week,
    Month,
    Quarter,
    Year,
}

impl From<PeriodArg> for Period {
    fn from(p: PeriodArg) -> Period {
        match p {
            PeriodArg::Week => Period::Week,
            PeriodArg::Month => Period::Month,
            PeriodArg::Quarter => Period::Quarter,
            PeriodArg::Year => Period::Year,
        }
    }
}

/// What every evaluation takes besides its scores.
#[derive(Args, Debug)]
pub struct Common {
    /// The outcome column: 0/1, or any two values with --positive-label
    #[arg(long, value_name = "COLUMN")]
    pub label_col: String,
    /// The label value that means the outcome happened
    #[arg(long, value_name = "VALUE")]
    pub positive_label: Option<String>,
    /// A subgroup column (repeat for several)
    #[arg(long = "group-col", value_name = "COLUMN")]
    pub group_cols: Vec<String>,
    /// Patient identifiers: subgroup sizes and alerts per 100 patient-days count patients
    #[arg(long, value_name = "COLUMN")]
    pub patient_col: Option<String>,
    /// Prediction times (YYYY-MM-DD or RFC 3339) for temporal validation and alert rates
    #[arg(long, value_name = "COLUMN")]
    pub time_col: Option<String>,
    /// Temporal validation period [default: quarter, with --time-col]
    #[arg(long, value_enum, requires = "time_col")]
    pub period: Option<PeriodArg>,
    /// An operating threshold (repeat for several) [default: the release's, else 0.1 … 0.9]
    #[arg(long = "threshold", value_name = "P")]
    pub thresholds: Vec<f64>,
    /// Bootstrap replicates for AUROC, AUPRC and Brier intervals (0 skips them)
    #[arg(long, default_value_t = 1000, value_name = "N")]
    pub bootstrap: usize,
    /// Bootstrap seed: the same seed gives the same intervals
    #[arg(long, default_value_t = BootstrapOptions::default().seed, value_name = "S")]
    pub seed: u64,
    /// Bootstrap interval level (the DeLong AUROC interval is always 95%)
    #[arg(long, default_value_t = 0.95, value_name = "LEVEL")]
    pub ci: f64,
    /// Write the JSON report here
    #[arg(long, value_name = "report.json")]
    pub out: Option<PathBuf>,
    /// Write the HTML report here
    #[arg(long, value_name = "report.html")]
    pub html: Option<PathBuf>,
}

impl Common {
    fn settings(&self) -> EvaluationSettings {
        EvaluationSettings {
            label_col: self.label_col.clone(),
            positive_label: self.positive_label.clone(),
            group_cols: self.group_cols.clone(),
            patient_col: self.patient_col.clone(),
            time_col: self.time_col.clone(),
            period: self.period.map(Period::from),
            thresholds: self.thresholds.clone(),
            bootstrap: (self.bootstrap > 0).then_some(BootstrapOptions {
                replicates: self.bootstrap,
                seed: self.seed,
                level: self.ci,
            }),
        }
    }
}

#[derive(Args, Debug)]
pub struct ScoresArgs {
    /// A CSV or Parquet file with one row per prediction
    pub file: PathBuf,
    /// The score column: probabilities in [0, 1]
    #[arg(long, value_name = "COLUMN")]
    pub score_col: String,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Args, Debug)]
pub struct ReleaseArgs {
    /// The release (id or unambiguous prefix)
    pub release: String,
    /// The dataset snapshot to score (id or unambiguous prefix)
    #[arg(long, value_name = "SNAPSHOT_ID")]
    pub data: String,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Args, Debug)]
pub struct CompareArgs {
    pub release_a: String,
    pub release_b: String,
    /// The dataset snapshot both are scored on
    #[arg(long, value_name = "SNAPSHOT_ID")]
    pub data: String,
    #[arg(long, value_name = "COLUMN")]
    pub label_col: String,
    #[arg(long, value_name = "VALUE")]
    pub positive_label: Option<String>,
}

#[derive(Args, Debug)]
pub struct DriftArgs {
    /// The reference data: a CSV/Parquet file or a snapshot id
    pub reference: String,
    /// The current data: a CSV/Parquet file or a snapshot id
    pub current: String,
    /// Only these columns (comma-separated)
    #[arg(long, value_delimiter = ',', value_name = "a,b")]
    pub columns: Option<Vec<String>>,
    /// A feature contract: its inputs are the columns, its types decide numeric or categorical
    #[arg(long, value_name = "contract.toml")]
    pub contract: Option<PathBuf>,
    #[arg(long, value_name = "drift.json")]
    pub out: Option<PathBuf>,
    #[arg(long, value_name = "drift.html")]
    pub html: Option<PathBuf>,
}

/// Writes through a temporary file and a rename, so that a report is there whole or not at
/// all.
fn write_file(path: &Path, bytes: &[u8], what: &str) -> Result<()> {
    let tmp = path.with_extension(format!(
        "{}.tmp",
        path.extension().and_then(|e| e.to_str()).unwrap_or("out")
    ));
    std::fs::write(&tmp, bytes)
        .with_context(|| format!("writing the {what} {}", path.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing the {what} {}", path.display()))
}

fn pretty(v: &Value) -> Result<Vec<u8>> {
    let mut s = serde_json::to_vec_pretty(v)?;
    s.push(b'\n');
    Ok(s)
}

fn num(v: &Value, digits: usize) -> String {
    match v.as_f64() {
        Some(x) => format!("{x:.digits$}"),
        None => "n/a".into(),
    }
}

fn reason(v: &Value, key: &str) -> String {
    match v.get(format!("{key}_reason")).and_then(Value::as_str) {
        Some(r) => format!(" ({r})"),
        None => String::new(),
    }
}

/// The short human summary of an evaluation report's JSON.
fn summary_text(r: &Value) -> String {
    let a = &r["auroc"];
    let c = &r["calibration"];
    let mut t = format!(
        "  n:            {} ({} with the outcome, prevalence {})\n  AUROC:        {} (95% DeLong CI {} – {}){}\n",
        r["n"],
        r["n_positive"],
        num(&r["prevalence"], 4),
        num(&a["value"], 4),
        num(&a["ci_low"], 4),
        num(&a["ci_high"], 4),
        reason(a, "value"),
    );
    if a["bootstrap_ci_low"].is_number() {
        t += &format!(
            "                bootstrap CI {} – {}\n",
            num(&a["bootstrap_ci_low"], 4),
            num(&a["bootstrap_ci_high"], 4)
        );
    }
    let ap = &r["auprc"];
    t += &format!("  AUPRC:        {}", num(&ap["value"], 4));
    if ap["ci_low"].is_number() {
        t += &format!(
            " (bootstrap CI {} – {})",
            num(&ap["ci_low"], 4),
            num(&ap["ci_high"], 4)
        );
    }
    t += &format!(
        "\n  Brier:        {}{}\n",
        num(&r["brier"], 4),
        reason(r, "brier")
    );
    t += &format!(
        "  calibration:  intercept {}, slope {}, ECE {}\n",
        num(&c["intercept"], 3),
        num(&c["slope"], 3),
        num(&c["ece"], 4)
    );
    if let Some(rows) = r["thresholds"].as_array() {
        let rows: Vec<Vec<String>> = rows
            .iter()
            .map(|x| {
                vec![
                    num(&x["threshold"], 3),
                    num(&x["sensitivity"], 3),
                    num(&x["specificity"], 3),
                    num(&x["ppv"], 3),
                    num(&x["npv"], 3),
                    num(&x["alert_rate"], 3),
                    num(&x["nne"], 1),
                ]
            })
            .collect();
        let tbl = table(
            &[
                "THRESHOLD",
                "SENS",
                "SPEC",
                "PPV",
                "NPV",
                "ALERT RATE",
                "NNE",
            ],
            &rows,
        );
        for line in tbl.lines() {
            t += &format!("  {line}\n");
        }
    }
    t
}

fn written(out: &Option<PathBuf>, html: &Option<PathBuf>) -> String {
    let mut t = String::new();
    if let Some(p) = out {
        t += &format!("  JSON report:  {}\n", p.display());
    }
    if let Some(p) = html {
        t += &format!("  HTML report:  {}\n", p.display());
    }
    t
}

pub async fn evaluate(cfg: &Config, out: &Out, cmd: EvaluateCmd) -> Result<ExitCode> {
    match cmd {
        EvaluateCmd::Scores(a) => {
            let req = EvaluateScores {
                path: a.file.clone(),
                score_col: a.score_col.clone(),
                settings: a.common.settings(),
            };
            // Nothing is written unless the whole evaluation succeeded.
            let ev = vigil_service::evaluation::evaluate_scores(&req)?;
            if let Some(p) = &a.common.out {
                write_file(p, &pretty(&ev.json)?, "JSON report")?;
            }
            if let Some(p) = &a.common.html {
                write_file(p, ev.html(SystemClock.now()).as_bytes(), "HTML report")?;
            }
            out.emit(&ev.json, || {
                format!(
                    "Evaluation of `{}` in {}\n{}{}",
                    a.score_col,
                    a.file.display(),
                    summary_text(&ev.json),
                    written(&a.common.out, &a.common.html)
                )
            })?;
        }
        EvaluateCmd::Release(a) => {
            let vigil = open(cfg).await?;
            let req = EvaluateRelease {
                release: a.release,
                dataset: a.data,
                settings: a.common.settings(),
            };
            let r = vigil.evaluate_release(&cfg.user, req).await?;
            if let Some(p) = &a.common.out {
                write_file(p, &pretty(&r.report)?, "JSON report")?;
            }
            if let Some(p) = &a.common.html {
                write_file(p, &vigil.evaluation_html(&r.evaluation)?, "HTML report")?;
            }
            out.emit(&r, || {
                let verb = if r.created {
                    "Recorded"
                } else {
                    "Already recorded (nothing written):"
                };
                format!(
                    "{verb} evaluation {}\n  release:      {}\n  dataset:      {}\n{}{}{}",
                    r.evaluation.id,
                    r.evaluation.manifest.release,
                    r.evaluation.manifest.dataset,
                    scoring_text(&r.report),
                    summary_text(&r.report),
                    robustness_text(&r.report)
                ) + &written(&a.common.out, &a.common.html)
                    + &format!(
                        "  stored:       vigil evaluation show {}\n",
                        r.evaluation.id.short()
                    )
            })?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn scoring_text(r: &Value) -> String {
    let s = &r["scoring"];
    let mut t = format!(
        "  scored:       {} of {} rows ({} abstained",
        s["n_scored"], s["n_rows"], s["n_abstained"]
    );
    if let Some(m) = s["abstained_by_reason"]
        .as_object()
        .filter(|m| !m.is_empty())
    {
        t += ": ";
        t += &m
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ");
    }
    t + ")\n"
}

fn robustness_text(r: &Value) -> String {
    let mut t = String::new();
    if let Some(m) = r["missing_data_robustness"].as_object() {
        for (f, v) in m {
            t += &format!(
                "  without {f}: AUROC {}, AUPRC {}, Brier {}, {} abstained\n",
                num(&v["auroc"], 4),
                num(&v["auprc"], 4),
                num(&v["brier"], 4),
                v["n_abstained"]
            );
        }
    }
    t
}

fn evaluation_line(e: &Evaluation) -> Vec<String> {
    vec![
        e.id.short(),
        e.manifest.release.short(),
        e.manifest.dataset.short(),
        num(&e.summary["n"], 0),
        num(&e.summary["auroc"], 4),
        num(&e.summary["brier"], 4),
        e.created_at.to_string(),
        e.created_by.to_string(),
    ]
}

pub async fn evaluation(cfg: &Config, out: &Out, cmd: EvaluationCmd) -> Result<ExitCode> {
    let vigil = open(cfg).await?;
    match cmd {
        EvaluationCmd::List { release } => {
            let all = vigil.list_evaluations(release.as_deref()).await?;
            out.emit(&all, || {
                let rows: Vec<Vec<String>> = all.iter().map(evaluation_line).collect();
                table(
                    &[
                        "ID", "RELEASE", "DATASET", "N", "AUROC", "BRIER", "CREATED", "BY",
                    ],
                    &rows,
                )
            })?;
        }
        EvaluationCmd::Show {
            id,
            out: json_out,
            html,
        } => {
            let e = vigil.get_evaluation(&id).await?;
            let report = vigil.evaluation_report(&e)?;
            if let Some(p) = &json_out {
                write_file(p, &pretty(&report)?, "JSON report")?;
            }
            if let Some(p) = &html {
                write_file(p, &vigil.evaluation_html(&e)?, "HTML report")?;
            }
            out.emit(&json!({ "evaluation": e, "report": report }), || {
                format!(
                    "evaluation {}\n  release:      {}\n  dataset:      {}\n  report:       sha256:{} ({} bytes)\n  html:         sha256:{} ({} bytes)\n  recorded {} by {}\n{}{}{}{}",
                    e.id,
                    e.manifest.release,
                    e.manifest.dataset,
                    e.manifest.report.digest,
                    e.manifest.report.size,
                    e.html.digest,
                    e.html.size,
                    e.created_at,
                    e.created_by,
                    scoring_text(&report),
                    summary_text(&report),
                    robustness_text(&report),
                    written(&json_out, &html)
                )
            })?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn compare(cfg: &Config, out: &Out, a: CompareArgs) -> Result<ExitCode> {
    let vigil = open(cfg).await?;
    let c = vigil
        .compare_releases(CompareReleases {
            release_a: a.release_a,
            release_b: a.release_b,
            dataset: a.data,
            label_col: a.label_col,
            positive_label: a.positive_label,
        })
        .await?;
    out.emit(&c, || {
        let d = &c.delong;
        let m = &c.metrics;
        let mut t = format!(
            "Comparison on dataset {}\n  A: {}\n  B: {}\n  rows: {} compared ({} excluded: A abstained on {}, B on {}), {} with the outcome\n",
            c.dataset, c.release_a, c.release_b, c.n_compared, c.n_excluded, c.abstained_a, c.abstained_b, c.n_positive
        );
        let rows: Vec<Vec<String>> = ["auroc", "auprc", "brier"]
            .iter()
            .map(|k| vec![k.to_uppercase(), num(&m[k]["a"], 4), num(&m[k]["b"], 4), num(&m[k]["difference"], 4)])
            .collect();
        for line in table(&["METRIC", "A", "B", "A − B"], &rows).lines() {
            t += &format!("  {line}\n");
        }
        t += &match d.get("reason").and_then(Value::as_str) {
            Some(r) => format!("  paired DeLong: not estimable ({r})\n"),
            None => format!(
                "  paired DeLong: difference {} (95% CI {} – {}), z {}, p {}\n",
                num(&d["difference"], 4),
                num(&d["ci_low"], 4),
                num(&d["ci_high"], 4),
                num(&d["z"], 3),
                d["p_value"].as_f64().map_or("n/a".into(), |p| format!("{p:.3e}"))
            ),
        };
        t
    })?;
    Ok(ExitCode::SUCCESS)
}

/// A path that exists is a file; anything else is a snapshot id, which needs the home.
async fn drift_source(
    cfg: &Config,
    vigil: &mut Option<vigil_service::Vigil>,
    s: &str,
) -> Result<DriftSource> {
    if Path::new(s).is_file() {
        return Ok(DriftSource::file(Path::new(s)));
    }
    if vigil.is_none() {
        *vigil = Some(open(cfg).await?);
    }
    let v = vigil.as_ref().context("opening the Vigil home")?;
    Ok(v.drift_source(s).await?)
}

pub async fn drift(cfg: &Config, out: &Out, a: DriftArgs) -> Result<ExitCode> {
    let mut vigil = None;
    let reference = drift_source(cfg, &mut vigil, &a.reference).await?;
    let current = drift_source(cfg, &mut vigil, &a.current).await?;
    let contract = match &a.contract {
        Some(p) => Some(
            FeatureContract::from_toml(&read_text(p, "feature contract")?)
                .context("reading the feature contract")?,
        ),
        None => None,
    };
    let d = vigil_service::drift::drift(DriftRequest {
        reference,
        current,
        columns: a.columns,
        contract,
    })?;
    let value = serde_json::to_value(&d)?;
    if let Some(p) = &a.out {
        write_file(p, &pretty(&value)?, "JSON report")?;
    }
    if let Some(p) = &a.html {
        write_file(p, d.html(SystemClock.now()).as_bytes(), "HTML report")?;
    }
    out.emit(&value, || {
        let rows: Vec<Vec<String>> = value["features"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, f)| {
                        let p = if f["kind"] == "numeric" {
                            &f["ks_pvalue"]
                        } else {
                            &f["chi2_pvalue"]
                        };
                        vec![
                            k.clone(),
                            f["kind"].as_str().unwrap_or("").to_string(),
                            num(&f["psi"], 4),
                            p.as_f64().map_or("n/a".into(), |p| format!("{p:.3e}")),
                            match f["drifted"].as_bool() {
                                Some(true) => "DRIFTED".into(),
                                Some(false) => "no".into(),
                                None => "n/a".into(),
                            },
                        ]
                    })
                    .collect()
            })
            .unwrap_or_default();
        let mut t = format!("Drift from {} to {}\n", d.reference, d.current);
        for line in table(&["COLUMN", "KIND", "PSI", "P (KS / χ²)", "DRIFTED"], &rows).lines() {
            t += &format!("  {line}\n");
        }
        for (c, why) in &d.skipped {
            t += &format!("  left out {c}: {why}\n");
        }
        t + &written(&a.out, &a.html)
    })?;
    Ok(ExitCode::SUCCESS)
}
