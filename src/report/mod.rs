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
pub mod repeat;
pub mod server;

#[cfg(test)]
pub(crate) mod fixture;

use crate::criteria::threshold::ThresholdResult;
use crate::engine::RunResult;
use crate::metrics::FailureKind;
use history::HistoryTick;
use std::path::Path;

/// Exit status when a threshold failed or stopped the test (k6's convention).
pub const EXIT_THRESHOLD: u8 = 99;

/// Default exit status when requests failed (Locust's `--exit-code-on-error`).
pub const EXIT_ON_ERROR: u8 = 1;

/// Exit status when the run itself failed, whatever `--exit-code-on-error` says: no request
/// finished (a dead backend must not pass a CI gate), or the generator hit an internal defect.
pub const EXIT_RUN_FAILED: u8 = 1;

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
    /// What `--server-metrics` scraped (empty without it).
    pub server_metrics: crate::observe::ServerMetrics,
    /// `--repeat N`: each run's headline figures and their means with confidence intervals.
    pub repeats: Option<repeat::Repeats>,
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
/// 2. [`EXIT_RUN_FAILED`] (1) when no request finished, or a request failed with kind
///    `internal`;
/// 3. `on_error` (`--exit-code-on-error`, default 1; 0 lets thresholds alone decide) when
///    requests failed;
/// 4. 0.
///
/// (Bad usage or configuration exits with 2 before any test runs.)
pub fn exit_code_with(result: &RunResult, extras: &Extras, on_error: u8) -> u8 {
    if extras.thresholds_failed() {
        EXIT_THRESHOLD
    } else if run_failed(result).is_some() {
        EXIT_RUN_FAILED
    } else if result.stats.total().failures > 0 {
        on_error
    } else {
        0
    }
}

/// Why a finished test cannot count as a pass whatever its thresholds say, if it cannot: no
/// request finished, or the generator itself failed. A sentence for people.
pub fn run_failed(result: &RunResult) -> Option<String> {
    let total = result.stats.total();
    let internal: u64 = result
        .stats
        .failures
        .iter()
        .filter(|(k, _)| k.cause == FailureKind::Internal)
        .map(|(_, e)| e.count)
        .sum();
    if internal > 0 {
        Some(format!(
            "{internal} request(s) failed inside gsai-load itself (kind internal): the figures cannot be trusted; please report it"
        ))
    } else if total.requests == 0 {
        Some(format!(
            "no request finished ({} cancelled at stop): nothing was measured; is the server answering? (see --first-byte-timeout)",
            total.cancelled
        ))
    } else {
        None
    }
}

/// Writes `bytes` to `path` through a temporary file beside it, so readers never see half a file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = tmp_path(path);
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

/// Checks, before a test starts, that [`write_atomic`] will be able to write `path`: creates and
/// removes the temporary file beside it (so a missing folder, a read-only filesystem or a
/// permission problem shows now, not after the run), and refuses a folder in its place.
pub fn probe_writable(path: &Path) -> std::io::Result<()> {
    if path.is_dir() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::IsADirectory,
            "it is a folder; give a file name",
        ));
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("folder {} does not exist", dir.display()),
        ));
    }
    let tmp = tmp_path(path);
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)?;
    std::fs::remove_file(&tmp)
}

/// The temporary file [`write_atomic`] writes before renaming it into place.
fn tmp_path(path: &Path) -> std::path::PathBuf {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    tmp.into()
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
        // Nothing finished: a failed run even with --exit-code-on-error 0.
        r.stats = crate::metrics::StatsSet::new(1);
        r.stats.rows[0].cancelled = 2;
        assert_eq!(exit_code_with(&r, &Extras::default(), 0), EXIT_RUN_FAILED);
        assert!(run_failed(&r).unwrap().contains("no request finished"));
    }

    #[test]
    fn an_internal_failure_fails_the_run() {
        let mut r = fixture::result();
        let key = crate::metrics::FailureKey {
            kind: 0,
            cause: FailureKind::Internal,
            message: "panicked".into(),
        };
        let entry = crate::metrics::FailureEntry {
            count: 1,
            first_seen_unix_s: 1.0,
            last_seen_unix_s: 1.0,
        };
        assert_eq!(exit_code_with(&r, &Extras::default(), 0), 0);
        r.stats.failures.insert(key, entry);
        assert_eq!(exit_code_with(&r, &Extras::default(), 0), EXIT_RUN_FAILED);
    }
}
