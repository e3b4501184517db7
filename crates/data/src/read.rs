//! Streaming readers for CSV and Parquet datasets: a fixed schema chosen by the caller, decoded
//! into Arrow arrays one bounded batch at a time, with errors that name file, row and column.
//!
//! CSV is tokenised with `csv` (csv-core) and decoded into Arrow builders here rather than
//! through `arrow-csv`, for three reasons: `arrow-csv` copies the offending row's data into its
//! parse errors (patient data must not reach logs), it reports lines rather than data rows,
//! and the duplicate-row check wants the raw bytes of each record, which it does not expose.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::builder::{Float64Builder, Int64Builder, StringBuilder};
use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_array::{Array, ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, TimeUnit};
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReader,
    ParquetRecordBatchReaderBuilder,
};
use vigil_domain::{DatasetFormat, Timestamp};
use xxhash_rust::xxh3::xxh3_128;

use crate::error::{Error, Location, Result};

mod chunked;
mod lines;

use lines::LineStarts;

/// The CSV tokenizer over a file, with the line starts it needs for true line numbers.
pub(crate) type CsvReader = csv::Reader<BufReader<LineStarts<File>>>;

/// The physical line `rec`, just read by `rdr`, starts on.
pub(crate) fn record_line(rdr: &CsvReader, rec: &csv::ByteRecord) -> Option<u64> {
    rec.position().map(|p| {
        rdr.get_ref()
            .get_ref()
            .line_at(p.byte())
            .unwrap_or(p.line())
    })
}

/// Rows per batch: large enough to amortise per-batch work, small enough that a batch of 40
/// numeric columns (about 5 MB) stays in the last-level cache between decoding and checking.
pub(crate) const BATCH_ROWS: usize = 16 * 1024;

/// How a column is decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A number, as f64 (missing: null).
    Number,
    /// A boolean (`0`/`1`, `true`/`false`), as 0.0 / 1.0.
    Flag,
    /// Text, as UTF-8.
    Text,
    /// A time (`YYYY-MM-DD` or RFC 3339), as microseconds since the Unix epoch.
    Time,
}

impl Kind {
    fn expected(self) -> &'static str {
        match self {
            Kind::Number => "a number",
            Kind::Flag => "a boolean (0/1 or true/false)",
            Kind::Text => "text",
            Kind::Time => "a time (YYYY-MM-DD or RFC 3339 such as 2026-01-31T08:00:00Z)",
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Request {
    pub name: String,
    pub kind: Kind,
}

/// One decoded column of a batch.
#[derive(Clone, Debug)]
pub(crate) enum Col {
    Number(Float64Array),
    Text(StringArray),
    Time(Int64Array),
}

/// Cells that did not parse as their column's kind, in lenient mode (decoded as null).
#[derive(Clone, Debug, Default)]
pub(crate) struct BadValues {
    pub count: u64,
    /// Row numbers of the first few.
    pub examples: Vec<u64>,
}

/// A bounded run of consecutive rows.
#[derive(Debug)]
pub(crate) struct Batch {
    /// The 1-based row number of the first row.
    pub first_row: u64,
    pub len: usize,
    /// In the order requested.
    pub cols: Vec<Col>,
    /// A 128-bit hash of every row's full content, when requested.
    pub row_hashes: Vec<u128>,
    /// Per requested column, in lenient mode.
    pub bad: Vec<BadValues>,
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct ReadOptions {
    /// Unparseable numbers and times become null and are counted instead of failing the read.
    pub lenient: bool,
    pub hash_rows: bool,
    pub batch_rows: usize,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            lenient: false,
            hash_rows: false,
            batch_rows: BATCH_ROWS,
        }
    }
}

const EXAMPLES: usize = 5;

/// An opened dataset whose header (or schema) has been read.
pub(crate) struct Table {
    path: PathBuf,
    format: DatasetFormat,
    header: Vec<String>,
    source: Source,
}

pub(crate) enum Source {
    Csv(Box<CsvReader>),
    Parquet {
        file: File,
        meta: ArrowReaderMetadata,
    },
}

impl Table {
    pub fn open(path: &Path) -> Result<Table> {
        let format = DatasetFormat::from_path(&path.to_string_lossy())
            .map_err(|e| Error::Invalid(e.to_string()))?;
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        match format {
            DatasetFormat::Csv => open_csv(path, file),
            DatasetFormat::Parquet => open_parquet(path, file),
        }
    }

    pub fn format(&self) -> DatasetFormat {
        self.format
    }

    pub fn header(&self) -> &[String] {
        &self.header
    }

