//! Schema migrations for both backends, applied by `vigil init` and checked at start-up.
//!
//! Each migration exists as a SQLite and a PostgreSQL file with the same number. The applied
//! versions and a digest of each file are recorded in `vigil_schema`; a store whose schema
//! is newer than this binary, or whose applied migration text differs from the binary's, is
//! refused rather than guessed at.

use sqlx::Row;
use vigil_domain::{Digest, Timestamp};

use crate::{BackendKind, Conn, Error, Result, Store, on_conn};

/// A migration: its version, name, and the SQL for each backend.
pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sqlite: &'static str,
    pub postgres: &'static str,
}

/// Sorted by version (a test checks it). Each migration is applied if it has not been yet,
/// whatever the highest applied version is.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "foundation",
        sqlite: include_str!("../migrations/sqlite/0001_foundation.sql"),
        postgres: include_str!("../migrations/postgres/0001_foundation.sql"),
    },
    Migration {
        version: 2,
        name: "evaluations",
        sqlite: include_str!("../migrations/sqlite/0002_evaluations.sql"),
        postgres: include_str!("../migrations/postgres/0002_evaluations.sql"),
    },
    Migration {
        version: 3,
        name: "governance",
        sqlite: include_str!("../migrations/sqlite/0003_governance.sql"),
        postgres: include_str!("../migrations/postgres/0003_governance.sql"),
    },
    Migration {
        version: 4,
        name: "data_checks",
        sqlite: include_str!("../migrations/sqlite/0004_data_checks.sql"),
        postgres: include_str!("../migrations/postgres/0004_data_checks.sql"),
    },
    Migration {
        version: 5,
        name: "predictions",
        sqlite: include_str!("../migrations/sqlite/0005_predictions.sql"),
        postgres: include_str!("../migrations/postgres/0005_predictions.sql"),
    },
    Migration {
        version: 6,
        name: "cds",
        sqlite: include_str!("../migrations/sqlite/0006_cds.sql"),
        postgres: include_str!("../migrations/postgres/0006_cds.sql"),
    },
    Migration {
        version: 7,
        name: "monitoring",
        sqlite: include_str!("../migrations/sqlite/0007_monitoring.sql"),
        postgres: include_str!("../migrations/postgres/0007_monitoring.sql"),
    },
];

/// The newest schema version this binary knows.
pub fn latest_version() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

impl Migration {
    fn sql(&self, kind: BackendKind) -> &'static str {
        match kind {
            BackendKind::Sqlite => self.sqlite,
            BackendKind::Postgres => self.postgres,
        }
    }
}

/// Where a store's schema stands relative to this binary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SchemaStatus {
    pub version: i64,
    pub supported: i64,
    /// Versions this binary knows that the store has not applied.
    pub pending: Vec<i64>,
}

const CREATE_SCHEMA_TABLE: &str = "CREATE TABLE IF NOT EXISTS vigil_schema (
    version    BIGINT PRIMARY KEY,
    name       TEXT NOT NULL,
    checksum   TEXT NOT NULL,
    applied_at TEXT NOT NULL
)";

async fn schema_table_exists(c: Conn<'_>) -> Result<bool> {
    let n: i64 =
        match c {
            Conn::Sqlite(c) => sqlx::query_scalar(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'vigil_schema'",
            )
            .fetch_one(&mut *c)
            .await?,
            Conn::Postgres(c) => {
                sqlx::query_scalar(
                    "SELECT count(*) FROM information_schema.tables \
                 WHERE table_schema = current_schema() AND table_name = 'vigil_schema'",
                )
                .fetch_one(&mut *c)
                .await?
            }
        };
    Ok(n > 0)
}

