//! Storage for the CDS Hooks service: registered clients, token ids seen until they expire,
//! the cards shown (for suppression, the daily alert budget and feedback) and feedback.

use std::collections::HashSet;
use std::sync::atomic::Ordering;

use serde::Serialize;
use sqlx::Row;
use vigil_domain::Timestamp;

use crate::{
    Backend, BackendKind, Conn, Error, OwnTx, Result, Store, Tx, TxInner, on_conn, reads,
    values_list,
};

/// A registered CDS client (an EHR), identified by its `iss`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CdsClientRecord {
    pub iss: String,
    /// The key set registered as JSON, or `None` for a client whose keys are at `jku`.
    pub jwks: Option<String>,
    pub jku: Option<String>,
    pub added_by: String,
    pub added_at: Timestamp,
    pub removed_by: Option<String>,
    pub removed_at: Option<Timestamp>,
}

/// A card that was shown.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CdsCardRecord {
    pub uuid: String,
    pub model: String,
    pub release: String,
    pub request_id: String,
    pub hook_instance: String,
    pub patient_key: Option<String>,
    /// `risk` or `fallback`.
    pub kind: String,
    pub indicator: String,
    pub indicator_rank: i64,
    pub created_at: Timestamp,
}

/// One feedback entry from the EHR.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CdsFeedbackRecord {
    pub seq: Option<i64>,
    pub model: String,
    pub card_uuid: String,
    pub request_id: Option<String>,
    pub release: Option<String>,
    pub outcome: String,
    pub override_code: Option<String>,
    pub override_display: Option<String>,
    pub user_comment: Option<String>,
    pub accepted_suggestions: Vec<String>,
    pub outcome_at: Timestamp,
    pub received_at: Timestamp,
    pub client_iss: String,
}

fn ts(s: &str, what: &str) -> Result<Timestamp> {
    Timestamp::parse(s).map_err(|e| Error::corrupt(format!("{what}: {e}")))
}

fn opt_ts(s: Option<String>, what: &str) -> Result<Option<Timestamp>> {
    s.map(|s| ts(&s, what)).transpose()
}

const CLIENT_COLUMNS: &str = "iss, jwks, jku, added_by, added_at, removed_by, removed_at";

async fn clients(c: Conn<'_>, include_removed: bool) -> Result<Vec<CdsClientRecord>> {
    let sql = format!(
        "SELECT {CLIENT_COLUMNS} FROM cds_clients {} ORDER BY iss",
        if include_removed {
            ""
        } else {
            "WHERE removed_at IS NULL"
        }
    );
    let rows = on_conn!(c, c => {
        let rows = sqlx::query(&sql).fetch_all(&mut *c).await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get::<String, _>("iss")?,
                    r.try_get::<Option<String>, _>("jwks")?,
                    r.try_get::<Option<String>, _>("jku")?,
                    r.try_get::<String, _>("added_by")?,
                    r.try_get::<String, _>("added_at")?,
                    r.try_get::<Option<String>, _>("removed_by")?,
                    r.try_get::<Option<String>, _>("removed_at")?,
                ))
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?
    });
    rows.into_iter()
        .map(
            |(iss, jwks, jku, added_by, added_at, removed_by, removed_at)| {
                Ok(CdsClientRecord {
                    added_at: ts(&added_at, "cds client")?,
                    removed_at: opt_ts(removed_at, "cds client")?,
                    iss,
                    jwks,
                    jku,
                    added_by,
                    removed_by,
                })
            },
        )
        .collect()
}

/// The columns of a client not removed, as [`active_client`] takes them.
const ACTIVE_CLIENT_COLUMNS: &str = "iss, jwks, jku, added_by, added_at";

/// A client not removed, from its [`ACTIVE_CLIENT_COLUMNS`].
fn active_client(
    (iss, jwks, jku, added_by, added_at): (String, Option<String>, Option<String>, String, String),
) -> Result<CdsClientRecord> {
    Ok(CdsClientRecord {
        added_at: ts(&added_at, "cds client")?,
        iss,
        jwks,
        jku,
        added_by,
        removed_by: None,
        removed_at: None,
    })
}

