//! Reading statistics as the master does: a worker's `stats` message (its `"gsai"` extension
//! with exact histograms, or Locust's entries) into a delta over the test's request kinds.
//! Everything here is a peer's claim, so it is bounded: kinds per test, name and message
//! lengths, rows and metrics per report, histogram ranges (see [`super::hdr_wire`]).

use super::hdr_wire::{decode_metric, HdrWireError, MAX_HISTOGRAM_VALUE};
use super::protocol::{as_f64, as_u64, get, GSAI_PROTOCOL};
use crate::metrics::{
    FailureEntry, FailureKey, FailureKind, Metric, MetricId, NameStats, RequestKind, StatsSet,
};
use rmpv::Value;

/// Most request kinds (rows) one test keeps. gsai-load's workloads have a few; Locust users
/// keep theirs to tens. Each row costs up to ~3.3 MB of histograms (one per catalogue metric,
/// ~254 KB each at the widest range a peer may claim), so a peer inventing names must not add
/// rows without end: rows and failures of kinds beyond this are dropped.
pub const MAX_REQUEST_KINDS: usize = 64;
/// Longest method or name kept for a row (longer ones are cut, at a character boundary).
pub const MAX_KIND_NAME_BYTES: usize = 512;
/// Longest failure message kept (longer ones are cut).
pub const MAX_FAILURE_MESSAGE_BYTES: usize = 4096;
/// Most entries read from one metrics map of a row; the known metrics (the catalogue) are fewer,
/// with room for a later version's, and each is read once, so a map repeating one metric cannot
/// make us decode it again and again.
const MAX_METRICS_PER_ROW: usize = 32;
const _: () = assert!(MetricId::COUNT <= MAX_METRICS_PER_ROW);

/// Why a stats report cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum StatsWireError {
    /// The `"gsai"` extension is from a newer, incompatible gsai-load.
    #[error("stats extension version {0} is not supported (this gsai-load speaks {GSAI_PROTOCOL}); run the same gsai-load version on master and workers")]
    Version(u64),
    /// A field is missing or of the wrong type.
    #[error("malformed stats report: {0}")]
    Shape(String),
    /// A histogram was refused.
    #[error("stats report: {0}")]
    Histogram(#[from] HdrWireError),
}

