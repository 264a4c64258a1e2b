//! Orchestration of a run's outputs and verdict: creating the `--csv` files up front, watching the
//! engine's snapshots (stats history appended each second, `--threshold-abort`), then at the end
//! the summary, thresholds, JSON, CSV and HTML files and the exit code. Also the `report` and
//! `compare` subcommands, which work on saved JSON results.

use crate::cli::{CompareArgs, OutputArgs, ReportArgs};
use crate::criteria::threshold::{self, Threshold, ThresholdResult};
use crate::engine::{RunHandle, RunResult};
use crate::report::csv_files::{self, CsvError, CsvFiles};
use crate::report::history::{HistoryBuilder, HistoryTick};
use crate::report::{self, compare, console, html, json, Extras};
use anyhow::Context;
use std::path::{Path, PathBuf};
use tokio::task::JoinHandle;

/// What a run writes and how it is judged.
#[derive(Debug, Clone, Default)]
pub struct Outputs {
    /// `--json FILE`.
    pub json: Option<PathBuf>,
    /// `--csv PREFIX`, `--html FILE`, thresholds, exit code on error.
    pub args: OutputArgs,
}

impl Outputs {
    /// Outputs of a run from its flags.
    pub fn new(json: Option<&Path>, args: &OutputArgs) -> Self {
        Self {
            json: json.map(Path::to_path_buf),
            args: args.clone(),
        }
    }
}

/// What watching the snapshots gathered.
struct Observed {
    history: Vec<HistoryTick>,
    breach: Option<ThresholdResult>,
    csv: Option<CsvFiles>,
    csv_error: Option<CsvError>,
}

/// Checks that the folders of `--json`, `--html` and `--csv` exist, so a bad path fails at startup.
pub fn check_paths(outputs: &Outputs) -> anyhow::Result<()> {
    let flags = [
        ("--json", &outputs.json),
        ("--html", &outputs.args.html),
        ("--csv", &outputs.args.csv),
    ];
    for (flag, path) in flags {
        if let Some(path) = path {
            super::check_writable(path)
                .with_context(|| format!("{flag} {}: cannot write there", path.display()))?;
        }
    }
    Ok(())
}

/// Checks every output path and creates the CSV files (with their headers), so that a bad path
/// fails before the test starts.
pub fn prepare(outputs: &Outputs) -> anyhow::Result<Option<CsvFiles>> {
    check_paths(outputs)?;
    let csv = match &outputs.args.csv {
        Some(prefix) => Some(CsvFiles::create(prefix, outputs.args.csv_full_history)?),
        None => None,
    };
    Ok(csv)
}

/// Watches the engine's snapshots until the run ends: one history tick a second (appended to the
/// CSV history at once), and `--threshold-abort` checks.
fn observe(
    mut snaps: tokio::sync::watch::Receiver<std::sync::Arc<crate::engine::Snapshot>>,
    stop: impl Fn() + Send + 'static,
    csv: Option<CsvFiles>,
    outputs: &Outputs,
) -> JoinHandle<Observed> {
    let thresholds: Vec<Threshold> = outputs.args.thresholds.clone();
    let abort = outputs.args.threshold_abort;
    let delay_s = outputs.args.threshold_abort_delay.as_secs_f64();
    tokio::spawn(async move {
        let mut seen = Observed {
            history: Vec::new(),
            breach: None,
            csv,
            csv_error: None,
        };
        let mut builder: Option<HistoryBuilder> = None;
        while snaps.changed().await.is_ok() {
            let snap = snaps.borrow_and_update().clone();
            let b = builder
                .get_or_insert_with(|| HistoryBuilder::new(snap.point.unix_s - snap.elapsed_s));
            let tick = b.push_snapshot(&snap);
            if let Some(files) = seen.csv.as_mut() {
                if let Err(e) = files.tick(&tick, &snap.kinds, &snap.stats) {
                    eprintln!("warning: {e}; the CSV files stop here");
                    seen.csv = None;
                    seen.csv_error = Some(e);
                }
            }
            seen.history.push(tick);
            if abort && seen.breach.is_none() && snap.elapsed_s >= delay_s {
                if let Some(b) = threshold::first_breach(&thresholds, &snap.stats.total()) {
                    eprintln!(
                        "\nthreshold breached, stopping (--threshold-abort): {} [{}]",
                        threshold::describe(&b),
                        b.expr
                    );
                    stop();
                    seen.breach = Some(b);
                }
            }
        }
        seen
    })
}

/// Runs the engine to its end while the outputs watch it; returns the result and what was seen.
pub async fn run(
    handle: RunHandle,
    csv: Option<CsvFiles>,
    outputs: &Outputs,
) -> anyhow::Result<(RunResult, Extras, Option<CsvFiles>)> {
    let stopper = handle.stopper();
    let snaps = handle.subscribe();
    run_observed(
        snaps,
        move || stopper.stop(),
        async { Ok(handle.wait().await) },
        csv,
        outputs,
    )
    .await
}

