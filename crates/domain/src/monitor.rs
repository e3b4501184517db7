//! Monitor policy (`monitor.toml`): rules that watch a deployment's signals and the action
//! each one takes, the rule state machine (clear → firing → cooldown → clearing), incidents
//! and the revalidation schedule — all pure, so every rule can be tested without a store.
//!
//! ```toml
//! [[rule]]
//! name = "lactate-missing"
//! signal = "missing_rate"
//! feature = "lactate"
//! window = "1d"
//! threshold = { absolute = 0.30 }
//! direction = "above"
//! min_samples = 50
//! action = { kind = "suppress" }
//! ```

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::ids::ModelName;
use crate::time::{Duration, Timestamp};

/// The scenarios `vigil simulate` rehearses, by the name rehearsals are recorded under.
pub const SCENARIOS: [&str; 5] = [
    "stable",
    "lab_dropout",
    "case_mix",
    "fahrenheit",
    "prevalence",
];

/// What a rule watches. Drift signals name a feature; `missing_rate` may name one (without,
/// the share of predictions with any input not usable as given).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Signal {
    Psi,
    Ks,
    Js,
    Wasserstein,
    MissingRate,
    FallbackRate,
    ErrorRate,
    ScorePsi,
    ScoreKs,
    ScoreWasserstein,
    /// Alerts (score at or above the release's first threshold) per 100 predictions.
    AlertShare,
    /// Alerts per 100 patients per day (patient-days with a prediction).
    AlertBurden,
    LatencyP50,
    LatencyP95,
    LatencyP99,
    OverrideRate,
    Auroc,
    CalibrationIntercept,
    CalibrationSlope,
    Ece,
    OeRatio,
    /// Predictions in the window (a silent feed is a failure too).
    Volume,
}

impl Signal {
    pub const ALL: [Signal; 22] = [
        Signal::Psi,
        Signal::Ks,
        Signal::Js,
        Signal::Wasserstein,
        Signal::MissingRate,
        Signal::FallbackRate,
        Signal::ErrorRate,
        Signal::ScorePsi,
        Signal::ScoreKs,
        Signal::ScoreWasserstein,
        Signal::AlertShare,
        Signal::AlertBurden,
        Signal::LatencyP50,
        Signal::LatencyP95,
        Signal::LatencyP99,
        Signal::OverrideRate,
        Signal::Auroc,
        Signal::CalibrationIntercept,
        Signal::CalibrationSlope,
        Signal::Ece,
        Signal::OeRatio,
        Signal::Volume,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Signal::Psi => "psi",
            Signal::Ks => "ks",
            Signal::Js => "js",
            Signal::Wasserstein => "wasserstein",
            Signal::MissingRate => "missing_rate",
            Signal::FallbackRate => "fallback_rate",
            Signal::ErrorRate => "error_rate",
            Signal::ScorePsi => "score_psi",
            Signal::ScoreKs => "score_ks",
            Signal::ScoreWasserstein => "score_wasserstein",
            Signal::AlertShare => "alert_share",
            Signal::AlertBurden => "alert_burden",
            Signal::LatencyP50 => "latency_p50",
            Signal::LatencyP95 => "latency_p95",
            Signal::LatencyP99 => "latency_p99",
            Signal::OverrideRate => "override_rate",
            Signal::Auroc => "auroc",
            Signal::CalibrationIntercept => "calibration_intercept",
            Signal::CalibrationSlope => "calibration_slope",
            Signal::Ece => "ece",
            Signal::OeRatio => "oe_ratio",
            Signal::Volume => "volume",
        }
    }

    /// Drift of one input feature against the reference (needs `feature`).
    pub fn is_feature_drift(self) -> bool {
        matches!(
            self,
            Signal::Psi | Signal::Ks | Signal::Js | Signal::Wasserstein
        )
    }

    /// Needs outcomes: judged only once the window's labels are due.
    pub fn needs_outcomes(self) -> bool {
        matches!(
            self,
            Signal::Auroc
                | Signal::CalibrationIntercept
                | Signal::CalibrationSlope
                | Signal::Ece
                | Signal::OeRatio
        )
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which way is worse.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Above,
    Below,
    Either,
}

/// When a value breaches: an absolute limit, a change relative to the reference value
/// (`relative = 0.5`: 50 % worse than the reference), or `sigma = k`: k standard deviations
/// of the reference's own variation at the window's sample size.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Threshold {
    Absolute(f64),
    Relative(f64),
    Sigma(f64),
}

