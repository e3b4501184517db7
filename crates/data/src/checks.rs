//! The data checks a dataset snapshot must pass before a model is trained or evaluated on it:
//! schema, missingness, ranges and units, outliers, duplicates, patient overlap, label leakage,
//! temporal consistency, labels and site variation.
//!
//! Everything is computed in one streaming pass over the file, with memory bounded by the
//! number of columns, sites and months, except three things:
//! - duplicate detection keeps a 128-bit hash and the row number of every row, and of every
//!   patient + prediction-time pair, sorted once the file is read: 48 bytes a row;
//! - robust statistics (median/MAD outliers, univariate AUROC, per-site PSI and KS) are
//!   computed on a uniform reservoir sample of [`SAMPLE_ROWS`] rows, so they are exact for
//!   files up to that size and estimates (with the sample size reported) above it;
//! - `patient_overlap` reads the patient column of the `against` snapshot: a second pass, over
//!   the other file.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::path::{Path, PathBuf};

use arrow_array::{Array, Float64Array, Int64Array, StringArray};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use vigil_domain::contract::{Feature, FeatureContract, FeatureRole, FeatureType};
use vigil_domain::units::{Unit, convert_with_molar_mass};
use vigil_domain::{DatasetManifest, Timestamp};
use xxhash_rust::xxh3::xxh3_128;

use crate::columns::parse_label;
use crate::error::{Error, Result};
use crate::read::{
    BadValues, Batch, Col, Kind, ReadOptions, Request, Table, is_missing_token, pipeline,
};
use crate::repeats::Repeats;
use crate::stats;

/// Rows kept in the uniform sample that robust statistics are computed on.
pub const SAMPLE_ROWS: usize = 100_000;
/// Share of values outside the plausible range tolerated before `range` blocks.
pub const RANGE_TOLERANCE: f64 = 0.005;
/// A single feature with an AUROC this far from 1/2 almost predicts the label alone.
pub const LEAKAGE_AUROC: f64 = 0.95;
/// Groups (sites, months) smaller than this are reported but never flagged.
pub const MIN_GROUP_ROWS: u64 = 20;
const PSI_FLAG: f64 = 0.25;
const KS_FLAG: f64 = 0.3;
const MISSING_DIFF_FLAG: f64 = 0.2;
const PREVALENCE_DIFF_FLAG: f64 = 0.1;
const EXAMPLES: usize = 5;
const OUT_OF_RANGE_KEPT: usize = 2_000;

/// What the checks need to know beyond the contract.
#[derive(Clone, Debug)]
pub struct CheckOptions {
    pub label_col: Option<String>,
    /// The label value that means "positive", when labels are not 0/1.
    pub positive_label: Option<String>,
    pub prediction_time_col: Option<String>,
    /// Defaults to `outcome_time` when the file has such a column.
    pub outcome_time_col: Option<String>,
    pub site_col: Option<String>,
    pub patient_col: Option<String>,
    pub manifest: Option<DatasetManifest>,
    /// Another snapshot (e.g. the training set when checking a test set) that must share no
    /// patient with this one.
    pub against: Option<PathBuf>,
    /// The current time: no date in the data may be later.
    pub now: Timestamp,
}

impl CheckOptions {
    pub fn new(now: Timestamp) -> CheckOptions {
        CheckOptions {
            label_col: None,
            positive_label: None,
            prediction_time_col: None,
            outcome_time_col: None,
            site_col: None,
            patient_col: None,
            manifest: None,
            against: None,
            now,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// A failure stops the snapshot from being used as evidence.
    Blocking,
    /// A failure is shown to reviewers but does not block.
    Warning,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pass,
    Fail,
    NotApplicable,
}

/// One check's result. `details` holds counts, rates and example row numbers (1-based data
/// rows, header excluded), never cell values.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Check {
    pub name: String,
    pub severity: Severity,
    pub status: Status,
    pub column: Option<String>,
    pub summary: String,
    pub details: Value,
}

impl Check {
    fn new(name: &str, severity: Severity, status: Status, summary: impl Into<String>) -> Check {
        Check {
            name: name.to_owned(),
            severity,
            status,
            column: None,
            summary: summary.into(),
            details: Value::Null,
        }
    }

    fn column(mut self, c: &str) -> Check {
        self.column = Some(c.to_owned());
        self
    }

    fn details(mut self, d: Value) -> Check {
        self.details = d;
        self
    }

    pub fn is_blocking_failure(&self) -> bool {
        self.status == Status::Fail && self.severity == Severity::Blocking
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckReport {
    pub path: String,
    pub rows: u64,
    pub columns: Vec<String>,
    /// Rows in the sample robust statistics were computed on (all rows when `rows` ≤ it).
    pub sample_rows: u64,
    /// No blocking check failed.
    pub passed: bool,
    pub checks: Vec<Check>,
}

impl CheckReport {
    /// The results of one check (several for per-column checks).
    pub fn find(&self, name: &str) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(move |c| c.name == name)
    }

    /// Checks that failed, blocking first.
    pub fn failures(&self) -> Vec<&Check> {
        let mut f: Vec<&Check> = self
            .checks
            .iter()
            .filter(|c| c.status == Status::Fail)
            .collect();
        f.sort_by_key(|c| c.severity != Severity::Blocking);
        f
    }
}

/// Hash keys are already uniform 128-bit hashes: fold them instead of hashing again.
#[derive(Default)]
struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

/// A 128-bit hash as two words: 8-byte aligned, so that a table entry with a row number takes
/// 24 bytes rather than the 32 of a (16-byte aligned) `u128` key.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Key128(u64, u64);

impl From<u128> for Key128 {
    fn from(v: u128) -> Key128 {
        Key128(v as u64, (v >> 64) as u64)
    }
}

impl std::hash::Hash for Key128 {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.0 ^ self.1);
    }
}

type FastMap<V> = HashMap<Key128, V, BuildHasherDefault<Prehashed>>;
type FastSet = HashSet<Key128, BuildHasherDefault<Prehashed>>;

/// About how many rows a file holds, to size the duplicate tables once (growing a table
/// briefly needs the old and the new one): Parquet records it; for CSV, the file's size over
/// the length of its first lines. Never more than 2^27.
fn estimated_rows(path: &Path, recorded: Option<u64>) -> usize {
    const MAX: usize = 1 << 27;
    if let Some(n) = recorded {
        return usize::try_from(n).map_or(MAX, |n| n.min(MAX));
    }
    let Ok(f) = std::fs::File::open(path) else {
        return 0;
    };
    let size = f.metadata().map_or(0, |m| m.len());
    let mut head = Vec::with_capacity(1 << 20);
    if std::io::Read::read_to_end(&mut std::io::Read::take(f, 1 << 20), &mut head).is_err() {
        return 0;
    }
    let lines = memchr::memchr_iter(b'\n', &head).count();
    if lines < 2 || head.is_empty() {
        return 0;
    }
    let rows = size as f64 / head.len() as f64 * lines as f64 * 1.02;
    (rows as usize).min(MAX)
}

fn note(b: &mut BadValues, row: u64) {
    b.count += 1;
    if b.examples.len() < EXAMPLES {
        b.examples.push(row);
    }
}

fn rate(n: u64, d: u64) -> f64 {
    if d == 0 { 0.0 } else { n as f64 / d as f64 }
}

fn pct(x: f64) -> String {
    format!("{:.2}%", x * 100.0)
}

struct NumAcc {
    fi: usize,
    req: usize,
    missing: u64,
    present: u64,
    missing_site: Vec<u64>,
    missing_month: Vec<u64>,
    below: u64,
    above: u64,
    out_examples: Vec<u64>,
    out_values: Vec<f64>,
    non_integer: BadValues,
    min: f64,
    max: f64,
}

