//! The evidence package of one release (`vigil audit export`): everything an auditor needs,
//! sealed into the audit chain, and the store-free check of a package
//! (`vigil audit verify-package`). The format and its checks are in
//! `vigil_domain::package`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Serialize;
use vigil_domain::package::{
    self, CHAIN_FILE, ChainHead, ChainLink, EVENTS_FILE, EXPORTED_ACTION, INDEX_FILE,
    PACKAGE_SCHEMA, PackageFile, PackageIndex, PackageVerified,
};
use vigil_domain::release::Pinned;
use vigil_domain::{AuditEvent, Digest, Release, SnapshotId, UserName};
use vigil_store::AuditFilter;

use crate::{Error, Result, Vigil, audit_event};

/// What an export wrote.
#[derive(Debug, Serialize)]
pub struct ExportReport {
    pub release: String,
    pub out: PathBuf,
    pub files: usize,
    pub bytes: u64,
    pub events: usize,
    pub head: ChainHead,
    pub export_event: i64,
    /// The SHA-256 of `index.json`.
    pub index_digest: Digest,
}

/// Files of the package before they are written, by relative path.
#[derive(Default)]
struct Content(BTreeMap<String, Vec<u8>>);

impl Content {
    fn put(&mut self, path: impl Into<String>, bytes: Vec<u8>) {
        self.0.insert(path.into(), bytes);
    }

    fn json(&mut self, path: impl Into<String>, v: &impl Serialize) -> Result<()> {
        let mut bytes = serde_json::to_vec_pretty(v).map_err(|e| Error::internal(e.to_string()))?;
        bytes.push(b'\n');
        self.put(path, bytes);
        Ok(())
    }

    fn entries(&self) -> Vec<PackageFile> {
        self.0
            .iter()
            .map(|(p, b)| PackageFile {
                path: p.clone(),
                sha256: Digest::of(b),
                size: b.len() as u64,
            })
            .collect()
    }
}

impl Vigil {
    /// Writes the evidence package of a release into `out`, which must not exist or be an
    /// empty folder. The package is written beside `out` and renamed into place, so a crash
    /// leaves no half package under that name.
    pub async fn export_release(
        &self,
        actor: &UserName,
        release_id: &str,
        out: &Path,
    ) -> Result<ExportReport> {
        if out.exists() {
            let empty = std::fs::read_dir(out)
                .map(|mut d| d.next().is_none())
                .unwrap_or(false);
            if !empty {
                return Err(Error::invalid(
                    "export_target_exists",
                    format!(
                        "{} exists and is not an empty folder: choose a new folder for the package",
                        out.display()
                    ),
                ));
            }
        }
        let release = self.get_release(release_id).await?;
        let mut content = self.package_content(&release).await?;

        // Seal the content into the chain, then take the proof up to the head.
        let index_entries = content.entries();
        let draft = PackageIndex {
            schema: PACKAGE_SCHEMA.into(),
            release: release.id,
            model: release.manifest.model.to_string(),
            exported_at: self.clock.now(),
            exported_by: actor.to_string(),
            head: ChainHead {
                seq: 0,
                hash: Digest::of(b""),
            },
            export_event: 0,
            files: index_entries,
        };
        let content_digest = draft.content_digest();
        let mut tx = self.store.begin().await?;
        let event = tx
            .append_audit(
                self.clock.now(),
                &audit_event(
                    actor,
                    EXPORTED_ACTION,
                    format!("release:{}", release.id),
                    serde_json::json!({
                        "content_digest": content_digest.to_hex(),
                        "files": draft.files.len(),
                    }),
                )?,
            )
            .await?;
        tx.commit().await?;

        let (events, links) = self.chain_proof(&release, &content).await?;
        let Some(last) = links.last().copied() else {
            return Err(Error::internal("the audit log is empty after an append"));
        };
        content.put(EVENTS_FILE, jsonl(&events)?);
        content.put(CHAIN_FILE, jsonl(&links)?);
        let index = PackageIndex {
            head: ChainHead {
                seq: last.seq,
                hash: last.hash,
            },
            export_event: event.seq,
            files: content.entries(),
            ..draft
        };
        let mut index_bytes =
            serde_json::to_vec_pretty(&index).map_err(|e| Error::internal(e.to_string()))?;
        index_bytes.push(b'\n');
        let index_digest = Digest::of(&index_bytes);
        let bytes = content.0.values().map(|b| b.len() as u64).sum::<u64>();
        let files = content.0.len();
        content.put(INDEX_FILE, index_bytes);
        write_folder(out, &content.0)?;
        Ok(ExportReport {
            release: release.id.to_string(),
            out: out.to_path_buf(),
            files,
            bytes,
            events: events.len(),
            head: index.head,
            export_event: event.seq,
            index_digest,
        })
    }

