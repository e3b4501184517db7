//! Serving predictions: the loaded runtime of production and shadow releases (reloaded when
//! stages change, here or in another process), scoring by contract with every failure turned
//! into a recorded fallback, and the group-commit [`Recorder`] that makes each prediction's
//! record durable before its answer leaves.
//!
//! The HTTP layer parses and answers; everything a prediction means happens here, so that
//! every channel (`predict`, `oip`, `cds`, …) scores and records the same way.

pub mod metrics;
mod recorder;
pub mod request;
mod runtime;

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;
use vigil_domain::prediction::{FeatureRecord, PredictionMode, PredictionRecord};
use vigil_domain::release::decision;
use vigil_domain::{Digest, ReleaseId, Timestamp};
use vigil_inference::{Contribution, FeatureOutcome, FeatureStatus, Inputs};
use vigil_store::UserRecord;

pub use metrics::{Metrics, Observation};
pub use recorder::{Applied, BatchWork, Checked, Recorder, Ticket, commit_work};
pub use request::{FieldError, PredictRequest, parse_body, parse_input, parse_row};
pub use runtime::{Deployment, Deployments, Loaded, load_release};

use crate::{Error, ErrorKind, Result, Vigil};

/// How the server serves.
#[derive(Clone, Debug)]
pub struct ServingOptions {
    /// How often the store is asked whether stages (or users) changed in another process.
    pub poll_interval: Duration,
    /// A scoring that takes longer is answered with the `timeout` fallback.
    pub score_timeout: Duration,
    /// How long a request waits for its record to become durable before it is refused.
    pub record_timeout: Duration,
    /// The most records committed in one transaction.
    pub max_batch: usize,
}

impl Default for ServingOptions {
    fn default() -> ServingOptions {
        ServingOptions {
            poll_interval: Duration::from_secs(1),
            score_timeout: Duration::from_millis(500),
            record_timeout: Duration::from_secs(10),
            max_batch: 1000,
        }
    }
}

/// Why no score was given, as answered and recorded.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct FallbackView {
    /// `missing_required`, `missing_optional`, `prohibited_input`, `model_error` or `timeout`.
    pub reason: String,
    /// The features responsible (empty for model errors and timeouts).
    pub features: Vec<String>,
    /// A human-readable explanation without patient values.
    pub detail: String,
}

/// One answered prediction.
#[derive(Clone, Debug, Serialize)]
pub struct Prediction {
    pub request_id: String,
    pub model: String,
    pub release: ReleaseId,
    pub score: Option<f64>,
    pub decision: Option<String>,
    pub thresholds: Vec<f64>,
    pub fallback: Option<FallbackView>,
    pub explanation: Vec<Contribution>,
    /// The model failed, panicked or timed out (answered 503 over HTTP).
    #[serde(skip)]
    pub model_failed: bool,
    /// The deployment is disabled by a monitor control: no score, the fallback
    /// `deployment_disabled` (answered 503 over HTTP).
    #[serde(skip)]
    pub disabled: bool,
}

/// The outcome of scoring one row with one release.
struct Outcome {
    score: Option<f64>,
    features: Vec<FeatureOutcome>,
    unknown_inputs: Vec<String>,
    explanation: Vec<Contribution>,
    fallback: Option<FallbackView>,
    model_failed: bool,
    latency_us: i64,
}

/// The fallback of a deployment under the monitor's `disable` control: nothing is scored.
fn disabled_outcome(control: Option<&vigil_store::ControlRecord>) -> Outcome {
    Outcome {
        score: None,
        features: Vec::new(),
        unknown_inputs: Vec::new(),
        explanation: Vec::new(),
        fallback: Some(FallbackView {
            reason: "deployment_disabled".into(),
            features: Vec::new(),
            detail: match control {
                Some(c) => format!(
                    "the deployment is disabled (control {} set by {}); no score is given",
                    c.id, c.set_by
                ),
                None => "the deployment is disabled; no score is given".into(),
            },
        }),
        model_failed: false,
        latency_us: 0,
    }
}

