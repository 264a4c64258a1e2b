//! The series of `GET /metrics` and their encoding: counters per stats row, gauges of the test
//! and the generator, and one latency histogram family per catalogue time metric.
//!
//! Which catalogue metrics become histograms, and under which Prometheus name, is
//! [`histogram_family`]: an exhaustive match over [`MetricId`], so a metric added to the
//! catalogue does not compile until it is given a family here (or none).

use super::buckets::{self, PER_REQUEST_S, PER_TOKEN_S};
use super::Live;
use crate::metrics::{FailureKind, MetricId, NameStats, RequestKind, Unit};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeGaugeValue, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

/// A latency histogram family of one catalogue metric.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HistogramFamily {
    /// The metric.
    pub id: MetricId,
    /// Prometheus name without the unit suffix, e.g. `gsai_time_to_first_token` (exposed as
    /// `gsai_time_to_first_token_seconds`).
    pub name: &'static str,
    /// Bucket upper bounds, seconds.
    pub bounds_s: &'static [f64],
}

/// The histogram family of `id`, if it has one: every time metric of the catalogue, in seconds,
/// named like vLLM's where vLLM has the same figure.
pub fn histogram_family(id: MetricId) -> Option<HistogramFamily> {
    let (name, bounds_s) = match id {
        MetricId::Ttfb => ("gsai_time_to_first_byte", PER_REQUEST_S),
        MetricId::Ttft => ("gsai_time_to_first_token", PER_REQUEST_S),
        MetricId::Tpot => ("gsai_time_per_output_token", PER_TOKEN_S),
        MetricId::Itl => ("gsai_inter_token_latency", PER_TOKEN_S),
        MetricId::E2e => ("gsai_e2e_request_latency", PER_REQUEST_S),
        MetricId::ResponseTime => ("gsai_response_time", PER_REQUEST_S),
        MetricId::Connect => ("gsai_connect_time", PER_REQUEST_S),
        MetricId::Ttfe => ("gsai_time_to_first_event", PER_REQUEST_S),
        MetricId::ScheduleLag => ("gsai_schedule_lag", PER_REQUEST_S),
        MetricId::TtftIntended => ("gsai_time_to_first_token_from_intended", PER_REQUEST_S),
        MetricId::E2eIntended => ("gsai_e2e_request_latency_from_intended", PER_REQUEST_S),
        MetricId::TtftAnswer => ("gsai_time_to_first_answer_token", PER_REQUEST_S),
        // Not times: output tokens are the gsai_output_tokens_total counter.
        MetricId::OutputTokens
        | MetricId::OutputTps
        | MetricId::ReasoningTokens
        | MetricId::AnswerTokens
        | MetricId::RequestBytes => return None,
    };
    // Only microsecond metrics convert to seconds.
    (id.def().unit == Unit::Micros).then_some(HistogramFamily { id, name, bounds_s })
}

/// Every histogram family, in catalogue order.
pub fn histogram_families() -> impl Iterator<Item = HistogramFamily> {
    MetricId::ALL.into_iter().filter_map(histogram_family)
}

/// The exposition of `live`.
pub fn encode(live: Option<Live>) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(SnapshotCollector(live)));
    let mut text = String::new();
    // Writing into a String cannot fail; an encoder error would be a defect: serve what we have.
    let _ = prometheus_client::encoding::prometheus_text::encode(&mut text, &registry);
    text
}

#[derive(Debug)]
struct SnapshotCollector(Option<Live>);

type Labels<'a> = [(&'static str, &'a str); 2];

fn row_labels(kind: &RequestKind) -> Labels<'_> {
    [
        ("method", kind.method.as_str()),
        ("name", kind.name.as_str()),
    ]
}

/// Encodes one metric family of a value per stats row.
fn per_row<V: EncodeMetric>(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    rows: &[(&RequestKind, &NameStats)],
    value: impl Fn(&NameStats) -> V,
) -> std::fmt::Result {
    let first = rows.first().map(|(_, s)| value(s));
    let Some(first) = first else { return Ok(()) };
    let mut m = e.encode_descriptor(name, help, None, first.metric_type())?;
    for (kind, stats) in rows {
        let labels = row_labels(kind);
        value(stats).encode(m.encode_family(&labels)?)?;
    }
    Ok(())
}

fn gauge(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    v: impl EncodeGaugeValue,
) -> std::fmt::Result {
    let g = ConstGauge::new(v);
    g.encode(e.encode_descriptor(name, help, None, g.metric_type())?)
}

