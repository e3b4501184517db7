"""Generates the synthetic ward deterioration cohort: train.csv and validation.csv.

One row per prediction, made 8 hours after admission to an adult inpatient ward. The
outcome is ICU transfer or death within 24 hours of the prediction time. Every value is
synthetic: no row describes a real person.

The cohort is drawn from a fixed seed, so running this script again writes byte-identical
files. Only numpy and the standard library are used.

    python generate.py
"""

import csv
import datetime as dt
import math
from pathlib import Path

import numpy as np

SEED = 20240917
HERE = Path(__file__).resolve().parent

UTC = dt.timezone.utc
TRAIN_START = dt.datetime(2023, 1, 1, tzinfo=UTC)
TRAIN_END = dt.datetime(2024, 7, 1, tzinfo=UTC)  # exclusive
VALID_START = TRAIN_END
VALID_END = dt.datetime(2025, 1, 1, tzinfo=UTC)  # exclusive
N_TRAIN = 20_000
N_VALID = 8_000

PREDICTION_OFFSET = dt.timedelta(hours=8)
HORIZON_HOURS = 24.0

# Four hospitals of different sizes; West sends fewer point-of-care lactates.
SITES = ["north", "south", "east", "west"]
SITE_SHARE = [0.38, 0.27, 0.21, 0.14]
LACTATE_MISSING = {"north": 0.34, "south": 0.34, "east": 0.36, "west": 0.62}

# Latent outcome model (see cohort()): intercept, weight of the recorded physiology and of
# what the recorded inputs do not capture.
OUTCOME_INTERCEPT = -3.85
PHYSIOLOGY_WEIGHT = 0.7
HIDDEN_WEIGHT = 1.3

# Share of rows that are a further encounter of a patient already seen in the same period.
READMISSION_SHARE = 0.18

COLUMNS = [
    "patient_id",
    "encounter_id",
    "site",
    "admission_time",
    "prediction_time",
    "age",
    "sex",
    "heart_rate",
    "resp_rate",
    "temperature",
    "spo2",
    "sbp",
    "lactate",
    "creatinine",
    "wbc",
    "outcome",
    "outcome_time",
]


