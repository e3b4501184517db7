//! Running the data checks on a registered snapshot and recording the result with it.

use serde::Serialize;
use serde_json::json;
use vigil_data::{CheckOptions, CheckReport};
use vigil_domain::canonical::{canonical_digest, to_canonical_string};
use vigil_domain::{Digest, FeatureContract, UserName};
use vigil_store::DataCheckRecord;

use crate::{Error, Result, Vigil, audit_event};

/// What to check and how to read the snapshot's columns.
#[derive(Debug, Clone, Default)]
pub struct CheckDataset {
    /// Snapshot id or prefix.
    pub snapshot: String,
    pub contract_toml: String,
    pub label_col: Option<String>,
    pub positive_label: Option<String>,
    pub prediction_time_col: Option<String>,
    pub site_col: Option<String>,
    pub patient_col: Option<String>,
    /// Another snapshot that must share no patient with this one.
    pub against: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct CheckedDataset {
    pub record: DataCheckRecord,
    pub report: CheckReport,
    /// False when the same check on the same bytes was already on record.
    pub created: bool,
}

fn data_error(shown: &str, e: vigil_data::Error) -> Error {
    use vigil_data::Error as D;
    let msg = e.to_string();
    match e {
        D::Malformed(_) => Error::invalid("dataset_malformed", msg),
        D::Invalid(_) => Error::invalid("invalid_check_options", msg),
        D::NotFound { .. } | D::Unavailable { .. } => Error::internal(format!(
            "{shown}: the stored snapshot cannot be read: {msg}"
        )),
    }
}

impl Vigil {
    /// Runs every data check on a snapshot against a contract, stores the report and records
    /// `dataset.checked` in the same transaction. A failed check is a result, not an error.
    pub async fn check_dataset(
        &self,
        actor: &UserName,
        req: CheckDataset,
    ) -> Result<CheckedDataset> {
        let ds = self.get_dataset(&req.snapshot).await?;
        let contract = FeatureContract::from_toml(&req.contract_toml)
            .map_err(|e| Error::invalid("invalid_contract", e.to_string()))?;
        let contract_digest = Digest::of(req.contract_toml.as_bytes());
        let against = match &req.against {
            Some(a) => Some(self.get_dataset(a).await?),
            None => None,
        };
        let file = self.snapshot_file(&ds)?;
        let against_file = against
            .as_ref()
            .map(|a| self.snapshot_file(a))
            .transpose()?;
        let mut opts = CheckOptions::new(self.clock.now());
        opts.label_col = req.label_col.clone();
        opts.positive_label = req.positive_label.clone();
        opts.prediction_time_col = req.prediction_time_col.clone();
        opts.site_col = req.site_col.clone();
        opts.patient_col = req.patient_col.clone();
        opts.manifest = Some(ds.snapshot.manifest.clone());
        opts.against = against_file.as_ref().map(|f| f.path.clone());
        let shown = file.shown.clone();
        let path = file.path.clone();
        let staged: Vec<(String, String)> = [
            Some((&file, &ds)),
            against_file.as_ref().zip(against.as_ref()),
        ]
        .into_iter()
        .flatten()
        .map(|(f, d)| (f.path.display().to_string(), format!("dataset:{}", d.id)))
        .collect();
        let mut report: CheckReport =
            tokio::task::spawn_blocking(move || vigil_data::check_dataset(&path, &contract, &opts))
                .await
                .map_err(|e| Error::internal(format!("the data checks stopped: {e}")))?
                .map_err(|e| data_error(&shown, e))?;
        drop(file);
        drop(against_file);
        // Name the snapshots, not the temporary files they were read through, so that the
        // same check on the same bytes gives the same report.
        let mut text =
            serde_json::to_string(&report).map_err(|e| Error::internal(e.to_string()))?;
        for (tmp, name) in &staged {
            text = text.replace(tmp.as_str(), name);
        }
        report = serde_json::from_str(&text).map_err(|e| Error::internal(e.to_string()))?;

        let report_json =
            serde_json::to_value(&report).map_err(|e| Error::internal(e.to_string()))?;
        let (report_digest, _) = self
            .blobs
            .put(to_canonical_string(&report_json).as_bytes())?;
        let options = json!({
            "label_col": req.label_col,
            "positive_label": req.positive_label,
            "prediction_time_col": req.prediction_time_col,
            "site_col": req.site_col,
            "patient_col": req.patient_col,
            "against": against.as_ref().map(|a| a.id.to_string()),
        });
        let id = canonical_digest(&json!({
            "schema": "vigil.data_check/v1",
            "snapshot": ds.id,
            "contract_digest": contract_digest,
            "options": options,
            "report_digest": report_digest,
        }))
        .map_err(|e| Error::internal(e.to_string()))?;
        let blocking_failures: Vec<String> = report
            .checks
            .iter()
            .filter(|c| c.is_blocking_failure())
            .map(|c| match &c.column {
                Some(col) => format!("{} ({col})", c.name),
                None => c.name.clone(),
            })
            .collect();
        let record = DataCheckRecord {
            id,
            snapshot: ds.id,
            contract_digest,
            options,
            report_digest,
            passed: report.passed,
            blocking_failures,
            created_at: self.clock.now(),
            created_by: actor.clone(),
        };
        let mut tx = self.store.begin().await?;
        if let Some(existing) = tx
            .list_data_checks(&ds.id)
            .await?
            .into_iter()
            .find(|r| r.id == id)
        {
            tx.rollback().await?;
            return Ok(CheckedDataset {
                record: existing,
                report,
                created: false,
            });
        }
        tx.insert_data_check(&record).await?;
        let ev = audit_event(
            actor,
            "dataset.checked",
            format!("dataset:{}", ds.id),
            json!({
                "id": id,
                "snapshot": ds.id,
                "contract_digest": contract_digest,
                "report_digest": report_digest,
                "passed": record.passed,
                "blocking_failures": record.blocking_failures,
            }),
        )?;
        tx.append_audit(record.created_at, &ev).await?;
        tx.commit().await?;
        Ok(CheckedDataset {
            record,
            report,
            created: true,
        })
    }

    /// Every data check run on a snapshot, oldest first.
    pub async fn list_data_checks(&self, snapshot: &str) -> Result<Vec<DataCheckRecord>> {
        let ds = self.get_dataset(snapshot).await?;
        Ok(self.store.list_data_checks(&ds.id).await?)
    }

    /// A stored data check report.
    pub fn data_check_report(&self, r: &DataCheckRecord) -> Result<CheckReport> {
        let bytes = self.blobs.get(&r.report_digest)?;
        serde_json::from_slice(&bytes)
            .map_err(|e| Error::internal(format!("data check report: {e}")))
    }
}
