//! Evidence packages: what `vigil audit export` writes for one release, and the checks that
//! `vigil audit verify-package` runs on another machine with no store.
//!
//! A package is a folder. `index.json` lists every other file with its SHA-256 and size.
//! The files under `audit/` carry the chain proof: `events.jsonl`, the full audit events
//! that concern the release, and `chain.jsonl`, the `(seq, prev_hash, hash)` links of every
//! event from the first of those to the log's head at export time. The export itself is an
//! audit event (`release.exported`) whose payload holds the digest of the index's content
//! entries, so that:
//!
//! - changing any file breaks its digest in the index;
//! - rewriting the index to match breaks the content digest recorded in the chain;
//! - changing an event breaks its hash, and removing or reordering one breaks a link;
//! - forging a whole chain yields a head that differs from the live log's, which an auditor
//!   compares with `vigil audit verify` on the system (or with a head published earlier).
//!
//! Everything here is pure: the caller reads the files and passes their bytes in.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::audit::{AuditEvent, ChainBreak};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::ids::ReleaseId;
use crate::time::Timestamp;

pub const PACKAGE_SCHEMA: &str = "vigil.evidence-package/v1";
/// The file that lists the others.
pub const INDEX_FILE: &str = "index.json";
pub const EVENTS_FILE: &str = "audit/events.jsonl";
pub const CHAIN_FILE: &str = "audit/chain.jsonl";
/// The audit action that seals a package's content into the chain.
pub const EXPORTED_ACTION: &str = "release.exported";

/// One file of the package.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageFile {
    /// Relative, `/`-separated, no `..`.
    pub path: String,
    pub sha256: Digest,
    pub size: u64,
}

/// The log's head when the package was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainHead {
    pub seq: i64,
    pub hash: Digest,
}

/// `index.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PackageIndex {
    pub schema: String,
    pub release: ReleaseId,
    pub model: String,
    pub exported_at: Timestamp,
    pub exported_by: String,
    pub head: ChainHead,
    /// The sequence number of the `release.exported` event that seals the content.
    pub export_event: i64,
    /// Every file but this index, sorted by path.
    pub files: Vec<PackageFile>,
}

/// One link of the chain proof.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainLink {
    pub seq: i64,
    pub prev_hash: Digest,
    pub hash: Digest,
}

impl PackageIndex {
    /// The files whose digests the export event seals: everything outside `audit/`.
    pub fn content_files(&self) -> impl Iterator<Item = &PackageFile> {
        self.files.iter().filter(|f| !f.path.starts_with("audit/"))
    }

    /// The digest of the content entries (path, digest and size of each, in path order), as
    /// recorded in the export event's payload under `content_digest`.
    pub fn content_digest(&self) -> Digest {
        let mut text = String::new();
        for f in self.content_files() {
            text.push_str(&f.path);
            text.push('\t');
            text.push_str(&f.sha256.to_hex());
            text.push('\t');
            text.push_str(&f.size.to_string());
            text.push('\n');
        }
        Digest::of(text.as_bytes())
    }
}

/// What a successful verification established.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PackageVerified {
    pub release: ReleaseId,
    pub files: usize,
    pub events: usize,
    pub links: usize,
    pub head: ChainHead,
    /// The SHA-256 of `index.json`: one number that names this exact package.
    pub index_digest: Digest,
}

