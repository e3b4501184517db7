//! Promotion through the gates, rollback (and its drill), retirement and promotion history.
//!
//! The stage check, the gate check's outcome and the writes happen under the store's write
//! lock, so two operators promoting at the same moment are serialised: the second sees the
//! first's result and is refused, and the unique partial indexes back this up.

use serde::Serialize;
use serde_json::json;
use vigil_domain::governance::{
    ChangeKind, LifecycleError, ModelLifecycle, Move, Promotion, StageChange,
};
use vigil_domain::role::Role;
use vigil_domain::{ModelName, Release, ReleaseId, Stage, Timestamp, UserName};
use vigil_store::RollbackDrill;

use super::{GateReport, is_refusal, required_text};
use crate::{Error, Result, Vigil, audit_event};

/// What a promotion, rollback or retirement did.
#[derive(Clone, Debug, Serialize)]
pub struct PromotionOutcome {
    pub changes: Vec<Promotion>,
    /// The gates judged (empty for moves that need none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gates: Option<GateReport>,
    /// For a drill: what a rollback would have done; nothing changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drill: Option<RollbackDrill>,
}

/// What was live at a moment.
#[derive(Clone, Debug, Serialize)]
pub struct LiveAt {
    pub at: Timestamp,
    pub production: Option<ReleaseId>,
    pub shadow: Option<ReleaseId>,
}

#[derive(Clone, Debug, Serialize)]
pub struct HistoryReport {
    pub model: ModelName,
    /// Every stage change, oldest first (up to `live_at.at` when asked about a moment).
    pub promotions: Vec<Promotion>,
    pub drills: Vec<RollbackDrill>,
    pub live_at: LiveAt,
}

fn lifecycle_error(e: LifecycleError) -> Error {
    let m = e.to_string();
    match e {
        LifecycleError::NotAllowed { .. } => Error::precondition("transition_not_allowed", m),
        LifecycleError::ShadowOccupied { .. } => Error::conflict("shadow_occupied", m),
        LifecycleError::NoProduction => Error::precondition("no_production_release", m),
        LifecycleError::NoPrevious => Error::precondition("no_previous_release", m),
    }
}

fn change_action(k: ChangeKind) -> &'static str {
    match k {
        ChangeKind::Promoted => "release.promoted",
        ChangeKind::Demoted => "release.demoted",
        ChangeKind::Displaced => "release.displaced",
        ChangeKind::RolledBack => "deployment.rolled_back",
        ChangeKind::Restored => "release.restored",
        ChangeKind::Retired => "release.retired",
    }
}

/// Who may move a release into `to` from `from`.
fn roles_for(from: Stage, to: Stage) -> &'static [Role] {
    match to {
        Stage::Retired => &[Role::Operator, Role::Governance],
        _ if to < from => &[Role::Operator, Role::Governance],
        Stage::Validated => &[Role::DataScientist, Role::Governance],
        Stage::Approved => &[Role::Governance],
        _ => &[Role::Operator],
    }
}

impl Vigil {
    /// Moves a release to `to`, if every gate is met or covered by an unexpired exception.
    pub async fn promote(
        &self,
        actor: &UserName,
        release_id: &str,
        to: Stage,
        reason: &str,
    ) -> Result<PromotionOutcome> {
        let release = self.get_release(release_id).await?;
        let subject = format!("release:{}", release.id);
        let from = self.release_stage(&release).await?;
        self.authorize(actor, roles_for(from, to), "promotion", &subject)
            .await?;
        let reason = required_text("reason_required", "a reason", reason)?;
        if to == Stage::Retired {
            return self.retire(actor, release_id, &reason).await;
        }
        let report = self.gate_report(&release, to).await?;
        if !report.passes() {
            let unmet: Vec<String> = report
                .unmet()
                .iter()
                .map(|g| format!("{} ({})", g.gate, g.detail))
                .collect();
            let e = Error::precondition(
                "gates_unmet",
                format!(
                    "release {} cannot move to {to}: {} gate(s) unmet: {}",
                    release.id.short(),
                    unmet.len(),
                    unmet.join("; ")
                ),
            );
            let names: Vec<_> = report.unmet().iter().map(|g| g.gate.clone()).collect();
            return Err(self
                .refused(
                    actor,
                    "promotion",
                    &subject,
                    &e,
                    json!({ "to": to, "unmet": names }),
                )
                .await);
        }
        let exceptions: Vec<i64> = report
            .gates
            .iter()
            .filter_map(|g| g.exception.as_ref().map(|x| x.id))
            .collect();
        let changes = self
            .apply_move(
                actor,
                &release.manifest.model,
                Move::To(release.id, to),
                Some(from),
                &reason,
                &exceptions,
            )
            .await;
        match changes {
            Ok(changes) => Ok(PromotionOutcome {
                changes,
                gates: Some(report),
                drill: None,
            }),
            Err(e) if is_refusal(&e) => Err(self
                .refused(actor, "promotion", &subject, &e, json!({ "to": to }))
                .await),
            Err(e) => Err(e),
        }
    }

