//! Reading the columns an evaluation needs, through `vigil_data`, with errors that name the
//! file (as the user knows it), the 1-based data row and the column, under stable codes.

use std::path::{Path, PathBuf};

use vigil_data::{ColumnData, ColumnSpec, ColumnType, Columns};
use vigil_domain::{DatasetFormat, DatasetSnapshot};

use crate::{Error, Result, Vigil};

/// A dataset file to read: where it is on disk and what to call it in messages.
#[derive(Debug)]
pub(crate) struct DataFile {
    pub path: PathBuf,
    pub shown: String,
    /// A link made for a snapshot (the artifact store names files by digest only, and the
    /// reader decides the format by extension); removed on drop.
    link: Option<PathBuf>,
}

impl DataFile {
    pub fn user(path: &Path) -> DataFile {
        DataFile {
            path: path.to_owned(),
            shown: path.display().to_string(),
            link: None,
        }
    }
}

impl Drop for DataFile {
    fn drop(&mut self) {
        if let Some(l) = &self.link {
            let _ = std::fs::remove_file(l);
        }
    }
}

impl Vigil {
    /// A registered snapshot's stored file, verified against its digest, readable by extension.
    pub(crate) fn snapshot_file(&self, ds: &DatasetSnapshot) -> Result<DataFile> {
        let digest = ds.snapshot.content.digest;
        self.blobs.verify(&digest)?;
        let stored = self.blobs.local_path(&digest)?;
        let ext = match ds.snapshot.format {
            DatasetFormat::Csv => "csv",
            DatasetFormat::Parquet => "parquet",
        };
        let dir = self.home.join("tmp");
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::internal(format!("cannot create {}: {e}", dir.display())))?;
        // A unique name per reader, so that concurrent evaluations never remove each other's.
        let nonce = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let link = dir.join(format!(
            "{}-{}-{nonce}.{ext}",
            digest.to_hex(),
            std::process::id()
        ));
        if std::fs::hard_link(&stored, &link).is_err() {
            std::fs::copy(&stored, &link).map_err(|e| {
                Error::internal(format!("cannot stage the snapshot for reading: {e}"))
            })?;
        }
        Ok(DataFile {
            path: link.clone(),
            shown: format!("dataset snapshot {} ({})", ds.id.short(), ds.snapshot.name),
            link: Some(link),
        })
    }
}

/// The role a column plays, which decides the error code of a bad cell in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    Score,
    Label,
    Time,
    Other,
}

/// Reads `specs` from `file`; `roles` gives each column's role for error codes.
pub(crate) fn read(
    file: &DataFile,
    specs: &[ColumnSpec],
    roles: &[(String, Role)],
) -> Result<Columns> {
    vigil_data::read_columns(&file.path, specs).map_err(|e| data_error(file, e, roles))
}

fn data_error(file: &DataFile, e: vigil_data::Error, roles: &[(String, Role)]) -> Error {
    use vigil_data::Error as D;
    let shown = |s: String| s.replace(&file.path.display().to_string(), &file.shown);
    match e {
        D::NotFound { .. } => {
            Error::invalid("file_not_found", format!("`{}`: no such file", file.shown))
        }
        D::Unavailable { source, .. } => Error::invalid(
            "file_unreadable",
            format!("`{}`: cannot be read: {source}", file.shown),
        ),
        D::Malformed(m) => {
            let role = m
                .location
                .column
                .as_ref()
                .and_then(|c| roles.iter().find(|(n, _)| n == c))
                .map_or(Role::Other, |(_, r)| *r);
            let code = match role {
                Role::Score => "score_not_numeric",
                Role::Label => "label_not_binary",
                Role::Time => "time_invalid",
                Role::Other => "dataset_malformed",
            };
            Error::invalid(code, shown(m.to_string()))
        }
        D::Invalid(m) if m.contains("has no column") => Error::invalid("column_missing", shown(m)),
        D::Invalid(m) => Error::invalid("invalid_request", shown(m)),
    }
}

/// Where a cell is, in the data crate's words (rows are 1-based, header excluded).
pub(crate) fn at(file: &DataFile, row0: usize, column: &str) -> String {
    format!(
        "`{}`: row {} (1-based, header excluded), column `{column}`",
        file.shown,
        row0 + 1
    )
}

