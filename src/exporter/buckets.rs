//! Fixed histogram bounds for LLM latencies, and the conversion of an HDR histogram into the
//! per-bucket counts of a Prometheus histogram at those bounds.

use hdrhistogram::Histogram;

/// Bounds (seconds) of per-token times (TPOT, ITL): 0.5 ms to 2.5 s.
pub const PER_TOKEN_S: &[f64] = &[
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.015, 0.02, 0.025, 0.03, 0.04, 0.05, 0.075, 0.1, 0.15, 0.2,
    0.3, 0.5, 1.0, 2.5,
];

/// Bounds (seconds) of per-request times (TTFB, TTFT, E2E, ...): 5 ms to 5 min.
pub const PER_REQUEST_S: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 7.5,
    10.0, 15.0, 20.0, 30.0, 60.0, 120.0, 300.0,
];

/// The samples of `hist` (recorded in µs) in each bucket `(bound_s, count)`: those above the
/// previous bound and at or below this one. Samples above the last bound are in no pair (the
/// encoder's `+Inf` bucket is the total count). An HDR bucket straddling a bound counts below
/// it, so a count is exact to the histogram's precision (3 significant digits, 0.1 %).
pub fn at_bounds(hist: &Histogram<u64>, bounds_s: &[f64]) -> Vec<(f64, u64)> {
    let mut out: Vec<(f64, u64)> = bounds_s.iter().map(|&b| (b, 0)).collect();
    let bounds_us: Vec<u64> = bounds_s.iter().map(|&b| (b * 1e6).round() as u64).collect();
    let mut i = 0;
    for v in hist.iter_recorded() {
        let low = hist.lowest_equivalent(v.value_iterated_to());
        while i < bounds_us.len() && bounds_us[i] < low {
            i += 1;
        }
        match out.get_mut(i) {
            Some((_, n)) => *n = n.saturating_add(v.count_at_value()),
            None => break,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hist(values_us: &[u64]) -> Histogram<u64> {
        let mut h = Histogram::new(3).unwrap();
        h.auto(true);
        for &v in values_us {
            h.record(v).unwrap();
        }
        h
    }

    #[test]
    fn bounds_increase() {
        for b in [PER_TOKEN_S, PER_REQUEST_S] {
            assert!(b.windows(2).all(|w| w[0] < w[1]));
        }
    }

    #[test]
    fn samples_land_in_their_bucket_and_the_rest_is_above() {
        let h = hist(&[1, 5_000, 5_001, 9_000, 10_000, 400_000_000]);
        let b = at_bounds(&h, &[0.005, 0.01, 1.0]);
        // 5 001 µs shares an HDR bucket with 5 000 µs (3 significant digits): counted at 5 ms.
        assert_eq!(b, [(0.005, 3), (0.01, 2), (1.0, 0)]);
        let below: u64 = b.iter().map(|(_, n)| n).sum();
        assert_eq!(h.len() - below, 1, "one sample above the last bound");
    }

    #[test]
    fn empty_histogram_has_empty_buckets() {
        let b = at_bounds(&hist(&[]), PER_TOKEN_S);
        assert_eq!(b.len(), PER_TOKEN_S.len());
        assert!(b.iter().all(|(_, n)| *n == 0));
    }

    #[test]
    fn counts_follow_every_sample_within_precision() {
        let values: Vec<u64> = (1..5000u64).map(|i| i * i * 7).collect();
        let h = hist(&values);
        let mut cumulative = 0;
        for (bound_s, n) in at_bounds(&h, PER_REQUEST_S) {
            cumulative += n;
            let bound_us = bound_s * 1e6;
            let exact_low = values
                .iter()
                .filter(|&&v| (v as f64) <= bound_us * 0.999)
                .count();
            let exact_high = values
                .iter()
                .filter(|&&v| (v as f64) <= bound_us * 1.001)
                .count();
            assert!(
                (exact_low as u64..=exact_high as u64).contains(&cumulative),
                "{bound_s}: {cumulative} not in {exact_low}..={exact_high}"
            );
        }
    }
}
