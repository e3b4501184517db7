//! Writes a sample evaluation report (and, given a second path, a sample drift report) from
//! synthetic data: `cargo run -p vigil-report --example sample_report -- eval.html [drift.html]`.

#[path = "../tests/synthetic/mod.rs"]
mod synthetic;

use std::process::ExitCode;

use vigil_report::{DriftContext, ReportContext, render_drift, render_evaluation};

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(eval_path) = args.next() else {
        eprintln!("usage: sample_report EVALUATION.html [DRIFT.html]");
        return ExitCode::from(2);
    };
    let report = synthetic::evaluation_report(false);
    let ctx = ReportContext {
        title: "Deterioration risk — release evaluation".into(),
        model: Some("deterioration-risk".into()),
        release: Some("sha256:4f1c9e…a07b (v1.3.0)".into()),
        dataset: Some("General wards, Jan–Jul 2023 (synthetic), 4,000 scorings".into()),
        generated_at: "2024-06-01T09:30:00Z".into(),
        score_column: "risk_score".into(),
        label_column: "deteriorated_24h".into(),
        outcome: Some("deteriorated within 24 hours".into()),
        thresholds: vec![0.2, 0.35],
        intended_use_summary: Some(
            "Flags adult general-ward inpatients at risk of deterioration within 24 hours for \
             review by the rapid-response nurse. Not for ICU, paediatric or maternity patients."
                .into(),
        ),
        notes: vec![
            "Synthetic data: this report demonstrates the layout, not a real model.".into(),
        ],
    };
    let html = render_evaluation(&report, &ctx);
    if let Err(e) = std::fs::write(&eval_path, html) {
        eprintln!("writing {eval_path}: {e}");
        return ExitCode::FAILURE;
    }
    if let Some(drift_path) = args.next() {
        let ctx = DriftContext {
            title: "Deterioration risk — input drift".into(),
            model: Some("deterioration-risk".into()),
            release: Some("sha256:4f1c9e…a07b (v1.3.0)".into()),
            reference: Some("training snapshot, Jan–Jun 2023 (synthetic)".into()),
            current: Some("production, May 2024 (synthetic)".into()),
            generated_at: "2024-06-01T09:30:00Z".into(),
            ..DriftContext::default()
        };
        if let Err(e) = std::fs::write(&drift_path, render_drift(&synthetic::drift_report(), &ctx))
        {
            eprintln!("writing {drift_path}: {e}");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}
