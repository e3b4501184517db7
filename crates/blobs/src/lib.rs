//! Content-addressed artifact storage: every blob is named by its SHA-256 digest.
//!
//! [`BlobStore`] is the interface the rest of Vigil uses; [`LocalBlobStore`] keeps blobs in a
//! folder (`<root>/sha256/ab/cdef…`). The interface is small and synchronous over whole
//! objects or readers so that an S3-compatible backend (the `object_store` crate) can serve
//! it: put is idempotent, get verifies.
//!
//! Writes are atomic: bytes go to a temporary file in the same folder, are fsynced, and the
//! file is renamed into place (then the folder is fsynced), so a crash leaves either no blob
//! or a complete one. Every read recomputes the digest and refuses a mismatch.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use vigil_domain::{Digest, Sha256Writer};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("artifact {0} is not in the artifact store")]
    NotFound(Digest),
    #[error(
        "artifact {expected} is corrupt: its stored bytes hash to {actual}; restore it from a backup"
    )]
    Corrupt { expected: Digest, actual: Digest },
    #[error("artifact store at {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Where artifacts live. Implementations must make `put` atomic and idempotent and make
/// every `get` verify the digest.
pub trait BlobStore: Send + Sync {
    /// Stores bytes, returning their digest and size. Storing the same bytes twice is a no-op.
    fn put(&self, bytes: &[u8]) -> Result<(Digest, u64)>;
    /// Streams a reader into the store, hashing on the way.
    fn put_reader(&self, reader: &mut dyn Read) -> Result<(Digest, u64)>;
    /// Reads a blob, verifying that its bytes still hash to `digest`.
    fn get(&self, digest: &Digest) -> Result<Vec<u8>>;
    /// Whether a blob is present (without verifying it).
    fn contains(&self, digest: &Digest) -> Result<bool>;
    /// Verifies a blob without keeping it in memory; returns its size.
    fn verify(&self, digest: &Digest) -> Result<u64>;
    /// A local file path holding the verified blob, for readers that need a file (streaming
    /// large datasets). Local stores return the blob's own path.
    fn local_path(&self, digest: &Digest) -> Result<PathBuf>;
}

/// Blobs in a local folder.
#[derive(Debug, Clone)]
pub struct LocalBlobStore {
    root: PathBuf,
}

impl LocalBlobStore {
    /// Opens (creating if needed) a store rooted at `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<LocalBlobStore> {
        let root = root.into();
        let tmp = root.join("tmp");
        fs::create_dir_all(&tmp).map_err(|source| Error::Io {
            path: tmp.clone(),
            source,
        })?;
        Ok(LocalBlobStore { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The path a blob is stored at.
    pub fn path_of(&self, d: &Digest) -> PathBuf {
        let hex = d.to_hex();
        self.root.join("sha256").join(&hex[..2]).join(&hex[2..])
    }

    fn io(&self, path: &Path) -> impl Fn(io::Error) -> Error + '_ {
        let path = path.to_path_buf();
        move |source| Error::Io {
            path: path.clone(),
            source,
        }
    }

    fn commit(&self, mut tmp: tempfile::NamedTempFile, digest: Digest) -> Result<()> {
        let dest = self.path_of(&digest);
        if dest.exists() {
            // Content-addressed: the same digest is the same bytes. Dropping `tmp` removes it.
            return Ok(());
        }
        let dir = dest
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| self.root.clone());
        fs::create_dir_all(&dir).map_err(self.io(&dir))?;
        tmp.as_file_mut().sync_all().map_err(self.io(tmp.path()))?;
        tmp.persist(&dest).map_err(|e| Error::Io {
            path: dest.clone(),
            source: e.error,
        })?;
        // Make the rename itself durable.
        File::open(&dir)
            .and_then(|f| f.sync_all())
            .map_err(self.io(&dir))?;
        Ok(())
    }

    fn tmp_file(&self) -> Result<tempfile::NamedTempFile> {
        let dir = self.root.join("tmp");
        tempfile::NamedTempFile::new_in(&dir).map_err(|source| Error::Io { path: dir, source })
    }