async fn applied(c: Conn<'_>) -> Result<Vec<(i64, String)>> {
    let rows = on_conn!(c, c => {
        sqlx::query("SELECT version, checksum FROM vigil_schema ORDER BY version")
            .fetch_all(&mut *c)
            .await?
            .iter()
            .map(|r| Ok((r.try_get::<i64, _>("version")?, r.try_get::<String, _>("checksum")?)))
            .collect::<Result<Vec<_>, sqlx::Error>>()?
    });
    Ok(rows)
}

fn check_applied(kind: BackendKind, rows: &[(i64, String)]) -> Result<i64> {
    let found = rows.last().map_or(0, |r| r.0);
    if found > latest_version() {
        return Err(Error::SchemaTooNew {
            found,
            supported: latest_version(),
        });
    }
    for (version, checksum) in rows {
        let m = MIGRATIONS
            .iter()
            .find(|m| m.version == *version)
            .ok_or_else(|| {
                Error::Corrupt(format!(
                    "schema version {version} is not one this vigil knows"
                ))
            })?;
        if Digest::of(m.sql(kind).as_bytes()).to_hex() != *checksum {
            return Err(Error::Corrupt(format!(
                "migration {version} ({}) applied to this store differs from this vigil's",
                m.name
            )));
        }
    }
    Ok(found)
}

/// Versions known to this binary and not among `done`, in order.
fn pending(done: &[i64]) -> Vec<i64> {
    MIGRATIONS
        .iter()
        .map(|m| m.version)
        .filter(|v| !done.contains(v))
        .collect()
}

impl Store {
    /// Reports the schema version, refusing a store newer than this binary.
    pub async fn schema_status(&self) -> Result<SchemaStatus> {
        let mut pc = self.acquire().await?;
        let (version, done) = if schema_table_exists(pc.as_conn()).await? {
            let rows = applied(pc.as_conn()).await?;
            (
                check_applied(self.kind(), &rows)?,
                rows.into_iter().map(|r| r.0).collect(),
            )
        } else {
            (0, Vec::new())
        };
        Ok(SchemaStatus {
            version,
            supported: latest_version(),
            pending: pending(&done),
        })
    }

    /// Checks at start-up that the store is exactly at this binary's schema.
    pub async fn check_schema(&self) -> Result<()> {
        let s = self.schema_status().await?;
        if s.version < s.supported || !s.pending.is_empty() {
            return Err(Error::SchemaBehind {
                found: s.version,
                supported: s.supported,
            });
        }
        Ok(())
    }

    /// Applies every pending migration, each in the write transaction; returns the versions
    /// applied. Safe to run concurrently: the write lock serializes it.
    pub async fn migrate(&self, now: Timestamp) -> Result<Vec<i64>> {
        let kind = self.kind();
        let mut tx = self.begin().await?;
        on_conn!(tx.as_conn(), c => { sqlx::query(CREATE_SCHEMA_TABLE).execute(&mut *c).await?; });
        let rows = applied(tx.as_conn()).await?;
        check_applied(kind, &rows)?;
        let done: Vec<i64> = rows.into_iter().map(|r| r.0).collect();
        let mut applied_now = Vec::new();
        for m in MIGRATIONS.iter().filter(|m| !done.contains(&m.version)) {
            let sql = m.sql(kind);
            let checksum = Digest::of(sql.as_bytes()).to_hex();
            on_conn!(tx.as_conn(), c => {
                sqlx::raw_sql(sql).execute(&mut *c).await?;
                sqlx::query("INSERT INTO vigil_schema (version, name, checksum, applied_at) VALUES ($1, $2, $3, $4)")
                    .bind(m.version)
                    .bind(m.name)
                    .bind(&checksum)
                    .bind(now.to_string())
                    .execute(&mut *c)
                    .await?;
            });
            applied_now.push(m.version);
        }
        tx.commit().await?;
        Ok(applied_now)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn migrations_are_sorted_and_unique() {
        let v: Vec<i64> = super::MIGRATIONS.iter().map(|m| m.version).collect();
        assert!(v.windows(2).all(|w| w[0] < w[1]), "{v:?}");
    }
}
