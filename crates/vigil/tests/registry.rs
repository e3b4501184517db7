//! The registry through the real binary, on SQLite and PostgreSQL: registration, idempotence,
//! and bad input that must fail clearly and write nothing.

#![allow(clippy::unwrap_used)]

mod support;

use support::{Home, both_backends, example, path, write};

both_backends! {
    async fn registration_is_content_addressed_and_idempotent(db) {
        let h = Home::init(db);
        let snapshot = h.register_example();
        let args = h.register_release_args(&snapshot, "first");
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let first = h.json(&args);
        let id = first["id"].as_str().unwrap().to_owned();
        assert_eq!(first["created"], true);
        let events = h.audit_count();

        // The same bytes again: the same id, nothing written.
        let again = h.json(&args);
        assert_eq!(again["id"].as_str(), Some(id.as_str()));
        assert_eq!(again["created"], false);
        let ds_again = h.json(&["dataset", "register", path(&example("deterioration/train.csv")), "--name", "train",
            "--manifest", path(&example("deterioration/dataset-manifest.toml"))]);
        assert_eq!(ds_again["created"], false);
        assert_eq!(h.audit_count(), events);

        // A prefix finds it; show re-verifies every artifact.
        let shown = h.ok(&["release", "show", &id[..10]]);
        assert!(shown.contains(&id) && shown.contains("artifacts verified"), "{shown}");
        let listed = h.json(&["release", "list", "--model", "deterioration-risk"]);
        assert_eq!(listed.as_array().unwrap().len(), 1);
        let ds = h.json(&["dataset", "show", &snapshot[..8]]);
        assert_eq!(ds["snapshot"]["rows"], 20000);
        assert_eq!(ds["snapshot"]["manifest"]["sites"].as_array().map(Vec::len), Some(4));

        // Any changed byte is a new release.
        let args2 = h.register_release_args(&snapshot, "second");
        let args2: Vec<&str> = args2.iter().map(String::as_str).collect();
        let second = h.json(&args2);
        assert_ne!(second["id"].as_str(), Some(id.as_str()));
        assert!(h.ok(&["audit", "verify"]).contains("intact"));
    }

    async fn bad_input_fails_clearly_and_writes_nothing(db) {
        let h = Home::init(db);
        let snapshot = h.register_example();
        let dir = h.dir().to_path_buf();
        let contract = std::fs::read_to_string(example("deterioration/contract.toml")).unwrap();
        let release = |contract_path: &str, model: &str, data: &str| -> Vec<String> {
            let mut a = h.register_release_args(data, "x");
            a[3] = model.into();
            a[7] = contract_path.into();
            a
        };
        let bad_contract = |name: &str, from: &str, to: &str| -> String {
            assert!(contract.contains(from), "{from}");
            path(&write(&dir, name, &contract.replacen(from, to, 1))).to_owned()
        };
        let good = path(&example("deterioration/contract.toml")).to_owned();
        let cases: Vec<(Vec<String>, &str)> = vec![
            (vec!["dataset".into(), "register".into(), "/nonexistent/cohort.csv".into(), "--name".into(), "x".into()], "/nonexistent/cohort.csv"),
            (vec!["dataset".into(), "register".into(), path(&example("deterioration/train.csv")).into(), "--name".into(), "x".into(), "--manifest".into(), "/nonexistent/m.toml".into()], "dataset manifest"),
            (release(&bad_contract("unit.toml", "unit = \"/min\"", "unit = \"beats a minute\""), "deterioration-risk", &snapshot), "beats a minute"),
            (release(&bad_contract("type.toml", "type = \"float\"", "type = \"decimal\""), "deterioration-risk", &snapshot), "decimal"),
            (release(&bad_contract("dup.toml", "name = \"resp_rate\"", "name = \"heart_rate\""), "deterioration-risk", &snapshot), "declared twice"),
            (release(&bad_contract("range.toml", "range = [20, 250]", "range = [250, 20]"), "deterioration-risk", &snapshot), "greater than its maximum"),
            (release(&good, "sepsis-risk", &snapshot), "no model named `sepsis-risk`"),
            (release(&good, "deterioration-risk", "deadbeef"), "no dataset snapshot with id `deadbeef`"),
            (release(&good, "deterioration-risk", "xyz"), "not an id"),
            (release("/nonexistent/contract.toml", "deterioration-risk", &snapshot), "/nonexistent/contract.toml"),
        ];
        let before = h.audit_count();
        let releases_before = h.json(&["release", "list"]).as_array().unwrap().len();
        for (args, needle) in cases {
            let a: Vec<&str> = args.iter().map(String::as_str).collect();
            let (err, code) = h.fails(&a);
            assert_eq!(code, 1, "{a:?}: {err}");
            assert!(err.contains(needle), "expected `{needle}` in the error of {a:?}:\n{err}");
        }
        assert_eq!(h.audit_count(), before, "a failed command wrote to the audit log");
        assert_eq!(h.json(&["release", "list"]).as_array().unwrap().len(), releases_before);
        assert_eq!(h.json(&["dataset", "list"]).as_array().unwrap().len(), 1);
    }

    async fn an_ambiguous_prefix_is_refused(db) {
        let h = Home::init(db);
        // Register small datasets until two snapshot ids share their first four characters.
        let mut seen = std::collections::HashMap::new();
        let mut pair = None;
        for i in 0..2000 {
            let f = write(h.dir(), &format!("d{i}.csv"), &format!("a,b\n{i},1\n"));
            let id = h.json(&["dataset", "register", path(&f), "--name", "tiny"])["id"].as_str().unwrap().to_owned();
            if let Some(other) = seen.insert(id[..4].to_owned(), id.clone()) {
                pair = Some((other, id));
                break;
            }
        }
        let (a, b) = pair.expect("a shared prefix within 2000 snapshots");
        let (err, _) = h.fails(&["dataset", "show", &a[..4]]);
        assert!(err.contains("more than one"), "{err}");
        assert!(h.ok(&["dataset", "show", &b[..12]]).contains(&b));
    }

    async fn a_corrupted_artifact_is_refused_on_read(db) {
        let h = Home::init(db);
        let snapshot = h.register_example();
        let args = h.register_release_args(&snapshot, "first");
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let r = h.json(&args);
        let digest = r["manifest"]["artifact"]["digest"].as_str().unwrap().to_owned();
        let blob = h.dir().join("artifacts/sha256").join(&digest[..2]).join(&digest[2..]);
        let mut bytes = std::fs::read(&blob).unwrap();
        bytes[10] ^= 0xff;
        std::fs::write(&blob, bytes).unwrap();
        let (err, _) = h.fails(&["release", "show", r["id"].as_str().unwrap()]);
        assert!(err.contains("corrupt") && err.contains(&digest), "{err}");
    }

    async fn an_unservable_artifact_is_refused_at_registration(db) {
        let h = Home::init(db);
        let snapshot = h.register_example();
        let junk = write(h.dir(), "model.onnx", "this is not a model");
        let mut args = h.register_release_args(&snapshot, "x");
        args[5] = path(&junk).into();
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let (err, _) = h.fails(&a);
        assert!(err.contains("cannot be served"), "{err}");
    }
}

