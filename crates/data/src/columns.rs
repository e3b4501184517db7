//! The reading helpers the rest of Vigil calls: a streaming summary for dataset registration,
//! and typed columns (scores, labels, groups, times) for evaluation.

use std::path::Path;

use arrow_array::Array;
use serde::Serialize;
use vigil_domain::DatasetFormat;

use crate::error::{Error, Location, Result};
use crate::read::{Col, Kind, ReadOptions, Request, Table};

/// What registration records about a file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TableSummary {
    pub format: DatasetFormat,
    pub rows: u64,
    pub columns: Vec<String>,
}

/// Reads the header and counts the rows. CSV files are read through once (validating every
/// row's shape and encoding); Parquet row counts come from the file's metadata.
pub fn summarize(path: impl AsRef<Path>) -> Result<TableSummary> {
    let table = Table::open(path.as_ref())?;
    let format = table.format();
    let columns = table.header().to_vec();
    if let Some(rows) = table.recorded_rows() {
        return Ok(TableSummary {
            format,
            rows,
            columns,
        });
    }
    let mut rows = 0u64;
    for b in table.batches(&[], ReadOptions::default())? {
        rows += b?.len as u64;
    }
    Ok(TableSummary {
        format,
        rows,
        columns,
    })
}

/// How to read one column.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ColumnType {
    /// As f64; missing cells (empty, `NA`, `NaN`, `null`…) become NaN.
    Number,
    /// As text; missing cells stay as they are written (often the empty string).
    Text,
    /// `YYYY-MM-DD` or RFC 3339, as Unix seconds; missing cells become `None`.
    Time,
    /// A binary outcome: `0`/`1` (also `0.0`/`1.0`, `true`/`false`), or, when `positive` is
    /// set, 1 for that exact value and 0 for any other. A missing label is an error.
    Label { positive: Option<String> },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ColumnSpec {
    pub name: String,
    pub ty: ColumnType,
}

impl ColumnSpec {
    pub fn new(name: impl Into<String>, ty: ColumnType) -> ColumnSpec {
        ColumnSpec {
            name: name.into(),
            ty,
        }
    }
}

/// One column's values; index `i` is data row `i + 1`.
#[derive(Clone, Debug, PartialEq)]
pub enum ColumnData {
    Number { values: Vec<f64>, missing: u64 },
    Text(Vec<String>),
    Time(Vec<Option<i64>>),
    Label(Vec<u8>),
}

/// Columns read by [`read_columns`], in the order requested.
#[derive(Clone, Debug, PartialEq)]
pub struct Columns {
    pub rows: u64,
    pub columns: Vec<(String, ColumnData)>,
}

impl Columns {
    pub fn find(&self, name: &str) -> Option<&ColumnData> {
        self.columns.iter().find(|(n, _)| n == name).map(|(_, c)| c)
    }

    pub fn get_numbers(&self, name: &str) -> Result<&[f64]> {
        match self.find(name) {
            Some(ColumnData::Number { values, .. }) => Ok(values),
            _ => Err(Error::Invalid(format!(
                "no numeric column `{name}` was read"
            ))),
        }
    }

    pub fn get_labels(&self, name: &str) -> Result<&[u8]> {
        match self.find(name) {
            Some(ColumnData::Label(v)) => Ok(v),
            _ => Err(Error::Invalid(format!("no label column `{name}` was read"))),
        }
    }

    pub fn get_texts(&self, name: &str) -> Result<&[String]> {
        match self.find(name) {
            Some(ColumnData::Text(v)) => Ok(v),
            _ => Err(Error::Invalid(format!("no text column `{name}` was read"))),
        }
    }

    pub fn get_times(&self, name: &str) -> Result<&[Option<i64>]> {
        match self.find(name) {
            Some(ColumnData::Time(v)) => Ok(v),
            _ => Err(Error::Invalid(format!("no time column `{name}` was read"))),
        }
    }
}

/// Reads the named columns in one streaming pass. Any cell that does not parse as its type
/// fails the read with the file, the row (1-based, header excluded) and the column.
pub fn read_columns(path: impl AsRef<Path>, specs: &[ColumnSpec]) -> Result<Columns> {
    let path = path.as_ref();
    let table = Table::open(path)?;
    let requests: Vec<Request> = specs
        .iter()
        .map(|s| Request {
            name: s.name.clone(),
            kind: match s.ty {
                ColumnType::Number => Kind::Number,
                ColumnType::Time => Kind::Time,
                ColumnType::Text | ColumnType::Label { .. } => Kind::Text,
            },
        })
        .collect();
    let mut out: Vec<ColumnData> = specs
        .iter()
        .map(|s| match s.ty {
            ColumnType::Number => ColumnData::Number {
                values: Vec::new(),
                missing: 0,
            },
            ColumnType::Text => ColumnData::Text(Vec::new()),
            ColumnType::Time => ColumnData::Time(Vec::new()),
            ColumnType::Label { .. } => ColumnData::Label(Vec::new()),
        })
        .collect();
    let mut rows = 0u64;
    for b in table.batches(&requests, ReadOptions::default())? {
        let b = b?;
        for ((col, data), spec) in b.cols.iter().zip(out.iter_mut()).zip(specs) {
            match (col, data) {
                (Col::Number(a), ColumnData::Number { values, missing }) => {
                    for i in 0..a.len() {
                        if a.is_null(i) || a.value(i).is_nan() {
                            *missing += 1;
                            values.push(f64::NAN);
                        } else {
                            values.push(a.value(i));
                        }
                    }
                }
                (Col::Time(a), ColumnData::Time(values)) => {
                    values.extend(
                        (0..a.len())
                            .map(|i| (!a.is_null(i)).then(|| a.value(i).div_euclid(1_000_000))),
                    );
                }
                (Col::Text(a), ColumnData::Text(values)) => {
                    values.extend((0..a.len()).map(|i| a.value(i).to_owned()));
                }
                (Col::Text(a), ColumnData::Label(values)) => {
                    let positive = match &spec.ty {
                        ColumnType::Label { positive } => positive.as_deref(),
                        _ => None,
                    };
                    for i in 0..a.len() {
                        let raw = if a.is_null(i) { "" } else { a.value(i) };
                        let row = b.first_row + i as u64;
                        let v = parse_label(raw, positive).ok_or_else(|| {
                            Error::malformed(
                                path,
                                Location {
                                    row: Some(row),
                                    column: Some(spec.name.clone()),
                                    ..Location::default()
                                },
                                match positive {
                                    Some(_) => "the label is missing".to_owned(),
                                    None => "the label is not 0 or 1".to_owned(),
                                },
                            )
                        })?;
                        values.push(v);
                    }
                }
                _ => {
                    return Err(Error::Invalid(
                        "column decoded with an unexpected type".into(),
                    ));
                }
            }
        }
        rows += b.len as u64;
    }
    Ok(Columns {
        rows,
        columns: specs.iter().map(|s| s.name.clone()).zip(out).collect(),
    })
}

/// A label cell as 0 or 1; `None` when it is missing or not a valid label.
pub(crate) fn parse_label(raw: &str, positive: Option<&str>) -> Option<u8> {
    let s = raw.trim_ascii();
    if crate::read::is_missing_token(s) {
        return None;
    }
    match positive {
        Some(p) => Some(u8::from(s == p)),
        None => match s {
            "1" | "1.0" | "true" | "True" | "TRUE" => Some(1),
            "0" | "0.0" | "false" | "False" | "FALSE" => Some(0),
            _ => None,
        },
    }
}