    async fn package_content(&self, release: &Release) -> Result<Content> {
        let mut c = Content::default();
        let m = &release.manifest;
        let model = self.get_model(m.model.as_str()).await?;
        let stage = self.release_stage(release).await?;
        let canonical = m
            .canonical()
            .map_err(|e| Error::internal(format!("release manifest: {e}")))?;
        c.put("release/manifest.json", canonical.into_bytes());
        c.json(
            "release/release.json",
            &serde_json::json!({
                "id": release.id,
                "model": m.model,
                "stage": stage,
                "registered_at": release.registered_at,
                "registered_by": release.registered_by,
            }),
        )?;
        c.json("release/model.json", &model)?;

        let mut pinned: Vec<(&str, &Pinned)> = vec![
            ("artifacts/model.onnx", &m.artifact),
            ("artifacts/contract.toml", &m.contract),
        ];
        if let Some(p) = &m.environment {
            pinned.push(("artifacts/environment.txt", p));
        }
        if let Some(p) = &m.hyperparameters {
            pinned.push(("artifacts/hyperparameters.json", p));
        }
        if let Some(q) = &m.equivalence {
            pinned.push(("artifacts/reference-predictions.csv", &q.reference));
        }
        for (path, p) in pinned {
            c.put(path, self.blobs.get(&p.digest)?);
        }

        // Datasets: the training snapshot and every snapshot the release was evaluated on,
        // each with its manifest and data check results.
        let evaluations = self.list_evaluations(Some(&release.id.to_string())).await?;
        let mut snapshots: BTreeSet<SnapshotId> = BTreeSet::new();
        snapshots.insert(m.training_data);
        snapshots.extend(evaluations.iter().map(|e| e.manifest.dataset));
        for s in &snapshots {
            let snap = self.get_dataset(&s.to_string()).await?;
            let dir = format!("datasets/{s}");
            c.json(format!("{dir}/snapshot.json"), &snap)?;
            for check in self.list_data_checks(&s.to_string()).await? {
                let report = self.data_check_report(&check)?;
                c.json(
                    format!("{dir}/checks/{}.json", check.id.to_hex()),
                    &serde_json::json!({ "record": check, "report": report }),
                )?;
            }
        }
        for e in &evaluations {
            let dir = format!("evaluations/{}", e.id);
            c.json(format!("{dir}/evaluation.json"), e)?;
            c.put(
                format!("{dir}/report.json"),
                self.blobs.get(&e.manifest.report.digest)?,
            );
            c.put(
                format!("{dir}/report.html"),
                self.blobs.get(&e.html.digest)?,
            );
        }

        let id = release.id.to_string();
        c.json(
            "governance/sign-offs.json",
            &self.list_sign_offs(&id).await?,
        )?;
        c.json(
            "governance/exceptions.json",
            &self.list_exceptions(&id).await?,
        )?;
        c.json(
            "governance/history.json",
            &self.history(m.model.as_str(), None).await?,
        )?;
        c.json("governance/reviews.json", &self.review_summary(&id).await?)?;
        c.json("governance/policy.json", &self.current_policy().await?)?;
        c.put(
            "model-card.md",
            self.model_card(&id).await?.to_markdown().into_bytes(),
        );
        c.put(
            "README.md",
            package_readme(
                release,
                model
                    .intended_use
                    .title
                    .as_deref()
                    .unwrap_or(model.name.as_str()),
            )
            .into_bytes(),
        );
        Ok(c)
    }

    /// The events that concern a release — its own, its model's, its datasets' and
    /// evaluations', and any whose payload names it — and the links from the first of them
    /// to the head.
    async fn chain_proof(
        &self,
        release: &Release,
        content: &Content,
    ) -> Result<(Vec<AuditEvent>, Vec<ChainLink>)> {
        let id = release.id.to_string();
        let mut subjects: BTreeSet<String> = BTreeSet::new();
        subjects.insert(format!("release:{}", release.id));
        subjects.insert(format!("model:{}", release.manifest.model));
        for path in content.0.keys() {
            if let Some((snap, _)) = path
                .strip_prefix("datasets/")
                .and_then(|r| r.split_once('/'))
            {
                subjects.insert(format!("dataset:{snap}"));
            }
            if let Some((ev, _)) = path
                .strip_prefix("evaluations/")
                .and_then(|r| r.split_once('/'))
            {
                subjects.insert(format!("evaluation:{ev}"));
            }
        }
        let mut events = Vec::new();
        let mut links = Vec::new();
        let mut after = 0;
        loop {
            let page = self
                .store
                .list_audit(&AuditFilter {
                    after_seq: after,
                    limit: 10_000,
                    ..Default::default()
                })
                .await?;
            let Some(last) = page.last() else { break };
            after = last.seq;
            for e in page {
                let concerns = subjects.contains(&e.subject) || e.payload.contains(&id);
                if concerns || !links.is_empty() {
                    links.push(ChainLink {
                        seq: e.seq,
                        prev_hash: e.prev_hash,
                        hash: e.hash,
                    });
                }
                if concerns {
                    events.push(e);
                }
            }
        }
        Ok((events, links))
    }
}