struct CatAcc {
    fi: usize,
    req: usize,
    missing: u64,
    missing_site: Vec<u64>,
    missing_month: Vec<u64>,
    unknown: BadValues,
}

struct TimeCol {
    name: String,
    req: usize,
    future: BadValues,
    /// For `<feature>_time`: the feature, and rows where it was recorded after prediction.
    feature: Option<String>,
    after_prediction: BadValues,
}

#[derive(Default)]
struct Groups {
    site_slots: HashMap<String, u32>,
    site_names: Vec<String>,
    site_rows: Vec<u64>,
    month_slots: HashMap<i64, u32>,
    months: Vec<i64>,
    month_rows: Vec<u64>,
}

struct LabelAcc {
    req: usize,
    n: u64,
    pos: u64,
    invalid: BadValues,
    site_n: Vec<u64>,
    site_pos: Vec<u64>,
    month_n: Vec<u64>,
    month_pos: Vec<u64>,
}

struct Sample {
    seen: u64,
    rng: stats::SplitMix,
    rows: Vec<u64>,
    label: Vec<i8>,
    site: Vec<u32>,
    values: Vec<Vec<f64>>,
}

struct Acc<'a> {
    contract: &'a FeatureContract,
    opts: &'a CheckOptions,
    rows: u64,
    nums: Vec<NumAcc>,
    cats: Vec<CatAcc>,
    label: Option<LabelAcc>,
    site_req: Option<usize>,
    patient_req: Option<usize>,
    pred_req: Option<usize>,
    outcome_req: Option<usize>,
    times: Vec<TimeCol>,
    groups: Groups,
    bad: Vec<BadValues>,
    pred_missing: BadValues,
    before_window: BadValues,
    after_window: BadValues,
    outcome_before: BadValues,
    /// Every row's hash, then (once read) the rows repeating an earlier one.
    row_keys: Repeats,
    dup_rows: u64,
    dup_examples: Vec<(u64, u64)>,
    /// Every patient + prediction time pair's hash, then the rows repeating an earlier pair.
    pair_keys: Repeats,
    pair_dups: BadValues,
    patients: Option<FastMap<u64>>,
    sample: Sample,
}

fn month_key(us: i64) -> i64 {
    let (y, m, _) = Timestamp::from_micros(us).date();
    y * 12 + i64::from(m) - 1
}

fn month_name(k: i64) -> String {
    format!("{:04}-{:02}", k.div_euclid(12), k.rem_euclid(12) + 1)
}

fn text(b: &Batch, i: usize) -> Option<&StringArray> {
    match &b.cols[i] {
        Col::Text(a) => Some(a),
        _ => None,
    }
}

fn number(b: &Batch, i: usize) -> Option<&Float64Array> {
    match &b.cols[i] {
        Col::Number(a) => Some(a),
        _ => None,
    }
}

fn time(b: &Batch, i: usize) -> Option<&Int64Array> {
    match &b.cols[i] {
        Col::Time(a) => Some(a),
        _ => None,
    }
}

fn time_at(a: &Int64Array, i: usize) -> Option<i64> {
    (!a.is_null(i)).then(|| a.value(i))
}

