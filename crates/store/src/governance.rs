//! Storage of governance: users, gate policies, release stages, promotions, sign-offs,
//! exceptions, rollback drills, review samples and case reviews.

use sqlx::Row;
use vigil_domain::governance::{
    CaseReview, ChangeKind, Decision, Exception, Promotion, SignOff, Verdict,
};
use vigil_domain::policy::GateName;
use vigil_domain::role::{Role, Roles};
use vigil_domain::{Digest, ModelName, ReleaseId, SnapshotId, Stage, Timestamp, UserName};

use crate::{Conn, Error, Result, Tx, on_conn, reads};

fn dec<T, E: std::fmt::Display>(r: std::result::Result<T, E>, what: &str) -> Result<T> {
    r.map_err(|e| Error::corrupt(format!("{what}: {e}")))
}

/// A user as stored (the token itself is never stored, only its SHA-256).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct UserRecord {
    pub name: UserName,
    pub roles: Roles,
    #[serde(skip)]
    pub token_hash: Digest,
    pub created_at: Timestamp,
    pub created_by: UserName,
    pub revoked_at: Option<Timestamp>,
    pub revoked_by: Option<UserName>,
}

/// An applied gate policy version.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct PolicyRecord {
    pub version: i64,
    pub digest: Digest,
    pub source: String,
    pub applied_at: Timestamp,
    pub applied_by: UserName,
}

/// A rehearsed rollback.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct RollbackDrill {
    pub id: i64,
    pub model: ModelName,
    pub from_release: ReleaseId,
    /// The release a rollback would restore; `None`: none, the model would be withdrawn.
    pub to_release: Option<ReleaseId>,
    pub reason: String,
    pub actor: UserName,
    pub at: Timestamp,
}

/// Cases drawn for clinical review.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ReviewSample {
    pub id: i64,
    pub release: ReleaseId,
    pub dataset: SnapshotId,
    pub method: String,
    pub cases: Vec<u64>,
    pub created_by: UserName,
    pub at: Timestamp,
}

// ---- users ------------------------------------------------------------------------------

const USER_COLUMNS: &str =
    "name, roles, token_hash, created_at, created_by, revoked_at, revoked_by";

macro_rules! user_rows {
    ($rows:expr) => {
        $rows
            .iter()
            .map(|r| {
                let name: String = r.try_get("name")?;
                let what = format!("user {name}");
                let roles: String = r.try_get("roles")?;
                let th: String = r.try_get("token_hash")?;
                let ca: String = r.try_get("created_at")?;
                let cb: String = r.try_get("created_by")?;
                let ra: Option<String> = r.try_get("revoked_at")?;
                let rb: Option<String> = r.try_get("revoked_by")?;
                Ok(UserRecord {
                    name: dec(UserName::parse(&name), &what)?,
                    roles: dec(Roles::parse(&roles), &what)?,
                    token_hash: dec(Digest::parse(&th), &what)?,
                    created_at: dec(Timestamp::parse(&ca), &what)?,
                    created_by: dec(UserName::parse(&cb), &what)?,
                    revoked_at: ra.map(|t| dec(Timestamp::parse(&t), &what)).transpose()?,
                    revoked_by: rb.map(|u| dec(UserName::parse(&u), &what)).transpose()?,
                })
            })
            .collect::<Result<Vec<UserRecord>>>()
    };
}

async fn list_users(c: Conn<'_>) -> Result<Vec<UserRecord>> {
    let sql = format!("SELECT {USER_COLUMNS} FROM users ORDER BY name");
    on_conn!(c, c => {
        let rows = sqlx::query(&sql).fetch_all(&mut *c).await?;
        user_rows!(rows)
    })
}

async fn find_user(c: Conn<'_>, name: &UserName) -> Result<Option<UserRecord>> {
    let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE name = $1");
    let v = on_conn!(c, c => {
        let rows = sqlx::query(&sql).bind(name.as_str()).fetch_all(&mut *c).await?;
        user_rows!(rows)?
    });
    Ok(v.into_iter().next())
}

