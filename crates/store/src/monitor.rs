//! Storage of monitoring: reference profiles, outcomes and their imports, monitor policy
//! versions, rule states, firings, webhook deliveries, incidents and their timelines,
//! deployment controls, revalidation notices and rehearsals.

use sqlx::Row;
use vigil_domain::{Digest, ModelName, ReleaseId, Timestamp, UserName};

use crate::{Conn, Error, Result, Tx, on_conn, reads};

fn dec<T, E: std::fmt::Display>(r: std::result::Result<T, E>, what: &str) -> Result<T> {
    r.map_err(|e| Error::corrupt(format!("{what}: {e}")))
}

fn ts(s: &str, what: &str) -> Result<Timestamp> {
    dec(Timestamp::parse(s), what)
}

fn json(s: &str, what: &str) -> Result<serde_json::Value> {
    dec(serde_json::from_str(s), what)
}

/// A release's stored reference profile: the blob holding its samples, and its summary.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ReferenceProfileRecord {
    pub release: ReleaseId,
    pub digest: Digest,
    pub summary: serde_json::Value,
    pub computed_at: Timestamp,
}

/// One label joined later to prediction records.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct OutcomeRecord {
    /// `encounter` or `request`.
    pub key_kind: String,
    pub key: String,
    pub label: bool,
    pub observed_at: Option<Timestamp>,
    pub imported_at: Timestamp,
}

/// A rule's state for one deployment and subgroup, as JSON.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct RuleStateRecord {
    pub rule: String,
    pub model: ModelName,
    pub release: ReleaseId,
    pub group: String,
    pub state: serde_json::Value,
    pub updated_at: Timestamp,
}

/// A firing: a rule's verdict that led to a step (fire, repeat, clear) and its action.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct FiringRecord {
    pub id: i64,
    pub idempotency_key: String,
    pub policy_version: i64,
    pub rule: String,
    pub model: ModelName,
    pub release: ReleaseId,
    pub group: String,
    pub window_start: Timestamp,
    pub window_end: Timestamp,
    pub step: String,
    pub action: String,
    /// The numbers that triggered it, and what the action did.
    pub detail: serde_json::Value,
    pub at: Timestamp,
}

/// One attempt at delivering a webhook.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct DeliveryRecord {
    pub firing_id: Option<i64>,
    pub url: String,
    pub attempt: i64,
    pub status: Option<i64>,
    pub error: Option<String>,
    pub at: Timestamp,
}

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct IncidentRecord {
    pub id: i64,
    pub title: String,
    pub severity: String,
    pub status: String,
    pub owner: Option<String>,
    pub model: Option<ModelName>,
    pub releases: Vec<ReleaseId>,
    pub firing_id: Option<i64>,
    pub postmortem: Option<String>,
    pub opened_by: UserName,
    pub opened_at: Timestamp,
    pub closed_at: Option<Timestamp>,
}

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct IncidentEventRecord {
    pub id: i64,
    pub incident_id: i64,
    /// `opened`, `note`, `status`, `owner`, `monitor`, `action`, `closed`.
    pub kind: String,
    pub text: String,
    pub data: serde_json::Value,
    pub actor: UserName,
    pub at: Timestamp,
}

/// A suppress or disable control on a model's deployment.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ControlRecord {
    pub id: i64,
    pub model: ModelName,
    /// `suppress` or `disable`.
    pub control: String,
    pub release: Option<ReleaseId>,
    pub firing_id: Option<i64>,
    pub reason: String,
    pub set_by: UserName,
    pub set_at: Timestamp,
    pub lifted_by: Option<UserName>,
    pub lifted_at: Option<Timestamp>,
}

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct RehearsalRecord {
    pub id: i64,
    pub model: ModelName,
    pub release: ReleaseId,
    pub scenario: String,
    pub result: serde_json::Value,
    pub actor: UserName,
    pub at: Timestamp,
}

// ---- reads ------------------------------------------------------------------------------

