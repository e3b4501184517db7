//! CDS clients (EHRs): registering their keys, authenticating their calls, and minting a
//! token with a locally kept key for trying the service out.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::json;
use vigil_cds::jwt::{self, AuthError, Es384Signer, Jwks, KeySource};
use vigil_domain::role::Role;
use vigil_domain::{Digest, Timestamp, UserName};
use vigil_store::CdsClientRecord;

use super::CdsService;
use crate::{Error, ErrorKind, Result, Vigil, audit_event};

/// How long keys read from a `jku` URL are trusted before being read again.
const JKU_CACHE: Duration = Duration::from_secs(300);

/// A registered client, as listed.
#[derive(Debug, Clone, Serialize)]
pub struct CdsClient {
    pub iss: String,
    pub jku: Option<String>,
    /// The `kid`s of a registered key set.
    pub kids: Vec<String>,
    pub added_by: String,
    pub added_at: Timestamp,
    pub removed_at: Option<Timestamp>,
}

/// Where a new client's keys are.
#[derive(Debug, Clone)]
pub enum ClientKeys {
    /// A JWK Set (the file's text).
    Jwks(String),
    /// The URL of the client's key set.
    Jku(String),
}

fn check_iss(iss: &str) -> Result<()> {
    if iss.is_empty() || iss.len() > 512 || iss.chars().any(char::is_control) {
        return Err(Error::invalid(
            "cds_iss_invalid",
            "the issuer must be a non-empty string of at most 512 characters",
        ));
    }
    Ok(())
}

fn to_client(r: CdsClientRecord) -> CdsClient {
    let kids = r
        .jwks
        .as_deref()
        .and_then(|j| Jwks::parse(j).ok())
        .map(|s| s.keys.into_iter().filter_map(|k| k.kid).collect())
        .unwrap_or_default();
    CdsClient {
        iss: r.iss,
        jku: r.jku,
        kids,
        added_by: r.added_by,
        added_at: r.added_at,
        removed_at: r.removed_at,
    }
}

impl Vigil {
    /// Registers a CDS client by its issuer, with its key set or the URL of it (operator or
    /// governance).
    pub async fn add_cds_client(
        &self,
        actor: &UserName,
        iss: &str,
        keys: ClientKeys,
    ) -> Result<CdsClient> {
        check_iss(iss)?;
        let subject = format!("cds_client:{iss}");
        self.authorize(
            actor,
            &[Role::Operator, Role::Governance],
            "cds_client",
            &subject,
        )
        .await?;
        let (jwks, jku) = match keys {
            ClientKeys::Jwks(text) => {
                let set = Jwks::parse(&text).map_err(|e| Error::invalid(e.code, e.message))?;
                (
                    Some(serde_json::to_string(&set).map_err(|e| Error::internal(e.to_string()))?),
                    None,
                )
            }
            ClientKeys::Jku(url) => {
                if !url.starts_with("https://") && !url.starts_with("http://") {
                    return Err(Error::invalid(
                        "cds_jku_invalid",
                        "the jku must be an http(s) URL",
                    ));
                }
                (None, Some(url))
            }
        };
        let rec = CdsClientRecord {
            iss: iss.to_string(),
            jwks,
            jku,
            added_by: actor.to_string(),
            added_at: self.clock.now(),
            removed_by: None,
            removed_at: None,
        };
        let client = to_client(rec.clone());
        let mut tx = self.store.begin().await?;
        tx.upsert_cds_client(&rec).await?;
        let ev = audit_event(
            actor,
            "cds_client.added",
            &subject,
            json!({"iss": iss, "jku": client.jku, "kids": client.kids}),
        )?;
        tx.append_audit(rec.added_at, &ev).await?;
        tx.commit().await?;
        Ok(client)
    }

