//! Clinical evaluation: a score column of any file, or a release scored on a registered
//! snapshot through its feature contract, evaluated by `vigil_stats` and rendered by
//! `vigil_report`. A release's evaluation is recorded with both reports as blobs and its
//! audit event in the same transaction; comparing two releases is the paired DeLong test on
//! the rows both scored.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use rayon::prelude::*;
use serde::Serialize;
use serde_json::{Map, Value, json};
use vigil_data::{ColumnType, Columns};
use vigil_domain::canonical::to_canonical_string;
use vigil_domain::evaluation::EVALUATION_SCHEMA;
use vigil_domain::release::Pinned;
use vigil_domain::{
    DatasetSnapshot, Digest, Evaluation, EvaluationId, EvaluationManifest, FeatureContract,
    FeatureRole, FeatureType, IdPrefix, Release, Timestamp, UserName,
};
use vigil_inference::{Fallback, Input, Inputs, Scorer};
use vigil_report::ReportContext;
use vigil_stats::{Estimate, EvaluationInput, EvaluationOptions};

pub use vigil_stats::{BootstrapOptions, EvaluationReport, Period};

use crate::columns::{self, DataFile, Role, spec};
use crate::{Error, Result, Vigil, audit_event};

/// How to evaluate: which columns mean what, the thresholds and the bootstrap.
#[derive(Clone, Debug, Serialize)]
pub struct EvaluationSettings {
    pub label_col: String,
    /// The label value that means "had the outcome"; without it labels must be 0/1.
    pub positive_label: Option<String>,
    pub group_cols: Vec<String>,
    /// Distinct patients, for subgroup suppression and alerts per 100 patient-days.
    pub patient_col: Option<String>,
    pub time_col: Option<String>,
    /// Temporal validation granularity; `quarter` when a time column is given without one.
    pub period: Option<Period>,
    /// Operating points; empty means the release's thresholds, else 0.1 to 0.9.
    pub thresholds: Vec<f64>,
    /// Bootstrap intervals; `None` skips them.
    pub bootstrap: Option<BootstrapOptions>,
}

impl EvaluationSettings {
    pub fn new(label_col: impl Into<String>) -> EvaluationSettings {
        EvaluationSettings {
            label_col: label_col.into(),
            positive_label: None,
            group_cols: Vec::new(),
            patient_col: None,
            time_col: None,
            period: None,
            thresholds: Vec::new(),
            bootstrap: Some(BootstrapOptions::default()),
        }
    }

    fn check(&self) -> Result<()> {
        for t in &self.thresholds {
            if !(t.is_finite() && (0.0..=1.0).contains(t)) {
                return Err(Error::invalid(
                    "invalid_threshold",
                    format!("threshold {t} must be between 0 and 1"),
                ));
            }
        }
        if let Some(b) = &self.bootstrap {
            if !(b.level.is_finite() && b.level > 0.0 && b.level < 1.0) {
                return Err(Error::invalid(
                    "invalid_ci",
                    format!(
                        "the interval level {} must be strictly between 0 and 1 (e.g. 0.95)",
                        b.level
                    ),
                ));
            }
            if b.replicates < 2 {
                return Err(Error::invalid(
                    "invalid_bootstrap",
                    "the bootstrap needs at least 2 replicates (or 0 to skip it)",
                ));
            }
        }
        Ok(())
    }

    /// The settings with defaults filled in, as recorded with the evaluation.
    fn resolved(&self, default_thresholds: &[f64]) -> EvaluationSettings {
        let mut s = self.clone();
        if s.thresholds.is_empty() {
            s.thresholds = if default_thresholds.is_empty() {
                EvaluationOptions::default().thresholds
            } else {
                default_thresholds.to_vec()
            };
        }
        if s.time_col.is_some() && s.period.is_none() {
            s.period = Some(Period::Quarter);
        }
        if s.time_col.is_none() {
            s.period = None;
        }
        s
    }

