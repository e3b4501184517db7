//! Reading clinical datasets (CSV and Parquet, through Arrow, streaming in bounded batches) and
//! the data checks a dataset snapshot must pass before it can serve as evidence.
//!
//! - [`summarize`]: format, row count and columns, for registering a snapshot;
//! - [`read_columns`]: typed columns (scores, labels, groups, times) for evaluation;
//! - [`annotate`]: a copy of a file with columns appended, in its format (batch scoring);
//! - [`check_dataset`]: every data check against a [`FeatureContract`](vigil_domain::FeatureContract),
//!   rendered for reviewers by [`CheckReport::to_text`] and [`CheckReport::to_html`].

mod annotate;
mod checks;
mod columns;
mod error;
mod read;
mod render;
mod repeats;
mod stats;

pub use annotate::{
    AnnotateSummary, Appended, AppendedKind, AppendedValues, Cell, CellBatch, OUTPUT_ROW_GROUP,
    annotate,
};
pub use checks::{
    Check, CheckOptions, CheckReport, LEAKAGE_AUROC, MIN_GROUP_ROWS, RANGE_TOLERANCE, SAMPLE_ROWS,
    Severity, Status, check_dataset,
};
pub use columns::{
    ColumnData, ColumnSpec, ColumnType, Columns, TableSummary, read_columns, summarize,
};
pub use error::{Error, Location, Malformed, Result};
