//! End to end: the real binary initialises a home, adds a user, serves the API on a free
//! port, answers an authenticated request, and shuts down cleanly on SIGTERM.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};

fn vigil(home: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_vigil"))
        .env("VIGIL_HOME", home)
        .env_remove("VIGIL_DATABASE_URL")
        .args(args)
        .output()
        .expect("run vigil")
}

fn get(addr: &str, path: &str, token: Option<&str>) -> String {
    let mut s = TcpStream::connect(addr).expect("connect");
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn serve_answers_on_a_free_port_and_stops_on_sigterm() {
    let home = tempfile::tempdir().unwrap();
    assert!(
        vigil(home.path(), &["--as", "admin", "init"])
            .status
            .success()
    );
    let out = vigil(
        home.path(),
        &[
            "--as", "admin", "--json", "user", "add", "admin", "--role", "auditor",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let token = v["token"].as_str().unwrap().to_owned();

    let mut child = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .env("VIGIL_HOME", home.path())
        .env_remove("VIGIL_DATABASE_URL")
        .args(["serve", "--addr", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .trim_start_matches("vigil listening on http://")
        .trim_end_matches("/api/v1")
        .to_owned();

    let me = get(&addr, "/api/v1/me", Some(&token));
    assert!(me.starts_with("HTTP/1.1 200"), "{me}");
    assert!(me.contains("\"admin\""), "{me}");
    let anon = get(&addr, "/api/v1/models", None);
    assert!(
        anon.starts_with("HTTP/1.1 401") && anon.contains("missing_token"),
        "{anon}"
    );
    let doc = get(&addr, "/api/v1/openapi.json", None);
    assert!(doc.contains("\"openapi\""), "{doc}");

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    assert!(
        status.success(),
        "graceful shutdown exits 0, got {status:?}"
    );
}
