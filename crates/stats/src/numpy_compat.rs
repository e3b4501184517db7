//! Bit-for-bit replicas of the few NumPy primitives whose floating-point details decide
//! bin membership: `linspace`, `percentile` (method "linear") and `searchsorted`.
//!
//! A value lying exactly on a quantile edge lands in a different bin if the edge is off by
//! one ulp, so these follow NumPy's operation order exactly.

/// `np.linspace(start, stop, num)` (endpoint included).
pub fn linspace(start: f64, stop: f64, num: usize) -> Vec<f64> {
    if num == 0 {
        return Vec::new();
    }
    if num == 1 {
        return vec![start];
    }
    let div = (num - 1) as f64;
    let step = (stop - start) / div;
    let mut out: Vec<f64> = (0..num).map(|i| i as f64 * step + start).collect();
    out[num - 1] = stop;
    out
}

/// `np.percentile(sorted, q)` with the default "linear" method, for ascending `sorted`
/// (non-empty) and `q` in percent.
pub fn percentile_sorted(sorted: &[f64], q_percent: f64) -> f64 {
    let n = sorted.len();
    let q = q_percent / 100.0;
    let virtual_index = (n as f64 - 1.0) * q;
    let previous = virtual_index.floor();
    let (prev_i, next_i) = if virtual_index >= (n - 1) as f64 {
        (n - 1, n - 1)
    } else if virtual_index < 0.0 {
        (0, 0)
    } else {
        (previous as usize, previous as usize + 1)
    };
    let gamma = virtual_index - previous;
    let (a, b) = (sorted[prev_i], sorted[next_i.min(n - 1)]);
    lerp(a, b, gamma)
}

/// NumPy's `_lerp`: `a + (b − a) t`, or `b − (b − a)(1 − t)` when `t >= 0.5`.
fn lerp(a: f64, b: f64, t: f64) -> f64 {
    let diff = b - a;
    if t >= 0.5 {
        b - diff * (1.0 - t)
    } else {
        a + diff * t
    }
}

/// `np.searchsorted(edges, v, side="left")`: the number of edges strictly below `v`.
pub fn searchsorted_left(edges: &[f64], v: f64) -> usize {
    edges.partition_point(|&e| e < v)
}

/// `np.searchsorted(edges, v, side="right")`: the number of edges at or below `v`.
pub fn searchsorted_right(edges: &[f64], v: f64) -> usize {
    edges.partition_point(|&e| e <= v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linspace_matches_numpy_rounding() {
        let e = linspace(0.0, 1.0, 11);
        // np.linspace(0, 1, 11)[3] == 0.30000000000000004
        assert_eq!(e[3], 0.300_000_000_000_000_04);
        assert_eq!(e[10], 1.0);
    }

    #[test]
    fn percentile_interpolates() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(percentile_sorted(&v, 50.0), 2.5);
        assert_eq!(percentile_sorted(&v, 0.0), 1.0);
        assert_eq!(percentile_sorted(&v, 100.0), 4.0);
    }
}
