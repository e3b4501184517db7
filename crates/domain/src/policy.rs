//! Gate policy: per risk tier and target stage, the evidence and sign-offs a release needs,
//! and the pure evaluation of those gates against the evidence on record.
//!
//! A policy is a TOML file:
//!
//! ```toml
//! description = "…"
//! [[tiers.3.production]]
//! name = "auroc-lower-bound"
//! kind = "metric"
//! metric = "auroc.ci_low"
//! min = 0.70
//! ```
//!
//! Gates apply to forward moves (into validated, approved, shadow, production). Moving a
//! release back (revalidation, withdrawal, retirement) needs a role and a reason, not
//! evidence: taking a model out of use must never be blocked by missing paperwork.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::canonical::canonical_digest;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::governance::{Decision, Exception, ReviewSummary, SignOff};
use crate::ids::{SnapshotId, UserName};
use crate::model::RiskTier;
use crate::release::Equivalence;
use crate::role::Role;
use crate::stage::Stage;
use crate::time::{Duration, Timestamp};

/// A gate's name inside a policy (`auroc-lower-bound`): what exceptions refer to.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct GateName(String);

impl GateName {
    pub fn parse(s: &str) -> Result<GateName> {
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if ok {
            Ok(GateName(s.to_owned()))
        } else {
            Err(Error::invalid(format!(
                "`{s}` is not a gate name: 1 to 64 lower-case letters, digits and `-`, starting with a letter"
            )))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for GateName {
    type Error = Error;
    fn try_from(s: String) -> Result<GateName> {
        GateName::parse(&s)
    }
}

impl From<GateName> for String {
    fn from(g: GateName) -> String {
        g.0
    }
}

impl fmt::Display for GateName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a gate checks.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum GateRule {
    /// A metric of the release's latest evaluation within bounds (`auroc.ci_low`,
    /// `calibration.slope`, `calibration.ece`, …).
    Metric {
        metric: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        min: Option<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max: Option<f64>,
    },
    /// Every large-enough subgroup's metric, relative to the overall value, within bounds.
    SubgroupGap {
        #[serde(default = "default_subgroup_metric")]
        metric: String,
        #[serde(default = "default_min_ratio")]
        min_ratio: f64,
        #[serde(default = "default_max_ratio")]
        max_ratio: f64,
        /// Largest absolute difference to the overall value, if bounded too.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_gap: Option<f64>,
    },
    /// Every blocking data check on the evaluation data passed.
    DataChecks,
    /// Sign-offs from each named role, by distinct people who are not the release's author,
    /// on the current evidence.
    SignOff {
        roles: Vec<Role>,
        #[serde(default = "one")]
        count: u32,
    },
    /// Time in shadow and predictions scored there.
    Shadow { min_days: u32, min_predictions: u64 },
    /// A rehearsed rollback of the model recorded since the release was registered.
    RollbackDrill,
    /// Rehearsals of the model's monitor policy (`vigil simulate`) recorded within
    /// `max_age_days`, covering each named scenario (any scenario when none is named).
    Rehearsal {
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        scenarios: Vec<String>,
        #[serde(default = "default_rehearsal_age")]
        max_age_days: u32,
    },
    /// The release was registered with reference predictions of the training framework and
    /// its artifact reproduced them (within the registration tolerance, or `max_abs_diff`
    /// when the policy sets a tighter one).
    Equivalence {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_abs_diff: Option<f64>,
    },
    /// The model's intended use and its clinical and technical owners are filled in.
    IntendedUse,
    /// A structured clinical review of sampled cases.
    ClinicalReview {
        min_cases: u32,
        #[serde(default)]
        max_unsafe: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        min_plausible_fraction: Option<f64>,
    },
}

fn default_subgroup_metric() -> String {
    "auroc".into()
}
fn default_min_ratio() -> f64 {
    0.8
}
fn default_max_ratio() -> f64 {
    1.25
}
fn one() -> u32 {
    1
}
fn default_rehearsal_age() -> u32 {
    90
}

/// One named gate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Gate {
    pub name: GateName,
    #[serde(flatten)]
    pub rule: GateRule,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    #[serde(default)]
    description: Option<String>,
    tiers: BTreeMap<String, BTreeMap<String, Vec<Gate>>>,
}

/// A parsed gate policy: for each tier 1–4 and each target stage, its gates.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GatePolicy {
    pub description: Option<String>,
    pub tiers: BTreeMap<u8, BTreeMap<Stage, Vec<Gate>>>,
}

/// Stages a release moves into by a forward promotion; only these carry gates.
pub const GATED_STAGES: [Stage; 4] = [
    Stage::Validated,
    Stage::Approved,
    Stage::Shadow,
    Stage::Production,
];

impl GatePolicy {
    pub fn from_toml(text: &str) -> Result<GatePolicy> {
        let f: PolicyFile =
            toml::from_str(text).map_err(|e| Error::invalid(format!("gate policy: {e}")))?;
        let mut tiers = BTreeMap::new();
        for (tier, stages) in f.tiers {
            let n: u8 = tier
                .parse()
                .map_err(|_| Error::invalid(format!("gate policy: `{tier}` is not a risk tier")))?;
            RiskTier::new(n).map_err(|e| Error::invalid(format!("gate policy: {e}")))?;
            let mut by_stage = BTreeMap::new();
            for (stage, gates) in stages {
                let st: Stage = stage
                    .parse()
                    .map_err(|e| Error::invalid(format!("gate policy: tier {n}: {e}")))?;
                if !GATED_STAGES.contains(&st) {
                    return Err(Error::invalid(format!(
                        "gate policy: tier {n}: `{st}` carries no gates (only validated, approved, shadow and production do)"
                    )));
                }
                for (i, g) in gates.iter().enumerate() {
                    if gates[..i].iter().any(|o| o.name == g.name) {
                        return Err(Error::invalid(format!(
                            "gate policy: tier {n}, {st}: gate `{}` appears twice",
                            g.name
                        )));
                    }
                    check_rule(&g.rule).map_err(|m| {
                        Error::invalid(format!(
                            "gate policy: tier {n}, {st}, gate `{}`: {m}",
                            g.name
                        ))
                    })?;
                }
                by_stage.insert(st, gates);
            }
            tiers.insert(n, by_stage);
        }
        for n in 1..=4u8 {
            if !tiers.contains_key(&n) {
                return Err(Error::invalid(format!(
                    "gate policy: tier {n} is missing: a policy covers tiers 1 to 4"
                )));
            }
        }
        Ok(GatePolicy {
            description: f.description,
            tiers,
        })
    }

