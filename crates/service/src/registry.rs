//! Registration and lookup of models, dataset snapshots and releases.

use std::path::PathBuf;

use serde::Serialize;
use serde_json::json;
use vigil_domain::dataset::{SNAPSHOT_SCHEMA, SnapshotManifest};
use vigil_domain::release::{Equivalence, Pinned, RELEASE_SCHEMA};
use vigil_domain::{
    DatasetFormat, DatasetManifest, DatasetSnapshot, Digest, FeatureContract, IdPrefix,
    IntendedUse, Model, ModelName, Release, ReleaseId, ReleaseManifest, RiskTier, SnapshotId,
    UserName,
};

use crate::tabular::shape;
use crate::{Error, Result, Vigil, audit_event};

/// The result of a registration: the object, and whether this call created it (registering
/// the same bytes again returns the existing object and writes nothing).
#[derive(Debug, Clone, Serialize)]
pub struct Registered<T> {
    #[serde(flatten)]
    pub value: T,
    pub created: bool,
}

pub struct RegisterDataset {
    pub path: PathBuf,
    pub name: String,
    /// The manifest file's text (TOML), if any.
    pub manifest_toml: Option<String>,
}

pub struct CreateModel {
    pub name: String,
    pub intended_use_toml: String,
    pub risk_tier: u8,
    pub clinical_owner: String,
    pub technical_owner: String,
}

pub struct RegisterRelease {
    pub model: String,
    pub artifact: Vec<u8>,
    pub contract: Vec<u8>,
    /// A snapshot id or unambiguous prefix.
    pub training_data: String,
    pub code_commit: Option<String>,
    pub environment: Option<Vec<u8>>,
    pub hyperparameters: Option<Vec<u8>>,
    pub thresholds: Vec<f64>,
    pub changelog: Option<String>,
    /// The training framework's predictions for the equivalence check (CSV: the contract's
    /// inputs by feature name and a `probability` column).
    pub reference_predictions: Option<Vec<u8>>,
}

fn invalid(code: &'static str) -> impl Fn(vigil_domain::Error) -> Error {
    move |e| Error::invalid(code, e.to_string())
}

impl Vigil {
    // ---- datasets ---------------------------------------------------------------------

    pub async fn register_dataset(
        &self,
        actor: &UserName,
        req: RegisterDataset,
    ) -> Result<Registered<DatasetSnapshot>> {
        let shown = req.path.display().to_string();
        let format = DatasetFormat::from_path(&shown).map_err(invalid("unsupported_format"))?;
        let manifest = match &req.manifest_toml {
            Some(t) => DatasetManifest::from_toml(t).map_err(invalid("invalid_manifest"))?,
            None => DatasetManifest::default(),
        };
        let mut file = std::fs::File::open(&req.path).map_err(|e| {
            Error::invalid(
                "file_unreadable",
                format!("cannot read the dataset {shown}: {e}"),
            )
        })?;
        // Copy first, then read the copy: what is described is exactly what is stored.
        let (digest, size) = self.blobs.put_reader(&mut file)?;
        let stored = self.blobs.local_path(&digest)?;
        let table = shape(&stored, format).map_err(|mut e| {
            e.message = e.message.replace(&stored.display().to_string(), &shown);
            e
        })?;
        let snapshot = SnapshotManifest {
            schema: SNAPSHOT_SCHEMA.into(),
            name: req.name,
            content: Pinned { digest, size },
            format,
            rows: table.rows,
            columns: table.columns,
            manifest,
        };
        let id = snapshot.id().map_err(invalid("invalid_dataset"))?;
        let mut tx = self.store.begin().await?;
        if let Some(existing) = tx.find_snapshot(&id).await? {
            tx.rollback().await?;
            return Ok(Registered {
                value: existing,
                created: false,
            });
        }
        let ds = DatasetSnapshot {
            id,
            snapshot,
            registered_at: self.clock.now(),
            registered_by: actor.clone(),
        };
        tx.insert_snapshot(&ds).await?;
        let ev = audit_event(
            actor,
            "dataset.registered",
            format!("dataset:{id}"),
            json!({
                "id": id,
                "name": ds.snapshot.name,
                "content_digest": digest,
                "size": size,
                "format": format,
                "rows": ds.snapshot.rows,
                "columns": ds.snapshot.columns.len(),
            }),
        )?;
        tx.append_audit(ds.registered_at, &ev).await?;
        tx.commit().await?;
        Ok(Registered {
            value: ds,
            created: true,
        })
    }

