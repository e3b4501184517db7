//! Parallel CSV decoding. The data after the header is cut into chunks that start and end at
//! record boundaries; worker threads take chunks in file order, decode each into batches on
//! their own, and this thread puts the results back in file order, turns chunk-relative row
//! and line numbers into the file's, and consumes them.
//!
//! Memory stays bounded: a chunk is taken only while fewer than `window` chunks are taken and
//! not yet consumed, so at most `window` chunks exist at once (raw, decoding, or decoded and
//! waiting for their turn). No thread ever waits while holding something another needs: a
//! worker waits for the consumer to make room (a condition variable it is woken on, holding
//! nothing), the consumer waits for the chunk it needs next (which a worker is cutting or
//! decoding, or is free to take, since every chunk before it was consumed), results never
//! wait for room in their channel (it holds a whole window), and when the consumer stops,
//! early or not, the workers are told to stop and their sends fail instead of blocking.
//!
//! Where to cut: in a chunk without a quote character every line break ends a record, so the
//! cut is after the last one. A chunk with a quote (where a line break may sit inside a field)
//! is tokenized to find where its last record starts. Workers decode quote-free chunks with a
//! plain splitter and the others with the same tokenizer as the sequential reader; both give
//! the same fields, hashes, row and line numbers (the tests compare them).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::sync::mpsc::sync_channel;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

use super::{Batch, BatchBuilder, Batches, CsvSpec, Fields, Inner};
use crate::error::{Error, Result};

/// Bytes of CSV text decoded as one unit of parallel work (about 17,000 rows of 40 columns).
pub(crate) const CHUNK_BYTES: usize = 4 << 20;

/// A chunk's batches, with row numbers counted from 1 at the chunk's first record.
struct Decoded {
    batches: Vec<Batch>,
    rows: u64,
    /// `\n` bytes in the chunk: how far the next chunk's line numbers move.
    newlines: u64,
}

/// The file being cut. Chunks are numbered in the order they are cut, under this lock.
struct Source {
    file: File,
    /// Bytes read past the last cut: the start of the next chunk.
    carry: Vec<u8>,
    eof: bool,
    /// The number of the next chunk.
    next: u64,
}

/// How many chunks may be taken before the consumer is done with them.
struct Window {
    /// Chunks taken (or being cut) and not yet consumed.
    outstanding: u64,
    /// The consumer has stopped: no more chunks are taken.
    stop: bool,
}

struct Shared<'a> {
    source: Mutex<Source>,
    window: Mutex<Window>,
    /// Signalled when a place in the window frees up or the consumer stops.
    room: Condvar,
    size: u64,
    chunk_bytes: usize,
    spec: CsvSpec<'a>,
}

/// A panicking thread fails the whole decode (the scope re-raises it); the state behind a
/// lock is never left half-updated, so a poisoned lock is still usable.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared<'_> {
    /// The next chunk and its number, once the window has room; `None` when the file is
    /// exhausted or the consumer has stopped.
    fn take(&self) -> Option<(u64, Result<Vec<u8>>)> {
        {
            let mut w = lock(&self.window);
            while !w.stop && w.outstanding >= self.size {
                w = self.room.wait(w).unwrap_or_else(PoisonError::into_inner);
            }
            if w.stop {
                return None;
            }
            w.outstanding += 1;
        }
        // Cutting reads the file: under its own lock, so that the consumer never waits on it.
        let got = {
            let mut s = lock(&self.source);
            let k = s.next;
            match s.cut(self.chunk_bytes) {
                Ok(Some(chunk)) => {
                    s.next += 1;
                    Some((k, Ok(chunk)))
                }
                Ok(None) => None,
                Err(e) => {
                    s.next += 1;
                    s.eof = true;
                    s.carry.clear();
                    Some((k, Err(Error::io(self.spec.path, e))))
                }
            }
        };
        if got.is_none() {
            self.release();
        }
        got
    }

    /// A place in the window frees up: a chunk was consumed, or none was left to take.
    fn release(&self) {
        lock(&self.window).outstanding -= 1;
        self.room.notify_all();
    }

    fn stop(&self) {
        lock(&self.window).stop = true;
        self.room.notify_all();
    }
}

