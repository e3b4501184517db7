//! FHIR R4 resources → the named inputs of a feature contract, with the reason for every value
//! that could not be used.
//!
//! Resources come from prefetch or from a FHIR search (single resources or Bundles, nested
//! Bundles flattened). For each contract feature with a `[feature.fhir]` mapping:
//! - an Observation counts when any of its codings is one of the feature's codes — once, however
//!   many of its codings match, and once however many times it appears (deduplicated by id);
//! - with `component`, the value is the matching component's (blood-pressure panels);
//! - status `final`, `amended`, `corrected` or `preliminary` counts; `registered`,
//!   `cancelled`, `entered-in-error` and `unknown` are ignored;
//! - the time is `effectiveDateTime`, `effectiveInstant`, the end (else start) of
//!   `effectivePeriod`, else `issued`; values after the prediction time or outside the window are
//!   not used;
//! - the value is a UCUM `valueQuantity` converted to the contract's unit (with the molar mass
//!   when given); a unit that is not UCUM or cannot be converted makes the value unusable, with
//!   the reason — never used as if it were in the right unit;
//! - the usable values are aggregated (latest, first, min, max, mean, count);
//! - `Patient` gives `age` (completed years at the prediction time, from `birthDate`) and
//!   `gender`; a Patient who is not the context's patient is not used.
//!
//! Observations that no feature claims are listed with their codings (never their values), so a
//! locally coded result is flagged rather than silently dropped.

use std::collections::{BTreeMap, HashSet};

use serde::Serialize;
use vigil_domain::contract::{Aggregation, FhirMapping};
use vigil_domain::units::{Unit, convert_with_molar_mass};
use vigil_domain::{Feature, FeatureContract, Timestamp};
use vigil_inference::contract::{Input, Inputs};

pub use crate::pruned::{Pruned, PrunedByKey, READ_MEMBERS};

const UCUM: &str = "http://unitsofmeasure.org";
/// Deepest Bundle nesting followed.
const MAX_DEPTH: usize = 4;
/// Most unclaimed Observations listed.
const MAX_UNCLAIMED: usize = 20;

/// What the mapping did for one feature.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MappedFeature {
    pub name: String,
    /// `found`, `not_found`, or `unusable` (resources matched but none could be used).
    pub status: &'static str,
    /// For `unusable` and `not_found`: why, without values. For `found`: conversions made.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// How many resources matched the feature's codes.
    pub matched: usize,
    /// How many of them were used for the value.
    pub used: usize,
    /// The reason code when values were refused: `unconvertible`, `not_ucum`, `no_value`, …
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refused: Option<&'static str>,
}

/// An Observation no feature of the contract claims.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Unclaimed {
    pub source: String,
    pub codes: Vec<String>,
}

/// The mapping's result: inputs for the scorer and the account of how they were found.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Mapped {
    #[serde(skip)]
    pub inputs: Inputs,
    pub features: Vec<MappedFeature>,
    pub unclaimed: Vec<Unclaimed>,
    /// Resources ignored as a whole: another patient's, a status that does not count.
    pub ignored: Vec<String>,
}

impl Mapped {
    pub fn feature(&self, name: &str) -> Option<&MappedFeature> {
        self.features.iter().find(|f| f.name == name)
    }
}

/// Collects the resources in `v`: the resource itself, or the entries of a Bundle (nested
/// Bundles flattened). OperationOutcomes and entries without a resource are skipped.
pub fn collect<'a>(v: &'a Pruned, out: &mut Vec<&'a Pruned>) {
    collect_depth(v, out, 0);
}

fn collect_depth<'a>(v: &'a Pruned, out: &mut Vec<&'a Pruned>, depth: usize) {
    let Some(rt) = v.get("resourceType").and_then(Pruned::as_str) else {
        return;
    };
    match rt {
        "Bundle" if depth < MAX_DEPTH => {
            if let Some(entries) = v.get("entry").and_then(Pruned::as_array) {
                for e in entries {
                    if let Some(r) = e.get("resource") {
                        collect_depth(r, out, depth + 1);
                    }
                }
            }
        }
        "Bundle" | "OperationOutcome" => {}
        _ => out.push(v),
    }
}