async fn reference_profile(
    c: Conn<'_>,
    release: &ReleaseId,
) -> Result<Option<ReferenceProfileRecord>> {
    let row: Option<(String, String, String)> = on_conn!(c, c => {
        sqlx::query_as("SELECT digest, summary, computed_at FROM reference_profiles WHERE release_id = $1")
            .bind(release.to_string())
            .fetch_optional(&mut *c)
            .await?
    });
    row.map(|(d, s, at)| {
        let what = format!("reference profile of {release}");
        Ok(ReferenceProfileRecord {
            release: *release,
            digest: dec(Digest::parse(&d), &what)?,
            summary: json(&s, &what)?,
            computed_at: ts(&at, &what)?,
        })
    })
    .transpose()
}

/// Outcomes of the given kind whose key is one of `keys`.
async fn find_outcomes(c: Conn<'_>, key_kind: &str, keys: &[String]) -> Result<Vec<OutcomeRecord>> {
    let mut out = Vec::new();
    // In chunks, so that no statement carries more parameters than a backend allows.
    on_conn!(c, c => {
        for chunk in keys.chunks(500) {
            let marks: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 2)).collect();
            let sql = format!(
                "SELECT key, label, observed_at, imported_at FROM outcomes WHERE key_kind = $1 AND key IN ({})",
                marks.join(", ")
            );
            let mut q = sqlx::query(&sql).bind(key_kind);
            for k in chunk {
                q = q.bind(k);
            }
            for r in q.fetch_all(&mut *c).await? {
                let key: String = r.try_get("key")?;
                let label: i64 = r.try_get("label")?;
                let obs: Option<String> = r.try_get("observed_at")?;
                let imp: String = r.try_get("imported_at")?;
                let what = "an outcome";
                out.push(OutcomeRecord {
                    key_kind: key_kind.to_owned(),
                    key,
                    label: label == 1,
                    observed_at: obs.map(|t| ts(&t, what)).transpose()?,
                    imported_at: ts(&imp, what)?,
                });
            }
        }
    });
    Ok(out)
}

/// For each key that some prediction record carries (as its request id, or its encounter
/// key), the earliest time one was recorded.
async fn predictions_with_keys(
    c: Conn<'_>,
    key_kind: &str,
    keys: &[String],
) -> Result<Vec<(String, Timestamp)>> {
    let col = if key_kind == "request" {
        "request_id"
    } else {
        "encounter_key"
    };
    let mut out = Vec::new();
    on_conn!(c, c => {
        for chunk in keys.chunks(500) {
            let marks: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 1)).collect();
            let sql = format!(
                "SELECT {col} AS k, min(recorded_at) AS t FROM predictions WHERE {col} IN ({}) GROUP BY {col}",
                marks.join(", ")
            );
            let mut q = sqlx::query(&sql);
            for k in chunk {
                q = q.bind(k);
            }
            for r in q.fetch_all(&mut *c).await? {
                let k: String = r.try_get("k")?;
                let t: String = r.try_get("t")?;
                out.push((k, ts(&t, "a prediction record")?));
            }
        }
    });
    Ok(out)
}

async fn count_outcomes(c: Conn<'_>) -> Result<i64> {
    Ok(
        on_conn!(c, c => sqlx::query_scalar("SELECT count(*) FROM outcomes").fetch_one(&mut *c).await?),
    )
}

async fn rule_state(
    c: Conn<'_>,
    rule: &str,
    model: &ModelName,
    release: &ReleaseId,
    group: &str,
) -> Result<Option<serde_json::Value>> {
    let s: Option<String> = on_conn!(c, c => {
        sqlx::query_scalar("SELECT state FROM monitor_rule_states WHERE rule = $1 AND model = $2 AND release_id = $3 AND grp = $4")
            .bind(rule)
            .bind(model.as_str())
            .bind(release.to_string())
            .bind(group)
            .fetch_optional(&mut *c)
            .await?
    });
    s.map(|s| json(&s, &format!("state of rule {rule}")))
        .transpose()
}

async fn list_rule_states(c: Conn<'_>, model: &ModelName) -> Result<Vec<RuleStateRecord>> {
    let rows: Vec<(String, String, String, String, String)> = on_conn!(c, c => {
        sqlx::query_as("SELECT rule, release_id, grp, state, updated_at FROM monitor_rule_states WHERE model = $1 ORDER BY rule, release_id, grp")
            .bind(model.as_str())
            .fetch_all(&mut *c)
            .await?
    });
    rows.into_iter()
        .map(|(rule, rel, grp, state, at)| {
            let what = format!("state of rule {rule}");
            Ok(RuleStateRecord {
                model: model.clone(),
                release: dec(ReleaseId::parse(&rel), &what)?,
                group: grp,
                state: json(&state, &what)?,
                updated_at: ts(&at, &what)?,
                rule,
            })
        })
        .collect()
}