    /// Retires a release: final, from any stage.
    pub async fn retire(
        &self,
        actor: &UserName,
        release_id: &str,
        reason: &str,
    ) -> Result<PromotionOutcome> {
        let release = self.get_release(release_id).await?;
        let subject = format!("release:{}", release.id);
        self.authorize(
            actor,
            roles_for(Stage::Registered, Stage::Retired),
            "promotion",
            &subject,
        )
        .await?;
        let reason = required_text("reason_required", "a reason", reason)?;
        match self
            .apply_move(
                actor,
                &release.manifest.model,
                Move::Retire(release.id),
                None,
                &reason,
                &[],
            )
            .await
        {
            Ok(changes) => Ok(PromotionOutcome {
                changes,
                gates: None,
                drill: None,
            }),
            Err(e) if is_refusal(&e) => Err(self
                .refused(
                    actor,
                    "promotion",
                    &subject,
                    &e,
                    json!({ "to": Stage::Retired }),
                )
                .await),
            Err(e) => Err(e),
        }
    }

    /// Puts the previous production release of `model` back into production and sends the
    /// current one to revalidation. A drill checks that this can be done and records the
    /// rehearsal, changing nothing.
    pub async fn rollback(
        &self,
        actor: &UserName,
        model: &str,
        reason: &str,
        drill: bool,
    ) -> Result<PromotionOutcome> {
        let model = self.get_model(model).await?.name;
        let subject = format!("model:{model}");
        self.authorize(actor, &[Role::Operator], "deployment", &subject)
            .await?;
        let reason = required_text("reason_required", "a reason", reason)?;
        if drill {
            return match self.record_drill(actor, &model, &reason).await {
                Ok(d) => Ok(PromotionOutcome {
                    changes: Vec::new(),
                    gates: None,
                    drill: Some(d),
                }),
                Err(e) if is_refusal(&e) => Err(self
                    .refused(actor, "deployment", &subject, &e, json!({ "drill": true }))
                    .await),
                Err(e) => Err(e),
            };
        }
        match self
            .apply_move(actor, &model, Move::Rollback, None, &reason, &[])
            .await
        {
            Ok(changes) => Ok(PromotionOutcome {
                changes,
                gates: None,
                drill: None,
            }),
            Err(e) if is_refusal(&e) => Err(self
                .refused(actor, "deployment", &subject, &e, json!({}))
                .await),
            Err(e) => Err(e),
        }
    }

    async fn record_drill(
        &self,
        actor: &UserName,
        model: &ModelName,
        reason: &str,
    ) -> Result<RollbackDrill> {
        let mut tx = self.store.begin().await?;
        let l = ModelLifecycle::replay(&tx.list_promotions(model).await?);
        // With a release in production the drill rehearses putting the previous one back;
        // before the first go-live it rehearses withdrawing the shadow candidate.
        let (from, to) = match l.in_stage(Stage::Production) {
            Some(p) => (
                p,
                Some(
                    l.rollback_target()
                        .ok_or_else(|| lifecycle_error(LifecycleError::NoPrevious))?,
                ),
            ),
            None => match l.in_stage(Stage::Shadow) {
                Some(s) => (s, None),
                None => return Err(lifecycle_error(LifecycleError::NoProduction)),
            },
        };
        let mut d = RollbackDrill {
            id: 0,
            model: model.clone(),
            from_release: from,
            to_release: to,
            reason: reason.to_owned(),
            actor: actor.clone(),
            at: self.clock.now(),
        };
        d.id = tx.insert_rollback_drill(&d).await?;
        let ev = audit_event(
            actor,
            "deployment.rollback_rehearsed",
            format!("model:{model}"),
            json!({ "drill": d.id, "from_release": d.from_release, "to_release": d.to_release, "reason": d.reason }),
        )?;
        tx.append_audit(d.at, &ev).await?;
        tx.commit().await?;
        Ok(d)
    }

