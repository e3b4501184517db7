//! Serving through the real binary on loopback, on SQLite and PostgreSQL: predictions by
//! contract (fallbacks, ranges, units), malformed requests, shadow scoring, records made
//! durable before the answer, reload after a promotion made by the CLI, the Open Inference
//! Protocol, /metrics, and a SIGKILL in the middle of a load that loses no answered record.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::both_backends;
use support::serve::{Deployed, reference_rows, try_http};
use vigil_domain::prediction::PredictionMode;

const PREDICT: &str = "/api/v1/models/deterioration-risk/predict";

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !f() {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

both_backends! {
    async fn predictions_follow_the_contract_and_are_recorded_before_the_answer(db) {
        let d = Deployed::new(db);
        let s = d.serve(&[]);
        let rows = reference_rows(3);

        // Happy path: the production release's probability, as scikit-learn gave it.
        let (features, expected) = rows[0].clone();
        let (st, v) = s.post_json(PREDICT, &d.ehr, &json!({
            "features": features, "patient": "MRN-0042", "encounter": "ENC-7"
        }));
        assert_eq!(st, 200, "{v}");
        assert_eq!(v["release"], d.active.as_str());
        assert_eq!(v["model"], "deterioration-risk");
        let score = v["score"].as_f64().unwrap();
        assert!((score - expected).abs() < 1e-5, "{score} vs {expected}");
        assert_eq!(v["thresholds"], json!([0.15]));
        assert_eq!(v["decision"], if score >= 0.15 { "at_or_above:0.15" } else { "below:0.15" });
        assert!(v["fallback"].is_null());
        let explanation = v["explanation"].as_array().unwrap();
        assert_eq!(explanation.len(), 10, "{v}");
        assert_eq!(explanation[0]["feature"], "age");
        let happy_id = v["request_id"].as_str().unwrap().to_owned();

        // The same temperature in Fahrenheit gives the same score.
        let mut f = features.clone();
        let c = f["temperature"].as_f64().unwrap();
        f["temperature"] = json!({ "value": c * 9.0 / 5.0 + 32.0, "unit": "[degF]" });
        let (st, v) = s.post_json(PREDICT, &d.ehr, &json!({ "features": f }));
        assert_eq!(st, 200, "{v}");
        assert!((v["score"].as_f64().unwrap() - score).abs() < 1e-6, "{v}");
        let converted_id = v["request_id"].as_str().unwrap().to_owned();

        // A required feature missing: the fallback, no score, the feature named.
        let mut f = features.clone();
        f.as_object_mut().unwrap().remove("heart_rate");
        let (st, v) = s.post_json(PREDICT, &d.ehr, &json!({ "features": f }));
        assert_eq!(st, 200, "{v}");
        assert!(v["score"].is_null() && v["decision"].is_null(), "{v}");
        assert_eq!(v["fallback"]["reason"], "missing_required");
        assert_eq!(v["fallback"]["features"], json!(["heart_rate"]));
        let missing_id = v["request_id"].as_str().unwrap().to_owned();

        // Out of range is invalid, treated as missing.
        let mut f = features.clone();
        f["spo2"] = json!(150);
        let (st, v) = s.post_json(PREDICT, &d.ehr, &json!({ "features": f }));
        assert_eq!((st, &v["fallback"]["reason"]), (200, &json!("missing_required")), "{v}");
        assert_eq!(v["fallback"]["features"], json!(["spo2"]));
        let invalid_id = v["request_id"].as_str().unwrap().to_owned();

        // Malformed JSON and wrong shapes: 400, a stable code, the field named.
        let (st, body) = s.post(PREDICT, Some(&d.ehr), "{\"features\": {\"age\": 7");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!((st, &v["code"], &v["field"]), (400, &json!("malformed_json"), &json!("$")), "{v}");
        let (st, v) = s.post_json(PREDICT, &d.ehr, &json!({
            "features": { "temperature": { "value": 98.6, "unit": 3 } }
        }));
        assert_eq!((st, &v["code"]), (400, &json!("invalid_request")), "{v}");
        assert_eq!(v["field"], "features.temperature.unit");
        let (st, v) = s.post_json(PREDICT, &d.ehr, &json!({ "rows": [ { "features": features }, { "features": 3 } ] }));
        assert_eq!((st, &v["field"]), (400, &json!("rows[1].features")), "{v}");

        // The batch form answers each row.
        let mut f = features.clone();
        f.as_object_mut().unwrap().remove("wbc");
        let (st, v) = s.post_json(PREDICT, &d.ehr, &json!({ "rows": [ { "features": rows[1].0 }, { "features": f } ] }));
        assert_eq!(st, 200, "{v}");
        let results = v["results"].as_array().unwrap();
        assert_eq!(results.len(), 2);
        assert!((results[0]["score"].as_f64().unwrap() - rows[1].1).abs() < 1e-5, "{v}");
        assert_eq!(results[1]["fallback"]["features"], json!(["wbc"]));

        // Authentication: a token is needed; a predict-client token opens nothing else.
        let (st, _) = s.post(PREDICT, None, "{}");
        assert_eq!(st, 401);
        let (st, body) = s.get("/api/v1/models", Some(&d.ehr));
        assert!(st == 403 && body.contains("predict_client_only"), "{st} {body}");
        let (st, v) = s.post_json("/api/v1/models/no-such-model/predict", &d.ehr, &json!({ "features": {} }));
        assert_eq!((st, &v["code"]), (404, &json!("model_not_found")), "{v}");

        // Every answered prediction was durable when answered; shadow records follow.
        let records = d.records().await;
        let active = |id: &str| {
            records.iter().find(|r| r.request_id == id && r.mode == PredictionMode::Active)
                .unwrap_or_else(|| panic!("no active record for {id}"))
                .clone()
        };
        let r = active(&happy_id);
        assert_eq!(r.release.to_string(), d.active);
        assert_eq!(r.channel, "predict");
        assert!((r.score.unwrap() - score).abs() < 1e-12);
        let key = r.patient_key.clone().unwrap();
        assert!(key.len() == 64 && key.bytes().all(|b| b.is_ascii_hexdigit()), "{key}");
        assert_ne!(key, "MRN-0042");
        assert!(r.encounter_key.is_some());
        let t = active(&converted_id);
        let temp = t.features.iter().find(|f| f.name == "temperature").unwrap();
        assert_eq!(temp.status, "converted");
        assert!((temp.value.unwrap() - features["temperature"].as_f64().unwrap()).abs() < 1e-9);
        let m = active(&missing_id);
        assert_eq!(m.fallback_reason.as_deref(), Some("missing_required"));
        assert!(m.score.is_none());
        assert_eq!(m.features.iter().find(|f| f.name == "heart_rate").unwrap().status, "missing");
        let inv = active(&invalid_id);
        assert_eq!(inv.features.iter().find(|f| f.name == "spo2").unwrap().status, "invalid");
        assert!(active(results[1]["request_id"].as_str().unwrap()).fallback_reason.is_some());

        // The shadow release scored the same request, off the response path, and was
        // recorded but never returned.
        let mut shadow = None;
        for _ in 0..100 {
            shadow = d.records().await.into_iter()
                .find(|r| r.request_id == happy_id && r.mode == PredictionMode::Shadow);
            if shadow.is_some() { break }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let shadow = shadow.expect("shadow record");
        assert_eq!(shadow.release.to_string(), d.shadow);
        assert_eq!(shadow.decision.as_deref(), Some(if score >= 0.3 { "at_or_above:0.3" } else { "below:0.3" }));

        // Metrics: counts per model and release, fallbacks by reason, nothing about patients.
        let (st, m) = s.get("/metrics", None);
        assert_eq!(st, 200);
        let short_active = &d.active[..12];
        assert!(m.contains(&format!("vigil_predictions_total{{model=\"deterioration-risk\",release=\"{short_active}")), "{m}");
        assert!(m.contains("reason=\"missing_required\""), "{m}");
        assert!(m.contains("mode=\"shadow\""), "{m}");
        assert!(m.contains("vigil_prediction_latency_seconds_bucket"), "{m}");
        assert!(m.contains("vigil_requests_total{route=\"predict\",status=\"400\"}"), "{m}");
        assert!(!m.contains("MRN-0042") && !m.contains(&key), "{m}");

        // A promotion by the CLI while the server runs: the server picks it up.
        d.home.ok(&["promote", &d.shadow, "--to", "production", "--reason", "go live"]);
        wait_for("the new production release", || {
            let (st, v) = s.post_json(PREDICT, &d.ehr, &json!({ "features": features }));
            st == 200 && v["release"] == d.shadow.as_str()
        });
        // And a rollback through this server's API takes effect before it answers.
        let (st, v) = s.post_json("/api/v1/models/deterioration-risk/rollback", &d.operator,
            &json!({ "reason": "back" }));
        assert_eq!(st, 200, "{v}");
        let (_, v) = s.post_json(PREDICT, &d.ehr, &json!({ "features": features }));
        assert_eq!(v["release"], d.active.as_str(), "{v}");

        // When the record cannot be written there is no answer, and the server keeps serving.
        d.home.sql("DROP TABLE predictions");
        let (st, v) = s.post_json(PREDICT, &d.ehr, &json!({ "features": features }));
        assert_eq!((st, &v["code"]), (503, &json!("prediction_not_recorded")), "{v}");
        assert!(v.get("score").is_none(), "{v}");
        let (st, _) = s.get("/v2/health/live", None);
        assert_eq!(st, 200);
        let (_, m) = s.get("/metrics", None);
        assert!(!m.contains("vigil_prediction_record_failures_total 0\n"), "{m}");
    }

    async fn monitor_controls_disable_and_suppress_are_honoured(db) {
        let d = Deployed::new(db);
        let s = d.serve(&[]);
        let (features, expected) = reference_rows(1)[0].clone();
        let control = |args: &[&str]| {
            let mut a = vec!["monitor", "control", "deterioration-risk"];
            a.extend_from_slice(args);
            d.home.ok(&a);
        };
        // Disabled by the monitor (here by hand, in another process): no score, the
        // fallback `deployment_disabled`, 503, and the answer is recorded.
        control(&["--action", "set", "--control", "disable", "--reason", "drill"]);
        let mut answer = Value::Null;
        wait_for("the disable control", || {
            let (st, v) = s.post_json(PREDICT, &d.ehr, &json!({ "features": features, "patient": "MRN-7" }));
            answer = v;
            st == 503
        });
        assert_eq!(answer["code"], "deployment_disabled", "{answer}");
        assert_eq!(answer["fallback"]["reason"], "deployment_disabled", "{answer}");
        assert!(answer["score"].is_null() && answer["decision"].is_null(), "{answer}");
        let id = answer["request_id"].as_str().unwrap().to_owned();
        let rec = d.records().await.into_iter()
            .find(|r| r.request_id == id && r.mode == PredictionMode::Active)
            .expect("the disabled answer is recorded");
        assert_eq!(rec.fallback_reason.as_deref(), Some("deployment_disabled"));
        assert_eq!(rec.score, None);
        // Lifted: scores again.
        control(&["--action", "lift", "--control", "disable", "--reason", "drill over"]);
        wait_for("the lifted control", || {
            s.post_json(PREDICT, &d.ehr, &json!({ "features": features })).0 == 200
        });
        // Suppressed: predictions have no cards to hide, so they keep their score.
        control(&["--action", "set", "--control", "suppress", "--reason", "drill"]);
        std::thread::sleep(Duration::from_millis(600));
        let (st, v) = s.post_json(PREDICT, &d.ehr, &json!({ "features": features }));
        assert_eq!(st, 200, "{v}");
        assert!((v["score"].as_f64().unwrap() - expected).abs() < 1e-5, "{v}");
    }

    async fn open_inference_protocol_infer_matches_predict(db) {
        let d = Deployed::new(db);
        let s = d.serve(&[]);
        let rows = reference_rows(4);
        let (st, body) = s.get("/v2/health/ready", None);
        assert_eq!(st, 200, "{body}");
        let (st, _) = s.get("/v2/health/live", None);
        assert_eq!(st, 200);
        let (st, body) = s.get("/v2/models/deterioration-risk/ready", None);
        assert_eq!(st, 200, "{body}");
        let (st, meta) = s.get("/v2/models/deterioration-risk", Some(&d.ehr));
        assert_eq!(st, 200, "{meta}");
        let meta: Value = serde_json::from_str(&meta).unwrap();
        assert_eq!(meta["versions"][0], d.active.as_str());
        let order: Vec<String> = meta["parameters"]["input_order"].as_array().unwrap()
            .iter().map(|v| v.as_str().unwrap().to_owned()).collect();
        assert_eq!(order[0], "age");

        // One [N, n] FP32 matrix in contract order (sex as the index of its level).
        let cell = |f: &Value, name: &str| match name {
            "sex" => if f["sex"] == "male" { 1.0 } else { 0.0 },
            _ => f[name].as_f64().unwrap(),
        };
        let data: Vec<Vec<f64>> = rows.iter().map(|(f, _)| order.iter().map(|n| cell(f, n)).collect()).collect();
        let (st, v) = s.post_json("/v2/models/deterioration-risk/infer", &d.ehr, &json!({
            "id": "batch-1",
            "inputs": [{ "name": "input", "shape": [rows.len(), order.len()], "datatype": "FP32", "data": data }]
        }));
        assert_eq!(st, 200, "{v}");
        assert_eq!(v["parameters"]["release"], d.active.as_str());
        assert_eq!(v["model_version"], d.active.as_str());
        assert_eq!(v["id"], "batch-1");
        let probs = v["outputs"].as_array().unwrap().iter().find(|o| o["name"] == "probability").unwrap();
        assert_eq!(probs["shape"], json!([rows.len(), 1]));
        let ids: Vec<String> = v["parameters"]["request_ids"].as_array().unwrap().iter()
            .map(|x| x.as_str().unwrap().to_owned()).collect();

        // One tensor per feature, by name: the same probabilities, and the same as /predict.
        let inputs: Vec<Value> = order.iter().map(|n| {
            if n == "sex" {
                json!({ "name": n, "shape": [rows.len()], "datatype": "BYTES", "data": rows.iter().map(|(f, _)| f["sex"].clone()).collect::<Vec<_>>() })
            } else {
                json!({ "name": n, "shape": [rows.len(), 1], "datatype": "FP64", "data": rows.iter().map(|(f, _)| f[n].clone()).collect::<Vec<_>>() })
            }
        }).collect();
        let (st, by_name) = s.post_json("/v2/models/deterioration-risk/infer", &d.ehr, &json!({ "inputs": inputs,
            "outputs": [{ "name": "probability" }] }));
        assert_eq!(st, 200, "{by_name}");
        assert_eq!(by_name["outputs"].as_array().unwrap().len(), 1);
        for (i, (f, expected)) in rows.iter().enumerate() {
            let (_, p) = s.post_json(PREDICT, &d.ehr, &json!({ "features": f }));
            let p = p["score"].as_f64().unwrap();
            let a = probs["data"][i].as_f64().unwrap();
            let b = by_name["outputs"][0]["data"][i].as_f64().unwrap();
            assert!((a - expected).abs() < 1e-5 && (b - p).abs() < 1e-9 && (a - p).abs() < 1e-6, "{a} {b} {p} {expected}");
        }

        // Errors in the protocol's shape, naming the field.
        let (st, v) = s.post_json("/v2/models/deterioration-risk/infer", &d.ehr, &json!({
            "inputs": [{ "name": "age", "shape": [2], "datatype": "FP64", "data": [70] }]
        }));
        assert_eq!((st, &v["field"]), (400, &json!("inputs[0].data")), "{v}");
        assert!(v["error"].is_string());

        // Each inference row is recorded on the oip channel.
        let records = d.records().await;
        for id in &ids {
            let r = records.iter().find(|r| &r.request_id == id && r.mode == PredictionMode::Active).unwrap();
            assert_eq!(r.channel, "oip");
            assert_eq!(r.context["oip_id"], "batch-1");
        }

        // A client written for the protocol: tritonclient[http], installed by the project's script.
        let script = vigil_test_support::repo_root().join("scripts/oip-client.sh");
        let out = std::process::Command::new("bash")
            .arg(&script)
            .arg(&s.addr)
            .arg(&d.ehr)
            .arg(serde_json::to_string(&data).unwrap())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        let got: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(got["release"], d.active.as_str());
        for (i, (_, expected)) in rows.iter().enumerate() {
            let a = got["probability"][i].as_f64().unwrap();
            let p = probs["data"][i].as_f64().unwrap();
            assert!((a - p).abs() < 1e-12 && (a - expected).abs() < 1e-5, "{a} {p}");
        }
    }

    async fn a_sigkill_under_load_loses_no_answered_prediction(db) {
        let d = Deployed::new(db);
        let mut s = d.serve(&[]);
        let features = reference_rows(1)[0].0.clone();
        let body = json!({ "features": features, "patient": "P1" }).to_string();
        let answered = Arc::new(Mutex::new(Vec::<String>::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let mut workers = Vec::new();
        for _ in 0..6 {
            let (addr, token, body) = (s.addr.clone(), d.ehr.clone(), body.clone());
            let (answered, stop) = (answered.clone(), stop.clone());
            workers.push(std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match try_http(&addr, "POST", PREDICT, Some(&token), Some(&body)) {
                        Ok((200, b)) => {
                            let v: Value = serde_json::from_str(&b).unwrap();
                            answered.lock().unwrap().push(v["request_id"].as_str().unwrap().to_owned());
                        }
                        Ok(_) => {}
                        Err(_) => break,
                    }
                }
            }));
        }
        wait_for("some answers", || answered.lock().unwrap().len() >= 200);
        s.kill(); // SIGKILL
        stop.store(true, Ordering::Relaxed);
        for w in workers {
            w.join().unwrap();
        }
        let answered = answered.lock().unwrap().clone();

        // The server comes back; every answered prediction is in the store.
        let s2 = d.serve(&[]);
        let (st, _) = s2.get("/v2/health/ready", None);
        assert_eq!(st, 200);
        let stored: HashSet<String> = d.records().await.into_iter()
            .filter(|r| r.mode == PredictionMode::Active)
            .map(|r| r.request_id)
            .collect();
        let lost: Vec<&String> = answered.iter().filter(|id| !stored.contains(*id)).collect();
        assert!(lost.is_empty(), "{} of {} answered predictions have no record: {:?}", lost.len(), answered.len(), &lost[..lost.len().min(5)]);
        let verify = d.home.ok(&["audit", "verify"]);
        assert!(verify.contains("intact"), "{verify}");
    }
}