/// An incident's severity, SEV1 the most severe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Severity {
    #[serde(rename = "SEV1", alias = "sev1")]
    Sev1,
    #[serde(rename = "SEV2", alias = "sev2")]
    Sev2,
    #[serde(rename = "SEV3", alias = "sev3")]
    Sev3,
    #[serde(rename = "SEV4", alias = "sev4")]
    Sev4,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Sev1 => "SEV1",
            Severity::Sev2 => "SEV2",
            Severity::Sev3 => "SEV3",
            Severity::Sev4 => "SEV4",
        }
    }

    pub fn parse(s: &str) -> Result<Severity> {
        match s.trim().to_ascii_uppercase().as_str() {
            "SEV1" | "1" => Ok(Severity::Sev1),
            "SEV2" | "2" => Ok(Severity::Sev2),
            "SEV3" | "3" => Ok(Severity::Sev3),
            "SEV4" | "4" => Ok(Severity::Sev4),
            _ => Err(Error::invalid(format!(
                "`{s}` is not a severity: expected SEV1, SEV2, SEV3 or SEV4"
            ))),
        }
    }

    /// Closing an incident of this severity needs a postmortem.
    pub fn needs_postmortem(self) -> bool {
        matches!(self, Severity::Sev1 | Severity::Sev2)
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a firing rule does.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Action {
    /// POST a JSON body to `url`, retried with exponential backoff.
    Notify {
        url: String,
        #[serde(default = "default_retries")]
        retries: u32,
    },
    /// Open an incident at `severity` and send the release to revalidation.
    OpenReview { severity: Severity },
    /// Keep scoring and recording, show no cards.
    Suppress,
    /// Put the previous production release back (the governance rollback).
    Rollback,
    /// Stop scoring the model: every request gets the fallback.
    Disable,
}

fn default_retries() -> u32 {
    3
}

impl Action {
    pub fn kind(&self) -> &'static str {
        match self {
            Action::Notify { .. } => "notify",
            Action::OpenReview { .. } => "open_review",
            Action::Suppress => "suppress",
            Action::Rollback => "rollback",
            Action::Disable => "disable",
        }
    }

    /// Repeated after the cooldown while the rule keeps firing (reminders); every other
    /// action changes the deployment and happens once per episode.
    pub fn repeats(&self) -> bool {
        matches!(self, Action::Notify { .. })
    }
}

/// One monitor rule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub name: String,
    /// The model it watches; none: every deployed model.
    #[serde(default)]
    pub model: Option<ModelName>,
    pub signal: Signal,
    #[serde(default)]
    pub feature: Option<String>,
    /// Evaluated on consecutive windows of this length (tumbling, aligned to the epoch).
    pub window: Duration,
    pub threshold: Threshold,
    #[serde(default = "default_direction")]
    pub direction: Direction,
    /// Windows with fewer predictions (or labelled predictions) are not judged.
    #[serde(default = "default_min_samples")]
    pub min_samples: u64,
    /// After an action, repeatable actions wait this long before repeating.
    #[serde(default)]
    pub cooldown: Option<Duration>,
    /// A firing rule clears after this many consecutive clean windows.
    #[serde(default = "default_clear_after")]
    pub clear_after: u32,
    /// A clean window must be better than the limit by this much (the signal's units).
    #[serde(default)]
    pub hysteresis: f64,
    /// Outcome signals: a window is judged only once this long has passed after its end.
    #[serde(default)]
    pub label_delay: Option<Duration>,
    /// Judge each value of this subgroup separately (`site`, or a context key).
    #[serde(default)]
    pub by: Option<String>,
    pub action: Action,
}

fn default_direction() -> Direction {
    Direction::Above
}
fn default_min_samples() -> u64 {
    30
}
fn default_clear_after() -> u32 {
    1
}

/// Revalidation schedule: the interval from going live to the review-by date, per risk tier,
/// and how long before it owners are told.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Revalidation {
    #[serde(default)]
    pub tiers: BTreeMap<String, Duration>,
    #[serde(default = "default_notice")]
    pub notice: Duration,
    /// Where the reminder goes (a webhook), if anywhere.
    #[serde(default)]
    pub notify: Option<String>,
    /// Severity of the incident opened once a release is past its review-by date.
    #[serde(default = "default_overdue_severity")]
    pub overdue_severity: Severity,
    /// Events that send a production release to revalidation before its date.
    #[serde(default)]
    pub triggers: Triggers,
}

