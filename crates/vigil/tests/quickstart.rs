//! The new user's journey end to end: the real binary's `vigil quickstart` in a temporary home
//! on a free port, then calls to the running server (a CDS Hooks call with a token minted by
//! `vigil cds-client token`, a predict call, the dashboard after signing in, `/metrics`), the
//! dashboard in headless Chromium (screenshots saved), and a second run that reuses the home.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use vigil_store::BackendKind;
use vigil_test_support::TestDb;
use vigil_test_support::webdriver::Browser;

const MODEL: &str = "deterioration-risk";
const ISS: &str = "https://ehr.demo.vigil.invalid";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Demo<'a> {
    db: &'a TestDb,
    home: PathBuf,
}

impl Demo<'_> {
    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_vigil"));
        c.env_remove("VIGIL_HOME")
            .env_remove("VIGIL_DATABASE_URL")
            .env_remove("VIGIL_USER")
            .env_remove("VIGIL_PUBLIC_URL");
        c.arg("--home").arg(&self.home);
        if self.db.kind == BackendKind::Postgres {
            c.arg("--database-url").arg(&self.db.url);
        }
        c.args(args);
        c
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.command(args).output().unwrap();
        assert!(
            out.status.success(),
            "vigil {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// A running quickstart: its process and every stdout line so far.
struct Running {
    child: Child,
    lines: Vec<String>,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_quickstart(demo: &Demo<'_>, addr: &str) -> Running {
    let mut child = demo
        .command(&["--as", "newcomer", "quickstart", "--addr", addr])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(stdout).lines() {
            let Ok(l) = l else { break };
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(900);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) => {
                let done = l.starts_with("vigil listening on");
                lines.push(l);
                if done {
                    break;
                }
            }
            Err(_) => panic!(
                "the quickstart never said it was listening:\n{}",
                lines.join("\n")
            ),
        }
    }
    // Keep draining its output so the server never blocks on a full pipe.
    std::thread::spawn(move || while rx.recv().is_ok() {});
    Running { child, lines }
}

/// One HTTP/1.1 request: status, head (lowercased names) and body.
fn request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body.as_bytes()).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (h, b) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = h.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, h.to_ascii_lowercase(), b.to_owned())
}

fn json_body(b: &str) -> Value {
    serde_json::from_str(b).unwrap_or_else(|e| panic!("{e}: {b}"))
}

fn screenshots_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("browser-screenshots")
}

