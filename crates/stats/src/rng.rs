//! Small, well-known pseudo-random generators: SplitMix64 for seeding, xoshiro256** for draws.
//!
//! Implemented here so that bootstrap replicates are reproducible bit for bit across
//! platforms, crate versions and thread counts: replicate `r` always uses the stream
//! seeded from `(seed, r)`, never a shared generator.

/// SplitMix64 (Steele, Lea & Flood 2014); used to expand a seed into xoshiro state.
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// xoshiro256** 1.0 (Blackman & Vigna 2018).
#[derive(Debug, Clone)]
pub struct Xoshiro256StarStar {
    s: [u64; 4],
}

impl Xoshiro256StarStar {
    /// Seeds the state from SplitMix64, as the authors recommend.
    pub fn seed_from_u64(seed: u64) -> Self {
        let mut sm = SplitMix64::new(seed);
        let s = [sm.next_u64(), sm.next_u64(), sm.next_u64(), sm.next_u64()];
        Self { s }
    }

    /// The generator for one replicate: independent of how replicates are spread on threads.
    pub fn for_replicate(seed: u64, replicate: u64) -> Self {
        // Mix the two numbers through SplitMix64 so that nearby seeds and indices do not
        // give correlated streams.
        let mut sm = SplitMix64::new(seed);
        let a = sm.next_u64();
        let mut sm2 = SplitMix64::new(a ^ replicate.wrapping_mul(0xD1B5_4A32_D192_ED03));
        Self::seed_from_u64(sm2.next_u64())
    }

    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// A uniform integer in `0..n` without modulo bias (Lemire 2019, with rejection).
    #[inline]
    pub fn below(&mut self, n: u64) -> u64 {
        debug_assert!(n > 0);
        let mut m = u128::from(self.next_u64()) * u128::from(n);
        let mut low = m as u64;
        if low < n {
            let threshold = n.wrapping_neg() % n;
            while low < threshold {
                m = u128::from(self.next_u64()) * u128::from(n);
                low = m as u64;
            }
        }
        (m >> 64) as u64
    }

    /// A uniform `f64` in `[0, 1)` with 53 random bits.
    #[inline]
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

/// 32-bit draws taken two at a time from one xoshiro output: half the generator calls
/// for the bootstrap's billions of small-range draws.
#[derive(Debug, Clone)]
pub struct U32Stream {
    rng: Xoshiro256StarStar,
    spare: u32,
    has_spare: bool,
}

impl U32Stream {
    pub fn new(rng: Xoshiro256StarStar) -> Self {
        Self {
            rng,
            spare: 0,
            has_spare: false,
        }
    }

    #[inline(always)]
    pub fn next_u32(&mut self) -> u32 {
        if self.has_spare {
            self.has_spare = false;
            self.spare
        } else {
            let r = self.rng.next_u64();
            self.spare = (r >> 32) as u32;
            self.has_spare = true;
            r as u32
        }
    }