    /// The opened reader, past the header (CSV) or with the metadata read (Parquet).
    pub(crate) fn into_source(self) -> Source {
        self.source
    }

    /// The row count when the file records it (Parquet metadata); CSV needs a pass.
    pub fn recorded_rows(&self) -> Option<u64> {
        match &self.source {
            Source::Csv(_) => None,
            Source::Parquet { meta, .. } => {
                Some(meta.metadata().file_metadata().num_rows().max(0) as u64)
            }
        }
    }

    /// Starts decoding the requested columns. Fails if one is absent, or (Parquet) stored with
    /// a type that cannot hold its kind.
    pub fn batches(self, requests: &[Request], opts: ReadOptions) -> Result<Batches> {
        let mut idx = Vec::with_capacity(requests.len());
        for r in requests {
            let i = self
                .header
                .iter()
                .position(|h| *h == r.name)
                .ok_or_else(|| {
                    Error::Invalid(format!(
                        "`{}` has no column `{}`",
                        self.path.display(),
                        r.name
                    ))
                })?;
            idx.push(i);
        }
        let kinds: Vec<Kind> = requests.iter().map(|r| r.kind).collect();
        let inner = match self.source {
            Source::Csv(rdr) => Inner::Csv(Box::new(CsvBatches {
                rdr,
                rec: csv::ByteRecord::new(),
                done: false,
            })),
            Source::Parquet { file, meta } => {
                let schema = meta.schema().clone();
                for (r, &i) in requests.iter().zip(&idx) {
                    let dt = schema.field(i).data_type();
                    if !parquet_type_fits(dt, r.kind) {
                        return Err(Error::malformed(
                            &self.path,
                            Location {
                                row_group: Some(0),
                                column: Some(r.name.clone()),
                                ..Location::default()
                            },
                            format!("stored as {dt}, which cannot hold {}", r.kind.expected()),
                        ));
                    }
                }
                Inner::Parquet(Box::new(ParquetBatches {
                    file,
                    meta,
                    current: None,
                    next_group: 0,
                }))
            }
        };
        Ok(Batches {
            path: self.path,
            header: self.header,
            idx,
            kinds,
            opts,
            rows_done: 0,
            inner,
        })
    }
}

fn open_csv(path: &Path, file: File) -> Result<Table> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .buffer_capacity(1 << 20)
        .from_reader(BufReader::with_capacity(1 << 20, LineStarts::new(file)));
    let raw = rdr.byte_headers().map_err(|e| csv_error(path, e))?.clone();
    if raw.is_empty() || (raw.len() == 1 && raw[0].is_empty()) {
        return Err(Error::malformed(
            path,
            Location::default(),
            "the file is empty: a CSV dataset starts with a header row naming its columns",
        ));
    }
    let mut header = Vec::with_capacity(raw.len());
    for (i, field) in raw.iter().enumerate() {
        let field = field.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(field);
        let name = std::str::from_utf8(field).map_err(|_| {
            Error::malformed(
                path,
                Location {
                    line: Some(1),
                    column: Some(format!("#{}", i + 1)),
                    ..Location::default()
                },
                "the header is not valid UTF-8",
            )
        })?;
        let name = name.trim().to_owned();
        if name.is_empty() {
            return Err(Error::malformed(
                path,
                Location {
                    line: Some(1),
                    column: Some(format!("#{}", i + 1)),
                    ..Location::default()
                },
                "the header names no column here",
            ));
        }
        if header.contains(&name) {
            return Err(Error::malformed(
                path,
                Location {
                    line: Some(1),
                    column: Some(name),
                    ..Location::default()
                },
                "the header names this column twice",
            ));
        }
        header.push(name);
    }
    Ok(Table {
        path: path.to_owned(),
        format: DatasetFormat::Csv,
        header,
        source: Source::Csv(Box::new(rdr)),
    })
}

pub(crate) fn csv_error(path: &Path, e: csv::Error) -> Error {
    let line = e.position().map(|p| p.line());
    match e.into_kind() {
        csv::ErrorKind::Io(io) => Error::io(path, io),
        other => Error::malformed(
            path,
            Location {
                line,
                ..Location::default()
            },
            format!("{other:?}"),
        ),
    }
}

fn open_parquet(path: &Path, file: File) -> Result<Table> {
    let meta = ArrowReaderMetadata::load(&file, ArrowReaderOptions::new()).map_err(|e| {
        Error::malformed(
            path,
            Location::default(),
            format!("not a readable Parquet file: {e}"),
        )
    })?;
    let header = meta
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    Ok(Table {
        path: path.to_owned(),
        format: DatasetFormat::Parquet,
        header,
        source: Source::Parquet { file, meta },
    })
}

