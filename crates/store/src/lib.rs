//! All of Vigil's SQL: one store over SQLite (the embedded default) or PostgreSQL (shared by
//! several servers), its migrations, and the storage side of the audit chain.
//!
//! Every query is written once and compiled for both backends by [`on_conn!`]: the two
//! branches are the same tokens, so they cannot drift apart. Placeholders are `$1, $2, …`
//! in order of first use, which both SQLite and PostgreSQL accept — except in multi-row
//! INSERTs, whose `VALUES` list comes from [`values_list`] (see there why).
//!
//! Write transactions ([`Store::begin`]) take the store's write lock first — `BEGIN
//! IMMEDIATE` on SQLite, a transaction-scoped advisory lock on PostgreSQL — so that reading
//! the audit chain's head and appending to it can never interleave with another writer, in
//! this process or another.

mod audit;
mod cds;
mod data_checks;
mod evaluation;
mod governance;
mod migrate;
mod monitor;
mod predictions;
mod registry;

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::AtomicI64;
use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{PgPool, Postgres, Sqlite, SqlitePool, Transaction};
use vigil_domain::Digest;

pub use audit::{AuditFilter, PACKED_FIELD_SEP, PACKED_RECORD_SEP};
pub use cds::{BatchOpening, CdsCardRecord, CdsClientRecord, CdsFeedbackRecord, JtiClaim};
pub use data_checks::DataCheckRecord;
pub use governance::{PolicyKind, PolicyRecord, ReviewSample, RollbackDrill, UserRecord};
pub use migrate::{MIGRATIONS, SchemaStatus};
pub use monitor::{
    ControlRecord, DeliveryRecord, FiringRecord, IncidentEventRecord, IncidentRecord,
    OutcomeRecord, ReferenceProfileRecord, RehearsalRecord, RuleStateRecord,
};

/// The advisory lock key that serializes writers on PostgreSQL ("vigil" in ASCII).
const PG_WRITE_LOCK: i64 = 0x76_69_67_69_6c;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// The database was migrated by a newer Vigil.
    #[error(
        "the store is at schema version {found}, newer than this vigil supports ({supported}); use a newer vigil"
    )]
    SchemaTooNew { found: i64, supported: i64 },
    /// The database has not been initialised or upgraded.
    #[error(
        "the store is at schema version {found}, this vigil needs {supported}: run `vigil init` to create or upgrade it"
    )]
    SchemaBehind { found: i64, supported: i64 },
    /// Stored data does not decode: the store was altered outside Vigil.
    #[error("the store holds data it cannot read ({0}); it may have been altered outside vigil")]
    Corrupt(String),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

impl Error {
    pub(crate) fn corrupt(e: impl std::fmt::Display) -> Error {
        Error::Corrupt(e.to_string())
    }

    /// A unique-key violation, the sign that a concurrent writer got there first.
    pub fn is_conflict(&self) -> bool {
        match self {
            Error::Conflict(_) => true,
            Error::Database(sqlx::Error::Database(e)) => e.is_unique_violation(),
            _ => false,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Which database a store runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendKind {
    Sqlite,
    Postgres,
}

#[derive(Clone, Debug)]
enum Backend {
    Sqlite(SqlitePools),
    Postgres(PgPool),
}

/// A SQLite store's two pools. SQLite lets one writer in at a time, so every write
/// transaction goes through the one connection of `write`: writers queue in the pool rather
/// than on SQLite's file lock, and the writing connection keeps its page cache from one
/// transaction to the next (SQLite drops a connection's cache whenever another connection
/// changed the file). Reads go through `read`.
///
/// A transaction this crate ends itself leaves the write connection in `idle` rather than
/// handing it back to the pool, unless another writer is waiting for it: the pool tests every
/// connection handed back (a round trip to the connection's thread, from a task of its own)
/// before the next writer may have it, which a busy prediction writer would otherwise wait
/// for before each of its batches.
#[derive(Clone, Debug)]
struct SqlitePools {
    read: SqlitePool,
    write: SqlitePool,
    idle: Arc<IdleWriter>,
}

/// The write connection between two transactions, and how many writers wait for the pool's.
#[derive(Default)]
struct IdleWriter(std::sync::Mutex<Idle>);

#[derive(Default)]
struct Idle {
    conn: Option<PoolConnection<Sqlite>>,
    waiting: usize,
    /// Set by [`Store::close`]: from then on every connection goes back to the pool, which
    /// waits for all of them as it closes.
    closing: bool,
}

impl std::fmt::Debug for IdleWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IdleWriter")
    }
}

impl IdleWriter {
    fn lock(&self) -> std::sync::MutexGuard<'_, Idle> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Counts a writer waiting on the pool for as long as it waits (or is cancelled).
struct Waiting<'a>(&'a IdleWriter);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.lock().waiting -= 1;
    }
}

