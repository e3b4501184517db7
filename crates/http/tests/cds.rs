//! The CDS Hooks service end to end on loopback, on SQLite and PostgreSQL: the real server,
//! real signed JWTs (the specification's own key and token), the specification's example
//! requests and feedback, prefetch built from Synthea patients, a FHIR server stand-in on
//! loopback for the no-prefetch path (and its timeout), fail-closed answers, suppression and
//! the daily budget, shadow scoring, and every call found in the prediction records.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use axum::extract::{Path, Query};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use serde_json::{Value, json};
use vigil_cds::jwt::{Es384Signer, Jwk, Jwks, sign_with};
use vigil_domain::governance::Decision;
use vigil_domain::policy::{DataCheckSummary, EvaluationSummary, SubgroupMetrics};
use vigil_domain::prediction::{PredictionFilter, PredictionMode, PredictionRecord};
use vigil_domain::role::Role;
use vigil_domain::{Digest, Duration, ReleaseId, Stage, Timestamp, UserName};
use vigil_service::cds::{CdsConfig, CdsService, ClientKeys};
use vigil_service::governance::{BoxFuture, EvidenceSource};
use vigil_service::{
    Clock, CreateModel, FixedClock, Location, RegisterDataset, RegisterRelease, Result, Vigil,
};
use vigil_store::{AuditFilter, BackendKind};
use vigil_test_support::{TestDb, both_backends, example, shared_data};

const ISS: &str = "https://fhir-ehr.example.com/";
/// 2020-03-03T20:00:00Z: an hour after the Synthea encounter used below.
const NOW: &str = "2020-03-03T20:00:00Z";
const MODEL: &str = "deterioration-risk";

#[derive(Default)]
struct Recorded;

impl EvidenceSource for Recorded {
    fn evaluations<'a>(
        &'a self,
        r: &'a ReleaseId,
    ) -> BoxFuture<'a, Result<Vec<EvaluationSummary>>> {
        let mut metrics = BTreeMap::new();
        metrics.insert("auroc".to_string(), 0.82);
        metrics.insert("auroc.ci_low".to_string(), 0.75);
        metrics.insert("calibration.slope".to_string(), 1.02);
        metrics.insert("calibration.ece".to_string(), 0.02);
        let sub = |g: &str, v: f64| SubgroupMetrics {
            column: "sex".into(),
            group: g.into(),
            n: 500,
            too_small: false,
            metrics: [("auroc".to_string(), v)].into_iter().collect(),
        };
        let e = EvaluationSummary {
            id: format!("{}-eval", r.short()),
            digest: Digest::of(r.to_string().as_bytes()),
            dataset: None,
            at: Timestamp::parse("2020-01-01").unwrap(),
            metrics,
            subgroups: vec![sub("f", 0.80), sub("m", 0.84)],
        };
        Box::pin(async move { Ok(vec![e]) })
    }
    fn data_checks<'a>(&'a self, _: &'a ReleaseId) -> BoxFuture<'a, Result<Vec<DataCheckSummary>>> {
        let c = DataCheckSummary {
            id: "checks-1".into(),
            digest: Digest::of(b"checks"),
            dataset: vigil_domain::SnapshotId::from_digest(Digest::of(b"ds")),
            at: Timestamp::parse("2020-01-01").unwrap(),
            blocking_failures: Vec::new(),
        };
        Box::pin(async move { Ok(vec![c]) })
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

struct World {
    vigil: Vigil,
    clock: Arc<FixedClock>,
    cds: Arc<CdsService>,
    base: String,
    signer: Es384Signer,
    _db: TestDb,
}

/// How a test world's model is deployed.
struct Setup {
    thresholds: Vec<f64>,
    cds_toml: &'static str,
    production: bool,
    shadow: bool,
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            thresholds: vec![0.3],
            cds_toml: "",
            production: true,
            shadow: false,
        }
    }
}

