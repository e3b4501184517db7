//! Evaluations at the service boundary, on SQLite and PostgreSQL: a release scored on the
//! example validation snapshot is recorded once, audited in the same transaction, listed and
//! shown; evaluating again writes nothing.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use vigil_domain::{Timestamp, UserName};
use vigil_service::evaluation::{
    BootstrapOptions, CompareReleases, EvaluateRelease, EvaluationSettings,
};
use vigil_service::{CreateModel, FixedClock, Location, RegisterDataset, RegisterRelease, Vigil};
use vigil_store::AuditFilter;
use vigil_test_support::{TestDb, both_backends, example};

fn text(name: &str) -> String {
    std::fs::read_to_string(example(&format!("deterioration/{name}"))).unwrap()
}

fn bytes(name: &str) -> Vec<u8> {
    std::fs::read(example(&format!("deterioration/{name}"))).unwrap()
}

/// A home on `db` with the example bundle registered: (vigil, release id, validation id).
async fn registered(db: &TestDb) -> (Vigil, String, String) {
    let loc = Location {
        home: db.path().join("home"),
        database_url: Some(db.url.clone()),
    };
    let actor = UserName::parse("scientist").unwrap();
    let clock = Arc::new(FixedClock::new(Timestamp::from_unix_seconds(1_735_689_600)));
    let (vigil, _) = Vigil::init(&loc, clock, &actor).await.unwrap();
    let reg = |file: &str, name: &str, manifest: &str| RegisterDataset {
        path: example(&format!("deterioration/{file}")),
        name: name.into(),
        manifest_toml: Some(text(manifest)),
    };
    let train = vigil
        .register_dataset(&actor, reg("train.csv", "train", "dataset-manifest.toml"))
        .await
        .unwrap();
    let validation = vigil
        .register_dataset(
            &actor,
            reg("validation.csv", "validation", "validation-manifest.toml"),
        )
        .await
        .unwrap();
    vigil
        .create_model(
            &actor,
            CreateModel {
                name: "deterioration-risk".into(),
                intended_use_toml: text("intended-use.toml"),
                risk_tier: 3,
                clinical_owner: "Dr. Osei".into(),
                technical_owner: "ML platform".into(),
            },
        )
        .await
        .unwrap();
    let release = vigil
        .register_release(
            &actor,
            RegisterRelease {
                model: "deterioration-risk".into(),
                artifact: bytes("model.onnx"),
                contract: bytes("contract.toml"),
                training_data: train.value.id.to_string(),
                code_commit: None,
                environment: None,
                hyperparameters: None,
                thresholds: vec![0.15, 0.3],
                changelog: None,
                reference_predictions: None,
            },
        )
        .await
        .unwrap();
    (
        vigil,
        release.value.id.to_string(),
        validation.value.id.to_string(),
    )
}

fn settings() -> EvaluationSettings {
    let mut s = EvaluationSettings::new("outcome");
    s.group_cols = vec!["site".into(), "sex".into()];
    s.patient_col = Some("patient_id".into());
    s.time_col = Some("prediction_time".into());
    s.bootstrap = Some(BootstrapOptions {
        replicates: 50,
        ..BootstrapOptions::default()
    });
    s
}

both_backends! {
    async fn an_evaluation_is_recorded_audited_and_listed(db) {
        let (vigil, release, dataset) = registered(&db).await;
        let actor = UserName::parse("scientist").unwrap();
        let req = || EvaluateRelease { release: release[..12].into(), dataset: dataset.clone(), settings: settings() };
        let r = vigil.evaluate_release(&actor, req()).await.unwrap();
        assert!(r.created);
        let report = &r.report;
        assert_eq!(report["scoring"]["n_rows"], 8000);
        assert_eq!(report["scoring"]["n_abstained"], 0);
        let auroc = report["auroc"]["value"].as_f64().unwrap();
        assert!((auroc - 0.856).abs() < 0.0005, "{auroc}");
        let lactate = &report["missing_data_robustness"]["lactate"];
        assert!(lactate["auroc"].as_f64().unwrap() < auroc, "{lactate}");
        assert_eq!(lactate["n_abstained"], 0);
        assert!(report["subgroups"]["site"]["west"]["auroc"].is_number());
        assert_eq!(report["thresholds"].as_array().unwrap().len(), 2, "the release's thresholds by default");

        // Stored: the row, both blobs (verified on read) and the audit event with their digests.
        let listed = vigil.list_evaluations(Some(&release)).await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0], r.evaluation);
        let shown = vigil.get_evaluation(&r.evaluation.id.short()).await.unwrap();
        let stored = vigil.evaluation_report(&shown).unwrap();
        assert_eq!(stored["scoring"], r.report["scoring"]);
        assert!((stored["auroc"]["value"].as_f64().unwrap() - auroc).abs() < 1e-12);
        let html = String::from_utf8(vigil.evaluation_html(&shown).unwrap()).unwrap();
        assert!(html.contains("Missing-data robustness"), "the report shows robustness");
        let events = vigil
            .list_audit(&AuditFilter { action: Some("evaluation.recorded".into()), limit: 10, ..Default::default() })
            .await
            .unwrap();
        assert_eq!(events.len(), 1);
        let p: serde_json::Value = serde_json::from_str(&events[0].payload).unwrap();
        assert_eq!(p["id"], r.evaluation.id.to_string());
        assert_eq!(p["release"], release);
        assert_eq!(p["dataset"], dataset);
        assert_eq!(p["report_digest"], r.evaluation.manifest.report.digest.to_hex());
        assert_eq!(p["html_digest"], r.evaluation.html.digest.to_hex());
        assert!(vigil.verify_audit().await.unwrap().is_intact());

        // The same evaluation again: same id, nothing written.
        let again = vigil.evaluate_release(&actor, req()).await.unwrap();
        assert!(!again.created);
        assert_eq!(again.evaluation.id, r.evaluation.id);
        assert_eq!(vigil.list_evaluations(None).await.unwrap().len(), 1);
        let all = vigil.list_audit(&AuditFilter { action: Some("evaluation.recorded".into()), limit: 10, ..Default::default() }).await.unwrap();
        assert_eq!(all.len(), 1);
    }

    async fn bad_input_records_nothing(db) {
        let (vigil, release, dataset) = registered(&db).await;
        let actor = UserName::parse("scientist").unwrap();
        let mut s = settings();
        s.label_col = "site".into();
        let err = vigil.evaluate_release(&actor, EvaluateRelease { release, dataset, settings: s }).await.unwrap_err();
        assert_eq!(err.code, "label_not_binary");
        assert!(err.message.contains("row 1 ") && err.message.contains("`site`"), "{}", err.message);
        assert!(vigil.list_evaluations(None).await.unwrap().is_empty());
    }

    async fn a_release_compared_with_itself_has_no_difference(db) {
        let (vigil, release, dataset) = registered(&db).await;
        let c = vigil
            .compare_releases(CompareReleases {
                release_a: release.clone(),
                release_b: release,
                dataset,
                label_col: "outcome".into(),
                positive_label: None,
            })
            .await
            .unwrap();
        assert_eq!(c.n_compared, 8000);
        assert_eq!(c.metrics["auroc"]["difference"], 0.0);
        assert!(c.delong["reason"].is_string(), "zero variance is not estimable: {}", c.delong);
    }
}