    /// The gates for entering `to` at `tier` (empty for backward moves).
    pub fn gates(&self, tier: RiskTier, to: Stage) -> &[Gate] {
        self.tiers
            .get(&tier.get())
            .and_then(|s| s.get(&to))
            .map_or(&[], Vec::as_slice)
    }

    /// Whether some gate of some tier is named `name`.
    pub fn has_gate(&self, name: &GateName) -> bool {
        self.tiers
            .values()
            .flat_map(|s| s.values())
            .flatten()
            .any(|g| &g.name == name)
    }
}

fn check_rule(r: &GateRule) -> std::result::Result<(), String> {
    let finite = |x: &Option<f64>| x.is_none_or(f64::is_finite);
    match r {
        GateRule::Metric { metric, min, max } => {
            if metric.trim().is_empty() {
                return Err("`metric` is empty".into());
            }
            if min.is_none() && max.is_none() {
                return Err("give `min`, `max` or both".into());
            }
            if !finite(min) || !finite(max) {
                return Err("bounds must be finite numbers".into());
            }
            if let (Some(a), Some(b)) = (min, max)
                && a > b
            {
                return Err(format!("min {a} is above max {b}"));
            }
        }
        GateRule::SubgroupGap {
            min_ratio,
            max_ratio,
            max_gap,
            ..
        } => {
            if !(min_ratio.is_finite()
                && max_ratio.is_finite()
                && *min_ratio > 0.0
                && min_ratio <= max_ratio)
            {
                return Err("ratios must be positive with min_ratio ≤ max_ratio".into());
            }
            if !finite(max_gap) {
                return Err("max_gap must be a finite number".into());
            }
        }
        GateRule::Equivalence {
            max_abs_diff: Some(d),
        } if !(d.is_finite() && *d >= 0.0) => {
            return Err("max_abs_diff must be a finite number ≥ 0".into());
        }
        GateRule::Rehearsal {
            scenarios,
            max_age_days,
        } => {
            if *max_age_days == 0 {
                return Err("max_age_days must be at least 1".into());
            }
            if let Some(s) = scenarios
                .iter()
                .find(|s| !crate::monitor::SCENARIOS.contains(&s.as_str()))
            {
                return Err(format!(
                    "unknown scenario `{s}` (known: {})",
                    crate::monitor::SCENARIOS.join(", ")
                ));
            }
        }
        GateRule::SignOff { roles, count } if roles.is_empty() || *count == 0 => {
            return Err("name at least one role and a count of at least 1".into());
        }
        GateRule::ClinicalReview {
            min_plausible_fraction: Some(f),
            ..
        } if !(0.0..=1.0).contains(f) => {
            return Err("min_plausible_fraction must lie in [0, 1]".into());
        }
        _ => {}
    }
    Ok(())
}

// ---- evidence ---------------------------------------------------------------------------

/// Metrics of one subgroup in an evaluation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SubgroupMetrics {
    pub column: String,
    pub group: String,
    pub n: u64,
    /// Too few cases (or one class) for the estimate to mean anything.
    #[serde(default)]
    pub too_small: bool,
    pub metrics: BTreeMap<String, f64>,
}

