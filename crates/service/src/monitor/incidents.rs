//! Incidents: severity, owner, status, linked releases and a timeline of events — opened by
//! hand or by a monitor rule; a SEV1 or SEV2 closes only with a postmortem.

use serde::Serialize;
use serde_json::{Value, json};
use vigil_domain::monitor::{IncidentStatus, Severity, check_status_change};
use vigil_domain::{ModelName, ReleaseId, UserName};
use vigil_store::{IncidentEventRecord, IncidentRecord, Tx};

use crate::{Error, Result, Vigil, audit_event};

pub struct NewIncident {
    pub title: String,
    pub severity: Severity,
    pub model: Option<String>,
    /// Release ids or prefixes.
    pub releases: Vec<String>,
    pub owner: Option<String>,
    pub note: Option<String>,
}

#[derive(Default)]
pub struct UpdateIncident {
    pub status: Option<IncidentStatus>,
    pub severity: Option<Severity>,
    pub owner: Option<String>,
    pub note: Option<String>,
    pub postmortem: Option<String>,
}

/// An incident with its timeline.
#[derive(Clone, Debug, Serialize)]
pub struct IncidentView {
    #[serde(flatten)]
    pub incident: IncidentRecord,
    pub timeline: Vec<IncidentEventRecord>,
}

fn text(code: &'static str, what: &str, s: &str, max: usize) -> Result<String> {
    let t = s.trim();
    if t.is_empty() {
        return Err(Error::invalid(code, format!("{what} is required")));
    }
    if t.chars().count() > max {
        return Err(Error::invalid(
            code,
            format!("{what} is longer than {max} characters"),
        ));
    }
    Ok(t.to_owned())
}