    fn stats_options(&self) -> EvaluationOptions {
        EvaluationOptions {
            thresholds: self.thresholds.clone(),
            bootstrap: self.bootstrap,
            period: self.period,
            ..EvaluationOptions::default()
        }
    }

    /// The non-score columns to read, with their types and roles.
    fn column_specs(&self) -> (Vec<vigil_data::ColumnSpec>, Vec<(String, Role)>) {
        let mut specs = vec![spec(&self.label_col, ColumnType::Text)];
        let mut roles = vec![(self.label_col.clone(), Role::Label)];
        for g in self.group_cols.iter().chain(&self.patient_col) {
            specs.push(spec(g, ColumnType::Text));
            roles.push((g.clone(), Role::Other));
        }
        if let Some(t) = &self.time_col {
            specs.push(spec(t, ColumnType::Time));
            roles.push((t.clone(), Role::Time));
        }
        (specs, roles)
    }
}

/// Labels, subgroups, patients and times of every row of a file.
struct Outcomes {
    labels: Vec<f64>,
    subgroups: BTreeMap<String, Vec<String>>,
    patients: Option<Vec<String>>,
    times: Option<Vec<i64>>,
}

impl Outcomes {
    fn read(file: &DataFile, cols: &Columns, s: &EvaluationSettings) -> Result<Outcomes> {
        let labels = columns::labels(file, cols, &s.label_col, s.positive_label.as_deref())?;
        let mut subgroups = BTreeMap::new();
        for g in &s.group_cols {
            subgroups.insert(g.clone(), columns::groups(cols, g)?);
        }
        let patients = s
            .patient_col
            .as_deref()
            .map(|p| columns::text(cols, p).map(<[String]>::to_vec))
            .transpose()?;
        let times = s
            .time_col
            .as_deref()
            .map(|t| columns::times(file, cols, t))
            .transpose()?;
        Ok(Outcomes {
            labels,
            subgroups,
            patients,
            times,
        })
    }

    /// The evaluation input of the rows in `keep`, with their scores.
    fn input(&self, scores: Vec<f64>, keep: &[usize]) -> EvaluationInput {
        let pick_s = |v: &[String]| keep.iter().map(|&i| v[i].clone()).collect::<Vec<_>>();
        EvaluationInput {
            scores,
            labels: keep.iter().map(|&i| self.labels[i]).collect(),
            patient_ids: self.patients.as_deref().map(pick_s),
            timestamps: self
                .times
                .as_ref()
                .map(|t| keep.iter().map(|&i| t[i]).collect()),
            subgroups: self
                .subgroups
                .iter()
                .map(|(k, v)| (k.clone(), pick_s(v)))
                .collect(),
        }
    }
}

fn stats_error(
    file: &DataFile,
    score_col: &str,
    s: &EvaluationSettings,
    e: vigil_stats::InputError,
) -> Error {
    use vigil_stats::InputError as I;
    match e {
        I::Empty => Error::invalid(
            "dataset_empty",
            format!("`{}` has no data rows", file.shown),
        ),
        I::LabelNotBinary { row, .. } => Error::invalid(
            "label_not_binary",
            format!(
                "{}: the label is not 0 or 1",
                columns::at(file, row, &s.label_col)
            ),
        ),
        I::ScoreNotFinite { row } | I::ScoreOutsideUnitInterval { row, .. } => Error::invalid(
            "score_out_of_range",
            format!(
                "{}: the score is outside [0, 1]",
                columns::at(file, row, score_col)
            ),
        ),
        other => Error::internal(other.to_string()),
    }
}

// ---- a score column of any file ------------------------------------------------------

pub struct EvaluateScores {
    pub path: PathBuf,
    pub score_col: String,
    pub settings: EvaluationSettings,
}

/// The evaluation of a score column.
#[derive(Debug)]
pub struct ScoresEvaluation {
    pub report: EvaluationReport,
    /// The report as JSON (the stable keys of `docs/evaluation.md`).
    pub json: Value,
    pub settings: EvaluationSettings,
    pub file: String,
    pub score_col: String,
}

