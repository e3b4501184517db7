//! Evidence for auditors: `vigil audit export`, `vigil audit verify-package` (no store
//! needed) and `vigil model card`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use vigil_service::Vigil;

use crate::cli::CardFormat;
use crate::config::Config;
use crate::output::Out;

pub async fn export(cfg: &Config, out: &Out, release: &str, dir: &Path) -> Result<ExitCode> {
    let vigil = super::open(cfg).await?;
    let report = vigil.export_release(&cfg.user, release, dir).await?;
    out.emit(&report, || {
        format!(
            "Wrote the evidence package of release {} to {}\n  {} files, {} bytes; {} audit events with the chain proof up to head {} ({})\n  sealed by audit event {}; index sha256:{}\n  check it anywhere with: vigil audit verify-package {}",
            report.release,
            report.out.display(),
            report.files,
            report.bytes,
            report.events,
            report.head.seq,
            report.head.hash.to_hex(),
            report.export_event,
            report.index_digest.to_hex(),
            report.out.display(),
        )
    })?;
    Ok(ExitCode::SUCCESS)
}

pub fn verify_package(out: &Out, dir: &Path) -> Result<ExitCode> {
    match vigil_service::export::verify_package_dir(dir) {
        Ok(v) => {
            out.emit(&v, || {
                format!(
                    "Evidence package intact: release {}\n  {} files match their digests; {} events hash to a chain of {} links ending at head {} ({})\n  index sha256:{}\n  compare the head with `vigil audit verify` on the live system",
                    v.release,
                    v.files,
                    v.events,
                    v.links,
                    v.head.seq,
                    v.head.hash.to_hex(),
                    v.index_digest.to_hex()
                )
            })?;
            Ok(ExitCode::SUCCESS)
        }
        Err(e) if e.code == "package_invalid" => {
            out.emit(
                &serde_json::json!({ "intact": false, "message": e.message }),
                || format!("EVIDENCE PACKAGE BROKEN: {}", e.message),
            )?;
            Ok(ExitCode::from(3))
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn card(
    vigil: &Vigil,
    out: &Out,
    release: &str,
    format: CardFormat,
    file: Option<&Path>,
) -> Result<ExitCode> {
    let card = vigil.model_card(release).await?;
    let text = match format {
        CardFormat::Md => card.to_markdown(),
        CardFormat::Html => card.to_html(),
        CardFormat::Json => serde_json::to_string_pretty(&card)? + "\n",
    };
    match file {
        Some(p) => {
            std::fs::write(p, &text).with_context(|| format!("writing {}", p.display()))?;
            let unfilled = card.unfilled().count();
            out.emit(
                &serde_json::json!({ "written": p, "attributes": card.attributes.len(), "unfilled": unfilled }),
                || {
                    format!(
                        "Wrote the model card to {} ({} attributes, {} not recorded in Vigil)",
                        p.display(),
                        card.attributes.len(),
                        unfilled
                    )
                },
            )?;
        }
        None => print!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}
