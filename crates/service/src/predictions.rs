//! Prediction records on the service: the pseudonymisation key of the home, writing records
//! (one durable batch at a time) and reading them back.
//!
//! Patient and encounter identifiers never reach the store: they are replaced by an
//! HMAC-SHA256 keyed with a 32-byte secret kept at `<home>/secrets/pseudonym.key` (mode
//! 0600, created once). The same identifier always maps to the same key within a home, so
//! outcomes can be joined later; without the secret the keys cannot be reversed or
//! recomputed from a list of identifiers.

use std::io::Write;
use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use sha2::Sha256;
use vigil_domain::prediction::{PredictionFilter, PredictionRecord};

use crate::{Error, ErrorKind, Result, Vigil};

/// The folder of the home that holds secrets.
pub const SECRETS_DIR: &str = "secrets";
/// The pseudonymisation key's file inside [`SECRETS_DIR`].
pub const PSEUDONYM_KEY_FILE: &str = "pseudonym.key";

/// The secret behind pseudonymised keys, held as the HMAC state already keyed with it so
/// that each identifier costs only its own hashing.
#[derive(Clone)]
pub(crate) struct PseudonymKey(Hmac<Sha256>);

impl std::fmt::Debug for PseudonymKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PseudonymKey(…)")
    }
}

impl PseudonymKey {
    fn path(home: &Path) -> PathBuf {
        home.join(SECRETS_DIR).join(PSEUDONYM_KEY_FILE)
    }

    /// Reads the home's key, creating it (exclusively: two processes starting at once end up
    /// with the same key) if the home has none yet.
    pub(crate) fn load_or_create(home: &Path) -> Result<PseudonymKey> {
        let path = Self::path(home);
        match std::fs::read_to_string(&path) {
            Ok(text) => return Self::parse(&text, &path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(key_error(&path, &e.to_string())),
        }
        let dir = home.join(SECRETS_DIR);
        std::fs::create_dir_all(&dir).map_err(|e| key_error(&dir, &e.to_string()))?;
        set_private(&dir, 0o700);
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes)
            .map_err(|e| Error::internal(format!("no random source for the key: {e}")))?;
        let tmp = dir.join(format!(".{PSEUDONYM_KEY_FILE}.{}", std::process::id()));
        {
            let mut f = std::fs::File::create(&tmp).map_err(|e| key_error(&tmp, &e.to_string()))?;
            set_private(&tmp, 0o600);
            f.write_all(hex::encode(bytes).as_bytes())
                .and_then(|()| f.sync_all())
                .map_err(|e| key_error(&tmp, &e.to_string()))?;
        }
        // A hard link fails if the key exists: whoever links first wins, the others read it.
        let linked = std::fs::hard_link(&tmp, &path);
        let _ = std::fs::remove_file(&tmp);
        match linked {
            Ok(()) => {
                if let Ok(d) = std::fs::File::open(&dir) {
                    let _ = d.sync_all();
                }
                Ok(PseudonymKey::from_bytes(&bytes))
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let text =
                    std::fs::read_to_string(&path).map_err(|e| key_error(&path, &e.to_string()))?;
                Self::parse(&text, &path)
            }
            Err(e) => Err(key_error(&path, &e.to_string())),
        }
    }

    fn parse(text: &str, path: &Path) -> Result<PseudonymKey> {
        let bytes = hex::decode(text.trim())
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .ok_or_else(|| key_error(path, "it does not hold 64 hexadecimal digits"))?;
        Ok(PseudonymKey::from_bytes(&bytes))
    }

    fn from_bytes(bytes: &[u8; 32]) -> PseudonymKey {
        // A key of any length is valid for HMAC.
        match Hmac::<Sha256>::new_from_slice(bytes) {
            Ok(m) => PseudonymKey(m),
            Err(_) => unreachable!("HMAC accepts keys of every length"),
        }
    }

    pub(crate) fn apply(&self, kind: &str, raw: &str) -> String {
        let mut mac = self.0.clone();
        mac.update(kind.as_bytes());
        mac.update(&[0]);
        mac.update(raw.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }
}

fn key_error(path: &Path, why: &str) -> Error {
    Error::new(
        ErrorKind::Unavailable,
        "pseudonym_key_unusable",
        format!(
            "the pseudonymisation key {} cannot be used: {why}",
            path.display()
        ),
    )
}

#[cfg(unix)]
fn set_private(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode));
}

#[cfg(not(unix))]
fn set_private(_path: &Path, _mode: u32) {}

impl Vigil {
    /// The pseudonymised key of a patient or encounter identifier (`kind` is `patient` or
    /// `encounter`): a keyed hash, stable within this home, irreversible without its secret.
    pub fn pseudonymise(&self, kind: &str, raw: &str) -> String {
        self.pseudonym.apply(kind, raw)
    }

    /// Writes records in one transaction; durable when this returns.
    pub async fn record_predictions(&self, records: &[PredictionRecord]) -> Result<()> {
        self.store
            .insert_predictions(records)
            .await
            .map_err(write_error)
    }

    pub async fn list_predictions(&self, f: &PredictionFilter) -> Result<Vec<PredictionRecord>> {
        Ok(self.store.list_predictions(f).await?)
    }

    pub async fn count_predictions(&self, f: &PredictionFilter) -> Result<i64> {
        Ok(self.store.count_predictions(f).await?)
    }
}

/// The error of a failed write of prediction records: a repeated request id is a conflict.
pub(crate) fn write_error(e: vigil_store::Error) -> Error {
    if e.is_conflict() {
        Error::conflict(
            "prediction_exists",
            "a prediction with this request id is recorded already",
        )
    } else {
        e.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_stable_keyed_and_separated_by_kind() {
        let dir = std::env::temp_dir().join(format!("vigil-key-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let a = PseudonymKey::load_or_create(&dir).unwrap();
        let b = PseudonymKey::load_or_create(&dir).unwrap();
        assert_eq!(a.apply("patient", "123"), b.apply("patient", "123"));
        assert_ne!(a.apply("patient", "123"), a.apply("encounter", "123"));
        assert_ne!(a.apply("patient", "123"), a.apply("patient", "124"));
        // 64 lowercase hexadecimal digits: an identifier with any other character (as FHIR
        // ids and medical record numbers have) cannot show through.
        let key = a.apply("patient", "Patient/example");
        assert!(
            key.len() == 64 && key.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')),
            "{key}"
        );
        let other = PseudonymKey::from_bytes(&[7; 32]);
        assert_ne!(a.apply("patient", "123"), other.apply("patient", "123"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(PseudonymKey::path(&dir))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "the key is readable by others");
        }
        std::fs::write(PseudonymKey::path(&dir), "not a key").unwrap();
        let err = PseudonymKey::load_or_create(&dir).unwrap_err();
        assert!(err.to_string().contains("64 hexadecimal digits"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn hmac_matches_the_rfc_4231_vector() {
        // RFC 4231 test case 2 exercises the same HMAC-SHA256 through `apply`'s framing:
        // key "Jefe", data "what do ya want for nothing?" split as kind + NUL + raw is not
        // that message, so check the primitive directly.
        let mut mac = Hmac::<Sha256>::new_from_slice(b"Jefe").unwrap();
        mac.update(b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(mac.finalize().into_bytes()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
