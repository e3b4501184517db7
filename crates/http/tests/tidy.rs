//! Layering: only this crate may depend on the HTTP framework.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[test]
fn axum_appears_only_in_the_http_crate() {
    let crates = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for entry in std::fs::read_dir(&crates).unwrap() {
        let dir = entry.unwrap().path();
        let manifest = dir.join("Cargo.toml");
        let Ok(text) = std::fs::read_to_string(&manifest) else {
            continue;
        };
        let uses_axum = text.lines().any(|l| l.trim_start().starts_with("axum"));
        if dir.file_name().and_then(|n| n.to_str()) != Some("http") {
            assert!(
                !uses_axum,
                "{} depends on axum: only crates/http may",
                manifest.display()
            );
        }
    }
}