impl Acc<'_> {
    fn feature(&self, fi: usize) -> &Feature {
        &self.contract.features[fi]
    }

    fn observe(&mut self, b: Batch) -> Result<()> {
        let len = b.len;
        let first = b.first_row;
        for (acc, bad) in self.bad.iter_mut().zip(&b.bad) {
            acc.count += bad.count;
            for &r in &bad.examples {
                if acc.examples.len() < EXAMPLES {
                    acc.examples.push(r);
                }
            }
        }

        // Site and month slot of every row, computed once and shared by all columns.
        let mut site_of = vec![0u32; len];
        if let Some(a) = self.site_req.and_then(|r| text(&b, r)) {
            for (i, slot) in site_of.iter_mut().enumerate() {
                let raw = a.value(i).trim_ascii();
                let name = if is_missing_token(raw) {
                    "(missing)"
                } else {
                    raw
                };
                // A handful of sites is the common case: a scan beats hashing every row.
                let known = if self.groups.site_names.len() <= 16 {
                    self.groups
                        .site_names
                        .iter()
                        .position(|n| n == name)
                        .map(|i| i as u32)
                } else {
                    self.groups.site_slots.get(name).copied()
                };
                *slot = match known {
                    Some(s) => s,
                    None => {
                        let s = self.groups.site_names.len() as u32;
                        self.groups.site_slots.insert(name.to_owned(), s);
                        self.groups.site_names.push(name.to_owned());
                        s
                    }
                };
            }
        } else if self.groups.site_names.is_empty() {
            self.groups.site_names.push("(all)".into());
        }
        let pred = self.pred_req.and_then(|r| time(&b, r)).cloned();
        let mut month_of = vec![u32::MAX; len];
        if let Some(a) = &pred {
            let mut last: Option<(i64, u32)> = None;
            for (i, slot) in month_of.iter_mut().enumerate() {
                let Some(us) = time_at(a, i) else { continue };
                let day = us.div_euclid(86_400_000_000);
                if let Some((d, s)) = last
                    && d == day
                {
                    *slot = s;
                    continue;
                }
                let k = month_key(us);
                let s = match self.groups.month_slots.get(&k) {
                    Some(&s) => s,
                    None => {
                        let s = self.groups.months.len() as u32;
                        self.groups.month_slots.insert(k, s);
                        self.groups.months.push(k);
                        s
                    }
                };
                last = Some((day, s));
                *slot = s;
            }
        }
        let n_sites = self.groups.site_names.len();
        let n_months = self.groups.months.len();
        self.groups.site_rows.resize(n_sites, 0);
        self.groups.month_rows.resize(n_months, 0);
        for &s in &site_of {
            self.groups.site_rows[s as usize] += 1;
        }
        for &m in &month_of {
            if m != u32::MAX {
                self.groups.month_rows[m as usize] += 1;
            }
        }

        // Labels: -1 for missing or invalid.
        let mut lab = vec![-1i8; len];
        if let Some(l) = &mut self.label {
            l.site_n.resize(n_sites, 0);
            l.site_pos.resize(n_sites, 0);
            l.month_n.resize(n_months, 0);
            l.month_pos.resize(n_months, 0);
            if let Some(a) = text(&b, l.req) {
                let positive = self.opts.positive_label.as_deref();
                for (i, out) in lab.iter_mut().enumerate() {
                    match parse_label(a.value(i), positive) {
                        Some(v) => {
                            *out = v as i8;
                            let p = u64::from(v);
                            l.n += 1;
                            l.pos += p;
                            l.site_n[site_of[i] as usize] += 1;
                            l.site_pos[site_of[i] as usize] += p;
                            if month_of[i] != u32::MAX {
                                l.month_n[month_of[i] as usize] += 1;
                                l.month_pos[month_of[i] as usize] += p;
                            }
                        }
                        None => note(&mut l.invalid, first + i as u64),
                    }
                }
            }
        }

        for acc in &mut self.nums {
            acc.missing_site.resize(n_sites, 0);
            acc.missing_month.resize(n_months, 0);
            let f = &self.contract.features[acc.fi];
            let (lo, hi) = match f.range {
                Some([lo, hi]) => (lo, hi),
                None => (f64::NEG_INFINITY, f64::INFINITY),
            };
            let is_int = f.ty == FeatureType::Int;
            let Some(a) = number(&b, acc.req) else {
                continue;
            };
            let vals = a.values();
            for i in 0..len {
                let v = vals[i];
                if a.is_null(i) || v.is_nan() {
                    acc.missing += 1;
                    acc.missing_site[site_of[i] as usize] += 1;
                    if month_of[i] != u32::MAX {
                        acc.missing_month[month_of[i] as usize] += 1;
                    }
                    continue;
                }
                acc.present += 1;
                acc.min = acc.min.min(v);
                acc.max = acc.max.max(v);
                if v < lo || v > hi {
                    if v < lo {
                        acc.below += 1;
                    } else {
                        acc.above += 1;
                    }
                    if acc.out_examples.len() < EXAMPLES {
                        acc.out_examples.push(first + i as u64);
                    }
                    if acc.out_values.len() < OUT_OF_RANGE_KEPT {
                        acc.out_values.push(v);
                    }
                }
                if is_int && v.fract() != 0.0 {
                    note(&mut acc.non_integer, first + i as u64);
                }
            }
        }

        for acc in &mut self.cats {
            acc.missing_site.resize(n_sites, 0);
            acc.missing_month.resize(n_months, 0);
            let levels = &self.contract.features[acc.fi].levels;
            let Some(a) = text(&b, acc.req) else {
                continue;
            };
            for i in 0..len {
                let v = a.value(i).trim_ascii();
                if a.is_null(i) || is_missing_token(v) {
                    acc.missing += 1;
                    acc.missing_site[site_of[i] as usize] += 1;
                    if month_of[i] != u32::MAX {
                        acc.missing_month[month_of[i] as usize] += 1;
                    }
                } else if !levels.iter().any(|l| l == v) {
                    note(&mut acc.unknown, first + i as u64);
                }
            }
        }

        // Times: the window, the future, outcome order, feature recording times.
        let now = self.opts.now.as_micros();
        let window = self
            .opts
            .manifest
            .as_ref()
            .and_then(|m| m.time_window.as_ref())
            .map(|w| (w.start.as_micros(), w.end.as_micros()));
        if let Some(a) = &pred {
            for i in 0..len {
                let row = first + i as u64;
                match time_at(a, i) {
                    None => note(&mut self.pred_missing, row),
                    Some(t) => {
                        if let Some((s, e)) = window {
                            if t < s {
                                note(&mut self.before_window, row);
                            } else if t > e {
                                note(&mut self.after_window, row);
                            }
                        }
                    }
                }
            }
            if let Some(o) = self.outcome_req.and_then(|r| time(&b, r)) {
                for i in 0..len {
                    if let (Some(p), Some(t)) = (time_at(a, i), time_at(o, i))
                        && t < p
                    {
                        note(&mut self.outcome_before, first + i as u64);
                    }
                }
            }
        }
        for tc in &mut self.times {
            let Some(a) = time(&b, tc.req) else { continue };
            for i in 0..len {
                let Some(t) = time_at(a, i) else { continue };
                let row = first + i as u64;
                if t > now {
                    note(&mut tc.future, row);
                }
                if tc.feature.is_some()
                    && let Some(p) = pred.as_ref().and_then(|p| time_at(p, i))
                    && t > p
                {
                    note(&mut tc.after_prediction, row);
                }
            }
        }

        // Duplicates.
        for (i, &h) in b.row_hashes.iter().enumerate() {
            self.row_keys.push(h, first + i as u64);
        }
        if let Some(p) = self.patient_req.and_then(|r| text(&b, r)) {
            let mut key = Vec::new();
            for i in 0..len {
                let id = p.value(i).trim_ascii();
                if is_missing_token(id) {
                    continue;
                }
                let h = Key128::from(xxh3_128(id.as_bytes()));
                if let Some(set) = &mut self.patients {
                    set.entry(h).or_insert(first + i as u64);
                }
                if let Some(t) = pred.as_ref().and_then(|a| time_at(a, i)) {
                    key.clear();
                    key.extend_from_slice(id.as_bytes());
                    key.push(0);
                    key.extend_from_slice(&t.to_le_bytes());
                    self.pair_keys.push(xxh3_128(&key), first + i as u64);
                }
            }
        }

        // The uniform row sample (reservoir sampling, Algorithm R).
        let cols: Vec<Option<&Float64Array>> =
            self.nums.iter().map(|n| number(&b, n.req)).collect();
        for i in 0..len {
            let s = &mut self.sample;
            let slot = if (s.seen as usize) < SAMPLE_ROWS {
                s.rows.push(0);
                s.label.push(0);
                s.site.push(0);
                for v in &mut s.values {
                    v.push(f64::NAN);
                }
                Some(s.rows.len() - 1)
            } else {
                let j = s.rng.below(s.seen + 1) as usize;
                (j < SAMPLE_ROWS).then_some(j)
            };
            s.seen += 1;
            let Some(j) = slot else { continue };
            s.rows[j] = first + i as u64;
            s.label[j] = lab[i];
            s.site[j] = site_of[i];
            for (v, a) in s.values.iter_mut().zip(&cols) {
                v[j] = match a {
                    Some(a) if !a.is_null(i) => a.value(i),
                    _ => f64::NAN,
                };
            }
        }
        self.rows += len as u64;
        Ok(())
    }
}