impl ScoresEvaluation {
    /// The self-contained HTML report.
    pub fn html(&self, generated_at: Timestamp) -> String {
        let ctx = ReportContext {
            title: format!("Evaluation of `{}` in {}", self.score_col, self.file),
            dataset: Some(self.file.clone()),
            generated_at: generated_at.to_string(),
            score_column: self.score_col.clone(),
            label_column: self.settings.label_col.clone(),
            thresholds: self.settings.thresholds.clone(),
            ..ReportContext::default()
        };
        vigil_report::render_evaluation(&self.report, &ctx)
    }
}

/// Evaluates the score column of a CSV or Parquet file. Any bad cell (a label that is not
/// binary, a score that is missing, not a number or outside `[0, 1]`, a missing column) is
/// an error naming the column and the first offending row.
pub fn evaluate_scores(req: &EvaluateScores) -> Result<ScoresEvaluation> {
    req.settings.check()?;
    let settings = req.settings.resolved(&[]);
    let file = DataFile::user(&req.path);
    let (mut specs, mut roles) = settings.column_specs();
    specs.insert(0, spec(&req.score_col, ColumnType::Number));
    roles.insert(0, (req.score_col.clone(), Role::Score));
    let cols = columns::read(&file, &specs, &roles)?;
    let scores = columns::scores(&file, &cols, &req.score_col)?;
    let outcomes = Outcomes::read(&file, &cols, &settings)?;
    let all: Vec<usize> = (0..scores.len()).collect();
    let input = outcomes.input(scores, &all);
    let report = vigil_stats::evaluate(&input, &settings.stats_options())
        .map_err(|e| stats_error(&file, &req.score_col, &settings, e))?;
    let json = serde_json::to_value(&report).map_err(|e| Error::internal(e.to_string()))?;
    Ok(ScoresEvaluation {
        report,
        json,
        settings,
        file: file.shown.clone(),
        score_col: req.score_col.clone(),
    })
}

// ---- scoring a snapshot with a release -------------------------------------------------

/// A release ready to score rows: its contract and model checked against each other.
pub(crate) struct ReleaseScorer {
    pub(crate) release: Release,
    pub(crate) scorer: Scorer,
}

/// Each row's score, or the fallback that stood in for it.
struct RowScores {
    scores: Vec<Option<f64>>,
    by_reason: BTreeMap<String, u64>,
    by_feature: BTreeMap<String, u64>,
}

impl RowScores {
    fn n_abstained(&self) -> u64 {
        self.scores.iter().filter(|s| s.is_none()).count() as u64
    }

    fn to_json(&self) -> Value {
        json!({
            "n_rows": self.scores.len(),
            "n_scored": self.scores.len() as u64 - self.n_abstained(),
            "n_abstained": self.n_abstained(),
            "abstained_by_reason": self.by_reason,
            "abstained_by_feature": self.by_feature,
        })
    }
}

/// The contract inputs' cells of every row, as text (the contract decides what is usable).
struct FeatureCells {
    /// (feature name, type, cells) for every contract input present in the file.
    present: Vec<(String, FeatureType, Vec<String>)>,
}

impl FeatureCells {
    fn read(
        file: &DataFile,
        header: &[String],
        contract: &FeatureContract,
        extra: &EvaluationSettings,
    ) -> Result<(FeatureCells, Columns)> {
        let (mut specs, roles) = extra.column_specs();
        let mut names = Vec::new();
        for f in contract.inputs() {
            if header.iter().any(|h| h == &f.name) {
                if !specs.iter().any(|s| s.name == f.name) {
                    specs.push(spec(&f.name, ColumnType::Text));
                }
                names.push((f.name.clone(), f.ty));
            } else if f.role == FeatureRole::Required {
                return Err(Error::invalid(
                    "column_missing",
                    format!(
                        "`{}` has no column `{}`, which the release's contract requires",
                        file.shown, f.name
                    ),
                ));
            }
        }
        let cols = columns::read(file, &specs, &roles)?;
        let mut present = Vec::new();
        for (n, ty) in names {
            present.push((n.clone(), ty, columns::text(&cols, &n)?.to_vec()));
        }
        Ok((FeatureCells { present }, cols))
    }