/// Scores: every cell present, finite and in `[0, 1]`.
pub(crate) fn scores(file: &DataFile, cols: &Columns, name: &str) -> Result<Vec<f64>> {
    let values = match cols.find(name) {
        Some(ColumnData::Number { values, .. }) => values,
        _ => {
            return Err(Error::internal(format!(
                "column `{name}` was not read as numbers"
            )));
        }
    };
    for (i, &v) in values.iter().enumerate() {
        if v.is_nan() {
            return Err(Error::invalid(
                "score_missing",
                format!(
                    "{}: the score is empty or NaN; every row needs a score",
                    at(file, i, name)
                ),
            ));
        }
        if !(0.0..=1.0).contains(&v) {
            return Err(Error::invalid(
                "score_out_of_range",
                format!(
                    "{}: the score {v} is outside [0, 1]; scores must be probabilities",
                    at(file, i, name)
                ),
            ));
        }
    }
    Ok(values.clone())
}

/// Labels as 0/1 from a text column: `0`/`1` (also `0.0`/`1.0`, `true`/`false`), or, with
/// `positive`, 1 for that value and 0 for the one other value the column may hold.
pub(crate) fn labels(
    file: &DataFile,
    cols: &Columns,
    name: &str,
    positive: Option<&str>,
) -> Result<Vec<f64>> {
    let texts = text(cols, name)?;
    let mut other: Option<&str> = None;
    let mut out = Vec::with_capacity(texts.len());
    for (i, raw) in texts.iter().enumerate() {
        let s = raw.trim();
        if is_missing(s) {
            return Err(Error::invalid(
                "label_missing",
                format!(
                    "{}: the label is empty; every row needs an outcome",
                    at(file, i, name)
                ),
            ));
        }
        let v = match positive {
            Some(p) if s == p => 1.0,
            Some(p) => match other {
                None => {
                    other = Some(s);
                    0.0
                }
                Some(o) if o == s => 0.0,
                Some(o) => {
                    return Err(Error::invalid(
                        "label_not_binary",
                        format!(
                            "{}: the label is a third value; with --positive-label `{p}` the column may hold only `{p}` and one other value (`{o}` seen first)",
                            at(file, i, name)
                        ),
                    ));
                }
            },
            None => match s {
                "1" | "1.0" | "true" | "True" | "TRUE" => 1.0,
                "0" | "0.0" | "false" | "False" | "FALSE" => 0.0,
                _ => {
                    return Err(Error::invalid(
                        "label_not_binary",
                        format!(
                            "{}: the label is not 0 or 1 (name the positive value with --positive-label)",
                            at(file, i, name)
                        ),
                    ));
                }
            },
        };
        out.push(v);
    }
    Ok(out)
}

/// Times as Unix seconds; a missing time is an error (temporal validation needs every row).
pub(crate) fn times(file: &DataFile, cols: &Columns, name: &str) -> Result<Vec<i64>> {
    let t = cols
        .get_times(name)
        .map_err(|e| Error::internal(e.to_string()))?;
    t.iter()
        .enumerate()
        .map(|(i, v)| {
            v.ok_or_else(|| {
                Error::invalid(
                    "time_missing",
                    format!("{}: the time is empty", at(file, i, name)),
                )
            })
        })
        .collect()
}

pub(crate) fn text<'a>(cols: &'a Columns, name: &str) -> Result<&'a [String]> {
    cols.get_texts(name)
        .map_err(|e| Error::internal(e.to_string()))
}

/// Subgroup values; an empty cell is its own group, `(missing)`, because who lacks a value
/// is often a group worth seeing.
pub(crate) fn groups(cols: &Columns, name: &str) -> Result<Vec<String>> {
    Ok(text(cols, name)?
        .iter()
        .map(|s| {
            if is_missing(s.trim()) {
                "(missing)".to_owned()
            } else {
                s.clone()
            }
        })
        .collect())
}

/// The cell values that mean "no value" (as pandas and clinical extracts write them).
pub(crate) fn is_missing(s: &str) -> bool {
    matches!(
        s,
        "" | "NA" | "N/A" | "NaN" | "nan" | "NULL" | "null" | "None" | "NaT"
    )
}

pub(crate) fn spec(name: &str, ty: ColumnType) -> ColumnSpec {
    ColumnSpec::new(name, ty)
}
