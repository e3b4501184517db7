//! One monitor run: every rule of the policy in force on every production deployment, judged
//! on its last complete window; each new firing recorded with its numbers and acted on once;
//! then the revalidation schedule.
//!
//! Exactly once across replicas: a window's verdict is written under the store's write lock
//! together with the rule's state, its firing (whose idempotency key is unique) and every
//! action that changes the deployment. A second server judging the same window finds it
//! judged and does nothing. Webhooks are sent after that commit by the server that wrote the
//! firing, and their attempts recorded.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use serde_json::{Value, json};
use vigil_domain::governance::Move;
use vigil_domain::monitor::{
    Action, Judgement, MonitorPolicy, ReviewStatus, Rule, RuleState, Signal, Step, due_window,
    idempotency_key, judge, review_status, step,
};
use vigil_domain::prediction::{PredictionFilter, PredictionMode, PredictionRecord};
use vigil_domain::{ModelName, ReleaseId, Stage, Timestamp, UserName};
use vigil_store::{DeliveryRecord, FiringRecord, RuleStateRecord};

use super::signals::{self, SignalValue, WindowData};
use super::webhook::{self, Attempt};
use crate::{Error, Result, Vigil, audit_event};

/// One rule judged on one window of one deployment (and subgroup).
#[derive(Clone, Debug, Serialize)]
pub struct RuleEvaluation {
    pub rule: String,
    pub model: ModelName,
    pub release: ReleaseId,
    pub group: String,
    pub window_start: Timestamp,
    pub window_end: Timestamp,
    #[serde(flatten)]
    pub signal: SignalValue,
    pub judgement: Judgement,
    pub step: Step,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub firing: Option<i64>,
}

/// What an action did.
#[derive(Clone, Debug, Serialize)]
pub struct ActionTaken {
    pub firing: i64,
    pub rule: String,
    pub model: ModelName,
    pub action: String,
    pub outcome: Value,
}

/// A production release's standing against its review-by date.
#[derive(Clone, Debug, Serialize)]
pub struct RevalidationView {
    pub model: ModelName,
    pub release: ReleaseId,
    pub live_since: Timestamp,
    pub review_by: Option<Timestamp>,
    pub status: Option<ReviewStatus>,
    /// Sent to revalidation by a monitor rule (open_review).
    pub triggered: bool,
}

/// What a run judged and did.
#[derive(Clone, Debug, Serialize)]
pub struct MonitorRun {
    pub at: Timestamp,
    pub policy_version: Option<i64>,
    pub evaluations: Vec<RuleEvaluation>,
    pub actions: Vec<ActionTaken>,
    pub revalidation: Vec<RevalidationView>,
    /// Event triggers that sent a release to revalidation in this run.
    pub triggers: Vec<TriggerFired>,
    pub notes: Vec<String>,
}

/// An event that sent a production release to revalidation before its date.
#[derive(Clone, Debug, Serialize)]
pub struct TriggerFired {
    pub model: ModelName,
    pub release: ReleaseId,
    /// `new_site` or `unmapped_inputs`.
    pub trigger: &'static str,
    pub reason: String,
    pub window_start: Timestamp,
    pub window_end: Timestamp,
}

/// A production deployment.
pub(crate) struct Deployment {
    pub model: vigil_domain::Model,
    pub release: vigil_domain::Release,
    pub since: Timestamp,
}

/// Subgroup of a record: the context value `by` names (`(none)` without one).
/// Feedback by request id: (given at, overridden), in the order it was received.
pub(crate) type Feedback = HashMap<String, Vec<(Timestamp, bool)>>;

/// The feedback given since `since` on the cards of these records (`true` for an override).
pub(crate) fn feedback_of(
    feedback: &Feedback,
    since: Timestamp,
    records: &[&PredictionRecord],
) -> Vec<bool> {
    records
        .iter()
        .filter_map(|r| feedback.get(&r.request_id))
        .flatten()
        .filter(|(at, _)| *at >= since)
        .map(|(_, o)| *o)
        .collect()
}

