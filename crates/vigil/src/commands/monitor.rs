//! Monitoring commands: outcomes, the monitor policy, rule runs and reports, deployment
//! controls, incidents and rehearsals.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use vigil_domain::monitor::{IncidentStatus, Severity};
use vigil_domain::{Duration, Timestamp};
use vigil_service::monitor::{
    KeyKind, NewIncident, OutcomeColumns, Scenario, SimulateRequest, UpdateIncident,
};

use super::{open, read_text};
use crate::config::Config;
use crate::output::{Out, table};

#[derive(Subcommand, Debug)]
pub enum OutcomesCmd {
    /// Import labels from a CSV or Parquet file, joined to prediction records by encounter or request id
    Import {
        file: PathBuf,
        #[arg(long)]
        key_col: String,
        #[arg(long)]
        label_col: String,
        /// When each outcome was observed
        #[arg(long)]
        time_col: Option<String>,
        /// encounter (pseudonymised before matching) or request
        #[arg(long, default_value = "encounter")]
        key_kind: String,
        /// The label value meaning "had the outcome" (otherwise labels must be 0/1)
        #[arg(long)]
        positive_label: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum MonitorCmd {
    /// The monitor policy (monitor.toml): apply a new version (governance role) or show the one in force
    #[command(subcommand)]
    Policy(MonitorPolicyCmd),
    /// Judge every rule on its last complete window and act on new firings
    Run {
        /// Judge as of this time instead of now
        #[arg(long, value_name = "TIME")]
        at: Option<String>,
    },
    /// A deployment's signals by window, with its latest drift against the reference
    Report {
        model: String,
        #[arg(long, default_value = "7d")]
        window: String,
        /// How many windows to show
        #[arg(long, default_value_t = 8)]
        periods: usize,
        #[arg(long, value_name = "TIME")]
        at: Option<String>,
        /// Break the latest window down by this context key (e.g. site)
        #[arg(long)]
        by: Option<String>,
        /// Write the HTML report to this file
        #[arg(long, value_name = "FILE")]
        html: Option<PathBuf>,
    },
    /// Drift of a release's production inputs in [--since, --until) against its reference
    Drift {
        release: String,
        #[arg(long)]
        since: String,
        #[arg(long)]
        until: String,
    },
    /// Every firing (of one model)
    Firings { model: Option<String> },
    /// The suppress/disable controls of a model; set or lift one (operator role)
    Control {
        model: String,
        /// set or lift
        #[arg(long)]
        action: Option<String>,
        /// suppress or disable
        #[arg(long)]
        control: Option<String>,
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Compute (once) and show a release's reference profile
    Profile { release: String },
    /// Each production release against its review-by date
    Revalidation,
}

#[derive(Subcommand, Debug)]
pub enum MonitorPolicyCmd {
    Apply { file: PathBuf },
    Show,
}

#[derive(Subcommand, Debug)]
pub enum IncidentCmd {
    /// Open an incident
    Open {
        #[arg(long)]
        title: String,
        #[arg(long, default_value = "SEV3")]
        severity: String,
        #[arg(long)]
        model: Option<String>,
        #[arg(long = "release")]
        releases: Vec<String>,
        #[arg(long)]
        owner: Option<String>,
        #[arg(long)]
        note: Option<String>,
    },
    /// Incidents, open ones only unless --all
    List {
        #[arg(long)]
        all: bool,
    },
    /// An incident with its timeline
    Show { id: i64 },
    /// Change status, severity or owner, or add a note
    Update {
        id: i64,
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        severity: Option<String>,
        #[arg(long)]
        owner: Option<String>,
        #[arg(long)]
        note: Option<String>,
    },
    /// Close an incident (a SEV1 or SEV2 needs --postmortem)
    Close {
        id: i64,
        #[arg(long)]
        postmortem: Option<String>,
        #[arg(long, value_name = "FILE")]
        postmortem_file: Option<PathBuf>,
        #[arg(long)]
        note: Option<String>,
    },
}

#[derive(Args, Debug)]
pub struct SimulateArgs {
    #[arg(long)]
    pub model: String,
    /// stable, lab-dropout, case-mix, fahrenheit or prevalence
    #[arg(long)]
    pub scenario: String,
    /// The feature the scenario acts on (lab-dropout, case-mix, fahrenheit)
    #[arg(long)]
    pub feature: Option<String>,
    /// fahrenheit: only this site
    #[arg(long)]
    pub site: Option<String>,
    /// case-mix: share drawn from the upper half; prevalence: extra positives by the last day
    #[arg(long)]
    pub strength: Option<f64>,
    #[arg(long, default_value_t = 30)]
    pub days: u32,
    #[arg(long, default_value_t = 200)]
    pub per_day: u32,
    #[arg(long, default_value_t = 10)]
    pub change_day: u32,
    /// The first simulated day [default: 30 days before today]
    #[arg(long, value_name = "DATE")]
    pub start: Option<String>,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Snapshot to draw rows from [default: the latest evaluation's, else the training snapshot]
    #[arg(long)]
    pub source: Option<String>,
    #[arg(long, default_value = "outcome")]
    pub label_col: String,
    #[arg(long)]
    pub site_col: Option<String>,
    #[arg(long)]
    pub patient_col: Option<String>,
    /// Record only; do not run the monitor policy each simulated day
    #[arg(long)]
    pub no_monitor: bool,
}

fn est<E>(x: &std::result::Result<f64, E>) -> String {
    x.as_ref().map_or("-".into(), |v| format!("{v:.4}"))
}

fn time_arg(s: Option<&str>, now: Timestamp) -> Result<Timestamp> {
    match s {
        Some(s) => Ok(Timestamp::parse(s)?),
        None => Ok(now),
    }
}

pub async fn outcomes(cfg: &Config, out: &Out, cmd: OutcomesCmd) -> Result<ExitCode> {
    let vigil = open(cfg).await?;
    let OutcomesCmd::Import {
        file,
        key_col,
        label_col,
        time_col,
        key_kind,
        positive_label,
    } = cmd;
    let r = vigil
        .import_outcomes_file(
            &cfg.user,
            &file,
            OutcomeColumns {
                key: &key_col,
                label: &label_col,
                time: time_col.as_deref(),
                positive_label: positive_label.as_deref(),
            },
            KeyKind::parse(&key_kind)?,
        )
        .await?;
    out.emit(&r, || {
        format!(
            "Imported {} of {} outcomes (import {}).\n  duplicates in the file: {}\n  already recorded:       {} ({} with a different label)\n  unknown keys:           {} (not imported)\n  late (after {}):        {}",
            r.imported,
            r.received,
            r.import.unwrap_or_default(),
            r.duplicate_rows.len(),
            r.already_recorded.len(),
            r.conflicting.len(),
            r.unknown.len(),
            r.label_delay,
            r.late.len()
        )
    })?;
    Ok(ExitCode::SUCCESS)
}

pub async fn monitor(cfg: &Config, out: &Out, cmd: MonitorCmd) -> Result<ExitCode> {
    let vigil = open(cfg).await?;
    let now = vigil.clock().now();
    match cmd {
        MonitorCmd::Policy(MonitorPolicyCmd::Apply { file }) => {
            let text = read_text(&file, "monitor policy")?;
            let p = vigil.apply_monitor_policy(&cfg.user, &text).await?;
            out.emit(&p, || {
                if p.changed {
                    format!(
                        "Applied monitor policy version {} (sha256:{}): {} rules",
                        p.version,
                        p.digest,
                        p.policy.rules.len()
                    )
                } else {
                    format!("Monitor policy version {} is already in force", p.version)
                }
            })?;
        }
        MonitorCmd::Policy(MonitorPolicyCmd::Show) => {
            let p = vigil.current_monitor_policy().await?;
            out.emit(&p, || match &p {
                None => "No monitor policy has been applied.".into(),
                Some(p) => {
                    let rows: Vec<Vec<String>> = p
                        .policy
                        .rules
                        .iter()
                        .map(|r| {
                            vec![
                                r.name.clone(),
                                r.model.as_ref().map_or("*".into(), ToString::to_string),
                                match &r.feature {
                                    Some(f) => format!("{}({f})", r.signal),
                                    None => r.signal.to_string(),
                                },
                                r.window.to_string(),
                                serde_json::to_string(&r.threshold).unwrap_or_default(),
                                r.action.kind().to_owned(),
                            ]
                        })
                        .collect();
                    format!(
                        "Monitor policy version {} (sha256:{}), applied {} by {}\n{}",
                        p.version,
                        p.digest,
                        p.applied_at,
                        p.applied_by,
                        table(
                            &["RULE", "MODEL", "SIGNAL", "WINDOW", "THRESHOLD", "ACTION"],
                            &rows
                        )
                    )
                }
            })?;
        }
        MonitorCmd::Run { at } => {
            let at = time_arg(at.as_deref(), now)?;
            let run = vigil.monitor_run(&cfg.user, at).await?;
            out.emit(&run, || {
                let rows: Vec<Vec<String>> = run
                    .evaluations
                    .iter()
                    .map(|e| {
                        vec![
                            e.rule.clone(),
                            e.model.to_string(),
                            e.group.clone(),
                            format!("{} .. {}", e.window_start, e.window_end),
                            e.signal.value.map_or("-".into(), |v| format!("{v:.4}")),
                            e.signal.n.to_string(),
                            serde_json::to_value(&e.judgement)
                                .ok()
                                .and_then(|v| v["verdict"].as_str().map(str::to_owned))
                                .unwrap_or_default(),
                            format!("{:?}", e.step).to_lowercase(),
                        ]
                    })
                    .collect();
                let mut s = format!(
                    "Monitor run at {at} (policy version {})\n{}",
                    run.policy_version.map_or("-".into(), |v| v.to_string()),
                    table(
                        &[
                            "RULE", "MODEL", "GROUP", "WINDOW", "VALUE", "N", "VERDICT", "STEP"
                        ],
                        &rows
                    )
                );
                for a in &run.actions {
                    s += &format!(
                        "\naction: firing {} ({}) {} on {}: {}",
                        a.firing, a.rule, a.action, a.model, a.outcome
                    );
                }
                for n in &run.notes {
                    s += &format!("\nnote: {n}");
                }
                s
            })?;
        }
        MonitorCmd::Report {
            model,
            window,
            periods,
            at,
            by,
            html,
        } => {
            let at = time_arg(at.as_deref(), now)?;
            let window = Duration::parse(&window)?;
            let r = vigil
                .monitor_report(&cfg.user, &model, window, periods, at, by.as_deref())
                .await?;
            if let Some(path) = &html {
                std::fs::write(path, r.html(now))
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            out.emit(&r, || {
                let keys = ["volume", "fallback_rate", "alert_share", "alert_burden", "score_psi", "latency_p95", "auroc", "oe_ratio"];
                let rows: Vec<Vec<String>> = r
                    .windows
                    .iter()
                    .map(|w| {
                        let mut row = vec![w.start.to_string()];
                        for k in keys {
                            row.push(
                                w.signals
                                    .get(k)
                                    .and_then(|s| s.value)
                                    .map_or("-".into(), |v| format!("{v:.3}")),
                            );
                        }
                        row
                    })
                    .collect();
                let drift: Vec<Vec<String>> = r
                    .drift
                    .features
                    .iter()
                    .map(|(f, d)| {
                        vec![f.clone(), est(&d.psi), est(&d.ks_statistic), est(&d.js_distance), est(&d.wasserstein)]
                    })
                    .collect();
                format!(
                    "Monitoring of {} (release {}), windows of {}\n{}\n\nDrift in the latest window\n{}{}",
                    r.model,
                    r.release.short(),
                    r.window,
                    table(&["WINDOW", "VOLUME", "FALLBACK", "ALERTS", "BURDEN", "SCORE PSI", "P95 MS", "AUROC", "O/E"], &rows),
                    table(&["FEATURE", "PSI", "KS", "JS", "WASSERSTEIN"], &drift),
                    html.as_ref().map_or(String::new(), |p| format!("\nHTML report: {}", p.display()))
                )
            })?;
        }
        MonitorCmd::Drift {
            release,
            since,
            until,
        } => {
            let d = vigil
                .monitor_drift(
                    &cfg.user,
                    &release,
                    Timestamp::parse(&since)?,
                    Timestamp::parse(&until)?,
                )
                .await?;
            out.emit(&d, || serde_json::to_string_pretty(&d).unwrap_or_default())?;
        }
        MonitorCmd::Firings { model } => {
            let f = vigil.list_firings(model.as_deref()).await?;
            out.emit(&f, || {
                let rows: Vec<Vec<String>> = f
                    .iter()
                    .map(|f| {
                        vec![
                            f.id.to_string(),
                            f.rule.clone(),
                            f.model.to_string(),
                            f.group.clone(),
                            f.window_end.to_string(),
                            f.step.clone(),
                            f.action.clone(),
                        ]
                    })
                    .collect();
                table(
                    &[
                        "ID",
                        "RULE",
                        "MODEL",
                        "GROUP",
                        "WINDOW END",
                        "STEP",
                        "ACTION",
                    ],
                    &rows,
                )
            })?;
        }
        MonitorCmd::Control {
            model,
            action,
            control,
            reason,
        } => match (action.as_deref(), control.as_deref()) {
            (None, _) => {
                let c = vigil.deployment_controls(&model).await?;
                out.emit(&c, || {
                    format!(
                        "{model}: suppressed: {}; disabled: {}",
                        c.suppressed.as_ref().map_or("no".into(), |c| format!(
                            "since {} ({})",
                            c.set_at, c.reason
                        )),
                        c.disabled.as_ref().map_or("no".into(), |c| format!(
                            "since {} ({})",
                            c.set_at, c.reason
                        )),
                    )
                })?;
            }
            (Some("set"), Some(k)) => {
                let c = vigil.set_control(&cfg.user, &model, k, &reason).await?;
                out.emit(&c, || {
                    format!("{model} is now under {k} (control {})", c.id)
                })?;
            }
            (Some("lift"), Some(k)) => {
                let c = vigil.lift_control(&cfg.user, &model, k, &reason).await?;
                out.emit(&c, || format!("lifted {k} on {model} (control {})", c.id))?;
            }
            _ => bail!("--action is set or lift, with --control suppress|disable"),
        },
        MonitorCmd::Profile { release } => {
            let p = vigil.reference_profile(&cfg.user, &release).await?;
            out.emit(&p.summary, || {
                serde_json::to_string_pretty(&p.summary).unwrap_or_default()
            })?;
        }
        MonitorCmd::Revalidation => {
            let v = vigil.revalidation_status().await?;
            out.emit(&v, || {
                let rows: Vec<Vec<String>> = v
                    .iter()
                    .map(|r| {
                        vec![
                            r.model.to_string(),
                            r.release.short(),
                            r.live_since.to_string(),
                            r.review_by.map_or("-".into(), |t| t.to_string()),
                            r.status.map_or("-".into(), |s| format!("{s:?}")),
                            if r.triggered { "yes" } else { "no" }.into(),
                        ]
                    })
                    .collect();
                table(
                    &[
                        "MODEL",
                        "RELEASE",
                        "LIVE SINCE",
                        "REVIEW BY",
                        "STATUS",
                        "TRIGGERED",
                    ],
                    &rows,
                )
            })?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn incident(cfg: &Config, out: &Out, cmd: IncidentCmd) -> Result<ExitCode> {
    let vigil = open(cfg).await?;
    let view = match cmd {
        IncidentCmd::List { all } => {
            let v = vigil.list_incidents(!all).await?;
            out.emit(&v, || {
                let rows: Vec<Vec<String>> = v
                    .iter()
                    .map(|i| {
                        vec![
                            i.id.to_string(),
                            i.severity.clone(),
                            i.status.clone(),
                            i.model.as_ref().map_or("-".into(), ToString::to_string),
                            i.owner.clone().unwrap_or_else(|| "-".into()),
                            i.title.clone(),
                        ]
                    })
                    .collect();
                table(&["ID", "SEV", "STATUS", "MODEL", "OWNER", "TITLE"], &rows)
            })?;
            return Ok(ExitCode::SUCCESS);
        }
        IncidentCmd::Open {
            title,
            severity,
            model,
            releases,
            owner,
            note,
        } => {
            vigil
                .open_incident(
                    &cfg.user,
                    NewIncident {
                        title,
                        severity: Severity::parse(&severity)?,
                        model,
                        releases,
                        owner,
                        note,
                    },
                )
                .await?
        }
        IncidentCmd::Show { id } => vigil.incident(id).await?,
        IncidentCmd::Update {
            id,
            status,
            severity,
            owner,
            note,
        } => {
            let status = status.as_deref().map(IncidentStatus::parse).transpose()?;
            if status == Some(IncidentStatus::Closed) {
                bail!("use `vigil incident close` to close an incident");
            }
            vigil
                .update_incident(
                    &cfg.user,
                    id,
                    UpdateIncident {
                        status,
                        severity: severity.as_deref().map(Severity::parse).transpose()?,
                        owner,
                        note,
                        postmortem: None,
                    },
                )
                .await?
        }
        IncidentCmd::Close {
            id,
            postmortem,
            postmortem_file,
            note,
        } => {
            let pm = match (postmortem, postmortem_file) {
                (Some(p), _) => Some(p),
                (None, Some(f)) => Some(read_text(&f, "postmortem")?),
                (None, None) => None,
            };
            vigil
                .update_incident(
                    &cfg.user,
                    id,
                    UpdateIncident {
                        status: Some(IncidentStatus::Closed),
                        postmortem: pm,
                        note,
                        ..UpdateIncident::default()
                    },
                )
                .await?
        }
    };
    out.emit(&view, || {
        let i = &view.incident;
        let mut s = format!(
            "incident {} [{}] {} — {}\n  model: {}  owner: {}  opened {} by {}",
            i.id,
            i.severity,
            i.status,
            i.title,
            i.model.as_ref().map_or("-".into(), ToString::to_string),
            i.owner.clone().unwrap_or_else(|| "-".into()),
            i.opened_at,
            i.opened_by
        );
        for e in &view.timeline {
            s += &format!("\n  {} {:<10} {}  ({})", e.at, e.kind, e.text, e.actor);
        }
        s
    })?;
    Ok(ExitCode::SUCCESS)
}

pub async fn simulate(cfg: &Config, out: &Out, a: SimulateArgs) -> Result<ExitCode> {
    let vigil = open(cfg).await?;
    let feature = |d: &str| a.feature.clone().unwrap_or_else(|| d.to_owned());
    let scenario = match a.scenario.as_str() {
        "stable" => Scenario::Stable,
        "lab-dropout" => Scenario::LabDropout {
            feature: feature("lactate"),
        },
        "case-mix" => Scenario::CaseMix {
            feature: feature("age"),
            share: a.strength.unwrap_or(0.8),
        },
        "fahrenheit" => Scenario::Fahrenheit {
            feature: feature("temperature"),
            site: a.site.clone(),
        },
        "prevalence" => Scenario::Prevalence {
            extra: a.strength.unwrap_or(0.3),
        },
        s => bail!(
            "`{s}` is not a scenario: stable, lab-dropout, case-mix, fahrenheit or prevalence"
        ),
    };
    let start = match &a.start {
        Some(s) => Timestamp::parse(s)?,
        None => {
            let now = vigil.clock().now().as_micros();
            let day = Duration::from_days(1).as_micros();
            Timestamp::from_micros(now.div_euclid(day) * day - i64::from(a.days) * day)
        }
    };
    let s = vigil
        .simulate(
            &cfg.user,
            SimulateRequest {
                model: a.model,
                scenario,
                start,
                days: a.days,
                per_day: a.per_day,
                change_day: a.change_day,
                seed: a.seed,
                source: a.source,
                label_col: a.label_col,
                site_col: a.site_col,
                patient_col: a.patient_col,
                run_monitor: !a.no_monitor,
            },
        )
        .await?;
    out.emit(&s, || {
        let mut t = format!(
            "Rehearsal {} ({}) of {} on release {}: {} days from {}, change on day {}\n  {} predictions ({} fallbacks), {} outcomes\n  firings: {}",
            s.rehearsal,
            s.scenario.name(),
            s.model,
            s.release.short(),
            s.days,
            s.start,
            s.change_day,
            s.predictions,
            s.fallbacks,
            s.outcomes,
            s.firings.len()
        );
        for f in &s.firings {
            t += &format!(
                "\n    day {} {} {} {}",
                f["window_day"], f["rule"].as_str().unwrap_or(""), f["step"].as_str().unwrap_or(""),
                f["action"]["kind"].as_str().unwrap_or("")
            );
        }
        t
    })?;
    Ok(ExitCode::SUCCESS)
}