    /// Row `i`'s inputs, leaving out `drop` (to see how the contract copes without it).
    fn inputs(&self, i: usize, drop: Option<&str>) -> Inputs {
        let mut inputs = Inputs::new();
        for (name, ty, cells) in &self.present {
            if drop == Some(name.as_str()) {
                continue;
            }
            let s = cells[i].trim();
            if columns::is_missing(s) {
                continue;
            }
            // A cell of the wrong kind is passed as text: the contract records it invalid and
            // applies its missing-value policy, exactly as it would for a live request.
            let input = match ty {
                FeatureType::Float | FeatureType::Int => s
                    .parse::<f64>()
                    .map_or_else(|_| Input::text(s), Input::number),
                FeatureType::Bool => match s {
                    "1" | "true" | "True" | "TRUE" => Input::boolean(true),
                    "0" | "false" | "False" | "FALSE" => Input::boolean(false),
                    _ => Input::text(s),
                },
                FeatureType::Category => Input::text(s),
            };
            inputs.insert(name.clone(), input);
        }
        inputs
    }
}

impl ReleaseScorer {
    fn score_rows(
        &self,
        cells: &FeatureCells,
        n: usize,
        drop: Option<&str>,
        now: Timestamp,
    ) -> RowScores {
        let results: Vec<std::result::Result<f64, Fallback>> = (0..n)
            .into_par_iter()
            .map(|i| {
                self.scorer
                    .score(&cells.inputs(i, drop), now)
                    .map(|s| s.score)
            })
            .collect();
        let mut out = RowScores {
            scores: Vec::with_capacity(n),
            by_reason: BTreeMap::new(),
            by_feature: BTreeMap::new(),
        };
        for r in results {
            match r {
                Ok(s) => out.scores.push(Some(s)),
                Err(f) => {
                    out.scores.push(None);
                    *out.by_reason
                        .entry(f.reason.as_str().to_owned())
                        .or_default() += 1;
                    for feat in f.features {
                        *out.by_feature.entry(feat).or_default() += 1;
                    }
                }
            }
        }
        out
    }
}

fn est(map: &mut Map<String, Value>, key: &str, e: &Estimate<f64>) {
    match e {
        Ok(v) => {
            map.insert(key.into(), json!(v));
        }
        Err(r) => {
            map.insert(key.into(), Value::Null);
            map.insert(format!("{key}_reason"), json!(r.reason));
        }
    }
}

/// AUROC, AUPRC and Brier score of the scored rows.
fn headline(
    scores: &[Option<f64>],
    labels: &[f64],
) -> (Estimate<f64>, Estimate<f64>, Estimate<f64>) {
    let (s, y): (Vec<f64>, Vec<bool>) = scores
        .iter()
        .zip(labels)
        .filter_map(|(s, &y)| s.map(|s| (s, y == 1.0)))
        .unzip();
    (
        vigil_stats::auroc(&s, &y),
        vigil_stats::average_precision(&s, &y),
        vigil_stats::brier(&s, &y),
    )
}

/// A recorded evaluation and its JSON report.
#[derive(Debug, Serialize)]
pub struct RecordedEvaluation {
    pub evaluation: Evaluation,
    /// False when the same evaluation was already recorded (nothing was written).
    pub created: bool,
    pub report: Value,
}

pub struct EvaluateRelease {
    /// Release id or unambiguous prefix.
    pub release: String,
    /// Snapshot id or unambiguous prefix.
    pub dataset: String,
    pub settings: EvaluationSettings,
}