/// Event triggers for revalidation, judged on each day of predictions (`window`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Triggers {
    /// A prediction for a site (the record's `site` context) that the training data's
    /// `site` column does not contain.
    #[serde(default = "yes")]
    pub new_site: bool,
    /// The share of a window's predictions with an input the EHR sent in a unit or under a
    /// code the contract's mapping cannot use — a FHIR mapping or code set that changed
    /// underneath the model. `0` turns the trigger off.
    #[serde(default = "default_unmapped_share")]
    pub unmapped_share: f64,
    #[serde(default = "default_trigger_window")]
    pub window: Duration,
    /// Fewer predictions in the window than this judge nothing.
    #[serde(default = "default_trigger_min")]
    pub min_samples: u64,
}

fn yes() -> bool {
    true
}
fn default_unmapped_share() -> f64 {
    0.05
}
fn default_trigger_window() -> Duration {
    Duration::from_days(1)
}
fn default_trigger_min() -> u64 {
    20
}

impl Default for Triggers {
    fn default() -> Self {
        Triggers {
            new_site: true,
            unmapped_share: default_unmapped_share(),
            window: default_trigger_window(),
            min_samples: default_trigger_min(),
        }
    }
}

fn default_notice() -> Duration {
    Duration::from_days(30)
}
fn default_overdue_severity() -> Severity {
    Severity::Sev3
}

