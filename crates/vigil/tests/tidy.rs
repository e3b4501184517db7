//! Tidy checks on the source tree: documentation headers and layering rules that keep the
//! architecture true (see ARCHITECTURE.md).

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    vigil_test_support::repo_root()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if p.is_dir() {
            if !matches!(name, "target" | ".git" | "fuzz" | "node_modules") {
                rust_files(&p, out);
            }
        } else if name.ends_with(".rs") {
            out.push(p);
        }
    }
}

#[test]
fn every_rust_file_starts_with_a_doc_comment() {
    let mut files = Vec::new();
    rust_files(&root().join("crates"), &mut files);
    rust_files(&root().join("bench"), &mut files);
    assert!(files.len() > 20, "found only {} files", files.len());
    let missing: Vec<_> = files
        .iter()
        .filter(|f| {
            !std::fs::read_to_string(f)
                .unwrap_or_default()
                .starts_with("//!")
        })
        .map(|f| f.strip_prefix(root()).unwrap_or(f).display().to_string())
        .collect();
    assert!(
        missing.is_empty(),
        "these files do not start with a `//!` line: {missing:?}"
    );
}

/// The crates whose Cargo.toml names `dep` (in any dependency table).
fn crates_using(dep: &str) -> Vec<String> {
    let mut users = Vec::new();
    for e in std::fs::read_dir(root().join("crates")).unwrap().flatten() {
        let manifest = e.path().join("Cargo.toml");
        let Ok(text) = std::fs::read_to_string(&manifest) else {
            continue;
        };
        let uses = text.lines().any(|l| {
            let l = l.trim_start();
            l.starts_with(&format!("{dep} "))
                || l.starts_with(&format!("{dep}="))
                || l.starts_with(&format!("{dep}."))
        });
        if uses {
            users.push(e.file_name().to_string_lossy().into_owned());
        }
    }
    users.sort();
    users
}

#[test]
fn sql_lives_only_in_the_store() {
    assert_eq!(
        crates_using("sqlx"),
        ["store"],
        "sqlx must be used only by crates/store"
    );
}

#[test]
fn http_lives_only_in_the_http_crate() {
    let users = crates_using("axum");
    assert!(
        users.is_empty() || users == ["http"],
        "axum is used outside crates/http: {users:?}"
    );
}

#[test]
fn the_inner_crates_depend_on_nothing_in_the_workspace_above_them() {
    for (krate, allowed) in [
        ("domain", &[][..]),
        ("stats", &[][..]),
        ("blobs", &["vigil-domain"][..]),
    ] {
        let text =
            std::fs::read_to_string(root().join("crates").join(krate).join("Cargo.toml")).unwrap();
        for line in text.lines() {
            if let Some(name) = line.trim_start().split([' ', '=']).next()
                && name.starts_with("vigil-")
                && !allowed.contains(&name)
            {
                panic!("crates/{krate} must not depend on {name}");
            }
        }
    }
}

#[test]
fn architecture_names_every_crate() {
    let arch = std::fs::read_to_string(root().join("ARCHITECTURE.md")).unwrap();
    for e in std::fs::read_dir(root().join("crates")).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        assert!(
            arch.contains(&format!("crates/{name}")),
            "ARCHITECTURE.md does not describe crates/{name}"
        );
    }
}