impl Vigil {
    /// Opens an incident inside the caller's transaction (with its first timeline event and
    /// its audit event); returns its id.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn open_incident_in(
        &self,
        tx: &mut Tx,
        actor: &UserName,
        title: &str,
        severity: Severity,
        model: Option<ModelName>,
        releases: Vec<ReleaseId>,
        firing: Option<i64>,
        note: &str,
        data: Value,
    ) -> Result<i64> {
        let now = self.clock.now();
        let mut rec = IncidentRecord {
            id: 0,
            title: title.to_owned(),
            severity: severity.as_str().to_owned(),
            status: IncidentStatus::Open.as_str().to_owned(),
            owner: None,
            model: model.clone(),
            releases: releases.clone(),
            firing_id: firing,
            postmortem: None,
            opened_by: actor.clone(),
            opened_at: now,
            closed_at: None,
        };
        rec.id = tx.insert_incident(&rec).await?;
        tx.insert_incident_event(&IncidentEventRecord {
            id: 0,
            incident_id: rec.id,
            kind: if firing.is_some() {
                "monitor"
            } else {
                "opened"
            }
            .to_owned(),
            text: note.to_owned(),
            data,
            actor: actor.clone(),
            at: now,
        })
        .await?;
        let ev = audit_event(
            actor,
            "incident.opened",
            format!("incident:{}", rec.id),
            json!({ "severity": severity, "model": model, "releases": releases, "firing": firing, "title": title }),
        )?;
        tx.append_audit(now, &ev).await?;
        Ok(rec.id)
    }

    /// Opens an incident by hand (any known user).
    pub async fn open_incident(&self, actor: &UserName, req: NewIncident) -> Result<IncidentView> {
        self.authorize(actor, &[], "incident", "incident").await?;
        let title = text("title_required", "a title", &req.title, 200)?;
        let model = match &req.model {
            Some(m) => Some(self.get_model(m).await?.name),
            None => None,
        };
        let mut releases = Vec::new();
        for r in &req.releases {
            releases.push(self.resolve_release(r).await?);
        }
        let note = req.note.as_deref().unwrap_or("opened by hand");
        let mut tx = self.store.begin().await?;
        let id = self
            .open_incident_in(
                &mut tx,
                actor,
                &title,
                req.severity,
                model,
                releases,
                None,
                note,
                json!({}),
            )
            .await?;
        if let Some(o) = &req.owner {
            let mut rec = tx
                .find_incident(id)
                .await?
                .ok_or_else(|| Error::internal("the incident just opened is gone"))?;
            rec.owner = Some(text("owner_required", "an owner", o, 100)?);
            tx.update_incident(&rec).await?;
        }
        tx.commit().await?;
        self.incident(id).await
    }

    pub async fn list_incidents(&self, open_only: bool) -> Result<Vec<IncidentRecord>> {
        let mut v = self.store.list_incidents().await?;
        if open_only {
            v.retain(|i| i.status != "closed");
        }
        Ok(v)
    }

    pub async fn incident(&self, id: i64) -> Result<IncidentView> {
        let incident =
            self.store.find_incident(id).await?.ok_or_else(|| {
                Error::not_found("incident_not_found", format!("no incident {id}"))
            })?;
        let timeline = self.store.incident_events(id).await?;
        Ok(IncidentView { incident, timeline })
    }

    /// Changes status, severity or owner, or adds a note; each change is a timeline event
    /// and an audit event. Closing a SEV1/SEV2 needs a postmortem.
    pub async fn update_incident(
        &self,
        actor: &UserName,
        id: i64,
        u: UpdateIncident,
    ) -> Result<IncidentView> {
        self.authorize(actor, &[], "incident", &format!("incident:{id}"))
            .await?;
        let mut tx = self.store.begin().await?;
        let mut rec = tx
            .find_incident(id)
            .await?
            .ok_or_else(|| Error::not_found("incident_not_found", format!("no incident {id}")))?;
        let from =
            IncidentStatus::parse(&rec.status).map_err(|e| Error::internal(e.to_string()))?;
        let sev = match u.severity {
            Some(s) => s,
            None => Severity::parse(&rec.severity).map_err(|e| Error::internal(e.to_string()))?,
        };
        let to = u.status.unwrap_or(from);
        let postmortem = match &u.postmortem {
            Some(p) => Some(text("postmortem_invalid", "the postmortem", p, 20_000)?),
            None => rec.postmortem.clone(),
        };
        check_status_change(sev, from, to, postmortem.as_deref())
            .map_err(|e| Error::invalid("incident_change_refused", e.to_string()))?;
        let now = self.clock.now();
        let mut events: Vec<(&str, String, Value)> = Vec::new();
        if to != from {
            events.push((
                if to == IncidentStatus::Closed {
                    "closed"
                } else {
                    "status"
                },
                format!("{from} → {to}"),
                json!({ "from": from, "to": to }),
            ));
            rec.status = to.as_str().to_owned();
            if to == IncidentStatus::Closed {
                rec.closed_at = Some(now);
            }
        }
        if sev.as_str() != rec.severity {
            events.push((
                "severity",
                format!("{} → {sev}", rec.severity),
                json!({ "from": rec.severity, "to": sev }),
            ));
            rec.severity = sev.as_str().to_owned();
        }
        if let Some(o) = &u.owner {
            let o = text("owner_required", "an owner", o, 100)?;
            events.push(("owner", format!("owner: {o}"), json!({ "owner": o })));
            rec.owner = Some(o);
        }
        if u.postmortem.is_some() {
            events.push(("postmortem", "postmortem recorded".into(), json!({})));
            rec.postmortem = postmortem;
        }
        if let Some(n) = &u.note {
            events.push((
                "note",
                text("note_invalid", "the note", n, 5000)?,
                json!({}),
            ));
        }
        if events.is_empty() {
            return Err(Error::invalid(
                "nothing_to_change",
                "give a status, severity, owner, note or postmortem",
            ));
        }
        tx.update_incident(&rec).await?;
        for (kind, text, data) in &events {
            tx.insert_incident_event(&IncidentEventRecord {
                id: 0,
                incident_id: id,
                kind: (*kind).to_owned(),
                text: text.clone(),
                data: data.clone(),
                actor: actor.clone(),
                at: now,
            })
            .await?;
        }
        let ev = audit_event(
            actor,
            if to == IncidentStatus::Closed && from != to {
                "incident.closed"
            } else {
                "incident.updated"
            },
            format!("incident:{id}"),
            json!({ "changes": events.iter().map(|(k, _, d)| json!({ "kind": k, "data": d })).collect::<Vec<_>>() }),
        )?;
        tx.append_audit(now, &ev).await?;
        tx.commit().await?;
        self.incident(id).await
    }
}
