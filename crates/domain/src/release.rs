//! Releases: immutable versions of a model, identified by the digest of their manifest.

use serde::{Deserialize, Serialize};

use crate::canonical::canonical_json;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::ids::{ModelName, ReleaseId, SnapshotId, UserName};
use crate::time::Timestamp;

pub const RELEASE_SCHEMA: &str = "vigil.release/v1";

/// A pinned artifact: its digest and size in bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pinned {
    pub digest: Digest,
    pub size: u64,
}

/// Everything a release pins. Its canonical JSON encoding is hashed into the release id, so
/// it holds nothing that varies between two registrations of the same bytes (no time, no
/// actor).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReleaseManifest {
    pub schema: String,
    pub model: ModelName,
    /// The model artifact (ONNX).
    pub artifact: Pinned,
    pub artifact_format: String,
    /// The feature contract file.
    pub contract: Pinned,
    pub training_data: SnapshotId,
    pub code_commit: Option<String>,
    /// The environment lockfile (e.g. `requirements.txt` with pinned versions).
    pub environment: Option<Pinned>,
    /// Hyperparameters as JSON.
    pub hyperparameters: Option<Pinned>,
    /// Decision thresholds on the score, ascending.
    pub thresholds: Vec<f64>,
    pub changelog: Option<String>,
    /// The equivalence check passed at registration: the training framework's reference
    /// predictions and how closely the stored artifact reproduced them. Absent for releases
    /// registered without reference predictions (and then left out of the canonical form, so
    /// their ids are unchanged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub equivalence: Option<Equivalence>,
}

/// The result of the equivalence check, pinned into the release it admitted.
///
/// Recomputing it gives the same numbers: the executor is deterministic and both the
/// reference file and the artifact are stored by digest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Equivalence {
    /// The reference predictions file (CSV of inputs by feature name and a `probability`).
    pub reference: Pinned,
    pub rows: u64,
    /// Largest absolute difference between the framework's and Vigil's probability.
    pub max_abs_diff: f64,
    /// 1-based data row (header not counted) where it occurred, and the two probabilities.
    pub worst_row: u64,
    pub worst_expected: f64,
    pub worst_actual: f64,
    /// The largest difference accepted.
    pub tolerance: f64,
}

impl ReleaseManifest {
    /// Checks the manifest's own rules and returns its canonical encoding.
    pub fn canonical(&self) -> Result<String> {
        if self.schema != RELEASE_SCHEMA {
            return Err(Error::invalid(format!(
                "release schema `{}` is not supported",
                self.schema
            )));
        }
        for (i, t) in self.thresholds.iter().enumerate() {
            if !(t.is_finite() && *t > 0.0 && *t < 1.0) {
                return Err(Error::invalid(format!(
                    "threshold {t} must be a probability strictly between 0 and 1"
                )));
            }
            if i > 0 && self.thresholds[i - 1] >= *t {
                return Err(Error::invalid("thresholds must be distinct and ascending"));
            }
        }
        if let Some(c) = &self.code_commit
            && (c.len() < 7 || c.len() > 64 || !c.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            return Err(Error::invalid(format!(
                "code commit `{c}` is not a commit hash (7 to 64 hex characters)"
            )));
        }
        canonical_json(self)
    }

    /// The release id: SHA-256 of the canonical manifest.
    pub fn id(&self) -> Result<ReleaseId> {
        Ok(ReleaseId::from_digest(Digest::of(
            self.canonical()?.as_bytes(),
        )))
    }
}

/// The decision a score takes under a release's ascending thresholds: `below:T1` under the
/// lowest, else `at_or_above:Tk` for the highest threshold reached; `None` without thresholds.
/// Thresholds are printed in their shortest round-tripping form (`0.15`).
pub fn decision(thresholds: &[f64], score: f64) -> Option<String> {
    let first = thresholds.first()?;
    Some(match thresholds.iter().rev().find(|t| score >= **t) {
        Some(t) => format!("at_or_above:{t}"),
        None => format!("below:{first}"),
    })
}

/// A registered release.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Release {
    pub id: ReleaseId,
    pub manifest: ReleaseManifest,
    pub registered_at: Timestamp,
    pub registered_by: UserName,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> ReleaseManifest {
        ReleaseManifest {
            schema: RELEASE_SCHEMA.into(),
            model: ModelName::parse("sepsis-risk").unwrap(),
            artifact: Pinned {
                digest: Digest::of(b"onnx"),
                size: 4,
            },
            artifact_format: "onnx".into(),
            contract: Pinned {
                digest: Digest::of(b"toml"),
                size: 4,
            },
            training_data: SnapshotId::from_digest(Digest::of(b"csv")),
            code_commit: Some("0123abcd".into()),
            environment: None,
            hyperparameters: None,
            thresholds: vec![0.2, 0.5],
            changelog: Some("first".into()),
            equivalence: None,
        }
    }

    #[test]
    fn id_is_stable_and_changes_with_any_field() {
        let m = manifest();
        assert_eq!(m.id().unwrap(), manifest().id().unwrap());
        let mut other = manifest();
        other.changelog = Some("first!".into());
        assert_ne!(m.id().unwrap(), other.id().unwrap());
    }

    #[test]
    fn absent_equivalence_leaves_the_canonical_form_unchanged() {
        let m = manifest();
        assert!(!m.canonical().unwrap().contains("equivalence"));
        let mut with = manifest();
        with.equivalence = Some(Equivalence {
            reference: Pinned {
                digest: Digest::of(b"ref"),
                size: 3,
            },
            rows: 500,
            max_abs_diff: 1.5e-8,
            worst_row: 17,
            worst_expected: 0.25,
            worst_actual: 0.250_000_015,
            tolerance: 1e-5,
        });
        assert_ne!(m.id().unwrap(), with.id().unwrap());
        let back: ReleaseManifest = serde_json::from_str(&with.canonical().unwrap()).unwrap();
        assert_eq!(back, with);
    }

    /// The decision bands of thresholds [0.15, 0.3].
    #[test]
    fn decisions_name_the_band_of_the_score() {
        let t = [0.15, 0.3];
        assert_eq!(decision(&t, 0.01).as_deref(), Some("below:0.15"));
        assert_eq!(decision(&t, 0.15).as_deref(), Some("at_or_above:0.15"));
        assert_eq!(decision(&t, 0.29).as_deref(), Some("at_or_above:0.15"));
        assert_eq!(decision(&t, 0.9).as_deref(), Some("at_or_above:0.3"));
        assert_eq!(decision(&[], 0.9), None);
    }

    #[test]
    fn rejects_bad_thresholds_and_commits() {
        let mut m = manifest();
        m.thresholds = vec![0.5, 0.2];
        assert!(m.id().is_err());
        m.thresholds = vec![1.0];
        assert!(m.id().is_err());
        let mut m = manifest();
        m.code_commit = Some("main".into());
        assert!(m.id().is_err());
    }
}