impl SqlitePools {
    /// The write connection: the one left idle by the last transaction, or the pool's.
    async fn write_conn(&self) -> Result<PoolConnection<Sqlite>> {
        {
            let mut idle = self.idle.lock();
            if let Some(conn) = idle.conn.take() {
                return Ok(conn);
            }
            idle.waiting += 1;
        }
        let _waiting = Waiting(&self.idle);
        Ok(self.write.acquire().await?)
    }

    /// Takes back the write connection of a transaction that ended (committed or rolled
    /// back): kept idle for the next writer, or handed to the pool when one waits there.
    fn park(&self, conn: PoolConnection<Sqlite>) {
        let mut idle = self.idle.lock();
        if idle.waiting == 0 && idle.conn.is_none() && !idle.closing {
            idle.conn = Some(conn);
            return;
        }
        drop(idle);
        drop(conn);
    }
}

/// A connection to the store.
#[derive(Clone, Debug)]
pub struct Store {
    backend: Backend,
    /// The second (of the callers' clock) in which a transaction last forgot expired CDS
    /// token ids: transactions forget them once a second, not each one.
    jti_swept: Arc<AtomicI64>,
}

/// One connection of either backend; what every query takes.
pub(crate) enum Conn<'a> {
    Sqlite(&'a mut SqliteConnection),
    Postgres(&'a mut PgConnection),
}

impl Conn<'_> {
    /// The same connection for one more query, leaving this one usable afterwards.
    pub(crate) fn reborrow(&mut self) -> Conn<'_> {
        match self {
            Conn::Sqlite(c) => Conn::Sqlite(c),
            Conn::Postgres(c) => Conn::Postgres(c),
        }
    }

    pub(crate) fn kind(&self) -> BackendKind {
        match self {
            Conn::Sqlite(_) => BackendKind::Sqlite,
            Conn::Postgres(_) => BackendKind::Postgres,
        }
    }
}

/// Creates an empty PostgreSQL database on the server at `server_url` (for tests and for
/// provisioning). `name` must be a plain identifier.
pub async fn create_postgres_database(server_url: &str, name: &str) -> Result<()> {
    use sqlx::Connection;
    check_identifier(name)?;
    let mut c = PgConnection::connect(server_url).await?;
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut c)
        .await?;
    c.close().await?;
    Ok(())
}

/// Drops a PostgreSQL database, ending its connections first.
pub async fn drop_postgres_database(server_url: &str, name: &str) -> Result<()> {
    use sqlx::Connection;
    check_identifier(name)?;
    let mut c = PgConnection::connect(server_url).await?;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut c)
        .await?;
    c.close().await?;
    Ok(())
}

fn check_identifier(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && !name.as_bytes()[0].is_ascii_digit();
    if ok {
        Ok(())
    } else {
        Err(Error::Conflict(format!(
            "`{name}` is not a plain database name"
        )))
    }
}

/// The `VALUES` tuples of a multi-row INSERT: `rows` tuples of `cols` placeholders each,
/// bound row by row in column order.
///
/// On SQLite the placeholders are anonymous (`?`): sqlx binds a numbered `$N` parameter by
/// asking SQLite for its name, which SQLite finds by a linear scan of the statement's
/// parameter list, so a statement with thousands of `$N` parameters costs time quadratic in
/// their count (a million audit appends spent most of two minutes there). PostgreSQL only
/// accepts numbered placeholders, and binds them in linear time.
pub(crate) fn values_list(kind: BackendKind, rows: usize, cols: usize) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(rows * cols * 6);
    let mut n = 0;
    for r in 0..rows {
        s.push_str(if r == 0 { "(" } else { ", (" });
        for c in 0..cols {
            if c > 0 {
                s.push_str(", ");
            }
            n += 1;
            match kind {
                BackendKind::Sqlite => s.push('?'),
                BackendKind::Postgres => {
                    let _ = write!(s, "${n}");
                }
            }
        }
        s.push(')');
    }
    s
}

