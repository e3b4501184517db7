//! Each data check against a dataset built to fail it (and only it), and a clean cohort that
//! passes every check, as CSV and as Parquet.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use vigil_data::{Check, CheckReport, Severity, Status, check_dataset};
use vigil_domain::Timestamp;

fn run(rows: &[Row]) -> CheckReport {
    let dir = tempfile::tempdir().unwrap();
    let p = write_csv(dir.path(), "cohort.csv", rows);
    check_dataset(&p, &contract(), &options()).unwrap()
}

fn failing<'r>(r: &'r CheckReport, name: &str) -> Vec<&'r Check> {
    r.find(name).filter(|c| c.status == Status::Fail).collect()
}

/// Every check other than `allowed` passes or does not apply.
fn only_fails(r: &CheckReport, allowed: &[&str]) {
    for c in &r.checks {
        if c.status == Status::Fail {
            assert!(
                allowed.contains(&c.name.as_str()),
                "unexpected failure of {} ({:?}): {}\n{}",
                c.name,
                c.column,
                c.summary,
                r.to_text()
            );
        }
    }
}

#[test]
fn clean_cohort_passes_every_check() {
    let r = run(&clean_rows(1));
    assert!(r.passed, "{}", r.to_text());
    only_fails(&r, &[]);
    assert_eq!(r.rows, 1200);
    for name in [
        "schema",
        "missingness",
        "range",
        "outliers",
        "duplicates",
        "label_leakage",
        "temporal_consistency",
        "label",
        "site_variation",
    ] {
        assert!(
            r.find(name).any(|c| c.status == Status::Pass),
            "{name} did not run: {}",
            r.to_text()
        );
    }
    // Without a second snapshot there is nothing to overlap with.
    assert!(
        r.find("patient_overlap")
            .all(|c| c.status == Status::NotApplicable)
    );
    let label = r.find("label").next().unwrap();
    let prev = label.details["prevalence"].as_f64().unwrap();
    assert!((0.05..0.5).contains(&prev), "prevalence {prev}");
    assert_eq!(label.details["by_site"].as_array().unwrap().len(), 4);
}

#[test]
fn clean_cohort_passes_as_parquet_too() {
    let dir = tempfile::tempdir().unwrap();
    let p = write_parquet(dir.path(), "cohort.parquet", &clean_rows(2));
    let r = check_dataset(&p, &contract(), &options()).unwrap();
    assert!(r.passed, "{}", r.to_text());
    only_fails(&r, &[]);
    assert_eq!(r.rows, 1200);
}

#[test]
fn planted_leakage_feature_blocks() {
    let mut rows = clean_rows(3);
    for (i, r) in rows.iter_mut().enumerate() {
        // Heart rate recorded from the outcome itself: almost separates the classes.
        let pos = r.label == "1";
        r.heart_rate = if pos { 140.0 } else { 80.0 } + (i % 7) as f64;
    }
    let r = run(&rows);
    assert!(!r.passed);
    let leak = failing(&r, "label_leakage");
    assert_eq!(leak.len(), 1, "{}", r.to_text());
    assert!(
        leak[0].summary.contains("heart_rate"),
        "{}",
        leak[0].summary
    );
    assert!(
        !leak[0].summary.contains("temperature"),
        "{}",
        leak[0].summary
    );
    only_fails(&r, &["label_leakage", "site_variation", "outliers"]);
}

#[test]
fn feature_recorded_after_prediction_blocks() {
    let mut rows = clean_rows(4);
    for r in rows.iter_mut().skip(10).step_by(100) {
        r.lactate_time = Some(r.prediction + 2 * HOUR);
    }
    let r = run(&rows);
    let leak = failing(&r, "label_leakage");
    assert_eq!(leak.len(), 1, "{}", r.to_text());
    let after = &leak[0].details["recorded_after_prediction"][0];
    assert_eq!(after["feature"], "lactate");
    assert_eq!(after["rows"], 12);
    assert_eq!(after["example_rows"][0], 11);
    only_fails(&r, &["label_leakage"]);
}

#[test]
fn fahrenheit_under_a_celsius_contract_is_named() {
    let mut rows = clean_rows(5);
    for r in rows.iter_mut().filter(|r| r.site == "C") {
        r.temperature = ((r.temperature * 9.0 / 5.0 + 32.0) * 10.0).round() / 10.0;
    }
    let r = run(&rows);
    assert!(!r.passed);
    let range = failing(&r, "range");
    assert_eq!(range.len(), 1, "{}", r.to_text());
    let c = range[0];
    assert_eq!(c.column.as_deref(), Some("temperature"));
    assert_eq!(c.severity, Severity::Blocking);
    assert_eq!(c.details["above"], 300);
    assert_eq!(c.details["likely_unit"], "[degF]", "{}", c.summary);
    assert!(c.summary.contains("[degF]"), "{}", c.summary);
    assert_eq!(c.details["example_rows"][0], 3);
}