fn group_of(r: &PredictionRecord, by: &str) -> String {
    match r.context.get(by) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => "(none)".into(),
        Some(v) => v.to_string(),
    }
}

impl Vigil {
    /// Every model's release in production, with when it went live.
    pub(crate) async fn production_deployments(&self) -> Result<Vec<Deployment>> {
        let mut out = Vec::new();
        for model in self.store.list_models().await? {
            for (rid, stage, since) in self.store.list_stages(&model.name).await? {
                if stage == Stage::Production {
                    let release = self.get_release(&rid.to_string()).await?;
                    out.push(Deployment {
                        model: model.clone(),
                        release,
                        since,
                    });
                }
            }
        }
        Ok(out)
    }

    /// Labels joined to `records` (by request id, else encounter key).
    pub(crate) async fn join_outcomes(
        &self,
        records: &[&PredictionRecord],
    ) -> Result<HashMap<usize, bool>> {
        let req: Vec<String> = records.iter().map(|r| r.request_id.clone()).collect();
        let enc: Vec<String> = records
            .iter()
            .filter_map(|r| r.encounter_key.clone())
            .collect();
        let by_req: HashMap<String, bool> = self
            .store
            .find_outcomes("request", &req)
            .await?
            .into_iter()
            .map(|o| (o.key, o.label))
            .collect();
        let by_enc: HashMap<String, bool> = self
            .store
            .find_outcomes("encounter", &enc)
            .await?
            .into_iter()
            .map(|o| (o.key, o.label))
            .collect();
        let mut out = HashMap::new();
        for (i, r) in records.iter().enumerate() {
            let l = by_req.get(&r.request_id).copied().or_else(|| {
                r.encounter_key
                    .as_ref()
                    .and_then(|k| by_enc.get(k).copied())
            });
            if let Some(l) = l {
                out.insert(i, l);
            }
        }
        Ok(out)
    }

    /// The clinician feedback on a model's cards received since `since`, by the request id
    /// of the prediction behind each card: when it was given and whether it overrode the
    /// card. Read once, then selected per window and group with [`feedback_of`].
    pub(crate) async fn feedback_since(
        &self,
        model: &ModelName,
        since: Timestamp,
    ) -> Result<Feedback> {
        let mut out: Feedback = HashMap::new();
        for f in self
            .store
            .list_cds_feedback(model.as_str(), Some(since))
            .await?
        {
            let overridden = match f.outcome.as_str() {
                "overridden" => true,
                "accepted" => false,
                _ => continue,
            };
            if let Some(r) = f.request_id {
                out.entry(r).or_default().push((f.outcome_at, overridden));
            }
        }
        Ok(out)
    }

    /// Active prediction records of a release in `[start, end)`.
    pub(crate) async fn window_records(
        &self,
        model: &ModelName,
        release: &ReleaseId,
        start: Timestamp,
        end: Timestamp,
    ) -> Result<Vec<PredictionRecord>> {
        self.window_records_in(PredictionMode::Active, model, release, start, end)
            .await
    }

    /// The records of one release in one mode (active or shadow) recorded in `[start, end)`.
    pub(crate) async fn window_records_in(
        &self,
        mode: PredictionMode,
        model: &ModelName,
        release: &ReleaseId,
        start: Timestamp,
        end: Timestamp,
    ) -> Result<Vec<PredictionRecord>> {
        Ok(self
            .store
            .list_predictions(&PredictionFilter {
                model: Some(model.to_string()),
                release: Some(*release),
                mode: Some(mode),
                since: Some(start),
                until: Some(end),
                ..PredictionFilter::default()
            })
            .await?)
    }

