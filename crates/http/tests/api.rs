//! The API in process (`tower::ServiceExt::oneshot`): authentication and roles with stable
//! codes, refusals audited, gates and promotion over HTTP, the route table agreeing with the
//! router, and the OpenAPI document against its committed snapshot.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;
use vigil_domain::role::{Role, Roles};
use vigil_domain::{Timestamp, UserName};
use vigil_service::{CreateModel, FixedClock, Location, RegisterDataset, RegisterRelease, Vigil};
use vigil_store::AuditFilter;
use vigil_test_support::{TestDb, example};

struct Api {
    vigil: Vigil,
    router: axum::Router,
    gov: String,
    reviewer: String,
    release: String,
    _db: TestDb,
}

async fn api() -> Api {
    let db = TestDb::sqlite().await;
    let loc = Location {
        home: db.path().to_path_buf(),
        database_url: None,
    };
    let clock = Arc::new(FixedClock::new(Timestamp::from_unix_seconds(1_780_000_000)));
    let ds = UserName::parse("ds").unwrap();
    let (vigil, _) = Vigil::init(&loc, clock, &ds).await.unwrap();
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
    let release = vigil
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
        .unwrap()
        .value
        .id
        .to_string();
    let gov = vigil
        .add_user(&ds, "gina", Roles::new([Role::Governance]).unwrap())
        .await
        .unwrap()
        .token;
    let g = UserName::parse("gina").unwrap();
    let reviewer = vigil
        .add_user(&g, "rita", Roles::new([Role::ClinicalReviewer]).unwrap())
        .await
        .unwrap()
        .token;
    vigil
        .add_user(
            &g,
            "ds",
            Roles::new([Role::DataScientist, Role::ClinicalReviewer]).unwrap(),
        )
        .await
        .unwrap();
    let router = vigil_http::router(vigil.clone());
    Api {
        vigil,
        router,
        gov,
        reviewer,
        release,
        _db: db,
    }
}

async fn call(
    router: &axum::Router,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut b = Request::builder().method(method).uri(path);
    if let Some(t) = token {
        b = b.header("authorization", format!("Bearer {t}"));
    }
    let req = match body {
        Some(v) => b
            .header("content-type", "application/json")
            .body(Body::from(v.to_string()))
            .unwrap(),
        None => b.body(Body::empty()).unwrap(),
    };
    let resp = router.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let v = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, v)
}

#[tokio::test]
async fn requests_without_a_valid_token_or_role_are_refused_with_stable_codes_and_audited() {
    let a = api().await;
    let (s, v) = call(&a.router, "GET", "/api/v1/models", None, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(v["code"], "missing_token");
    assert!(v["request_id"].as_str().is_some_and(|s| !s.is_empty()));

    let (s, v) = call(&a.router, "GET", "/api/v1/models", Some("vigil_nope"), None).await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_token"))
    );

    let gina = UserName::parse("gina").unwrap();
    a.vigil.revoke_user(&gina, "rita").await.unwrap();
    let (s, v) = call(&a.router, "GET", "/api/v1/models", Some(&a.reviewer), None).await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("token_revoked"))
    );

    let path = format!("/api/v1/releases/{}/exceptions", a.release);
    let body = json!({"gate": "intended-use", "rationale": "r", "expires_at": "2099-01-01"});
    let tok = a
        .vigil
        .add_user(&gina, "otto", Roles::new([Role::Operator]).unwrap())
        .await
        .unwrap()
        .token;
    let (s, v) = call(&a.router, "POST", &path, Some(&tok), Some(body)).await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("role_required")),
        "{v}"
    );

    let refused = a
        .vigil
        .list_audit(&AuditFilter {
            action: Some("request.refused".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(refused.len(), 3);
    let refused = a
        .vigil
        .list_audit(&AuditFilter {
            action: Some("exception.refused".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(refused.len(), 1);
}

#[tokio::test]
async fn gates_sign_offs_and_promotion_over_http() {
    let a = api().await;
    let (s, v) = call(&a.router, "GET", "/api/v1/me", Some(&a.gov), None).await;
    assert_eq!((s, v["name"].as_str()), (StatusCode::OK, Some("gina")));

    let gates = format!("/api/v1/releases/{}/gates?to=approved", a.release);
    let (s, v) = call(&a.router, "GET", &gates, Some(&a.gov), None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["gates"].as_array().unwrap().len(), 2);

    let promo = format!("/api/v1/releases/{}/promotions", a.release);
    let (s, v) = call(
        &a.router,
        "POST",
        &promo,
        Some(&a.gov),
        Some(json!({"to": "validated", "reason": "x"})),
    )
    .await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("gates_unmet")),
        "{v}"
    );
    assert!(v["message"].as_str().unwrap().contains("auroc-lower-bound"));

    let ex = format!("/api/v1/releases/{}/exceptions", a.release);
    let body = json!({"gate": "auroc-lower-bound", "rationale": "pilot on retrospective data", "expires_at": "2099-01-01"});
    let (s, v) = call(&a.router, "POST", &ex, Some(&a.gov), Some(body)).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, v) = call(
        &a.router,
        "POST",
        &promo,
        Some(&a.gov),
        Some(json!({"to": "validated", "reason": "covered"})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["changes"][0]["to"], "validated");

    // A reviewer who did not register the release signs off.
    let ds_tok = {
        let gina = UserName::parse("gina").unwrap();
        a.vigil
            .add_user(&gina, "dora", Roles::new([Role::ClinicalReviewer]).unwrap())
            .await
            .unwrap()
            .token
    };
    let so = format!("/api/v1/releases/{}/sign-offs", a.release);
    let (s, v) = call(
        &a.router,
        "POST",
        &so,
        Some(&ds_tok),
        Some(json!({"role": "clinical-reviewer", "decision": "approved"})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, v) = call(&a.router, "GET", &so, Some(&a.gov), None).await;
    assert_eq!((s, v.as_array().map(Vec::len)), (StatusCode::OK, Some(1)));

    let (s, v) = call(
        &a.router,
        "POST",
        &so,
        Some(&a.gov),
        Some(json!({"role": "nobody", "decision": "approved"})),
    )
    .await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_role"))
    );
    let (s, v) = call(
        &a.router,
        "POST",
        &so,
        Some(&a.gov),
        Some(json!({"bad": 1})),
    )
    .await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_body"))
    );

    let (s, v) = call(
        &a.router,
        "GET",
        "/api/v1/models/deterioration-risk/history",
        Some(&a.gov),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["promotions"].as_array().unwrap().len(), 1);
    let (s, v) = call(
        &a.router,
        "GET",
        "/api/v1/models/nope/history",
        Some(&a.gov),
        None,
    )
    .await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("model_not_found"))
    );
    let (s, v) = call(&a.router, "GET", "/api/v1/nowhere", Some(&a.gov), None).await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("route_not_found"))
    );
    let (s, v) = call(
        &a.router,
        "GET",
        "/api/v1/audit?action=release.promoted",
        Some(&a.gov),
        None,
    )
    .await;
    assert_eq!((s, v.as_array().map(Vec::len)), (StatusCode::OK, Some(1)));
}