impl Vigil {
    pub(crate) async fn release_scorer(&self, id: &str) -> Result<ReleaseScorer> {
        let release = self.get_release(id).await?;
        let contract = self.release_contract(&release)?;
        let artifact = self.release_artifact(&release)?;
        let model = vigil_inference::Model::from_bytes(&artifact)
            .map_err(|e| Error::internal(format!("the release's model cannot be loaded: {e}")))?;
        let scorer = Scorer::new(Arc::new(contract), Arc::new(model)).map_err(|e| {
            Error::internal(format!(
                "the release's model does not fit its contract: {e}"
            ))
        })?;
        Ok(ReleaseScorer { release, scorer })
    }

    /// Each row's score under a release (`None` where the contract made it abstain), and the
    /// release's main decision threshold (0.5 when it has none).
    pub(crate) async fn snapshot_scores(
        &self,
        release: &str,
        ds: &DatasetSnapshot,
        label_col: &str,
    ) -> Result<(Vec<Option<f64>>, f64)> {
        let rs = self.release_scorer(release).await?;
        let settings = EvaluationSettings::new(label_col).resolved(&rs.release.manifest.thresholds);
        let file = self.snapshot_file(ds)?;
        let contract = rs.scorer.contract().clone();
        let (cells, _) = FeatureCells::read(&file, &ds.snapshot.columns, &contract, &settings)?;
        let n = usize::try_from(ds.snapshot.rows).unwrap_or(usize::MAX);
        let scored = rs.score_rows(&cells, n, None, self.clock.now());
        let threshold = rs
            .release
            .manifest
            .thresholds
            .first()
            .copied()
            .unwrap_or(0.5);
        Ok((scored.scores, threshold))
    }