fn id_of(r: &Pruned) -> Option<&str> {
    r.get("id").and_then(Pruned::as_str)
}

fn source_of(r: &Pruned, index: usize) -> String {
    let rt = r
        .get("resourceType")
        .and_then(Pruned::as_str)
        .unwrap_or("Resource");
    match id_of(r) {
        Some(id) => format!("{rt}/{id}"),
        None => format!("{rt}#{index}"),
    }
}

fn codings(v: Option<&Pruned>) -> impl Iterator<Item = (&str, &str)> {
    v.and_then(|c| c.get("coding"))
        .and_then(Pruned::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| {
            Some((
                c.get("system").and_then(Pruned::as_str)?,
                c.get("code").and_then(Pruned::as_str)?,
            ))
        })
}

fn has_code(concept: Option<&Pruned>, wanted: &[String]) -> bool {
    codings(concept).any(|(s, c)| {
        wanted
            .iter()
            .any(|w| w.split_once('|').is_some_and(|(ws, wc)| ws == s && wc == c))
    })
}

/// Whether a `subject`/`patient` reference names the context patient (absent counts as yes:
/// the search was scoped to the patient).
fn is_patient(reference: Option<&Pruned>, patient_id: &str) -> bool {
    let Some(r) = reference
        .and_then(|s| s.get("reference"))
        .and_then(Pruned::as_str)
    else {
        return true;
    };
    let tail = r.rsplit_once('/').map_or(r, |(_, t)| t);
    let tail = tail.strip_prefix("urn:uuid:").unwrap_or(tail);
    tail == patient_id || r == format!("urn:uuid:{patient_id}")
}

/// The clinically relevant time of an Observation.
pub fn effective_time(r: &Pruned) -> Option<Timestamp> {
    let t = |k: &str| r.get(k).and_then(Pruned::as_str).and_then(parse_fhir_time);
    t("effectiveDateTime")
        .or_else(|| t("effectiveInstant"))
        .or_else(|| {
            let p = r.get("effectivePeriod")?;
            p.get("end")
                .or_else(|| p.get("start"))
                .and_then(Pruned::as_str)
                .and_then(parse_fhir_time)
        })
        .or_else(|| t("issued"))
}

/// FHIR `dateTime`/`instant`: `YYYY`, `YYYY-MM`, `YYYY-MM-DD` or a full time with offset.
/// Partial dates are taken at their start.
pub fn parse_fhir_time(s: &str) -> Option<Timestamp> {
    match s.len() {
        4 => Timestamp::parse(&format!("{s}-01-01")).ok(),
        7 => Timestamp::parse(&format!("{s}-01")).ok(),
        _ => Timestamp::parse(s).ok(),
    }
}

fn status_counts(r: &Pruned) -> bool {
    matches!(
        r.get("status").and_then(Pruned::as_str),
        Some("final" | "amended" | "corrected" | "preliminary")
    )
}

/// A value refused, and why (no values in the text).
struct Refusal {
    code: &'static str,
    reason: String,
}

/// One usable value, before aggregation.
struct Candidate {
    value: f64,
    /// The value in the contract's unit.
    converted: f64,
    unit: Option<String>,
    at: Option<Timestamp>,
    source: String,
}

fn quantity(r: &Pruned, mapping: &FhirMapping) -> Result<(f64, Option<String>), Refusal> {
    let holder = match &mapping.component {
        None => r,
        Some(c) => {
            let comp = r
                .get("component")
                .and_then(Pruned::as_array)
                .into_iter()
                .flatten()
                .find(|comp| has_code(comp.get("code"), std::slice::from_ref(c)));
            match comp {
                Some(comp) => comp,
                None => {
                    return Err(Refusal {
                        code: "no_component",
                        reason: format!("has no component {c}"),
                    });
                }
            }
        }
    };
    if let Some(v) = holder.get("valueInteger").and_then(Pruned::as_f64) {
        return Ok((v, None));
    }
    let Some(q) = holder.get("valueQuantity") else {
        return Err(Refusal {
            code: "no_value",
            reason: "has no valueQuantity".into(),
        });
    };
    let Some(v) = q.get("value").and_then(Pruned::as_f64) else {
        return Err(Refusal {
            code: "no_value",
            reason: "has a Quantity without a value".into(),
        });
    };
    if q.get("comparator").is_some() {
        return Err(Refusal {
            code: "comparator",
            reason: "has a value with a comparator (< or >), not an exact value".into(),
        });
    }
    let system = q.get("system").and_then(Pruned::as_str);
    let code = q.get("code").and_then(Pruned::as_str);
    match (system, code) {
        (Some(UCUM), Some(c)) => Ok((v, Some(c.to_string()))),
        (None, None) if q.get("unit").is_none() => Ok((v, None)),
        (Some(s), _) if s != UCUM => Err(Refusal {
            code: "not_ucum",
            reason: format!("gives its unit in {s}, not as a UCUM code"),
        }),
        _ => Err(Refusal {
            code: "not_ucum",
            reason: "gives its unit without a UCUM code".into(),
        }),
    }
}

