//! The dashboard at `/`: server-rendered pages for clinicians, operators and auditors over
//! the same service calls as the API. Signing in takes an API token (a form POST); the
//! server keeps the token in memory under a random session id, sent back as an `HttpOnly`,
//! `SameSite=Strict` cookie, and checks it again on every page, so a revoked token ends its
//! sessions at once. The only POSTs are login and logout; both refuse another site's
//! `Origin`, and the strict cookie never travels with a cross-site request.

use std::collections::HashMap;
use std::fmt::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration as StdDuration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Serialize;
use vigil_domain::policy::GateStatus;
use vigil_domain::prediction::PredictionMode;
use vigil_domain::role::Role;
use vigil_domain::{Duration, Stage};
use vigil_service::{Error, ErrorKind, VerifyOutcome};
use vigil_store::UserRecord;

use crate::AppState;
use crate::page::{badge, esc, kv, link, page, seg, table};

const COOKIE: &str = "vigil_session";
/// A session lasts this long after sign-in.
const SESSION_TTL: StdDuration = StdDuration::from_secs(8 * 3600);
/// Audit events shown on the audit page.
const AUDIT_ROWS: i64 = 200;

/// Signed-in sessions: random id → the token and when the session ends.
#[derive(Default)]
pub struct Sessions(Mutex<HashMap<String, (String, Instant)>>);

impl Sessions {
    fn open(&self, token: &str) -> Result<String, Error> {
        let mut b = [0u8; 32];
        getrandom::fill(&mut b).map_err(|e| Error::internal(format!("random source: {e}")))?;
        let id: String = b.iter().map(|x| format!("{x:02x}")).collect();
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        m.retain(|_, (_, until)| *until > now);
        m.insert(id.clone(), (token.to_owned(), now + SESSION_TTL));
        Ok(id)
    }

    fn token(&self, id: &str) -> Option<String> {
        let m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        m.get(id)
            .filter(|(_, until)| *until > Instant::now())
            .map(|(t, _)| t.clone())
    }

    fn close(&self, id: &str) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).remove(id);
    }
}

pub struct Dash {
    app: Arc<AppState>,
    sessions: Sessions,
}

type Shared = Arc<Dash>;

/// The dashboard's routes, to merge beside the API.
pub fn routes(app: Arc<AppState>) -> Router {
    let dash = Arc::new(Dash {
        app,
        sessions: Sessions::default(),
    });
    Router::new()
        .route("/", get(models))
        .route("/login", get(login_form).post(login))
        .route("/logout", post(logout))
        .route("/releases/{id}", get(release))
        .route("/releases/{id}/card", get(card))
        .route("/models/{model}/evidence", get(evidence_link))
        .route("/releases/{id}/evaluations/{eval}", get(evaluation_report))
        .route("/monitoring/{model}", get(monitoring))
        .route("/incidents", get(incidents))
        .route("/audit", get(audit))
        .with_state(dash)
}

fn html(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    // No script, no framing, nothing loaded from elsewhere.
    r.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r.headers_mut().insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    r
}

fn redirect(to: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

fn cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_owned())
}

/// A POST from another site (its `Origin` names another host) is refused.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    origin
        .split_once("://")
        .is_some_and(|(_, rest)| rest.trim_end_matches('/') == host)
}

/// The signed-in user, or the response to send instead (the login page).
async fn signed_in(d: &Dash, headers: &HeaderMap) -> Result<UserRecord, Response> {
    let Some(token) = cookie(headers).and_then(|id| d.sessions.token(&id)) else {
        return Err(redirect("/login"));
    };
    match d.app.serving.authenticate(&token).await {
        Ok(u) => Ok(u),
        Err(_) => Err(redirect("/login")),
    }
}

fn error_page(user: &UserRecord, e: &Error) -> Response {
    let status = crate::status_for(e.kind);
    let body = format!(
        "<h1>{}</h1><p class=\"error\">{}</p><p><a href=\"/\">Back to the models</a></p>",
        esc(status.canonical_reason().unwrap_or("Error")),
        esc(&e.message)
    );
    html(status, page("Error", Some(user.name.as_str()), &body))
}

/// Runs a page: sign-in first, then `f`, whose service errors become an error page.
async fn guarded<F, Fut>(d: &Dash, headers: &HeaderMap, f: F) -> Response
where
    F: FnOnce(UserRecord) -> Fut,
    Fut: std::future::Future<Output = Result<(String, String), Error>>,
{
    let user = match signed_in(d, headers).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    let name = user.name.to_string();
    match f(user.clone()).await {
        Ok((title, body)) => html(StatusCode::OK, page(&title, Some(&name), &body)),
        Err(e) => error_page(&user, &e),
    }
}

