//! Governance at the service boundary, on SQLite and PostgreSQL: gates, sign-offs bound to
//! evidence, separation of duties, exceptions with expiry, concurrent promotion, rollback
//! and history, users and roles.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use vigil_domain::governance::Decision;
use vigil_domain::policy::{DataCheckSummary, EvaluationSummary, GateStatus, SubgroupMetrics};
use vigil_domain::role::{Role, Roles};
use vigil_domain::{Digest, Duration, ReleaseId, Stage, Timestamp, UserName};
use vigil_service::governance::{BoxFuture, EvidenceSource};
use vigil_service::{
    Clock, CreateModel, FixedClock, Location, RegisterDataset, RegisterRelease, Result, Vigil,
};
use vigil_store::{AuditFilter, BackendKind};
use vigil_test_support::{TestDb, both_backends, example};

/// Evaluations and data checks as the evaluation capability would record them.
#[derive(Default)]
struct Recorded {
    evaluations: Mutex<Vec<EvaluationSummary>>,
    checks: Mutex<Vec<DataCheckSummary>>,
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
        let v = self.checks.lock().unwrap().clone();
        Box::pin(async move { Ok(v) })
    }
    fn shadow_predictions<'a>(
        &'a self,
        _: &'a ReleaseId,
        _: Timestamp,
    ) -> BoxFuture<'a, Result<u64>> {
        Box::pin(async { Ok(10_000) })
    }
}

impl Recorded {
    fn evaluate(&self, r: &ReleaseId, n: usize, at: Timestamp, auroc_low: f64) {
        let mut metrics = BTreeMap::new();
        metrics.insert("auroc".to_string(), 0.82);
        metrics.insert("auroc.ci_low".to_string(), auroc_low);
        metrics.insert("calibration.slope".to_string(), 1.02);
        metrics.insert("calibration.ece".to_string(), 0.02);
        let sub = |g: &str, v: f64| SubgroupMetrics {
            column: "sex".into(),
            group: g.into(),
            n: 500,
            too_small: false,
            metrics: [("auroc".to_string(), v)].into_iter().collect(),
        };
        self.evaluations.lock().unwrap().push(EvaluationSummary {
            id: format!("{}-eval-{n}", r.short()),
            digest: Digest::of(format!("{r}{n}").as_bytes()),
            dataset: None,
            at,
            metrics,
            subgroups: vec![sub("f", 0.80), sub("m", 0.84)],
        });
    }
    fn check(&self, at: Timestamp) {
        let ds = vigil_domain::SnapshotId::from_digest(Digest::of(b"ds"));
        self.checks.lock().unwrap().push(DataCheckSummary {
            id: "checks-1".into(),
            digest: Digest::of(b"checks"),
            dataset: ds,
            at,
            blocking_failures: Vec::new(),
        });
    }
}

fn user(s: &str) -> UserName {
    UserName::parse(s).unwrap()
}

const T0: Timestamp = Timestamp::from_unix_seconds(1_780_000_000);

struct World {
    vigil: Vigil,
    clock: Arc<FixedClock>,
    evidence: Arc<Recorded>,
    releases: Vec<ReleaseId>,
    _db: TestDb,
}

/// A home with a model of `tier` and `n` releases registered by `ds`.
async fn world(db: TestDb, tier: u8, n: usize) -> World {
    let clock = Arc::new(FixedClock::new(T0));
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
                risk_tier: tier,
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
                    thresholds: vec![0.3],
                    changelog: Some(format!("release {i}")),
                    reference_predictions: None,
                },
            )
            .await
            .unwrap();
        releases.push(r.value.id);
    }
    World {
        vigil,
        clock,
        evidence,
        releases,
        _db: db,
    }
}

async fn actions(v: &Vigil, action: &str) -> usize {
    v.list_audit(&AuditFilter {
        action: Some(action.into()),
        limit: 10_000,
        ..Default::default()
    })
    .await
    .unwrap()
    .len()
}

