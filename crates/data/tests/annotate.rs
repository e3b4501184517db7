//! Copying a dataset with columns appended: every input column passes through unchanged and in
//! order across batch boundaries, cells read back as written, Parquet keeps its types, and a
//! failure leaves no output behind.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type};
use arrow_array::{Array, RecordBatch};
use vigil_data::{Appended, AppendedKind, AppendedValues, Cell, CellBatch, annotate};

fn appended() -> Vec<Appended> {
    vec![
        Appended {
            name: "double".into(),
            kind: AppendedKind::Number,
        },
        Appended {
            name: "note".into(),
            kind: AppendedKind::Text,
        },
    ]
}

/// Doubles `temperature` (missing → empty) and notes the row number and the sex cell.
fn compute(b: &CellBatch) -> Vec<AppendedValues> {
    let mut d = Vec::new();
    let mut n = Vec::new();
    for r in 0..b.len() {
        d.push(match b.cell(0, r) {
            Cell::Number(v) => Some(2.0 * v),
            Cell::Text(s) => s.parse::<f64>().ok().map(|v| 2.0 * v),
            _ => None,
        });
        let sex = match b.cell(1, r) {
            Cell::Text(s) => s.to_owned(),
            other => format!("{other:?}"),
        };
        let absent = matches!(b.cell(2, r), Cell::Missing);
        n.push(Some(format!("{}:{sex}:{absent}", b.first_row() + r as u64)));
    }
    vec![AppendedValues::Numbers(d), AppendedValues::Texts(n)]
}

fn requested() -> Vec<String> {
    vec!["temperature".into(), "sex".into(), "no_such_column".into()]
}

#[test]
fn csv_rows_pass_through_in_order_across_batches() {
    let dir = tempfile::tempdir().unwrap();
    let rows = common::clean_rows(3);
    let input = common::write_csv(dir.path(), "in.csv", &rows);
    let out = dir.path().join("out.csv");
    let s = annotate(&input, &out, &requested(), &appended(), 7, compute).unwrap();
    assert_eq!(s.rows, rows.len() as u64);
    assert_eq!(s.present, vec![true, true, false]);
    let text = std::fs::read_to_string(&out).unwrap();
    let original = std::fs::read_to_string(&input).unwrap();
    for (k, (line, orig)) in text.lines().zip(original.lines()).enumerate() {
        if k == 0 {
            assert_eq!(line, format!("{orig},double,note"));
            continue;
        }
        let rest = line
            .strip_prefix(orig)
            .unwrap_or_else(|| panic!("row {k} passes through"));
        let r = &rows[k - 1];
        assert_eq!(rest, format!(",{},{k}:{}:true", 2.0 * r.temperature, r.sex));
    }
    assert_eq!(text.lines().count(), rows.len() + 1);
}

#[test]
fn parquet_keeps_its_columns_and_types() {
    let dir = tempfile::tempdir().unwrap();
    let rows = common::clean_rows(4);
    let input = common::write_parquet(dir.path(), "in.parquet", &rows);
    let out = dir.path().join("out.parquet");
    let s = annotate(&input, &out, &requested(), &appended(), 100, compute).unwrap();
    assert_eq!(s.rows, 1200);
    let f = std::fs::File::open(&out).unwrap();
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(f)
        .unwrap()
        .build()
        .unwrap();
    let batches: Vec<RecordBatch> = reader.map(Result::unwrap).collect();
    let schema = batches[0].schema();
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(names.len(), 13);
    assert_eq!(&names[11..], ["double", "note"]);
    let mut k = 0;
    for b in &batches {
        let age = b.column_by_name("age").unwrap().as_primitive::<Int64Type>();
        let d = b
            .column_by_name("double")
            .unwrap()
            .as_primitive::<Float64Type>();
        let note = b.column_by_name("note").unwrap().as_string::<i32>();
        for i in 0..b.num_rows() {
            let r = &rows[k];
            assert_eq!(age.value(i), r.age, "integers stay integers");
            assert_eq!(d.value(i), 2.0 * r.temperature);
            assert!(!d.is_null(i));
            assert_eq!(note.value(i), format!("{}:{}:true", k + 1, r.sex));
            k += 1;
        }
    }
    assert_eq!(k, 1200);
}

#[test]
fn a_failure_leaves_no_output_and_keeps_an_existing_file() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    std::fs::write(&input, "temperature,sex\n37.0,male\n38.0\n").unwrap();
    let out = dir.path().join("out.csv");
    std::fs::write(&out, "previous").unwrap();
    let e = annotate(&input, &out, &requested(), &appended(), 1, compute).unwrap_err();
    assert_eq!(e.location().unwrap().row, Some(2), "{e}");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "previous");
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 2, "no temporary file left: {names:?}");

    let e = annotate(
        &input,
        &dir.path().join("out.parquet"),
        &requested(),
        &appended(),
        1,
        compute,
    )
    .unwrap_err();
    assert!(e.to_string().contains("the input's format"), "{e}");
    let e = annotate(
        Path::new("/nonexistent/x.csv"),
        &out,
        &requested(),
        &appended(),
        1,
        compute,
    )
    .unwrap_err();
    assert!(matches!(e, vigil_data::Error::NotFound { .. }), "{e}");
}