def rfc3339(t: dt.datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def admission_times(rng: np.random.Generator, start: dt.datetime, end: dt.datetime, n: int):
    """Admission times with a winter peak, fewer weekend admissions and a daytime peak."""
    days = (end - start).days
    base = start.date()
    out = []
    while len(out) < n:
        day = int(rng.integers(0, days))
        date = base + dt.timedelta(days=day)
        doy = date.timetuple().tm_yday
        seasonal = 1.0 + 0.13 * math.cos(2.0 * math.pi * (doy - 15) / 365.25)
        weekday = date.weekday()
        weekly = 0.78 if weekday >= 5 else (1.08 if weekday == 0 else 1.0)
        if rng.random() * 1.3 > seasonal * weekly:
            continue
        # Admission hour: most arrive from the emergency department between late morning
        # and late evening; a tail arrives overnight.
        if rng.random() < 0.82:
            hour = rng.normal(15.5, 3.8)
        else:
            hour = rng.uniform(0.0, 24.0)
        hour = min(max(hour, 0.0), 23.99)
        minute = int(hour * 60)
        t = dt.datetime(date.year, date.month, date.day, tzinfo=UTC) + dt.timedelta(minutes=minute)
        if t + PREDICTION_OFFSET >= end:
            continue  # the prediction must fall inside the period
        out.append(t)
    out.sort()
    return out


def assign_patients(rng: np.random.Generator, times):
    """Gives each encounter a patient; some patients return for a later encounter.

    Returns (patient index per row, number of patients)."""
    patient_of_row = []
    last_admission = []  # per patient
    for t in times:
        p = None
        if last_admission and rng.random() < READMISSION_SHARE:
            # A returning patient whose previous admission was at least 3 days earlier.
            for _ in range(8):
                cand = int(rng.integers(0, len(last_admission)))
                if (t - last_admission[cand]).days >= 3:
                    p = cand
                    break
        if p is None:
            p = len(last_admission)
            last_admission.append(t)
        last_admission[p] = t
        patient_of_row.append(p)
    return patient_of_row, len(last_admission)


def cohort(rng, start, end, n, id_pool, enc_start):
    """n rows with prediction times in [start, end), patients named from id_pool and
    encounters numbered from enc_start. Returns (rows, number of patients)."""
    times = admission_times(rng, start, end, n)
    patient_of_row, n_patients = assign_patients(rng, times)

    # Per-patient characteristics.
    first_age = 18.0 + 82.0 * rng.beta(2.6, 1.7, n_patients)
    male = rng.random(n_patients) < 0.49
    home_site = rng.choice(len(SITES), size=n_patients, p=SITE_SHARE)
    frailty = rng.normal(0.0, 0.5, n_patients)  # persistent per patient
    first_time = {}

    rows = []
    p_idx = np.array(patient_of_row)
    # Acute severity of each encounter (latent, not recorded), with a small winter surge.
    doy = np.array([t.timetuple().tm_yday for t in times], dtype=float)
    winter = 0.12 * np.cos(2.0 * np.pi * (doy - 15) / 365.25)
    sev = rng.normal(0.0, 1.0, n) + frailty[p_idx] + winter
    infection = rng.random(n) < 1.0 / (1.0 + np.exp(-(-1.9 + 0.7 * sev)))

    for i, t in enumerate(times):
        p = patient_of_row[i]
        if p not in first_time:
            first_time[p] = t
        years_since = (t - first_time[p]).days / 365.25
        age_f = min(first_age[p] + years_since, 104.0)
        s = sev[i]
        inf = infection[i]
        is_male = bool(male[p])
        site = SITES[home_site[p]] if rng.random() < 0.93 else SITES[int(rng.integers(0, 4))]

        # Vital signs: respond to acute severity, infection and age.
        hr = 80.0 + 7.5 * s + (9.0 if inf else 0.0) - 0.08 * (age_f - 65.0) + rng.normal(0, 12.0)
        if rng.random() < 0.06:  # atrial fibrillation with fast ventricular response
            hr += rng.uniform(20, 55)
        hr = min(max(hr, 32.0), 190.0)

        rr = 15.8 + 1.6 * s + 0.9 * max(s, 0.0) ** 2 + (1.5 if inf else 0.0) + rng.gamma(2.0, 0.9) - 1.8
        rr = min(max(rr, 8.0), 48.0)

        if inf:
            temp = 37.6 + rng.gamma(2.2, 0.42) - 0.4
            if rng.random() < 0.07:  # septic hypothermia
                temp = rng.normal(35.3, 0.5)
        else:
            temp = rng.normal(36.8, 0.38)
        temp -= 0.004 * max(age_f - 70.0, 0.0)  # older patients mount less fever
        temp = min(max(temp, 32.0), 41.8)

        spo2_def = rng.gamma(1.6, 1.1) + max(0.0, 1.6 * s) + (0.8 if inf else 0.0) + 0.02 * max(age_f - 60.0, 0.0)
        if rng.random() < 0.07:  # chronic lung disease
            spo2_def += rng.uniform(2.0, 5.0)
        spo2 = min(max(100.4 - spo2_def, 72.0), 100.0)

        sbp = 124.0 + 0.25 * (age_f - 60.0) - 9.0 * s - (6.0 if inf else 0.0) + rng.normal(0, 17.0)
        sbp = min(max(sbp, 62.0), 225.0)

        lac = math.exp(rng.normal(0.18 + 0.22 * s + (0.15 if inf else 0.0), 0.38))
        lac = min(max(lac, 0.3), 16.0)

        creat_med = (88.0 if is_male else 70.0) * math.exp(0.006 * (age_f - 60.0) + 0.12 * s)
        creat = creat_med * math.exp(rng.normal(0.0, 0.32))
        if rng.random() < 0.05:  # chronic kidney disease
            creat *= rng.uniform(1.8, 4.5)
        creat = min(max(creat, 25.0), 1100.0)

        wbc = math.exp(rng.normal(2.03 + (0.35 if inf else 0.0) + 0.05 * s, 0.33))
        if inf and rng.random() < 0.06:  # leukopenia in sepsis
            wbc = rng.uniform(1.0, 3.8)
        wbc = min(max(wbc, 0.4), 60.0)

        # Rounded as recorded by the charting and laboratory systems.
        hr_r = int(round(hr))
        rr_r = int(round(rr))
        temp_r = round(temp, 1)
        spo2_r = int(round(spo2))
        sbp_r = int(round(sbp))
        lac_r = round(lac, 2)
        creat_r = int(round(creat))
        wbc_r = round(wbc, 2)
        age_r = int(age_f)

        # Latent outcome model: physiology, age and unmeasured acuity; `hidden` stands for what
        # the inputs do not capture (trajectory, frailty, goals of care, nursing concern).
        hidden = rng.normal(0.0, 1.0)
        physiology = (
            0.040 * (age_r - 65)
            + 0.17 * (rr_r - 18)
            - 0.16 * (spo2_r - 96)
            - 0.024 * (sbp_r - 120)
            + 0.012 * (hr_r - 85)
            + 0.42 * (lac_r - 1.4)
            + 1.05 * max(temp_r - 38.3, 0.0)
            + 1.10 * max(36.0 - temp_r, 0.0)
            + 0.55 * math.log(creat_r / 80.0)
            + 0.35 * abs(math.log(wbc_r / 7.5))
        )
        z = OUTCOME_INTERCEPT + PHYSIOLOGY_WEIGHT * physiology + 0.55 * s + HIDDEN_WEIGHT * hidden
        outcome = int(rng.random() < 1.0 / (1.0 + math.exp(-z)))

        # Lactate is measured more often in sicker patients; West measures it least.
        miss_p = LACTATE_MISSING[site] * math.exp(-0.25 * max(s, 0.0))
        lac_out = "" if rng.random() < miss_p else f"{lac_r:.2f}"

        pred_t = t + PREDICTION_OFFSET
        # Earlier events are more common; never at the prediction instant. Drawn for every row
        # so that the random stream does not depend on the outcomes.
        hours = min(0.25 + rng.gamma(1.3, 6.5), HORIZON_HOURS - 0.05)
        outcome_time = ""
        if outcome:
            outcome_time = rfc3339(pred_t + dt.timedelta(minutes=int(hours * 60)))

        rows.append(
            [
                id_pool[p],
                f"E{enc_start + i:07d}",
                site,
                rfc3339(t),
                rfc3339(pred_t),
                str(age_r),
                "male" if is_male else "female",
                str(hr_r),
                str(rr_r),
                f"{temp_r:.1f}",
                str(spo2_r),
                str(sbp_r),
                lac_out,
                str(creat_r),
                f"{wbc_r:.2f}",
                str(outcome),
                outcome_time,
            ]
        )
    return rows, n_patients


def write(path: Path, rows):
    with path.open("w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(COLUMNS)
        w.writerows(rows)


def main():
    rng = np.random.default_rng(SEED)
    # Patient numbers are drawn once and split, so the two periods never share a patient.
    pool = rng.permutation(np.arange(1, 100_000))
    ids = [f"P{int(x):06d}" for x in pool]

    train, n_train_pat = cohort(rng, TRAIN_START, TRAIN_END, N_TRAIN, ids, 1)
    valid_ids = ids[n_train_pat:]
    valid, n_valid_pat = cohort(rng, VALID_START, VALID_END, N_VALID, valid_ids, N_TRAIN + 1)

    write(HERE / "train.csv", train)
    write(HERE / "validation.csv", valid)
    for name, rows, npat in [("train.csv", train, n_train_pat), ("validation.csv", valid, n_valid_pat)]:
        prev = sum(r[15] == "1" for r in rows) / len(rows)
        miss = sum(r[12] == "" for r in rows) / len(rows)
        print(f"{name}: {len(rows)} rows, {npat} patients, outcome {prev:.3%}, lactate missing {miss:.1%}")


if __name__ == "__main__":
    main()