async fn find_user_by_token_hash(c: Conn<'_>, hash: &Digest) -> Result<Option<UserRecord>> {
    let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE token_hash = $1");
    let v = on_conn!(c, c => {
        let rows = sqlx::query(&sql).bind(hash.to_hex()).fetch_all(&mut *c).await?;
        user_rows!(rows)?
    });
    Ok(v.into_iter().next())
}

async fn count_users(c: Conn<'_>) -> Result<i64> {
    Ok(on_conn!(c, c => sqlx::query_scalar("SELECT count(*) FROM users").fetch_one(&mut *c).await?))
}

// ---- policies ---------------------------------------------------------------------------

/// The versioned policy tables: gate policies (governance) and monitor policies. Both keep
/// every applied version, immutable, under the same columns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PolicyKind {
    Gate,
    Monitor,
}

impl PolicyKind {
    fn latest_sql(self) -> &'static str {
        match self {
            PolicyKind::Gate => {
                "SELECT version, digest, source, applied_at, applied_by FROM gate_policies ORDER BY version DESC LIMIT 1"
            }
            PolicyKind::Monitor => {
                "SELECT version, digest, source, applied_at, applied_by FROM monitor_policies ORDER BY version DESC LIMIT 1"
            }
        }
    }

    fn insert_sql(self) -> &'static str {
        match self {
            PolicyKind::Gate => {
                "INSERT INTO gate_policies (version, digest, source, applied_at, applied_by) VALUES ($1, $2, $3, $4, $5)"
            }
            PolicyKind::Monitor => {
                "INSERT INTO monitor_policies (version, digest, source, applied_at, applied_by) VALUES ($1, $2, $3, $4, $5)"
            }
        }
    }

    fn label(self) -> &'static str {
        match self {
            PolicyKind::Gate => "gate policy",
            PolicyKind::Monitor => "monitor policy",
        }
    }
}

async fn latest_policy(c: Conn<'_>, kind: PolicyKind) -> Result<Option<PolicyRecord>> {
    let row: Option<(i64, String, String, String, String)> = on_conn!(c, c => {
        sqlx::query_as(kind.latest_sql())
            .fetch_optional(&mut *c)
            .await?
    });
    row.map(|(version, d, source, at, by)| {
        let what = format!("{} {version}", kind.label());
        Ok(PolicyRecord {
            version,
            digest: dec(Digest::parse(&d), &what)?,
            source,
            applied_at: dec(Timestamp::parse(&at), &what)?,
            applied_by: dec(UserName::parse(&by), &what)?,
        })
    })
    .transpose()
}

// ---- stages and promotions ------------------------------------------------------------

async fn list_stages(c: Conn<'_>, model: &ModelName) -> Result<Vec<(ReleaseId, Stage, Timestamp)>> {
    let rows: Vec<(String, String, String)> = on_conn!(c, c => {
        sqlx::query_as("SELECT release_id, stage, since FROM release_stages WHERE model = $1 ORDER BY release_id")
            .bind(model.as_str())
            .fetch_all(&mut *c)
            .await?
    });
    rows.into_iter()
        .map(|(r, s, t)| {
            let what = format!("stage of release {r}");
            Ok((
                dec(ReleaseId::parse(&r), &what)?,
                dec(s.parse::<Stage>(), &what)?,
                dec(Timestamp::parse(&t), &what)?,
            ))
        })
        .collect()
}

const PROMOTION_COLUMNS: &str = "id, model, release_id, from_stage, to_stage, kind, related_release, reason, exceptions, actor, at";