impl Collector for SnapshotCollector {
    fn encode(&self, mut e: DescriptorEncoder) -> std::fmt::Result {
        let version = [("version", env!("CARGO_PKG_VERSION"))];
        let mut m = e.encode_descriptor(
            "gsai_build",
            "gsai-load's version (always 1).",
            None,
            MetricType::Info,
        )?;
        m.encode_info(&version)?;
        let running = self.0.as_ref().is_some_and(|l| l.running);
        gauge(
            &mut e,
            "gsai_test_running",
            "1 while a test runs (spawning, running or stopping), 0 before the first and after it ends.",
            u64::from(running),
        )?;
        let Some(live) = &self.0 else { return Ok(()) };
        let snap = &live.snapshot;
        gauge(
            &mut e,
            "gsai_users",
            "Simulated users running now.",
            snap.users,
        )?;
        gauge(
            &mut e,
            "gsai_target_users",
            "Simulated users asked for.",
            snap.target_users,
        )?;
        gauge(
            &mut e,
            "gsai_in_flight_requests",
            "Requests in flight now.",
            snap.in_flight,
        )?;
        gauge(
            &mut e,
            "gsai_generator_cpu_ratio",
            "The load generator's CPU use in the last second, as a share of its usable cores (1 = all busy; the worst worker's over a master).",
            snap.health.cpu_percent / 100.0,
        )?;
        gauge(
            &mut e,
            "gsai_generator_loop_lag_seconds",
            "99th percentile of how late the generator's 1 ms probe timer fired in the last second: its own delay in every timestamp.",
            snap.health.loop_lag_p99_ms / 1000.0,
        )?;
        let verdict = snap.health.verdict;
        let mut m = e.encode_descriptor(
            "gsai_generator_verdict",
            "The generator's self-check so far: 1 for the current verdict (ok, degraded, saturated), 0 for the others.",
            None,
            MetricType::Gauge,
        )?;
        for v in [
            crate::observe::health::Verdict::Ok,
            crate::observe::health::Verdict::Degraded,
            crate::observe::health::Verdict::Saturated,
        ] {
            let labels = [("verdict", v.as_str())];
            ConstGauge::new(u64::from(v == verdict)).encode(m.encode_family(&labels)?)?;
        }
        let rows: Vec<(&RequestKind, &NameStats)> =
            snap.kinds.iter().zip(&snap.stats.rows).collect();
        per_row(
            &mut e,
            "gsai_requests",
            "Finished requests (successes and failures; Locust's request count).",
            &rows,
            |s| ConstCounter::new(s.requests),
        )?;
        encode_failures(&mut e, snap, &rows)?;
        per_row(
            &mut e,
            "gsai_output_tokens",
            "Output tokens of successful requests (usage, tokenizer or event count).",
            &rows,
            |s| ConstCounter::new(s.metric(MetricId::OutputTokens).sum()),
        )?;
        for family in histogram_families() {
            encode_histogram(&mut e, family, &rows)?;
        }
        Ok(())
    }
}

/// `gsai_failures_total{method,name,kind}`: every kind of every row, zeros included, so that
/// `rate()` sees the first failure of a kind.
fn encode_failures(
    e: &mut DescriptorEncoder,
    snap: &crate::engine::Snapshot,
    rows: &[(&RequestKind, &NameStats)],
) -> std::fmt::Result {
    if rows.is_empty() {
        // A master before its workers' first report: no rows, no family (an empty one is invalid).
        return Ok(());
    }
    let mut counts = vec![[0u64; FailureKind::ALL.len()]; rows.len()];
    for (key, entry) in &snap.stats.failures {
        if let Some(row) = counts.get_mut(key.kind) {
            let c = &mut row[key.cause.index()];
            *c = c.saturating_add(entry.count);
        }
    }
    let mut m = e.encode_descriptor(
        "gsai_failures",
        "Failed requests by kind of failure (docs/prometheus.md lists the kinds).",
        None,
        MetricType::Counter,
    )?;
    for ((kind, _), row) in rows.iter().zip(&counts) {
        for k in FailureKind::ALL {
            let labels = [
                ("method", kind.method.as_str()),
                ("name", kind.name.as_str()),
                ("kind", k.as_str()),
            ];
            ConstCounter::new(row[k.index()]).encode(m.encode_family(&labels)?)?;
        }
    }
    Ok(())
}

/// One catalogue metric as a histogram per row, in seconds. An open-loop-only metric with no
/// sample (a closed-loop test) is left out rather than shown as empty.
fn encode_histogram(
    e: &mut DescriptorEncoder,
    family: HistogramFamily,
    rows: &[(&RequestKind, &NameStats)],
) -> std::fmt::Result {
    let def = family.id.def();
    let empty = rows.iter().all(|(_, s)| s.metric(family.id).count() == 0);
    if rows.is_empty() || (def.covers.open_loop_only() && empty) {
        return Ok(());
    }
    let help = format!("{} ({}), seconds.", def.description, def.covers.describe());
    let unit = prometheus_client::registry::Unit::Seconds;
    let mut m = e.encode_descriptor(family.name, &help, Some(&unit), MetricType::Histogram)?;
    for (kind, stats) in rows {
        let metric = stats.metric(family.id);
        let buckets = buckets::at_bounds(metric.histogram(), family.bounds_s);
        let labels = row_labels(kind);
        m.encode_family(&labels)?.encode_histogram::<NoLabelSet>(
            metric.sum() as f64 / 1e6,
            metric.count(),
            &buckets,
            None,
        )?;
    }
    Ok(())
}