    /// Scores every row of a registered snapshot with a release (through its feature
    /// contract: rows where it abstains are counted, never scored), evaluates the scores,
    /// checks how the metrics hold up with each optional feature missing, and records the
    /// evaluation with its JSON and HTML reports and the `evaluation.recorded` audit event.
    pub async fn evaluate_release(
        &self,
        actor: &UserName,
        req: EvaluateRelease,
    ) -> Result<RecordedEvaluation> {
        req.settings.check()?;
        let rs = self.release_scorer(&req.release).await?;
        let ds = self.get_dataset(&req.dataset).await?;
        let settings = req.settings.resolved(&rs.release.manifest.thresholds);
        let file = self.snapshot_file(&ds)?;
        let contract = rs.scorer.contract().clone();
        let (cells, cols) = FeatureCells::read(&file, &ds.snapshot.columns, &contract, &settings)?;
        let outcomes = Outcomes::read(&file, &cols, &settings)?;
        let n = outcomes.labels.len();
        let now = self.clock.now();
        let scored = rs.score_rows(&cells, n, None, now);
        let keep: Vec<usize> = (0..n).filter(|&i| scored.scores[i].is_some()).collect();
        if keep.is_empty() {
            return Err(Error::invalid(
                "nothing_scored",
                format!(
                    "the release abstained on every row of {} ({:?})",
                    file.shown, scored.by_reason
                ),
            ));
        }
        let scores: Vec<f64> = scored.scores.iter().flatten().copied().collect();
        let report =
            vigil_stats::evaluate(&outcomes.input(scores, &keep), &settings.stats_options())
                .map_err(|e| stats_error(&file, "(model score)", &settings, e))?;

        let mut robustness = Map::new();
        for f in contract
            .inputs()
            .filter(|f| f.role == FeatureRole::Optional)
        {
            let without = rs.score_rows(&cells, n, Some(&f.name), now);
            let (auroc, auprc, brier) = headline(&without.scores, &outcomes.labels);
            let mut m = Map::new();
            est(&mut m, "auroc", &auroc);
            est(&mut m, "auprc", &auprc);
            est(&mut m, "brier", &brier);
            m.insert("n_scored".into(), json!(n as u64 - without.n_abstained()));
            m.insert("n_abstained".into(), json!(without.n_abstained()));
            m.insert("policy".into(), json!(f.missing));
            robustness.insert(f.name.clone(), Value::Object(m));
        }

        let options =
            serde_json::to_value(&settings).map_err(|e| Error::internal(e.to_string()))?;
        let mut report_json =
            serde_json::to_value(&report).map_err(|e| Error::internal(e.to_string()))?;
        if let Value::Object(m) = &mut report_json {
            m.insert("release".into(), json!(rs.release.id));
            m.insert("dataset".into(), json!(ds.id));
            m.insert("options".into(), options.clone());
            m.insert("scoring".into(), scored.to_json());
            m.insert(
                "missing_data_robustness".into(),
                Value::Object(robustness.clone()),
            );
        }
        let report_bytes = to_canonical_string(&report_json).into_bytes();
        let html = self
            .render_release_html(
                &rs.release,
                &ds,
                &report,
                &settings,
                &scored,
                &robustness,
                now,
            )
            .await?;

        let manifest = EvaluationManifest {
            schema: EVALUATION_SCHEMA.into(),
            release: rs.release.id,
            dataset: ds.id,
            options,
            report: Pinned {
                digest: Digest::of(&report_bytes),
                size: report_bytes.len() as u64,
            },
        };
        let id = manifest.id().map_err(|e| Error::internal(e.to_string()))?;
        // Reports first: a crash after this leaves only unreferenced, content-addressed blobs.
        self.blobs.put(&report_bytes)?;
        let (html_digest, html_size) = self.blobs.put(html.as_bytes())?;
        let mut tx = self.store.begin().await?;
        if let Some(existing) = tx.find_evaluation(&id).await? {
            tx.rollback().await?;
            return Ok(RecordedEvaluation {
                evaluation: existing,
                created: false,
                report: report_json,
            });
        }
        let summary = summary(&report_json);
        let evaluation = Evaluation {
            id,
            manifest,
            html: Pinned {
                digest: html_digest,
                size: html_size,
            },
            summary,
            created_at: now,
            created_by: actor.clone(),
        };
        tx.insert_evaluation(&evaluation).await?;
        let ev = audit_event(
            actor,
            "evaluation.recorded",
            format!("evaluation:{id}"),
            json!({
                "id": id,
                "release": evaluation.manifest.release,
                "dataset": evaluation.manifest.dataset,
                "report_digest": evaluation.manifest.report.digest,
                "html_digest": evaluation.html.digest,
            }),
        )?;
        tx.append_audit(now, &ev).await?;
        tx.commit().await?;
        Ok(RecordedEvaluation {
            evaluation,
            created: true,
            report: report_json,
        })
    }

