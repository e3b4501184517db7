//! Batch scoring: a CSV or Parquet file scored by a model's production release (or a named
//! one) through its feature contract, streamed in bounded batches, written in the same format
//! with `score`, `decision` and `fallback_reason` appended to every input column. The output
//! is stored as a blob and the run recorded by a `score.batch_completed` audit event with the
//! digests of input and output, the row counts, the fallbacks by reason and the release.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::Serialize;
use serde_json::json;
use vigil_data::{Appended, AppendedKind, AppendedValues, Cell, CellBatch};
use vigil_domain::digest::Sha256Writer;
use vigil_domain::{DatasetFormat, Digest, FeatureType, ReleaseId, Stage, Timestamp, UserName};
use vigil_inference::{Input, Inputs, Scorer};

use crate::{Error, Result, Vigil, audit_event};

/// The columns batch scoring appends, in order.
pub const SCORE_COLUMNS: [&str; 3] = ["score", "decision", "fallback_reason"];

/// Rows read, scored and written at a time: bounds memory whatever the file's size.
pub const SCORE_BATCH_ROWS: usize = 8 * 1024;

pub struct ScoreFile {
    pub model: String,
    /// A release id or prefix; `None` scores with the model's production release.
    pub release: Option<String>,
    pub input: PathBuf,
    pub output: PathBuf,
}

/// A file as the run read or wrote it.
#[derive(Clone, Debug, Serialize)]
pub struct ScoredFile {
    pub path: PathBuf,
    pub digest: Digest,
    pub size: u64,
}

/// A completed batch scoring run, as recorded in its audit event.
#[derive(Clone, Debug, Serialize)]
pub struct ScoreRun {
    pub run_id: String,
    pub model: String,
    pub release: ReleaseId,
    /// The release's stage when it scored (production, or the named release's stage).
    pub stage: Stage,
    pub format: DatasetFormat,
    pub input: ScoredFile,
    /// The output, also stored in the artifact store under its digest.
    pub output: ScoredFile,
    pub rows: u64,
    pub scored: u64,
    /// Rows without a score, by fallback reason (`missing_required`, …).
    pub fallbacks: BTreeMap<String, u64>,
    /// Contract inputs the file has no column for (every row treats them as missing).
    pub absent_features: Vec<String>,
    pub thresholds: Vec<f64>,
    pub scored_at: Timestamp,
    pub audit_seq: i64,
}

/// One row's cells → the scoring request the contract judges. A cell of the wrong kind is
/// passed as text, so the contract records it invalid and applies its missing-value policy,
/// exactly as for a live request.
fn row_inputs(batch: &CellBatch, features: &[(String, FeatureType)], row: usize) -> Inputs {
    let mut inputs = Inputs::new();
    for (j, (name, ty)) in features.iter().enumerate() {
        let input = match (batch.cell(j, row), ty) {
            (Cell::Missing, _) => continue,
            (Cell::Number(v), FeatureType::Float | FeatureType::Int) => Input::number(v),
            (Cell::Text(s), FeatureType::Float | FeatureType::Int) => s
                .parse::<f64>()
                .map_or_else(|_| Input::text(s), Input::number),
            (Cell::Bool(b), FeatureType::Bool) => Input::boolean(b),
            (Cell::Number(v), FeatureType::Bool) if v == 0.0 || v == 1.0 => {
                Input::boolean(v == 1.0)
            }
            (Cell::Text(s), FeatureType::Bool) => match s {
                "1" | "1.0" | "true" | "True" | "TRUE" => Input::boolean(true),
                "0" | "0.0" | "false" | "False" | "FALSE" => Input::boolean(false),
                _ => Input::text(s),
            },
            (Cell::Text(s), _) => Input::text(s),
            (Cell::Number(v), _) => Input::text(v.to_string()),
            (Cell::Bool(b), _) => Input::boolean(b),
        };
        inputs.insert(name.clone(), input);
    }
    inputs
}