    /// Runs every rule of the policy in force as of `at` (see the module documentation),
    /// then checks the revalidation schedule.
    pub async fn monitor_run(&self, actor: &UserName, at: Timestamp) -> Result<MonitorRun> {
        let mut run = MonitorRun {
            at,
            policy_version: None,
            evaluations: Vec::new(),
            actions: Vec::new(),
            revalidation: Vec::new(),
            triggers: Vec::new(),
            notes: Vec::new(),
        };
        let Some(applied) = self.current_monitor_policy().await? else {
            run.notes
                .push("no monitor policy has been applied: nothing to judge".into());
            return Ok(run);
        };
        run.policy_version = Some(applied.version);
        let policy = &applied.policy;
        let mut notifications: Vec<(i64, String, u32, Value)> = Vec::new();
        for d in self.production_deployments().await? {
            let rules: Vec<&Rule> = policy.rules_for(&d.model.name).collect();
            if rules.is_empty() {
                continue;
            }
            let profile = self
                .reference_profile(actor, &d.release.id.to_string())
                .await?;
            let contract = self.release_contract(&d.release)?;
            let threshold = d
                .release
                .manifest
                .thresholds
                .first()
                .copied()
                .unwrap_or(0.5);
            let mut cache: BTreeMap<(Timestamp, Timestamp), Vec<PredictionRecord>> =
                BTreeMap::new();
            for rule in rules {
                let (ws, we) = due_window(rule, at);
                if let std::collections::btree_map::Entry::Vacant(e) = cache.entry((ws, we)) {
                    e.insert(
                        self.window_records(&d.model.name, &d.release.id, ws, we)
                            .await?,
                    );
                }
                let recs = &cache[&(ws, we)];
                let window_feedback = if rule.signal == Signal::OverrideRate {
                    self.feedback_since(&d.model.name, ws).await?
                } else {
                    Feedback::new()
                };
                let mut groups: BTreeMap<String, Vec<&PredictionRecord>> = BTreeMap::new();
                match &rule.by {
                    Some(by) => {
                        for r in recs {
                            groups.entry(group_of(r, by)).or_default().push(r);
                        }
                    }
                    None => {
                        groups.insert("all".into(), recs.iter().collect());
                    }
                }
                for (group, records) in groups {
                    let labels = if rule.signal.needs_outcomes() {
                        self.join_outcomes(&records).await?
                    } else {
                        HashMap::new()
                    };
                    let feedback = feedback_of(&window_feedback, ws, &records);
                    let w = WindowData {
                        records,
                        labels,
                        feedback,
                    };
                    let sigma =
                        matches!(rule.threshold, vigil_domain::monitor::Threshold::Sigma(_));
                    let sv = signals::compute(
                        rule.signal,
                        rule.feature.as_deref(),
                        &w,
                        &contract,
                        &profile,
                        threshold,
                        sigma,
                    );
                    let j = judge(rule, sv.observation(), sv.baseline);
                    let (st, firing) = self
                        .commit_verdict(
                            actor,
                            applied.version,
                            policy,
                            rule,
                            &d,
                            &group,
                            (ws, we),
                            &sv,
                            &j,
                            &mut run.actions,
                            &mut notifications,
                        )
                        .await?;
                    run.evaluations.push(RuleEvaluation {
                        rule: rule.name.clone(),
                        model: d.model.name.clone(),
                        release: d.release.id,
                        group,
                        window_start: ws,
                        window_end: we,
                        signal: sv,
                        judgement: j,
                        step: st,
                        firing,
                    });
                }
            }
        }
        for (firing, url, retries, body) in notifications {
            let attempts = webhook::deliver(&url, &body, retries).await;
            let outcome = self
                .record_deliveries(actor, Some(firing), &url, &attempts)
                .await?;
            if let Some(a) = run.actions.iter_mut().find(|a| a.firing == firing) {
                a.outcome = outcome;
            }
        }
        run.triggers = self.check_triggers(actor, policy, at).await?;
        run.revalidation = self.check_revalidation(actor, policy, at).await?;
        Ok(run)
    }

