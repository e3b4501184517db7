//! Store behaviour on SQLite and PostgreSQL with the same test bodies.

#![allow(clippy::unwrap_used)]

use serde_json::json;
use vigil_domain::{AuditEvent, ChainVerifier, NewAuditEvent, Timestamp, UserName};
use vigil_store::{AuditFilter, CdsCardRecord, CdsClientRecord, Error, JtiClaim, Store};
use vigil_test_support::both_backends;

fn ev(i: i64) -> NewAuditEvent {
    NewAuditEvent::new(
        &UserName::parse("tester").unwrap(),
        "thing.happened",
        format!("thing:{i}"),
        json!({"i": i}),
    )
    .unwrap()
}

async fn all_events(store: &Store) -> Vec<AuditEvent> {
    store
        .list_audit(&AuditFilter {
            limit: 1_000_000,
            ..Default::default()
        })
        .await
        .unwrap()
}

fn verify(events: &[AuditEvent]) -> Result<i64, vigil_domain::ChainBreak> {
    let mut v = ChainVerifier::new();
    for e in events {
        v.check(e, &e.computed_hash())?;
    }
    Ok(v.verified())
}

async fn raw(db: &vigil_test_support::TestDb, sql: &str) -> Result<(), sqlx::Error> {
    use sqlx::Connection;
    match db.kind {
        vigil_store::BackendKind::Sqlite => {
            let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.url)).await?;
            sqlx::raw_sql(sql).execute(&mut c).await?;
        }
        vigil_store::BackendKind::Postgres => {
            let mut c = sqlx::PgConnection::connect(&db.url).await?;
            sqlx::raw_sql(sql).execute(&mut c).await?;
        }
    }
    Ok(())
}

async fn count(db: &vigil_test_support::TestDb, sql: &str) -> i64 {
    use sqlx::Connection;
    match db.kind {
        vigil_store::BackendKind::Sqlite => {
            let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.url))
                .await
                .unwrap();
            sqlx::query_scalar(sql).fetch_one(&mut c).await.unwrap()
        }
        vigil_store::BackendKind::Postgres => {
            let mut c = sqlx::PgConnection::connect(&db.url).await.unwrap();
            sqlx::query_scalar(sql).fetch_one(&mut c).await.unwrap()
        }
    }
}

