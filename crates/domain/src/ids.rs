//! Validated identifiers: release and snapshot ids, id prefixes, model and user names.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::digest::Digest;
use crate::error::{Error, Result};

macro_rules! digest_id {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Digest);

        impl $name {
            pub fn from_digest(d: Digest) -> Self {
                $name(d)
            }
            pub fn digest(&self) -> Digest {
                self.0
            }
            pub fn parse(s: &str) -> Result<Self> {
                Digest::parse(s)
                    .map($name)
                    .map_err(|_| Error::invalid(format!("`{s}` is not a {} id", $what)))
            }
            /// The first 12 hex characters, for human output.
            pub fn short(&self) -> String {
                self.0.to_hex()[..12].to_owned()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }
    };
}

digest_id!(
    /// A release's id: the SHA-256 of its canonical manifest.
    ReleaseId,
    "release"
);
digest_id!(
    /// A dataset snapshot's id: the SHA-256 of its canonical snapshot manifest.
    SnapshotId,
    "dataset snapshot"
);

/// A leading part of a hex id, as a user types it (like git's abbreviated hashes).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct IdPrefix(String);

impl IdPrefix {
    /// The shortest prefix accepted: short enough to type, long enough to mean something.
    pub const MIN_LEN: usize = 4;

    pub fn parse(s: &str) -> Result<IdPrefix> {
        let s = s.trim();
        if s.len() < Self::MIN_LEN || s.len() > 64 {
            return Err(Error::invalid(format!(
                "`{s}` is not an id or id prefix: give between {} and 64 hex characters",
                Self::MIN_LEN
            )));
        }
        if !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::invalid(format!(
                "`{s}` is not an id or id prefix: only hex characters 0-9 and a-f"
            )));
        }
        Ok(IdPrefix(s.to_ascii_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_full(&self) -> bool {
        self.0.len() == 64
    }
}

impl fmt::Display for IdPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

macro_rules! name_type {
    ($(#[$doc:meta])* $name:ident, $what:literal, $max:expr) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// Lower-case letters, digits, `-`, `_` and `.`; starts with a letter or digit.
            pub fn parse(s: &str) -> Result<Self> {
                let ok = !s.is_empty()
                    && s.len() <= $max
                    && s.bytes().next().is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
                    && s.bytes().all(|b| {
                        b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.')
                    });
                if ok {
                    Ok($name(s.to_owned()))
                } else {
                    Err(Error::invalid(format!(
                        "`{s}` is not a valid {}: use 1 to {} lower-case letters, digits, `-`, `_` or `.`, starting with a letter or digit",
                        $what, $max
                    )))
                }
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{:?}", self.0)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                $name::parse(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

name_type!(
    /// A model's name, the clinical use it serves (`sepsis-risk`).
    ModelName,
    "model name",
    64
);
name_type!(
    /// A person or system account acting on Vigil; written into every audit event.
    UserName,
    "user name",
    64
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(ModelName::parse("deterioration-risk").is_ok());
        assert!(ModelName::parse("Sepsis").is_err());
        assert!(ModelName::parse("-x").is_err());
        assert!(ModelName::parse("").is_err());
        assert!(ModelName::parse("a b").is_err());
    }

    #[test]
    fn prefixes() {
        assert_eq!(IdPrefix::parse("ABCD").unwrap().as_str(), "abcd");
        assert!(IdPrefix::parse("abc").is_err());
        assert!(IdPrefix::parse("abcg").is_err());
        assert!(IdPrefix::parse("ab%d").is_err());
    }
}
