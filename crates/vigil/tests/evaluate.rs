//! End to end: the built `vigil` binary evaluating the example release and score files in a
//! temporary home, and refusing bad input with the column and row named and nothing written.

#![allow(clippy::unwrap_used, clippy::type_complexity)]

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Arc;

use serde_json::Value;
use vigil_test_support::example;

fn vigil(home: &Path, args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_vigil"))
        .arg("--home")
        .arg(home)
        .args(["--as", "tester"])
        .args(args)
        .env_remove("VIGIL_DATABASE_URL")
        .output()
        .unwrap()
}

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "failed: {}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn json(o: &Output) -> Value {
    serde_json::from_str(&ok(o)).unwrap()
}

/// A home with the example bundle registered: (home dir, release id, validation snapshot id).
fn demo() -> (tempfile::TempDir, PathBuf, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let q = json(&vigil(
        &home,
        &[
            "--json",
            "quickstart",
            "--no-serve",
            "--demo-home",
            home.to_str().unwrap(),
        ],
    ));
    let release = q["release"].as_str().unwrap().to_owned();
    let validation = q["validation_data"].as_str().unwrap().to_owned();
    (dir, home, release, validation)
}

/// The example model's scores of the validation rows, computed through the Scorer here.
fn scores_via_scorer() -> (Vec<f64>, Vec<f64>) {
    let contract = vigil_domain::FeatureContract::from_toml(
        &std::fs::read_to_string(example("deterioration/contract.toml")).unwrap(),
    )
    .unwrap();
    let model = vigil_inference::Model::from_bytes(
        &std::fs::read(example("deterioration/model.onnx")).unwrap(),
    )
    .unwrap();
    let scorer = vigil_inference::Scorer::new(Arc::new(contract.clone()), Arc::new(model)).unwrap();
    let mut rdr = csv::Reader::from_path(example("deterioration/validation.csv")).unwrap();
    let header = rdr.headers().unwrap().clone();
    let (mut scores, mut labels) = (Vec::new(), Vec::new());
    for rec in rdr.records() {
        let rec = rec.unwrap();
        let mut inputs = vigil_inference::Inputs::new();
        for f in contract.inputs() {
            let i = header.iter().position(|h| h == f.name).unwrap();
            let cell = &rec[i];
            if cell.is_empty() {
                continue;
            }
            let input = match cell.parse::<f64>() {
                Ok(v) if f.ty != vigil_domain::FeatureType::Category => {
                    vigil_inference::Input::number(v)
                }
                _ => vigil_inference::Input::text(cell),
            };
            inputs.insert(f.name.clone(), input);
        }
        let s = scorer
            .score(
                &inputs,
                vigil_domain::Timestamp::from_unix_seconds(1_735_689_600),
            )
            .unwrap();
        scores.push(s.score);
        labels.push(
            rec[header.iter().position(|h| h == "outcome").unwrap()]
                .parse::<f64>()
                .unwrap(),
        );
    }
    (scores, labels)
}

