//! A deployed example (production and shadow releases, users) and the real `vigil serve` on a
//! free loopback port, with a small HTTP/1.1 client.

#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Stdio};
use std::sync::Arc;

use serde_json::Value;
use vigil_domain::prediction::{PredictionFilter, PredictionRecord};
use vigil_service::{Location, SystemClock, Vigil};
use vigil_store::BackendKind;

use super::{Home, path, write};

/// The example with release `active` in production, `shadow` in shadow, an operator
/// `tester` (also governance, as the first user) and a `predict-client` user `ehr`.
pub struct Deployed {
    pub home: Home,
    pub snapshot: String,
    pub active: String,
    pub shadow: String,
    pub operator: String,
    pub ehr: String,
}

/// A policy without gates, so a test can move releases freely.
pub const NO_GATES: &str =
    "description = \"test: no gates\"\n[tiers.1]\n[tiers.2]\n[tiers.3]\n[tiers.4]\n";

impl Deployed {
    pub fn new(db: vigil_test_support::TestDb) -> Deployed {
        let home = Home::init(db);
        let snapshot = home.register_example();
        let policy = write(home.dir(), "no-gates.toml", NO_GATES);
        home.ok(&["policy", "apply", path(&policy)]);
        let release = |changelog: &str, threshold: &str| -> String {
            let mut args = home.register_release_args(&snapshot, changelog);
            let i = args.iter().position(|a| a == "--threshold").unwrap();
            args[i + 1] = threshold.into();
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            home.json(&args)["id"].as_str().unwrap().to_owned()
        };
        let active = release("first", "0.15");
        let shadow = release("second", "0.3");
        for (id, stages) in [
            (
                &active,
                &["validated", "approved", "shadow", "production"][..],
            ),
            (&shadow, &["validated", "approved", "shadow"][..]),
        ] {
            for st in stages {
                home.ok(&["promote", id, "--to", st, "--reason", "test deployment"]);
            }
        }
        let token = |v: Value| v["token"].as_str().unwrap().to_owned();
        let operator = token(home.json(&["user", "add", "tester", "--role", "operator"]));
        let ehr = token(home.json(&["user", "add", "ehr", "--role", "predict-client"]));
        Deployed {
            home,
            snapshot,
            active,
            shadow,
            operator,
            ehr,
        }
    }

    pub fn serve(&self, extra: &[&str]) -> Server {
        let mut args = vec!["serve", "--addr", "127.0.0.1:0", "--poll-interval", "200ms"];
        args.extend_from_slice(extra);
        let mut child = self
            .home
            .command(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start vigil serve");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(line.starts_with("vigil listening on"), "{line}");
        let addr = line
            .trim()
            .trim_start_matches("vigil listening on http://")
            .trim_end_matches("/api/v1")
            .to_owned();
        Server { child, addr }
    }

    /// The store, opened as the server opens it.
    pub async fn vigil(&self) -> Vigil {
        let loc = Location {
            home: self.home.dir().to_path_buf(),
            database_url: (self.home.db.kind == BackendKind::Postgres)
                .then(|| self.home.db.url.clone()),
        };
        Vigil::open(&loc, Arc::new(SystemClock)).await.unwrap()
    }

    pub async fn records(&self) -> Vec<PredictionRecord> {
        self.vigil()
            .await
            .list_predictions(&PredictionFilter::default())
            .await
            .unwrap()
    }
}

pub struct Server {
    pub child: Child,
    pub addr: String,
}

impl Server {
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn get(&self, path: &str, token: Option<&str>) -> (u16, String) {
        http(&self.addr, "GET", path, token, None)
    }

    pub fn post(&self, path: &str, token: Option<&str>, body: &str) -> (u16, String) {
        http(&self.addr, "POST", path, token, Some(body))
    }

    pub fn post_json(&self, path: &str, token: &str, body: &Value) -> (u16, Value) {
        let (s, b) = self.post(path, Some(token), &body.to_string());
        (
            s,
            serde_json::from_str(&b).unwrap_or_else(|e| panic!("{e}: {b}")),
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One request on a fresh connection; the status and the body.
pub fn try_http(
    addr: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(addr)?;
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let body = body.unwrap_or("");
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    let status = out
        .get(9..12)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no status line in {out:?}")))?;
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

pub fn http(
    addr: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> (u16, String) {
    try_http(addr, method, path, token, body).expect("HTTP request")
}

/// Rows of the example's reference predictions: features as the API takes them, and the
/// probability scikit-learn gave.
pub fn reference_rows(n: usize) -> Vec<(Value, f64)> {
    let mut r =
        csv::Reader::from_path(super::example("deterioration/reference-predictions.csv")).unwrap();
    let headers = r.headers().unwrap().clone();
    let mut out = Vec::new();
    for rec in r.records() {
        let rec = rec.unwrap();
        if rec.iter().any(str::is_empty) {
            continue;
        }
        let mut features = serde_json::Map::new();
        let mut p = 0.0;
        for (h, v) in headers.iter().zip(rec.iter()) {
            let x: f64 = v.parse().unwrap();
            match h {
                "probability" => p = x,
                "sex" => {
                    features.insert(
                        h.into(),
                        Value::from(if x == 0.0 { "female" } else { "male" }),
                    );
                }
                "age" => {
                    features.insert(h.into(), Value::from(x as i64));
                }
                _ => {
                    features.insert(h.into(), Value::from(x));
                }
            }
        }
        out.push((Value::Object(features), p));
        if out.len() == n {
            break;
        }
    }
    out
}