/// Runs every check on the dataset at `path` against `contract`.
pub fn check_dataset(
    path: impl AsRef<Path>,
    contract: &FeatureContract,
    opts: &CheckOptions,
) -> Result<CheckReport> {
    let path = path.as_ref();
    let table = Table::open(path)?;
    let header: Vec<String> = table.header().to_vec();
    let has = |c: &str| header.iter().any(|h| h == c);
    let expected_rows = estimated_rows(path, table.recorded_rows());
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());

    let mut requests: Vec<Request> = Vec::new();
    let mut add = |name: &str, kind: Kind| -> usize {
        if let Some(i) = requests.iter().position(|r| r.name == name) {
            return i;
        }
        requests.push(Request {
            name: name.to_owned(),
            kind,
        });
        requests.len() - 1
    };
    let mut nums = Vec::new();
    let mut cats = Vec::new();
    for (fi, f) in contract.features.iter().enumerate() {
        if !has(&f.name) {
            continue;
        }
        match f.ty {
            FeatureType::Float | FeatureType::Int | FeatureType::Bool => {
                let kind = if f.ty == FeatureType::Bool {
                    Kind::Flag
                } else {
                    Kind::Number
                };
                nums.push(NumAcc {
                    fi,
                    req: add(&f.name, kind),
                    missing: 0,
                    present: 0,
                    missing_site: Vec::new(),
                    missing_month: Vec::new(),
                    below: 0,
                    above: 0,
                    out_examples: Vec::new(),
                    out_values: Vec::new(),
                    non_integer: BadValues::default(),
                    min: f64::INFINITY,
                    max: f64::NEG_INFINITY,
                });
            }
            FeatureType::Category => cats.push(CatAcc {
                fi,
                req: add(&f.name, Kind::Text),
                missing: 0,
                missing_site: Vec::new(),
                missing_month: Vec::new(),
                unknown: BadValues::default(),
            }),
        }
    }
    fn present<'o>(c: &'o Option<String>, header: &[String]) -> Option<&'o str> {
        c.as_deref().filter(|c| header.iter().any(|h| h == c))
    }
    let label_req = present(&opts.label_col, &header).map(|c| add(c, Kind::Text));
    let site_req = present(&opts.site_col, &header).map(|c| add(c, Kind::Text));
    let patient_req = present(&opts.patient_col, &header).map(|c| add(c, Kind::Text));
    let pred_req = present(&opts.prediction_time_col, &header).map(|c| add(c, Kind::Time));
    let outcome_col = opts
        .outcome_time_col
        .clone()
        .or_else(|| has("outcome_time").then(|| "outcome_time".to_owned()));
    let outcome_req = present(&outcome_col, &header).map(|c| add(c, Kind::Time));
    let mut times = Vec::new();
    for (name, req) in [
        (opts.prediction_time_col.as_deref(), pred_req),
        (outcome_col.as_deref(), outcome_req),
    ] {
        if let (Some(name), Some(req)) = (name, req) {
            times.push(TimeCol {
                name: name.to_owned(),
                req,
                future: BadValues::default(),
                feature: None,
                after_prediction: BadValues::default(),
            });
        }
    }
    for f in &contract.features {
        let c = format!("{}_time", f.name);
        if has(&c) && !times.iter().any(|t| t.name == c) {
            times.push(TimeCol {
                req: add(&c, Kind::Time),
                name: c,
                future: BadValues::default(),
                feature: Some(f.name.clone()),
                after_prediction: BadValues::default(),
            });
        }
    }

    let n_num = nums.len();
    let mut acc = Acc {
        contract,
        opts,
        rows: 0,
        nums,
        cats,
        label: label_req.map(|req| LabelAcc {
            req,
            n: 0,
            pos: 0,
            invalid: BadValues::default(),
            site_n: Vec::new(),
            site_pos: Vec::new(),
            month_n: Vec::new(),
            month_pos: Vec::new(),
        }),
        site_req,
        patient_req,
        pred_req,
        outcome_req,
        times,
        groups: Groups::default(),
        bad: vec![BadValues::default(); requests.len()],
        pred_missing: BadValues::default(),
        before_window: BadValues::default(),
        after_window: BadValues::default(),
        outcome_before: BadValues::default(),
        row_keys: Repeats::new(expected_rows, threads),
        dup_rows: 0,
        dup_examples: Vec::new(),
        pair_keys: Repeats::new(
            if patient_req.is_some() && pred_req.is_some() {
                expected_rows
            } else {
                0
            },
            threads,
        ),
        pair_dups: BadValues::default(),
        patients: opts.against.as_ref().map(|_| FastMap::default()),
        sample: Sample {
            seen: 0,
            rng: stats::SplitMix::new(0x5649_4749_4c00_0001),
            rows: Vec::new(),
            label: Vec::new(),
            site: Vec::new(),
            values: vec![Vec::new(); n_num],
        },
    };
    let batches = table.batches(
        &requests,
        ReadOptions {
            lenient: true,
            hash_rows: true,
            ..ReadOptions::default()
        },
    )?;
    pipeline(batches, |b| acc.observe(b))?;
    let rows = std::mem::replace(&mut acc.row_keys, Repeats::new(0, 1)).finish(EXAMPLES);
    (acc.dup_rows, acc.dup_examples) = (rows.repeats, rows.examples);
    let pairs = std::mem::replace(&mut acc.pair_keys, Repeats::new(0, 1)).finish(EXAMPLES);
    acc.pair_dups = BadValues {
        count: pairs.repeats,
        examples: pairs.examples.into_iter().map(|(row, _)| row).collect(),
    };

    // Sorted once: outliers and site variation both read the pooled distributions.
    let pooled: Vec<Vec<f64>> = acc
        .sample
        .values
        .iter()
        .map(|v| sorted_present(v))
        .collect();
    let mut checks = Vec::new();
    checks.push(schema_check(&acc, &header, &requests, &outcome_col));
    missingness_checks(&acc, &mut checks);
    range_checks(&acc, &pooled, &mut checks);
    outlier_checks(&acc, &pooled, &mut checks);
    checks.push(duplicates_check(&acc));
    checks.push(patient_overlap_check(&acc, path)?);
    checks.push(leakage_check(&acc));
    checks.push(temporal_check(&acc, &outcome_col));
    checks.push(label_check(&acc));
    checks.push(site_variation_check(&acc, &pooled));
    let passed = !checks.iter().any(Check::is_blocking_failure);
    Ok(CheckReport {
        path: path.display().to_string(),
        rows: acc.rows,
        columns: header,
        sample_rows: acc.sample.rows.len() as u64,
        passed,
        checks,
    })
}

fn schema_check(
    acc: &Acc<'_>,
    header: &[String],
    requests: &[Request],
    outcome_col: &Option<String>,
) -> Check {
    let c = acc.contract;
    let o = acc.opts;
    let has = |n: &str| header.iter().any(|h| h == n);
    let missing_required: Vec<&str> = c
        .features
        .iter()
        .filter(|f| f.role == FeatureRole::Required && !has(&f.name))
        .map(|f| f.name.as_str())
        .collect();
    let missing_optional: Vec<&str> = c
        .features
        .iter()
        .filter(|f| f.role == FeatureRole::Optional && !has(&f.name))
        .map(|f| f.name.as_str())
        .collect();
    let prohibited: Vec<&str> = c
        .features
        .iter()
        .filter(|f| f.role == FeatureRole::Prohibited && has(&f.name))
        .map(|f| f.name.as_str())
        .collect();
    let mut known: HashSet<String> = HashSet::new();
    for f in &c.features {
        known.insert(f.name.clone());
        known.insert(format!("{}_time", f.name));
    }
    let named = [
        ("label_col", &o.label_col),
        ("prediction_time_col", &o.prediction_time_col),
        ("site_col", &o.site_col),
        ("patient_col", &o.patient_col),
        ("outcome_time_col", &o.outcome_time_col),
    ];
    let mut absent_named = Vec::new();
    for (opt, col) in named {
        if let Some(col) = col {
            known.insert(col.clone());
            if !has(col) {
                absent_named.push(json!({"option": opt, "column": col}));
            }
        }
    }
    if let Some(col) = outcome_col {
        known.insert(col.clone());
    }
    let unknown: Vec<&str> = header
        .iter()
        .filter(|h| !known.contains(*h))
        .map(String::as_str)
        .collect();
    let mut type_errors = Vec::new();
    for (r, bad) in requests.iter().zip(&acc.bad) {
        if bad.count > 0 {
            type_errors.push(json!({
                "column": r.name,
                "count": bad.count,
                "expected": match r.kind {
                    Kind::Number => "number",
                    Kind::Flag => "boolean",
                    Kind::Time => "time",
                    Kind::Text => "text",
                },
                "example_rows": bad.examples,
            }));
        }
    }
    for n in &acc.nums {
        if n.non_integer.count > 0 {
            type_errors.push(json!({
                "column": acc.feature(n.fi).name,
                "count": n.non_integer.count,
                "expected": "integer",
                "example_rows": n.non_integer.examples,
            }));
        }
    }
    let unknown_blocks = !c.allow_unknown_columns && !unknown.is_empty();
    let mut problems = Vec::new();
    if !missing_required.is_empty() {
        problems.push(format!(
            "required feature(s) absent: {}",
            missing_required.join(", ")
        ));
    }
    if !prohibited.is_empty() {
        problems.push(format!(
            "prohibited feature(s) present: {}",
            prohibited.join(", ")
        ));
    }
    if unknown_blocks {
        problems.push(format!(
            "column(s) the contract does not know: {}",
            unknown.join(", ")
        ));
    }
    if !absent_named.is_empty() {
        let names: Vec<String> = absent_named
            .iter()
            .filter_map(|v| v["column"].as_str().map(str::to_owned))
            .collect();
        problems.push(format!("named column(s) absent: {}", names.join(", ")));
    }
    if !type_errors.is_empty() {
        let cols: Vec<String> = type_errors
            .iter()
            .map(|v| {
                format!(
                    "{} ({} value(s) not {})",
                    v["column"].as_str().unwrap_or_default(),
                    v["count"],
                    v["expected"].as_str().unwrap_or_default()
                )
            })
            .collect();
        problems.push(format!("values of the wrong type: {}", cols.join(", ")));
    }
    let details = json!({
        "missing_required": missing_required,
        "missing_optional": missing_optional,
        "prohibited_present": prohibited,
        "unknown_columns": unknown,
        "unknown_columns_allowed": c.allow_unknown_columns,
        "absent_named_columns": absent_named,
        "type_errors": type_errors,
    });
    if problems.is_empty() {
        let mut s = format!(
            "{} column(s); every required feature present, every value parses",
            header.len()
        );
        if !missing_optional.is_empty() {
            s.push_str(&format!(
                "; optional feature(s) absent: {}",
                missing_optional.join(", ")
            ));
        }
        if !unknown.is_empty() {
            s.push_str(&format!(
                "; unknown column(s) allowed: {}",
                unknown.join(", ")
            ));
        }
        Check::new("schema", Severity::Blocking, Status::Pass, s).details(details)
    } else {
        Check::new(
            "schema",
            Severity::Blocking,
            Status::Fail,
            problems.join("; "),
        )
        .details(details)
    }
}

