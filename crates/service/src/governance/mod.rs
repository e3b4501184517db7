//! Governance use cases: users and roles, gate policies, evidence and gates, sign-offs,
//! exceptions, promotions, rollback, history and structured clinical review.
//!
//! Every state change runs in one write transaction with its audit event; every refusal
//! (unknown user, wrong role, own release, unmet gate, forbidden transition) is an audit
//! event too, written in a transaction of its own after the refused one rolled back.

mod evidence;
mod lifecycle;
mod policy;
mod review;
mod signoff;
mod store_evidence;
mod users;

use std::future::Future;
use std::pin::Pin;

use serde_json::{Value, json};
use vigil_domain::UserName;
use vigil_domain::role::{Role, Roles};

use crate::{Error, ErrorKind, Result, Vigil, audit_event};

pub use evidence::{EvidenceSource, GateReport, NoEvidence};
pub use lifecycle::{HistoryReport, LiveAt, PromotionOutcome};
pub use policy::{AppliedPolicy, DEFAULT_POLICY};
pub use review::{ReviewCase, SampleReport, SampleRequest};
pub use store_evidence::{StoreEvidence, flat_metrics};
pub use users::{NewUser, token_hash};

/// A boxed future, so that [`EvidenceSource`] can be used as a trait object.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Who is acting, once checked: a known user with roles, or anyone while no users exist
/// (a fresh home before the first `vigil user add`).
#[derive(Clone, Debug)]
pub struct Actor {
    pub name: UserName,
    pub roles: Option<Roles>,
}

impl Vigil {
    /// Checks that `name` may act with one of `roles`; a refusal is audited as
    /// `<noun>.refused` on `subject`.
    pub async fn authorize(
        &self,
        name: &UserName,
        roles: &[Role],
        noun: &str,
        subject: &str,
    ) -> Result<Actor> {
        if self.store.count_users().await? == 0 {
            return Ok(Actor {
                name: name.clone(),
                roles: None,
            });
        }
        let user = self.store.find_user(name).await?;
        let refusal = match &user {
            None => Some(Error::forbidden(
                "unknown_user",
                format!(
                    "`{name}` is not a Vigil user: ask governance to run `vigil user add {name} --role …`"
                ),
            )),
            Some(u) if u.revoked_at.is_some() => Some(Error::forbidden(
                "user_revoked",
                format!("user `{name}` has been revoked"),
            )),
            Some(u) if !roles.is_empty() && !roles.iter().any(|r| u.roles.contains(*r)) => {
                let want: Vec<_> = roles.iter().map(|r| r.as_str()).collect();
                Some(Error::forbidden(
                    "role_required",
                    format!(
                        "`{name}` holds {} but this needs the role {}",
                        u.roles,
                        want.join(" or ")
                    ),
                ))
            }
            Some(_) => None,
        };
        if let Some(e) = refusal {
            return Err(self
                .refused(name, noun, subject, &e, json!({ "needs": roles }))
                .await);
        }
        Ok(Actor {
            name: name.clone(),
            roles: user.map(|u| u.roles),
        })
    }

    /// Records a refusal as `<noun>.refused` and hands the error back. If even the audit
    /// write fails, that failure is what the caller sees: a refusal must not go unrecorded
    /// silently.
    pub async fn refused(
        &self,
        actor: &UserName,
        noun: &str,
        subject: &str,
        e: &Error,
        extra: Value,
    ) -> Error {
        match self.record_refusal(actor, noun, subject, e, extra).await {
            Ok(()) => e.clone(),
            Err(w) => w,
        }
    }

    async fn record_refusal(
        &self,
        actor: &UserName,
        noun: &str,
        subject: &str,
        e: &Error,
        extra: Value,
    ) -> Result<()> {
        let ev = audit_event(
            actor,
            &format!("{noun}.refused"),
            subject,
            json!({ "code": e.code, "message": e.message, "detail": extra }),
        )?;
        let mut tx = self.store.begin().await?;
        tx.append_audit(self.clock.now(), &ev).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// Text that must not be blank (reasons, rationales, comments).
pub(crate) fn required_text(code: &'static str, what: &str, s: &str) -> Result<String> {
    let t = s.trim();
    if t.is_empty() {
        return Err(Error::invalid(code, format!("{what} is required")));
    }
    if t.len() > 4000 {
        return Err(Error::invalid(
            code,
            format!("{what} is longer than 4000 characters"),
        ));
    }
    Ok(t.to_owned())
}

pub(crate) fn is_refusal(e: &Error) -> bool {
    matches!(
        e.kind,
        ErrorKind::Forbidden | ErrorKind::PreconditionFailed | ErrorKind::Conflict
    )
}
