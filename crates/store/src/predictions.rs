//! Storage of prediction records: batched inserts (one transaction and one commit for many
//! records, which is what makes durable serving fast) and filtered reads in sequence order.

use sqlx::Row;
use vigil_domain::prediction::{FeatureRecord, PredictionFilter, PredictionMode, PredictionRecord};
use vigil_domain::{ReleaseId, Timestamp};

use crate::cds::{CARDS_PER_STATEMENT, bind_cards, cards_sql, created_texts};
use crate::{
    Backend, BackendKind, Conn, Error, OwnTx, Result, Store, Tx, TxInner, on_conn, values_list,
};

/// Rows per INSERT statement: 14 parameters each stays far below both backends' limits.
const ROWS_PER_STATEMENT: usize = 500;

const INSERT_HEAD: &str = "INSERT INTO predictions (request_id, mode, recorded_at, model, \
     release_id, channel, patient_key, encounter_key, features, score, decision, \
     fallback_reason, latency_us, context) ";

const COLUMNS: &str = "seq, request_id, mode, recorded_at, model, release_id, channel, \
     patient_key, encounter_key, features, score, decision, fallback_reason, latency_us, context";

struct Encoded<'a> {
    r: &'a PredictionRecord,
    features: String,
    context: String,
}

fn encode(records: &[PredictionRecord]) -> Result<Vec<Encoded<'_>>> {
    records
        .iter()
        .map(|r| {
            r.validate()
                .map_err(|e| Error::Conflict(format!("refused prediction record: {e}")))?;
            Ok(Encoded {
                r,
                features: serde_json::to_string(&r.features).map_err(Error::corrupt)?,
                context: serde_json::to_string(&r.context).map_err(Error::corrupt)?,
            })
        })
        .collect()
}

/// Inserts one statement's worth of records.
/// The record time and release id of each record, as bound.
fn record_texts(encoded: &[Encoded<'_>]) -> Vec<(String, String)> {
    encoded
        .iter()
        .map(|e| (e.r.recorded_at.to_string(), e.r.release.to_string()))
        .collect()
}

/// Binds encoded records and their texts ([`record_texts`]) to a query of either
/// backend, in [`INSERT_HEAD`]'s order.
macro_rules! bind_records {
    ($q:expr, $encoded:expr, $texts:expr) => {{
        let mut q = $q;
        for (e, (recorded_at, release)) in $encoded.iter().zip($texts) {
            q = q
                .bind(e.r.request_id.as_str())
                .bind(e.r.mode.as_str())
                .bind(recorded_at.as_str())
                .bind(e.r.model.as_str())
                .bind(release.as_str())
                .bind(e.r.channel.as_str())
                .bind(e.r.patient_key.as_deref())
                .bind(e.r.encounter_key.as_deref())
                .bind(e.features.as_str())
                .bind(e.r.score)
                .bind(e.r.decision.as_deref())
                .bind(e.r.fallback_reason.as_deref())
                .bind(e.r.latency_us)
                .bind(e.context.as_str());
        }
        q
    }};
}

/// Appends the SQLite INSERT statements for `encoded`, each ended by `;` and a newline.
fn push_inserts(sql: &mut String, encoded: &[Encoded<'_>]) {
    for chunk in encoded.chunks(ROWS_PER_STATEMENT) {
        sql.push_str(&format!(
            "{INSERT_HEAD}VALUES {};\n",
            values_list(BackendKind::Sqlite, chunk.len(), 14)
        ));
    }
}

async fn insert_rows(c: Conn<'_>, chunk: &[Encoded<'_>]) -> Result<()> {
    let sql = format!(
        "{INSERT_HEAD}VALUES {}",
        values_list(c.kind(), chunk.len(), 14)
    );
    let texts = record_texts(chunk);
    on_conn!(c, c => {
        bind_records!(sqlx::query(&sql), chunk, &texts).execute(&mut *c).await?;
    });
    Ok(())
}

impl Store {
    /// Writes a batch of records in one transaction: all of them are durable when this
    /// returns, or none is. A record whose `(request_id, mode)` exists already fails the
    /// whole batch (see [`Error::is_conflict`]).
    pub async fn insert_predictions(&self, records: &[PredictionRecord]) -> Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        let encoded = encode(records)?;
        match &self.backend {
            Backend::Sqlite(p) => {
                // The `BEGIN IMMEDIATE`, the records and the `COMMIT` go to the database as
                // one exchange; should any of it fail, dropping the transaction open closes
                // the connection, which rolls it back.
                let mut own = OwnTx::new(p.write_conn().await?, p);
                let mut sql = String::from("BEGIN IMMEDIATE;\n");
                push_inserts(&mut sql, &encoded);
                sql.push_str("COMMIT");
                let texts = record_texts(&encoded);
                bind_records!(sqlx::query(&sql), encoded, &texts)
                    .execute(own.conn())
                    .await?;
                own.ended();
            }
            Backend::Postgres(p) => {
                let mut tx = p.begin().await?;
                for chunk in encoded.chunks(ROWS_PER_STATEMENT) {
                    insert_rows(Conn::Postgres(&mut tx), chunk).await?;
                }
                tx.commit().await?;
            }
        }
        Ok(())
    }
}

