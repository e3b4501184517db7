//! Structured clinical review: drawing cases from a dataset for clinicians to judge, and
//! recording their verdicts (plausible, implausible, unsafe), which gates can require.
//!
//! Cases are drawn stratified by the label and the named subgroup columns, so that rare
//! outcomes and small groups are seen. The draw is seeded by the release and dataset ids:
//! the same request draws the same cases.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::json;
use vigil_domain::governance::{CaseReview, ReviewSummary, Verdict};
use vigil_domain::role::Role;
use vigil_domain::{Digest, UserName};
use vigil_store::ReviewSample;

use super::required_text;
use crate::{Error, Result, Vigil, audit_event};

#[derive(Clone, Debug)]
pub struct SampleRequest {
    pub release: String,
    pub dataset: String,
    pub n: usize,
    pub label: String,
    pub subgroups: Vec<String>,
}

/// One drawn case: its row and what it was stratified on.
#[derive(Clone, Debug, Serialize)]
pub struct ReviewCase {
    pub row: u64,
    pub label: String,
    /// Why the case was drawn: highest_score, near_threshold, false_negative,
    /// false_positive, abstained, true_positive, true_negative.
    pub kind: String,
    /// The release's score (none where it abstained).
    pub score: Option<f64>,
    pub subgroups: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct SampleReport {
    pub sample: ReviewSample,
    pub cases: Vec<ReviewCase>,
    pub strata: usize,
}

/// SplitMix64: small, deterministic, good enough to shuffle a stratum.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// Picks `n` of the strata's rows: proportional allocation, at least one from each stratum
/// while the budget allows, rows shuffled within each stratum.
fn stratified(strata: &BTreeMap<Vec<String>, Vec<u64>>, n: usize, seed: u64) -> Vec<u64> {
    let total: usize = strata.values().map(Vec::len).sum();
    let n = n.min(total);
    let mut alloc: Vec<usize> = strata
        .values()
        .map(|rows| (rows.len() * n) / total.max(1))
        .collect();
    for (i, rows) in strata.values().enumerate() {
        if alloc[i] == 0 && !rows.is_empty() && alloc.iter().sum::<usize>() < n {
            alloc[i] = 1;
        }
    }
    // Hand out what rounding left over to the largest strata first.
    let mut order: Vec<usize> = (0..alloc.len()).collect();
    order.sort_by_key(|i| std::cmp::Reverse(strata.values().nth(*i).map_or(0, Vec::len)));
    while alloc.iter().sum::<usize>() < n {
        let before = alloc.iter().sum::<usize>();
        for i in &order {
            let cap = strata.values().nth(*i).map_or(0, Vec::len);
            if alloc[*i] < cap && alloc.iter().sum::<usize>() < n {
                alloc[*i] += 1;
            }
        }
        if alloc.iter().sum::<usize>() == before {
            break;
        }
    }
    let mut rng = SplitMix(seed);
    let mut out = Vec::with_capacity(n);
    for (rows, k) in strata.values().zip(alloc) {
        let mut rows = rows.clone();
        for i in (1..rows.len()).rev() {
            let j = (rng.next() % (i as u64 + 1)) as usize;
            rows.swap(i, j);
        }
        out.extend(rows.into_iter().take(k));
    }
    out.sort_unstable();
    out
}

impl Vigil {
    /// Draws cases of a dataset for clinical review of a release.
    pub async fn sample_review(
        &self,
        actor: &UserName,
        req: SampleRequest,
    ) -> Result<SampleReport> {
        let release = self.get_release(&req.release).await?;
        let subject = format!("release:{}", release.id);
        self.authorize(
            actor,
            &[
                Role::DataScientist,
                Role::ClinicalReviewer,
                Role::Governance,
            ],
            "review",
            &subject,
        )
        .await?;
        let dataset = self.get_dataset(&req.dataset).await?;
        if req.n == 0 || req.n > 10_000 {
            return Err(Error::invalid(
                "invalid_sample_size",
                "draw between 1 and 10000 cases",
            ));
        }
        let path = self.blobs.local_path(&dataset.snapshot.content.digest)?;
        let mut reader = csv::Reader::from_path(&path)
            .map_err(|e| Error::internal(format!("reading dataset {}: {e}", dataset.id.short())))?;
        let headers = reader
            .headers()
            .map_err(|e| Error::internal(e.to_string()))?
            .clone();
        let col = |name: &str| {
            headers.iter().position(|h| h == name).ok_or_else(|| {
                Error::invalid(
                    "unknown_column",
                    format!("dataset {} has no column `{name}`", dataset.id.short()),
                )
            })
        };
        let label_at = col(&req.label)?;
        let sub_at: Vec<(String, usize)> = req
            .subgroups
            .iter()
            .map(|s| col(s).map(|i| (s.clone(), i)))
            .collect::<Result<_>>()?;
        // Cases are stratified by what a reviewer needs to see: the highest scores, scores
        // near the decision threshold, false negatives and false positives, abstentions —
        // crossed with the subgroups.
        let (scores, threshold) = self
            .snapshot_scores(&req.release, &dataset, &req.label)
            .await?;
        let mut ranked: Vec<f64> = scores.iter().flatten().copied().collect();
        ranked.sort_by(|a, b| b.total_cmp(a));
        let top_cut = ranked
            .get(ranked.len() / 20)
            .copied()
            .unwrap_or(f64::INFINITY);
        let case_kind = |label: &str, score: Option<f64>| -> &'static str {
            match score {
                None => "abstained",
                Some(s) if label == "1" && s < threshold => "false_negative",
                Some(s) if label != "1" && s >= threshold => "false_positive",
                Some(s) if s >= top_cut => "highest_score",
                Some(s) if (s - threshold).abs() <= 0.05 => "near_threshold",
                Some(_) if label == "1" => "true_positive",
                Some(_) => "true_negative",
            }
        };
        let mut strata: BTreeMap<Vec<String>, Vec<u64>> = BTreeMap::new();
        let mut values: Vec<Vec<String>> = Vec::new();
        for (row, rec) in reader.records().enumerate() {
            let rec = rec.map_err(|e| {
                Error::internal(format!("reading dataset {}: {e}", dataset.id.short()))
            })?;
            let label = rec.get(label_at).unwrap_or("").to_owned();
            let kind = case_kind(&label, scores.get(row).copied().flatten());
            let mut key = vec![label, kind.to_owned()];
            key.extend(
                sub_at
                    .iter()
                    .map(|(_, i)| rec.get(*i).unwrap_or("").to_owned()),
            );
            strata.entry(key.clone()).or_default().push(row as u64);
            values.push(key);
        }
        let seed_digest = Digest::of(format!("{}:{}", release.id, dataset.id).as_bytes());
        let seed = u64::from_le_bytes(seed_digest.as_bytes()[..8].try_into().unwrap_or([0; 8]));
        let rows = stratified(&strata, req.n, seed);
        let cases: Vec<ReviewCase> = rows
            .iter()
            .map(|r| {
                let v = &values[*r as usize];
                ReviewCase {
                    row: *r,
                    label: v[0].clone(),
                    kind: v[1].clone(),
                    score: scores.get(*r as usize).copied().flatten(),
                    subgroups: sub_at
                        .iter()
                        .zip(&v[2..])
                        .map(|((n, _), x)| (n.clone(), x.clone()))
                        .collect(),
                }
            })
            .collect();
        let method = format!(
            "stratified by case kind under the release's scores at threshold {threshold} (highest 5% of scores, within 0.05 of the threshold, false negatives, false positives, abstentions, other cases by label `{}`){}",
            req.label,
            if req.subgroups.is_empty() {
                String::new()
            } else {
                format!(" and subgroups {}", req.subgroups.join(", "))
            }
        );
        let mut sample = ReviewSample {
            id: 0,
            release: release.id,
            dataset: dataset.id,
            method,
            cases: rows,
            created_by: actor.clone(),
            at: self.clock.now(),
        };
        let mut tx = self.store.begin().await?;
        sample.id = tx.insert_review_sample(&sample).await?;
        let ev = audit_event(
            actor,
            "review.sampled",
            &subject,
            json!({ "sample": sample.id, "dataset": dataset.id, "n": sample.cases.len(), "strata": strata.len(), "method": sample.method }),
        )?;
        tx.append_audit(sample.at, &ev).await?;
        tx.commit().await?;
        Ok(SampleReport {
            sample,
            cases,
            strata: strata.len(),
        })
    }

