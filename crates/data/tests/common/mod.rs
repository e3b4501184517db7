//! Synthetic datasets for the data-check tests: a clean cohort and writers for CSV and Parquet,
//! so that each test can plant exactly one problem.

#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{
    ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use vigil_data::CheckOptions;
use vigil_domain::{DatasetManifest, FeatureContract, Timestamp};

pub const CONTRACT: &str = r#"
schema = "vigil.contract/v1"
[model]
input = "x"
output = "p"

[[feature]]
name = "temperature"
type = "float"
unit = "Cel"
range = [30, 45]

[[feature]]
name = "heart_rate"
type = "float"
unit = "/min"
range = [20, 250]

[[feature]]
name = "lactate"
type = "float"
unit = "mmol/L"
range = [0.1, 30]
role = "optional"
on_missing = "pass_missing"
max_missing_rate = 0.5

[[feature]]
name = "age"
type = "int"
unit = "a"
range = [18, 110]

[[feature]]
name = "sex"
type = "category"
levels = ["female", "male"]

[[feature]]
name = "ethnicity"
type = "category"
levels = ["a", "b"]
role = "prohibited"
"#;

pub fn contract() -> FeatureContract {
    FeatureContract::from_toml(CONTRACT).unwrap()
}

pub const SITES: [&str; 4] = ["A", "B", "C", "D"];

#[derive(Clone, Debug)]
pub struct Row {
    pub patient: String,
    pub site: String,
    pub prediction: i64,
    pub outcome: i64,
    pub temperature: f64,
    pub heart_rate: f64,
    pub lactate: Option<f64>,
    pub lactate_time: Option<i64>,
    pub age: i64,
    pub sex: String,
    pub label: String,
}

struct Rng(u64);

impl Rng {
    fn u(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }
    fn normal(&mut self) -> f64 {
        let (a, b) = (self.u().max(1e-12), self.u());
        (-2.0 * a.ln()).sqrt() * (2.0 * std::f64::consts::PI * b).cos()
    }
}

pub const HOUR: i64 = 3_600_000_000;

pub fn start() -> i64 {
    Timestamp::parse("2025-01-01T00:00:00Z")
        .unwrap()
        .as_micros()
}

/// 4 sites × 300 rows, one row per patient, spread over 2025, every check passing.
pub fn clean_rows(seed: u64) -> Vec<Row> {
    let mut r = Rng(seed);
    let mut rows = Vec::new();
    for i in 0..1200 {
        let prediction = start() + (i as i64) * 7 * HOUR + (r.u() * 3.0 * HOUR as f64) as i64;
        let temperature = (37.0 + 0.6 * r.normal()).clamp(34.0, 41.0);
        let heart_rate = (85.0 + 15.0 * r.normal()).clamp(40.0, 200.0);
        let lactate = (r.u() > 0.1).then(|| (1.5 + 0.4 * r.normal()).max(0.2));
        let z = -1.6 + 0.8 * (temperature - 37.0) / 0.6 + 0.5 * (heart_rate - 85.0) / 15.0;
        let label = u8::from(r.u() < 1.0 / (1.0 + (-z).exp()));
        rows.push(Row {
            patient: format!("P{:05}", i),
            site: SITES[i % 4].to_owned(),
            prediction,
            outcome: prediction + HOUR + (r.u() * 48.0 * HOUR as f64) as i64,
            temperature: (temperature * 10.0).round() / 10.0,
            heart_rate: heart_rate.round(),
            lactate: lactate.map(|v| (v * 100.0).round() / 100.0),
            lactate_time: lactate.map(|_| prediction - HOUR - (r.u() * 4.0 * HOUR as f64) as i64),
            age: 18 + (r.u() * 77.0) as i64,
            sex: if r.u() < 0.5 { "female" } else { "male" }.to_owned(),
            label: label.to_string(),
        });
    }
    rows
}

pub const HEADER: &str = "patient_id,site,prediction_time,outcome_time,temperature,heart_rate,lactate,lactate_time,age,sex,label";