both_backends! {
    async fn migrations_are_idempotent_and_checked(db) {
        let store = Store::connect(&db.url).await.unwrap();
        assert!(matches!(store.check_schema().await, Err(Error::SchemaBehind { found: 0, .. })));
        let applied = store.migrate(Timestamp::from_unix_seconds(0)).await.unwrap();
        assert_eq!(applied, vigil_store::MIGRATIONS.iter().map(|m| m.version).collect::<Vec<_>>());
        assert!(store.migrate(Timestamp::from_unix_seconds(0)).await.unwrap().is_empty());
        store.check_schema().await.unwrap();
    }

    async fn a_newer_store_is_refused(db) {
        let store = db.store().await;
        raw(&db, "INSERT INTO vigil_schema (version, name, checksum, applied_at) VALUES (99, 'future', 'x', 'now')").await.unwrap();
        let err = store.check_schema().await.unwrap_err();
        assert!(matches!(err, Error::SchemaTooNew { found: 99, .. }), "{err}");
        assert!(err.to_string().contains("newer"), "{err}");
    }

    async fn appended_events_form_a_chain(db) {
        let store = db.store().await;
        for i in 0..5 {
            let mut tx = store.begin().await.unwrap();
            tx.append_audit(Timestamp::from_unix_seconds(i), &ev(i)).await.unwrap();
            tx.commit().await.unwrap();
        }
        let mut tx = store.begin().await.unwrap();
        let batch: Vec<_> = (5..105).map(ev).collect();
        tx.append_audit_batch(Timestamp::from_unix_seconds(9), &batch).await.unwrap();
        tx.commit().await.unwrap();
        let events = all_events(&store).await;
        assert_eq!(verify(&events), Ok(105));
        assert_eq!(store.audit_head().await.unwrap().unwrap().0, 105);
        let filtered = store
            .list_audit(&AuditFilter { subject: Some("thing:3".into()), ..Default::default() })
            .await
            .unwrap();
        assert_eq!(filtered.len(), 1);
        assert_eq!(filtered[0].seq, 4);
    }

    async fn a_rolled_back_transaction_leaves_no_event(db) {
        let store = db.store().await;
        let mut tx = store.begin().await.unwrap();
        tx.append_audit(Timestamp::from_unix_seconds(1), &ev(1)).await.unwrap();
        tx.rollback().await.unwrap();
        let mut tx = store.begin().await.unwrap();
        tx.append_audit(Timestamp::from_unix_seconds(1), &ev(1)).await.unwrap();
        drop(tx);
        assert_eq!(store.count_audit().await.unwrap(), 0);
    }

    async fn concurrent_writers_never_fork_the_chain(db) {
        let store = db.store().await;
        // Separate pools, as two processes or two servers would have.
        let mut tasks = Vec::new();
        for w in 0..4i64 {
            let url = db.url.clone();
            tasks.push(tokio::spawn(async move {
                let store = Store::connect(&url).await.unwrap();
                for i in 0..25 {
                    let mut tx = store.begin().await.unwrap();
                    tx.append_audit(Timestamp::from_unix_seconds(i), &ev(w * 100 + i)).await.unwrap();
                    tx.commit().await.unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let events = all_events(&store).await;
        assert_eq!(verify(&events), Ok(100));
    }

    async fn the_database_refuses_edits_and_deletions_of_audit_events(db) {
        let store = db.store().await;
        let mut tx = store.begin().await.unwrap();
        tx.append_audit(Timestamp::from_unix_seconds(1), &ev(1)).await.unwrap();
        tx.commit().await.unwrap();
        let upd = raw(&db, "UPDATE audit_events SET actor = 'mallory' WHERE seq = 1").await;
        assert!(upd.unwrap_err().to_string().contains("append-only"));
        let del = raw(&db, "DELETE FROM audit_events WHERE seq = 1").await;
        assert!(del.unwrap_err().to_string().contains("append-only"));
        assert_eq!(verify(&all_events(&store).await), Ok(1));
    }

    async fn token_ids_are_refused_until_they_expire_and_then_forgotten(db) {
        let store = db.store().await;
        let t = Timestamp::from_unix_seconds;
        let mut tx = store.begin().await.unwrap();
        for jti in ["a", "b", "c"] {
            assert!(tx.cds_remember_jti("ehr", jti, t(100), t(10)).await.unwrap());
        }
        assert!(!tx.cds_remember_jti("ehr", "a", t(100), t(11)).await.unwrap(), "replayed in the same transaction");
        tx.commit().await.unwrap();
        assert!(!store.cds_remember_jti("ehr", "b", t(100), t(50)).await.unwrap(), "replayed before expiry");
        assert!(store.cds_remember_jti("other-ehr", "b", t(100), t(50)).await.unwrap(), "ids are per issuer");
        // Once they expired, the first id a transaction remembers forgets them (the first
        // transaction of that second); the second forgets nothing but is remembered all the same.
        let mut tx = store.begin().await.unwrap();
        assert!(tx.cds_remember_jti("ehr", "d", t(300), t(200)).await.unwrap());
        assert!(tx.cds_remember_jti("ehr", "a", t(300), t(200)).await.unwrap(), "an expired id may come again");
        tx.commit().await.unwrap();
        assert_eq!(count(&db, "SELECT count(*) FROM cds_seen_jti").await, 2);
        assert!(store.cds_remember_jti("ehr", "e", t(400), t(350)).await.unwrap());
        assert_eq!(count(&db, "SELECT count(*) FROM cds_seen_jti").await, 1);
        // Only the first transaction of a second forgets: the one after it in the same second
        // leaves an expired id in place, the first of the next second removes it.
        let remember = |jti: &'static str, expires: i64, now: i64| {
            let store = store.clone();
            async move {
                let mut tx = store.begin().await.unwrap();
                assert!(tx.cds_remember_jti("ehr", jti, t(expires), t(now)).await.unwrap());
                tx.commit().await.unwrap();
            }
        };
        remember("old", 599, 600).await;
        assert_eq!(count(&db, "SELECT count(*) FROM cds_seen_jti").await, 1, "e forgotten, old kept");
        remember("new", 700, 600).await;
        assert_eq!(count(&db, "SELECT count(*) FROM cds_seen_jti").await, 2, "nothing forgotten");
        remember("newer", 700, 601).await;
        assert_eq!(count(&db, "SELECT count(*) FROM cds_seen_jti WHERE jti = 'old'").await, 0);
        assert_eq!(count(&db, "SELECT count(*) FROM cds_seen_jti").await, 2);
    }

    async fn token_ids_remembered_together_are_new_once_each(db) {
        let store = db.store().await;
        let t = Timestamp::from_unix_seconds;
        let claim = |iss: &str, jti: &str| JtiClaim { iss: iss.into(), jti: jti.into(), expires_at: t(100) };
        assert!(store.cds_remember_jti("ehr", "seen", t(100), t(10)).await.unwrap());
        let mut tx = store.begin().await.unwrap();
        let fresh = tx.cds_remember_jtis(&[
            claim("ehr", "a"), claim("ehr", "seen"), claim("ehr", "b"), claim("ehr", "a"), claim("other", "a"),
        ], t(10)).await.unwrap();
        assert_eq!(fresh, [true, false, true, false, true], "in the store or earlier in the list: not new");
        // More ids than one statement takes.
        let many: Vec<JtiClaim> = (0..1234).map(|i| claim("bulk", &format!("j{i}"))).collect();
        let fresh = tx.cds_remember_jtis(&many, t(10)).await.unwrap();
        assert_eq!(fresh.iter().filter(|f| **f).count(), 1234);
        assert!(!tx.cds_remember_jti("bulk", "j1233", t(100), t(10)).await.unwrap());
        tx.rollback().await.unwrap();
        assert_eq!(count(&db, "SELECT count(*) FROM cds_seen_jti").await, 1, "rolled back with the transaction");
    }

    async fn cards_written_in_a_transaction_are_seen_by_its_reads_and_land_with_its_commit(db) {
        let store = db.store().await;
        let t = Timestamp::from_unix_seconds;
        let card = |uuid: &str, patient: &str, rank: i64, at: i64| CdsCardRecord {
            uuid: uuid.into(), model: "sepsis".into(), release: "r1".into(), request_id: format!("req-{uuid}"),
            hook_instance: "h".into(), patient_key: Some(patient.into()), kind: "risk".into(),
            indicator: if rank == 2 { "critical" } else { "warning" }.into(), indicator_rank: rank, created_at: t(at),
        };
        let mut tx = store.begin().await.unwrap();
        tx.insert_cds_cards(&[card("c1", "p1", 1, 100), card("c2", "p2", 2, 110)]).await.unwrap();
        assert_eq!(tx.cds_last_alert_rank("sepsis", "p1", t(50)).await.unwrap(), Some(1));
        tx.insert_cds_cards(&[card("c3", "p1", 2, 120)]).await.unwrap();
        assert_eq!(tx.cds_last_alert_rank("sepsis", "p1", t(50)).await.unwrap(), Some(2));
        assert_eq!(tx.cds_alerts_since("sepsis", t(105)).await.unwrap(), 2);
        assert_eq!(tx.cds_card("c3").await.unwrap().map(|c| c.request_id), Some("req-c3".to_string()));
        // Not visible outside before the commit; and a write held back until the commit
        // fails the commit, not silently.
        tx.insert_cds_cards(&[card("c4", "p3", 1, 130)]).await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(store.cds_alerts_since("sepsis", t(0)).await.unwrap(), 4);
        let mut tx = store.begin().await.unwrap();
        tx.insert_cds_cards(&[card("c5", "p3", 1, 140), card("c1", "p1", 1, 150)]).await.unwrap();
        assert!(tx.commit().await.is_err(), "a card uuid is unique");
        assert_eq!(store.cds_alerts_since("sepsis", t(0)).await.unwrap(), 4, "nothing of the failed commit");
        let mut tx = store.begin().await.unwrap();
        tx.insert_cds_cards(&[card("c6", "p3", 1, 160)]).await.unwrap();
        tx.rollback().await.unwrap();
        assert_eq!(store.cds_card("c6").await.unwrap(), None);
    }

    async fn a_batch_transaction_remembers_ids_reads_clients_and_commits_all_or_nothing(db) {
        let store = db.store().await;
        let t = Timestamp::from_unix_seconds;
        let claim = |jti: &str| JtiClaim { iss: "ehr".into(), jti: jti.into(), expires_at: t(100) };
        let client = |iss: &str| CdsClientRecord {
            iss: iss.into(), jwks: Some(format!("{{\"keys\": [\"{iss}\"]}}")), jku: None, added_by: "op".into(),
            added_at: t(1), removed_by: None, removed_at: None,
        };
        let card = |uuid: &str, at: i64| CdsCardRecord {
            uuid: uuid.into(), model: "sepsis".into(), release: "r1".into(), request_id: format!("req-{uuid}"),
            hook_instance: "h".into(), patient_key: Some("p".into()), kind: "risk".into(),
            indicator: "warning".into(), indicator_rank: 1, created_at: t(at),
        };
        let mut tx = store.begin().await.unwrap();
        for iss in ["ehr", "gone"] {
            tx.upsert_cds_client(&client(iss)).await.unwrap();
        }
        assert!(tx.remove_cds_client("gone", "op", t(5)).await.unwrap());
        tx.commit().await.unwrap();
        assert!(store.cds_remember_jti("ehr", "seen", t(100), t(10)).await.unwrap());
        let issuers = ["nobody", "ehr", "gone"].map(String::from);
        let (mut tx, opened) = store.begin_batch(&[claim("a"), claim("seen"), claim("a")], Some(t(10)), &issuers).await.unwrap();
        assert_eq!(opened.fresh, [true, false, false], "in the store or earlier in the list: not new");
        let iss: Vec<Option<&str>> = opened.clients.iter().map(|c| c.as_ref().map(|c| c.iss.as_str())).collect();
        assert_eq!(iss, [None, Some("ehr"), None], "unknown and removed clients are none");
        assert_eq!(opened.clients[1], store.cds_client("ehr").await.unwrap(), "as a read on its own gives it");
        tx.insert_cds_cards(&[card("b1", 100)]).await.unwrap();
        tx.commit_with_predictions(&[]).await.unwrap();
        assert!(store.cds_card("b1").await.unwrap().is_some());
        assert!(!store.cds_remember_jti("ehr", "a", t(100), t(20)).await.unwrap(), "remembered with the commit");
        // A commit that fails (a card uuid again) leaves nothing of its batch, neither the
        // ids remembered as it began nor its cards; nor does a batch dropped without a commit.
        let (mut tx, opened) = store.begin_batch(&[claim("c")], Some(t(10)), &[]).await.unwrap();
        assert_eq!(opened.fresh, [true]);
        tx.insert_cds_cards(&[card("b2", 110), card("b1", 120)]).await.unwrap();
        assert!(tx.commit_with_predictions(&[]).await.is_err());
        assert_eq!(store.cds_card("b2").await.unwrap(), None);
        let (mut tx, opened) = store.begin_batch(&[claim("d")], Some(t(10)), &[]).await.unwrap();
        assert_eq!(opened.fresh, [true]);
        tx.insert_cds_cards(&[card("b3", 130)]).await.unwrap();
        drop(tx);
        let (tx, opened) = store.begin_batch(&[claim("c"), claim("d")], Some(t(10)), &[]).await.unwrap();
        assert_eq!(opened.fresh, [true, true], "the failed and the dropped batch remembered nothing");
        tx.commit_with_predictions(&[]).await.unwrap();
        assert_eq!(store.cds_card("b3").await.unwrap(), None);
        // Without ids or clients: a plain write transaction.
        let (tx, opened) = store.begin_batch(&[], None, &[]).await.unwrap();
        assert!(opened.fresh.is_empty() && opened.clients.is_empty());
        tx.commit_with_predictions(&[]).await.unwrap();
        assert_eq!(count(&db, "SELECT count(*) FROM cds_seen_jti").await, 4);
        assert_eq!(count(&db, "SELECT count(*) FROM cds_cards").await, 1);
    }

    async fn a_restarting_checkpoint_copies_everything_and_the_log_starts_again(db) {
        let store = db.store().await;
        let mut tx = store.begin().await.unwrap();
        for i in 0..2000 {
            tx.append_audit(Timestamp::from_unix_seconds(i), &ev(i)).await.unwrap();
        }
        tx.commit().await.unwrap();
        assert!(store.checkpoint_restart().await.unwrap());
        let mut tx = store.begin().await.unwrap();
        tx.append_audit(Timestamp::from_unix_seconds(2000), &ev(2000)).await.unwrap();
        tx.commit().await.unwrap();
        assert_eq!(verify(&all_events(&store).await), Ok(2001));
        if db.kind == vigil_store::BackendKind::Sqlite {
            // The log holds only the last transaction's frames: it was started again. (Only a
            // log written without pause tells a restart from a passive checkpoint, which an
            // idle store restarts as well; `bench/cds` shows that case by the log's size.)
            let mut c = <sqlx::SqliteConnection as sqlx::Connection>::connect(&format!("sqlite://{}", db.url)).await.unwrap();
            let (_, log, _): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)").fetch_one(&mut c).await.unwrap();
            assert!((1..20).contains(&log), "{log} frames in the log after a restart and one event");
        }
    }

    async fn writers_of_one_store_take_turns_and_none_waits_forever(db) {
        // Batch transactions hand the write connection straight to the next writer when
        // they end; a writer waiting for it must still get its turn (first among batch
        // writers alone, then beside writers of every other kind, a restarting checkpoint and
        // batches dropped open), and closing the store must still end.
        let store = db.store().await;
        let t = Timestamp::from_unix_seconds;
        let batches = |phase: i64, drop_every: i64| {
            (0..3i64)
                .map(|w| {
                    let s = store.clone();
                    tokio::spawn(async move {
                        for i in 0..40 {
                            let jti = format!("{phase}-{w}-{i}");
                            let claim = JtiClaim { iss: "ehr".into(), jti, expires_at: t(1000) };
                            let (tx, opened) = s.begin_batch(&[claim], Some(t(10)), &[]).await.unwrap();
                            assert_eq!(opened.fresh, [true]);
                            if drop_every > 0 && i % drop_every == drop_every - 1 {
                                drop(tx);
                            } else {
                                tx.commit_with_predictions(&[]).await.unwrap();
                            }
                        }
                    })
                })
                .collect::<Vec<_>>()
        };
        let finish = |tasks: Vec<tokio::task::JoinHandle<()>>| async move {
            let all = async {
                for task in tasks {
                    task.await.unwrap();
                }
            };
            tokio::time::timeout(std::time::Duration::from_secs(20), all)
                .await
                .expect("every writer had its turn");
        };
        finish(batches(1, 0)).await;
        let mut tasks = batches(2, 10);
        for w in 0..2i64 {
            let s = store.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..25 {
                    let mut tx = s.begin().await.unwrap();
                    tx.append_audit(t(i), &ev(w * 100 + i)).await.unwrap();
                    tx.commit().await.unwrap();
                    if i % 5 == 0 {
                        s.checkpoint_restart().await.unwrap();
                    }
                }
            }));
        }
        finish(tasks).await;
        assert_eq!(verify(&all_events(&store).await), Ok(50));
        let ids = count(&db, "SELECT count(*) FROM cds_seen_jti").await;
        assert_eq!(ids, 3 * 40 + 3 * 36, "the batches dropped open left nothing");
        tokio::time::timeout(std::time::Duration::from_secs(20), store.close())
            .await
            .expect("the store closes with its write connection idle");
    }

    async fn a_checkpoint_copies_the_log_into_the_database(db) {
        let store = db.store().await;
        let mut tx = store.begin().await.unwrap();
        for i in 0..200 {
            tx.append_audit(Timestamp::from_unix_seconds(i), &ev(i)).await.unwrap();
        }
        tx.commit().await.unwrap();
        // Nothing reads or writes meanwhile, so every page of the log is copied.
        assert_eq!(store.checkpoint().await.unwrap(), 0);
        assert_eq!(verify(&all_events(&store).await), Ok(200));
        if db.kind == vigil_store::BackendKind::Sqlite {
            // The log's frames are all in the database file now: a second checkpoint finds
            // them copied already.
            let mut c = <sqlx::SqliteConnection as sqlx::Connection>::connect(&format!("sqlite://{}", db.url)).await.unwrap();
            let (_, log, copied): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)").fetch_one(&mut c).await.unwrap();
            assert_eq!(log, copied);
            assert!(log > 0, "the transaction went through the log");
        }
    }
}

#[tokio::test]
async fn postgres_is_configured_for_these_tests() {
    // The PostgreSQL half must run in CI: fail loudly rather than skip.
    if std::env::var("CI").is_ok() {
        assert!(
            vigil_test_support::postgres_url().is_ok(),
            "CI must set VIGIL_TEST_POSTGRES_URL"
        );
    }
}
