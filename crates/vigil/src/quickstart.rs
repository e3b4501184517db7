//! `vigil quickstart`: the whole lifecycle on the bundled example, in a demo home — register,
//! check the data, evaluate, sign off, promote to shadow, replay a day of traffic through the
//! serving path, promote to production, register a demo CDS client — then serve it. Gates a
//! demo cannot meet honestly (clinical case review, the shadow period) are waived by
//! documented exceptions that the record shows, never by invented evidence. Running it again
//! reuses the home: every step is idempotent (same bytes, same ids, nothing written twice).

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{Value, json};
use vigil_domain::governance::Decision;
use vigil_domain::prediction::{PredictionFilter, PredictionMode};
use vigil_domain::role::{Role, Roles};
use vigil_domain::{Duration, FeatureContract, Stage, Timestamp, UserName};
use vigil_service::data_checks::CheckDataset;
use vigil_service::evaluation::{EvaluateRelease, EvaluationSettings};
use vigil_service::serving::{Serving, ServingOptions, parse_row};
use vigil_service::{
    CreateModel, FixedClock, Location, RegisterDataset, RegisterRelease, SystemClock,
    VerifyOutcome, Vigil,
};

use crate::cli::{Global, QuickstartArgs, ServeArgs};
use crate::config::{Config, user_name};
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

/// The demo's people: who they are, their roles, and what they do in the quickstart.
const PEOPLE: &[(&str, &[Role], &str)] = &[
    (
        "gina",
        &[Role::Governance],
        "governance: approves, grants the demo's exceptions",
    ),
    (
        "dana",
        &[Role::DataScientist],
        "data scientist: registers, checks, evaluates",
    ),
    (
        "rita",
        &[Role::ClinicalReviewer],
        "clinical reviewer: signs off the evidence",
    ),
    (
        "otto",
        &[Role::Operator],
        "operator: deploys, rehearses rollback",
    ),
    (
        "ehr-gateway",
        &[Role::PredictClient],
        "the EHR's integration engine: may only ask for predictions",
    ),
];

/// The demo CDS client: the issuer of the EHR's signed tokens, with a key kept in the home.
pub const CDS_ISS: &str = "https://ehr.demo.vigil.invalid";

/// Where the demo users' tokens are kept (readable by the owner only).
const TOKENS_FILE: &str = "demo-users.json";

/// The replayed traffic's channel, so replayed records are never taken for real traffic.
const REPLAY_CHANNEL: &str = "replay";

/// Why the demo waives a gate it cannot meet honestly, per gate kind.
fn waiver(kind: &str) -> Option<&'static str> {
    match kind {
        "clinical_review" => Some(
            "Demo home: no clinician has reviewed cases of this synthetic example (`vigil review sample` / `vigil review record`). Waived for the quickstart only; a real release must meet this gate.",
        ),
        "shadow" => Some(
            "Demo home: the quickstart replays one synthetic day in shadow, stamped over the past day, instead of running the policy's shadow period. Waived for the quickstart only; a real release must run its full shadow period.",
        ),
        _ => None,
    }
}

/// Grants the demo's exceptions (30 days, by `governance`) for the unmet gates it cannot meet
/// honestly, noting each in `waived`.
async fn waive_unmet(
    vigil: &Vigil,
    governance: &UserName,
    gates: &vigil_service::governance::GateReport,
    waived: &mut Vec<String>,
) -> Result<()> {
    let rid = gates.release.to_string();
    for g in gates.unmet() {
        if let Some(why) = waiver(g.kind) {
            let x = vigil
                .grant_exception(
                    governance,
                    &rid,
                    g.gate.as_str(),
                    why,
                    vigil.clock().now().plus(Duration::from_days(30)),
                )
                .await?;
            waived.push(format!(
                "{} (exception #{}, until {})",
                g.gate, x.id, x.expires_at
            ));
        }
    }
    Ok(())
}

/// Draws a progress bar on stderr when it is a terminal, nothing otherwise.
fn progress(len: Option<u64>, what: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let pb = match len {
        Some(n) => ProgressBar::with_draw_target(Some(n), ProgressDrawTarget::stderr()),
        None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()),
    };
    let style = match len {
        Some(_) => ProgressStyle::with_template("     {msg} [{bar:30}] {pos}/{len} {elapsed}")
            .map(|s| s.progress_chars("=> ")),
        None => ProgressStyle::with_template("     {spinner} {msg} {elapsed}"),
    };
    if let Ok(s) = style {
        pb.set_style(s);
    }
    pb.set_message(what.to_owned());
    if len.is_none() {
        pb.enable_steady_tick(std::time::Duration::from_millis(120));
    }
    pb
}

