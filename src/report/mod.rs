//! Reports built from results: the live console table and final summary, the JSON result,
//! Locust-compatible CSVs, the self-contained HTML report, and the comparison of two results.
//! Nothing here measures; everything reads [`crate::engine::Snapshot`]s and [`RunResult`]s.

pub mod compare;
pub mod console;
pub mod csv;
pub mod csv_files;
pub mod history;
pub mod html;
pub mod json;
pub mod phases;
pub mod raw;

#[cfg(test)]
pub(crate) mod fixture;

use crate::criteria::threshold::ThresholdResult;
use crate::engine::RunResult;
use history::HistoryTick;
use std::path::Path;

/// Exit status when a threshold failed or stopped the test (k6's convention).
pub const EXIT_THRESHOLD: u8 = 99;

/// Default exit status when requests failed (Locust's `--exit-code-on-error`).
pub const EXIT_ON_ERROR: u8 = 1;

/// What a run adds to its [`RunResult`] for the reports: threshold verdicts and the per-second
/// history. Empty for a bare result.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Extras {
    /// Each `--threshold`, judged at the end.
    pub thresholds: Vec<ThresholdResult>,
    /// The threshold that stopped the test early (`--threshold-abort`), if any.
    pub threshold_abort: Option<ThresholdResult>,
    /// One tick a second (Locust's stats history).
    pub history: Vec<HistoryTick>,
}

impl Extras {
    /// Whether a threshold failed, or one stopped the test.
    pub fn thresholds_failed(&self) -> bool {
        self.threshold_abort.is_some() || self.thresholds.iter().any(|t| !t.passed)
    }
}

/// Process exit status of a finished test without thresholds: [`EXIT_ON_ERROR`] when requests
/// failed, else 0.
pub fn exit_code(result: &RunResult) -> u8 {
    exit_code_with(result, &Extras::default(), EXIT_ON_ERROR)
}

/// Process exit status of a finished test, in this order of precedence:
/// 1. [`EXIT_THRESHOLD`] (99) when a threshold failed or stopped the test;
/// 2. `on_error` (`--exit-code-on-error`, default 1; 0 lets thresholds alone decide) when
///    requests failed;
/// 3. 0.
///
/// (Bad usage or configuration exits with 2 before any test runs.)
pub fn exit_code_with(result: &RunResult, extras: &Extras, on_error: u8) -> u8 {
    if extras.thresholds_failed() {
        EXIT_THRESHOLD
    } else if result.stats.total().failures > 0 {
        on_error
    } else {
        0
    }
}

/// Writes `bytes` to `path` through a temporary file beside it, so readers never see half a file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_code_precedence() {
        let mut r = fixture::result();
        let failed = ThresholdResult {
            expr: "rps>1000".into(),
            metric: "rps".into(),
            op: crate::criteria::CmpOp::Gt,
            limit: 1000.0,
            unit: "req/s".into(),
            measured: Some(1.0),
            passed: false,
        };
        let passed = ThresholdResult {
            passed: true,
            ..failed.clone()
        };
        let with = |t: Vec<ThresholdResult>| Extras {
            thresholds: t,
            ..Extras::default()
        };
        // The fixture has failed requests.
        assert_eq!(exit_code(&r), 1);
        assert_eq!(exit_code_with(&r, &with(vec![passed.clone()]), 1), 1);
        assert_eq!(exit_code_with(&r, &with(vec![passed.clone()]), 0), 0);
        assert_eq!(exit_code_with(&r, &with(vec![passed.clone()]), 3), 3);
        assert_eq!(
            exit_code_with(&r, &with(vec![passed.clone(), failed.clone()]), 0),
            99
        );
        assert_eq!(exit_code_with(&r, &with(vec![failed.clone()]), 1), 99);
        let aborted = Extras {
            threshold_abort: Some(failed),
            ..with(vec![passed])
        };
        assert_eq!(exit_code_with(&r, &aborted, 0), 99);
        r.stats = crate::metrics::StatsSet::new(1);
        assert_eq!(exit_code_with(&r, &Extras::default(), 1), 0);
    }
}