fn parquet_type_fits(dt: &DataType, kind: Kind) -> bool {
    let numeric = dt.is_numeric() || *dt == DataType::Boolean;
    let text = matches!(
        dt,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
    ) || matches!(dt, DataType::Dictionary(_, v) if matches!(**v, DataType::Utf8 | DataType::LargeUtf8));
    match kind {
        Kind::Number | Kind::Flag => numeric,
        Kind::Text => numeric || text,
        Kind::Time => {
            text || matches!(
                dt,
                DataType::Timestamp(_, _) | DataType::Date32 | DataType::Date64
            )
        }
    }
}

/// Decodes batches; an iterator of `Result<Batch>` that stops after the first error.
pub(crate) struct Batches {
    path: PathBuf,
    header: Vec<String>,
    idx: Vec<usize>,
    kinds: Vec<Kind>,
    opts: ReadOptions,
    rows_done: u64,
    inner: Inner,
}

enum Inner {
    Csv(Box<CsvBatches>),
    Parquet(Box<ParquetBatches>),
    Failed,
}

struct CsvBatches {
    rdr: Box<CsvReader>,
    rec: csv::ByteRecord,
    done: bool,
}

struct ParquetBatches {
    file: File,
    meta: ArrowReaderMetadata,
    current: Option<(usize, ParquetRecordBatchReader)>,
    next_group: usize,
}

impl Iterator for Batches {
    type Item = Result<Batch>;

    fn next(&mut self) -> Option<Result<Batch>> {
        let out = match &mut self.inner {
            Inner::Csv(c) => next_csv(
                c,
                &CsvSpec {
                    path: &self.path,
                    header: &self.header,
                    idx: &self.idx,
                    kinds: &self.kinds,
                    opts: self.opts,
                },
                self.rows_done,
            ),
            Inner::Parquet(p) => next_parquet(
                p,
                &self.path,
                &self.header,
                &self.idx,
                &self.kinds,
                self.opts,
                self.rows_done,
            ),
            Inner::Failed => return None,
        };
        match out {
            Ok(Some(b)) => {
                self.rows_done += b.len as u64;
                Some(Ok(b))
            }
            Ok(None) => None,
            Err(e) => {
                self.inner = Inner::Failed;
                Some(Err(e))
            }
        }
    }
}

enum Builder {
    Number(Float64Builder),
    Text(StringBuilder),
    Time(Int64Builder),
}

impl Builder {
    fn new(kind: Kind, cap: usize) -> Builder {
        match kind {
            Kind::Number | Kind::Flag => Builder::Number(Float64Builder::with_capacity(cap)),
            Kind::Text => Builder::Text(StringBuilder::with_capacity(cap, cap * 8)),
            Kind::Time => Builder::Time(Int64Builder::with_capacity(cap)),
        }
    }

    fn finish(self) -> Col {
        match self {
            Builder::Number(mut b) => Col::Number(b.finish()),
            Builder::Text(mut b) => Col::Text(b.finish()),
            Builder::Time(mut b) => Col::Time(b.finish()),
        }
    }
}

/// Tokens that mean "no value" in the CSV files clinical extracts and pandas write.
pub(crate) fn is_missing_token(s: &str) -> bool {
    matches!(
        s,
        "" | "NA" | "N/A" | "NaN" | "nan" | "NULL" | "null" | "None" | "NaT"
    )
}

/// Parses one cell; `Ok(None)` is a missing value, `Err(())` a value of the wrong kind.
#[allow(clippy::result_unit_err)]
pub(crate) fn parse_number(s: &str) -> Result<Option<f64>, ()> {
    let s = s.trim_ascii();
    if is_missing_token(s) {
        return Ok(None);
    }
    if let Some(v) = parse_plain_decimal(s.as_bytes()) {
        return Ok(Some(v));
    }
    match s.parse::<f64>() {
        Ok(v) if v.is_nan() => Ok(None),
        Ok(v) => Ok(Some(v)),
        Err(_) => Err(()),
    }
}

