//! The monitor report of a deployment: its signals in each of the last windows (trends),
//! the latest window's drift against the reference (the evaluation engine's numbers), by
//! subgroup when asked, with the controls and review-by date in force.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use vigil_domain::monitor::{Signal, due_window};
use vigil_domain::prediction::PredictionMode;
use vigil_domain::{Duration, ReleaseId, Stage, Timestamp, UserName};
use vigil_stats::{DriftOptions, DriftReport};

use super::DeploymentControls;
use super::profile::ProfileSummary;
use super::run::{RevalidationView, feedback_of};
use super::signals::{self, SignalValue, WindowData};
use crate::{Error, Result, Vigil};

/// One window's signals (keys like `psi:age`, `missing_rate:lactate`, `alert_share`).
#[derive(Clone, Debug, Serialize)]
pub struct WindowSignals {
    pub start: Timestamp,
    pub end: Timestamp,
    pub predictions: u64,
    /// Outcome signals are computed only once the window's labels are due.
    pub outcomes_due: bool,
    pub labelled: u64,
    pub signals: BTreeMap<String, SignalValue>,
}

#[derive(Clone, Debug, Serialize)]
pub struct MonitorReport {
    pub model: String,
    pub release: ReleaseId,
    /// Whose records: the release's active traffic, or its shadow traffic.
    pub mode: PredictionMode,
    pub at: Timestamp,
    pub window: Duration,
    pub label_delay: Duration,
    pub windows: Vec<WindowSignals>,
    /// The latest window's drift, per feature, as `vigil drift` reports it.
    pub drift: DriftReport,
    /// The latest window's signals per subgroup (with `by`).
    pub by: Option<String>,
    pub groups: BTreeMap<String, WindowSignals>,
    pub reference: ProfileSummary,
    pub controls: DeploymentControls,
    pub revalidation: Option<RevalidationView>,
    pub notes: Vec<String>,
}

const RATE_SIGNALS: [Signal; 10] = [
    Signal::Volume,
    Signal::MissingRate,
    Signal::FallbackRate,
    Signal::ErrorRate,
    Signal::AlertShare,
    Signal::AlertBurden,
    Signal::LatencyP50,
    Signal::LatencyP95,
    Signal::LatencyP99,
    Signal::OverrideRate,
];
const OUTCOME_SIGNALS: [Signal; 5] = [
    Signal::Auroc,
    Signal::CalibrationIntercept,
    Signal::CalibrationSlope,
    Signal::Ece,
    Signal::OeRatio,
];

impl Vigil {
    /// The drift of the production inputs recorded in `[start, end)` against the release's
    /// reference, with the evaluation engine's options.
    pub async fn monitor_drift(
        &self,
        actor: &UserName,
        release: &str,
        start: Timestamp,
        end: Timestamp,
    ) -> Result<DriftReport> {
        let r = self.get_release(release).await?;
        let profile = self.reference_profile(actor, &r.id.to_string()).await?;
        let contract = self.release_contract(&r)?;
        let recs = self
            .window_records(&r.manifest.model, &r.id, start, end)
            .await?;
        let refs: Vec<_> = recs.iter().collect();
        let cur = signals::current_values(&refs, &contract, &profile);
        Ok(vigil_stats::drift(
            &profile.features,
            &cur,
            &DriftOptions::default(),
        ))
    }

    /// The report of `model`'s production release over the last `periods` windows of
    /// `window` before `at`.
    #[allow(clippy::too_many_arguments)]
    pub async fn monitor_report(
        &self,
        actor: &UserName,
        model: &str,
        window: Duration,
        periods: usize,
        at: Timestamp,
        by: Option<&str>,
    ) -> Result<MonitorReport> {
        self.monitor_report_in(
            PredictionMode::Active,
            actor,
            model,
            window,
            periods,
            at,
            by,
        )
        .await
    }