impl Default for Revalidation {
    fn default() -> Self {
        Revalidation {
            tiers: BTreeMap::new(),
            notice: default_notice(),
            notify: None,
            overdue_severity: default_overdue_severity(),
            triggers: Triggers::default(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MonitorFile {
    #[serde(default)]
    description: Option<String>,
    #[serde(default, rename = "rule")]
    rules: Vec<Rule>,
    #[serde(default)]
    revalidation: Option<Revalidation>,
}

/// A parsed, validated monitor policy.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MonitorPolicy {
    pub description: Option<String>,
    pub rules: Vec<Rule>,
    pub revalidation: Revalidation,
}

/// The smallest window a rule may use, and the largest.
const MIN_WINDOW: Duration = Duration::from_secs(3600);
const MAX_WINDOW: Duration = Duration::from_days(366);

impl MonitorPolicy {
    pub fn from_toml(text: &str) -> Result<MonitorPolicy> {
        let f: MonitorFile =
            toml::from_str(text).map_err(|e| Error::invalid(format!("monitor policy: {e}")))?;
        for (i, r) in f.rules.iter().enumerate() {
            let at = |m: String| Error::invalid(format!("monitor policy: rule `{}`: {m}", r.name));
            crate::policy::GateName::parse(&r.name)
                .map_err(|e| Error::invalid(format!("monitor policy: rule {}: {e}", i + 1)))?;
            if f.rules[..i].iter().any(|o| o.name == r.name) {
                return Err(at("appears twice".into()));
            }
            check_rule(r).map_err(at)?;
        }
        let revalidation = f.revalidation.unwrap_or_default();
        for (tier, d) in &revalidation.tiers {
            let ok = matches!(tier.as_str(), "1" | "2" | "3" | "4");
            if !ok {
                return Err(Error::invalid(format!(
                    "monitor policy: revalidation: `{tier}` is not a risk tier (1 to 4)"
                )));
            }
            if d.as_micros() <= 0 {
                return Err(Error::invalid(format!(
                    "monitor policy: revalidation: tier {tier} needs a positive interval"
                )));
            }
        }
        let t = &revalidation.triggers;
        if !(t.unmapped_share.is_finite() && (0.0..=1.0).contains(&t.unmapped_share)) {
            return Err(Error::invalid(
                "monitor policy: revalidation.triggers: unmapped_share must lie in [0, 1]",
            ));
        }
        if t.window.as_micros() <= 0 {
            return Err(Error::invalid(
                "monitor policy: revalidation.triggers: window must be positive",
            ));
        }
        if let Some(u) = &revalidation.notify {
            check_url(u)
                .map_err(|m| Error::invalid(format!("monitor policy: revalidation: {m}")))?;
        }
        Ok(MonitorPolicy {
            description: f.description,
            rules: f.rules,
            revalidation,
        })
    }

    /// The rules that watch `model`.
    pub fn rules_for<'a>(&'a self, model: &'a ModelName) -> impl Iterator<Item = &'a Rule> {
        self.rules
            .iter()
            .filter(move |r| r.model.as_ref().is_none_or(|m| m == model))
    }

    /// The review-by interval of a risk tier, if the policy sets one.
    pub fn review_interval(&self, tier: u8) -> Option<Duration> {
        self.revalidation.tiers.get(&tier.to_string()).copied()
    }
}

fn check_url(u: &str) -> std::result::Result<(), String> {
    if (u.starts_with("http://") || u.starts_with("https://")) && u.len() > 8 && !u.contains(' ') {
        Ok(())
    } else {
        Err(format!("`{u}` is not an http(s) URL"))
    }
}

fn check_rule(r: &Rule) -> std::result::Result<(), String> {
    if r.signal.is_feature_drift() && r.feature.is_none() {
        return Err(format!("signal `{}` needs a `feature`", r.signal));
    }
    if r.feature.is_some() && !(r.signal.is_feature_drift() || r.signal == Signal::MissingRate) {
        return Err(format!("signal `{}` takes no `feature`", r.signal));
    }
    if r.window < MIN_WINDOW || r.window > MAX_WINDOW {
        return Err(format!("window {} is outside 1h to 366d", r.window));
    }
    if r.window.as_micros() % MIN_WINDOW.as_micros() != 0 {
        return Err(format!(
            "window {} is not a whole number of hours",
            r.window
        ));
    }
    let limit = match r.threshold {
        Threshold::Absolute(v) => v,
        Threshold::Relative(v) | Threshold::Sigma(v) => {
            if v <= 0.0 {
                return Err("a relative or sigma threshold must be positive".into());
            }
            v
        }
    };
    if !limit.is_finite() {
        return Err("the threshold must be a finite number".into());
    }
    if !(r.hysteresis.is_finite() && r.hysteresis >= 0.0) {
        return Err("hysteresis must be a non-negative number".into());
    }
    if r.clear_after == 0 {
        return Err("clear_after must be at least 1".into());
    }
    if r.signal.needs_outcomes() && r.label_delay.is_none() {
        return Err(format!(
            "signal `{}` needs outcomes: say how long they take to arrive with `label_delay`",
            r.signal
        ));
    }
    if !r.signal.needs_outcomes() && r.label_delay.is_some() {
        return Err(format!(
            "signal `{}` does not use outcomes: drop `label_delay`",
            r.signal
        ));
    }
    if let Action::Notify { url, retries } = &r.action {
        check_url(url)?;
        if *retries > 10 {
            return Err("notify retries must be 10 or fewer".into());
        }
    }
    if let Some(c) = r.cooldown
        && c.as_micros() < 0
    {
        return Err("cooldown must not be negative".into());
    }
    Ok(())
}

// ---- windows ----------------------------------------------------------------------------

/// The last complete window of `rule` at `now`: `[start, end)`, aligned to the epoch, and —
/// for outcome signals — ending at least `label_delay` before `now`.
pub fn due_window(rule: &Rule, now: Timestamp) -> (Timestamp, Timestamp) {
    let w = rule.window.as_micros();
    let t = now.minus(rule.label_delay.unwrap_or(Duration::from_micros(0)));
    let end = t.as_micros().div_euclid(w) * w;
    (Timestamp::from_micros(end - w), Timestamp::from_micros(end))
}

// ---- judging one window -----------------------------------------------------------------

/// What the reference says about a signal: its value and the standard deviation expected
/// from the reference's own variation at the window's sample size.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    pub value: f64,
    pub sd: Option<f64>,
}

/// A signal's value in one window.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    pub value: f64,
    pub n: u64,
}

/// The verdict on one window.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Judgement {
    /// Worse than the limit.
    Breach { limit: f64 },
    /// Better than the limit by at least the hysteresis.
    Clean { limit: f64 },
    /// Not a breach, but not clean enough to clear a firing rule.
    Margin { limit: f64 },
    /// Fewer samples than the rule needs, or no value: not judged.
    Insufficient { reason: String },
}

