//! The audit chain through the real binary: tampering of every kind is found and named, on
//! SQLite and PostgreSQL, and concurrent writers in separate processes never fork the chain.

#![allow(clippy::unwrap_used)]

mod support;

use std::process::{Command, Stdio};

use support::{Home, both_backends, path, write};

/// A home with a few events: init, then five dataset registrations.
fn home_with_events(db: vigil_test_support::TestDb) -> Home {
    let h = Home::init(db);
    let base = h.audit_count();
    for i in 0..5 {
        let f = write(h.dir(), &format!("d{i}.csv"), &format!("x,y\n{i},0\n"));
        h.ok(&["dataset", "register", path(&f), "--name", &format!("d{i}")]);
    }
    assert_eq!(h.audit_count(), base + 5);
    assert!(
        h.ok(&["audit", "verify"])
            .contains(&format!("{} events verified", base + 5))
    );
    h
}

fn assert_broken_at(h: &Home, seq: i64) {
    let (out, code) = h.fails(&["audit", "verify"]);
    assert_eq!(code, 3, "{out}");
    assert!(
        out.contains(&format!("BROKEN at event {seq}")),
        "expected a break at {seq}:\n{out}"
    );
    let json = h.command(&["audit", "verify", "--json"]).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["report"]["outcome"]["status"], "broken");
    assert_eq!(v["report"]["verified"], seq - 1);
}

both_backends! {
    async fn the_database_itself_refuses_changes(db) {
        let h = home_with_events(db);
        let sql = |s: &str| match h.db.kind {
            vigil_store::BackendKind::Sqlite => Command::new("sqlite3").arg(h.dir().join("vigil.db")).arg(s).output().unwrap(),
            vigil_store::BackendKind::Postgres => Command::new("psql").args([h.db.url.as_str(), "-v", "ON_ERROR_STOP=1", "-c", s]).output().unwrap(),
        };
        for s in ["UPDATE audit_events SET actor = 'mallory' WHERE seq = 2", "DELETE FROM audit_events WHERE seq = 2"] {
            let out = sql(s);
            assert!(!out.status.success(), "{s} was allowed");
            assert!(String::from_utf8_lossy(&out.stderr).contains("append-only"));
        }
        assert!(h.ok(&["audit", "verify"]).contains("intact"));
    }

    async fn an_edited_event_is_named(db) {
        let h = home_with_events(db);
        h.drop_audit_triggers();
        h.sql("UPDATE audit_events SET payload = '{\"name\":\"forged\"}' WHERE seq = 3");
        assert_broken_at(&h, 3);
    }

    async fn an_edited_actor_is_named(db) {
        let h = home_with_events(db);
        h.drop_audit_triggers();
        h.sql("UPDATE audit_events SET actor = 'mallory' WHERE seq = 5");
        assert_broken_at(&h, 5);
    }

    async fn a_deleted_event_is_named(db) {
        let h = home_with_events(db);
        h.drop_audit_triggers();
        h.sql("DELETE FROM audit_events WHERE seq = 4");
        assert_broken_at(&h, 4);
    }

    async fn a_deletion_hidden_by_renumbering_is_named(db) {
        let h = home_with_events(db);
        h.drop_audit_triggers();
        h.sql("DELETE FROM audit_events WHERE seq = 4");
        h.sql("UPDATE audit_events SET seq = seq - 1 WHERE seq = 5");
        h.sql("UPDATE audit_events SET seq = seq - 1 WHERE seq = 6");
        assert_broken_at(&h, 4);
    }

    async fn reordered_events_are_named(db) {
        let h = home_with_events(db);
        h.drop_audit_triggers();
        h.sql("UPDATE audit_events SET seq = 100 WHERE seq = 2");
        h.sql("UPDATE audit_events SET seq = 2 WHERE seq = 3");
        h.sql("UPDATE audit_events SET seq = 3 WHERE seq = 100");
        assert_broken_at(&h, 2);
    }

    async fn an_inserted_event_is_named(db) {
        let h = home_with_events(db);
        h.drop_audit_triggers();
        h.sql("UPDATE audit_events SET seq = seq + 100 WHERE seq >= 3");
        h.sql("UPDATE audit_events SET seq = seq - 99 WHERE seq >= 103");
        h.sql("INSERT INTO audit_events (seq, at, actor, action, subject, payload, prev_hash, hash) \
               SELECT 3, at, 'mallory', 'release.registered', 'release:x', '{}', hash, \
               'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa' FROM audit_events WHERE seq = 2");
        assert_broken_at(&h, 3);
    }

    async fn concurrent_processes_never_fork_the_chain(db) {
        let h = Home::init(db);
        let base = h.audit_count();
        let mut children = Vec::new();
        for p in 0..4 {
            for i in 0..5 {
                let f = write(h.dir(), &format!("p{p}_{i}.csv"), &format!("x\n{p}{i}\n"));
                let name = format!("p{p}-{i}");
                let child = h
                    .command(&["dataset", "register", path(&f), "--name", &name])
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap();
                children.push(child);
            }
        }
        for c in children {
            let out = c.wait_with_output().unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        }
        assert_eq!(h.audit_count(), base + 20);
        assert!(h.ok(&["audit", "verify"]).contains(&format!("{} events verified", base + 20)));
    }

    async fn killing_the_process_mid_registration_leaves_no_half_release(db) {
        let h = Home::init(db);
        let snapshot = h.register_example();
        for i in 0..24u64 {
            let args = h.register_release_args(&snapshot, &format!("attempt {i}"));
            let a: Vec<&str> = args.iter().map(String::as_str).collect();
            let mut child = h.command(&a).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
            std::thread::sleep(std::time::Duration::from_millis(2 + (i * 7) % 40));
            let _ = child.kill(); // SIGKILL
            let _ = child.wait();
        }
        assert!(h.ok(&["audit", "verify"]).contains("intact"));
        // Every release has its audit event and every event its release; each verifies.
        let releases = h.json(&["release", "list"]);
        let events = h.json(&["audit", "log", "--action", "release.registered", "--limit", "1000"]);
        let mut from_events: Vec<String> = events.as_array().unwrap().iter()
            .map(|e| e["subject"].as_str().unwrap().trim_start_matches("release:").to_owned()).collect();
        let mut from_table: Vec<String> = releases.as_array().unwrap().iter()
            .map(|r| r["id"].as_str().unwrap().to_owned()).collect();
        from_events.sort();
        from_table.sort();
        assert_eq!(from_events, from_table);
        for id in &from_table {
            h.ok(&["release", "show", id]);
        }
    }
}