    /// Records a clinician's verdict on one case of the release's latest review sample.
    pub async fn record_review(
        &self,
        actor: &UserName,
        release_id: &str,
        case: u64,
        verdict: Verdict,
        comment: &str,
    ) -> Result<CaseReview> {
        let release = self.get_release(release_id).await?;
        let subject = format!("release:{}", release.id);
        self.authorize(actor, &[Role::ClinicalReviewer], "review", &subject)
            .await?;
        if *actor == release.registered_by {
            let e = Error::forbidden(
                "own_release",
                format!("`{actor}` registered this release and cannot review its cases"),
            );
            return Err(self
                .refused(actor, "review", &subject, &e, json!({ "case": case }))
                .await);
        }
        let comment = match verdict {
            Verdict::Plausible => comment.trim().to_owned(),
            _ => required_text(
                "comment_required",
                "a comment on an implausible or unsafe case",
                comment,
            )?,
        };
        let sample = self
            .store
            .latest_review_sample(&release.id)
            .await?
            .ok_or_else(|| {
                Error::precondition(
                    "no_review_sample",
                    "draw cases first with `vigil review sample`",
                )
            })?;
        if !sample.cases.contains(&case) {
            return Err(Error::invalid(
                "case_not_sampled",
                format!("row {case} is not in review sample {}", sample.id),
            ));
        }
        let mut r = CaseReview {
            id: 0,
            release: release.id,
            dataset: sample.dataset,
            case,
            verdict,
            comment,
            reviewer: actor.clone(),
            at: self.clock.now(),
        };
        let mut tx = self.store.begin().await?;
        r.id = tx.insert_case_review(&r).await?;
        let ev = audit_event(
            actor,
            "review.recorded",
            &subject,
            json!({ "review": r.id, "dataset": r.dataset, "case": case, "verdict": verdict, "comment": r.comment }),
        )?;
        tx.append_audit(r.at, &ev).await?;
        tx.commit().await?;
        Ok(r)
    }

    pub async fn review_summary(&self, release_id: &str) -> Result<ReviewSummary> {
        let release = self.get_release(release_id).await?;
        Ok(ReviewSummary::of(
            &self.store.list_case_reviews(&release.id).await?,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stratified_draw_sees_every_stratum_and_is_repeatable() {
        let mut s = BTreeMap::new();
        s.insert(vec!["0".to_string()], (0..95).collect::<Vec<u64>>());
        s.insert(vec!["1".to_string()], (95..100).collect::<Vec<u64>>());
        let a = stratified(&s, 10, 7);
        assert_eq!(a.len(), 10);
        assert!(a.iter().any(|r| *r >= 95));
        assert_eq!(a, stratified(&s, 10, 7));
        assert_eq!(stratified(&s, 500, 7).len(), 100);
    }
}
