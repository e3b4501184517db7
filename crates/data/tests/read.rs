//! Reading datasets: summaries, typed columns, and the errors malformed files give, each
//! naming the file, the row (or row group) and the column.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::sync::Arc;

use arrow_array::{ArrayRef, Float64Array, RecordBatch, StringArray};
use vigil_data::{
    ColumnData, ColumnSpec, ColumnType, Error, check_dataset, read_columns, summarize,
};
use vigil_domain::DatasetFormat;

fn write(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

/// The error is `Malformed`, its message names the file, and its location is as given.
fn assert_malformed(e: Error, path: &Path, row: Option<u64>, group: Option<usize>, column: &str) {
    let msg = e.to_string();
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(msg.contains(&format!("column `{column}`")), "{msg}");
    if let Some(r) = row {
        assert!(
            msg.contains(&format!("row {r} (1-based, header excluded")),
            "{msg}"
        );
    }
    if let Some(g) = group {
        assert!(msg.contains(&format!("row group {g}")), "{msg}");
    }
    let loc = e
        .location()
        .unwrap_or_else(|| panic!("not Malformed: {msg}"));
    assert_eq!(loc.row, row, "{msg}");
    assert_eq!(loc.row_group, group, "{msg}");
    assert_eq!(loc.column.as_deref(), Some(column), "{msg}");
}

fn num(name: &str) -> ColumnSpec {
    ColumnSpec::new(name, ColumnType::Number)
}

#[test]
fn summarizes_csv_and_parquet() {
    let dir = tempfile::tempdir().unwrap();
    let rows = common::clean_rows(1);
    let csv = common::write_csv(dir.path(), "c.csv", &rows);
    let s = summarize(&csv).unwrap();
    assert_eq!(s.format, DatasetFormat::Csv);
    assert_eq!(s.rows, 1200);
    assert_eq!(s.columns.len(), 11);
    assert_eq!(s.columns[0], "patient_id");
    let pq = common::write_parquet(dir.path(), "c.parquet", &rows);
    let s = summarize(&pq).unwrap();
    assert_eq!(s.format, DatasetFormat::Parquet);
    assert_eq!(s.rows, 1200);
    assert_eq!(s.columns[10], "label");
}

#[test]
fn reads_typed_columns_with_missing_values_flagged() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "e.csv",
        b"score,label,site,when,outcome\n0.9,1,A,2025-01-02,yes\n,0,B,2025-01-02T06:00:00+01:00,no\nNA,1,\"A, north\",,yes\n",
    );
    let c = read_columns(
        &p,
        &[
            num("score"),
            ColumnSpec::new("label", ColumnType::Label { positive: None }),
            ColumnSpec::new("site", ColumnType::Text),
            ColumnSpec::new("when", ColumnType::Time),
            ColumnSpec::new(
                "outcome",
                ColumnType::Label {
                    positive: Some("yes".into()),
                },
            ),
        ],
    )
    .unwrap();
    assert_eq!(c.rows, 3);
    match c.find("score").unwrap() {
        ColumnData::Number { values, missing } => {
            assert_eq!(values[0], 0.9);
            assert!(values[1].is_nan() && values[2].is_nan());
            assert_eq!(*missing, 2);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(c.get_labels("label").unwrap(), &[1, 0, 1]);
    assert_eq!(c.get_labels("outcome").unwrap(), &[1, 0, 1]);
    assert_eq!(c.get_texts("site").unwrap()[2], "A, north");
    assert_eq!(
        c.get_times("when").unwrap(),
        &[Some(1_735_776_000), Some(1_735_776_000 + 5 * 3600), None]
    );
}

#[test]
fn ragged_row_names_row_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "r.csv", b"a,b,c\n1,2,3\n4,5\n6,7,8\n");
    let e = read_columns(&p, &[num("a")]).unwrap_err();
    assert_malformed(e, &p, Some(2), None, "c");
    // Registration rejects it too.
    let e = summarize(&p).unwrap_err();
    assert_malformed(e, &p, Some(2), None, "c");
    let p = write(dir.path(), "r2.csv", b"a,b\n1,2\n3,4,5\n");
    let e = summarize(&p).unwrap_err();
    assert_malformed(e, &p, Some(2), None, "b");
}

#[test]
fn bad_number_names_row_and_column_without_quoting_the_value() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "n.csv", b"id,score\nP1,0.5\nP2,0.7\nP3,Smith\n");
    let e = read_columns(&p, &[num("score")]).unwrap_err();
    assert!(!e.to_string().contains("Smith"), "{e}");
    assert!(e.to_string().contains("not a number"), "{e}");
    assert_malformed(e, &p, Some(3), None, "score");
    let p = write(dir.path(), "t.csv", b"when\n2025-01-01\nyesterday\n");
    let e = read_columns(&p, &[ColumnSpec::new("when", ColumnType::Time)]).unwrap_err();
    assert_malformed(e, &p, Some(2), None, "when");
    let p = write(dir.path(), "l.csv", b"label\n0\n1\n2\n");
    let e = read_columns(
        &p,
        &[ColumnSpec::new(
            "label",
            ColumnType::Label { positive: None },
        )],
    )
    .unwrap_err();
    assert_malformed(e, &p, Some(3), None, "label");
}

