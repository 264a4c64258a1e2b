//! The scraped series and their bounds: a [`Collector`] keeps each `(url, name, labels)` series'
//! points, refuses series past a cap, halves the time resolution of every series when the total
//! point count reaches its cap (so a long test keeps its whole span), and records each scrape
//! failure once per URL and cause. [`ServerMetrics`] is what a finished test stores: the series,
//! counters' per-second rates, and the failures.

use super::parse::{Sample, SeriesKind};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// One scraped series over the test.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Series {
    /// The metrics URL it came from.
    pub url: String,
    /// The sample name as on the wire.
    pub name: String,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// The metric's type.
    pub kind: SeriesKind,
    /// `[unix_s, value]`, in time order.
    pub points: Vec<[f64; 2]>,
    /// For counters (and histogram/summary counts and sums): `[unix_s, increase per second
    /// since the previous point]`; a drop counts as a restart from zero, as Prometheus' rate().
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rate_per_s: Vec<[f64; 2]>,
}

/// One kind of scrape failure of one URL.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScrapeFailure {
    /// The metrics URL.
    pub url: String,
    /// What went wrong.
    pub cause: String,
    /// How many scrapes failed this way.
    pub count: u64,
    /// First time, seconds since the Unix epoch.
    pub first_unix_s: f64,
    /// Last time, seconds since the Unix epoch.
    pub last_unix_s: f64,
}

/// What `--server-metrics` gathered over a test.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerMetrics {
    /// Every kept series.
    pub series: Vec<Series>,
    /// Scrape failures, one entry per URL and cause.
    pub errors: Vec<ScrapeFailure>,
}

impl ServerMetrics {
    /// Whether nothing was scraped and nothing failed (no `--server-metrics`).
    pub fn is_empty(&self) -> bool {
        self.series.is_empty() && self.errors.is_empty()
    }

    /// Fills in every cumulative series' per-second rate from its points.
    pub fn compute_rates(&mut self) {
        for s in &mut self.series {
            s.rate_per_s = if s.kind.is_cumulative(&s.name) {
                rates(&s.points)
            } else {
                Vec::new()
            };
        }
    }
}

/// Per-second increase between consecutive points; a drop is a restart from zero.
pub fn rates(points: &[[f64; 2]]) -> Vec<[f64; 2]> {
    points
        .windows(2)
        .filter_map(|w| {
            let ([t0, v0], [t1, v1]) = (w[0], w[1]);
            let dt = t1 - t0;
            (dt > 0.0 && v0.is_finite() && v1.is_finite()).then(|| {
                let increase = if v1 >= v0 { v1 - v0 } else { v1 };
                [t1, increase / dt]
            })
        })
        .collect()
}

/// The hard bounds on what one test keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bounds {
    /// Most series kept over all URLs; later ones are dropped (and that is reported once).
    pub max_series: usize,
    /// Most points kept over all series; past it, every series keeps every other point.
    pub max_points: usize,
}

impl Default for Bounds {
    fn default() -> Self {
        Self {
            max_series: 10_000,
            max_points: 2_000_000,
        }
    }
}

type Key = (usize, String, BTreeMap<String, String>);

/// Gathers scrapes into series within [`Bounds`].
#[derive(Debug)]
pub struct Collector {
    bounds: Bounds,
    urls: Vec<String>,
    index: HashMap<Key, usize>,
    series: Vec<Series>,
    errors: Vec<ScrapeFailure>,
    points: usize,
    /// Each URL's scrapes are kept one in `stride` (a power of two) after thinning.
    stride: u64,
    scrapes: Vec<u64>,
}

impl Collector {
    /// An empty collector for these URLs (index `i` in [`Collector::record`] is `urls[i]`).
    pub fn new(urls: Vec<String>, bounds: Bounds) -> Self {
        let n = urls.len();
        Self {
            bounds,
            urls,
            index: HashMap::new(),
            series: Vec::new(),
            errors: Vec::new(),
            points: 0,
            stride: 1,
            scrapes: vec![0; n],
        }
    }

    /// Records one successful scrape of URL `url` at `unix_s`; after thinning, only one scrape
    /// in `stride` is kept, except a `last` one (the test's end is always kept). Returns a
    /// message when this scrape hit a bound for the first time (for a warning).
    pub fn record(
        &mut self,
        url: usize,
        unix_s: f64,
        samples: Vec<Sample>,
        last: bool,
    ) -> Option<String> {
        let n = self.scrapes.get_mut(url)?;
        let nth = *n;
        *n += 1;
        if nth % self.stride != 0 && !last {
            return None;
        }
        let mut refused = false;
        for s in samples {
            let key: Key = (url, s.name, s.labels);
            let i = match self.index.get(&key) {
                Some(&i) => i,
                None if self.series.len() >= self.bounds.max_series => {
                    refused = true;
                    continue;
                }
                None => {
                    let (_, name, labels) = key.clone();
                    self.series.push(Series {
                        url: self.urls.get(url).cloned().unwrap_or_default(),
                        name,
                        labels,
                        kind: s.kind,
                        points: Vec::new(),
                        rate_per_s: Vec::new(),
                    });
                    self.index.insert(key, self.series.len() - 1);
                    self.series.len() - 1
                }
            };
            self.series[i].points.push([unix_s, s.value]);
            self.points += 1;
        }
        let mut note = None;
        if refused {
            let cause = format!(
                "more than {} series: later ones are not kept (narrow with --server-metrics-filter)",
                self.bounds.max_series
            );
            if self.fail(url, unix_s, &cause) {
                note = Some(cause);
            }
        }
        while self.points > self.bounds.max_points && self.stride < (1 << 40) {
            self.thin();
        }
        note
    }