fn score_row(loaded: &Loaded, inputs: &Inputs, now: Timestamp, timeout: Duration) -> Outcome {
    let t0 = Instant::now();
    let r = catch_unwind(AssertUnwindSafe(|| loaded.scorer.score(inputs, now)));
    let elapsed = t0.elapsed();
    let latency_us = i64::try_from(elapsed.as_micros()).unwrap_or(i64::MAX);
    match r {
        Ok(Ok(s)) if elapsed > timeout => Outcome {
            score: None,
            features: s.assembled.features,
            unknown_inputs: s.assembled.unknown_inputs,
            explanation: Vec::new(),
            fallback: Some(FallbackView {
                reason: "timeout".into(),
                features: Vec::new(),
                detail: format!(
                    "scoring took {} ms, longer than the limit of {} ms",
                    elapsed.as_millis(),
                    timeout.as_millis()
                ),
            }),
            model_failed: true,
            latency_us,
        },
        Ok(Ok(s)) => Outcome {
            score: Some(s.score),
            features: s.assembled.features,
            unknown_inputs: s.assembled.unknown_inputs,
            explanation: s.explanation,
            fallback: None,
            model_failed: false,
            latency_us,
        },
        Ok(Err(f)) => {
            let model_failed = f.reason == vigil_inference::FallbackReason::ModelError;
            Outcome {
                score: None,
                fallback: Some(FallbackView {
                    reason: f.reason.as_str().into(),
                    features: f.features,
                    detail: f.detail,
                }),
                features: f.outcomes,
                unknown_inputs: f.unknown_inputs,
                explanation: Vec::new(),
                model_failed,
                latency_us,
            }
        }
        Err(_) => Outcome {
            score: None,
            features: Vec::new(),
            unknown_inputs: Vec::new(),
            explanation: Vec::new(),
            fallback: Some(FallbackView {
                reason: "model_error".into(),
                features: Vec::new(),
                detail: "the executor panicked while scoring".into(),
            }),
            model_failed: true,
            latency_us,
        },
    }
}

fn status_text(s: FeatureStatus) -> &'static str {
    match s {
        FeatureStatus::Present => "ok",
        FeatureStatus::Converted => "converted",
        FeatureStatus::Filled => "filled",
        FeatureStatus::Missing => "missing",
        FeatureStatus::Invalid => "invalid",
        FeatureStatus::Stale => "stale",
    }
}

fn feature_record(f: &FeatureOutcome) -> FeatureRecord {
    let reason = match (f.cause, &f.reason) {
        (Some(c), Some(r)) => Some(format!("{}: {r}", status_text(c))),
        (Some(c), None) => Some(status_text(c).to_string()),
        (None, r) => r.clone(),
    };
    FeatureRecord {
        name: f.name.clone(),
        value: f.value,
        status: status_text(f.status).to_string(),
        reason,
        source: f.source.clone(),
        observed_at: f.observed_at,
    }
}

/// Per-request identity: the channel and the keys of the people concerned.
struct Keys {
    patient: Option<String>,
    encounter: Option<String>,
}

/// The serving side of one Vigil: runtime, recorder, metrics.
pub struct Serving {
    me: Weak<Serving>,
    vigil: Vigil,
    opts: ServingOptions,
    deployments: RwLock<Arc<Deployments>>,
    reload_lock: tokio::sync::Mutex<()>,
    recorder: Recorder,
    metrics: Arc<Metrics>,
    id_prefix: String,
    next_id: AtomicU64,
    tokens: Mutex<HashMap<Digest, UserRecord>>,
    loaded_once: AtomicBool,
    /// Moves whenever something audited changed (seen by the watcher) or the runtime was
    /// swapped: what is cached from the store is stale once it moved.
    changes: AtomicU64,
}

