//! Monitoring at the service boundary, on SQLite and PostgreSQL: rehearsed scenarios (a lab
//! that disappears, a stable month, calibration decay with delayed outcomes), actions that
//! happen exactly once across replicas (suppress, rollback), webhook delivery with retry
//! against a receiver on loopback, drift equal to `vigil drift`, outcomes import reports and
//! the incident lifecycle.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use vigil_domain::governance::Decision;
use vigil_domain::monitor::{IncidentStatus, Severity};
use vigil_domain::policy::{DataCheckSummary, EvaluationSummary, SubgroupMetrics};
use vigil_domain::prediction::{PredictionFilter, PredictionMode};
use vigil_domain::role::Role;
use vigil_domain::{Digest, Duration, ReleaseId, Stage, Timestamp, UserName};
use vigil_service::governance::{BoxFuture, EvidenceSource};
use vigil_service::monitor::{
    ImportOutcomes, KeyKind, NewIncident, OutcomeRow, Scenario, SimulateRequest, UpdateIncident,
};
use vigil_service::{
    Clock, CreateModel, FixedClock, Location, RegisterDataset, RegisterRelease, Result, Vigil,
};
use vigil_store::{AuditFilter, BackendKind};
use vigil_test_support::{TestDb, both_backends, example};

#[derive(Default)]
struct Recorded {
    evaluations: Mutex<Vec<EvaluationSummary>>,
}

impl EvidenceSource for Recorded {
    fn evaluations<'a>(
        &'a self,
        r: &'a ReleaseId,
    ) -> BoxFuture<'a, Result<Vec<EvaluationSummary>>> {
        let v: Vec<_> = self
            .evaluations
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e.id.starts_with(&r.short()))
            .cloned()
            .collect();
        Box::pin(async move { Ok(v) })
    }
    fn data_checks<'a>(&'a self, _: &'a ReleaseId) -> BoxFuture<'a, Result<Vec<DataCheckSummary>>> {
        Box::pin(async { Ok(Vec::new()) })
    }
    fn shadow_predictions<'a>(
        &'a self,
        _: &'a ReleaseId,
        _: Timestamp,
    ) -> BoxFuture<'a, Result<u64>> {
        Box::pin(async { Ok(10_000) })
    }
}

fn user(s: &str) -> UserName {
    UserName::parse(s).unwrap()
}

/// 2026-01-01, midnight UTC.
const DAY0: Timestamp = Timestamp::from_unix_seconds(1_767_225_600);

struct World {
    vigil: Vigil,
    loc: Location,
    clock: Arc<FixedClock>,
    releases: Vec<ReleaseId>,
    _db: TestDb,
}

/// A tier-1 model with `n` releases; the first goes to production (the others, if any,
/// follow it, so that the last one is live and the one before it can be rolled back to).
async fn world(db: TestDb, n: usize) -> World {
    let clock = Arc::new(FixedClock::new(DAY0.minus(Duration::from_days(10))));
    let loc = Location {
        home: db.path().to_path_buf(),
        database_url: (db.kind == BackendKind::Postgres).then(|| db.url.clone()),
    };
    let evidence = Arc::new(Recorded::default());
    let (vigil, _) = Vigil::init(&loc, clock.clone(), &user("admin"))
        .await
        .unwrap();
    let vigil = vigil.with_evidence(evidence.clone());
    let ds = user("ds");
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
                risk_tier: 1,
                clinical_owner: "Dr Ward".into(),
                technical_owner: "ML team".into(),
            },
        )
        .await
        .unwrap();
    let mut releases = Vec::new();
    for i in 0..n {
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
                    thresholds: vec![0.15 + 0.01 * i as f64],
                    changelog: Some(format!("release {i}")),
                    reference_predictions: None,
                },
            )
            .await
            .unwrap();
        let id = r.value.id;
        let mut metrics = BTreeMap::new();
        metrics.insert("auroc".to_string(), 0.82);
        metrics.insert("auroc.ci_low".to_string(), 0.75);
        metrics.insert("calibration.slope".to_string(), 1.0);
        metrics.insert("calibration.ece".to_string(), 0.02);
        evidence
            .evaluations
            .lock()
            .unwrap()
            .push(EvaluationSummary {
                id: format!("{}-eval", id.short()),
                digest: Digest::of(id.to_string().as_bytes()),
                dataset: None,
                at: clock.now(),
                metrics,
                subgroups: vec![SubgroupMetrics {
                    column: "sex".into(),
                    group: "f".into(),
                    n: 500,
                    too_small: false,
                    metrics: [("auroc".to_string(), 0.8)].into_iter().collect(),
                }],
            });
        let s = id.to_string();
        vigil
            .promote(&ds, &s, Stage::Validated, "evaluated")
            .await
            .unwrap();
        vigil
            .sign_off(
                &user("rev"),
                &s,
                Role::ClinicalReviewer,
                Decision::Approved,
                "ok",
            )
            .await
            .unwrap();
        vigil
            .promote(&user("gov"), &s, Stage::Approved, "signed off")
            .await
            .unwrap();
        vigil
            .promote(&user("op"), &s, Stage::Shadow, "shadow")
            .await
            .unwrap();
        clock.advance(Duration::from_secs(60));
        vigil
            .promote(&user("op"), &s, Stage::Production, "go live")
            .await
            .unwrap();
        clock.advance(Duration::from_secs(60));
        releases.push(id);
    }
    World {
        vigil,
        loc,
        clock,
        releases,
        _db: db,
    }
}