/// Runs the same body against whichever backend `conn` is.
macro_rules! on_conn {
    ($conn:expr, $c:ident => $body:expr) => {
        match $conn {
            $crate::Conn::Sqlite($c) => $body,
            $crate::Conn::Postgres($c) => $body,
        }
    };
}
pub(crate) use on_conn;

enum Pooled {
    Sqlite(PoolConnection<Sqlite>),
    Postgres(PoolConnection<Postgres>),
}

impl Pooled {
    fn as_conn(&mut self) -> Conn<'_> {
        match self {
            Pooled::Sqlite(c) => Conn::Sqlite(&mut *c),
            Pooled::Postgres(c) => Conn::Postgres(&mut *c),
        }
    }
}

impl Store {
    /// Opens a store from a URL: `postgres://…` / `postgresql://…`, `sqlite://PATH`, or a
    /// plain file path (SQLite). The SQLite file is created if missing.
    pub async fn connect(url: &str) -> Result<Store> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let opts = PgConnectOptions::from_str(url)?;
            let pool = PgPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(Duration::from_secs(30))
                .connect_with(opts)
                .await?;
            return Ok(Store {
                backend: Backend::Postgres(pool),
                jti_swept: Arc::default(),
            });
        }
        let path = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .unwrap_or(url);
        Self::open_sqlite(Path::new(path)).await
    }

    /// Opens (creating if needed) a SQLite store: WAL, foreign keys on, `synchronous=FULL`
    /// so that a committed transaction survives a power cut.
    pub async fn open_sqlite(path: &Path) -> Result<Store> {
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(60))
            // A larger page cache keeps the audit indexes in memory as the chain grows.
            .pragma("cache_size", "-65536")
            // Reading long chains through memory-mapped pages saves a copy and a system call
            // per page.
            .pragma("mmap_size", "1073741824")
            // Checkpoint the WAL into the database every 10,000 pages (about 40 MB) rather
            // than SQLite's default 1,000: a batch of audit events dirties pages all over the
            // subject and action indexes, so the default checkpointed after nearly every
            // batch and wrote those pages out again each time.
            .pragma("wal_autocheckpoint", "10000");
        let pool = |connections: u32| {
            SqlitePoolOptions::new()
                .max_connections(connections)
                .acquire_timeout(Duration::from_secs(60))
                // A connection to a local file cannot go stale; checking it before each use
                // would cost every transaction a round trip to the connection's thread.
                .test_before_acquire(false)
        };
        let read = pool(8).connect_with(opts.clone()).await?;
        // The read pool created the file (and switched it to WAL) already.
        let write = pool(1).connect_with(opts.create_if_missing(false)).await?;
        Ok(Store {
            backend: Backend::Sqlite(SqlitePools {
                read,
                write,
                idle: Arc::default(),
            }),
            jti_swept: Arc::default(),
        })
    }

    pub fn kind(&self) -> BackendKind {
        match self.backend {
            Backend::Sqlite(_) => BackendKind::Sqlite,
            Backend::Postgres(_) => BackendKind::Postgres,
        }
    }

    async fn acquire(&self) -> Result<Pooled> {
        Ok(match &self.backend {
            Backend::Sqlite(p) => Pooled::Sqlite(p.read.acquire().await?),
            Backend::Postgres(p) => Pooled::Postgres(p.acquire().await?),
        })
    }

    /// A connection for one write outside a transaction: on SQLite, the write connection.
    async fn acquire_write(&self) -> Result<Pooled> {
        Ok(match &self.backend {
            Backend::Sqlite(p) => Pooled::Sqlite(p.write_conn().await?),
            Backend::Postgres(p) => Pooled::Postgres(p.acquire().await?),
        })
    }

    /// Starts a write transaction holding the store's write lock.
    pub async fn begin(&self) -> Result<Tx> {
        let inner = match &self.backend {
            Backend::Sqlite(p) => TxInner::Sqlite(
                Transaction::begin(p.write_conn().await?, Some("BEGIN IMMEDIATE".into())).await?,
            ),
            Backend::Postgres(p) => {
                let mut tx = p.begin().await?;
                sqlx::query("SELECT pg_advisory_xact_lock($1)")
                    .bind(PG_WRITE_LOCK)
                    .execute(&mut *tx)
                    .await?;
                TxInner::Postgres(tx)
            }
        };
        Ok(self.tx_with(inner))
    }

    fn tx_with(&self, inner: TxInner) -> Tx {
        Tx {
            inner,
            head: None,
            jti_forgotten: false,
            jti_swept: self.jti_swept.clone(),
            cds_cards: Vec::new(),
        }
    }

    /// Copies what the SQLite write-ahead log holds into the database file without waiting
    /// for (or blocking) writers and readers (`PRAGMA wal_checkpoint(PASSIVE)`), and gives the
    /// number of log pages not yet copied. Run often by a long-lived server, it keeps the log
    /// below the size at which a committing transaction would checkpoint it itself, which
    /// would hold that commit — and every request waiting on it — for the whole copy.
    /// Nothing to do on PostgreSQL.
    pub async fn checkpoint(&self) -> Result<i64> {
        match &self.backend {
            Backend::Sqlite(p) => {
                let (_busy, log, copied): (i64, i64, i64) =
                    sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
                        .fetch_one(&p.read)
                        .await?;
                Ok((log - copied).max(0))
            }
            Backend::Postgres(_) => Ok(0),
        }
    }

    /// Copies what is left of the SQLite log into the database file and makes the next
    /// write start the log again from its beginning (`PRAGMA wal_checkpoint(RESTART)`): it
    /// waits for a writer to finish and holds off new ones while it copies. A passive
    /// checkpoint never restarts a log that is written without pause (there is always a
    /// frame it could not copy yet), so without this the log grows until every commit
    /// checkpoints it itself. Run by the only writer between two of its transactions, right
    /// after a passive checkpoint copied nearly everything, it copies little. `false` when a
    /// reader or writer kept it from finishing. Nothing to do on PostgreSQL.
    pub async fn checkpoint_restart(&self) -> Result<bool> {
        match &self.backend {
            Backend::Sqlite(p) => {
                let mut conn = p.write_conn().await?;
                let (busy, _log, _copied): (i64, i64, i64) =
                    sqlx::query_as("PRAGMA wal_checkpoint(RESTART)")
                        .fetch_one(&mut *conn)
                        .await?;
                p.park(conn);
                Ok(busy == 0)
            }
            Backend::Postgres(_) => Ok(true),
        }
    }

    /// Closes the pool, waiting for connections to finish.
    pub async fn close(&self) {
        match &self.backend {
            Backend::Sqlite(p) => {
                // An idle write connection goes back to the pool, which then closes it, and so
                // does every one that a transaction ending meanwhile would have left idle.
                let idle = {
                    let mut idle = p.idle.lock();
                    idle.closing = true;
                    idle.conn.take()
                };
                drop(idle);
                p.write.close().await;
                p.read.close().await;
            }
            Backend::Postgres(p) => p.close().await,
        }
    }
}

