//! Golden tests: values from scikit-learn, SciPy, statsmodels and dcurves, made by
//! `testdata/generate.py` with the versions pinned in `testdata/requirements.txt`.

#![allow(clippy::unwrap_used)]

use serde_json::Value;
use vigil_stats::calibration::BinStrategy;
use vigil_stats::drift::{DriftOptions, categorical_drift, numeric_drift, wasserstein_sorted};
use vigil_stats::threshold::{SortedByClass, default_dca_grid};
use vigil_stats::*;

fn load(file: &str) -> Vec<Value> {
    let path = format!("{}/testdata/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).expect("golden file is readable");
    let doc: Value = serde_json::from_str(&text).expect("golden file is JSON");
    doc["cases"].as_array().expect("cases").clone()
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_f64().expect("number"))
        .collect()
}

fn labels(v: &Value) -> Vec<bool> {
    floats(v).into_iter().map(|x| x == 1.0).collect()
}

/// Compares an estimate with an expected value (`null` = not estimable).
fn check(case: &str, key: &str, got: &Estimate<f64>, want: &Value, tol: f64) {
    match (got, want.as_f64()) {
        (Ok(g), Some(w)) => assert!(
            (g - w).abs() <= tol * w.abs().max(1.0),
            "{case}: {key}: got {g:.17}, want {w:.17} (tol {tol})"
        ),
        (Err(_), None) => {}
        (Ok(g), None) => panic!("{case}: {key}: got {g}, want not estimable"),
        (Err(e), Some(w)) => panic!("{case}: {key}: not estimable ({e}), want {w}"),
    }
}

fn check_vec(case: &str, key: &str, got: &[f64], want: &Value, tol: f64) {
    let want = floats(want);
    assert_eq!(got.len(), want.len(), "{case}: {key}: length");
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert!(
            (g - w).abs() <= tol * w.abs().max(1.0),
            "{case}: {key}[{i}]: got {g:.17}, want {w:.17}"
        );
    }
}

#[test]
fn discrimination_matches_scikit_learn_and_delong() {
    for c in load("discrimination.json") {
        let name = c["name"].as_str().expect("name");
        let tol = c["tolerance"].as_f64().expect("tol");
        let e = &c["expected"];
        match c["function"].as_str() {
            Some("discrimination") => {
                let s = floats(&c["input"]["scores"]);
                let y = labels(&c["input"]["labels"]);
                check(name, "auroc", &auroc(&s, &y), &e["auroc"], tol);
                let d = delong(&s, &y);
                check(
                    name,
                    "delong_variance",
                    &d.clone().map(|d| d.variance),
                    &e["delong_variance"],
                    tol,
                );
                check(
                    name,
                    "ci_low",
                    &d.clone().map(|d| d.ci_low),
                    &e["ci_low"],
                    tol,
                );
                check(name, "ci_high", &d.map(|d| d.ci_high), &e["ci_high"], tol);
                check(
                    name,
                    "average_precision",
                    &average_precision(&s, &y),
                    &e["average_precision"],
                    tol,
                );
                // The weighted single-pass used by the bootstrap agrees with the direct form.
                let m = RankedSample::new(&s, &y).metrics();
                check(name, "ranked auroc", &m.auroc, &e["auroc"], tol);
                check(
                    name,
                    "ranked ap",
                    &m.average_precision,
                    &e["average_precision"],
                    tol,
                );
            }
            Some("delong_paired") => {
                let a = floats(&c["input"]["scores_a"]);
                let b = floats(&c["input"]["scores_b"]);
                let y = labels(&c["input"]["labels"]);
                let p = delong_paired(&a, &b, &y).expect("estimable");
                for (k, v) in [
                    ("difference", p.difference),
                    ("variance", p.variance),
                    ("z", p.z),
                    ("p_value", p.p_value),
                    ("ci_low", p.ci_low),
                    ("ci_high", p.ci_high),
                ] {
                    check(name, k, &Ok(v), &e[k], tol);
                }
            }
            other => panic!("unknown function {other:?}"),
        }
    }
}

#[test]
fn calibration_matches_statsmodels_scikit_learn_and_pandas_qcut() {
    for c in load("calibration.json") {
        let name = c["name"].as_str().expect("name");
        let fitted = c["tolerance"].as_f64().expect("tol");
        let closed = c["tolerance_closed"].as_f64().expect("tol");
        let s = floats(&c["input"]["scores"]);
        let y = labels(&c["input"]["labels"]);
        let e = &c["expected"];
        check(name, "brier", &brier(&s, &y), &e["brier"], closed);
        check(
            name,
            "intercept",
            &calibration_intercept(&s, &y),
            &e["intercept"],
            fitted,
        );
        check(
            name,
            "slope",
            &calibration_slope(&s, &y),
            &e["slope"],
            fitted,
        );
        check(
            name,
            "ece",
            &expected_calibration_error(&s, &y),
            &e["ece"],
            closed,
        );
        for (strategy, label) in [
            (BinStrategy::Uniform, "uniform"),
            (BinStrategy::Quantile, "quantile"),
        ] {
            for bins in [5usize, 10] {
                let key = format!("curve_{label}_{bins}");
                let curve = reliability_curve(&s, &y, bins, strategy).expect("curve");
                let want = &e[&key];
                check_vec(
                    name,
                    &key,
                    &curve.iter().map(|p| p.observed_rate).collect::<Vec<_>>(),
                    &want["observed_rate"],
                    closed,
                );
                check_vec(
                    name,
                    &key,
                    &curve.iter().map(|p| p.mean_predicted).collect::<Vec<_>>(),
                    &want["mean_predicted"],
                    closed,
                );
                check_vec(
                    name,
                    &key,
                    &curve.iter().map(|p| p.n as f64).collect::<Vec<_>>(),
                    &want["n"],
                    0.0,
                );
            }
        }
        let hl = hosmer_lemeshow(&s, &y, 10);
        let want = &e["hosmer_lemeshow"];
        if want.is_null() {
            assert!(hl.is_err(), "{name}: HL should not be estimable: {hl:?}");
        } else {
            let hl = hl.expect("HL estimable");
            check(
                name,
                "hl statistic",
                &Ok(hl.statistic),
                &want["statistic"],
                closed,
            );
            check(name, "hl p", &Ok(hl.p_value), &want["p_value"], closed);
            assert_eq!(Some(hl.df), want["df"].as_u64(), "{name}: HL df");
        }
    }
}

