//! The evidence behind gates: what the store holds about a release, plus what other
//! capabilities record (evaluations, data checks, scored predictions), read through
//! [`EvidenceSource`] so that a gate needing them is simply unmet until they exist.

use serde::Serialize;
use vigil_domain::governance::ReviewSummary;
use vigil_domain::policy::{
    DataCheckSummary, EvaluationSummary, Evidence, GateResult, GateStatus, ShadowStats,
    evaluate_gates,
};
use vigil_domain::{Digest, Release, ReleaseId, Stage, Timestamp};

use super::BoxFuture;
use crate::{Result, Vigil};

/// Evidence recorded by other parts of Vigil.
pub trait EvidenceSource: Send + Sync {
    /// Evaluations of the release, any order.
    fn evaluations<'a>(
        &'a self,
        release: &'a ReleaseId,
    ) -> BoxFuture<'a, Result<Vec<EvaluationSummary>>>;
    /// Data check runs on the datasets the release was trained and evaluated on.
    fn data_checks<'a>(
        &'a self,
        release: &'a ReleaseId,
    ) -> BoxFuture<'a, Result<Vec<DataCheckSummary>>>;
    /// Predictions scored by the release in shadow mode since `since`.
    fn shadow_predictions<'a>(
        &'a self,
        release: &'a ReleaseId,
        since: Timestamp,
    ) -> BoxFuture<'a, Result<u64>>;
}

/// No evaluations, checks or predictions recorded yet.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoEvidence;

impl EvidenceSource for NoEvidence {
    fn evaluations<'a>(
        &'a self,
        _: &'a ReleaseId,
    ) -> BoxFuture<'a, Result<Vec<EvaluationSummary>>> {
        Box::pin(async { Ok(Vec::new()) })
    }
    fn data_checks<'a>(&'a self, _: &'a ReleaseId) -> BoxFuture<'a, Result<Vec<DataCheckSummary>>> {
        Box::pin(async { Ok(Vec::new()) })
    }
    fn shadow_predictions<'a>(
        &'a self,
        _: &'a ReleaseId,
        _: Timestamp,
    ) -> BoxFuture<'a, Result<u64>> {
        Box::pin(async { Ok(0) })
    }
}

/// Every gate for one move of one release, with the evidence behind each.
#[derive(Clone, Debug, Serialize)]
pub struct GateReport {
    pub release: ReleaseId,
    pub model: vigil_domain::ModelName,
    pub risk_tier: vigil_domain::RiskTier,
    pub from: Stage,
    pub to: Stage,
    pub policy_version: i64,
    pub evidence_digest: Digest,
    pub gates: Vec<GateResult>,
}

impl GateReport {
    /// Whether every gate is met or covered.
    pub fn passes(&self) -> bool {
        self.gates.iter().all(|g| g.status != GateStatus::Unmet)
    }
    pub fn unmet(&self) -> Vec<&GateResult> {
        self.gates
            .iter()
            .filter(|g| g.status == GateStatus::Unmet)
            .collect()
    }
}

impl Vigil {
    /// Replaces where evaluations, data checks and predictions are read from.
    pub fn with_evidence(mut self, source: std::sync::Arc<dyn EvidenceSource>) -> Vigil {
        self.evidence = source;
        self
    }