fn to_contract_unit(
    v: f64,
    unit: Option<&str>,
    feature: &Feature,
    molar_mass: Option<f64>,
) -> Result<f64, Refusal> {
    let Some(target) = &feature.parsed_unit else {
        return Ok(v);
    };
    let Some(code) = unit else {
        if target.code() == "1" {
            return Ok(v);
        }
        return Err(Refusal {
            code: "no_unit",
            reason: format!("has no unit, the contract expects {}", target.code()),
        });
    };
    if code == target.code() {
        return Ok(v);
    }
    let from = Unit::parse(code).map_err(|_| Refusal {
        code: "unconvertible",
        reason: format!("unit `{code}` is not a UCUM unit Vigil knows"),
    })?;
    let r = match molar_mass {
        Some(mm) => convert_with_molar_mass(v, &from, target, mm),
        None => from.convert(v, target),
    };
    r.map_err(|_| Refusal {
        code: "unconvertible",
        reason: format!(
            "unit `{code}` cannot be converted to `{}`{}",
            target.code(),
            if molar_mass.is_none() {
                " (no molar mass in the contract)"
            } else {
                ""
            }
        ),
    })
}

fn completed_years(birth: &str, now: Timestamp) -> Option<f64> {
    // Only the date part matters; a birthDate may be YYYY, YYYY-MM or YYYY-MM-DD.
    let b = parse_fhir_time(birth.get(..10.min(birth.len()))?)?;
    let (by, bm, bd) = b.date();
    let (ny, nm, nd) = now.date();
    if b > now {
        return None;
    }
    let mut years = ny - by;
    if (nm, nd) < (bm, bd) {
        years -= 1;
    }
    Some(years as f64)
}

/// Maps `resources` to the inputs of `contract` at prediction time `now`, for the patient
/// `patient_id`.
pub fn map_inputs(
    contract: &FeatureContract,
    resources: &[&Pruned],
    patient_id: &str,
    now: Timestamp,
) -> Mapped {
    let mut mapped = Mapped::default();
    // Deduplicate: the same resource may arrive under several prefetch keys.
    let mut seen = HashSet::new();
    let mut obs: Vec<(usize, &Pruned)> = Vec::new();
    let mut patients: Vec<&Pruned> = Vec::new();
    for (i, r) in resources.iter().enumerate() {
        let rt = r.get("resourceType").and_then(Pruned::as_str).unwrap_or("");
        if let Some(id) = id_of(r)
            && !seen.insert((rt, id))
        {
            continue;
        }
        match rt {
            "Observation" => {
                if !is_patient(r.get("subject"), patient_id) {
                    mapped
                        .ignored
                        .push(format!("{}: another patient's", source_of(r, i)));
                } else if !status_counts(r) {
                    let st = r.get("status").and_then(Pruned::as_str).unwrap_or("none");
                    mapped
                        .ignored
                        .push(format!("{}: status {st}", source_of(r, i)));
                } else {
                    obs.push((i, r));
                }
            }
            "Patient" => {
                if id_of(r) == Some(patient_id) {
                    patients.push(r);
                } else {
                    mapped
                        .ignored
                        .push(format!("{}: not the context patient", source_of(r, i)));
                }
            }
            _ => {}
        }
    }
    let mut claimed = vec![false; obs.len()];
    for feature in contract.inputs() {
        let Some(m) = &feature.fhir else { continue };
        let mf = match m.resource.as_str() {
            "Patient" => map_patient(feature, m, &patients, now, &mut mapped.inputs),
            _ => map_observation(feature, m, &obs, &mut claimed, now, &mut mapped.inputs),
        };
        mapped.features.push(mf);
    }
    for ((i, r), c) in obs.iter().zip(&claimed) {
        if !c && mapped.unclaimed.len() < MAX_UNCLAIMED {
            mapped.unclaimed.push(Unclaimed {
                source: source_of(r, *i),
                codes: codings(r.get("code"))
                    .map(|(s, c)| format!("{s}|{c}"))
                    .collect(),
            });
        }
    }
    mapped
}

