//! `--csv PREFIX`: Locust-compatible CSV files, so dashboards built for Locust read them unchanged,
//! plus `PREFIX_llm_stats.csv` with the LLM metrics.
//!
//! Layout and number formats follow Locust 2.x (`locust/stats.py`, `StatsCSV`), written as Python's
//! `csv.writer` does (minimal quoting, CRLF line ends):
//! - `_stats.csv`: one row per request kind sorted by (name, method), then `Aggregated` (empty Type).
//!   Request and failure counts are integers; the median and the percentile columns are whole
//!   milliseconds; average, min and max response times, the average content size and the rates
//!   are floats printed like Python's `repr` (`141.367`, `3413.0`); min, max and the average content
//!   size are a bare `0` when nothing was measured, the average `0.0`; percentile cells are `N/A`
//!   for a row without requests. Rates divide by the span from the first request's start to the
//!   last request's end, for every row (Locust divides by the same global span).
//! - `_stats_history.csv`: a row a second, appended as the test runs (see [`super::history`]);
//!   rates printed with six decimals (Locust's `f"{x:2f}"`); the `Aggregated` row only, with
//!   cumulative percentiles, or with `--csv-full-history` every row with percentiles of the last
//!   10 s (Locust's "current" percentiles).
//! - `_failures.csv`: `Method,Name,Error,Occurrences,First Seen,Last Seen` (UTC, ISO 8601), most
//!   frequent first (Locust orders by a hash, i.e. no meaningful order). The error is our message,
//!   not a Python `repr`.
//! - `_exceptions.csv`: the header only: there is no user code to raise exceptions.
//!
//! Differences from Locust, by design: percentiles come from HDR histograms with 3 significant
//! digits (Locust rounds each response time to 2 significant digits before it counts it, so its
//! percentiles are coarser: 147 ms is counted as 150 ms); the median is a whole number of ms in
//! every case (Locust prints its rounded bucket, e.g. `150.0`, and clamps it to min/max).

use super::history::{HistoryRow, HistoryTick, PERCENTILES};
use crate::metrics::{Metric, MetricId, NameStats, RequestKind, StatsSet};
use std::borrow::Cow;
use std::fmt::Write as _;

/// Locust's readable percentile labels, for [`PERCENTILES`].
pub const PERCENTILE_LABELS: [&str; 11] = [
    "50%", "66%", "75%", "80%", "90%", "95%", "98%", "99%", "99.9%", "99.99%", "100%",
];

const STATS_HEAD: [&str; 11] = [
    "Type",
    "Name",
    "Request Count",
    "Failure Count",
    "Median Response Time",
    "Average Response Time",
    "Min Response Time",
    "Max Response Time",
    "Average Content Size",
    "Requests/s",
    "Failures/s",
];

const HISTORY_TAIL: [&str; 7] = [
    "Total Request Count",
    "Total Failure Count",
    "Total Median Response Time",
    "Total Average Response Time",
    "Total Min Response Time",
    "Total Max Response Time",
    "Total Average Content Size",
];

/// A float as Python's `repr` prints it: shortest round-trip digits, always a `.0` or exponent,
/// exponent form below 1e-4 and from 1e16 (`5e-05`, `1e+16`).
pub fn py_float(v: f64) -> String {
    if v.is_nan() {
        return "nan".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "inf" } else { "-inf" }.into();
    }
    let a = v.abs();
    if a != 0.0 && !(1e-4..1e16).contains(&a) {
        // Rust: "5e-5" / "1e16"; Python: "5e-05" / "1e+16".
        let s = format!("{v:e}");
        let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
        let (sign, digits) = match exp.strip_prefix('-') {
            Some(d) => ('-', d),
            None => ('+', exp),
        };
        return format!("{mantissa}e{sign}{digits:0>2}");
    }
    let s = format!("{v}");
    if s.contains('.') {
        s
    } else {
        format!("{s}.0")
    }
}

/// Quotes a field as Python's `csv.writer` (QUOTE_MINIMAL) does.
fn field(s: &str) -> Cow<'_, str> {
    if s.contains([',', '"', '\r', '\n']) {
        Cow::Owned(format!("\"{}\"", s.replace('"', "\"\"")))
    } else {
        Cow::Borrowed(s)
    }
}

/// One CSV line, CRLF-terminated.
fn line<S: AsRef<str>>(out: &mut String, fields: impl IntoIterator<Item = S>) {
    let mut first = true;
    for f in fields {
        if !first {
            out.push(',');
        }
        first = false;
        out.push_str(&field(f.as_ref()));
    }
    out.push_str("\r\n");
}

/// Whole milliseconds from µs, rounded to nearest.
fn ms_int(us: u64) -> String {
    format!("{}", (us as f64 / 1000.0).round() as u64)
}

fn ms_float(us: u64) -> String {
    py_float(us as f64 / 1000.0)
}