#[test]
fn evaluate_release_matches_the_statistics_on_the_scorers_scores() {
    let (dir, home, release, validation) = demo();
    let out = dir.path().join("r.json");
    let html = dir.path().join("r.html");
    let r = json(&vigil(
        &home,
        &[
            "--json",
            "evaluate",
            "release",
            &release[..12],
            "--data",
            &validation,
            "--label-col",
            "outcome",
            "--group-col",
            "site",
            "--time-col",
            "prediction_time",
            "--period",
            "month",
            "--bootstrap",
            "100",
            "--out",
            out.to_str().unwrap(),
            "--html",
            html.to_str().unwrap(),
        ],
    ));
    assert_eq!(r["created"], true);
    let auroc = r["report"]["auroc"]["value"].as_f64().unwrap();
    let (scores, labels) = scores_via_scorer();
    let expected = vigil_stats::evaluate(
        &vigil_stats::EvaluationInput {
            scores,
            labels,
            ..Default::default()
        },
        &vigil_stats::EvaluationOptions {
            bootstrap: None,
            ..Default::default()
        },
    )
    .unwrap();
    let want = expected.auroc.value.unwrap();
    assert!((auroc - want).abs() < 1e-9, "{auroc} vs {want}");
    assert_eq!(
        format!("{auroc:.3}"),
        "0.856",
        "the bundle's reported validation AUROC"
    );
    assert!(r["report"]["periods"]["2024-07"].is_object());
    assert!(r["report"]["missing_data_robustness"]["lactate"]["auroc"].is_number());
    let written: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    // JSON numbers re-parsed without float round-trip may differ in the last digit.
    assert!((written["auroc"]["value"].as_f64().unwrap() - auroc).abs() < 1e-12);
    assert_eq!(written["scoring"], r["report"]["scoring"]);
    assert!(std::fs::read_to_string(&html).unwrap().contains("<svg"));

    let id = r["evaluation"]["id"].as_str().unwrap();
    let list = json(&vigil(
        &home,
        &["--json", "evaluation", "list", "--release", &release],
    ));
    // The quickstart's own evaluation and this one.
    let ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["id"].as_str())
        .collect();
    assert_eq!(ids.len(), 2, "{list}");
    assert!(ids.contains(&id), "{list}");
    let shown = json(&vigil(&home, &["--json", "evaluation", "show", &id[..10]]));
    assert!((shown["report"]["auroc"]["value"].as_f64().unwrap() - auroc).abs() < 1e-12);
    assert_eq!(shown["report"]["options"], r["report"]["options"]);
    let human = ok(&vigil(&home, &["evaluation", "show", id]));
    assert!(human.contains("AUROC:        0.856"), "{human}");
    let log = json(&vigil(
        &home,
        &["--json", "audit", "log", "--action", "evaluation.recorded"],
    ));
    // One event for the quickstart's evaluation, one for this one.
    assert_eq!(log.as_array().unwrap().len(), 2, "{log}");
    assert!(
        log.as_array()
            .unwrap()
            .iter()
            .any(|e| e["payload"].to_string().contains(id)),
        "{log}"
    );
    ok(&vigil(&home, &["audit", "verify"]));

    // A score file made from the recorded evaluation's inputs: evaluate scores agrees.
    let (scores, labels) = scores_via_scorer();
    let csv_path = dir.path().join("scores.csv");
    let mut text = String::from("p,y\n");
    for (s, y) in scores.iter().zip(&labels) {
        text += &format!("{s:?},{y}\n");
    }
    std::fs::write(&csv_path, text).unwrap();
    let s = json(&vigil(
        &home,
        &[
            "--json",
            "evaluate",
            "scores",
            csv_path.to_str().unwrap(),
            "--score-col",
            "p",
            "--label-col",
            "y",
            "--bootstrap",
            "0",
        ],
    ));
    assert!((s["auroc"]["value"].as_f64().unwrap() - want).abs() < 1e-12);

    let cmp = json(&vigil(
        &home,
        &[
            "--json",
            "compare",
            &release,
            &release,
            "--data",
            &validation,
            "--label-col",
            "outcome",
        ],
    ));
    assert_eq!(cmp["n_compared"], 8000);
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn evaluate_scores_summarises_and_writes_reports() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("score,label,group\n");
    for i in 0..400 {
        let y = u8::from(i % 4 == 0 || i % 7 == 0);
        let s = (f64::from(i % 50) / 60.0 + f64::from(y) * 0.15).min(1.0);
        text += &format!("{s},{y},{}\n", ["a", "b"][i as usize % 2]);
    }
    let f = write(dir.path(), "s.csv", &text);
    let out = dir.path().join("o.json");
    let html = dir.path().join("o.html");
    let o = vigil(
        dir.path(),
        &[
            "evaluate",
            "scores",
            f.to_str().unwrap(),
            "--score-col",
            "score",
            "--label-col",
            "label",
            "--group-col",
            "group",
            "--threshold",
            "0.3",
            "--threshold",
            "0.5",
            "--bootstrap",
            "50",
            "--seed",
            "7",
            "--out",
            out.to_str().unwrap(),
            "--html",
            html.to_str().unwrap(),
        ],
    );
    let t = ok(&o);
    for want in [
        "n:            400",
        "AUROC:",
        "AUPRC:",
        "Brier:",
        "calibration:  intercept",
        "THRESHOLD",
        "0.300",
        "0.500",
        "JSON report:",
        "HTML report:",
    ] {
        assert!(t.contains(want), "missing {want:?} in\n{t}");
    }
    let j: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(j["n"], 400);
    assert!(j["subgroups"]["group"]["a"]["auroc"].is_number());
    assert!(
        std::fs::read_to_string(&html)
            .unwrap()
            .starts_with("<!DOCTYPE html>")
            || html.exists()
    );
}

