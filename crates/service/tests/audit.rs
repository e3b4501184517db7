//! Verifying the audit chain in ranges, on SQLite and PostgreSQL: whatever the range size,
//! a chain edited, cut or renumbered at, just before or just after a range boundary is
//! reported exactly as one pass from the start reports it, at the right event.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;
use std::sync::Arc;

use serde_json::json;
use vigil_domain::{NewAuditEvent, Timestamp, UserName};
use vigil_service::{FixedClock, Location, VerifyReport, Vigil};
use vigil_store::BackendKind;
use vigil_test_support::{TestDb, both_backends};

/// Events in the chain of every test.
const HEAD: i64 = 40;

/// Range sizes every report is compared across: one event per range, ranges that do not
/// divide the chain, ranges of ten (boundaries after 10, 20, 30) and a single range.
const RANGES: [i64; 5] = [1, 3, 7, 10, 1000];

async fn chain(db: &TestDb) -> Vigil {
    let loc = Location {
        home: db.path().to_path_buf(),
        database_url: (db.kind == BackendKind::Postgres).then(|| db.url.clone()),
    };
    let clock = Arc::new(FixedClock::new(Timestamp::from_unix_seconds(1_700_000_000)));
    let actor = UserName::parse("alice").unwrap();
    let (vigil, _) = Vigil::init(&loc, clock, &actor).await.unwrap();
    let store = vigil.store();
    let have = store.audit_head().await.unwrap().map_or(0, |(s, _)| s);
    let events: Vec<NewAuditEvent> = (have..HEAD)
        .map(|i| {
            NewAuditEvent::new(
                &actor,
                "thing.happened",
                format!("thing:{i}"),
                json!({"i": i}),
            )
            .unwrap()
        })
        .collect();
    let mut tx = store.begin().await.unwrap();
    tx.append_audit_batch(Timestamp::from_unix_seconds(1_700_000_001), &events)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(store.audit_head().await.unwrap().unwrap().0, HEAD);
    sql(
        db,
        match db.kind {
            BackendKind::Sqlite => {
                "DROP TRIGGER audit_events_no_update; DROP TRIGGER audit_events_no_delete;"
            }
            BackendKind::Postgres => "ALTER TABLE audit_events DISABLE TRIGGER USER;",
        },
    );
    vigil
}

fn sql(db: &TestDb, sql: &str) {
    let out = match db.kind {
        BackendKind::Sqlite => Command::new("sqlite3")
            .arg(&db.url)
            .arg(sql)
            .output()
            .expect("sqlite3 is installed (scripts/test.sh installs it)"),
        BackendKind::Postgres => Command::new("psql")
            .arg(&db.url)
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

/// Verifies with every range size, checks that all of them give the same report, and
/// returns it.
async fn verify(v: &Vigil) -> VerifyReport {
    let mut reports = Vec::new();
    for r in RANGES {
        reports.push(v.verify_audit_in_ranges(r).await.unwrap());
    }
    let whole = serde_json::to_value(&reports[RANGES.len() - 1]).unwrap();
    for (r, report) in RANGES.iter().zip(&reports) {
        assert_eq!(
            serde_json::to_value(report).unwrap(),
            whole,
            "ranges of {r} disagree with one pass"
        );
    }
    let by_default = v.verify_audit().await.unwrap();
    assert_eq!(serde_json::to_value(&by_default).unwrap(), whole);
    reports.pop().unwrap()
}

fn assert_broken_at(r: &VerifyReport, seq: i64, kind: &str) {
    let v = serde_json::to_value(r).unwrap();
    assert_eq!(v["outcome"]["status"], "broken", "{v}");
    assert_eq!(v["outcome"]["kind"], kind, "{v}");
    assert_eq!(r.verified, seq - 1, "{v}");
}

both_backends! {
    async fn an_intact_chain_verifies_in_any_ranges(db) {
        let v = chain(&db).await;
        let r = verify(&v).await;
        assert!(r.is_intact());
        assert_eq!(r.verified, HEAD);
        assert_eq!(r.head, Some(v.store().audit_head().await.unwrap().unwrap().1));
    }

    async fn an_edit_at_a_range_boundary_is_named(db) {
        let v = chain(&db).await;
        for seq in [1, 9, 10, 11, 20, 21, 39, 40] {
            sql(&db, &format!("UPDATE audit_events SET payload = payload || ' ' WHERE seq = {seq}"));
            let r = verify(&v).await;
            assert_broken_at(&r, seq, "hash_mismatch");
            sql(&db, &format!("UPDATE audit_events SET payload = rtrim(payload) WHERE seq = {seq}"));
            assert!(verify(&v).await.is_intact());
        }
    }

    async fn an_edited_hash_at_a_range_boundary_is_named(db) {
        let v = chain(&db).await;
        // The stored hash of the last event of a range anchors the next range.
        for seq in [10, 20, 21] {
            sql(&db, &format!("UPDATE audit_events SET hash = replace(hash, substr(hash, 1, 1), 'x') WHERE seq = {seq}"));
            assert_broken_at(&verify(&v).await, seq, "hash_mismatch");
            sql(&db, &format!("UPDATE audit_events SET hash = (SELECT prev_hash FROM audit_events WHERE seq = {seq} + 1) WHERE seq = {seq}"));
            assert!(verify(&v).await.is_intact());
        }
    }

    async fn a_deletion_at_a_range_boundary_is_named(db) {
        let v = chain(&db).await;
        for seq in [1, 10, 11, 20, 21, 39] {
            sql(&db, &format!("CREATE TABLE saved AS SELECT * FROM audit_events WHERE seq = {seq}; \
                               DELETE FROM audit_events WHERE seq = {seq};"));
            let r = verify(&v).await;
            assert_broken_at(&r, seq, "gap");
            let j = serde_json::to_value(&r).unwrap();
            assert_eq!(j["outcome"]["found"], seq + 1, "{j}");
            sql(&db, "INSERT INTO audit_events SELECT * FROM saved; DROP TABLE saved;");
            assert!(verify(&v).await.is_intact());
        }
    }

    async fn a_deletion_hidden_by_renumbering_at_a_boundary_is_named(db) {
        let v = chain(&db).await;
        sql(&db, "DELETE FROM audit_events WHERE seq = 20");
        for s in 21..=HEAD {
            sql(&db, &format!("UPDATE audit_events SET seq = {} WHERE seq = {s}", s - 1));
        }
        assert_broken_at(&verify(&v).await, 20, "broken_link");
    }

    async fn two_breaks_name_the_first(db) {
        let v = chain(&db).await;
        sql(&db, "UPDATE audit_events SET actor = 'mallory' WHERE seq = 31");
        sql(&db, "DELETE FROM audit_events WHERE seq = 12");
        assert_broken_at(&verify(&v).await, 12, "gap");
    }
}