/// Request kinds with requests, sorted by (name, method) as Locust sorts its entries.
fn sorted_rows<'a>(
    kinds: &'a [RequestKind],
    stats: &'a StatsSet,
) -> Vec<(&'a str, &'a str, &'a NameStats)> {
    let mut rows: Vec<_> = stats
        .rows
        .iter()
        .enumerate()
        .filter(|(_, s)| s.requests > 0)
        .map(|(i, s)| {
            kinds
                .get(i)
                .map_or(("", "?", s), |k| (k.method.as_str(), k.name.as_str(), s))
        })
        .collect();
    rows.sort_by(|a, b| (a.1, a.0).cmp(&(b.1, b.0)));
    rows
}

/// Locust's cumulative columns: median, average, min, max, average content size.
fn response_columns(requests: u64, rt: &Metric, content_bytes: u64) -> [String; 5] {
    [
        rt.quantile(0.5).map_or_else(|| "0".into(), ms_int),
        rt.mean()
            .map_or_else(|| "0.0".into(), |m| py_float(m / 1000.0)),
        rt.min().map_or_else(|| "0".into(), ms_float),
        rt.max().map_or_else(|| "0".into(), ms_float),
        if requests > 0 {
            py_float(content_bytes as f64 / requests as f64)
        } else {
            "0".into()
        },
    ]
}

fn percentile_cells(requests: u64, us: [u64; 11]) -> Vec<String> {
    if requests == 0 {
        return vec!["N/A".into(); PERCENTILES.len()];
    }
    us.into_iter().map(ms_int).collect()
}

/// `PREFIX_stats.csv`.
pub fn stats_csv(kinds: &[RequestKind], stats: &StatsSet) -> String {
    let total = stats.total();
    let span = total.span_s();
    let per_s = |n: u64| {
        if span > 0.0 {
            py_float(n as f64 / span)
        } else {
            "0.0".into()
        }
    };
    let mut out = String::new();
    line(&mut out, STATS_HEAD.iter().chain(&PERCENTILE_LABELS));
    let rows = sorted_rows(kinds, stats);
    for (method, name, s) in rows.into_iter().chain([("", "Aggregated", &total)]) {
        let rt = s.metric(MetricId::ResponseTime);
        let mut cells = vec![
            method.to_string(),
            name.to_string(),
            s.requests.to_string(),
            s.failures.to_string(),
        ];
        cells.extend(response_columns(s.requests, rt, s.content_bytes));
        cells.push(per_s(s.requests));
        cells.push(per_s(s.failures));
        cells.extend(percentile_cells(
            s.requests,
            PERCENTILES.map(|q| rt.quantile(q).unwrap_or(0)),
        ));
        line(&mut out, cells);
    }
    out
}

