//! Console output: the live table printed every few seconds while a test runs, and the final
//! summary (stats, LLM metrics, failures). Locust's columns plus TTFT, TPOT and tokens/s; the
//! metrics table lists the metric catalogue.

use crate::engine::{RunResult, Snapshot};
use crate::metrics::{FailureKind, KindCounts};
use crate::metrics::{MetricId, NameStats, RequestKind, StatsSet, Unit};
use crate::observe::health::{GeneratorHealth, Verdict};
use comfy_table::{presets, CellAlignment, ContentArrangement, Table};
use std::fmt::Write as _;

fn ms(us: Option<u64>) -> String {
    us.map_or_else(|| "-".into(), |v| format!("{:.0}", v as f64 / 1000.0))
}

fn ms_f(us: Option<f64>) -> String {
    us.map_or_else(|| "-".into(), |v| format!("{:.0}", v / 1000.0))
}

fn ms_q(m: &crate::metrics::Metric, q: f64) -> String {
    ms(m.quantile(q))
}

fn new_table(header: Vec<&str>) -> Table {
    let mut t = Table::new();
    t.load_preset(presets::UTF8_HORIZONTAL_ONLY)
        .remove_style(comfy_table::TableComponent::HorizontalLines)
        .remove_style(comfy_table::TableComponent::MiddleIntersections)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(header);
    t
}

fn align_numbers(t: &mut Table, from: usize) {
    for i in from..t.column_count() {
        if let Some(c) = t.column_mut(i) {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
}

fn stats_row(method: &str, name: &str, s: &NameStats, elapsed_s: f64) -> Vec<String> {
    let per_s = |n: u64| {
        if elapsed_s > 0.0 {
            format!("{:.2}", n as f64 / elapsed_s)
        } else {
            "0.00".into()
        }
    };
    let rt = s.metric(MetricId::ResponseTime);
    let fail_pct = if s.requests > 0 {
        s.failures as f64 * 100.0 / s.requests as f64
    } else {
        0.0
    };
    vec![
        method.to_string(),
        name.to_string(),
        s.requests.to_string(),
        format!("{}({:.2}%)", s.failures, fail_pct),
        ms_f(rt.mean()),
        ms(rt.min()),
        ms(rt.max()),
        ms_q(rt, 0.5),
        per_s(s.requests),
        per_s(s.failures),
        ms_q(s.metric(MetricId::Ttft), 0.5),
        ms_q(s.metric(MetricId::Ttft), 0.95),
        ms_q(s.metric(MetricId::Tpot), 0.5),
        per_s(s.metric(MetricId::OutputTokens).sum()),
    ]
}

/// The stats table: one row per request kind plus Aggregated. Rates are over `elapsed_s`.
pub fn stats_table(kinds: &[RequestKind], stats: &StatsSet, elapsed_s: f64) -> String {
    let mut t = new_table(vec![
        "Type",
        "Name",
        "# reqs",
        "# fails",
        "Avg",
        "Min",
        "Max",
        "Med",
        "req/s",
        "fail/s",
        "TTFT p50",
        "TTFT p95",
        "TPOT p50",
        "out tok/s",
    ]);
    for (i, row) in stats.rows.iter().enumerate() {
        let (m, n) = kinds
            .get(i)
            .map_or(("", "?"), |k| (k.method.as_str(), k.name.as_str()));
        t.add_row(stats_row(m, n, row, elapsed_s));
    }
    t.add_row(stats_row("", "Aggregated", &stats.total(), elapsed_s));
    align_numbers(&mut t, 2);
    t.to_string()
}

/// One live report: a status line and the stats table (times in ms).
pub fn live(kinds: &[RequestKind], snap: &Snapshot) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "[{:>6.1}s] {:?}: {} users ({} in flight), current {:.1} req/s, {:.1} fail/s, {:.0} tok/s, TTFT p50 {:.0} ms",
        snap.elapsed_s,
        snap.state,
        snap.users,
        snap.in_flight,
        snap.point.rps,
        snap.point.fps,
        snap.point.output_tokens_per_s,
        snap.point.ttft_p50_ms
    );
    out.push_str(&stats_table(kinds, &snap.stats, snap.elapsed_s));
    out.push('\n');
    out
}