fn group_rates(names: &[String], rows: &[u64], missing: &[u64], key: &str) -> Vec<Value> {
    names
        .iter()
        .zip(rows)
        .zip(missing.iter().chain(std::iter::repeat(&0)))
        .map(|((n, &r), &m)| json!({key: n, "rows": r, "missing": m, "rate": rate(m, r)}))
        .collect()
}

fn missingness_checks(acc: &Acc<'_>, out: &mut Vec<Check>) {
    let g = &acc.groups;
    let months: Vec<String> = g.months.iter().map(|&k| month_name(k)).collect();
    let by_site = acc.site_req.is_some();
    let cols = acc
        .nums
        .iter()
        .map(|n| (n.fi, n.missing, &n.missing_site, &n.missing_month))
        .chain(
            acc.cats
                .iter()
                .map(|c| (c.fi, c.missing, &c.missing_site, &c.missing_month)),
        );
    let mut cols: Vec<_> = cols.collect();
    cols.sort_by_key(|c| c.0);
    for (fi, missing, site, month) in cols {
        let f = acc.feature(fi);
        let limit = f.max_missing_rate.unwrap_or(acc.contract.max_missing_rate);
        let r = rate(missing, acc.rows);
        let mut worst: Vec<(String, f64, u64)> = Vec::new();
        if by_site {
            for ((n, &rows), &m) in g.site_names.iter().zip(&g.site_rows).zip(site) {
                if rows >= MIN_GROUP_ROWS && rate(m, rows) > limit {
                    worst.push((format!("site {n}"), rate(m, rows), rows));
                }
            }
        }
        for ((n, &rows), &m) in months.iter().zip(&g.month_rows).zip(month) {
            if rows >= MIN_GROUP_ROWS && rate(m, rows) > limit {
                worst.push((format!("period {n}"), rate(m, rows), rows));
            }
        }
        worst.sort_by(|a, b| b.1.total_cmp(&a.1));
        let details = json!({
            "missing": missing,
            "rows": acc.rows,
            "rate": r,
            "limit": limit,
            "by_site": if by_site { json!(group_rates(&g.site_names, &g.site_rows, site, "site")) } else { Value::Null },
            "by_period": group_rates(&months, &g.month_rows, month, "period"),
        });
        let check = if r > limit {
            Check::new(
                "missingness",
                Severity::Blocking,
                Status::Fail,
                format!(
                    "{} missing ({missing} of {} rows), above the limit of {}",
                    pct(r),
                    acc.rows,
                    pct(limit)
                ),
            )
        } else if !worst.is_empty() {
            let groups: Vec<String> = worst
                .iter()
                .take(3)
                .map(|(n, r, rows)| format!("{n}: {} of {rows} rows", pct(*r)))
                .collect();
            Check::new(
                "missingness",
                Severity::Warning,
                Status::Fail,
                format!(
                    "{} missing overall, but above the limit of {} in {}",
                    pct(r),
                    pct(limit),
                    groups.join("; ")
                ),
            )
        } else {
            Check::new(
                "missingness",
                Severity::Blocking,
                Status::Pass,
                format!("{} missing (limit {})", pct(r), pct(limit)),
            )
        };
        out.push(check.column(&f.name).details(details));
    }
}

/// UCUM units clinical extracts commonly use by mistake for one another.
const CANDIDATE_UNITS: &[&str] = &[
    "Cel", "[degF]", "K", "mg/dL", "mg/L", "g/dL", "g/L", "ug/mL", "ug/dL", "umol/L", "mmol/L",
    "mol/L", "kg", "g", "[lb_av]", "cm", "m", "mm", "[in_i]", "[ft_i]", "kPa", "mm[Hg]", "/min",
    "/s", "/h", "%", "1", "10*9/L", "10*3/uL", "/uL", "mL", "L", "h", "min", "s", "d", "a",
];

/// The unit the out-of-range values fit best, when at least 90% of them land inside the
/// plausible range once converted from it, and inside the bulk (1st to 99th percentile) of the
/// in-range values when there are any: a stray 1000 is not "a percentage" just because 10 is
/// plausible.
fn guess_unit(f: &Feature, values: &[f64], pooled: &[f64]) -> Option<(String, usize)> {
    let [mut lo, mut hi] = f.range?;
    let bulk: Vec<f64> = pooled
        .iter()
        .copied()
        .filter(|v| (lo..=hi).contains(v))
        .collect();
    if bulk.len() >= 20 {
        lo = stats::quantile_sorted(&bulk, 0.01).unwrap_or(lo);
        hi = stats::quantile_sorted(&bulk, 0.99).unwrap_or(hi);
    }
    let to = f.parsed_unit.as_ref()?;
    if values.len() < 3 {
        return None;
    }
    let molar = f.fhir.as_ref().and_then(|m| m.molar_mass);
    let mut best: Option<(String, usize)> = None;
    for code in CANDIDATE_UNITS {
        let Ok(from) = Unit::parse(code) else {
            continue;
        };
        let conv = |v: f64| match molar {
            Some(mm) => convert_with_molar_mass(v, &from, to, mm).ok(),
            None => from.convert(v, to).ok(),
        };
        // The same unit under another name converts nothing.
        match (conv(1.0), conv(100.0)) {
            (Some(a), Some(b)) if (a - 1.0).abs() > 1e-9 || (b - 100.0).abs() > 1e-9 => {}
            _ => continue,
        }
        let fit = values
            .iter()
            .filter(|&&v| conv(v).is_some_and(|c| (lo..=hi).contains(&c)))
            .count();
        if fit * 10 >= values.len() * 9 && best.as_ref().is_none_or(|b| fit > b.1) {
            best = Some(((*code).to_owned(), fit));
        }
    }
    best
}

fn range_checks(acc: &Acc<'_>, pooled: &[Vec<f64>], out: &mut Vec<Check>) {
    for (k, n) in acc.nums.iter().enumerate() {
        let f = acc.feature(n.fi);
        let Some([lo, hi]) = f.range else { continue };
        // A plain number (UCUM "1") reads better without its unit.
        let unit = f.unit.as_deref().filter(|u| *u != "1").unwrap_or("");
        let bad = n.below + n.above;
        let r = rate(bad, n.present);
        let guess = guess_unit(f, &n.out_values, &pooled[k]);
        let mut details = json!({
            "range": [lo, hi],
            "unit": unit,
            "present": n.present,
            "below": n.below,
            "above": n.above,
            "rate": r,
            "tolerance": RANGE_TOLERANCE,
            "example_rows": n.out_examples,
            "min": if n.present > 0 { json!(n.min) } else { Value::Null },
            "max": if n.present > 0 { json!(n.max) } else { Value::Null },
        });
        let check = if bad == 0 {
            Check::new(
                "range",
                Severity::Blocking,
                Status::Pass,
                format!("every value inside [{lo}, {hi}] {unit}"),
            )
        } else {
            let mut s = format!(
                "{bad} of {} values ({}) outside [{lo}, {hi}] {unit} ({} below, {} above)",
                n.present,
                pct(r),
                n.below,
                n.above
            );
            if let Some((code, fit)) = &guess {
                s.push_str(&format!(
                    "; they look like values in {code}, not {}: {fit} of the {} examined fit the range once converted",
                    f.unit.as_deref().unwrap_or("1"),
                    n.out_values.len()
                ));
                details["likely_unit"] = json!(code);
            }
            let sev = if r > RANGE_TOLERANCE {
                Severity::Blocking
            } else {
                s.push_str(&format!(" (within the {} tolerance)", pct(RANGE_TOLERANCE)));
                Severity::Warning
            };
            Check::new("range", sev, Status::Fail, s)
        };
        out.push(check.column(&f.name).details(details));
    }
    for c in &acc.cats {
        let f = acc.feature(c.fi);
        let present = acc.rows - c.missing;
        let r = rate(c.unknown.count, present);
        let details = json!({
            "levels": f.levels,
            "unknown": c.unknown.count,
            "rate": r,
            "example_rows": c.unknown.examples,
        });
        let check = if c.unknown.count == 0 {
            Check::new(
                "range",
                Severity::Blocking,
                Status::Pass,
                "every value is one of the contract's levels",
            )
        } else {
            let sev = if r > RANGE_TOLERANCE {
                Severity::Blocking
            } else {
                Severity::Warning
            };
            Check::new(
                "range",
                sev,
                Status::Fail,
                format!(
                    "{} of {present} values ({}) are not one of the levels {}",
                    c.unknown.count,
                    pct(r),
                    f.levels.join(", ")
                ),
            )
        };
        out.push(check.column(&f.name).details(details));
    }
}