#[test]
fn invalid_utf8_names_row_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "u.csv",
        b"id,name,score\nP1,ok,1\nP2,Mu\xefller,2\n",
    );
    let e = read_columns(&p, &[num("score")]).unwrap_err();
    assert!(e.to_string().contains("UTF-8"), "{e}");
    assert_malformed(e, &p, Some(2), None, "name");
}

#[test]
fn empty_file_is_named_as_such() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(dir.path(), "empty.csv", b"");
    for e in [
        summarize(&p).unwrap_err(),
        read_columns(&p, &[num("a")]).unwrap_err(),
        check_dataset(&p, &common::contract(), &common::options()).unwrap_err(),
    ] {
        let msg = e.to_string();
        assert!(msg.contains("empty.csv") && msg.contains("empty"), "{msg}");
        assert!(matches!(e, Error::Malformed(_)), "{msg}");
    }
    // A header without rows is a valid, empty dataset.
    let p = write(dir.path(), "header.csv", b"a,b\n");
    assert_eq!(summarize(&p).unwrap().rows, 0);
    let p = write(dir.path(), "empty.parquet", b"");
    let e = summarize(&p).unwrap_err();
    assert!(e.to_string().contains("empty.parquet"), "{e}");
    assert!(matches!(e, Error::Malformed(_)));
}

#[test]
fn missing_file_and_column_are_distinct_errors() {
    let dir = tempfile::tempdir().unwrap();
    let e = summarize(dir.path().join("nope.csv")).unwrap_err();
    assert!(matches!(e, Error::NotFound { .. }), "{e}");
    let p = write(dir.path(), "a.csv", b"a\n1\n");
    let e = read_columns(&p, &[num("b")]).unwrap_err();
    assert!(
        matches!(e, Error::Invalid(_)) && e.to_string().contains("`b`"),
        "{e}"
    );
    let e = summarize(dir.path().join("a.xlsx")).unwrap_err();
    assert!(matches!(e, Error::Invalid(_)), "{e}");
}

#[test]
fn parquet_with_the_wrong_types_names_row_group_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("w.parquet");
    let batch = RecordBatch::try_from_iter(vec![
        (
            "temperature",
            Arc::new(Float64Array::from(vec![37.0, 38.0])) as ArrayRef,
        ),
        (
            "heart_rate",
            Arc::new(StringArray::from(vec!["80", "90"])) as ArrayRef,
        ),
    ])
    .unwrap();
    common::write_batch(&p, &batch, 1);
    let e = read_columns(&p, &[num("temperature"), num("heart_rate")]).unwrap_err();
    assert!(e.to_string().contains("Utf8"), "{e}");
    assert_malformed(e, &p, None, Some(0), "heart_rate");
    let c = read_columns(&p, &[num("temperature")]).unwrap();
    assert_eq!(c.get_numbers("temperature").unwrap(), &[37.0, 38.0]);
}

#[test]
fn parquet_bad_time_text_names_row_group_and_row() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("t.parquet");
    let batch = RecordBatch::try_from_iter(vec![(
        "when",
        Arc::new(StringArray::from(vec![
            "2025-01-01",
            "2025-01-02",
            "2025-01-03",
            "soon",
        ])) as ArrayRef,
    )])
    .unwrap();
    common::write_batch(&p, &batch, 2);
    let e = read_columns(&p, &[ColumnSpec::new("when", ColumnType::Time)]).unwrap_err();
    assert_malformed(e, &p, Some(4), Some(1), "when");
}

#[test]
fn rows_stream_in_batches_across_parquet_row_groups() {
    let dir = tempfile::tempdir().unwrap();
    let n = 200_000usize;
    let p = dir.path().join("big.parquet");
    let batch = RecordBatch::try_from_iter(vec![(
        "x",
        Arc::new(Float64Array::from(
            (0..n).map(|i| i as f64).collect::<Vec<_>>(),
        )) as ArrayRef,
    )])
    .unwrap();
    common::write_batch(&p, &batch, 30_000);
    let c = read_columns(&p, &[num("x")]).unwrap();
    let x = c.get_numbers("x").unwrap();
    assert_eq!(x.len(), n);
    assert!(x.iter().enumerate().all(|(i, v)| *v == i as f64));
}