/// Evidence and a clinical sign-off enough for a tier-1 release to reach `approved`.
async fn approve_tier1(w: &World, r: &ReleaseId) {
    let v = &w.vigil;
    w.evidence.evaluate(r, 1, w.clock.now(), 0.75);
    v.promote(&user("ds"), &r.to_string(), Stage::Validated, "evaluated")
        .await
        .unwrap();
    v.sign_off(
        &user("rev"),
        &r.to_string(),
        Role::ClinicalReviewer,
        Decision::Approved,
        "ok",
    )
    .await
    .unwrap();
    v.promote(&user("gov"), &r.to_string(), Stage::Approved, "signed off")
        .await
        .unwrap();
}

both_backends! {
    async fn promotion_is_refused_with_the_unmet_gates_named_then_allowed_with_evidence(db) {
        let w = world(db, 2, 1).await;
        let (v, r) = (&w.vigil, w.releases[0].to_string());
        let e = v.promote(&user("ds"), &r, Stage::Validated, "first look").await.unwrap_err();
        assert_eq!(e.code, "gates_unmet");
        for g in ["auroc-lower-bound", "calibration-slope", "data-checks"] {
            assert!(e.message.contains(g), "{}", e.message);
        }
        assert!(e.message.contains("no evaluation recorded"), "{}", e.message);
        assert_eq!(actions(v, "promotion.refused").await, 1);

        w.evidence.evaluate(&w.releases[0], 1, w.clock.now(), 0.72);
        w.evidence.check(w.clock.now());
        let report = v.gates(&r, Stage::Validated).await.unwrap();
        assert!(report.gates.iter().all(|g| g.status == GateStatus::Met), "{:?}", report.gates);
        let out = v.promote(&user("ds"), &r, Stage::Validated, "evaluated on validation set").await.unwrap();
        assert_eq!(out.changes.len(), 1);
        assert_eq!(out.changes[0].to, Stage::Validated);
        assert_eq!(actions(v, "release.promoted").await, 1);
        assert!(v.verify_audit().await.unwrap().is_intact());
    }

    async fn the_author_cannot_sign_off_and_new_evidence_makes_a_sign_off_stale(db) {
        let w = world(db, 2, 1).await;
        let (v, id) = (&w.vigil, w.releases[0]);
        let r = id.to_string();
        w.evidence.evaluate(&id, 1, w.clock.now(), 0.72);
        w.evidence.check(w.clock.now());
        v.promote(&user("ds"), &r, Stage::Validated, "evaluated").await.unwrap();

        let e = v.sign_off(&user("ds"), &r, Role::ClinicalReviewer, Decision::Approved, "mine").await.unwrap_err();
        assert_eq!(e.code, "own_release");
        assert_eq!(actions(v, "sign_off.refused").await, 1);

        v.sign_off(&user("rev"), &r, Role::ClinicalReviewer, Decision::Approved, "looks right").await.unwrap();
        let g = v.gates(&r, Stage::Approved).await.unwrap();
        let so = g.gates.iter().find(|g| g.gate.as_str() == "clinical-sign-off").unwrap();
        assert_eq!(so.status, GateStatus::Met, "{}", so.detail);

        w.clock.advance(Duration::from_secs(60));
        w.evidence.evaluate(&id, 2, w.clock.now(), 0.71);
        let g = v.gates(&r, Stage::Approved).await.unwrap();
        let so = g.gates.iter().find(|g| g.gate.as_str() == "clinical-sign-off").unwrap();
        assert_eq!(so.status, GateStatus::Unmet);
        assert!(so.detail.contains("stale"), "{}", so.detail);
        let e = v.promote(&user("gov"), &r, Stage::Approved, "go").await.unwrap_err();
        assert!(e.message.contains("clinical-sign-off"), "{}", e.message);

        v.sign_off(&user("rev"), &r, Role::ClinicalReviewer, Decision::Approved, "seen the new evaluation").await.unwrap();
        v.promote(&user("gov"), &r, Stage::Approved, "signed off on current evidence").await.unwrap();
    }

    async fn an_exception_covers_a_gate_until_it_expires(db) {
        let w = world(db, 2, 1).await;
        let (v, id) = (&w.vigil, w.releases[0]);
        let r = id.to_string();
        w.evidence.evaluate(&id, 1, w.clock.now(), 0.72);
        let e = v.grant_exception(&user("ds"), &r, "data-checks", "mine", T0.plus(Duration::from_days(7))).await.unwrap_err();
        assert_eq!(e.code, "own_release");
        let bad = v.grant_exception(&user("gov"), &r, "no-such-gate", "x", T0.plus(Duration::from_days(7))).await.unwrap_err();
        assert_eq!(bad.code, "unknown_gate");
        let x = v
            .grant_exception(&user("gov"), &r, "data-checks", "checks run nightly; source unchanged", T0.plus(Duration::from_days(7)))
            .await
            .unwrap();
        let g = v.gates(&r, Stage::Validated).await.unwrap();
        let dc = g.gates.iter().find(|g| g.gate.as_str() == "data-checks").unwrap();
        assert_eq!(dc.status, GateStatus::Covered);
        assert_eq!(dc.exception.as_ref().map(|e| e.id), Some(x.id));

        w.clock.advance(Duration::from_days(8));
        let g = v.gates(&r, Stage::Validated).await.unwrap();
        let dc = g.gates.iter().find(|g| g.gate.as_str() == "data-checks").unwrap();
        assert_eq!(dc.status, GateStatus::Unmet);
        assert!(v.promote(&user("ds"), &r, Stage::Validated, "late").await.is_err());

        w.clock.set(T0.plus(Duration::from_days(1)));
        let out = v.promote(&user("ds"), &r, Stage::Validated, "covered").await.unwrap();
        assert_eq!(out.changes[0].exceptions, vec![x.id]);
        assert_eq!(actions(v, "exception.granted").await, 1);
    }

    async fn two_operators_promoting_two_releases_at_once_exactly_one_wins(db) {
        let w = world(db, 1, 2).await;
        for r in &w.releases {
            approve_tier1(&w, r).await;
        }
        let mut tasks = Vec::new();
        for (i, r) in w.releases.iter().enumerate() {
            let v = w.vigil.clone();
            let r = r.to_string();
            tasks.push(tokio::spawn(async move {
                v.promote(&user(&format!("op{i}")), &r, Stage::Shadow, "start shadow").await
            }));
        }
        let mut results = Vec::new();
        for t in tasks {
            results.push(t.await.unwrap());
        }
        let wins = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(wins, 1, "{results:?}");
        let loser = results.iter().find_map(|r| r.as_ref().err()).unwrap();
        assert_eq!(loser.code, "shadow_occupied", "{loser:?}");
        let stages = w.vigil.list_release_stages("deterioration-risk").await.unwrap();
        assert_eq!(stages.iter().filter(|(_, s)| *s == Stage::Shadow).count(), 1);
        assert_eq!(actions(&w.vigil, "promotion.refused").await, 1);
        assert!(w.vigil.verify_audit().await.unwrap().is_intact());
    }

    async fn history_at_a_moment_is_right_across_a_rollback(db) {
        let w = world(db, 1, 2).await;
        let (v, a, b) = (&w.vigil, w.releases[0], w.releases[1]);
        let op = user("op");
        approve_tier1(&w, &a).await;
        v.promote(&op, &a.to_string(), Stage::Shadow, "shadow").await.unwrap();
        let e = v.rollback(&op, "deterioration-risk", "nothing live", false).await.unwrap_err();
        assert_eq!(e.code, "no_production_release");
        v.rollback(&op, "deterioration-risk", "rehearse withdrawal", true).await.unwrap();
        w.clock.advance(Duration::from_secs(10));
        v.promote(&op, &a.to_string(), Stage::Production, "go live").await.unwrap();
        let t1 = w.clock.now();

        w.clock.advance(Duration::from_days(1));
        approve_tier1(&w, &b).await;
        v.promote(&op, &b.to_string(), Stage::Shadow, "shadow").await.unwrap();
        w.clock.advance(Duration::from_days(1));
        let out = v.promote(&op, &b.to_string(), Stage::Production, "replace").await.unwrap();
        assert_eq!(out.changes.len(), 2, "the old production release moves out in the same step");
        assert_eq!(out.changes[0].release, a);
        assert_eq!(out.changes[0].to, Stage::Approved);
        let t2 = w.clock.now();

        w.clock.advance(Duration::from_days(1));
        let drill = v.rollback(&op, "deterioration-risk", "quarterly drill", true).await.unwrap();
        assert_eq!(drill.drill.unwrap().to_release, Some(a));
        assert!(drill.changes.is_empty());
        w.clock.advance(Duration::from_secs(60));
        v.rollback(&op, "deterioration-risk", "calibration drift", false).await.unwrap();
        let t3 = w.clock.now();

        let live = |h: vigil_service::governance::HistoryReport| (h.live_at.production, h.live_at.shadow);
        assert_eq!(live(v.history("deterioration-risk", Some(T0.minus(Duration::from_secs(1)))).await.unwrap()), (None, None));
        assert_eq!(live(v.history("deterioration-risk", Some(t1)).await.unwrap()), (Some(a), None));
        assert_eq!(live(v.history("deterioration-risk", Some(t2)).await.unwrap()), (Some(b), None));
        assert_eq!(live(v.history("deterioration-risk", Some(t3)).await.unwrap()), (Some(a), None));
        assert_eq!(actions(v, "deployment.rolled_back").await, 1);
        assert_eq!(actions(v, "deployment.rollback_rehearsed").await, 2);
        let stages = v.list_release_stages("deterioration-risk").await.unwrap();
        assert!(stages.contains(&(v.get_release(&b.to_string()).await.unwrap(), Stage::Validated)));
        v.retire(&op, &b.to_string(), "superseded").await.unwrap();
        let e = v.promote(&user("ds"), &b.to_string(), Stage::Validated, "again").await.unwrap_err();
        assert_eq!(e.code, "transition_not_allowed");
        assert!(v.verify_audit().await.unwrap().is_intact());
    }

    async fn roles_are_enforced_once_users_exist_and_refusals_are_audited(db) {
        let w = world(db, 1, 1).await;
        let (v, r) = (&w.vigil, w.releases[0].to_string());
        let first = v.add_user(&user("admin"), "alice", Roles::new([Role::Operator]).unwrap()).await.unwrap();
        assert!(first.bootstrapped && first.user.roles.contains(Role::Governance));
        assert!(first.token.starts_with("vigil_") && first.token.len() > 60);
        assert_eq!(v.authenticate(&first.token).await.unwrap().name, user("alice"));

        let e = v.add_user(&user("mallory"), "eve", Roles::new([Role::Governance]).unwrap()).await.unwrap_err();
        assert_eq!(e.code, "unknown_user");
        let bob = v.add_user(&user("alice"), "bob", Roles::new([Role::ClinicalReviewer]).unwrap()).await.unwrap();
        let e = v.promote(&user("bob"), &r, Stage::Validated, "x").await.unwrap_err();
        assert_eq!(e.code, "role_required");
        let e = v.sign_off(&user("bob"), &r, Role::Governance, Decision::Approved, "").await.unwrap_err();
        assert_eq!(e.code, "role_required");
        v.revoke_user(&user("alice"), "bob").await.unwrap();
        assert_eq!(v.authenticate(&bob.token).await.unwrap_err().code, "token_revoked");
        let e = v.sign_off(&user("bob"), &r, Role::ClinicalReviewer, Decision::Approved, "").await.unwrap_err();
        assert_eq!(e.code, "user_revoked");
        assert_eq!(actions(v, "user.refused").await, 1);
        assert_eq!(actions(v, "promotion.refused").await, 1);
        assert_eq!(actions(v, "sign_off.refused").await, 2);
        assert_eq!(actions(v, "user.added").await, 2);
        assert_eq!(actions(v, "policy.applied").await, 1, "the default policy is applied at init");
    }
}
