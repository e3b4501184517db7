//! Rehearsal: replay a synthetic cohort through a production deployment, day by day, with a
//! scenario injected, run the monitor policy at the end of each simulated day, and keep what
//! it did as evidence.
//!
//! Rows are drawn (seeded, with replacement) from a registered snapshot — by default the
//! release's latest evaluation snapshot, else its training snapshot — scored by the
//! release's own `Scorer`, recorded as prediction records on channel `simulate`, and their
//! labels stored as outcomes.

use std::sync::Arc;

use serde::Serialize;
use serde_json::json;
use vigil_data::ColumnType;
use vigil_domain::prediction::{FeatureRecord, PredictionMode, PredictionRecord};
use vigil_domain::{Digest, Duration, FeatureType, Timestamp, UserName};
use vigil_inference::{FeatureOutcome, FeatureStatus, Input, Inputs, Scorer};
use vigil_stats::rng::Xoshiro256StarStar;
use vigil_store::{OutcomeRecord, RehearsalRecord};

use crate::columns::{self, Role, spec};
use crate::{Error, Result, Vigil, audit_event};

/// What changes on the change day.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Scenario {
    /// Nothing: the policy should stay quiet.
    Stable,
    /// A lab stops arriving (an EHR upgrade broke its feed).
    LabDropout { feature: String },
    /// Seasonal case mix: this share of rows comes from the upper half of `feature`.
    CaseMix { feature: String, share: f64 },
    /// A site's thermometer switches to °F and the feed still says °C.
    Fahrenheit {
        feature: String,
        site: Option<String>,
    },
    /// Outcomes become more frequent: by the last day this share of negatives is positive.
    Prevalence { extra: f64 },
}

impl Scenario {
    pub fn name(&self) -> &'static str {
        match self {
            Scenario::Stable => "stable",
            Scenario::LabDropout { .. } => "lab_dropout",
            Scenario::CaseMix { .. } => "case_mix",
            Scenario::Fahrenheit { .. } => "fahrenheit",
            Scenario::Prevalence { .. } => "prevalence",
        }
    }
}

pub struct SimulateRequest {
    pub model: String,
    pub scenario: Scenario,
    /// The first simulated day (midnight UTC).
    pub start: Timestamp,
    pub days: u32,
    pub per_day: u32,
    /// The scenario applies from this day (0-based).
    pub change_day: u32,
    pub seed: u64,
    /// Snapshot to draw rows from (id or prefix).
    pub source: Option<String>,
    pub label_col: String,
    pub site_col: Option<String>,
    pub patient_col: Option<String>,
    /// Run the monitor policy at the end of each day (and once outcomes are due).
    pub run_monitor: bool,
}

/// What a rehearsal did.
#[derive(Clone, Debug, Serialize)]
pub struct Simulation {
    pub rehearsal: i64,
    pub model: String,
    pub release: vigil_domain::ReleaseId,
    pub scenario: Scenario,
    pub run: String,
    pub start: Timestamp,
    pub days: u32,
    pub change_day: u32,
    pub predictions: u64,
    pub fallbacks: u64,
    pub outcomes: u64,
    /// Every firing the policy made during the rehearsal.
    pub firings: Vec<serde_json::Value>,
    /// The first simulated day (0-based) whose window fired, if any.
    pub first_firing_day: Option<i64>,
}

fn feature_records(outcomes: &[FeatureOutcome]) -> Vec<FeatureRecord> {
    outcomes
        .iter()
        .map(|f| FeatureRecord {
            name: f.name.clone(),
            value: f.value,
            status: match f.status {
                FeatureStatus::Present => "ok",
                FeatureStatus::Converted => "converted",
                FeatureStatus::Filled => "filled",
                FeatureStatus::Missing => "missing",
                FeatureStatus::Invalid => "invalid",
                FeatureStatus::Stale => "stale",
            }
            .to_owned(),
            reason: f.reason.clone(),
            source: f.source.clone(),
            observed_at: f.observed_at,
        })
        .collect()
}

