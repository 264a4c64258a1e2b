//! `gsai-load compare A.json B.json`: how each headline metric changed from run A (the baseline)
//! to run B, for a regression check in CI. With `--fail-if-worse PCT` the command exits 99 when any
//! judged metric got worse by more than PCT percent (a metric that was 0 and is no longer, such as
//! the failure rate, counts as infinitely worse).

use super::json::JsonResult;
use crate::metrics::{MetricId, MetricSummary};
use comfy_table::{presets, CellAlignment, Table};
use std::fmt::Write as _;

/// Which direction is an improvement (the catalogue says it for each metric).
pub use crate::metrics::Better;

/// One compared metric.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// Label, e.g. `TTFT p95`.
    pub label: String,
    /// Unit of the values.
    pub unit: &'static str,
    /// Value in run A (`None` when A measured nothing).
    pub a: Option<f64>,
    /// Value in run B.
    pub b: Option<f64>,
    /// Which direction is better.
    pub better: Better,
}

impl Row {
    /// Relative change from A to B, in percent (`None` when it cannot be computed).
    pub fn change_pct(&self) -> Option<f64> {
        let (a, b) = (self.a?, self.b?);
        if a == 0.0 {
            return (b == 0.0).then_some(0.0);
        }
        Some((b - a) / a.abs() * 100.0)
    }

    /// How much worse B is than A, in percent (≤ 0 when not worse; infinite when A was 0 and B is
    /// worse); `None` when not judged or not measured in both runs.
    pub fn worse_pct(&self) -> Option<f64> {
        let (a, b) = (self.a?, self.b?);
        let sign = match self.better {
            Better::Lower => 1.0,
            Better::Higher => -1.0,
            Better::Neither => return None,
        };
        if a == 0.0 {
            return Some(if (b - a) * sign > 0.0 {
                f64::INFINITY
            } else {
                0.0
            });
        }
        self.change_pct().map(|c| c * sign)
    }
}

/// The headline figures of both runs, then the p50, p95 and p99 of every catalogue metric that
/// either run measured.
pub fn rows(a: &JsonResult, b: &JsonResult) -> Vec<Row> {
    type Get = fn(&JsonResult) -> Option<f64>;
    let specs: [(&'static str, &'static str, Better, Get); 6] = [
        ("Requests", "", Better::Neither, |d| {
            Some(d.summary.requests as f64)
        }),
        ("Requests/s", "req/s", Better::Higher, |d| {
            Some(d.summary.rps)
        }),
        ("Output tokens/s", "tok/s", Better::Higher, |d| {
            Some(d.summary.output_tokens_per_s)
        }),
        ("Goodput", "req/s", Better::Higher, |d| {
            Some(d.summary.goodput)
        }),
        ("Good fraction", "%", Better::Higher, |d| {
            (d.summary.requests > 0).then_some(d.summary.good_fraction * 100.0)
        }),
        ("Failure rate", "%", Better::Lower, |d| {
            (d.summary.requests > 0).then_some(d.summary.fail_ratio * 100.0)
        }),
    ];
    let mut out: Vec<Row> = specs
        .into_iter()
        .map(|(label, unit, better, get)| Row {
            label: label.to_string(),
            unit,
            a: get(a),
            b: get(b),
            better,
        })
        .collect();
    type Pick = fn(&MetricSummary) -> f64;
    let stats: [(&str, Pick); 3] = [("p50", |m| m.p50), ("p95", |m| m.p95), ("p99", |m| m.p99)];
    for id in MetricId::ALL {
        let (ma, mb) = (&a.metrics[id], &b.metrics[id]);
        if ma.count == 0 && mb.count == 0 {
            continue;
        }
        let d = id.def();
        for (stat, pick) in stats {
            out.push(Row {
                label: format!("{} {stat}", d.label),
                unit: d.unit.display(),
                a: (ma.count > 0).then(|| pick(ma)),
                b: (mb.count > 0).then(|| pick(mb)),
                better: d.better,
            });
        }
    }
    out
}

/// Rows worse by more than `pct` percent.
pub fn regressions(rows: &[Row], pct: f64) -> Vec<&Row> {
    rows.iter()
        .filter(|r| r.worse_pct().is_some_and(|w| w > pct))
        .collect()
}

fn value(v: Option<f64>, unit: &str) -> String {
    match v {
        None => "-".into(),
        Some(x) => {
            let n = if x.abs() >= 100.0 || x.fract() == 0.0 {
                format!("{x:.0}")
            } else {
                format!("{x:.2}")
            };
            match unit {
                "" => n,
                "%" => format!("{n}%"),
                u => format!("{n} {u}"),
            }
        }
    }
}