const FIRING_COLUMNS: &str = "id, idempotency_key, policy_version, rule, model, release_id, grp, window_start, window_end, step, action, detail, at";

async fn list_firings(c: Conn<'_>, model: Option<&ModelName>) -> Result<Vec<FiringRecord>> {
    let sql = match model {
        Some(_) => {
            format!("SELECT {FIRING_COLUMNS} FROM monitor_firings WHERE model = $1 ORDER BY id")
        }
        None => format!("SELECT {FIRING_COLUMNS} FROM monitor_firings ORDER BY id"),
    };
    on_conn!(c, c => {
        let mut q = sqlx::query(&sql);
        if let Some(m) = model {
            q = q.bind(m.as_str());
        }
        let rows = q.fetch_all(&mut *c).await?;
        rows.iter()
            .map(|r| {
                let id: i64 = r.try_get("id")?;
                let what = format!("firing {id}");
                let m: String = r.try_get("model")?;
                let rel: String = r.try_get("release_id")?;
                let ws: String = r.try_get("window_start")?;
                let we: String = r.try_get("window_end")?;
                let d: String = r.try_get("detail")?;
                let at: String = r.try_get("at")?;
                Ok(FiringRecord {
                    id,
                    idempotency_key: r.try_get("idempotency_key")?,
                    policy_version: r.try_get("policy_version")?,
                    rule: r.try_get("rule")?,
                    model: dec(ModelName::parse(&m), &what)?,
                    release: dec(ReleaseId::parse(&rel), &what)?,
                    group: r.try_get("grp")?,
                    window_start: ts(&ws, &what)?,
                    window_end: ts(&we, &what)?,
                    step: r.try_get("step")?,
                    action: r.try_get("action")?,
                    detail: json(&d, &what)?,
                    at: ts(&at, &what)?,
                })
            })
            .collect::<Result<Vec<_>>>()
    })
}

async fn firing_by_key(c: Conn<'_>, key: &str) -> Result<Option<i64>> {
    Ok(on_conn!(c, c => {
        sqlx::query_scalar("SELECT id FROM monitor_firings WHERE idempotency_key = $1")
            .bind(key)
            .fetch_optional(&mut *c)
            .await?
    }))
}

/// firing, url, attempt, status, error, at
type DeliveryRow = (
    Option<i64>,
    String,
    i64,
    Option<i64>,
    Option<String>,
    String,
);

async fn list_deliveries(c: Conn<'_>) -> Result<Vec<DeliveryRecord>> {
    let rows: Vec<DeliveryRow> = on_conn!(c, c => {
        sqlx::query_as("SELECT firing_id, url, attempt, status, error, at FROM webhook_deliveries ORDER BY id")
            .fetch_all(&mut *c)
            .await?
    });
    rows.into_iter()
        .map(|(firing_id, url, attempt, status, error, at)| {
            Ok(DeliveryRecord {
                firing_id,
                url,
                attempt,
                status,
                error,
                at: ts(&at, "a webhook delivery")?,
            })
        })
        .collect()
}

const INCIDENT_COLUMNS: &str = "id, title, severity, status, owner, model, releases, firing_id, postmortem, opened_by, opened_at, closed_at";

