//! SHA-256 digests: the identity of every artifact, manifest and audit event.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256};

use crate::error::{Error, Result};

/// A SHA-256 digest, shown and stored as 64 lower-case hex characters.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest([u8; 32]);

impl Digest {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Digest {
        Digest(Sha256::digest(bytes).into())
    }

    pub const fn from_bytes(bytes: [u8; 32]) -> Digest {
        Digest(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses exactly 64 lower-case hex characters.
    pub fn parse(s: &str) -> Result<Digest> {
        let b = s.as_bytes();
        let mut out = [0u8; 32];
        let ok = b.len() == 64
            && out.iter_mut().zip(b.chunks_exact(2)).all(|(o, pair)| {
                match (nibble(pair[0]), nibble(pair[1])) {
                    (Some(hi), Some(lo)) => {
                        *o = hi << 4 | lo;
                        true
                    }
                    _ => false,
                }
            });
        if !ok {
            return Err(Error::invalid(format!(
                "`{s}` is not a SHA-256 digest (64 lower-case hex characters)"
            )));
        }
        Ok(Digest(out))
    }

    /// Whether `s` is this digest's 64 lower-case hex characters: the same answer as
    /// `Digest::parse(s) == Ok(self)`, without decoding (checking a chain compares two
    /// stored hashes per event).
    pub fn matches_hex(&self, s: &str) -> bool {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let b = s.as_bytes();
        b.len() == 64
            && self.0.iter().zip(b.chunks_exact(2)).all(|(&d, pair)| {
                pair[0] == HEX[usize::from(d >> 4)] && pair[1] == HEX[usize::from(d & 15)]
            })
    }
}

/// The value of one lower-case hex digit.
fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", self.to_hex())
    }
}

impl FromStr for Digest {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Digest::parse(s)
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Digest::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Hashes bytes as they stream past, counting them: used to digest files while copying them.
#[derive(Default)]
pub struct Sha256Writer {
    hasher: Sha256,
    len: u64,
}

impl Sha256Writer {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn update(&mut self, bytes: &[u8]) {
        self.hasher.update(bytes);
        self.len += bytes.len() as u64;
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn finish(self) -> Digest {
        Digest(self.hasher.finalize().into())
    }
}

impl std::io::Write for Sha256Writer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vector() {
        // FIPS 180-2 test vector for "abc".
        assert_eq!(
            Digest::of(b"abc").to_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn parse_round_trips_and_rejects_bad_hex() {
        let d = Digest::of(b"x");
        assert_eq!(Digest::parse(&d.to_hex()), Ok(d));
        assert!(Digest::parse("abc").is_err());
        assert!(Digest::parse(&d.to_hex().to_uppercase()).is_err());
        let mut with_g = d.to_hex();
        with_g.replace_range(63.., "g");
        assert!(Digest::parse(&with_g).is_err());
        // 64 bytes, but not 64 hex characters.
        let multibyte = format!("{}é", &d.to_hex()[..62]);
        assert_eq!(multibyte.len(), 64);
        assert!(Digest::parse(&multibyte).is_err());
        assert!(!d.matches_hex(&multibyte));
    }

    proptest::proptest! {
        /// `matches_hex` answers exactly what parsing and comparing would, for the digest's
        /// own hex, for that hex with one byte changed to anything, and for any string.
        #[test]
        fn matches_hex_agrees_with_parse(
            bytes in proptest::array::uniform32(proptest::prelude::any::<u8>()),
            at in 0usize..64,
            by in proptest::prelude::any::<u8>(),
            other in "[0-9a-fA-F]{0,66}",
        ) {
            let d = Digest::from_bytes(bytes);
            let hex = d.to_hex();
            proptest::prop_assert!(d.matches_hex(&hex));
            let mut changed = hex.clone().into_bytes();
            changed[at] = by;
            if let Ok(changed) = String::from_utf8(changed) {
                proptest::prop_assert_eq!(d.matches_hex(&changed), Digest::parse(&changed) == Ok(d));
            }
            proptest::prop_assert_eq!(d.matches_hex(&other), Digest::parse(&other) == Ok(d));
        }
    }

    #[test]
    fn streaming_equals_one_shot() {
        let mut w = Sha256Writer::new();
        w.update(b"hello ");
        w.update(b"world");
        assert_eq!(w.len(), 11);
        assert_eq!(w.finish(), Digest::of(b"hello world"));
    }
}
