//! Outcomes: labels that arrive after the prediction, joined to prediction records by
//! encounter (pseudonymised here, as the records are) or by request id. Every row is
//! accounted for: imported, a duplicate (in the file, or already recorded), or for a key no
//! prediction carries; late labels (arriving after the window's label delay) are imported
//! and reported.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::Serialize;
use serde_json::json;
use vigil_domain::{Digest, Duration, Timestamp, UserName};
use vigil_store::OutcomeRecord;

use crate::{Error, Result, Vigil, audit_event};

/// What a key identifies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyKind {
    /// An encounter identifier, pseudonymised before matching.
    Encounter,
    /// A prediction's request id, matched as given.
    Request,
}

impl KeyKind {
    pub fn parse(s: &str) -> Result<KeyKind> {
        match s {
            "encounter" => Ok(KeyKind::Encounter),
            "request" => Ok(KeyKind::Request),
            _ => Err(Error::invalid(
                "invalid_key_kind",
                format!("`{s}` is not a key kind: encounter or request"),
            )),
        }
    }
    fn as_str(self) -> &'static str {
        match self {
            KeyKind::Encounter => "encounter",
            KeyKind::Request => "request",
        }
    }
}

/// One label as supplied.
#[derive(Clone, Debug)]
pub struct OutcomeRow {
    /// The raw key (an encounter id is pseudonymised before anything is stored).
    pub key: String,
    pub label: bool,
    pub observed_at: Option<Timestamp>,
}

pub struct ImportOutcomes {
    /// Where the rows came from (a file name, `api`), for the record.
    pub source: String,
    pub key_kind: KeyKind,
    pub rows: Vec<OutcomeRow>,
    /// Digest of the input as received.
    pub digest: Digest,
}

/// What an import did with every row. Rows are named by their 1-based position, never by
/// their key.
#[derive(Clone, Debug, Serialize)]
pub struct OutcomeImport {
    pub import: Option<i64>,
    pub received: usize,
    pub imported: usize,
    /// Rows repeating a key seen earlier in the same input.
    pub duplicate_rows: Vec<usize>,
    /// Rows whose key already has an outcome (the first one stands).
    pub already_recorded: Vec<usize>,
    /// Of those, rows whose label differs from the recorded one.
    pub conflicting: Vec<usize>,
    /// Rows whose key no prediction record carries (not imported).
    pub unknown: Vec<usize>,
    /// Imported rows that arrived after the label delay of the prediction's window.
    pub late: Vec<usize>,
    pub label_delay: Duration,
}