/// Tells the workers to stop however the consumer leaves (done, failed or panicking).
struct StopOnDrop<'s, 'a>(&'s Shared<'a>);

impl Drop for StopOnDrop<'_, '_> {
    fn drop(&mut self) {
        self.0.stop();
    }
}

impl Source {
    /// Reads on until the data holds at least `want` bytes or the file ends.
    fn fill(&mut self, buf: &mut Vec<u8>, want: usize) -> std::io::Result<()> {
        while buf.len() < want && !self.eof {
            let have = buf.len();
            buf.resize(want, 0);
            match self.file.read(&mut buf[have..]) {
                Ok(0) => {
                    buf.truncate(have);
                    self.eof = true;
                }
                Ok(n) => buf.truncate(have + n),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => buf.truncate(have),
                Err(e) => {
                    buf.truncate(have);
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// The next chunk: at least `chunk_bytes` (unless the file ends first), ending at a
    /// record boundary. `None` when nothing is left.
    fn cut(&mut self, chunk_bytes: usize) -> std::io::Result<Option<Vec<u8>>> {
        if self.eof && self.carry.is_empty() {
            return Ok(None);
        }
        let mut buf = std::mem::take(&mut self.carry);
        let mut want = chunk_bytes.max(1);
        loop {
            self.fill(&mut buf, want)?;
            if self.eof {
                return Ok((!buf.is_empty()).then_some(buf));
            }
            match record_cut(&buf) {
                Some(cut) => {
                    self.carry = buf.split_off(cut);
                    return Ok(Some(buf));
                }
                // Not one whole record yet: read on.
                None => want = buf.len() * 2,
            }
        }
    }
}

/// Where the records of `buf` can be cut so that the first part holds at least one whole
/// record and the rest starts a record; `buf` starts at a record boundary and is not the end
/// of the file.
fn record_cut(buf: &[u8]) -> Option<usize> {
    if memchr::memchr(b'"', buf).is_none() {
        // No quoted field: every `\n` or `\r` ends a record or a blank line, and the cut goes
        // after the last one. A `\r\n` is never split: the tokenizer consumes it whole with
        // the record it ends, so a chunk starting with its `\n` would take that line break for
        // a blank line and place the chunk's first record one line short. A `\r` that ends
        // `buf` may be followed by its `\n`: the cut goes before the line it ends.
        let mut end = buf.len();
        loop {
            let i = memchr::memrchr2(b'\n', b'\r', &buf[..end])?;
            if buf[i] == b'\r' && i + 1 == buf.len() {
                end = i;
                continue;
            }
            return Some(i + 1);
        }
    }
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(buf);
    let mut rec = csv::ByteRecord::new();
    // The last record may be cut short by the end of `buf`: the cut is where it starts.
    let mut last_start = 0u64;
    while let Ok(true) = rdr.read_byte_record(&mut rec) {
        if let Some(p) = rec.position() {
            last_start = p.byte();
        }
    }
    usize::try_from(last_start).ok().filter(|&cut| cut > 0)
}

/// A record of a quote-free chunk: `line[start..]` split at the `ends` of its fields.
struct Split<'c> {
    buf: &'c [u8],
    start: usize,
    ends: &'c [usize],
}

impl Split<'_> {
    fn bytes(&self) -> &[u8] {
        &self.buf[self.start..self.ends[self.ends.len() - 1]]
    }
}

impl Fields for Split<'_> {
    fn count(&self) -> usize {
        self.ends.len()
    }

    fn field(&self, i: usize) -> &[u8] {
        let from = if i == 0 {
            self.start
        } else {
            self.ends[i - 1] + 1
        };
        &self.buf[from..self.ends[i]]
    }

    fn check_utf8(&self) -> Result<(), usize> {
        // Commas never sit inside a UTF-8 sequence: the fields are valid when the line is.
        let bytes = self.bytes();
        if bytes.is_ascii() || std::str::from_utf8(bytes).is_ok() {
            return Ok(());
        }
        Err((0..self.count())
            .position(|i| std::str::from_utf8(self.field(i)).is_err())
            .unwrap_or(0))
    }

    fn write_joined(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.bytes());
    }
}