    /// Removes a client: its tokens are refused from now on.
    pub async fn remove_cds_client(&self, actor: &UserName, iss: &str) -> Result<()> {
        let subject = format!("cds_client:{iss}");
        self.authorize(
            actor,
            &[Role::Operator, Role::Governance],
            "cds_client",
            &subject,
        )
        .await?;
        let now = self.clock.now();
        let mut tx = self.store.begin().await?;
        if !tx.remove_cds_client(iss, actor.as_str(), now).await? {
            return Err(Error::not_found(
                "cds_client_not_found",
                format!("no registered CDS client has the issuer `{iss}`"),
            ));
        }
        let ev = audit_event(actor, "cds_client.removed", &subject, json!({"iss": iss}))?;
        tx.append_audit(now, &ev).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn list_cds_clients(&self, include_removed: bool) -> Result<Vec<CdsClient>> {
        Ok(self
            .store
            .list_cds_clients(include_removed)
            .await?
            .into_iter()
            .map(to_client)
            .collect())
    }

    fn local_key_path(&self, iss: &str) -> PathBuf {
        let h = Digest::of(iss.as_bytes()).to_hex();
        self.home
            .join("secrets")
            .join(format!("cds-client-{}.key", &h[..16]))
    }

    /// The locally kept ES384 key for `iss`, created on first use (mode 0600).
    pub fn local_cds_signer(&self, iss: &str) -> Result<Es384Signer> {
        let path = self.local_key_path(iss);
        let kid = |s: &[u8]| {
            let signer = Es384Signer::from_secret(s, "")?;
            let x = signer.public_jwk().x.unwrap_or_default();
            Es384Signer::from_secret(
                s,
                format!("vigil-local-{}", &Digest::of(x.as_bytes()).to_hex()[..12]),
            )
        };
        if let Ok(text) = std::fs::read_to_string(&path) {
            let bytes = hex_decode(text.trim())
                .ok_or_else(|| Error::internal(format!("{} is not a key file", path.display())))?;
            return kid(&bytes).map_err(|e| Error::internal(e.message));
        }
        let dir = path.parent().map(PathBuf::from).unwrap_or_default();
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::internal(format!("cannot create {}: {e}", dir.display())))?;
        loop {
            let mut secret = [0u8; 48];
            getrandom::fill(&mut secret).map_err(|e| {
                Error::internal(format!("the operating system's random source failed: {e}"))
            })?;
            // A random 384-bit string is a valid scalar except with negligible probability.
            let Ok(signer) = kid(&secret) else { continue };
            let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
            write_private(&path, &hex)?;
            return Ok(signer);
        }
    }

    /// Mints a token for `iss` and `audience` with the local key; with `register`, the key is
    /// first registered for the issuer (replacing its keys).
    pub async fn mint_cds_token(
        &self,
        actor: &UserName,
        iss: &str,
        audience: &str,
        register: bool,
    ) -> Result<String> {
        check_iss(iss)?;
        let signer = self.local_cds_signer(iss)?;
        if register {
            let set = Jwks {
                keys: vec![signer.public_jwk()],
            };
            let text = serde_json::to_string(&set).map_err(|e| Error::internal(e.to_string()))?;
            self.add_cds_client(actor, iss, ClientKeys::Jwks(text))
                .await?;
        }
        let now = self.clock.now().as_unix_seconds();
        let claims = json!({
            "iss": iss, "aud": audience, "iat": now, "exp": now + 300,
            "jti": super::new_uuid()?,
        });
        Ok(signer.sign(&claims, None))
    }
}

fn hex_decode(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

fn write_private(path: &std::path::Path, text: &str) -> Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .map_err(|e| Error::internal(format!("cannot create {}: {e}", path.display())))?;
    f.write_all(text.as_bytes())
        .and_then(|_| f.sync_all())
        .map_err(|e| Error::internal(format!("cannot write {}: {e}", path.display())))
}

/// Key sets read from `jku` URLs, by URL.
#[derive(Default)]
pub(crate) struct JkuCache(Mutex<HashMap<String, (Instant, Jwks)>>);

/// A verified caller.
#[derive(Debug, Clone)]
pub struct Caller {
    pub iss: String,
    pub jti: String,
    pub sub: Option<String>,
    /// Until when the token id must be refused again (its `exp` plus the leeway).
    pub jti_expires_at: Timestamp,
    /// The registration the token was verified against, for the check under the write lock
    /// (`None` when it was read from the store for this very call).
    pub(crate) verified_by: Option<ClientCheck>,
}

fn unauth(e: AuthError) -> Error {
    Error::new(ErrorKind::Unauthenticated, e.code, e.message)
}

/// A registered client as the verifier uses it: its record and its parsed key set.
#[derive(Debug)]
pub(crate) struct CachedClient {
    record: CdsClientRecord,
    jwks: Option<Arc<Jwks>>,
}

/// Registered clients as last read from the store, by issuer. A CDS call is verified against
/// the copy here and its client checked again by the transaction that commits the call
/// ([`ClientCheck`]), so that the store is read once per batch of calls rather than once per
/// call, and a removal committed before that transaction still refuses the call.
#[derive(Debug, Default)]
pub(crate) struct ClientCache(Mutex<HashMap<String, Arc<CachedClient>>>);

impl ClientCache {
    fn get(&self, iss: &str) -> Option<Arc<CachedClient>> {
        self.0.lock().ok()?.get(iss).cloned()
    }

    fn put(&self, iss: &str, client: Arc<CachedClient>) {
        if let Ok(mut c) = self.0.lock() {
            if c.len() >= 1000 && !c.contains_key(iss) {
                c.clear();
            }
            c.insert(iss.to_string(), client);
        }
    }

    /// Drops a copy found stale, so that the next call reads the store.
    pub(crate) fn forget(&self, iss: &str) {
        if let Ok(mut c) = self.0.lock() {
            c.remove(iss);
        }
    }
}