/// A random per-process prefix: request ids stay unique across restarts, which the
/// prediction records' `UNIQUE(request_id, mode)` relies on.
fn process_prefix() -> String {
    let mut b = [0u8; 8];
    if getrandom::fill(&mut b).is_err() {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        b = (t ^ u64::from(std::process::id()).rotate_left(32)).to_le_bytes();
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// How often the server copies the SQLite log into the database file off the commit path.
/// Often enough that each copy is small: a copy and its sync of the database file run beside
/// the commits of prediction records, and a larger one holds up the syncs of those it meets.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(50);

/// Checkpoints the store's log in the background for as long as the server runs (see
/// [`vigil_store::Store::checkpoint`]), then has the prediction writer restart it between
/// two batches ([`Recorder::restart_log`]); a failure is logged and tried again later.
async fn checkpoint(s: Weak<Serving>) {
    if s.upgrade()
        .is_none_or(|s| s.vigil.store().kind() != vigil_store::BackendKind::Sqlite)
    {
        return;
    }
    let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(s) = s.upgrade() else { return };
        match s.vigil.store().checkpoint().await {
            // The writer restarts the log after its next batch; a log written without pause
            // is never restarted by passive checkpoints alone.
            Ok(_) => s.recorder.restart_log(),
            Err(e) => eprintln!("checkpoint of the store's log failed (tried again later): {e}"),
        }
    }
}

impl Serving {
    /// Starts the recorder and the stage watcher on the current tokio runtime. The runtime
    /// is empty until the first [`Serving::reload`] (which the watcher runs at once).
    pub fn start(vigil: Vigil, opts: ServingOptions) -> Arc<Serving> {
        let metrics = Arc::new(Metrics::default());
        let recorder = Recorder::start(vigil.clone(), metrics.clone(), opts.max_batch);
        let s = Arc::new_cyclic(|me| Serving {
            me: me.clone(),
            vigil,
            opts,
            deployments: RwLock::new(Arc::new(Deployments::default())),
            reload_lock: tokio::sync::Mutex::new(()),
            recorder,
            metrics,
            id_prefix: process_prefix(),
            next_id: AtomicU64::new(1),
            tokens: Mutex::new(HashMap::new()),
            loaded_once: AtomicBool::new(false),
            changes: AtomicU64::new(0),
        });
        tokio::spawn(watch(Arc::downgrade(&s)));
        tokio::spawn(checkpoint(Arc::downgrade(&s)));
        s
    }

    pub fn vigil(&self) -> &Vigil {
        &self.vigil
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// How long a request waits for its record to become durable.
    pub fn record_timeout(&self) -> Duration {
        self.opts.record_timeout
    }

    /// The group-commit writer of prediction records.
    pub fn recorder(&self) -> &Recorder {
        &self.recorder
    }

    /// A counter that moves whenever what the store holds may have changed (anything
    /// audited, here or in another process) and whenever the runtime was reloaded.
    pub fn changes(&self) -> u64 {
        self.changes.load(Ordering::Acquire)
    }

    /// A new request id, unique across processes and restarts.
    pub fn request_id(&self) -> String {
        format!(
            "{}-{:06}",
            self.id_prefix,
            self.next_id.fetch_add(1, Ordering::Relaxed)
        )
    }

    /// The runtime now serving.
    pub fn deployments(&self) -> Arc<Deployments> {
        self.deployments
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Whether the runtime was loaded at least once and every deployed release loaded.
    pub fn ready(&self) -> bool {
        self.loaded_once.load(Ordering::Acquire) && self.deployments().errors.is_empty()
    }

    /// Reloads the runtime from the stages on record and swaps it in. A failure keeps the
    /// previous runtime serving.
    pub async fn reload(&self) -> Result<()> {
        let _g = self.reload_lock.lock().await;
        let previous = self.deployments();
        match runtime::build(&self.vigil, &previous).await {
            Ok(next) => {
                for (model, release, e) in &next.errors {
                    eprintln!(
                        "serving: model {model} release {} not loaded: {e}",
                        release.short()
                    );
                }
                self.metrics.reloaded(true, next.listing());
                *self.deployments.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(next);
                self.loaded_once.store(true, Ordering::Release);
                self.changes.fetch_add(1, Ordering::AcqRel);
                Ok(())
            }
            Err(e) => {
                self.metrics.reloaded(false, Vec::new());
                eprintln!("serving: reload failed ({}): {}", e.code, e.message);
                Err(e)
            }
        }
    }

    /// Authenticates a bearer token, remembering the answer until users (or anything else
    /// audited) change; a revocation in another process takes effect within one poll.
    pub async fn authenticate(&self, token: &str) -> Result<UserRecord> {
        let h = crate::governance::token_hash(token);
        if let Some(u) = self
            .tokens
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&h)
        {
            return Ok(u.clone());
        }
        let u = self.vigil.authenticate(token).await?;
        let mut cache = self.tokens.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() > 10_000 {
            cache.clear();
        }
        cache.insert(h, u.clone());
        Ok(u)
    }

    fn forget_tokens(&self) {
        self.tokens
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    /// The deployment of `model`, or why there is none.
    pub async fn deployment(&self, model: &str) -> Result<Arc<Deployment>> {
        if let Some(d) = self.deployments().get(model) {
            return Ok(d.clone());
        }
        match self.vigil.find_model(model).await {
            Ok(Some(_)) => Err(Error::new(
                ErrorKind::Unavailable,
                "model_not_deployed",
                format!("model `{model}` has no release in production or shadow"),
            )),
            Ok(None) | Err(_) => Err(Error::not_found(
                "model_not_found",
                format!("there is no model `{model}`"),
            )),
        }
    }

    fn keys(&self, r: &PredictRequest) -> Keys {
        Keys {
            patient: r
                .patient
                .as_deref()
                .map(|p| self.vigil.pseudonymise("patient", p)),
            encounter: r
                .encounter
                .as_deref()
                .map(|e| self.vigil.pseudonymise("encounter", e)),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn record(
        &self,
        loaded: &Loaded,
        mode: PredictionMode,
        channel: &'static str,
        request_id: String,
        now: Timestamp,
        keys: &Keys,
        o: &Outcome,
        context: &Value,
    ) -> PredictionRecord {
        let mut context = context.clone();
        if !o.unknown_inputs.is_empty()
            && let Value::Object(m) = &mut context
        {
            m.insert("unknown_inputs".into(), serde_json::json!(o.unknown_inputs));
        }
        PredictionRecord {
            seq: None,
            request_id,
            recorded_at: now,
            model: loaded.release.manifest.model.to_string(),
            release: loaded.release.id,
            mode,
            channel: channel.to_string(),
            patient_key: keys.patient.clone(),
            encounter_key: keys.encounter.clone(),
            features: o.features.iter().map(feature_record).collect(),
            score: o.score,
            decision: o.score.and_then(|s| decision(loaded.thresholds(), s)),
            fallback_reason: o.fallback.as_ref().map(|f| f.reason.clone()),
            latency_us: o.latency_us,
            context,
        }
    }

    fn observe(&self, loaded: &Loaded, channel: &'static str, mode: &'static str, o: &Outcome) {
        self.metrics.observe(&Observation {
            model: loaded.release.manifest.model.as_str(),
            release: &loaded.short_id,
            channel,
            mode,
            fallback: o.fallback.as_ref().map(|f| f.reason.as_str()),
            model_error: o.model_failed,
            secs: o.latency_us as f64 / 1e6,
        });
    }

    /// Scores `rows` with the model's production release and answers once every row's
    /// record is durable; the shadow release (if any) scores the same rows off the
    /// response path. Row `i` of a batch gets the id `{request_id}-{i}`, a single row
    /// `request_id` itself. `context` is stored with each record (an object).
    ///
    /// A model without a production release but with a shadow one still feeds its shadow
    /// and is answered `no_production_release`. A record that cannot be written refuses
    /// the whole request (`prediction_not_recorded`): no answer is ever unrecorded.
    pub async fn predict(
        &self,
        model: &str,
        rows: Vec<PredictRequest>,
        channel: &'static str,
        request_id: &str,
        context: Value,
    ) -> Result<Vec<Prediction>> {
        let dep = self.deployment(model).await?;
        let now = self.vigil.clock().now();
        let single = rows.len() == 1;
        let id_of = |i: usize| {
            if single {
                request_id.to_string()
            } else {
                format!("{request_id}-{i}")
            }
        };
        let keys: Vec<Keys> = rows.iter().map(|r| self.keys(r)).collect();
        let rows = Arc::new(rows);
        let keys = Arc::new(keys);

        let mut answers = Vec::with_capacity(rows.len());
        let mut tickets = Vec::with_capacity(rows.len());
        let disabled = dep.controls.disabled.as_ref();
        if let Some(active) = &dep.active {
            for (i, row) in rows.iter().enumerate() {
                let o = if disabled.is_some() {
                    disabled_outcome(disabled)
                } else {
                    score_row(active, &row.inputs, now, self.opts.score_timeout)
                };
                self.observe(active, channel, "active", &o);
                let rec = self.record(
                    active,
                    PredictionMode::Active,
                    channel,
                    id_of(i),
                    now,
                    &keys[i],
                    &o,
                    &context,
                );
                tickets.push(self.recorder.submit(rec).await);
                answers.push(Prediction {
                    request_id: id_of(i),
                    model: model.to_string(),
                    release: *active.id(),
                    decision: o.score.and_then(|s| decision(active.thresholds(), s)),
                    score: o.score,
                    thresholds: active.thresholds().to_vec(),
                    fallback: o.fallback,
                    explanation: o.explanation,
                    model_failed: o.model_failed,
                    disabled: disabled.is_some(),
                });
            }
        }
        if let Some(shadow) = dep.shadow.clone() {
            let this = self.shadow_handle();
            let (rows, keys, context) = (rows.clone(), keys.clone(), context.clone());
            let ids: Vec<String> = (0..rows.len()).map(id_of).collect();
            let timeout = self.opts.score_timeout;
            tokio::spawn(async move {
                let Some(this) = this.upgrade() else { return };
                for (i, row) in rows.iter().enumerate() {
                    let o = score_row(&shadow, &row.inputs, now, timeout);
                    this.observe(&shadow, channel, "shadow", &o);
                    let rec = this.record(
                        &shadow,
                        PredictionMode::Shadow,
                        channel,
                        ids[i].clone(),
                        now,
                        &keys[i],
                        &o,
                        &context,
                    );
                    this.recorder.submit_detached(rec).await;
                }
            });
        }
        if dep.active.is_none() {
            return Err(Error::new(
                ErrorKind::Unavailable,
                "no_production_release",
                format!("model `{model}` has no release in production (only in shadow)"),
            ));
        }
        let deadline = tokio::time::Instant::now() + self.opts.record_timeout;
        for t in tickets {
            match tokio::time::timeout_at(deadline, t.durable()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(e),
                Err(_) => {
                    return Err(Error::new(
                        ErrorKind::Unavailable,
                        "prediction_not_recorded",
                        "the prediction record was not durable in time, so it is not answered; retry later",
                    ));
                }
            }
        }
        Ok(answers)
    }

    fn shadow_handle(&self) -> Weak<Serving> {
        self.me.clone()
    }
}

/// Polls the store's newest audit sequence number: every promotion, rollback, retirement
/// and user change is audited, so a new number means the runtime (or a token) may be stale.
async fn watch(me: Weak<Serving>) {
    let mut seen: Option<Option<i64>> = None;
    loop {
        let Some(s) = me.upgrade() else { return };
        match s.vigil.store().audit_head().await {
            Ok(head) => {
                let head = head.map(|(seq, _)| seq);
                if seen != Some(head) {
                    s.forget_tokens();
                    s.changes.fetch_add(1, Ordering::AcqRel);
                    if s.reload().await.is_ok() {
                        seen = Some(head);
                    }
                }
            }
            Err(e) => eprintln!("serving: cannot read the audit head: {e}"),
        }
        let every = s.opts.poll_interval;
        drop(s);
        tokio::time::sleep(every).await;
    }
}
