//! `--html FILE`: one self-contained HTML report (opens offline: no CDN, no fonts, no fetch).
//!
//! It is the template `assets/report.html` with the stylesheet, the chart library
//! (`assets/charts.js`, shared with the web UI), the report script and the run's data injected:
//! the JSON result (without the `raw` histograms and the stats history, which only `report` needs)
//! plus latency distributions computed here from the HDR histograms. Markers are replaced in one
//! pass, so nothing injected is ever scanned again, and `<` in the data is escaped so the data can
//! never close its `<script>` element.

use super::json::{self, JsonResult};
use super::phases::Phases;
use super::Extras;
use crate::engine::RunResult;
use crate::metrics::{KindCounts, KindSummary, Metric, MetricId, NameStats, StatsSet};
use serde::Serialize;
use std::path::Path;

/// The page template.
pub const TEMPLATE: &str = include_str!("../../assets/report.html");
/// The report's stylesheet.
pub const REPORT_CSS: &str = include_str!("../../assets/report.css");
/// The chart library (documented at its top; the web UI embeds it too).
pub const CHARTS_JS: &str = include_str!("../../assets/charts.js");
/// The script that renders the report from its data.
pub const REPORT_JS: &str = include_str!("../../assets/report.js");
/// The `--server-metrics` section's script (shared with the web UI), run before the report's.
pub const SERVER_METRICS_JS: &str = include_str!("../../assets/server_metrics.js");

/// One curve of a distribution chart: `[percentile (0..100), value]` points.
#[derive(Debug, Serialize)]
struct Curve {
    name: String,
    points: Vec<[f64; 2]>,
}

/// A latency distribution chart.
#[derive(Debug, Serialize)]
struct Distribution {
    key: &'static str,
    title: String,
    unit: &'static str,
    series: Vec<Curve>,
}

/// One metric of the catalogue as the page script reads it, so its tables list every metric
/// without a list of its own.
#[derive(Debug, Serialize)]
struct CatalogueEntry {
    /// Key of its summary in `result.metrics`.
    summary_key: &'static str,
    label: &'static str,
    unit: &'static str,
    description: &'static str,
    covers: &'static str,
    open_loop_only: bool,
}

fn catalogue() -> Vec<CatalogueEntry> {
    MetricId::ALL
        .into_iter()
        .map(|id| {
            let d = id.def();
            CatalogueEntry {
                summary_key: d.summary_key,
                label: d.label,
                unit: d.unit.display(),
                description: d.description,
                covers: d.covers.describe(),
                open_loop_only: d.covers.open_loop_only(),
            }
        })
        .collect()
}

/// Everything the page script reads.
#[derive(Debug, Serialize)]
struct PageData {
    result: JsonResult,
    /// Every metric's labels, in report order.
    catalogue: Vec<CatalogueEntry>,
    distributions: Vec<Distribution>,
    /// Stage starts and the warm-up, marked on every time chart.
    phases: Phases,
    slo: String,
    generated_unix_s: f64,
    /// Failures per kind that occurred, with each kind's meaning (the failures section).
    failure_kinds: Vec<KindSummary>,
    /// `--server-metrics`: the well-known series to chart (every series stays in the JSON file).
    #[serde(skip_serializing_if = "Option::is_none")]
    server: Option<ServerSection>,
    /// `--repeat`: the headline figures' keys, labels and units, in report order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    repeat_figures: Vec<RepeatFigure>,
}

/// One `--repeat` figure as the page script reads it.
#[derive(Debug, Serialize)]
struct RepeatFigure {
    key: String,
    label: String,
    unit: &'static str,
}

/// The data of the report's `--server-metrics` section.
#[derive(Debug, Serialize)]
struct ServerSection {
    overviews: Vec<crate::observe::known::Overview>,
    comparisons: Vec<super::server::TtftComparison>,
    errors: Vec<crate::observe::ScrapeFailure>,
}

/// Quantiles at which a curve of `count` samples is drawn: 0, then 1 − 10^(−k/20), up to the
/// first decade past the last sample (1 − 1/(10·count)) and at most 99.999%: beyond that the
/// curve is flat at the maximum and would only stretch the axis.
fn curve_quantiles(count: u64) -> Vec<f64> {
    let last = (1.0 - 0.1 / count.max(1) as f64).min(0.99999);
    let mut q: Vec<f64> = (0..=100)
        .map(|k| 1.0 - 10f64.powf(-f64::from(k) / 20.0))
        .take_while(|q| *q < last - 1e-12)
        .collect();
    q.push(last);
    q
}