    pub async fn list_datasets(&self) -> Result<Vec<DatasetSnapshot>> {
        Ok(self.store.list_snapshots().await?)
    }

    /// A snapshot by id or unambiguous prefix.
    pub async fn get_dataset(&self, id_or_prefix: &str) -> Result<DatasetSnapshot> {
        let id = self.resolve_snapshot(id_or_prefix).await?;
        self.store.find_snapshot(&id).await?.ok_or_else(|| {
            Error::not_found("dataset_not_found", format!("no dataset snapshot {id}"))
        })
    }

    async fn resolve_snapshot(&self, s: &str) -> Result<SnapshotId> {
        let prefix = IdPrefix::parse(s).map_err(invalid("invalid_id"))?;
        let ids = self.store.snapshot_ids_with_prefix(&prefix).await?;
        let id = one_id(
            ids,
            s,
            "dataset_not_found",
            "dataset snapshot",
            "vigil dataset list",
        )?;
        SnapshotId::parse(&id).map_err(|e| Error::internal(e.to_string()))
    }

    // ---- models -----------------------------------------------------------------------

    pub async fn create_model(&self, actor: &UserName, req: CreateModel) -> Result<Model> {
        let name = ModelName::parse(&req.name).map_err(invalid("invalid_model_name"))?;
        let intended_use = IntendedUse::from_toml(&req.intended_use_toml)
            .map_err(invalid("invalid_intended_use"))?;
        let risk_tier = RiskTier::new(req.risk_tier).map_err(invalid("invalid_risk_tier"))?;
        for (what, v) in [
            ("clinical owner", &req.clinical_owner),
            ("technical owner", &req.technical_owner),
        ] {
            if v.trim().is_empty() {
                return Err(Error::invalid(
                    "invalid_owner",
                    format!("the {what} must be named"),
                ));
            }
        }
        let model = Model {
            name,
            intended_use,
            risk_tier,
            clinical_owner: req.clinical_owner.trim().to_owned(),
            technical_owner: req.technical_owner.trim().to_owned(),
            created_at: self.clock.now(),
            created_by: actor.clone(),
        };
        let mut tx = self.store.begin().await?;
        if tx.find_model(&model.name).await?.is_some() {
            return Err(Error::conflict(
                "model_exists",
                format!("model `{}` already exists", model.name),
            ));
        }
        tx.insert_model(&model).await?;
        let iu = vigil_domain::canonical::canonical_digest(&model.intended_use)
            .map_err(|e| Error::internal(e.to_string()))?;
        let ev = audit_event(
            actor,
            "model.created",
            format!("model:{}", model.name),
            json!({
                "name": model.name,
                "risk_tier": model.risk_tier,
                "clinical_owner": model.clinical_owner,
                "technical_owner": model.technical_owner,
                "intended_use_digest": iu,
            }),
        )?;
        tx.append_audit(model.created_at, &ev).await?;
        tx.commit().await?;
        Ok(model)
    }

    pub async fn find_model(&self, name: &str) -> Result<Option<Model>> {
        let name = ModelName::parse(name).map_err(invalid("invalid_model_name"))?;
        Ok(self.store.find_model(&name).await?)
    }

    pub async fn get_model(&self, name: &str) -> Result<Model> {
        self.find_model(name).await?.ok_or_else(|| {
            Error::not_found(
                "model_not_found",
                format!("no model named `{name}`: create it with `vigil model create`"),
            )
        })
    }

    pub async fn list_models(&self) -> Result<Vec<Model>> {
        Ok(self.store.list_models().await?)
    }

    // ---- releases ---------------------------------------------------------------------