fn sorted_present(v: &[f64]) -> Vec<f64> {
    let mut s: Vec<f64> = v.iter().copied().filter(|x| !x.is_nan()).collect();
    s.sort_unstable_by(f64::total_cmp);
    s
}

fn sample_note(acc: &Acc<'_>) -> String {
    if acc.sample.rows.len() as u64 >= acc.rows {
        "exact: every row examined".to_owned()
    } else {
        format!(
            "estimated from a uniform sample of {} of {} rows",
            acc.sample.rows.len(),
            acc.rows
        )
    }
}

fn outlier_checks(acc: &Acc<'_>, pooled: &[Vec<f64>], out: &mut Vec<Check>) {
    for (k, n) in acc.nums.iter().enumerate() {
        let f = acc.feature(n.fi);
        if f.ty == FeatureType::Bool {
            continue;
        }
        let vals = &acc.sample.values[k];
        let sorted = &pooled[k];
        if sorted.len() < 20 {
            out.push(
                Check::new(
                    "outliers",
                    Severity::Warning,
                    Status::NotApplicable,
                    format!("{} value(s): too few for robust statistics", sorted.len()),
                )
                .column(&f.name),
            );
            continue;
        }
        let Some((med, mad)) = stats::median_mad(sorted) else {
            continue;
        };
        let (lo, hi, rule) = if mad > 0.0 {
            let k = 5.0 * 1.4826 * mad;
            (med - k, med + k, "|x - median| > 5 x 1.4826 x MAD")
        } else {
            let q1 = stats::quantile_sorted(sorted, 0.25).unwrap_or(med);
            let q3 = stats::quantile_sorted(sorted, 0.75).unwrap_or(med);
            let iqr = q3 - q1;
            if iqr <= 0.0 {
                out.push(
                    Check::new(
                        "outliers",
                        Severity::Warning,
                        Status::NotApplicable,
                        "the values are (almost) constant: MAD and IQR are 0",
                    )
                    .column(&f.name)
                    .details(json!({"median": med})),
                );
                continue;
            }
            (
                q1 - 3.0 * iqr,
                q3 + 3.0 * iqr,
                "outside [Q1 - 3 IQR, Q3 + 3 IQR] (MAD is 0)",
            )
        };
        let mut rows: Vec<u64> = vals
            .iter()
            .zip(&acc.sample.rows)
            .filter(|(v, _)| !v.is_nan() && (**v < lo || **v > hi))
            .map(|(_, r)| *r)
            .collect();
        rows.sort_unstable();
        let in_sample = rows.len() as u64;
        let share = rate(in_sample, sorted.len() as u64);
        let estimate = (share * n.present as f64).round() as u64;
        let details = json!({
            "rule": rule,
            "median": med,
            "mad": mad,
            "bounds": [lo, hi],
            "outliers_in_sample": in_sample,
            "sample_values": sorted.len(),
            "estimated_outliers": estimate,
            "rate": share,
            "example_rows": rows.iter().take(EXAMPLES).collect::<Vec<_>>(),
            "method": sample_note(acc),
        });
        let check = if in_sample == 0 {
            Check::new(
                "outliers",
                Severity::Warning,
                Status::Pass,
                format!("no value outside [{lo:.4}, {hi:.4}] ({})", sample_note(acc)),
            )
        } else {
            Check::new(
                "outliers",
                Severity::Warning,
                Status::Fail,
                format!(
                    "{estimate} value(s) ({}) outside [{lo:.4}, {hi:.4}], {rule} ({})",
                    pct(share),
                    sample_note(acc)
                ),
            )
        };
        out.push(check.column(&f.name).details(details));
    }
}

fn duplicates_check(acc: &Acc<'_>) -> Check {
    let examples: Vec<Value> = acc
        .dup_examples
        .iter()
        .map(|(r, o)| json!({"row": r, "same_as_row": o}))
        .collect();
    let pairs_checked = acc.patient_req.is_some() && acc.pred_req.is_some();
    let details = json!({
        "duplicate_rows": acc.dup_rows,
        "examples": examples,
        "repeated_patient_time_pairs": if pairs_checked { json!(acc.pair_dups.count) } else { Value::Null },
        "repeated_pair_example_rows": acc.pair_dups.examples,
        "hash": "xxh3-128 of every row's fields",
    });
    let mut problems = Vec::new();
    if acc.dup_rows > 0 {
        let ex: Vec<String> = acc
            .dup_examples
            .iter()
            .take(3)
            .map(|(r, o)| format!("row {r} = row {o}"))
            .collect();
        problems.push(format!(
            "{} row(s) repeat an earlier row exactly ({})",
            acc.dup_rows,
            ex.join(", ")
        ));
    }
    if acc.pair_dups.count > 0 {
        problems.push(format!(
            "{} row(s) repeat a patient + prediction time pair (rows {:?})",
            acc.pair_dups.count, acc.pair_dups.examples
        ));
    }
    if problems.is_empty() {
        let s = if pairs_checked {
            "no repeated row, no repeated patient + prediction time pair"
        } else {
            "no repeated row (patient + prediction time pairs not checked: both columns needed)"
        };
        Check::new("duplicates", Severity::Warning, Status::Pass, s).details(details)
    } else {
        Check::new(
            "duplicates",
            Severity::Warning,
            Status::Fail,
            problems.join("; "),
        )
        .details(details)
    }
}

