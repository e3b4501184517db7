//! The release lifecycle and the transitions it allows.
//!
//! ```text
//! registered → validated → approved → shadow → production → retired
//!                  ↑                                 │
//!                  └──────── revalidation ◄──────────┘
//! ```

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    Registered,
    Validated,
    Approved,
    Shadow,
    Production,
    Retired,
}

impl Stage {
    pub const ALL: [Stage; 6] = [
        Stage::Registered,
        Stage::Validated,
        Stage::Approved,
        Stage::Shadow,
        Stage::Production,
        Stage::Retired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Registered => "registered",
            Stage::Validated => "validated",
            Stage::Approved => "approved",
            Stage::Shadow => "shadow",
            Stage::Production => "production",
            Stage::Retired => "retired",
        }
    }

    /// Whether a release may move from `self` to `to`. Retired is final; any live stage may
    /// be sent back to revalidation; shadow may be skipped back to approved (withdrawn from
    /// shadow) but production is only reached from shadow.
    pub fn can_move_to(self, to: Stage) -> bool {
        use Stage::*;
        matches!(
            (self, to),
            (Registered, Validated)
                | (Validated, Approved)
                | (Approved, Shadow)
                | (Shadow, Production)
                | (Shadow, Approved)
                | (Approved | Shadow | Production, Validated)
                | (
                    Registered | Validated | Approved | Shadow | Production,
                    Retired
                )
        )
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Stage {
    type Err = Error;
    fn from_str(s: &str) -> Result<Stage> {
        Stage::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| {
                Error::invalid(format!(
                    "`{s}` is not a stage (registered, validated, approved, shadow, production, retired)"
                ))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn retired_is_final() {
        for s in Stage::ALL {
            assert!(!Stage::Retired.can_move_to(s));
        }
    }

    proptest! {
        /// Whatever sequence of allowed moves is taken, production is only ever entered from
        /// shadow, and nothing leaves retired.
        #[test]
        fn no_sequence_reaches_a_forbidden_state(choices in proptest::collection::vec(0usize..6, 0..40)) {
            let mut s = Stage::Registered;
            for c in choices {
                let to = Stage::ALL[c];
                if s.can_move_to(to) {
                    prop_assert!(s != Stage::Retired);
                    if to == Stage::Production { prop_assert_eq!(s, Stage::Shadow); }
                    s = to;
                }
            }
        }
    }
}
