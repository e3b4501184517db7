//! Monitoring through the real binary, on SQLite and PostgreSQL: the monitor policy applied
//! and shown, outcomes imported from a file with every row accounted for, the incident
//! lifecycle, and rehearsals refused without a production release.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::{Home, both_backends, write};

const POLICY: &str = r#"
[[rule]]
name = "lactate-missing"
model = "deterioration-risk"
signal = "missing_rate"
feature = "lactate"
window = "1d"
threshold = { sigma = 5 }
action = { kind = "suppress" }

[revalidation]
tiers = { "3" = "365d" }
"#;

both_backends! {
    async fn policy_outcomes_and_incidents_through_the_cli(db) {
        let h = Home::init(db);
        h.register_example();
        let p = write(h.dir(), "monitor.toml", POLICY);
        let applied = h.json(&["monitor", "policy", "apply", p.to_str().unwrap()]);
        assert_eq!(applied["version"], 1);
        assert_eq!(applied["changed"], true);
        let again = h.json(&["monitor", "policy", "apply", p.to_str().unwrap()]);
        assert_eq!(again["changed"], false);
        let shown = h.ok(&["monitor", "policy", "show"]);
        assert!(shown.contains("lactate-missing") && shown.contains("suppress"), "{shown}");
        let bad = write(h.dir(), "bad.toml", &POLICY.replace("window = \"1d\"", "window = \"10m\""));
        let (err, _) = h.fails(&["monitor", "policy", "apply", bad.to_str().unwrap()]);
        assert!(err.contains("lactate-missing") && err.contains("window"), "{err}");

        // No prediction carries these keys: every row is reported, none is imported.
        let f = write(h.dir(), "outcomes.csv", "encounter_id,outcome\nE1,1\nE2,0\nE1,1\n");
        let r = h.json(&["outcomes", "import", f.to_str().unwrap(), "--key-col", "encounter_id", "--label-col", "outcome"]);
        assert_eq!(r["received"], 3);
        assert_eq!(r["imported"], 0);
        assert_eq!(r["duplicate_rows"], serde_json::json!([3]));
        assert_eq!(r["unknown"], serde_json::json!([1, 2]));
        let text = h.ok(&["outcomes", "import", f.to_str().unwrap(), "--key-col", "encounter_id", "--label-col", "outcome"]);
        assert!(!text.contains("E1"), "no key is echoed: {text}");

        let run = h.json(&["monitor", "run"]);
        assert_eq!(run["policy_version"], 1);
        assert!(run["evaluations"].as_array().unwrap().is_empty(), "nothing is in production");
        let (err, _) = h.fails(&["simulate", "--model", "deterioration-risk", "--scenario", "stable"]);
        assert!(err.contains("no release in production"), "{err}");

        let i = h.json(&["incident", "open", "--title", "Lactate feed down", "--severity", "SEV2", "--model", "deterioration-risk"]);
        let id = i["id"].as_i64().unwrap().to_string();
        h.ok(&["incident", "update", &id, "--status", "investigating", "--owner", "Dr Osei"]);
        let (err, _) = h.fails(&["incident", "close", &id]);
        assert!(err.contains("postmortem"), "{err}");
        let pm = write(h.dir(), "pm.md", "The interface engine dropped lactate after the upgrade; route restored and monitored.");
        let closed = h.json(&["incident", "close", &id, "--postmortem-file", pm.to_str().unwrap()]);
        assert_eq!(closed["status"], "closed");
        assert_eq!(closed["timeline"].as_array().unwrap().len(), 5);
        assert!(h.json(&["incident", "list"]).as_array().unwrap().is_empty());
        assert_eq!(h.json(&["incident", "list", "--all"]).as_array().unwrap().len(), 1);
        h.ok(&["audit", "verify"]);
    }
}