/// What a gate needs to know about one evaluation of a release.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvaluationSummary {
    pub id: String,
    pub digest: Digest,
    pub dataset: Option<SnapshotId>,
    pub at: Timestamp,
    /// Flat metric paths: `auroc`, `auroc.ci_low`, `calibration.slope`, `calibration.ece`.
    pub metrics: BTreeMap<String, f64>,
    #[serde(default)]
    pub subgroups: Vec<SubgroupMetrics>,
}

/// The outcome of the data checks run on one snapshot.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DataCheckSummary {
    pub id: String,
    pub digest: Digest,
    pub dataset: SnapshotId,
    pub at: Timestamp,
    /// Names of blocking checks that failed (empty: passed).
    pub blocking_failures: Vec<String>,
}

/// The release's time in shadow and what was scored there.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShadowStats {
    pub since: Timestamp,
    pub scored: u64,
}

/// Everything on record for one release at one moment, gathered by the service.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Evidence {
    pub author: UserName,
    pub registered_at: Timestamp,
    pub intended_use_complete: bool,
    pub owners_named: bool,
    /// Newest last.
    pub evaluations: Vec<EvaluationSummary>,
    pub data_checks: Vec<DataCheckSummary>,
    pub shadow: Option<ShadowStats>,
    /// The equivalence check pinned in the release's manifest, if it was registered with one.
    pub equivalence: Option<Equivalence>,
    /// Times of rollback drills recorded for the model.
    pub rollback_drills: Vec<Timestamp>,
    /// Rehearsals recorded for the model: scenario and time.
    pub rehearsals: Vec<(String, Timestamp)>,
    pub review: ReviewSummary,
    pub sign_offs: Vec<SignOff>,
    pub exceptions: Vec<Exception>,
}

impl Evidence {
    /// The digest a sign-off binds to: the ids and digests of the evaluations, the data
    /// checks and the clinical case reviews on record. Anything new changes it, so a
    /// sign-off given before it no longer counts.
    pub fn digest(&self) -> Digest {
        let mut evals: Vec<_> = self
            .evaluations
            .iter()
            .map(|e| json!([e.id, e.digest]))
            .collect();
        let mut checks: Vec<_> = self
            .data_checks
            .iter()
            .map(|c| json!([c.id, c.digest]))
            .collect();
        evals.sort_by_key(|v| v.to_string());
        checks.sort_by_key(|v| v.to_string());
        let v = json!({
            "evaluations": evals,
            "data_checks": checks,
            "reviews": self.review.digest,
        });
        canonical_digest(&v).unwrap_or(crate::audit::GENESIS_HASH)
    }

    pub fn latest_evaluation(&self) -> Option<&EvaluationSummary> {
        self.evaluations.iter().max_by_key(|e| e.at)
    }
}

// ---- gate evaluation -------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GateStatus {
    Met,
    Unmet,
    /// Unmet, but an unexpired exception waives it.
    Covered,
}

/// One gate's verdict, with the evidence behind it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GateResult {
    pub gate: GateName,
    pub kind: &'static str,
    pub status: GateStatus,
    /// What was found, in words.
    pub detail: String,
    /// The evidence looked at (ids, values).
    pub evidence: Value,
    /// The exception covering it, when one does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exception: Option<Exception>,
}