    fn hash_file(&self, digest: &Digest) -> Result<(Digest, u64)> {
        let path = self.path_of(digest);
        let mut f = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(Error::NotFound(*digest)),
            Err(e) => return Err(Error::Io { path, source: e }),
        };
        let mut w = Sha256Writer::new();
        io::copy(&mut f, &mut w).map_err(self.io(&path))?;
        let n = w.len();
        Ok((w.finish(), n))
    }
}

impl BlobStore for LocalBlobStore {
    fn put(&self, bytes: &[u8]) -> Result<(Digest, u64)> {
        let digest = Digest::of(bytes);
        if self.path_of(&digest).exists() {
            return Ok((digest, bytes.len() as u64));
        }
        let mut tmp = self.tmp_file()?;
        tmp.write_all(bytes).map_err(self.io(tmp.path()))?;
        self.commit(tmp, digest)?;
        Ok((digest, bytes.len() as u64))
    }

    fn put_reader(&self, reader: &mut dyn Read) -> Result<(Digest, u64)> {
        let mut tmp = self.tmp_file()?;
        let mut hasher = Sha256Writer::new();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(Error::Io {
                        path: tmp.path().to_path_buf(),
                        source: e,
                    });
                }
            };
            hasher.update(&buf[..n]);
            tmp.write_all(&buf[..n]).map_err(self.io(tmp.path()))?;
        }
        let size = hasher.len();
        let digest = hasher.finish();
        self.commit(tmp, digest)?;
        Ok((digest, size))
    }

    fn get(&self, digest: &Digest) -> Result<Vec<u8>> {
        let path = self.path_of(digest);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(Error::NotFound(*digest)),
            Err(e) => return Err(Error::Io { path, source: e }),
        };
        let actual = Digest::of(&bytes);
        if actual != *digest {
            return Err(Error::Corrupt {
                expected: *digest,
                actual,
            });
        }
        Ok(bytes)
    }

    fn contains(&self, digest: &Digest) -> Result<bool> {
        Ok(self.path_of(digest).is_file())
    }

    fn verify(&self, digest: &Digest) -> Result<u64> {
        let (actual, n) = self.hash_file(digest)?;
        if actual != *digest {
            return Err(Error::Corrupt {
                expected: *digest,
                actual,
            });
        }
        Ok(n)
    }

    fn local_path(&self, digest: &Digest) -> Result<PathBuf> {
        self.verify(digest)?;
        Ok(self.path_of(digest))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, LocalBlobStore) {
        let dir = tempfile::tempdir().unwrap();
        let s = LocalBlobStore::open(dir.path().join("artifacts")).unwrap();
        (dir, s)
    }

    #[test]
    fn put_get_round_trip_and_idempotent() {
        let (_d, s) = store();
        let (a, n) = s.put(b"model bytes").unwrap();
        assert_eq!(n, 11);
        assert_eq!(s.put(b"model bytes").unwrap().0, a);
        assert_eq!(s.get(&a).unwrap(), b"model bytes");
        let (b, _) = s.put_reader(&mut &b"model bytes"[..]).unwrap();
        assert_eq!(a, b);
        assert!(
            fs::read_dir(s.root().join("tmp")).unwrap().next().is_none(),
            "no temp files left"
        );
    }

    #[test]
    fn corrupt_bytes_are_refused() {
        let (_d, s) = store();
        let (a, _) = s.put(b"weights").unwrap();
        let path = s.path_of(&a);
        let mut perms = fs::metadata(&path).unwrap().permissions();
        #[allow(clippy::permissions_set_readonly_false)]
        perms.set_readonly(false);
        fs::set_permissions(&path, perms).unwrap();
        fs::write(&path, b"weightz").unwrap();
        assert!(matches!(s.get(&a), Err(Error::Corrupt { .. })));
        assert!(matches!(s.verify(&a), Err(Error::Corrupt { .. })));
        assert!(matches!(s.local_path(&a), Err(Error::Corrupt { .. })));
    }

    #[test]
    fn missing_is_not_found() {
        let (_d, s) = store();
        assert!(matches!(
            s.get(&Digest::of(b"nope")),
            Err(Error::NotFound(_))
        ));
    }
}