/// As [`run`], for any producer of snapshots and a result (the distributed master).
pub async fn run_observed(
    snaps: tokio::sync::watch::Receiver<std::sync::Arc<crate::engine::Snapshot>>,
    stop: impl Fn() + Send + 'static,
    result: impl std::future::Future<Output = anyhow::Result<RunResult>>,
    csv: Option<CsvFiles>,
    outputs: &Outputs,
) -> anyhow::Result<(RunResult, Extras, Option<CsvFiles>)> {
    let observer = observe(snaps, stop, csv, outputs);
    let result = result.await?;
    let seen = observer.await.context("the output task failed")?;
    if let Some(e) = seen.csv_error {
        return Err(e).context("writing the CSV files failed during the test");
    }
    let extras = Extras {
        thresholds: threshold::judge_all(&outputs.args.thresholds, &result.stats.total()),
        threshold_abort: seen.breach,
        history: seen.history,
    };
    Ok((result, extras, seen.csv))
}

/// Prints the summary and thresholds, writes the files, and returns the exit code.
pub fn finish(
    result: &RunResult,
    extras: &Extras,
    csv: Option<CsvFiles>,
    outputs: &Outputs,
) -> anyhow::Result<u8> {
    print!("{}", console::summary(result));
    print!("{}", console::thresholds(extras));
    if let Some(mut files) = csv {
        files.finish(&result.kinds, &result.stats)?;
        if let Some(prefix) = &outputs.args.csv {
            eprintln!("wrote {}_*.csv", prefix.display());
        }
    }
    if let Some(path) = &outputs.json {
        json::write_with(result, extras, path)
            .with_context(|| format!("--json {}: writing the result failed", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    if let Some(path) = &outputs.args.html {
        html::write(result, extras, path)
            .with_context(|| format!("--html {}: writing the report failed", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(report::exit_code_with(
        result,
        extras,
        outputs.args.exit_code_on_error,
    ))
}

/// For a result that ran without live outputs (the web UI's last test): judges the thresholds,
/// writes every CSV at once from `history`, then as [`finish`].
pub fn finish_after(
    result: &RunResult,
    history: Vec<HistoryTick>,
    outputs: &Outputs,
) -> anyhow::Result<u8> {
    let extras = Extras {
        thresholds: threshold::judge_all(&outputs.args.thresholds, &result.stats.total()),
        threshold_abort: None,
        history,
    };
    if let Some(prefix) = &outputs.args.csv {
        csv_files::write_all(
            prefix,
            outputs.args.csv_full_history,
            &result.kinds,
            &result.stats,
            &extras.history,
        )?;
        eprintln!("wrote {}_*.csv", prefix.display());
    }
    finish(result, &extras, None, outputs)
}

/// `gsai-load report RESULT.json --html FILE --csv PREFIX`.
pub fn report_cmd(args: &ReportArgs) -> anyhow::Result<u8> {
    if args.html.is_none() && args.csv.is_none() {
        anyhow::bail!("gsai-load report: nothing to write: pass --html FILE and/or --csv PREFIX");
    }
    let doc = json::read(&args.result)?;
    let (result, extras) = json::rebuild(&doc)
        .with_context(|| format!("{}: cannot rebuild the result", args.result.display()))?;
    print!("{}", console::summary(&result));
    print!("{}", console::thresholds(&extras));
    if let Some(path) = &args.html {
        html::write(&result, &extras, path)
            .with_context(|| format!("--html {}: writing the report failed", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    if let Some(prefix) = &args.csv {
        if extras.history.is_empty() {
            eprintln!(
                "note: {} has no stats history, so {}_stats_history.csv has its header only",
                args.result.display(),
                prefix.display()
            );
        }
        csv_files::write_all(
            prefix,
            args.csv_full_history,
            &result.kinds,
            &result.stats,
            &extras.history,
        )?;
        eprintln!("wrote {}_*.csv", prefix.display());
    }
    Ok(0)
}

/// `gsai-load compare A.json B.json [--fail-if-worse PCT]`.
pub fn compare_cmd(args: &CompareArgs) -> anyhow::Result<u8> {
    if let Some(p) = args.fail_if_worse {
        if !(p.is_finite() && p >= 0.0) {
            anyhow::bail!("--fail-if-worse {p}: must be a percentage of 0 or more, e.g. 10");
        }
    }
    let a = json::read(&args.baseline)?;
    let b = json::read(&args.candidate)?;
    let rows = compare::rows(&a, &b);
    print!(
        "{}",
        compare::render(
            &args.baseline.display().to_string(),
            &a,
            &args.candidate.display().to_string(),
            &b,
            &rows
        )
    );
    let Some(pct) = args.fail_if_worse else {
        return Ok(0);
    };
    let worse = compare::regressions(&rows, pct);
    if worse.is_empty() {
        println!("no headline metric is worse by more than {pct}%");
        return Ok(0);
    }
    for r in &worse {
        let by = r
            .worse_pct()
            .filter(|w| w.is_finite())
            .map_or_else(|| "from zero".to_string(), |w| format!("by {w:.1}%"));
        println!("regression: {} is worse {by} (limit {pct}%)", r.label);
    }
    Ok(report::EXIT_THRESHOLD)
}