enum TxInner {
    Sqlite(Transaction<'static, Sqlite>),
    /// A SQLite transaction begun by this crate's own `BEGIN IMMEDIATE`, sent together with
    /// the transaction's first statements (see [`Store::begin_batch`]).
    SqliteOwn(OwnTx),
    Postgres(Transaction<'static, Postgres>),
}

/// The write connection of a transaction this crate began itself and must end. Dropped while
/// the transaction is open (an error, a cancelled future), the connection is closed rather
/// than returned to the pool, and SQLite rolls the transaction back as it closes.
pub(crate) struct OwnTx {
    conn: Option<PoolConnection<Sqlite>>,
    open: bool,
    pools: SqlitePools,
}

impl OwnTx {
    /// A transaction about to be begun on `conn` (open from here on: dropped before
    /// [`OwnTx::ended`], the connection is closed, and the transaction with it).
    pub(crate) fn new(conn: PoolConnection<Sqlite>, pools: &SqlitePools) -> OwnTx {
        OwnTx {
            conn: Some(conn),
            open: true,
            pools: pools.clone(),
        }
    }

    pub(crate) fn conn(&mut self) -> &mut SqliteConnection {
        self.conn
            .as_mut()
            .expect("a transaction keeps its connection until it ends")
    }

    /// The transaction was committed or rolled back: its connection waits for the next writer.
    pub(crate) fn ended(mut self) {
        self.open = false;
        if let Some(conn) = self.conn.take() {
            self.pools.park(conn);
        }
    }
}

impl Drop for OwnTx {
    fn drop(&mut self) {
        if self.open
            && let Some(conn) = &mut self.conn
        {
            conn.close_on_drop();
        }
    }
}

/// A write transaction. Dropped without [`Tx::commit`], it rolls back.
pub struct Tx {
    inner: TxInner,
    /// The chain head as seen in this transaction, once read.
    head: Option<Option<(i64, Digest)>>,
    /// Whether this transaction decided already whether to forget expired CDS token ids.
    jti_forgotten: bool,
    jti_swept: Arc<AtomicI64>,
    /// Card rows written by [`Tx::insert_cds_cards`] and not yet sent.
    cds_cards: Vec<cds::CdsCardRecord>,
}

impl Tx {
    fn as_conn(&mut self) -> Conn<'_> {
        match &mut self.inner {
            TxInner::Sqlite(t) => Conn::Sqlite(&mut *t),
            TxInner::SqliteOwn(t) => Conn::Sqlite(t.conn()),
            TxInner::Postgres(t) => Conn::Postgres(&mut *t),
        }
    }

    pub async fn commit(mut self) -> Result<()> {
        self.flush_cds_cards().await?;
        match self.inner {
            TxInner::Sqlite(t) => t.commit().await?,
            TxInner::SqliteOwn(mut t) => {
                sqlx::query("COMMIT").execute(t.conn()).await?;
                t.ended();
            }
            TxInner::Postgres(t) => t.commit().await?,
        }
        Ok(())
    }

    pub async fn rollback(self) -> Result<()> {
        match self.inner {
            TxInner::Sqlite(t) => t.rollback().await?,
            TxInner::SqliteOwn(mut t) => {
                sqlx::query("ROLLBACK").execute(t.conn()).await?;
                t.ended();
            }
            TxInner::Postgres(t) => t.rollback().await?,
        }
        Ok(())
    }
}

/// Declares read queries once and exposes them both on [`Store`] (a pooled connection) and
/// on [`Tx`] (inside the transaction, seeing its own writes).
macro_rules! reads {
    ($( $(#[$doc:meta])* fn $name:ident($($arg:ident : $ty:ty),*) -> $ret:ty => $q:path; )*) => {
        impl $crate::Store {
            $( $(#[$doc])* pub async fn $name(&self $(, $arg: $ty)*) -> $crate::Result<$ret> {
                let mut pc = self.acquire().await?;
                $q(pc.as_conn() $(, $arg)*).await
            } )*
        }
        impl $crate::Tx {
            $( $(#[$doc])* pub async fn $name(&mut self $(, $arg: $ty)*) -> $crate::Result<$ret> {
                $q(self.as_conn() $(, $arg)*).await
            } )*
        }
    };
}
pub(crate) use reads;

/// Reads a text column, a JSON column or a digest column from a row of either backend.
pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(text: &str, what: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| Error::corrupt(format!("{what}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_list_is_anonymous_on_sqlite_and_numbered_on_postgres() {
        assert_eq!(
            values_list(BackendKind::Sqlite, 2, 3),
            "(?, ?, ?), (?, ?, ?)"
        );
        assert_eq!(
            values_list(BackendKind::Postgres, 2, 3),
            "($1, $2, $3), ($4, $5, $6)"
        );
        assert_eq!(values_list(BackendKind::Postgres, 1, 1), "($1)");
    }
}