/// Decodes one chunk; rows count from 1 at its first record and lines from 1 at its first
/// byte.
fn decode_chunk(chunk: &[u8], spec: &CsvSpec<'_>) -> Result<Decoded> {
    if memchr::memchr2(b'"', b'\r', chunk).is_none() {
        decode_plain(chunk, spec)
    } else {
        decode_tokenized(chunk, spec)
    }
}

/// A chunk without quotes or carriage returns: records are lines, fields are split at commas,
/// empty lines are skipped, as the tokenizer does.
fn decode_plain(chunk: &[u8], spec: &CsvSpec<'_>) -> Result<Decoded> {
    let mut batches = Vec::new();
    let mut rows = 0u64;
    let mut b = BatchBuilder::new(spec, 1);
    let mut ends: Vec<usize> = Vec::with_capacity(spec.header.len() + 1);
    let mut start = 0usize;
    let mut newlines = 0u64;
    // The line the next record starts on.
    let mut read_line = 1u64;
    let mut record = |start: usize, ends: &[usize], line: u64, b: &mut BatchBuilder| {
        b.push(
            spec,
            &Split {
                buf: chunk,
                start,
                ends,
            },
            Some(line),
        )?;
        if b.is_full(spec) {
            let first = rows + b.len() as u64 + 1;
            let full = std::mem::replace(b, BatchBuilder::new(spec, first));
            rows += full.len() as u64;
            batches.extend(full.finish());
        }
        Ok::<(), Error>(())
    };
    for pos in memchr::memchr2_iter(b',', b'\n', chunk) {
        if chunk[pos] == b',' {
            ends.push(pos);
            continue;
        }
        newlines += 1;
        if pos == start {
            // An empty line: skipped; the next record starts on a later line.
            start = pos + 1;
            read_line = newlines + 1;
            continue;
        }
        ends.push(pos);
        record(start, &ends, read_line, &mut b)?;
        ends.clear();
        start = pos + 1;
        read_line = newlines + 1;
    }
    if start < chunk.len() {
        ends.push(chunk.len());
        record(start, &ends, read_line, &mut b)?;
    }
    rows += b.len() as u64;
    batches.extend(b.finish());
    Ok(Decoded {
        batches,
        rows,
        newlines,
    })
}

/// Any other chunk: the sequential reader's tokenizer over the chunk's bytes.
fn decode_tokenized(chunk: &[u8], spec: &CsvSpec<'_>) -> Result<Decoded> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(chunk);
    let mut rec = csv::ByteRecord::new();
    let mut batches = Vec::new();
    let mut rows = 0u64;
    let mut b = BatchBuilder::new(spec, 1);
    let mut cursor = (0usize, 1u64);
    loop {
        match rdr.read_byte_record(&mut rec) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return Err(super::csv_error(spec.path, e)),
        }
        // The line the record starts on, not where the tokenizer began reading it.
        let line = rec
            .position()
            .map(|p| super::lines::line_in(chunk, p.byte() as usize, &mut cursor));
        b.push(spec, &rec, line)?;
        if b.is_full(spec) {
            let first = rows + b.len() as u64 + 1;
            let full = std::mem::replace(&mut b, BatchBuilder::new(spec, first));
            rows += full.len() as u64;
            batches.extend(full.finish());
        }
    }
    rows += b.len() as u64;
    batches.extend(b.finish());
    // Every `\n`, inside quoted fields and empty lines included, counted from the bytes: the
    // tokenizer's own count leaves out the `\n` of a `\r\n` that ends the chunk.
    let newlines = memchr::memchr_iter(b'\n', chunk).count() as u64;
    Ok(Decoded {
        batches,
        rows,
        newlines,
    })
}

