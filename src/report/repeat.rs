//! `--repeat N`: the statistics over repeated runs of one test. Each run gives its headline
//! figures (requests/s, output tokens/s, failure ratio, goodput when `--slo` is set, and p50/p99
//! of the catalogue's headline metrics, [`MetricId::HEADLINE`]); over the runs each is reported
//! as its mean with a 95 % confidence interval for the mean, from Student's t with n − 1 degrees
//! of freedom: mean ± t(0.975, n−1) · s / √n, where s is the runs' sample standard deviation.

use crate::metrics::{MetricId, NameStats};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// What the console and the HTML report say the ± means.
pub const SHOWN: &str =
    "mean ± half-width of the 95% confidence interval of the mean (Student t, n−1 degrees of freedom)";

/// The t quantile t(0.975, dof) for dof 1..=30 (two-sided 95 %).
const T975: [f64; 30] = [
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
    2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
    2.052, 2.048, 2.045, 2.042,
];

/// Student's t quantile for a two-sided 95 % interval, t(0.975, dof); `None` for 0 dof.
/// Tabulated to 30 dof, then the Cornish–Fisher expansion around the normal's 1.96 (error
/// below 0.001 from 30 dof on).
pub fn t975(dof: u32) -> Option<f64> {
    match dof {
        0 => None,
        1..=30 => T975.get(dof as usize - 1).copied(),
        _ => {
            let z: f64 = 1.959_964;
            let v = f64::from(dof);
            let g1 = (z.powi(3) + z) / 4.0;
            let g2 = (5.0 * z.powi(5) + 16.0 * z.powi(3) + 3.0 * z) / 96.0;
            let g3 = (3.0 * z.powi(7) + 19.0 * z.powi(5) + 17.0 * z.powi(3) - 15.0 * z) / 384.0;
            Some(z + g1 / v + g2 / (v * v) + g3 / (v * v * v))
        }
    }
}

/// One figure over the runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    /// Runs that measured it.
    pub n: u32,
    /// Mean over those runs.
    pub mean: f64,
    /// Lower end of the 95 % confidence interval of the mean (None with fewer than 2 runs).
    pub ci95_low: Option<f64>,
    /// Upper end.
    pub ci95_high: Option<f64>,
    /// Sample standard deviation over the runs (n − 1 in the denominator; 0 for one run).
    pub stddev: f64,
}

impl Estimate {
    /// The estimate of `values` (none when empty).
    pub fn of(values: &[f64]) -> Option<Estimate> {
        let n = u32::try_from(values.len()).ok().filter(|n| *n > 0)?;
        let mean = values.iter().sum::<f64>() / f64::from(n);
        let stddev = if n > 1 {
            (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / f64::from(n - 1)).sqrt()
        } else {
            0.0
        };
        let half = t975(n - 1).map(|t| t * stddev / f64::from(n).sqrt());
        Some(Estimate {
            n,
            mean,
            ci95_low: half.map(|h| mean - h),
            ci95_high: half.map(|h| mean + h),
            stddev,
        })
    }

    /// Half the interval's width, when there is one.
    pub fn half_width(&self) -> Option<f64> {
        Some((self.ci95_high? - self.ci95_low?) / 2.0)
    }
}

/// One headline figure: its key in the JSON, its label and unit.
#[derive(Clone, Debug, PartialEq)]
pub struct Figure {
    /// Key in `repeats.runs[]` and `repeats.metrics`, e.g. `ttft_p50_ms`.
    pub key: String,
    /// Label for tables, e.g. `TTFT p50`.
    pub label: String,
    /// Shown unit, e.g. `ms`.
    pub unit: &'static str,
}

