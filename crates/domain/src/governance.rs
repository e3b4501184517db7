//! Governance records — sign-offs, exceptions, case reviews, promotions — and the lifecycle
//! of a model's releases as a pure state machine that every stage change goes through.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::ids::{ModelName, ReleaseId, SnapshotId, UserName};
use crate::policy::GateName;
use crate::role::Role;
use crate::stage::Stage;
use crate::time::Timestamp;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    Approved,
    Rejected,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Approved => "approved",
            Decision::Rejected => "rejected",
        }
    }
    pub fn parse(s: &str) -> Result<Decision> {
        match s {
            "approved" => Ok(Decision::Approved),
            "rejected" => Ok(Decision::Rejected),
            _ => Err(Error::invalid(format!(
                "`{s}` is not a decision (approved, rejected)"
            ))),
        }
    }
}

/// A person's approval or rejection of a release in one role, bound to the evidence digest
/// they saw.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SignOff {
    pub id: i64,
    pub release: ReleaseId,
    pub role: Role,
    pub user: UserName,
    pub decision: Decision,
    pub comment: String,
    pub evidence_digest: Digest,
    pub at: Timestamp,
}

/// A waiver of one named gate for one release, until it expires.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Exception {
    pub id: i64,
    pub release: ReleaseId,
    pub gate: GateName,
    pub rationale: String,
    pub granted_by: UserName,
    pub granted_at: Timestamp,
    pub expires_at: Timestamp,
}

/// A clinician's judgement of one sampled case.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Plausible,
    Implausible,
    Unsafe,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Plausible => "plausible",
            Verdict::Implausible => "implausible",
            Verdict::Unsafe => "unsafe",
        }
    }
    pub fn parse(s: &str) -> Result<Verdict> {
        match s {
            "plausible" => Ok(Verdict::Plausible),
            "implausible" => Ok(Verdict::Implausible),
            "unsafe" => Ok(Verdict::Unsafe),
            _ => Err(Error::invalid(format!(
                "`{s}` is not a verdict (plausible, implausible, unsafe)"
            ))),
        }
    }
}

/// One reviewed case.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CaseReview {
    pub id: i64,
    pub release: ReleaseId,
    pub dataset: SnapshotId,
    /// The row of the snapshot (0-based, after the header).
    pub case: u64,
    pub verdict: Verdict,
    pub comment: String,
    pub reviewer: UserName,
    pub at: Timestamp,
}

/// Counts of verdicts, the latest per case and reviewer, and a digest over the reviews.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReviewSummary {
    pub plausible: u32,
    pub implausible: u32,
    #[serde(rename = "unsafe")]
    pub unsafe_: u32,
    pub digest: Digest,
}

impl ReviewSummary {
    pub fn of(reviews: &[CaseReview]) -> ReviewSummary {
        let mut latest: BTreeMap<(SnapshotId, u64, &UserName), &CaseReview> = BTreeMap::new();
        for r in reviews {
            let k = (r.dataset, r.case, &r.reviewer);
            if latest.get(&k).is_none_or(|p| p.id < r.id) {
                latest.insert(k, r);
            }
        }
        let (mut p, mut i, mut u) = (0, 0, 0);
        for r in latest.values() {
            match r.verdict {
                Verdict::Plausible => p += 1,
                Verdict::Implausible => i += 1,
                Verdict::Unsafe => u += 1,
            }
        }
        let ids: Vec<i64> = reviews.iter().map(|r| r.id).collect();
        let digest = crate::canonical::canonical_digest(&ids).unwrap_or(crate::audit::GENESIS_HASH);
        ReviewSummary {
            plausible: p,
            implausible: i,
            unsafe_: u,
            digest,
        }
    }
}

/// Why a release changed stage.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// Moved forward through its gates.
    Promoted,
    /// Sent back (revalidation, withdrawn from shadow).
    Demoted,
    /// Moved out of production because another release took its place.
    Displaced,
    /// Taken out of production by a rollback (sent to revalidation).
    RolledBack,
    /// Put back into production by a rollback.
    Restored,
    Retired,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Promoted => "promoted",
            ChangeKind::Demoted => "demoted",
            ChangeKind::Displaced => "displaced",
            ChangeKind::RolledBack => "rolled_back",
            ChangeKind::Restored => "restored",
            ChangeKind::Retired => "retired",
        }
    }
    pub fn parse(s: &str) -> Result<ChangeKind> {
        [
            ChangeKind::Promoted,
            ChangeKind::Demoted,
            ChangeKind::Displaced,
            ChangeKind::RolledBack,
            ChangeKind::Restored,
            ChangeKind::Retired,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
        .ok_or_else(|| Error::invalid(format!("`{s}` is not a kind of stage change")))
    }
}

