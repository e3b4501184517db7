//! Copying a dataset with columns appended, one bounded batch at a time: batch scoring reads
//! the cells it needs, computes new columns per batch, and writes every input column plus the
//! new ones in the input's format (CSV → CSV, Parquet → Parquet), atomically.
//!
//! Memory is bounded by the batch size, never the file: CSV records are passed through as
//! their bytes, Parquet batches as their Arrow arrays (row groups of the output are capped at
//! [`OUTPUT_ROW_GROUP`] rows so the writer never buffers the whole file either). The output is
//! written to a temporary file beside the destination, flushed to disk and renamed over it,
//! so a reader sees the previous file or the complete new one, never half of it.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::{Array, ArrayRef, BooleanArray, Float64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use vigil_domain::DatasetFormat;

use crate::error::{Error, Location, Result};
use crate::read::{CsvReader, Source, Table, csv_error, is_missing_token, record_line};

/// Rows per output row group of a Parquet file: bounds what the writer buffers.
pub const OUTPUT_ROW_GROUP: usize = 64 * 1024;

/// One cell of a requested column, as the file holds it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Cell<'a> {
    /// Empty, null, or a token that means "no value" (`NA`, `NaN`, `null`, …).
    Missing,
    Number(f64),
    Bool(bool),
    /// Text as written (trimmed); for CSV every present cell is text, for the caller to parse.
    Text(&'a str),
}

/// A column appended to the output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Appended {
    pub name: String,
    pub kind: AppendedKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppendedKind {
    Number,
    Text,
}

/// The values of one appended column for one batch, one per row (`None` is an empty cell).
#[derive(Clone, Debug, PartialEq)]
pub enum AppendedValues {
    Numbers(Vec<Option<f64>>),
    Texts(Vec<Option<String>>),
}

enum Requested {
    Absent,
    Csv(usize),
    Number(Float64Array),
    Bool(BooleanArray),
    Text(StringArray),
}

enum Rows {
    Csv(Vec<csv::ByteRecord>),
    Parquet(RecordBatch),
}

/// A bounded run of consecutive input rows and the requested columns' cells.
pub struct CellBatch {
    first_row: u64,
    len: usize,
    rows: Rows,
    requested: Vec<Requested>,
}

impl std::fmt::Debug for CellBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CellBatch")
            .field("first_row", &self.first_row)
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

impl CellBatch {
    /// The 1-based data row number of the batch's first row.
    pub fn first_row(&self) -> u64 {
        self.first_row
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Row `row` (0-based within the batch) of requested column `column` (its index in the
    /// request). A column the file does not have reads as missing.
    pub fn cell(&self, column: usize, row: usize) -> Cell<'_> {
        match (&self.requested[column], &self.rows) {
            (Requested::Absent, _) => Cell::Missing,
            (Requested::Csv(i), Rows::Csv(recs)) => {
                // Requested fields were checked to be UTF-8 when the batch was read.
                text_cell(std::str::from_utf8(&recs[row][*i]).unwrap_or_default())
            }
            (Requested::Csv(_), Rows::Parquet(_)) => Cell::Missing,
            (Requested::Number(a), _) => {
                if a.is_null(row) || a.value(row).is_nan() {
                    Cell::Missing
                } else {
                    Cell::Number(a.value(row))
                }
            }
            (Requested::Bool(a), _) => {
                if a.is_null(row) {
                    Cell::Missing
                } else {
                    Cell::Bool(a.value(row))
                }
            }
            (Requested::Text(a), _) => {
                if a.is_null(row) {
                    Cell::Missing
                } else {
                    text_cell(a.value(row))
                }
            }
        }
    }
}

fn text_cell(s: &str) -> Cell<'_> {
    let s = s.trim();
    if is_missing_token(s) {
        Cell::Missing
    } else {
        Cell::Text(s)
    }
}

/// What an annotation run read and wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnnotateSummary {
    pub format: DatasetFormat,
    pub rows: u64,
    /// The input's columns, in order (the output has these, then the appended ones).
    pub header: Vec<String>,
    /// Which requested columns the input has.
    pub present: Vec<bool>,
}