#[test]
fn patients_shared_with_the_training_snapshot_block() {
    let dir = tempfile::tempdir().unwrap();
    let rows = clean_rows(6);
    let train = write_csv(dir.path(), "train.csv", &rows[..900]);
    let mut test_rows = rows[900..].to_vec();
    for (k, r) in test_rows.iter_mut().take(7).enumerate() {
        r.patient = rows[k * 100].patient.clone();
    }
    let test = write_csv(dir.path(), "test.csv", &test_rows);
    let mut o = options();
    o.against = Some(train.clone());
    let r = check_dataset(&test, &contract(), &o).unwrap();
    let c = r.find("patient_overlap").next().unwrap();
    assert_eq!(c.status, Status::Fail, "{}", r.to_text());
    assert!(!r.passed);
    assert_eq!(c.details["shared_patients"], 7);
    assert_eq!(c.details["examples"][0]["row"], 1);
    assert_eq!(c.details["examples"][0]["other_row"], 1);
    assert_eq!(c.details["examples"][1]["other_row"], 101);

    // The disjoint split passes.
    let clean_test = write_csv(dir.path(), "test2.csv", &rows[900..]);
    let r = check_dataset(&clean_test, &contract(), &o).unwrap();
    assert_eq!(
        r.find("patient_overlap").next().unwrap().status,
        Status::Pass
    );
}

#[test]
fn a_site_without_lactate_is_flagged_but_does_not_block() {
    let mut rows = clean_rows(7);
    for r in rows.iter_mut().filter(|r| r.site == "D") {
        r.lactate = None;
        r.lactate_time = None;
    }
    let r = run(&rows);
    assert!(r.passed, "{}", r.to_text());
    let miss = failing(&r, "missingness");
    assert_eq!(miss.len(), 1, "{}", r.to_text());
    assert_eq!(miss[0].column.as_deref(), Some("lactate"));
    assert_eq!(miss[0].severity, Severity::Warning);
    assert!(miss[0].summary.contains("site D"), "{}", miss[0].summary);
    let sv = failing(&r, "site_variation");
    assert_eq!(sv.len(), 1);
    let sites = sv[0].details["sites"].as_array().unwrap();
    assert_eq!(sites[0]["site"], "D", "ranked first");
    assert_eq!(sites[0]["stands_out"], true);
    assert!(sites[1..].iter().all(|s| s["stands_out"] == false));
    only_fails(&r, &["missingness", "site_variation"]);
}

#[test]
fn more_missing_than_the_contract_allows_blocks() {
    let mut rows = clean_rows(8);
    for r in rows.iter_mut().take(700) {
        r.lactate = None;
        r.lactate_time = None;
    }
    let r = run(&rows);
    let miss = failing(&r, "missingness");
    assert_eq!(miss.len(), 1);
    assert_eq!(miss[0].severity, Severity::Blocking);
    assert!(!r.passed);
}

#[test]
fn duplicate_rows_and_repeated_patient_times_are_reported() {
    let mut rows = clean_rows(9);
    rows.push(rows[4].clone());
    rows.push(rows[10].clone());
    let mut same_time = rows[20].clone();
    same_time.heart_rate += 1.0;
    rows.push(same_time);
    let r = run(&rows);
    let d = failing(&r, "duplicates");
    assert_eq!(d.len(), 1, "{}", r.to_text());
    assert_eq!(d[0].details["duplicate_rows"], 2);
    assert_eq!(d[0].details["examples"][0]["row"], 1201);
    assert_eq!(d[0].details["examples"][0]["same_as_row"], 5);
    assert_eq!(d[0].details["repeated_patient_time_pairs"], 3);
    assert!(r.passed, "duplicates warn: {}", r.to_text());
    only_fails(&r, &["duplicates"]);
}

#[test]
fn future_dates_block() {
    let mut rows = clean_rows(10);
    rows[50].outcome = Timestamp::parse("2027-03-01T00:00:00Z")
        .unwrap()
        .as_micros();
    let r = run(&rows);
    let t = failing(&r, "temporal_consistency");
    assert_eq!(t.len(), 1, "{}", r.to_text());
    assert!(t[0].summary.contains("outcome_time"), "{}", t[0].summary);
    assert_eq!(t[0].details["future"][1]["example_rows"][0], 51);
    assert!(!r.passed);
    only_fails(&r, &["temporal_consistency"]);
}

#[test]
fn prediction_times_outside_the_window_and_outcomes_before_prediction_block() {
    let mut rows = clean_rows(11);
    for r in rows.iter_mut().take(3) {
        r.prediction -= 200 * 24 * HOUR;
        r.outcome -= 200 * 24 * HOUR;
        r.lactate_time = r.lactate_time.map(|t| t - 200 * 24 * HOUR);
    }
    rows[100].outcome = rows[100].prediction - HOUR;
    let r = run(&rows);
    let t = failing(&r, "temporal_consistency");
    assert_eq!(t.len(), 1, "{}", r.to_text());
    assert_eq!(t[0].details["before_window"]["rows"], 3);
    assert_eq!(
        t[0].details["outcome_before_prediction"]["example_rows"][0],
        101
    );
    assert!(!r.passed);
}

