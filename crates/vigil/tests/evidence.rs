//! Evidence through the real binary: data checks recorded with their snapshots, and gates
//! that read recorded evaluations and checks, on SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::{Home, both_backends, example, path, write};

fn statuses(h: &Home, release: &str, to: &str) -> Vec<(String, String)> {
    let g = h.json(&["gates", release, "--to", to]);
    g["gates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["gate"].as_str().unwrap().to_owned(),
                g["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn check_args<'a>(snapshot: &'a str, contract: &'a str) -> Vec<&'a str> {
    vec![
        "dataset",
        "check",
        snapshot,
        "--contract",
        contract,
        "--label-col",
        "outcome",
        "--prediction-time-col",
        "prediction_time",
        "--site-col",
        "site",
        "--patient-col",
        "patient_id",
    ]
}

both_backends! {
    async fn gates_read_recorded_evaluations_and_data_checks(db) {
        let h = Home::init(db);
        let train = h.register_example();
        let validation = h.json(&["dataset", "register", path(&example("deterioration/validation.csv")),
            "--name", "validation", "--manifest", path(&example("deterioration/validation-manifest.toml"))])["id"]
            .as_str().unwrap().to_owned();
        let args = h.register_release_args(&train, "first");
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let release = h.json(&args)["id"].as_str().unwrap().to_owned();

        let before = statuses(&h, &release, "validated");
        assert!(!before.is_empty());
        // Registered with its reference predictions: only the equivalence gate is met yet.
        assert!(before.iter().all(|(g, s)| s == if g == "equivalence" { "met" } else { "unmet" }), "{before:?}");
        assert!(before.iter().any(|(g, _)| g == "equivalence"), "{before:?}");

        // The bundled example passes every blocking check, and has no patient in common with
        // the validation snapshot.
        let contract = path(&example("deterioration/contract.toml")).to_owned();
        let out = h.ok(&check_args(&train, &contract));
        assert!(out.contains("PASSED"), "{out}");
        let mut a = check_args(&validation, &contract);
        a.extend(["--against", train.as_str()]);
        let checked = h.json(&a);
        assert_eq!(checked["report"]["passed"], true);
        let overlap = checked["report"]["checks"].as_array().unwrap().iter()
            .find(|c| c["name"] == "patient_overlap").unwrap().clone();
        assert_eq!(overlap["status"], "pass");
        assert!(overlap["summary"].as_str().unwrap().contains(&format!("dataset:{train}")), "{overlap}");
        // Each run is a result at a time (the "no future dates" check depends on it): a
        // second run is recorded as a run of its own.
        let events = h.audit_count();
        assert_eq!(h.json(&a)["created"], true);
        assert_eq!(h.audit_count(), events + 1);

        h.ok(&["evaluate", "release", &release, "--data", &validation, "--label-col", "outcome",
            "--group-col", "sex", "--group-col", "site", "--bootstrap", "50"]);
        let after = statuses(&h, &release, "validated");
        assert!(after.iter().all(|(_, s)| s == "met"), "{after:?}");
        h.ok(&["promote", &release, "--to", "validated", "--reason", "evidence reviewed"]);
        assert!(h.ok(&["audit", "verify"]).contains("intact"));
    }

    async fn a_failed_blocking_check_exits_4_is_recorded_and_blocks_the_gate(db) {
        let h = Home::init(db);
        let train = h.register_example();
        // A cohort whose thermometers at one site report °F under a °C contract, and which
        // repeats the training patients.
        let text = std::fs::read_to_string(example("deterioration/train.csv")).unwrap();
        let mut lines = text.lines();
        let header = lines.next().unwrap();
        let cols: Vec<&str> = header.split(',').collect();
        let t = cols.iter().position(|c| *c == "temperature").unwrap();
        let site = cols.iter().position(|c| *c == "site").unwrap();
        let mut out = vec![header.to_owned()];
        for l in lines.take(3000) {
            let mut f: Vec<String> = l.split(',').map(str::to_owned).collect();
            if f[site] == "north" {
                let c: f64 = f[t].parse().unwrap();
                f[t] = format!("{:.1}", c * 9.0 / 5.0 + 32.0);
            }
            out.push(f.join(","));
        }
        let file = write(h.dir(), "fahrenheit.csv", &(out.join("\n") + "\n"));
        let bad = h.json(&["dataset", "register", path(&file), "--name", "fahrenheit",
            "--manifest", path(&example("deterioration/dataset-manifest.toml"))])["id"].as_str().unwrap().to_owned();
        let contract = path(&example("deterioration/contract.toml")).to_owned();
        let mut a = check_args(&bad, &contract);
        a.extend(["--against", train.as_str()]);
        let (report, code) = h.fails(&a);
        assert_eq!(code, 4, "{report}");
        assert!(report.contains("FAILED"), "{report}");
        assert!(report.contains("[degF]"), "the range check should name the likely unit:\n{report}");
        assert!(report.contains("patient_overlap"), "{report}");
        let events = h.json(&["audit", "log", "--action", "dataset.checked"]);
        let last = events.as_array().unwrap().last().unwrap();
        let payload: serde_json::Value = serde_json::from_str(last["payload"].as_str().unwrap()).unwrap();
        assert_eq!(payload["passed"], false);
        assert!(payload["blocking_failures"].to_string().contains("range"), "{payload}");

        // A release evaluated on that snapshot cannot pass its data-checks gate.
        let args = h.register_release_args(&train, "on fahrenheit");
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let release = h.json(&args)["id"].as_str().unwrap().to_owned();
        h.ok(&["evaluate", "release", &release, "--data", &bad, "--label-col", "outcome", "--bootstrap", "0"]);
        let gates = statuses(&h, &release, "validated");
        let dc = gates.iter().find(|(g, _)| g == "data-checks").unwrap();
        assert_eq!(dc.1, "unmet", "{gates:?}");
        let (err, _) = h.fails(&["promote", &release, "--to", "validated", "--reason", "try"]);
        assert!(err.contains("data-checks"), "{err}");
    }

    async fn review_samples_are_drawn_by_the_release_scores(db) {
        let h = Home::init(db);
        let train = h.register_example();
        let validation = h.json(&["dataset", "register", path(&example("deterioration/validation.csv")),
            "--name", "validation"])["id"].as_str().unwrap().to_owned();
        let args = h.register_release_args(&train, "first");
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let release = h.json(&args)["id"].as_str().unwrap().to_owned();
        let sample = h.json(&["review", "sample", &release, "--data", &validation, "--n", "60",
            "--label", "outcome", "--subgroup", "sex"]);
        let cases = sample["cases"].as_array().unwrap();
        assert_eq!(cases.len(), 60);
        let kinds: std::collections::BTreeSet<&str> = cases.iter().map(|c| c["kind"].as_str().unwrap()).collect();
        for k in ["highest_score", "near_threshold", "false_negative", "false_positive"] {
            assert!(kinds.contains(k), "no {k} case in {kinds:?}");
        }
        for c in cases {
            let s = c["score"].as_f64().unwrap();
            match c["kind"].as_str().unwrap() {
                "false_negative" => assert!(c["label"] == "1" && s < 0.15, "{c}"),
                "false_positive" => assert!(c["label"] == "0" && s >= 0.15, "{c}"),
                "near_threshold" => assert!((s - 0.15).abs() <= 0.05, "{c}"),
                _ => {}
            }
        }
        assert!(sample["sample"]["method"].as_str().unwrap().contains("threshold 0.15"));
    }
}