    #[allow(clippy::too_many_arguments)]
    async fn render_release_html(
        &self,
        release: &Release,
        ds: &DatasetSnapshot,
        report: &EvaluationReport,
        settings: &EvaluationSettings,
        scored: &RowScores,
        robustness: &Map<String, Value>,
        now: Timestamp,
    ) -> Result<String> {
        let model = self.find_model(release.manifest.model.as_str()).await?;
        let mut notes = Vec::new();
        let abst = scored.n_abstained();
        notes.push(if abst == 0 {
            format!("The release scored all {} rows of the snapshot.", scored.scores.len())
        } else {
            format!(
                "The release abstained on {abst} of {} rows (by reason: {}); those rows are excluded from every figure above, never given a score.",
                scored.scores.len(),
                scored.by_reason.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", ")
            )
        });
        for (feature, m) in robustness {
            let f = |k: &str| {
                m.get(k)
                    .and_then(Value::as_f64)
                    .map_or("not estimable".to_string(), |v| format!("{v:.3}"))
            };
            notes.push(format!(
                "Missing-data robustness — with `{feature}` missing for every row (contract policy: {}): AUROC {}, AUPRC {}, Brier {}, {} rows abstained.",
                m.get("policy").and_then(Value::as_str).unwrap_or("-"),
                f("auroc"),
                f("auprc"),
                f("brier"),
                m.get("n_abstained").and_then(Value::as_u64).unwrap_or(0)
            ));
        }
        let ctx = ReportContext {
            title: format!(
                "Evaluation of {} release {}",
                release.manifest.model,
                release.id.short()
            ),
            model: Some(release.manifest.model.to_string()),
            release: Some(release.id.to_string()),
            dataset: Some(format!("{} ({})", ds.snapshot.name, ds.id.short())),
            generated_at: now.to_string(),
            score_column: "model score".into(),
            label_column: settings.label_col.clone(),
            outcome: None,
            thresholds: settings.thresholds.clone(),
            intended_use_summary: model.map(|m| m.intended_use.output),
            notes,
        };
        Ok(vigil_report::render_evaluation(report, &ctx))
    }

    /// Evaluations, oldest first; only those of a release (id or prefix) when given.
    pub async fn list_evaluations(&self, release: Option<&str>) -> Result<Vec<Evaluation>> {
        let release = match release {
            Some(r) => Some(self.resolve_release(r).await?),
            None => None,
        };
        Ok(self.store.list_evaluations(release.as_ref()).await?)
    }

    /// An evaluation by id or unambiguous prefix.
    pub async fn get_evaluation(&self, id_or_prefix: &str) -> Result<Evaluation> {
        let prefix = IdPrefix::parse(id_or_prefix)
            .map_err(|e| Error::invalid("invalid_id", e.to_string()))?;
        let ids = self.store.evaluation_ids_with_prefix(&prefix).await?;
        let id = match ids.as_slice() {
            [one] => EvaluationId::parse(one).map_err(|e| Error::internal(e.to_string()))?,
            [] => {
                return Err(Error::not_found(
                    "evaluation_not_found",
                    format!("no evaluation with id `{id_or_prefix}` (see `vigil evaluation list`)"),
                ));
            }
            _ => {
                return Err(Error::invalid(
                    "ambiguous_id",
                    format!(
                        "`{id_or_prefix}` matches more than one evaluation: give more characters of the id"
                    ),
                ));
            }
        };
        self.store
            .find_evaluation(&id)
            .await?
            .ok_or_else(|| Error::not_found("evaluation_not_found", format!("no evaluation {id}")))
    }

    /// The evaluation's JSON report, verified against its digest.
    pub fn evaluation_report(&self, e: &Evaluation) -> Result<Value> {
        let bytes = self.blobs.get(&e.manifest.report.digest)?;
        serde_json::from_slice(&bytes)
            .map_err(|err| Error::internal(format!("stored report: {err}")))
    }

    /// The evaluation's HTML report, verified against its digest.
    pub fn evaluation_html(&self, e: &Evaluation) -> Result<Vec<u8>> {
        Ok(self.blobs.get(&e.html.digest)?)
    }

    /// Scores one snapshot with two releases and compares them on the rows both scored.
    pub async fn compare_releases(&self, req: CompareReleases) -> Result<Comparison> {
        let a = self.release_scorer(&req.release_a).await?;
        let b = self.release_scorer(&req.release_b).await?;
        let ds = self.get_dataset(&req.dataset).await?;
        let file = self.snapshot_file(&ds)?;
        let mut settings = EvaluationSettings::new(req.label_col.clone());
        settings.positive_label = req.positive_label.clone();
        let now = self.clock.now();
        let (cells_a, cols) =
            FeatureCells::read(&file, &ds.snapshot.columns, a.scorer.contract(), &settings)?;
        let (cells_b, _) =
            FeatureCells::read(&file, &ds.snapshot.columns, b.scorer.contract(), &settings)?;
        let labels = columns::labels(&file, &cols, &req.label_col, req.positive_label.as_deref())?;
        let n = labels.len();
        let sa = a.score_rows(&cells_a, n, None, now);
        let sb = b.score_rows(&cells_b, n, None, now);
        let both: Vec<(f64, f64, bool)> = (0..n)
            .filter_map(|i| match (sa.scores[i], sb.scores[i]) {
                (Some(x), Some(y)) => Some((x, y, labels[i] == 1.0)),
                _ => None,
            })
            .collect();
        let xa: Vec<f64> = both.iter().map(|t| t.0).collect();
        let xb: Vec<f64> = both.iter().map(|t| t.1).collect();
        let y: Vec<bool> = both.iter().map(|t| t.2).collect();
        let metric =
            |name: &str, fa: Estimate<f64>, fb: Estimate<f64>, out: &mut Map<String, Value>| {
                let mut m = Map::new();
                let d = match (&fa, &fb) {
                    (Ok(p), Ok(q)) => Ok(p - q),
                    (Err(e), _) | (_, Err(e)) => Err(e.clone()),
                };
                est(&mut m, "a", &fa);
                est(&mut m, "b", &fb);
                est(&mut m, "difference", &d);
                out.insert(name.into(), Value::Object(m));
            };
        let mut metrics = Map::new();
        metric(
            "auroc",
            vigil_stats::auroc(&xa, &y),
            vigil_stats::auroc(&xb, &y),
            &mut metrics,
        );
        metric(
            "auprc",
            vigil_stats::average_precision(&xa, &y),
            vigil_stats::average_precision(&xb, &y),
            &mut metrics,
        );
        metric(
            "brier",
            vigil_stats::brier(&xa, &y),
            vigil_stats::brier(&xb, &y),
            &mut metrics,
        );
        let delong = match vigil_stats::delong_paired(&xa, &xb, &y) {
            Ok(d) => serde_json::to_value(d).map_err(|e| Error::internal(e.to_string()))?,
            Err(e) => json!({ "reason": e.reason }),
        };
        Ok(Comparison {
            release_a: a.release.id.to_string(),
            release_b: b.release.id.to_string(),
            dataset: ds.id.to_string(),
            n_rows: n as u64,
            n_compared: both.len() as u64,
            n_excluded: (n - both.len()) as u64,
            abstained_a: sa.n_abstained(),
            abstained_b: sb.n_abstained(),
            n_positive: y.iter().filter(|&&v| v).count() as u64,
            delong,
            metrics: Value::Object(metrics),
        })
    }
}

