//! `vigil predictions list` reads back recorded predictions by model, release, mode and time,
//! on SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;

use support::{Home, both_backends};
use vigil_domain::prediction::{PredictionMode, PredictionRecord};
use vigil_domain::{ReleaseId, Timestamp};
use vigil_service::{Location, SystemClock, Vigil};
use vigil_store::BackendKind;

fn record(release: ReleaseId, i: i64, mode: PredictionMode) -> PredictionRecord {
    PredictionRecord {
        seq: None,
        request_id: format!("req-{i}"),
        recorded_at: Timestamp::parse("2026-01-01T00:00:00Z")
            .unwrap()
            .plus(vigil_domain::Duration::from_micros(i * 3_600_000_000)),
        model: "deterioration-risk".into(),
        release,
        mode,
        channel: "predict".into(),
        patient_key: None,
        encounter_key: None,
        features: Vec::new(),
        score: Some(0.1 * i as f64),
        decision: Some("below:0.15".into()),
        fallback_reason: None,
        latency_us: 10,
        context: serde_json::json!({}),
    }
}

both_backends! {
    async fn lists_records_by_mode_release_and_time(db) {
        let h = Home::init(db);
        let train = h.register_example();
        let args = h.register_release_args(&train, "listed");
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let id = h.json(&args)["id"].as_str().unwrap().to_owned();
        let loc = Location {
            home: h.dir().to_path_buf(),
            database_url: (h.db.kind == BackendKind::Postgres).then(|| h.db.url.clone()),
        };
        let v = Vigil::open(&loc, Arc::new(SystemClock)).await.unwrap();
        let r = ReleaseId::parse(&id).unwrap();
        v.record_predictions(&[
            record(r, 0, PredictionMode::Active),
            record(r, 1, PredictionMode::Active),
            record(r, 2, PredictionMode::Shadow),
        ]).await.unwrap();
        let list = |extra: &[&str]| {
            let mut a = vec!["predictions", "list", "--model", "deterioration-risk"];
            a.extend_from_slice(extra);
            h.json(&a).as_array().unwrap().clone()
        };
        assert_eq!(list(&[]).len(), 3);
        let shadow = list(&["--mode", "shadow"]);
        assert_eq!(shadow.len(), 1);
        assert_eq!(shadow[0]["request_id"], "req-2");
        assert_eq!(list(&["--since", "2026-01-01T01:00:00Z"]).len(), 2);
        assert_eq!(list(&["--release", &id[..12], "--limit", "2"]).len(), 2);
        let text = h.ok(&["predictions", "list", "--model", "deterioration-risk"]);
        assert!(text.contains("req-1") && text.contains("shadow"), "{text}");
        let (err, _) = h.fails(&["predictions", "list", "--model", "deterioration-risk", "--mode", "loud"]);
        assert!(err.contains("--mode is active or shadow"), "{err}");
    }
}