/// Scores one batch in parallel; the results keep the rows' order.
fn score_batch(
    scorer: &Scorer,
    features: &[(String, FeatureType)],
    thresholds: &[f64],
    now: Timestamp,
    batch: &CellBatch,
    fallbacks: &mut BTreeMap<String, u64>,
) -> Vec<AppendedValues> {
    let results: Vec<(Option<f64>, Option<&'static str>)> = (0..batch.len())
        .into_par_iter()
        .map(
            |r| match scorer.score(&row_inputs(batch, features, r), now) {
                Ok(s) => (Some(s.score), None),
                Err(f) => (None, Some(f.reason.as_str())),
            },
        )
        .collect();
    let mut scores = Vec::with_capacity(results.len());
    let mut decisions = Vec::with_capacity(results.len());
    let mut reasons = Vec::with_capacity(results.len());
    for (s, reason) in results {
        scores.push(s);
        decisions.push(s.and_then(|s| vigil_domain::release::decision(thresholds, s)));
        if let Some(r) = reason {
            *fallbacks.entry(r.to_owned()).or_default() += 1;
        }
        reasons.push(reason.map(str::to_owned));
    }
    vec![
        AppendedValues::Numbers(scores),
        AppendedValues::Texts(decisions),
        AppendedValues::Texts(reasons),
    ]
}

fn digest_file(path: &Path) -> std::io::Result<(Digest, u64)> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256Writer::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    let len = h.len();
    Ok((h.finish(), len))
}

