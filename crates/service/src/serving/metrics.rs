//! Serving metrics in the Prometheus text format: requests, latency histograms, fallbacks by
//! reason, model errors and prediction-record writes, labelled by model, release, channel and
//! mode only. Nothing that identifies a patient is ever a label.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 14] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0,
];

#[derive(Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, secs: f64) {
        if let Some(i) = BUCKETS.iter().position(|b| secs <= *b) {
            self.counts[i] += 1;
        }
        self.sum += secs;
        self.count += 1;
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let mut cum = 0;
        for (b, c) in BUCKETS.iter().zip(&self.counts) {
            cum += c;
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{b}\"}} {cum}");
        }
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {}", self.count);
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", self.sum);
        let _ = writeln!(out, "{name}_count{{{labels}}} {}", self.count);
    }
}

/// `(model, release, channel, mode)`.
type Key = (String, String, &'static str, &'static str);

/// The counters of one `(model, release, channel, mode)`.
#[derive(Default)]
struct Series {
    scored: u64,
    fallback: u64,
    /// By reason, in first-seen order (a handful at most).
    fallbacks: Vec<(String, u64)>,
    model_errors: u64,
    latency: Histogram,
}

#[derive(Default)]
struct Inner {
    /// A few deployments at most: found by comparison, without building a key per request.
    series: Vec<(Key, Series)>,
    requests: BTreeMap<(&'static str, u16), u64>,
    request_latency: BTreeMap<&'static str, Histogram>,
    records_written: u64,
    record_batches: u64,
    record_failures: u64,
    reloads: u64,
    reload_failures: u64,
}

/// The server's counters and histograms (one lock, held for a few map updates).
#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
    deployed: Mutex<Vec<(String, String, &'static str)>>,
}

/// What one scoring came to, for the metrics.
pub struct Observation<'a> {
    pub model: &'a str,
    pub release: &'a str,
    pub channel: &'static str,
    pub mode: &'static str,
    pub fallback: Option<&'a str>,
    pub model_error: bool,
    pub secs: f64,
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Metrics {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn observe(&self, o: &Observation<'_>) {
        let mut m = self.lock();
        let i = match m.series.iter().position(|(k, _)| {
            k.0 == o.model && k.1 == o.release && k.2 == o.channel && k.3 == o.mode
        }) {
            Some(i) => i,
            None => {
                let key = (o.model.to_owned(), o.release.to_owned(), o.channel, o.mode);
                m.series.push((key, Series::default()));
                m.series.len() - 1
            }
        };
        let s = &mut m.series[i].1;
        match o.fallback {
            None => s.scored += 1,
            Some(r) => {
                s.fallback += 1;
                match s.fallbacks.iter_mut().find(|(k, _)| k == r) {
                    Some((_, n)) => *n += 1,
                    None => s.fallbacks.push((r.to_owned(), 1)),
                }
            }
        }
        if o.model_error {
            s.model_errors += 1;
        }
        s.latency.observe(o.secs);
    }

    /// One HTTP request on a serving route, by route name and status.
    pub fn request(&self, route: &'static str, status: u16, secs: f64) {
        let mut m = self.lock();
        *m.requests.entry((route, status)).or_default() += 1;
        m.request_latency.entry(route).or_default().observe(secs);
    }

    pub fn records(&self, n: usize, ok: bool) {
        let mut m = self.lock();
        m.record_batches += 1;
        if ok {
            m.records_written += n as u64;
        } else {
            m.record_failures += n as u64;
        }
    }

    pub fn reloaded(&self, ok: bool, deployed: Vec<(String, String, &'static str)>) {
        {
            let mut m = self.lock();
            m.reloads += 1;
            if !ok {
                m.reload_failures += 1;
            }
        }
        if ok {
            *self.deployed.lock().unwrap_or_else(|p| p.into_inner()) = deployed;
        }
    }

    /// The Prometheus text exposition (format 0.0.4).
    pub fn render(&self) -> String {
        let m = self.lock();
        let mut out = String::with_capacity(4096);
        let key = |k: &Key| {
            format!(
                "model=\"{}\",release=\"{}\",channel=\"{}\",mode=\"{}\"",
                escape(&k.0),
                escape(&k.1),
                k.2,
                k.3
            )
        };
        let mut series: Vec<&(Key, Series)> = m.series.iter().collect();
        series.sort_by(|a, b| a.0.cmp(&b.0));
        out.push_str("# HELP vigil_predictions_total Predictions made, by outcome (scored or fallback).\n# TYPE vigil_predictions_total counter\n");
        for (k, s) in &series {
            for (outcome, n) in [("fallback", s.fallback), ("scored", s.scored)] {
                if n > 0 {
                    let _ = writeln!(
                        out,
                        "vigil_predictions_total{{{},outcome=\"{outcome}\"}} {n}",
                        key(k)
                    );
                }
            }
        }
        out.push_str("# HELP vigil_prediction_fallbacks_total Predictions answered with the fallback, by reason.\n# TYPE vigil_prediction_fallbacks_total counter\n");
        for (k, s) in &series {
            let mut reasons: Vec<&(String, u64)> = s.fallbacks.iter().collect();
            reasons.sort();
            for (reason, n) in reasons {
                let _ = writeln!(
                    out,
                    "vigil_prediction_fallbacks_total{{{},reason=\"{}\"}} {n}",
                    key(k),
                    escape(reason)
                );
            }
        }
        out.push_str("# HELP vigil_model_errors_total Scorings where the model failed, panicked or timed out.\n# TYPE vigil_model_errors_total counter\n");
        for (k, s) in &series {
            if s.model_errors > 0 {
                let _ = writeln!(
                    out,
                    "vigil_model_errors_total{{{}}} {}",
                    key(k),
                    s.model_errors
                );
            }
        }
        out.push_str("# HELP vigil_prediction_latency_seconds Time to assemble and score one prediction.\n# TYPE vigil_prediction_latency_seconds histogram\n");
        for (k, s) in &series {
            s.latency
                .render(&mut out, "vigil_prediction_latency_seconds", &key(k));
        }
        out.push_str("# HELP vigil_requests_total Requests to the serving endpoints, by route and status.\n# TYPE vigil_requests_total counter\n");
        for ((route, status), n) in &m.requests {
            let _ = writeln!(
                out,
                "vigil_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}"
            );
        }
        out.push_str("# HELP vigil_request_duration_seconds Serving requests from arrival to answer, records made durable included.\n# TYPE vigil_request_duration_seconds histogram\n");
        for (route, h) in &m.request_latency {
            h.render(
                &mut out,
                "vigil_request_duration_seconds",
                &format!("route=\"{route}\""),
            );
        }
        let _ = write!(
            out,
            "# HELP vigil_prediction_records_written_total Prediction records committed to the store.\n# TYPE vigil_prediction_records_written_total counter\nvigil_prediction_records_written_total {}\n\
             # HELP vigil_prediction_record_failures_total Prediction records whose write failed (their requests were refused).\n# TYPE vigil_prediction_record_failures_total counter\nvigil_prediction_record_failures_total {}\n\
             # HELP vigil_prediction_record_batches_total Transactions that committed prediction records.\n# TYPE vigil_prediction_record_batches_total counter\nvigil_prediction_record_batches_total {}\n\
             # HELP vigil_runtime_reloads_total Reloads of the deployed releases.\n# TYPE vigil_runtime_reloads_total counter\nvigil_runtime_reloads_total {}\n\
             # HELP vigil_runtime_reload_failures_total Reloads that failed (the previous runtime kept serving).\n# TYPE vigil_runtime_reload_failures_total counter\nvigil_runtime_reload_failures_total {}\n",
            m.records_written, m.record_failures, m.record_batches, m.reloads, m.reload_failures
        );
        drop(m);
        out.push_str("# HELP vigil_deployment Releases loaded and serving, by mode (active or shadow).\n# TYPE vigil_deployment gauge\n");
        for (model, release, mode) in self
            .deployed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "vigil_deployment{{model=\"{}\",release=\"{}\",mode=\"{mode}\"}} 1",
                escape(model),
                escape(release)
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_cumulative_buckets() {
        let m = Metrics::default();
        for secs in [0.000_03, 0.002, 2.0] {
            m.observe(&Observation {
                model: "m",
                release: "r1",
                channel: "predict",
                mode: "active",
                fallback: None,
                model_error: false,
                secs,
            });
        }
        m.observe(&Observation {
            model: "m",
            release: "r1",
            channel: "predict",
            mode: "active",
            fallback: Some("missing_required"),
            model_error: false,
            secs: 0.0,
        });
        let text = m.render();
        assert!(text.contains("vigil_predictions_total{model=\"m\",release=\"r1\",channel=\"predict\",mode=\"active\",outcome=\"scored\"} 3"), "{text}");
        assert!(text.contains("reason=\"missing_required\"} 1"), "{text}");
        assert!(text.contains("le=\"0.00005\"} 2"), "{text}");
        assert!(text.contains("le=\"0.0025\"} 3"), "{text}");
        assert!(text.contains("le=\"+Inf\"} 4"), "{text}");
    }
}