/// Exact powers of ten representable in an f64.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// The fast path for what clinical extracts are made of: `-123.45`, at most 15 digits, no
/// exponent. The digits form an exact integer below 2^53 and the divisor is an exact power of
/// ten, so one IEEE division is correctly rounded and agrees with `str::parse` (Clinger's fast
/// path). Anything else returns `None` and goes through the general parser.
fn parse_plain_decimal(s: &[u8]) -> Option<f64> {
    let (neg, digits) = match s.first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let mut mant: u64 = 0;
    let mut n = 0usize;
    let mut frac = 0usize;
    let mut dot = false;
    let mut any = false;
    for &c in digits {
        match c {
            b'0'..=b'9' => {
                any = true;
                // Leading zeros add nothing to the mantissa.
                if mant != 0 || c != b'0' {
                    n += 1;
                }
                frac += usize::from(dot);
                if n > 15 || frac > 22 {
                    return None;
                }
                mant = mant * 10 + u64::from(c - b'0');
            }
            b'.' if !dot => dot = true,
            _ => return None,
        }
    }
    if !any {
        return None;
    }
    let v = mant as f64 / POW10[frac];
    Some(if neg { -v } else { v })
}

pub(crate) fn parse_flag(s: &str) -> Result<Option<f64>, ()> {
    let s = s.trim_ascii();
    match s {
        "1" | "1.0" | "true" | "True" | "TRUE" => Ok(Some(1.0)),
        "0" | "0.0" | "false" | "False" | "FALSE" => Ok(Some(0.0)),
        _ if is_missing_token(s) => Ok(None),
        _ => Err(()),
    }
}

pub(crate) fn parse_time(s: &str) -> Result<Option<i64>, ()> {
    let s = s.trim_ascii();
    if is_missing_token(s) {
        return Ok(None);
    }
    Timestamp::parse(s)
        .map(|t| Some(t.as_micros()))
        .map_err(|_| ())
}

/// [`parse_time`] on the bytes of a field already validated as UTF-8, with a fast path for
/// the form extracts are made of, `YYYY-MM-DDTHH:MM:SSZ`.
fn parse_time_bytes(field: &[u8]) -> Result<Option<i64>, ()> {
    if let Some(us) = parse_utc_seconds(field) {
        return Ok(Some(us));
    }
    parse_time(std::str::from_utf8(field).map_err(|_| ())?)
}

/// Exactly `YYYY-MM-DDTHH:MM:SSZ`, as microseconds since the epoch, with the checks
/// [`Timestamp::parse`] makes (real day of the month, hour below 24, a leap second allowed);
/// anything else is `None` and goes through the general parser.
fn parse_utc_seconds(b: &[u8]) -> Option<i64> {
    if b.len() != 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
        || b[19] != b'Z'
    {
        return None;
    }
    let digits = |from: usize, to: usize| -> Option<i64> {
        let mut v = 0i64;
        for &c in &b[from..to] {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + i64::from(c - b'0');
        }
        Some(v)
    };
    let y = digits(0, 4)?;
    let mo = digits(5, 7)?;
    let d = digits(8, 10)?;
    let h = digits(11, 13)?;
    let mi = digits(14, 16)?;
    let sec = digits(17, 19)?;
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let month_days = match mo {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if d == 0 || d > month_days || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let days = vigil_domain::time::days_from_civil(y, mo as u32, d as u32);
    Some((days * 86_400 + h * 3600 + mi * 60 + sec) * 1_000_000)
}

fn bad_value(
    path: &Path,
    row: u64,
    line: Option<u64>,
    column: &str,
    kind: Kind,
    group: Option<usize>,
) -> Error {
    Error::malformed(
        path,
        Location {
            row: Some(row),
            line,
            row_group: group,
            column: Some(column.to_owned()),
        },
        format!("the value is not {}", kind.expected()),
    )
}

fn note_bad(bad: &mut BadValues, row: u64) {
    bad.count += 1;
    if bad.examples.len() < EXAMPLES {
        bad.examples.push(row);
    }
}

/// What decoding CSV records into a batch needs to know: the file (named in errors), its
/// header, the requested columns and how to read them.
#[derive(Clone, Copy)]
pub(crate) struct CsvSpec<'a> {
    pub path: &'a Path,
    pub header: &'a [String],
    pub idx: &'a [usize],
    pub kinds: &'a [Kind],
    pub opts: ReadOptions,
}

/// One CSV record's fields, however it was tokenized.
pub(crate) trait Fields {
    fn count(&self) -> usize;
    fn field(&self, i: usize) -> &[u8];
    /// `Err(i)` names the first field that is not valid UTF-8.
    fn check_utf8(&self) -> Result<(), usize>;
    /// The fields joined by commas: with the field lengths, the input of the row hash.
    fn write_joined(&self, out: &mut Vec<u8>);
}

impl Fields for csv::ByteRecord {
    fn count(&self) -> usize {
        self.len()
    }

