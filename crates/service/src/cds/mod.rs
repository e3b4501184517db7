//! The CDS Hooks service: discovery, the service call and feedback.
//!
//! A call is authenticated (client JWT), validated, mapped from prefetch — and, for templates
//! the EHR did not prefetch, from its `fhirServer` inside a time budget — into the contract's
//! named inputs, scored with the production release (the shadow release is scored off the
//! response path and never shown), turned into cards under the alert-fatigue controls, and
//! recorded as a prediction before the answer is sent. Nothing here invents a score: missing,
//! stale or unconvertible data, a model error or a timeout gives the fallback with its reason.

mod clients;
mod fetch;
mod record;
mod write;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{Value, json};
use vigil_cds::card::{self, CardContext, Indicator};
use vigil_cds::prefetch::{self, Template};
use vigil_cds::pruned::Pruned;
use vigil_cds::{CdsRequest, FeedbackOutcome, fhir};
use vigil_domain::prediction::PredictionMode;
use vigil_domain::{CdsNoScore, CdsSettings, FeatureContract, Model, Release, Stage, Timestamp};
use vigil_inference::contract::{Fallback, Scored, Scorer};
use vigil_store::{CdsCardRecord, CdsFeedbackRecord};

pub use clients::{Caller, CdsClient, ClientKeys};
pub use fetch::{FetchError, Fetcher};
pub use record::{CdsFeature, CdsPrediction};

use crate::monitor::DeploymentControls;
use crate::serving::Serving;
use crate::{Error, ErrorKind, Result, Vigil, audit_event};
use write::{AlertCheck, Cards, CdsWork, JtiClaim, Reply, Shown};

/// How the service is reached and how long it may wait.
#[derive(Debug, Clone)]
pub struct CdsConfig {
    /// The public base URL of this Vigil, as EHRs call it (`https://vigil.example.org`): the
    /// `aud` of every token is this plus the path called, and card links start with it.
    pub public_url: String,
    /// Time budget for fetching what was not prefetched.
    pub fetch_timeout: Duration,
    /// Tolerated clock difference with clients, in seconds.
    pub leeway_secs: i64,
}

impl CdsConfig {
    pub fn new(public_url: impl Into<String>) -> CdsConfig {
        CdsConfig {
            public_url: public_url.into().trim_end_matches('/').to_string(),
            fetch_timeout: Duration::from_millis(2000),
            leeway_secs: vigil_cds::jwt::DEFAULT_LEEWAY_SECS,
        }
    }
}

/// A release loaded for scoring.
#[derive(Debug, Clone)]
pub struct LoadedRelease {
    pub release: Release,
    pub scorer: Arc<Scorer>,
}

/// One CDS service: a model with a release in production or shadow.
#[derive(Debug, Clone)]
pub struct CdsModel {
    pub id: String,
    pub hook: String,
    pub model: Model,
    pub contract: Arc<FeatureContract>,
    pub templates: Vec<Template>,
    pub production: Option<LoadedRelease>,
    pub shadow: Option<LoadedRelease>,
    /// The monitor's suppress and disable controls, as of the catalog's last reload.
    pub controls: DeploymentControls,
}

impl CdsModel {
    fn settings(&self) -> CdsSettings {
        self.model.intended_use.cds.clone().unwrap_or_default()
    }
}

/// What a service call answers.
#[derive(Debug, Clone, PartialEq)]
pub enum CdsAnswer {
    /// 200 with `{"cards": [...]}`.
    Cards(Value),
    /// 412 with a FHIR OperationOutcome: required data was not prefetched and cannot be fetched.
    PreconditionFailed(Value),
}

/// The CDS Hooks service over one Vigil.
pub struct CdsService {
    vigil: Vigil,
    config: CdsConfig,
    fetcher: Fetcher,
    public_url: RwLock<String>,
    catalog: RwLock<Arc<Vec<Arc<CdsModel>>>>,
    /// [`Serving::changes`] when the catalog was last built.
    catalog_at: AtomicU64,
    catalog_lock: tokio::sync::Mutex<()>,
    jku: clients::JkuCache,
    /// The serving runtime whose group commit records the calls, once attached.
    serving: OnceLock<Arc<Serving>>,
    seen: write::SeenTokens,
    /// Registered clients as last read from the store.
    clients: Arc<clients::ClientCache>,
}