/// A value's serde name (`approved`, `promoted`, …).
fn word<T: Serialize>(t: &T) -> String {
    match serde_json::to_value(t) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(v) => v.to_string(),
        Err(_) => String::new(),
    }
}

fn stage_badge(s: Stage) -> String {
    badge(&format!("s-{s}"), &s.to_string())
}

fn login_page(message: Option<&str>) -> String {
    let msg = message.map_or(String::new(), |m| {
        format!("<p class=\"error\" role=\"alert\">{}</p>", esc(m))
    });
    let body = format!(
        "<h1>Sign in</h1><div class=\"login\">{msg}<form method=\"post\" action=\"/login\">\
<label for=\"token\">API token</label>\
<input id=\"token\" name=\"token\" type=\"password\" autocomplete=\"off\" required autofocus>\
<p>A token comes from <code>vigil user add NAME --role …</code>; it is shown once.</p>\
<button type=\"submit\">Sign in</button></form></div>"
    );
    page("Sign in", None, &body)
}

async fn login_form() -> Response {
    html(StatusCode::OK, login_page(None))
}

/// Reads `token` from an `application/x-www-form-urlencoded` body.
fn form_token(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    for pair in text.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if k == "token" {
            return percent_decode(v);
        }
    }
    None
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let h = s.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(h, 16).ok()?);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