fn patient_overlap_check(acc: &Acc<'_>, path: &Path) -> Result<Check> {
    let (Some(other), Some(patients), Some(col)) = (
        acc.opts.against.as_ref(),
        acc.patients.as_ref(),
        acc.opts.patient_col.as_deref(),
    ) else {
        return Ok(Check::new(
            "patient_overlap",
            Severity::Blocking,
            Status::NotApplicable,
            "no other snapshot to compare with, or no patient column",
        ));
    };
    if acc.patient_req.is_none() {
        return Ok(Check::new(
            "patient_overlap",
            Severity::Blocking,
            Status::Fail,
            format!("the patient column `{col}` is absent, so overlap cannot be ruled out"),
        ));
    }
    if other == path {
        return Err(Error::Invalid(
            "the snapshot to compare with is the file being checked".into(),
        ));
    }
    let table = Table::open(other)?;
    if !table.header().iter().any(|h| h == col) {
        return Ok(Check::new(
            "patient_overlap",
            Severity::Blocking,
            Status::Fail,
            format!(
                "`{}` has no patient column `{col}`, so overlap cannot be ruled out",
                other.display()
            ),
        ));
    }
    let batches = table.batches(
        &[Request {
            name: col.to_owned(),
            kind: Kind::Text,
        }],
        ReadOptions::default(),
    )?;
    let mut shared = FastSet::default();
    let mut other_patients = FastSet::default();
    let mut other_rows = 0u64;
    let mut examples = Vec::new();
    for b in batches {
        let b = b?;
        let Some(a) = text(&b, 0) else { continue };
        for i in 0..b.len {
            let id = a.value(i).trim_ascii();
            if is_missing_token(id) {
                continue;
            }
            let h = Key128::from(xxh3_128(id.as_bytes()));
            other_patients.insert(h);
            if let Some(&row) = patients.get(&h) {
                other_rows += 1;
                if shared.insert(h) && examples.len() < EXAMPLES {
                    examples.push(json!({"row": row, "other_row": b.first_row + i as u64}));
                }
            }
        }
    }
    let details = json!({
        "against": other.display().to_string(),
        "patients": patients.len(),
        "other_patients": other_patients.len(),
        "shared_patients": shared.len(),
        "other_rows_of_shared_patients": other_rows,
        "examples": examples,
    });
    Ok(if shared.is_empty() {
        Check::new(
            "patient_overlap",
            Severity::Blocking,
            Status::Pass,
            format!(
                "no patient in common with `{}` ({} and {} patients)",
                other.display(),
                patients.len(),
                other_patients.len()
            ),
        )
    } else {
        Check::new(
            "patient_overlap",
            Severity::Blocking,
            Status::Fail,
            format!(
                "{} patient(s) also appear in `{}` ({} of its rows): the snapshots leak into each other",
                shared.len(),
                other.display(),
                other_rows
            ),
        )
    }
    .column(col)
    .details(details))
}

fn leakage_check(acc: &Acc<'_>) -> Check {
    let mut aurocs = Vec::new();
    let mut flagged = Vec::new();
    if acc.label.is_some() {
        for (k, n) in acc.nums.iter().enumerate() {
            let f = acc.feature(n.fi);
            let mut pairs: Vec<(f64, bool)> = acc.sample.values[k]
                .iter()
                .zip(&acc.sample.label)
                .filter(|(v, l)| !v.is_nan() && **l >= 0)
                .map(|(v, l)| (*v, *l == 1))
                .collect();
            let pos = pairs.iter().filter(|p| p.1).count();
            if pos < 5 || pairs.len() - pos < 5 {
                continue;
            }
            if let Some(a) = stats::auroc(&mut pairs) {
                aurocs.push(json!({"feature": f.name, "auroc": a, "n": pairs.len()}));
                if !(1.0 - LEAKAGE_AUROC..LEAKAGE_AUROC).contains(&a) {
                    flagged.push(format!("{} (AUROC {a:.3})", f.name));
                }
            }
        }
    }
    let after: Vec<&TimeCol> = acc
        .times
        .iter()
        .filter(|t| t.feature.is_some() && t.after_prediction.count > 0)
        .collect();
    let time_cols = acc.times.iter().filter(|t| t.feature.is_some()).count();
    let details = json!({
        "univariate_auroc": aurocs,
        "threshold": LEAKAGE_AUROC,
        "method": sample_note(acc),
        "recorded_after_prediction": after.iter().map(|t| json!({
            "feature": t.feature,
            "column": t.name,
            "rows": t.after_prediction.count,
            "example_rows": t.after_prediction.examples,
        })).collect::<Vec<_>>(),
        "feature_time_columns": time_cols,
    });
    if acc.label.is_none() && time_cols == 0 {
        return Check::new(
            "label_leakage",
            Severity::Blocking,
            Status::NotApplicable,
            "no label column and no `<feature>_time` columns",
        );
    }
    let mut problems = Vec::new();
    if !flagged.is_empty() {
        problems.push(format!(
            "feature(s) that almost predict the label on their own: {}",
            flagged.join(", ")
        ));
    }
    for t in &after {
        problems.push(format!(
            "`{}` recorded after the prediction time in {} row(s) (rows {:?})",
            t.feature.as_deref().unwrap_or_default(),
            t.after_prediction.count,
            t.after_prediction.examples
        ));
    }
    if problems.is_empty() {
        let best = aurocs
            .iter()
            .filter_map(|v| v["auroc"].as_f64())
            .map(|a| (a - 0.5).abs() + 0.5)
            .fold(f64::NAN, f64::max);
        let s = if best.is_nan() {
            format!("no feature recorded after prediction ({time_cols} time column(s))")
        } else {
            format!(
                "strongest single feature AUROC {best:.3} (or its mirror); no feature recorded after prediction ({time_cols} time column(s))"
            )
        };
        Check::new("label_leakage", Severity::Blocking, Status::Pass, s).details(details)
    } else {
        Check::new(
            "label_leakage",
            Severity::Blocking,
            Status::Fail,
            problems.join("; "),
        )
        .details(details)
    }
}

fn bad_json(b: &BadValues) -> Value {
    json!({"rows": b.count, "example_rows": b.examples})
}

fn temporal_check(acc: &Acc<'_>, outcome_col: &Option<String>) -> Check {
    if acc.times.is_empty() {
        return Check::new(
            "temporal_consistency",
            Severity::Blocking,
            Status::NotApplicable,
            "no time column",
        );
    }
    let window = acc
        .opts
        .manifest
        .as_ref()
        .and_then(|m| m.time_window.as_ref());
    let mut problems = Vec::new();
    let mut add = |b: &BadValues, what: String| {
        if b.count > 0 {
            problems.push(format!("{} row(s) {what} (rows {:?})", b.count, b.examples));
        }
    };
    if acc.pred_req.is_some() {
        add(&acc.pred_missing, "have no prediction time".into());
        if let Some(w) = window {
            add(
                &acc.before_window,
                format!("predict before the manifest's window starts ({})", w.start),
            );
            add(
                &acc.after_window,
                format!("predict after the manifest's window ends ({})", w.end),
            );
        }
        if acc.outcome_req.is_some() {
            add(
                &acc.outcome_before,
                format!(
                    "have `{}` before the prediction time",
                    outcome_col.as_deref().unwrap_or_default()
                ),
            );
        }
    }
    for t in &acc.times {
        add(
            &t.future,
            format!("have `{}` later than now ({})", t.name, acc.opts.now),
        );
    }
    let details = json!({
        "now": acc.opts.now,
        "window": window,
        "prediction_time_missing": bad_json(&acc.pred_missing),
        "before_window": bad_json(&acc.before_window),
        "after_window": bad_json(&acc.after_window),
        "outcome_before_prediction": bad_json(&acc.outcome_before),
        "future": acc.times.iter().map(|t| json!({"column": t.name, "rows": t.future.count, "example_rows": t.future.examples})).collect::<Vec<_>>(),
    });
    if problems.is_empty() {
        let mut s = String::from("no date later than now");
        if window.is_some() && acc.pred_req.is_some() {
            s.push_str("; every prediction time inside the manifest's window");
        }
        if acc.outcome_req.is_some() && acc.pred_req.is_some() {
            s.push_str("; no outcome before its prediction");
        }
        Check::new("temporal_consistency", Severity::Blocking, Status::Pass, s).details(details)
    } else {
        Check::new(
            "temporal_consistency",
            Severity::Blocking,
            Status::Fail,
            problems.join("; "),
        )
        .details(details)
    }
}

fn prevalence_groups(names: &[String], n: &[u64], pos: &[u64], key: &str) -> Vec<Value> {
    names
        .iter()
        .zip(n)
        .zip(pos)
        .map(|((name, &n), &p)| {
            json!({key: name, "labelled": n, "positives": p, "prevalence": if n > 0 { json!(rate(p, n)) } else { Value::Null }})
        })
        .collect()
}