fn verdict(r: &Row) -> &'static str {
    match r.worse_pct() {
        None => "",
        Some(w) if w > 0.5 => "worse",
        Some(w) if w < -0.5 => "better",
        Some(_) => "same",
    }
}

/// One line naming a run: where it ran and when.
fn describe(label: &str, path: &str, d: &JsonResult) -> String {
    format!(
        "{label}: {path} ({} against {}, {} users, {:.0} s, started {})\n",
        d.plan.model,
        d.plan.host,
        d.plan.users,
        d.duration_s,
        super::csv::utc_iso(d.started_unix_s)
    )
}

/// The comparison as text: which runs, then a table of A, B, change and verdict.
pub fn render(a_path: &str, a: &JsonResult, b_path: &str, b: &JsonResult, rows: &[Row]) -> String {
    let mut out = describe("A (baseline)", a_path, a);
    out.push_str(&describe("B", b_path, b));
    let mut t = Table::new();
    t.load_preset(presets::UTF8_HORIZONTAL_ONLY)
        .set_header(vec!["Metric", "A", "B", "Change", ""]);
    for r in rows {
        let change = match (r.change_pct(), r.a, r.b) {
            (Some(c), _, _) => format!("{c:+.1}%"),
            (None, Some(_), Some(_)) => "new".into(),
            _ => "-".into(),
        };
        t.add_row(vec![
            r.label.clone(),
            value(r.a, r.unit),
            value(r.b, r.unit),
            change,
            verdict(r).to_string(),
        ]);
    }
    for i in 1..4 {
        if let Some(c) = t.column_mut(i) {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
    let _ = writeln!(out, "{t}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixture;
    use crate::report::json::build;

    fn docs() -> (JsonResult, JsonResult) {
        let a = build(&fixture::result());
        let mut b = build(&fixture::result());
        b.summary.rps = a.summary.rps * 0.8;
        b.metrics[MetricId::Ttft].p95 = a.metrics[MetricId::Ttft].p95 * 1.05;
        b.metrics[MetricId::E2e].p50 = a.metrics[MetricId::E2e].p50 * 0.5;
        (a, b)
    }

    #[test]
    fn changes_and_directions() {
        let (a, b) = docs();
        let rows = rows(&a, &b);
        let get = |l: &str| rows.iter().find(|r| r.label == l).unwrap().clone();
        assert!((get("Requests/s").change_pct().unwrap() + 20.0).abs() < 1e-9);
        assert!((get("Requests/s").worse_pct().unwrap() - 20.0).abs() < 1e-9);
        assert!((get("TTFT p95").worse_pct().unwrap() - 5.0).abs() < 1e-9);
        assert!((get("E2E p50").worse_pct().unwrap() + 50.0).abs() < 1e-9);
        assert_eq!(get("Requests").worse_pct(), None, "not judged");
        // Every metric either run measured is compared, with the catalogue's direction.
        assert!(get("Output tokens/s p50").better == Better::Higher);
        assert!(get("Response time p99").better == Better::Lower);
        assert!(get("Schedule lag p99").better == Better::Lower);
        assert!(
            !rows.iter().any(|r| r.label.starts_with("Connect")),
            "neither run measured it"
        );
        let worse: Vec<_> = regressions(&rows, 10.0)
            .iter()
            .map(|r| r.label.as_str())
            .collect();
        assert_eq!(worse, ["Requests/s"]);
        let worse: Vec<_> = regressions(&rows, 1.0)
            .iter()
            .map(|r| r.label.as_str())
            .collect();
        assert_eq!(worse, ["Requests/s", "TTFT p95"]);
        let text = render("a.json", &a, "b.json", &b, &rows);
        assert!(text.contains("A (baseline): a.json (fixture-model against http://127.0.0.1:8080"));
        assert!(text.contains("-20.0%") && text.contains("worse") && text.contains("better"));
    }

    #[test]
    fn from_zero() {
        let zero_to = |b: f64, better| Row {
            label: "x".into(),
            unit: "",
            a: Some(0.0),
            b: Some(b),
            better,
        };
        assert_eq!(zero_to(1.0, Better::Lower).worse_pct(), Some(f64::INFINITY));
        assert_eq!(zero_to(1.0, Better::Lower).change_pct(), None);
        assert_eq!(zero_to(1.0, Better::Higher).worse_pct(), Some(0.0));
        assert_eq!(zero_to(0.0, Better::Lower).worse_pct(), Some(0.0));
        let missing = Row {
            a: None,
            ..zero_to(1.0, Better::Lower)
        };
        assert_eq!(missing.worse_pct(), None);
    }
}