/// The metrics table of the Aggregated row: every catalogue metric, in its display unit; the
/// open loop's only when they have samples.
pub fn llm_table(total: &NameStats) -> String {
    let mut t = new_table(vec![
        "Metric", "count", "min", "mean", "p50", "p90", "p95", "p99", "max",
    ]);
    let rows = total.metrics().filter_map(|(id, m)| {
        let d = id.def();
        if d.covers.open_loop_only() && m.count() == 0 {
            return None;
        }
        let name = match d.unit {
            Unit::Tokens => d.label.to_string(),
            unit => format!("{} ({})", d.label, unit.display()),
        };
        Some((name, m, d.unit.display_scale()))
    });
    for (name, m, scale) in rows {
        let s = m.summary(scale);
        let f = |v: f64| {
            if s.count == 0 {
                "-".to_string()
            } else {
                format!("{v:.1}")
            }
        };
        t.add_row(vec![
            name,
            s.count.to_string(),
            f(s.min),
            f(s.mean),
            f(s.p50),
            f(s.p90),
            f(s.p95),
            f(s.p99),
            f(s.max),
        ]);
    }
    align_numbers(&mut t, 1);
    t.to_string()
}

/// The failures table, most frequent first.
pub fn failures_table(kinds: &[RequestKind], stats: &StatsSet) -> String {
    let mut t = new_table(vec!["# occurrences", "Method", "Name", "Kind", "Error"]);
    for (k, e) in stats.failures_sorted() {
        let (m, n) = kinds
            .get(k.kind)
            .map_or(("", "?"), |k| (k.method.as_str(), k.name.as_str()));
        t.add_row(vec![
            e.count.to_string(),
            m.to_string(),
            n.to_string(),
            k.cause.to_string(),
            k.message.clone(),
        ]);
    }
    let by_kind = KindCounts::of(stats.failures.iter().map(|(k, e)| (k.cause, e.count)));
    let mut summary = new_table(vec!["# failures", "Kind", "Meaning"]);
    for k in by_kind.summary() {
        summary.add_row(vec![
            k.count.to_string(),
            k.kind.to_string(),
            k.meaning.to_string(),
        ]);
    }
    format!("{t}\nBy kind:\n{summary}")
}

