//! Users, roles and API tokens. A token is shown once; only its SHA-256 is stored.

use serde::Serialize;
use serde_json::json;
use vigil_domain::role::{Role, Roles};
use vigil_domain::{Digest, UserName};
use vigil_store::UserRecord;

use crate::{Error, ErrorKind, Result, Vigil, audit_event};

/// A user just added, with the only copy of its token.
#[derive(Clone, Debug, Serialize)]
pub struct NewUser {
    pub user: UserRecord,
    pub token: String,
    /// The first user of a store: governance was added to its roles so that someone can
    /// manage users at all.
    pub bootstrapped: bool,
}

/// The prefix of every Vigil API token, so that a leaked one is recognisable.
const TOKEN_PREFIX: &str = "vigil_";

fn new_token() -> Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| {
        Error::internal(format!("the operating system's random source failed: {e}"))
    })?;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("{TOKEN_PREFIX}{hex}"))
}

pub fn token_hash(token: &str) -> Digest {
    Digest::of(token.trim().as_bytes())
}

impl Vigil {
    /// Adds a user and returns its token. On an empty user table anyone may add the first
    /// user, who is given the governance role; after that, only governance may.
    pub async fn add_user(&self, actor: &UserName, name: &str, roles: Roles) -> Result<NewUser> {
        let name = UserName::parse(name)
            .map_err(|e| Error::invalid("invalid_user_name", e.to_string()))?;
        let subject = format!("user:{name}");
        self.authorize(actor, &[Role::Governance], "user", &subject)
            .await?;
        let token = new_token()?;
        let mut tx = self.store.begin().await?;
        let bootstrapped = tx.count_users().await? == 0 && !roles.contains(Role::Governance);
        let roles = if bootstrapped {
            Roles::new(roles.iter().chain([Role::Governance]))
                .map_err(|e| Error::invalid("invalid_roles", e.to_string()))?
        } else {
            roles
        };
        let user = UserRecord {
            name: name.clone(),
            roles,
            token_hash: token_hash(&token),
            created_at: self.clock.now(),
            created_by: actor.clone(),
            revoked_at: None,
            revoked_by: None,
        };
        if tx.find_user(&name).await?.is_some() {
            return Err(Error::conflict(
                "user_exists",
                format!("user `{name}` already exists"),
            ));
        }
        tx.insert_user(&user).await?;
        let ev = audit_event(
            actor,
            "user.added",
            &subject,
            json!({ "name": name, "roles": user.roles, "bootstrapped": bootstrapped }),
        )?;
        tx.append_audit(user.created_at, &ev).await?;
        tx.commit().await?;
        Ok(NewUser {
            user,
            token,
            bootstrapped,
        })
    }

    /// Revokes a user: its token stops working at once (governance).
    pub async fn revoke_user(&self, actor: &UserName, name: &str) -> Result<UserRecord> {
        let name = UserName::parse(name)
            .map_err(|e| Error::invalid("invalid_user_name", e.to_string()))?;
        let subject = format!("user:{name}");
        self.authorize(actor, &[Role::Governance], "user", &subject)
            .await?;
        let mut tx = self.store.begin().await?;
        let Some(u) = tx.find_user(&name).await? else {
            return Err(Error::not_found(
                "user_not_found",
                format!("no user named `{name}`"),
            ));
        };
        if u.revoked_at.is_some() {
            return Err(Error::conflict(
                "user_revoked",
                format!("user `{name}` is already revoked"),
            ));
        }
        let now = self.clock.now();
        tx.revoke_user(&name, now, actor).await?;
        let ev = audit_event(actor, "user.revoked", &subject, json!({ "name": name }))?;
        tx.append_audit(now, &ev).await?;
        let after = tx
            .find_user(&name)
            .await?
            .ok_or_else(|| Error::internal("revoked user vanished"))?;
        tx.commit().await?;
        Ok(after)
    }

    pub async fn list_users(&self) -> Result<Vec<UserRecord>> {
        Ok(self.store.list_users().await?)
    }

    /// The user holding `token`. Unknown and revoked tokens are refused (and audited by the
    /// caller, which knows the request).
    pub async fn authenticate(&self, token: &str) -> Result<UserRecord> {
        match self
            .store
            .find_user_by_token_hash(&token_hash(token))
            .await?
        {
            None => Err(Error::new(
                ErrorKind::Unauthenticated,
                "invalid_token",
                "the bearer token is not a Vigil token",
            )),
            Some(u) if u.revoked_at.is_some() => Err(Error::new(
                ErrorKind::Unauthenticated,
                "token_revoked",
                format!("the token of user `{}` has been revoked", u.name),
            )),
            Some(u) => Ok(u),
        }
    }
}
