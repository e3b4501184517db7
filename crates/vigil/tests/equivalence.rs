//! The equivalence gate at registration through the real binary: a release whose artifact
//! reproduces the reference predictions carries the check in its manifest and meets the
//! `equivalence` gate; one that does not, or a malformed reference file, is refused with
//! nothing written — on SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::{Home, both_backends, example, path, write};
use vigil_domain::Digest;

/// The release arguments with the reference file replaced by `reference` (or dropped).
fn args_with(h: &Home, train: &str, reference: Option<&str>) -> Vec<String> {
    let mut a = h.register_release_args(train, "equivalence");
    let i = a
        .iter()
        .position(|x| x == "--reference-predictions")
        .unwrap();
    a.drain(i..i + 2);
    if let Some(r) = reference {
        a.extend(["--reference-predictions".into(), r.into()]);
    }
    a
}

fn strs(a: &[String]) -> Vec<&str> {
    a.iter().map(String::as_str).collect()
}

fn reference_text() -> String {
    std::fs::read_to_string(example("deterioration/reference-predictions.csv")).unwrap()
}

/// The reference file with data row `row` (1-based) changed by `f`.
fn edit_row(row: usize, f: impl Fn(&mut Vec<String>)) -> String {
    let mut lines: Vec<String> = reference_text().lines().map(str::to_owned).collect();
    let mut cells: Vec<String> = lines[row].split(',').map(str::to_owned).collect();
    f(&mut cells);
    lines[row] = cells.join(",");
    lines.join("\n") + "\n"
}

fn gate_status(h: &Home, release: &str) -> (String, String) {
    let g = h.json(&["gates", release, "--to", "validated"]);
    let gate = g["gates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["gate"] == "equivalence")
        .expect("the tier-3 policy has an equivalence gate")
        .clone();
    (
        gate["status"].as_str().unwrap().to_owned(),
        gate["detail"].as_str().unwrap().to_owned(),
    )
}

both_backends! {
    async fn a_reproduced_reference_is_pinned_in_the_release_and_meets_the_gate(db) {
        let h = Home::init(db);
        let train = h.register_example();
        let reference = example("deterioration/reference-predictions.csv");
        let r = h.json(&strs(&args_with(&h, &train, Some(path(&reference)))));
        let q = &r["manifest"]["equivalence"];
        assert_eq!(q["rows"], 500, "{r}");
        assert_eq!(q["reference"]["digest"], Digest::of(&std::fs::read(&reference).unwrap()).to_hex());
        let max = q["max_abs_diff"].as_f64().unwrap();
        assert!(max <= 1e-5 && q["tolerance"] == 1e-5, "{q}");
        let id = r["id"].as_str().unwrap().to_owned();

        let shown = h.ok(&["release", "show", &id]);
        assert!(shown.contains("equivalence:     passed: 500 reference rows"), "{shown}");
        assert!(shown.contains("artifacts verified"), "{shown}");
        let (status, detail) = gate_status(&h, &id);
        assert_eq!(status, "met", "{detail}");
        assert!(detail.contains("500 reference rows reproduced"), "{detail}");

        // The audit event records the check; the same bytes register to the same release.
        let ev = h.json(&["audit", "log", "--action", "release.registered"]);
        let payload: serde_json::Value =
            serde_json::from_str(ev[0]["payload"].as_str().unwrap()).unwrap();
        assert_eq!(payload["equivalence"]["rows"], 500);
        let again = h.json(&strs(&args_with(&h, &train, Some(path(&reference)))));
        assert_eq!(again["created"], false);
        assert_eq!(again["id"], r["id"]);

        // Without reference predictions: another release, and the gate is unmet.
        let bare = h.json(&strs(&args_with(&h, &train, None)));
        assert!(bare["manifest"].get("equivalence").is_none(), "{bare}");
        assert_ne!(bare["id"], r["id"]);
        let (status, detail) = gate_status(&h, bare["id"].as_str().unwrap());
        assert_eq!(status, "unmet");
        assert!(detail.contains("without reference predictions"), "{detail}");
    }

    async fn a_disagreeing_reference_is_refused_naming_the_worst_row(db) {
        let h = Home::init(db);
        let train = h.register_example();
        let before = h.audit_count();
        let original: f64 = reference_text().lines().nth(137).unwrap()
            .rsplit(',').next().unwrap().parse().unwrap();
        let shifted = original + 1e-3;
        let text = edit_row(137, |c| {
            let last = c.len() - 1;
            c[last] = shifted.to_string();
        });
        let file = write(h.dir(), "perturbed.csv", &text);
        let (err, code) = h.fails(&strs(&args_with(&h, &train, Some(path(&file)))));
        assert_eq!(code, 1, "{err}");
        assert!(err.contains("do not reproduce") || err.contains("does not reproduce"), "{err}");
        assert!(err.contains("row 137 "), "{err}");
        assert!(err.contains(&shifted.to_string()), "the reference value is named: {err}");
        assert!(err.contains("500 rows checked"), "{err}");
        let mut a = args_with(&h, &train, Some(path(&file)));
        a.push("--json".into());
        let j = h.run(&strs(&a));
        let e: serde_json::Value = serde_json::from_slice(&j.stderr).unwrap();
        assert_eq!(e["error"]["code"], "equivalence_failed");
        // Nothing written: no release, no event.
        assert_eq!(h.json(&["release", "list"]).as_array().unwrap().len(), 0);
        assert_eq!(h.audit_count(), before);
    }

    async fn a_malformed_reference_names_the_row_and_column(db) {
        let h = Home::init(db);
        let train = h.register_example();
        let before = h.audit_count();
        // No `spo2` column.
        let text: String = reference_text()
            .lines()
            .map(|l| {
                let mut c: Vec<&str> = l.split(',').collect();
                c.remove(5);
                c.join(",") + "\n"
            })
            .collect();
        let file = write(h.dir(), "no-spo2.csv", &text);
        let (err, code) = h.fails(&strs(&args_with(&h, &train, Some(path(&file)))));
        assert_eq!(code, 1);
        assert!(err.contains("no column `spo2`"), "{err}");

        // A word where `sbp` (column 7) should be a number, in data row 3.
        let file = write(h.dir(), "word.csv", &edit_row(3, |c| c[6] = "high".into()));
        let (err, _) = h.fails(&strs(&args_with(&h, &train, Some(path(&file)))));
        assert!(err.contains("row 3, column `sbp`"), "{err}");
        assert!(err.contains("is not a number"), "{err}");
        let mut a = args_with(&h, &train, Some(path(&file)));
        a.push("--json".into());
        let j = h.run(&strs(&a));
        let e: serde_json::Value = serde_json::from_slice(&j.stderr).unwrap();
        assert_eq!(e["error"]["code"], "invalid_reference_predictions");

        // A probability outside [0, 1] in row 9.
        let file = write(h.dir(), "p.csv", &edit_row(9, |c| {
            let last = c.len() - 1;
            c[last] = "1.7".into();
        }));
        let (err, _) = h.fails(&strs(&args_with(&h, &train, Some(path(&file)))));
        assert!(err.contains("row 9, column `probability`"), "{err}");

        let (err, _) = h.fails(&strs(&args_with(&h, &train, Some("/nonexistent/ref.csv"))));
        assert!(err.contains("reading the reference predictions /nonexistent/ref.csv"), "{err}");
        assert_eq!(h.json(&["release", "list"]).as_array().unwrap().len(), 0);
        assert_eq!(h.audit_count(), before);
    }
}