    /// A uniform integer in `0..n` (`n > 0`) without bias (Lemire 2019, 32-bit).
    #[inline(always)]
    pub fn below(&mut self, n: u32) -> u32 {
        let mut m = u64::from(self.next_u32()) * u64::from(n);
        let mut low = m as u32;
        if low < n {
            let threshold = n.wrapping_neg() % n;
            while low < threshold {
                m = u64::from(self.next_u32()) * u64::from(n);
                low = m as u32;
            }
        }
        (m >> 32) as u32
    }
}

/// `ln n! − ((n + ½) ln n − n + ½ ln 2π)`, the Stirling remainder (Loader 2000).
fn stirling_error(n: f64) -> f64 {
    const S0: f64 = 1.0 / 12.0;
    const S1: f64 = 1.0 / 360.0;
    const S2: f64 = 1.0 / 1260.0;
    const S3: f64 = 1.0 / 1680.0;
    const S4: f64 = 1.0 / 1188.0;
    if n <= 15.0 {
        let half_ln_2pi = 0.918_938_533_204_672_8;
        return crate::special::ln_factorial(n as u64) - (n + 0.5) * n.ln() + n - half_ln_2pi;
    }
    let nn = n * n;
    if n > 500.0 {
        return (S0 - S1 / nn) / n;
    }
    if n > 80.0 {
        return (S0 - (S1 - S2 / nn) / nn) / n;
    }
    if n > 35.0 {
        return (S0 - (S1 - (S2 - S3 / nn) / nn) / nn) / n;
    }
    (S0 - (S1 - (S2 - (S3 - S4 / nn) / nn) / nn) / nn) / n
}

/// `x ln(x / m) + m − x`, without cancellation near `x = m` (Loader 2000).
fn deviance_term(x: f64, m: f64) -> f64 {
    if (x - m).abs() < 0.1 * (x + m) {
        let v = (x - m) / (x + m);
        let mut s = (x - m) * v;
        let mut ej = 2.0 * x * v;
        let v2 = v * v;
        for j in 1..1000 {
            ej *= v2;
            let s1 = s + ej / f64::from(2 * j + 1);
            if s1 == s {
                return s1;
            }
            s = s1;
        }
        s
    } else {
        x * (x / m).ln() + m - x
    }
}

/// Binomial probability mass `P(X = x)`, `0 < x < n`, accurate to about 1e-15 relative
/// (Loader's saddle-point form, as R's `dbinom`).
fn binomial_pmf_interior(x: f64, n: f64, p: f64) -> f64 {
    let q = 1.0 - p;
    let lc = stirling_error(n)
        - stirling_error(x)
        - stirling_error(n - x)
        - deviance_term(x, n * p)
        - deviance_term(n - x, n * q);
    lc.exp() * (n / (2.0 * std::f64::consts::PI * x * (n - x))).sqrt()
}

fn binomial_pmf(x: u64, n: u64, p: f64) -> f64 {
    if x == 0 {
        return (1.0 - p).powf(n as f64);
    }
    if x == n {
        return p.powf(n as f64);
    }
    binomial_pmf_interior(x as f64, n as f64, p)
}

/// A Binomial(n, p) draw by inversion, searching outward from the mode (Kemp 1986):
/// O(√(np(1−p))) steps, exact up to floating-point rounding of the probabilities.
pub fn binomial(rng: &mut Xoshiro256StarStar, n: u64, p: f64) -> u64 {
    if n == 0 || p <= 0.0 {
        return 0;
    }
    if p >= 1.0 {
        return n;
    }
    let mode = (((n + 1) as f64) * p).floor().min(n as f64) as u64;
    let ratio_up = p / (1.0 - p);
    let pm = binomial_pmf(mode, n, p);
    let mut u = rng.next_f64() - pm;
    if u < 0.0 {
        return mode;
    }
    // Alternate below and above the mode, always taking the more likely side next
    // would be optimal; alternating is simpler and still O(σ).
    let (mut lo, mut hi) = (mode, mode);
    let (mut plo, mut phi) = (pm, pm);
    loop {
        let mut moved = false;
        if lo > 0 {
            // P(k−1) = P(k) · k / ((n − k + 1) · p/(1−p))
            plo *= lo as f64 / ((n - lo + 1) as f64 * ratio_up);
            lo -= 1;
            u -= plo;
            if u < 0.0 {
                return lo;
            }
            moved = true;
        }
        if hi < n {
            // P(k+1) = P(k) · (n − k) / (k + 1) · p/(1−p)
            phi *= (n - hi) as f64 / (hi + 1) as f64 * ratio_up;
            hi += 1;
            u -= phi;
            if u < 0.0 {
                return hi;
            }
            moved = true;
        }
        if !moved {
            // Rounding left a sliver of probability unassigned: give it to the mode.
            return mode;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix_matches_reference_sequence() {
        // Reference values for seed 1234567 from the SplitMix64 reference implementation.
        let mut sm = SplitMix64::new(1_234_567);
        assert_eq!(sm.next_u64(), 6_457_827_717_110_365_317);
        assert_eq!(sm.next_u64(), 3_203_168_211_198_807_973);
    }

    #[test]
    fn below_stays_in_range_and_covers_it() {
        let mut r = Xoshiro256StarStar::seed_from_u64(7);
        let mut seen = [false; 7];
        for _ in 0..1000 {
            let v = r.below(7) as usize;
            seen[v] = true;
        }
        assert!(seen.iter().all(|&s| s));
    }

    #[test]
    fn binomial_pmf_sums_to_one_and_matches_direct_formula() {
        let (n, p) = (200u64, 0.3);
        let total: f64 = (0..=n).map(|x| binomial_pmf(x, n, p)).sum();
        assert!((total - 1.0).abs() < 1e-13, "{total}");
        // C(10,3) 0.3^3 0.7^7
        let direct = 120.0 * 0.3f64.powi(3) * 0.7f64.powi(7);
        assert!((binomial_pmf(3, 10, 0.3) - direct).abs() < 1e-15);
    }

    #[test]
    fn binomial_draws_have_the_right_mean_and_variance() {
        let mut r = Xoshiro256StarStar::seed_from_u64(11);
        let (n, p, k) = (1000u64, 0.25, 20_000);
        let draws: Vec<f64> = (0..k).map(|_| binomial(&mut r, n, p) as f64).collect();
        let mean = draws.iter().sum::<f64>() / k as f64;
        let var = draws.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / (k as f64 - 1.0);
        assert!((mean - 250.0).abs() < 0.5, "{mean}");
        assert!((var - 187.5).abs() < 8.0, "{var}");
    }

    #[test]
    fn replicate_streams_differ() {
        let mut a = Xoshiro256StarStar::for_replicate(1, 0);
        let mut b = Xoshiro256StarStar::for_replicate(1, 1);
        assert_ne!(a.next_u64(), b.next_u64());
    }
}