fn label_check(acc: &Acc<'_>) -> Check {
    let Some(l) = &acc.label else {
        let s = match &acc.opts.label_col {
            Some(c) => format!("the label column `{c}` is absent (see schema)"),
            None => "no label column named".to_owned(),
        };
        return Check::new("label", Severity::Blocking, Status::NotApplicable, s);
    };
    let col = acc.opts.label_col.as_deref().unwrap_or_default();
    let months: Vec<String> = acc.groups.months.iter().map(|&k| month_name(k)).collect();
    let prevalence = rate(l.pos, l.n);
    let details = json!({
        "labelled": l.n,
        "positives": l.pos,
        "prevalence": prevalence,
        "invalid": bad_json(&l.invalid),
        "valid_values": match &acc.opts.positive_label {
            Some(p) => json!({"positive": p, "negative": "any other value"}),
            None => json!(["0", "1"]),
        },
        "by_site": if acc.site_req.is_some() { json!(prevalence_groups(&acc.groups.site_names, &l.site_n, &l.site_pos, "site")) } else { Value::Null },
        "by_period": prevalence_groups(&months, &l.month_n, &l.month_pos, "period"),
    });
    let mut problems = Vec::new();
    if l.invalid.count > 0 {
        problems.push(format!(
            "{} label(s) missing or not 0/1 (rows {:?})",
            l.invalid.count, l.invalid.examples
        ));
    }
    if l.n > 0 && (l.pos == 0 || l.pos == l.n) {
        problems.push("only one class is present: the model cannot be evaluated".to_owned());
    }
    if l.n == 0 && acc.rows > 0 {
        problems.push("no valid label".to_owned());
    }
    let check = if problems.is_empty() {
        Check::new(
            "label",
            Severity::Blocking,
            Status::Pass,
            format!("prevalence {} ({} of {} rows)", pct(prevalence), l.pos, l.n),
        )
    } else {
        Check::new(
            "label",
            Severity::Blocking,
            Status::Fail,
            format!(
                "{}; prevalence {} among valid labels",
                problems.join("; "),
                pct(prevalence)
            ),
        )
    };
    check.column(col).details(details)
}

fn site_variation_check(acc: &Acc<'_>, pooled: &[Vec<f64>]) -> Check {
    let g = &acc.groups;
    if acc.site_req.is_none() || g.site_names.len() < 2 {
        return Check::new(
            "site_variation",
            Severity::Warning,
            Status::NotApplicable,
            "no site column, or a single site",
        );
    }
    let psis: Vec<Option<stats::Psi>> = pooled.iter().map(|p| stats::Psi::new(p)).collect();
    let pooled_prev = acc.label.as_ref().map(|l| rate(l.pos, l.n));
    let mut sites = Vec::new();
    for (s, name) in g.site_names.iter().enumerate() {
        let rows = g.site_rows[s];
        let mut reasons = Vec::new();
        let mut features = Vec::new();
        let mut max_psi: f64 = 0.0;
        let mut max_ks: f64 = 0.0;
        let mut max_miss: f64 = 0.0;
        let in_site: Vec<usize> = (0..acc.sample.rows.len())
            .filter(|&j| acc.sample.site[j] == s as u32)
            .collect();
        for (k, n) in acc.nums.iter().enumerate() {
            let f = acc.feature(n.fi);
            let site_missing = rate(n.missing_site.get(s).copied().unwrap_or(0), rows);
            let miss_diff = site_missing - rate(n.missing, acc.rows);
            let mut vals: Vec<f64> = in_site
                .iter()
                .map(|&j| acc.sample.values[k][j])
                .filter(|v| !v.is_nan())
                .collect();
            vals.sort_unstable_by(f64::total_cmp);
            let (psi, ks) = if vals.len() >= 30 && f.ty != FeatureType::Bool {
                (
                    psis[k].as_ref().and_then(|p| p.of(&vals)),
                    stats::ks(&pooled[k], &vals),
                )
            } else {
                (None, None)
            };
            if rows >= MIN_GROUP_ROWS {
                // Only a site missing more than the rest stands out: less missing is no risk.
                if miss_diff > MISSING_DIFF_FLAG {
                    reasons.push(format!(
                        "`{}` missing {} here vs {} pooled",
                        f.name,
                        pct(site_missing),
                        pct(rate(n.missing, acc.rows))
                    ));
                }
                if let Some(p) = psi
                    && p > PSI_FLAG
                {
                    reasons.push(format!("`{}` PSI {p:.2}", f.name));
                }
                if let Some(d) = ks
                    && d > KS_FLAG
                {
                    reasons.push(format!("`{}` KS {d:.2}", f.name));
                }
            }
            max_psi = max_psi.max(psi.unwrap_or(0.0));
            max_miss = max_miss.max(miss_diff);
            max_ks = max_ks.max(ks.unwrap_or(0.0));
            features.push(json!({
                "feature": f.name,
                "missing_rate": site_missing,
                "missing_rate_difference": miss_diff,
                "psi": psi,
                "ks": ks,
                "sample_values": vals.len(),
            }));
        }
        let mut prevalence = Value::Null;
        let mut prev_diff: f64 = 0.0;
        if let (Some(l), Some(pp)) = (&acc.label, pooled_prev) {
            let n = l.site_n.get(s).copied().unwrap_or(0);
            if n > 0 {
                let p = rate(l.site_pos[s], n);
                prevalence = json!({"prevalence": p, "difference": p - pp});
                prev_diff = (p - pp).abs();
                if n >= MIN_GROUP_ROWS && (p - pp).abs() > PREVALENCE_DIFF_FLAG {
                    reasons.push(format!("prevalence {} vs {} pooled", pct(p), pct(pp)));
                }
            }
        }
        sites.push((
            reasons.len(),
            // Ranked by how many ways the site stands out, then by how far.
            max_psi.max(max_ks).max(max_miss).max(prev_diff),
            json!({
                "site": name,
                "rows": rows,
                "stands_out": !reasons.is_empty(),
                "reasons": reasons,
                "max_psi": max_psi,
                "max_ks": max_ks,
                "label": prevalence,
                "features": features,
            }),
        ));
    }
    sites.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.total_cmp(&a.1)));
    let standing: Vec<String> = sites
        .iter()
        .filter(|s| s.0 > 0)
        .map(|s| {
            let reasons: Vec<String> = s.2["reasons"]
                .as_array()
                .map(|r| {
                    r.iter()
                        .take(3)
                        .filter_map(|x| x.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            format!(
                "site {}: {}",
                s.2["site"].as_str().unwrap_or_default(),
                reasons.join(", ")
            )
        })
        .collect();
    let details = json!({
        "method": format!("PSI over 10 bins at the pooled deciles and two-sample KS, {}; missingness and prevalence from every row", sample_note(acc)),
        "thresholds": {"psi": PSI_FLAG, "ks": KS_FLAG, "missing_rate_difference": MISSING_DIFF_FLAG, "prevalence_difference": PREVALENCE_DIFF_FLAG},
        "sites": sites.into_iter().map(|s| s.2).collect::<Vec<_>>(),
    });
    if standing.is_empty() {
        Check::new(
            "site_variation",
            Severity::Warning,
            Status::Pass,
            format!("no site of {} stands out", g.site_names.len()),
        )
        .details(details)
    } else {
        Check::new(
            "site_variation",
            Severity::Warning,
            Status::Fail,
            format!(
                "{} of {} site(s) stand out: {}",
                standing.len(),
                g.site_names.len(),
                standing.join("; ")
            ),
        )
        .details(details)
    }
    .column(acc.opts.site_col.as_deref().unwrap_or_default())
}