#[test]
fn invalid_labels_block() {
    let mut rows = clean_rows(12);
    rows[7].label = "2".into();
    rows[8].label = String::new();
    let r = run(&rows);
    let l = failing(&r, "label");
    assert_eq!(l.len(), 1, "{}", r.to_text());
    assert_eq!(l[0].details["invalid"]["rows"], 2);
    assert_eq!(l[0].details["invalid"]["example_rows"][0], 8);
    assert!(!r.passed);
}

#[test]
fn named_positive_label_is_accepted() {
    let mut rows = clean_rows(13);
    for r in &mut rows {
        r.label = if r.label == "1" {
            "deteriorated"
        } else {
            "stable"
        }
        .into();
    }
    let dir = tempfile::tempdir().unwrap();
    let p = write_csv(dir.path(), "c.csv", &rows);
    let mut o = options();
    o.positive_label = Some("deteriorated".into());
    let r = check_dataset(&p, &contract(), &o).unwrap();
    assert!(r.passed, "{}", r.to_text());
}

#[test]
fn schema_blocks_prohibited_and_unknown_columns_and_bad_values() {
    let dir = tempfile::tempdir().unwrap();
    let rows = clean_rows(14);
    let text = csv_text(&rows);
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    lines[0].push_str(",ethnicity,notes");
    for l in lines.iter_mut().skip(1) {
        l.push_str(",a,free text");
    }
    // Row 3 gets a heart rate that is not a number.
    let mut fields: Vec<String> = lines[3].split(',').map(str::to_owned).collect();
    fields[5] = "fast".into();
    lines[3] = fields.join(",");
    let p = dir.path().join("s.csv");
    std::fs::write(&p, lines.join("\n") + "\n").unwrap();
    let r = check_dataset(&p, &contract(), &options()).unwrap();
    let s = r.find("schema").next().unwrap();
    assert_eq!(s.status, Status::Fail);
    assert_eq!(s.details["prohibited_present"][0], "ethnicity");
    assert_eq!(s.details["unknown_columns"][0], "notes");
    assert_eq!(s.details["type_errors"][0]["column"], "heart_rate");
    assert_eq!(s.details["type_errors"][0]["example_rows"][0], 3);
    assert!(!r.passed);

    // A required feature that is absent.
    let no_age = text
        .lines()
        .map(|l| {
            let mut f: Vec<&str> = l.split(',').collect();
            f.remove(8);
            f.join(",")
        })
        .collect::<Vec<_>>()
        .join("\n");
    let p = dir.path().join("s2.csv");
    std::fs::write(&p, no_age).unwrap();
    let r = check_dataset(&p, &contract(), &options()).unwrap();
    let s = r.find("schema").next().unwrap();
    assert_eq!(s.status, Status::Fail);
    assert_eq!(s.details["missing_required"][0], "age");
}

#[test]
fn unknown_columns_pass_when_the_contract_allows_them() {
    let dir = tempfile::tempdir().unwrap();
    let text = csv_text(&clean_rows(15));
    let text: String = text
        .lines()
        .enumerate()
        .map(|(i, l)| format!("{l},{}\n", if i == 0 { "ward" } else { "W1" }))
        .collect();
    let p = dir.path().join("u.csv");
    std::fs::write(&p, text).unwrap();
    let allowing = CONTRACT.replacen("[model]", "allow_unknown_columns = true\n[model]", 1);
    let c = vigil_domain::FeatureContract::from_toml(&allowing).unwrap();
    let r = check_dataset(&p, &c, &options()).unwrap();
    assert!(r.passed, "{}", r.to_text());
    let r = check_dataset(&p, &contract(), &options()).unwrap();
    assert!(!r.passed);
}

#[test]
fn robust_outliers_are_reported_with_rows() {
    let mut rows = clean_rows(16);
    rows[30].heart_rate = 245.0; // plausible (inside the range) but far from the rest
    let r = run(&rows);
    let o = failing(&r, "outliers");
    assert_eq!(o.len(), 1, "{}", r.to_text());
    assert_eq!(o[0].column.as_deref(), Some("heart_rate"));
    assert_eq!(o[0].details["example_rows"][0], 31);
    assert_eq!(o[0].details["estimated_outliers"], 1);
    assert!(r.passed);
}

#[test]
fn reports_render_as_text_and_self_contained_html() {
    let mut rows = clean_rows(17);
    rows[3].label = "x".into();
    let r = run(&rows);
    let text = r.to_text();
    assert!(text.starts_with("Data checks for"));
    assert!(text.contains("FAILED"));
    let first_row = text.lines().nth(5).unwrap();
    assert!(
        first_row.starts_with("FAIL") && first_row.contains("label"),
        "{text}"
    );
    let html = r.to_html();
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("<style>"));
    assert!(!html.contains("http://") && !html.contains("https://") && !html.contains("<script"));
    assert!(html.contains("temporal_consistency"));
    let back: CheckReport = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
    assert_eq!(back, r);
}
