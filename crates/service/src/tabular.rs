//! A streaming pass over a dataset file for its row count and header, at registration.

use std::path::Path;

use vigil_domain::DatasetFormat;

use crate::{Error, Result};

pub(crate) struct TableShape {
    pub rows: u64,
    pub columns: Vec<String>,
}

/// Counts data rows and reads the header, checking that every row has the header's width.
pub(crate) fn shape(path: &Path, format: DatasetFormat) -> Result<TableShape> {
    let shown = path.display();
    if format == DatasetFormat::Parquet {
        return parquet_shape(path);
    }
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_path(path)
        .map_err(|e| Error::invalid("dataset_unreadable", format!("{shown}: {e}")))?;
    let headers = reader
        .byte_headers()
        .map_err(|e| Error::invalid("dataset_malformed", format!("{shown}: header: {e}")))?
        .clone();
    if headers.is_empty() || (headers.len() == 1 && headers[0].is_empty()) {
        return Err(Error::invalid(
            "dataset_empty",
            format!("{shown}: the file is empty (no header row)"),
        ));
    }
    let mut columns = Vec::with_capacity(headers.len());
    for (i, h) in headers.iter().enumerate() {
        let name = std::str::from_utf8(h).map_err(|_| {
            Error::invalid(
                "dataset_malformed",
                format!("{shown}: header column {} is not valid UTF-8", i + 1),
            )
        })?;
        if columns.iter().any(|c| c == name) {
            return Err(Error::invalid(
                "dataset_malformed",
                format!("{shown}: column `{name}` appears twice in the header"),
            ));
        }
        columns.push(name.to_owned());
    }
    let mut rows = 0u64;
    let mut record = csv::ByteRecord::new();
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(true) => rows += 1,
            Ok(false) => break,
            Err(e) => {
                let line = e.position().map(|p| p.line()).unwrap_or(rows + 2);
                let why = match e.kind() {
                    csv::ErrorKind::UnequalLengths {
                        expected_len, len, ..
                    } => {
                        format!("has {len} fields where the header has {expected_len}")
                    }
                    _ => e.to_string(),
                };
                return Err(Error::invalid(
                    "dataset_malformed",
                    format!("{shown}: line {line}: {why}"),
                ));
            }
        }
    }
    Ok(TableShape { rows, columns })
}

/// Parquet through the data crate's reader, which decides the format by extension: the
/// stored blob is staged under a `.parquet` name for the read.
fn parquet_shape(stored: &Path) -> Result<TableShape> {
    let staged = stored.with_extension("staged.parquet");
    if std::fs::hard_link(stored, &staged).is_err() {
        std::fs::copy(stored, &staged).map_err(|e| {
            Error::internal(format!("cannot stage the Parquet file for reading: {e}"))
        })?;
    }
    let summary = vigil_data::summarize(&staged);
    let _ = std::fs::remove_file(&staged);
    let summary = summary.map_err(|e| Error::invalid("dataset_malformed", e.to_string()))?;
    Ok(TableShape {
        rows: summary.rows,
        columns: summary.columns,
    })
}