async fn journey(db: TestDb, with_browser: bool) {
    let demo = Demo {
        home: db.path().join("demo"),
        db: &db,
    };
    let addr = format!("127.0.0.1:{}", free_port());
    let run = start_quickstart(&demo, &addr);
    let printed = run.lines.join("\n");
    for step in [
        "registered training snapshot",
        "data checks on the validation snapshot: passed",
        "recorded evaluation",
        "rita signed off as clinical-reviewer",
        "promoted the release to shadow",
        "replayed 8000 validation rows",
        "rehearsed the rollback",
        "promoted the release to production",
        "waived by gina with documented exceptions",
        "registered the demo CDS client",
        "audit chain intact",
        "Three commands to try",
        "cds-client token",
        "/predict",
        "audit verify",
    ] {
        assert!(printed.contains(step), "missing `{step}` in:\n{printed}");
    }
    let report = demo.home.join("reports/evaluation.html");
    assert!(printed.contains(&report.display().to_string()));
    let html = std::fs::read_to_string(&report).unwrap();
    assert!(html.contains("<svg"), "the evaluation report has its plots");

    let tokens: Value =
        serde_json::from_str(&std::fs::read_to_string(demo.home.join("demo-users.json")).unwrap())
            .unwrap();
    let gina = tokens["gina"].as_str().unwrap().to_owned();
    let ehr = tokens["ehr-gateway"].as_str().unwrap().to_owned();

    // The lifecycle is on record: one release, in production, with its evidence.
    let releases: Value = serde_json::from_str(&demo.ok(&["release", "list", "--json"])).unwrap();
    let releases = releases.as_array().unwrap();
    assert_eq!(releases.len(), 1, "{releases:?}");
    let release = releases[0]["id"].as_str().unwrap().to_owned();
    let history: Value = serde_json::from_str(&demo.ok(&["history", MODEL, "--json"])).unwrap();
    assert_eq!(history["live_at"]["production"], release.as_str());
    let shadow: Value = serde_json::from_str(&demo.ok(&[
        "predictions",
        "list",
        "--model",
        MODEL,
        "--mode",
        "shadow",
        "--limit",
        "100000",
        "--json",
    ]))
    .unwrap();
    let shadow = shadow.as_array().unwrap();
    assert_eq!(shadow.len(), 8000, "a day of replayed shadow records");
    assert!(shadow.iter().all(|r| r["channel"] == "replay"));

    // 1. A CDS Hooks call with a token minted by `vigil cds-client token`.
    let token = demo
        .ok(&[
            "--as",
            "otto",
            "--public-url",
            &format!("http://{addr}"),
            "cds-client",
            "token",
            "--iss",
            ISS,
            "--service",
            MODEL,
        ])
        .trim()
        .to_owned();
    let cds_body = std::fs::read_to_string(demo.home.join("example/cds-request.json")).unwrap();
    let bearer = format!("Bearer {token}");
    let (status, _, body) = request(
        &addr,
        "POST",
        &format!("/cds-services/{MODEL}"),
        &[
            ("Content-Type", "application/json"),
            ("Authorization", &bearer),
        ],
        &cds_body,
    );
    assert_eq!(status, 200, "{body}");
    let cards = json_body(&body)["cards"].as_array().cloned().unwrap();
    assert!(!cards.is_empty(), "{body}");
    assert!(
        cards[0]["summary"].as_str().is_some_and(|s| !s.is_empty()),
        "{body}"
    );
    let source_url = cards[0]["source"]["url"].as_str().unwrap().to_owned();
    // An unsigned call is refused.
    let (status, _, _) = request(
        &addr,
        "POST",
        &format!("/cds-services/{MODEL}"),
        &[("Content-Type", "application/json")],
        &cds_body,
    );
    assert_eq!(status, 401);

    // 2. A plain predict call, as the EHR's integration engine.
    let predict_body =
        std::fs::read_to_string(demo.home.join("example/predict-request.json")).unwrap();
    let ehr_bearer = format!("Bearer {ehr}");
    let (status, _, body) = request(
        &addr,
        "POST",
        &format!("/api/v1/models/{MODEL}/predict"),
        &[
            ("Content-Type", "application/json"),
            ("Authorization", &ehr_bearer),
        ],
        &predict_body,
    );
    assert_eq!(status, 200, "{body}");
    let p = json_body(&body);
    assert_eq!(p["release"], release.as_str(), "{p}");
    let score = p["score"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&score), "{p}");

    // 3. The dashboard: signing in, every page, signing out.
    let (status, head, _) = request(&addr, "GET", "/", &[], "");
    assert_eq!(status, 303);
    assert!(head.contains("location: /login"), "{head}");
    let (status, _, body) = request(
        &addr,
        "POST",
        "/login",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        "token=vigil_not-a-token",
    );
    assert_eq!(status, 401, "{body}");
    let (status, _, _) = request(
        &addr,
        "POST",
        "/login",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        &format!("token={ehr}"),
    );
    assert_eq!(status, 403, "a predict-client token opens no dashboard");
    let (status, _, _) = request(
        &addr,
        "POST",
        "/login",
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Origin", "https://elsewhere.example"),
        ],
        &format!("token={gina}"),
    );
    assert_eq!(status, 403, "a sign-in posted from another site is refused");
    let (status, head, _) = request(
        &addr,
        "POST",
        "/login",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        &format!("token={gina}"),
    );
    assert_eq!(status, 303);
    let set = head
        .lines()
        .find(|l| l.starts_with("set-cookie:"))
        .unwrap()
        .to_owned();
    assert!(
        set.contains("httponly") && set.contains("samesite=strict"),
        "{set}"
    );
    let session = set
        .trim_start_matches("set-cookie:")
        .trim()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    assert!(
        !session.contains(&gina.to_ascii_lowercase()),
        "the cookie holds no token"
    );
    let cookie = session;
    let page = |path: &str| {
        let (status, head, body) = request(&addr, "GET", path, &[("Cookie", &cookie)], "");
        assert_eq!(status, 200, "{path}: {body}");
        assert!(head.contains("content-type: text/html"), "{head}");
        assert!(head.contains("content-security-policy"), "{head}");
        body
    };
    let models = page("/");
    assert!(
        models.contains(MODEL) && models.contains("production"),
        "{models}"
    );
    assert!(models.contains(&format!("/releases/{release}")));
    let rel = page(&format!("/releases/{release}"));
    for want in [
        "Manifest",
        "Intended use",
        "Evidence",
        "<svg",
        "Gates",
        "clinical-review",
        "covered",
        "Sign-offs",
        "rita",
        "Exceptions",
        "Demo home",
        "Promotion history",
        "/card",
    ] {
        assert!(rel.contains(want), "release page lacks `{want}`");
    }
    let card = page(&format!("/releases/{release}/card"));
    assert!(card.contains(MODEL));
    // Every CDS card's source links to the release's model card.
    let source_path = &source_url[source_url.find("/models/").expect("a dashboard path")..];
    let (status, head, _) = request(&addr, "GET", source_path, &[("Cookie", &cookie)], "");
    assert_eq!(status, 303, "{source_url}");
    let to = head
        .lines()
        .find_map(|l| l.strip_prefix("location: "))
        .expect("a redirect")
        .trim()
        .to_owned();
    assert!(
        to.starts_with("/releases/") && to.ends_with("/card"),
        "{to}"
    );
    assert!(page(&to).contains(MODEL));
    let mon = page(&format!("/monitoring/{MODEL}"));
    assert!(mon.contains("Production traffic: signals by hour"), "{mon}");
    // The replayed day shows as the release's shadow traffic, hour by hour.
    assert!(
        mon.contains("Shadow traffic of the production release: signals by hour"),
        "{mon}"
    );
    assert!(mon.contains("<svg"), "{mon}");
    assert!(mon.contains("Rules that fired"));
    let inc = page("/incidents");
    assert!(inc.contains("Incidents"));
    let aud = page("/audit");
    assert!(
        aud.contains("intact") && aud.contains("release.promoted"),
        "{aud}"
    );
    let (status, head, _) = request(&addr, "POST", "/logout", &[("Cookie", &cookie)], "");
    assert_eq!(status, 303);
    assert!(head.contains("max-age=0"));
    let (status, _, _) = request(&addr, "GET", "/audit", &[("Cookie", &cookie)], "");
    assert_eq!(status, 303, "the session ended with the logout");

    // 4. Prometheus metrics count the calls above.
    let (status, _, metrics) = request(&addr, "GET", "/metrics", &[], "");
    assert_eq!(status, 200);
    assert!(metrics.contains("vigil_"), "{metrics}");
    assert!(metrics.contains(MODEL), "{metrics}");

    if with_browser {
        browse(&addr, &gina, &release);
    }

    // A second run reuses the home: nothing registered twice, every step found.
    drop(run);
    let again = demo.ok(&[
        "--as",
        "newcomer",
        "quickstart",
        "--no-serve",
        "--addr",
        &addr,
    ]);
    for want in [
        "reused the home",
        "found training snapshot",
        "found release",
        "the release is already production",
        "found the demo CDS client",
        "audit chain intact",
    ] {
        assert!(again.contains(want), "missing `{want}` in:\n{again}");
    }
    let releases: Value = serde_json::from_str(&demo.ok(&["release", "list", "--json"])).unwrap();
    assert_eq!(releases.as_array().unwrap().len(), 1);
    demo.ok(&["audit", "verify"]);
}

