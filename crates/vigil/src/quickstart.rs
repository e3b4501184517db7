//! `vigil quickstart`: the whole path on the bundled example, in a demo home. Running it again
//! reuses the home: every step is idempotent (same bytes, same ids, nothing written twice).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use serde_json::json;
use vigil_service::{
    CreateModel, Location, RegisterDataset, RegisterRelease, SystemClock, VerifyOutcome, Vigil,
};

use crate::cli::{Global, QuickstartArgs};
use crate::config::user_name;
use crate::output::Out;

/// The example bundle, built into the binary so the quickstart needs nothing else.
pub const BUNDLE: &[(&str, &[u8])] = &[
    (
        "train.csv",
        include_bytes!("../../../examples/deterioration/train.csv"),
    ),
    (
        "validation.csv",
        include_bytes!("../../../examples/deterioration/validation.csv"),
    ),
    (
        "dataset-manifest.toml",
        include_bytes!("../../../examples/deterioration/dataset-manifest.toml"),
    ),
    (
        "validation-manifest.toml",
        include_bytes!("../../../examples/deterioration/validation-manifest.toml"),
    ),
    (
        "model.onnx",
        include_bytes!("../../../examples/deterioration/model.onnx"),
    ),
    (
        "contract.toml",
        include_bytes!("../../../examples/deterioration/contract.toml"),
    ),
    (
        "intended-use.toml",
        include_bytes!("../../../examples/deterioration/intended-use.toml"),
    ),
    (
        "hyperparameters.json",
        include_bytes!("../../../examples/deterioration/hyperparameters.json"),
    ),
    (
        "requirements.lock",
        include_bytes!("../../../examples/deterioration/requirements.lock"),
    ),
    (
        "reference-predictions.csv",
        include_bytes!("../../../examples/deterioration/reference-predictions.csv"),
    ),
];

pub const MODEL: &str = "deterioration-risk";

fn bundle(name: &str) -> &'static [u8] {
    BUNDLE
        .iter()
        .find(|(n, _)| *n == name)
        .map_or(&[], |(_, b)| b)
}

fn write_bundle(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for (name, bytes) in BUNDLE {
        let p = dir.join(name);
        if std::fs::read(&p).ok().as_deref() != Some(*bytes) {
            std::fs::write(&p, bytes).with_context(|| format!("writing {}", p.display()))?;
        }
    }
    Ok(())
}

fn text(name: &str) -> Result<String> {
    String::from_utf8(bundle(name).to_vec())
        .with_context(|| format!("the bundled {name} is not UTF-8"))
}

pub async fn run(g: &Global, out: &Out, args: QuickstartArgs) -> Result<ExitCode> {
    let home = args
        .demo_home
        .or_else(|| g.home.clone())
        .unwrap_or_else(|| PathBuf::from("vigil-demo"));
    let location = Location {
        home: home.clone(),
        database_url: g.database_url.clone(),
    };
    let user = user_name(g.user.as_deref())?;
    let say = |s: String| {
        if !out.json {
            println!("{s}");
        }
    };

    say(format!("Vigil quickstart — demo home {}", home.display()));
    let (vigil, init) = Vigil::init(&location, Arc::new(SystemClock), &user).await?;
    say(format!(
        "  1. {} the home: store {} (schema {}), artifacts in {}",
        if init.created {
            "initialised"
        } else {
            "reused"
        },
        init.database,
        init.schema_version,
        home.join(vigil_service::ARTIFACTS_DIR).display()
    ));

    let bundle_dir = home.join("example");
    write_bundle(&bundle_dir)?;
    say(format!(
        "  2. wrote the example bundle to {}",
        bundle_dir.display()
    ));

    let train = vigil
        .register_dataset(
            &user,
            RegisterDataset {
                path: bundle_dir.join("train.csv"),
                name: "deterioration-train".into(),
                manifest_toml: Some(text("dataset-manifest.toml")?),
            },
        )
        .await?;
    let validation = vigil
        .register_dataset(
            &user,
            RegisterDataset {
                path: bundle_dir.join("validation.csv"),
                name: "deterioration-validation".into(),
                manifest_toml: Some(text("validation-manifest.toml")?),
            },
        )
        .await?;
    for (label, d) in [("training", &train), ("validation", &validation)] {
        say(format!(
            "  3. {} {label} snapshot {} ({} rows × {} columns)",
            if d.created { "registered" } else { "found" },
            d.value.id.short(),
            d.value.snapshot.rows,
            d.value.snapshot.columns.len()
        ));
    }

    let model = match vigil.find_model(MODEL).await? {
        Some(m) => (m, false),
        None => (
            vigil
                .create_model(
                    &user,
                    CreateModel {
                        name: MODEL.into(),
                        intended_use_toml: text("intended-use.toml")?,
                        risk_tier: 3,
                        clinical_owner: "Dr. A. Osei (critical care outreach)".into(),
                        technical_owner: "Clinical ML platform team".into(),
                    },
                )
                .await?,
            true,
        ),
    };
    say(format!(
        "  4. {} model {} ({}, clinical owner {})",
        if model.1 { "created" } else { "found" },
        model.0.name,
        model.0.risk_tier,
        model.0.clinical_owner
    ));

    let release = vigil
        .register_release(
            &user,
            RegisterRelease {
                model: MODEL.into(),
                artifact: bundle("model.onnx").to_vec(),
                contract: bundle("contract.toml").to_vec(),
                training_data: train.value.id.to_string(),
                code_commit: None,
                environment: Some(bundle("requirements.lock").to_vec()),
                hyperparameters: Some(bundle("hyperparameters.json").to_vec()),
                thresholds: vec![0.15, 0.3],
                changelog: Some(
                    "First release: standard-scaled logistic regression on 10 vitals and labs"
                        .into(),
                ),
                reference_predictions: Some(bundle("reference-predictions.csv").to_vec()),
            },
        )
        .await?;
    say(format!(
        "  5. {} release {} (the SHA-256 of its manifest)",
        if release.created {
            "registered"
        } else {
            "found"
        },
        release.value.id
    ));
    if let Some(q) = &release.value.manifest.equivalence {
        say(format!(
            "     equivalence: the artifact reproduces scikit-learn's probabilities on {} reference rows (max |difference| {:.1e}, tolerance {:e})",
            q.rows, q.max_abs_diff, q.tolerance
        ));
    }

    let verify = vigil.verify_audit().await?;
    let intact = verify.is_intact();
    say(match &verify.outcome {
        VerifyOutcome::Intact => format!(
            "  6. audit chain intact: {} events, head {}",
            verify.verified,
            verify.head.map(|h| h.to_hex()).unwrap_or_default()
        ),
        VerifyOutcome::Broken { message, .. } => format!("  6. AUDIT CHAIN BROKEN: {message}"),
    });

    let home_arg = home.display().to_string();
    say(format!(
        "\nTry next:\n  vigil --home {home_arg} release show {}\n  vigil --home {home_arg} audit log\n  vigil --home {home_arg} audit verify",
        release.value.id.short()
    ));
    if out.json {
        out.emit(
            &json!({
                "home": home,
                "training_data": train.value.id,
                "validation_data": validation.value.id,
                "model": model.0.name,
                "release": release.value.id,
                "audit": verify,
            }),
            String::new,
        )?;
    }
    Ok(if intact {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    })
}