impl Vigil {
    /// Runs a rehearsal (operator role) and records it as evidence.
    pub async fn simulate(&self, actor: &UserName, req: SimulateRequest) -> Result<Simulation> {
        use vigil_domain::role::Role as R;
        let model = self.get_model(&req.model).await?.name;
        self.authorize(
            actor,
            &[R::Operator],
            "rehearsal",
            &format!("model:{model}"),
        )
        .await?;
        if req.days == 0 || req.per_day == 0 || req.days > 366 || req.per_day > 100_000 {
            return Err(Error::invalid(
                "invalid_simulation",
                "days must be 1 to 366 and rows per day 1 to 100000",
            ));
        }
        let d = self
            .production_deployments()
            .await?
            .into_iter()
            .find(|d| d.model.name == model)
            .ok_or_else(|| {
                Error::precondition(
                    "no_production_release",
                    format!("model `{model}` has no release in production to rehearse on"),
                )
            })?;
        let release = d.release.clone();
        let contract = self.release_contract(&release)?;
        let artifact = self.release_artifact(&release)?;
        let m = vigil_inference::Model::from_bytes(&artifact)
            .map_err(|e| Error::internal(format!("the release's model cannot be loaded: {e}")))?;
        let scorer = Scorer::new(Arc::new(contract.clone()), Arc::new(m)).map_err(|e| {
            Error::internal(format!(
                "the release's model does not fit its contract: {e}"
            ))
        })?;
        let source = match &req.source {
            Some(s) => self.get_dataset(s).await?,
            None => {
                let evals = self.store.list_evaluations(Some(&release.id)).await?;
                match evals.last() {
                    Some(e) => self.get_dataset(&e.manifest.dataset.to_string()).await?,
                    None => {
                        self.get_dataset(&release.manifest.training_data.to_string())
                            .await?
                    }
                }
            }
        };
        let file = self.snapshot_file(&source)?;
        let cols_in = &source.snapshot.columns;
        let inputs: Vec<(String, FeatureType)> = contract
            .inputs()
            .filter(|f| cols_in.contains(&f.name))
            .map(|f| (f.name.clone(), f.ty))
            .collect();
        let mut specs: Vec<_> = inputs
            .iter()
            .map(|(n, _)| spec(n, ColumnType::Text))
            .collect();
        let mut roles: Vec<_> = inputs
            .iter()
            .map(|(n, _)| (n.clone(), Role::Other))
            .collect();
        for c in std::iter::once(&req.label_col)
            .chain(req.site_col.iter())
            .chain(req.patient_col.iter())
        {
            if !specs.iter().any(|s| &s.name == c) {
                specs.push(spec(c, ColumnType::Text));
                roles.push((c.clone(), Role::Other));
            }
        }
        let cols = columns::read(&file, &specs, &roles)?;
        let labels = columns::labels(&file, &cols, &req.label_col, None)?;
        let n_rows = labels.len();
        if n_rows == 0 {
            return Err(Error::invalid(
                "empty_source",
                "the source snapshot has no rows",
            ));
        }
        let cells: Vec<(String, FeatureType, Vec<String>)> = inputs
            .iter()
            .map(|(n, t)| Ok((n.clone(), *t, columns::text(&cols, n)?.to_vec())))
            .collect::<Result<_>>()?;
        let sites = req
            .site_col
            .as_deref()
            .map(|c| columns::text(&cols, c).map(<[String]>::to_vec))
            .transpose()?;
        let patients = req
            .patient_col
            .as_deref()
            .map(|c| columns::text(&cols, c).map(<[String]>::to_vec))
            .transpose()?;
        // Case mix: the rows in the upper half of the feature.
        let upper: Vec<usize> = match &req.scenario {
            Scenario::CaseMix { feature, .. } => {
                let col = cells.iter().find(|(n, _, _)| n == feature).ok_or_else(|| {
                    Error::invalid(
                        "unknown_feature",
                        format!("`{feature}` is not an input in the source"),
                    )
                })?;
                let mut v: Vec<(f64, usize)> = col
                    .2
                    .iter()
                    .enumerate()
                    .filter_map(|(i, s)| s.trim().parse::<f64>().ok().map(|x| (x, i)))
                    .collect();
                v.sort_by(|a, b| a.0.total_cmp(&b.0));
                v[v.len() / 2..].iter().map(|(_, i)| *i).collect()
            }
            _ => Vec::new(),
        };
        for f in match &req.scenario {
            Scenario::LabDropout { feature } | Scenario::Fahrenheit { feature, .. } => {
                vec![feature]
            }
            _ => vec![],
        } {
            if contract.find_feature(f).is_none() {
                return Err(Error::invalid(
                    "unknown_feature",
                    format!("`{f}` is not a feature of the release's contract"),
                ));
            }
        }
        let run_id = {
            let d = Digest::of(
                format!(
                    "{}|{}|{}|{:?}|{}",
                    release.id,
                    req.start,
                    req.seed,
                    req.scenario,
                    self.clock.now()
                )
                .as_bytes(),
            );
            d.to_hex()[..12].to_owned()
        };
        let mut rng = Xoshiro256StarStar::seed_from_u64(req.seed);
        let mut predictions = 0u64;
        let mut fallbacks = 0u64;
        let mut n_outcomes = 0u64;
        let day_us = Duration::from_days(1).as_micros();
        let step_us = day_us / i64::from(req.per_day);
        let mut firings = Vec::new();
        let mut first_firing_day = None;
        let max_delay = self
            .current_monitor_policy()
            .await?
            .map(|p| p.policy.rules.iter().filter_map(|r| r.label_delay).max())
            .unwrap_or_default()
            .unwrap_or(Duration::from_micros(0));
        for day in 0..req.days {
            let changed = day >= req.change_day;
            let day_start = req.start.plus(Duration::from_days(i64::from(day)));
            let mut records = Vec::with_capacity(req.per_day as usize);
            let mut outcomes = Vec::with_capacity(req.per_day as usize);
            for i in 0..req.per_day {
                let row = match &req.scenario {
                    Scenario::CaseMix { share, .. }
                        if changed && !upper.is_empty() && rng.next_f64() < *share =>
                    {
                        upper[rng.below(upper.len() as u64) as usize]
                    }
                    _ => rng.below(n_rows as u64) as usize,
                };
                let site = sites.as_ref().map(|s| s[row].clone());
                let at = Timestamp::from_micros(day_start.as_micros() + i64::from(i) * step_us);
                let mut inp = Inputs::new();
                for (name, ty, col) in &cells {
                    let s = col[row].trim();
                    if columns::is_missing(s) {
                        continue;
                    }
                    let mut input = match ty {
                        FeatureType::Float | FeatureType::Int => s
                            .parse::<f64>()
                            .map_or_else(|_| Input::text(s), Input::number),
                        FeatureType::Bool => {
                            Input::boolean(matches!(s, "1" | "true" | "True" | "TRUE"))
                        }
                        FeatureType::Category => Input::text(s),
                    };
                    if changed {
                        match &req.scenario {
                            Scenario::LabDropout { feature } if feature == name => continue,
                            Scenario::Fahrenheit {
                                feature,
                                site: only,
                            } if feature == name
                                && only.as_ref().is_none_or(|o| site.as_ref() == Some(o)) =>
                            {
                                if let vigil_inference::InputValue::Number(c) = input.value {
                                    input.value =
                                        vigil_inference::InputValue::Number(c * 9.0 / 5.0 + 32.0);
                                }
                            }
                            _ => {}
                        }
                    }
                    inp.insert(name.clone(), input.observed_at(at));
                }
                let request_id = format!("sim-{run_id}-{day}-{i}");
                let started = std::time::Instant::now();
                let scored = scorer.score(&inp, at);
                let latency_us = i64::try_from(started.elapsed().as_micros()).unwrap_or(i64::MAX);
                let (score, fallback, feats) = match scored {
                    Ok(s) => (Some(s.score), None, feature_records(&s.assembled.features)),
                    Err(f) => {
                        fallbacks += 1;
                        (
                            None,
                            Some(f.reason.as_str().to_owned()),
                            feature_records(&f.outcomes),
                        )
                    }
                };
                let decision = score
                    .and_then(|s| vigil_domain::release::decision(&release.manifest.thresholds, s));
                let encounter = self.pseudonymise("encounter", &request_id);
                let patient = patients
                    .as_ref()
                    .map(|p| self.pseudonymise("patient", &format!("{run_id}:{}", p[row])));
                records.push(PredictionRecord {
                    seq: None,
                    request_id: request_id.clone(),
                    recorded_at: at,
                    model: model.to_string(),
                    release: release.id,
                    mode: PredictionMode::Active,
                    channel: "simulate".into(),
                    patient_key: patient,
                    encounter_key: Some(encounter.clone()),
                    features: feats,
                    score,
                    decision,
                    fallback_reason: fallback,
                    latency_us,
                    context: json!({ "simulation": run_id, "scenario": req.scenario.name(), "site": site }),
                });
                let mut label = labels[row] == 1.0;
                if let Scenario::Prevalence { extra } = &req.scenario
                    && changed
                    && !label
                {
                    let span = f64::from(req.days.saturating_sub(req.change_day).max(1));
                    let p = extra * f64::from(day - req.change_day + 1) / span;
                    label = rng.next_f64() < p;
                }
                outcomes.push(OutcomeRecord {
                    key_kind: "encounter".into(),
                    key: encounter,
                    label,
                    observed_at: Some(at.plus(Duration::from_days(1))),
                    imported_at: self.clock.now(),
                });
            }
            predictions += records.len() as u64;
            n_outcomes += outcomes.len() as u64;
            self.record_predictions(&records).await?;
            let mut tx = self.store.begin().await?;
            let now = self.clock.now();
            let summary = json!({ "key_kind": "encounter", "received": outcomes.len(), "imported": outcomes.len(),
                                  "simulation": run_id, "day": day });
            let id = tx
                .insert_outcome_import(
                    &format!("simulate:{run_id}"),
                    &Digest::of(run_id.as_bytes()),
                    &summary,
                    actor,
                    now,
                )
                .await?;
            tx.insert_outcomes(id, &outcomes).await?;
            let ev = audit_event(actor, "outcomes.imported", "outcomes", summary)?;
            tx.append_audit(now, &ev).await?;
            tx.commit().await?;
            if req.run_monitor {
                let end = day_start.plus(Duration::from_days(1));
                self.collect_firings(actor, end, req.start, &mut firings, &mut first_firing_day)
                    .await?;
            }
        }
        if req.run_monitor && max_delay.as_micros() > 0 {
            // Once every outcome is due: the windows with labels are judged too.
            let end = req.start.plus(Duration::from_days(i64::from(req.days)));
            let mut t = end;
            while t <= end.plus(max_delay) {
                t = t.plus(Duration::from_days(1));
                self.collect_firings(actor, t, req.start, &mut firings, &mut first_firing_day)
                    .await?;
            }
        }
        let result = json!({
            "run": run_id,
            "scenario": req.scenario,
            "start": req.start,
            "days": req.days,
            "per_day": req.per_day,
            "change_day": req.change_day,
            "seed": req.seed,
            "source": source.id,
            "predictions": predictions,
            "fallbacks": fallbacks,
            "outcomes": n_outcomes,
            "firings": firings,
            "first_firing_day": first_firing_day,
        });
        let now = self.clock.now();
        let mut rec = RehearsalRecord {
            id: 0,
            model: model.clone(),
            release: release.id,
            scenario: req.scenario.name().to_owned(),
            result: result.clone(),
            actor: actor.clone(),
            at: now,
        };
        let mut tx = self.store.begin().await?;
        rec.id = tx.insert_rehearsal(&rec).await?;
        let ev = audit_event(
            actor,
            "monitor.rehearsed",
            format!("release:{}", release.id),
            json!({ "rehearsal": rec.id, "scenario": req.scenario.name(), "firings": firings.len(),
                    "first_firing_day": first_firing_day, "digest": Digest::of(result.to_string().as_bytes()) }),
        )?;
        tx.append_audit(now, &ev).await?;
        tx.commit().await?;
        Ok(Simulation {
            rehearsal: rec.id,
            model: model.to_string(),
            release: release.id,
            scenario: req.scenario,
            run: run_id,
            start: req.start,
            days: req.days,
            change_day: req.change_day,
            predictions,
            fallbacks,
            outcomes: n_outcomes,
            firings,
            first_firing_day,
        })
    }