/// Signs in and opens every dashboard page in headless Chromium, checking what each shows
/// and that it is usable by keyboard; screenshots go to `target/browser-screenshots/`.
fn browse(addr: &str, token: &str, release: &str) {
    let shots = screenshots_dir();
    let b = Browser::start();
    let base = format!("http://{addr}");
    b.goto(&format!("{base}/"));
    assert!(b.url().ends_with("/login"), "{}", b.url());
    // The token field has the focus, with its label.
    assert_eq!(b.script("return document.activeElement.id"), json!("token"));
    let field = b.find("input#token");
    assert_eq!(
        b.script("return document.querySelector('label[for=token]').textContent"),
        json!("API token")
    );
    b.type_into(&field, token);
    b.screenshot(&shots.join("00-login.png"));
    b.click(&b.find("button[type=submit]"));
    let home = format!("{base}/");
    assert_eq!(b.wait_for_url(|u| u == home), home);
    // On every other page the first Tab reaches the skip link, and it leads to the content.
    b.press("\u{E004}");
    assert_eq!(
        b.script("return document.activeElement.textContent"),
        json!("Skip to content")
    );
    b.press("\u{E007}");
    assert_eq!(b.script("return document.activeElement.id"), json!("main"));
    let pages = [
        (
            "01-models.png",
            "/".to_owned(),
            vec![MODEL, "production", "Risk tier"],
        ),
        (
            "02-release.png",
            format!("/releases/{release}"),
            vec![
                "Manifest",
                "Intended use",
                "Gates",
                "Sign-offs",
                "Exceptions",
                "Promotion history",
            ],
        ),
        (
            "03-monitoring.png",
            format!("/monitoring/{MODEL}"),
            vec![
                "Monitoring of deterioration-risk",
                "Production traffic",
                "Shadow traffic",
                "Rules that fired",
            ],
        ),
        (
            "04-incidents.png",
            "/incidents".to_owned(),
            vec!["Incidents"],
        ),
        (
            "05-audit.png",
            "/audit".to_owned(),
            vec!["Audit log", "intact"],
        ),
    ];
    for (shot, path, wants) in &pages {
        b.goto(&format!("{base}{path}"));
        assert_eq!(b.url(), format!("{base}{path}"), "stayed signed in");
        let text = b.text();
        for w in wants {
            assert!(text.contains(w), "{path} lacks `{w}`:\n{text}");
        }
        assert!(b.title().ends_with("· Vigil"), "{}", b.title());
        b.screenshot(&shots.join(shot));
    }
    // The release page draws the evaluation's plots and links to the model card.
    b.goto(&format!("{base}/releases/{release}"));
    assert!(
        b.find_all("figure svg") >= 2,
        "the evidence plots are drawn"
    );
    b.click(&b.find("a[href$='/card']"));
    let url = b.wait_for_url(|u| u.ends_with("/card"));
    assert!(url.ends_with("/card"), "{url}");
    // Navigation by real links: from the models page to the release.
    b.goto(&format!("{base}/"));
    b.click(&b.find(&format!("a[href='/releases/{release}']")));
    let page = format!("{base}/releases/{release}");
    assert_eq!(b.wait_for_url(|u| u == page), page);
    assert!(b.text().contains("Promotion history"));
    b.goto(&format!("{base}/audit"));
    b.click(&b.find("header form button"));
    let url = b.wait_for_url(|u| u.ends_with("/login"));
    assert!(url.ends_with("/login"), "logged out: {url}");
    eprintln!("dashboard screenshots in {}", shots.display());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quickstart_end_to_end_on_sqlite_with_the_dashboard_in_chromium() {
    journey(TestDb::sqlite().await, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quickstart_end_to_end_on_postgres() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    journey(db, false).await;
}
