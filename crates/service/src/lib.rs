//! Vigil's use cases: register, verify, list — and, as later capabilities land, evaluate,
//! approve, promote, predict and monitor. This layer owns transactions, authorization and
//! audit writes: every state change commits its audit event in the same transaction.

mod audit;
pub mod cds;
mod clock;
mod columns;
pub mod data_checks;
pub mod drift;
mod error;
pub mod evaluation;
pub mod export;
pub mod governance;
pub mod model_card;
pub mod monitor;
pub mod predictions;
mod registry;
pub mod scoring;
pub mod serving;
mod tabular;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use vigil_blobs::{BlobStore, LocalBlobStore};
use vigil_domain::{NewAuditEvent, UserName};
use vigil_store::Store;

pub use audit::{VerifyOutcome, VerifyReport};
pub use clock::{Clock, FixedClock, SystemClock};
pub use error::{Error, ErrorKind, Result};
pub use registry::{CreateModel, RegisterDataset, RegisterRelease, Registered};

/// The file name of the SQLite store inside a home.
pub const DB_FILE: &str = "vigil.db";
/// The artifact folder inside a home.
pub const ARTIFACTS_DIR: &str = "artifacts";

/// Where a Vigil instance keeps its state.
#[derive(Clone, Debug)]
pub struct Location {
    pub home: PathBuf,
    /// `None`: the embedded SQLite store at `<home>/vigil.db`.
    pub database_url: Option<String>,
}

impl Location {
    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| self.home.join(DB_FILE).display().to_string())
    }
}

/// One Vigil: its store, artifacts and clock.
#[derive(Clone)]
pub struct Vigil {
    store: Store,
    blobs: Arc<dyn BlobStore>,
    clock: Arc<dyn Clock>,
    home: PathBuf,
    evidence: Arc<dyn governance::EvidenceSource>,
    pseudonym: predictions::PseudonymKey,
}

/// What `init` did.
#[derive(Debug, serde::Serialize)]
pub struct InitReport {
    pub home: PathBuf,
    pub database: String,
    pub applied_migrations: Vec<i64>,
    pub schema_version: i64,
    pub created: bool,
}

impl Vigil {
    /// Creates (or upgrades) a home: the folder, the artifact store and the database schema.
    /// Running it again on an initialised home changes nothing.
    pub async fn init(
        loc: &Location,
        clock: Arc<dyn Clock>,
        actor: &UserName,
    ) -> Result<(Vigil, InitReport)> {
        std::fs::create_dir_all(&loc.home).map_err(|e| {
            Error::invalid(
                "home_unusable",
                format!("cannot create the home folder {}: {e}", loc.home.display()),
            )
        })?;
        let vigil = Self::connect(loc, clock).await?;
        let before = vigil.store.schema_status().await?;
        let applied = vigil.store.migrate(vigil.clock.now()).await?;
        if !applied.is_empty() {
            let e = NewAuditEvent::new(
                actor,
                "store.migrated",
                "store",
                serde_json::json!({ "from_version": before.version, "applied": applied }),
            )
            .map_err(|e| Error::internal(e.to_string()))?;
            let mut tx = vigil.store.begin().await?;
            tx.append_audit(vigil.clock.now(), &e).await?;
            tx.commit().await?;
        }
        vigil.ensure_policy(actor).await?;
        let status = vigil.store.schema_status().await?;
        let report = InitReport {
            home: loc.home.clone(),
            database: redact_url(&loc.database_url()),
            created: before.version == 0,
            applied_migrations: applied,
            schema_version: status.version,
        };
        Ok((vigil, report))
    }

    /// Opens an initialised home, refusing a store whose schema is not this binary's.
    pub async fn open(loc: &Location, clock: Arc<dyn Clock>) -> Result<Vigil> {
        if loc.database_url.is_none() && !loc.home.join(DB_FILE).exists() {
            return Err(Error::precondition(
                "home_not_initialised",
                format!(
                    "{} is not an initialised Vigil home: run `vigil init` first",
                    loc.home.display()
                ),
            ));
        }
        let vigil = Self::connect(loc, clock).await?;
        vigil.store.check_schema().await?;
        Ok(vigil)
    }

    async fn connect(loc: &Location, clock: Arc<dyn Clock>) -> Result<Vigil> {
        let blobs: Arc<dyn BlobStore> =
            Arc::new(LocalBlobStore::open(loc.home.join(ARTIFACTS_DIR))?);
        let store = Store::connect(&loc.database_url()).await.map_err(|e| {
            Error::new(
                ErrorKind::Unavailable,
                "store_unavailable",
                format!(
                    "cannot open the store at {}: {e}",
                    redact_url(&loc.database_url())
                ),
            )
        })?;
        let pseudonym = predictions::PseudonymKey::load_or_create(&loc.home)?;
        Ok(Vigil {
            store: store.clone(),
            blobs: blobs.clone(),
            clock,
            home: loc.home.clone(),
            pseudonym,
            evidence: Arc::new(governance::StoreEvidence {
                store: store.clone(),
                blobs: blobs.clone(),
            }),
        })
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn blobs(&self) -> &dyn BlobStore {
        self.blobs.as_ref()
    }

    pub fn clock(&self) -> &dyn Clock {
        self.clock.as_ref()
    }

    pub fn home(&self) -> &Path {
        &self.home
    }
}

/// A database URL with any password removed, for messages and logs.
pub fn redact_url(url: &str) -> String {
    if let Some(scheme_end) = url.find("://") {
        let rest = &url[scheme_end + 3..];
        if let Some(at) = rest.find('@') {
            let creds = &rest[..at];
            if let Some(colon) = creds.find(':') {
                return format!(
                    "{}://{}:***{}",
                    &url[..scheme_end],
                    &creds[..colon],
                    &rest[at..]
                );
            }
        }
    }
    url.to_owned()
}

pub(crate) fn audit_event(
    actor: &UserName,
    action: &str,
    subject: impl Into<String>,
    payload: serde_json::Value,
) -> Result<NewAuditEvent> {
    NewAuditEvent::new(actor, action, subject, payload).map_err(|e| Error::internal(e.to_string()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            super::redact_url("postgres://u:secret@h/db"),
            "postgres://u:***@h/db"
        );
        assert_eq!(super::redact_url("postgres://u@h/db"), "postgres://u@h/db");
    }
}