/// The headline figures of a run, in report order: the run-level rates, then p50 and p99 of
/// each of the catalogue's headline metrics. Goodput only when SLOs are set.
pub fn figures(slo_set: bool) -> Vec<Figure> {
    let f = |key: &str, label: &str, unit| Figure {
        key: key.into(),
        label: label.into(),
        unit,
    };
    let mut out = vec![
        f("rps", "Requests/s", "req/s"),
        f("output_tokens_per_s", "Output tokens/s", "tok/s"),
        f("fail_ratio", "Failure ratio", "%"),
    ];
    if slo_set {
        out.push(f("goodput", "Goodput", "req/s"));
    }
    for id in MetricId::HEADLINE {
        let d = id.def();
        for stat in ["p50", "p99"] {
            out.push(Figure {
                key: format!("{}_{stat}_{}", d.name, d.unit.display()),
                label: format!("{} {stat}", d.label),
                unit: d.unit.display(),
            });
        }
    }
    out
}

/// A run's headline figures (absent ones, e.g. TPOT when no request had 2 tokens, are left out).
pub fn headline(total: &NameStats, slo_set: bool) -> BTreeMap<String, f64> {
    let s = super::json::summary(total);
    let mut out = BTreeMap::new();
    out.insert("rps".to_string(), s.rps);
    out.insert("output_tokens_per_s".to_string(), s.output_tokens_per_s);
    out.insert("fail_ratio".to_string(), s.fail_ratio * 100.0);
    if slo_set {
        out.insert("goodput".to_string(), s.goodput);
    }
    for id in MetricId::HEADLINE {
        let d = id.def();
        let m = total.metric(id);
        for (stat, q) in [("p50", 0.5), ("p99", 0.99)] {
            if let Some(v) = m.quantile(q) {
                let key = format!("{}_{stat}_{}", d.name, d.unit.display());
                out.insert(key, v as f64 / d.unit.display_scale());
            }
        }
    }
    out
}

/// Repeated runs of one test: each run's headline figures and their estimates.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Repeats {
    /// Runs that ran (fewer than asked when stopped early).
    pub n: u32,
    /// Runs asked for (`--repeat N`).
    pub asked: u32,
    /// What the ± shows.
    pub shown: String,
    /// Each run's headline figures, in run order (`fail_ratio` in percent).
    pub runs: Vec<BTreeMap<String, f64>>,
    /// Each figure over the runs, by key.
    pub metrics: BTreeMap<String, Estimate>,
}

impl Repeats {
    /// The estimates of `runs`' figures.
    pub fn of(runs: Vec<BTreeMap<String, f64>>, asked: u32) -> Repeats {
        let mut metrics = BTreeMap::new();
        let keys: std::collections::BTreeSet<&String> =
            runs.iter().flat_map(|r| r.keys()).collect();
        for key in keys {
            let values: Vec<f64> = runs.iter().filter_map(|r| r.get(key).copied()).collect();
            if let Some(e) = Estimate::of(&values) {
                metrics.insert(key.clone(), e);
            }
        }
        Repeats {
            n: u32::try_from(runs.len()).unwrap_or(u32::MAX),
            asked,
            shown: SHOWN.to_string(),
            runs,
            metrics,
        }
    }
}

fn num(x: f64) -> String {
    if x.abs() >= 100.0 {
        format!("{x:.0}")
    } else if x.abs() >= 1.0 {
        format!("{x:.2}")
    } else {
        format!("{x:.3}")
    }
}