async fn world(db: TestDb, setup: Setup) -> World {
    let clock = Arc::new(FixedClock::new(Timestamp::parse(NOW).unwrap()));
    let loc = Location {
        home: db.path().to_path_buf(),
        database_url: (db.kind == BackendKind::Postgres).then(|| db.url.clone()),
    };
    let (vigil, _) = Vigil::init(&loc, clock.clone(), &user("admin"))
        .await
        .unwrap();
    let vigil = vigil.with_evidence(Arc::new(Recorded));
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
    let iu = std::fs::read_to_string(example("deterioration/intended-use.toml")).unwrap()
        + setup.cds_toml;
    vigil
        .create_model(
            &ds,
            CreateModel {
                name: MODEL.into(),
                intended_use_toml: iu,
                risk_tier: 1,
                clinical_owner: "Dr Ward".into(),
                technical_owner: "ML team".into(),
            },
        )
        .await
        .unwrap();
    let mut ids = Vec::new();
    for i in 0..2 {
        let r = vigil
            .register_release(
                &ds,
                RegisterRelease {
                    model: MODEL.into(),
                    artifact: std::fs::read(example("deterioration/model.onnx")).unwrap(),
                    contract: std::fs::read(example("deterioration/contract.toml")).unwrap(),
                    training_data: data.value.id.to_string(),
                    code_commit: None,
                    environment: None,
                    hyperparameters: None,
                    thresholds: setup.thresholds.clone(),
                    changelog: Some(format!("release {i}")),
                    reference_predictions: None,
                },
            )
            .await
            .unwrap();
        ids.push(r.value.id.to_string());
    }
    let approve = async |r: &str| {
        vigil
            .promote(&ds, r, Stage::Validated, "evaluated")
            .await
            .unwrap();
        vigil
            .sign_off(
                &user("rev"),
                r,
                Role::ClinicalReviewer,
                Decision::Approved,
                "ok",
            )
            .await
            .unwrap();
        vigil
            .promote(&user("gov"), r, Stage::Approved, "signed off")
            .await
            .unwrap();
        vigil
            .promote(&user("op"), r, Stage::Shadow, "shadow")
            .await
            .unwrap();
    };
    if setup.production {
        approve(&ids[0]).await;
        clock.advance(Duration::from_secs(10));
        vigil
            .promote(&user("op"), &ids[0], Stage::Production, "live")
            .await
            .unwrap();
    }
    if setup.shadow {
        approve(&ids[1]).await;
    }
    clock.set(Timestamp::parse(NOW).unwrap());

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let base = format!("http://{addr}");
    let mut cfg = CdsConfig::new(base.clone());
    cfg.fetch_timeout = StdDuration::from_millis(700);
    let cds = Arc::new(CdsService::new(vigil.clone(), cfg).await.unwrap());
    let app = vigil_http::router_with_cds(vigil.clone(), Some(cds.clone()));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let jwks = std::fs::read_to_string(shared_data(
        "cds-hooks/v3ballot__30_json-web-key-set-public-key.json",
    ))
    .unwrap();
    vigil
        .add_cds_client(&user("op"), ISS, ClientKeys::Jwks(jwks))
        .await
        .unwrap();
    let jwk: Jwk = serde_json::from_str(
        &std::fs::read_to_string(shared_data(
            "cds-hooks/v3ballot__31_json-web-key-private-key.json",
        ))
        .unwrap(),
    )
    .unwrap();
    World {
        signer: Es384Signer::from_private_jwk(&jwk).unwrap(),
        vigil,
        clock,
        cds,
        base,
        _db: db,
    }
}

static JTI: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

impl World {
    fn claims(&self, path: &str) -> Value {
        let now = self.clock.now().as_unix_seconds();
        let n = JTI.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        json!({"iss": ISS, "aud": format!("{}{path}", self.base), "iat": now, "exp": now + 120,
               "jti": format!("jti-{n}-{}", std::process::id())})
    }

    fn token(&self, path: &str) -> String {
        self.signer.sign(&self.claims(path), None)
    }

    async fn send(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> (StatusCode, Value, HeaderMap) {
        let client = reqwest::Client::new();
        let url = format!("{}{path}", self.base);
        let mut req = if method == "GET" {
            client.get(&url)
        } else {
            client.post(&url)
        };
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        let resp = req.send().await.unwrap();
        let status = StatusCode::from_u16(resp.status().as_u16()).unwrap();
        let mut headers = HeaderMap::new();
        for (k, v) in resp.headers() {
            headers.insert(
                axum::http::HeaderName::from_bytes(k.as_str().as_bytes()).unwrap(),
                axum::http::HeaderValue::from_bytes(v.as_bytes()).unwrap(),
            );
        }
        let text = resp.text().await.unwrap();
        let v = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap()
        };
        (status, v, headers)
    }

    async fn call(&self, body: &Value) -> (StatusCode, Value) {
        let path = format!("/cds-services/{MODEL}");
        let (s, v, _) = self
            .send("POST", &path, Some(&self.token(&path)), Some(body))
            .await;
        (s, v)
    }

    async fn records(&self, mode: PredictionMode) -> Vec<PredictionRecord> {
        self.vigil
            .list_predictions(&PredictionFilter {
                model: Some(MODEL.into()),
                channel: Some("cds".into()),
                mode: Some(mode),
                ..Default::default()
            })
            .await
            .unwrap()
    }

    async fn record_of(&self, hook_instance: &str) -> PredictionRecord {
        self.records(PredictionMode::Active)
            .await
            .into_iter()
            .find(|r| r.context["hookInstance"] == hook_instance)
            .unwrap_or_else(|| panic!("no record for {hook_instance}"))
    }

