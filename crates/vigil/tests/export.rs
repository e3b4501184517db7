//! Evidence for auditors through the real binary, on SQLite and PostgreSQL: the evidence
//! package verifies with no store at all and fails, naming the file, when anything in it
//! changes; the model card fills what the registry knows and lists what it does not.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;
use std::process::Command;

use support::{Home, both_backends, example, path};

/// `vigil audit verify-package DIR` with no home and no database.
fn verify_package(dir: &Path) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .env_remove("VIGIL_HOME")
        .env_remove("VIGIL_DATABASE_URL")
        .env("VIGIL_HOME", "/nonexistent/vigil-home")
        .args(["audit", "verify-package"])
        .arg(dir)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

/// A change made to one file of a package.
type Edit = Box<dyn Fn(&str) -> String>;

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

/// A home with the example release, a data check and an evaluation on validation data.
fn evaluated(h: &Home) -> String {
    let train = h.register_example();
    let validation = h.json(&[
        "dataset",
        "register",
        path(&example("deterioration/validation.csv")),
        "--name",
        "validation",
        "--manifest",
        path(&example("deterioration/validation-manifest.toml")),
    ])["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let args = h.register_release_args(&train, "first");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let release = h.json(&args)["id"].as_str().unwrap().to_owned();
    let contract = path(&example("deterioration/contract.toml")).to_owned();
    h.ok(&[
        "dataset",
        "check",
        &validation,
        "--contract",
        &contract,
        "--label-col",
        "outcome",
        "--prediction-time-col",
        "prediction_time",
        "--site-col",
        "site",
        "--patient-col",
        "patient_id",
        "--against",
        &train,
    ]);
    h.ok(&[
        "evaluate",
        "release",
        &release,
        "--data",
        &validation,
        "--label-col",
        "outcome",
        "--group-col",
        "sex",
        "--group-col",
        "site",
        "--bootstrap",
        "20",
    ]);
    release
}

both_backends! {
    async fn the_package_verifies_without_a_store_and_fails_when_changed(db) {
        let h = Home::init(db);
        let release = evaluated(&h);
        let out_root = tempfile::tempdir().unwrap();
        let pkg = out_root.path().join("package");
        let report = h.json(&["audit", "export", &release[..12], "--out", path(&pkg)]);
        assert_eq!(report["release"], release.as_str());
        let head = h.json(&["audit", "verify"])["report"]["head"].as_str().unwrap().to_owned();
        assert_eq!(report["head"]["hash"], head.as_str(), "the proof ends at the live head");

        // What an auditor needs is there.
        for f in ["release/manifest.json", "artifacts/model.onnx", "artifacts/contract.toml",
                  "governance/sign-offs.json", "governance/history.json", "audit/events.jsonl",
                  "audit/chain.jsonl", "index.json", "model-card.md"] {
            assert!(pkg.join(f).is_file(), "{f} missing");
        }
        let evals: Vec<_> = std::fs::read_dir(pkg.join("evaluations")).unwrap().collect();
        assert_eq!(evals.len(), 1);
        let eval_dir = evals[0].as_ref().unwrap().path();
        assert!(eval_dir.join("report.html").is_file());
        let datasets = std::fs::read_dir(pkg.join("datasets")).unwrap().count();
        assert_eq!(datasets, 2, "training and validation snapshots");
        let events = std::fs::read_to_string(pkg.join("audit/events.jsonl")).unwrap();
        for action in ["release.registered", "evaluation.recorded", "dataset.checked", "release.exported"] {
            assert!(events.contains(action), "{action} not in the package's events");
        }

        // Exporting into a folder that holds something is refused, and writes nothing.
        let (err, code) = h.fails(&["audit", "export", &release, "--out", path(&pkg)]);
        assert_eq!(code, 1);
        assert!(err.contains("not an empty folder"), "{err}");

        // The store is gone: the package still verifies.
        drop(h);
        let (code, text) = verify_package(&pkg);
        assert_eq!(code, 0, "{text}");
        assert!(text.contains("intact"), "{text}");
        assert!(text.contains(&head), "{text}");

        // Any change to any file is caught and named.
        let tampered = out_root.path().join("tampered");
        let edits: Vec<(&str, Edit)> = vec![
            ("governance/sign-offs.json", Box::new(|_| "[{\"user\":\"mallory\"}]\n".into())),
            ("artifacts/contract.toml", Box::new(|s| s.replace("range = [20, 250]", "range = [0, 999]"))),
            ("audit/events.jsonl", Box::new(|s| s.replacen("\"actor\":\"tester\"", "\"actor\":\"mallory\"", 1))),
            ("audit/chain.jsonl", Box::new(|s| s.lines().skip(1).map(|l| format!("{l}\n")).collect())),
            ("release/model.json", Box::new(|s| s.replace("\"risk_tier\": 3", "\"risk_tier\": 1"))),
        ];
        for (file, edit) in &edits {
            let _ = std::fs::remove_dir_all(&tampered);
            copy_tree(&pkg, &tampered);
            let p = tampered.join(file);
            let before = std::fs::read_to_string(&p).unwrap();
            let after = edit(&before);
            assert_ne!(before, after, "the edit of {file} changed nothing");
            std::fs::write(&p, after).unwrap();
            let (code, text) = verify_package(&tampered);
            assert_eq!(code, 3, "{file}: {text}");
            assert!(text.contains(file), "{file}: {text}");
        }
        // Every file of the package, changed by one byte, fails the verification.
        let index: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(pkg.join("index.json")).unwrap()).unwrap();
        let mut files: Vec<String> = index["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["path"].as_str().unwrap().to_owned())
            .collect();
        assert!(files.len() > 10, "{files:?}");
        files.push("index.json".into());
        for file in &files {
            let _ = std::fs::remove_dir_all(&tampered);
            copy_tree(&pkg, &tampered);
            let p = tampered.join(file);
            let mut bytes = std::fs::read(&p).unwrap();
            match bytes.last_mut() {
                Some(b) => *b ^= 0x01,
                None => bytes.push(b' '),
            }
            std::fs::write(&p, bytes).unwrap();
            let (code, text) = verify_package(&tampered);
            if file == "index.json" {
                assert_ne!(code, 0, "changing the index went unnoticed: {text}");
            } else {
                assert_eq!(code, 3, "changing {file} went unnoticed: {text}");
            }
        }

        // A file slipped in, and an index rewritten to match a change, are caught too.
        let _ = std::fs::remove_dir_all(&tampered);
        copy_tree(&pkg, &tampered);
        std::fs::write(tampered.join("governance/extra.json"), "{}").unwrap();
        let (code, text) = verify_package(&tampered);
        assert_eq!((code, text.contains("governance/extra.json")), (3, true), "{text}");

        let _ = std::fs::remove_dir_all(&tampered);
        copy_tree(&pkg, &tampered);
        std::fs::write(tampered.join("governance/exceptions.json"), "[{\"gate\": \"data-checks\"}]\n").unwrap();
        let mut index: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(tampered.join("index.json")).unwrap()).unwrap();
        for f in index["files"].as_array_mut().unwrap() {
            let bytes = std::fs::read(tampered.join(f["path"].as_str().unwrap())).unwrap();
            f["size"] = bytes.len().into();
            f["sha256"] = sha256_hex(&bytes).into();
        }
        std::fs::write(tampered.join("index.json"), serde_json::to_vec_pretty(&index).unwrap()).unwrap();
        let (code, text) = verify_package(&tampered);
        assert_eq!(code, 3, "{text}");
        assert!(text.contains("index was rewritten"), "{text}");
    }

    async fn the_model_card_fills_what_the_registry_knows(db) {
        let h = Home::init(db);
        let release = evaluated(&h);
        let card = h.ok(&["model", "card", &release, "--format", "json"]);
        let card: serde_json::Value = serde_json::from_str(&card).unwrap();
        let attr = |id: &str| card["attributes"].as_array().unwrap().iter()
            .find(|a| a["id"] == id).unwrap_or_else(|| panic!("attribute {id}")).clone();
        assert!(attr("2.ii")["value"].as_str().unwrap().contains("Adults (18 years and over)"));
        assert!(attr("3.ii")["value"].as_str().unwrap().contains("four hospitals"));
        // The contract prohibits race and uses sex and age: the card says so.
        let vars = attr("4.ii")["value"].as_str().unwrap().to_owned();
        assert!(vars.contains("race: `race` (prohibited, never an input)"), "{vars}");
        assert!(vars.contains("sex: `sex` (required input)"), "{vars}");
        assert!(vars.contains("language: not an input"), "{vars}");
        // Validation comes from the training sites (a later period): internal, not external.
        let internal = attr("7.i")["value"].as_str().unwrap().to_owned();
        assert!(internal.contains("AUROC 0."), "{internal}");
        assert!(attr("7.iii")["value"].is_null());
        assert!(attr("7.ii")["value"].as_str().unwrap().contains("site = west"));
        // What the registry cannot know is listed, not invented.
        assert!(attr("1.ii")["value"].is_null());
        let md = h.ok(&["model", "card", &release]);
        assert!(md.contains("## Not filled"), "{md}");
        assert!(md.contains("1.ii Funding source"), "{md}");
        let dir = tempfile::tempdir().unwrap();
        let html = dir.path().join("card.html");
        h.ok(&["model", "card", &release, "--format", "html", "--out", path(&html)]);
        let html = std::fs::read_to_string(html).unwrap();
        assert!(html.starts_with("<!doctype html>") && html.contains("Ward deterioration risk (24 h)"));
        assert!(!html.contains("<script"), "no script in the card");
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    vigil_domain::Digest::of(bytes).to_hex()
}
