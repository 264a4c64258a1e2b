//! Writing the `--csv PREFIX` files. All five are created before the test starts (so a bad prefix
//! fails at once, as usage); then each second the history gets its new rows appended and flushed
//! and the other files are rewritten whole through a temporary file, like Locust does, so a crash
//! or a kill keeps everything measured up to the last second.

use super::csv::{
    exceptions_csv, failures_csv, history_csv, history_header, history_rows, llm_stats_csv,
    stats_csv,
};
use super::history::HistoryTick;
use super::write_atomic;
use crate::metrics::{RequestKind, StatsSet};
use std::ffi::OsString;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// A CSV file could not be written.
#[derive(Debug, thiserror::Error)]
#[error(
    "--csv {prefix}: cannot write {file}: {source} (check that the folder exists and is writable)"
)]
pub struct CsvError {
    prefix: String,
    file: String,
    source: std::io::Error,
}

/// `PREFIX` + `suffix`, e.g. `out/run1` + `_stats.csv`.
pub fn csv_path(prefix: &Path, suffix: &str) -> PathBuf {
    let mut p = OsString::from(prefix.as_os_str());
    p.push(suffix);
    PathBuf::from(p)
}

/// The open `--csv` files of a running test.
#[derive(Debug)]
pub struct CsvFiles {
    prefix: PathBuf,
    full_history: bool,
    history: BufWriter<File>,
}

impl CsvFiles {
    fn err(prefix: &Path, file: &Path, source: std::io::Error) -> CsvError {
        CsvError {
            prefix: prefix.display().to_string(),
            file: file.display().to_string(),
            source,
        }
    }

    fn write(&self, suffix: &str, text: &str) -> Result<(), CsvError> {
        let path = csv_path(&self.prefix, suffix);
        write_atomic(&path, text.as_bytes()).map_err(|e| Self::err(&self.prefix, &path, e))
    }

    /// Creates the five files with their headers (`_stats.csv` with the header only, like Locust).
    pub fn create(prefix: &Path, full_history: bool) -> Result<Self, CsvError> {
        let path = csv_path(prefix, "_stats_history.csv");
        let file = File::create(&path).map_err(|e| Self::err(prefix, &path, e))?;
        let mut files = Self {
            prefix: prefix.to_path_buf(),
            full_history,
            history: BufWriter::new(file),
        };
        files
            .history
            .write_all(history_header().as_bytes())
            .and_then(|()| files.history.flush())
            .map_err(|e| Self::err(prefix, &path, e))?;
        files.finish(&[], &StatsSet::new(0))?;
        Ok(files)
    }

    /// One second: appends the tick's history rows (flushed), rewrites the other files.
    pub fn tick(
        &mut self,
        tick: &HistoryTick,
        kinds: &[RequestKind],
        stats: &StatsSet,
    ) -> Result<(), CsvError> {
        let path = csv_path(&self.prefix, "_stats_history.csv");
        self.history
            .write_all(history_rows(tick, self.full_history).as_bytes())
            .and_then(|()| self.history.flush())
            .map_err(|e| Self::err(&self.prefix, &path, e))?;
        self.finish(kinds, stats)
    }

    /// Rewrites `_stats`, `_failures`, `_exceptions` and `_llm_stats` from `stats`.
    pub fn finish(&mut self, kinds: &[RequestKind], stats: &StatsSet) -> Result<(), CsvError> {
        self.write("_stats.csv", &stats_csv(kinds, stats))?;
        self.write("_failures.csv", &failures_csv(kinds, stats))?;
        self.write("_exceptions.csv", &exceptions_csv())?;
        self.write("_llm_stats.csv", &llm_stats_csv(kinds, stats))
    }
}

/// Writes every file at once from a finished result and its recorded history (for
/// `gsai-load report`); returns the paths written.
pub fn write_all(
    prefix: &Path,
    full_history: bool,
    kinds: &[RequestKind],
    stats: &StatsSet,
    history: &[HistoryTick],
) -> Result<Vec<PathBuf>, CsvError> {
    let files = [
        ("_stats.csv", stats_csv(kinds, stats)),
        ("_stats_history.csv", history_csv(history, full_history)),
        ("_failures.csv", failures_csv(kinds, stats)),
        ("_exceptions.csv", exceptions_csv()),
        ("_llm_stats.csv", llm_stats_csv(kinds, stats)),
    ];
    let mut written = Vec::new();
    for (suffix, text) in files {
        let path = csv_path(prefix, suffix);
        write_atomic(&path, text.as_bytes()).map_err(|e| CsvFiles::err(prefix, &path, e))?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixture;
    use crate::report::history::HistoryBuilder;

    #[test]
    fn history_is_appended_and_survives_without_finish() {
        let dir = tempfile::tempdir().unwrap();
        let prefix = dir.path().join("run");
        let r = fixture::result();
        let mut files = CsvFiles::create(&prefix, false).unwrap();
        for suffix in super::super::csv::SUFFIXES {
            assert!(csv_path(&prefix, suffix).exists(), "{suffix}");
        }
        let mut b = HistoryBuilder::new(r.started_unix_s);
        for s in 1..=3 {
            let tick = b.push(r.started_unix_s + f64::from(s), 4, &r.kinds, &r.stats);
            files.tick(&tick, &r.kinds, &r.stats).unwrap();
        }
        // No finish, no drop: what a crash leaves behind is complete up to the last tick.
        let text = std::fs::read_to_string(csv_path(&prefix, "_stats_history.csv")).unwrap();
        assert_eq!(text.lines().count(), 4, "{text}");
        assert!(text
            .lines()
            .nth(3)
            .unwrap()
            .starts_with("1700000003,4,,Aggregated,"));
        let stats = std::fs::read_to_string(csv_path(&prefix, "_stats.csv")).unwrap();
        assert_eq!(stats, stats_csv(&r.kinds, &r.stats));
        std::mem::forget(files);
    }

    #[test]
    fn a_bad_prefix_names_the_flag() {
        let e = CsvFiles::create(Path::new("/nonexistent-dir/run"), false).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.starts_with("--csv /nonexistent-dir/run: cannot write"),
            "{msg}"
        );
    }
}