#[tokio::test]
async fn every_documented_route_is_served() {
    let a = api().await;
    for r in vigil_http::routes::ROUTES {
        let path = r
            .path
            .replace("{name}", "deterioration-risk")
            .replace("{id}", &a.release);
        let (s, v) = call(
            &a.router,
            &r.method.to_uppercase(),
            &path,
            Some(&a.gov),
            Some(json!({})),
        )
        .await;
        assert_ne!(s, StatusCode::METHOD_NOT_ALLOWED, "{} {}", r.method, r.path);
        assert_ne!(v["code"], "route_not_found", "{} {}", r.method, r.path);
    }
}

#[tokio::test]
async fn a_panicking_handler_answers_500_and_the_server_keeps_serving() {
    use axum::routing::get;
    let a = api().await;
    async fn boom() -> &'static str {
        panic!("bug")
    }
    let router = axum::Router::new()
        .route("/boom", get(boom))
        .layer(tower_http_catch())
        .merge(a.router.clone());
    let (s, v) = call(&router, "GET", "/boom", None, None).await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::INTERNAL_SERVER_ERROR, Some("internal_error"))
    );
    let (s, _) = call(&router, "GET", "/api/v1/openapi.json", None, None).await;
    assert_eq!(s, StatusCode::OK);
}

fn tower_http_catch() -> vigil_http::PanicLayer {
    vigil_http::panic_layer()
}

#[test]
fn openapi_document_matches_its_snapshot() {
    let doc = serde_json::to_string_pretty(&vigil_http::openapi::document()).unwrap() + "\n";
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots/openapi.json");
    if std::env::var("VIGIL_UPDATE_SNAPSHOTS").is_ok() {
        std::fs::write(&path, &doc).unwrap();
    }
    let want = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        want == doc,
        "the OpenAPI document changed: review it and run with VIGIL_UPDATE_SNAPSHOTS=1 to accept ({})",
        path.display()
    );
}

#[tokio::test]
async fn case_reviews_over_http() {
    let a = api().await;
    let dataset = a.vigil.list_datasets().await.unwrap()[0].id.to_string();
    let ds = UserName::parse("ds").unwrap();
    let sample = a
        .vigil
        .sample_review(
            &ds,
            vigil_service::governance::SampleRequest {
                release: a.release.clone(),
                dataset,
                n: 20,
                label: "outcome".into(),
                subgroups: vec!["sex".into()],
            },
        )
        .await
        .unwrap();
    let case = sample.cases[0].row;
    let path = format!("/api/v1/releases/{}/reviews", a.release);
    let (s, v) = call(
        &a.router,
        "POST",
        &path,
        Some(&a.reviewer),
        Some(json!({"case": case, "verdict": "plausible", "comment": "fits the chart"})),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let (s, v) = call(
        &a.router,
        "POST",
        &path,
        Some(&a.reviewer),
        Some(json!({"case": case, "verdict": "maybe"})),
    )
    .await;
    assert_eq!(
        (s, v["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_verdict")),
        "{v}"
    );
    // A governance user holds no reviewer role.
    let (s, v) = call(
        &a.router,
        "POST",
        &path,
        Some(&a.gov),
        Some(json!({"case": case, "verdict": "unsafe"})),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{v}");
    let (s, v) = call(&a.router, "GET", &path, Some(&a.gov), None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(
        v.to_string().contains("plausible") || v.to_string().contains('1'),
        "{v}"
    );
}
