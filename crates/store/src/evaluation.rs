//! Storage of evaluations: one immutable row per evaluation, the reports themselves in the
//! artifact store.

use sqlx::Row;
use vigil_domain::release::Pinned;
use vigil_domain::{
    Digest, Evaluation, EvaluationId, EvaluationManifest, IdPrefix, ReleaseId, SnapshotId,
    Timestamp, UserName,
};

use crate::{Conn, Error, Result, Tx, on_conn, parse_json, reads};

const COLUMNS: &str = "id, release_id, dataset_id, options, report_digest, report_size, \
                       html_digest, html_size, summary, created_at, created_by";

struct EvaluationRow {
    id: String,
    release_id: String,
    dataset_id: String,
    options: String,
    report_digest: String,
    report_size: i64,
    html_digest: String,
    html_size: i64,
    summary: String,
    created_at: String,
    created_by: String,
}

impl EvaluationRow {
    fn into_evaluation(self) -> Result<Evaluation> {
        let what = format!("evaluation {}", self.id);
        let bad = |e: vigil_domain::Error| Error::corrupt(format!("{what}: {e}"));
        let size =
            |n: i64| u64::try_from(n).map_err(|_| Error::corrupt(format!("{what}: size {n}")));
        let manifest = EvaluationManifest {
            schema: vigil_domain::evaluation::EVALUATION_SCHEMA.into(),
            release: ReleaseId::parse(&self.release_id).map_err(bad)?,
            dataset: SnapshotId::parse(&self.dataset_id).map_err(bad)?,
            options: parse_json(&self.options, &what)?,
            report: Pinned {
                digest: Digest::parse(&self.report_digest).map_err(bad)?,
                size: size(self.report_size)?,
            },
        };
        let id = EvaluationId::parse(&self.id).map_err(bad)?;
        // The id is the manifest's digest: a row that no longer hashes to its id was altered
        // outside Vigil.
        if manifest.id().ok() != Some(id) {
            return Err(Error::corrupt(format!(
                "{what}: its manifest no longer hashes to its id"
            )));
        }
        Ok(Evaluation {
            id,
            manifest,
            html: Pinned {
                digest: Digest::parse(&self.html_digest).map_err(bad)?,
                size: size(self.html_size)?,
            },
            summary: parse_json(&self.summary, &what)?,
            created_at: Timestamp::parse(&self.created_at).map_err(bad)?,
            created_by: UserName::parse(&self.created_by).map_err(bad)?,
        })
    }
}

macro_rules! evaluation_rows {
    ($rows:expr) => {
        $rows
            .iter()
            .map(|r| {
                Ok(EvaluationRow {
                    id: r.try_get("id")?,
                    release_id: r.try_get("release_id")?,
                    dataset_id: r.try_get("dataset_id")?,
                    options: r.try_get("options")?,
                    report_digest: r.try_get("report_digest")?,
                    report_size: r.try_get("report_size")?,
                    html_digest: r.try_get("html_digest")?,
                    html_size: r.try_get("html_size")?,
                    summary: r.try_get("summary")?,
                    created_at: r.try_get("created_at")?,
                    created_by: r.try_get("created_by")?,
                })
            })
            .collect::<Result<Vec<EvaluationRow>, sqlx::Error>>()?
    };
}

async fn find_evaluation(c: Conn<'_>, id: &EvaluationId) -> Result<Option<Evaluation>> {
    let sql = format!("SELECT {COLUMNS} FROM evaluations WHERE id = $1");
    let rows = on_conn!(c, c => {
        let rows = sqlx::query(&sql).bind(id.to_string()).fetch_all(&mut *c).await?;
        evaluation_rows!(rows)
    });
    rows.into_iter()
        .next()
        .map(EvaluationRow::into_evaluation)
        .transpose()
}

/// Evaluations, oldest first; only those of `release` when given.
async fn list_evaluations(c: Conn<'_>, release: Option<&ReleaseId>) -> Result<Vec<Evaluation>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM evaluations WHERE ($1 = '' OR release_id = $1) ORDER BY created_at, id"
    );
    let release = release.map(ToString::to_string).unwrap_or_default();
    let rows = on_conn!(c, c => {
        let rows = sqlx::query(&sql).bind(&release).fetch_all(&mut *c).await?;
        evaluation_rows!(rows)
    });
    rows.into_iter()
        .map(EvaluationRow::into_evaluation)
        .collect()
}

/// Up to two evaluation ids starting with `prefix` (enough to tell ambiguity).
async fn evaluation_ids_with_prefix(c: Conn<'_>, prefix: &IdPrefix) -> Result<Vec<String>> {
    // IdPrefix holds only hex characters, so it cannot carry LIKE wildcards.
    let pattern = format!("{}%", prefix.as_str());
    Ok(on_conn!(c, c => {
        sqlx::query_scalar("SELECT id FROM evaluations WHERE id LIKE $1 ORDER BY id LIMIT 2")
            .bind(&pattern)
            .fetch_all(&mut *c)
            .await?
    }))
}

async fn insert_evaluation(c: Conn<'_>, e: &Evaluation) -> Result<()> {
    let options = serde_json::to_string(&e.manifest.options).map_err(Error::corrupt)?;
    let summary = serde_json::to_string(&e.summary).map_err(Error::corrupt)?;
    let size = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    let sql = format!(
        "INSERT INTO evaluations ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
    );
    let r = on_conn!(c, c => {
        sqlx::query(&sql)
            .bind(e.id.to_string())
            .bind(e.manifest.release.to_string())
            .bind(e.manifest.dataset.to_string())
            .bind(&options)
            .bind(e.manifest.report.digest.to_hex())
            .bind(size(e.manifest.report.size))
            .bind(e.html.digest.to_hex())
            .bind(size(e.html.size))
            .bind(&summary)
            .bind(e.created_at.to_string())
            .bind(e.created_by.as_str())
            .execute(&mut *c)
            .await
            .map(|_| ())
    });
    r.map_err(|err| match &err {
        sqlx::Error::Database(d) if d.is_unique_violation() => {
            Error::Conflict(format!("evaluation {} already exists", e.id))
        }
        _ => Error::Database(err),
    })
}

reads! {
    fn find_evaluation(id: &EvaluationId) -> Option<Evaluation> => find_evaluation;
    /// Evaluations, oldest first; only those of `release` when given.
    fn list_evaluations(release: Option<&ReleaseId>) -> Vec<Evaluation> => list_evaluations;
    /// Up to two evaluation ids starting with `prefix`.
    fn evaluation_ids_with_prefix(prefix: &IdPrefix) -> Vec<String> => evaluation_ids_with_prefix;
}

impl Tx {
    pub async fn insert_evaluation(&mut self, e: &Evaluation) -> Result<()> {
        insert_evaluation(self.as_conn(), e).await
    }
}