fn new_run_id() -> Result<String> {
    let mut bytes = [0u8; 12];
    getrandom::fill(&mut bytes).map_err(|e| {
        Error::internal(format!("the operating system's random source failed: {e}"))
    })?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn data_error(input: &Path, output: &Path, e: vigil_data::Error) -> Error {
    use vigil_data::Error as D;
    match e {
        D::NotFound { path } | D::Unavailable { path, .. } if path != input => Error::invalid(
            "output_unwritable",
            format!(
                "the output `{}` cannot be written (its folder must exist and be writable)",
                output.display()
            ),
        ),
        D::NotFound { .. } => Error::invalid(
            "file_not_found",
            format!("`{}`: no such file", input.display()),
        ),
        D::Unavailable { source, .. } => Error::invalid(
            "file_unreadable",
            format!("`{}`: cannot be read: {source}", input.display()),
        ),
        D::Malformed(m) => Error::invalid("dataset_malformed", m.to_string()),
        D::Invalid(m) if m.contains("a .csv or .parquet file") => {
            Error::invalid("unsupported_format", m)
        }
        D::Invalid(m) => Error::invalid("invalid_request", m),
    }
}

impl Vigil {
    /// The release a batch run uses: the named one (which must be the model's), or the
    /// model's release in production.
    async fn scoring_release(&self, model: &str, release: Option<&str>) -> Result<ReleaseId> {
        let model = self.get_model(model).await?;
        let stages = self.store.list_stages(&model.name).await?;
        match release {
            Some(r) => {
                let rel = self.get_release(r).await?;
                if rel.manifest.model != model.name {
                    return Err(Error::invalid(
                        "release_not_of_model",
                        format!(
                            "release {} is a release of `{}`, not of `{}`",
                            rel.id.short(),
                            rel.manifest.model,
                            model.name
                        ),
                    ));
                }
                Ok(rel.id)
            }
            None => stages
                .iter()
                .find(|(_, s, _)| *s == Stage::Production)
                .map(|(r, _, _)| *r)
                .ok_or_else(|| {
                    Error::precondition(
                        "no_production_release",
                        format!(
                            "model `{}` has no release in production: promote one, or name a release with --release",
                            model.name
                        ),
                    )
                }),
        }
    }

    /// Scores every row of a CSV or Parquet file and writes it, with `score`, `decision`
    /// and `fallback_reason` appended, to `output` in the same format (atomically). A row
    /// the contract cannot score gets no score and its fallback reason: nothing is invented.
    /// The output is stored as a blob and the run audited as `score.batch_completed`.
    pub async fn score_file(&self, actor: &UserName, req: ScoreFile) -> Result<ScoreRun> {
        let release_id = self
            .scoring_release(&req.model, req.release.as_deref())
            .await?;
        let subject = format!("release:{release_id}");
        self.authorize(
            actor,
            &[
                vigil_domain::role::Role::Operator,
                vigil_domain::role::Role::DataScientist,
            ],
            "score",
            &subject,
        )
        .await?;
        let rs = self.release_scorer(&release_id.to_string()).await?;
        let stage = self.release_stage(&rs.release).await?;
        let thresholds = rs.release.manifest.thresholds.clone();
        let (input_digest, input_size) = digest_file(&req.input).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::invalid(
                    "file_not_found",
                    format!("`{}`: no such file", req.input.display()),
                )
            } else {
                Error::invalid(
                    "file_unreadable",
                    format!("`{}`: cannot be read: {e}", req.input.display()),
                )
            }
        })?;
        let features: Vec<(String, FeatureType)> = rs
            .scorer
            .contract()
            .inputs()
            .map(|f| (f.name.clone(), f.ty))
            .collect();
        let now = self.clock.now();
        let scorer = rs.scorer.clone();
        let (input, output) = (req.input.clone(), req.output.clone());
        let names: Vec<String> = features.iter().map(|(n, _)| n.clone()).collect();
        let appended: Vec<Appended> = SCORE_COLUMNS
            .iter()
            .zip([AppendedKind::Number, AppendedKind::Text, AppendedKind::Text])
            .map(|(n, kind)| Appended {
                name: (*n).to_owned(),
                kind,
            })
            .collect();
        let t = thresholds.clone();
        let (summary, fallbacks) = tokio::task::spawn_blocking(move || {
            let mut fallbacks = BTreeMap::new();
            let r = vigil_data::annotate(
                &input,
                &output,
                &names,
                &appended,
                SCORE_BATCH_ROWS,
                |batch| score_batch(&scorer, &features, &t, now, batch, &mut fallbacks),
            );
            r.map(|s| (s, fallbacks))
                .map_err(|e| data_error(&input, &output, e))
        })
        .await
        .map_err(|e| Error::internal(format!("the scoring task failed: {e}")))??;
        let absent_features: Vec<String> = rs
            .scorer
            .contract()
            .inputs()
            .zip(&summary.present)
            .filter(|(_, p)| !**p)
            .map(|(f, _)| f.name.clone())
            .collect();
        // Store the output exactly as written: the digest in the audit event is the file's.
        let mut f = std::fs::File::open(&req.output).map_err(|e| {
            Error::internal(format!(
                "cannot reopen the output {}: {e}",
                req.output.display()
            ))
        })?;
        let (output_digest, output_size) = self.blobs.put_reader(&mut f)?;
        let n_fallback: u64 = fallbacks.values().sum();
        let mut run = ScoreRun {
            run_id: new_run_id()?,
            model: rs.release.manifest.model.to_string(),
            release: release_id,
            stage,
            format: summary.format,
            input: ScoredFile {
                path: req.input,
                digest: input_digest,
                size: input_size,
            },
            output: ScoredFile {
                path: req.output,
                digest: output_digest,
                size: output_size,
            },
            rows: summary.rows,
            scored: summary.rows - n_fallback,
            fallbacks,
            absent_features,
            thresholds,
            scored_at: now,
            audit_seq: 0,
        };
        let ev = audit_event(
            actor,
            "score.batch_completed",
            &subject,
            json!({
                "run_id": run.run_id,
                "model": run.model,
                "release": run.release,
                "stage": run.stage,
                "format": run.format,
                // File names, not paths: a folder name may say more than it should.
                "input": {
                    "name": run.input.path.file_name().map(|n| n.to_string_lossy()),
                    "digest": run.input.digest,
                    "size": run.input.size,
                },
                "output": {
                    "name": run.output.path.file_name().map(|n| n.to_string_lossy()),
                    "digest": run.output.digest,
                    "size": run.output.size,
                },
                "rows": run.rows,
                "scored": run.scored,
                "fallbacks": run.fallbacks,
                "absent_features": run.absent_features,
                "thresholds": run.thresholds,
            }),
        )?;
        let mut tx = self.store.begin().await?;
        run.audit_seq = tx.append_audit(now, &ev).await?.seq;
        tx.commit().await?;
        Ok(run)
    }
}