fn curve(name: &str, m: &Metric, scale: f64) -> Option<Curve> {
    if m.count() == 0 {
        return None;
    }
    let points = curve_quantiles(m.count())
        .into_iter()
        .filter_map(|q| m.quantile(q).map(|v| [q * 100.0, v as f64 / scale]))
        .collect();
    Some(Curve {
        name: name.to_string(),
        points,
    })
}

fn distributions(kinds: &[crate::metrics::RequestKind], stats: &StatsSet) -> Vec<Distribution> {
    let total = stats.total();
    // With several request kinds, each gets a curve beside Aggregated.
    let mut rows: Vec<(String, &NameStats)> = Vec::new();
    if stats.rows.iter().filter(|r| r.requests > 0).count() > 1 {
        for (i, r) in stats.rows.iter().enumerate() {
            let name = kinds
                .get(i)
                .map_or_else(|| format!("#{i}"), |k| format!("{} {}", k.method, k.name));
            rows.push((name, r));
        }
    }
    rows.push(("Aggregated".to_string(), &total));
    // Every metric the catalogue draws; the open loop's only when a row has samples of it.
    MetricId::ALL
        .into_iter()
        .map(MetricId::def)
        .filter(|d| d.distribution)
        .filter_map(|d| {
            let series: Vec<Curve> = rows
                .iter()
                .filter_map(|(name, s)| curve(name, s.metric(d.id), d.unit.display_scale()))
                .collect();
            if series.is_empty() && d.covers.open_loop_only() {
                return None;
            }
            Some(Distribution {
                key: d.name,
                title: format!("{} — {}", d.label, d.description),
                unit: d.unit.display(),
                series,
            })
        })
        .collect()
}