#[test]
fn commands_before_init_say_how_to_start() {
    let dir = vigil_test_support::tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(["--home", path(dir.path()), "dataset", "list"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("vigil init"));
}

#[test]
fn quickstart_runs_on_the_embedded_default_and_reuses_its_home() {
    let dir = vigil_test_support::tempfile::tempdir().unwrap();
    let home = dir.path().join("demo");
    let run = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_vigil"))
            .args(["quickstart", "--no-serve", "--demo-home", path(&home)])
            .env_remove("VIGIL_HOME")
            .env_remove("VIGIL_DATABASE_URL")
            .output()
            .unwrap()
    };
    let first = run();
    let text = String::from_utf8_lossy(&first.stdout).into_owned();
    assert!(
        first.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(
        text.contains("registered release")
            && text.contains("equivalence: the artifact reproduces scikit-learn's probabilities on 500 reference rows")
            && text.contains("audit chain intact"),
        "{text}"
    );
    let second = run();
    let again = String::from_utf8_lossy(&second.stdout).into_owned();
    assert!(second.status.success(), "{again}");
    assert!(
        again.contains("reused the home") && again.contains("found release"),
        "{again}"
    );
    // The same release id both times: content-addressed.
    let id = |t: &str| {
        t.lines()
            .find(|l| l.contains("release "))
            .map(|l| l.split_whitespace().nth(2).unwrap_or("").to_owned())
    };
    assert_eq!(id(&text), id(&again));
}
