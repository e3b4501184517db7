//! CDS Hooks commands: registering clients (EHRs), minting a token to try the service, and
//! the summary of clinician feedback.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::Subcommand;
use vigil_domain::Timestamp;
use vigil_service::cds::ClientKeys;

use super::{open, read_text};
use crate::config::Config;
use crate::output::{Out, table};

#[derive(Subcommand, Debug)]
pub enum CdsClientCmd {
    /// Register an EHR by its issuer, with its public keys (a JWK Set file) or their URL
    Add {
        #[arg(long)]
        iss: String,
        /// A JWK Set with the client's public keys (EC P-384/P-256 or RSA)
        #[arg(
            long,
            value_name = "FILE",
            conflicts_with = "jku",
            required_unless_present = "jku"
        )]
        jwks: Option<PathBuf>,
        /// The URL the client publishes its JWK Set at; tokens may name only this jku
        #[arg(long, value_name = "URL")]
        jku: Option<String>,
    },
    /// List registered clients
    List {
        /// Include removed clients
        #[arg(long)]
        all: bool,
    },
    /// Remove a client: its tokens are refused from now on
    Remove {
        #[arg(long)]
        iss: String,
    },
    /// Mint a token for ISS with a key kept in the home, to try the service out
    Token {
        #[arg(long)]
        iss: String,
        /// The CDS service the token is for (its URL is the token's aud); without it, discovery
        #[arg(long)]
        service: Option<String>,
        /// Register the local key for ISS first (replaces its registered keys)
        #[arg(long)]
        register: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum FeedbackCmd {
    /// Acceptance and override rates and the override reasons, by period
    Summary {
        model: String,
        /// day, week or month
        #[arg(long, default_value = "week")]
        by: String,
        #[arg(long, value_name = "TIME")]
        since: Option<String>,
    },
}

pub async fn client(cfg: &Config, out: &Out, cmd: CdsClientCmd) -> Result<ExitCode> {
    let vigil = open(cfg).await?;
    match cmd {
        CdsClientCmd::Add { iss, jwks, jku } => {
            let keys = match (jwks, jku) {
                (Some(f), None) => ClientKeys::Jwks(read_text(&f, "JWK Set")?),
                (None, Some(u)) => ClientKeys::Jku(u),
                _ => bail!("give either --jwks FILE or --jku URL"),
            };
            let c = vigil.add_cds_client(&cfg.user, &iss, keys).await?;
            out.emit(&c, || match &c.jku {
                Some(u) => format!("Registered CDS client {} (keys from {u})", c.iss),
                None => format!(
                    "Registered CDS client {} (keys {})",
                    c.iss,
                    c.kids.join(", ")
                ),
            })?;
        }
        CdsClientCmd::List { all } => {
            let cs = vigil.list_cds_clients(all).await?;
            out.emit(&cs, || {
                let rows: Vec<Vec<String>> = cs
                    .iter()
                    .map(|c| {
                        vec![
                            c.iss.clone(),
                            c.jku.clone().unwrap_or_else(|| c.kids.join(",")),
                            format!("{} by {}", c.added_at, c.added_by),
                            c.removed_at.map_or("-".into(), |t| format!("removed {t}")),
                        ]
                    })
                    .collect();
                table(&["ISS", "KEYS", "ADDED", "STATE"], &rows)
            })?;
        }
        CdsClientCmd::Remove { iss } => {
            vigil.remove_cds_client(&cfg.user, &iss).await?;
            out.emit(&serde_json::json!({"removed": iss}), || {
                format!("Removed CDS client {iss}: its tokens are refused from now on")
            })?;
        }
        CdsClientCmd::Token {
            iss,
            service,
            register,
        } => {
            let base = cfg
                .public_url
                .clone()
                .unwrap_or_else(|| "http://127.0.0.1:8080".into());
            let aud = match &service {
                Some(s) => format!("{base}/cds-services/{s}"),
                None => format!("{base}/cds-services"),
            };
            let token = vigil
                .mint_cds_token(&cfg.user, &iss, &aud, register)
                .await?;
            out.emit(&serde_json::json!({"token": token, "aud": aud}), || {
                token.clone()
            })?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn feedback(cfg: &Config, out: &Out, cmd: FeedbackCmd) -> Result<ExitCode> {
    let vigil = open(cfg).await?;
    match cmd {
        FeedbackCmd::Summary { model, by, since } => {
            let since = since.map(|s| Timestamp::parse(&s)).transpose()?;
            let s = vigil.feedback_summary(&model, &by, since).await?;
            out.emit(&s, || {
                let pct = |r: Option<f64>| r.map_or("-".into(), |r| format!("{:.0}%", r * 100.0));
                let mut rows: Vec<Vec<String>> = s
                    .periods
                    .iter()
                    .chain(std::iter::once(&s.total))
                    .map(|p| {
                        vec![
                            p.period.clone(),
                            p.cards_with_feedback.to_string(),
                            pct(p.acceptance_rate),
                            pct(p.override_rate),
                            p.reasons
                                .iter()
                                .map(|(r, n)| format!("{r} ({n})"))
                                .collect::<Vec<_>>()
                                .join("; "),
                        ]
                    })
                    .collect();
                if rows.len() == 1 {
                    rows.clear();
                }
                let mut t = format!("Feedback on {} cards, by {}\n", s.model, s.by);
                t += &table(
                    &[
                        "PERIOD",
                        "FEEDBACK",
                        "ACCEPTED",
                        "OVERRIDDEN",
                        "OVERRIDE REASONS",
                    ],
                    &rows,
                );
                if s.unlinked > 0 {
                    t += &format!(
                        "\n{} entries name a card this service did not show",
                        s.unlinked
                    );
                }
                t
            })?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