/// The console table: each figure as mean ± half-width [low, high], and its stddev.
pub fn console(r: &Repeats, slo_set: bool) -> String {
    let mut table = comfy_table::Table::new();
    table
        .load_preset(comfy_table::presets::UTF8_HORIZONTAL_ONLY)
        .remove_style(comfy_table::TableComponent::HorizontalLines)
        .remove_style(comfy_table::TableComponent::MiddleIntersections)
        .set_header(["Metric", "mean ± 95% CI", "95% CI", "stddev", "runs"]);
    for f in figures(slo_set) {
        let Some(e) = r.metrics.get(&f.key) else {
            continue;
        };
        let unit = if f.unit == "%" { "%" } else { f.unit };
        let pm = match e.half_width() {
            Some(h) => format!("{} ± {} {unit}", num(e.mean), num(h)),
            None => format!("{} {unit}", num(e.mean)),
        };
        let ci = match (e.ci95_low, e.ci95_high) {
            (Some(lo), Some(hi)) => format!("[{}, {}]", num(lo), num(hi)),
            _ => "-".into(),
        };
        table.add_row([f.label, pm, ci, num(e.stddev), e.n.to_string()]);
    }
    let mut out = String::new();
    let _ = writeln!(out, "\n=== {} of {} runs: {SHOWN} ===", r.n, r.asked);
    let _ = writeln!(out, "{table}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn t_quantiles() {
        assert_eq!(t975(0), None);
        assert_eq!(t975(1), Some(12.706));
        assert_eq!(t975(2), Some(4.303));
        assert_eq!(t975(30), Some(2.042));
        // Beyond the table: close to the exact values, decreasing towards 1.96.
        for (dof, exact) in [
            (31, 2.0395),
            (40, 2.0211),
            (60, 2.0003),
            (120, 1.9799),
            (1000, 1.9623),
        ] {
            let t = t975(dof).unwrap();
            assert!((t - exact).abs() < 0.001, "dof {dof}: {t} vs {exact}");
        }
        assert!(t975(u32::MAX).unwrap() > 1.959 && t975(u32::MAX).unwrap() < 1.961);
    }

    #[test]
    fn ci_of_known_values() {
        // 3 runs: mean 20, s = 10, half-width 4.303 * 10 / sqrt(3).
        let e = Estimate::of(&[10.0, 20.0, 30.0]).unwrap();
        assert_eq!(e.n, 3);
        assert!((e.mean - 20.0).abs() < 1e-12);
        assert!((e.stddev - 10.0).abs() < 1e-12);
        let h = 4.303 * 10.0 / 3f64.sqrt();
        assert!((e.ci95_low.unwrap() - (20.0 - h)).abs() < 1e-9);
        assert!((e.ci95_high.unwrap() - (20.0 + h)).abs() < 1e-9);
        assert!((e.half_width().unwrap() - h).abs() < 1e-9);
        // Equal runs: a zero-width interval at the value.
        let e = Estimate::of(&[5.0; 4]).unwrap();
        assert_eq!(
            (e.ci95_low, e.ci95_high, e.stddev),
            (Some(5.0), Some(5.0), 0.0)
        );
        // One run: no interval.
        let e = Estimate::of(&[7.0]).unwrap();
        assert_eq!((e.n, e.ci95_low, e.stddev), (1, None, 0.0));
        assert!(Estimate::of(&[]).is_none());
    }

    #[test]
    fn repeats_estimate_each_figure_over_the_runs_that_have_it() {
        let run = |rps: f64, tpot: Option<f64>| {
            let mut m = BTreeMap::from([("rps".to_string(), rps)]);
            if let Some(t) = tpot {
                m.insert("tpot_p50_ms".to_string(), t);
            }
            m
        };
        let r = Repeats::of(
            vec![run(1.0, Some(3.0)), run(3.0, None), run(2.0, Some(5.0))],
            3,
        );
        assert_eq!(r.n, 3);
        assert_eq!(r.metrics["rps"].n, 3);
        assert!((r.metrics["rps"].mean - 2.0).abs() < 1e-12);
        assert_eq!(r.metrics["tpot_p50_ms"].n, 2);
        let text = console(&r, false);
        assert!(text.contains("2.00 ± 2.48 req/s"), "{text}");
        assert!(text.contains("Student t"), "{text}");
    }

    #[test]
    fn figures_come_from_the_catalogue() {
        let keys: Vec<String> = figures(true).into_iter().map(|f| f.key).collect();
        for k in [
            "rps",
            "goodput",
            "ttft_p50_ms",
            "ttft_p99_ms",
            "tpot_p99_ms",
            "itl_p50_ms",
            "e2e_p99_ms",
        ] {
            assert!(keys.contains(&k.to_string()), "{k} in {keys:?}");
        }
        assert!(!figures(false).iter().any(|f| f.key == "goodput"));
    }
}