fn sim(scenario: Scenario, days: u32, change_day: u32, run_monitor: bool) -> SimulateRequest {
    SimulateRequest {
        model: "deterioration-risk".into(),
        scenario,
        start: DAY0,
        days,
        per_day: 200,
        change_day,
        seed: 7,
        source: None,
        label_col: "outcome".into(),
        site_col: Some("site".into()),
        patient_col: Some("patient_id".into()),
        run_monitor,
    }
}

async fn count(v: &Vigil, action: &str) -> usize {
    v.list_audit(&AuditFilter {
        action: Some(action.into()),
        limit: 100_000,
        ..Default::default()
    })
    .await
    .unwrap()
    .len()
}

const OVERRIDE_RULE: &str = r#"
[[rule]]
name = "overrides"
signal = "override_rate"
window = "1d"
threshold = { absolute = 0.5 }
min_samples = 20
action = { kind = "open_review", severity = "SEV3" }
"#;

const MISSING_RULE: &str = r#"
[[rule]]
name = "lactate-missing"
signal = "missing_rate"
feature = "lactate"
window = "1d"
threshold = { sigma = 5 }
min_samples = 50
action = { kind = "ACTION" }

[[rule]]
name = "fallbacks"
signal = "fallback_rate"
window = "1d"
threshold = { absolute = 0.2 }
min_samples = 50
action = { kind = "open_review", severity = "SEV2" }

[[rule]]
name = "heart-rate-drift"
signal = "psi"
feature = "heart_rate"
window = "1d"
threshold = { absolute = 0.25 }
min_samples = 50
action = { kind = "open_review", severity = "SEV3" }
"#;

