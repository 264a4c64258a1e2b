//! Statistics on the wire: a [`StatsSet`] delta as the `data` of Locust's `stats` message
//! (stats entries, Aggregated total, errors, with Locust's rounding and integer keys), plus the
//! exact version in a `"gsai"` key (every metric of the catalogue, [`crate::metrics::MetricId`],
//! as an HDR histogram, V2-serialized, as msgpack bin, under its key). The master reads them back
//! in [`super::stats_read`].
//!
//! A stock Locust master reads the entries and ignores `"gsai"`; our master merges the
//! histograms, so its percentiles are those of every request, never an average of workers'.
//! From a worker that sends no `"gsai"` key (Locust, Boomer) our master rebuilds what the
//! entries allow: counts, response-time buckets, failures.

use super::hdr_wire::encode_metric;
use super::protocol::{map, GSAI_PROTOCOL};
pub use super::stats_read::{
    read_report, KindIndex, ReadReport, StatsWireError, MAX_FAILURE_MESSAGE_BYTES,
    MAX_KIND_NAME_BYTES, MAX_REQUEST_KINDS,
};
use crate::metrics::{Metric, MetricId, NameStats, RequestKind, StatsSet};
use rmpv::Value;
use std::collections::BTreeMap;

/// Locust's `bucket_response_time` on a time in µs: rounds the time in ms to ~2 significant
/// digits (147 → 150, 3432 → 3400, 58760 → 59000), half to even like Python's `round`.
pub fn bucket_ms(us: u64) -> u64 {
    let unit_us: u64 = match us {
        0..=99_999 => 1_000,
        100_000..=999_999 => 10_000,
        1_000_000..=9_999_999 => 100_000,
        _ => 1_000_000,
    };
    let (q, r) = (us / unit_us, us % unit_us);
    let q = match (2 * r).cmp(&unit_us) {
        std::cmp::Ordering::Less => q,
        std::cmp::Ordering::Greater => q + 1,
        std::cmp::Ordering::Equal => q + (q & 1),
    };
    q * (unit_us / 1_000)
}

/// Requests and failures per epoch second, for one row.
pub type PerSecond = BTreeMap<i64, (u64, u64)>;

/// Locust's response-time dict of a metric in µs: bucket (ms) → count.
pub fn response_times(m: &Metric) -> BTreeMap<u64, u64> {
    let h = m.histogram();
    let mut out = BTreeMap::new();
    for v in h.iter_recorded() {
        // The middle of the HDR bucket stands for its samples (within 0.1%).
        let us = h.median_equivalent(v.value_iterated_to());
        *out.entry(bucket_ms(us)).or_insert(0) += v.count_at_value();
    }
    out
}

fn int_map<K: Into<Value> + Copy>(m: impl IntoIterator<Item = (K, u64)>) -> Value {
    Value::Map(
        m.into_iter()
            .map(|(k, n)| (k.into(), Value::from(n)))
            .collect(),
    )
}

fn ms(us: u64) -> Value {
    Value::F64(us as f64 / 1000.0)
}

fn unix_s(us: u64) -> Value {
    if us == 0 {
        Value::Nil
    } else {
        Value::F64(us as f64 / 1e6)
    }
}

/// One Locust stats entry (`StatsEntry.serialize()`), keys in Locust's order.
pub fn entry(kind: &RequestKind, row: &NameStats, per_sec: &PerSecond, now_unix_s: f64) -> Value {
    let rt = row.metric(MetricId::ResponseTime);
    let start = if row.first_start_unix_us == 0 {
        Value::F64(now_unix_s)
    } else {
        unix_s(row.first_start_unix_us)
    };
    map(vec![
        ("name", Value::from(kind.name.as_str())),
        ("method", Value::from(kind.method.as_str())),
        ("last_request_timestamp", unix_s(row.last_end_unix_us)),
        ("start_time", start),
        ("num_requests", Value::from(row.requests)),
        ("num_none_requests", Value::from(0)),
        ("num_failures", Value::from(row.failures)),
        ("total_response_time", ms(rt.sum())),
        ("max_response_time", rt.max().map_or(Value::from(0), ms)),
        ("min_response_time", rt.min().map_or(Value::Nil, ms)),
        ("total_content_length", Value::from(row.content_bytes)),
        ("response_times", int_map(response_times(rt))),
        (
            "num_reqs_per_sec",
            int_map(
                per_sec
                    .iter()
                    .filter(|(_, c)| c.0 > 0)
                    .map(|(t, c)| (*t, c.0)),
            ),
        ),
        (
            "num_fail_per_sec",
            int_map(
                per_sec
                    .iter()
                    .filter(|(_, c)| c.1 > 0)
                    .map(|(t, c)| (*t, c.1)),
            ),
        ),
    ])
}

/// What a worker says besides statistics.
#[derive(Clone, Debug, Default)]
pub struct WorkerFigures {
    /// Users per class, echoed from the last spawn order.
    pub user_classes_count: Vec<(String, u64)>,
    /// Users running.
    pub user_count: u64,
    /// Requests in flight (sent in the `"gsai"` extension only).
    pub in_flight: u64,
}

