//! Synthetic evaluation and drift data for the report's tests and its sample: a
//! deterioration model on 400 inpatients scored ten times each over seven months, with
//! subgroups (one too small to report), monthly periods (the last one too small) and a
//! subgroup on which the model is noticeably worse.

#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(dead_code)]

use std::collections::BTreeMap;

use vigil_stats::{
    BootstrapOptions, DriftOptions, DriftReport, EvaluationInput, EvaluationOptions,
    EvaluationReport, FeatureValues, Period, drift, evaluate,
};

/// SplitMix64: small, fast and reproducible; statistical quality is ample for fixtures.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform on [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = self.uniform().max(1e-300);
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// 2023-01-01T00:00:00Z.
const START: i64 = 1_672_531_200;
const DAY: i64 = 86_400;

/// Rows of a synthetic deterioration model. The model over-predicts a little and is too
/// extreme (slope below 1); it discriminates worse in patients aged 65+.
pub fn evaluation_input(seed: u64) -> EvaluationInput {
    let mut rng = Rng::new(seed);
    let mut input = EvaluationInput::default();
    let mut sex = Vec::new();
    let mut age = Vec::new();
    let mut site = Vec::new();
    let mut ids = Vec::new();
    let mut ts = Vec::new();
    for patient in 0..400 {
        let female = rng.uniform() < 0.52;
        let band = match rng.uniform() {
            u if u < 0.3 => "18–44",
            u if u < 0.65 => "45–64",
            _ => "65+",
        };
        let s = if patient < 5 {
            "Satellite clinic"
        } else if rng.uniform() < 0.55 {
            "North"
        } else {
            "South"
        };
        let baseline = rng.normal();
        for _ in 0..10 {
            let z = 0.7 * baseline + 0.7 * rng.normal();
            let old = band == "65+";
            let truth = -2.3 + 1.2 * z + if old { 0.35 } else { 0.0 };
            let y = rng.uniform() < sigmoid(truth);
            let seen = if old { z + 0.9 * rng.normal() } else { z };
            let score = sigmoid(-2.0 + 1.4 * seen);
            input.scores.push(score);
            input.labels.push(if y { 1.0 } else { 0.0 });
            sex.push(if female { "F" } else { "M" }.to_string());
            age.push(band.to_string());
            site.push(s.to_string());
            ids.push(format!("p{patient:04}"));
            // Six full months of care, and a trickle of rows in the seventh.
            let day = (rng.uniform() * 181.0) as i64;
            ts.push(START + day * DAY + (rng.uniform() * DAY as f64) as i64);
        }
    }
    for i in 0..8 {
        ts[i * 37] = START + (182 + i as i64) * DAY;
    }
    input.patient_ids = Some(ids);
    input.timestamps = Some(ts);
    input.subgroups = BTreeMap::from([
        ("sex".to_string(), sex),
        ("age band".to_string(), age),
        ("site".to_string(), site),
    ]);
    input
}

/// Options as a validation run would use them, with fewer bootstrap replicates when
/// `quick` (tests).
pub fn evaluation_options(quick: bool) -> EvaluationOptions {
    EvaluationOptions {
        thresholds: (1..=10)
            .map(|k| f64::from(k) * 0.05)
            .chain([0.99])
            .collect(),
        bootstrap: Some(BootstrapOptions {
            replicates: if quick { 200 } else { 1000 },
            ..BootstrapOptions::default()
        }),
        period: Some(Period::Month),
        ..EvaluationOptions::default()
    }
}

pub fn evaluation_report(quick: bool) -> EvaluationReport {
    match evaluate(&evaluation_input(7), &evaluation_options(quick)) {
        Ok(r) => r,
        Err(e) => panic!("synthetic input is valid: {e:?}"),
    }
}

/// Reference and current samples: heart rate shifted up, lactate more spread, ward mix
/// changed, age and sex stable, temperature with a missing value in the current sample.
pub fn drift_report() -> DriftReport {
    let mut rng = Rng::new(11);
    let numeric = |n: usize, mean: f64, sd: f64, rng: &mut Rng| -> Vec<f64> {
        (0..n).map(|_| mean + sd * rng.normal()).collect()
    };
    let wards = |n: usize, shares: [f64; 3], rng: &mut Rng| -> Vec<String> {
        (0..n)
            .map(|_| {
                let u = rng.uniform();
                if u < shares[0] {
                    "medical"
                } else if u < shares[0] + shares[1] {
                    "surgical"
                } else {
                    "ICU step-down"
                }
                .to_string()
            })
            .collect()
    };
    let sexes = |n: usize, rng: &mut Rng| -> Vec<String> {
        (0..n)
            .map(|_| if rng.uniform() < 0.5 { "F" } else { "M" }.to_string())
            .collect()
    };
    let mut reference = BTreeMap::new();
    let mut current = BTreeMap::new();
    reference.insert(
        "heart_rate".to_string(),
        FeatureValues::Numeric(numeric(2000, 84.0, 14.0, &mut rng)),
    );
    current.insert(
        "heart_rate".to_string(),
        FeatureValues::Numeric(numeric(1500, 92.0, 15.0, &mut rng)),
    );
    reference.insert(
        "age".to_string(),
        FeatureValues::Numeric(numeric(2000, 63.0, 16.0, &mut rng)),
    );
    current.insert(
        "age".to_string(),
        FeatureValues::Numeric(numeric(1500, 63.4, 16.0, &mut rng)),
    );
    reference.insert(
        "lactate".to_string(),
        FeatureValues::Numeric(numeric(2000, 1.8, 0.6, &mut rng)),
    );
    current.insert(
        "lactate".to_string(),
        FeatureValues::Numeric(numeric(1500, 1.9, 0.9, &mut rng)),
    );
    reference.insert(
        "ward".to_string(),
        FeatureValues::Categorical(wards(2000, [0.6, 0.3, 0.1], &mut rng)),
    );
    current.insert(
        "ward".to_string(),
        FeatureValues::Categorical(wards(1500, [0.45, 0.3, 0.25], &mut rng)),
    );
    reference.insert(
        "sex".to_string(),
        FeatureValues::Categorical(sexes(2000, &mut rng)),
    );
    current.insert(
        "sex".to_string(),
        FeatureValues::Categorical(sexes(1500, &mut rng)),
    );
    let mut temp = numeric(1500, 37.0, 0.6, &mut rng);
    temp[42] = f64::NAN;
    reference.insert(
        "temperature".to_string(),
        FeatureValues::Numeric(numeric(2000, 37.0, 0.6, &mut rng)),
    );
    current.insert("temperature".to_string(), FeatureValues::Numeric(temp));
    drift(&reference, &current, &DriftOptions::default())
}
