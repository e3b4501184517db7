//! Storage of the registry: models, dataset snapshots and releases.

use sqlx::Row;
use vigil_domain::dataset::SnapshotManifest;
use vigil_domain::{
    DatasetSnapshot, IdPrefix, IntendedUse, Model, ModelName, Release, ReleaseId, ReleaseManifest,
    RiskTier, SnapshotId, Timestamp, UserName,
};

use crate::{Conn, Error, Result, Tx, on_conn, parse_json, reads};

fn ts(s: &str, what: &str) -> Result<Timestamp> {
    Timestamp::parse(s).map_err(|e| Error::corrupt(format!("{what}: {e}")))
}

fn user(s: &str, what: &str) -> Result<UserName> {
    UserName::parse(s).map_err(|e| Error::corrupt(format!("{what}: {e}")))
}

// ---- models ---------------------------------------------------------------------------

struct ModelRow {
    name: String,
    intended_use: String,
    risk_tier: i64,
    clinical_owner: String,
    technical_owner: String,
    created_at: String,
    created_by: String,
}

impl ModelRow {
    fn into_model(self) -> Result<Model> {
        let what = format!("model {}", self.name);
        Ok(Model {
            name: ModelName::parse(&self.name)
                .map_err(|e| Error::corrupt(format!("{what}: {e}")))?,
            intended_use: parse_json::<IntendedUse>(&self.intended_use, &what)?,
            risk_tier: u8::try_from(self.risk_tier)
                .ok()
                .and_then(|t| RiskTier::new(t).ok())
                .ok_or_else(|| Error::corrupt(format!("{what}: risk tier {}", self.risk_tier)))?,
            clinical_owner: self.clinical_owner,
            technical_owner: self.technical_owner,
            created_at: ts(&self.created_at, &what)?,
            created_by: user(&self.created_by, &what)?,
        })
    }
}

macro_rules! model_rows {
    ($rows:expr) => {
        $rows
            .iter()
            .map(|r| {
                Ok(ModelRow {
                    name: r.try_get("name")?,
                    intended_use: r.try_get("intended_use")?,
                    risk_tier: r.try_get("risk_tier")?,
                    clinical_owner: r.try_get("clinical_owner")?,
                    technical_owner: r.try_get("technical_owner")?,
                    created_at: r.try_get("created_at")?,
                    created_by: r.try_get("created_by")?,
                })
            })
            .collect::<Result<Vec<ModelRow>, sqlx::Error>>()?
    };
}

const MODEL_COLUMNS: &str =
    "name, intended_use, risk_tier, clinical_owner, technical_owner, created_at, created_by";

async fn find_model(c: Conn<'_>, name: &ModelName) -> Result<Option<Model>> {
    let sql = format!("SELECT {MODEL_COLUMNS} FROM models WHERE name = $1");
    let rows = on_conn!(c, c => {
        let rows = sqlx::query(&sql).bind(name.as_str()).fetch_all(&mut *c).await?;
        model_rows!(rows)
    });
    rows.into_iter()
        .next()
        .map(ModelRow::into_model)
        .transpose()
}

async fn list_models(c: Conn<'_>) -> Result<Vec<Model>> {
    let sql = format!("SELECT {MODEL_COLUMNS} FROM models ORDER BY name");
    let rows = on_conn!(c, c => {
        let rows = sqlx::query(&sql).fetch_all(&mut *c).await?;
        model_rows!(rows)
    });
    rows.into_iter().map(ModelRow::into_model).collect()
}

async fn insert_model(c: Conn<'_>, m: &Model) -> Result<()> {
    let iu = serde_json::to_string(&m.intended_use).map_err(Error::corrupt)?;
    let sql = format!("INSERT INTO models ({MODEL_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)");
    let r = on_conn!(c, c => {
        sqlx::query(&sql)
            .bind(m.name.as_str())
            .bind(&iu)
            .bind(i64::from(m.risk_tier.get()))
            .bind(&m.clinical_owner)
            .bind(&m.technical_owner)
            .bind(m.created_at.to_string())
            .bind(m.created_by.as_str())
            .execute(&mut *c)
            .await
            .map(|_| ())
    });
    r.map_err(|e| conflict_or(e, || format!("model `{}` already exists", m.name)))
}