/// Checks a package. `files` maps each relative path found in the folder (index included)
/// to its bytes. Returns the first problem found, naming the file or event.
pub fn verify_package(files: &BTreeMap<String, Vec<u8>>) -> Result<PackageVerified> {
    let index_bytes = files
        .get(INDEX_FILE)
        .ok_or_else(|| Error::invalid(format!("the package has no {INDEX_FILE}")))?;
    let index: PackageIndex = serde_json::from_slice(index_bytes)
        .map_err(|e| Error::invalid(format!("{INDEX_FILE} is not a package index: {e}")))?;
    if index.schema != PACKAGE_SCHEMA {
        return Err(Error::invalid(format!(
            "{INDEX_FILE}: schema `{}` is not `{PACKAGE_SCHEMA}`",
            index.schema
        )));
    }

    // 1. Every listed file is there with its digest and size; nothing unlisted.
    let mut listed = BTreeSet::new();
    for f in &index.files {
        if !safe_path(&f.path) || f.path == INDEX_FILE {
            return Err(Error::invalid(format!(
                "{INDEX_FILE} lists an unsafe path `{}`",
                f.path
            )));
        }
        if !listed.insert(f.path.as_str()) {
            return Err(Error::invalid(format!(
                "{INDEX_FILE} lists `{}` twice",
                f.path
            )));
        }
        let bytes = files
            .get(&f.path)
            .ok_or_else(|| Error::invalid(format!("{} is listed but missing", f.path)))?;
        if bytes.len() as u64 != f.size || Digest::of(bytes) != f.sha256 {
            return Err(Error::invalid(format!(
                "{} was changed: its content no longer matches the digest in {INDEX_FILE}",
                f.path
            )));
        }
    }
    if let Some(extra) = files
        .keys()
        .find(|p| p.as_str() != INDEX_FILE && !listed.contains(p.as_str()))
    {
        return Err(Error::invalid(format!(
            "{extra} is not listed in {INDEX_FILE}: it was added after the export"
        )));
    }

    // 2. The release manifest is the release: its SHA-256 is the release id.
    let manifest = files
        .get("release/manifest.json")
        .ok_or_else(|| Error::invalid("the package has no release/manifest.json".to_string()))?;
    if Digest::of(manifest) != index.release.digest() {
        return Err(Error::invalid(format!(
            "release/manifest.json does not hash to release {}",
            index.release
        )));
    }

    // 3. The chain proof: contiguous links ending at the head.
    let links: Vec<ChainLink> = parse_lines(files, CHAIN_FILE)?;
    let Some(first) = links.first() else {
        return Err(Error::invalid(format!("{CHAIN_FILE} is empty")));
    };
    let mut by_seq = BTreeMap::new();
    let mut prev: Option<&ChainLink> = None;
    for l in &links {
        if let Some(p) = prev {
            if l.seq != p.seq + 1 {
                return Err(Error::invalid(format!(
                    "{CHAIN_FILE}: event {} is missing (the next link is {})",
                    p.seq + 1,
                    l.seq
                )));
            }
            if l.prev_hash != p.hash {
                return Err(Error::invalid(
                    ChainBreak::BrokenLink { seq: l.seq }.to_string(),
                ));
            }
        }
        by_seq.insert(l.seq, l);
        prev = Some(l);
    }
    let last = links[links.len() - 1];
    if last.seq != index.head.seq || last.hash != index.head.hash {
        return Err(Error::invalid(format!(
            "{CHAIN_FILE} ends at event {} but {INDEX_FILE} names head {}",
            last.seq, index.head.seq
        )));
    }

    // 4. Every included event hashes to its link.
    let events: Vec<AuditEvent> = parse_lines(files, EVENTS_FILE)?;
    let mut export_event = None;
    for e in &events {
        let link = by_seq.get(&e.seq).ok_or_else(|| {
            Error::invalid(format!(
                "{EVENTS_FILE}: event {} lies outside the chain proof (events {}..={})",
                e.seq, first.seq, last.seq
            ))
        })?;
        if e.computed_hash() != link.hash || e.hash != link.hash || e.prev_hash != link.prev_hash {
            return Err(Error::invalid(
                ChainBreak::HashMismatch { seq: e.seq }.to_string(),
            ));
        }
        if e.seq == index.export_event {
            export_event = Some(e);
        }
    }

    // 5. The export event seals this content for this release.
    let ev = export_event.ok_or_else(|| {
        Error::invalid(format!(
            "{EVENTS_FILE} does not hold the export event {}",
            index.export_event
        ))
    })?;
    if ev.action != EXPORTED_ACTION || ev.subject != format!("release:{}", index.release) {
        return Err(Error::invalid(format!(
            "event {} is not the export of release {}",
            ev.seq, index.release
        )));
    }
    let payload: serde_json::Value = serde_json::from_str(&ev.payload)
        .map_err(|e| Error::invalid(format!("event {}: payload: {e}", ev.seq)))?;
    let sealed = payload
        .get("content_digest")
        .and_then(|v| v.as_str())
        .and_then(|s| Digest::parse(s).ok());
    if sealed != Some(index.content_digest()) {
        return Err(Error::invalid(format!(
            "{INDEX_FILE} does not match the content sealed by event {}: the index was rewritten",
            ev.seq
        )));
    }

    Ok(PackageVerified {
        release: index.release,
        files: index.files.len(),
        events: events.len(),
        links: links.len(),
        head: index.head,
        index_digest: Digest::of(index_bytes),
    })
}

