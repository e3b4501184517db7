//! Prediction records at the service boundary, on SQLite and PostgreSQL: batches written
//! whole or not at all, filters, immutability, and pseudonymised keys.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use vigil_domain::prediction::{FeatureRecord, PredictionFilter, PredictionMode, PredictionRecord};
use vigil_domain::{ReleaseId, Timestamp, UserName};
use vigil_service::{CreateModel, FixedClock, Location, RegisterDataset, RegisterRelease, Vigil};
use vigil_store::BackendKind;
use vigil_test_support::{TestDb, both_backends, example};

const T0: Timestamp = Timestamp::from_micros(1_767_225_600_000_000);

fn minute(m: i64) -> Timestamp {
    Timestamp::from_micros(T0.as_micros() + m * 60_000_000)
}

async fn world(db: &TestDb) -> (Vigil, ReleaseId) {
    let loc = Location {
        home: db.path().to_path_buf(),
        database_url: (db.kind == BackendKind::Postgres).then(|| db.url.clone()),
    };
    let ds = UserName::parse("ds").unwrap();
    let (vigil, _) = Vigil::init(&loc, Arc::new(FixedClock::new(T0)), &ds)
        .await
        .unwrap();
    let data = vigil
        .register_dataset(
            &ds,
            RegisterDataset {
                path: example("deterioration/train.csv"),
                name: "train".into(),
                manifest_toml: None,
            },
        )
        .await
        .unwrap();
    vigil
        .create_model(
            &ds,
            CreateModel {
                name: "deterioration-risk".into(),
                intended_use_toml: std::fs::read_to_string(example(
                    "deterioration/intended-use.toml",
                ))
                .unwrap(),
                risk_tier: 2,
                clinical_owner: "Dr Ward".into(),
                technical_owner: "ML team".into(),
            },
        )
        .await
        .unwrap();
    let r = vigil
        .register_release(
            &ds,
            RegisterRelease {
                model: "deterioration-risk".into(),
                artifact: std::fs::read(example("deterioration/model.onnx")).unwrap(),
                contract: std::fs::read(example("deterioration/contract.toml")).unwrap(),
                training_data: data.value.id.to_string(),
                code_commit: None,
                environment: None,
                hyperparameters: None,
                thresholds: vec![0.3],
                changelog: None,
                reference_predictions: None,
            },
        )
        .await
        .unwrap();
    (vigil, r.value.id)
}

fn record(v: &Vigil, release: &ReleaseId, i: i64, mode: PredictionMode) -> PredictionRecord {
    let abstained = i % 10 == 9;
    PredictionRecord {
        seq: None,
        request_id: format!("req-{i:05}"),
        recorded_at: minute(i),
        model: "deterioration-risk".into(),
        release: *release,
        mode,
        channel: if i % 2 == 0 { "predict" } else { "cds" }.into(),
        patient_key: Some(v.pseudonymise("patient", &format!("MRN{}", i % 7))),
        encounter_key: Some(v.pseudonymise("encounter", &format!("ENC{i}"))),
        features: vec![FeatureRecord {
            name: "heart_rate".into(),
            value: (!abstained).then_some(80.0 + i as f64),
            status: if abstained { "missing" } else { "ok" }.into(),
            reason: abstained.then(|| "not in the request".to_string()),
            source: Some("request".into()),
            observed_at: Some(T0),
        }],
        score: (!abstained).then_some(0.01 * (i % 100) as f64),
        decision: (!abstained).then(|| "below".to_string()),
        fallback_reason: abstained.then(|| "missing_required".to_string()),
        latency_us: 40 + i,
        context: serde_json::json!({ "i": i }),
    }
}