    /// The same report over the production release's records in `mode`: its active traffic,
    /// or the shadow traffic it scored before it went live.
    #[allow(clippy::too_many_arguments)]
    pub async fn monitor_report_in(
        &self,
        mode: PredictionMode,
        actor: &UserName,
        model: &str,
        window: Duration,
        periods: usize,
        at: Timestamp,
        by: Option<&str>,
    ) -> Result<MonitorReport> {
        let m = self.get_model(model).await?;
        let stages = self.store.list_stages(&m.name).await?;
        let Some((rid, _, _)) = stages.iter().find(|(_, s, _)| *s == Stage::Production) else {
            return Err(Error::precondition(
                "no_production_release",
                format!("model `{}` has no release in production", m.name),
            ));
        };
        if window < Duration::from_secs(3600) || periods == 0 || periods > 366 {
            return Err(Error::invalid(
                "invalid_window",
                "the window must be at least 1h and the number of windows 1 to 366",
            ));
        }
        let release = self.get_release(&rid.to_string()).await?;
        let profile = self.reference_profile(actor, &rid.to_string()).await?;
        let contract = self.release_contract(&release)?;
        let threshold = release.manifest.thresholds.first().copied().unwrap_or(0.5);
        let policy = self.current_monitor_policy().await?;
        let label_delay = policy
            .as_ref()
            .and_then(|p| {
                p.policy
                    .rules_for(&m.name)
                    .filter_map(|r| r.label_delay)
                    .max()
            })
            .unwrap_or(Duration::from_micros(0));
        let probe = vigil_domain::monitor::Rule {
            name: "report".into(),
            model: None,
            signal: Signal::Volume,
            feature: None,
            window,
            threshold: vigil_domain::monitor::Threshold::Absolute(0.0),
            direction: vigil_domain::monitor::Direction::Above,
            min_samples: 0,
            cooldown: None,
            clear_after: 1,
            hysteresis: 0.0,
            label_delay: None,
            by: None,
            action: vigil_domain::monitor::Action::Suppress,
        };
        let (_, last_end) = due_window(&probe, at);
        let first_start =
            last_end.minus(Duration::from_micros(window.as_micros() * periods as i64));
        let all = self
            .window_records_in(mode, &m.name, rid, first_start, last_end)
            .await?;
        let feedback = self.feedback_since(&m.name, first_start).await?;
        let mut windows = Vec::new();
        let mut latest: Vec<&vigil_domain::prediction::PredictionRecord> = Vec::new();
        for k in 0..periods {
            let start = first_start.plus(Duration::from_micros(window.as_micros() * k as i64));
            let end = start.plus(window);
            let recs: Vec<_> = all
                .iter()
                .filter(|r| r.recorded_at >= start && r.recorded_at < end)
                .collect();
            let due = end.plus(label_delay) <= at;
            let labels = if due {
                self.join_outcomes(&recs).await?
            } else {
                HashMap::new()
            };
            if k + 1 == periods {
                latest = recs.clone();
            }
            let fb = feedback_of(&feedback, start, &recs);
            windows.push(self.window_signals(
                start, end, recs, labels, fb, due, &contract, &profile, threshold,
            ));
        }
        let refs = latest.clone();
        let cur = signals::current_values(&refs, &contract, &profile);
        let drift = vigil_stats::drift(&profile.features, &cur, &DriftOptions::default());
        let mut groups = BTreeMap::new();
        if let (Some(by), Some(w)) = (by, windows.last()) {
            let mut parts: BTreeMap<String, Vec<&vigil_domain::prediction::PredictionRecord>> =
                BTreeMap::new();
            for r in &latest {
                let g = match r.context.get(by) {
                    Some(serde_json::Value::String(s)) => s.clone(),
                    _ => "(none)".into(),
                };
                parts.entry(g).or_default().push(r);
            }
            for (g, recs) in parts {
                let labels = if w.outcomes_due {
                    self.join_outcomes(&recs).await?
                } else {
                    HashMap::new()
                };
                let fb = feedback_of(&feedback, w.start, &recs);
                groups.insert(
                    g,
                    self.window_signals(
                        w.start,
                        w.end,
                        recs,
                        labels,
                        fb,
                        w.outcomes_due,
                        &contract,
                        &profile,
                        threshold,
                    ),
                );
            }
        }
        let mut notes = Vec::new();
        if label_delay.as_micros() > 0 {
            notes.push(format!(
                "Outcome measures are shown only for windows that ended at least {label_delay} before {at} (the policy's label delay)."
            ));
        }
        let revalidation = self
            .revalidation_status()
            .await?
            .into_iter()
            .find(|r| r.release == *rid);
        Ok(MonitorReport {
            model: m.name.to_string(),
            release: *rid,
            mode,
            at,
            window,
            label_delay,
            windows,
            drift,
            by: by.map(str::to_owned),
            groups,
            reference: profile.summary.clone(),
            controls: self.deployment_controls(m.name.as_str()).await?,
            revalidation,
            notes,
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn window_signals(
        &self,
        start: Timestamp,
        end: Timestamp,
        recs: Vec<&vigil_domain::prediction::PredictionRecord>,
        labels: HashMap<usize, bool>,
        feedback: Vec<bool>,
        due: bool,
        contract: &vigil_domain::FeatureContract,
        profile: &super::profile::ReferenceProfile,
        threshold: f64,
    ) -> WindowSignals {
        let n = recs.len() as u64;
        let labelled = labels.len() as u64;
        let w = WindowData {
            records: recs,
            labels,
            feedback,
        };
        let mut out = BTreeMap::new();
        for s in RATE_SIGNALS {
            out.insert(
                s.as_str().to_owned(),
                signals::compute(s, None, &w, contract, profile, threshold, false),
            );
        }
        for s in [Signal::ScorePsi, Signal::ScoreKs] {
            out.insert(
                s.as_str().to_owned(),
                signals::compute(s, None, &w, contract, profile, threshold, false),
            );
        }
        for f in profile.features.keys() {
            out.insert(
                format!("missing_rate:{f}"),
                signals::compute(
                    Signal::MissingRate,
                    Some(f),
                    &w,
                    contract,
                    profile,
                    threshold,
                    false,
                ),
            );
            out.insert(
                format!("psi:{f}"),
                signals::compute(
                    Signal::Psi,
                    Some(f),
                    &w,
                    contract,
                    profile,
                    threshold,
                    false,
                ),
            );
        }
        if due {
            for s in OUTCOME_SIGNALS {
                out.insert(
                    s.as_str().to_owned(),
                    signals::compute(s, None, &w, contract, profile, threshold, false),
                );
            }
        }
        WindowSignals {
            start,
            end,
            predictions: n,
            outcomes_due: due,
            labelled,
            signals: out,
        }
    }
}

impl MonitorReport {
    /// The self-contained HTML report with a trend plot per signal.
    pub fn html(&self, generated_at: Timestamp) -> String {
        vigil_report::render_monitor(&self.context(generated_at))
    }

    /// What the report draws: a trend series per signal, the latest drift and the notes.
    pub fn context(&self, generated_at: Timestamp) -> vigil_report::MonitorContext {
        let mut keys: Vec<String> = vec![
            "volume".into(),
            "fallback_rate".into(),
            "alert_share".into(),
            "alert_burden".into(),
            "score_psi".into(),
            "latency_p95".into(),
        ];
        for f in self.reference.features.keys() {
            keys.push(format!("missing_rate:{f}"));
            keys.push(format!("psi:{f}"));
        }
        for s in OUTCOME_SIGNALS {
            keys.push(s.as_str().to_owned());
        }
        let series = keys
            .iter()
            .map(|k| vigil_report::TrendSeries {
                name: k.clone(),
                values: self
                    .windows
                    .iter()
                    .map(|w| w.signals.get(k).and_then(|s| s.value))
                    .collect(),
                limit: None,
            })
            .collect();
        let mut notes = self.notes.clone();
        if let Some(c) = &self.controls.suppressed {
            notes.push(format!("Suppressed since {}: {}", c.set_at, c.reason));
        }
        if let Some(c) = &self.controls.disabled {
            notes.push(format!("Disabled since {}: {}", c.set_at, c.reason));
        }
        if let Some(r) = &self.revalidation
            && let Some(due) = r.review_by
        {
            notes.push(format!("Review by {due} ({:?}).", r.status));
        }
        vigil_report::MonitorContext {
            title: format!("Monitoring of {}", self.model),
            model: self.model.clone(),
            release: self.release.to_string(),
            generated_at: generated_at.to_string(),
            windows: self.windows.iter().map(|w| w.start.to_string()).collect(),
            series,
            verdicts: Vec::new(),
            drift: Some(self.drift.clone()),
            notes,
        }
    }
}