fn conflict_or(e: sqlx::Error, msg: impl FnOnce() -> String) -> Error {
    match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => Error::Conflict(msg()),
        _ => Error::Database(e),
    }
}

// ---- dataset snapshots ----------------------------------------------------------------

fn decode_snapshot(
    id: String,
    snapshot: String,
    at: String,
    by: String,
) -> Result<DatasetSnapshot> {
    let what = format!("dataset snapshot {id}");
    Ok(DatasetSnapshot {
        id: SnapshotId::parse(&id).map_err(|e| Error::corrupt(format!("{what}: {e}")))?,
        snapshot: parse_json::<SnapshotManifest>(&snapshot, &what)?,
        registered_at: ts(&at, &what)?,
        registered_by: user(&by, &what)?,
    })
}

macro_rules! snapshot_rows {
    ($rows:expr) => {
        $rows
            .iter()
            .map(|r| {
                decode_snapshot(
                    r.try_get("id")?,
                    r.try_get("snapshot")?,
                    r.try_get("registered_at")?,
                    r.try_get("registered_by")?,
                )
            })
            .collect::<Result<Vec<_>>>()
    };
}

async fn find_snapshot(c: Conn<'_>, id: &SnapshotId) -> Result<Option<DatasetSnapshot>> {
    let v = on_conn!(c, c => {
        let rows = sqlx::query("SELECT id, snapshot, registered_at, registered_by FROM dataset_snapshots WHERE id = $1")
            .bind(id.to_string())
            .fetch_all(&mut *c)
            .await?;
        snapshot_rows!(rows)?
    });
    Ok(v.into_iter().next())
}

async fn list_snapshots(c: Conn<'_>) -> Result<Vec<DatasetSnapshot>> {
    on_conn!(c, c => {
        let rows = sqlx::query("SELECT id, snapshot, registered_at, registered_by FROM dataset_snapshots ORDER BY registered_at, id")
            .fetch_all(&mut *c)
            .await?;
        snapshot_rows!(rows)
    })
}