both_backends! {

    async fn a_new_site_or_inputs_the_mapping_cannot_use_send_the_release_to_revalidation_once(db) {
        let w = world(db, 1).await;
        let v = &w.vigil;
        v.apply_monitor_policy(&user("gov"), &MISSING_RULE.replace("ACTION", "suppress")).await.unwrap();
        w.clock.set(DAY0.plus(Duration::from_days(20)));
        v.simulate(&user("op"), sim(Scenario::Stable, 3, 0, false)).await.unwrap();
        let day = |d: i64| DAY0.plus(Duration::from_days(d));
        let m = user("vigil-monitor");
        let profile = v.reference_profile(&m, &w.releases[0].to_string()).await.unwrap();
        assert!(!profile.summary.sites.is_empty());
        assert!(!profile.summary.sites.contains(&"Z".to_string()));
        // Sites the training data covers and inputs as mapped: nothing is triggered.
        let run = v.monitor_run(&m, day(1)).await.unwrap();
        assert!(run.triggers.is_empty(), "{:?}", run.triggers);

        // Day 1 also brings a site the training data never saw, and a temperature the
        // EHR now sends in a unit the mapping cannot convert.
        let day1 = v.store().list_predictions(&PredictionFilter {
            model: Some("deterioration-risk".into()),
            mode: Some(PredictionMode::Active),
            since: Some(day(1)),
            until: Some(day(2)),
            ..PredictionFilter::default()
        }).await.unwrap();
        let mut extra = Vec::new();
        for (i, r) in day1.iter().take(30).enumerate() {
            let mut a = r.clone();
            a.seq = None;
            a.request_id = format!("new-site-{i}");
            a.context["site"] = serde_json::json!("Z");
            extra.push(a);
            let mut b = r.clone();
            b.seq = None;
            b.request_id = format!("unmapped-{i}");
            let t = b.features.iter_mut().find(|f| f.name == "temperature").unwrap();
            t.status = "unconvertible".into();
            t.value = None;
            t.reason = Some("unit `K` cannot be converted to `Cel`".into());
            extra.push(b);
        }
        v.record_predictions(&extra).await.unwrap();
        let run = v.monitor_run(&m, day(2)).await.unwrap();
        let kinds: Vec<_> = run.triggers.iter().map(|t| t.trigger).collect();
        assert_eq!(kinds, ["new_site", "unmapped_inputs"], "{:?}", run.triggers);
        assert!(run.triggers[0].reason.contains("site `Z`"), "{}", run.triggers[0].reason);
        assert!(run.triggers[1].reason.contains("`temperature` 30×"), "{}", run.triggers[1].reason);
        let status = v.revalidation_status().await.unwrap();
        assert!(status.iter().any(|r| r.release == w.releases[0] && r.triggered));
        // Once sent, the release is not sent again: by this server or another.
        let other = Vigil::open(&w.loc, w.clock.clone()).await.unwrap();
        assert!(other.monitor_run(&m, day(2)).await.unwrap().triggers.is_empty());
        assert!(v.monitor_run(&m, day(3)).await.unwrap().triggers.is_empty());
        assert_eq!(count(v, "release.revalidation_triggered").await, 1);
        v.verify_audit().await.unwrap();
    }

    async fn a_gate_can_require_a_recent_rehearsal_of_named_scenarios(db) {
        // The first release was replaced in production by the second: its way back to
        // production passes the gates again, and the second one is there to rehearse on.
        let w = world(db, 2).await;
        let v = &w.vigil;
        let release = w.releases[0].to_string();
        let policy = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../policies/default.toml")).unwrap()
            + "\n[[tiers.1.production]]\nname = \"rehearsed\"\nkind = \"rehearsal\"\nscenarios = [\"lab_dropout\"]\nmax_age_days = 30\n";
        v.apply_policy(&user("gov"), &policy).await.unwrap();
        let gate = || async {
            let r = v.gates(&release, Stage::Production).await.unwrap();
            r.gates.into_iter().find(|g| g.gate.as_str() == "rehearsed").unwrap()
        };
        let g = gate().await;
        assert_eq!(g.status, vigil_domain::policy::GateStatus::Unmet);
        assert!(g.detail.contains("no rehearsal"), "{}", g.detail);

        v.apply_monitor_policy(&user("gov"), &MISSING_RULE.replace("ACTION", "suppress")).await.unwrap();
        w.clock.set(DAY0.plus(Duration::from_days(20)));
        v.simulate(&user("op"), sim(Scenario::Stable, 2, 0, false)).await.unwrap();
        let g = gate().await;
        assert_eq!(g.status, vigil_domain::policy::GateStatus::Unmet);
        assert!(g.detail.contains("`lab_dropout`"), "{}", g.detail);

        v.simulate(&user("op"), sim(Scenario::LabDropout { feature: "lactate".into() }, 3, 1, false)).await.unwrap();
        let g = gate().await;
        assert_eq!(g.status, vigil_domain::policy::GateStatus::Met, "{}", g.detail);

        // A rehearsal grows stale.
        w.clock.set(DAY0.plus(Duration::from_days(51)));
        assert_eq!(gate().await.status, vigil_domain::policy::GateStatus::Unmet);

        // A scenario the simulator does not know is refused when the policy is applied.
        let bad = policy.replace("[\"lab_dropout\"]", "[\"earthquake\"]");
        let e = v.apply_policy(&user("gov"), &bad).await.unwrap_err();
        assert!(e.message.contains("unknown scenario `earthquake`"), "{}", e.message);
    }

    async fn the_override_rate_is_judged_from_clinician_feedback_on_the_window_s_cards(db) {
        let w = world(db, 1).await;
        let v = &w.vigil;
        v.apply_monitor_policy(&user("gov"), OVERRIDE_RULE).await.unwrap();
        w.clock.set(DAY0.plus(Duration::from_days(20)));
        v.simulate(&user("op"), sim(Scenario::Stable, 2, 0, false)).await.unwrap();
        let day = |d: i64| DAY0.plus(Duration::from_days(d));
        let records = |since, until| async move {
            v.store().list_predictions(&PredictionFilter {
                model: Some("deterioration-risk".into()),
                mode: Some(PredictionMode::Active),
                since: Some(since),
                until: Some(until),
                ..PredictionFilter::default()
            }).await
        };
        let day0 = records(day(0), day(1)).await.unwrap();
        let day1 = records(day(1), day(2)).await.unwrap();
        assert!(day0.len() >= 40 && day1.len() >= 40);
        let feedback = |r: &vigil_domain::prediction::PredictionRecord, i: usize, outcome: &str| {
            vigil_store::CdsFeedbackRecord {
                seq: None,
                model: "deterioration-risk".into(),
                card_uuid: format!("card-{}-{i}", r.request_id),
                request_id: Some(r.request_id.clone()),
                release: Some(r.release.to_string()),
                outcome: outcome.into(),
                override_code: (outcome == "overridden").then(|| "already-aware".into()),
                override_display: None,
                user_comment: None,
                accepted_suggestions: Vec::new(),
                outcome_at: r.recorded_at.plus(Duration::from_secs(60)),
                received_at: r.recorded_at.plus(Duration::from_secs(61)),
                client_iss: "https://ehr.example.org".into(),
            }
        };
        let mut tx = v.store().begin().await.unwrap();
        // Day 0: too little feedback to judge (one override).
        tx.insert_cds_feedback(&feedback(&day0[0], 0, "overridden")).await.unwrap();
        // Day 1: 30 overrides and 10 acceptances, plus feedback on a card that no prediction
        // of this deployment made, which must not count.
        for (i, r) in day1.iter().take(40).enumerate() {
            let outcome = if i < 30 { "overridden" } else { "accepted" };
            tx.insert_cds_feedback(&feedback(r, i, outcome)).await.unwrap();
        }
        let mut stray = feedback(&day1[0], 99, "overridden");
        stray.request_id = None;
        tx.insert_cds_feedback(&stray).await.unwrap();
        tx.commit().await.unwrap();

        let m = user("vigil-monitor");
        let run = v.monitor_run(&m, day(1)).await.unwrap();
        let e = run.evaluations.iter().find(|e| e.rule == "overrides").unwrap();
        assert_eq!(e.signal.n, 1);
        assert!(run.actions.is_empty(), "{:?}", run.actions);

        let run = v.monitor_run(&m, day(2)).await.unwrap();
        let e = run.evaluations.iter().find(|e| e.rule == "overrides").unwrap();
        assert_eq!(e.signal.n, 40);
        assert_eq!(e.signal.value, Some(0.75));
        assert_eq!(run.actions.len(), 1, "{:?}", run.actions);
        let incidents = v.list_incidents(false).await.unwrap();
        assert_eq!(incidents.len(), 1);

        // The monitor report shows the same number for the same window.
        let report = v.monitor_report(&m, "deterioration-risk", Duration::from_days(1), 2, day(2), None).await.unwrap();
        let last = report.windows.last().unwrap();
        assert_eq!(last.signals["override_rate"].value, Some(0.75));
        assert_eq!(last.signals["override_rate"].n, 40);
    }
    async fn a_dropped_lab_suppresses_once_within_the_first_window_and_a_second_replica_does_nothing(db) {
        let w = world(db, 1).await;
        let v = &w.vigil;
        v.apply_monitor_policy(&user("gov"), &MISSING_RULE.replace("ACTION", "suppress")).await.unwrap();
        w.clock.set(DAY0.plus(Duration::from_days(20)));
        let s = v.simulate(&user("op"), sim(Scenario::LabDropout { feature: "lactate".into() }, 10, 4, true)).await.unwrap();
        assert_eq!(s.predictions, 2000);
        // The first window after the change (day 4) fires, and only the missing-lab rule.
        assert_eq!(s.first_firing_day, Some(4), "{:?}", s.firings);
        let fired: Vec<_> = s.firings.iter().filter(|f| f["step"] == "fire").collect();
        assert_eq!(fired.len(), 1, "{:?}", s.firings);
        assert_eq!(fired[0]["rule"], "lactate-missing");
        assert_eq!(fired[0]["action"]["outcome"]["set"], true);
        let c = v.deployment_controls("deterioration-risk").await.unwrap();
        assert!(c.is_suppressed() && !c.is_disabled());
        assert_eq!(count(v, "deployment.suppressed").await, 1);
        // The firing's audit event carries the numbers that triggered it.
        let ev = v.list_audit(&AuditFilter { action: Some("monitor.fired".into()), limit: 10, ..Default::default() }).await.unwrap();
        assert_eq!(ev.len(), 1);
        let payload: serde_json::Value = serde_json::from_str(&ev[0].payload).unwrap();
        let numbers = &payload["numbers"];
        assert_eq!(numbers["value"], 1.0);
        assert_eq!(numbers["n"], 200);
        assert!(numbers["baseline"]["value"].as_f64().unwrap() > 0.3);

        // A second server on the same store judging the same moments does nothing more.
        let other = Vigil::open(&w.loc, w.clock.clone()).await.unwrap();
        for d in 5..=10 {
            let run = other.monitor_run(&user("vigil-monitor"), DAY0.plus(Duration::from_days(d))).await.unwrap();
            assert!(run.actions.is_empty(), "{:?}", run.actions);
        }
        assert_eq!(v.list_firings(None).await.unwrap().len(), 1);
        assert_eq!(count(v, "deployment.suppressed").await, 1);
        v.verify_audit().await.unwrap();
    }

    async fn a_stable_month_raises_no_alarm(db) {
        let w = world(db, 1).await;
        let v = &w.vigil;
        v.apply_monitor_policy(&user("gov"), &MISSING_RULE.replace("ACTION", "rollback")).await.unwrap();
        w.clock.set(DAY0.plus(Duration::from_days(40)));
        let s = v.simulate(&user("op"), sim(Scenario::Stable, 30, 0, true)).await.unwrap();
        assert_eq!(s.predictions, 6000);
        assert!(s.firings.is_empty(), "{:?}", s.firings);
        assert!(v.list_firings(None).await.unwrap().is_empty());
        assert!(v.list_incidents(false).await.unwrap().is_empty());
        // The rehearsal is evidence.
        let r = v.list_rehearsals("deterioration-risk").await.unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].scenario, "stable");
        assert_eq!(count(v, "monitor.rehearsed").await, 1);
    }

    async fn a_rollback_rule_puts_the_previous_release_back_exactly_once(db) {
        let w = world(db, 2).await;
        let v = &w.vigil;
        let (a, b) = (w.releases[0], w.releases[1]);
        v.apply_monitor_policy(&user("gov"), &MISSING_RULE.replace("ACTION", "rollback")).await.unwrap();
        w.clock.set(DAY0.plus(Duration::from_days(20)));
        v.simulate(&user("op"), sim(Scenario::LabDropout { feature: "lactate".into() }, 6, 2, false)).await.unwrap();
        let at = DAY0.plus(Duration::from_days(3));
        let other = Vigil::open(&w.loc, w.clock.clone()).await.unwrap();
        let m = user("vigil-monitor");
        let (r1, r2) = tokio::join!(v.monitor_run(&m, at), other.monitor_run(&m, at));
        let (r1, r2) = (r1.unwrap(), r2.unwrap());
        assert_eq!(r1.actions.len() + r2.actions.len(), 1, "{:?} {:?}", r1.actions, r2.actions);
        let stages = v.list_release_stages("deterioration-risk").await.unwrap();
        let stage = |id: ReleaseId| stages.iter().find(|(r, _)| r.id == id).unwrap().1;
        assert_eq!(stage(a), Stage::Production);
        assert_eq!(stage(b), Stage::Validated);
        assert_eq!(count(v, "deployment.rolled_back").await, 1);
        assert_eq!(count(v, "release.restored").await, 1);
        // Later runs watch the restored release; nothing rolls back again.
        v.monitor_run(&user("vigil-monitor"), DAY0.plus(Duration::from_days(4))).await.unwrap();
        assert_eq!(v.list_firings(None).await.unwrap().iter().filter(|f| f.action == "rollback").count(), 1);
    }

    async fn calibration_decay_is_judged_only_once_outcomes_are_due(db) {
        let w = world(db, 1).await;
        let v = &w.vigil;
        v.apply_monitor_policy(&user("gov"), r#"
[[rule]]
name = "calibration-oe"
signal = "oe_ratio"
window = "1d"
threshold = { relative = 0.5 }
direction = "above"
min_samples = 100
label_delay = "3d"
action = { kind = "open_review", severity = "SEV2" }
"#).await.unwrap();
        w.clock.set(DAY0.plus(Duration::from_days(30)));
        let s = v.simulate(&user("op"), sim(Scenario::Prevalence { extra: 0.4 }, 8, 2, false)).await.unwrap();
        assert_eq!(s.outcomes, 1600);
        // At the end of day 7 the decayed days are recorded, but their outcomes are not due:
        // only windows that ended 3 days earlier are judged, and day 2's labels are not yet.
        let early = v.monitor_run(&user("vigil-monitor"), DAY0.plus(Duration::from_days(5))).await.unwrap();
        assert_eq!(early.evaluations.len(), 1);
        assert_eq!(early.evaluations[0].window_end, DAY0.plus(Duration::from_days(2)));
        assert!(early.actions.is_empty(), "{:?}", early.evaluations);
        // Once day 7's outcomes are due, the decay is found.
        let late = v.monitor_run(&user("vigil-monitor"), DAY0.plus(Duration::from_days(11))).await.unwrap();
        assert_eq!(late.actions.len(), 1, "{:?}", late.evaluations);
        assert_eq!(late.evaluations[0].window_end, DAY0.plus(Duration::from_days(8)));
        let inc = v.list_incidents(true).await.unwrap();
        assert_eq!(inc.len(), 1);
        assert_eq!(inc[0].severity, "SEV2");
        let rv = v.revalidation_status().await.unwrap();
        assert!(rv[0].triggered, "open_review sends the release to revalidation");
    }

    async fn webhooks_are_retried_after_a_failure_and_recorded(db) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let bodies = Arc::new(Mutex::new(Vec::<String>::new()));
        let got = bodies.clone();
        tokio::spawn(async move {
            let mut n = 0;
            loop {
                let (mut sock, _) = listener.accept().await.unwrap();
                n += 1;
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let k = sock.read(&mut chunk).await.unwrap();
                    buf.extend_from_slice(&chunk[..k]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    if let Some(h) = text.find("\r\n\r\n") {
                        let len = text[..h].lines().find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse::<usize>().unwrap())).unwrap_or(0);
                        if buf.len() >= h + 4 + len { got.lock().unwrap().push(text[h + 4..].to_string()); break; }
                    }
                    if k == 0 { break; }
                }
                let status = if n == 1 { "500 Internal Server Error" } else { "200 OK" };
                let _ = sock.write_all(format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n").as_bytes()).await;
            }
        });
        let w = world(db, 1).await;
        let v = &w.vigil;
        v.apply_monitor_policy(&user("gov"), &MISSING_RULE.replace(
            "action = { kind = \"ACTION\" }",
            &format!("action = {{ kind = \"notify\", url = \"http://{addr}/hooks/vigil\", retries = 2 }}"),
        )).await.unwrap();
        w.clock.set(DAY0.plus(Duration::from_days(20)));
        v.simulate(&user("op"), sim(Scenario::LabDropout { feature: "lactate".into() }, 3, 1, false)).await.unwrap();
        let run = v.monitor_run(&user("vigil-monitor"), DAY0.plus(Duration::from_days(2))).await.unwrap();
        assert_eq!(run.actions.len(), 1);
        assert_eq!(run.actions[0].outcome["delivered"], true, "{}", run.actions[0].outcome);
        let d = v.list_deliveries().await.unwrap();
        assert_eq!(d.iter().map(|d| d.status).collect::<Vec<_>>(), vec![Some(500), Some(200)]);
        let bodies = bodies.lock().unwrap().clone();
        assert_eq!(bodies.len(), 2);
        let body: serde_json::Value = serde_json::from_str(&bodies[1]).unwrap();
        assert_eq!(body["rule"], "lactate-missing");
        assert_eq!(body["numbers"]["value"], 1.0);
        assert_eq!(count(v, "monitor.notified").await, 1);
    }

    async fn monitor_drift_equals_the_evaluation_engines_drift_on_the_same_samples(db) {
        let w = world(db, 1).await;
        let v = &w.vigil;
        w.clock.set(DAY0.plus(Duration::from_days(20)));
        v.simulate(&user("op"), sim(Scenario::CaseMix { feature: "age".into(), share: 0.9 }, 2, 1, false)).await.unwrap();
        let (start, end) = (DAY0.plus(Duration::from_days(1)), DAY0.plus(Duration::from_days(2)));
        let mine = v.monitor_drift(&user("op"), &w.releases[0].to_string(), start, end).await.unwrap();
        // The same current sample written as a file, compared by `vigil drift`'s engine.
        let recs = v.list_predictions(&PredictionFilter {
            model: Some("deterioration-risk".into()), mode: Some(PredictionMode::Active),
            since: Some(start), until: Some(end), ..Default::default()
        }).await.unwrap();
        let names: Vec<String> = mine.features.keys().cloned().collect();
        let mut csv = names.join(",") + "\n";
        for r in &recs {
            let cells: Vec<String> = names.iter().map(|n| {
                let f = r.features.iter().find(|f| &f.name == n).unwrap();
                match (f.status.as_str(), f.value) {
                    ("ok" | "converted", Some(x)) if n == "sex" => ["female", "male"][x as usize].to_string(),
                    ("ok" | "converted", Some(x)) => format!("{x:?}"),
                    _ => String::new(),
                }
            }).collect();
            csv += &(cells.join(",") + "\n");
        }
        let cur = w.loc.home.join("current.csv");
        std::fs::write(&cur, csv).unwrap();
        let contract = vigil_domain::FeatureContract::from_toml(&std::fs::read_to_string(example("deterioration/contract.toml")).unwrap()).unwrap();
        let theirs = vigil_service::drift::drift(vigil_service::drift::DriftRequest {
            reference: vigil_service::drift::DriftSource::file(&example("deterioration/train.csv")),
            current: vigil_service::drift::DriftSource::file(&cur),
            columns: Some(names.clone()),
            contract: Some(contract),
        }).unwrap();
        let mut drifted = 0;
        for n in &names {
            let (a, b) = (&mine.features[n], &theirs.report.features[n]);
            assert_eq!(a.psi, b.psi, "{n}");
            assert_eq!(a.ks_statistic, b.ks_statistic, "{n}");
            assert_eq!(a.ks_pvalue, b.ks_pvalue, "{n}");
            assert_eq!(a.js_distance, b.js_distance, "{n}");
            assert_eq!(a.wasserstein, b.wasserstein, "{n}");
            assert_eq!(a.chi2, b.chi2, "{n}");
            drifted += usize::from(a.drifted == Ok(true));
        }
        assert!(mine.features["age"].psi.clone().unwrap() > 0.1, "the case-mix shift shows in age");
        assert!(drifted >= 1);
        // The report's latest window carries the same numbers.
        let rep = v.monitor_report(&user("op"), "deterioration-risk", Duration::from_days(1), 2, end, Some("site")).await.unwrap();
        assert_eq!(rep.drift.features["age"].psi, mine.features["age"].psi);
        assert_eq!(rep.windows.len(), 2);
        assert_eq!(rep.windows[1].predictions, 200);
        assert!(rep.groups.contains_key("north"));
        let html = rep.html(end);
        assert!(html.contains("psi:age") && html.contains("<svg"));
    }

    async fn outcome_imports_report_duplicates_unknown_and_late_keys(db) {
        let w = world(db, 1).await;
        let v = &w.vigil;
        w.clock.set(DAY0.plus(Duration::from_days(1)));
        v.simulate(&user("op"), sim(Scenario::Stable, 1, 0, false)).await.unwrap();
        let recs = v.list_predictions(&PredictionFilter { limit: Some(3), ..Default::default() }).await.unwrap();
        let row = |k: &str, l: bool| OutcomeRow { key: k.into(), label: l, observed_at: None };
        // The simulation recorded outcomes by encounter; by request id nothing is recorded yet.
        w.clock.set(DAY0.plus(Duration::from_days(60)));
        let r = v.import_outcomes(&user("ds"), ImportOutcomes {
            source: "test".into(),
            key_kind: KeyKind::Request,
            rows: vec![
                row(&recs[0].request_id, true),
                row(&recs[1].request_id, false),
                row(&recs[0].request_id, true),
                row("no-such-request", true),
            ],
            digest: Digest::of(b"x"),
        }).await.unwrap();
        assert_eq!(r.received, 4);
        assert_eq!(r.imported, 2);
        assert_eq!(r.duplicate_rows, vec![3]);
        assert_eq!(r.unknown, vec![4]);
        assert_eq!(r.late, vec![1, 2], "60 days after the prediction is past the 30-day default delay");
        let again = v.import_outcomes(&user("ds"), ImportOutcomes {
            source: "test".into(),
            key_kind: KeyKind::Request,
            rows: vec![row(&recs[0].request_id, false)],
            digest: Digest::of(b"y"),
        }).await.unwrap();
        assert_eq!(again.imported, 0);
        assert_eq!(again.already_recorded, vec![1]);
        assert_eq!(again.conflicting, vec![1]);
        assert_eq!(count(v, "outcomes.imported").await, 3);
    }

    async fn incidents_open_update_and_close_with_a_postmortem(db) {
        let w = world(db, 1).await;
        let v = &w.vigil;
        let i = v.open_incident(&user("op"), NewIncident {
            title: "Cards missing on ward 4".into(),
            severity: Severity::Sev2,
            model: Some("deterioration-risk".into()),
            releases: vec![w.releases[0].to_string()],
            owner: Some("Dr Osei".into()),
            note: None,
        }).await.unwrap();
        let id = i.incident.id;
        assert_eq!(i.incident.owner.as_deref(), Some("Dr Osei"));
        v.update_incident(&user("op"), id, UpdateIncident { status: Some(IncidentStatus::Investigating), note: Some("feed checked".into()), ..Default::default() }).await.unwrap();
        let e = v.update_incident(&user("op"), id, UpdateIncident { status: Some(IncidentStatus::Closed), ..Default::default() }).await.unwrap_err();
        assert_eq!(e.code, "incident_change_refused");
        assert!(e.message.contains("postmortem"));
        let closed = v.update_incident(&user("op"), id, UpdateIncident {
            status: Some(IncidentStatus::Closed),
            postmortem: Some("The lactate interface stopped after the EHR upgrade; mapping restored, alert added.".into()),
            ..Default::default()
        }).await.unwrap();
        assert_eq!(closed.incident.status, "closed");
        let kinds: Vec<&str> = closed.timeline.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(kinds, vec!["opened", "status", "note", "closed", "postmortem"]);
        assert!(v.update_incident(&user("op"), id, UpdateIncident { note: Some("again".into()), ..Default::default() }).await.is_err());
        assert_eq!(count(v, "incident.closed").await, 1);
        assert!(v.list_incidents(true).await.unwrap().is_empty());
    }
}