/// `s` cut to at most `max` bytes, at a character boundary.
fn clip(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn shape(s: impl Into<String>) -> StatsWireError {
    StatsWireError::Shape(s.into())
}

/// Maps request kinds to row indices, adding new kinds as they come.
#[derive(Clone, Debug, Default)]
pub struct KindIndex {
    kinds: Vec<RequestKind>,
}

impl KindIndex {
    /// Starts with `kinds` at their indices.
    pub fn new(kinds: Vec<RequestKind>) -> Self {
        Self { kinds }
    }

    /// The index of (method, name) (each cut to [`MAX_KIND_NAME_BYTES`]), added if new;
    /// `None` when it is new and [`MAX_REQUEST_KINDS`] kinds are known already.
    pub fn index(&mut self, method: &str, name: &str) -> Option<usize> {
        let (method, name) = (
            clip(method, MAX_KIND_NAME_BYTES),
            clip(name, MAX_KIND_NAME_BYTES),
        );
        if let Some(i) = self
            .kinds
            .iter()
            .position(|k| k.method == method && k.name == name)
        {
            return Some(i);
        }
        if self.kinds.len() >= MAX_REQUEST_KINDS {
            return None;
        }
        self.kinds.push(RequestKind {
            method: method.into(),
            name: name.into(),
        });
        Some(self.kinds.len() - 1)
    }

    /// All kinds, by index.
    pub fn kinds(&self) -> &[RequestKind] {
        &self.kinds
    }
}

/// One report as the master reads it: a delta with rows indexed by the master's kinds.
#[derive(Clone, Debug, Default)]
pub struct ReadReport {
    /// The statistics.
    pub delta: StatsSet,
    /// Users the worker runs.
    pub user_count: u64,
    /// Requests in flight at the worker (0 when it did not say).
    pub in_flight: u64,
    /// Whether the report had the exact extension (else it was rebuilt from Locust's entries).
    pub exact: bool,
    /// Rows and failures dropped because their kind was new beyond [`MAX_REQUEST_KINDS`].
    pub dropped_kinds: u64,
}

fn text(v: &Value, key: &str) -> String {
    get(v, key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// Reads a `stats` message's data into a delta over `index`'s kinds.
pub fn read_report(data: &Value, index: &mut KindIndex) -> Result<ReadReport, StatsWireError> {
    let user_count = get(data, "user_count").and_then(as_u64).unwrap_or(0);
    let mut dropped_kinds = 0;
    if let Some(g) = get(data, "gsai") {
        let (delta, in_flight) = decode_exact(g, index, &mut dropped_kinds)?;
        return Ok(ReadReport {
            delta,
            user_count,
            in_flight,
            exact: true,
            dropped_kinds,
        });
    }
    Ok(ReadReport {
        delta: from_entries(data, index, &mut dropped_kinds)?,
        user_count,
        in_flight: 0,
        exact: false,
        dropped_kinds,
    })
}

fn row_at(set: &mut StatsSet, i: usize) -> &mut NameStats {
    if set.rows.len() <= i {
        set.rows.resize(i + 1, NameStats::default());
    }
    &mut set.rows[i]
}

fn decode_exact(
    g: &Value,
    index: &mut KindIndex,
    dropped_kinds: &mut u64,
) -> Result<(StatsSet, u64), StatsWireError> {
    let version = get(g, "version").and_then(as_u64).unwrap_or(0);
    if version != GSAI_PROTOCOL {
        return Err(StatsWireError::Version(version));
    }
    let mut set = StatsSet::new(index.kinds().len());
    let rows = get(g, "rows")
        .and_then(Value::as_array)
        .ok_or_else(|| shape("gsai.rows"))?;
    if rows.len() > MAX_REQUEST_KINDS {
        // One row per kind: more rows than a test may have kinds is not a real report, and
        // each row may hold a histogram per catalogue metric to decode.
        return Err(shape(format!(
            "{} rows (at most {MAX_REQUEST_KINDS})",
            rows.len()
        )));
    }
    for r in rows {
        let Some(i) = index.index(&text(r, "method"), &text(r, "name")) else {
            *dropped_kinds += 1;
            continue;
        };
        let n = |k: &str| get(r, k).and_then(as_u64).unwrap_or(0);
        let mut row = NameStats {
            requests: n("requests"),
            failures: n("failures"),
            cancelled: n("cancelled"),
            dropped: n("dropped"),
            warmup: n("warmup"),
            good: n("good"),
            content_bytes: n("content_bytes"),
            first_start_unix_us: n("first_start_unix_us"),
            last_end_unix_us: n("last_end_unix_us"),
            ..NameStats::default()
        };
        if let Some(ts) = get(r, "token_sources").and_then(Value::as_array) {
            for (slot, v) in row.token_sources.iter_mut().zip(ts) {
                *slot = as_u64(v).unwrap_or(0);
            }
        }
        let metrics = get(r, "metrics").and_then(Value::as_map);
        if metrics.is_some_and(|m| m.len() > MAX_METRICS_PER_ROW) {
            return Err(shape(format!(
                "a row with more than {MAX_METRICS_PER_ROW} metrics"
            )));
        }
        let mut seen = [false; MetricId::COUNT];
        for (name, m) in metrics.into_iter().flatten() {
            // Metrics added by a later minor version are skipped, not fatal; a repeated one
            // is read once; one a peer does not send stays empty.
            let Some(id) = name.as_str().and_then(MetricId::from_key) else {
                continue;
            };
            if !std::mem::replace(&mut seen[id.index()], true) {
                *row.metric_mut(id) = decode_metric(m)?;
            }
        }
        row_at(&mut set, i).merge(&row);
    }
    for f in get(g, "failures")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let a = f.as_array().ok_or_else(|| shape("gsai.failures entry"))?;
        let s = |i: usize| a.get(i).and_then(Value::as_str).unwrap_or_default();
        let Some(kind) = index.index(s(0), s(1)) else {
            *dropped_kinds += 1;
            continue;
        };
        let cause = FailureKind::parse(s(6)).unwrap_or_else(|| FailureKind::from_message(s(2)));
        add_failure(
            &mut set,
            kind,
            cause,
            s(2),
            FailureEntry {
                count: a.get(3).and_then(as_u64).unwrap_or(0),
                first_seen_unix_s: a.get(4).and_then(as_f64).unwrap_or(0.0),
                last_seen_unix_s: a.get(5).and_then(as_f64).unwrap_or(0.0),
            },
        );
    }
    let in_flight = get(g, "in_flight").and_then(as_u64).unwrap_or(0);
    Ok((set, in_flight))
}

fn add_failure(
    set: &mut StatsSet,
    kind: usize,
    cause: FailureKind,
    message: &str,
    e: FailureEntry,
) {
    row_at(set, kind);
    let mut one = StatsSet::new(0);
    one.failures.insert(
        FailureKey {
            kind,
            cause,
            message: clip(message, MAX_FAILURE_MESSAGE_BYTES).into(),
        },
        e,
    );
    set.merge(&one);
}

/// Rebuilds a delta from Locust's stats entries (a worker without the exact extension).
fn from_entries(
    data: &Value,
    index: &mut KindIndex,
    dropped_kinds: &mut u64,
) -> Result<StatsSet, StatsWireError> {
    let mut set = StatsSet::new(index.kinds().len());
    let entries = get(data, "stats")
        .and_then(Value::as_array)
        .ok_or_else(|| shape("no stats list"))?;
    for e in entries {
        let Some(i) = index.index(&text(e, "method"), &text(e, "name")) else {
            *dropped_kinds += 1;
            continue;
        };
        let n = |k: &str| get(e, k).and_then(as_u64).unwrap_or(0);
        let f = |k: &str| get(e, k).and_then(as_f64);
        let us = |ms: f64| (ms * 1000.0).round().max(0.0) as u64;
        let mut hist = Metric::new().histogram().clone();
        for (k, c) in get(e, "response_times")
            .and_then(Value::as_map)
            .into_iter()
            .flatten()
        {
            // A time beyond the histogram limit is not a real response time; recording it
            // would grow the histogram to any size a peer names.
            if let (Some(ms), Some(c)) = (as_f64(k), as_u64(c)) {
                if us(ms) <= MAX_HISTOGRAM_VALUE {
                    let _ = hist.record_n(us(ms), c);
                }
            }
        }
        let mut row = NameStats {
            requests: n("num_requests"),
            failures: n("num_failures"),
            content_bytes: n("total_content_length"),
            first_start_unix_us: f("start_time").map_or(0, |s| (s * 1e6) as u64),
            last_end_unix_us: f("last_request_timestamp").map_or(0, |s| (s * 1e6) as u64),
            ..NameStats::default()
        };
        *row.metric_mut(MetricId::ResponseTime) = Metric::from_parts(
            hist,
            us(f("total_response_time").unwrap_or(0.0)),
            us(f("min_response_time").unwrap_or(0.0)),
            us(f("max_response_time").unwrap_or(0.0)),
        );
        row_at(&mut set, i).merge(&row);
    }
    for (_, err) in get(data, "errors")
        .and_then(Value::as_map)
        .into_iter()
        .flatten()
    {
        let Some(kind) = index.index(&text(err, "method"), &text(err, "name")) else {
            *dropped_kinds += 1;
            continue;
        };
        let seen = |k: &str| get(err, k).and_then(as_f64).unwrap_or(0.0);
        let message = text(err, "error");
        add_failure(
            &mut set,
            kind,
            FailureKind::from_message(&message),
            &message,
            FailureEntry {
                count: get(err, "occurrences").and_then(as_u64).unwrap_or(0),
                first_seen_unix_s: seen("first_seen"),
                last_seen_unix_s: seen("last_seen"),
            },
        );
    }
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::protocol::map;

    fn entry(name: &str, requests: u64) -> Value {
        map(vec![
            ("name", Value::from(name)),
            ("method", Value::from("GET")),
            ("num_requests", Value::from(requests)),
        ])
    }

    #[test]
    fn kinds_are_bounded_per_test_and_names_are_clipped() {
        let mut index = KindIndex::default();
        let long = "é".repeat(MAX_KIND_NAME_BYTES);
        let entries: Vec<Value> = (0..MAX_REQUEST_KINDS + 3)
            .map(|i| entry(&format!("{long}{i}"), 1))
            .collect();
        let data = map(vec![("stats", Value::Array(entries))]);
        let r = read_report(&data, &mut index).unwrap();
        // Cut at 512 bytes, every name is the same: one kind.
        assert_eq!(index.kinds().len(), 1);
        assert_eq!(index.kinds()[0].name.len(), MAX_KIND_NAME_BYTES);
        assert_eq!(r.delta.total().requests, MAX_REQUEST_KINDS as u64 + 3);
        let entries: Vec<Value> = (0..MAX_REQUEST_KINDS + 3)
            .map(|i| entry(&format!("/{i}"), 1))
            .collect();
        let data = map(vec![("stats", Value::Array(entries))]);
        let r = read_report(&data, &mut index).unwrap();
        assert_eq!(index.kinds().len(), MAX_REQUEST_KINDS);
        assert_eq!(r.dropped_kinds, 4, "the long name took one place");
        assert_eq!(r.delta.rows.len(), MAX_REQUEST_KINDS);
    }

    #[test]
    fn a_report_with_more_rows_than_kinds_is_refused() {
        let row = map(vec![
            ("method", Value::from("GET")),
            ("name", Value::from("/")),
        ]);
        let gsai = map(vec![
            ("version", Value::from(GSAI_PROTOCOL)),
            ("rows", Value::Array(vec![row; MAX_REQUEST_KINDS + 1])),
        ]);
        let data = map(vec![("gsai", gsai)]);
        assert!(matches!(
            read_report(&data, &mut KindIndex::default()),
            Err(StatsWireError::Shape(_))
        ));
    }
}