    /// Gathers everything on record for `release` now.
    pub async fn gather_evidence(&self, release: &Release) -> Result<Evidence> {
        let model = self.get_model(release.manifest.model.as_str()).await?;
        let mut evaluations = self.evidence.evaluations(&release.id).await?;
        evaluations.sort_by_key(|e| e.at);
        let data_checks = self.evidence.data_checks(&release.id).await?;
        let stages = self.store.list_stages(&model.name).await?;
        let shadow = match stages
            .iter()
            .find(|(r, s, _)| *r == release.id && *s == Stage::Shadow)
        {
            Some((_, _, since)) => Some(ShadowStats {
                since: *since,
                scored: self
                    .evidence
                    .shadow_predictions(&release.id, *since)
                    .await?,
            }),
            None => None,
        };
        let drills = self.store.list_rollback_drills(&model.name).await?;
        let reviews = self.store.list_case_reviews(&release.id).await?;
        let u = &model.intended_use;
        let intended_use_complete = [
            &u.target_population,
            &u.inputs,
            &u.output,
            &u.who_acts,
            &u.when_uncertain,
            &u.when_unavailable,
        ]
        .iter()
        .all(|s| !s.trim().is_empty())
            && !u.limitations.is_empty();
        Ok(Evidence {
            author: release.registered_by.clone(),
            registered_at: release.registered_at,
            intended_use_complete,
            owners_named: !model.clinical_owner.trim().is_empty()
                && !model.technical_owner.trim().is_empty(),
            evaluations,
            data_checks,
            shadow,
            equivalence: release.manifest.equivalence.clone(),
            rollback_drills: drills.iter().map(|d| d.at).collect(),
            rehearsals: self
                .store
                .list_rehearsals(&model.name)
                .await?
                .into_iter()
                .map(|r| (r.scenario, r.at))
                .collect(),
            review: ReviewSummary::of(&reviews),
            sign_offs: self.store.list_sign_offs(&release.id).await?,
            exceptions: self.store.list_exceptions(&release.id).await?,
        })
    }

    /// The stage a release is in now.
    pub async fn release_stage(&self, release: &Release) -> Result<Stage> {
        let stages = self.store.list_stages(&release.manifest.model).await?;
        Ok(stages
            .into_iter()
            .find(|(r, _, _)| *r == release.id)
            .map_or(Stage::Registered, |(_, s, _)| s))
    }

    /// Every gate the policy sets for moving `release` into `to`, judged on the evidence now.
    pub async fn gates(&self, release_id: &str, to: Stage) -> Result<GateReport> {
        let release = self.get_release(release_id).await?;
        self.gate_report(&release, to).await
    }

    /// The gates of every forward stage (validated, approved, shadow, production), each judged
    /// on the evidence now, whatever stage the release has reached: what a reader of a
    /// release's record wants to see, including for a release already in production.
    pub async fn gate_reports(&self, release_id: &str) -> Result<Vec<GateReport>> {
        let release = self.get_release(release_id).await?;
        let model = self.get_model(release.manifest.model.as_str()).await?;
        let from = self.release_stage(&release).await?;
        let policy = self.current_policy().await?;
        let evidence = self.gather_evidence(&release).await?;
        let now = self.clock.now();
        Ok([
            Stage::Validated,
            Stage::Approved,
            Stage::Shadow,
            Stage::Production,
        ]
        .into_iter()
        .map(|to| GateReport {
            release: release.id,
            model: model.name.clone(),
            risk_tier: model.risk_tier,
            from,
            to,
            policy_version: policy.version,
            evidence_digest: evidence.digest(),
            gates: evaluate_gates(policy.policy.gates(model.risk_tier, to), &evidence, now),
        })
        .collect())
    }

    pub(crate) async fn gate_report(&self, release: &Release, to: Stage) -> Result<GateReport> {
        let model = self.get_model(release.manifest.model.as_str()).await?;
        let from = self.release_stage(release).await?;
        let policy = self.current_policy().await?;
        let evidence = self.gather_evidence(release).await?;
        let now = self.clock.now();
        // Gates guard forward moves only; going back never waits for evidence.
        let gates = if to > from && to != Stage::Retired {
            evaluate_gates(policy.policy.gates(model.risk_tier, to), &evidence, now)
        } else {
            Vec::new()
        };
        Ok(GateReport {
            release: release.id,
            model: model.name,
            risk_tier: model.risk_tier,
            from,
            to,
            policy_version: policy.version,
            evidence_digest: evidence.digest(),
            gates,
        })
    }
}