async fn incidents_where(c: Conn<'_>, id: Option<i64>) -> Result<Vec<IncidentRecord>> {
    let sql = match id {
        Some(_) => format!("SELECT {INCIDENT_COLUMNS} FROM incidents WHERE id = $1"),
        None => format!("SELECT {INCIDENT_COLUMNS} FROM incidents ORDER BY id"),
    };
    on_conn!(c, c => {
        let mut q = sqlx::query(&sql);
        if let Some(i) = id {
            q = q.bind(i);
        }
        let rows = q.fetch_all(&mut *c).await?;
        rows.iter()
            .map(|r| {
                let id: i64 = r.try_get("id")?;
                let what = format!("incident {id}");
                let m: Option<String> = r.try_get("model")?;
                let rel: String = r.try_get("releases")?;
                let ob: String = r.try_get("opened_by")?;
                let oa: String = r.try_get("opened_at")?;
                let ca: Option<String> = r.try_get("closed_at")?;
                let releases: Vec<String> = dec(serde_json::from_str(&rel), &what)?;
                Ok(IncidentRecord {
                    id,
                    title: r.try_get("title")?,
                    severity: r.try_get("severity")?,
                    status: r.try_get("status")?,
                    owner: r.try_get("owner")?,
                    model: m.map(|m| dec(ModelName::parse(&m), &what)).transpose()?,
                    releases: releases
                        .iter()
                        .map(|s| dec(ReleaseId::parse(s), &what))
                        .collect::<Result<_>>()?,
                    firing_id: r.try_get("firing_id")?,
                    postmortem: r.try_get("postmortem")?,
                    opened_by: dec(UserName::parse(&ob), &what)?,
                    opened_at: ts(&oa, &what)?,
                    closed_at: ca.map(|t| ts(&t, &what)).transpose()?,
                })
            })
            .collect::<Result<Vec<_>>>()
    })
}

async fn list_incidents(c: Conn<'_>) -> Result<Vec<IncidentRecord>> {
    incidents_where(c, None).await
}

async fn find_incident(c: Conn<'_>, id: i64) -> Result<Option<IncidentRecord>> {
    Ok(incidents_where(c, Some(id)).await?.into_iter().next())
}

async fn incident_events(c: Conn<'_>, incident: i64) -> Result<Vec<IncidentEventRecord>> {
    let rows: Vec<(i64, String, String, String, String, String)> = on_conn!(c, c => {
        sqlx::query_as("SELECT id, kind, text, data, actor, at FROM incident_events WHERE incident_id = $1 ORDER BY id")
            .bind(incident)
            .fetch_all(&mut *c)
            .await?
    });
    rows.into_iter()
        .map(|(id, kind, text, data, actor, at)| {
            let what = format!("incident event {id}");
            Ok(IncidentEventRecord {
                id,
                incident_id: incident,
                kind,
                text,
                data: json(&data, &what)?,
                actor: dec(UserName::parse(&actor), &what)?,
                at: ts(&at, &what)?,
            })
        })
        .collect()
}

async fn controls(c: Conn<'_>, model: &ModelName, active_only: bool) -> Result<Vec<ControlRecord>> {
    let sql = if active_only {
        "SELECT id, control, release_id, firing_id, reason, set_by, set_at, lifted_by, lifted_at FROM deployment_controls WHERE model = $1 AND lifted_at IS NULL ORDER BY id"
    } else {
        "SELECT id, control, release_id, firing_id, reason, set_by, set_at, lifted_by, lifted_at FROM deployment_controls WHERE model = $1 ORDER BY id"
    };
    on_conn!(c, c => {
        let rows = sqlx::query(sql).bind(model.as_str()).fetch_all(&mut *c).await?;
        rows.iter()
            .map(|r| {
                let id: i64 = r.try_get("id")?;
                let what = format!("deployment control {id}");
                let rel: Option<String> = r.try_get("release_id")?;
                let sb: String = r.try_get("set_by")?;
                let sa: String = r.try_get("set_at")?;
                let lb: Option<String> = r.try_get("lifted_by")?;
                let la: Option<String> = r.try_get("lifted_at")?;
                Ok(ControlRecord {
                    id,
                    model: model.clone(),
                    control: r.try_get("control")?,
                    release: rel.map(|s| dec(ReleaseId::parse(&s), &what)).transpose()?,
                    firing_id: r.try_get("firing_id")?,
                    reason: r.try_get("reason")?,
                    set_by: dec(UserName::parse(&sb), &what)?,
                    set_at: ts(&sa, &what)?,
                    lifted_by: lb.map(|u| dec(UserName::parse(&u), &what)).transpose()?,
                    lifted_at: la.map(|t| ts(&t, &what)).transpose()?,
                })
            })
            .collect::<Result<Vec<_>>>()
    })
}

async fn active_controls(c: Conn<'_>, model: &ModelName) -> Result<Vec<ControlRecord>> {
    controls(c, model, true).await
}