/// Reads `input` in batches of `batch_rows`, calls `compute` on each batch for the values of
/// the `appended` columns, and writes every input column followed by them to `output`, in the
/// input's format. `requested` names the columns whose cells `compute` reads (absent ones
/// read as missing). The output replaces `output` atomically once complete; on any error
/// nothing is left at `output` (an existing file there is untouched).
pub fn annotate<F>(
    input: &Path,
    output: &Path,
    requested: &[String],
    appended: &[Appended],
    batch_rows: usize,
    mut compute: F,
) -> Result<AnnotateSummary>
where
    F: FnMut(&CellBatch) -> Vec<AppendedValues>,
{
    let out_format = DatasetFormat::from_path(&output.to_string_lossy())
        .map_err(|e| Error::Invalid(format!("the output file: {e}")))?;
    let table = Table::open(input)?;
    let format = table.format();
    if out_format != format {
        return Err(Error::Invalid(format!(
            "`{}` is {format:?} but the output `{}` would be {out_format:?}: the output is written in the input's format",
            input.display(),
            output.display()
        )));
    }
    if same_file(input, output) {
        return Err(Error::Invalid(format!(
            "the output `{}` is the input file: write the output elsewhere",
            output.display()
        )));
    }
    let header = table.header().to_vec();
    for a in appended {
        if header.contains(&a.name) {
            return Err(Error::Invalid(format!(
                "`{}` already has a column `{}`, which the output adds: rename it first",
                input.display(),
                a.name
            )));
        }
    }
    let present: Vec<bool> = requested.iter().map(|r| header.contains(r)).collect();
    let batch_rows = batch_rows.max(1);
    let tmp = TempOutput::create(output)?;
    let rows = match table.into_source() {
        Source::Csv(rdr) => annotate_csv(
            input,
            &tmp,
            *rdr,
            &header,
            requested,
            appended,
            batch_rows,
            &mut compute,
        )?,
        Source::Parquet { file, .. } => annotate_parquet(
            input,
            &tmp,
            file,
            requested,
            appended,
            batch_rows,
            &mut compute,
        )?,
    };
    tmp.commit(output)?;
    Ok(AnnotateSummary {
        format,
        rows,
        header,
        present,
    })
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

/// A temporary file beside the destination; removed unless committed.
struct TempOutput {
    path: PathBuf,
    committed: std::cell::Cell<bool>,
}

impl TempOutput {
    fn create(output: &Path) -> Result<TempOutput> {
        let dir = output
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let name = output
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| {
                Error::Invalid(format!("the output `{}` names no file", output.display()))
            })?;
        let nonce = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let path = dir.join(format!(".{name}.{}-{nonce}.tmp", std::process::id()));
        File::create(&path).map_err(|e| Error::io(&path, e))?;
        Ok(TempOutput {
            path,
            committed: std::cell::Cell::new(false),
        })
    }

    fn open(&self) -> Result<File> {
        std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&self.path)
            .map_err(|e| Error::io(&self.path, e))
    }

    fn commit(self, output: &Path) -> Result<()> {
        let f = File::open(&self.path).map_err(|e| Error::io(&self.path, e))?;
        f.sync_all().map_err(|e| Error::io(&self.path, e))?;
        std::fs::rename(&self.path, output).map_err(|e| Error::io(output, e))?;
        self.committed.set(true);
        if let Some(dir) = output.parent().filter(|p| !p.as_os_str().is_empty()) {
            // Makes the rename itself durable; not every platform can open a folder.
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    }
}

impl Drop for TempOutput {
    fn drop(&mut self) {
        if !self.committed.get() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn check_lengths(values: &[AppendedValues], appended: &[Appended], len: usize) -> Result<()> {
    let ok = values.len() == appended.len()
        && values.iter().zip(appended).all(|(v, a)| match (v, a.kind) {
            (AppendedValues::Numbers(x), AppendedKind::Number) => x.len() == len,
            (AppendedValues::Texts(x), AppendedKind::Text) => x.len() == len,
            _ => false,
        });
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid(
            "appended values do not match the appended columns or the batch".into(),
        ))
    }
}

/// Runs `read` on a reader thread and `consume` on this one, at most two batches apart.
fn pipelined<R, C>(read: R, mut consume: C) -> Result<()>
where
    R: FnOnce(&dyn Fn(Result<CellBatch>) -> bool) + Send,
    C: FnMut(CellBatch) -> Result<()>,
{
    let (tx, rx) = std::sync::mpsc::sync_channel::<Result<CellBatch>>(2);
    std::thread::scope(|s| {
        s.spawn(move || {
            let send = |b: Result<CellBatch>| {
                let stop = b.is_err();
                tx.send(b).is_ok() && !stop
            };
            read(&send);
        });
        // Dropping the receiver on an early return unblocks and ends the reader thread.
        for b in rx {
            consume(b?)?;
        }
        Ok(())
    })
}

