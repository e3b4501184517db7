//! Batch scoring through the real binary, on SQLite and PostgreSQL: scores equal the training
//! framework's, rows the contract cannot score get no score and their reason, Parquet in gives
//! Parquet out, bad requests write nothing, and the audit event's digests are the files'.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;
use std::sync::Arc;

use arrow_array::{Array, ArrayRef, Float64Array, RecordBatch, StringArray};
use support::{Home, both_backends, example, path, write};
use vigil_domain::Digest;

/// The example home with a release registered (with its reference predictions); its id.
fn release(h: &Home) -> String {
    let train = h.register_example();
    let args = h.register_release_args(&train, "batch");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    h.json(&args)["id"].as_str().unwrap().to_owned()
}

fn reference() -> Vec<f64> {
    let mut r = csv::Reader::from_path(example("deterioration/reference-predictions.csv")).unwrap();
    let i = r
        .headers()
        .unwrap()
        .iter()
        .position(|h| h == "probability")
        .unwrap();
    r.records()
        .map(|x| x.unwrap()[i].parse().unwrap())
        .collect()
}

fn read_csv(p: &Path) -> (Vec<String>, Vec<csv::StringRecord>) {
    let mut r = csv::Reader::from_path(p).unwrap();
    let h = r.headers().unwrap().iter().map(str::to_owned).collect();
    (h, r.records().map(Result::unwrap).collect())
}

fn score_json(h: &Home, release: &str, input: &Path, out: &Path) -> serde_json::Value {
    h.json(&[
        "score",
        "--model",
        "deterioration-risk",
        "--release",
        release,
        "--input",
        path(input),
        "--out",
        path(out),
    ])
}

/// The recorded `score.batch_completed` events' payloads.
fn score_events(h: &Home) -> Vec<serde_json::Value> {
    h.json(&["audit", "log", "--action", "score.batch_completed"])
        .as_array()
        .unwrap()
        .iter()
        .map(|e| serde_json::from_str(e["payload"].as_str().unwrap()).unwrap())
        .collect()
}

fn digest(p: &Path) -> String {
    Digest::of(&std::fs::read(p).unwrap()).to_hex()
}