async fn control_history(c: Conn<'_>, model: &ModelName) -> Result<Vec<ControlRecord>> {
    controls(c, model, false).await
}

async fn revalidation_notice(c: Conn<'_>, release: &ReleaseId, kind: &str) -> Result<bool> {
    let n: i64 = on_conn!(c, c => {
        sqlx::query_scalar("SELECT count(*) FROM revalidation_notices WHERE release_id = $1 AND kind = $2")
            .bind(release.to_string())
            .bind(kind)
            .fetch_one(&mut *c)
            .await?
    });
    Ok(n > 0)
}

async fn list_rehearsals(c: Conn<'_>, model: &ModelName) -> Result<Vec<RehearsalRecord>> {
    let rows: Vec<(i64, String, String, String, String, String)> = on_conn!(c, c => {
        sqlx::query_as("SELECT id, release_id, scenario, result, actor, at FROM rehearsals WHERE model = $1 ORDER BY id")
            .bind(model.as_str())
            .fetch_all(&mut *c)
            .await?
    });
    rows.into_iter()
        .map(|(id, rel, scenario, result, actor, at)| {
            let what = format!("rehearsal {id}");
            Ok(RehearsalRecord {
                id,
                model: model.clone(),
                release: dec(ReleaseId::parse(&rel), &what)?,
                scenario,
                result: json(&result, &what)?,
                actor: dec(UserName::parse(&actor), &what)?,
                at: ts(&at, &what)?,
            })
        })
        .collect()
}

reads! {
    /// A release's reference profile, if computed.
    fn reference_profile(release: &ReleaseId) -> Option<ReferenceProfileRecord> => reference_profile;
    /// The monitor policy in force, if one was applied.
    /// Outcomes for these keys.
    fn find_outcomes(key_kind: &str, keys: &[String]) -> Vec<OutcomeRecord> => find_outcomes;
    fn count_outcomes() -> i64 => count_outcomes;
    /// Keys that prediction records carry, with when each was first recorded.
    fn predictions_with_keys(key_kind: &str, keys: &[String]) -> Vec<(String, Timestamp)> => predictions_with_keys;
    fn rule_state(rule: &str, model: &ModelName, release: &ReleaseId, group: &str) -> Option<serde_json::Value> => rule_state;
    fn list_rule_states(model: &ModelName) -> Vec<RuleStateRecord> => list_rule_states;
    /// Firings, oldest first (of one model, or all).
    fn list_firings(model: Option<&ModelName>) -> Vec<FiringRecord> => list_firings;
    fn firing_by_key(key: &str) -> Option<i64> => firing_by_key;
    fn list_deliveries() -> Vec<DeliveryRecord> => list_deliveries;
    fn list_incidents() -> Vec<IncidentRecord> => list_incidents;
    fn find_incident(id: i64) -> Option<IncidentRecord> => find_incident;
    fn incident_events(incident: i64) -> Vec<IncidentEventRecord> => incident_events;
    /// A model's suppress and disable controls in force.
    fn active_controls(model: &ModelName) -> Vec<ControlRecord> => active_controls;
    fn control_history(model: &ModelName) -> Vec<ControlRecord> => control_history;
    fn revalidation_notice(release: &ReleaseId, kind: &str) -> bool => revalidation_notice;
    fn list_rehearsals(model: &ModelName) -> Vec<RehearsalRecord> => list_rehearsals;
}

// ---- writes -----------------------------------------------------------------------------

impl Tx {
    /// Stores a reference profile; a second one for the same release is a conflict.
    pub async fn insert_reference_profile(&mut self, p: &ReferenceProfileRecord) -> Result<()> {
        let summary = serde_json::to_string(&p.summary).map_err(Error::corrupt)?;
        on_conn!(self.as_conn(), c => {
            sqlx::query("INSERT INTO reference_profiles (release_id, digest, summary, computed_at) VALUES ($1, $2, $3, $4)")
                .bind(p.release.to_string())
                .bind(p.digest.to_hex())
                .bind(summary)
                .bind(p.computed_at.to_string())
                .execute(&mut *c)
                .await?;
        });
        Ok(())
    }