async fn client(c: Conn<'_>, iss: &str) -> Result<Option<CdsClientRecord>> {
    let sql = format!(
        "SELECT {ACTIVE_CLIENT_COLUMNS} FROM cds_clients WHERE iss = $1 AND removed_at IS NULL"
    );
    let row = on_conn!(c, c => {
        let row = sqlx::query(&sql).bind(iss).fetch_optional(&mut *c).await?;
        match row {
            None => None,
            Some(r) => Some((
                r.try_get::<String, _>("iss")?,
                r.try_get::<Option<String>, _>("jwks")?,
                r.try_get::<Option<String>, _>("jku")?,
                r.try_get::<String, _>("added_by")?,
                r.try_get::<String, _>("added_at")?,
            )),
        }
    });
    row.map(active_client).transpose()
}

/// The highest indicator rank of risk cards shown for a patient since `since`.
async fn last_rank(
    c: Conn<'_>,
    model: &str,
    patient_key: &str,
    since: Timestamp,
) -> Result<Option<i64>> {
    let sql = "SELECT MAX(indicator_rank) AS r FROM cds_cards \
               WHERE model = $1 AND patient_key = $2 AND kind = 'risk' AND created_at >= $3";
    Ok(on_conn!(c, c => {
        let row = sqlx::query(sql)
            .bind(model)
            .bind(patient_key)
            .bind(since.to_string())
            .fetch_one(&mut *c)
            .await?;
        row.try_get::<Option<i64>, _>("r")?
    }))
}

async fn alerts_since(c: Conn<'_>, model: &str, since: Timestamp) -> Result<i64> {
    let sql = "SELECT COUNT(*) AS n FROM cds_cards WHERE model = $1 AND kind = 'risk' AND created_at >= $2";
    Ok(on_conn!(c, c => {
        let row = sqlx::query(sql).bind(model).bind(since.to_string()).fetch_one(&mut *c).await?;
        row.try_get::<i64, _>("n")?
    }))
}

async fn card(c: Conn<'_>, uuid: &str) -> Result<Option<CdsCardRecord>> {
    let sql = "SELECT uuid, model, release_id, request_id, hook_instance, patient_key, kind, \
               indicator, indicator_rank, created_at FROM cds_cards WHERE uuid = $1";
    let row = on_conn!(c, c => {
        let row = sqlx::query(sql).bind(uuid).fetch_optional(&mut *c).await?;
        match row {
            None => None,
            Some(r) => Some((
                CdsCardRecord {
                    uuid: r.try_get("uuid")?,
                    model: r.try_get("model")?,
                    release: r.try_get("release_id")?,
                    request_id: r.try_get("request_id")?,
                    hook_instance: r.try_get("hook_instance")?,
                    patient_key: r.try_get("patient_key")?,
                    kind: r.try_get("kind")?,
                    indicator: r.try_get("indicator")?,
                    indicator_rank: r.try_get("indicator_rank")?,
                    created_at: Timestamp::from_micros(0),
                },
                r.try_get::<String, _>("created_at")?,
            )),
        }
    });
    row.map(|(mut rec, at)| {
        rec.created_at = ts(&at, "cds card")?;
        Ok(rec)
    })
    .transpose()
}