/// Locust's timestamp format: `2023-11-14T22:13:20Z` (UTC, whole seconds).
pub fn utc_iso(unix_s: f64) -> String {
    let secs = unix_s.max(0.0).floor() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// `PREFIX_failures.csv`.
pub fn failures_csv(kinds: &[RequestKind], stats: &StatsSet) -> String {
    let mut out = String::new();
    line(
        &mut out,
        [
            "Method",
            "Name",
            "Error",
            "Occurrences",
            "First Seen",
            "Last Seen",
        ],
    );
    for (k, e) in stats.failures_sorted() {
        let (method, name) = kinds
            .get(k.kind)
            .map_or(("", "?"), |kk| (kk.method.as_str(), kk.name.as_str()));
        line(
            &mut out,
            [
                method.to_string(),
                name.to_string(),
                k.message.clone(),
                e.count.to_string(),
                utc_iso(e.first_seen_unix_s),
                utc_iso(e.last_seen_unix_s),
            ],
        );
    }
    out
}

/// `PREFIX_exceptions.csv`: Locust's header; no rows (no user code runs).
pub fn exceptions_csv() -> String {
    "Count,Message,Traceback,Nodes\r\n".to_string()
}

/// The header of `PREFIX_stats_history.csv`.
pub fn history_header() -> String {
    let mut out = String::new();
    line(
        &mut out,
        [
            "Timestamp",
            "User Count",
            "Type",
            "Name",
            "Requests/s",
            "Failures/s",
        ]
        .iter()
        .chain(&PERCENTILE_LABELS)
        .chain(&HISTORY_TAIL),
    );
    out
}

/// The rows of one tick: `Aggregated` only, with cumulative percentiles; or, with `full`, every
/// request kind (sorted by name, method) then `Aggregated`, with percentiles of the last 10 s.
pub fn history_rows(tick: &HistoryTick, full: bool) -> String {
    let is_aggregated = |r: &&HistoryRow| r.method.is_empty() && r.name == "Aggregated";
    let aggregated = tick.rows.iter().rev().find(is_aggregated);
    let mut rows: Vec<&HistoryRow> = if full {
        tick.rows
            .iter()
            .filter(|r| !is_aggregated(r) && r.requests > 0)
            .collect()
    } else {
        Vec::new()
    };
    rows.sort_by(|a, b| (&a.name, &a.method).cmp(&(&b.name, &b.method)));
    let mut out = String::new();
    for r in rows.into_iter().chain(aggregated) {
        let mut cells = vec![
            tick.unix_s.to_string(),
            tick.users.to_string(),
            r.method.clone(),
            r.name.clone(),
            format!("{:.6}", r.current_rps),
            format!("{:.6}", r.current_fps),
        ];
        cells.extend(percentile_cells(
            r.requests,
            if full { r.current_us } else { r.total_us },
        ));
        let has = r.requests > 0;
        cells.extend([
            r.requests.to_string(),
            r.failures.to_string(),
            if has {
                ms_int(r.total_us[0])
            } else {
                "0".into()
            },
            if has {
                py_float(r.sum_us as f64 / 1000.0 / r.requests as f64)
            } else {
                "0.0".into()
            },
            r.min_us.map_or_else(|| "0".into(), ms_float),
            r.max_us.map_or_else(|| "0".into(), ms_float),
            if has {
                py_float(r.content_bytes as f64 / r.requests as f64)
            } else {
                "0".into()
            },
        ]);
        line(&mut out, cells);
    }
    out
}

/// `PREFIX_llm_stats.csv`: one row per request kind (sorted as in `_stats.csv`) and `Aggregated`.
/// The goodput figures, then every metric of the catalogue in its order, under its column base
/// name ([`crate::metrics::MetricDef::csv`]) and in its display unit (times in ms, output tokens per
/// request, output tokens/s per request), each with count, mean, 50/90/95/99th percentile and max
/// (`N/A` when empty); then the token-count source mix.
pub fn llm_stats_csv(kinds: &[RequestKind], stats: &StatsSet) -> String {
    let total = stats.total();
    let span = total.span_s();
    let per_s = |n: u64| {
        if span > 0.0 {
            py_float(n as f64 / span)
        } else {
            "0.0".into()
        }
    };
    let mut head: Vec<String> = [
        "Type",
        "Name",
        "Request Count",
        "Failure Count",
        "Success Count",
        "Good Count",
        "Good Fraction",
        "Goodput/s",
        "Total Output Tokens",
        "Output Tokens/s (total)",
    ]
    .iter()
    .map(|s| (*s).to_string())
    .collect();
    for g in MetricId::ALL.map(|id| id.def().csv) {
        for col in ["Count", "Mean", "50%", "90%", "95%", "99%", "Max"] {
            head.push(format!("{g} {col}"));
        }
    }
    head.extend(
        [
            "Tokens From Usage",
            "Tokens From Tokenizer",
            "Tokens From Events",
        ]
        .map(String::from),
    );
    let mut out = String::new();
    line(&mut out, &head);
    let rows = sorted_rows(kinds, stats);
    for (method, name, s) in rows.into_iter().chain([("", "Aggregated", &total)]) {
        let mut cells = vec![
            method.to_string(),
            name.to_string(),
            s.requests.to_string(),
            s.failures.to_string(),
            s.successes().to_string(),
            s.good.to_string(),
            if s.requests > 0 {
                py_float(s.good as f64 / s.requests as f64)
            } else {
                "N/A".into()
            },
            per_s(s.good),
            s.metric(MetricId::OutputTokens).sum().to_string(),
            per_s(s.metric(MetricId::OutputTokens).sum()),
        ];
        let groups = s
            .metrics()
            .map(|(id, m)| (m, id.def().unit.display_scale()));
        for (m, scale) in groups {
            cells.push(m.count().to_string());
            let v = |x: Option<u64>| x.map_or_else(|| "N/A".into(), |x| py_float(x as f64 / scale));
            cells.push(
                m.mean()
                    .map_or_else(|| "N/A".into(), |x| py_float(x / scale)),
            );
            for q in [0.5, 0.9, 0.95, 0.99] {
                cells.push(v(m.quantile(q)));
            }
            cells.push(v(m.max()));
        }
        cells.extend(s.token_sources.iter().map(u64::to_string));
        line(&mut out, cells);
    }
    out
}

/// The files `--csv PREFIX` writes, by suffix.
pub const SUFFIXES: [&str; 5] = [
    "_stats.csv",
    "_stats_history.csv",
    "_failures.csv",
    "_exceptions.csv",
    "_llm_stats.csv",
];

/// The whole history file from recorded ticks (for `gsai-load report`).
pub fn history_csv(ticks: &[HistoryTick], full: bool) -> String {
    let mut out = history_header();
    for t in ticks {
        let _ = write!(out, "{}", history_rows(t, full));
    }
    out
}

#[cfg(test)]
mod tests;