    pub async fn insert_outcome_import(
        &mut self,
        source: &str,
        digest: &Digest,
        report: &serde_json::Value,
        actor: &UserName,
        at: Timestamp,
    ) -> Result<i64> {
        let report = serde_json::to_string(report).map_err(Error::corrupt)?;
        Ok(on_conn!(self.as_conn(), c => {
            sqlx::query_scalar("INSERT INTO outcome_imports (source, digest, report, actor, at) VALUES ($1, $2, $3, $4, $5) RETURNING id")
                .bind(source)
                .bind(digest.to_hex())
                .bind(report)
                .bind(actor.as_str())
                .bind(at.to_string())
                .fetch_one(&mut *c)
                .await?
        }))
    }

    /// Inserts outcomes (keys already checked to be new).
    pub async fn insert_outcomes(&mut self, import_id: i64, rows: &[OutcomeRecord]) -> Result<()> {
        on_conn!(self.as_conn(), c => {
            for o in rows {
                sqlx::query("INSERT INTO outcomes (key_kind, key, label, observed_at, imported_at, import_id) VALUES ($1, $2, $3, $4, $5, $6)")
                    .bind(&o.key_kind)
                    .bind(&o.key)
                    .bind(i64::from(o.label))
                    .bind(o.observed_at.map(|t| t.to_string()))
                    .bind(o.imported_at.to_string())
                    .bind(import_id)
                    .execute(&mut *c)
                    .await?;
            }
        });
        Ok(())
    }

    pub async fn upsert_rule_state(&mut self, s: &RuleStateRecord) -> Result<()> {
        let state = serde_json::to_string(&s.state).map_err(Error::corrupt)?;
        on_conn!(self.as_conn(), c => {
            sqlx::query(
                "INSERT INTO monitor_rule_states (rule, model, release_id, grp, state, updated_at) VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (rule, model, release_id, grp) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at",
            )
            .bind(&s.rule)
            .bind(s.model.as_str())
            .bind(s.release.to_string())
            .bind(&s.group)
            .bind(state)
            .bind(s.updated_at.to_string())
            .execute(&mut *c)
            .await?;
        });
        Ok(())
    }

    /// Records a firing; its idempotency key is unique, so a second replica's attempt is a
    /// conflict ([`Error::is_conflict`]).
    pub async fn insert_firing(&mut self, f: &FiringRecord) -> Result<i64> {
        let detail = serde_json::to_string(&f.detail).map_err(Error::corrupt)?;
        Ok(on_conn!(self.as_conn(), c => {
            sqlx::query_scalar(
                "INSERT INTO monitor_firings (idempotency_key, policy_version, rule, model, release_id, grp, window_start, window_end, step, action, detail, at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id",
            )
            .bind(&f.idempotency_key)
            .bind(f.policy_version)
            .bind(&f.rule)
            .bind(f.model.as_str())
            .bind(f.release.to_string())
            .bind(&f.group)
            .bind(f.window_start.to_string())
            .bind(f.window_end.to_string())
            .bind(&f.step)
            .bind(&f.action)
            .bind(detail)
            .bind(f.at.to_string())
            .fetch_one(&mut *c)
            .await?
        }))
    }

    pub async fn insert_delivery(&mut self, d: &DeliveryRecord) -> Result<()> {
        on_conn!(self.as_conn(), c => {
            sqlx::query("INSERT INTO webhook_deliveries (firing_id, url, attempt, status, error, at) VALUES ($1, $2, $3, $4, $5, $6)")
                .bind(d.firing_id)
                .bind(&d.url)
                .bind(d.attempt)
                .bind(d.status)
                .bind(&d.error)
                .bind(d.at.to_string())
                .execute(&mut *c)
                .await?;
        });
        Ok(())
    }

    pub async fn insert_incident(&mut self, i: &IncidentRecord) -> Result<i64> {
        let releases: Vec<String> = i.releases.iter().map(ToString::to_string).collect();
        let releases = serde_json::to_string(&releases).map_err(Error::corrupt)?;
        Ok(on_conn!(self.as_conn(), c => {
            sqlx::query_scalar(
                "INSERT INTO incidents (title, severity, status, owner, model, releases, firing_id, postmortem, opened_by, opened_at, closed_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
            )
            .bind(&i.title)
            .bind(&i.severity)
            .bind(&i.status)
            .bind(&i.owner)
            .bind(i.model.as_ref().map(|m| m.as_str().to_owned()))
            .bind(releases)
            .bind(i.firing_id)
            .bind(&i.postmortem)
            .bind(i.opened_by.as_str())
            .bind(i.opened_at.to_string())
            .bind(i.closed_at.map(|t| t.to_string()))
            .fetch_one(&mut *c)
            .await?
        }))
    }