/// Makes JSON safe inside `<script>`: no `<`, `>` or `&` can end the element or start a comment.
fn script_safe(json: &str) -> String {
    json.replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Replaces each `/*__GSAI_NAME__*/` marker of `template` with its value, in one pass.
fn fill(template: &str, values: &[(&str, &str)]) -> String {
    const OPEN: &str = "/*__GSAI_";
    const CLOSE: &str = "__*/";
    let mut out =
        String::with_capacity(template.len() + values.iter().map(|v| v.1.len()).sum::<usize>());
    let mut rest = template;
    while let Some(at) = rest.find(OPEN) {
        out.push_str(&rest[..at]);
        let after = &rest[at + OPEN.len()..];
        match after.find(CLOSE) {
            Some(end) => {
                let key = &after[..end];
                match values.iter().find(|(k, _)| *k == key) {
                    Some((_, v)) => out.push_str(v),
                    None => out.push_str(&rest[at..at + OPEN.len() + end + CLOSE.len()]),
                }
                rest = &after[end + CLOSE.len()..];
            }
            None => {
                out.push_str(&rest[at..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// The whole report page.
pub fn render(result: &RunResult, extras: &Extras) -> String {
    let mut doc = json::build_with(result, extras);
    doc.raw = None;
    doc.stats_history.clear();
    let server = (!extras.server_metrics.is_empty()).then(|| ServerSection {
        overviews: crate::observe::known::overviews(&extras.server_metrics.series),
        comparisons: doc.server_ttft.clone(),
        errors: doc.server_metrics_errors.clone(),
    });
    // Every scraped series can be large: the page charts the well-known ones only.
    doc.server_metrics.clear();
    let data = PageData {
        result: doc,
        catalogue: catalogue(),
        distributions: distributions(&result.kinds, &result.stats),
        phases: Phases::of(&result.plan, result.started_unix_s),
        slo: crate::criteria::slo::describe(&result.plan.slo),
        generated_unix_s: crate::metrics::clock::unix_now_s(),
        failure_kinds: KindCounts::of(
            result
                .stats
                .failures
                .iter()
                .map(|(k, e)| (k.cause, e.count)),
        )
        .summary(),
        server,
        repeat_figures: match &extras.repeats {
            None => Vec::new(),
            Some(_) => super::repeat::figures(!result.plan.slo.is_empty())
                .into_iter()
                .map(|f| RepeatFigure {
                    key: f.key,
                    label: f.label,
                    unit: f.unit,
                })
                .collect(),
        },
    };
    // Serializing plain data (strings, numbers, maps with string keys) cannot fail.
    let data_json = serde_json::to_string(&data).unwrap_or_else(|_| "null".into());
    let title = html_escape(&format!(
        "gsai-load report: {} against {}",
        result.plan.model, result.plan.host
    ));
    fill(
        TEMPLATE,
        &[
            ("TITLE", &title),
            ("REPORT_CSS", REPORT_CSS),
            ("CHARTS_JS", CHARTS_JS),
            ("REPORT_JS", &format!("{SERVER_METRICS_JS}\n{REPORT_JS}")),
            ("DATA", &script_safe(&data_json)),
        ],
    )
}

/// Writes the report to `path` (through a temporary file).
pub fn write(result: &RunResult, extras: &Extras, path: &Path) -> std::io::Result<()> {
    super::write_atomic(path, render(result, extras).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixture;

    #[test]
    fn self_contained_and_safe() {
        let mut r = fixture::result();
        r.plan.prompt = "</script><script>alert(1)</script> & /*__GSAI_DATA__*/".into();
        let page = render(&r, &Extras::default());
        assert!(!page.contains(fixture::TOKEN), "token leaked");
        assert_eq!(
            page.matches("/*__GSAI_").count(),
            1,
            "only the prompt's own text: no marker left, none re-expanded"
        );
        assert!(!page.contains("alert(1)</script>"));
        assert_eq!(page.matches("</script>").count(), 3, "data, charts, report");
        for external in ["http://", "https://", "src=", "href="] {
            let hits: Vec<_> = page.match_indices(external).collect();
            // The only URLs are the target host and the SVG namespace, both inside data or code.
            for (at, _) in hits {
                let around = &page[at.saturating_sub(40)..(at + 60).min(page.len())];
                assert!(
                    around.contains("127.0.0.1") || around.contains("www.w3.org/2000/svg"),
                    "external reference: {around}"
                );
            }
        }
        assert!(page.contains("GsaiCharts"));
        assert!(page.starts_with("<!doctype html>"));
    }

    #[test]
    fn data_is_parseable_and_has_distributions() {
        let v = page_data(&render(&fixture::result(), &Extras::default()));
        assert_eq!(v["result"]["summary"]["requests"], 40);
        assert!(v["result"].get("raw").is_none());
        assert_eq!(v["slo"], "ttft<100ms,e2e<=400ms");
        let ttft = v["distributions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["key"] == "ttft")
            .unwrap();
        assert_eq!(ttft["key"], "ttft");
        // Two kinds: one curve each and Aggregated.
        assert_eq!(ttft["series"].as_array().unwrap().len(), 3);
        let pts = ttft["series"][2]["points"].as_array().unwrap();
        assert_eq!(pts[0][0], 0.0);
        // 35 samples: the curve ends one decade past the last one, at the maximum.
        let last_pct = pts.last().unwrap()[0].as_f64().unwrap();
        assert!(
            (last_pct - (100.0 - 10.0 / 35.0)).abs() < 1e-9,
            "{last_pct}"
        );
        assert_eq!(pts.last().unwrap()[1], 167.0, "the max TTFT");
    }

    /// The page's data, parsed back.
    fn page_data(page: &str) -> serde_json::Value {
        let start = page.find("id=\"gsai-data\">").unwrap() + "id=\"gsai-data\">".len();
        let end = start + page[start..].find("</script>").unwrap();
        serde_json::from_str(&page[start..end]).unwrap()
    }

    #[test]
    fn data_marks_stage_starts_and_the_warmup() {
        let mut r = fixture::result();
        let plain = page_data(&render(&r, &Extras::default()));
        assert_eq!(
            plain["phases"],
            serde_json::json!({"started_unix_s": 1_700_000_000.0, "markers": [], "bands": []})
        );
        r.plan.stages = Some("4@4s,2@6s".parse().unwrap());
        r.plan.warmup = Some(std::time::Duration::from_secs(3));
        let v = page_data(&render(&r, &Extras::default()));
        assert_eq!(
            v["phases"],
            serde_json::json!({
                "started_unix_s": 1_700_000_000.0,
                "markers": [
                    {"x": 1_700_000_000.0, "label": "→ 4 users"},
                    {"x": 1_700_000_004.0, "label": "→ 2 users"},
                ],
                "bands": [{"from": 1_700_000_000.0, "to": 1_700_000_003.0, "label": "warm-up (excluded)"}],
            })
        );
        // The plan section reads the stages and the warm-up from the plan itself.
        assert_eq!(
            v["result"]["plan"]["stages"],
            serde_json::json!([{"target": 4.0, "duration": "4s"}, {"target": 2.0, "duration": "6s"}])
        );
        assert_eq!(v["result"]["plan"]["warmup"], "3s");
    }

    #[test]
    fn fill_replaces_known_markers_once() {
        assert_eq!(
            fill(
                "a/*__GSAI_X__*/b/*__GSAI_Y__*/c/*__GSAI_",
                &[("X", "/*__GSAI_Y__*/")]
            ),
            "a/*__GSAI_Y__*/b/*__GSAI_Y__*/c/*__GSAI_"
        );
    }
}