    async fn audits(&self, action: &str) -> Vec<Value> {
        self.vigil
            .list_audit(&AuditFilter {
                action: Some(action.into()),
                limit: 10_000,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_iter()
            .map(|e| serde_json::to_value(e).unwrap())
            .collect()
    }
}

fn read_json(rel: &str) -> Value {
    serde_json::from_slice(&std::fs::read(shared_data(rel)).unwrap()).unwrap()
}

const SYNTHEA: &str =
    "fhir/synthea/covid_juvenile_Denisha680_Keeling57_6a93e0ad-9bd0-6d85-34a7-015186f7880a.json";

/// The vital signs of a Synthea encounter (re-pointed at the spec example's patient 1288992,
/// aged 94) with creatinine and white cells measured the same morning.
fn observations() -> Vec<Value> {
    let b = read_json(SYNTHEA);
    let mut out: Vec<Value> = b["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["resource"].clone())
        .filter(|r| {
            r["resourceType"] == "Observation" && r["valueQuantity"].is_object()
                || r["component"].is_array()
        })
        .map(|mut r| {
            r["subject"] = json!({"reference": "Patient/1288992"});
            r
        })
        .collect();
    let lab = |id: &str, code: &str, v: f64, unit: &str| {
        json!({"resourceType": "Observation", "id": id, "status": "final",
               "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
               "subject": {"reference": "Patient/1288992"},
               "effectiveDateTime": "2020-03-03T10:00:00Z",
               "valueQuantity": {"value": v, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit}})
    };
    out.push(lab("cr-1", "2160-0", 1.1, "mg/dL"));
    out.push(lab("wbc-1", "6690-2", 9.5, "10*3/uL"));
    out
}

fn searchset(rs: &[Value]) -> Value {
    json!({"resourceType": "Bundle", "type": "searchset",
           "entry": rs.iter().map(|r| json!({"resource": r})).collect::<Vec<_>>()})
}

/// The spec's patient-view request (v3ballot__02) with the prefetch our discovery asks for.
fn full_request(hook_instance: &str) -> Value {
    let mut req = read_json("cds-hooks/v3ballot__02_example.json");
    req["hookInstance"] = json!(hook_instance);
    req["prefetch"]["observations"] = searchset(&observations());
    // Every Observation template key, present (as one searchset each holding all of them,
    // which the service counts once).
    for k in [
        "heart_rate",
        "resp_rate",
        "temperature",
        "spo2",
        "sbp",
        "lactate",
        "creatinine",
        "wbc",
    ] {
        req["prefetch"][k] = searchset(&[]);
    }
    req
}

/// A FHIR server stand-in on loopback: `Patient/{id}` and `Observation?patient&code`
/// searches over the example files, a bearer token required, and a `/slow` base that never
/// answers in time.
async fn fhir_stand_in() -> SocketAddr {
    use axum::routing::get;
    async fn check(h: &HeaderMap) -> bool {
        h.get("authorization").and_then(|v| v.to_str().ok())
            == Some("Bearer some-opaque-fhir-access-token")
    }
    async fn patient(h: HeaderMap, Path(id): Path<String>) -> axum::response::Response {
        if !check(&h).await {
            return StatusCode::UNAUTHORIZED.into_response();
        }
        let mut p =
            read_json("cds-hooks/v3ballot__02_example.json")["prefetch"]["patientToGreet"].clone();
        if p["id"] != id.as_str() {
            return StatusCode::NOT_FOUND.into_response();
        }
        p["id"] = json!(id);
        axum::Json(p).into_response()
    }
    async fn search(
        h: HeaderMap,
        Query(q): Query<BTreeMap<String, String>>,
    ) -> axum::response::Response {
        if !check(&h).await {
            return StatusCode::UNAUTHORIZED.into_response();
        }
        let codes: Vec<String> = q
            .get("code")
            .map(|c| c.split(',').map(str::to_string).collect())
            .unwrap_or_default();
        let hits: Vec<Value> = observations()
            .into_iter()
            .filter(|_| q.get("patient").map(String::as_str) == Some("1288992"))
            .filter(|o| {
                o["code"]["coding"].as_array().unwrap().iter().any(|c| {
                    codes.contains(&format!(
                        "{}|{}",
                        c["system"].as_str().unwrap(),
                        c["code"].as_str().unwrap()
                    ))
                })
            })
            .collect();
        axum::Json(searchset(&hits)).into_response()
    }
    async fn slow() -> &'static str {
        tokio::time::sleep(StdDuration::from_secs(5)).await;
        "{}"
    }
    let app = axum::Router::new()
        .route("/fhir/Patient/{id}", get(patient))
        .route("/fhir/Observation", get(search))
        .route("/slow/Patient/{id}", get(slow))
        .route("/slow/Observation", get(slow));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

both_backends! {
    async fn discovery_lists_the_model_in_the_specification_shape(db) {
        let w = world(db, Setup::default()).await;
        let (s, v, _) = w.send("GET", "/cds-services", Some(&w.token("/cds-services")), None).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let spec = read_json("cds-hooks/v3ballot__01_discovery-example.json");
        let svc = &v["services"][0];
        // Every field the specification's discovery example has, with the same JSON types.
        for k in ["hook", "title", "description", "id", "prefetch"] {
            assert_eq!(
                std::mem::discriminant(&svc[k]),
                std::mem::discriminant(&spec["services"][0][k]),
                "{k}: {svc}"
            );
        }
        assert_eq!(svc["id"], MODEL);
        assert_eq!(svc["hook"], "patient-view");
        assert_eq!(svc["title"], "Ward deterioration risk (24 h)");
        assert_eq!(svc["prefetch"]["patient"], "Patient/{{context.patientId}}");
        assert_eq!(
            svc["prefetch"]["spo2"],
            "Observation?patient={{context.patientId}}&code=http://loinc.org|2708-6,http://loinc.org|59408-5"
        );
        // Discovery needs a token too.
        let (s, v, _) = w.send("GET", "/cds-services", None, None).await;
        assert_eq!((s, v["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("token_missing")));
    }

    async fn a_patient_view_call_with_prefetch_is_scored_carded_and_recorded(db) {
        let w = world(db, Setup::default()).await;
        let (s, v) = w.call(&full_request("hi-1")).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let r = w.record_of("hi-1").await;
        let score = r.score.expect("a score");
        assert_eq!(r.channel, "cds");
        assert_eq!(r.mode, PredictionMode::Active);
        assert_eq!(r.fallback_reason, None);
        assert_eq!(r.patient_key.as_deref(), Some(w.vigil.pseudonymise("patient", "1288992").as_str()));
        assert_eq!(r.encounter_key.as_deref(), Some(w.vigil.pseudonymise("encounter", "89284").as_str()));
        let hr = r.features.iter().find(|f| f.name == "heart_rate").unwrap();
        assert_eq!((hr.value, hr.status.as_str()), (Some(131.1), "ok"));
        assert!(hr.source.as_deref().unwrap().starts_with("Observation/"));
        assert_eq!(hr.observed_at, Some(Timestamp::parse("2020-03-03T19:01:54Z").unwrap()));
        let cr = r.features.iter().find(|f| f.name == "creatinine").unwrap();
        assert!((cr.value.unwrap() - 1.1 * 88.40).abs() < 0.1, "{cr:?}");
        let age = r.features.iter().find(|f| f.name == "age").unwrap();
        assert_eq!(age.value, Some(94.0));
        let lac = r.features.iter().find(|f| f.name == "lactate").unwrap();
        assert_eq!(lac.status, "filled");
        let cards = v["cards"].as_array().unwrap();
        if score >= 0.3 {
            assert_eq!(cards.len(), 1, "{v}");
            let c = &cards[0];
            assert_eq!(r.context["cards"], json!([c["uuid"]]));
            assert!(c["summary"].as_str().unwrap().chars().count() < 140);
            assert!(["warning", "critical"].contains(&c["indicator"].as_str().unwrap()));
            let d = c["detail"].as_str().unwrap();
            assert!(d.contains(&format!("{:.0}%", score * 100.0)), "{d}");
            assert!(d.contains("Limitations"));
            assert!(c["source"]["url"].as_str().unwrap().starts_with(&format!("{}/models/{MODEL}/evidence", w.base)));
            assert_eq!(c["overrideReasons"].as_array().unwrap().len(), 6);
        } else {
            assert!(cards.is_empty(), "{v}");
            assert_eq!(r.decision.as_deref(), Some("below_threshold"));
        }
        // The same token again: a replay.
        let path = format!("/cds-services/{MODEL}");
        let t = w.token(&path);
        assert_eq!(w.send("POST", &path, Some(&t), Some(&full_request("hi-2"))).await.0, StatusCode::OK);
        let (s, v, _) = w.send("POST", &path, Some(&t), Some(&full_request("hi-3"))).await;
        assert_eq!((s, v["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("jti_replayed")));
    }

    async fn the_specification_requests_are_accepted_and_fail_closed(db) {
        let w = world(db, Setup::default()).await;
        // v1__02 and v3ballot__02 as printed: only the Patient is prefetched and their FHIR
        // server cannot be reached from here, so no score: an info card, recorded with why.
        for (f, hi) in [("cds-hooks/v1__02_example.json", "spec-v1"), ("cds-hooks/v3ballot__02_example.json", "spec-v3")] {
            let mut req = read_json(f);
            req["hookInstance"] = json!(hi);
            let (s, v) = w.call(&req).await;
            assert_eq!(s, StatusCode::OK, "{f}: {v}");
            let cards = v["cards"].as_array().unwrap();
            assert_eq!(cards.len(), 1, "{v}");
            assert_eq!(cards[0]["indicator"], "info");
            assert!(cards[0]["summary"].as_str().unwrap().contains("not computed"));
            let r = w.record_of(hi).await;
            assert_eq!(r.score, None);
            assert!(
                ["fhir_unreachable", "fhir_timeout", "fhir_error"].contains(&r.fallback_reason.as_deref().unwrap()),
                "{:?}", r.fallback_reason
            );
            assert_eq!(r.features.iter().find(|f| f.name == "age").unwrap().status, "not_scored");
        }
        // Without a FHIR server, required prefetch that is missing cannot be fetched: 412.
        let mut req = read_json("cds-hooks/v3ballot__02_example.json");
        req["hookInstance"] = json!("spec-412");
        req.as_object_mut().unwrap().remove("fhirServer");
        req.as_object_mut().unwrap().remove("fhirAuthorization");
        let path = format!("/cds-services/{MODEL}");
        let (s, v, h) = w.send("POST", &path, Some(&w.token(&path)), Some(&req)).await;
        assert_eq!(s, StatusCode::PRECONDITION_FAILED, "{v}");
        assert_eq!(h.get("content-type").unwrap(), "application/fhir+json");
        assert_eq!(v["resourceType"], "OperationOutcome");
        assert!(v["issue"][0]["diagnostics"].as_str().unwrap().contains("heart_rate"));
        let r = w.record_of("spec-412").await;
        assert_eq!(r.fallback_reason.as_deref(), Some("prefetch_unavailable"));
        // A child (the Synthea patient herself, aged 8): outside the model's range, no score.
        let b = read_json(SYNTHEA);
        let mut req = full_request("child");
        req["context"]["patientId"] = json!("6a93e0ad-9bd0-6d85-34a7-015186f7880a");
        req["prefetch"] = json!({"everything": b});
        for k in ["patient", "heart_rate", "resp_rate", "temperature", "spo2", "sbp", "lactate", "creatinine", "wbc"] {
            req["prefetch"][k] = searchset(&[]);
        }
        let (s, v) = w.call(&req).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let r = w.record_of("child").await;
        assert_eq!(r.fallback_reason.as_deref(), Some("missing_required"));
        let age = r.features.iter().find(|f| f.name == "age").unwrap();
        assert_eq!(age.status, "invalid");
        assert_eq!(v["cards"][0]["indicator"], "info");
        // Bad requests are 400 with the field named.
        let mut bad = full_request("bad");
        bad["context"].as_object_mut().unwrap().remove("patientId");
        let (s, v) = w.call(&bad).await;
        assert_eq!((s, v["code"].as_str()), (StatusCode::BAD_REQUEST, Some("field_missing")));
        assert!(v["message"].as_str().unwrap().contains("context.patientId"));
    }

    async fn without_prefetch_the_data_is_fetched_from_the_fhir_server_within_the_budget(db) {
        let w = world(db, Setup::default()).await;
        let fhir = fhir_stand_in().await;
        let mut req = read_json("cds-hooks/v3ballot__02_example.json");
        req["hookInstance"] = json!("fetched");
        req.as_object_mut().unwrap().remove("prefetch");
        req["fhirServer"] = json!(format!("http://{fhir}/fhir"));
        let (s, v) = w.call(&req).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let r = w.record_of("fetched").await;
        assert!(r.score.is_some(), "{:?} {}", r.fallback_reason, r.context);
        assert_eq!(r.context["fetched"].as_array().unwrap().len(), 9);
        let spo2 = r.features.iter().find(|f| f.name == "spo2").unwrap();
        assert_eq!(spo2.value, Some(78.02));
        let sbp = r.features.iter().find(|f| f.name == "sbp").unwrap();
        assert_eq!(sbp.value, Some(131.0));
        // A server that does not answer in time: no score, the reason recorded.
        req["hookInstance"] = json!("slow");
        req["fhirServer"] = json!(format!("http://{fhir}/slow"));
        let started = std::time::Instant::now();
        let (s, v) = w.call(&req).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert!(started.elapsed() < StdDuration::from_secs(5));
        let r = w.record_of("slow").await;
        assert_eq!((r.score, r.fallback_reason.as_deref()), (None, Some("fhir_timeout")));
        assert!(v["cards"][0]["detail"].as_str().unwrap().contains("in time"));
        // A token the FHIR server refuses: the data cannot be had, 412.
        req["hookInstance"] = json!("refused");
        req["fhirServer"] = json!(format!("http://{fhir}/fhir"));
        req["fhirAuthorization"]["access_token"] = json!("wrong");
        let (s, v) = w.call(&req).await;
        assert_eq!(s, StatusCode::PRECONDITION_FAILED, "{v}");
    }

    async fn tokens_are_checked_as_the_specification_requires(db) {
        let w = world(db, Setup::default()).await;
        let path = format!("/cds-services/{MODEL}");
        let body = full_request("auth");
        let claims = w.claims(&path);
        let forged = |alg: &str| sign_with(&json!({"alg": alg, "typ": "JWT", "kid": "example-kid"}), &claims, |_| b"x".to_vec());
        let other_key = Es384Signer::from_secret(&[7u8; 48], "other-kid").unwrap();
        let mut wrong_iss = w.claims(&path);
        wrong_iss["iss"] = json!("https://unknown.example.org/");
        let cases = [
            (forged("none"), "alg_not_allowed"),
            (forged("HS256"), "alg_not_allowed"),
            (w.token("/cds-services"), "wrong_aud"),
            (w.signer.sign(&wrong_iss, None), "unknown_iss"),
            (other_key.sign(&w.claims(&path), None), "kid_unknown"),
            ("not-a-token".to_string(), "token_malformed"),
        ];
        for (t, code) in &cases {
            let (s, v, _) = w.send("POST", &path, Some(t), Some(&body)).await;
            assert_eq!((s, v["code"].as_str()), (StatusCode::UNAUTHORIZED, Some(*code)));
        }
        let refused = w.audits("cds.auth_refused").await;
        assert_eq!(refused.len(), cases.len());
        assert!(refused.iter().any(|e| e.to_string().contains("unknown_iss")));
        // A removed client is unknown from then on.
        w.vigil.remove_cds_client(&user("op"), ISS).await.unwrap();
        let (s, v, _) = w.send("POST", &path, Some(&w.token(&path)), Some(&body)).await;
        assert_eq!((s, v["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("unknown_iss")));
        assert_eq!(w.audits("cds_client.removed").await.len(), 1);
        let jwks = std::fs::read_to_string(shared_data("cds-hooks/v3ballot__30_json-web-key-set-public-key.json")).unwrap();
        w.vigil.add_cds_client(&user("op"), ISS, ClientKeys::Jwks(jwks)).await.unwrap();
        assert_eq!(w.audits("cds_client.added").await.len(), 2);
        // The specification's own token: accepted with the clock before its expiry…
        let spec = std::fs::read_to_string(shared_data("cds-hooks/v1__jwt_example_token.txt")).unwrap();
        let aud = "https://cds.example.org/cds-services/some-service";
        w.clock.set(Timestamp::from_unix_seconds(1_422_568_800));
        let c = w.cds.authenticate(Some(&format!("Bearer {}", spec.trim())), aud).await.unwrap();
        assert_eq!(c.jti, "ee22b021-e1b7-4611-ba5b-8eec6a33ac1e");
        // …and refused as expired with the real clock.
        w.clock.set(vigil_service::SystemClock.now());
        let e = w.cds.authenticate(Some(&format!("Bearer {}", spec.trim())), aud).await.unwrap_err();
        assert_eq!(e.code, "expired");
        assert!(w.vigil.verify_audit().await.unwrap().is_intact());
    }

    async fn a_client_changed_after_its_token_was_verified_is_checked_again_when_the_call_is_written(db) {
        let w = world(db, Setup::default()).await;
        let path = format!("/cds-services/{MODEL}");
        let (s, v) = w.call(&full_request("before")).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        // Removed outside the CDS service (as another server or the command line would): the
        // service's copy of the registration still verifies the token, and the transaction
        // that would write the call refuses it.
        w.vigil.remove_cds_client(&user("op"), ISS).await.unwrap();
        let token = w.token(&path);
        let (s, v, _) = w.send("POST", &path, Some(&token), Some(&full_request("removed"))).await;
        assert_eq!((s, v["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("unknown_iss")), "{v}");
        assert!(w.records(PredictionMode::Active).await.iter().all(|r| r.context["hookInstance"] != "removed"));
        let refused = w.audits("cds.auth_refused").await;
        assert_eq!(refused.len(), 1);
        assert!(refused[0].to_string().contains("unknown_iss"), "{}", refused[0]);
        // Registered again with a second key beside the first: a token of either key stands,
        // and the refused token's id stays used.
        let spec = std::fs::read_to_string(shared_data("cds-hooks/v3ballot__30_json-web-key-set-public-key.json")).unwrap();
        let mut both = Jwks::parse(&spec).unwrap();
        let second = Es384Signer::from_secret(&[9u8; 48], "second-kid").unwrap();
        both.keys.push(second.public_jwk());
        w.vigil.add_cds_client(&user("op"), ISS, ClientKeys::Jwks(serde_json::to_string(&both).unwrap())).await.unwrap();
        let (s, v, _) = w.send("POST", &path, Some(&token), Some(&full_request("replayed"))).await;
        assert_eq!((s, v["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("jti_replayed")), "{v}");
        let (s, v, _) = w.send("POST", &path, Some(&w.token(&path)), Some(&full_request("first-key"))).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let (s, v, _) = w.send("POST", &path, Some(&second.sign(&w.claims(&path), None)), Some(&full_request("second-key"))).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        // The first key withdrawn: its token is refused although the service's copy of the
        // registration still holds it.
        let only_second = Jwks { keys: vec![second.public_jwk()] };
        w.vigil.add_cds_client(&user("op"), ISS, ClientKeys::Jwks(serde_json::to_string(&only_second).unwrap())).await.unwrap();
        let (s, v, _) = w.send("POST", &path, Some(&w.token(&path)), Some(&full_request("withdrawn"))).await;
        assert_eq!((s, v["code"].as_str()), (StatusCode::UNAUTHORIZED, Some("kid_unknown")), "{v}");
        let (s, v, _) = w.send("POST", &path, Some(&second.sign(&w.claims(&path), None)), Some(&full_request("kept"))).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let answered: Vec<String> = w.records(PredictionMode::Active).await.iter().map(|r| r.context["hookInstance"].as_str().unwrap_or("").to_string()).collect();
        assert_eq!(answered, ["before", "first-key", "second-key", "kept"]);
        assert_eq!(w.audits("cds.auth_refused").await.len(), 3);
        assert!(w.vigil.verify_audit().await.unwrap().is_intact());
    }

    async fn suppression_and_the_daily_budget_hold_back_alerts_and_record_why(db) {
        let w = world(db, Setup {
            thresholds: vec![0.0001, 0.0002],
            cds_toml: "\n[cds]\nsuppression_window = \"12h\"\ndaily_alert_budget = 2\n",
            ..Setup::default()
        }).await;
        let for_patient = |hi: &str, pid: &str| {
            let mut r = full_request(hi);
            r["context"]["patientId"] = json!(pid);
            r["prefetch"]["patientToGreet"]["id"] = json!(pid);
            let obs: Vec<Value> = observations().into_iter().map(|mut o| { o["subject"] = json!({"reference": format!("Patient/{pid}")}); o }).collect();
            r["prefetch"]["observations"] = searchset(&obs);
            r
        };
        let (_, v) = w.call(&for_patient("a1", "p-a")).await;
        assert_eq!(v["cards"][0]["indicator"], "critical", "{v}");
        // The same patient an hour later, same indicator: held back.
        w.clock.advance(Duration::from_secs(3600));
        let (_, v) = w.call(&for_patient("a2", "p-a")).await;
        assert!(v["cards"].as_array().unwrap().is_empty(), "{v}");
        let r = w.record_of("a2").await;
        assert!(r.score.is_some());
        assert_eq!(r.decision.as_deref(), Some("critical:suppression_window"));
        assert_eq!(r.context["suppressed"], "suppression_window");
        // Another patient: the second alert of the day.
        let (_, v) = w.call(&for_patient("b1", "p-b")).await;
        assert_eq!(v["cards"].as_array().unwrap().len(), 1);
        // A third patient: past the budget of 2, held back (the default past the budget).
        let (_, v) = w.call(&for_patient("c1", "p-c")).await;
        assert!(v["cards"].as_array().unwrap().is_empty(), "{v}");
        assert_eq!(w.record_of("c1").await.decision.as_deref(), Some("critical:daily_budget"));
    }

    async fn monitor_controls_suppress_cards_and_disable_scoring(db) {
        let w = world(db, Setup { thresholds: vec![0.0001], ..Setup::default() }).await;
        let (_, v) = w.call(&full_request("ctl-0")).await;
        assert_eq!(v["cards"].as_array().unwrap().len(), 1, "{v}");
        // Suppressed: still scored and recorded, no card shown; the record says why.
        w.vigil.set_control(&user("op"), MODEL, "suppress", "drill").await.unwrap();
        let mut n = 0;
        let v = loop {
            // The runtime sees the change within its poll interval.
            n += 1;
            let (s, v) = w.call(&full_request(&format!("ctl-s{n}"))).await;
            assert_eq!(s, StatusCode::OK, "{v}");
            if v["cards"].as_array().unwrap().is_empty() || n > 60 {
                break v;
            }
            tokio::time::sleep(StdDuration::from_millis(100)).await;
        };
        assert_eq!(v, json!({"cards": []}));
        let r = w.record_of(&format!("ctl-s{n}")).await;
        assert!(r.score.is_some(), "{r:?}");
        assert_eq!(r.context["suppressed"], "monitor_suppressed");
        assert_eq!(r.decision.as_deref(), Some("warning:monitor_suppressed"));
        assert_eq!(r.context["cards"], json!([]));
        // Disabled: no score at all, the fallback recorded with its reason.
        w.vigil.lift_control(&user("op"), MODEL, "suppress", "drill over").await.unwrap();
        w.vigil.set_control(&user("op"), MODEL, "disable", "drill").await.unwrap();
        let mut n = 0;
        let r = loop {
            n += 1;
            let hi = format!("ctl-d{n}");
            let (s, v) = w.call(&full_request(&hi)).await;
            assert_eq!(s, StatusCode::OK, "{v}");
            let r = w.record_of(&hi).await;
            if r.fallback_reason.is_some() || n > 60 {
                break r;
            }
            tokio::time::sleep(StdDuration::from_millis(100)).await;
        };
        assert_eq!(r.fallback_reason.as_deref(), Some("deployment_disabled"));
        assert_eq!(r.score, None);
    }

    async fn a_token_is_refused_while_its_first_use_is_still_being_recorded(db) {
        let w = world(db, Setup::default()).await;
        let path = format!("/cds-services/{MODEL}");
        let claims = w.claims(&path);
        let jti = claims["jti"].as_str().unwrap().to_owned();
        let t = w.signer.sign(&claims, None);
        let (one, two) = (full_request("twin-1"), full_request("twin-2"));
        let (a, b) = tokio::join!(
            w.send("POST", &path, Some(&t), Some(&one)),
            w.send("POST", &path, Some(&t), Some(&two)),
        );
        let mut codes = [a.0, b.0];
        codes.sort();
        assert_eq!(codes, [StatusCode::OK, StatusCode::UNAUTHORIZED], "{} / {}", a.1, b.1);
        let refused = if a.0 == StatusCode::OK { &b.1 } else { &a.1 };
        assert_eq!(refused["code"], "jti_replayed");
        // Exactly one of the two calls is recorded, and its token id is in the store.
        let recorded = w.records(PredictionMode::Active).await;
        assert_eq!(recorded.iter().filter(|r| r.context["hookInstance"].as_str().unwrap().starts_with("twin-")).count(), 1);
        let again = w.vigil.store().cds_remember_jti(ISS, &jti, Timestamp::parse(NOW).unwrap(), Timestamp::parse(NOW).unwrap()).await.unwrap();
        assert!(!again, "the accepted token's id was written with the call");
    }

    async fn feedback_is_accepted_linked_and_summarised(db) {
        let w = world(db, Setup { thresholds: vec![0.0001], ..Setup::default() }).await;
        let (_, v) = w.call(&full_request("fb")).await;
        let card = v["cards"][0]["uuid"].as_str().unwrap().to_string();
        let path = format!("/cds-services/{MODEL}/feedback");
        for f in [
            "cds-hooks/v3ballot__25_example-suggestion-accepted.json",
            "cds-hooks/v3ballot__26_example-overridden-guidance-without-overridereason.json",
            "cds-hooks/v3ballot__27_example-overridden-guidance-with-overridereason.json",
        ] {
            let (s, v, _) = w.send("POST", &path, Some(&w.token(&path)), Some(&read_json(f))).await;
            assert_eq!(s, StatusCode::OK, "{f}: {v}");
        }
        let reason = &v["cards"][0]["overrideReasons"][2];
        let mine = json!({"feedback": [{"card": card, "outcome": "overridden",
            "overrideReason": {"reason": reason, "userComment": "ceiling of care agreed"},
            "outcomeTimestamp": "2020-03-03T20:05:00Z"}]});
        let (s, _, _) = w.send("POST", &path, Some(&w.token(&path)), Some(&mine)).await;
        assert_eq!(s, StatusCode::OK);
        // The feedback token's aud is the feedback URL: the call's token does not fit.
        let call_token = w.token(&format!("/cds-services/{MODEL}"));
        assert_eq!(w.send("POST", &path, Some(&call_token), Some(&mine)).await.0, StatusCode::UNAUTHORIZED);
        let s = w.vigil.feedback_summary(MODEL, "month", None).await.unwrap();
        assert_eq!((s.total.cards_with_feedback, s.total.accepted, s.total.overridden), (4, 1, 3));
        assert_eq!(s.unlinked, 3);
        assert_eq!(s.total.reasons["Treatment-escalation plan excludes ICU admission"], 1);
        assert_eq!(s.total.reasons["no reason given"], 1);
        assert_eq!(s.periods.len(), 3, "{:?}", s.periods);
        assert_eq!(s.total.acceptance_rate, Some(0.25));
        let stored = w.vigil.store().list_cds_feedback(MODEL, None).await.unwrap();
        let linked = stored.iter().find(|f| f.card_uuid == card).unwrap();
        assert_eq!(linked.request_id.as_deref(), Some(w.record_of("fb").await.request_id.as_str()));
    }

    async fn cards_offer_the_intended_uses_suggestions_for_this_patient(db) {
        let w = world(db, Setup {
            thresholds: vec![0.0001, 0.0002],
            cds_toml: r#"
[cds]
[[cds.suggestions]]
label = "Measure lactate now"
[[cds.suggestions.actions]]
type = "create"
description = "Venous lactate, urgent"
resource = { resourceType = "ServiceRequest", status = "draft", intent = "proposal", subject = { reference = "Patient/{{context.patientId}}" } }

[[cds.suggestions]]
label = "Call the rapid response team"
at = "critical"
recommended = true
[[cds.suggestions.actions]]
type = "create"
description = "Rapid response review"
resource = { resourceType = "Task", status = "requested", intent = "order", for = { reference = "Patient/{{context.patientId}}" } }
"#,
            ..Setup::default()
        }).await;
        let req = full_request("sg");
        let pid = req["context"]["patientId"].as_str().unwrap().to_string();
        let (s, v) = w.call(&req).await;
        assert_eq!(s, StatusCode::OK);
        let card = &v["cards"][0];
        assert_eq!(card["indicator"], "critical", "{v}");
        assert_eq!(card["selectionBehavior"], "any");
        let sg = card["suggestions"].as_array().unwrap();
        assert_eq!(sg.len(), 2, "{card}");
        assert_eq!(sg[0]["actions"][0]["resource"]["subject"]["reference"], format!("Patient/{pid}"));
        assert_eq!(sg[1]["actions"][0]["resource"]["for"]["reference"], format!("Patient/{pid}"));
        assert_eq!(sg[1]["isRecommended"], true);
        // The clinician accepts the rapid-response suggestion: recorded with the card.
        let path = format!("/cds-services/{MODEL}/feedback");
        let accepted = json!({"feedback": [{"card": card["uuid"], "outcome": "accepted",
            "acceptedSuggestions": [{"id": sg[1]["uuid"]}], "outcomeTimestamp": "2026-06-01T10:05:00Z"}]});
        let (s, v, _) = w.send("POST", &path, Some(&w.token(&path)), Some(&accepted)).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let stored = w.vigil.store().list_cds_feedback(MODEL, None).await.unwrap();
        let f = stored.iter().find(|f| f.card_uuid == card["uuid"].as_str().unwrap()).unwrap();
        assert_eq!(f.accepted_suggestions, vec![sg[1]["uuid"].as_str().unwrap().to_string()]);
        assert_eq!(f.request_id.as_deref(), Some(w.record_of("sg").await.request_id.as_str()));
    }

    async fn a_shadow_release_is_scored_and_recorded_but_never_shown(db) {
        let w = world(db, Setup { shadow: true, ..Setup::default() }).await;
        w.call(&full_request("sh-1")).await;
        let mut shadow = Vec::new();
        for _ in 0..100 {
            shadow = w.records(PredictionMode::Shadow).await;
            if !shadow.is_empty() {
                break;
            }
            tokio::time::sleep(StdDuration::from_millis(20)).await;
        }
        assert_eq!(shadow.len(), 1);
        let active = w.record_of("sh-1").await;
        assert_eq!(shadow[0].request_id, active.request_id);
        assert_ne!(shadow[0].release, active.release);
        assert_eq!(shadow[0].score, active.score);
    }

    async fn a_model_with_only_a_shadow_release_answers_no_cards(db) {
        let w = world(db, Setup { production: false, shadow: true, thresholds: vec![0.0001], ..Setup::default() }).await;
        let (s, v) = w.call(&full_request("silent")).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(v, json!({"cards": []}));
        let mut n = 0;
        for _ in 0..100 {
            n = w.records(PredictionMode::Shadow).await.len();
            if n > 0 {
                break;
            }
            tokio::time::sleep(StdDuration::from_millis(20)).await;
        }
        assert_eq!(n, 1);
        assert!(w.records(PredictionMode::Active).await.is_empty());
    }
}