/// The final summary printed at the end of a test.
pub fn summary(result: &RunResult) -> String {
    let total = result.stats.total();
    let doc = crate::report::json::summary(&total);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n=== gsai-load summary: {} against {} ({} after {:.1}s) ===",
        result.plan.model,
        result.plan.host,
        result.stop_reason.describe(),
        result.duration_s
    );
    out.push_str(&stats_table(&result.kinds, &result.stats, total.span_s()));
    out.push('\n');
    out.push_str(&llm_table(&total));
    out.push('\n');
    let sources: Vec<String> = doc
        .token_sources
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(s, n)| format!("{s} {n}"))
        .collect();
    let _ = writeln!(
        out,
        "Requests: {} finished ({} ok, {} failed), {} cancelled at stop | {:.2} req/s | {} output tokens, {:.1} tok/s | token counts from: {}",
        doc.requests,
        doc.successes,
        doc.failures,
        doc.cancelled,
        doc.rps,
        doc.output_tokens,
        doc.output_tokens_per_s,
        if sources.is_empty() { "-".to_string() } else { sources.join(", ") }
    );
    if !result.plan.slo.is_empty() {
        let _ = writeln!(
            out,
            "Goodput: {:.2} req/s | {} of {} finished requests ({:.1}%) succeeded and met the SLO {}",
            doc.goodput,
            doc.good,
            doc.requests,
            doc.good_fraction * 100.0,
            crate::criteria::slo::describe(&result.plan.slo)
        );
    }
    if doc.dropped > 0 || doc.warmup_excluded > 0 {
        let _ = writeln!(
            out,
            "Open loop: {} arrivals dropped (no free slot under --max-concurrency) | warm-up: {} requests excluded",
            doc.dropped, doc.warmup_excluded
        );
    }
    let local_count = |cause: FailureKind| -> u64 {
        let rows = result.stats.failures.iter();
        rows.filter(|(k, _)| k.cause == cause)
            .map(|(_, e)| e.count)
            .sum()
    };
    let local = local_count(FailureKind::LocalResource);
    if local > 0 {
        let _ = writeln!(
            out,
            "Local: {local} failures were local (too many open files or no free port on this machine): not the server's. Raise the open-file limit (`ulimit -n 65535` in the shell that starts gsai-load, or LimitNOFILE= / --ulimit nofile= for services and containers), or run fewer users per process."
        );
    }
    let internal = local_count(FailureKind::Internal);
    if internal > 0 {
        let _ = writeln!(
            out,
            "Local: {internal} failures were defects of gsai-load itself (kind internal): not the server's."
        );
    }
    if let Some(g) = &result.generator {
        out.push_str(&generator_line(g));
    }
    if !result.stats.failures.is_empty() {
        out.push_str("\nFailures:\n");
        out.push_str(&failures_table(&result.kinds, &result.stats));
        out.push('\n');
    }
    out
}

/// The thresholds' verdicts (empty when none was set): one line each, then the overall result.
pub fn thresholds(extras: &crate::report::Extras) -> String {
    use crate::criteria::threshold::describe;
    let mut out = String::new();
    if extras.thresholds.is_empty() && extras.threshold_abort.is_none() {
        return out;
    }
    out.push_str("\nThresholds:\n");
    for t in &extras.thresholds {
        let mark = if t.passed { "PASS" } else { "FAIL" };
        let _ = writeln!(out, "  {mark}  {:<28} {}", t.expr, describe(t));
    }
    if let Some(b) = &extras.threshold_abort {
        let _ = writeln!(
            out,
            "  The test was stopped early: {} failed while running ({}).",
            b.expr,
            describe(b)
        );
    }
    let failed = extras.thresholds.iter().filter(|t| !t.passed).count();
    let _ = writeln!(
        out,
        "{}",
        if extras.thresholds_failed() {
            format!(
                "Thresholds FAILED ({failed} of {} failed{}): exit status 99",
                extras.thresholds.len(),
                if extras.threshold_abort.is_some() {
                    ", test aborted"
                } else {
                    ""
                }
            )
        } else {
            format!("All {} thresholds passed", extras.thresholds.len())
        }
    );
    out
}

/// The generator's self-check in one line, and what to do when it was not ok.
pub fn generator_line(g: &GeneratorHealth) -> String {
    let sched = g
        .schedule_lag_p99_ms
        .map_or(String::new(), |ms| format!(", schedule lag p99 {ms:.1} ms"));
    let mut line = format!(
        "Generator: {} (CPU p95 {:.0}% of {}, runtime lag p99 {:.1} ms{sched})\n",
        g.verdict.as_str(),
        g.cpu_p95,
        match g.cores {
            0 => format!("each worker's cores ({} workers)", g.workers.len()),
            1 => "1 core".to_string(),
            n => format!("{n} cores"),
        },
        g.loop_lag_p99_ms,
    );
    for w in g.workers.iter().filter(|w| w.verdict != Verdict::Ok) {
        line.push_str(&format!(
            "  worker {}: {} (CPU p95 {:.0}%, runtime lag p99 {:.1} ms)\n",
            w.worker,
            w.verdict.as_str(),
            w.cpu_p95,
            w.loop_lag_p99_ms
        ));
    }
    if let Some(advice) = g.verdict.advice() {
        line.push_str(&format!("warning: {advice}\n"));
    }
    line
}