/// The registration a token was verified against and the key that verified it; checked
/// again inside the transaction that commits the call.
#[derive(Debug, Clone)]
pub(crate) struct ClientCheck {
    client: Arc<CachedClient>,
    kid: String,
    cache: Arc<ClientCache>,
}

impl ClientCheck {
    pub(crate) fn iss(&self) -> &str {
        &self.client.record.iss
    }

    /// Whether the token still stands with the client as the store holds it now (`None`:
    /// not registered, or removed): the same registration, or a changed one that still has
    /// the key that verified it (a key set that gained a key, say). A stale copy is dropped.
    pub(crate) fn still_registered(&self, now: Option<&CdsClientRecord>) -> Result<()> {
        let was = &self.client.record;
        if now == Some(was) {
            return Ok(());
        }
        self.cache.forget(&was.iss);
        let Some(now) = now else {
            return Err(unauth(AuthError::new(
                "unknown_iss",
                "the token's issuer is no longer a registered CDS client",
            )));
        };
        let kept = match (&now.jwks, &now.jku) {
            (Some(text), _) => {
                let key = |set: &Jwks| {
                    set.keys
                        .iter()
                        .find(|k| k.kid.as_deref() == Some(self.kid.as_str()))
                        .cloned()
                };
                let old = self.client.jwks.as_deref().and_then(key);
                let new = Jwks::parse(text).ok().as_ref().and_then(key);
                old.is_some() && old == new
            }
            (None, Some(url)) => was.jwks.is_none() && was.jku.as_deref() == Some(url.as_str()),
            (None, None) => false,
        };
        if kept {
            Ok(())
        } else {
            Err(unauth(AuthError::new(
                "kid_unknown",
                "the key that signed the token is no longer registered for its issuer",
            )))
        }
    }
}

/// A refusal and the issuer it claimed (for the audit event).
type Refusal = (Error, Option<String>);

impl CdsService {
    /// Verifies the bearer token of a call to `audience`, and remembers its `jti` in the
    /// store; refusals are audited (`cds.auth_refused`) and come back as 401 with the
    /// reason code.
    pub async fn authenticate(
        &self,
        authorization: Option<&str>,
        audience: &str,
    ) -> Result<Caller> {
        let c = match self.verify_token(authorization, audience, false).await {
            Ok(c) => c,
            Err((e, iss)) => return Err(self.refused(e, iss, audience).await),
        };
        let now = self.vigil.clock.now();
        let fresh = self
            .vigil
            .store
            .cds_remember_jti(&c.iss, &c.jti, c.jti_expires_at, now)
            .await?;
        if !fresh {
            return Err(self.refused(replayed(), Some(c.iss), audience).await);
        }
        Ok(c)
    }

    /// Verifies the token but leaves writing its `jti` to the caller (with the call's other
    /// writes): a replay is refused here if this process saw the id, and by that write if
    /// another one did. The token is verified against this process's copy of its client's
    /// registration; the caller's write checks it again ([`Caller::verified_by`]).
    pub(crate) async fn authenticate_deferred(
        &self,
        authorization: Option<&str>,
        audience: &str,
    ) -> Result<Caller> {
        match self.verify_token(authorization, audience, true).await {
            Ok(c) => Ok(c),
            Err((e, iss)) => Err(self.refused(e, iss, audience).await),
        }
    }

    /// Audits a refusal and gives the error to answer with.
    pub(crate) async fn refused(&self, e: Error, iss: Option<String>, audience: &str) -> Error {
        let actor = cds_actor();
        let ev = match audit_event(
            &actor,
            "cds.auth_refused",
            format!("cds:{audience}"),
            json!({"code": e.code, "iss": iss, "audience": audience}),
        ) {
            Ok(ev) => ev,
            Err(x) => return x,
        };
        let written = async {
            let mut tx = self.vigil.store.begin().await?;
            tx.append_audit(self.vigil.clock.now(), &ev).await?;
            tx.commit().await?;
            Ok::<(), Error>(())
        }
        .await;
        match written {
            Ok(()) => e,
            Err(x) => x,
        }
    }

    /// The registered client `iss`: this process's copy when `cached` and there is one,
    /// else read from the store (and the copy replaced), with its key set parsed once per
    /// registration.
    async fn client(&self, iss: &str, cached: bool) -> Result<Option<Arc<CachedClient>>> {
        if cached && let Some(c) = self.clients.get(iss) {
            return Ok(Some(c));
        }
        let Some(record) = self.vigil.store.cds_client(iss).await? else {
            self.clients.forget(iss);
            return Ok(None);
        };
        if let Some(c) = self.clients.get(iss)
            && c.record == record
        {
            return Ok(Some(c));
        }
        let jwks = record
            .jwks
            .as_deref()
            .and_then(|t| Jwks::parse(t).ok())
            .map(Arc::new);
        let c = Arc::new(CachedClient { record, jwks });
        self.clients.put(iss, c.clone());
        Ok(Some(c))
    }