impl std::fmt::Debug for CdsService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CdsService")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// A time-ordered (version 7, RFC 9562) UUID: the Unix time in milliseconds, then 74 random
/// bits. Ids made one after another sort together, so the store's indexes on request ids and
/// card uuids grow at their end instead of touching a random page of each on every call.
pub fn new_uuid() -> Result<String> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).map_err(|e| {
        Error::internal(format!("the operating system's random source failed: {e}"))
    })?;
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    b[..6].copy_from_slice(&ms.to_be_bytes()[2..]);
    b[6] = (b[6] & 0x0f) | 0x70;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    ))
}

fn bad_request(e: vigil_cds::RequestError) -> Error {
    Error::invalid(e.code, format!("{} (field `{}`)", e.message, e.field))
}

/// A call's outcome before cards: a score or the fallback.
enum Outcome {
    Scored(Scored),
    Fallback(Fallback),
    /// Data could not be had at all (fetch timeout or failure): no scoring was attempted.
    Unavailable {
        reason: &'static str,
        detail: String,
    },
}

impl CdsService {
    /// A service that records each call in a transaction of its own (until
    /// [`CdsService::attach`] gives it a serving runtime). Loads the catalog.
    pub async fn new(vigil: Vigil, config: CdsConfig) -> Result<CdsService> {
        let fetcher = Fetcher::new().map_err(|e| Error::internal(e.message))?;
        let svc = CdsService {
            vigil,
            public_url: RwLock::new(config.public_url.clone()),
            config,
            fetcher,
            catalog: RwLock::new(Arc::new(Vec::new())),
            catalog_at: AtomicU64::new(0),
            catalog_lock: tokio::sync::Mutex::new(()),
            jku: clients::JkuCache::default(),
            serving: OnceLock::new(),
            seen: write::SeenTokens::default(),
            clients: Arc::default(),
        };
        svc.reload().await?;
        Ok(svc)
    }

    /// Records calls through `serving`'s group commit from now on, takes loaded releases
    /// from its runtime, and refreshes the catalog (and the cached clients) whenever the
    /// runtime sees a change in the store. A second call changes nothing.
    pub fn attach(&self, serving: Arc<Serving>) {
        let _ = self.serving.set(serving);
        // Forces a refresh on the next call.
        self.catalog_at.store(u64::MAX, Ordering::Release);
    }

    /// The change counter the catalog and client cache follow, when a runtime is attached.
    fn changes(&self) -> Option<u64> {
        self.serving.get().map(|s| s.changes())
    }

    /// Reloads the catalog when the attached runtime saw a change since it was built.
    async fn refresh(&self) -> Result<()> {
        let Some(now) = self.changes() else {
            return Ok(());
        };
        if self.catalog_at.load(Ordering::Acquire) == now {
            return Ok(());
        }
        let _g = self.catalog_lock.lock().await;
        if self.catalog_at.load(Ordering::Acquire) == now {
            return Ok(());
        }
        self.reload().await?;
        self.catalog_at.store(now, Ordering::Release);
        Ok(())
    }

    pub fn config(&self) -> &CdsConfig {
        &self.config
    }

    /// The public base URL in force (see [`CdsConfig::public_url`]).
    pub fn public_url(&self) -> String {
        self.public_url
            .read()
            .map(|u| u.clone())
            .unwrap_or_else(|_| self.config.public_url.clone())
    }

    /// Sets the public base URL once the listening address is known.
    pub fn set_public_url(&self, url: &str) {
        if let Ok(mut u) = self.public_url.write() {
            *u = url.trim_end_matches('/').to_string();
        }
    }

    pub fn vigil(&self) -> &Vigil {
        &self.vigil
    }

    /// Loads every model whose intended use names a hook and that has a release in production
    /// or shadow. Called at start and after a promotion or rollback.
    pub async fn reload(&self) -> Result<()> {
        let previous = self.catalog();
        let mut out = Vec::new();
        for model in self.vigil.list_models().await? {
            let Some(hook) = model.intended_use.cds_hook.clone() else {
                continue;
            };
            let stages = self.vigil.list_release_stages(model.name.as_str()).await?;
            let mut production = None;
            let mut shadow = None;
            for (r, s) in stages {
                match s {
                    Stage::Production => production = Some(self.load_release(r, &previous)?),
                    Stage::Shadow => shadow = Some(self.load_release(r, &previous)?),
                    _ => {}
                }
            }
            let Some(contract) = production
                .as_ref()
                .or(shadow.as_ref())
                .map(|l| Arc::new(l.scorer.contract().clone()))
            else {
                continue;
            };
            let controls = self.vigil.deployment_controls(model.name.as_str()).await?;
            out.push(Arc::new(CdsModel {
                id: model.name.to_string(),
                hook,
                templates: prefetch::templates(&contract),
                contract,
                model,
                production,
                shadow,
                controls,
            }));
        }
        if let Ok(mut c) = self.catalog.write() {
            *c = Arc::new(out);
        }
        Ok(())
    }