fn ts(us: i64) -> String {
    Timestamp::from_micros(us).to_string()
}

pub fn csv_text(rows: &[Row]) -> String {
    let mut s = String::from(HEADER);
    s.push('\n');
    for r in rows {
        s.push_str(&format!(
            "{},{},{},{},{},{},{},{},{},{},{}\n",
            r.patient,
            r.site,
            ts(r.prediction),
            ts(r.outcome),
            r.temperature,
            r.heart_rate,
            r.lactate.map(|v| v.to_string()).unwrap_or_default(),
            r.lactate_time.map(ts).unwrap_or_default(),
            r.age,
            r.sex,
            r.label
        ));
    }
    s
}

pub fn write_csv(dir: &Path, name: &str, rows: &[Row]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, csv_text(rows)).unwrap();
    p
}

/// The same cohort as Parquet with native types: timestamps, doubles, integers, strings.
pub fn write_parquet(dir: &Path, name: &str, rows: &[Row]) -> PathBuf {
    let p = dir.join(name);
    let s = |f: fn(&Row) -> String| -> ArrayRef {
        Arc::new(StringArray::from(rows.iter().map(f).collect::<Vec<_>>()))
    };
    let t = |f: fn(&Row) -> Option<i64>| -> ArrayRef {
        Arc::new(
            TimestampMicrosecondArray::from(rows.iter().map(f).collect::<Vec<_>>())
                .with_timezone("UTC"),
        )
    };
    let batch = RecordBatch::try_from_iter(vec![
        ("patient_id", s(|r| r.patient.clone())),
        ("site", s(|r| r.site.clone())),
        ("prediction_time", t(|r| Some(r.prediction))),
        ("outcome_time", t(|r| Some(r.outcome))),
        (
            "temperature",
            Arc::new(Float64Array::from(
                rows.iter().map(|r| r.temperature).collect::<Vec<_>>(),
            )) as ArrayRef,
        ),
        (
            "heart_rate",
            Arc::new(Float64Array::from(
                rows.iter().map(|r| r.heart_rate).collect::<Vec<_>>(),
            )) as ArrayRef,
        ),
        (
            "lactate",
            Arc::new(Float64Array::from(
                rows.iter().map(|r| r.lactate).collect::<Vec<_>>(),
            )) as ArrayRef,
        ),
        ("lactate_time", t(|r| r.lactate_time)),
        (
            "age",
            Arc::new(Int64Array::from(
                rows.iter().map(|r| r.age).collect::<Vec<_>>(),
            )) as ArrayRef,
        ),
        ("sex", s(|r| r.sex.clone())),
        (
            "label",
            Arc::new(Int64Array::from(
                rows.iter()
                    .map(|r| r.label.parse::<i64>().unwrap())
                    .collect::<Vec<_>>(),
            )) as ArrayRef,
        ),
    ])
    .unwrap();
    write_batch(&p, &batch, 500);
    p
}

pub fn write_batch(p: &Path, batch: &RecordBatch, row_group: usize) {
    let file = std::fs::File::create(p).unwrap();
    let props = parquet::file::properties::WriterProperties::builder()
        .set_max_row_group_size(row_group)
        .set_compression(parquet::basic::Compression::SNAPPY)
        .build();
    let mut w = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), Some(props)).unwrap();
    w.write(batch).unwrap();
    w.close().unwrap();
}

pub fn now() -> Timestamp {
    Timestamp::parse("2026-06-01T00:00:00Z").unwrap()
}

pub fn options() -> CheckOptions {
    let mut o = CheckOptions::new(now());
    o.label_col = Some("label".into());
    o.prediction_time_col = Some("prediction_time".into());
    o.site_col = Some("site".into());
    o.patient_col = Some("patient_id".into());
    o.manifest = Some(
        DatasetManifest::from_toml(
            "[time_window]\nstart = \"2025-01-01T00:00:00Z\"\nend = \"2025-12-31T23:59:59Z\"\n",
        )
        .unwrap(),
    );
    o
}