fn map_patient(
    feature: &Feature,
    m: &FhirMapping,
    patients: &[&Pruned],
    now: Timestamp,
    inputs: &mut Inputs,
) -> MappedFeature {
    let mut mf = MappedFeature {
        name: feature.name.clone(),
        status: "not_found",
        reason: None,
        matched: patients.len(),
        used: 0,
        refused: None,
    };
    let Some(p) = patients.first() else {
        mf.reason = Some("no Patient resource for the context patient".into());
        return mf;
    };
    let source = source_of(p, 0);
    match m.field.as_deref() {
        Some("age") => match p.get("birthDate").and_then(Pruned::as_str) {
            Some(b) => match completed_years(b, now) {
                Some(y) => {
                    // In years; the scorer converts to the contract's unit if it is another.
                    let input = Input::number(y).with_unit("a").with_source(source);
                    inputs.insert(feature.name.clone(), input);
                    mf.status = "found";
                    mf.used = 1;
                }
                None => {
                    mf.status = "unusable";
                    mf.refused = Some("invalid_date");
                    mf.reason = Some("birthDate is not a date before the prediction time".into());
                }
            },
            None => {
                mf.status = "unusable";
                mf.refused = Some("no_value");
                mf.reason = Some("the Patient has no birthDate".into());
            }
        },
        Some("gender") => match p.get("gender").and_then(Pruned::as_str) {
            Some(g) => {
                inputs.insert(feature.name.clone(), Input::text(g).with_source(source));
                mf.status = "found";
                mf.used = 1;
            }
            None => {
                mf.status = "unusable";
                mf.refused = Some("no_value");
                mf.reason = Some("the Patient has no gender".into());
            }
        },
        _ => {}
    }
    mf
}