    /// Keeps every other point of every series and every other scrape from now on.
    fn thin(&mut self) {
        self.stride *= 2;
        self.points = 0;
        for s in &mut self.series {
            let mut k = 0;
            s.points.retain(|_| {
                k += 1;
                k % 2 == 1
            });
            self.points += s.points.len();
        }
    }

    /// Records a failed scrape of URL `url`. Returns true the first time this URL fails with
    /// this cause (then the caller warns).
    pub fn fail(&mut self, url: usize, unix_s: f64, cause: &str) -> bool {
        let url = self.urls.get(url).cloned().unwrap_or_default();
        if let Some(e) = self
            .errors
            .iter_mut()
            .find(|e| e.url == url && e.cause == cause)
        {
            e.count += 1;
            e.last_unix_s = unix_s;
            return false;
        }
        self.errors.push(ScrapeFailure {
            url,
            cause: cause.to_string(),
            count: 1,
            first_unix_s: unix_s,
            last_unix_s: unix_s,
        });
        true
    }

    /// Points kept so far, over all series.
    pub fn point_count(&self) -> usize {
        self.points
    }

    /// A copy of what was gathered so far, rates included.
    pub fn snapshot(&self) -> ServerMetrics {
        let mut m = ServerMetrics {
            series: self.series.clone(),
            errors: self.errors.clone(),
        };
        m.compute_rates();
        m
    }

    /// Everything gathered, rates included.
    pub fn into_metrics(self) -> ServerMetrics {
        let mut m = ServerMetrics {
            series: self.series,
            errors: self.errors,
        };
        m.compute_rates();
        m
    }

    /// Visits every series (for derived views computed under a lock, without a copy).
    pub fn series(&self) -> &[Series] {
        &self.series
    }

    /// The failures so far.
    pub fn errors(&self) -> &[ScrapeFailure] {
        &self.errors
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(name: &str, v: f64) -> Sample {
        Sample {
            name: name.into(),
            labels: BTreeMap::new(),
            kind: SeriesKind::Counter,
            value: v,
        }
    }

    #[test]
    fn counter_rates_and_restarts() {
        let r = rates(&[[0.0, 0.0], [1.0, 10.0], [3.0, 30.0], [4.0, 5.0], [4.0, 6.0]]);
        assert_eq!(r, vec![[1.0, 10.0], [3.0, 10.0], [4.0, 5.0]]);
    }

    #[test]
    fn too_many_series_are_refused_once() {
        let bounds = Bounds {
            max_series: 2,
            max_points: 100,
        };
        let mut c = Collector::new(vec!["u".into()], bounds);
        let batch = || vec![sample("a", 1.0), sample("b", 1.0), sample("c", 1.0)];
        assert!(c.record(0, 1.0, batch(), false).is_some());
        assert!(c.record(0, 2.0, batch(), false).is_none(), "reported once");
        let m = c.into_metrics();
        assert_eq!(m.series.len(), 2);
        assert_eq!(m.series[0].points.len(), 2);
        assert_eq!(m.errors.len(), 1);
        assert!(m.errors[0].cause.contains("more than 2 series"));
        assert_eq!(m.errors[0].count, 2);
    }

    #[test]
    fn the_point_cap_halves_resolution_and_keeps_the_span() {
        let bounds = Bounds {
            max_series: 10,
            max_points: 20,
        };
        let mut c = Collector::new(vec!["u".into()], bounds);
        for t in 0..100 {
            c.record(
                0,
                f64::from(t),
                vec![sample("a", f64::from(t) * 10.0)],
                false,
            );
            assert!(c.point_count() <= 20);
        }
        // The test's last scrape is kept whatever the stride.
        c.record(0, 100.5, vec![sample("a", 1005.0)], true);
        let m = c.into_metrics();
        let pts = &m.series[0].points;
        assert!(pts.len() >= 10 && pts.len() <= 20, "{}", pts.len());
        assert_eq!(pts[0][0], 0.0, "the start is kept");
        assert_eq!(pts.last().unwrap()[0], 100.5, "the end is kept");
        // Rates stay right whatever the spacing.
        assert!(m.series[0]
            .rate_per_s
            .iter()
            .all(|p| (p[1] - 10.0).abs() < 1e-9));
    }

    #[test]
    fn failures_count_per_url_and_cause() {
        let mut c = Collector::new(vec!["u".into(), "v".into()], Bounds::default());
        assert!(c.fail(0, 1.0, "refused"));
        assert!(!c.fail(0, 2.0, "refused"));
        assert!(c.fail(0, 3.0, "timeout"));
        assert!(c.fail(1, 3.0, "refused"));
        let e = c.errors();
        assert_eq!(e.len(), 3);
        assert_eq!(
            (e[0].count, e[0].first_unix_s, e[0].last_unix_s),
            (2, 1.0, 2.0)
        );
        // An unknown index is ignored, not a panic.
        assert!(c.record(7, 1.0, vec![sample("a", 1.0)], true).is_none());
    }
}