    pub async fn register_release(
        &self,
        actor: &UserName,
        req: RegisterRelease,
    ) -> Result<Registered<Release>> {
        let model = self.get_model(&req.model).await?;
        let contract_text = std::str::from_utf8(&req.contract).map_err(|_| {
            Error::invalid("invalid_contract", "the feature contract is not UTF-8 text")
        })?;
        let contract =
            FeatureContract::from_toml(contract_text).map_err(invalid("invalid_contract"))?;
        let executable = check_artifact_against_contract(&req.artifact, &contract)?;
        let equivalence = req
            .reference_predictions
            .as_deref()
            .map(|r| check_equivalence(&executable, &contract, r))
            .transpose()?;
        let training = self.resolve_snapshot(&req.training_data).await?;
        if let Some(h) = &req.hyperparameters {
            serde_json::from_slice::<serde_json::Value>(h).map_err(|e| {
                Error::invalid(
                    "invalid_hyperparameters",
                    format!("hyperparameters are not JSON: {e}"),
                )
            })?;
        }
        let mut thresholds = req.thresholds.clone();
        thresholds.sort_by(f64::total_cmp);
        let pin = |bytes: &[u8]| Pinned {
            digest: Digest::of(bytes),
            size: bytes.len() as u64,
        };
        let manifest = ReleaseManifest {
            schema: RELEASE_SCHEMA.into(),
            model: model.name.clone(),
            artifact: pin(&req.artifact),
            artifact_format: "onnx".into(),
            contract: pin(&req.contract),
            training_data: training,
            code_commit: req.code_commit.map(|c| c.to_ascii_lowercase()),
            environment: req.environment.as_deref().map(pin),
            hyperparameters: req.hyperparameters.as_deref().map(pin),
            thresholds,
            changelog: req.changelog.filter(|c| !c.trim().is_empty()),
            equivalence,
        };
        let id = manifest.id().map_err(invalid("invalid_release"))?;
        // Artifacts first: a crash after this leaves only unreferenced, content-addressed
        // blobs, never a release that points at something missing.
        self.blobs.put(&req.artifact)?;
        self.blobs.put(&req.contract)?;
        for b in [
            &req.environment,
            &req.hyperparameters,
            &req.reference_predictions,
        ]
        .into_iter()
        .flatten()
        {
            self.blobs.put(b)?;
        }
        let mut tx = self.store.begin().await?;
        if let Some(existing) = tx.find_release(&id).await? {
            tx.rollback().await?;
            return Ok(Registered {
                value: existing,
                created: false,
            });
        }
        let release = Release {
            id,
            manifest,
            registered_at: self.clock.now(),
            registered_by: actor.clone(),
        };
        tx.insert_release(&release).await?;
        let ev = audit_event(
            actor,
            "release.registered",
            format!("release:{id}"),
            json!({
                "id": id,
                "model": release.manifest.model,
                "artifact_digest": release.manifest.artifact.digest,
                "contract_digest": release.manifest.contract.digest,
                "training_data": release.manifest.training_data,
                "thresholds": release.manifest.thresholds,
                "equivalence": release.manifest.equivalence,
            }),
        )?;
        tx.append_audit(release.registered_at, &ev).await?;
        tx.commit().await?;
        Ok(Registered {
            value: release,
            created: true,
        })
    }

    pub async fn list_releases(&self, model: Option<&str>) -> Result<Vec<Release>> {
        let model = match model {
            Some(m) => Some(self.get_model(m).await?.name),
            None => None,
        };
        Ok(self.store.list_releases(model.as_ref()).await?)
    }

    /// A release by id or unambiguous prefix.
    pub async fn get_release(&self, id_or_prefix: &str) -> Result<Release> {
        let id = self.resolve_release(id_or_prefix).await?;
        self.store
            .find_release(&id)
            .await?
            .ok_or_else(|| Error::not_found("release_not_found", format!("no release {id}")))
    }

    pub async fn resolve_release(&self, s: &str) -> Result<ReleaseId> {
        let prefix = IdPrefix::parse(s).map_err(invalid("invalid_id"))?;
        let ids = self.store.release_ids_with_prefix(&prefix).await?;
        let id = one_id(ids, s, "release_not_found", "release", "vigil release list")?;
        ReleaseId::parse(&id).map_err(|e| Error::internal(e.to_string()))
    }

    /// The release's model artifact, verified against its pinned digest.
    pub fn release_artifact(&self, r: &Release) -> Result<Vec<u8>> {
        Ok(self.blobs.get(&r.manifest.artifact.digest)?)
    }

    /// The release's feature contract, verified and parsed.
    pub fn release_contract(&self, r: &Release) -> Result<FeatureContract> {
        let bytes = self.blobs.get(&r.manifest.contract.digest)?;
        let text = String::from_utf8(bytes)
            .map_err(|_| Error::internal("stored contract is not UTF-8"))?;
        FeatureContract::from_toml(&text).map_err(|e| Error::internal(e.to_string()))
    }

