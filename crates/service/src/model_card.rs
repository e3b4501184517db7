//! The model card of a release, generated from the registry: the source attributes that
//! ONC's HTI-1 rule asks of a predictive decision support intervention (45 CFR
//! 170.315(b)(11)(iv)(B)), each filled from what Vigil recorded — intended use, feature
//! contract, dataset manifests, evaluations, gate policy — or listed as not known to the
//! registry. Nothing is guessed: an attribute without a recorded source stays empty.

use serde::Serialize;
use vigil_domain::policy::EvaluationSummary;
use vigil_domain::{FeatureContract, FeatureRole, SnapshotId};

use crate::{Result, Vigil};

/// One source attribute.
#[derive(Clone, Debug, Serialize)]
pub struct Attribute {
    /// The rule's numbering, e.g. `4.ii`.
    pub id: &'static str,
    pub section: &'static str,
    pub name: &'static str,
    /// `None`: the registry does not know it; the card lists it under "not filled".
    pub value: Option<String>,
    /// Where the value comes from (`intended use`, `feature contract`, `evaluation <id>`, …).
    pub source: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ModelCard {
    pub model: String,
    pub title: String,
    pub release: String,
    pub stage: String,
    pub risk_tier: u8,
    pub attributes: Vec<Attribute>,
}

impl ModelCard {
    pub fn unfilled(&self) -> impl Iterator<Item = &Attribute> {
        self.attributes.iter().filter(|a| a.value.is_none())
    }

    pub fn to_markdown(&self) -> String {
        let mut s = format!(
            "# Model card: {}\n\nModel `{}`, release `{}` (stage: {}, risk tier {}).\n\
             Source attributes of a predictive decision support intervention (HTI-1), filled from the registry.\n",
            self.title, self.model, self.release, self.stage, self.risk_tier
        );
        let mut section = "";
        for a in &self.attributes {
            if a.section != section {
                section = a.section;
                s.push_str(&format!("\n## {section}\n"));
            }
            match &a.value {
                Some(v) => {
                    let src = a.source.as_deref().unwrap_or("registry");
                    s.push_str(&format!(
                        "\n**{} {}** _(from {src})_\n\n{v}\n",
                        a.id, a.name
                    ));
                }
                None => s.push_str(&format!(
                    "\n**{} {}**\n\n_Not recorded in Vigil._\n",
                    a.id, a.name
                )),
            }
        }
        let missing: Vec<String> = self
            .unfilled()
            .map(|a| format!("- {} {}", a.id, a.name))
            .collect();
        if !missing.is_empty() {
            s.push_str(&format!(
                "\n## Not filled\n\nThe registry holds no source for these attributes; the developer must supply them:\n\n{}\n",
                missing.join("\n")
            ));
        }
        s
    }

