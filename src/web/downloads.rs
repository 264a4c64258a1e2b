//! Downloads of the current or last test: the JSON result, the Locust-compatible CSVs and the
//! HTML report. This file renders nothing itself: it calls the report writers, so a download
//! is byte for byte what `--json`, `--csv` and `--html` write.

use crate::engine::RunResult;
use crate::report::{self, history::HistoryTick, Extras};
use serde_json::{json, Value};

/// One downloadable file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Download {
    /// The whole result (`--json`'s document).
    ResultJson,
    /// Locust's `PREFIX_stats.csv`.
    StatsCsv,
    /// Locust's `PREFIX_stats_history.csv`.
    StatsHistoryCsv,
    /// Locust's `PREFIX_failures.csv`.
    FailuresCsv,
    /// `PREFIX_llm_stats.csv`: the LLM metrics.
    LlmStatsCsv,
    /// The self-contained HTML report (`--html`).
    HtmlReport,
}

impl Download {
    /// Every download, in the order the page lists them.
    pub const ALL: [Download; 6] = [
        Download::HtmlReport,
        Download::ResultJson,
        Download::StatsCsv,
        Download::LlmStatsCsv,
        Download::StatsHistoryCsv,
        Download::FailuresCsv,
    ];

    /// The API path that serves it.
    pub fn path(self) -> &'static str {
        match self {
            Download::ResultJson => "/result.json",
            Download::StatsCsv => "/stats/requests/csv",
            Download::StatsHistoryCsv => "/stats/requests_full_history/csv",
            Download::FailuresCsv => "/stats/failures/csv",
            Download::LlmStatsCsv => "/stats/llm/csv",
            Download::HtmlReport => "/stats/report",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Download::ResultJson => "Full result (JSON)",
            Download::StatsCsv => "Request statistics (CSV)",
            Download::StatsHistoryCsv => "Statistics history (CSV)",
            Download::FailuresCsv => "Failures (CSV)",
            Download::LlmStatsCsv => "LLM metrics (CSV)",
            Download::HtmlReport => "HTML report",
        }
    }

    fn filename(self) -> &'static str {
        match self {
            Download::ResultJson => "gsai-load_result.json",
            Download::StatsCsv => "gsai-load_stats.csv",
            Download::StatsHistoryCsv => "gsai-load_stats_history.csv",
            Download::FailuresCsv => "gsai-load_failures.csv",
            Download::LlmStatsCsv => "gsai-load_llm_stats.csv",
            Download::HtmlReport => "gsai-load_report.html",
        }
    }

    /// Whether this build has the writer for it (every one does).
    pub fn available(self) -> bool {
        true
    }
}

const CSV: &str = "text/csv; charset=utf-8";

/// A rendered download.
#[derive(Debug)]
pub struct File {
    /// Suggested file name.
    pub filename: &'static str,
    /// MIME type.
    pub content_type: &'static str,
    /// Content.
    pub body: Vec<u8>,
}

/// Why a download could not be made.
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    /// The writer for this format is not in this build.
    #[error("{0} is not available in this build yet; GET /result.json has every figure")]
    NotBuilt(&'static str),
    /// Serialization failed.
    #[error("could not serialize the result: {0}")]
    Json(#[from] serde_json::Error),
}

/// The page's list of downloads.
pub fn catalogue() -> Value {
    Value::Array(
        Download::ALL
            .iter()
            .map(|d| json!({"label": d.label(), "href": d.path(), "available": d.available()}))
            .collect(),
    )
}

/// Renders `which` for `result` (with its stats-history `ticks`); `in_progress` marks the
/// figures of a test still running.
pub fn render(
    which: Download,
    result: &RunResult,
    ticks: &[HistoryTick],
    server_metrics: &crate::observe::ServerMetrics,
    in_progress: bool,
) -> Result<File, DownloadError> {
    let extras = Extras {
        server_metrics: server_metrics.clone(),
        ..Extras::default()
    };
    let file = |content_type, body| File {
        filename: which.filename(),
        content_type,
        body,
    };
    match which {
        Download::ResultJson => {
            let mut doc = serde_json::to_value(report::json::build_with(result, &extras))?;
            if let Value::Object(map) = &mut doc {
                // A running test's stop_reason is not final yet; say so beside it.
                map.insert("in_progress".into(), Value::Bool(in_progress));
            }
            Ok(file("application/json", serde_json::to_vec_pretty(&doc)?))
        }
        Download::StatsCsv => Ok(file(
            CSV,
            report::csv::stats_csv(&result.kinds, &result.stats).into_bytes(),
        )),
        Download::StatsHistoryCsv => Ok(file(
            CSV,
            report::csv::history_csv(ticks, true).into_bytes(),
        )),
        Download::FailuresCsv => Ok(file(
            CSV,
            report::csv::failures_csv(&result.kinds, &result.stats).into_bytes(),
        )),
        Download::LlmStatsCsv => Ok(file(
            CSV,
            report::csv::llm_stats_csv(&result.kinds, &result.stats).into_bytes(),
        )),
        Download::HtmlReport => {
            // The page's thresholds are the run's flags, not known here: the report shows none.
            Ok(file(
                "text/html; charset=utf-8",
                report::html::render(result, &extras).into_bytes(),
            ))
        }
    }
}