/// The first `n` rows of the validation file as a Parquet file, numbers as doubles.
fn validation_parquet(dir: &Path, n: usize) -> std::path::PathBuf {
    let (header, rows) = read_csv(&example("deterioration/validation.csv"));
    let rows = &rows[..n];
    let text = [
        "patient_id",
        "encounter_id",
        "site",
        "admission_time",
        "prediction_time",
        "sex",
        "outcome_time",
    ];
    let mut cols: Vec<ArrayRef> = Vec::new();
    for (j, name) in header.iter().enumerate() {
        if text.contains(&name.as_str()) {
            let v: Vec<Option<&str>> = rows
                .iter()
                .map(|r| Some(&r[j]).filter(|s| !s.is_empty()))
                .collect();
            cols.push(Arc::new(StringArray::from(v)));
        } else {
            let v: Vec<Option<f64>> = rows.iter().map(|r| r[j].parse().ok()).collect();
            cols.push(Arc::new(Float64Array::from(v)));
        }
    }
    let batch = RecordBatch::try_from_iter(header.iter().cloned().zip(cols)).unwrap();
    let p = dir.join("validation.parquet");
    let f = std::fs::File::create(&p).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(f, batch.schema(), None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    p
}

both_backends! {
    async fn scores_equal_the_reference_and_the_run_is_audited_with_the_files_digests(db) {
        let h = Home::init(db);
        let id = release(&h);
        let input = example("deterioration/validation.csv");
        let out = h.dir().join("scored.csv");
        let run = score_json(&h, &id, &input, &out)["run"].clone();

        let (in_header, in_rows) = read_csv(&input);
        let (header, rows) = read_csv(&out);
        let mut want = in_header.clone();
        want.extend(["score", "decision", "fallback_reason"].map(String::from));
        assert_eq!(header, want, "every input column, then the three appended");
        assert_eq!(rows.len(), in_rows.len());
        assert_eq!(run["rows"], in_rows.len());
        let w = in_header.len();
        for (r, i) in rows.iter().zip(&in_rows) {
            assert_eq!(r.iter().take(w).collect::<Vec<_>>(), i.iter().collect::<Vec<_>>(), "input columns pass through");
        }
        let reference = reference();
        let mut worst = 0f64;
        for (k, p) in reference.iter().enumerate() {
            let s: f64 = rows[k][w].parse().unwrap_or_else(|_| panic!("row {} has a score", k + 1));
            worst = worst.max((s - p).abs());
        }
        assert!(worst <= 1e-6, "max |score - scikit-learn| = {worst:e}");
        // Decisions follow the release's threshold (0.15); fallbacks have neither.
        for r in &rows {
            match r[w].parse::<f64>() {
                Ok(s) => {
                    let d = if s >= 0.15 { "at_or_above:0.15" } else { "below:0.15" };
                    assert_eq!(&r[w + 1], d);
                    assert_eq!(&r[w + 2], "");
                }
                Err(_) => {
                    assert_eq!(&r[w], "");
                    assert_eq!(&r[w + 1], "");
                    assert!(!r[w + 2].is_empty());
                }
            }
        }
        let scored = rows.iter().filter(|r| !r[w].is_empty()).count();
        assert_eq!(run["scored"], scored);

        // The audit event names the release and the exact bytes read and written; the output
        // is in the artifact store under that digest.
        let ev = score_events(&h);
        assert_eq!(ev.len(), 1);
        let e = &ev[0];
        assert_eq!(e["release"], id.as_str());
        assert_eq!(e["input"]["digest"], digest(&input));
        assert_eq!(e["output"]["digest"], digest(&out));
        assert_eq!(e["output"]["digest"], run["output"]["digest"]);
        assert_eq!(e["rows"], in_rows.len());
        assert_eq!(e["input"]["name"], "validation.csv");
        let d = digest(&out);
        assert!(h.dir().join("artifacts/sha256").join(&d[..2]).join(&d[2..]).exists());
        let fallbacks: u64 = e["fallbacks"].as_object().unwrap().values().map(|v| v.as_u64().unwrap()).sum();
        assert_eq!(fallbacks as usize, rows.len() - scored);
        assert!(h.ok(&["audit", "verify"]).contains("intact"));
    }

    async fn rows_the_contract_cannot_score_get_no_score_and_their_reason(db) {
        let h = Home::init(db);
        let id = release(&h);
        let header = "patient_id,age,sex,heart_rate,resp_rate,temperature,spo2,sbp,lactate,creatinine,wbc";
        let text = format!("{header}\n\
            A,73,female,89,15,36.2,98,116,1.31,68,5.75\n\
            B,73,female,,15,36.2,98,116,1.31,68,5.75\n\
            C,12,female,89,15,36.2,98,116,1.31,68,5.75\n\
            D,73,female,89,15,36.2,98,116,,68,5.75\n\
            E,73,other,89,15,36.2,98,116,1.31,68,5.75\n\
            F,73,female,89,fast,36.2,98,116,1.31,68,5.75\n");
        let input = write(h.dir(), "rows.csv", &text);
        let out = h.dir().join("rows-scored.csv");
        let run = score_json(&h, &id, &input, &out)["run"].clone();
        let (header, rows) = read_csv(&out);
        let at = |n: &str| header.iter().position(|h| h == n).unwrap();
        let (s, d, f) = (at("score"), at("decision"), at("fallback_reason"));
        let reference = reference();
        let a: f64 = rows[0][s].parse().unwrap();
        assert!((a - reference[0]).abs() <= 1e-6, "row A is validation row 1");
        for k in [1, 2, 4, 5] {
            assert_eq!(&rows[k][s], "", "row {} is not scored", &rows[k][0]);
            assert_eq!(&rows[k][d], "");
            assert_eq!(&rows[k][f], "missing_required", "row {}", &rows[k][0]);
        }
        // An optional feature with an approved fill value: scored, with the fill.
        assert!(rows[3][s].parse::<f64>().is_ok());
        assert_eq!(&rows[3][f], "");
        assert_eq!(run["scored"], 2);
        assert_eq!(run["fallbacks"]["missing_required"], 4);
        assert_eq!(score_events(&h)[0]["fallbacks"]["missing_required"], 4);
    }

    async fn parquet_in_gives_parquet_out_with_the_same_scores(db) {
        let h = Home::init(db);
        let id = release(&h);
        let input = validation_parquet(h.dir(), 300);
        let out = h.dir().join("scored.parquet");
        let run = score_json(&h, &id, &input, &out)["run"].clone();
        assert_eq!(run["format"], "parquet");
        assert_eq!(run["rows"], 300);
        let f = std::fs::File::open(&out).unwrap();
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(f)
            .unwrap().build().unwrap();
        let mut scores = Vec::new();
        let mut patients = Vec::new();
        let mut n_cols = 0;
        for b in reader {
            let b = b.unwrap();
            n_cols = b.num_columns();
            let s = b.column_by_name("score").unwrap().as_any().downcast_ref::<Float64Array>().unwrap().clone();
            let p = b.column_by_name("patient_id").unwrap().as_any().downcast_ref::<StringArray>().unwrap().clone();
            for i in 0..b.num_rows() {
                scores.push(if s.is_null(i) { None } else { Some(s.value(i)) });
                patients.push(p.value(i).to_owned());
            }
            assert!(b.column_by_name("fallback_reason").is_some());
        }
        assert_eq!(n_cols, 17 + 3);
        assert_eq!(scores.len(), 300);
        let (_, rows) = read_csv(&example("deterioration/validation.csv"));
        assert_eq!(patients[299], rows[299][0].to_string());
        let reference = reference();
        for (k, s) in scores.iter().enumerate() {
            let s = s.unwrap_or_else(|| panic!("row {} scored", k + 1));
            assert!((s - reference[k]).abs() <= 1e-6, "row {}: {s} vs {}", k + 1, reference[k]);
        }
        let ev = score_events(&h);
        assert_eq!(ev[0]["output"]["digest"], digest(&out));
        assert_eq!(ev[0]["input"]["digest"], digest(&input));
    }

    async fn bad_requests_are_refused_and_write_nothing(db) {
        let h = Home::init(db);
        let id = release(&h);
        let events = h.audit_count();
        let out = h.dir().join("never.csv");
        let base = |input: &str, out: &str| -> Vec<String> {
            ["score", "--model", "deterioration-risk", "--input", input, "--out", out]
                .map(String::from).to_vec()
        };

        // No release in production and none named.
        let a = base(path(&example("deterioration/validation.csv")), path(&out));
        let (err, code) = h.fails(&a.iter().map(String::as_str).collect::<Vec<_>>());
        assert_eq!(code, 1);
        assert!(err.contains("no release in production"), "{err}");

        let with_release = |mut a: Vec<String>| { a.extend(["--release".into(), id.clone()]); a };
        // A missing input file.
        let a = with_release(base("/nonexistent/rows.csv", path(&out)));
        let (err, _) = h.fails(&a.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(err.contains("/nonexistent/rows.csv") && err.contains("no such file"), "{err}");
        // CSV in, Parquet out.
        let pq = h.dir().join("never.parquet");
        let a = with_release(base(path(&example("deterioration/validation.csv")), path(&pq)));
        let (err, _) = h.fails(&a.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(err.contains("in the input's format"), "{err}");
        // A ragged row: the error names the row, and no partial output is left behind.
        let bad = write(h.dir(), "ragged.csv",
            "age,sex,heart_rate,resp_rate,temperature,spo2,sbp,lactate,creatinine,wbc\n\
             73,female,89,15,36.2,98,116,1.31,68,5.75\n73,female,89\n");
        let a = with_release(base(path(&bad), path(&out)));
        let (err, _) = h.fails(&a.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(err.contains("row 2"), "{err}");
        assert!(!out.exists() && !pq.exists());
        let leftovers: Vec<_> = std::fs::read_dir(h.dir()).unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "temporary files removed");
        // A file that already has a `score` column.
        let dup = write(h.dir(), "dup.csv", "age,score\n70,0.1\n");
        let a = with_release(base(path(&dup), path(&out)));
        let (err, _) = h.fails(&a.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(err.contains("already has a column `score`"), "{err}");
        assert_eq!(h.audit_count(), events, "no run recorded");
    }
}