    /// A release for scoring: the one already loaded (by the previous catalog or by the
    /// attached serving runtime) when there is one, else read and compiled.
    fn load_release(&self, release: Release, previous: &[Arc<CdsModel>]) -> Result<LoadedRelease> {
        let known = previous
            .iter()
            .flat_map(|m| [&m.production, &m.shadow])
            .flatten()
            .find(|l| l.release.id == release.id);
        if let Some(l) = known {
            return Ok(l.clone());
        }
        if let Some(s) = self.serving.get() {
            let d = s.deployments();
            let loaded = d
                .models
                .values()
                .flat_map(|d| [&d.active, &d.shadow])
                .flatten()
                .find(|l| l.id() == &release.id);
            if let Some(l) = loaded {
                return Ok(LoadedRelease {
                    release,
                    scorer: Arc::new(l.scorer.clone()),
                });
            }
        }
        let contract = self.vigil.release_contract(&release)?;
        let artifact = self.vigil.release_artifact(&release)?;
        let model = vigil_inference::Model::from_bytes(&artifact)
            .map_err(|e| Error::internal(format!("the release's model cannot be loaded: {e}")))?;
        let scorer = Scorer::new(Arc::new(contract), Arc::new(model)).map_err(|e| {
            Error::internal(format!(
                "the release's model does not fit its contract: {e}"
            ))
        })?;
        Ok(LoadedRelease {
            release,
            scorer: Arc::new(scorer),
        })
    }

    fn catalog(&self) -> Arc<Vec<Arc<CdsModel>>> {
        self.catalog.read().map(|c| c.clone()).unwrap_or_default()
    }

    fn service(&self, id: &str) -> Result<Arc<CdsModel>> {
        self.catalog()
            .iter()
            .find(|m| m.id == id)
            .cloned()
            .ok_or_else(|| {
                Error::not_found(
                    "cds_service_not_found",
                    format!("there is no CDS service `{id}`"),
                )
            })
    }

    /// The URL a call to `path` (`/cds-services/...`) is addressed to: the token's `aud`.
    pub fn audience(&self, path: &str) -> String {
        format!("{}{}", self.public_url(), path)
    }

    /// `GET /cds-services`.
    pub async fn discovery(&self, authorization: Option<&str>) -> Result<Value> {
        self.authenticate(authorization, &self.audience("/cds-services"))
            .await?;
        self.refresh().await?;
        let services: Vec<Value> = self
            .catalog()
            .iter()
            .map(|m| {
                let iu = &m.model.intended_use;
                json!({
                    "hook": m.hook,
                    "id": m.id,
                    "title": iu.title.clone().unwrap_or_else(|| m.id.clone()),
                    "description": first_sentence(&iu.output),
                    "prefetch": prefetch::discovery_prefetch(&m.templates),
                    "usageRequirements": format!("For: {}", first_sentence(&iu.target_population)),
                })
            })
            .collect();
        Ok(json!({ "services": services }))
    }

    /// `POST /cds-services/{id}`.
    pub async fn call(
        &self,
        id: &str,
        authorization: Option<&str>,
        body: &[u8],
    ) -> Result<CdsAnswer> {
        let started = Instant::now();
        let audience = self.audience(&format!("/cds-services/{id}"));
        let caller = self.authenticate_deferred(authorization, &audience).await?;
        let claim = JtiClaim {
            id: vigil_store::JtiClaim {
                iss: caller.iss.clone(),
                jti: caller.jti.clone(),
                expires_at: caller.jti_expires_at,
            },
            now: self.vigil.clock.now(),
            client: caller.verified_by.clone(),
        };
        match self.answer(id, &caller, claim.clone(), body, started).await {
            Ok(Ok(a)) => Ok(a),
            Ok(Err(refusal)) => Err(self.refused(refusal, Some(caller.iss), &audience).await),
            Err(e) => {
                // The call's writes did not happen: the token id is still never to be used
                // again.
                let _ = self
                    .vigil
                    .store
                    .cds_remember_jti(&claim.id.iss, &claim.id.jti, claim.id.expires_at, claim.now)
                    .await;
                Err(e)
            }
        }
    }