async fn list_promotions(c: Conn<'_>, model: &ModelName) -> Result<Vec<Promotion>> {
    let sql = format!("SELECT {PROMOTION_COLUMNS} FROM promotions WHERE model = $1 ORDER BY id");
    on_conn!(c, c => {
        let rows = sqlx::query(&sql).bind(model.as_str()).fetch_all(&mut *c).await?;
        rows.iter()
            .map(|r| {
                let id: i64 = r.try_get("id")?;
                let what = format!("promotion {id}");
                let m: String = r.try_get("model")?;
                let rel: String = r.try_get("release_id")?;
                let f: String = r.try_get("from_stage")?;
                let t: String = r.try_get("to_stage")?;
                let k: String = r.try_get("kind")?;
                let related: Option<String> = r.try_get("related_release")?;
                let x: String = r.try_get("exceptions")?;
                let actor: String = r.try_get("actor")?;
                let at: String = r.try_get("at")?;
                Ok(Promotion {
                    id,
                    model: dec(ModelName::parse(&m), &what)?,
                    release: dec(ReleaseId::parse(&rel), &what)?,
                    from: dec(f.parse::<Stage>(), &what)?,
                    to: dec(t.parse::<Stage>(), &what)?,
                    kind: dec(ChangeKind::parse(&k), &what)?,
                    related: related.map(|s| dec(ReleaseId::parse(&s), &what)).transpose()?,
                    reason: r.try_get("reason")?,
                    exceptions: dec(serde_json::from_str(&x), &what)?,
                    actor: dec(UserName::parse(&actor), &what)?,
                    at: dec(Timestamp::parse(&at), &what)?,
                })
            })
            .collect::<Result<Vec<_>>>()
    })
}

// ---- sign-offs, exceptions ------------------------------------------------------------

async fn list_sign_offs(c: Conn<'_>, release: &ReleaseId) -> Result<Vec<SignOff>> {
    on_conn!(c, c => {
        let rows = sqlx::query("SELECT id, release_id, role, user_name, decision, comment, evidence_digest, at FROM sign_offs WHERE release_id = $1 ORDER BY id")
            .bind(release.to_string())
            .fetch_all(&mut *c)
            .await?;
        rows.iter()
            .map(|r| {
                let id: i64 = r.try_get("id")?;
                let what = format!("sign-off {id}");
                let rel: String = r.try_get("release_id")?;
                let role: String = r.try_get("role")?;
                let u: String = r.try_get("user_name")?;
                let d: String = r.try_get("decision")?;
                let ed: String = r.try_get("evidence_digest")?;
                let at: String = r.try_get("at")?;
                Ok(SignOff {
                    id,
                    release: dec(ReleaseId::parse(&rel), &what)?,
                    role: dec(Role::parse(&role), &what)?,
                    user: dec(UserName::parse(&u), &what)?,
                    decision: dec(Decision::parse(&d), &what)?,
                    comment: r.try_get("comment")?,
                    evidence_digest: dec(Digest::parse(&ed), &what)?,
                    at: dec(Timestamp::parse(&at), &what)?,
                })
            })
            .collect::<Result<Vec<_>>>()
    })
}

async fn list_exceptions(c: Conn<'_>, release: &ReleaseId) -> Result<Vec<Exception>> {
    on_conn!(c, c => {
        let rows = sqlx::query("SELECT id, release_id, gate, rationale, granted_by, granted_at, expires_at FROM gate_exceptions WHERE release_id = $1 ORDER BY id")
            .bind(release.to_string())
            .fetch_all(&mut *c)
            .await?;
        rows.iter()
            .map(|r| {
                let id: i64 = r.try_get("id")?;
                let what = format!("exception {id}");
                let rel: String = r.try_get("release_id")?;
                let g: String = r.try_get("gate")?;
                let by: String = r.try_get("granted_by")?;
                let ga: String = r.try_get("granted_at")?;
                let ea: String = r.try_get("expires_at")?;
                Ok(Exception {
                    id,
                    release: dec(ReleaseId::parse(&rel), &what)?,
                    gate: dec(GateName::parse(&g), &what)?,
                    rationale: r.try_get("rationale")?,
                    granted_by: dec(UserName::parse(&by), &what)?,
                    granted_at: dec(Timestamp::parse(&ga), &what)?,
                    expires_at: dec(Timestamp::parse(&ea), &what)?,
                })
            })
            .collect::<Result<Vec<_>>>()
    })
}

