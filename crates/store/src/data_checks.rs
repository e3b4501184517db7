//! Storage of data check results: one row per `vigil dataset check` run.

use serde::Serialize;
use sqlx::Row;
use vigil_domain::policy::DataCheckSummary;
use vigil_domain::{Digest, ReleaseId, SnapshotId, Timestamp, UserName};

use crate::{Conn, Error, Result, Tx, on_conn, reads};

/// A recorded data check run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DataCheckRecord {
    pub id: Digest,
    pub snapshot: SnapshotId,
    pub contract_digest: Digest,
    pub options: serde_json::Value,
    /// The full report (JSON) in the artifact store.
    pub report_digest: Digest,
    pub passed: bool,
    pub blocking_failures: Vec<String>,
    pub created_at: Timestamp,
    pub created_by: UserName,
}

const COLUMNS: &str = "id, snapshot_id, contract_digest, options, report_digest, passed, blocking_failures, created_at, created_by";

struct Raw {
    id: String,
    snapshot_id: String,
    contract_digest: String,
    options: String,
    report_digest: String,
    passed: i64,
    blocking_failures: String,
    created_at: String,
    created_by: String,
}

impl Raw {
    fn decode(self) -> Result<DataCheckRecord> {
        let what = format!("data check {}", self.id);
        let bad = |e: String| Error::corrupt(format!("{what}: {e}"));
        Ok(DataCheckRecord {
            id: Digest::parse(&self.id).map_err(|e| bad(e.to_string()))?,
            snapshot: SnapshotId::parse(&self.snapshot_id).map_err(|e| bad(e.to_string()))?,
            contract_digest: Digest::parse(&self.contract_digest)
                .map_err(|e| bad(e.to_string()))?,
            options: serde_json::from_str(&self.options).map_err(|e| bad(e.to_string()))?,
            report_digest: Digest::parse(&self.report_digest).map_err(|e| bad(e.to_string()))?,
            passed: self.passed != 0,
            blocking_failures: serde_json::from_str(&self.blocking_failures)
                .map_err(|e| bad(e.to_string()))?,
            created_at: Timestamp::parse(&self.created_at).map_err(|e| bad(e.to_string()))?,
            created_by: UserName::parse(&self.created_by).map_err(|e| bad(e.to_string()))?,
        })
    }
}

macro_rules! raw_rows {
    ($rows:expr) => {
        $rows
            .iter()
            .map(|r| {
                Ok(Raw {
                    id: r.try_get("id")?,
                    snapshot_id: r.try_get("snapshot_id")?,
                    contract_digest: r.try_get("contract_digest")?,
                    options: r.try_get("options")?,
                    report_digest: r.try_get("report_digest")?,
                    passed: r.try_get("passed")?,
                    blocking_failures: r.try_get("blocking_failures")?,
                    created_at: r.try_get("created_at")?,
                    created_by: r.try_get("created_by")?,
                })
            })
            .collect::<Result<Vec<Raw>, sqlx::Error>>()?
    };
}

async fn list_for_snapshot(c: Conn<'_>, snapshot: &SnapshotId) -> Result<Vec<DataCheckRecord>> {
    let sql =
        format!("SELECT {COLUMNS} FROM data_checks WHERE snapshot_id = $1 ORDER BY created_at, id");
    let raw = on_conn!(c, c => {
        let rows = sqlx::query(&sql).bind(snapshot.to_string()).fetch_all(&mut *c).await?;
        raw_rows!(rows)
    });
    raw.into_iter().map(Raw::decode).collect()
}

/// The latest check of each snapshot a release rests on: its training data and every
/// snapshot it was evaluated on. A later run supersedes an earlier one of the same snapshot.
async fn summaries_for_release(c: Conn<'_>, release: &ReleaseId) -> Result<Vec<DataCheckSummary>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM data_checks WHERE snapshot_id IN \
         (SELECT training_data FROM releases WHERE id = $1 \
          UNION SELECT dataset_id FROM evaluations WHERE release_id = $1) \
         ORDER BY created_at, id"
    );
    let raw = on_conn!(c, c => {
        let rows = sqlx::query(&sql).bind(release.to_string()).fetch_all(&mut *c).await?;
        raw_rows!(rows)
    });
    let mut latest: Vec<DataCheckRecord> = Vec::new();
    for r in raw {
        let r = r.decode()?;
        latest.retain(|l| l.snapshot != r.snapshot);
        latest.push(r);
    }
    Ok(latest
        .into_iter()
        .map(|r| DataCheckSummary {
            id: r.id.to_string(),
            digest: r.report_digest,
            dataset: r.snapshot,
            at: r.created_at,
            blocking_failures: r.blocking_failures,
        })
        .collect())
}

async fn insert(c: Conn<'_>, r: &DataCheckRecord) -> Result<()> {
    let sql =
        format!("INSERT INTO data_checks ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)");
    let options = serde_json::to_string(&r.options).map_err(Error::corrupt)?;
    let failures = serde_json::to_string(&r.blocking_failures).map_err(Error::corrupt)?;
    on_conn!(c, c => {
        sqlx::query(&sql)
            .bind(r.id.to_hex())
            .bind(r.snapshot.to_string())
            .bind(r.contract_digest.to_hex())
            .bind(&options)
            .bind(r.report_digest.to_hex())
            .bind(i64::from(r.passed))
            .bind(&failures)
            .bind(r.created_at.to_string())
            .bind(r.created_by.as_str())
            .execute(&mut *c)
            .await?;
    });
    Ok(())
}

reads! {
    /// Every check run on a snapshot, oldest first.
    fn list_data_checks(snapshot: &SnapshotId) -> Vec<DataCheckRecord> => list_for_snapshot;
    /// The latest check of each snapshot a release rests on.
    fn data_check_summaries_for_release(release: &ReleaseId) -> Vec<DataCheckSummary> => summaries_for_release;
}

impl Tx {
    pub async fn insert_data_check(&mut self, r: &DataCheckRecord) -> Result<()> {
        insert(self.as_conn(), r).await
    }
}
