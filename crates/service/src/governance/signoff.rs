//! Sign-offs bound to the evidence digest, and exceptions that waive one gate until expiry.

use serde_json::json;
use vigil_domain::governance::{Decision, Exception, SignOff};
use vigil_domain::policy::GateName;
use vigil_domain::role::Role;
use vigil_domain::{Timestamp, UserName};

use super::required_text;
use crate::{Error, Result, Vigil, audit_event};

impl Vigil {
    /// Approves or rejects a release in `role`, recording the digest of the evidence on record
    /// now. The release's author is refused, whatever roles they hold.
    pub async fn sign_off(
        &self,
        actor: &UserName,
        release_id: &str,
        role: Role,
        decision: Decision,
        comment: &str,
    ) -> Result<SignOff> {
        let release = self.get_release(release_id).await?;
        let subject = format!("release:{}", release.id);
        self.authorize(actor, &[role], "sign_off", &subject).await?;
        if *actor == release.registered_by {
            let e = Error::forbidden(
                "own_release",
                format!(
                    "`{actor}` registered release {} and cannot sign off on it (separation of duties)",
                    release.id.short()
                ),
            );
            return Err(self
                .refused(
                    actor,
                    "sign_off",
                    &subject,
                    &e,
                    json!({ "role": role, "decision": decision }),
                )
                .await);
        }
        let comment = match decision {
            Decision::Rejected => required_text(
                "comment_required",
                "a comment saying why the release is rejected",
                comment,
            )?,
            Decision::Approved => comment.trim().to_owned(),
        };
        let evidence = self.gather_evidence(&release).await?;
        let digest = evidence.digest();
        let mut s = SignOff {
            id: 0,
            release: release.id,
            role,
            user: actor.clone(),
            decision,
            comment,
            evidence_digest: digest,
            at: self.clock.now(),
        };
        let mut tx = self.store.begin().await?;
        s.id = tx.insert_sign_off(&s).await?;
        let action = match decision {
            Decision::Approved => "release.approved",
            Decision::Rejected => "release.rejected",
        };
        let ev = audit_event(
            actor,
            action,
            &subject,
            json!({
                "sign_off": s.id,
                "role": role,
                "evidence_digest": digest,
                "evaluations": evidence.evaluations.iter().map(|e| json!([e.id, e.digest])).collect::<Vec<_>>(),
                "data_checks": evidence.data_checks.iter().map(|c| json!([c.id, c.digest])).collect::<Vec<_>>(),
                "comment": s.comment,
            }),
        )?;
        tx.append_audit(s.at, &ev).await?;
        tx.commit().await?;
        Ok(s)
    }

    pub async fn list_sign_offs(&self, release_id: &str) -> Result<Vec<SignOff>> {
        let release = self.get_release(release_id).await?;
        Ok(self.store.list_sign_offs(&release.id).await?)
    }

    /// Waives one named gate for one release until `expires_at` (governance). The gate must
    /// exist in the policy in force, and the release's author cannot grant it.
    pub async fn grant_exception(
        &self,
        actor: &UserName,
        release_id: &str,
        gate: &str,
        rationale: &str,
        expires_at: Timestamp,
    ) -> Result<Exception> {
        let release = self.get_release(release_id).await?;
        let subject = format!("release:{}", release.id);
        self.authorize(actor, &[Role::Governance], "exception", &subject)
            .await?;
        let gate =
            GateName::parse(gate).map_err(|e| Error::invalid("invalid_gate", e.to_string()))?;
        let policy = self.current_policy().await?;
        if !policy.policy.has_gate(&gate) {
            return Err(Error::invalid(
                "unknown_gate",
                format!(
                    "the gate policy in force (version {}) has no gate `{gate}` (see `vigil policy show`)",
                    policy.version
                ),
            ));
        }
        let rationale = required_text("rationale_required", "a rationale", rationale)?;
        let now = self.clock.now();
        if expires_at <= now {
            return Err(Error::invalid(
                "expiry_in_past",
                format!("the expiry {expires_at} is not in the future"),
            ));
        }
        if *actor == release.registered_by {
            let e = Error::forbidden(
                "own_release",
                format!(
                    "`{actor}` registered release {} and cannot grant it an exception",
                    release.id.short()
                ),
            );
            return Err(self
                .refused(actor, "exception", &subject, &e, json!({ "gate": gate }))
                .await);
        }
        let mut x = Exception {
            id: 0,
            release: release.id,
            gate,
            rationale,
            granted_by: actor.clone(),
            granted_at: now,
            expires_at,
        };
        let mut tx = self.store.begin().await?;
        x.id = tx.insert_exception(&x).await?;
        let ev = audit_event(
            actor,
            "exception.granted",
            &subject,
            json!({ "exception": x.id, "gate": x.gate, "rationale": x.rationale, "expires_at": x.expires_at }),
        )?;
        tx.append_audit(now, &ev).await?;
        tx.commit().await?;
        Ok(x)
    }

    pub async fn list_exceptions(&self, release_id: &str) -> Result<Vec<Exception>> {
        let release = self.get_release(release_id).await?;
        Ok(self.store.list_exceptions(&release.id).await?)
    }
}
