//! Storage of the audit chain: appending in the caller's transaction, reading it back.

use sqlx::Row;
use vigil_domain::{AuditEvent, Digest, NewAuditEvent, Timestamp};

use crate::{Conn, Error, Result, Tx, on_conn, reads};

/// Which events to list.
#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    pub subject: Option<String>,
    pub action: Option<String>,
    pub after_seq: i64,
    pub limit: i64,
}

const COLUMNS: &str = "seq, at, actor, action, subject, payload, prev_hash, hash";

fn decode(
    seq: i64,
    at: String,
    actor: String,
    action: String,
    subject: String,
    payload: String,
    prev_hash: String,
    hash: String,
) -> Result<AuditEvent> {
    Ok(AuditEvent {
        seq,
        at: Timestamp::parse(&at).map_err(|e| Error::corrupt(format!("audit event {seq}: {e}")))?,
        actor,
        action,
        subject,
        payload,
        prev_hash: Digest::parse(&prev_hash)
            .map_err(|e| Error::corrupt(format!("audit event {seq}: {e}")))?,
        hash: Digest::parse(&hash)
            .map_err(|e| Error::corrupt(format!("audit event {seq}: {e}")))?,
    })
}

macro_rules! decode_rows {
    ($rows:expr) => {
        $rows
            .iter()
            .map(|r| {
                decode(
                    r.try_get("seq")?,
                    r.try_get("at")?,
                    r.try_get("actor")?,
                    r.try_get("action")?,
                    r.try_get("subject")?,
                    r.try_get("payload")?,
                    r.try_get("prev_hash")?,
                    r.try_get("hash")?,
                )
            })
            .collect::<Result<Vec<_>>>()
    };
}

async fn head(c: Conn<'_>) -> Result<Option<(i64, Digest)>> {
    let row: Option<(i64, String)> = on_conn!(c, c => {
        sqlx::query_as("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&mut *c)
            .await?
    });
    match row {
        None => Ok(None),
        Some((seq, h)) => Ok(Some((
            seq,
            Digest::parse(&h).map_err(|e| Error::corrupt(format!("audit event {seq}: {e}")))?,
        ))),
    }
}

async fn page(c: Conn<'_>, f: &AuditFilter) -> Result<Vec<AuditEvent>> {
    let limit = if f.limit <= 0 { 1000 } else { f.limit };
    let sql = format!(
        "SELECT {COLUMNS} FROM audit_events WHERE seq > $1 \
         AND ($2 = '' OR subject = $2) AND ($3 = '' OR action = $3) ORDER BY seq LIMIT $4"
    );
    on_conn!(c, c => {
        let rows = sqlx::query(&sql)
            .bind(f.after_seq)
            .bind(f.subject.as_deref().unwrap_or(""))
            .bind(f.action.as_deref().unwrap_or(""))
            .bind(limit)
            .fetch_all(&mut *c)
            .await?;
        decode_rows!(rows)
    })
}

async fn count(c: Conn<'_>) -> Result<i64> {
    Ok(
        on_conn!(c, c => sqlx::query_scalar("SELECT count(*) FROM audit_events").fetch_one(&mut *c).await?),
    )
}

reads! {
    /// The last event's sequence number and hash, if any.
    fn audit_head() -> Option<(i64, Digest)> => head;
    /// Events in sequence order after `after_seq`, filtered, at most `limit` (1000 if 0).
    fn list_audit(f: &AuditFilter) -> Vec<AuditEvent> => page;
    fn count_audit() -> i64 => count;
}

impl Tx {
    /// Appends an event to the chain inside this transaction. The transaction holds the
    /// write lock, so the head cannot move under it.
    pub async fn append_audit(&mut self, at: Timestamp, e: &NewAuditEvent) -> Result<AuditEvent> {
        let prev = match self.head {
            Some(h) => h,
            None => head(self.as_conn()).await?,
        };
        let event = AuditEvent::next(prev, at, e);
        insert(self.as_conn(), &event).await?;
        self.head = Some(Some((event.seq, event.hash)));
        Ok(event)
    }

    /// Appends many events in one transaction (one fsync for the batch).
    pub async fn append_audit_batch(
        &mut self,
        at: Timestamp,
        events: &[NewAuditEvent],
    ) -> Result<Vec<AuditEvent>> {
        let mut out = Vec::with_capacity(events.len());
        for e in events {
            out.push(self.append_audit(at, e).await?);
        }
        Ok(out)
    }
}

async fn insert(c: Conn<'_>, e: &AuditEvent) -> Result<()> {
    let sql =
        format!("INSERT INTO audit_events ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)");
    on_conn!(c, c => {
        sqlx::query(&sql)
            .bind(e.seq)
            .bind(e.at.to_string())
            .bind(&e.actor)
            .bind(&e.action)
            .bind(&e.subject)
            .bind(&e.payload)
            .bind(e.prev_hash.to_hex())
            .bind(e.hash.to_hex())
            .execute(&mut *c)
            .await?;
    });
    Ok(())
}