/// Evaluates every gate against the evidence at `now`.
pub fn evaluate_gates(gates: &[Gate], ev: &Evidence, now: Timestamp) -> Vec<GateResult> {
    let current = ev.digest();
    gates
        .iter()
        .map(|g| {
            let (met, kind, detail, evidence) = evaluate_rule(&g.rule, ev, current, now);
            let exception = if met {
                None
            } else {
                ev.exceptions
                    .iter()
                    .filter(|x| x.gate == g.name && x.expires_at > now)
                    .max_by_key(|x| x.expires_at)
                    .cloned()
            };
            let status = match (met, &exception) {
                (true, _) => GateStatus::Met,
                (false, Some(_)) => GateStatus::Covered,
                (false, None) => GateStatus::Unmet,
            };
            GateResult {
                gate: g.name.clone(),
                kind,
                status,
                detail,
                evidence,
                exception,
            }
        })
        .collect()
}

fn bounds_text(min: Option<f64>, max: Option<f64>) -> String {
    match (min, max) {
        (Some(a), Some(b)) => format!("within [{a}, {b}]"),
        (Some(a), None) => format!("≥ {a}"),
        (None, Some(b)) => format!("≤ {b}"),
        (None, None) => "unbounded".into(),
    }
}

fn evaluate_rule(
    rule: &GateRule,
    ev: &Evidence,
    current: Digest,
    now: Timestamp,
) -> (bool, &'static str, String, Value) {
    match rule {
        GateRule::Metric { metric, min, max } => {
            let Some(e) = ev.latest_evaluation() else {
                return (
                    false,
                    "metric",
                    "no evaluation recorded".into(),
                    Value::Null,
                );
            };
            let want = bounds_text(*min, *max);
            match e.metrics.get(metric) {
                None => (
                    false,
                    "metric",
                    format!(
                        "the latest evaluation ({}) does not report `{metric}`",
                        e.id
                    ),
                    json!({"evaluation": e.id}),
                ),
                Some(v) => {
                    let ok =
                        v.is_finite() && min.is_none_or(|a| *v >= a) && max.is_none_or(|b| *v <= b);
                    (
                        ok,
                        "metric",
                        format!("{metric} = {v:.4} (needs {want}) in evaluation {}", e.id),
                        json!({"evaluation": e.id, "metric": metric, "value": v}),
                    )
                }
            }
        }
        GateRule::SubgroupGap {
            metric,
            min_ratio,
            max_ratio,
            max_gap,
        } => {
            let Some(e) = ev.latest_evaluation() else {
                return (
                    false,
                    "subgroup_gap",
                    "no evaluation recorded".into(),
                    Value::Null,
                );
            };
            let Some(overall) = e
                .metrics
                .get(metric)
                .copied()
                .filter(|v| v.is_finite() && *v > 0.0)
            else {
                return (
                    false,
                    "subgroup_gap",
                    format!(
                        "the latest evaluation ({}) does not report an overall `{metric}`",
                        e.id
                    ),
                    json!({"evaluation": e.id}),
                );
            };
            let mut worst: Option<(f64, &SubgroupMetrics, f64)> = None;
            let mut judged = 0;
            for s in e.subgroups.iter().filter(|s| !s.too_small) {
                let Some(v) = s.metrics.get(metric).copied().filter(|v| v.is_finite()) else {
                    continue;
                };
                judged += 1;
                let ratio = v / overall;
                // Distance outside [1/max, max] on a log scale, so 0.8 and 1.25 weigh the same.
                let badness = ratio.ln().abs();
                if worst.as_ref().is_none_or(|w| badness > w.0) {
                    worst = Some((badness, s, v));
                }
            }
            match worst {
                None => (
                    false,
                    "subgroup_gap",
                    format!(
                        "evaluation {} reports no subgroup large enough to judge",
                        e.id
                    ),
                    json!({"evaluation": e.id}),
                ),
                Some((_, s, v)) => {
                    let ratio = v / overall;
                    let gap = (v - overall).abs();
                    let ok = ratio >= *min_ratio
                        && ratio <= *max_ratio
                        && max_gap.is_none_or(|g| gap <= g);
                    (
                        ok,
                        "subgroup_gap",
                        format!(
                            "largest departure: {}={} {metric} {v:.4} vs overall {overall:.4} (ratio {ratio:.3}, gap {gap:.4}; needs ratio in [{min_ratio}, {max_ratio}]{}) over {judged} subgroups",
                            s.column,
                            s.group,
                            max_gap.map_or(String::new(), |g| format!(", gap ≤ {g}"))
                        ),
                        json!({"evaluation": e.id, "column": s.column, "group": s.group, "value": v, "overall": overall, "ratio": ratio, "gap": gap}),
                    )
                }
            }
        }
        GateRule::DataChecks => {
            if ev.data_checks.is_empty() {
                return (
                    false,
                    "data_checks",
                    "no data check results recorded".into(),
                    Value::Null,
                );
            }
            let failing: Vec<String> = ev
                .data_checks
                .iter()
                .flat_map(|c| {
                    c.blocking_failures
                        .iter()
                        .map(move |f| format!("{f} on {}", c.dataset.short()))
                })
                .collect();
            let ids: Vec<_> = ev.data_checks.iter().map(|c| c.id.clone()).collect();
            if failing.is_empty() {
                (
                    true,
                    "data_checks",
                    format!("{} data check runs, no blocking failure", ids.len()),
                    json!({"checks": ids}),
                )
            } else {
                (
                    false,
                    "data_checks",
                    format!("blocking checks failed: {}", failing.join("; ")),
                    json!({"checks": ids, "failing": failing}),
                )
            }
        }
        GateRule::SignOff { roles, count } => {
            let mut parts = Vec::new();
            let mut all = true;
            let mut used = Vec::new();
            let mut stale_names = Vec::new();
            for role in roles {
                let mut people: Vec<&UserName> = Vec::new();
                // The latest decision of each person in this role decides: a rejection
                // after an approval withdraws it.
                let mut latest: BTreeMap<&UserName, &SignOff> = BTreeMap::new();
                for s in ev.sign_offs.iter().filter(|s| s.role == *role) {
                    if latest.get(&s.user).is_none_or(|p| p.at <= s.at) {
                        latest.insert(&s.user, s);
                    }
                }
                let mut rejected = Vec::new();
                for (u, s) in &latest {
                    if **u == ev.author {
                        continue;
                    }
                    match s.decision {
                        Decision::Rejected => rejected.push(u.to_string()),
                        Decision::Approved if s.evidence_digest == current => {
                            people.push(u);
                            used.push(json!({"user": u, "role": role, "at": s.at}));
                        }
                        Decision::Approved => stale_names.push(format!("{u} ({role})")),
                    }
                }
                let n = people.len() as u32;
                let ok = n >= *count && rejected.is_empty();
                all &= ok;
                let mut p = format!("{role}: {n} of {count}");
                if !rejected.is_empty() {
                    p += &format!(", rejected by {}", rejected.join(", "));
                }
                parts.push(p);
            }
            let mut detail = parts.join("; ");
            if !stale_names.is_empty() {
                detail += &format!(
                    "; stale (evidence changed since signing): {}",
                    stale_names.join(", ")
                );
            }
            (
                all,
                "sign_off",
                detail,
                json!({"evidence_digest": current, "counted": used, "stale": stale_names}),
            )
        }
        GateRule::Shadow {
            min_days,
            min_predictions,
        } => match &ev.shadow {
            None => (
                false,
                "shadow",
                "the release has not run in shadow".into(),
                Value::Null,
            ),
            Some(s) => {
                let days = now.since(s.since).as_secs_f64() / 86_400.0;
                let ok = now.since(s.since) >= Duration::from_days(i64::from(*min_days))
                    && s.scored >= *min_predictions;
                (
                    ok,
                    "shadow",
                    format!(
                        "{days:.1} days in shadow since {} (needs {min_days}), {} predictions scored (needs {min_predictions})",
                        s.since, s.scored
                    ),
                    json!({"since": s.since, "days": days, "scored": s.scored}),
                )
            }
        },
        GateRule::RollbackDrill => {
            let drills: Vec<_> = ev
                .rollback_drills
                .iter()
                .filter(|t| **t >= ev.registered_at)
                .collect();
            match drills.iter().max() {
                Some(t) => (
                    true,
                    "rollback_drill",
                    format!("rollback rehearsed at {t}"),
                    json!({"latest": t}),
                ),
                None => (
                    false,
                    "rollback_drill",
                    "no rollback drill recorded since the release was registered".into(),
                    Value::Null,
                ),
            }
        }
        GateRule::Rehearsal {
            scenarios,
            max_age_days,
        } => {
            let since = now.minus(Duration::from_days(i64::from(*max_age_days)));
            let recent: Vec<&(String, Timestamp)> =
                ev.rehearsals.iter().filter(|(_, t)| *t >= since).collect();
            let missing: Vec<&String> = scenarios
                .iter()
                .filter(|s| !recent.iter().any(|(r, _)| r == *s))
                .collect();
            let ok = !recent.is_empty() && missing.is_empty();
            let detail = if ok {
                format!(
                    "{} rehearsal(s) in the last {max_age_days} days ({})",
                    recent.len(),
                    recent
                        .iter()
                        .map(|(s, _)| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            } else if recent.is_empty() {
                format!("no rehearsal (`vigil simulate`) recorded in the last {max_age_days} days")
            } else {
                format!(
                    "no rehearsal of {} in the last {max_age_days} days",
                    missing
                        .iter()
                        .map(|s| format!("`{s}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            (
                ok,
                "rehearsal",
                detail,
                json!({"recent": recent.iter().map(|(s, t)| json!({"scenario": s, "at": t})).collect::<Vec<_>>(), "missing": missing}),
            )
        }
        GateRule::Equivalence { max_abs_diff } => match &ev.equivalence {
            None => (
                false,
                "equivalence",
                "the release was registered without reference predictions".into(),
                Value::Null,
            ),
            Some(q) => {
                let limit = max_abs_diff.unwrap_or(q.tolerance);
                let ok = q.max_abs_diff <= limit;
                (
                    ok,
                    "equivalence",
                    format!(
                        "{} reference rows reproduced, max |difference| {:.3e} at row {} (needs ≤ {limit:e})",
                        q.rows, q.max_abs_diff, q.worst_row
                    ),
                    json!({"reference_digest": q.reference.digest, "rows": q.rows,
                        "max_abs_diff": q.max_abs_diff, "worst_row": q.worst_row}),
                )
            }
        },
        GateRule::IntendedUse => {
            let ok = ev.intended_use_complete && ev.owners_named;
            let detail = match (ev.intended_use_complete, ev.owners_named) {
                (true, true) => {
                    "intended use complete; clinical and technical owners named".to_string()
                }
                (false, _) => "the intended use is incomplete".to_string(),
                (true, false) => "the clinical or technical owner is not named".to_string(),
            };
            (ok, "intended_use", detail, Value::Null)
        }
        GateRule::ClinicalReview {
            min_cases,
            max_unsafe,
            min_plausible_fraction,
        } => {
            let r = &ev.review;
            let n = r.plausible + r.implausible + r.unsafe_;
            let frac = if n > 0 {
                r.plausible as f64 / n as f64
            } else {
                0.0
            };
            let ok = n >= *min_cases
                && r.unsafe_ <= *max_unsafe
                && min_plausible_fraction.is_none_or(|f| n > 0 && frac >= f);
            (
                ok,
                "clinical_review",
                format!(
                    "{n} cases reviewed (needs {min_cases}): {} plausible, {} implausible, {} unsafe (at most {max_unsafe}){}",
                    r.plausible,
                    r.implausible,
                    r.unsafe_,
                    min_plausible_fraction.map_or(String::new(), |f| format!(
                        "; plausible fraction {frac:.2} (needs {f})"
                    ))
                ),
                json!({"reviewed": n, "plausible": r.plausible, "implausible": r.implausible, "unsafe": r.unsafe_}),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFAULT: &str = include_str!("../../../policies/default.toml");

    #[test]
    fn default_policy_parses_and_higher_tiers_demand_more() {
        let p = GatePolicy::from_toml(DEFAULT).unwrap();
        let n = |t: u8| -> usize {
            GATED_STAGES
                .iter()
                .map(|s| p.gates(RiskTier::new(t).unwrap(), *s).len())
                .sum()
        };
        assert!(
            n(1) < n(2) && n(2) < n(3) && n(3) <= n(4),
            "{} {} {} {}",
            n(1),
            n(2),
            n(3),
            n(4)
        );
    }

    #[test]
    fn bad_policies_are_refused_with_the_place() {
        let e = GatePolicy::from_toml("[tiers.1]\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("tier 2 is missing"), "{e}");
        let bad = DEFAULT.replacen("kind = \"metric\"", "kind = \"vibes\"", 1);
        assert!(GatePolicy::from_toml(&bad).is_err());
    }
}