// ---- drills, reviews ------------------------------------------------------------------

type DrillRow = (i64, String, String, Option<String>, String, String, String);

async fn list_rollback_drills(c: Conn<'_>, model: &ModelName) -> Result<Vec<RollbackDrill>> {
    let rows: Vec<DrillRow> = on_conn!(c, c => {
        sqlx::query_as("SELECT id, model, from_release, to_release, reason, actor, at FROM rollback_drills WHERE model = $1 ORDER BY id")
            .bind(model.as_str())
            .fetch_all(&mut *c)
            .await?
    });
    rows.into_iter()
        .map(|(id, m, f, t, reason, actor, at)| {
            let what = format!("rollback drill {id}");
            Ok(RollbackDrill {
                id,
                model: dec(ModelName::parse(&m), &what)?,
                from_release: dec(ReleaseId::parse(&f), &what)?,
                to_release: t.map(|t| dec(ReleaseId::parse(&t), &what)).transpose()?,
                reason,
                actor: dec(UserName::parse(&actor), &what)?,
                at: dec(Timestamp::parse(&at), &what)?,
            })
        })
        .collect()
}

type CaseReviewRow = (i64, String, String, i64, String, String, String, String);
type SampleRow = (i64, String, String, String, String, String, String);

async fn list_case_reviews(c: Conn<'_>, release: &ReleaseId) -> Result<Vec<CaseReview>> {
    let rows: Vec<CaseReviewRow> = on_conn!(c, c => {
        sqlx::query_as("SELECT id, release_id, dataset_id, case_row, verdict, comment, reviewer, at FROM case_reviews WHERE release_id = $1 ORDER BY id")
            .bind(release.to_string())
            .fetch_all(&mut *c)
            .await?
    });
    rows.into_iter()
        .map(|(id, rel, ds, case, v, comment, reviewer, at)| {
            let what = format!("case review {id}");
            Ok(CaseReview {
                id,
                release: dec(ReleaseId::parse(&rel), &what)?,
                dataset: dec(SnapshotId::parse(&ds), &what)?,
                case: dec(u64::try_from(case), &what)?,
                verdict: dec(Verdict::parse(&v), &what)?,
                comment,
                reviewer: dec(UserName::parse(&reviewer), &what)?,
                at: dec(Timestamp::parse(&at), &what)?,
            })
        })
        .collect()
}

async fn latest_review_sample(c: Conn<'_>, release: &ReleaseId) -> Result<Option<ReviewSample>> {
    let row: Option<SampleRow> = on_conn!(c, c => {
        sqlx::query_as("SELECT id, release_id, dataset_id, method, cases, created_by, at FROM review_samples WHERE release_id = $1 ORDER BY id DESC LIMIT 1")
            .bind(release.to_string())
            .fetch_optional(&mut *c)
            .await?
    });
    row.map(|(id, rel, ds, method, cases, by, at)| {
        let what = format!("review sample {id}");
        Ok(ReviewSample {
            id,
            release: dec(ReleaseId::parse(&rel), &what)?,
            dataset: dec(SnapshotId::parse(&ds), &what)?,
            method,
            cases: dec(serde_json::from_str(&cases), &what)?,
            created_by: dec(UserName::parse(&by), &what)?,
            at: dec(Timestamp::parse(&at), &what)?,
        })
    })
    .transpose()
}