    /// Writes an incident's mutable fields: severity, status, owner, postmortem, closing time.
    pub async fn update_incident(&mut self, i: &IncidentRecord) -> Result<()> {
        on_conn!(self.as_conn(), c => {
            sqlx::query("UPDATE incidents SET severity = $1, status = $2, owner = $3, postmortem = $4, closed_at = $5 WHERE id = $6")
                .bind(&i.severity)
                .bind(&i.status)
                .bind(&i.owner)
                .bind(&i.postmortem)
                .bind(i.closed_at.map(|t| t.to_string()))
                .bind(i.id)
                .execute(&mut *c)
                .await?;
        });
        Ok(())
    }

    pub async fn insert_incident_event(&mut self, e: &IncidentEventRecord) -> Result<i64> {
        let data = serde_json::to_string(&e.data).map_err(Error::corrupt)?;
        Ok(on_conn!(self.as_conn(), c => {
            sqlx::query_scalar("INSERT INTO incident_events (incident_id, kind, text, data, actor, at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id")
                .bind(e.incident_id)
                .bind(&e.kind)
                .bind(&e.text)
                .bind(data)
                .bind(e.actor.as_str())
                .bind(e.at.to_string())
                .fetch_one(&mut *c)
                .await?
        }))
    }

    /// Sets a control; one already in force for the model is a conflict.
    pub async fn insert_control(&mut self, k: &ControlRecord) -> Result<i64> {
        Ok(on_conn!(self.as_conn(), c => {
            sqlx::query_scalar(
                "INSERT INTO deployment_controls (model, control, release_id, firing_id, reason, set_by, set_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
            )
            .bind(k.model.as_str())
            .bind(&k.control)
            .bind(k.release.map(|r| r.to_string()))
            .bind(k.firing_id)
            .bind(&k.reason)
            .bind(k.set_by.as_str())
            .bind(k.set_at.to_string())
            .fetch_one(&mut *c)
            .await?
        }))
    }

    /// Lifts the control `id`; false when it was not in force.
    pub async fn lift_control(&mut self, id: i64, by: &UserName, at: Timestamp) -> Result<bool> {
        let n = on_conn!(self.as_conn(), c => {
            sqlx::query("UPDATE deployment_controls SET lifted_by = $1, lifted_at = $2 WHERE id = $3 AND lifted_at IS NULL")
                .bind(by.as_str())
                .bind(at.to_string())
                .bind(id)
                .execute(&mut *c)
                .await?
                .rows_affected()
        });
        Ok(n == 1)
    }

    pub async fn insert_revalidation_notice(
        &mut self,
        release: &ReleaseId,
        kind: &str,
        due: Timestamp,
        at: Timestamp,
    ) -> Result<()> {
        on_conn!(self.as_conn(), c => {
            sqlx::query("INSERT INTO revalidation_notices (release_id, kind, due_at, at) VALUES ($1, $2, $3, $4)")
                .bind(release.to_string())
                .bind(kind)
                .bind(due.to_string())
                .bind(at.to_string())
                .execute(&mut *c)
                .await?;
        });
        Ok(())
    }

    pub async fn insert_rehearsal(&mut self, r: &RehearsalRecord) -> Result<i64> {
        let result = serde_json::to_string(&r.result).map_err(Error::corrupt)?;
        Ok(on_conn!(self.as_conn(), c => {
            sqlx::query_scalar("INSERT INTO rehearsals (model, release_id, scenario, result, actor, at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id")
                .bind(r.model.as_str())
                .bind(r.release.to_string())
                .bind(&r.scenario)
                .bind(result)
                .bind(r.actor.as_str())
                .bind(r.at.to_string())
                .fetch_one(&mut *c)
                .await?
        }))
    }
}