    /// Commits a call's writes (with the serving runtime's group commit once attached) and
    /// gives its reply.
    async fn commit(&self, work: CdsWork) -> Result<Reply> {
        let reply = match self.serving.get() {
            Some(s) => {
                let ticket = s.recorder().submit_work(Box::new(work)).await;
                match tokio::time::timeout(s.record_timeout(), ticket.reply()).await {
                    Ok(r) => r?,
                    Err(_) => {
                        return Err(Error::new(
                            ErrorKind::Unavailable,
                            "prediction_not_recorded",
                            "the call's record was not durable in time, so it is not answered; retry later",
                        ));
                    }
                }
            }
            None => Some(crate::serving::commit_work(&self.vigil, Box::new(work)).await?),
        };
        reply
            .and_then(|r| r.downcast::<Reply>().ok())
            .map(|r| *r)
            .ok_or_else(|| Error::internal("a CDS call's writes gave no reply"))
    }

    /// Records a shadow scoring off the response path.
    fn record_shadow(&self, rec: CdsPrediction) {
        match self.serving.get() {
            Some(s) => {
                let r = s.recorder().clone();
                tokio::spawn(async move { r.submit_detached(rec).await });
            }
            None => {
                let vigil = self.vigil.clone();
                tokio::spawn(async move {
                    // A failed shadow record must not touch the live answer.
                    if let Err(e) = vigil.record_predictions(&[rec]).await {
                        eprintln!("cds: shadow record not written ({}): {}", e.code, e.message);
                    }
                });
            }
        }
    }

