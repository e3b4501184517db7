//! What each command does: read the user's files, call the service, print the result.

pub mod cds;
pub mod evaluate;
pub mod export;
pub mod governance;
pub mod monitor;
pub mod predictions;
pub mod score;

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use serde_json::json;
use vigil_domain::{DatasetSnapshot, Model, Release};
use vigil_service::{
    CreateModel, RegisterDataset, RegisterRelease, SystemClock, VerifyOutcome, Vigil,
};
use vigil_store::AuditFilter;

use crate::cli::{AuditCmd, DatasetCmd, ModelCmd, RegisterReleaseArgs, ReleaseCmd};
use crate::config::Config;
use crate::output::{Out, table};

pub async fn open(cfg: &Config) -> Result<Vigil> {
    Ok(Vigil::open(&cfg.location, Arc::new(SystemClock)).await?)
}

pub fn read_bytes(path: &Path, what: &str) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading the {what} {}", path.display()))
}

pub fn read_text(path: &Path, what: &str) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading the {what} {}", path.display()))
}

pub async fn init(cfg: &Config, out: &Out) -> Result<ExitCode> {
    let (_, report) = Vigil::init(&cfg.location, Arc::new(SystemClock), &cfg.user).await?;
    out.emit(&report, || {
        let what = if report.created { "Initialised" } else { "Checked" };
        let migrations = if report.applied_migrations.is_empty() {
            "schema up to date".to_string()
        } else {
            format!("applied migrations {:?}", report.applied_migrations)
        };
        format!(
            "{what} Vigil home {}\n  store:   {} (schema version {}, {migrations})\n  artifacts: {}",
            report.home.display(),
            report.database,
            report.schema_version,
            report.home.join(vigil_service::ARTIFACTS_DIR).display()
        )
    })?;
    Ok(ExitCode::SUCCESS)
}

fn dataset_text(d: &DatasetSnapshot) -> String {
    let s = &d.snapshot;
    let m = &s.manifest;
    let mut t = format!(
        "dataset snapshot {}\n  name:      {}\n  content:   sha256:{} ({} bytes, {:?})\n  shape:     {} rows × {} columns\n  columns:   {}\n  registered {} by {}",
        d.id,
        s.name,
        s.content.digest,
        s.content.size,
        s.format,
        s.rows,
        s.columns.len(),
        s.columns.join(", "),
        d.registered_at,
        d.registered_by
    );
    if !m.source_systems.is_empty() {
        t += &format!("\n  sources:   {}", m.source_systems.join(", "));
    }
    if let Some(x) = &m.extraction_time {
        t += &format!("\n  extracted: {x}");
    }
    if let Some(w) = &m.time_window {
        t += &format!("\n  window:    {} .. {}", w.start, w.end);
    }
    if let Some(x) = &m.inclusion_criteria {
        t += &format!("\n  inclusion: {x}");
    }
    if let Some(x) = &m.label_definition {
        t += &format!("\n  label:     {x}");
    }
    if !m.sites.is_empty() {
        t += &format!("\n  sites:     {}", m.sites.join(", "));
    }
    t
}