#[test]
fn thresholds_and_decision_curve_match_dcurves() {
    for c in load("thresholds.json") {
        let name = c["name"].as_str().expect("name");
        let tol = c["tolerance"].as_f64().expect("tol");
        let s = floats(&c["input"]["scores"]);
        let y = labels(&c["input"]["labels"]);
        let e = &c["expected"];
        let sorted = SortedByClass::new(&s, &y);
        for row in e["rows"].as_array().expect("rows") {
            let t = row["threshold"].as_f64().expect("t");
            let m = threshold_metrics(&sorted, t, &Err(NotEstimable::new("no timestamps")));
            assert_eq!(
                (Some(m.tp), Some(m.fp), Some(m.tn), Some(m.fn_)),
                (
                    row["tp"].as_u64(),
                    row["fp"].as_u64(),
                    row["tn"].as_u64(),
                    row["fn"].as_u64()
                ),
                "{name} @ {t}"
            );
            for (k, v) in [
                ("sensitivity", &m.sensitivity),
                ("specificity", &m.specificity),
                ("ppv", &m.ppv),
                ("npv", &m.npv),
                ("f1", &m.f1),
                ("alert_rate", &m.alert_rate),
                ("nne", &m.nne),
            ] {
                check(name, k, v, &row[k], tol);
            }
        }
        let grid = default_dca_grid();
        check_vec(name, "dca grid", &grid, &e["dca_threshold"], 0.0);
        let dca = decision_curve(&sorted, &grid, 0.0).expect("dca");
        check_vec(
            name,
            "net_benefit",
            &dca.iter().map(|d| d.net_benefit).collect::<Vec<_>>(),
            &e["net_benefit"],
            tol,
        );
        check_vec(
            name,
            "treat_all",
            &dca.iter()
                .map(|d| d.net_benefit_treat_all)
                .collect::<Vec<_>>(),
            &e["net_benefit_treat_all"],
            tol,
        );
        assert!(
            floats(&e["net_benefit_treat_none"])
                .iter()
                .all(|&v| v == 0.0)
        );
    }
}

#[test]
fn drift_matches_scipy_and_evidently_formulas() {
    let opts = DriftOptions::default();
    for c in load("drift.json") {
        let name = c["name"].as_str().expect("name");
        let tol = c["tolerance"].as_f64().expect("tol");
        let e = &c["expected"];
        match c["function"].as_str() {
            Some("numeric_drift") => {
                let r = floats(&c["input"]["reference"]);
                let cur = floats(&c["input"]["current"]);
                let d = numeric_drift(&r, &cur, &opts);
                for (k, v) in [
                    ("psi", &d.psi),
                    ("js_distance", &d.js_distance),
                    ("ks_statistic", &d.ks_statistic),
                    ("ks_pvalue", &d.ks_pvalue),
                    ("wasserstein", &d.wasserstein),
                    ("wasserstein_normed", &d.wasserstein_normed),
                ] {
                    check(name, k, v, &e[k], tol);
                }
            }
            Some("ks_generated") => {
                let n1 = c["input"]["n1"].as_u64().expect("n1") as usize;
                let n2 = c["input"]["n2"].as_u64().expect("n2") as usize;
                let scale = c["input"]["scale"].as_f64().expect("scale");
                let a: Vec<f64> = (0..n1).map(|i| (i as f64 + 0.5) / n1 as f64).collect();
                let b: Vec<f64> = (0..n2)
                    .map(|i| (i as f64 + 0.5) / n2 as f64 * scale)
                    .collect();
                let ks = ks_2samp_sorted(&a, &b);
                check(
                    name,
                    "ks_statistic",
                    &Ok(ks.statistic),
                    &e["ks_statistic"],
                    tol,
                );
                check(name, "ks_pvalue", &Ok(ks.p_value), &e["ks_pvalue"], tol);
                check(
                    name,
                    "wasserstein",
                    &Ok(wasserstein_sorted(&a, &b)),
                    &e["wasserstein"],
                    tol,
                );
            }
            Some("categorical_drift") => {
                let strings = |v: &Value| -> Vec<String> {
                    v.as_array()
                        .expect("array")
                        .iter()
                        .map(|s| s.as_str().expect("string").to_string())
                        .collect()
                };
                let d = categorical_drift(
                    &strings(&c["input"]["reference"]),
                    &strings(&c["input"]["current"]),
                    &opts,
                );
                for (k, v) in [
                    ("psi", &d.psi),
                    ("js_distance", &d.js_distance),
                    ("chi2", &d.chi2),
                    ("chi2_pvalue", &d.chi2_pvalue),
                ] {
                    check(name, k, v, &e[k], tol);
                }
            }
            other => panic!("unknown function {other:?}"),
        }
    }
}