async fn feedback(
    c: Conn<'_>,
    model: &str,
    since: Option<Timestamp>,
) -> Result<Vec<CdsFeedbackRecord>> {
    let sql = "SELECT seq, model, card_uuid, request_id, release_id, outcome, override_code, \
               override_display, user_comment, accepted_suggestions, outcome_at, received_at, \
               client_iss FROM cds_feedback WHERE model = $1 AND outcome_at >= $2 ORDER BY seq";
    let since = since.unwrap_or(Timestamp::from_micros(0)).to_string();
    let rows = on_conn!(c, c => {
        let rows = sqlx::query(sql).bind(model).bind(&since).fetch_all(&mut *c).await?;
        rows.iter()
            .map(|r| {
                Ok((
                    CdsFeedbackRecord {
                        seq: Some(r.try_get::<i64, _>("seq")?),
                        model: r.try_get("model")?,
                        card_uuid: r.try_get("card_uuid")?,
                        request_id: r.try_get("request_id")?,
                        release: r.try_get("release_id")?,
                        outcome: r.try_get("outcome")?,
                        override_code: r.try_get("override_code")?,
                        override_display: r.try_get("override_display")?,
                        user_comment: r.try_get("user_comment")?,
                        accepted_suggestions: vec![],
                        outcome_at: Timestamp::from_micros(0),
                        received_at: Timestamp::from_micros(0),
                        client_iss: r.try_get("client_iss")?,
                    },
                    r.try_get::<String, _>("accepted_suggestions")?,
                    r.try_get::<String, _>("outcome_at")?,
                    r.try_get::<String, _>("received_at")?,
                ))
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?
    });
    rows.into_iter()
        .map(|(mut f, acc, out, rec)| {
            f.accepted_suggestions = crate::parse_json(&acc, "cds feedback")?;
            f.outcome_at = ts(&out, "cds feedback")?;
            f.received_at = ts(&rec, "cds feedback")?;
            Ok(f)
        })
        .collect()
}

reads! {
    /// Registered clients, active ones only unless `include_removed`.
    fn list_cds_clients(include_removed: bool) -> Vec<CdsClientRecord> => clients;
    /// The active client with this issuer.
    fn cds_client(iss: &str) -> Option<CdsClientRecord> => client;
    /// Feedback on a model's cards, by outcome time.
    fn list_cds_feedback(model: &str, since: Option<Timestamp>) -> Vec<CdsFeedbackRecord> => feedback;
}

impl Store {
    /// The highest indicator rank shown to this patient by this model since a time.
    pub async fn cds_last_alert_rank(
        &self,
        model: &str,
        patient_key: &str,
        since: Timestamp,
    ) -> Result<Option<i64>> {
        let mut pc = self.acquire().await?;
        last_rank(pc.as_conn(), model, patient_key, since).await
    }

    /// Alert cards shown by a model since a time.
    pub async fn cds_alerts_since(&self, model: &str, since: Timestamp) -> Result<i64> {
        let mut pc = self.acquire().await?;
        alerts_since(pc.as_conn(), model, since).await
    }

    /// One shown card.
    pub async fn cds_card(&self, uuid: &str) -> Result<Option<CdsCardRecord>> {
        let mut pc = self.acquire().await?;
        card(pc.as_conn(), uuid).await
    }

    /// Remembers a token id until it expires. `false` when it was seen before (a replay).
    /// Expired ids are forgotten on the way.
    pub async fn cds_remember_jti(
        &self,
        iss: &str,
        jti: &str,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<bool> {
        let claim = JtiClaim {
            iss: iss.to_string(),
            jti: jti.to_string(),
            expires_at,
        };
        let mut pc = self.acquire_write().await?;
        let fresh = remember_jtis(pc.as_conn(), &[claim], now, FORGET_PER_CALL).await?;
        Ok(fresh == [true])
    }
}

/// A token id to remember until it expires.
#[derive(Clone, Debug, PartialEq)]
pub struct JtiClaim {
    pub iss: String,
    pub jti: String,
    pub expires_at: Timestamp,
}

/// Token ids per statement: three bound values each, far below either backend's limit.
const JTIS_PER_STATEMENT: usize = 500;

/// Forgets up to `forget` ids expired at `now`, then remembers `claims` and says, in their
/// order, which were new: an id is refused when the store holds it (expired or not: the
/// forgetting makes room) or when it came earlier in the list.
async fn remember_jtis(
    mut c: Conn<'_>,
    claims: &[JtiClaim],
    now: Timestamp,
    forget: i64,
) -> Result<Vec<bool>> {
    if forget > 0 {
        let sql = "DELETE FROM cds_seen_jti WHERE expires_at < $1 AND jti IN \
                   (SELECT jti FROM cds_seen_jti WHERE expires_at < $1 LIMIT $2)";
        on_conn!(c.reborrow(), c => {
            sqlx::query(sql)
                .bind(now.to_string())
                .bind(forget)
                .execute(&mut *c)
                .await?;
        });
    }
    let mut inserted: HashSet<(String, String)> = HashSet::with_capacity(claims.len());
    for chunk in claims.chunks(JTIS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO cds_seen_jti (iss, jti, expires_at) VALUES {} \
             ON CONFLICT (iss, jti) DO NOTHING RETURNING iss, jti",
            values_list(c.kind(), chunk.len(), 3)
        );
        let expires: Vec<String> = chunk.iter().map(|j| j.expires_at.to_string()).collect();
        let rows = on_conn!(c.reborrow(), c => {
            let mut q = sqlx::query(&sql);
            for (j, e) in chunk.iter().zip(&expires) {
                q = q.bind(&j.iss).bind(&j.jti).bind(e);
            }
            let rows = q.fetch_all(&mut *c).await?;
            rows.iter()
                .map(|r| Ok((r.try_get::<String, _>("iss")?, r.try_get::<String, _>("jti")?)))
                .collect::<Result<Vec<_>, sqlx::Error>>()?
        });
        inserted.extend(rows);
    }
    // Each inserted id is new for its first claim only.
    Ok(claims
        .iter()
        .map(|j| inserted.remove(&(j.iss.clone(), j.jti.clone())))
        .collect())
}

/// One INSERT of `rows` card rows.
pub(crate) fn cards_sql(kind: BackendKind, rows: usize) -> String {
    format!(
        "INSERT INTO cds_cards (uuid, model, release_id, request_id, hook_instance, \
         patient_key, kind, indicator, indicator_rank, created_at) VALUES {}",
        values_list(kind, rows, 10)
    )
}

/// The creation times of card rows, as bound.
pub(crate) fn created_texts(cards: &[CdsCardRecord]) -> Vec<String> {
    cards.iter().map(|r| r.created_at.to_string()).collect()
}

/// Binds card rows and their creation times ([`created_texts`]) to a query of either
/// backend, in [`cards_sql`]'s order.
macro_rules! bind_cards {
    ($q:expr, $cards:expr, $created:expr) => {{
        let mut q = $q;
        for (r, at) in $cards.iter().zip($created) {
            q = q
                .bind(&r.uuid)
                .bind(&r.model)
                .bind(&r.release)
                .bind(&r.request_id)
                .bind(&r.hook_instance)
                .bind(&r.patient_key)
                .bind(&r.kind)
                .bind(&r.indicator)
                .bind(r.indicator_rank)
                .bind(at);
        }
        q
    }};
}
pub(crate) use bind_cards;

/// Issuers read per statement by [`Store::begin_batch`].
const CLIENTS_PER_STATEMENT: usize = 100;

/// What a batch transaction found as it began ([`Store::begin_batch`]).
#[derive(Debug, Default)]
pub struct BatchOpening {
    /// For each token id given, in order, whether it was new (see [`Tx::cds_remember_jtis`]).
    pub fresh: Vec<bool>,
    /// For each issuer given, in order, its registered client (`None`: not registered, or
    /// removed).
    pub clients: Vec<Option<CdsClientRecord>>,
}

impl Store {
    /// Begins a write transaction (see [`Store::begin`]), remembers token ids in it (`now`
    /// is the callers' time, needed when there are any) and reads CDS clients by issuer. On
    /// SQLite the `BEGIN IMMEDIATE` and these statements go to the database as one exchange;
    /// ended by [`Tx::commit_with_predictions`], the whole transaction takes two. (Each
    /// exchange with a SQLite connection is a round trip to the thread that owns it.)
    pub async fn begin_batch(
        &self,
        claims: &[JtiClaim],
        now: Option<Timestamp>,
        issuers: &[String],
    ) -> Result<(Tx, BatchOpening)> {
        let fits = claims.len() <= JTIS_PER_STATEMENT && issuers.len() <= CLIENTS_PER_STATEMENT;
        let (Backend::Sqlite(pools), true) = (&self.backend, fits) else {
            let mut tx = self.begin().await?;
            let fresh = match now {
                Some(now) => tx.cds_remember_jtis(claims, now).await?,
                None => Vec::new(),
            };
            let mut clients = Vec::with_capacity(issuers.len());
            for iss in issuers {
                clients.push(tx.cds_client(iss).await?);
            }
            return Ok((tx, BatchOpening { fresh, clients }));
        };
        let conn = pools.write_conn().await?;
        // Open from here on: should anything below fail, the connection is closed, and the
        // transaction with it.
        let mut tx = self.tx_with(TxInner::SqliteOwn(OwnTx::new(conn, pools)));
        let now = now.filter(|_| !claims.is_empty());
        let forget = now.map_or(0, |now| tx.forget_due(now));
        let mut sql = String::from("BEGIN IMMEDIATE;\n");
        if forget > 0 {
            sql.push_str(
                "DELETE FROM cds_seen_jti WHERE expires_at < ? AND jti IN \
                 (SELECT jti FROM cds_seen_jti WHERE expires_at < ? LIMIT ?);\n",
            );
        }
        if now.is_some() {
            sql.push_str(&format!(
                "INSERT INTO cds_seen_jti (iss, jti, expires_at) VALUES {} \
                 ON CONFLICT (iss, jti) DO NOTHING RETURNING iss, jti;\n",
                values_list(BackendKind::Sqlite, claims.len(), 3)
            ));
        }
        if !issuers.is_empty() {
            let marks = vec!["?"; issuers.len()].join(", ");
            sql.push_str(&format!(
                "SELECT {ACTIVE_CLIENT_COLUMNS} FROM cds_clients \
                 WHERE removed_at IS NULL AND iss IN ({marks});"
            ));
        }
        let now_text = now.map(|n| n.to_string()).unwrap_or_default();
        let expires: Vec<String> = claims.iter().map(|j| j.expires_at.to_string()).collect();
        let mut q = sqlx::query(&sql);
        if forget > 0 {
            q = q.bind(&now_text).bind(&now_text).bind(forget);
        }
        if now.is_some() {
            for (j, e) in claims.iter().zip(&expires) {
                q = q.bind(&j.iss).bind(&j.jti).bind(e);
            }
        }
        for iss in issuers {
            q = q.bind(iss);
        }
        let TxInner::SqliteOwn(own) = &mut tx.inner else {
            return Err(Error::corrupt("a batch transaction lost its connection"));
        };
        let rows = q.fetch_all(own.conn()).await?;
        // The rows of both statements come in one list: the token ids inserted (two
        // columns), then the clients (five).
        let mut inserted: HashSet<(String, String)> = HashSet::with_capacity(claims.len());
        let mut found = Vec::new();
        for r in &rows {
            if r.len() == 2 {
                inserted.insert((r.try_get("iss")?, r.try_get("jti")?));
            } else {
                found.push(active_client((
                    r.try_get("iss")?,
                    r.try_get("jwks")?,
                    r.try_get("jku")?,
                    r.try_get("added_by")?,
                    r.try_get("added_at")?,
                ))?);
            }
        }
        let fresh = match now {
            Some(_) => claims
                .iter()
                .map(|j| inserted.remove(&(j.iss.clone(), j.jti.clone())))
                .collect(),
            None => Vec::new(),
        };
        let clients = issuers
            .iter()
            .map(|iss| found.iter().find(|c| &c.iss == iss).cloned())
            .collect();
        Ok((tx, BatchOpening { fresh, clients }))
    }
}

/// Expired token ids forgotten by a call on its own: bounded work, and the table stays small
/// as long as each call forgets more than it adds.
const FORGET_PER_CALL: i64 = 16;
/// Card rows per statement: ten bound values each.
pub(crate) const CARDS_PER_STATEMENT: usize = 100;
/// Expired token ids forgotten by the first transaction of each second (of the callers'
/// clock) that remembers one; the others forget none. Ids expire as fast as they arrive, so
/// this keeps the table bounded up to this many CDS calls a second — several times what two
/// cores can serve — while every other transaction is spared the statement.
const FORGET_PER_SECOND: i64 = 16_384;

impl Tx {
    /// [`Store::cds_remember_jti`] inside the caller's transaction; expired ids are
    /// forgotten by the first transaction of each second of `now`.
    pub async fn cds_remember_jti(
        &mut self,
        iss: &str,
        jti: &str,
        expires_at: Timestamp,
        now: Timestamp,
    ) -> Result<bool> {
        let claim = JtiClaim {
            iss: iss.to_string(),
            jti: jti.to_string(),
            expires_at,
        };
        Ok(self.cds_remember_jtis(&[claim], now).await? == [true])
    }

    /// Remembers many token ids in one statement and says, in their order, which were new
    /// (see [`Tx::cds_remember_jti`]); an id that comes twice is new the first time only.
    pub async fn cds_remember_jtis(
        &mut self,
        claims: &[JtiClaim],
        now: Timestamp,
    ) -> Result<Vec<bool>> {
        if claims.is_empty() {
            return Ok(Vec::new());
        }
        let forget = self.forget_due(now);
        remember_jtis(self.as_conn(), claims, now, forget).await
    }

    /// How many expired token ids this transaction forgets: the first transaction of each
    /// second of `now` forgets them, the others none.
    fn forget_due(&mut self, now: Timestamp) -> i64 {
        let second = now.as_unix_seconds();
        if !std::mem::replace(&mut self.jti_forgotten, true)
            && self.jti_swept.fetch_max(second, Ordering::Relaxed) < second
        {
            FORGET_PER_SECOND
        } else {
            0
        }
    }

    /// [`Store::cds_last_alert_rank`], seeing the cards this transaction wrote.
    pub async fn cds_last_alert_rank(
        &mut self,
        model: &str,
        patient_key: &str,
        since: Timestamp,
    ) -> Result<Option<i64>> {
        self.flush_cds_cards().await?;
        last_rank(self.as_conn(), model, patient_key, since).await
    }

    /// [`Store::cds_alerts_since`], counting the cards this transaction wrote.
    pub async fn cds_alerts_since(&mut self, model: &str, since: Timestamp) -> Result<i64> {
        self.flush_cds_cards().await?;
        alerts_since(self.as_conn(), model, since).await
    }

    /// [`Store::cds_card`], seeing the cards this transaction wrote.
    pub async fn cds_card(&mut self, uuid: &str) -> Result<Option<CdsCardRecord>> {
        self.flush_cds_cards().await?;
        card(self.as_conn(), uuid).await
    }

    /// Registers a client, or registers again one that was removed.
    pub async fn upsert_cds_client(&mut self, r: &CdsClientRecord) -> Result<()> {
        let sql = "INSERT INTO cds_clients (iss, jwks, jku, added_by, added_at) VALUES ($1, $2, $3, $4, $5) \
                   ON CONFLICT (iss) DO UPDATE SET jwks = excluded.jwks, jku = excluded.jku, \
                   added_by = excluded.added_by, added_at = excluded.added_at, removed_by = NULL, removed_at = NULL";
        let c = self.as_conn();
        on_conn!(c, c => {
            sqlx::query(sql)
                .bind(&r.iss)
                .bind(&r.jwks)
                .bind(&r.jku)
                .bind(&r.added_by)
                .bind(r.added_at.to_string())
                .execute(&mut *c)
                .await?;
        });
        Ok(())
    }

    /// Marks a client removed; `false` if there was no active client with that issuer.
    pub async fn remove_cds_client(&mut self, iss: &str, by: &str, at: Timestamp) -> Result<bool> {
        let sql = "UPDATE cds_clients SET removed_by = $1, removed_at = $2 WHERE iss = $3 AND removed_at IS NULL";
        let c = self.as_conn();
        let n = on_conn!(c, c => {
            sqlx::query(sql).bind(by).bind(at.to_string()).bind(iss).execute(&mut *c).await?.rows_affected()
        });
        Ok(n == 1)
    }

    /// Writes shown cards with this transaction. The rows of a transaction go out together,
    /// in statements of many rows, before its commit and before any read of the cards inside
    /// it; a failed write fails that read or the commit.
    pub async fn insert_cds_cards(&mut self, cards: &[CdsCardRecord]) -> Result<()> {
        self.cds_cards.extend_from_slice(cards);
        Ok(())
    }

    /// Writes the cards [`Tx::insert_cds_cards`] holds back.
    pub(crate) async fn flush_cds_cards(&mut self) -> Result<()> {
        if self.cds_cards.is_empty() {
            return Ok(());
        }
        let cards = std::mem::take(&mut self.cds_cards);
        let kind = self.as_conn().kind();
        for chunk in cards.chunks(CARDS_PER_STATEMENT) {
            let sql = cards_sql(kind, chunk.len());
            let created = created_texts(chunk);
            let c = self.as_conn();
            on_conn!(c, c => {
                bind_cards!(sqlx::query(&sql), chunk, &created).execute(&mut *c).await?;
            });
        }
        Ok(())
    }

    pub async fn insert_cds_feedback(&mut self, r: &CdsFeedbackRecord) -> Result<()> {
        let sql = "INSERT INTO cds_feedback (model, card_uuid, request_id, release_id, outcome, override_code, \
                   override_display, user_comment, accepted_suggestions, outcome_at, received_at, client_iss) \
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)";
        let acc = serde_json::to_string(&r.accepted_suggestions).map_err(Error::corrupt)?;
        let c = self.as_conn();
        on_conn!(c, c => {
            sqlx::query(sql)
                .bind(&r.model)
                .bind(&r.card_uuid)
                .bind(&r.request_id)
                .bind(&r.release)
                .bind(&r.outcome)
                .bind(&r.override_code)
                .bind(&r.override_display)
                .bind(&r.user_comment)
                .bind(&acc)
                .bind(r.outcome_at.to_string())
                .bind(r.received_at.to_string())
                .bind(&r.client_iss)
                .execute(&mut *c)
                .await?;
        });
        Ok(())
    }
}