reads! {
    fn list_users() -> Vec<UserRecord> => list_users;
    fn find_user(name: &UserName) -> Option<UserRecord> => find_user;
    /// The user whose token hashes to `hash` (revoked or not: the caller decides).
    fn find_user_by_token_hash(hash: &Digest) -> Option<UserRecord> => find_user_by_token_hash;
    fn count_users() -> i64 => count_users;
    fn latest_policy(kind: PolicyKind) -> Option<PolicyRecord> => latest_policy;
    /// Releases of `model` that have left `registered`, with their stage and since when.
    fn list_stages(model: &ModelName) -> Vec<(ReleaseId, Stage, Timestamp)> => list_stages;
    /// Every stage change of `model`'s releases, oldest first.
    fn list_promotions(model: &ModelName) -> Vec<Promotion> => list_promotions;
    fn list_sign_offs(release: &ReleaseId) -> Vec<SignOff> => list_sign_offs;
    fn list_exceptions(release: &ReleaseId) -> Vec<Exception> => list_exceptions;
    fn list_rollback_drills(model: &ModelName) -> Vec<RollbackDrill> => list_rollback_drills;
    fn list_case_reviews(release: &ReleaseId) -> Vec<CaseReview> => list_case_reviews;
    fn latest_review_sample(release: &ReleaseId) -> Option<ReviewSample> => latest_review_sample;
}

fn conflict_or(e: sqlx::Error, msg: impl FnOnce() -> String) -> Error {
    match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => Error::Conflict(msg()),
        _ => Error::Database(e),
    }
}

impl Tx {
    pub async fn insert_user(&mut self, u: &UserRecord) -> Result<()> {
        let sql =
            format!("INSERT INTO users ({USER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, NULL, NULL)");
        let r = on_conn!(self.as_conn(), c => {
            sqlx::query(&sql)
                .bind(u.name.as_str())
                .bind(u.roles.to_string())
                .bind(u.token_hash.to_hex())
                .bind(u.created_at.to_string())
                .bind(u.created_by.as_str())
                .execute(&mut *c)
                .await
                .map(|_| ())
        });
        r.map_err(|e| conflict_or(e, || format!("user `{}` already exists", u.name)))
    }

    pub async fn revoke_user(
        &mut self,
        name: &UserName,
        at: Timestamp,
        by: &UserName,
    ) -> Result<()> {
        on_conn!(self.as_conn(), c => {
            sqlx::query("UPDATE users SET revoked_at = $1, revoked_by = $2 WHERE name = $3 AND revoked_at IS NULL")
                .bind(at.to_string())
                .bind(by.as_str())
                .bind(name.as_str())
                .execute(&mut *c)
                .await?;
        });
        Ok(())
    }

    pub async fn insert_policy(&mut self, kind: PolicyKind, p: &PolicyRecord) -> Result<()> {
        on_conn!(self.as_conn(), c => {
            sqlx::query(kind.insert_sql())
                .bind(p.version)
                .bind(p.digest.to_hex())
                .bind(&p.source)
                .bind(p.applied_at.to_string())
                .bind(p.applied_by.as_str())
                .execute(&mut *c)
                .await?;
        });
        Ok(())
    }

    /// Sets a release's stage. The unique partial indexes refuse a second production or
    /// shadow release of one model even if a caller forgot to check.
    pub async fn set_stage(
        &mut self,
        release: &ReleaseId,
        model: &ModelName,
        stage: Stage,
        at: Timestamp,
    ) -> Result<()> {
        let r = on_conn!(self.as_conn(), c => {
            sqlx::query(
                "INSERT INTO release_stages (release_id, model, stage, since) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (release_id) DO UPDATE SET stage = excluded.stage, since = excluded.since",
            )
            .bind(release.to_string())
            .bind(model.as_str())
            .bind(stage.as_str())
            .bind(at.to_string())
            .execute(&mut *c)
            .await
            .map(|_| ())
        });
        r.map_err(|e| {
            conflict_or(e, || {
                format!("model `{model}` already has a release in {stage}")
            })
        })
    }

