//! Storage of the audit chain: appending in the caller's transaction, reading it back.

use sqlx::Row;
use vigil_domain::{AuditEvent, Digest, NewAuditEvent, Timestamp};

use crate::{Conn, Error, Result, Tx, on_conn, reads, values_list};

/// Which events to list.
#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    pub subject: Option<String>,
    pub action: Option<String>,
    pub after_seq: i64,
    pub limit: i64,
}

const COLUMNS: &str = "seq, at, actor, action, subject, payload, prev_hash, hash";

#[allow(clippy::too_many_arguments)] // one argument per stored column
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

/// Field and record separators for packed reads. No stored field can contain them: actors,
/// actions and hashes are restricted alphabets, subjects refuse control characters, and
/// canonical JSON escapes every control character.
pub const PACKED_FIELD_SEP: char = '\u{1f}';
pub const PACKED_RECORD_SEP: char = '\u{1e}';

/// Reads the events with `after <= seq <= last`, in sequence order, as one packed string:
/// the database concatenates the rows, which avoids a per-row round trip and makes reading
/// the chain about as fast as hashing it. Used to verify long chains.
///
/// On SQLite the rows are read by a range scan of the table's rowid (the sequence number),
/// which yields them in order; `concat_ws` joins a row's fields in one allocation, where a
/// chain of `||` would copy the growing row once per field.
async fn packed_range(c: Conn<'_>, after: i64, last: i64) -> Result<String> {
    let text: Option<String> = match c {
        Conn::Sqlite(c) => sqlx::query_scalar(
            "SELECT group_concat(concat_ws(char(31), seq, at, actor, action, subject, payload, prev_hash, hash), char(30)) \
             FROM audit_events WHERE seq >= $1 AND seq <= $2",
        )
        .bind(after)
        .bind(last)
        .fetch_one(&mut *c)
        .await?,
        Conn::Postgres(c) => sqlx::query_scalar(
            "SELECT string_agg(concat_ws(chr(31), seq, at, actor, action, subject, payload, prev_hash, hash), chr(30) ORDER BY seq) \
             FROM audit_events WHERE seq >= $1 AND seq <= $2",
        )
        .bind(after)
        .bind(last)
        .fetch_one(&mut *c)
        .await?,
    };
    Ok(text.unwrap_or_default())
}

async fn seq_after(c: Conn<'_>, after: i64) -> Result<Option<i64>> {
    Ok(on_conn!(c, c => {
        sqlx::query_scalar("SELECT min(seq) FROM audit_events WHERE seq > $1")
            .bind(after)
            .fetch_one(&mut *c)
            .await?
    }))
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
    /// Events with `after <= seq <= last`, read in one query as packed text: fields
    /// separated by [`PACKED_FIELD_SEP`], events by [`PACKED_RECORD_SEP`], in sequence order
    /// and the column order seq, at, actor, action, subject, payload, prev_hash, hash.
    /// Empty when none.
    fn audit_packed_range(after: i64, last: i64) -> String => packed_range;
    /// The smallest sequence number after `after`, if any.
    fn audit_seq_after(after: i64) -> Option<i64> => seq_after;
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
        let mut prev = match self.head {
            Some(h) => h,
            None => head(self.as_conn()).await?,
        };
        let mut out = Vec::with_capacity(events.len());
        for e in events {
            let ev = AuditEvent::next(prev, at, e);
            prev = Some((ev.seq, ev.hash));
            out.push(ev);
        }
        for chunk in out.chunks(INSERT_ROWS) {
            insert_many(self.as_conn(), chunk).await?;
        }
        self.head = Some(prev);
        Ok(out)
    }
}

/// Rows per multi-row INSERT: 8 parameters each, well under both backends' limits.
const INSERT_ROWS: usize = 250;

async fn insert_many(c: Conn<'_>, events: &[AuditEvent]) -> Result<()> {
    let sql = format!(
        "INSERT INTO audit_events ({COLUMNS}) VALUES {}",
        values_list(c.kind(), events.len(), 8)
    );
    let texts: Vec<(String, String, String)> = events
        .iter()
        .map(|e| (e.at.to_string(), e.prev_hash.to_hex(), e.hash.to_hex()))
        .collect();
    on_conn!(c, c => {
        let mut q = sqlx::query(&sql);
        for (e, (at, prev_hash, hash)) in events.iter().zip(&texts) {
            q = q
                .bind(e.seq)
                .bind(at.as_str())
                .bind(e.actor.as_str())
                .bind(e.action.as_str())
                .bind(e.subject.as_str())
                .bind(e.payload.as_str())
                .bind(prev_hash.as_str())
                .bind(hash.as_str());
        }
        q.execute(&mut *c).await?;
    });
    Ok(())
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
