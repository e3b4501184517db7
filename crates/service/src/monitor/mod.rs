//! Production monitoring that acts: the monitor policy (applied by governance, versioned),
//! reference profiles, signals from prediction records and outcomes, rule runs with their
//! actions (notify, open a review, suppress, roll back, disable), incidents, the
//! revalidation schedule and rehearsals (`simulate`).

mod incidents;
mod outcomes;
pub mod profile;
mod report;
mod run;
pub mod signals;
mod simulate;
mod webhook;

use serde::Serialize;
use serde_json::json;
use vigil_domain::monitor::MonitorPolicy;
use vigil_domain::role::Role;
use vigil_domain::{Digest, ModelName, Timestamp, UserName};
use vigil_store::{ControlRecord, PolicyKind, PolicyRecord};

use crate::{Error, Result, Vigil, audit_event};

pub use incidents::{IncidentView, NewIncident, UpdateIncident};
pub use outcomes::{ImportOutcomes, KeyKind, OutcomeColumns, OutcomeImport, OutcomeRow};
pub use report::{MonitorReport, WindowSignals};
pub use run::{ActionTaken, MonitorRun, RevalidationView, RuleEvaluation};
pub use simulate::{Scenario, SimulateRequest, Simulation};
pub use webhook::{Attempt, deliver};

/// A monitor policy version in force.
#[derive(Clone, Debug, Serialize)]
pub struct AppliedMonitorPolicy {
    pub version: i64,
    pub digest: Digest,
    pub applied_at: Timestamp,
    pub applied_by: UserName,
    pub changed: bool,
    pub source: String,
    pub policy: MonitorPolicy,
}

fn from_record(r: PolicyRecord, changed: bool) -> Result<AppliedMonitorPolicy> {
    let policy = MonitorPolicy::from_toml(&r.source)
        .map_err(|e| Error::internal(format!("stored monitor policy {}: {e}", r.version)))?;
    Ok(AppliedMonitorPolicy {
        version: r.version,
        digest: r.digest,
        applied_at: r.applied_at,
        applied_by: r.applied_by,
        changed,
        source: r.source,
        policy,
    })
}

/// The suppress and disable controls in force on a model's deployment. Serving and CDS
/// honour them: suppressed, a model keeps scoring and recording but shows nothing; disabled,
/// it answers with its fallback.
#[derive(Clone, Debug, Default, Serialize)]
pub struct DeploymentControls {
    pub suppressed: Option<ControlRecord>,
    pub disabled: Option<ControlRecord>,
}

impl DeploymentControls {
    pub fn is_suppressed(&self) -> bool {
        self.suppressed.is_some()
    }
    pub fn is_disabled(&self) -> bool {
        self.disabled.is_some()
    }
}

impl Vigil {
    /// The monitor policy in force, if one has been applied.
    pub async fn current_monitor_policy(&self) -> Result<Option<AppliedMonitorPolicy>> {
        self.store
            .latest_policy(PolicyKind::Monitor)
            .await?
            .map(|r| from_record(r, false))
            .transpose()
    }

    /// Applies a monitor policy as a new version (governance role, audited). Applying the
    /// text in force changes nothing.
    pub async fn apply_monitor_policy(
        &self,
        actor: &UserName,
        source: &str,
    ) -> Result<AppliedMonitorPolicy> {
        self.authorize(
            actor,
            &[Role::Governance],
            "monitor_policy",
            "monitor_policy",
        )
        .await?;
        let policy = MonitorPolicy::from_toml(source)
            .map_err(|e| Error::invalid("invalid_monitor_policy", e.to_string()))?;
        for r in &policy.rules {
            if let Some(m) = &r.model
                && self.find_model(m.as_str()).await?.is_none()
            {
                return Err(Error::invalid(
                    "invalid_monitor_policy",
                    format!(
                        "monitor policy: rule `{}` names model `{m}`, which does not exist",
                        r.name
                    ),
                ));
            }
        }
        let (rec, changed) = self
            .write_policy_version(
                PolicyKind::Monitor,
                actor,
                source,
                "monitor_policy.applied",
                json!({ "rules": policy.rules.len() }),
            )
            .await?;
        from_record(rec, changed)
    }