/// One stage change of one release, as recorded.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Promotion {
    pub id: i64,
    pub model: ModelName,
    pub release: ReleaseId,
    pub from: Stage,
    pub to: Stage,
    pub kind: ChangeKind,
    /// The other release of the same step: the one displaced, or the one restored in its place.
    pub related: Option<ReleaseId>,
    pub reason: String,
    /// Ids of the exceptions that covered unmet gates.
    pub exceptions: Vec<i64>,
    pub actor: UserName,
    pub at: Timestamp,
}

// ---- the lifecycle state machine -------------------------------------------------------

/// A requested move of a model's releases.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Move {
    /// Forward or back along the lifecycle (not to retired).
    To(ReleaseId, Stage),
    /// Put the previous production release back.
    Rollback,
    Retire(ReleaseId),
}

/// A stage change the move implies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StageChange {
    pub release: ReleaseId,
    pub from: Stage,
    pub to: Stage,
    pub kind: ChangeKind,
    pub related: Option<ReleaseId>,
}

/// Why a move is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LifecycleError {
    NotAllowed {
        release: ReleaseId,
        from: Stage,
        to: Stage,
    },
    ShadowOccupied {
        by: ReleaseId,
    },
    NoProduction,
    NoPrevious,
}

impl fmt::Display for LifecycleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LifecycleError::NotAllowed { release, from, to } if from == to => {
                write!(f, "release {} is already {to}", release.short())
            }
            LifecycleError::NotAllowed { release, from, to } => write!(
                f,
                "release {} cannot move from {from} to {to} (registered → validated → approved → shadow → production → retired)",
                release.short()
            ),
            LifecycleError::ShadowOccupied { by } => write!(
                f,
                "release {} is already in shadow for this model: promote or withdraw it first",
                by.short()
            ),
            LifecycleError::NoProduction => f.write_str("the model has no release in production"),
            LifecycleError::NoPrevious => f.write_str(
                "there is no previous production release to put back (it was retired or sent to revalidation)",
            ),
        }
    }
}

/// The stages of one model's releases and which were in production, in order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ModelLifecycle {
    stages: BTreeMap<ReleaseId, Stage>,
    /// Releases as they entered production, oldest first.
    production_order: Vec<ReleaseId>,
}