impl Tx {
    /// Writes a batch of records inside the caller's transaction (durable at its commit).
    /// A record whose `(request_id, mode)` exists already fails (see [`Error::is_conflict`]).
    pub async fn insert_predictions(&mut self, records: &[PredictionRecord]) -> Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        let encoded = encode(records)?;
        for chunk in encoded.chunks(ROWS_PER_STATEMENT) {
            insert_rows(self.as_conn(), chunk).await?;
        }
        Ok(())
    }
}

impl Tx {
    /// Inserts a batch of records (see [`Tx::insert_predictions`]) and commits. In a
    /// transaction begun by [`Store::begin_batch`] on SQLite, the card rows held back, the
    /// records and the `COMMIT` go to the database as one exchange; should any of it fail, the
    /// transaction is rolled back.
    pub async fn commit_with_predictions(mut self, records: &[PredictionRecord]) -> Result<()> {
        if let TxInner::SqliteOwn(own) = &mut self.inner {
            let encoded = encode(records)?;
            let cards = std::mem::take(&mut self.cds_cards);
            let mut sql = String::new();
            for chunk in cards.chunks(CARDS_PER_STATEMENT) {
                sql.push_str(&cards_sql(BackendKind::Sqlite, chunk.len()));
                sql.push_str(";\n");
            }
            push_inserts(&mut sql, &encoded);
            sql.push_str("COMMIT");
            let created = created_texts(&cards);
            let texts = record_texts(&encoded);
            let q = bind_cards!(sqlx::query(&sql), &cards, &created);
            let q = bind_records!(q, encoded, &texts);
            // A failed statement leaves the transaction open: dropping it then closes the
            // connection, which rolls the transaction back.
            q.execute(own.conn()).await?;
            if let TxInner::SqliteOwn(own) = self.inner {
                own.ended();
            }
            return Ok(());
        }
        self.insert_predictions(records).await?;
        self.commit().await
    }
}

impl Store {
    /// Records matching the filter, in sequence (write) order.
    pub async fn list_predictions(&self, f: &PredictionFilter) -> Result<Vec<PredictionRecord>> {
        let mut pc = self.acquire().await?;
        list(pc.as_conn(), f).await
    }

    /// How many records match the filter (its `limit` is ignored).
    pub async fn count_predictions(&self, f: &PredictionFilter) -> Result<i64> {
        let mut pc = self.acquire().await?;
        count(pc.as_conn(), f).await
    }
}

/// Bind values of a filter, in placeholder order.
enum Param {
    Text(String),
    Int(i64),
}

fn where_clause(f: &PredictionFilter) -> (String, Vec<Param>) {
    let mut conds = Vec::new();
    let mut params = Vec::new();
    let mut add = |cond: &str, p: Param| {
        params.push(p);
        conds.push(format!("{cond} ${}", params.len()));
    };
    if let Some(m) = &f.model {
        add("model =", Param::Text(m.clone()));
    }
    if let Some(r) = &f.release {
        add("release_id =", Param::Text(r.to_string()));
    }
    if let Some(m) = f.mode {
        add("mode =", Param::Text(m.as_str().to_string()));
    }
    if let Some(c) = &f.channel {
        add("channel =", Param::Text(c.clone()));
    }
    if let Some(t) = f.since {
        add("recorded_at >=", Param::Text(t.to_string()));
    }
    if let Some(t) = f.until {
        add("recorded_at <", Param::Text(t.to_string()));
    }
    if let Some(s) = f.after_seq {
        add("seq >", Param::Int(s));
    }
    let clause = if conds.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conds.join(" AND "))
    };
    (clause, params)
}

