//! Vigil's domain vocabulary: ids, models, releases, dataset snapshots, feature contracts,
//! UCUM units, lifecycle stages and the audit chain's canonical hashing.
//!
//! Nothing here performs IO, reads the clock or the environment: times and ids are passed in,
//! so every rule can be tested as a pure function.

pub mod audit;
pub mod canonical;
pub mod contract;
pub mod dataset;
pub mod digest;
pub mod error;
pub mod ids;
pub mod model;
pub mod release;
pub mod stage;
pub mod time;
pub mod units;

pub use audit::{AuditEvent, ChainBreak, ChainVerifier, GENESIS_HASH, NewAuditEvent, RawEvent};
pub use contract::{Feature, FeatureContract, FeatureRole, FeatureType, MissingPolicy};
pub use dataset::{DatasetFormat, DatasetManifest, DatasetSnapshot};
pub use digest::{Digest, Sha256Writer};
pub use error::{Error, Result};
pub use ids::{IdPrefix, ModelName, ReleaseId, SnapshotId, UserName};
pub use model::{
    ActionKind, CardLink, CardSuggestion, CdsNoScore, CdsSettings, IntendedUse, Model, RiskTier,
    SuggestAt, SuggestionAction,
};
pub use release::{Release, ReleaseManifest};
pub use stage::Stage;
pub use time::{Duration, Timestamp};

pub mod evaluation;
pub use evaluation::{Evaluation, EvaluationId, EvaluationManifest};
pub mod governance;
pub mod monitor;
pub mod package;
pub mod policy;
pub mod prediction;
pub mod role;