    /// The call once authenticated; an inner error when its token turned out not to stand
    /// (see [`Reply::Refused`]).
    async fn answer(
        &self,
        id: &str,
        caller: &Caller,
        claim: JtiClaim,
        body: &[u8],
        started: Instant,
    ) -> Result<std::result::Result<CdsAnswer, Error>> {
        self.refresh().await?;
        let svc = self.service(id)?;
        let req = CdsRequest::parse(body, &svc.hook).map_err(bad_request)?;
        let now = self.vigil.clock.now();
        let request_id = new_uuid()?;
        let patient_id = req.patient_id().unwrap_or_default().to_string();
        let patient_key =
            (!patient_id.is_empty()).then(|| self.vigil.pseudonymise("patient", &patient_id));
        let encounter_key = req
            .encounter_id()
            .map(|e| self.vigil.pseudonymise("encounter", e));

        // Prefetch, then fetch what is missing.
        let mut docs: Vec<Pruned> = Vec::new();
        let mut missing: Vec<&Template> = Vec::new();
        let mut resources: Vec<&Pruned> = Vec::new();
        for v in req.prefetch.values() {
            fhir::collect(v, &mut resources);
        }
        let has_patient = resources.iter().any(|r| {
            r.get("resourceType").and_then(Pruned::as_str) == Some("Patient")
                && r.get("id").and_then(Pruned::as_str) == Some(patient_id.as_str())
        });
        for t in &svc.templates {
            let given = req.prefetch.get(&t.key).is_some_and(|v| !v.is_null());
            let patient_elsewhere = t.query.starts_with("Patient/") && has_patient;
            if !given && !patient_elsewhere {
                missing.push(t);
            }
        }
        let mut fetched = Vec::new();
        let mut unavailable: Option<(&'static str, String)> = None;
        let mut refused_keys: Vec<String> = Vec::new();
        if !missing.is_empty() {
            match &req.fhir_server {
                None => {
                    refused_keys = missing
                        .iter()
                        .filter(|t| t.required)
                        .map(|t| t.key.clone())
                        .collect();
                }
                Some(base) => {
                    let deadline = Instant::now() + self.config.fetch_timeout;
                    let bearer = req
                        .fhir_authorization
                        .as_ref()
                        .map(|a| a.access_token.as_str());
                    let futs = missing.iter().map(|t| {
                        let q = prefetch::resolve(&t.query, &req.context);
                        async move {
                            match q {
                                None => (
                                    *t,
                                    Err(FetchError {
                                        code: "prefetch_token",
                                        message: "the context lacks a value the query needs".into(),
                                    }),
                                ),
                                Some(q) => {
                                    (*t, self.fetcher.fhir(base, &q, bearer, deadline).await)
                                }
                            }
                        }
                    });
                    for (t, r) in futures_join(futs).await {
                        match r {
                            Ok(pages) => {
                                fetched.push(t.key.clone());
                                docs.extend(pages.iter().map(Pruned::from_value));
                            }
                            Err(e) if t.required => {
                                if e.is_refusal() || e.code == "prefetch_token" {
                                    refused_keys.push(t.key.clone());
                                } else if unavailable.is_none() {
                                    unavailable =
                                        Some((e.code, format!("{}: {}", t.key, e.message)));
                                }
                            }
                            Err(_) => {}
                        }
                    }
                }
            }
        }
        for d in &docs {
            fhir::collect(d, &mut resources);
        }
        let mapped = fhir::map_inputs(&svc.contract, &resources, &patient_id, now);

        let mut context = json!({
            "hook": req.hook,
            "hookInstance": req.hook_instance,
            "service": svc.id,
            "client": caller.iss,
            "fetched": fetched,
            "mapping": mapped,
        });

        // Required data that could not be had: 412, as the specification says.
        if !refused_keys.is_empty() {
            let outcome = card::operation_outcome(
                "processing",
                &format!(
                    "Cannot compute {}: required FHIR data was not prefetched and cannot be fetched.",
                    svc.id
                ),
                &format!(
                    "CDS Hooks prefetch key(s) {} absent and not fetchable",
                    refused_keys.join(", ")
                ),
                &[],
            );
            context["missing_prefetch"] = json!(refused_keys);
            let Some(live) = svc.production.as_ref().or(svc.shadow.as_ref()) else {
                return Err(Error::internal("a CDS service without a release"));
            };
            let record = self.record_of(
                &svc,
                live,
                svc.production.is_none(),
                &request_id,
                now,
                &patient_key,
                &encounter_key,
                &Outcome::Unavailable {
                    reason: "prefetch_unavailable",
                    detail: String::new(),
                },
                &mapped,
                None,
                started,
                context,
            );
            let work = CdsWork {
                jti: Some(claim),
                cards: Cards::Fixed(Shown::default()),
                record: Some(record),
            };
            return Ok(match self.commit(work).await? {
                Reply::Refused(e) => Err(e),
                Reply::Cards(_) => Ok(CdsAnswer::PreconditionFailed(outcome)),
            });
        }

        let disabled = svc.controls.is_disabled();
        let score_with = |l: &LoadedRelease| match &unavailable {
            _ if disabled => Outcome::Unavailable {
                reason: "deployment_disabled",
                detail: String::new(),
            },
            Some((code, detail)) => Outcome::Unavailable {
                reason: code,
                detail: detail.clone(),
            },
            None => match l.scorer.score(&mapped.inputs, now) {
                Ok(s) => Outcome::Scored(s),
                Err(f) => Outcome::Fallback(f),
            },
        };

        // Shadow: scored and recorded off the response path, never shown.
        if let Some(sh) = &svc.shadow {
            let outcome = score_with(sh);
            let rec = self.record_of(
                &svc,
                sh,
                true,
                &request_id,
                now,
                &patient_key,
                &encounter_key,
                &outcome,
                &mapped,
                None,
                started,
                context.clone(),
            );
            self.record_shadow(rec);
        }

        let Some(prod) = &svc.production else {
            // Silent mode: only a shadow release, no cards; the token id is still written.
            let work = CdsWork {
                jti: Some(claim),
                cards: Cards::Fixed(Shown::default()),
                record: None,
            };
            return Ok(match self.commit(work).await? {
                Reply::Refused(e) => Err(e),
                Reply::Cards(_) => Ok(CdsAnswer::Cards(json!({"cards": []}))),
            });
        };
        let outcome = score_with(prod);
        let settings = svc.settings();
        let base_url = self.public_url();
        let ctx = CardContext {
            model: &svc.id,
            release: &prod.release.id,
            intended_use: &svc.model.intended_use,
            contract: &svc.contract,
            base_url: &base_url,
            service_id: &svc.id,
            hook_context: &req.context,
        };
        let row = |uuid: &str, kind: &str, ind: Indicator| CdsCardRecord {
            uuid: uuid.to_string(),
            model: svc.id.clone(),
            release: prod.release.id.to_string(),
            request_id: request_id.clone(),
            hook_instance: req.hook_instance.clone(),
            patient_key: patient_key.clone(),
            kind: kind.to_string(),
            indicator: ind.as_str().to_string(),
            indicator_rank: ind as i64,
            created_at: now,
        };
        // Suppressed by the monitor: scored and recorded, nothing shown.
        let suppressed = svc.controls.is_suppressed();
        let held = |decision: String| Shown {
            decision: Some(decision),
            suppressed: Some("monitor_suppressed"),
            ..Shown::default()
        };
        let cards = match &outcome {
            Outcome::Scored(s) => {
                let thresholds = &prod.release.manifest.thresholds;
                match card::indicator(s.score, thresholds) {
                    None => Cards::Fixed(Shown {
                        decision: Some("below_threshold".into()),
                        ..Shown::default()
                    }),
                    Some(ind) if suppressed => {
                        Cards::Fixed(held(format!("{}:monitor_suppressed", ind.as_str())))
                    }
                    Some(ind) => {
                        let uuid = new_uuid()?;
                        let alert = Shown {
                            cards: vec![card::risk_card(&ctx, s, thresholds, ind, &uuid)],
                            rows: vec![row(&uuid, "risk", ind)],
                            decision: Some(ind.as_str().into()),
                            suppressed: None,
                        };
                        if settings.suppression_window.is_none()
                            && settings.daily_alert_budget.is_none()
                        {
                            Cards::Fixed(alert)
                        } else {
                            let info = Shown {
                                cards: vec![card::risk_card(
                                    &ctx,
                                    s,
                                    thresholds,
                                    Indicator::Info,
                                    &uuid,
                                )],
                                rows: vec![row(&uuid, "info", Indicator::Info)],
                                decision: None,
                                suppressed: None,
                            };
                            Cards::Alert(Box::new(AlertCheck {
                                model: svc.id.clone(),
                                patient_key: patient_key.clone(),
                                indicator: ind,
                                now,
                                settings: settings.clone(),
                                alert,
                                info,
                            }))
                        }
                    }
                }
            }
            Outcome::Fallback(_) | Outcome::Unavailable { .. } if suppressed => {
                Cards::Fixed(Shown {
                    suppressed: Some("monitor_suppressed"),
                    ..Shown::default()
                })
            }
            Outcome::Fallback(_) | Outcome::Unavailable { .. } => {
                if settings.on_fallback == CdsNoScore::InfoCard {
                    let (text, features) = fallback_text(&outcome, &mapped);
                    let uuid = new_uuid()?;
                    Cards::Fixed(Shown {
                        cards: vec![card::fallback_card(&ctx, &text, &features, &uuid)],
                        rows: vec![row(&uuid, "fallback", Indicator::Info)],
                        decision: None,
                        suppressed: None,
                    })
                } else {
                    Cards::Fixed(Shown::default())
                }
            }
        };
        let record = self.record_of(
            &svc,
            prod,
            false,
            &request_id,
            now,
            &patient_key,
            &encounter_key,
            &outcome,
            &mapped,
            None,
            started,
            context,
        );
        let work = CdsWork {
            jti: Some(claim),
            cards,
            record: Some(record),
        };
        Ok(match self.commit(work).await? {
            Reply::Refused(e) => Err(e),
            Reply::Cards(cards) => Ok(CdsAnswer::Cards(json!({ "cards": cards }))),
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn record_of(
        &self,
        svc: &CdsModel,
        release: &LoadedRelease,
        shadow: bool,
        request_id: &str,
        now: Timestamp,
        patient_key: &Option<String>,
        encounter_key: &Option<String>,
        outcome: &Outcome,
        mapped: &fhir::Mapped,
        decision: Option<String>,
        started: Instant,
        mut context: Value,
    ) -> CdsPrediction {
        if let Outcome::Unavailable { detail, .. } = outcome
            && !detail.is_empty()
        {
            context["unavailable"] = json!(detail);
        }
        let (features, score, fallback_reason) = match outcome {
            Outcome::Scored(s) => (
                record::features(&s.assembled.features, mapped),
                Some(s.score),
                None,
            ),
            Outcome::Fallback(f) => (
                record::features(&f.outcomes, mapped),
                None,
                Some(f.reason.as_str().to_string()),
            ),
            Outcome::Unavailable { reason, .. } => (
                record::unmapped(&svc.contract, mapped),
                None,
                Some(reason.to_string()),
            ),
        };
        CdsPrediction {
            seq: None,
            request_id: request_id.to_string(),
            recorded_at: now,
            model: svc.id.clone(),
            release: release.release.id,
            mode: if shadow {
                PredictionMode::Shadow
            } else {
                PredictionMode::Active
            },
            channel: "cds".into(),
            patient_key: patient_key.clone(),
            encounter_key: encounter_key.clone(),
            features,
            score,
            decision,
            fallback_reason,
            latency_us: started.elapsed().as_micros() as i64,
            context,
        }
    }

    /// `POST /cds-services/{id}/feedback`: recorded and linked to the card and prediction.
    pub async fn feedback(
        &self,
        id: &str,
        authorization: Option<&str>,
        body: &[u8],
    ) -> Result<usize> {
        let caller = self
            .authenticate(
                authorization,
                &self.audience(&format!("/cds-services/{id}/feedback")),
            )
            .await?;
        self.refresh().await?;
        let svc = self.service(id)?;
        let items = vigil_cds::request::parse_feedback(body).map_err(bad_request)?;
        let now = self.vigil.clock.now();
        let mut tx = self.vigil.store.begin().await?;
        let mut linked = 0;
        for it in &items {
            let card = tx.cds_card(&it.card).await?.filter(|c| c.model == svc.id);
            linked += usize::from(card.is_some());
            tx.insert_cds_feedback(&CdsFeedbackRecord {
                seq: None,
                model: svc.id.clone(),
                card_uuid: it.card.clone(),
                request_id: card.as_ref().map(|c| c.request_id.clone()),
                release: card.as_ref().map(|c| c.release.clone()),
                outcome: it.outcome.as_str().to_string(),
                override_code: it.override_code.clone(),
                override_display: it.override_display.clone(),
                user_comment: it.user_comment.clone(),
                accepted_suggestions: it.accepted_suggestions.clone(),
                outcome_at: it.outcome_timestamp,
                received_at: now,
                client_iss: caller.iss.clone(),
            })
            .await?;
        }
        let ev = audit_event(
            &clients::cds_actor(),
            "cds.feedback",
            format!("model:{}", svc.id),
            json!({"entries": items.len(), "linked": linked, "client": caller.iss}),
        )?;
        tx.append_audit(now, &ev).await?;
        tx.commit().await?;
        Ok(items.len())
    }
}

fn first_sentence(s: &str) -> String {
    let s = s.split_whitespace().collect::<Vec<_>>().join(" ");
    match s.find(". ") {
        Some(i) => s[..=i].to_string(),
        None => s,
    }
}

/// Runs futures concurrently and collects their results in order.
async fn futures_join<F: std::future::Future>(futs: impl Iterator<Item = F>) -> Vec<F::Output> {
    let mut pinned: Vec<std::pin::Pin<Box<F>>> = futs.map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = pinned.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in pinned.iter_mut().enumerate() {
            if out[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => out[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter().flatten().collect()
}

/// Why no risk was computed, in words for the card (no values), and the features concerned.
fn fallback_text(outcome: &Outcome, mapped: &fhir::Mapped) -> (String, Vec<String>) {
    match outcome {
        Outcome::Fallback(f) => {
            let why = match f.reason {
                vigil_inference::contract::FallbackReason::MissingRequired => {
                    "Required inputs are missing, out of their plausible range, too old, or in a unit that cannot be converted."
                }
                vigil_inference::contract::FallbackReason::MissingOptional => {
                    "An input the model cannot do without is missing."
                }
                vigil_inference::contract::FallbackReason::ProhibitedInput => {
                    "The request carried an input the model must never use."
                }
                vigil_inference::contract::FallbackReason::ModelError => {
                    "The model failed to compute a risk."
                }
            };
            let mut feats = f.features.clone();
            for name in &mut feats {
                if let Some(m) = mapped.feature(name)
                    && let Some(code) = m.refused
                {
                    name.push_str(&format!(" ({})", code.replace('_', " ")));
                }
            }
            (why.to_string(), feats)
        }
        Outcome::Unavailable { reason, .. } => (
            match *reason {
                "fhir_timeout" => {
                    "The patient's data could not be fetched from the EHR in time.".to_string()
                }
                "deployment_disabled" => {
                    "The model is disabled by its monitoring policy; no risk is computed."
                        .to_string()
                }
                _ => "The patient's data could not be fetched from the EHR.".to_string(),
            },
            vec![],
        ),
        Outcome::Scored(_) => (String::new(), vec![]),
    }
}

/// Acceptance and override counts for one period.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct FeedbackPeriod {
    pub period: String,
    pub cards_with_feedback: usize,
    pub accepted: usize,
    pub overridden: usize,
    pub acceptance_rate: Option<f64>,
    pub override_rate: Option<f64>,
    /// Override reasons (display, else code, else "no reason given") with their counts.
    pub reasons: BTreeMap<String, usize>,
}

/// `vigil feedback summary MODEL`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FeedbackSummary {
    pub model: String,
    pub by: String,
    pub total: FeedbackPeriod,
    pub periods: Vec<FeedbackPeriod>,
    /// Feedback entries that name a card this service never showed.
    pub unlinked: usize,
}

impl Vigil {
    /// Acceptance and override rates and the reasons, by `day`, `week` (ISO, from Monday) or
    /// `month`.
    pub async fn feedback_summary(
        &self,
        model: &str,
        by: &str,
        since: Option<Timestamp>,
    ) -> Result<FeedbackSummary> {
        let model = self.get_model(model).await?.name.to_string();
        if !["day", "week", "month"].contains(&by) {
            return Err(Error::invalid(
                "period_invalid",
                "the period is day, week or month",
            ));
        }
        let rows = self.store.list_cds_feedback(&model, since).await?;
        let key = |t: Timestamp| {
            let (y, m, d) = t.date();
            match by {
                "day" => format!("{y:04}-{m:02}-{d:02}"),
                "month" => format!("{y:04}-{m:02}"),
                _ => {
                    let days = t.as_unix_seconds().div_euclid(86_400);
                    // 1970-01-01 was a Thursday: Monday-based weeks start 3 days earlier.
                    let monday = days - (days + 3).rem_euclid(7);
                    let (y, m, d) = vigil_domain::time::civil_from_days(monday);
                    format!("week of {y:04}-{m:02}-{d:02}")
                }
            }
        };
        let mut periods: BTreeMap<String, FeedbackPeriod> = BTreeMap::new();
        let mut total = FeedbackPeriod {
            period: "all".into(),
            ..Default::default()
        };
        let mut unlinked = 0;
        for r in &rows {
            unlinked += usize::from(r.request_id.is_none());
            let k = key(r.outcome_at);
            let p = periods.entry(k.clone()).or_insert_with(|| FeedbackPeriod {
                period: k,
                ..Default::default()
            });
            for p in [p, &mut total] {
                p.cards_with_feedback += 1;
                if r.outcome == FeedbackOutcome::Accepted.as_str() {
                    p.accepted += 1;
                } else {
                    p.overridden += 1;
                    let reason = r
                        .override_display
                        .clone()
                        .or_else(|| r.override_code.clone())
                        .unwrap_or_else(|| "no reason given".into());
                    *p.reasons.entry(reason).or_default() += 1;
                }
            }
        }
        let rates = |p: &mut FeedbackPeriod| {
            if p.cards_with_feedback > 0 {
                let n = p.cards_with_feedback as f64;
                p.acceptance_rate = Some(p.accepted as f64 / n);
                p.override_rate = Some(p.overridden as f64 / n);
            }
        };
        rates(&mut total);
        let mut periods: Vec<FeedbackPeriod> = periods.into_values().collect();
        periods.iter_mut().for_each(rates);
        Ok(FeedbackSummary {
            model,
            by: by.to_string(),
            total,
            periods,
            unlinked,
        })
    }
}

impl From<FetchError> for Error {
    fn from(e: FetchError) -> Error {
        Error::new(ErrorKind::Unavailable, e.code, e.message)
    }
}

#[cfg(test)]
mod tests {
    use super::new_uuid;

    #[test]
    fn uuids_are_version_7_and_sort_by_time() {
        let a = new_uuid().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = new_uuid().unwrap();
        for u in [&a, &b] {
            assert_eq!(u.len(), 36);
            assert_eq!(&u[14..15], "7", "{u}");
            assert!("89ab".contains(&u[19..20]), "{u}");
            assert_eq!(u.matches('-').count(), 4);
        }
        assert!(a < b, "{a} then {b}");
        assert_ne!(new_uuid().unwrap(), new_uuid().unwrap());
    }
}
