//! Test support (a dev-dependency only): fresh stores on both backends, temporary homes,
//! paths to fixtures, and a small WebDriver client for browser tests (`webdriver.rs`).
//!
//! One test body, two databases: [`both_backends!`] expands a test into a `sqlite` and a
//! `postgres` variant. The PostgreSQL variant runs against a fresh database created on the
//! server named by `VIGIL_TEST_POSTGRES_URL` and dropped afterwards. Without that variable
//! the PostgreSQL variant fails — it never passes silently — unless the developer opts out
//! explicitly with `VIGIL_TEST_POSTGRES=skip`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use vigil_domain::Timestamp;
use vigil_store::{BackendKind, Store};

pub use tempfile;

pub mod webdriver;

/// A store for one test, on a fresh database, with a temporary folder beside it.
pub struct TestDb {
    pub kind: BackendKind,
    pub url: String,
    pub dir: tempfile::TempDir,
    pg_admin: Option<(String, String)>,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// The PostgreSQL server URL tests use, or why there is none.
pub fn postgres_url() -> Result<String, String> {
    match std::env::var("VIGIL_TEST_POSTGRES_URL") {
        Ok(u) if !u.is_empty() => Ok(u),
        _ => Err("VIGIL_TEST_POSTGRES_URL is not set: the PostgreSQL half of the store tests cannot run. \
                  Run the tests with scripts/test.sh (it points at postgres://postgres@127.0.0.1:5432/postgres), \
                  or set VIGIL_TEST_POSTGRES=skip to leave PostgreSQL out knowingly."
            .into()),
    }
}

fn replace_database(url: &str, db: &str) -> String {
    // postgres://user@host:port/dbname?params
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[scheme_end..].find('/').map(|i| i + scheme_end);
    let root = match path_start {
        Some(i) => &base[..i],
        None => base,
    };
    match query {
        Some(q) => format!("{root}/{db}?{q}"),
        None => format!("{root}/{db}"),
    }
}

impl TestDb {
    pub async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("temporary folder");
        let url = dir.path().join("vigil.db").display().to_string();
        TestDb {
            kind: BackendKind::Sqlite,
            url,
            dir,
            pg_admin: None,
        }
    }

    /// A fresh PostgreSQL database, or `None` when the developer opted out explicitly.
    pub async fn postgres() -> Option<TestDb> {
        let server = match postgres_url() {
            Ok(u) => u,
            Err(why) => {
                if std::env::var("VIGIL_TEST_POSTGRES").as_deref() == Ok("skip") {
                    eprintln!("skipping the PostgreSQL variant: VIGIL_TEST_POSTGRES=skip");
                    return None;
                }
                panic!("{why}");
            }
        };
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let name = format!("vigil_test_{}_{}_{}", std::process::id(), n, nanos);
        vigil_store::create_postgres_database(&server, &name)
            .await
            .unwrap_or_else(|e| panic!("cannot create test database {name} on {server}: {e}"));
        let dir = tempfile::tempdir().expect("temporary folder");
        Some(TestDb {
            kind: BackendKind::Postgres,
            url: replace_database(&server, &name),
            dir,
            pg_admin: Some((server, name)),
        })
    }

    /// A migrated store on this database.
    pub async fn store(&self) -> Store {
        let s = Store::connect(&self.url)
            .await
            .expect("connect to the test store");
        s.migrate(Timestamp::from_unix_seconds(1_700_000_000))
            .await
            .expect("migrate the test store");
        s
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((server, name)) = self.pg_admin.take() {
            // Drop the database from a thread of its own: Drop cannot await.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                if let Ok(rt) = rt {
                    rt.block_on(async move {
                        let _ = vigil_store::drop_postgres_database(&server, &name).await;
                    });
                }
            })
            .join();
        }
    }
}

/// Expands one async test body into a `sqlite` and a `postgres` test.
///
/// ```text
/// both_backends! {
///     async fn appends_events(db) {
///         let store = db.store().await;
///         …
///     }
/// }
/// ```
#[macro_export]
macro_rules! both_backends {
    ($( $(#[$meta:meta])* async fn $name:ident($db:ident) $body:block )*) => {
        $(
            mod $name {
                #[allow(unused_imports)]
                use super::*;

                $(#[$meta])*
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    let $db = $crate::TestDb::sqlite().await;
                    $body
                }

                $(#[$meta])*
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    let Some($db) = $crate::TestDb::postgres().await else { return };
                    $body
                }
            }
        )*
    };
}

/// The repository's root folder.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repository root")
}

/// A file under `examples/`.
pub fn example(name: &str) -> PathBuf {
    repo_root().join("examples").join(name)
}

/// A file under the shared test data folder beside the repository (`../shared/data`).
pub fn shared_data(rel: &str) -> PathBuf {
    repo_root().join("../shared/data").join(rel)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_name_is_replaced() {
        assert_eq!(
            replace_database("postgres://postgres@127.0.0.1:5432/postgres", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            replace_database("postgres://u@h:1", "x"),
            "postgres://u@h:1/x"
        );
        assert_eq!(
            replace_database("postgres://u@h/db?sslmode=disable", "x"),
            "postgres://u@h/x?sslmode=disable"
        );
    }
}