async fn login(State(d): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    if !same_origin(&headers) {
        return html(
            StatusCode::FORBIDDEN,
            login_page(Some("Sign-in from another site is refused.")),
        );
    }
    let Some(token) = form_token(&body).map(|t| t.trim().to_owned()) else {
        return html(
            StatusCode::BAD_REQUEST,
            login_page(Some("Enter an API token.")),
        );
    };
    let user = match d.app.serving.authenticate(&token).await {
        Ok(u) => u,
        Err(e) => {
            return html(StatusCode::UNAUTHORIZED, login_page(Some(&e.message)));
        }
    };
    if user.roles.iter().all(|r| r == Role::PredictClient) {
        return html(
            StatusCode::FORBIDDEN,
            login_page(Some(
                "This token holds only the predict-client role, which may call the prediction endpoints and nothing else.",
            )),
        );
    }
    let id = match d.sessions.open(&token) {
        Ok(id) => id,
        Err(e) => {
            return html(
                StatusCode::INTERNAL_SERVER_ERROR,
                login_page(Some(&e.message)),
            );
        }
    };
    let mut r = redirect("/");
    let c = format!(
        "{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}",
        SESSION_TTL.as_secs()
    );
    if let Ok(v) = HeaderValue::from_str(&c) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

async fn logout(State(d): State<Shared>, headers: HeaderMap) -> Response {
    if !same_origin(&headers) {
        return html(StatusCode::FORBIDDEN, login_page(Some("Refused.")));
    }
    if let Some(id) = cookie(&headers) {
        d.sessions.close(&id);
    }
    let mut r = redirect("/login");
    r.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("vigil_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
    );
    r
}

async fn models(State(d): State<Shared>, headers: HeaderMap) -> Response {
    guarded(&d, &headers, |_| async {
        let v = &d.app.vigil;
        let mut body = String::from(
            "<h1>Models</h1><p>Every model on record, with the stage of each of its releases.</p>",
        );
        let models = v.list_models().await?;
        if models.is_empty() {
            body.push_str("<p class=\"note\">No model is registered yet. <code>vigil quickstart</code> registers the bundled example.</p>");
        }
        for m in models {
            let name = m.name.to_string();
            let _ = write!(
                body,
                "<h2 id=\"model-{}\">{}</h2>",
                esc(&seg(&name)),
                esc(&name)
            );
            body.push_str(&kv(&[
                ("Risk tier", esc(&m.risk_tier.to_string())),
                ("Clinical owner", esc(&m.clinical_owner)),
                ("Technical owner", esc(&m.technical_owner)),
                ("Output", esc(&m.intended_use.output)),
                (
                    "Monitoring",
                    link(&format!("/monitoring/{}", seg(&name)), "Signals and rules"),
                ),
            ]));
            let rows: Vec<Vec<String>> = v
                .list_release_stages(&name)
                .await?
                .into_iter()
                .rev()
                .map(|(r, s)| {
                    vec![
                        link(&format!("/releases/{}", seg(&r.id.to_string())), &r.id.short()),
                        stage_badge(s),
                        esc(&r.registered_at.to_string()),
                        esc(r.registered_by.as_str()),
                        esc(r.manifest.changelog.as_deref().unwrap_or("")),
                    ]
                })
                .collect();
            body.push_str(&table(
                &format!("Releases of {name}, newest first"),
                &["Release", "Stage", "Registered", "By", "Changelog"],
                &rows,
            ));
        }
        Ok(("Models".to_owned(), body))
    })
    .await
}

async fn release(State(d): State<Shared>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let dd = d.clone();
    guarded(&d, &headers, |_| async move {
        let v = &dd.app.vigil;
        let r = v.get_release(&id).await?;
        let rid = r.id.to_string();
        let stage = v.release_stage(&r).await?;
        let m = v.get_model(r.manifest.model.as_str()).await?;
        let mf = &r.manifest;
        let mut body = format!(
            "<h1>Release {} of {}</h1><p>{} <a href=\"/releases/{}/card\">Model card (HTI-1 source attributes)</a></p>",
            esc(&r.id.short()),
            esc(m.name.as_str()),
            stage_badge(stage),
            esc(&seg(&rid))
        );
        let pinned = |p: &vigil_domain::release::Pinned| {
            format!("<code>{}</code> ({} bytes)", esc(&p.digest.to_string()), p.size)
        };
        body.push_str("<h2 id=\"manifest\">Manifest</h2>");
        body.push_str(&kv(&[
            ("Release id", format!("<code>{}</code>", esc(&rid))),
            ("Model", esc(m.name.as_str())),
            ("Artifact", pinned(&mf.artifact)),
            ("Feature contract", pinned(&mf.contract)),
            (
                "Training data",
                format!("<code>{}</code>", esc(&mf.training_data.to_string())),
            ),
            (
                "Environment",
                mf.environment.as_ref().map_or("none".into(), pinned),
            ),
            (
                "Hyperparameters",
                mf.hyperparameters.as_ref().map_or("none".into(), pinned),
            ),
            (
                "Thresholds",
                esc(&mf
                    .thresholds
                    .iter()
                    .map(|t| t.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")),
            ),
            (
                "Equivalence",
                mf.equivalence.as_ref().map_or("not checked".into(), |q| {
                    esc(&format!(
                        "{} reference rows reproduced, max |difference| {:.1e} (tolerance {:e})",
                        q.rows, q.max_abs_diff, q.tolerance
                    ))
                }),
            ),
            ("Changelog", esc(mf.changelog.as_deref().unwrap_or(""))),
            (
                "Registered",
                esc(&format!("{} by {}", r.registered_at, r.registered_by)),
            ),
        ]));

        let u = &m.intended_use;
        body.push_str("<h2 id=\"intended-use\">Intended use</h2>");
        let limits = u
            .limitations
            .iter()
            .map(|l| format!("<li>{}</li>", esc(l)))
            .collect::<String>();
        body.push_str(&kv(&[
            ("Target population", esc(&u.target_population)),
            ("Inputs", esc(&u.inputs)),
            ("Output", esc(&u.output)),
            ("Who acts", esc(&u.who_acts)),
            ("When uncertain", esc(&u.when_uncertain)),
            ("When unavailable", esc(&u.when_unavailable)),
            ("Limitations", format!("<ul>{limits}</ul>")),
            ("Risk tier", esc(&m.risk_tier.to_string())),
        ]));

        body.push_str("<h2 id=\"evidence\">Evidence</h2>");
        let evals = v.list_evaluations(Some(&rid)).await?;
        if evals.is_empty() {
            body.push_str("<p>No evaluation on record.</p>");
        }
        for e in &evals {
            let s = &e.summary;
            let num = |k: &str| {
                s[k].as_f64()
                    .map_or_else(|| "not estimable".to_owned(), |x| format!("{x:.3}"))
            };
            let eid = e.id.to_string();
            let _ = write!(
                body,
                "<h3>Evaluation on <code>{}</code> ({})</h3>",
                esc(&e.manifest.dataset.short()),
                esc(&e.created_at.to_string())
            );
            body.push_str(&kv(&[
                ("Rows", esc(&s["n"].to_string())),
                ("AUROC", esc(&num("auroc"))),
                ("AUPRC", esc(&num("auprc"))),
                ("Brier", esc(&num("brier"))),
                (
                    "Full report",
                    link(
                        &format!("/releases/{}/evaluations/{}", seg(&rid), seg(&eid)),
                        "Open the evaluation report",
                    ),
                ),
            ]));
            // The very plots of the recorded report (read back and verified by digest).
            let report = v.evaluation_html(e)?;
            let report = String::from_utf8_lossy(&report);
            body.push_str("<div class=\"figs\">");
            for f in vigil_report::figures(&report).into_iter().take(6) {
                body.push_str(f);
            }
            body.push_str("</div>");
        }

        body.push_str("<h2 id=\"gates\">Gates</h2><p>Every stage's gates in the policy in force, judged on the evidence on record now.</p>");
        for g in v.gate_reports(&rid).await? {
            let rows: Vec<Vec<String>> = g
                .gates
                .iter()
                .map(|x| {
                    let class = match x.status {
                        GateStatus::Met => "met",
                        GateStatus::Unmet => "unmet",
                        GateStatus::Covered => "covered",
                    };
                    let status = match &x.exception {
                        Some(ex) => format!(
                            "{} exception #{} until {}",
                            badge(class, &word(&x.status)),
                            ex.id,
                            esc(&ex.expires_at.to_string())
                        ),
                        None => badge(class, &word(&x.status)),
                    };
                    vec![esc(x.gate.as_str()), esc(x.kind), status, esc(&x.detail)]
                })
                .collect();
            body.push_str(&table(
                &format!("To {} (policy version {})", g.to, g.policy_version),
                &["Gate", "Kind", "Status", "Detail"],
                &rows,
            ));
        }

        body.push_str("<h2 id=\"sign-offs\">Sign-offs</h2>");
        let rows: Vec<Vec<String>> = v
            .list_sign_offs(&rid)
            .await?
            .iter()
            .map(|s| {
                vec![
                    esc(&s.role.to_string()),
                    esc(s.user.as_str()),
                    esc(&word(&s.decision)),
                    esc(&s.comment),
                    format!("<code>{}</code>", esc(&s.evidence_digest.to_string())),
                    esc(&s.at.to_string()),
                ]
            })
            .collect();
        body.push_str(&table(
            "",
            &["Role", "User", "Decision", "Comment", "Evidence digest", "At"],
            &rows,
        ));

        body.push_str("<h2 id=\"exceptions\">Exceptions</h2>");
        let rows: Vec<Vec<String>> = v
            .list_exceptions(&rid)
            .await?
            .iter()
            .map(|x| {
                vec![
                    x.id.to_string(),
                    esc(x.gate.as_str()),
                    esc(&x.rationale),
                    esc(x.granted_by.as_str()),
                    esc(&x.granted_at.to_string()),
                    esc(&x.expires_at.to_string()),
                ]
            })
            .collect();
        body.push_str(&table(
            "",
            &["#", "Gate", "Rationale", "Granted by", "Granted", "Expires"],
            &rows,
        ));

        body.push_str("<h2 id=\"history\">Promotion history</h2>");
        let rows: Vec<Vec<String>> = v
            .history(m.name.as_str(), None)
            .await?
            .promotions
            .iter()
            .filter(|p| p.release == r.id)
            .map(|p| {
                vec![
                    esc(&p.at.to_string()),
                    format!("{} → {}", stage_badge(p.from), stage_badge(p.to)),
                    esc(&word(&p.kind)),
                    esc(p.actor.as_str()),
                    esc(&p.reason),
                    esc(&p
                        .exceptions
                        .iter()
                        .map(|x| format!("#{x}"))
                        .collect::<Vec<_>>()
                        .join(", ")),
                ]
            })
            .collect();
        body.push_str(&table(
            "",
            &["At", "Move", "Kind", "By", "Reason", "Exceptions"],
            &rows,
        ));
        Ok((format!("Release {}", r.id.short()), body))
    })
    .await
}

/// A stored document shown as is (the evaluation report, the model card: self-contained
/// HTML that Vigil rendered), behind the same sign-in.
async fn document(d: &Dash, headers: &HeaderMap, doc: Result<String, Error>) -> Response {
    let user = match signed_in(d, headers).await {
        Ok(u) => u,
        Err(r) => return r,
    };
    match doc {
        Ok(h) => html(StatusCode::OK, h),
        Err(e) => error_page(&user, &e),
    }
}

async fn card(State(d): State<Shared>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if let Err(r) = signed_in(&d, &headers).await {
        return r;
    }
    let doc = d.app.vigil.model_card(&id).await.map(|c| c.to_html());
    document(&d, &headers, doc).await
}

/// The evidence link every CDS card's `source` carries: the release's model card.
async fn evidence_link(Path(_model): Path<String>, RawQuery(q): RawQuery) -> Response {
    let release = q.as_deref().unwrap_or_default().split('&').find_map(|kv| {
        kv.strip_prefix("release=")
            .filter(|r| !r.is_empty() && r.len() <= 64 && r.bytes().all(|b| b.is_ascii_hexdigit()))
    });
    let to = match release {
        Some(r) => format!("/releases/{r}/card"),
        None => "/".to_owned(),
    };
    (StatusCode::SEE_OTHER, [(header::LOCATION, to)]).into_response()
}

async fn evaluation_report(
    State(d): State<Shared>,
    headers: HeaderMap,
    Path((id, eval)): Path<(String, String)>,
) -> Response {
    if let Err(r) = signed_in(&d, &headers).await {
        return r;
    }
    let v = &d.app.vigil;
    let doc = async {
        let release = v.resolve_release(&id).await?;
        let e = v.get_evaluation(&eval).await?;
        if e.manifest.release != release {
            return Err(Error::not_found(
                "evaluation_not_found",
                format!("evaluation {eval} is not of release {}", release.short()),
            ));
        }
        Ok(String::from_utf8_lossy(&v.evaluation_html(&e)?).into_owned())
    }
    .await;
    document(&d, &headers, doc).await
}

async fn monitoring(
    State(d): State<Shared>,
    headers: HeaderMap,
    Path(model): Path<String>,
) -> Response {
    let dd = d.clone();
    guarded(&d, &headers, |user| async move {
        let v = &dd.app.vigil;
        let m = v.get_model(&model).await?;
        let name = m.name.to_string();
        let now = v.clock().now();
        let mut body = format!("<h1>Monitoring of {}</h1>", esc(&name));
        for (mode, heading) in [
            (PredictionMode::Active, "Production traffic"),
            (
                PredictionMode::Shadow,
                "Shadow traffic of the production release",
            ),
        ] {
            let slug = mode.to_string();
            match v
                .monitor_report_in(
                    mode,
                    &user.name,
                    &name,
                    Duration::from_secs(3600),
                    24,
                    now,
                    None,
                )
                .await
            {
                Ok(rep) => {
                    let total: u64 = rep.windows.iter().map(|w| w.predictions).sum();
                    let _ = write!(
                        body,
                        "<h2 id=\"{slug}\">{heading}: signals by hour, last 24 hours</h2>"
                    );
                    body.push_str(&kv(&[
                        (
                            "Production release",
                            link(
                                &format!("/releases/{}", seg(&rep.release.to_string())),
                                &rep.release.short(),
                            ),
                        ),
                        (
                            "Windows",
                            esc(&format!(
                                "{} complete windows of {}",
                                rep.windows.len(),
                                rep.window
                            )),
                        ),
                        ("Predictions in them", total.to_string()),
                        (
                            "Suppressed",
                            esc(&rep.controls.suppressed.as_ref().map_or("no".into(), |c| {
                                format!("since {}: {}", c.set_at, c.reason)
                            })),
                        ),
                        (
                            "Disabled",
                            esc(&rep.controls.disabled.as_ref().map_or("no".into(), |c| {
                                format!("since {}: {}", c.set_at, c.reason)
                            })),
                        ),
                    ]));
                    for n in &rep.notes {
                        let _ = write!(body, "<p class=\"note\">{}</p>", esc(n));
                    }
                    if total == 0 {
                        body.push_str("<p class=\"note\">No predictions in these windows.</p>");
                    } else {
                        body.push_str("<div class=\"figs\">");
                        let mut ctx = rep.context(now);
                        // Signals no window could compute (outcomes not yet imported) are
                        // listed once instead of drawn empty.
                        let (drawn, empty): (Vec<_>, Vec<_>) = ctx
                            .series
                            .into_iter()
                            .partition(|s| s.values.iter().any(Option::is_some));
                        ctx.series = drawn;
                        body.push_str(&vigil_report::trend_figures(&ctx));
                        body.push_str("</div>");
                        if !empty.is_empty() {
                            let names: Vec<String> = empty.into_iter().map(|s| s.name).collect();
                            let _ = write!(
                                body,
                                "<p class=\"note\">No window had a value for: {}.</p>",
                                esc(&names.join(", "))
                            );
                        }
                    }
                }
                Err(e) if e.kind == ErrorKind::PreconditionFailed => {
                    let _ = write!(body, "<p class=\"note\">{}</p>", esc(&e.message));
                    break;
                }
                Err(e) => return Err(e),
            }
        }
        body.push_str("<h2 id=\"firings\">Rules that fired</h2>");
        let rows: Vec<Vec<String>> = v
            .list_firings(Some(&name))
            .await?
            .iter()
            .rev()
            .map(|f| {
                vec![
                    esc(&f.at.to_string()),
                    esc(&f.rule),
                    esc(&f.group),
                    esc(&format!("{} – {}", f.window_start, f.window_end)),
                    esc(&f.step),
                    esc(&f.action),
                    link(
                        &format!("/releases/{}", seg(&f.release.to_string())),
                        &f.release.short(),
                    ),
                ]
            })
            .collect();
        body.push_str(&table(
            "Newest first",
            &["At", "Rule", "Group", "Window", "Step", "Action", "Release"],
            &rows,
        ));
        Ok((format!("Monitoring of {name}"), body))
    })
    .await
}

async fn incidents(State(d): State<Shared>, headers: HeaderMap) -> Response {
    guarded(&d, &headers, |_| async {
        let rows: Vec<Vec<String>> = d
            .app
            .vigil
            .list_incidents(false)
            .await?
            .iter()
            .map(|i| {
                vec![
                    i.id.to_string(),
                    esc(&i.title),
                    esc(&i.severity),
                    esc(&i.status),
                    esc(i.owner.as_deref().unwrap_or("")),
                    i.model.as_ref().map_or(String::new(), |m| {
                        link(&format!("/monitoring/{}", seg(m.as_str())), m.as_str())
                    }),
                    esc(&format!("{} by {}", i.opened_at, i.opened_by)),
                    esc(&i.closed_at.map_or(String::new(), |t| t.to_string())),
                ]
            })
            .collect();
        let body = format!(
            "<h1>Incidents</h1><p>Opened by monitor rules or by hand (<code>vigil incident open</code>).</p>{}",
            table(
                "",
                &["#", "Title", "Severity", "Status", "Owner", "Model", "Opened", "Closed"],
                &rows
            )
        );
        Ok(("Incidents".to_owned(), body))
    })
    .await
}

async fn audit(State(d): State<Shared>, headers: HeaderMap) -> Response {
    guarded(&d, &headers, |_| async {
        let v = &d.app.vigil;
        let report = v.verify_audit().await?;
        let status = match &report.outcome {
            VerifyOutcome::Intact => format!(
                "{} every one of {} events verified; head <code>{}</code>",
                badge("met", "intact"),
                report.verified,
                esc(&report.head.map(|h| h.to_hex()).unwrap_or_default())
            ),
            VerifyOutcome::Broken { message, .. } => format!(
                "{} {} (events verified before the break: {})",
                badge("broken", "BROKEN"),
                esc(message),
                report.verified
            ),
        };
        let rows: Vec<Vec<String>> = v
            .recent_audit(AUDIT_ROWS)
            .await?
            .iter()
            .rev()
            .map(|e| {
                vec![
                    e.seq.to_string(),
                    esc(&e.at.to_string()),
                    esc(&e.actor),
                    esc(&e.action),
                    esc(&e.subject),
                    format!("<code>{}</code>", esc(&e.hash.to_hex()[..16])),
                ]
            })
            .collect();
        let body = format!(
            "<h1>Audit log</h1><p class=\"note\" id=\"verification\">Chain verification: {status}</p>{}",
            table(
                &format!("The newest {AUDIT_ROWS} events, newest first"),
                &["#", "At", "Actor", "Action", "Subject", "Hash"],
                &rows
            )
        );
        Ok(("Audit log".to_owned(), body))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_and_cookie_parsing() {
        assert_eq!(
            form_token(b"token=vigil_ab%20c+d").as_deref(),
            Some("vigil_ab c d")
        );
        assert_eq!(form_token(b"x=1&token=t").as_deref(), Some("t"));
        assert_eq!(form_token(b"x=1"), None);
        assert_eq!(form_token(b"token=%zz"), None);
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; vigil_session=abc"),
        );
        assert_eq!(cookie(&h).as_deref(), Some("abc"));
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
        assert!(same_origin(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:8080"),
        );
        assert!(same_origin(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://evil.example"),
        );
        assert!(!same_origin(&h));
    }
}
