//! Roles: what a person may do in Vigil (the table in the product specification).

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Registers datasets and releases, runs evaluations, samples cases for review.
    DataScientist,
    /// Signs off or rejects releases, records structured case reviews.
    ClinicalReviewer,
    /// Approves promotion, grants exceptions, changes policies, manages users.
    Governance,
    /// Deploys (shadow, production), rolls back, retires.
    Operator,
    /// Reads everything, verifies and exports.
    Auditor,
    /// A system that asks for predictions (the EHR integration engine, an application):
    /// may call the prediction endpoints and nothing else.
    PredictClient,
}

impl Role {
    pub const ALL: [Role; 6] = [
        Role::DataScientist,
        Role::ClinicalReviewer,
        Role::Governance,
        Role::Operator,
        Role::Auditor,
        Role::PredictClient,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::DataScientist => "data-scientist",
            Role::ClinicalReviewer => "clinical-reviewer",
            Role::Governance => "governance",
            Role::Operator => "operator",
            Role::Auditor => "auditor",
            Role::PredictClient => "predict-client",
        }
    }

    pub fn parse(s: &str) -> Result<Role> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s.trim())
            .ok_or_else(|| {
                let all: Vec<_> = Role::ALL.iter().map(|r| r.as_str()).collect();
                Error::invalid(format!("`{s}` is not a role ({})", all.join(", ")))
            })
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = Error;
    fn from_str(s: &str) -> Result<Role> {
        Role::parse(s)
    }
}

impl Serialize for Role {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Role {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Role::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A non-empty set of roles, written `governance,operator`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<Role>", into = "Vec<Role>")]
pub struct Roles(BTreeSet<Role>);

impl Roles {
    pub fn new(roles: impl IntoIterator<Item = Role>) -> Result<Roles> {
        let set: BTreeSet<Role> = roles.into_iter().collect();
        if set.is_empty() {
            return Err(Error::invalid("a user needs at least one role"));
        }
        Ok(Roles(set))
    }

    /// Parses a comma-separated list.
    pub fn parse(s: &str) -> Result<Roles> {
        Roles::new(
            s.split(',')
                .filter(|p| !p.trim().is_empty())
                .map(Role::parse)
                .collect::<Result<Vec<_>>>()?,
        )
    }

    pub fn contains(&self, r: Role) -> bool {
        self.0.contains(&r)
    }

    pub fn iter(&self) -> impl Iterator<Item = Role> + '_ {
        self.0.iter().copied()
    }
}

impl TryFrom<Vec<Role>> for Roles {
    type Error = Error;
    fn try_from(v: Vec<Role>) -> Result<Roles> {
        Roles::new(v)
    }
}

impl From<Roles> for Vec<Role> {
    fn from(r: Roles) -> Vec<Role> {
        r.0.into_iter().collect()
    }
}

impl fmt::Display for Roles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v: Vec<_> = self.0.iter().map(|r| r.as_str()).collect();
        f.write_str(&v.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_roles() {
        let r = Roles::parse("operator, governance").unwrap();
        assert!(r.contains(Role::Governance) && r.contains(Role::Operator));
        assert_eq!(r.to_string(), "governance,operator");
        assert!(Roles::parse("").is_err());
        assert!(Roles::parse("admin").is_err());
    }
}