/// Checks a package folder on any machine: no store, no home.
pub fn verify_package_dir(dir: &Path) -> Result<PackageVerified> {
    let mut files = BTreeMap::new();
    read_tree(dir, dir, &mut files)?;
    package::verify_package(&files).map_err(|e| {
        Error::invalid(
            "package_invalid",
            format!("the package {} does not verify: {e}", dir.display()),
        )
    })
}

fn read_tree(root: &Path, dir: &Path, files: &mut BTreeMap<String, Vec<u8>>) -> Result<()> {
    let unreadable = |p: &Path, e: std::io::Error| {
        Error::invalid(
            "package_unreadable",
            format!("cannot read {}: {e}", p.display()),
        )
    };
    let entries = std::fs::read_dir(dir).map_err(|e| unreadable(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| unreadable(dir, e))?;
        let path = entry.path();
        let kind = entry.file_type().map_err(|e| unreadable(&path, e))?;
        if kind.is_dir() {
            read_tree(root, &path, files)?;
        } else {
            let rel = path
                .strip_prefix(root)
                .map_err(|_| Error::internal("a package file outside its folder"))?
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            files.insert(rel, std::fs::read(&path).map_err(|e| unreadable(&path, e))?);
        }
    }
    Ok(())
}

fn jsonl<T: Serialize>(items: &[T]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    for i in items {
        serde_json::to_writer(&mut out, i).map_err(|e| Error::internal(e.to_string()))?;
        out.push(b'\n');
    }
    Ok(out)
}

/// Writes every file into a sibling temporary folder, syncs it, and renames it to `out`.
fn write_folder(out: &Path, files: &BTreeMap<String, Vec<u8>>) -> Result<()> {
    let fail = |p: &Path, e: std::io::Error| {
        Error::invalid(
            "export_unwritable",
            format!("cannot write {}: {e}", p.display()),
        )
    };
    let parent = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| fail(parent, e))?;
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "package".into());
    let tmp = parent.join(format!(".{name}.partial-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    for (rel, bytes) in files {
        if !package::safe_path(rel) {
            return Err(Error::internal(format!("unsafe package path {rel}")));
        }
        let p = tmp.join(rel);
        if let Some(d) = p.parent() {
            std::fs::create_dir_all(d).map_err(|e| fail(d, e))?;
        }
        std::fs::write(&p, bytes).map_err(|e| fail(&p, e))?;
        std::fs::File::open(&p)
            .and_then(|f| f.sync_all())
            .map_err(|e| fail(&p, e))?;
    }
    if out.exists() {
        std::fs::remove_dir(out).map_err(|e| fail(out, e))?;
    }
    std::fs::rename(&tmp, out).map_err(|e| fail(out, e))?;
    if let Ok(d) = std::fs::File::open(parent) {
        let _ = d.sync_all();
    }
    Ok(())
}

fn package_readme(release: &Release, title: &str) -> String {
    format!(
        "# Evidence package: {title}\n\n\
         Release `{id}` of model `{model}`.\n\n\
         | Folder | What it holds |\n|---|---|\n\
         | `release/` | The release manifest (its SHA-256 is the release id), the release record and the model with its intended use |\n\
         | `artifacts/` | The pinned artifacts: the ONNX model, the feature contract and, when pinned, the environment, hyperparameters and reference predictions |\n\
         | `datasets/` | The manifest of every dataset snapshot the release rests on, with its data check results |\n\
         | `evaluations/` | Every evaluation of the release: its record, the JSON report and the HTML report |\n\
         | `governance/` | Sign-offs, exceptions, the model's promotion history, case reviews and the gate policy in force |\n\
         | `audit/` | `events.jsonl`: the audit events that concern the release; `chain.jsonl`: the hash links from the first of them to the log's head |\n\
         | `model-card.md` | The model card: HTI-1 source attributes filled from the registry, and those it cannot fill |\n\
         | `index.json` | Every other file with its SHA-256 and size, the log head and the export event |\n\n\
         ## Verifying\n\n\
         `vigil audit verify-package DIR` checks, without any store: every file against its digest; that no file was added;\n\
         that the manifest hashes to the release id; that the events hash to their links and the links form one chain up to\n\
         the head; and that the index is the one sealed by the export event in that chain. Compare the head it prints with\n\
         the head that `vigil audit verify` prints on the live system: equal heads (or a later head whose chain contains\n\
         this one) prove that the events are the log's own.\n",
        id = release.id,
        model = release.manifest.model,
    )
}