/// The limits `(low, high)` a value must stay within (`None`: unbounded that side).
pub fn limits(
    rule: &Rule,
    baseline: Option<Baseline>,
) -> std::result::Result<(Option<f64>, Option<f64>), String> {
    let (lo, hi) = match rule.threshold {
        Threshold::Absolute(v) => match rule.direction {
            Direction::Above => (None, Some(v)),
            Direction::Below => (Some(v), None),
            Direction::Either => {
                return Err("an absolute threshold needs direction above or below".into());
            }
        },
        Threshold::Relative(r) => {
            let b = baseline.ok_or("no reference value to compare with")?;
            let d = b.value.abs() * r;
            (Some(b.value - d), Some(b.value + d))
        }
        Threshold::Sigma(k) => {
            let b = baseline.ok_or("no reference value to compare with")?;
            let sd =
                b.sd.ok_or("the reference gives no variation for this signal")?;
            (Some(b.value - k * sd), Some(b.value + k * sd))
        }
    };
    Ok(match rule.direction {
        Direction::Above => (None, hi),
        Direction::Below => (lo, None),
        Direction::Either => (lo, hi),
    })
}

/// Judges one window's observation against the rule.
pub fn judge(rule: &Rule, obs: Option<Observation>, baseline: Option<Baseline>) -> Judgement {
    let Some(o) = obs else {
        return Judgement::Insufficient {
            reason: "no value in this window".into(),
        };
    };
    if o.n < rule.min_samples {
        return Judgement::Insufficient {
            reason: format!("{} samples, the rule needs {}", o.n, rule.min_samples),
        };
    }
    if !o.value.is_finite() {
        return Judgement::Insufficient {
            reason: "the value is not estimable".into(),
        };
    }
    let (lo, hi) = match limits(rule, baseline) {
        Ok(l) => l,
        Err(reason) => return Judgement::Insufficient { reason },
    };
    let h = rule.hysteresis;
    if let Some(hi) = hi
        && o.value > hi
    {
        return Judgement::Breach { limit: hi };
    }
    if let Some(lo) = lo
        && o.value < lo
    {
        return Judgement::Breach { limit: lo };
    }
    let limit = hi.or(lo).unwrap_or(f64::NAN);
    let clean = hi.is_none_or(|hi| o.value <= hi - h) && lo.is_none_or(|lo| o.value >= lo + h);
    if clean {
        Judgement::Clean { limit }
    } else {
        Judgement::Margin { limit }
    }
}

// ---- the rule state machine -------------------------------------------------------------

/// Where a rule stands for one deployment (and subgroup).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleState {
    pub firing: bool,
    /// When the current episode began (the end of its first breaching window).
    #[serde(default)]
    pub since: Option<Timestamp>,
    /// When its action last ran.
    #[serde(default)]
    pub last_action: Option<Timestamp>,
    /// Consecutive clean windows while firing.
    #[serde(default)]
    pub clean_streak: u32,
    /// The end of the last window judged: a window is judged once.
    #[serde(default)]
    pub last_window_end: Option<Timestamp>,
}

/// What to do after judging a window.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// A new episode: run the action.
    Fire,
    /// Still firing past the cooldown, and the action repeats: run it again.
    Repeat,
    /// Still firing (or within the cooldown, or not clean enough yet): nothing to do.
    Hold,
    /// The episode ended.
    Clear,
    /// Nothing to do.
    Idle,
    /// This window was already judged.
    AlreadyJudged,
}

/// Advances the state by one judged window ending at `window_end`.
pub fn step(
    rule: &Rule,
    state: &RuleState,
    judgement: &Judgement,
    window_end: Timestamp,
) -> (RuleState, Step) {
    if state.last_window_end.is_some_and(|t| t >= window_end) {
        return (state.clone(), Step::AlreadyJudged);
    }
    let mut s = state.clone();
    let judged = !matches!(judgement, Judgement::Insufficient { .. });
    if judged {
        s.last_window_end = Some(window_end);
    }
    let out = match (state.firing, judgement) {
        (_, Judgement::Insufficient { .. }) => {
            if state.firing {
                Step::Hold
            } else {
                Step::Idle
            }
        }
        (false, Judgement::Breach { .. }) => {
            s.firing = true;
            s.since = Some(window_end);
            s.last_action = Some(window_end);
            s.clean_streak = 0;
            Step::Fire
        }
        (false, _) => Step::Idle,
        (true, Judgement::Breach { .. }) => {
            s.clean_streak = 0;
            let cooled = rule
                .cooldown
                .is_some_and(|c| state.last_action.is_none_or(|t| window_end >= t.plus(c)));
            if rule.action.repeats() && cooled {
                s.last_action = Some(window_end);
                Step::Repeat
            } else {
                Step::Hold
            }
        }
        (true, Judgement::Margin { .. }) => {
            s.clean_streak = 0;
            Step::Hold
        }
        (true, Judgement::Clean { .. }) => {
            s.clean_streak += 1;
            if s.clean_streak >= rule.clear_after {
                s.firing = false;
                s.since = None;
                s.clean_streak = 0;
                Step::Clear
            } else {
                Step::Hold
            }
        }
    };
    (s, out)
}