/// Headline figures of a report, for listings.
fn summary(report: &Value) -> Value {
    json!({
        "n": report["n"],
        "n_positive": report["n_positive"],
        "prevalence": report["prevalence"],
        "auroc": report["auroc"]["value"],
        "auroc_ci_low": report["auroc"]["ci_low"],
        "auroc_ci_high": report["auroc"]["ci_high"],
        "auprc": report["auprc"]["value"],
        "brier": report["brier"],
        "n_abstained": report["scoring"]["n_abstained"],
    })
}

pub struct CompareReleases {
    pub release_a: String,
    pub release_b: String,
    pub dataset: String,
    pub label_col: String,
    pub positive_label: Option<String>,
}

/// Two releases on the same rows: paired DeLong and metric differences (`a − b`).
#[derive(Debug, Serialize)]
pub struct Comparison {
    pub release_a: String,
    pub release_b: String,
    pub dataset: String,
    pub n_rows: u64,
    /// Rows both releases scored; the others are excluded from every figure.
    pub n_compared: u64,
    pub n_excluded: u64,
    pub abstained_a: u64,
    pub abstained_b: u64,
    pub n_positive: u64,
    /// `auc_a`, `auc_b`, `difference`, `variance`, `z`, `p_value`, `ci_low`, `ci_high`; or
    /// `reason` when the test cannot be computed.
    pub delong: Value,
    /// `auroc`, `auprc`, `brier`: each `{a, b, difference}`.
    pub metrics: Value,
}
