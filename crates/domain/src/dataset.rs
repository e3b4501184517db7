//! Dataset snapshots: a registered file with its manifest, identified by content.

use serde::{Deserialize, Serialize};

use crate::canonical::canonical_json;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::ids::{SnapshotId, UserName};
use crate::release::Pinned;
use crate::time::Timestamp;

pub const SNAPSHOT_SCHEMA: &str = "vigil.dataset/v1";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DatasetFormat {
    Csv,
    Parquet,
}

impl DatasetFormat {
    /// From a file name's extension.
    pub fn from_path(path: &str) -> Result<DatasetFormat> {
        let lower = path.to_ascii_lowercase();
        if lower.ends_with(".csv") {
            Ok(DatasetFormat::Csv)
        } else if lower.ends_with(".parquet") || lower.ends_with(".pq") {
            Ok(DatasetFormat::Parquet)
        } else {
            Err(Error::invalid(format!(
                "`{path}`: a dataset is a .csv or .parquet file"
            )))
        }
    }
}

/// The provenance a data scientist records with a snapshot. Every field is optional but kept.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetManifest {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub source_systems: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extraction_time: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inclusion_criteria: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_definition: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_window: Option<TimeWindow>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sites: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeWindow {
    pub start: Timestamp,
    pub end: Timestamp,
}

impl DatasetManifest {
    pub fn from_toml(text: &str) -> Result<DatasetManifest> {
        let m: DatasetManifest =
            toml::from_str(text).map_err(|e| Error::invalid(format!("dataset manifest: {e}")))?;
        if let Some(w) = &m.time_window
            && w.start > w.end
        {
            return Err(Error::invalid(format!(
                "dataset manifest: time_window starts ({}) after it ends ({})",
                w.start, w.end
            )));
        }
        Ok(m)
    }
}

/// What a snapshot's id is computed over.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SnapshotManifest {
    pub schema: String,
    pub name: String,
    pub content: Pinned,
    pub format: DatasetFormat,
    pub rows: u64,
    pub columns: Vec<String>,
    pub manifest: DatasetManifest,
}

impl SnapshotManifest {
    pub fn id(&self) -> Result<SnapshotId> {
        if self.name.trim().is_empty() || self.name.len() > 200 {
            return Err(Error::invalid(
                "a dataset name must have 1 to 200 characters",
            ));
        }
        Ok(SnapshotId::from_digest(Digest::of(
            canonical_json(self)?.as_bytes(),
        )))
    }
}

/// A registered dataset snapshot.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DatasetSnapshot {
    pub id: SnapshotId,
    pub snapshot: SnapshotManifest,
    pub registered_at: Timestamp,
    pub registered_by: UserName,
}