impl ModelLifecycle {
    /// Rebuilds the state from the recorded changes, oldest first.
    pub fn replay<'a>(changes: impl IntoIterator<Item = &'a Promotion>) -> ModelLifecycle {
        let mut l = ModelLifecycle::default();
        for c in changes {
            l.stages.insert(c.release, c.to);
            if c.to == Stage::Production {
                l.production_order.push(c.release);
            }
        }
        l
    }

    pub fn stage(&self, r: &ReleaseId) -> Stage {
        self.stages.get(r).copied().unwrap_or(Stage::Registered)
    }

    pub fn in_stage(&self, s: Stage) -> Option<ReleaseId> {
        self.stages
            .iter()
            .find(|(_, st)| **st == s)
            .map(|(r, _)| *r)
    }

    /// The release a rollback would put back.
    pub fn rollback_target(&self) -> Option<ReleaseId> {
        let current = self.in_stage(Stage::Production);
        self.production_order
            .iter()
            .rev()
            .find(|r| {
                Some(**r) != current && matches!(self.stage(r), Stage::Approved | Stage::Shadow)
            })
            .copied()
    }

    /// The changes `m` implies, without applying them.
    pub fn plan(&self, m: Move) -> Result<Vec<StageChange>, LifecycleError> {
        match m {
            Move::To(r, to) => {
                let from = self.stage(&r);
                if to == Stage::Retired || !from.can_move_to(to) {
                    return Err(LifecycleError::NotAllowed {
                        release: r,
                        from,
                        to,
                    });
                }
                let forward = to > from;
                let mut out = Vec::new();
                if to == Stage::Shadow
                    && let Some(by) = self.in_stage(Stage::Shadow)
                {
                    return Err(LifecycleError::ShadowOccupied { by });
                }
                if to == Stage::Production
                    && let Some(old) = self.in_stage(Stage::Production)
                {
                    out.push(StageChange {
                        release: old,
                        from: Stage::Production,
                        to: Stage::Approved,
                        kind: ChangeKind::Displaced,
                        related: Some(r),
                    });
                }
                let kind = if forward {
                    ChangeKind::Promoted
                } else {
                    ChangeKind::Demoted
                };
                let related = out.first().map(|c| c.release);
                out.push(StageChange {
                    release: r,
                    from,
                    to,
                    kind,
                    related,
                });
                Ok(out)
            }
            Move::Rollback => {
                let current = self
                    .in_stage(Stage::Production)
                    .ok_or(LifecycleError::NoProduction)?;
                let prev = self.rollback_target().ok_or(LifecycleError::NoPrevious)?;
                Ok(vec![
                    StageChange {
                        release: current,
                        from: Stage::Production,
                        to: Stage::Validated,
                        kind: ChangeKind::RolledBack,
                        related: Some(prev),
                    },
                    StageChange {
                        release: prev,
                        from: self.stage(&prev),
                        to: Stage::Production,
                        kind: ChangeKind::Restored,
                        related: Some(current),
                    },
                ])
            }
            Move::Retire(r) => {
                let from = self.stage(&r);
                if !from.can_move_to(Stage::Retired) {
                    return Err(LifecycleError::NotAllowed {
                        release: r,
                        from,
                        to: Stage::Retired,
                    });
                }
                Ok(vec![StageChange {
                    release: r,
                    from,
                    to: Stage::Retired,
                    kind: ChangeKind::Retired,
                    related: None,
                }])
            }
        }
    }

    pub fn apply(&mut self, changes: &[StageChange]) {
        for c in changes {
            self.stages.insert(c.release, c.to);
            if c.to == Stage::Production {
                self.production_order.push(c.release);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn rid(i: u8) -> ReleaseId {
        ReleaseId::from_digest(Digest::of(&[i]))
    }

    fn count(l: &ModelLifecycle, s: Stage) -> usize {
        l.stages.values().filter(|x| **x == s).count()
    }

    #[test]
    fn promoting_to_production_displaces_and_rollback_restores() {
        let mut l = ModelLifecycle::default();
        for r in [rid(1), rid(2)] {
            for to in [
                Stage::Validated,
                Stage::Approved,
                Stage::Shadow,
                Stage::Production,
            ] {
                let c = l.plan(Move::To(r, to)).unwrap();
                l.apply(&c);
            }
        }
        assert_eq!(l.stage(&rid(1)), Stage::Approved);
        assert_eq!(l.stage(&rid(2)), Stage::Production);
        let c = l.plan(Move::Rollback).unwrap();
        l.apply(&c);
        assert_eq!(l.stage(&rid(1)), Stage::Production);
        assert_eq!(l.stage(&rid(2)), Stage::Validated);
        assert_eq!(l.plan(Move::Rollback), Err(LifecycleError::NoPrevious));
    }

    proptest! {
        /// Whatever moves are asked for, in any order: at most one release in production and
        /// one in shadow, nothing leaves retired, and production is entered only from shadow
        /// or by a rollback to a release that was in production before.
        #[test]
        fn no_move_sequence_reaches_a_forbidden_state(moves in proptest::collection::vec((0u8..4, 0usize..8), 0..60)) {
            let mut l = ModelLifecycle::default();
            let mut was_live: Vec<ReleaseId> = Vec::new();
            for (r, m) in moves {
                let r = rid(r);
                let mv = match m {
                    0..=5 => Move::To(r, Stage::ALL[m]),
                    6 => Move::Rollback,
                    _ => Move::Retire(r),
                };
                let Ok(changes) = l.plan(mv) else { continue };
                for c in &changes {
                    prop_assert_ne!(c.from, Stage::Retired);
                    prop_assert_eq!(l.stage(&c.release), c.from);
                    if c.to == Stage::Production {
                        match c.kind {
                            ChangeKind::Promoted => prop_assert_eq!(c.from, Stage::Shadow),
                            ChangeKind::Restored => prop_assert!(was_live.contains(&c.release)),
                            k => prop_assert!(false, "entered production by {:?}", k),
                        }
                        was_live.push(c.release);
                    }
                }
                l.apply(&changes);
                prop_assert!(count(&l, Stage::Production) <= 1);
                prop_assert!(count(&l, Stage::Shadow) <= 1);
            }
        }
    }
}