#[allow(clippy::too_many_arguments)]
fn annotate_csv<F>(
    input: &Path,
    tmp: &TempOutput,
    mut rdr: CsvReader,
    header: &[String],
    requested: &[String],
    appended: &[Appended],
    batch_rows: usize,
    compute: &mut F,
) -> Result<u64>
where
    F: FnMut(&CellBatch) -> Vec<AppendedValues>,
{
    let idx: Vec<Option<usize>> = requested
        .iter()
        .map(|r| header.iter().position(|h| h == r))
        .collect();
    let file = tmp.open()?;
    let mut w = csv::WriterBuilder::new()
        .buffer_capacity(1 << 20)
        .from_writer(BufWriter::with_capacity(1 << 20, file));
    let werr = |e: csv::Error| match e.into_kind() {
        csv::ErrorKind::Io(io) => Error::io(&tmp.path, io),
        other => Error::Invalid(format!("writing the output: {other:?}")),
    };
    let mut out_header = csv::ByteRecord::new();
    for h in header {
        out_header.push_field(h.as_bytes());
    }
    for a in appended {
        out_header.push_field(a.name.as_bytes());
    }
    w.write_byte_record(&out_header).map_err(werr)?;

    let width = header.len();
    let read = |send: &dyn Fn(Result<CellBatch>) -> bool| {
        let mut done: u64 = 0;
        loop {
            let mut recs = Vec::with_capacity(batch_rows);
            let mut failed = None;
            while recs.len() < batch_rows {
                let mut rec = csv::ByteRecord::new();
                match rdr.read_byte_record(&mut rec) {
                    Ok(true) => {}
                    Ok(false) => break,
                    Err(e) => {
                        failed = Some(csv_error(input, e));
                        break;
                    }
                }
                let row = done + recs.len() as u64 + 1;
                let line = record_line(&rdr, &rec);
                let at = |column: Option<String>| Location {
                    row: Some(row),
                    line,
                    row_group: None,
                    column,
                };
                if rec.len() != width {
                    let column = header.get(rec.len().min(width - 1)).cloned();
                    failed = Some(Error::malformed(
                        input,
                        at(column),
                        format!(
                            "the row has {} fields but the header has {width}",
                            rec.len()
                        ),
                    ));
                    break;
                }
                if let Some(bad) = idx
                    .iter()
                    .flatten()
                    .find(|&&i| std::str::from_utf8(&rec[i]).is_err())
                {
                    failed = Some(Error::malformed(
                        input,
                        at(Some(header[*bad].clone())),
                        "the value is not valid UTF-8 (the file must be UTF-8 encoded)",
                    ));
                    break;
                }
                recs.push(rec);
            }
            let n = recs.len();
            if n > 0 {
                let batch = CellBatch {
                    first_row: done + 1,
                    len: n,
                    rows: Rows::Csv(recs),
                    requested: idx
                        .iter()
                        .map(|i| i.map_or(Requested::Absent, Requested::Csv))
                        .collect(),
                };
                done += n as u64;
                if !send(Ok(batch)) {
                    return;
                }
            }
            if let Some(e) = failed {
                send(Err(e));
                return;
            }
            if n < batch_rows {
                return;
            }
        }
    };
    let mut rows = 0u64;
    let mut out = csv::ByteRecord::new();
    let mut num = String::new();
    pipelined(read, |batch| {
        let values = compute(&batch);
        check_lengths(&values, appended, batch.len)?;
        let Rows::Csv(recs) = &batch.rows else {
            return Err(Error::Invalid("a CSV batch holds CSV records".into()));
        };
        for (r, rec) in recs.iter().enumerate() {
            out.clear();
            for f in rec.iter() {
                out.push_field(f);
            }
            for v in &values {
                match v {
                    AppendedValues::Numbers(x) => match x[r] {
                        Some(v) => {
                            num.clear();
                            // Display prints the shortest text that reads back as the same f64.
                            std::fmt::Write::write_fmt(&mut num, format_args!("{v}"))
                                .map_err(|_| Error::Invalid("formatting a number".into()))?;
                            out.push_field(num.as_bytes());
                        }
                        None => out.push_field(b""),
                    },
                    AppendedValues::Texts(x) => {
                        out.push_field(x[r].as_deref().unwrap_or("").as_bytes());
                    }
                }
            }
            w.write_byte_record(&out).map_err(werr)?;
        }
        rows += batch.len as u64;
        Ok(())
    })?;
    let mut inner = w
        .into_inner()
        .map_err(|e| Error::io(&tmp.path, std::io::Error::other(e.to_string())))?;
    inner.flush().map_err(|e| Error::io(&tmp.path, e))?;
    Ok(rows)
}