    async fn collect_firings(
        &self,
        actor: &UserName,
        at: Timestamp,
        start: Timestamp,
        firings: &mut Vec<serde_json::Value>,
        first: &mut Option<i64>,
    ) -> Result<()> {
        let run = self.monitor_run(actor, at).await?;
        for e in run.evaluations.iter().filter(|e| e.firing.is_some()) {
            let day = e
                .window_start
                .since(start)
                .as_micros()
                .div_euclid(Duration::from_days(1).as_micros());
            if matches!(e.step, vigil_domain::monitor::Step::Fire) && first.is_none() {
                *first = Some(day);
            }
            let action = run
                .actions
                .iter()
                .find(|a| Some(a.firing) == e.firing)
                .map(|a| json!({ "kind": a.action, "outcome": a.outcome }));
            firings.push(json!({
                "firing": e.firing,
                "rule": e.rule,
                "group": e.group,
                "window_start": e.window_start,
                "window_end": e.window_end,
                "window_day": day,
                "step": e.step,
                "value": e.signal.value,
                "n": e.signal.n,
                "action": action,
            }));
        }
        Ok(())
    }

    /// The rehearsals recorded for a model.
    pub async fn list_rehearsals(&self, model: &str) -> Result<Vec<RehearsalRecord>> {
        let m = self.get_model(model).await?.name;
        Ok(self.store.list_rehearsals(&m).await?)
    }
}