macro_rules! bind_all {
    ($q:expr, $params:expr) => {{
        let mut q = $q;
        for p in $params {
            q = match p {
                Param::Text(s) => q.bind(s.as_str()),
                Param::Int(i) => q.bind(*i),
            };
        }
        q
    }};
}

struct Raw {
    seq: i64,
    request_id: String,
    mode: String,
    recorded_at: String,
    model: String,
    release_id: String,
    channel: String,
    patient_key: Option<String>,
    encounter_key: Option<String>,
    features: String,
    score: Option<f64>,
    decision: Option<String>,
    fallback_reason: Option<String>,
    latency_us: i64,
    context: String,
}

impl Raw {
    fn decode(self) -> Result<PredictionRecord> {
        let seq = self.seq;
        let bad = |e: String| Error::corrupt(format!("prediction record {seq}: {e}"));
        let features: Vec<FeatureRecord> =
            serde_json::from_str(&self.features).map_err(|e| bad(e.to_string()))?;
        Ok(PredictionRecord {
            seq: Some(seq),
            request_id: self.request_id,
            recorded_at: Timestamp::parse(&self.recorded_at).map_err(|e| bad(e.to_string()))?,
            mode: self
                .mode
                .parse::<PredictionMode>()
                .map_err(|e| bad(e.to_string()))?,
            model: self.model,
            release: ReleaseId::parse(&self.release_id).map_err(|e| bad(e.to_string()))?,
            channel: self.channel,
            patient_key: self.patient_key,
            encounter_key: self.encounter_key,
            features,
            score: self.score,
            decision: self.decision,
            fallback_reason: self.fallback_reason,
            latency_us: self.latency_us,
            context: serde_json::from_str(&self.context).map_err(|e| bad(e.to_string()))?,
        })
    }
}

async fn list(c: Conn<'_>, f: &PredictionFilter) -> Result<Vec<PredictionRecord>> {
    let (clause, params) = where_clause(f);
    let mut sql = format!("SELECT {COLUMNS} FROM predictions{clause} ORDER BY seq");
    if let Some(n) = f.limit {
        sql.push_str(&format!(" LIMIT {}", n.max(0)));
    }
    let raw = on_conn!(c, c => {
        let rows = bind_all!(sqlx::query(&sql), &params).fetch_all(&mut *c).await?;
        rows.iter()
            .map(|r| {
                Ok(Raw {
                    seq: r.try_get("seq")?,
                    request_id: r.try_get("request_id")?,
                    mode: r.try_get("mode")?,
                    recorded_at: r.try_get("recorded_at")?,
                    model: r.try_get("model")?,
                    release_id: r.try_get("release_id")?,
                    channel: r.try_get("channel")?,
                    patient_key: r.try_get("patient_key")?,
                    encounter_key: r.try_get("encounter_key")?,
                    features: r.try_get("features")?,
                    score: r.try_get("score")?,
                    decision: r.try_get("decision")?,
                    fallback_reason: r.try_get("fallback_reason")?,
                    latency_us: r.try_get("latency_us")?,
                    context: r.try_get("context")?,
                })
            })
            .collect::<Result<Vec<Raw>, sqlx::Error>>()?
    });
    raw.into_iter().map(Raw::decode).collect()
}

async fn count(c: Conn<'_>, f: &PredictionFilter) -> Result<i64> {
    let (clause, params) = where_clause(f);
    let sql = format!("SELECT COUNT(*) AS n FROM predictions{clause}");
    let n: i64 = on_conn!(c, c => {
        let row = bind_all!(sqlx::query(&sql), &params).fetch_one(&mut *c).await?;
        row.try_get("n")?
    });
    Ok(n)
}