/// Runs SQL through the database's own command-line client, as an intruder would.
fn cli_sql(db: &TestDb, sql: &str) -> std::process::Output {
    let mut cmd = match db.kind {
        BackendKind::Sqlite => {
            let mut c = std::process::Command::new("sqlite3");
            c.arg(db.path().join("vigil.db")).arg(sql);
            c
        }
        BackendKind::Postgres => {
            let mut c = std::process::Command::new("psql");
            c.arg(&db.url)
                .arg("-v")
                .arg("ON_ERROR_STOP=1")
                .arg("-c")
                .arg(sql);
            c
        }
    };
    cmd.output().expect("the database client runs")
}

both_backends! {
    async fn batches_are_written_whole_and_read_back_in_order(db) {
        let (v, release) = world(&db).await;
        let batch: Vec<_> = (0..1200).map(|i| record(&v, &release, i, PredictionMode::Active)).collect();
        v.record_predictions(&batch).await.unwrap();
        let shadow: Vec<_> = (0..30).map(|i| record(&v, &release, i, PredictionMode::Shadow)).collect();
        v.record_predictions(&shadow).await.unwrap();

        let all = v.list_predictions(&PredictionFilter::default()).await.unwrap();
        assert_eq!(all.len(), 1230);
        assert!(all.windows(2).all(|w| w[0].seq < w[1].seq));
        let mut first = all[9].clone();
        assert_eq!(first.score, None);
        assert_eq!(first.fallback_reason.as_deref(), Some("missing_required"));
        first.seq = None;
        assert_eq!(first, batch[9]);

        let f = |mode, since: Option<i64>, until: Option<i64>| PredictionFilter {
            model: Some("deterioration-risk".into()),
            release: Some(release),
            mode,
            since: since.map(minute),
            until: until.map(minute),
            ..Default::default()
        };
        assert_eq!(v.count_predictions(&f(Some(PredictionMode::Shadow), None, None)).await.unwrap(), 30);
        assert_eq!(v.count_predictions(&f(Some(PredictionMode::Active), Some(100), Some(200))).await.unwrap(), 100);
        let cds = PredictionFilter { channel: Some("cds".into()), ..Default::default() };
        assert_eq!(v.count_predictions(&cds).await.unwrap(), 600 + 15);
        let page = v.list_predictions(&PredictionFilter {
            after_seq: all[99].seq, limit: Some(10), ..Default::default()
        }).await.unwrap();
        assert_eq!(page.len(), 10);
        assert_eq!(page[0].seq, all[100].seq);
        let other = PredictionFilter { model: Some("other".into()), ..Default::default() };
        assert_eq!(v.count_predictions(&other).await.unwrap(), 0);
    }

    async fn a_batch_with_a_repeated_request_writes_nothing(db) {
        let (v, release) = world(&db).await;
        v.record_predictions(&[record(&v, &release, 1, PredictionMode::Active)]).await.unwrap();
        let batch: Vec<_> = (2..600).chain([1]).map(|i| record(&v, &release, i, PredictionMode::Active)).collect();
        let err = v.record_predictions(&batch).await.unwrap_err();
        assert_eq!(err.code, "prediction_exists", "{err}");
        assert_eq!(v.count_predictions(&PredictionFilter::default()).await.unwrap(), 1);
        // The refused batch is not left open on the write connection: the next one lands.
        let next: Vec<_> = (2..5).map(|i| record(&v, &release, i, PredictionMode::Active)).collect();
        v.record_predictions(&next).await.unwrap();
        assert_eq!(v.count_predictions(&PredictionFilter::default()).await.unwrap(), 4);

        // A score that is not a probability, or no score and no reason, is refused too.
        let mut bad = record(&v, &release, 700, PredictionMode::Active);
        bad.score = Some(f64::NAN);
        assert!(v.record_predictions(&[bad.clone()]).await.is_err());
        bad.score = None;
        bad.fallback_reason = None;
        assert!(v.record_predictions(&[bad]).await.is_err());
        assert_eq!(v.count_predictions(&PredictionFilter::default()).await.unwrap(), 4);
    }

    async fn records_cannot_be_changed_or_deleted(db) {
        let (v, release) = world(&db).await;
        v.record_predictions(&[record(&v, &release, 1, PredictionMode::Active)]).await.unwrap();
        for sql in ["UPDATE predictions SET score = 0.99", "DELETE FROM predictions"] {
            let out = cli_sql(&db, sql);
            assert!(!out.status.success(), "the database allowed `{sql}`");
            assert!(String::from_utf8_lossy(&out.stderr).contains("prediction"), "{out:?}");
        }
        assert_eq!(v.list_predictions(&PredictionFilter::default()).await.unwrap()[0].score, Some(0.01));
    }

    async fn keys_never_contain_the_identifier_and_survive_reopening(db) {
        let (v, release) = world(&db).await;
        let k = v.pseudonymise("patient", "MRN-0042");
        assert_eq!(k.len(), 64);
        // Only hexadecimal digits, so neither `MRN-` nor the number shows through (a check for
        // the digits alone would fail by chance once in about a thousand keys).
        assert!(k.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')), "{k}");
        let loc = Location {
            home: db.path().to_path_buf(),
            database_url: (db.kind == BackendKind::Postgres).then(|| db.url.clone()),
        };
        let again = Vigil::open(&loc, Arc::new(FixedClock::new(T0))).await.unwrap();
        assert_eq!(again.pseudonymise("patient", "MRN-0042"), k);
        v.record_predictions(&[record(&v, &release, 3, PredictionMode::Active)]).await.unwrap();
        let stored = again.list_predictions(&PredictionFilter::default()).await.unwrap();
        assert_eq!(stored[0].patient_key.as_deref(), Some(v.pseudonymise("patient", "MRN3").as_str()));
    }

    async fn the_shadow_gate_counts_shadow_records_of_the_release_since_it_entered_shadow(db) {
        use vigil_domain::policy::{Gate, GateName, GateRule, GateStatus, ShadowStats, evaluate_gates};
        use vigil_service::governance::{EvidenceSource, StoreEvidence};
        let (v, release) = world(&db).await;
        let source = StoreEvidence {
            store: v.store().clone(),
            blobs: Arc::new(vigil_blobs::LocalBlobStore::open(db.path().join("artifacts")).unwrap()),
        };
        let gate = Gate {
            name: GateName::parse("shadow-period").unwrap(),
            rule: GateRule::Shadow { min_days: 0, min_predictions: 25 },
        };
        let judge = |scored: u64, ev: &mut vigil_domain::policy::Evidence| {
            ev.shadow = Some(ShadowStats { since: minute(5), scored });
            evaluate_gates(std::slice::from_ref(&gate), ev, minute(100))[0].status
        };
        let rel = v.get_release(&release.to_string()).await.unwrap();
        let mut ev = v.gather_evidence(&rel).await.unwrap();
        let none = source.shadow_predictions(&release, minute(5)).await.unwrap();
        assert_eq!(none, 0);
        assert_eq!(judge(none, &mut ev), GateStatus::Unmet);

        // Active records never count; shadow ones before the shadow period do not either.
        let active: Vec<_> = (0..40).map(|i| record(&v, &release, i, PredictionMode::Active)).collect();
        v.record_predictions(&active).await.unwrap();
        let shadow: Vec<_> = (0..20).map(|i| record(&v, &release, i, PredictionMode::Shadow)).collect();
        v.record_predictions(&shadow).await.unwrap();
        let some = source.shadow_predictions(&release, minute(5)).await.unwrap();
        assert_eq!(some, 15, "shadow records at minutes 5..19");
        assert_eq!(judge(some, &mut ev), GateStatus::Unmet);

        let more: Vec<_> = (20..30).map(|i| record(&v, &release, i, PredictionMode::Shadow)).collect();
        v.record_predictions(&more).await.unwrap();
        let enough = source.shadow_predictions(&release, minute(5)).await.unwrap();
        assert_eq!(enough, 25);
        assert_eq!(judge(enough, &mut ev), GateStatus::Met);
    }
}