fn user(name: &str) -> Result<UserName> {
    UserName::parse(name).with_context(|| format!("the demo user name {name}"))
}

fn write_private(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .with_context(|| format!("writing {}", path.display()))
}

/// The demo users, added once (the first by herself, the others by `gina`), with their
/// tokens kept in the home so that a second run can print them again.
async fn ensure_people(
    vigil: &Vigil,
    home: &Path,
) -> Result<(BTreeMap<String, String>, Vec<String>)> {
    let file = home.join(TOKENS_FILE);
    let mut tokens: BTreeMap<String, String> = match std::fs::read_to_string(&file) {
        Ok(t) => serde_json::from_str(&t).with_context(|| format!("reading {}", file.display()))?,
        Err(_) => BTreeMap::new(),
    };
    let existing: Vec<String> = vigil
        .list_users()
        .await?
        .into_iter()
        .map(|u| u.name.to_string())
        .collect();
    if !existing.is_empty() && !existing.iter().any(|u| u == "gina") {
        anyhow::bail!(
            "the home {} already has users, but not the demo's: run the quickstart in a fresh home (--demo-home DIR)",
            home.display()
        );
    }
    let gina = user("gina")?;
    let mut added = Vec::new();
    for (name, roles, _) in PEOPLE {
        if existing.iter().any(|u| u == name) {
            continue;
        }
        let roles = Roles::new(roles.iter().copied())?;
        let u = vigil.add_user(&gina, name, roles).await?;
        tokens.insert((*name).to_owned(), u.token);
        write_private(&file, &serde_json::to_string_pretty(&tokens)?)?;
        added.push((*name).to_owned());
    }
    Ok((tokens, added))
}

/// One validation row as a predict body (`features`, `patient`, `encounter`).
fn request_rows(contract: &FeatureContract) -> Result<Vec<Value>> {
    let text = text("validation.csv")?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or("").split(',').collect();
    let col = |n: &str| header.iter().position(|h| *h == n);
    let features: Vec<(String, usize, bool)> = contract
        .inputs()
        .filter_map(|f| {
            col(&f.name).map(|i| {
                (
                    f.name.clone(),
                    i,
                    matches!(f.ty, vigil_domain::FeatureType::Category),
                )
            })
        })
        .collect();
    let (patient, encounter) = (col("patient_id"), col("encounter_id"));
    let mut rows = Vec::new();
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let cells: Vec<&str> = line.split(',').collect();
        let mut f = serde_json::Map::new();
        for (name, i, category) in &features {
            let Some(c) = cells.get(*i).filter(|c| !c.is_empty()) else {
                continue;
            };
            let v = if *category {
                json!(c)
            } else {
                match c.parse::<f64>() {
                    Ok(x) => json!(x),
                    Err(_) => json!(c),
                }
            };
            f.insert(name.clone(), v);
        }
        let mut row = json!({ "features": f });
        if let Some(p) = patient.and_then(|i| cells.get(i)) {
            row["patient"] = json!(p);
        }
        if let Some(e) = encounter.and_then(|i| cells.get(i)) {
            row["encounter"] = json!(e);
        }
        rows.push(row);
    }
    Ok(rows)
}