#[test]
fn bad_input_names_column_and_row_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&str, &str, &[&str], &str, &[&str])] = &[
        (
            "label",
            "s,y\n0.1,0\n0.2,1\n0.3,2\n",
            &[],
            "label_not_binary",
            &["`y`", "row 3"],
        ),
        (
            "positive",
            "s,y\n0.1,no\n0.2,yes\n0.3,maybe\n",
            &["--positive-label", "yes"],
            "label_not_binary",
            &["`y`", "row 3"],
        ),
        (
            "range",
            "s,y\n0.1,0\n1.2,1\n",
            &[],
            "score_out_of_range",
            &["`s`", "row 2"],
        ),
        (
            "negative",
            "s,y\n-0.1,0\n0.2,1\n",
            &[],
            "score_out_of_range",
            &["`s`", "row 1"],
        ),
        (
            "nan",
            "s,y\n0.1,0\nNaN,1\n",
            &[],
            "score_missing",
            &["`s`", "row 2"],
        ),
        (
            "empty",
            "s,y\n0.1,0\n0.4,1\n,1\n",
            &[],
            "score_missing",
            &["`s`", "row 3"],
        ),
        (
            "emptylabel",
            "s,y\n0.1,0\n0.4,\n",
            &[],
            "label_missing",
            &["`y`", "row 2"],
        ),
        (
            "text",
            "s,y\n0.1,0\nhigh,1\n",
            &[],
            "score_not_numeric",
            &["`s`", "row 2"],
        ),
        ("column", "s,z\n0.1,0\n", &[], "column_missing", &["`y`"]),
    ];
    for (name, csv, extra, code, wants) in cases {
        let f = write(dir.path(), &format!("{name}.csv"), csv);
        let out = dir.path().join(format!("{name}.json"));
        let html = dir.path().join(format!("{name}.html"));
        let mut args = vec![
            "--json",
            "evaluate",
            "scores",
            f.to_str().unwrap(),
            "--score-col",
            "s",
            "--label-col",
            "y",
            "--out",
            out.to_str().unwrap(),
            "--html",
            html.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let o = vigil(dir.path(), &args);
        assert_eq!(o.status.code(), Some(1), "{name}: should fail");
        let err: Value = serde_json::from_slice(&o.stderr)
            .unwrap_or_else(|_| panic!("{name}: {}", String::from_utf8_lossy(&o.stderr)));
        assert_eq!(err["error"]["code"], *code, "{name}: {err}");
        let msg = err["error"]["message"].as_str().unwrap();
        for w in *wants {
            assert!(msg.contains(w), "{name}: {w:?} not in {msg:?}");
        }
        assert!(
            !out.exists() && !html.exists(),
            "{name}: nothing is written"
        );
        assert!(o.stdout.is_empty(), "{name}: nothing printed on stdout");
    }
}

#[test]
fn drift_between_the_example_files() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("d.json");
    let o = vigil(
        dir.path(),
        &[
            "--json",
            "drift",
            example("deterioration/train.csv").to_str().unwrap(),
            example("deterioration/validation.csv").to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
    );
    let d = json(&o);
    assert_eq!(d["features"]["heart_rate"]["kind"], "numeric");
    assert_eq!(d["features"]["sex"]["kind"], "categorical");
    assert!(
        d["skipped"]["patient_id"].is_string(),
        "identifiers are left out: {}",
        d["skipped"]
    );
    assert!(
        d["columns"]["lactate"]["reference_missing"]
            .as_u64()
            .unwrap()
            > 0
    );
    assert!(out.exists());
    let c = json(&vigil(
        dir.path(),
        &[
            "--json",
            "drift",
            example("deterioration/train.csv").to_str().unwrap(),
            example("deterioration/validation.csv").to_str().unwrap(),
            "--contract",
            example("deterioration/contract.toml").to_str().unwrap(),
        ],
    ));
    assert_eq!(c["features"].as_object().unwrap().len(), 10);
}