    pub fn to_html(&self) -> String {
        use vigil_report::escape;
        let mut body = String::new();
        let mut section = "";
        for a in &self.attributes {
            if a.section != section {
                if !section.is_empty() {
                    body.push_str("</dl>\n");
                }
                section = a.section;
                body.push_str(&format!("<h2>{}</h2>\n<dl>\n", escape(section)));
            }
            body.push_str(&format!("<dt>{} {}</dt>\n", escape(a.id), escape(a.name)));
            match &a.value {
                Some(v) => body.push_str(&format!(
                    "<dd><p>{}</p><p class=\"src\">From {}</p></dd>\n",
                    escape(v).replace('\n', "<br>"),
                    escape(a.source.as_deref().unwrap_or("registry"))
                )),
                None => body.push_str("<dd class=\"missing\">Not recorded in Vigil.</dd>\n"),
            }
        }
        if !section.is_empty() {
            body.push_str("</dl>\n");
        }
        let missing: String = self
            .unfilled()
            .map(|a| format!("<li>{} {}</li>", escape(a.id), escape(a.name)))
            .collect();
        format!(
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <title>Model card: {title}</title><style>\
             body{{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#1a1a1a}}\
             dt{{font-weight:600;margin-top:1rem}}dd{{margin:0.25rem 0 0 1rem}}.src{{color:#555;font-size:13px}}\
             .missing{{color:#8a4b00}}h2{{border-bottom:1px solid #ccc;padding-bottom:0.2rem}}\
             </style></head><body>\n<h1>Model card: {title}</h1>\n\
             <p>Model <code>{model}</code>, release <code>{release}</code> — stage {stage}, risk tier {tier}. \
             Source attributes of a predictive decision support intervention (HTI-1), filled from the registry.</p>\n\
             {body}<h2>Not filled</h2><ul>{missing}</ul>\n</body></html>\n",
            title = escape(&self.title),
            model = escape(&self.model),
            release = escape(&self.release),
            stage = escape(&self.stage),
            tier = self.risk_tier,
        )
    }
}

/// Variables the rule names when it asks which demographic and social inputs are used.
const SENSITIVE: &[(&str, &[&str])] = &[
    ("race", &["race"]),
    ("ethnicity", &["ethnicity", "ethnic"]),
    ("language", &["language"]),
    ("sexual orientation", &["sexual_orientation", "orientation"]),
    ("gender identity", &["gender_identity"]),
    ("sex", &["sex", "gender"]),
    ("date of birth / age", &["age", "birth", "dob"]),
    (
        "social determinants of health",
        &["sdoh", "income", "housing", "deprivation", "education"],
    ),
    (
        "health status assessments",
        &["frailty", "functional_status", "disability"],
    ),
];

impl Vigil {
    /// The model card of a release.
    pub async fn model_card(&self, release_id: &str) -> Result<ModelCard> {
        let release = self.get_release(release_id).await?;
        let model = self.get_model(release.manifest.model.as_str()).await?;
        let stage = self.release_stage(&release).await?;
        let contract_bytes = self.blobs.get(&release.manifest.contract.digest)?;
        let contract = std::str::from_utf8(&contract_bytes)
            .ok()
            .and_then(|t| FeatureContract::from_toml(t).ok());
        let training = self
            .get_dataset(&release.manifest.training_data.to_string())
            .await?;
        let evaluations = self.evidence.evaluations(&release.id).await?;
        let policy = self.current_policy().await.ok();
        let u = &model.intended_use;

        let mut a = Vec::new();
        let mut put = |id, section, name, value: Option<String>, source: Option<&str>| {
            a.push(Attribute {
                id,
                section,
                name,
                source: value.as_ref().and(source.map(str::to_owned)),
                value,
            })
        };
        let s1 = "1. Details and output of the intervention";
        put(
            "1.i",
            s1,
            "Name and contact information of the developer",
            Some(format!(
                "Technical owner: {}. Clinical owner: {}.",
                model.technical_owner, model.clinical_owner
            )),
            Some("model record"),
        );
        put("1.ii", s1, "Funding source of the development", None, None);
        put(
            "1.iii",
            s1,
            "Description of the value produced as output",
            Some(u.output.clone()),
            Some("intended use"),
        );
        put(
            "1.iv",
            s1,
            "Output type (prediction, classification, recommendation, …)",
            Some(format!(
                "Prediction: a probability from 0 to 1; decision thresholds {}.",
                release
                    .manifest
                    .thresholds
                    .iter()
                    .map(|t| format!("{t}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            Some("release manifest"),
        );

        let s2 = "2. Purpose of the intervention";
        put(
            "2.i",
            s2,
            "Intended use",
            u.title.clone().map(|t| format!("{t}. {}", u.output)),
            Some("intended use"),
        );
        put(
            "2.ii",
            s2,
            "Intended patient population",
            Some(u.target_population.clone()),
            Some("intended use"),
        );
        put(
            "2.iii",
            s2,
            "Intended user",
            Some(u.who_acts.clone()),
            Some("intended use"),
        );
        put(
            "2.iv",
            s2,
            "Intended decision-making role",
            Some(u.when_uncertain.clone()),
            Some("intended use"),
        );

        let s3 = "3. Cautioned out-of-scope use";
        put(
            "3.i",
            s3,
            "Tasks, situations or populations where use is cautioned against",
            Some(u.target_population.clone()),
            Some("intended use (target population and its exclusions)"),
        );
        put(
            "3.ii",
            s3,
            "Known risks, inappropriate settings or uses, known limitations",
            (!u.limitations.is_empty()).then(|| {
                u.limitations
                    .iter()
                    .map(|l| format!("- {l}"))
                    .collect::<Vec<_>>()
                    .join("\n")
            }),
            Some("intended use"),
        );

        let s4 = "4. Development details and input features";
        put(
            "4.i",
            s4,
            "Inclusion and exclusion criteria of the training data",
            training.snapshot.manifest.inclusion_criteria.clone(),
            Some("training dataset manifest"),
        );
        put(
            "4.ii",
            s4,
            "Use of demographic and social variables as input features",
            contract.as_ref().map(sensitive_use),
            Some("feature contract"),
        );
        // The registry keeps the training file's digest and columns, not its subgroup counts.
        put(
            "4.iii",
            s4,
            "Demographic representativeness of the training data",
            None,
            None,
        );
        put(
            "4.iv",
            s4,
            "Relevance of the training data to the deployed setting",
            relevance(&training.snapshot.manifest),
            Some("training dataset manifest"),
        );

        let s5 = "5. Process used to ensure fairness in development";
        let fairness_gates = policy.as_ref().map(|p| {
            let text = serde_json::to_string(&p.policy).unwrap_or_default();
            text.contains("subgroup")
        });
        put("5.i", s5, "Approach to ensure the output is fair",
            fairness_gates.filter(|x| *x).map(|_| format!(
                "Promotion is gated by subgroup performance under the gate policy in force for risk tier {} \
                 (subgroup ratio and gap gates); every evaluation reports metrics by subgroup with confidence intervals.",
                model.risk_tier.get())),
            Some("gate policy"));
        put("5.ii", s5, "Approaches to manage, reduce or eliminate bias",
            contract.as_ref().and_then(prohibited).map(|p| format!(
                "Prohibited inputs ({p}) are never model inputs; their presence in data fails the data checks.")),
            Some("feature contract"));

        // An evaluation on data from the training data's own sites is internal (temporal or
        // random hold-out); one from other sites, or from data without recorded sites, is
        // external.
        let train_sites = &training.snapshot.manifest.sites;
        let mut internal: Vec<&EvaluationSummary> = Vec::new();
        let mut external: Vec<&EvaluationSummary> = Vec::new();
        let mut ext_sources = Vec::new();
        for e in &evaluations {
            let Some(d) = e.dataset else { continue };
            if d == release.manifest.training_data {
                continue;
            }
            let same_source = match self.get_dataset(&d.to_string()).await {
                Ok(ds) => {
                    let sites = &ds.snapshot.manifest.sites;
                    !sites.is_empty() && sites.iter().all(|s| train_sites.contains(s))
                }
                Err(_) => false,
            };
            if same_source {
                internal.push(e);
            } else {
                external.push(e);
                ext_sources.push(self.dataset_line(d).await);
            }
        }

        let s6 = "6. External validation process";
        put(
            "6.i",
            s6,
            "Data source, clinical setting or environment of validation",
            (!ext_sources.is_empty()).then(|| ext_sources.join("\n")),
            Some("validation dataset manifests"),
        );
        put(
            "6.ii",
            s6,
            "Party that conducted the external testing",
            None,
            None,
        );
        put(
            "6.iii",
            s6,
            "Demographic representativeness of the external data",
            representation(&external),
            Some("evaluation subgroups"),
        );
        put("6.iv", s6, "Description of the validation process",
            (!external.is_empty()).then(|| format!(
                "{} evaluation(s) recorded by Vigil: AUROC with DeLong interval, AUPRC, Brier score, calibration \
                 intercept and slope, ECE, reliability, decision curves and threshold metrics, overall and by subgroup.",
                external.len())),
            Some("evaluations"));

        let s7 = "7. Quantitative measures of performance";
        put(
            "7.i",
            s7,
            "Validity in test data from the source of the training data",
            (!internal.is_empty()).then(|| {
                internal
                    .iter()
                    .map(|e| validity(e))
                    .collect::<Vec<_>>()
                    .join("\n")
            }),
            Some("evaluations on hold-out data from the training sites"),
        );
        put(
            "7.ii",
            s7,
            "Fairness in test data from the source of the training data",
            fairness(&internal),
            Some("evaluation subgroups"),
        );
        put(
            "7.iii",
            s7,
            "Validity in data external to the training data",
            (!external.is_empty()).then(|| {
                external
                    .iter()
                    .map(|e| validity(e))
                    .collect::<Vec<_>>()
                    .join("\n")
            }),
            Some("evaluations"),
        );
        put(
            "7.iv",
            s7,
            "Fairness in data external to the training data",
            fairness(&external),
            Some("evaluation subgroups"),
        );
        put(
            "7.v",
            s7,
            "References to evaluations of use on outcomes",
            None,
            None,
        );

        let s8 = "8. Ongoing maintenance of implementation and use";
        put("8.i", s8, "Update and continued validation or fairness assessment schedule",
            policy.as_ref().map(|p| format!(
                "Gate policy version {} applies; any new release must pass its gates again before promotion.", p.version)),
            Some("gate policy"));
        put("8.ii", s8, "Validity in local data", None, None);
        put("8.iii", s8, "Fairness in local data", None, None);
        put(
            "8.iv",
            s8,
            "References to evaluations of use on outcomes in local data",
            None,
            None,
        );

        Ok(ModelCard {
            model: model.name.to_string(),
            title: u.title.clone().unwrap_or_else(|| model.name.to_string()),
            release: release.id.to_string(),
            stage: stage.to_string(),
            risk_tier: model.risk_tier.get(),
            attributes: a,
        })
    }

    async fn dataset_line(&self, id: SnapshotId) -> String {
        match self.get_dataset(&id.to_string()).await {
            Ok(d) => {
                let m = &d.snapshot.manifest;
                let mut parts = vec![format!(
                    "Dataset `{}` ({} rows)",
                    d.snapshot.name, d.snapshot.rows
                )];
                if !m.sites.is_empty() {
                    parts.push(format!("sites: {}", m.sites.join(", ")));
                }
                if let Some(w) = &m.time_window {
                    parts.push(format!("period {} to {}", w.start, w.end));
                }
                if let Some(i) = &m.inclusion_criteria {
                    parts.push(i.clone());
                }
                parts.join("; ")
            }
            Err(_) => format!("Dataset {id}"),
        }
    }
}

fn sensitive_use(c: &FeatureContract) -> String {
    let mut lines = Vec::new();
    for (label, names) in SENSITIVE {
        let hits: Vec<String> = c
            .features
            .iter()
            .filter(|f| {
                let n = f.name.to_ascii_lowercase();
                names.iter().any(|k| n.contains(k))
            })
            .map(|f| {
                let how = match f.role {
                    FeatureRole::Prohibited => "prohibited, never an input",
                    FeatureRole::Required => "required input",
                    FeatureRole::Optional => "optional input",
                };
                format!("`{}` ({how})", f.name)
            })
            .collect();
        lines.push(if hits.is_empty() {
            format!("- {label}: not an input")
        } else {
            format!("- {label}: {}", hits.join(", "))
        });
    }
    lines.join("\n")
}

fn prohibited(c: &FeatureContract) -> Option<String> {
    let p: Vec<&str> = c
        .features
        .iter()
        .filter(|f| f.role == FeatureRole::Prohibited)
        .map(|f| f.name.as_str())
        .collect();
    (!p.is_empty()).then(|| p.join(", "))
}

fn relevance(m: &vigil_domain::DatasetManifest) -> Option<String> {
    let mut parts = Vec::new();
    if !m.source_systems.is_empty() {
        parts.push(format!("Source systems: {}.", m.source_systems.join("; ")));
    }
    if !m.sites.is_empty() {
        parts.push(format!("Sites: {}.", m.sites.join(", ")));
    }
    if let Some(w) = &m.time_window {
        parts.push(format!("Period: {} to {}.", w.start, w.end));
    }
    if let Some(n) = &m.notes {
        parts.push(n.clone());
    }
    (!parts.is_empty()).then(|| parts.join(" "))
}

fn representation(evals: &[&EvaluationSummary]) -> Option<String> {
    let e = evals.last()?;
    if e.subgroups.is_empty() {
        return None;
    }
    Some(
        e.subgroups
            .iter()
            .map(|g| {
                let prev = g
                    .metrics
                    .get("prevalence")
                    .map(|p| format!(", outcome prevalence {:.1}%", 100.0 * p))
                    .unwrap_or_default();
                format!("- {} = {}: n = {}{prev}", g.column, g.group, g.n)
            })
            .collect::<Vec<_>>()
            .join("\n"),
    )
}

fn validity(e: &EvaluationSummary) -> String {
    let m = |k: &str| e.metrics.get(k).copied();
    let mut parts = vec![format!("Evaluation {}:", e.id)];
    if let Some(v) = m("auroc") {
        let ci = match (m("auroc.ci_low"), m("auroc.ci_high")) {
            (Some(l), Some(h)) => format!(" (95% CI {l:.3}–{h:.3})"),
            _ => String::new(),
        };
        parts.push(format!("AUROC {v:.3}{ci}"));
    }
    for (k, label) in [
        ("auprc", "AUPRC"),
        ("brier", "Brier"),
        ("calibration.intercept", "calibration intercept"),
        ("calibration.slope", "calibration slope"),
        ("calibration.ece", "ECE"),
    ] {
        if let Some(v) = m(k) {
            parts.push(format!("{label} {v:.3}"));
        }
    }
    parts.join(" ")
}

fn fairness(evals: &[&EvaluationSummary]) -> Option<String> {
    let e = evals.last()?;
    let lines: Vec<String> = e
        .subgroups
        .iter()
        .map(|g| {
            if g.too_small {
                format!("- {} = {}: too few cases to estimate", g.column, g.group)
            } else {
                let au = g
                    .metrics
                    .get("auroc")
                    .map(|v| format!("AUROC {v:.3}"))
                    .unwrap_or_else(|| "AUROC not estimable".into());
                let sl = g
                    .metrics
                    .get("calibration.slope")
                    .map(|v| format!(", calibration slope {v:.2}"))
                    .unwrap_or_default();
                format!("- {} = {} (n = {}): {au}{sl}", g.column, g.group, g.n)
            }
        })
        .collect();
    (!lines.is_empty()).then(|| lines.join("\n"))
}