/// Moves a chunk-relative error location to the file's: `rows` records precede the chunk,
/// which starts on line `line`.
fn shift(e: Error, rows: u64, line: u64) -> Error {
    match e {
        Error::Malformed(mut m) => {
            if let Some(r) = &mut m.location.row {
                *r += rows;
            }
            if let Some(l) = &mut m.location.line {
                *l += line - 1;
            }
            Error::Malformed(m)
        }
        other => other,
    }
}

/// Decodes a CSV source on `workers` threads, `chunk_bytes` at a time, and runs `consume` on
/// each batch in file order on this thread.
pub(crate) fn decode<F>(
    batches: Batches,
    workers: usize,
    chunk_bytes: usize,
    mut consume: F,
) -> Result<()>
where
    F: FnMut(Batch) -> Result<()>,
{
    let Batches {
        path,
        header,
        idx,
        kinds,
        opts,
        rows_done,
        inner,
    } = batches;
    let Inner::Csv(c) = inner else {
        return Err(Error::Invalid(
            "parallel decoding needs a CSV source".into(),
        ));
    };
    // Where the header ended: the tokenizer has read ahead, but its position is exact.
    let start = c.rdr.position().clone();
    drop(c);
    let mut file = File::open(&path).map_err(|e| Error::io(&path, e))?;
    file.seek(SeekFrom::Start(start.byte()))
        .map_err(|e| Error::io(&path, e))?;
    let workers = workers.max(1);
    let window = 2 * workers as u64 + 2;
    let shared = Shared {
        source: Mutex::new(Source {
            file,
            carry: Vec::new(),
            eof: false,
            next: 0,
        }),
        window: Mutex::new(Window {
            outstanding: 0,
            stop: false,
        }),
        room: Condvar::new(),
        size: window,
        chunk_bytes,
        spec: CsvSpec {
            path: &path,
            header: &header,
            idx: &idx,
            kinds: &kinds,
            opts,
        },
    };
    std::thread::scope(|s| {
        // Room for every chunk the window admits: a worker's send never waits.
        let (tx, rx) = sync_channel::<(u64, Result<Decoded>)>(window as usize);
        for _ in 0..workers {
            let tx = tx.clone();
            let shared = &shared;
            s.spawn(move || {
                while let Some((k, chunk)) = shared.take() {
                    let out = chunk.and_then(|c| decode_chunk(&c, &shared.spec));
                    if tx.send((k, out)).is_err() {
                        return;
                    }
                }
            });
        }
        drop(tx);
        let _stop = StopOnDrop(&shared);
        let mut waiting: BTreeMap<u64, Result<Decoded>> = BTreeMap::new();
        let mut next = 0u64;
        let mut rows = rows_done;
        let mut line = start.line();
        loop {
            let out = match waiting.remove(&next) {
                Some(out) => out,
                None => match rx.recv() {
                    Ok((k, out)) if k == next => out,
                    Ok((k, out)) => {
                        waiting.insert(k, out);
                        continue;
                    }
                    // Every worker has finished: every chunk has arrived.
                    Err(_) => break,
                },
            };
            let d = out.map_err(|e| shift(e, rows, line))?;
            for mut b in d.batches {
                b.first_row += rows;
                for bad in &mut b.bad {
                    for r in &mut bad.examples {
                        *r += rows;
                    }
                }
                consume(b)?;
            }
            rows += d.rows;
            line += d.newlines;
            next += 1;
            shared.release();
        }
        if waiting.is_empty() {
            Ok(())
        } else {
            Err(Error::Invalid(
                "a decoding thread stopped before its chunk was read".into(),
            ))
        }
    })
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};
    use std::time::Duration;

    use arrow_array::Array;

    use super::*;
    use crate::read::{Col, Kind, ReadOptions, Request, Table};

    /// Runs `f` on its own thread and fails the test if it has not returned within a minute:
    /// a deadlock must fail, not hang.
    fn within<T: Send + 'static>(what: String, f: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(f());
        });
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(v) => v,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                panic!("{what}: no result within 60 s (deadlock)")
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => panic!("{what}: panicked"),
        }
    }

    /// What a reader delivered, independent of where batches were cut: every row (number,
    /// values, hash) in order, and per column the bad-value count and first rows as the checks
    /// merge them.
    #[derive(Debug, PartialEq)]
    struct Flat {
        rows: Vec<String>,
        bad: Vec<(u64, Vec<u64>)>,
    }

    fn flatten(batches: &[Batch], columns: usize) -> Flat {
        let mut rows = Vec::new();
        let mut bad = vec![(0u64, Vec::new()); columns];
        let mut next_row = 1;
        for b in batches {
            assert_eq!(b.first_row, next_row, "batches out of order");
            next_row += b.len as u64;
            for i in 0..b.len {
                let mut row = format!("{}:", b.first_row + i as u64);
                for c in &b.cols {
                    let v = match c {
                        Col::Number(a) => (!a.is_null(i)).then(|| a.value(i).to_string()),
                        Col::Text(a) => (!a.is_null(i)).then(|| a.value(i).to_owned()),
                        Col::Time(a) => (!a.is_null(i)).then(|| a.value(i).to_string()),
                    };
                    row.push_str(&format!("{v:?}|"));
                }
                if let Some(h) = b.row_hashes.get(i) {
                    row.push_str(&format!("{h:032x}"));
                }
                rows.push(row);
            }
            for (acc, x) in bad.iter_mut().zip(&b.bad) {
                acc.0 += x.count;
                for &r in &x.examples {
                    if acc.1.len() < 5 {
                        acc.1.push(r);
                    }
                }
            }
        }
        Flat { rows, bad }
    }

    fn requests() -> Vec<Request> {
        [
            ("id", Kind::Text),
            ("x", Kind::Number),
            ("t", Kind::Time),
            ("note", Kind::Text),
            ("flag", Kind::Flag),
        ]
        .into_iter()
        .map(|(name, kind)| Request {
            name: name.into(),
            kind,
        })
        .collect()
    }

    fn sequential(path: &Path, opts: ReadOptions) -> Result<Flat> {
        let n = requests().len();
        let batches: Vec<Batch> = Table::open(path)?
            .batches(&requests(), opts)?
            .collect::<Result<_>>()?;
        Ok(flatten(&batches, n))
    }

    fn parallel(
        path: &Path,
        opts: ReadOptions,
        workers: usize,
        chunk_bytes: usize,
    ) -> Result<Flat> {
        let n = requests().len();
        let mut got = Vec::new();
        let batches = Table::open(path)?.batches(&requests(), opts)?;
        decode(batches, workers, chunk_bytes, |b| {
            got.push(b);
            Ok(())
        })?;
        Ok(flatten(&got, n))
    }

    const CHUNKS: [usize; 11] = [1, 2, 3, 5, 8, 13, 64, 257, 1000, 4096, 1 << 20];

    /// Parallel decoding at every chunk size and thread count gives what the sequential reader
    /// gives: the same rows, hashes and bad values when lenient, the same first error (row,
    /// line and column) when strict.
    /// The physical line (1-based) on which `needle` first starts in `text`.
    fn line_of(text: &str, needle: &str) -> u64 {
        let at = text
            .find(needle)
            .unwrap_or_else(|| panic!("{needle} not in the text"));
        1 + text[..at].matches('\n').count() as u64
    }

    fn assert_equivalent(path: PathBuf, rows: usize, strict_error: Option<(u64, u64)>) {
        for batch_rows in [1, 7, 50] {
            let lenient = ReadOptions {
                lenient: true,
                hash_rows: true,
                batch_rows,
            };
            let strict = ReadOptions {
                lenient: false,
                ..lenient
            };
            let seq = sequential(&path, lenient).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(seq.rows.len(), rows);
            let seq_strict = sequential(&path, strict).map(|f| f.rows.len());
            match strict_error {
                Some((row, line)) => {
                    let e = seq_strict.as_ref().err().and_then(|e| e.location());
                    assert_eq!(e.and_then(|l| l.row), Some(row), "{seq_strict:?}");
                    assert_eq!(e.and_then(|l| l.line), Some(line), "{seq_strict:?}");
                }
                None => assert!(seq_strict.is_ok(), "{seq_strict:?}"),
            }
            for workers in [1, 2, 3] {
                for chunk in CHUNKS {
                    let what = format!(
                        "{} with {workers} worker(s), {chunk}-byte chunks, {batch_rows}-row batches",
                        path.display()
                    );
                    let p = path.clone();
                    let (par, par_strict) = within(what.clone(), move || {
                        (
                            parallel(&p, lenient, workers, chunk),
                            parallel(&p, strict, workers, chunk).map(|f| f.rows.len()),
                        )
                    });
                    let par = par.unwrap_or_else(|e| panic!("{what}: {e}"));
                    assert_eq!(par, seq, "{what}");
                    match (&seq_strict, &par_strict) {
                        (Ok(a), Ok(b)) => assert_eq!(a, b, "{what}"),
                        (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "{what}"),
                        _ => panic!("{what}: {seq_strict:?} but {par_strict:?}"),
                    }
                }
            }
        }
    }

    fn write(dir: &Path, name: &str, text: &[u8]) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap_or_else(|e| panic!("{e}"));
        p
    }

    #[test]
    fn quoted_fields_with_line_breaks_decode_in_parallel_as_sequentially() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let mut text = String::from("id,x,t,note,flag\r\n");
        for r in 0..300 {
            let note = match r % 11 {
                0 => "\"two\nlines\"".to_owned(),
                1 => "\"a \"\"quote\"\", and a comma\"".to_owned(),
                2 => String::new(),
                3 => "\"crlf\r\ninside, and \"\"more\"\"\"".to_owned(),
                4 => "caf\u{e9} \u{2713}".to_owned(),
                _ => format!("n{r}"),
            };
            // Row 18 (1-based) has a bad number, and so do a few after it.
            let x = if r % 50 == 17 {
                "abc".to_owned()
            } else {
                format!("{r}.5")
            };
            let t = match r % 5 {
                0 => format!("2025-01-{:02}", 1 + r % 28),
                1 => format!("2025-02-{:02}T08:30:00+01:00", 1 + r % 28),
                _ => format!("2025-01-{:02}T08:00:{:02}Z", 1 + r % 28, r % 60),
            };
            // Row 18's record follows a `\r\n`.
            let end = if r % 3 == 1 { "\r\n" } else { "\n" };
            text.push_str(&format!("p{r},{x},{t},{note},{}{end}", r % 2));
            if r % 40 == 5 {
                text.push('\n');
            }
        }
        let path = write(dir.path(), "quoted.csv", text.as_bytes());
        // Row 18 sits on line 24, after line breaks inside quotes, `\r\n`s and a blank line.
        let line = line_of(&text, "p17,abc");
        assert_eq!(line, 24);
        assert_equivalent(path, 300, Some((18, line)));
    }

    #[test]
    fn plain_lines_decode_in_parallel_as_sequentially() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let mut text = String::from("id,x,t,note,flag\n");
        for r in 0..257 {
            let x = match r % 37 {
                9 => "1e3".to_owned(),
                10 => "NA".to_owned(),
                11 => String::new(),
                12 => " 4.25 ".to_owned(),
                // Row 31 (1-based) is the first bad value: a time that is not one.
                30 => "7".to_owned(),
                _ => format!("-{r}.25"),
            };
            let t = match r % 37 {
                30 => "2025-02-30T00:00:00Z".to_owned(),
                31 => "NaT".to_owned(),
                _ => format!("2024-12-{:02}T{:02}:15:00Z", 1 + r % 31, r % 24),
            };
            let flag = if r % 29 == 3 { "yes" } else { "true" };
            text.push_str(&format!("p{r},{x},{t},\u{e9}t\u{e9} {r},{flag}\n"));
            if r % 17 == 0 {
                text.push_str("\n\n");
            }
        }
        // The last record has no line break.
        text.push_str("last,1,2024-01-01T00:00:00Z,end,0");
        let path = write(dir.path(), "plain.csv", text.as_bytes());
        // Row 4 starts on line 7: the two blank lines after row 1 count.
        let line = line_of(&text, "\np3,") + 1;
        assert_eq!(line, 7);
        assert_equivalent(path, 258, Some((4, line)));
    }

    #[test]
    fn ragged_rows_and_invalid_utf8_fail_at_the_same_row_and_line() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let mut base = String::from("id,x,t,note,flag\n");
        for r in 0..120 {
            base.push_str(&format!("p{r},{r},2024-01-01T00:00:00Z,n,0\n"));
            if r == 30 {
                base.push('\n');
            }
        }
        let ragged = base.replace("p77,77,2024-01-01T00:00:00Z,n,0\n", "p77,77,n\n");
        let long = base.replace("p77,77,2024-01-01T00:00:00Z,n,0\n", "p77,77,x,y,z,w\n");
        let mut bad_utf8 = base.clone().into_bytes();
        let at = base.find("p77,77,").unwrap_or(0) + 1;
        bad_utf8[at] = 0xFF;
        let quoted = base.replace("p77,77,2024-01-01T00:00:00Z,n,0\n", "p77,77,\"a\nb\"\n");
        for (name, bytes) in [
            ("ragged.csv", ragged.into_bytes()),
            ("long.csv", long.into_bytes()),
            ("utf8.csv", bad_utf8),
            ("quoted.csv", quoted.into_bytes()),
        ] {
            let path = write(dir.path(), name, &bytes);
            let opts = ReadOptions {
                lenient: true,
                hash_rows: true,
                batch_rows: 16,
            };
            let Err(seq) = sequential(&path, opts) else {
                panic!("{name} must fail")
            };
            assert_eq!(
                seq.location().and_then(|l| l.row),
                Some(78),
                "{name}: {seq}"
            );
            for workers in [1, 2, 3] {
                for chunk in CHUNKS {
                    let p = path.clone();
                    let what = format!("{name} with {workers} worker(s), {chunk}-byte chunks");
                    let par = within(what.clone(), move || parallel(&p, opts, workers, chunk));
                    let Err(par) = par else {
                        panic!("{what} must fail")
                    };
                    assert_eq!(par.to_string(), seq.to_string(), "{what}");
                }
            }
        }
    }

    #[test]
    fn a_consumer_that_stops_early_ends_the_workers() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let mut text = String::from("id,x,t,note,flag\n");
        for r in 0..2000 {
            text.push_str(&format!("p{r},{r},2024-01-01T00:00:00Z,n,1\n"));
        }
        let path = write(dir.path(), "many.csv", text.as_bytes());
        for workers in [1, 2, 4] {
            for chunk in [1, 40, 4096] {
                let p = path.clone();
                let what = format!("{workers} worker(s), {chunk}-byte chunks");
                let (out, seen) = within(what.clone(), move || {
                    let mut seen = 0;
                    let batches = Table::open(&p)
                        .and_then(|t| t.batches(&requests(), ReadOptions::default()))
                        .unwrap_or_else(|e| panic!("{e}"));
                    let out = decode(batches, workers, chunk, |_| {
                        seen += 1;
                        if seen == 3 {
                            Err(Error::Invalid("enough".into()))
                        } else {
                            Ok(())
                        }
                    });
                    (out, seen)
                });
                assert!(
                    matches!(out, Err(Error::Invalid(ref m)) if m == "enough"),
                    "{what}"
                );
                assert_eq!(seen, 3, "{what}");
            }
        }
    }
}