    /// Checks a decoded token against a client's registration.
    async fn verify_with(
        &self,
        u: &jwt::Unverified,
        client: &CachedClient,
        expect: jwt::Expect<'_>,
    ) -> std::result::Result<jwt::Verified, AuthError> {
        match (&client.jwks, &client.record.jwks, &client.record.jku) {
            (Some(set), _, _) => jwt::verify(u, KeySource::Static(set), expect),
            (None, Some(text), _) => jwt::verify(u, KeySource::Static(&Jwks::parse(text)?), expect),
            (None, None, Some(url)) => {
                let set = self.jku_keys(url).await?;
                jwt::verify(u, KeySource::Jku { url, keys: &set }, expect)
            }
            (None, None, None) => Err(AuthError::new("unknown_iss", "the client has no keys")),
        }
    }

    /// Verifies a token; with `cached`, against this process's copy of its client's
    /// registration when there is one (read again from the store if the token fails with
    /// it, so that a key added since is found).
    async fn verify_token(
        &self,
        authorization: Option<&str>,
        audience: &str,
        cached: bool,
    ) -> std::result::Result<Caller, Refusal> {
        let Some(h) = authorization else {
            return Err((
                unauth(AuthError::new(
                    "token_missing",
                    "the call carries no bearer token",
                )),
                None,
            ));
        };
        let token = h
            .strip_prefix("Bearer ")
            .or_else(|| h.strip_prefix("bearer "))
            .ok_or_else(|| {
                (
                    unauth(AuthError::new(
                        "token_missing",
                        "the Authorization header is not a Bearer token",
                    )),
                    None,
                )
            })?;
        let u = jwt::decode(token).map_err(|e| (unauth(e), None))?;
        let iss: Option<String> = u.issuer().map(|s| s.chars().take(200).collect());
        let fail = |e: AuthError| (unauth(e), iss.clone());
        let Some(claimed) = u.issuer() else {
            return Err(fail(AuthError::new(
                "claim_missing",
                "the token has no iss",
            )));
        };
        let unknown = || {
            fail(AuthError::new(
                "unknown_iss",
                "the token's issuer is not a registered CDS client",
            ))
        };
        let mut client = self
            .client(claimed, cached)
            .await
            .map_err(|e| (e, iss.clone()))?
            .ok_or_else(unknown)?;
        let now = self.vigil.clock.now();
        let expect = jwt::Expect {
            audience,
            now: now.as_unix_seconds(),
            leeway_secs: self.config.leeway_secs,
        };
        let verified = match self.verify_with(&u, &client, expect).await {
            Ok(v) => v,
            Err(e) if cached => {
                let fresh = self
                    .client(claimed, false)
                    .await
                    .map_err(|e| (e, iss.clone()))?
                    .ok_or_else(unknown)?;
                if Arc::ptr_eq(&fresh, &client) {
                    return Err(fail(e));
                }
                client = fresh;
                self.verify_with(&u, &client, expect).await.map_err(&fail)?
            }
            Err(e) => return Err(fail(e)),
        };
        let expires = verified.exp + self.config.leeway_secs;
        if !self
            .seen
            .claim(&verified.iss, &verified.jti, expires, now.as_unix_seconds())
        {
            return Err((replayed(), iss.clone()));
        }
        Ok(Caller {
            iss: verified.iss,
            jti: verified.jti,
            sub: verified.sub,
            jti_expires_at: Timestamp::from_unix_seconds(expires),
            verified_by: cached.then(|| ClientCheck {
                client,
                kid: verified.kid,
                cache: self.clients.clone(),
            }),
        })
    }

    async fn jku_keys(&self, url: &str) -> std::result::Result<Jwks, AuthError> {
        if let Ok(c) = self.jku.0.lock()
            && let Some((at, set)) = c.get(url)
            && at.elapsed() < JKU_CACHE
        {
            return Ok(set.clone());
        }
        let text = self
            .fetcher
            .jwks(url, self.config.fetch_timeout)
            .await
            .map_err(|e| AuthError::new("jku_unavailable", e.message))?;
        let set = Jwks::parse(&text)?;
        if let Ok(mut c) = self.jku.0.lock() {
            c.insert(url.to_string(), (Instant::now(), set.clone()));
        }
        Ok(set)
    }
}

/// The refusal of a token whose id was used before.
pub(crate) fn replayed() -> Error {
    unauth(AuthError::new(
        "jti_replayed",
        "this token has been used before",
    ))
}

/// The actor recorded for what CDS clients do.
pub(crate) fn cds_actor() -> UserName {
    #[allow(clippy::expect_used)]
    UserName::parse("cds-hooks").expect("a valid user name")
}