/// The key that makes an action happen once across replicas: the same rule, deployment,
/// subgroup and window always yield the same key.
pub fn idempotency_key(
    rule: &str,
    model: &ModelName,
    release: &str,
    group: &str,
    window_end: Timestamp,
) -> String {
    format!(
        "{rule}|{model}|{release}|{group}|{}",
        window_end.as_micros()
    )
}

// ---- incidents --------------------------------------------------------------------------

/// Where an incident stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentStatus {
    Open,
    Investigating,
    Mitigated,
    Closed,
}

impl IncidentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentStatus::Open => "open",
            IncidentStatus::Investigating => "investigating",
            IncidentStatus::Mitigated => "mitigated",
            IncidentStatus::Closed => "closed",
        }
    }

    pub fn parse(s: &str) -> Result<IncidentStatus> {
        match s {
            "open" => Ok(IncidentStatus::Open),
            "investigating" => Ok(IncidentStatus::Investigating),
            "mitigated" => Ok(IncidentStatus::Mitigated),
            "closed" => Ok(IncidentStatus::Closed),
            _ => Err(Error::invalid(format!(
                "`{s}` is not an incident status: open, investigating, mitigated or closed"
            ))),
        }
    }
}

impl fmt::Display for IncidentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Checks a status change: a closed incident stays closed (open a new one), and closing a
/// SEV1 or SEV2 needs a postmortem.
pub fn check_status_change(
    severity: Severity,
    from: IncidentStatus,
    to: IncidentStatus,
    postmortem: Option<&str>,
) -> Result<()> {
    if from == IncidentStatus::Closed {
        return Err(Error::invalid(
            "the incident is closed; open a new one that refers to it",
        ));
    }
    if to == IncidentStatus::Closed
        && severity.needs_postmortem()
        && postmortem.is_none_or(|p| p.trim().len() < 20)
    {
        return Err(Error::invalid(format!(
            "closing a {severity} incident needs a postmortem (at least 20 characters): what happened, why, and what changes"
        )));
    }
    Ok(())
}

// ---- revalidation -----------------------------------------------------------------------

/// Where a production release stands against its review-by date.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewStatus {
    Current,
    DueSoon,
    Overdue,
}

