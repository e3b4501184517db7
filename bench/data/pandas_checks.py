"""The same data checks with pandas: read, missing rates, range counts, duplicate rows,
repeated patient + time pairs, per-site missingness and prevalence."""
import sys
import time

import pandas as pd

path = sys.argv[1]
t0 = time.perf_counter()
df = pd.read_csv(path)
t_read = time.perf_counter() - t0
features = [c for c in df.columns if c.startswith("f")]
missing = df[features].isna().mean()
out_of_range = ((df[features] < 0) | (df[features] > 200)).sum()
t1 = time.perf_counter()
dup_rows = int(df.duplicated().sum())
t_dup = time.perf_counter() - t1
dup_pairs = int(df.duplicated(["patient_id", "prediction_time"]).sum())
by_site = df.groupby("site")[features].agg(lambda s: s.isna().mean())
prevalence = df.groupby("site")["label"].mean()
bad_labels = int((~df["label"].isin([0, 1])).sum())
months = pd.to_datetime(df["prediction_time"]).dt.to_period("M")
by_month = df.groupby(months)["label"].mean()
total = time.perf_counter() - t0
print(f"pandas checks: {len(df)} rows, {dup_rows} duplicate rows, {dup_pairs} repeated pairs, "
      f"{int(out_of_range.sum())} out of range, {bad_labels} bad labels, "
      f"{len(by_site)} sites, {len(by_month)} months")
print(f"pandas: read {t_read:.1f} s, duplicated() {t_dup:.1f} s, total {total:.1f} s")