    /// Plans and writes one move in one transaction: every stage change, its promotion
    /// record and its audit event, or nothing. `expect_from` guards against the release
    /// having moved since its gates were judged.
    async fn apply_move(
        &self,
        actor: &UserName,
        model: &ModelName,
        mv: Move,
        expect_from: Option<Stage>,
        reason: &str,
        exceptions: &[i64],
    ) -> Result<Vec<Promotion>> {
        let mut tx = self.store.begin().await?;
        let out = self
            .apply_move_in(&mut tx, actor, model, mv, expect_from, reason, exceptions)
            .await?;
        tx.commit().await?;
        Ok(out)
    }

    /// [`Self::apply_move`] inside the caller's transaction (a monitor's rollback commits
    /// with the firing that caused it).
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn apply_move_in(
        &self,
        tx: &mut vigil_store::Tx,
        actor: &UserName,
        model: &ModelName,
        mv: Move,
        expect_from: Option<Stage>,
        reason: &str,
        exceptions: &[i64],
    ) -> Result<Vec<Promotion>> {
        let l = ModelLifecycle::replay(&tx.list_promotions(model).await?);
        if let (Move::To(r, to), Some(f)) = (mv, expect_from)
            && l.stage(&r) != f
        {
            return Err(Error::conflict(
                "stage_changed",
                format!(
                    "release {} moved to {} while its gates for {to} were being judged: look again",
                    r.short(),
                    l.stage(&r)
                ),
            ));
        }
        let plan: Vec<StageChange> = l.plan(mv).map_err(lifecycle_error)?;
        let now = self.clock.now();
        let mut out = Vec::with_capacity(plan.len());
        for c in &plan {
            tx.set_stage(&c.release, model, c.to, now)
                .await
                .map_err(|e| {
                    if e.is_conflict() {
                        Error::conflict("stage_occupied", e.to_string())
                    } else {
                        e.into()
                    }
                })?;
            let mut p = Promotion {
                id: 0,
                model: model.clone(),
                release: c.release,
                from: c.from,
                to: c.to,
                kind: c.kind,
                related: c.related,
                reason: reason.to_owned(),
                exceptions: if c.kind == ChangeKind::Promoted {
                    exceptions.to_vec()
                } else {
                    Vec::new()
                },
                actor: actor.clone(),
                at: now,
            };
            p.id = tx.insert_promotion(&p).await?;
            let ev = audit_event(
                actor,
                change_action(c.kind),
                format!("release:{}", c.release),
                json!({
                    "promotion": p.id,
                    "model": model,
                    "from": c.from,
                    "to": c.to,
                    "related_release": c.related,
                    "reason": reason,
                    "exceptions": p.exceptions,
                }),
            )?;
            tx.append_audit(now, &ev).await?;
            out.push(p);
        }
        Ok(out)
    }

    /// Every promotion of `model`'s releases; with `at`, only those up to that moment, and
    /// what was in production and shadow then.
    pub async fn history(&self, model: &str, at: Option<Timestamp>) -> Result<HistoryReport> {
        let model = self.get_model(model).await?.name;
        let mut promotions = self.store.list_promotions(&model).await?;
        let mut drills = self.store.list_rollback_drills(&model).await?;
        let moment = at.unwrap_or_else(|| self.clock.now());
        promotions.retain(|p| p.at <= moment);
        drills.retain(|d| d.at <= moment);
        let l = ModelLifecycle::replay(&promotions);
        Ok(HistoryReport {
            model,
            live_at: LiveAt {
                at: moment,
                production: l.in_stage(Stage::Production),
                shadow: l.in_stage(Stage::Shadow),
            },
            promotions,
            drills,
        })
    }

    /// The releases of a model with their stage.
    pub async fn list_release_stages(&self, model: &str) -> Result<Vec<(Release, Stage)>> {
        let model = self.get_model(model).await?.name;
        let stages = self.store.list_stages(&model).await?;
        let releases = self.store.list_releases(Some(&model)).await?;
        Ok(releases
            .into_iter()
            .map(|r| {
                let s = stages
                    .iter()
                    .find(|(id, _, _)| *id == r.id)
                    .map_or(Stage::Registered, |(_, s, _)| *s);
                (r, s)
            })
            .collect())
    }
}