pub async fn dataset(cfg: &Config, out: &Out, cmd: DatasetCmd) -> Result<ExitCode> {
    let vigil = open(cfg).await?;
    match cmd {
        DatasetCmd::Register {
            file,
            name,
            manifest,
        } => {
            let manifest_toml = manifest
                .as_deref()
                .map(|p| read_text(p, "dataset manifest"))
                .transpose()?;
            let r = vigil
                .register_dataset(
                    &cfg.user,
                    RegisterDataset {
                        path: file,
                        name,
                        manifest_toml,
                    },
                )
                .await?;
            out.emit(&r, || {
                let verb = if r.created {
                    "Registered"
                } else {
                    "Already registered (nothing written):"
                };
                format!(
                    "{verb} dataset snapshot {}\n{}",
                    r.value.id,
                    dataset_text(&r.value)
                )
            })?;
        }
        DatasetCmd::Check(a) => {
            let contract_toml = read_text(&a.contract, "feature contract")?;
            let checked = vigil
                .check_dataset(
                    &cfg.user,
                    vigil_service::data_checks::CheckDataset {
                        snapshot: a.snapshot,
                        contract_toml,
                        label_col: a.label_col,
                        positive_label: a.positive_label,
                        prediction_time_col: a.prediction_time_col,
                        site_col: a.site_col,
                        patient_col: a.patient_col,
                        against: a.against,
                    },
                )
                .await?;
            if let Some(p) = &a.html {
                std::fs::write(p, checked.report.to_html())
                    .with_context(|| format!("writing the data check report {}", p.display()))?;
            }
            out.emit(&checked, || {
                let verdict = if checked.report.passed {
                    "PASSED: no blocking check failed".to_string()
                } else {
                    format!(
                        "FAILED: blocking checks failed: {}",
                        checked.record.blocking_failures.join(", ")
                    )
                };
                format!(
                    "{}\n{verdict}\nrecorded as data check {} ({}){}",
                    checked.report.to_text().trim_end(),
                    checked.record.id,
                    if checked.created {
                        "new"
                    } else {
                        "already on record"
                    },
                    a.html
                        .as_ref()
                        .map_or(String::new(), |p| format!("\nHTML report: {}", p.display()))
                )
            })?;
            if !checked.report.passed {
                return Ok(ExitCode::from(4));
            }
        }
        DatasetCmd::List => {
            let all = vigil.list_datasets().await?;
            out.emit(&all, || {
                let rows: Vec<Vec<String>> = all
                    .iter()
                    .map(|d| {
                        vec![
                            d.id.short(),
                            d.snapshot.name.clone(),
                            d.snapshot.rows.to_string(),
                            d.snapshot.columns.len().to_string(),
                            d.registered_at.to_string(),
                        ]
                    })
                    .collect();
                table(&["ID", "NAME", "ROWS", "COLUMNS", "REGISTERED"], &rows)
            })?;
        }
        DatasetCmd::Show { id } => {
            let d = vigil.get_dataset(&id).await?;
            out.emit(&d, || dataset_text(&d))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn model_text(m: &Model) -> String {
    let u = &m.intended_use;
    format!(
        "model {}\n  risk:            {}\n  clinical owner:  {}\n  technical owner: {}\n  population:      {}\n  inputs:          {}\n  output:          {}\n  who acts:        {}\n  when uncertain:  {}\n  when unavailable:{}\n  limitations:\n{}\n  created {} by {}",
        m.name,
        m.risk_tier,
        m.clinical_owner,
        m.technical_owner,
        u.target_population,
        u.inputs,
        u.output,
        u.who_acts,
        u.when_uncertain,
        format_args!(" {}", u.when_unavailable),
        u.limitations
            .iter()
            .map(|l| format!("    - {l}"))
            .collect::<Vec<_>>()
            .join("\n"),
        m.created_at,
        m.created_by
    )
}

pub async fn model(cfg: &Config, out: &Out, cmd: ModelCmd) -> Result<ExitCode> {
    let vigil = open(cfg).await?;
    match cmd {
        ModelCmd::Create {
            name,
            intended_use,
            risk_tier,
            clinical_owner,
            technical_owner,
        } => {
            let intended_use_toml = read_text(&intended_use, "intended use")?;
            let m = vigil
                .create_model(
                    &cfg.user,
                    CreateModel {
                        name,
                        intended_use_toml,
                        risk_tier,
                        clinical_owner,
                        technical_owner,
                    },
                )
                .await?;
            out.emit(&m, || {
                format!("Created model {}\n{}", m.name, model_text(&m))
            })?;
        }
        ModelCmd::List => {
            let all = vigil.list_models().await?;
            out.emit(&all, || {
                let rows: Vec<Vec<String>> = all
                    .iter()
                    .map(|m| {
                        vec![
                            m.name.to_string(),
                            m.risk_tier.to_string(),
                            m.clinical_owner.clone(),
                            m.technical_owner.clone(),
                        ]
                    })
                    .collect();
                table(
                    &["NAME", "RISK", "CLINICAL OWNER", "TECHNICAL OWNER"],
                    &rows,
                )
            })?;
        }
        ModelCmd::Card {
            release,
            format,
            out: file,
        } => {
            return export::card(&vigil, out, &release, format, file.as_deref()).await;
        }
        ModelCmd::Show { name } => {
            let m = vigil.get_model(&name).await?;
            out.emit(&m, || model_text(&m))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn release_text(r: &Release) -> String {
    let m = &r.manifest;
    let opt = |p: &Option<vigil_domain::release::Pinned>| {
        p.as_ref().map_or("-".to_string(), |p| {
            format!("sha256:{} ({} bytes)", p.digest, p.size)
        })
    };
    format!(
        "release {}\n  model:           {}\n  artifact:        sha256:{} ({} bytes, {})\n  contract:        sha256:{}\n  training data:   {}\n  code commit:     {}\n  environment:     {}\n  hyperparameters: {}\n  thresholds:      {}\n  changelog:       {}\n  equivalence:     {}\n  registered {} by {}",
        r.id,
        m.model,
        m.artifact.digest,
        m.artifact.size,
        m.artifact_format,
        m.contract.digest,
        m.training_data,
        m.code_commit.as_deref().unwrap_or("-"),
        opt(&m.environment),
        opt(&m.hyperparameters),
        if m.thresholds.is_empty() {
            "-".to_string()
        } else {
            m.thresholds
                .iter()
                .map(|t| t.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        },
        m.changelog.as_deref().unwrap_or("-"),
        m.equivalence.as_ref().map_or_else(
            || "- (registered without reference predictions)".to_string(),
            |q| format!(
                "passed: {} reference rows (sha256:{}), max |difference| {:.2e} at row {} (tolerance {:e})",
                q.rows, q.reference.digest, q.max_abs_diff, q.worst_row, q.tolerance
            )
        ),
        r.registered_at,
        r.registered_by
    )
}

pub async fn register_release(
    vigil: &Vigil,
    cfg: &Config,
    a: RegisterReleaseArgs,
) -> Result<vigil_service::Registered<Release>> {
    let req = RegisterRelease {
        model: a.model,
        artifact: read_bytes(&a.artifact, "model artifact")?,
        contract: read_bytes(&a.contract, "feature contract")?,
        training_data: a.training_data,
        code_commit: a.code_commit,
        environment: a
            .environment
            .as_deref()
            .map(|p| read_bytes(p, "environment lockfile"))
            .transpose()?,
        hyperparameters: a
            .hyperparameters
            .as_deref()
            .map(|p| read_bytes(p, "hyperparameters"))
            .transpose()?,
        thresholds: a.thresholds,
        changelog: a.changelog,
        reference_predictions: a
            .reference_predictions
            .as_deref()
            .map(|p| read_bytes(p, "reference predictions"))
            .transpose()?,
    };
    Ok(vigil.register_release(&cfg.user, req).await?)
}

pub async fn release(cfg: &Config, out: &Out, cmd: ReleaseCmd) -> Result<ExitCode> {
    let vigil = open(cfg).await?;
    match cmd {
        ReleaseCmd::Register(a) => {
            let r = register_release(&vigil, cfg, *a).await?;
            out.emit(&r, || {
                let verb = if r.created {
                    "Registered"
                } else {
                    "Already registered (nothing written):"
                };
                format!("{verb} release {}\n{}", r.value.id, release_text(&r.value))
            })?;
        }
        ReleaseCmd::List { model } => {
            let all = vigil.list_releases(model.as_deref()).await?;
            out.emit(&all, || {
                let rows: Vec<Vec<String>> = all
                    .iter()
                    .map(|r| {
                        vec![
                            r.id.short(),
                            r.manifest.model.to_string(),
                            r.registered_at.to_string(),
                            r.manifest.changelog.clone().unwrap_or_default(),
                        ]
                    })
                    .collect();
                table(&["ID", "MODEL", "REGISTERED", "CHANGELOG"], &rows)
            })?;
        }
        ReleaseCmd::Show { id } => {
            let r = vigil.get_release(&id).await?;
            vigil.verify_release_artifacts(&r)?;
            out.emit(&r, || {
                format!(
                    "{}\n  artifacts verified against their digests",
                    release_text(&r)
                )
            })?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn audit(cfg: &Config, out: &Out, cmd: AuditCmd) -> Result<ExitCode> {
    match cmd {
        AuditCmd::VerifyPackage { dir } => return export::verify_package(out, &dir),
        AuditCmd::Export { release, out: dir } => {
            return export::export(cfg, out, &release, &dir).await;
        }
        _ => {}
    }
    let vigil = open(cfg).await?;
    match cmd {
        AuditCmd::VerifyPackage { .. } | AuditCmd::Export { .. } => {}
        AuditCmd::Verify => {
            let started = std::time::Instant::now();
            let report = vigil.verify_audit().await?;
            let elapsed = started.elapsed().as_secs_f64();
            let value = json!({ "report": report, "seconds": elapsed });
            out.emit(&value, || match &report.outcome {
                VerifyOutcome::Intact => format!(
                    "Audit chain intact: {} events verified in {:.3} s; head {}",
                    report.verified,
                    elapsed,
                    report
                        .head
                        .map_or("(empty log)".to_string(), |h| h.to_hex())
                ),
                VerifyOutcome::Broken { at, message } => format!(
                    "AUDIT CHAIN BROKEN at event {}: {message}\n  {} events before it verified",
                    at.seq(),
                    report.verified
                ),
            })?;
            if !report.is_intact() {
                return Ok(ExitCode::from(3));
            }
        }
        AuditCmd::Log {
            subject,
            action,
            after,
            limit,
        } => {
            let events = vigil
                .list_audit(&AuditFilter {
                    subject,
                    action,
                    after_seq: after,
                    limit,
                })
                .await?;
            out.emit(&events, || {
                let rows: Vec<Vec<String>> = events
                    .iter()
                    .map(|e| {
                        vec![
                            e.seq.to_string(),
                            e.at.to_string(),
                            e.actor.clone(),
                            e.action.clone(),
                            e.subject.clone(),
                        ]
                    })
                    .collect();
                table(&["SEQ", "TIME", "ACTOR", "ACTION", "SUBJECT"], &rows)
            })?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
