//! Governance commands: users, policy, sign-offs, exceptions, gates, promotion, rollback,
//! retirement, history, clinical review and the API server.

use std::process::ExitCode;

use anyhow::{Context, Result};
use vigil_domain::governance::{Decision, Promotion, Verdict};
use vigil_domain::policy::GateStatus;
use vigil_domain::role::{Role, Roles};
use vigil_domain::{Stage, Timestamp};
use vigil_service::governance::{GateReport, PromotionOutcome, SampleRequest};

use super::{open, read_text};
use crate::cli::{ExceptionCmd, PolicyCmd, ReviewCmd, UserCmd};
use crate::config::Config;
use crate::output::{Out, table};

fn stage(s: &str) -> Result<Stage> {
    s.parse::<Stage>().map_err(anyhow::Error::from)
}

pub async fn user(cfg: &Config, out: &Out, cmd: UserCmd) -> Result<ExitCode> {
    let vigil = open(cfg).await?;
    match cmd {
        UserCmd::Add { name, roles } => {
            let roles = Roles::parse(&roles.join(","))?;
            let u = vigil.add_user(&cfg.user, &name, roles).await?;
            out.emit(&u, || {
                let mut t = format!("Added user {} with roles {}", u.user.name, u.user.roles);
                if u.bootstrapped {
                    t += "\n  (the first user of this store is given the governance role too)";
                }
                t + &format!("\n  API token (shown once, store it now): {}", u.token)
            })?;
        }
        UserCmd::Revoke { name } => {
            let u = vigil.revoke_user(&cfg.user, &name).await?;
            out.emit(&u, || {
                format!("Revoked user {}: its token no longer works", u.name)
            })?;
        }
        UserCmd::List => {
            let all = vigil.list_users().await?;
            out.emit(&all, || {
                let rows: Vec<Vec<String>> = all
                    .iter()
                    .map(|u| {
                        vec![
                            u.name.to_string(),
                            u.roles.to_string(),
                            u.created_at.to_string(),
                            u.revoked_at.map_or("-".into(), |t| format!("revoked {t}")),
                        ]
                    })
                    .collect();
                table(&["NAME", "ROLES", "ADDED", "STATUS"], &rows)
            })?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn policy(cfg: &Config, out: &Out, cmd: PolicyCmd) -> Result<ExitCode> {
    let vigil = open(cfg).await?;
    let p = match cmd {
        PolicyCmd::Apply { file } => {
            let text = read_text(&file, "gate policy")?;
            vigil.apply_policy(&cfg.user, &text).await?
        }
        PolicyCmd::Show => vigil.current_policy().await?,
    };
    out.emit(&p, || {
        let head = match (p.version, p.changed) {
            (0, _) => {
                "Gate policy: the built-in default (not yet applied to this store)".to_string()
            }
            (v, true) => format!("Applied gate policy version {v} (sha256:{})", p.digest),
            (v, false) => format!(
                "Gate policy version {v} (sha256:{}), applied {} by {}",
                p.digest,
                p.applied_at.map_or("-".into(), |t| t.to_string()),
                p.applied_by.as_ref().map_or("-".into(), |u| u.to_string())
            ),
        };
        let mut rows = Vec::new();
        for (tier, stages) in &p.policy.tiers {
            for (st, gates) in stages {
                for g in gates {
                    let rule = serde_json::to_value(&g.rule)
                        .map(|v| v.to_string())
                        .unwrap_or_default();
                    rows.push(vec![
                        tier.to_string(),
                        st.to_string(),
                        g.name.to_string(),
                        rule,
                    ]);
                }
            }
        }
        format!("{head}\n{}", table(&["TIER", "TO", "GATE", "RULE"], &rows))
    })?;
    Ok(ExitCode::SUCCESS)
}

pub async fn sign_off(
    cfg: &Config,
    out: &Out,
    release: String,
    role: String,
    comment: String,
    decision: Decision,
) -> Result<ExitCode> {
    let vigil = open(cfg).await?;
    let role = Role::parse(&role)?;
    let s = vigil
        .sign_off(&cfg.user, &release, role, decision, &comment)
        .await?;
    out.emit(&s, || {
        format!(
            "Recorded: {} {} release {} as {}\n  evidence digest: {}\n  (new evidence after this makes the sign-off stale)",
            s.user,
            s.decision.as_str(),
            s.release.short(),
            s.role,
            s.evidence_digest
        )
    })?;
    Ok(ExitCode::SUCCESS)
}

pub async fn exception(cfg: &Config, out: &Out, cmd: ExceptionCmd) -> Result<ExitCode> {
    let vigil = open(cfg).await?;
    match cmd {
        ExceptionCmd::Grant {
            release,
            gate,
            rationale,
            expires,
        } => {
            let expires = Timestamp::parse(&expires)?;
            let x = vigil
                .grant_exception(&cfg.user, &release, &gate, &rationale, expires)
                .await?;
            out.emit(&x, || {
                format!(
                    "Granted exception {} waiving gate `{}` for release {} until {}",
                    x.id,
                    x.gate,
                    x.release.short(),
                    x.expires_at
                )
            })?;
        }
        ExceptionCmd::List { release } => {
            let all = vigil.list_exceptions(&release).await?;
            let now = vigil.clock().now();
            out.emit(&all, || {
                let rows: Vec<Vec<String>> = all
                    .iter()
                    .map(|x| {
                        vec![
                            x.id.to_string(),
                            x.gate.to_string(),
                            x.granted_by.to_string(),
                            x.expires_at.to_string(),
                            if x.expires_at > now {
                                "in force".into()
                            } else {
                                "expired".into()
                            },
                            x.rationale.clone(),
                        ]
                    })
                    .collect();
                table(
                    &["ID", "GATE", "GRANTED BY", "EXPIRES", "STATUS", "RATIONALE"],
                    &rows,
                )
            })?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn gates_text(r: &GateReport) -> String {
    let rows: Vec<Vec<String>> = r
        .gates
        .iter()
        .map(|g| {
            let status = match g.status {
                GateStatus::Met => "met".to_string(),
                GateStatus::Unmet => "UNMET".to_string(),
                GateStatus::Covered => match &g.exception {
                    Some(x) => format!("covered by exception {} (until {})", x.id, x.expires_at),
                    None => "covered".to_string(),
                },
            };
            vec![g.gate.to_string(), status, g.detail.clone()]
        })
        .collect();
    let head = format!(
        "Gates for release {} ({}, {}) from {} to {} under policy version {}\n  evidence digest: {}",
        r.release.short(),
        r.model,
        r.risk_tier,
        r.from,
        r.to,
        r.policy_version,
        r.evidence_digest
    );
    if rows.is_empty() {
        format!("{head}\n  no gates: this move needs a role and a reason only")
    } else {
        format!("{head}\n{}", table(&["GATE", "STATUS", "EVIDENCE"], &rows))
    }
}

pub async fn gates(cfg: &Config, out: &Out, release: String, to: String) -> Result<ExitCode> {
    let vigil = open(cfg).await?;
    let r = vigil.gates(&release, stage(&to)?).await?;
    out.emit(&r, || gates_text(&r))?;
    Ok(ExitCode::SUCCESS)
}

fn changes_text(changes: &[Promotion]) -> String {
    changes
        .iter()
        .map(|p| {
            format!(
                "  release {}: {} → {} ({})",
                p.release.short(),
                p.from,
                p.to,
                p.kind.as_str()
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn outcome_text(o: &PromotionOutcome) -> String {
    let mut t = String::new();
    if let Some(d) = &o.drill {
        t += &format!(
            "Rollback rehearsed (drill {}): release {} would be taken out and {} — nothing changed",
            d.id,
            d.from_release.short(),
            d.to_release.map_or(
                "no release would replace it (usual care)".to_string(),
                |r| format!("release {} put back", r.short())
            )
        );
    } else {
        t += &format!("Done:\n{}", changes_text(&o.changes));
    }
    if let Some(g) = &o.gates
        && !g.gates.is_empty()
    {
        t += &format!("\n{}", gates_text(g));
    }
    t
}

pub async fn promote(
    cfg: &Config,
    out: &Out,
    release: String,
    to: String,
    reason: String,
) -> Result<ExitCode> {
    let vigil = open(cfg).await?;
    let o = vigil
        .promote(&cfg.user, &release, stage(&to)?, &reason)
        .await?;
    out.emit(&o, || outcome_text(&o))?;
    Ok(ExitCode::SUCCESS)
}

pub async fn rollback(
    cfg: &Config,
    out: &Out,
    model: String,
    reason: String,
    drill: bool,
) -> Result<ExitCode> {
    let vigil = open(cfg).await?;
    let o = vigil.rollback(&cfg.user, &model, &reason, drill).await?;
    out.emit(&o, || outcome_text(&o))?;
    Ok(ExitCode::SUCCESS)
}

pub async fn retire(cfg: &Config, out: &Out, release: String, reason: String) -> Result<ExitCode> {
    let vigil = open(cfg).await?;
    let o = vigil.retire(&cfg.user, &release, &reason).await?;
    out.emit(&o, || outcome_text(&o))?;
    Ok(ExitCode::SUCCESS)
}

pub async fn history(
    cfg: &Config,
    out: &Out,
    model: String,
    at: Option<String>,
) -> Result<ExitCode> {
    let vigil = open(cfg).await?;
    let at = at
        .as_deref()
        .map(Timestamp::parse)
        .transpose()
        .context("reading --at")?;
    let h = vigil.history(&model, at).await?;
    out.emit(&h, || {
        let rows: Vec<Vec<String>> = h
            .promotions
            .iter()
            .map(|p| {
                vec![
                    p.at.to_string(),
                    p.release.short(),
                    format!("{} → {}", p.from, p.to),
                    p.kind.as_str().to_string(),
                    p.actor.to_string(),
                    p.reason.clone(),
                    if p.exceptions.is_empty() {
                        "-".into()
                    } else {
                        format!("{:?}", p.exceptions)
                    },
                ]
            })
            .collect();
        let short =
            |r: Option<vigil_domain::ReleaseId>| r.map_or("none".to_string(), |r| r.short());
        format!(
            "History of {}\n{}\nAt {}: production {}, shadow {}",
            h.model,
            table(
                &[
                    "TIME",
                    "RELEASE",
                    "STAGE",
                    "KIND",
                    "BY",
                    "REASON",
                    "EXCEPTIONS"
                ],
                &rows
            ),
            h.live_at.at,
            short(h.live_at.production),
            short(h.live_at.shadow)
        )
    })?;
    Ok(ExitCode::SUCCESS)
}

pub async fn review(cfg: &Config, out: &Out, cmd: ReviewCmd) -> Result<ExitCode> {
    let vigil = open(cfg).await?;
    match cmd {
        ReviewCmd::Sample {
            release,
            data,
            n,
            label,
            subgroups,
        } => {
            let r = vigil
                .sample_review(
                    &cfg.user,
                    SampleRequest {
                        release,
                        dataset: data,
                        n,
                        label,
                        subgroups,
                    },
                )
                .await?;
            out.emit(&r, || {
                let rows: Vec<Vec<String>> = r
                    .cases
                    .iter()
                    .map(|c| {
                        let sg: Vec<String> = c
                            .subgroups
                            .iter()
                            .map(|(k, v)| format!("{k}={v}"))
                            .collect();
                        vec![c.row.to_string(), c.label.clone(), sg.join(" ")]
                    })
                    .collect();
                format!(
                    "Review sample {}: {} cases from {} strata, {}\n{}",
                    r.sample.id,
                    r.cases.len(),
                    r.strata,
                    r.sample.method,
                    table(&["ROW", "LABEL", "SUBGROUPS"], &rows)
                )
            })?;
        }
        ReviewCmd::Record {
            release,
            case,
            verdict,
            comment,
        } => {
            let v = Verdict::parse(&verdict)?;
            let r = vigil
                .record_review(&cfg.user, &release, case, v, &comment)
                .await?;
            out.emit(&r, || {
                format!(
                    "Recorded review {}: row {} is {}",
                    r.id,
                    r.case,
                    r.verdict.as_str()
                )
            })?;
        }
        ReviewCmd::Summary { release } => {
            let s = vigil.review_summary(&release).await?;
            out.emit(&s, || {
                format!(
                    "{} plausible, {} implausible, {} unsafe",
                    s.plausible, s.implausible, s.unsafe_
                )
            })?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn duration(flag: &str, s: &str) -> Result<std::time::Duration> {
    let t = s.trim();
    let (num, scale) = if let Some(n) = t.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60.0)
    } else {
        (t, 1.0)
    };
    let v: f64 = num
        .trim()
        .parse()
        .ok()
        .filter(|v: &f64| v.is_finite() && *v > 0.0)
        .with_context(|| format!("--{flag}: `{s}` is not a duration such as 500ms, 1s or 2m"))?;
    Ok(std::time::Duration::from_secs_f64(v * scale))
}

pub async fn serve(cfg: &Config, a: crate::cli::ServeArgs) -> Result<ExitCode> {
    serve_with(cfg, a, |_| {}).await
}

/// `vigil serve`, telling `before_listening` the bound address before the "listening" lines
/// are printed (the quickstart prints what to try there).
pub async fn serve_with(
    cfg: &Config,
    a: crate::cli::ServeArgs,
    before_listening: impl FnOnce(std::net::SocketAddr),
) -> Result<ExitCode> {
    let opts = vigil_service::serving::ServingOptions {
        poll_interval: duration("poll-interval", &a.poll_interval)?,
        score_timeout: duration("score-timeout", &a.score_timeout)?,
        record_timeout: duration("record-timeout", &a.record_timeout)?,
        max_batch: a.record_batch.max(1),
    };
    let vigil = open(cfg).await?;
    let addr = a.addr;
    let addr: std::net::SocketAddr = addr
        .parse()
        .with_context(|| format!("reading the address `{addr}`"))?;
    let every = vigil_domain::Duration::parse(&a.monitor_every)?;
    if every.as_micros() > 0 {
        // The monitor policy runs beside the API; a failed run is reported and retried on
        // the next tick, never fatal to serving.
        let v = vigil.clone();
        let period = std::time::Duration::from_micros(every.as_micros().unsigned_abs());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Err(e) = v.monitor_tick(v.clock().now()).await {
                    eprintln!("monitor run failed ({}): {}", e.code, e.message);
                }
            }
        });
    }
    let configured = cfg.public_url.clone();
    let cds = std::sync::Arc::new(
        vigil_service::cds::CdsService::new(
            vigil.clone(),
            vigil_service::cds::CdsConfig::new(
                configured
                    .clone()
                    .unwrap_or_else(|| format!("http://{addr}")),
            ),
        )
        .await
        .context("loading the CDS Hooks services")?,
    );
    let on_bound_cds = cds.clone();
    vigil_http::serve(vigil, opts, Some(cds), addr, move |bound| {
        use std::io::Write;
        if configured.is_none() {
            on_bound_cds.set_public_url(&format!("http://{bound}"));
        }
        before_listening(bound);
        // Whoever started the server may read only the first line and close the pipe:
        // nothing after it may fail.
        let mut out = std::io::stdout();
        let _ = writeln!(out, "vigil listening on http://{bound}/api/v1");
        let _ = writeln!(
            out,
            "CDS Hooks discovery at {}/cds-services",
            on_bound_cds.public_url()
        );
        let _ = out.flush();
    })
    .await
    .context("serving the API")?;
    Ok(ExitCode::SUCCESS)
}
