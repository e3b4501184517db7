//! The equivalence check against the training framework's own probabilities (scikit-learn's
//! `predict_proba`, in double precision), on the fixtures `generate.py` writes.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use vigil_domain::FeatureContract;
use vigil_inference::{Error, Model, check_reference_predictions};

/// The data row `generate.py` moves by 1e-3 in the `*_perturbed` files.
const PERTURBED_ROW: usize = 37;

fn testdata(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(name)
}

fn contract() -> FeatureContract {
    let text = std::fs::read_to_string(testdata("reference.contract.toml")).expect("contract");
    FeatureContract::from_toml(&text).expect("valid contract")
}

/// The contract for `name`: ZipMap exports name their probability output differently.
fn contract_for(name: &str) -> FeatureContract {
    let mut c = contract();
    if !name.ends_with("_nozipmap") {
        c.model.output = "output_probability".into();
    }
    c
}

fn model(name: &str) -> Model {
    Model::from_bytes(&std::fs::read(testdata(&format!("{name}.onnx"))).expect("model"))
        .expect("loads")
}

fn csv(name: &str) -> String {
    std::fs::read_to_string(testdata(name)).expect("csv")
}

#[test]
fn exported_models_reproduce_the_framework_probabilities() {
    for name in ["logreg_nozipmap", "gbm_nozipmap", "logreg", "gbm"] {
        let tag = name.trim_end_matches("_nozipmap");
        let text = csv(&format!("{tag}.reference.csv"));
        let r = check_reference_predictions(&model(name), text.as_bytes(), &contract_for(name))
            .expect("report");
        println!(
            "{name}: {} rows, max |diff| vs framework = {:e} (row {})",
            r.rows, r.max_abs_diff, r.worst_row
        );
        assert_eq!(r.rows, 100);
        assert_eq!(r.tolerance, 1e-5);
        assert!(r.passed, "{name}: {r:?}");
        assert!(r.max_abs_diff < 1e-5);
    }
}

#[test]
fn one_probability_off_by_1e_3_fails_naming_its_row() {
    for (name, tag) in [("logreg_nozipmap", "logreg"), ("gbm", "gbm")] {
        let text = csv(&format!("{tag}_perturbed.reference.csv"));
        let r = check_reference_predictions(&model(name), text.as_bytes(), &contract_for(name))
            .expect("report");
        assert!(!r.passed, "{name}");
        assert_eq!(r.worst_row, PERTURBED_ROW);
        assert!((r.max_abs_diff - 1e-3).abs() < 1e-5, "{}", r.max_abs_diff);
        assert!((r.worst_actual - r.worst_expected).abs() > 9e-4);
    }
}

fn error_of(text: &str) -> String {
    match check_reference_predictions(&model("logreg_nozipmap"), text.as_bytes(), &contract()) {
        Err(e @ Error::InvalidReference { .. }) => e.to_string(),
        other => panic!("expected InvalidReference, got {other:?}"),
    }
}

/// Replaces the `cell`-th cell (0-based) of data row `row` (1-based).
fn edit(text: &str, row: usize, cell: usize, value: &str) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let mut cells: Vec<&str> = lines[row].split(',').collect();
    cells[cell] = value;
    lines[row] = cells.join(",");
    lines.join("\n")
}

#[test]
fn an_output_the_model_lacks_is_a_contract_mismatch() {
    let text = csv("logreg.reference.csv");
    let e = check_reference_predictions(&model("logreg"), text.as_bytes(), &contract())
        .expect_err("mismatch");
    assert!(matches!(e, Error::ContractMismatch(_)), "{e}");
}

#[test]
fn a_missing_input_column_is_named() {
    let text = csv("logreg.reference.csv").replacen("f7,", "g7,", 1);
    let e = error_of(&text);
    assert!(e.contains("no column `f7`"), "{e}");
}

#[test]
fn a_missing_probability_column_is_named() {
    let text = csv("logreg.reference.csv").replacen("probability", "proba", 1);
    let e = error_of(&text);
    assert!(e.contains("no column `probability`"), "{e}");
}

#[test]
fn a_non_numeric_cell_names_row_and_column() {
    let e = error_of(&edit(&csv("logreg.reference.csv"), 12, 3, "high"));
    assert!(e.contains("row 12, column `f3`"), "{e}");
    assert!(e.contains("is not a number"), "{e}");
    assert!(!e.contains("high"), "the cell's value is never quoted: {e}");
    let e = error_of(&edit(&csv("logreg.reference.csv"), 5, 20, "1.5"));
    assert!(e.contains("row 5, column `probability`"), "{e}");
}

#[test]
fn a_ragged_row_is_named() {
    let text = csv("logreg.reference.csv");
    let mut lines: Vec<&str> = text.lines().collect();
    let short = lines[9].rsplit_once(',').expect("cells").0.to_string();
    lines[9] = &short;
    let e = error_of(&lines.join("\n"));
    assert!(e.contains("row 9"), "{e}");
    assert!(e.contains("20 cells, the header has 21"), "{e}");
}

#[test]
fn empty_cells_are_missing_values_and_a_nan_probability_fails() {
    // A logistic regression gives NaN for a missing input: an infinite difference, not a pass.
    let r = check_reference_predictions(
        &model("logreg_nozipmap"),
        edit(&csv("logreg.reference.csv"), 3, 0, "").as_bytes(),
        &contract(),
    )
    .expect("report");
    assert!(!r.passed);
    assert_eq!(r.worst_row, 3);
    assert!(r.worst_actual.is_nan());
}

#[test]
fn a_header_only_file_is_an_error() {
    let text = csv("logreg.reference.csv");
    let header = text.lines().next().expect("header");
    let e = error_of(header);
    assert!(e.contains("no data rows"), "{e}");
}