    pub async fn insert_promotion(&mut self, p: &Promotion) -> Result<i64> {
        let x = serde_json::to_string(&p.exceptions).map_err(Error::corrupt)?;
        let id: i64 = on_conn!(self.as_conn(), c => {
            sqlx::query_scalar(
                "INSERT INTO promotions (model, release_id, from_stage, to_stage, kind, related_release, reason, exceptions, actor, at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
            )
            .bind(p.model.as_str())
            .bind(p.release.to_string())
            .bind(p.from.as_str())
            .bind(p.to.as_str())
            .bind(p.kind.as_str())
            .bind(p.related.map(|r| r.to_string()))
            .bind(&p.reason)
            .bind(&x)
            .bind(p.actor.as_str())
            .bind(p.at.to_string())
            .fetch_one(&mut *c)
            .await?
        });
        Ok(id)
    }

    pub async fn insert_sign_off(&mut self, s: &SignOff) -> Result<i64> {
        let id: i64 = on_conn!(self.as_conn(), c => {
            sqlx::query_scalar(
                "INSERT INTO sign_offs (release_id, role, user_name, decision, comment, evidence_digest, at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
            )
            .bind(s.release.to_string())
            .bind(s.role.as_str())
            .bind(s.user.as_str())
            .bind(s.decision.as_str())
            .bind(&s.comment)
            .bind(s.evidence_digest.to_hex())
            .bind(s.at.to_string())
            .fetch_one(&mut *c)
            .await?
        });
        Ok(id)
    }

    pub async fn insert_exception(&mut self, x: &Exception) -> Result<i64> {
        let id: i64 = on_conn!(self.as_conn(), c => {
            sqlx::query_scalar(
                "INSERT INTO gate_exceptions (release_id, gate, rationale, granted_by, granted_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            )
            .bind(x.release.to_string())
            .bind(x.gate.as_str())
            .bind(&x.rationale)
            .bind(x.granted_by.as_str())
            .bind(x.granted_at.to_string())
            .bind(x.expires_at.to_string())
            .fetch_one(&mut *c)
            .await?
        });
        Ok(id)
    }

    pub async fn insert_rollback_drill(&mut self, d: &RollbackDrill) -> Result<i64> {
        let id: i64 = on_conn!(self.as_conn(), c => {
            sqlx::query_scalar(
                "INSERT INTO rollback_drills (model, from_release, to_release, reason, actor, at) \
                 VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            )
            .bind(d.model.as_str())
            .bind(d.from_release.to_string())
            .bind(d.to_release.map(|r| r.to_string()))
            .bind(&d.reason)
            .bind(d.actor.as_str())
            .bind(d.at.to_string())
            .fetch_one(&mut *c)
            .await?
        });
        Ok(id)
    }

    pub async fn insert_review_sample(&mut self, s: &ReviewSample) -> Result<i64> {
        let cases = serde_json::to_string(&s.cases).map_err(Error::corrupt)?;
        let id: i64 = on_conn!(self.as_conn(), c => {
            sqlx::query_scalar(
                "INSERT INTO review_samples (release_id, dataset_id, method, cases, created_by, at) \
                 VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            )
            .bind(s.release.to_string())
            .bind(s.dataset.to_string())
            .bind(&s.method)
            .bind(&cases)
            .bind(s.created_by.as_str())
            .bind(s.at.to_string())
            .fetch_one(&mut *c)
            .await?
        });
        Ok(id)
    }

    pub async fn insert_case_review(&mut self, r: &CaseReview) -> Result<i64> {
        let case = i64::try_from(r.case).map_err(Error::corrupt)?;
        let id: i64 = on_conn!(self.as_conn(), c => {
            sqlx::query_scalar(
                "INSERT INTO case_reviews (release_id, dataset_id, case_row, verdict, comment, reviewer, at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
            )
            .bind(r.release.to_string())
            .bind(r.dataset.to_string())
            .bind(case)
            .bind(r.verdict.as_str())
            .bind(&r.comment)
            .bind(r.reviewer.as_str())
            .bind(r.at.to_string())
            .fetch_one(&mut *c)
            .await?
        });
        Ok(id)
    }
}