impl Vigil {
    /// Imports outcomes (data-scientist or operator role), in one transaction with its audit
    /// event. Unknown keys are reported and not stored; nothing is stored over a recorded
    /// outcome.
    pub async fn import_outcomes(
        &self,
        actor: &UserName,
        req: ImportOutcomes,
    ) -> Result<OutcomeImport> {
        use vigil_domain::role::Role;
        self.authorize(
            actor,
            &[Role::DataScientist, Role::Operator],
            "outcomes",
            "outcomes",
        )
        .await?;
        if req.rows.is_empty() {
            return Err(Error::invalid(
                "outcomes_empty",
                "no outcome rows were given",
            ));
        }
        let kind = req.key_kind.as_str();
        let keys: Vec<String> = req
            .rows
            .iter()
            .map(|r| match req.key_kind {
                KeyKind::Encounter => self.pseudonymise("encounter", r.key.trim()),
                KeyKind::Request => r.key.trim().to_owned(),
            })
            .collect();
        for (i, r) in req.rows.iter().enumerate() {
            if r.key.trim().is_empty() {
                return Err(Error::invalid(
                    "outcome_key_missing",
                    format!("outcome row {}: the key is empty", i + 1),
                ));
            }
        }
        let label_delay = match self.current_monitor_policy().await? {
            Some(p) => p
                .policy
                .rules
                .iter()
                .filter_map(|r| r.label_delay)
                .max()
                .unwrap_or(Duration::from_days(30)),
            None => Duration::from_days(30),
        };
        let now = self.clock.now();
        let mut tx = self.store.begin().await?;
        let distinct: Vec<String> = keys
            .iter()
            .cloned()
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let recorded: HashMap<String, bool> = tx
            .find_outcomes(kind, &distinct)
            .await?
            .into_iter()
            .map(|o| (o.key, o.label))
            .collect();
        let predicted: HashMap<String, Timestamp> = tx
            .predictions_with_keys(kind, &distinct)
            .await?
            .into_iter()
            .collect();
        let mut report = OutcomeImport {
            import: None,
            received: req.rows.len(),
            imported: 0,
            duplicate_rows: Vec::new(),
            already_recorded: Vec::new(),
            conflicting: Vec::new(),
            unknown: Vec::new(),
            late: Vec::new(),
            label_delay,
        };
        let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
        let mut rows = Vec::new();
        for (i, (r, key)) in req.rows.iter().zip(&keys).enumerate() {
            let n = i + 1;
            if seen.insert(key.as_str(), n).is_some() {
                report.duplicate_rows.push(n);
                continue;
            }
            if let Some(l) = recorded.get(key) {
                report.already_recorded.push(n);
                if *l != r.label {
                    report.conflicting.push(n);
                }
                continue;
            }
            let Some(first) = predicted.get(key) else {
                report.unknown.push(n);
                continue;
            };
            if now > first.plus(label_delay) {
                report.late.push(n);
            }
            rows.push(OutcomeRecord {
                key_kind: kind.to_owned(),
                key: key.clone(),
                label: r.label,
                observed_at: r.observed_at,
                imported_at: now,
            });
        }
        report.imported = rows.len();
        let summary = json!({
            "key_kind": kind,
            "received": report.received,
            "imported": report.imported,
            "duplicate_rows": report.duplicate_rows.len(),
            "already_recorded": report.already_recorded.len(),
            "conflicting": report.conflicting.len(),
            "unknown": report.unknown.len(),
            "late": report.late.len(),
        });
        let id = tx
            .insert_outcome_import(&req.source, &req.digest, &summary, actor, now)
            .await?;
        tx.insert_outcomes(id, &rows).await?;
        let mut payload = summary;
        payload["import"] = json!(id);
        payload["source"] = json!(req.source);
        payload["digest"] = json!(req.digest);
        let ev = audit_event(actor, "outcomes.imported", "outcomes", payload)?;
        tx.append_audit(now, &ev).await?;
        tx.commit().await?;
        report.import = Some(id);
        Ok(report)
    }
}

/// Which columns of an outcomes file mean what.
pub struct OutcomeColumns<'a> {
    pub key: &'a str,
    pub label: &'a str,
    pub time: Option<&'a str>,
    pub positive_label: Option<&'a str>,
}

impl Vigil {
    /// Imports outcomes from a CSV or Parquet file (see [`Self::import_outcomes`]).
    pub async fn import_outcomes_file(
        &self,
        actor: &UserName,
        path: &std::path::Path,
        cols: OutcomeColumns<'_>,
        key_kind: KeyKind,
    ) -> Result<OutcomeImport> {
        use crate::columns::{self, DataFile, Role, spec};
        use vigil_data::ColumnType;
        let bytes = std::fs::read(path).map_err(|e| {
            Error::invalid(
                "file_unreadable",
                format!("`{}`: cannot be read: {e}", path.display()),
            )
        })?;
        let file = DataFile::user(path);
        let mut specs = vec![
            spec(cols.key, ColumnType::Text),
            spec(cols.label, ColumnType::Text),
        ];
        let mut roles = vec![
            (cols.key.to_owned(), Role::Other),
            (cols.label.to_owned(), Role::Label),
        ];
        if let Some(t) = cols.time {
            specs.push(spec(t, ColumnType::Time));
            roles.push((t.to_owned(), Role::Time));
        }
        let read = columns::read(&file, &specs, &roles)?;
        let keys = columns::text(&read, cols.key)?;
        let labels = columns::labels(&file, &read, cols.label, cols.positive_label)?;
        let times: Option<Vec<Option<i64>>> = match cols.time {
            Some(t) => Some(
                read.get_times(t)
                    .map_err(|e| Error::internal(e.to_string()))?
                    .to_vec(),
            ),
            None => None,
        };
        let rows = keys
            .iter()
            .enumerate()
            .map(|(i, k)| OutcomeRow {
                key: k.clone(),
                label: labels[i] == 1.0,
                observed_at: times
                    .as_ref()
                    .and_then(|t| t[i])
                    .map(Timestamp::from_unix_seconds),
            })
            .collect();
        self.import_outcomes(
            actor,
            ImportOutcomes {
                source: path
                    .file_name()
                    .map_or_else(|| "file".into(), |n| n.to_string_lossy().into_owned()),
                key_kind,
                rows,
                digest: Digest::of(&bytes),
            },
        )
        .await
    }
}