pub fn review_status(now: Timestamp, due: Timestamp, notice: Duration) -> ReviewStatus {
    if now >= due {
        ReviewStatus::Overdue
    } else if now >= due.minus(notice) {
        ReviewStatus::DueSoon
    } else {
        ReviewStatus::Current
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    const POLICY: &str = r#"
description = "ward deterioration"
[[rule]]
name = "lactate-missing"
signal = "missing_rate"
feature = "lactate"
window = "1d"
threshold = { absolute = 0.3 }
min_samples = 50
action = { kind = "suppress" }

[[rule]]
name = "calibration"
signal = "oe_ratio"
window = "7d"
threshold = { relative = 0.25 }
direction = "either"
label_delay = "2d"
action = { kind = "open_review", severity = "SEV2" }

[[rule]]
name = "hr-drift"
signal = "psi"
feature = "heart_rate"
window = "1d"
threshold = { sigma = 3 }
cooldown = "2d"
action = { kind = "notify", url = "http://127.0.0.1:9/hook" }

[revalidation]
tiers = { "3" = "365d", "4" = "180d" }
notice = "30d"
"#;

    fn rule(threshold: Threshold, direction: Direction, action: Action) -> Rule {
        Rule {
            name: "r".into(),
            model: None,
            signal: Signal::MissingRate,
            feature: None,
            window: Duration::from_days(1),
            threshold,
            direction,
            min_samples: 10,
            cooldown: Some(Duration::from_days(2)),
            clear_after: 2,
            hysteresis: 0.05,
            label_delay: None,
            by: None,
            action,
        }
    }

    #[test]
    fn parses_and_validates() {
        let p = MonitorPolicy::from_toml(POLICY).unwrap();
        assert_eq!(p.rules.len(), 3);
        assert_eq!(
            p.rules[2].action,
            Action::Notify {
                url: "http://127.0.0.1:9/hook".into(),
                retries: 3
            }
        );
        assert_eq!(p.review_interval(3), Some(Duration::from_days(365)));
        assert_eq!(p.review_interval(1), None);
        let bad = POLICY.replace("label_delay = \"2d\"\n", "");
        let e = MonitorPolicy::from_toml(&bad).unwrap_err().to_string();
        assert!(
            e.contains("calibration") && e.contains("label_delay"),
            "{e}"
        );
        let bad = POLICY.replace("feature = \"heart_rate\"\n", "");
        assert!(
            MonitorPolicy::from_toml(&bad)
                .unwrap_err()
                .to_string()
                .contains("needs a `feature`")
        );
        let bad = POLICY.replace("window = \"1d\"", "window = \"90m\"");
        assert!(MonitorPolicy::from_toml(&bad).is_err());
        let bad = POLICY.replace("\"suppress\"", "\"explode\"");
        assert!(MonitorPolicy::from_toml(&bad).is_err());
    }

    #[test]
    fn windows_are_aligned_and_respect_label_delay() {
        let p = MonitorPolicy::from_toml(POLICY).unwrap();
        let now = Timestamp::parse("2026-03-10T15:00:00Z").unwrap();
        let (s, e) = due_window(&p.rules[0], now);
        assert_eq!(s.to_string(), "2026-03-09T00:00:00.000000Z");
        assert_eq!(e.to_string(), "2026-03-10T00:00:00.000000Z");
        // 7-day windows aligned to the epoch (a Thursday), ending at least 2 days ago.
        let (s, e) = due_window(&p.rules[1], now);
        assert_eq!(e.since(s), Duration::from_days(7));
        assert!(e <= now.minus(Duration::from_days(2)));
        assert!(e > now.minus(Duration::from_days(9)));
    }

    #[test]
    fn thresholds() {
        let abs = rule(Threshold::Absolute(0.3), Direction::Above, Action::Suppress);
        let o = |v| Some(Observation { value: v, n: 100 });
        assert!(matches!(
            judge(&abs, o(0.31), None),
            Judgement::Breach { .. }
        ));
        assert!(matches!(
            judge(&abs, o(0.27), None),
            Judgement::Margin { .. }
        ));
        assert!(matches!(judge(&abs, o(0.2), None), Judgement::Clean { .. }));
        assert!(matches!(
            judge(&abs, Some(Observation { value: 0.9, n: 9 }), None),
            Judgement::Insufficient { .. }
        ));
        let b = Some(Baseline {
            value: 0.8,
            sd: Some(0.02),
        });
        let sig = rule(Threshold::Sigma(3.0), Direction::Below, Action::Suppress);
        assert!(
            matches!(judge(&sig, o(0.73), b), Judgement::Breach { limit } if (limit - 0.74).abs() < 1e-12)
        );
        assert!(matches!(judge(&sig, o(0.95), b), Judgement::Clean { .. }));
        let rel = rule(
            Threshold::Relative(0.25),
            Direction::Either,
            Action::Suppress,
        );
        let b = Some(Baseline {
            value: 1.0,
            sd: None,
        });
        assert!(matches!(judge(&rel, o(1.3), b), Judgement::Breach { .. }));
        assert!(matches!(judge(&rel, o(0.7), b), Judgement::Breach { .. }));
        assert!(matches!(judge(&rel, o(1.0), b), Judgement::Clean { .. }));
        assert!(matches!(
            judge(&rel, o(1.0), None),
            Judgement::Insufficient { .. }
        ));
    }

    #[test]
    fn fires_once_holds_then_clears_after_streak() {
        let r = rule(Threshold::Absolute(0.3), Direction::Above, Action::Suppress);
        let day = |d: i64| Timestamp::from_unix_seconds(86_400 * d);
        let br = Judgement::Breach { limit: 0.3 };
        let cl = Judgement::Clean { limit: 0.3 };
        let (s, st) = step(&r, &RuleState::default(), &br, day(1));
        assert_eq!(st, Step::Fire);
        let (s2, st) = step(&r, &s, &br, day(1));
        assert_eq!(st, Step::AlreadyJudged);
        assert_eq!(s2, s);
        let (s, st) = step(&r, &s, &br, day(5));
        assert_eq!(st, Step::Hold, "suppress happens once per episode");
        let (s, st) = step(&r, &s, &cl, day(6));
        assert_eq!(st, Step::Hold);
        let (s, st) = step(&r, &s, &cl, day(7));
        assert_eq!(st, Step::Clear);
        assert!(!s.firing);
    }

    #[test]
    fn notify_repeats_after_cooldown() {
        let r = rule(
            Threshold::Absolute(0.3),
            Direction::Above,
            Action::Notify {
                url: "http://x.example/h".into(),
                retries: 1,
            },
        );
        let day = |d: i64| Timestamp::from_unix_seconds(86_400 * d);
        let br = Judgement::Breach { limit: 0.3 };
        let (s, _) = step(&r, &RuleState::default(), &br, day(1));
        let (s, st) = step(&r, &s, &br, day(2));
        assert_eq!(st, Step::Hold);
        let (_, st) = step(&r, &s, &br, day(3));
        assert_eq!(st, Step::Repeat);
    }

    #[test]
    fn closing_serious_incidents_needs_a_postmortem() {
        use IncidentStatus::*;
        assert!(check_status_change(Severity::Sev2, Open, Closed, None).is_err());
        assert!(check_status_change(Severity::Sev2, Open, Closed, Some("short")).is_err());
        assert!(
            check_status_change(
                Severity::Sev2,
                Mitigated,
                Closed,
                Some("The lab feed broke after the EHR upgrade; mapping fixed.")
            )
            .is_ok()
        );
        assert!(check_status_change(Severity::Sev4, Open, Closed, None).is_ok());
        assert!(check_status_change(Severity::Sev4, Closed, Open, None).is_err());
    }

    #[test]
    fn review_status_by_date() {
        let due = Timestamp::parse("2026-06-01").unwrap();
        let n = Duration::from_days(30);
        assert_eq!(
            review_status(Timestamp::parse("2026-04-01").unwrap(), due, n),
            ReviewStatus::Current
        );
        assert_eq!(
            review_status(Timestamp::parse("2026-05-15").unwrap(), due, n),
            ReviewStatus::DueSoon
        );
        assert_eq!(review_status(due, due, n), ReviewStatus::Overdue);
    }

    proptest! {
        /// Whatever the sequence of verdicts: a non-repeating action runs exactly once per
        /// episode, never while firing, and a window is never judged twice.
        #[test]
        fn one_action_per_episode(verdicts in proptest::collection::vec(0u8..4, 0..80), repeat in 0usize..3) {
            let r = rule(Threshold::Absolute(0.3), Direction::Above, Action::Rollback);
            let mut s = RuleState::default();
            let mut episodes = 0;
            let mut fires = 0;
            let mut was_firing = false;
            for (i, v) in verdicts.iter().enumerate() {
                let j = match v {
                    0 => Judgement::Breach { limit: 0.3 },
                    1 => Judgement::Clean { limit: 0.3 },
                    2 => Judgement::Margin { limit: 0.3 },
                    _ => Judgement::Insufficient { reason: String::new() },
                };
                let end = Timestamp::from_unix_seconds(86_400 * (i as i64 + 1));
                for _ in 0..=repeat {
                    let (n, st) = step(&r, &s, &j, end);
                    match st {
                        Step::Fire => { prop_assert!(!was_firing); fires += 1; }
                        Step::Repeat => prop_assert!(false, "rollback must not repeat"),
                        _ => {}
                    }
                    if n.firing && !was_firing { episodes += 1; }
                    was_firing = n.firing;
                    s = n;
                }
            }
            prop_assert_eq!(fires, episodes);
        }

        /// A judged value is exactly one of breach / margin / clean, by its limit.
        #[test]
        fn verdict_matches_limit(v in -2.0f64..2.0, h in 0.0f64..0.5) {
            let mut r = rule(Threshold::Absolute(0.3), Direction::Above, Action::Suppress);
            r.hysteresis = h;
            match judge(&r, Some(Observation { value: v, n: 100 }), None) {
                Judgement::Breach { .. } => prop_assert!(v > 0.3),
                Judgement::Clean { .. } => prop_assert!(v <= 0.3 - h),
                Judgement::Margin { .. } => prop_assert!(v <= 0.3 && v > 0.3 - h),
                Judgement::Insufficient { .. } => prop_assert!(false),
            }
        }
    }
}