    /// The event triggers of the policy's revalidation section, over the last whole window
    /// before `at`: a site the training data does not cover, and inputs the EHR sends in a
    /// unit or under a code the contract's FHIR mapping cannot use. Each sends the release
    /// to revalidation once (audited with the reason).
    async fn check_triggers(
        &self,
        actor: &UserName,
        policy: &MonitorPolicy,
        at: Timestamp,
    ) -> Result<Vec<TriggerFired>> {
        let t = &policy.revalidation.triggers;
        let mut out = Vec::new();
        if !t.new_site && t.unmapped_share <= 0.0 {
            return Ok(out);
        }
        let w = t.window.as_micros();
        let end = Timestamp::from_micros(at.as_micros().div_euclid(w) * w);
        let start = Timestamp::from_micros(end.as_micros() - w);
        for d in self.production_deployments().await? {
            let records = self
                .window_records(&d.model.name, &d.release.id, start, end)
                .await?;
            if (records.len() as u64) < t.min_samples.max(1) {
                continue;
            }
            let mut found: Vec<(&'static str, String)> = Vec::new();
            if t.new_site {
                let profile = self
                    .reference_profile(actor, &d.release.id.to_string())
                    .await?;
                let known = &profile.summary.sites;
                if !known.is_empty() {
                    let mut new: BTreeMap<String, u64> = BTreeMap::new();
                    for r in &records {
                        if let Some(Value::String(s)) = r.context.get(super::profile::SITE_KEY)
                            && !known.contains(s)
                        {
                            *new.entry(s.clone()).or_default() += 1;
                        }
                    }
                    for (site, n) in new {
                        found.push((
                            "new_site",
                            format!(
                                "{n} predictions for site `{site}`, which the training data does not cover ({})",
                                known.join(", ")
                            ),
                        ));
                    }
                }
            }
            if t.unmapped_share > 0.0 {
                let mut by_feature: BTreeMap<&str, u64> = BTreeMap::new();
                let mut k = 0u64;
                for r in &records {
                    let mut any = false;
                    for f in r.features.iter().filter(|f| f.status == "unconvertible") {
                        *by_feature.entry(f.name.as_str()).or_default() += 1;
                        any = true;
                    }
                    k += u64::from(any);
                }
                let share = k as f64 / records.len() as f64;
                if k > 0 && share >= t.unmapped_share {
                    let list = by_feature
                        .iter()
                        .map(|(f, n)| format!("`{f}` {n}×"))
                        .collect::<Vec<_>>()
                        .join(", ");
                    found.push((
                        "unmapped_inputs",
                        format!(
                            "{:.1}% of predictions had an input in a unit or code the contract's mapping cannot use ({list}): a FHIR mapping or code set may have changed",
                            100.0 * share
                        ),
                    ));
                }
            }
            if found.is_empty() {
                continue;
            }
            let now = self.clock.now();
            let mut tx = self.store.begin().await?;
            let reason = found
                .iter()
                .map(|(_, r)| r.as_str())
                .collect::<Vec<_>>()
                .join("; ");
            let sent = self
                .trigger_revalidation_in(&mut tx, actor, &d.release.id, &d.model.name, &reason, now)
                .await?;
            tx.commit().await?;
            if sent {
                for (trigger, reason) in found {
                    out.push(TriggerFired {
                        model: d.model.name.clone(),
                        release: d.release.id,
                        trigger,
                        reason,
                        window_start: start,
                        window_end: end,
                    });
                }
            }
        }
        Ok(out)
    }

    /// [`Self::monitor_run`] at `now` as the server's monitor: what `vigil serve` calls on
    /// its schedule.
    pub async fn monitor_tick(&self, now: Timestamp) -> Result<MonitorRun> {
        let actor = UserName::parse("vigil-monitor").map_err(|e| Error::internal(e.to_string()))?;
        self.monitor_run(&actor, now).await
    }

    pub(crate) async fn record_deliveries(
        &self,
        actor: &UserName,
        firing: Option<i64>,
        url: &str,
        attempts: &[Attempt],
    ) -> Result<Value> {
        let now = self.clock.now();
        let delivered = attempts.iter().any(Attempt::delivered);
        let mut tx = self.store.begin().await?;
        for a in attempts {
            tx.insert_delivery(&DeliveryRecord {
                firing_id: firing,
                url: url.to_owned(),
                attempt: i64::from(a.attempt),
                status: a.status.map(i64::from),
                error: a.error.clone(),
                at: now,
            })
            .await?;
        }
        let outcome = json!({ "delivered": delivered, "attempts": attempts });
        let ev = audit_event(
            actor,
            if delivered {
                "monitor.notified"
            } else {
                "monitor.notify_failed"
            },
            firing.map_or_else(|| "monitor".to_owned(), |f| format!("firing:{f}")),
            json!({ "url": url, "delivered": delivered, "attempts": attempts.len(),
                    "last_status": attempts.last().and_then(|a| a.status) }),
        )?;
        tx.append_audit(now, &ev).await?;
        tx.commit().await?;
        Ok(outcome)
    }

    /// Writes a window's verdict, the rule's new state, and — for a new firing — the firing,
    /// its audit event and its action, in one transaction.
    #[allow(clippy::too_many_arguments)]
    async fn commit_verdict(
        &self,
        actor: &UserName,
        policy_version: i64,
        _policy: &MonitorPolicy,
        rule: &Rule,
        d: &Deployment,
        group: &str,
        (ws, we): (Timestamp, Timestamp),
        sv: &SignalValue,
        j: &Judgement,
        actions: &mut Vec<ActionTaken>,
        notifications: &mut Vec<(i64, String, u32, Value)>,
    ) -> Result<(Step, Option<i64>)> {
        let model = &d.model.name;
        let release = d.release.id;
        let mut tx = self.store.begin().await?;
        let state: RuleState = match tx.rule_state(&rule.name, model, &release, group).await? {
            Some(v) => serde_json::from_value(v)
                .map_err(|e| Error::internal(format!("stored state of rule {}: {e}", rule.name)))?,
            None => RuleState::default(),
        };
        let (next, st) = step(rule, &state, j, we);
        if st == Step::AlreadyJudged {
            tx.rollback().await?;
            return Ok((st, None));
        }
        let now = self.clock.now();
        if next != state {
            tx.upsert_rule_state(&RuleStateRecord {
                rule: rule.name.clone(),
                model: model.clone(),
                release,
                group: group.to_owned(),
                state: serde_json::to_value(&next).map_err(|e| Error::internal(e.to_string()))?,
                updated_at: now,
            })
            .await?;
        }
        if !matches!(st, Step::Fire | Step::Repeat | Step::Clear) {
            tx.commit().await?;
            return Ok((st, None));
        }
        let step_name = match st {
            Step::Fire => "fire",
            Step::Repeat => "repeat",
            _ => "clear",
        };
        let key = format!(
            "{}|{step_name}",
            idempotency_key(&rule.name, model, &release.to_string(), group, we)
        );
        if tx.firing_by_key(&key).await?.is_some() {
            tx.rollback().await?;
            return Ok((Step::AlreadyJudged, None));
        }
        let numbers = json!({
            "signal": sv.signal,
            "feature": sv.feature,
            "value": sv.value,
            "n": sv.n,
            "baseline": sv.baseline,
            "judgement": j,
            "threshold": rule.threshold,
            "direction": rule.direction,
            "min_samples": rule.min_samples,
        });
        let mut firing = FiringRecord {
            id: 0,
            idempotency_key: key,
            policy_version,
            rule: rule.name.clone(),
            model: model.clone(),
            release,
            group: group.to_owned(),
            window_start: ws,
            window_end: we,
            step: step_name.to_owned(),
            action: if st == Step::Clear {
                "none".to_owned()
            } else {
                rule.action.kind().to_owned()
            },
            detail: numbers.clone(),
            at: now,
        };
        firing.id = tx.insert_firing(&firing).await.map_err(|e| {
            if e.is_conflict() {
                Error::conflict("already_fired", "another server recorded this firing first")
            } else {
                e.into()
            }
        })?;
        let ev = audit_event(
            actor,
            if st == Step::Clear {
                "monitor.cleared"
            } else {
                "monitor.fired"
            },
            format!("model:{model}"),
            json!({
                "firing": firing.id,
                "rule": rule.name,
                "release": release,
                "group": group,
                "window": { "start": ws, "end": we },
                "policy_version": policy_version,
                "action": firing.action,
                "numbers": numbers,
            }),
        )?;
        tx.append_audit(now, &ev).await?;
        if st == Step::Clear {
            tx.commit().await?;
            return Ok((st, Some(firing.id)));
        }
        let reason = format!(
            "monitor rule `{}` fired on the window {ws} .. {we}: {} = {} (n = {})",
            rule.name,
            sv.signal,
            sv.value.map_or("n/a".into(), |v| format!("{v:.4}")),
            sv.n
        );
        let outcome = match &rule.action {
            Action::Notify { url, retries } => {
                notifications.push((
                    firing.id,
                    url.clone(),
                    *retries,
                    json!({
                        "source": "vigil",
                        "event": "monitor.fired",
                        "firing": firing.id,
                        "rule": rule.name,
                        "model": model,
                        "release": release,
                        "group": group,
                        "window": { "start": ws, "end": we },
                        "numbers": numbers,
                    }),
                ));
                json!({ "pending": true, "url": url })
            }
            Action::Suppress | Action::Disable => {
                let kind = rule.action.kind();
                match self
                    .set_control_in(
                        &mut tx,
                        actor,
                        model,
                        kind,
                        Some(release),
                        Some(firing.id),
                        &reason,
                    )
                    .await?
                {
                    Some(c) => json!({ "control": c.id, "set": true }),
                    None => json!({ "set": false, "note": format!("already under {kind}") }),
                }
            }
            Action::Rollback => {
                match self
                    .apply_move_in(&mut tx, actor, model, Move::Rollback, None, &reason, &[])
                    .await
                {
                    Ok(changes) => json!({
                        "rolled_back": true,
                        "promotions": changes.iter().map(|p| p.id).collect::<Vec<_>>(),
                        "restored": changes.iter().find(|p| p.to == Stage::Production).map(|p| p.release),
                    }),
                    Err(e) => json!({ "rolled_back": false, "error": e.message, "code": e.code }),
                }
            }
            Action::OpenReview { severity } => {
                let inc = self
                    .open_incident_in(
                        &mut tx,
                        actor,
                        &format!("Monitor rule `{}` fired on {model}", rule.name),
                        *severity,
                        Some(model.clone()),
                        vec![release],
                        Some(firing.id),
                        &reason,
                        numbers.clone(),
                    )
                    .await?;
                let sent = self
                    .trigger_revalidation_in(&mut tx, actor, &release, model, &reason, now)
                    .await?;
                json!({ "incident": inc, "revalidation_triggered": sent })
            }
        };
        tx.commit().await?;
        actions.push(ActionTaken {
            firing: firing.id,
            rule: rule.name.clone(),
            model: model.clone(),
            action: rule.action.kind().to_owned(),
            outcome,
        });
        Ok((st, Some(firing.id)))
    }

    /// Flags a release for revalidation (once); false when it already was.
    pub(crate) async fn trigger_revalidation_in(
        &self,
        tx: &mut vigil_store::Tx,
        actor: &UserName,
        release: &ReleaseId,
        model: &ModelName,
        reason: &str,
        now: Timestamp,
    ) -> Result<bool> {
        if tx.revalidation_notice(release, "triggered").await? {
            return Ok(false);
        }
        tx.insert_revalidation_notice(release, "triggered", now, now)
            .await?;
        let ev = audit_event(
            actor,
            "release.revalidation_triggered",
            format!("release:{release}"),
            json!({ "model": model, "reason": reason }),
        )?;
        tx.append_audit(now, &ev).await?;
        Ok(true)
    }

    /// Each production release against its review-by date; reminders and overdue incidents
    /// happen once per release.
    async fn check_revalidation(
        &self,
        actor: &UserName,
        policy: &MonitorPolicy,
        at: Timestamp,
    ) -> Result<Vec<RevalidationView>> {
        let mut out = Vec::new();
        let mut reminders = Vec::new();
        for d in self.production_deployments().await? {
            let interval = policy.review_interval(d.model.risk_tier.get());
            let due = interval.map(|i| d.since.plus(i));
            let status = due.map(|due| review_status(at, due, policy.revalidation.notice));
            let triggered = self
                .store
                .revalidation_notice(&d.release.id, "triggered")
                .await?;
            if let (Some(due), Some(s)) = (due, status) {
                let kind = match s {
                    ReviewStatus::Current => None,
                    ReviewStatus::DueSoon => Some("due_soon"),
                    ReviewStatus::Overdue => Some("overdue"),
                };
                if let Some(kind) = kind {
                    let mut tx = self.store.begin().await?;
                    if !tx.revalidation_notice(&d.release.id, kind).await? {
                        let now = self.clock.now();
                        tx.insert_revalidation_notice(&d.release.id, kind, due, now)
                            .await?;
                        let ev = audit_event(
                            actor,
                            if kind == "overdue" {
                                "release.revalidation_overdue"
                            } else {
                                "release.revalidation_due_soon"
                            },
                            format!("release:{}", d.release.id),
                            json!({ "model": d.model.name, "review_by": due, "live_since": d.since }),
                        )?;
                        tx.append_audit(now, &ev).await?;
                        if kind == "overdue" {
                            self.open_incident_in(
                                &mut tx,
                                actor,
                                &format!("{} is past its review-by date", d.model.name),
                                policy.revalidation.overdue_severity,
                                Some(d.model.name.clone()),
                                vec![d.release.id],
                                None,
                                &format!("review-by date {due} passed"),
                                json!({ "review_by": due }),
                            )
                            .await?;
                        }
                        tx.commit().await?;
                        if let Some(url) = &policy.revalidation.notify {
                            reminders.push((
                                url.clone(),
                                json!({
                                    "source": "vigil",
                                    "event": format!("release.revalidation_{kind}"),
                                    "model": d.model.name,
                                    "release": d.release.id,
                                    "review_by": due,
                                    "owners": { "clinical": d.model.clinical_owner, "technical": d.model.technical_owner },
                                }),
                            ));
                        }
                    } else {
                        tx.rollback().await?;
                    }
                }
            }
            out.push(RevalidationView {
                model: d.model.name.clone(),
                release: d.release.id,
                live_since: d.since,
                review_by: due,
                status,
                triggered,
            });
        }
        for (url, body) in reminders {
            let attempts = webhook::deliver(&url, &body, 3).await;
            self.record_deliveries(actor, None, &url, &attempts).await?;
        }
        Ok(out)
    }

    /// Where each production release stands against its review-by date (for every screen).
    pub async fn revalidation_status(&self) -> Result<Vec<RevalidationView>> {
        let policy = self.current_monitor_policy().await?.map(|p| p.policy);
        let now = self.clock.now();
        let mut out = Vec::new();
        for d in self.production_deployments().await? {
            let due = policy
                .as_ref()
                .and_then(|p| p.review_interval(d.model.risk_tier.get()))
                .map(|i| d.since.plus(i));
            let notice = policy
                .as_ref()
                .map_or(vigil_domain::Duration::from_days(30), |p| {
                    p.revalidation.notice
                });
            out.push(RevalidationView {
                model: d.model.name.clone(),
                release: d.release.id,
                live_since: d.since,
                review_by: due,
                status: due.map(|due| review_status(now, due, notice)),
                triggered: self
                    .store
                    .revalidation_notice(&d.release.id, "triggered")
                    .await?,
            });
        }
        Ok(out)
    }

    /// Every firing of a model (or of all models), oldest first.
    pub async fn list_firings(&self, model: Option<&str>) -> Result<Vec<FiringRecord>> {
        let m = match model {
            Some(m) => Some(self.get_model(m).await?.name),
            None => None,
        };
        Ok(self.store.list_firings(m.as_ref()).await?)
    }

    /// Every webhook delivery attempt.
    pub async fn list_deliveries(&self) -> Result<Vec<DeliveryRecord>> {
        Ok(self.store.list_deliveries().await?)
    }
}
