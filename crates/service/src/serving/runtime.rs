//! The loaded runtime: for every model, its production release (answers requests) and its
//! shadow release (scored off the response path), each a [`Scorer`] built from the release's
//! verified artifact and contract. A reload builds a complete new table — reusing releases
//! already loaded — and it replaces the old one in a single pointer swap, so a request sees
//! either the old table or the new one, never a half-loaded model.

use std::collections::HashMap;
use std::sync::Arc;

use vigil_domain::{ModelName, Release, ReleaseId, Stage};
use vigil_inference::Scorer;

use crate::monitor::DeploymentControls;
use crate::{Error, Result, Vigil};

/// One release, loaded and checked against its contract.
pub struct Loaded {
    pub release: Release,
    pub scorer: Scorer,
    /// The contract's model inputs, in the order the model takes them.
    pub inputs: Vec<String>,
    /// The release's short id, as the metrics label it.
    pub short_id: String,
}

impl Loaded {
    pub fn id(&self) -> &ReleaseId {
        &self.release.id
    }

    pub fn thresholds(&self) -> &[f64] {
        &self.release.manifest.thresholds
    }
}

/// What serves one model.
pub struct Deployment {
    pub model: ModelName,
    pub active: Option<Arc<Loaded>>,
    pub shadow: Option<Arc<Loaded>>,
    /// The monitor's suppress and disable controls in force when the runtime was built.
    pub controls: DeploymentControls,
}

/// The whole runtime at one moment.
#[derive(Default)]
pub struct Deployments {
    pub models: HashMap<String, Arc<Deployment>>,
    /// Releases in production or shadow that could not be loaded, with why (no patient data).
    pub errors: Vec<(String, ReleaseId, String)>,
}

impl Deployments {
    pub fn get(&self, model: &str) -> Option<&Arc<Deployment>> {
        self.models.get(model)
    }

    fn find(&self, id: &ReleaseId) -> Option<Arc<Loaded>> {
        self.models.values().find_map(|d| {
            [&d.active, &d.shadow]
                .into_iter()
                .flatten()
                .find(|l| l.id() == id)
                .cloned()
        })
    }

    /// `(model, release, mode)` of everything loaded, for the metrics.
    pub fn listing(&self) -> Vec<(String, String, &'static str)> {
        let mut v = Vec::new();
        for d in self.models.values() {
            for (l, mode) in [(&d.active, "active"), (&d.shadow, "shadow")] {
                if let Some(l) = l {
                    v.push((d.model.to_string(), l.id().to_string(), mode));
                }
            }
        }
        v.sort();
        v
    }
}

/// Loads a release's artifact (its digest verified by the blob store) and contract.
pub fn load_release(vigil: &Vigil, release: &Release) -> Result<Loaded> {
    let contract = vigil.release_contract(release)?;
    let artifact = vigil.release_artifact(release)?;
    let model = vigil_inference::Model::from_bytes(&artifact).map_err(|e| {
        Error::internal(format!(
            "release {} cannot be loaded: {e}",
            release.id.short()
        ))
    })?;
    let inputs = contract.inputs().map(|f| f.name.clone()).collect();
    let scorer = Scorer::new(Arc::new(contract), Arc::new(model)).map_err(|e| {
        Error::internal(format!(
            "release {} does not fit its contract: {e}",
            release.id.short()
        ))
    })?;
    Ok(Loaded {
        short_id: release.id.short(),
        release: release.clone(),
        scorer,
        inputs,
    })
}

/// Builds the runtime for the stages now on record, reusing what `previous` already loaded.
pub async fn build(vigil: &Vigil, previous: &Deployments) -> Result<Deployments> {
    let mut next = Deployments::default();
    for m in vigil.list_models().await? {
        let stages = vigil.list_release_stages(m.name.as_str()).await?;
        let mut slot = |stage: Stage| -> Option<Arc<Loaded>> {
            let (r, _) = stages.iter().find(|(_, s)| *s == stage)?;
            if let Some(l) = previous.find(&r.id) {
                return Some(l);
            }
            match load_release(vigil, r) {
                Ok(l) => Some(Arc::new(l)),
                Err(e) => {
                    next.errors
                        .push((m.name.to_string(), r.id, e.message.clone()));
                    None
                }
            }
        };
        let active = slot(Stage::Production);
        let shadow = slot(Stage::Shadow);
        if active.is_some() || shadow.is_some() {
            let controls = vigil.deployment_controls(m.name.as_str()).await?;
            next.models.insert(
                m.name.to_string(),
                Arc::new(Deployment {
                    model: m.name.clone(),
                    active,
                    shadow,
                    controls,
                }),
            );
        }
    }
    Ok(next)
}