    /// The controls in force on `model`'s deployment.
    pub async fn deployment_controls(&self, model: &str) -> Result<DeploymentControls> {
        let m = ModelName::parse(model)
            .map_err(|e| Error::invalid("invalid_model_name", e.to_string()))?;
        let mut out = DeploymentControls::default();
        for c in self.store.active_controls(&m).await? {
            match c.control.as_str() {
                "suppress" => out.suppressed = Some(c),
                _ => out.disabled = Some(c),
            }
        }
        Ok(out)
    }

    /// Every control ever set on `model`, lifted or not.
    pub async fn control_history(&self, model: &str) -> Result<Vec<ControlRecord>> {
        let m = self.get_model(model).await?.name;
        Ok(self.store.control_history(&m).await?)
    }

    /// Sets a control by hand (operator role); one already in force is a conflict.
    pub async fn set_control(
        &self,
        actor: &UserName,
        model: &str,
        control: &str,
        reason: &str,
    ) -> Result<ControlRecord> {
        let m = self.get_model(model).await?.name;
        let control = check_control(control)?;
        self.authorize(
            actor,
            &[Role::Operator],
            "deployment",
            &format!("model:{m}"),
        )
        .await?;
        let reason = crate::governance::required_text("reason_required", "a reason", reason)?;
        let mut tx = self.store.begin().await?;
        let rec = self
            .set_control_in(&mut tx, actor, &m, control, None, None, &reason)
            .await?
            .ok_or_else(|| {
                Error::conflict(
                    "control_in_force",
                    format!("model `{m}` is already under `{control}`"),
                )
            })?;
        tx.commit().await?;
        Ok(rec)
    }

    /// Sets a control inside the caller's transaction; `None` when one is already in force.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn set_control_in(
        &self,
        tx: &mut vigil_store::Tx,
        actor: &UserName,
        model: &ModelName,
        control: &str,
        release: Option<vigil_domain::ReleaseId>,
        firing: Option<i64>,
        reason: &str,
    ) -> Result<Option<ControlRecord>> {
        if tx
            .active_controls(model)
            .await?
            .iter()
            .any(|c| c.control == control)
        {
            return Ok(None);
        }
        let now = self.clock.now();
        let mut rec = ControlRecord {
            id: 0,
            model: model.clone(),
            control: control.to_owned(),
            release,
            firing_id: firing,
            reason: reason.to_owned(),
            set_by: actor.clone(),
            set_at: now,
            lifted_by: None,
            lifted_at: None,
        };
        rec.id = tx.insert_control(&rec).await?;
        let action = if control == "suppress" {
            "deployment.suppressed"
        } else {
            "deployment.disabled"
        };
        let ev = audit_event(
            actor,
            action,
            format!("model:{model}"),
            json!({ "control": rec.id, "release": release, "firing": firing, "reason": reason }),
        )?;
        tx.append_audit(now, &ev).await?;
        Ok(Some(rec))
    }

    /// Lifts the control in force (operator role), with a reason.
    pub async fn lift_control(
        &self,
        actor: &UserName,
        model: &str,
        control: &str,
        reason: &str,
    ) -> Result<ControlRecord> {
        let m = self.get_model(model).await?.name;
        let control = check_control(control)?;
        self.authorize(
            actor,
            &[Role::Operator],
            "deployment",
            &format!("model:{m}"),
        )
        .await?;
        let reason = crate::governance::required_text("reason_required", "a reason", reason)?;
        let mut tx = self.store.begin().await?;
        let Some(mut c) = tx
            .active_controls(&m)
            .await?
            .into_iter()
            .find(|c| c.control == control)
        else {
            return Err(Error::not_found(
                "no_control",
                format!("model `{m}` is not under `{control}`"),
            ));
        };
        let now = self.clock.now();
        tx.lift_control(c.id, actor, now).await?;
        let ev = audit_event(
            actor,
            "deployment.control_lifted",
            format!("model:{m}"),
            json!({ "control": c.id, "kind": control, "reason": reason }),
        )?;
        tx.append_audit(now, &ev).await?;
        tx.commit().await?;
        c.lifted_at = Some(now);
        c.lifted_by = Some(actor.clone());
        Ok(c)
    }
}

fn check_control(c: &str) -> Result<&'static str> {
    match c {
        "suppress" => Ok("suppress"),
        "disable" => Ok("disable"),
        _ => Err(Error::invalid(
            "invalid_control",
            format!("`{c}` is not a deployment control: suppress or disable"),
        )),
    }
}
