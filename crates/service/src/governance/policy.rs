//! Gate policies: applying a new version (governance, audited) and reading the current one.

use serde::Serialize;
use serde_json::json;
use vigil_domain::policy::GatePolicy;
use vigil_domain::role::Role;
use vigil_domain::{Digest, Timestamp, UserName};
use vigil_store::{PolicyKind, PolicyRecord};

use crate::{Error, Result, Vigil, audit_event};

/// The policy shipped with Vigil, applied at `vigil init` when a store has none.
pub const DEFAULT_POLICY: &str = include_str!("../../../../policies/default.toml");

/// A policy version in force.
#[derive(Clone, Debug, Serialize)]
pub struct AppliedPolicy {
    /// 0: the built-in default, not yet applied to this store.
    pub version: i64,
    pub digest: Digest,
    pub applied_at: Option<Timestamp>,
    pub applied_by: Option<UserName>,
    /// Whether this call wrote a new version (false: identical to the one in force).
    pub changed: bool,
    pub source: String,
    pub policy: GatePolicy,
}

fn from_record(r: PolicyRecord, changed: bool) -> Result<AppliedPolicy> {
    let policy = GatePolicy::from_toml(&r.source)
        .map_err(|e| Error::internal(format!("stored gate policy {}: {e}", r.version)))?;
    Ok(AppliedPolicy {
        version: r.version,
        digest: r.digest,
        applied_at: Some(r.applied_at),
        applied_by: Some(r.applied_by),
        changed,
        source: r.source,
        policy,
    })
}

impl Vigil {
    /// The policy in force: the latest applied version, or the built-in default.
    pub async fn current_policy(&self) -> Result<AppliedPolicy> {
        match self.store.latest_policy(PolicyKind::Gate).await? {
            Some(r) => from_record(r, false),
            None => Ok(AppliedPolicy {
                version: 0,
                digest: Digest::of(DEFAULT_POLICY.as_bytes()),
                applied_at: None,
                applied_by: None,
                changed: false,
                source: DEFAULT_POLICY.to_owned(),
                policy: GatePolicy::from_toml(DEFAULT_POLICY)
                    .map_err(|e| Error::internal(format!("built-in policy: {e}")))?,
            }),
        }
    }

    /// Applies a policy file as a new version (governance role). Applying the text already
    /// in force changes nothing.
    pub async fn apply_policy(&self, actor: &UserName, source: &str) -> Result<AppliedPolicy> {
        self.authorize(actor, &[Role::Governance], "policy", "policy")
            .await?;
        self.write_policy(actor, source).await
    }

    pub(crate) async fn write_policy(
        &self,
        actor: &UserName,
        source: &str,
    ) -> Result<AppliedPolicy> {
        GatePolicy::from_toml(source)
            .map_err(|e| Error::invalid("invalid_policy", e.to_string()))?;
        let (rec, changed) = self
            .write_policy_version(PolicyKind::Gate, actor, source, "policy.applied", json!({}))
            .await?;
        from_record(rec, changed)
    }

    /// Writes `source` as the next version of a versioned policy, with its audit event
    /// (`action` on the subject `policy` or `monitor_policy`, payload `version`, `digest` and
    /// `extra`'s fields), in one transaction under the write lock. The text already in force
    /// is returned unchanged (`false`) and writes nothing.
    pub(crate) async fn write_policy_version(
        &self,
        kind: PolicyKind,
        actor: &UserName,
        source: &str,
        action: &str,
        extra: serde_json::Value,
    ) -> Result<(PolicyRecord, bool)> {
        let digest = Digest::of(source.as_bytes());
        let mut tx = self.store.begin().await?;
        let latest = tx.latest_policy(kind).await?;
        if let Some(l) = latest.clone()
            && l.digest == digest
        {
            tx.rollback().await?;
            return Ok((l, false));
        }
        let rec = PolicyRecord {
            version: latest.map_or(1, |l| l.version + 1),
            digest,
            source: source.to_owned(),
            applied_at: self.clock.now(),
            applied_by: actor.clone(),
        };
        tx.insert_policy(kind, &rec).await?;
        let mut payload = json!({ "version": rec.version, "digest": digest });
        if let (Some(p), serde_json::Value::Object(extra)) = (payload.as_object_mut(), extra) {
            p.extend(extra);
        }
        let subject = match kind {
            PolicyKind::Gate => "policy",
            PolicyKind::Monitor => "monitor_policy",
        };
        let ev = audit_event(actor, action, subject, payload)?;
        tx.append_audit(rec.applied_at, &ev).await?;
        tx.commit().await?;
        Ok((rec, true))
    }

    /// Applies the built-in policy when the store has none (at `vigil init`).
    pub async fn ensure_policy(&self, actor: &UserName) -> Result<Option<AppliedPolicy>> {
        if self.store.latest_policy(PolicyKind::Gate).await?.is_some() {
            return Ok(None);
        }
        self.write_policy(actor, DEFAULT_POLICY).await.map(Some)
    }
}