fn parse_lines<T: serde::de::DeserializeOwned>(
    files: &BTreeMap<String, Vec<u8>>,
    path: &str,
) -> Result<Vec<T>> {
    let bytes = files
        .get(path)
        .ok_or_else(|| Error::invalid(format!("the package has no {path}")))?;
    let text = std::str::from_utf8(bytes)
        .map_err(|_| Error::invalid(format!("{path} is not UTF-8 text")))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l)
                .map_err(|e| Error::invalid(format!("{path}, line {}: {e}", i + 1)))
        })
        .collect()
}

/// A relative path without `..`, absolute roots or backslashes.
pub fn safe_path(p: &str) -> bool {
    !p.is_empty()
        && !p.starts_with('/')
        && !p.contains('\\')
        && p.split('/').all(|c| !c.is_empty() && c != "." && c != "..")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{AuditEvent, NewAuditEvent};
    use crate::ids::UserName;

    fn package() -> BTreeMap<String, Vec<u8>> {
        let manifest = br#"{"schema":"vigil.release/v1"}"#.to_vec();
        let release = ReleaseId::from_digest(Digest::of(&manifest));
        let mut files = BTreeMap::new();
        files.insert("release/manifest.json".to_string(), manifest);
        files.insert("governance/sign-offs.json".to_string(), b"[]".to_vec());
        let mut index = PackageIndex {
            schema: PACKAGE_SCHEMA.into(),
            release,
            model: "m".into(),
            exported_at: Timestamp::from_micros(0),
            exported_by: "auditor".into(),
            head: ChainHead {
                seq: 0,
                hash: Digest::of(b""),
            },
            export_event: 3,
            files: vec![],
        };
        let entries = |files: &BTreeMap<String, Vec<u8>>| -> Vec<PackageFile> {
            files
                .iter()
                .map(|(p, b)| PackageFile {
                    path: p.clone(),
                    sha256: Digest::of(b),
                    size: b.len() as u64,
                })
                .collect()
        };
        index.files = entries(&files);
        let who = UserName::parse("auditor").unwrap();
        let e1 = AuditEvent::next(
            None,
            Timestamp::from_micros(1),
            &NewAuditEvent::new(
                &who,
                "release.registered",
                format!("release:{release}"),
                serde_json::json!({}),
            )
            .unwrap(),
        );
        let e2 = AuditEvent::next(
            Some((e1.seq, e1.hash)),
            Timestamp::from_micros(2),
            &NewAuditEvent::new(&who, "user.added", "user:x", serde_json::json!({})).unwrap(),
        );
        let e3 = AuditEvent::next(
            Some((e2.seq, e2.hash)),
            Timestamp::from_micros(3),
            &NewAuditEvent::new(
                &who,
                EXPORTED_ACTION,
                format!("release:{release}"),
                serde_json::json!({ "content_digest": index.content_digest().to_hex() }),
            )
            .unwrap(),
        );
        let line = |v: String| v + "\n";
        let events: String = [&e1, &e3]
            .iter()
            .map(|e| line(serde_json::to_string(e).unwrap()))
            .collect();
        let chain: String = [&e1, &e2, &e3]
            .iter()
            .map(|e| {
                line(
                    serde_json::to_string(&ChainLink {
                        seq: e.seq,
                        prev_hash: e.prev_hash,
                        hash: e.hash,
                    })
                    .unwrap(),
                )
            })
            .collect();
        files.insert(EVENTS_FILE.to_string(), events.into_bytes());
        files.insert(CHAIN_FILE.to_string(), chain.into_bytes());
        index.files = entries(&files);
        index.head = ChainHead {
            seq: e3.seq,
            hash: e3.hash,
        };
        files.insert(
            INDEX_FILE.to_string(),
            serde_json::to_vec_pretty(&index).unwrap(),
        );
        files
    }

    fn reindex(files: &mut BTreeMap<String, Vec<u8>>) {
        let mut index: PackageIndex = serde_json::from_slice(&files[INDEX_FILE]).unwrap();
        for f in &mut index.files {
            f.sha256 = Digest::of(&files[&f.path]);
            f.size = files[&f.path].len() as u64;
        }
        files.insert(INDEX_FILE.into(), serde_json::to_vec(&index).unwrap());
    }

    #[test]
    fn an_intact_package_verifies() {
        let v = verify_package(&package()).unwrap();
        assert_eq!((v.events, v.links, v.head.seq), (2, 3, 3));
    }

    #[test]
    fn a_changed_file_is_named() {
        let mut p = package();
        p.insert("governance/sign-offs.json".into(), b"[{}]".to_vec());
        let e = verify_package(&p).unwrap_err().to_string();
        assert!(e.contains("governance/sign-offs.json was changed"), "{e}");
    }

    #[test]
    fn a_rewritten_index_breaks_the_seal() {
        let mut p = package();
        p.insert("governance/sign-offs.json".into(), b"[{}]".to_vec());
        reindex(&mut p);
        let e = verify_package(&p).unwrap_err().to_string();
        assert!(e.contains("index was rewritten"), "{e}");
    }

    #[test]
    fn an_added_file_an_edited_event_and_a_cut_chain_are_refused() {
        let mut p = package();
        p.insert("extra.txt".into(), b"x".to_vec());
        assert!(
            verify_package(&p)
                .unwrap_err()
                .to_string()
                .contains("extra.txt")
        );

        let mut p = package();
        let ev = String::from_utf8(p[EVENTS_FILE].clone()).unwrap();
        p.insert(
            EVENTS_FILE.into(),
            ev.replace("release.registered", "release.retired")
                .into_bytes(),
        );
        reindex(&mut p);
        assert!(
            verify_package(&p)
                .unwrap_err()
                .to_string()
                .contains("event 1")
        );

        let mut p = package();
        let chain = String::from_utf8(p[CHAIN_FILE].clone()).unwrap();
        let cut: Vec<&str> = chain.lines().collect();
        p.insert(
            CHAIN_FILE.into(),
            format!("{}\n{}\n", cut[0], cut[2]).into_bytes(),
        );
        reindex(&mut p);
        assert!(
            verify_package(&p)
                .unwrap_err()
                .to_string()
                .contains("event 2 is missing")
        );

        let mut p = package();
        p.insert("release/manifest.json".into(), b"{}".to_vec());
        reindex(&mut p);
        assert!(
            verify_package(&p)
                .unwrap_err()
                .to_string()
                .contains("does not hash")
        );
    }

    #[test]
    fn unsafe_paths_are_refused() {
        for p in ["../x", "/etc/passwd", "a//b", "a/./b", "a\\b", ""] {
            assert!(!safe_path(p), "{p}");
        }
        assert!(safe_path("evaluations/abc/report.html"));
    }
}
