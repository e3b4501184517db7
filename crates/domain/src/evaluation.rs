//! Evaluations: a release scored on a dataset snapshot, identified by the digest of what was
//! evaluated, how, and the report it produced.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::canonical::canonical_json;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::ids::{ReleaseId, SnapshotId, UserName};
use crate::release::Pinned;
use crate::time::Timestamp;

pub const EVALUATION_SCHEMA: &str = "vigil.evaluation/v1";

/// An evaluation's id: the SHA-256 of its canonical [`EvaluationManifest`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EvaluationId(Digest);

impl EvaluationId {
    pub fn from_digest(d: Digest) -> Self {
        EvaluationId(d)
    }
    pub fn digest(&self) -> Digest {
        self.0
    }
    pub fn parse(s: &str) -> Result<Self> {
        Digest::parse(s)
            .map(EvaluationId)
            .map_err(|_| Error::invalid(format!("`{s}` is not an evaluation id")))
    }
    /// The first 12 hex characters, for human output.
    pub fn short(&self) -> String {
        self.0.to_hex()[..12].to_owned()
    }
}

impl fmt::Display for EvaluationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for EvaluationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EvaluationId({})", self.0)
    }
}

/// What an evaluation pins. It holds no time and no actor, so evaluating the same release on
/// the same snapshot with the same options gives the same id (the statistics are
/// deterministic: bootstrap replicates come from the seed in `options`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EvaluationManifest {
    pub schema: String,
    pub release: ReleaseId,
    pub dataset: SnapshotId,
    /// The options the evaluation ran with (label column, positive value, subgroups, time
    /// column and period, thresholds, bootstrap), as JSON.
    pub options: serde_json::Value,
    /// The JSON report (canonical JSON).
    pub report: Pinned,
}

impl EvaluationManifest {
    pub fn canonical(&self) -> Result<String> {
        if self.schema != EVALUATION_SCHEMA {
            return Err(Error::invalid(format!(
                "evaluation schema `{}` is not supported",
                self.schema
            )));
        }
        canonical_json(self)
    }

    pub fn id(&self) -> Result<EvaluationId> {
        Ok(EvaluationId(Digest::of(self.canonical()?.as_bytes())))
    }
}

/// A recorded evaluation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    pub id: EvaluationId,
    #[serde(flatten)]
    pub manifest: EvaluationManifest,
    /// The HTML report rendered from the JSON report.
    pub html: Pinned,
    /// Headline figures for listings (n, prevalence, AUROC, AUPRC, Brier, abstentions).
    pub summary: serde_json::Value,
    pub created_at: Timestamp,
    pub created_by: UserName,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_is_the_digest_of_the_canonical_manifest() {
        let d = Digest::of(b"x");
        let m = EvaluationManifest {
            schema: EVALUATION_SCHEMA.into(),
            release: ReleaseId::from_digest(d),
            dataset: SnapshotId::from_digest(d),
            options: serde_json::json!({"label_col": "outcome", "b": 1}),
            report: Pinned { digest: d, size: 1 },
        };
        let id = m.id().expect("valid manifest");
        assert_eq!(
            id.digest(),
            Digest::of(m.canonical().expect("canonical").as_bytes())
        );
        let mut other = m.clone();
        other.options = serde_json::json!({"label_col": "other"});
        assert_ne!(other.id().expect("valid"), id);
    }
}
