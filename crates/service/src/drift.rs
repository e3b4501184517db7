//! Input drift between two datasets (files or registered snapshots): each column numeric or
//! categorical, as a feature contract says or as its values show, measured by `vigil_stats`.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use serde::Serialize;
use vigil_data::ColumnType;
use vigil_domain::{FeatureContract, FeatureType};
use vigil_stats::{DriftOptions, DriftReport, FeatureValues};

use crate::columns::{self, DataFile, Role, spec};
use crate::{Error, Result, Vigil};

/// A dataset to compare: a file on disk, or a registered snapshot's stored copy.
#[derive(Debug)]
pub struct DriftSource(pub(crate) DataFile);

impl DriftSource {
    pub fn file(path: &Path) -> DriftSource {
        DriftSource(DataFile::user(path))
    }

    pub fn name(&self) -> &str {
        &self.0.shown
    }
}

impl Vigil {
    /// A registered snapshot (id or prefix) as a drift source.
    pub async fn drift_source(&self, snapshot: &str) -> Result<DriftSource> {
        let ds = self.get_dataset(snapshot).await?;
        Ok(DriftSource(self.snapshot_file(&ds)?))
    }
}

pub struct DriftRequest {
    pub reference: DriftSource,
    pub current: DriftSource,
    /// Columns to compare; `None`: every column both hold (or the contract's inputs).
    pub columns: Option<Vec<String>>,
    pub contract: Option<FeatureContract>,
}

/// The drift report and how each column was read.
#[derive(Debug, Serialize)]
pub struct DriftOutcome {
    pub reference: String,
    pub current: String,
    #[serde(flatten)]
    pub report: DriftReport,
    /// Per column: `numeric` or `categorical`, and how many empty cells were left out.
    pub columns: BTreeMap<String, DriftColumn>,
    /// Columns left out, with the reason (identifiers, columns only one side has).
    pub skipped: BTreeMap<String, String>,
    #[serde(skip)]
    pub options: DriftOptions,
}

#[derive(Debug, Serialize)]
pub struct DriftColumn {
    pub kind: &'static str,
    pub reference_missing: u64,
    pub current_missing: u64,
}

fn header(file: &DataFile) -> Result<Vec<String>> {
    vigil_data::summarize(&file.path)
        .map(|s| s.columns)
        .map_err(|e| {
            Error::invalid(
                "dataset_unreadable",
                e.to_string()
                    .replace(&file.path.display().to_string(), &file.shown),
            )
        })
}

/// Measures the drift of each column from `reference` to `current`.
pub fn drift(req: DriftRequest) -> Result<DriftOutcome> {
    let (rf, cf) = (&req.reference.0, &req.current.0);
    let (rh, ch) = (header(rf)?, header(cf)?);
    let explicit = req.columns.is_some();
    let mut skipped = BTreeMap::new();
    let wanted: Vec<String> = match (&req.columns, &req.contract) {
        (Some(c), _) => c.clone(),
        (None, Some(k)) => k.inputs().map(|f| f.name.clone()).collect(),
        (None, None) => rh.clone(),
    };
    let mut names = Vec::new();
    for c in wanted {
        match (rh.contains(&c), ch.contains(&c)) {
            (true, true) => names.push(c),
            (r, _) if explicit => {
                let which = if r { &cf.shown } else { &rf.shown };
                return Err(Error::invalid(
                    "column_missing",
                    format!("`{which}` has no column `{c}`"),
                ));
            }
            (false, _) => {
                skipped.insert(c, "not in the reference".into());
            }
            (true, false) => {
                skipped.insert(c, "not in the current data".into());
            }
        }
    }
    let specs: Vec<_> = names.iter().map(|n| spec(n, ColumnType::Text)).collect();
    let roles: Vec<(String, Role)> = names.iter().map(|n| (n.clone(), Role::Other)).collect();
    let rcols = columns::read(rf, &specs, &roles)?;
    let ccols = columns::read(cf, &specs, &roles)?;
    let mut reference = BTreeMap::new();
    let mut current = BTreeMap::new();
    let mut kinds = BTreeMap::new();
    for n in &names {
        let (r, c) = (columns::text(&rcols, n)?, columns::text(&ccols, n)?);
        let kind = match req.contract.as_ref().and_then(|k| k.find_feature(n)) {
            Some(f) => matches!(f.ty, FeatureType::Float | FeatureType::Int),
            None => all_numeric(r) && all_numeric(c),
        };
        let present =
            |v: &[String]| v.iter().filter(|s| !columns::is_missing(s.trim())).count() as u64;
        let col = DriftColumn {
            kind: if kind { "numeric" } else { "categorical" },
            reference_missing: r.len() as u64 - present(r),
            current_missing: c.len() as u64 - present(c),
        };
        if kind {
            let nums = |v: &[String]| -> Vec<f64> {
                v.iter()
                    .filter_map(|s| s.trim().parse::<f64>().ok())
                    .filter(|x| x.is_finite())
                    .collect()
            };
            reference.insert(n.clone(), FeatureValues::Numeric(nums(r)));
            current.insert(n.clone(), FeatureValues::Numeric(nums(c)));
        } else {
            // Identifiers and timestamps are nearly all distinct: their "drift" means nothing
            // and would drown the table, so they are left out unless asked for by name.
            let distinct = r.iter().collect::<HashSet<_>>().len();
            if !explicit
                && req.contract.is_none()
                && distinct > 50
                && distinct as f64 > 0.5 * r.len() as f64
            {
                skipped.insert(
                    n.clone(),
                    format!(
                        "{distinct} distinct values in {} rows: an identifier or time",
                        r.len()
                    ),
                );
                continue;
            }
            let cats = |v: &[String]| -> Vec<String> {
                v.iter()
                    .filter(|s| !columns::is_missing(s.trim()))
                    .cloned()
                    .collect()
            };
            reference.insert(n.clone(), FeatureValues::Categorical(cats(r)));
            current.insert(n.clone(), FeatureValues::Categorical(cats(c)));
        }
        kinds.insert(n.clone(), col);
    }
    let options = DriftOptions::default();
    let report = vigil_stats::drift(&reference, &current, &options);
    Ok(DriftOutcome {
        reference: rf.shown.clone(),
        current: cf.shown.clone(),
        report,
        columns: kinds,
        skipped,
        options,
    })
}

fn all_numeric(v: &[String]) -> bool {
    let mut any = false;
    for s in v {
        let s = s.trim();
        if columns::is_missing(s) {
            continue;
        }
        if s.parse::<f64>().is_err() {
            return false;
        }
        any = true;
    }
    any
}

impl DriftOutcome {
    /// The self-contained HTML report.
    pub fn html(&self, generated_at: vigil_domain::Timestamp) -> String {
        let mut notes = Vec::new();
        for (c, why) in &self.skipped {
            notes.push(format!("`{c}` left out: {why}."));
        }
        for (c, k) in &self.columns {
            if k.reference_missing + k.current_missing > 0 {
                notes.push(format!(
                    "`{c}`: {} empty cells in the reference and {} in the current data were left out.",
                    k.reference_missing, k.current_missing
                ));
            }
        }
        let ctx = vigil_report::DriftContext {
            title: "Input drift".into(),
            reference: Some(self.reference.clone()),
            current: Some(self.current.clone()),
            generated_at: generated_at.to_string(),
            psi_threshold: self.options.psi_threshold,
            notes,
            ..vigil_report::DriftContext::default()
        };
        vigil_report::render_drift(&self.report, &ctx)
    }
}