async fn insert_snapshot(c: Conn<'_>, s: &DatasetSnapshot) -> Result<()> {
    let json = serde_json::to_string(&s.snapshot).map_err(Error::corrupt)?;
    let r = on_conn!(c, c => {
        sqlx::query(
            "INSERT INTO dataset_snapshots (id, name, content_digest, format, n_rows, n_columns, snapshot, registered_at, registered_by) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(s.id.to_string())
        .bind(&s.snapshot.name)
        .bind(s.snapshot.content.digest.to_hex())
        .bind(serde_json::to_value(s.snapshot.format).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default())
        .bind(i64::try_from(s.snapshot.rows).unwrap_or(i64::MAX))
        .bind(s.snapshot.columns.len() as i64)
        .bind(&json)
        .bind(s.registered_at.to_string())
        .bind(s.registered_by.as_str())
        .execute(&mut *c)
        .await
        .map(|_| ())
    });
    r.map_err(|e| conflict_or(e, || format!("dataset snapshot {} already exists", s.id)))
}

// ---- releases -------------------------------------------------------------------------

fn decode_release(id: String, manifest: String, at: String, by: String) -> Result<Release> {
    let what = format!("release {id}");
    let manifest: ReleaseManifest = parse_json(&manifest, &what)?;
    let id = ReleaseId::parse(&id).map_err(|e| Error::corrupt(format!("{what}: {e}")))?;
    // The id is the manifest's digest: a row whose manifest no longer hashes to its id was
    // altered outside Vigil.
    match manifest.id() {
        Ok(computed) if computed == id => {}
        _ => {
            return Err(Error::corrupt(format!(
                "{what}: its manifest no longer hashes to its id"
            )));
        }
    }
    Ok(Release {
        id,
        manifest,
        registered_at: ts(&at, &what)?,
        registered_by: user(&by, &what)?,
    })
}

macro_rules! release_rows {
    ($rows:expr) => {
        $rows
            .iter()
            .map(|r| {
                decode_release(
                    r.try_get("id")?,
                    r.try_get("manifest")?,
                    r.try_get("registered_at")?,
                    r.try_get("registered_by")?,
                )
            })
            .collect::<Result<Vec<_>>>()
    };
}

async fn find_release(c: Conn<'_>, id: &ReleaseId) -> Result<Option<Release>> {
    let v = on_conn!(c, c => {
        let rows = sqlx::query("SELECT id, manifest, registered_at, registered_by FROM releases WHERE id = $1")
            .bind(id.to_string())
            .fetch_all(&mut *c)
            .await?;
        release_rows!(rows)?
    });
    Ok(v.into_iter().next())
}

async fn list_releases(c: Conn<'_>, model: Option<&ModelName>) -> Result<Vec<Release>> {
    on_conn!(c, c => {
        let rows = sqlx::query(
            "SELECT id, manifest, registered_at, registered_by FROM releases \
             WHERE ($1 = '' OR model = $1) ORDER BY registered_at, id",
        )
        .bind(model.map(ModelName::as_str).unwrap_or(""))
        .fetch_all(&mut *c)
        .await?;
        release_rows!(rows)
    })
}

async fn insert_release(c: Conn<'_>, r: &Release) -> Result<()> {
    let manifest = r.manifest.canonical().map_err(Error::corrupt)?;
    let res = on_conn!(c, c => {
        sqlx::query(
            "INSERT INTO releases (id, model, manifest, artifact_digest, contract_digest, training_data, registered_at, registered_by) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(r.id.to_string())
        .bind(r.manifest.model.as_str())
        .bind(&manifest)
        .bind(r.manifest.artifact.digest.to_hex())
        .bind(r.manifest.contract.digest.to_hex())
        .bind(r.manifest.training_data.to_string())
        .bind(r.registered_at.to_string())
        .bind(r.registered_by.as_str())
        .execute(&mut *c)
        .await
        .map(|_| ())
    });
    res.map_err(|e| conflict_or(e, || format!("release {} already exists", r.id)))
}

// ---- id prefixes ----------------------------------------------------------------------

/// Ids in `table` that start with `prefix` (at most two: enough to tell ambiguity).
async fn ids_with_prefix(
    c: Conn<'_>,
    table: &'static str,
    prefix: &IdPrefix,
) -> Result<Vec<String>> {
    // IdPrefix holds only hex characters, so it cannot carry LIKE wildcards.
    let sql = format!("SELECT id FROM {table} WHERE id LIKE $1 ORDER BY id LIMIT 2");
    let pattern = format!("{}%", prefix.as_str());
    Ok(on_conn!(c, c => sqlx::query_scalar(&sql).bind(&pattern).fetch_all(&mut *c).await?))
}

async fn release_ids_with_prefix(c: Conn<'_>, prefix: &IdPrefix) -> Result<Vec<String>> {
    ids_with_prefix(c, "releases", prefix).await
}

async fn snapshot_ids_with_prefix(c: Conn<'_>, prefix: &IdPrefix) -> Result<Vec<String>> {
    ids_with_prefix(c, "dataset_snapshots", prefix).await
}

reads! {
    fn find_model(name: &ModelName) -> Option<Model> => find_model;
    fn list_models() -> Vec<Model> => list_models;
    fn find_snapshot(id: &SnapshotId) -> Option<DatasetSnapshot> => find_snapshot;
    fn list_snapshots() -> Vec<DatasetSnapshot> => list_snapshots;
    fn find_release(id: &ReleaseId) -> Option<Release> => find_release;
    fn list_releases(model: Option<&ModelName>) -> Vec<Release> => list_releases;
    /// Up to two release ids starting with `prefix`.
    fn release_ids_with_prefix(prefix: &IdPrefix) -> Vec<String> => release_ids_with_prefix;
    /// Up to two snapshot ids starting with `prefix`.
    fn snapshot_ids_with_prefix(prefix: &IdPrefix) -> Vec<String> => snapshot_ids_with_prefix;
}

impl Tx {
    pub async fn insert_model(&mut self, m: &Model) -> Result<()> {
        insert_model(self.as_conn(), m).await
    }
    pub async fn insert_snapshot(&mut self, s: &DatasetSnapshot) -> Result<()> {
        insert_snapshot(self.as_conn(), s).await
    }
    pub async fn insert_release(&mut self, r: &Release) -> Result<()> {
        insert_release(self.as_conn(), r).await
    }
}