fn requested_column(input: &Path, rb: &RecordBatch, name: &str, group: usize) -> Result<Requested> {
    let Some(a) = rb.column_by_name(name) else {
        return Ok(Requested::Absent);
    };
    let fail = |e: arrow_schema::ArrowError| {
        Error::malformed(
            input,
            Location {
                row_group: Some(group),
                column: Some(name.to_owned()),
                ..Location::default()
            },
            format!("cannot be read: {e}"),
        )
    };
    Ok(match a.data_type() {
        DataType::Boolean => Requested::Bool(a.as_boolean().clone()),
        dt if dt.is_numeric() => Requested::Number(
            arrow_cast::cast(a, &DataType::Float64)
                .map_err(fail)?
                .as_primitive()
                .clone(),
        ),
        _ => Requested::Text(
            arrow_cast::cast(a, &DataType::Utf8)
                .map_err(fail)?
                .as_string::<i32>()
                .clone(),
        ),
    })
}

#[allow(clippy::too_many_arguments)]
fn annotate_parquet<F>(
    input: &Path,
    tmp: &TempOutput,
    file: File,
    requested: &[String],
    appended: &[Appended],
    batch_rows: usize,
    compute: &mut F,
) -> Result<u64>
where
    F: FnMut(&CellBatch) -> Vec<AppendedValues>,
{
    let decode = |group: Option<usize>, e: String| {
        Error::malformed(
            input,
            Location {
                row_group: group,
                ..Location::default()
            },
            format!("cannot be decoded: {e}"),
        )
    };
    let builder = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| decode(None, e.to_string()))?
        .with_batch_size(batch_rows);
    let in_schema = builder.schema().clone();
    let groups: Vec<i64> = builder
        .metadata()
        .row_groups()
        .iter()
        .map(|g| g.num_rows())
        .collect();
    let reader = builder.build().map_err(|e| decode(None, e.to_string()))?;
    let mut fields: Vec<Arc<Field>> = in_schema.fields().iter().cloned().collect();
    for a in appended {
        let dt = match a.kind {
            AppendedKind::Number => DataType::Float64,
            AppendedKind::Text => DataType::Utf8,
        };
        fields.push(Arc::new(Field::new(&a.name, dt, true)));
    }
    let out_schema = Arc::new(Schema::new_with_metadata(
        fields,
        in_schema.metadata().clone(),
    ));
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_size(OUTPUT_ROW_GROUP)
        .build();
    let out_file = tmp.open()?;
    let werr = |e: parquet::errors::ParquetError| {
        Error::io(&tmp.path, std::io::Error::other(e.to_string()))
    };
    let mut w = ArrowWriter::try_new(
        BufWriter::with_capacity(1 << 20, out_file),
        out_schema.clone(),
        Some(props),
    )
    .map_err(werr)?;

    // The row group a row falls in, for error messages.
    let group_of = |row0: u64| -> usize {
        let mut acc = 0u64;
        for (g, n) in groups.iter().enumerate() {
            acc += (*n).max(0) as u64;
            if row0 < acc {
                return g;
            }
        }
        groups.len().saturating_sub(1)
    };
    let read = |send: &dyn Fn(Result<CellBatch>) -> bool| {
        let mut done = 0u64;
        for rb in reader {
            let group = group_of(done);
            let rb = match rb {
                Ok(rb) => rb,
                Err(e) => {
                    send(Err(decode(Some(group), e.to_string())));
                    return;
                }
            };
            if rb.num_rows() == 0 {
                continue;
            }
            let req: Result<Vec<Requested>> = requested
                .iter()
                .map(|n| requested_column(input, &rb, n, group))
                .collect();
            let req = match req {
                Ok(r) => r,
                Err(e) => {
                    send(Err(e));
                    return;
                }
            };
            let n = rb.num_rows();
            let batch = CellBatch {
                first_row: done + 1,
                len: n,
                rows: Rows::Parquet(rb),
                requested: req,
            };
            done += n as u64;
            if !send(Ok(batch)) {
                return;
            }
        }
    };
    let mut rows = 0u64;
    pipelined(read, |batch| {
        let values = compute(&batch);
        check_lengths(&values, appended, batch.len)?;
        let Rows::Parquet(rb) = &batch.rows else {
            return Err(Error::Invalid("a Parquet batch holds Arrow arrays".into()));
        };
        let mut cols: Vec<ArrayRef> = rb.columns().to_vec();
        for v in values {
            cols.push(match v {
                AppendedValues::Numbers(x) => Arc::new(Float64Array::from(x)),
                AppendedValues::Texts(x) => Arc::new(StringArray::from(x)),
            });
        }
        let out = RecordBatch::try_new(out_schema.clone(), cols)
            .map_err(|e| Error::Invalid(format!("building the output batch: {e}")))?;
        w.write(&out).map_err(werr)?;
        rows += batch.len as u64;
        Ok(())
    })?;
    let inner = w.into_inner().map_err(werr)?;
    let file = inner
        .into_inner()
        .map_err(|e| Error::io(&tmp.path, std::io::Error::other(e.to_string())))?;
    drop(file);
    Ok(rows)
}