fn map_observation(
    feature: &Feature,
    m: &FhirMapping,
    obs: &[(usize, &Pruned)],
    claimed: &mut [bool],
    now: Timestamp,
    inputs: &mut Inputs,
) -> MappedFeature {
    let mut candidates: Vec<Candidate> = Vec::new();
    let mut refusals: BTreeMap<&'static str, (usize, String)> = BTreeMap::new();
    let mut refuse = |code: &'static str, reason: String| {
        let e = refusals.entry(code).or_insert((0, reason));
        e.0 += 1;
    };
    let mut matched = 0;
    for (k, (i, r)) in obs.iter().enumerate() {
        if !has_code(r.get("code"), &m.codes) {
            continue;
        }
        claimed[k] = true;
        matched += 1;
        let source = source_of(r, *i);
        let at = effective_time(r);
        match at {
            Some(t) if t > now => {
                refuse("future", "observed after the prediction time".into());
                continue;
            }
            Some(t) => {
                if let Some(w) = m.window
                    && now.since(t) > w
                {
                    refuse(
                        "outside_window",
                        format!("observed before the window of {w}"),
                    );
                    continue;
                }
            }
            None if m.window.is_some() || feature.max_age.is_some() => {
                refuse(
                    "no_time",
                    "has no effective time, so its age cannot be checked".into(),
                );
                continue;
            }
            None => {}
        }
        let (value, unit) = match quantity(r, m) {
            Ok(x) => x,
            Err(e) => {
                refuse(e.code, format!("{source} {}", e.reason));
                continue;
            }
        };
        if !value.is_finite() {
            refuse(
                "no_value",
                format!("{source} has a value that is not a number"),
            );
            continue;
        }
        match to_contract_unit(value, unit.as_deref(), feature, m.molar_mass) {
            Ok(converted) => candidates.push(Candidate {
                value,
                converted,
                unit,
                at,
                source,
            }),
            Err(e) => refuse(e.code, format!("{source} {}", e.reason)),
        }
    }
    let mut mf = MappedFeature {
        name: feature.name.clone(),
        status: "found",
        reason: None,
        matched,
        used: 0,
        refused: None,
    };
    if candidates.is_empty() {
        if matched == 0 {
            mf.status = "not_found";
            mf.reason = Some(format!("no Observation with code {}", m.codes.join(" or ")));
        } else {
            mf.status = "unusable";
            // The most telling refusal first: unit problems before age problems.
            let order = [
                "unconvertible",
                "not_ucum",
                "no_unit",
                "no_component",
                "comparator",
                "no_value",
                "no_time",
                "future",
                "outside_window",
            ];
            let top = order.iter().find_map(|c| refusals.get_key_value(c));
            if let Some((code, (n, reason))) = top {
                mf.refused = Some(code);
                let more = refusals.values().map(|(n, _)| n).sum::<usize>() - n;
                mf.reason = Some(if more > 0 {
                    format!(
                        "{matched} matching Observations, none usable: {reason} (and {more} other refusals)"
                    )
                } else {
                    format!("{matched} matching Observation(s), none usable: {reason}")
                });
            }
        }
        return mf;
    }
    let unit_code = feature.unit.clone();
    let pick = |c: &Candidate| {
        let mut input = Input::number(c.value).with_source(c.source.clone());
        if let Some(u) = c.unit.clone().or_else(|| unit_code.clone()) {
            input = input.with_unit(u);
        }
        if let Some(t) = c.at {
            input = input.observed_at(t);
        }
        input
    };
    let by_time = |a: &&Candidate, b: &&Candidate| a.at.cmp(&b.at);
    let by_value = |a: &&Candidate, b: &&Candidate| a.converted.total_cmp(&b.converted);
    let input = match m.aggregation {
        // Ties keep the first listed.
        Aggregation::Latest => candidates.iter().rev().max_by(by_time).map(pick),
        Aggregation::First => candidates.iter().min_by(by_time).map(pick),
        Aggregation::Min => candidates.iter().min_by(by_value).map(pick),
        Aggregation::Max => candidates.iter().max_by(by_value).map(pick),
        Aggregation::Mean | Aggregation::Count => {
            let n = candidates.len() as f64;
            let v = if m.aggregation == Aggregation::Mean {
                candidates.iter().map(|c| c.converted).sum::<f64>() / n
            } else {
                n
            };
            let latest = candidates.iter().filter_map(|c| c.at).max();
            let mut input = Input::number(v).with_source(format!(
                "{} of {} Observations",
                if m.aggregation == Aggregation::Mean {
                    "mean"
                } else {
                    "count"
                },
                candidates.len()
            ));
            if m.aggregation == Aggregation::Mean
                && let Some(u) = &unit_code
            {
                input = input.with_unit(u.clone());
            }
            if let Some(t) = latest {
                input = input.observed_at(t);
            }
            Some(input)
        }
    };
    mf.used = match m.aggregation {
        Aggregation::Mean | Aggregation::Count => candidates.len(),
        _ => 1,
    };
    if !refusals.is_empty() {
        let n: usize = refusals.values().map(|(n, _)| n).sum();
        mf.reason = Some(format!("{n} matching Observation(s) not used"));
    }
    if let Some(i) = input {
        inputs.insert(feature.name.clone(), i);
    }
    mf
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::Value;
    use vigil_inference::contract::InputValue;

    fn contract() -> FeatureContract {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../examples/deterioration/contract.toml");
        FeatureContract::from_toml(&std::fs::read_to_string(p).unwrap()).unwrap()
    }

    fn fhir(rel: &str) -> Pruned {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/data/fhir")
            .join(rel);
        serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
    }

    fn num(m: &Mapped, name: &str) -> (f64, Option<String>) {
        let i = &m.inputs[name];
        match i.value {
            InputValue::Number(v) => (v, i.unit.clone()),
            _ => panic!("{name} is not a number"),
        }
    }

    /// `v` without the members the mapping does not read, at every depth.
    fn pruned_reference(v: &Value) -> Value {
        match v {
            Value::Object(m) => Value::Object(
                m.iter()
                    .filter(|(k, _)| READ_MEMBERS.contains(&k.as_str()))
                    .map(|(k, v)| (k.clone(), pruned_reference(v)))
                    .collect(),
            ),
            Value::Array(a) => Value::Array(a.iter().map(pruned_reference).collect()),
            _ => v.clone(),
        }
    }

    #[test]
    fn pruned_resources_map_as_the_whole_ones() {
        let root =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/fhir");
        let (mut files, mut found, mut dropped) = (0, 0, 0usize);
        for dir in ["spec-r4-examples", "synthea"] {
            for e in std::fs::read_dir(root.join(dir)).unwrap() {
                let path = e.unwrap().path();
                if path.extension().is_none_or(|x| x != "json") {
                    continue;
                }
                let bytes = std::fs::read(&path).unwrap();
                let whole: Value = serde_json::from_slice(&bytes).unwrap();
                let pruned: Pruned = serde_json::from_slice(&bytes).unwrap();
                // Parsed pruned, and pruned once parsed whole: the same members.
                assert_eq!(
                    pruned.to_value(),
                    pruned_reference(&whole),
                    "{}",
                    path.display()
                );
                let via_whole = Pruned::from_value(&whole).to_value();
                assert_eq!(pruned.to_value(), via_whole, "{}", path.display());
                dropped += bytes.len() - serde_json::to_vec(&pruned.to_value()).unwrap().len();
                let mut rs = vec![];
                collect(&pruned, &mut rs);
                let patient = rs
                    .iter()
                    .find(|r| r.get("resourceType").and_then(Pruned::as_str) == Some("Patient"))
                    .and_then(|r| id_of(r))
                    .unwrap_or("")
                    .to_string();
                // Just after the newest observation, so that the window holds values.
                let newest = rs.iter().filter_map(|r| effective_time(r)).max();
                let times = [
                    newest.map(|t| t.plus(vigil_domain::Duration::parse("1m").unwrap())),
                    Timestamp::parse("2020-03-03T20:00:00Z").ok(),
                ];
                for now in times.into_iter().flatten() {
                    // Every member the mapping reads is one parsing keeps: `Pruned::get`
                    // panics on any other in this (debug) build.
                    let m = map_inputs(&contract(), &rs, &patient, now);
                    found += m.features.iter().filter(|f| f.status == "found").count();
                }
                files += 1;
            }
        }
        assert!(files >= 20, "only {files} example files");
        assert!(found >= 20, "the examples map to only {found} values");
        assert!(dropped > 1_000_000, "pruning dropped only {dropped} bytes");
    }

    #[test]
    fn vital_signs_from_a_synthea_patient() {
        let b = fhir(
            "synthea/covid_juvenile_Denisha680_Keeling57_6a93e0ad-9bd0-6d85-34a7-015186f7880a.json",
        );
        let mut rs = vec![];
        collect(&b, &mut rs);
        let now = Timestamp::parse("2020-03-03T20:00:00Z").unwrap();
        let m = map_inputs(
            &contract(),
            &rs,
            "6a93e0ad-9bd0-6d85-34a7-015186f7880a",
            now,
        );
        assert_eq!(num(&m, "heart_rate").0, 131.1);
        assert_eq!(num(&m, "resp_rate").0, 14.921);
        assert_eq!(num(&m, "temperature"), (37.978, Some("Cel".into())));
        assert_eq!(num(&m, "spo2").0, 78.02);
        // Blood pressure from the systolic component of the panel.
        assert_eq!(num(&m, "sbp"), (131.0, Some("mm[Hg]".into())));
        // The SpO2 observation carries both codes: one match, one value.
        assert_eq!(m.feature("spo2").unwrap().matched, 1);
        assert_eq!(
            m.inputs["heart_rate"].observed_at,
            Some(Timestamp::parse("2020-03-03T19:01:54Z").unwrap())
        );
        assert!(
            m.inputs["heart_rate"]
                .source
                .as_deref()
                .unwrap()
                .starts_with("Observation/")
        );
        // A child: age 8 at the time, gender female (the scorer then refuses age < 18).
        assert_eq!(num(&m, "age").0, 8.0);
        assert_eq!(m.inputs["sex"].value, InputValue::Text("female".into()));
        // No lab results in this bundle.
        assert_eq!(m.feature("creatinine").unwrap().status, "not_found");
        // Twelve hours later everything charted is outside the 12 h window.
        let later = now.plus(vigil_domain::Duration::parse("13h").unwrap());
        let m = map_inputs(
            &contract(),
            &rs,
            "6a93e0ad-9bd0-6d85-34a7-015186f7880a",
            later,
        );
        let hr = m.feature("heart_rate").unwrap();
        assert_eq!(
            (hr.status, hr.refused),
            ("unusable", Some("outside_window"))
        );
        assert!(!m.inputs.contains_key("heart_rate"));
    }

    #[test]
    fn every_synthea_encounter_maps_its_vitals() {
        for (f, id, t) in [
            (
                "covid_juvenile_Cris921_Rath779_d4519c92-d241-b2b2-7360-291d60be699e.json",
                "d4519c92-d241-b2b2-7360-291d60be699e",
                "2020-02-29T18:00:00Z",
            ),
            (
                "covid_juvenile_Hipolito984_Schulist381_6b9c211c-2c38-3955-43a0-4d285c714fab.json",
                "6b9c211c-2c38-3955-43a0-4d285c714fab",
                "2020-03-02T12:00:00Z",
            ),
        ] {
            let b = fhir(&format!("synthea/{f}"));
            let mut rs = vec![];
            collect(&b, &mut rs);
            let m = map_inputs(&contract(), &rs, id, Timestamp::parse(t).unwrap());
            for name in [
                "heart_rate",
                "resp_rate",
                "temperature",
                "spo2",
                "sbp",
                "age",
                "sex",
            ] {
                assert_eq!(m.feature(name).unwrap().status, "found", "{f} {name}");
            }
        }
    }

    #[test]
    fn creatinine_in_mg_dl_is_converted_with_the_molar_mass() {
        let b = fhir("synthea/smart_Lupe_Little_f8a42e66-8c03-4ee6-85e3-3817c2942de1.json");
        let mut rs = vec![];
        collect(&b, &mut rs);
        let mut c = contract();
        for f in &mut c.features {
            if let Some(m) = &mut f.fhir {
                m.window = None;
            }
            f.max_age = None;
        }
        let now = Timestamp::parse("2020-01-01T00:00:00Z").unwrap();
        let m = map_inputs(&c, &rs, "31052ccc-7804-4268-b953-741322eed47e", now);
        let (v, unit) = num(&m, "creatinine");
        assert_eq!(unit.as_deref(), Some("mg/dL"));
        let target = c
            .find_feature("creatinine")
            .unwrap()
            .parsed_unit
            .clone()
            .unwrap();
        let umol =
            convert_with_molar_mass(v, &Unit::parse("mg/dL").unwrap(), &target, 113.12).unwrap();
        assert!((umol / v - 88.40).abs() < 0.01, "{umol}");
        // WBC in 10*3/uL converts to 10*9/L one to one.
        assert_eq!(num(&m, "wbc").1.as_deref(), Some("10*3/uL"));
        assert_eq!(num(&m, "age").0, 37.0);
        assert_eq!(m.inputs["sex"].value, InputValue::Text("male".into()));
    }

    #[test]
    fn spec_examples_blood_pressure_cancelled_and_local_creatinine() {
        let files = [
            "observation-example-heart-rate.json",
            "observation-example-respiratory-rate.json",
            "observation-example-body-temperature.json",
            "observation-example-bloodpressure.json",
            "observation-example-bloodpressure-cancel.json",
            "observation-example-satO2.json",
            "observation-example-f204-creatinine.json",
        ];
        let docs: Vec<Pruned> = files
            .iter()
            .map(|f| fhir(&format!("spec-r4-examples/{f}")))
            .collect();
        let mut rs = vec![];
        for d in &docs {
            collect(d, &mut rs);
        }
        let mut c = contract();
        for f in &mut c.features {
            if let Some(m) = &mut f.fhir {
                m.window = None;
            }
            f.max_age = None;
        }
        let now = Timestamp::parse("2020-01-01T00:00:00Z").unwrap();
        let m = map_inputs(&c, &rs, "example", now);
        assert_eq!(num(&m, "heart_rate").0, 44.0);
        assert_eq!(num(&m, "resp_rate").0, 26.0);
        assert_eq!(num(&m, "temperature").0, 36.5);
        assert_eq!(num(&m, "spo2").0, 95.0);
        assert_eq!(m.feature("spo2").unwrap().matched, 1);
        // The cancelled reading is ignored, the final one used.
        assert_eq!(num(&m, "sbp").0, 107.0);
        assert_eq!(m.feature("sbp").unwrap().matched, 1);
        assert!(
            m.ignored.iter().any(|s| s.contains("status cancelled")),
            "{:?}",
            m.ignored
        );
        // The creatinine result belongs to another patient (f201): not used for this one.
        assert!(
            m.ignored
                .iter()
                .any(|s| s == "Observation/f204: another patient's")
        );
        // For its own patient, the locally coded creatinine is not taken for creatinine, and
        // is listed as unclaimed.
        let m = map_inputs(&c, &rs, "f201", now);
        assert!(!m.inputs.contains_key("creatinine"));
        assert_eq!(m.feature("creatinine").unwrap().status, "not_found");
        let local = m
            .unclaimed
            .iter()
            .find(|u| u.source == "Observation/f204")
            .unwrap();
        assert_eq!(local.codes, ["https://intranet.aumc.nl/labtestcodes|20005"]);
        // Even when a contract lists the local code, its unit is a SNOMED code, not UCUM:
        // flagged and not used.
        for f in &mut c.features {
            if f.name == "creatinine" {
                f.fhir
                    .as_mut()
                    .unwrap()
                    .codes
                    .push("https://intranet.aumc.nl/labtestcodes|20005".into());
            }
        }
        let m = map_inputs(&c, &rs, "f201", now);
        let cr = m.feature("creatinine").unwrap();
        assert_eq!((cr.status, cr.refused), ("unusable", Some("not_ucum")));
        assert!(cr.reason.as_deref().unwrap().contains("snomed"), "{cr:?}");
        assert!(!m.inputs.contains_key("creatinine"));
    }

    #[test]
    fn units_that_cannot_be_converted_are_refused_with_the_reason() {
        let c = contract();
        let obs = |code: &str, value: f64, unit: &str| {
            serde_json::json!({"resourceType": "Observation", "id": format!("o{value}"), "status": "final",
              "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
              "effectiveDateTime": "2026-01-01T10:00:00Z",
              "valueQuantity": {"value": value, "system": UCUM, "code": unit}})
        };
        let docs = [
            obs("8310-5", 98.6, "[degF]"),
            obs("8867-4", 80.0, "mm[Hg]"),
            obs("2524-7", 2.0, "mmol/L"),
            obs("2524-7", 4.0, "mmol/L"),
            obs("2524-7", 18.0, "mg/dL"),
        ];
        let docs: Vec<Pruned> = docs.iter().map(Pruned::from_value).collect();
        let rs: Vec<&Pruned> = docs.iter().collect();
        let now = Timestamp::parse("2026-01-01T12:00:00Z").unwrap();
        let m = map_inputs(&c, &rs, "p", now);
        // °F is converted by the scorer: the mapping passes the value with its unit.
        assert_eq!(num(&m, "temperature"), (98.6, Some("[degF]".into())));
        let hr = m.feature("heart_rate").unwrap();
        assert_eq!((hr.status, hr.refused), ("unusable", Some("unconvertible")));
        assert!(!m.inputs.contains_key("heart_rate"));
        // Lactate: max of the values that convert; mg/dL needs a molar mass the contract lacks.
        assert_eq!(num(&m, "lactate").0, 4.0);
        let l = m.feature("lactate").unwrap();
        assert_eq!((l.matched, l.used), (3, 1));
        assert!(l.reason.as_deref().unwrap().contains("not used"));
    }
}