    fn field(&self, i: usize) -> &[u8] {
        &self[i]
    }

    fn check_utf8(&self) -> Result<(), usize> {
        // Whole record at once (fast), then no field may start inside a character: together
        // they prove every field is valid UTF-8 without validating the fields one by one.
        let bytes = self.as_slice();
        let whole_ok = bytes.is_ascii()
            || (std::str::from_utf8(bytes).is_ok()
                && self
                    .iter()
                    .all(|f| f.first().is_none_or(|&b| !(0x80..0xC0).contains(&b))));
        if whole_ok {
            Ok(())
        } else {
            Err(self
                .iter()
                .position(|f| std::str::from_utf8(f).is_err())
                .unwrap_or(0))
        }
    }

    fn write_joined(&self, out: &mut Vec<u8>) {
        for (i, f) in self.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(f);
        }
    }
}

/// A batch filled one record at a time.
pub(crate) struct BatchBuilder {
    first_row: u64,
    len: usize,
    builders: Vec<Builder>,
    bad: Vec<BadValues>,
    hashes: Vec<u128>,
    scratch: Vec<u8>,
}

impl BatchBuilder {
    /// An empty batch whose first row will be `first_row` (1-based).
    pub fn new(spec: &CsvSpec<'_>, first_row: u64) -> BatchBuilder {
        let cap = spec.opts.batch_rows.max(1);
        BatchBuilder {
            first_row,
            len: 0,
            builders: spec.kinds.iter().map(|&k| Builder::new(k, cap)).collect(),
            bad: vec![BadValues::default(); spec.kinds.len()],
            hashes: Vec::with_capacity(if spec.opts.hash_rows { cap } else { 0 }),
            scratch: Vec::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_full(&self, spec: &CsvSpec<'_>) -> bool {
        self.len >= spec.opts.batch_rows.max(1)
    }

    /// Decodes one record; `line` is where the reader was when the record began (1-based,
    /// header included).
    pub fn push<R: Fields>(
        &mut self,
        spec: &CsvSpec<'_>,
        rec: &R,
        line: Option<u64>,
    ) -> Result<()> {
        let CsvSpec {
            path,
            header,
            idx,
            kinds,
            opts,
        } = *spec;
        let row = self.first_row + self.len as u64;
        let n = rec.count();
        if n != header.len() {
            let (column, reason) = if n < header.len() {
                (
                    Some(header[n].clone()),
                    format!(
                        "the row has {n} fields but the header has {}: this column and the ones after it are missing",
                        header.len()
                    ),
                )
            } else {
                (
                    header.last().cloned(),
                    format!(
                        "the row has {n} fields but the header has {}: extra fields after this last column",
                        header.len()
                    ),
                )
            };
            return Err(Error::malformed(
                path,
                Location {
                    row: Some(row),
                    line,
                    row_group: None,
                    column,
                },
                reason,
            ));
        }
        if let Err(col) = rec.check_utf8() {
            return Err(Error::malformed(
                path,
                Location {
                    row: Some(row),
                    line,
                    row_group: None,
                    column: Some(header[col].clone()),
                },
                "the value is not valid UTF-8 (the file must be UTF-8 encoded)",
            ));
        }
        for (j, (&i, b)) in idx.iter().zip(self.builders.iter_mut()).enumerate() {
            let field = rec.field(i);
            // Every field was validated as UTF-8 above.
            let text = || std::str::from_utf8(field).unwrap_or_default();
            let parsed = match b {
                Builder::Text(b) => {
                    b.append_value(text());
                    continue;
                }
                Builder::Number(b) => {
                    // Most cells are plain decimals: parse the bytes without building a str.
                    let trimmed = field.trim_ascii();
                    let parsed = if kinds[j] == Kind::Flag {
                        parse_flag(text())
                    } else if trimmed.is_empty() {
                        Ok(None)
                    } else if let Some(v) = parse_plain_decimal(trimmed) {
                        Ok(Some(v))
                    } else {
                        parse_number(text())
                    };
                    match parsed {
                        Ok(v) => {
                            b.append_option(v);
                            continue;
                        }
                        Err(()) => {
                            b.append_null();
                            kinds[j]
                        }
                    }
                }
                Builder::Time(b) => match parse_time_bytes(field) {
                    Ok(v) => {
                        b.append_option(v);
                        continue;
                    }
                    Err(()) => {
                        b.append_null();
                        Kind::Time
                    }
                },
            };
            if opts.lenient {
                note_bad(&mut self.bad[j], row);
            } else {
                return Err(bad_value(path, row, line, &header[i], parsed, None));
            }
        }
        if opts.hash_rows {
            self.scratch.clear();
            rec.write_joined(&mut self.scratch);
            // The field lengths and count make the encoding unambiguous: `a,b` as one quoted
            // field differs from the two fields `a` and `b`.
            for i in 0..n {
                let len = rec.field(i).len() as u32;
                self.scratch.extend_from_slice(&len.to_le_bytes());
            }
            self.scratch.extend_from_slice(&(n as u32).to_le_bytes());
            self.hashes.push(xxh3_128(&self.scratch));
        }
        self.len += 1;
        Ok(())
    }

    /// The batch, unless it is empty.
    pub fn finish(self) -> Option<Batch> {
        (self.len > 0).then(|| Batch {
            first_row: self.first_row,
            len: self.len,
            cols: self.builders.into_iter().map(Builder::finish).collect(),
            row_hashes: self.hashes,
            bad: self.bad,
        })
    }
}

fn next_csv(c: &mut CsvBatches, spec: &CsvSpec<'_>, rows_done: u64) -> Result<Option<Batch>> {
    if c.done {
        return Ok(None);
    }
    let mut b = BatchBuilder::new(spec, rows_done + 1);
    while !b.is_full(spec) {
        match c.rdr.read_byte_record(&mut c.rec) {
            Ok(true) => {}
            Ok(false) => {
                c.done = true;
                break;
            }
            Err(e) => return Err(csv_error(spec.path, e)),
        }
        // The line the record starts on, not where the tokenizer began reading it.
        let line = record_line(&c.rdr, &c.rec);
        b.push(spec, &c.rec, line)?;
    }
    Ok(b.finish())
}

#[allow(clippy::too_many_arguments)]
fn next_parquet(
    p: &mut ParquetBatches,
    path: &Path,
    header: &[String],
    idx: &[usize],
    kinds: &[Kind],
    opts: ReadOptions,
    rows_done: u64,
) -> Result<Option<Batch>> {
    loop {
        if p.current.is_none() {
            let n_groups = p.meta.metadata().num_row_groups();
            if p.next_group >= n_groups {
                return Ok(None);
            }
            let g = p.next_group;
            p.next_group += 1;
            let file = p.file.try_clone().map_err(|e| Error::io(path, e))?;
            let mask = if opts.hash_rows {
                ProjectionMask::all()
            } else {
                let mut roots = idx.to_vec();
                roots.sort_unstable();
                roots.dedup();
                ProjectionMask::roots(p.meta.parquet_schema(), roots)
            };
            let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(file, p.meta.clone())
                .with_row_groups(vec![g])
                .with_projection(mask)
                .with_batch_size(opts.batch_rows)
                .build()
                .map_err(|e| {
                    Error::malformed(
                        path,
                        Location {
                            row_group: Some(g),
                            ..Location::default()
                        },
                        format!("cannot be decoded: {e}"),
                    )
                })?;
            p.current = Some((g, reader));
        }
        let Some((g, reader)) = p.current.as_mut() else {
            continue;
        };
        let g = *g;
        match reader.next() {
            None => {
                p.current = None;
            }
            Some(Err(e)) => {
                return Err(Error::malformed(
                    path,
                    Location {
                        row_group: Some(g),
                        ..Location::default()
                    },
                    format!("cannot be decoded: {e}"),
                ));
            }
            Some(Ok(rb)) if rb.num_rows() == 0 => {}
            Some(Ok(rb)) => {
                return convert_parquet_batch(rb, path, header, idx, kinds, opts, rows_done, g)
                    .map(Some);
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn convert_parquet_batch(
    rb: RecordBatch,
    path: &Path,
    header: &[String],
    idx: &[usize],
    kinds: &[Kind],
    opts: ReadOptions,
    rows_done: u64,
    group: usize,
) -> Result<Batch> {
    let len = rb.num_rows();
    let first_row = rows_done + 1;
    let loc = |column: &str| Location {
        row: None,
        line: None,
        row_group: Some(group),
        column: Some(column.to_owned()),
    };
    let cast = |a: &ArrayRef, to: &DataType, column: &str| {
        arrow_cast::cast(a, to).map_err(|e| {
            Error::malformed(
                path,
                loc(column),
                format!("cannot be converted to {to}: {e}"),
            )
        })
    };
    let mut cols = Vec::with_capacity(idx.len());
    let mut bad = vec![BadValues::default(); idx.len()];
    for (j, (&i, &kind)) in idx.iter().zip(kinds).enumerate() {
        let name = &header[i];
        let a = rb
            .column_by_name(name)
            .ok_or_else(|| Error::malformed(path, loc(name), "column absent from the batch"))?;
        let col = match kind {
            Kind::Number | Kind::Flag => {
                Col::Number(cast(a, &DataType::Float64, name)?.as_primitive().clone())
            }
            Kind::Text => Col::Text(cast(a, &DataType::Utf8, name)?.as_string::<i32>().clone()),
            Kind::Time => match a.data_type() {
                DataType::Timestamp(_, _) | DataType::Date32 | DataType::Date64 => {
                    Col::Time(micros(a, path, loc(name))?)
                }
                _ => {
                    let s = cast(a, &DataType::Utf8, name)?;
                    let s = s.as_string::<i32>();
                    let mut b = Int64Builder::with_capacity(len);
                    for r in 0..len {
                        if s.is_null(r) {
                            b.append_null();
                            continue;
                        }
                        match parse_time(s.value(r)) {
                            Ok(v) => b.append_option(v),
                            Err(()) if opts.lenient => {
                                note_bad(&mut bad[j], first_row + r as u64);
                                b.append_null();
                            }
                            Err(()) => {
                                return Err(bad_value(
                                    path,
                                    first_row + r as u64,
                                    None,
                                    name,
                                    Kind::Time,
                                    Some(group),
                                ));
                            }
                        }
                    }
                    Col::Time(b.finish())
                }
            },
        };
        cols.push(col);
    }
    let mut row_hashes = Vec::new();
    if opts.hash_rows {
        let texts: Vec<ArrayRef> = rb
            .schema()
            .fields()
            .iter()
            .zip(rb.columns())
            .map(|(f, a)| match a.data_type() {
                // Timestamps with a named zone cannot be rendered without a zone database;
                // their instant is what identifies the value anyway.
                DataType::Timestamp(_, _) | DataType::Date32 | DataType::Date64 => {
                    let m: ArrayRef = Arc::new(micros(a, path, loc(f.name()))?);
                    cast(&m, &DataType::Utf8, f.name())
                }
                _ => cast(a, &DataType::Utf8, f.name()),
            })
            .collect::<Result<_>>()?;
        let texts: Vec<&StringArray> = texts.iter().map(|a| a.as_string::<i32>()).collect();
        let mut scratch = Vec::new();
        row_hashes.reserve(len);
        for r in 0..len {
            scratch.clear();
            for t in &texts {
                if t.is_null(r) {
                    scratch.extend_from_slice(&u32::MAX.to_le_bytes());
                } else {
                    let v = t.value(r).as_bytes();
                    scratch.extend_from_slice(&(v.len() as u32).to_le_bytes());
                    scratch.extend_from_slice(v);
                }
            }
            row_hashes.push(xxh3_128(&scratch));
        }
    }
    Ok(Batch {
        first_row,
        len,
        cols,
        row_hashes,
        bad,
    })
}

/// Decodes `batches` and runs `consume` on each batch, in file order, on this thread, while
/// other threads decode: a CSV file in chunks on every core ([`chunked`]), Parquet on one
/// reader thread. At most a few batches are in flight, which bounds memory.
pub(crate) fn pipeline<F>(batches: Batches, consume: F) -> Result<()>
where
    F: FnMut(Batch) -> Result<()>,
{
    match &batches.inner {
        Inner::Csv(_) if batches.rows_done == 0 => {
            let workers = std::thread::available_parallelism().map_or(1, |n| n.get().min(8));
            chunked::decode(batches, workers, chunked::CHUNK_BYTES, consume)
        }
        _ => sequential(batches, consume),
    }
}

/// Decodes on one reader thread and consumes on this one.
fn sequential<F>(batches: Batches, mut consume: F) -> Result<()>
where
    F: FnMut(Batch) -> Result<()>,
{
    let (tx, rx) = std::sync::mpsc::sync_channel::<Result<Batch>>(2);
    std::thread::scope(|s| {
        s.spawn(move || {
            for b in batches {
                let stop = b.is_err();
                if tx.send(b).is_err() || stop {
                    break;
                }
            }
        });
        // Dropping the receiver on an early return unblocks and ends the reader thread.
        for b in rx {
            consume(b?)?;
        }
        Ok(())
    })
}

/// A timestamp or date column as microseconds since the epoch (the zone, if any, only
/// affects display: Arrow stores instants in UTC).
fn micros(a: &ArrayRef, path: &Path, loc: Location) -> Result<Int64Array> {
    let per_unit = match a.data_type() {
        DataType::Timestamp(TimeUnit::Second, _) => 1_000_000,
        DataType::Timestamp(TimeUnit::Millisecond, _) | DataType::Date64 => 1_000,
        DataType::Timestamp(TimeUnit::Microsecond, _) => 1,
        DataType::Timestamp(TimeUnit::Nanosecond, _) => -1_000,
        DataType::Date32 => 86_400_000_000,
        other => {
            return Err(Error::malformed(
                path,
                loc,
                format!("stored as {other}, which is not a time"),
            ));
        }
    };
    let raw = arrow_cast::cast(a, &DataType::Int64).map_err(|e| {
        Error::malformed(path, loc.clone(), format!("cannot be read as a time: {e}"))
    })?;
    let raw = raw.as_primitive::<Int64Type>();
    Ok(if per_unit > 0 {
        raw.unary(|v: i64| v.saturating_mul(per_unit))
    } else {
        raw.unary(|v: i64| v.div_euclid(-per_unit))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_seconds_fast_path_agrees_with_the_timestamp_parser() {
        let mut rng = crate::stats::SplitMix::new(7);
        let mut cases: Vec<String> = [
            "2024-02-29T23:59:59Z",
            "2023-02-29T00:00:00Z",
            "2100-02-29T00:00:00Z",
            "2000-02-29T12:00:00Z",
            "2024-04-31T00:00:00Z",
            "2024-12-31T23:59:60Z",
            "2024-12-31T24:00:00Z",
            "2024-12-31T23:60:00Z",
            "2024-00-10T00:00:00Z",
            "2024-13-10T00:00:00Z",
            "2024-01-00T00:00:00Z",
            "0000-01-01T00:00:00Z",
            "1969-12-31T23:59:59Z",
            "2024-01-01t00:00:00Z",
            "2024-01-01T00:00:00z",
            "2024-01-01 00:00:00Z",
            "2024-01-01T00:00:00",
            "2024-01-01T00:00Z",
            "2024-1-01T00:00:00Z",
            "+024-01-01T00:00:00Z",
            "2024-01-01T0a:00:00Z",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for _ in 0..100_000 {
            cases.push(format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
                rng.below(10_000),
                rng.below(14),
                rng.below(33),
                rng.below(25),
                rng.below(61),
                rng.below(62)
            ));
        }
        let mut fast = 0;
        for s in &cases {
            let want = Timestamp::parse(s).ok().map(|t| t.as_micros());
            if let Some(got) = parse_utc_seconds(s.as_bytes()) {
                fast += 1;
                assert_eq!(Some(got), want, "{s}");
            } else if s.len() == 20 && s.as_bytes()[10] == b'T' && s.ends_with('Z') {
                assert_eq!(want, None, "{s} is a time the fast path refused");
            }
            assert_eq!(
                parse_time_bytes(s.as_bytes()),
                want.map(Some).ok_or(()),
                "{s}"
            );
        }
        assert!(fast > 10_000, "the fast path took only {fast} cases");
    }

    #[test]
    fn plain_decimal_fast_path_agrees_with_the_standard_parser() {
        let mut rng = crate::stats::SplitMix::new(42);
        let mut cases: Vec<String> = [
            "0",
            "-0",
            "1.",
            ".5",
            "+3.25",
            "37.2",
            "0.1",
            "0.3",
            "123456789012345",
            "9.99999999999999",
            "-0.000000000000001",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for _ in 0..100_000 {
            let digits = 1 + rng.below(9) as u32;
            let int = rng.below(10u64.pow(digits));
            let dec = rng.below(7) as usize;
            let frac = rng.below(10u64.pow(dec as u32));
            let sign = if rng.below(4) == 0 { "-" } else { "" };
            cases.push(if dec == 0 {
                format!("{sign}{int}")
            } else {
                format!("{sign}{int}.{frac:0dec$}")
            });
        }
        for s in &cases {
            let want: f64 = s.parse().unwrap_or(f64::NAN);
            let got = parse_plain_decimal(s.as_bytes());
            assert_eq!(got.map(f64::to_bits), Some(want.to_bits()), "{s}");
        }
        for s in [
            "",
            "-",
            ".",
            "1e5",
            "1.2.3",
            "12a",
            "1234567890123456",
            "0.00000000000000000000001",
        ] {
            assert_eq!(parse_plain_decimal(s.as_bytes()), None, "{s}");
        }
        assert_eq!(parse_number(" 1e3 "), Ok(Some(1000.0)));
        assert_eq!(parse_number("NA"), Ok(None));
        assert_eq!(parse_number("abc"), Err(()));
    }
}