/// Replays `rows` through the serving path (parsing, contract, scoring, recording) as the
/// release's shadow traffic, request `i` stamped at `start + i × step`. Returns the number
/// of shadow records written.
async fn replay(
    location: &Location,
    release: &vigil_domain::Release,
    rows: &[Value],
    start: Timestamp,
    step: Duration,
    pb: &ProgressBar,
) -> Result<u64> {
    let clock = Arc::new(FixedClock::new(start));
    let vigil = Vigil::open(location, clock.clone()).await?;
    let serving = Serving::start(vigil.clone(), ServingOptions::default());
    serving.reload().await?;
    let filter = PredictionFilter {
        release: Some(release.id),
        mode: Some(PredictionMode::Shadow),
        channel: Some(REPLAY_CHANNEL.into()),
        ..PredictionFilter::default()
    };
    let before = vigil.count_predictions(&filter).await?;
    for (i, row) in rows.iter().enumerate() {
        let req = parse_row(row, "").map_err(|e| anyhow::anyhow!("replayed row {i}: {e}"))?;
        clock.set(start.plus(Duration::from_micros(step.as_micros() * i as i64)));
        let id = serving.request_id();
        match serving
            .predict(
                MODEL,
                vec![req],
                REPLAY_CHANNEL,
                &id,
                json!({ "replayed_row": i }),
            )
            .await
        {
            Ok(_) => {}
            // In shadow the release scores every request off the response path; without a
            // production release nothing is answered.
            Err(e) if e.code == "no_production_release" => {}
            Err(e) => return Err(e.into()),
        }
        pb.inc(1);
    }
    // The shadow records are written off the response path: wait until all are durable.
    let want = before + rows.len() as i64;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let n = vigil.count_predictions(&filter).await?;
        if n >= want {
            return Ok(u64::try_from(n - before).unwrap_or(0));
        }
        if std::time::Instant::now() > deadline {
            anyhow::bail!(
                "only {} of {} replayed shadow records were written",
                n - before,
                rows.len()
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// A CDS Hooks `patient-view` request for one example patient, with the prefetch the
/// service's discovery asks for, observed one hour before `now` (they count for as long as
/// the contract's windows allow: 12 hours for the vital signs).
fn cds_request(contract: &FeatureContract, now: Timestamp) -> Value {
    let observed = now.minus(Duration::from_secs(3600)).to_string();
    let (year, _, _) = now.date();
    let values: BTreeMap<&str, f64> = [
        ("heart_rate", 118.0),
        ("resp_rate", 24.0),
        ("temperature", 38.4),
        ("spo2", 91.0),
        ("sbp", 98.0),
        ("lactate", 2.9),
        ("creatinine", 140.0),
        ("wbc", 14.2),
    ]
    .into_iter()
    .collect();
    let patient = "demo-patient-1";
    let mut prefetch = serde_json::Map::new();
    prefetch.insert(
        "patient".into(),
        json!({"resourceType": "Patient", "id": patient, "gender": "female",
               "birthDate": format!("{}-01-01", year - 78)}),
    );
    for f in contract.inputs() {
        let Some(m) = &f.fhir else { continue };
        if m.resource != "Observation" {
            continue;
        }
        let (Some(code), Some(v)) = (m.codes.first(), values.get(f.name.as_str())) else {
            continue;
        };
        let (system, code) = code.split_once('|').unwrap_or(("", code));
        let unit = f.unit.clone().unwrap_or_default();
        let quantity =
            json!({"value": v, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit});
        let mut obs = json!({
            "resourceType": "Observation", "id": format!("demo-{}", f.name), "status": "final",
            "code": {"coding": [{"system": system, "code": code}]},
            "subject": {"reference": format!("Patient/{patient}")},
            "effectiveDateTime": observed,
        });
        match &m.component {
            Some(c) => {
                let (cs, cc) = c.split_once('|').unwrap_or(("", c));
                obs["component"] = json!([{"code": {"coding": [{"system": cs, "code": cc}]},
                                           "valueQuantity": quantity}]);
            }
            None => obs["valueQuantity"] = quantity,
        }
        prefetch.insert(
            f.name.replace('.', "_"),
            json!({"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": obs}]}),
        );
    }
    json!({
        "hook": "patient-view",
        "hookInstance": "5e4d5c3b-7a2f-4d1e-9c8b-1a2b3c4d5e6f",
        "context": {"userId": "Practitioner/demo", "patientId": patient, "encounterId": "demo-encounter-1"},
        "prefetch": prefetch,
    })
}

/// Prints a line (not with `--json`), never failing: whoever started the quickstart may
/// have closed its output.
fn line(out: &Out, s: &str) {
    if !out.json {
        use std::io::Write;
        let mut o = std::io::stdout();
        let _ = writeln!(o, "{s}");
        let _ = o.flush();
    }
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
    let starter = user_name(g.user.as_deref())?;
    let say = |s: String| line(out, &s);
    let (gina, dana, rita, otto) = (user("gina")?, user("dana")?, user("rita")?, user("otto")?);

    say(format!("Vigil quickstart — demo home {}", home.display()));
    let (vigil, init) = Vigil::init(&location, Arc::new(SystemClock), &starter).await?;
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

    let (tokens, added) = ensure_people(&vigil, &home).await?;
    say(format!(
        "  3. demo users ({}; tokens in {}):",
        if added.is_empty() {
            "reused".to_owned()
        } else {
            format!("added {}", added.join(", "))
        },
        home.join(TOKENS_FILE).display()
    ));
    for (name, roles, what) in PEOPLE {
        let roles: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
        say(format!("       {name:<12} {:<18} {what}", roles.join(",")));
    }

    let train = vigil
        .register_dataset(
            &dana,
            RegisterDataset {
                path: bundle_dir.join("train.csv"),
                name: "deterioration-train".into(),
                manifest_toml: Some(text("dataset-manifest.toml")?),
            },
        )
        .await?;
    let validation = vigil
        .register_dataset(
            &dana,
            RegisterDataset {
                path: bundle_dir.join("validation.csv"),
                name: "deterioration-validation".into(),
                manifest_toml: Some(text("validation-manifest.toml")?),
            },
        )
        .await?;
    for (label, d) in [("training", &train), ("validation", &validation)] {
        say(format!(
            "  4. {} {label} snapshot {} ({} rows × {} columns)",
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
                    &dana,
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
        "  5. {} model {} ({}, clinical owner {})",
        if model.1 { "created" } else { "found" },
        model.0.name,
        model.0.risk_tier,
        model.0.clinical_owner
    ));

    let pb = progress(None, "registering the release (equivalence check)");
    let release = vigil
        .register_release(
            &dana,
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
        .await;
    pb.finish_and_clear();
    let release = release?;
    let rel = release.value.clone();
    let rid = rel.id.to_string();
    say(format!(
        "  6. {} release {} (the SHA-256 of its manifest)",
        if release.created {
            "registered"
        } else {
            "found"
        },
        rel.id
    ));
    if let Some(q) = &rel.manifest.equivalence {
        say(format!(
            "     equivalence: the artifact reproduces scikit-learn's probabilities on {} reference rows (max |difference| {:.1e}, tolerance {:e})",
            q.rows, q.max_abs_diff, q.tolerance
        ));
    }

    let contract_toml = text("contract.toml")?;
    let reports = home.join("reports");
    std::fs::create_dir_all(&reports).with_context(|| format!("creating {}", reports.display()))?;
    for (label, snap, against) in [
        ("training", &train, None),
        ("validation", &validation, Some(train.value.id.to_string())),
    ] {
        let pb = progress(None, &format!("data checks on the {label} snapshot"));
        let checked = vigil
            .check_dataset(
                &dana,
                CheckDataset {
                    snapshot: snap.value.id.to_string(),
                    contract_toml: contract_toml.clone(),
                    label_col: Some("outcome".into()),
                    positive_label: None,
                    prediction_time_col: Some("prediction_time".into()),
                    site_col: Some("site".into()),
                    patient_col: Some("patient_id".into()),
                    against,
                },
            )
            .await;
        pb.finish_and_clear();
        let checked = checked?;
        let path = reports.join(format!("data-checks-{label}.html"));
        std::fs::write(&path, checked.report.to_html())
            .with_context(|| format!("writing {}", path.display()))?;
        say(format!(
            "  7. data checks on the {label} snapshot: {} ({} checks{}), report {}",
            if checked.report.passed {
                "passed"
            } else {
                "a blocking check FAILED"
            },
            checked.report.checks.len(),
            if checked.created {
                ""
            } else {
                ", already on record"
            },
            path.display()
        ));
    }

    let pb = progress(None, "evaluating the release on the validation snapshot");
    let mut settings = EvaluationSettings::new("outcome");
    settings.group_cols = vec!["sex".into(), "site".into()];
    settings.patient_col = Some("patient_id".into());
    let evaluation = vigil
        .evaluate_release(
            &dana,
            EvaluateRelease {
                release: rid.clone(),
                dataset: validation.value.id.to_string(),
                settings,
            },
        )
        .await;
    pb.finish_and_clear();
    let evaluation = evaluation?;
    let report_path = reports.join("evaluation.html");
    std::fs::write(&report_path, vigil.evaluation_html(&evaluation.evaluation)?)
        .with_context(|| format!("writing {}", report_path.display()))?;
    let num = |k: &str| {
        evaluation.report[k]["value"]
            .as_f64()
            .or_else(|| evaluation.report[k].as_f64())
            .map_or_else(|| "not estimable".into(), |x| format!("{x:.3}"))
    };
    say(format!(
        "  8. {} evaluation {} on the validation snapshot: AUROC {}, Brier {}; report {}",
        if evaluation.created {
            "recorded"
        } else {
            "found"
        },
        evaluation.evaluation.id.short(),
        num("auroc"),
        num("brier"),
        report_path.display()
    ));

    // The gates, stage by stage, met honestly by the demo's people where a person can meet
    // them, and otherwise waived by a documented exception that the record shows.
    let mut waived: Vec<String> = Vec::new();
    let mut stage = vigil.release_stage(&rel).await?;
    if stage < Stage::Validated {
        vigil
            .promote(
                &dana,
                &rid,
                Stage::Validated,
                "quickstart: evaluation, data checks and equivalence on record",
            )
            .await?;
        say("  9. dana promoted the release to validated: every validation gate met".into());
        stage = Stage::Validated;
    } else {
        say(format!("  9. the release is already {stage}"));
    }
    if stage < Stage::Approved {
        let gates = vigil.gates(&rid, Stage::Approved).await?;
        waive_unmet(&vigil, &gina, &gates, &mut waived).await?;
        for (who, role, comment) in [
            (
                &rita,
                Role::ClinicalReviewer,
                "Demo sign-off: calibration, subgroups and intended use read in the evaluation report",
            ),
            (
                &gina,
                Role::Governance,
                "Demo sign-off: evidence and exceptions reviewed for the quickstart",
            ),
        ] {
            vigil
                .sign_off(who, &rid, role, Decision::Approved, comment)
                .await?;
            say(format!(
                " 10. {who} signed off as {role}, bound to the evidence digest {}",
                &gates.evidence_digest.to_hex()[..12]
            ));
        }
        vigil
            .promote(
                &gina,
                &rid,
                Stage::Approved,
                "quickstart: sign-offs recorded",
            )
            .await?;
        say(" 11. gina approved the release".into());
        stage = Stage::Approved;
    }
    if stage < Stage::Shadow {
        vigil
            .promote(&otto, &rid, Stage::Shadow, "quickstart: silent run")
            .await?;
        say(" 12. otto promoted the release to shadow".into());
        stage = Stage::Shadow;
    }
    if stage == Stage::Shadow {
        let contract = FeatureContract::from_toml(&contract_toml)?;
        let rows = request_rows(&contract)?;
        let now = vigil.clock().now();
        let start = now.minus(Duration::from_days(1));
        let step =
            Duration::from_micros(Duration::from_days(1).as_micros() / rows.len().max(1) as i64);
        let pb = progress(
            Some(rows.len() as u64),
            "replaying a day of traffic in shadow",
        );
        let n = replay(&location, &rel, &rows, start, step, &pb).await;
        pb.finish_and_clear();
        let n = n?;
        say(format!(
            " 13. replayed {n} validation rows through the serving path as shadow traffic (channel `{REPLAY_CHANNEL}`), stamped from {start} to {now}"
        ));
        vigil
            .rollback(
                &otto,
                MODEL,
                "quickstart: rehearse withdrawing the shadow candidate",
                true,
            )
            .await?;
        say(" 14. otto rehearsed the rollback (a drill: nothing changed)".into());
        let gates = vigil.gates(&rid, Stage::Production).await?;
        waive_unmet(&vigil, &gina, &gates, &mut waived).await?;
        vigil
            .promote(
                &otto,
                &rid,
                Stage::Production,
                "quickstart: shadow day replayed, rollback rehearsed",
            )
            .await?;
        say(" 15. otto promoted the release to production".into());
    } else {
        say(format!(" 12. the release is in {stage}: nothing to deploy"));
    }
    if waived.is_empty() {
        let held: Vec<String> = vigil
            .list_exceptions(&rid)
            .await?
            .iter()
            .map(|x| format!("{} (exception #{}, until {})", x.gate, x.id, x.expires_at))
            .collect();
        if !held.is_empty() {
            say(format!(
                "     gates waived for the demo by documented exceptions: {}",
                held.join("; ")
            ));
        }
    } else {
        say(format!(
            "     gates the demo cannot meet honestly, waived by gina with documented exceptions: {}",
            waived.join("; ")
        ));
    }

    let known = vigil
        .list_cds_clients(false)
        .await?
        .iter()
        .any(|c| c.iss == CDS_ISS);
    if !known {
        // Registers the home's local signing key as the demo EHR's key set.
        vigil
            .mint_cds_token(&otto, CDS_ISS, "http://127.0.0.1:8080/cds-services", true)
            .await?;
    }
    let contract = FeatureContract::from_toml(&contract_toml)?;
    let cds_path = bundle_dir.join("cds-request.json");
    std::fs::write(
        &cds_path,
        serde_json::to_string_pretty(&cds_request(&contract, vigil.clock().now()))?,
    )
    .with_context(|| format!("writing {}", cds_path.display()))?;
    let predict_path = bundle_dir.join("predict-request.json");
    let first = request_rows(&contract)?
        .into_iter()
        .next()
        .unwrap_or(json!({}));
    std::fs::write(&predict_path, serde_json::to_string_pretty(&first)?)
        .with_context(|| format!("writing {}", predict_path.display()))?;
    say(format!(
        " 16. {} the demo CDS client {CDS_ISS} (its signing key stays in the home)",
        if known { "found" } else { "registered" }
    ));

    let verify = vigil.verify_audit().await?;
    let intact = verify.is_intact();
    say(match &verify.outcome {
        VerifyOutcome::Intact => format!(
            " 17. audit chain intact: {} events, head {}",
            verify.verified,
            verify.head.map(|h| h.to_hex()).unwrap_or_default()
        ),
        VerifyOutcome::Broken { message, .. } => format!(" 17. AUDIT CHAIN BROKEN: {message}"),
    });
    if out.json {
        out.emit(
            &json!({
                "home": home,
                "training_data": train.value.id,
                "validation_data": validation.value.id,
                "model": model.0.name,
                "release": rel.id,
                "evaluation": evaluation.evaluation.id,
                "report": report_path,
                "users": PEOPLE.iter().map(|p| p.0).collect::<Vec<_>>(),
                "tokens_file": home.join(TOKENS_FILE),
                "cds_client": CDS_ISS,
                "audit": verify,
            }),
            String::new,
        )?;
    }
    if !intact {
        return Ok(ExitCode::from(3));
    }

    let home_arg = shell_quote(&home.display().to_string());
    let token_of = |n: &str| tokens.get(n).cloned();
    let serve_hint = home_arg.clone();
    let try_next = move |addr: std::net::SocketAddr, out: &Out| {
        let base = format!("http://{addr}");
        let public = if addr.to_string() == DEFAULT_ADDR {
            String::new()
        } else {
            format!(" --public-url {base}")
        };
        let ehr = token_of("ehr-gateway").unwrap_or_else(|| "<the ehr-gateway token>".into());
        let gina_token = token_of("gina").unwrap_or_else(|| "<gina's token>".into());
        let s = |t: String| line(out, &t);
        s(String::new());
        s(format!(
            "Dashboard: {base}/ — sign in with gina's token: {gina_token}"
        ));
        s(format!("Evaluation report: {}", report_path.display()));
        s("Three commands to try:".into());
        s(format!(
            "  # 1. a CDS Hooks call, with a token the demo EHR signs (valid 5 minutes)\n  curl -s {base}/cds-services/{MODEL} -H 'Content-Type: application/json' \\\n    -H \"Authorization: Bearer $(vigil --home {home_arg} --as otto{public} cds-client token --iss {CDS_ISS} --service {MODEL})\" \\\n    -d @{}",
            shell_quote(&cds_path.display().to_string())
        ));
        s(format!(
            "  # 2. a plain prediction, as the EHR's integration engine\n  curl -s {base}/api/v1/models/{MODEL}/predict -H 'Content-Type: application/json' \\\n    -H 'Authorization: Bearer {ehr}' -d @{}",
            shell_quote(&predict_path.display().to_string())
        ));
        s(format!(
            "  # 3. verify the audit chain\n  vigil --home {home_arg} audit verify"
        ));
        s(String::new());
    };
    if args.no_serve {
        let addr: std::net::SocketAddr = args
            .addr
            .parse()
            .with_context(|| format!("reading the address `{}`", args.addr))?;
        try_next(addr, out);
        line(
            out,
            &format!("Start the server with: vigil --home {serve_hint} serve --addr {addr}"),
        );
        return Ok(ExitCode::SUCCESS);
    }
    drop(vigil);
    let cfg = Config {
        location,
        user: starter,
        public_url: g.public_url.clone(),
    };
    let out_json = out.json;
    crate::commands::governance::serve_with(
        &cfg,
        ServeArgs {
            addr: args.addr,
            poll_interval: "1s".into(),
            score_timeout: "500ms".into(),
            record_timeout: "10s".into(),
            record_batch: 1000,
            monitor_every: "5m".into(),
        },
        move |addr| try_next(addr, &Out { json: out_json }),
    )
    .await
}

/// The default address of `vigil serve`.
const DEFAULT_ADDR: &str = "127.0.0.1:8080";

/// Quotes a path for a POSIX shell when it needs it.
fn shell_quote(s: &str) -> String {
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+:@%".contains(c))
    {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}
