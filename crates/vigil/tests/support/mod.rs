//! Running the real `vigil` binary against a test home on either backend.

#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use vigil_store::BackendKind;
use vigil_test_support::TestDb;

pub use vigil_test_support::{both_backends, example};

/// A home for the binary: SQLite in the test folder, or a fresh PostgreSQL database.
pub struct Home {
    pub db: TestDb,
}

impl Home {
    /// Runs `vigil init` on a fresh database.
    pub fn init(db: TestDb) -> Home {
        let h = Home { db };
        h.ok(&["init"]);
        h
    }

    pub fn dir(&self) -> &Path {
        self.db.path()
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_vigil"));
        c.arg("--home").arg(self.dir()).arg("--as").arg("tester");
        if self.db.kind == BackendKind::Postgres {
            c.arg("--database-url").arg(&self.db.url);
        }
        c.env_remove("VIGIL_HOME")
            .env_remove("VIGIL_DATABASE_URL")
            .env_remove("VIGIL_USER");
        c.args(args);
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run vigil")
    }

    /// Runs and expects success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "vigil {args:?} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs and expects failure; returns stderr and the exit code.
    pub fn fails(&self, args: &[&str]) -> (String, i32) {
        let out = self.run(args);
        assert!(
            !out.status.success(),
            "vigil {args:?} should have failed:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
        (
            String::from_utf8_lossy(&out.stderr).into_owned()
                + &String::from_utf8_lossy(&out.stdout),
            out.status.code().unwrap_or(-1),
        )
    }

    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut a = args.to_vec();
        a.push("--json");
        serde_json::from_str(&self.ok(&a)).expect("JSON output")
    }

    pub fn audit_count(&self) -> usize {
        self.json(&["audit", "log", "--limit", "1000000"])
            .as_array()
            .map_or(0, Vec::len)
    }

    /// Runs SQL through the database's own command-line client (`sqlite3` or `psql`).
    pub fn sql(&self, sql: &str) {
        let out = match self.db.kind {
            BackendKind::Sqlite => Command::new("sqlite3")
                .arg(self.dir().join("vigil.db"))
                .arg(sql)
                .output()
                .expect("sqlite3 is installed (scripts/test.sh installs it)"),
            BackendKind::Postgres => Command::new("psql")
                .arg(&self.db.url)
                .args(["-v", "ON_ERROR_STOP=1", "-q", "-c", sql])
                .output()
                .expect("psql is installed (scripts/test.sh installs it)"),
        };
        assert!(
            out.status.success(),
            "SQL failed: {sql}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The SQL that lifts the append-only triggers, as someone with database access could.
    pub fn drop_audit_triggers(&self) {
        match self.db.kind {
            BackendKind::Sqlite => self
                .sql("DROP TRIGGER audit_events_no_update; DROP TRIGGER audit_events_no_delete;"),
            BackendKind::Postgres => self.sql("ALTER TABLE audit_events DISABLE TRIGGER USER;"),
        }
    }

    /// Registers the example training data and model; returns the snapshot id.
    pub fn register_example(&self) -> String {
        let ds = self.json(&[
            "dataset",
            "register",
            path(&example("deterioration/train.csv")),
            "--name",
            "train",
            "--manifest",
            path(&example("deterioration/dataset-manifest.toml")),
        ]);
        self.ok(&[
            "model",
            "create",
            "deterioration-risk",
            "--intended-use",
            path(&example("deterioration/intended-use.toml")),
            "--risk-tier",
            "3",
            "--clinical-owner",
            "Dr Osei",
            "--technical-owner",
            "ML platform",
        ]);
        ds["id"].as_str().expect("snapshot id").to_owned()
    }

    pub fn register_release_args<'a>(&self, snapshot: &'a str, changelog: &'a str) -> Vec<String> {
        vec![
            "release".into(),
            "register".into(),
            "--model".into(),
            "deterioration-risk".into(),
            "--artifact".into(),
            path(&example("deterioration/model.onnx")).into(),
            "--contract".into(),
            path(&example("deterioration/contract.toml")).into(),
            "--training-data".into(),
            snapshot.into(),
            "--threshold".into(),
            "0.15".into(),
            "--changelog".into(),
            changelog.into(),
            "--reference-predictions".into(),
            path(&example("deterioration/reference-predictions.csv")).into(),
        ]
    }
}

pub fn path(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write test file");
    p
}
pub mod serve;