/// The `data` of a `stats` message for `delta`. `per_sec` is indexed like the rows;
/// `gsai` adds the exact extension.
pub fn report_data(
    kinds: &[RequestKind],
    delta: &StatsSet,
    per_sec: &[PerSecond],
    figures: &WorkerFigures,
    now_unix_s: f64,
    gsai: bool,
) -> Value {
    let empty = PerSecond::new();
    let mut entries = Vec::new();
    let mut total_per_sec = PerSecond::new();
    for (i, row) in delta.rows.iter().enumerate() {
        let ps = per_sec.get(i).unwrap_or(&empty);
        for (t, (r, f)) in ps {
            let e = total_per_sec.entry(*t).or_insert((0, 0));
            e.0 += r;
            e.1 += f;
        }
        if row.requests == 0 && row.failures == 0 {
            continue;
        }
        if let Some(kind) = kinds.get(i) {
            entries.push(entry(kind, row, ps, now_unix_s));
        }
    }
    let aggregated = RequestKind {
        method: String::new(),
        name: "Aggregated".into(),
    };
    let total = entry(&aggregated, &delta.total(), &total_per_sec, now_unix_s);
    let mut errors = Vec::new();
    for (k, e) in delta.failures_sorted() {
        let Some(kind) = kinds.get(k.kind) else {
            continue;
        };
        let key = format!("{}.{}.{}", kind.method, kind.name, k.message);
        let err = map(vec![
            ("name", Value::from(kind.name.as_str())),
            ("method", Value::from(kind.method.as_str())),
            ("error", Value::from(k.message.as_str())),
            ("occurrences", Value::from(e.count)),
            ("first_seen", Value::F64(e.first_seen_unix_s)),
            ("last_seen", Value::F64(e.last_seen_unix_s)),
        ]);
        errors.push((Value::from(key), err));
    }
    let classes = Value::Map(
        figures
            .user_classes_count
            .iter()
            .map(|(k, n)| (Value::from(k.as_str()), Value::from(*n)))
            .collect(),
    );
    let mut data = vec![
        ("stats", Value::Array(entries)),
        ("stats_total", total),
        ("errors", Value::Map(errors)),
        ("user_classes_count", classes),
        ("user_count", Value::from(figures.user_count)),
    ];
    if gsai {
        data.push(("gsai", encode_exact(kinds, delta, figures.in_flight)));
    }
    map(data)
}

/// The exact extension: rows with every metric's histogram, and the failures table.
pub fn encode_exact(kinds: &[RequestKind], delta: &StatsSet, in_flight: u64) -> Value {
    let rows = delta
        .rows
        .iter()
        .zip(kinds)
        .filter(|(r, _)| !r.is_empty())
        .map(|(r, k)| {
            // Every catalogue metric, under its key; a reader skips keys it does not know and
            // reads a missing one as empty, so either side may know more metrics.
            let metrics = r
                .metrics()
                .filter(|(_, m)| m.count() > 0)
                .map(|(id, m)| (Value::from(id.key()), encode_metric(m)))
                .collect();
            map(vec![
                ("method", Value::from(k.method.as_str())),
                ("name", Value::from(k.name.as_str())),
                ("requests", Value::from(r.requests)),
                ("failures", Value::from(r.failures)),
                ("cancelled", Value::from(r.cancelled)),
                ("dropped", Value::from(r.dropped)),
                ("warmup", Value::from(r.warmup)),
                ("good", Value::from(r.good)),
                ("content_bytes", Value::from(r.content_bytes)),
                (
                    "token_sources",
                    Value::Array(r.token_sources.iter().map(|n| Value::from(*n)).collect()),
                ),
                ("first_start_unix_us", Value::from(r.first_start_unix_us)),
                ("last_end_unix_us", Value::from(r.last_end_unix_us)),
                ("metrics", Value::Map(metrics)),
            ])
        })
        .collect();
    let failures = delta
        .failures
        .iter()
        .filter_map(|(k, e)| {
            let kind = kinds.get(k.kind)?;
            Some(Value::Array(vec![
                Value::from(kind.method.as_str()),
                Value::from(kind.name.as_str()),
                Value::from(k.message.as_str()),
                Value::from(e.count),
                Value::F64(e.first_seen_unix_s),
                Value::F64(e.last_seen_unix_s),
                Value::from(k.cause.as_str()),
            ]))
        })
        .collect();
    map(vec![
        ("version", Value::from(GSAI_PROTOCOL)),
        ("rows", Value::Array(rows)),
        ("failures", Value::Array(failures)),
        ("in_flight", Value::from(in_flight)),
    ])
}

/// A worker's statistics not yet shipped: deltas merged, with per-second counts kept apart.
#[derive(Debug)]
pub struct Outbox {
    pending: StatsSet,
    per_sec: Vec<PerSecond>,
}

impl Outbox {
    /// An empty outbox for `rows` request kinds.
    pub fn new(rows: usize) -> Self {
        Self {
            pending: StatsSet::new(rows),
            per_sec: vec![PerSecond::new(); rows],
        }
    }

    /// Adds one engine delta, drained at `unix_s` (it covers about the second before).
    pub fn add(&mut self, delta: &StatsSet, unix_s: f64) {
        let second = (unix_s - 0.5).floor() as i64;
        if self.per_sec.len() < delta.rows.len() {
            self.per_sec.resize(delta.rows.len(), PerSecond::new());
        }
        for (ps, row) in self.per_sec.iter_mut().zip(&delta.rows) {
            if row.requests > 0 {
                let e = ps.entry(second).or_insert((0, 0));
                e.0 += row.requests;
                e.1 += row.failures;
            }
        }
        self.pending.merge(delta);
    }

    /// Finished requests not yet shipped.
    pub fn pending_requests(&self) -> u64 {
        self.pending.total().requests
    }

    /// Empties the outbox into a `stats` message's data.
    pub fn take(
        &mut self,
        kinds: &[RequestKind],
        figures: &WorkerFigures,
        now_unix_s: f64,
        gsai: bool,
    ) -> Value {
        let data = report_data(
            kinds,
            &self.pending,
            &self.per_sec,
            figures,
            now_unix_s,
            gsai,
        );
        let rows = self.pending.rows.len();
        *self = Self::new(rows);
        data
    }
}

#[cfg(test)]
mod tests;