    /// Re-reads every artifact a release pins and checks its digest.
    pub fn verify_release_artifacts(&self, r: &Release) -> Result<()> {
        let m = &r.manifest;
        for p in [
            Some(&m.artifact),
            Some(&m.contract),
            m.environment.as_ref(),
            m.hyperparameters.as_ref(),
            m.equivalence.as_ref().map(|q| &q.reference),
        ]
        .into_iter()
        .flatten()
        {
            self.blobs.verify(&p.digest)?;
        }
        Ok(())
    }
}

/// Runs the artifact on the reference inputs and compares with the framework's probabilities:
/// the release is refused, naming the worst row and both values, unless every row agrees
/// within [`vigil_inference::equivalence::REFERENCE_TOLERANCE`].
fn check_equivalence(
    model: &vigil_inference::Model,
    contract: &FeatureContract,
    reference: &[u8],
) -> Result<Equivalence> {
    let r =
        vigil_inference::check_reference_predictions(model, reference, contract).map_err(|e| {
            match e {
                vigil_inference::Error::InvalidReference { .. } => {
                    Error::invalid("invalid_reference_predictions", e.to_string())
                }
                other => Error::invalid(
                    "equivalence_failed",
                    format!("the reference predictions cannot be checked: {other}"),
                ),
            }
        })?;
    if !r.passed {
        return Err(Error::invalid(
            "equivalence_failed",
            format!(
                "the artifact does not reproduce the reference predictions: row {} (1-based, header excluded) has probability {} in the reference and {} from the artifact, a difference of {:e} above the tolerance {:e}; {} rows checked. Export the model again from the training code, or check the reference file",
                r.worst_row, r.worst_expected, r.worst_actual, r.max_abs_diff, r.tolerance, r.rows
            ),
        ));
    }
    Ok(Equivalence {
        reference: Pinned {
            digest: Digest::of(reference),
            size: reference.len() as u64,
        },
        rows: r.rows as u64,
        max_abs_diff: r.max_abs_diff,
        worst_row: r.worst_row as u64,
        worst_expected: r.worst_expected,
        worst_actual: r.worst_actual,
        tolerance: r.tolerance,
    })
}

/// Loads the artifact with the native executor (refusing unsupported operators now, not at
/// prediction time) and checks that it fits the contract.
fn check_artifact_against_contract(
    artifact: &[u8],
    contract: &FeatureContract,
) -> Result<vigil_inference::Model> {
    let model = vigil_inference::Model::from_bytes(artifact).map_err(|e| {
        Error::invalid(
            "invalid_artifact",
            format!("the model artifact cannot be served: {e}"),
        )
    })?;
    if !model
        .inputs()
        .iter()
        .any(|i| i.name == contract.model.input)
    {
        let names: Vec<_> = model.inputs().iter().map(|i| i.name.as_str()).collect();
        return Err(Error::invalid(
            "contract_mismatch",
            format!(
                "the contract names input tensor `{}` but the model's inputs are: {}",
                contract.model.input,
                names.join(", ")
            ),
        ));
    }
    if !model
        .outputs()
        .iter()
        .any(|o| o.name == contract.model.output)
    {
        let names: Vec<_> = model.outputs().iter().map(|o| o.name.as_str()).collect();
        return Err(Error::invalid(
            "contract_mismatch",
            format!(
                "the contract names output `{}` but the model's outputs are: {}",
                contract.model.output,
                names.join(", ")
            ),
        ));
    }
    if let Some(n) = model.n_features()
        && n != contract.n_inputs()
    {
        return Err(Error::invalid(
            "contract_mismatch",
            format!(
                "the model takes {n} input features but the contract lists {} (every non-prohibited feature, in order)",
                contract.n_inputs()
            ),
        ));
    }
    Ok(model)
}

fn one_id(
    ids: Vec<String>,
    typed: &str,
    code: &'static str,
    what: &str,
    hint: &str,
) -> Result<String> {
    match ids.len() {
        0 => Err(Error::not_found(
            code,
            format!("no {what} with id `{typed}` (see `{hint}`)"),
        )),
        1 => Ok(ids.into_iter().next().unwrap_or_default()),
        _ => Err(Error::invalid(
            "ambiguous_id",
            format!("`{typed}` matches more than one {what}: give more characters of the id"),
        )),
    }
}
