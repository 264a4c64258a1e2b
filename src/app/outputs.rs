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
    /// `--server-metrics`: what to scrape while the test runs (none by default).
    pub server_metrics: Option<crate::observe::ScrapeOptions>,
}

impl Outputs {
    /// Outputs of a run from its flags.
    pub fn new(json: Option<&Path>, args: &OutputArgs) -> Self {
        Self {
            json: json.map(Path::to_path_buf),
            args: args.clone(),
            server_metrics: None,
        }
    }
}

/// A run that has ended, with what its outputs gathered while it ran.
pub struct Finished {
    /// What the test measured.
    pub result: RunResult,
    /// Thresholds judged and the per-second history.
    pub extras: Extras,
    /// The `--csv` files still open, if they are still good.
    csv: Option<CsvFiles>,
    /// Why the `--csv` files stopped during the test, if they did.
    csv_error: Option<CsvError>,
}

/// What watching the snapshots gathered.
struct Observed {
    history: Vec<HistoryTick>,
    breach: Option<ThresholdResult>,
    csv: Option<CsvFiles>,
    csv_error: Option<CsvError>,
}

/// Every file output of a run, as (flag, the file a test-write proves writable). Add a new
/// output here and it is checked before the test like the others.
fn output_files(outputs: &Outputs) -> Vec<(&'static str, PathBuf)> {
    let mut files = Vec::new();
    if let Some(p) = &outputs.json {
        files.push(("--json", p.clone()));
    }
    if let Some(p) = &outputs.args.html {
        files.push(("--html", p.clone()));
    }
    if let Some(prefix) = &outputs.args.csv {
        files.push(("--csv", csv_files::csv_path(prefix, "_stats.csv")));
    }
    files
}

/// Test-writes every output (`--json`, `--html`, `--csv`) before the test starts, so a missing
/// folder, a read-only filesystem or a permission problem fails now rather than after the run.
/// Every problem is reported, not only the first.
pub fn check_paths(outputs: &Outputs) -> anyhow::Result<()> {
    let problems: Vec<String> = output_files(outputs)
        .into_iter()
        .filter_map(|(flag, path)| {
            report::probe_writable(&path).err().map(|e| {
                format!(
                    "{flag} {}: cannot write there: {e} (choose a writable path)",
                    path.display()
                )
            })
        })
        .collect();
    match problems.len() {
        0 => Ok(()),
        _ => anyhow::bail!("{}", problems.join("\nerror: ")),
    }
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
) -> anyhow::Result<Finished> {
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
) -> anyhow::Result<Finished> {
    // The server's own metrics, from the test's start to its end (--server-metrics).
    let scraper = outputs
        .server_metrics
        .clone()
        .map(crate::observe::Scraper::start);
    let observer = observe(snaps, stop, csv, outputs);
    let result = result.await?;
    let server_metrics = match scraper {
        Some(s) => s.finish().await,
        None => crate::observe::ServerMetrics::default(),
    };
    let seen = observer.await.context("the output task failed")?;
    let extras = Extras {
        thresholds: threshold::judge_all(&outputs.args.thresholds, &result.stats.total()),
        threshold_abort: seen.breach,
        history: seen.history,
        server_metrics,
        repeats: None,
    };
    Ok(Finished {
        result,
        extras,
        csv: seen.csv,
        csv_error: seen.csv_error,
    })
}

/// Prints the summary and thresholds, writes every file, each on its own (one that fails does
/// not keep the others from being written), and returns the exit code; an error lists every
/// output that could not be written.
pub fn finish(done: Finished, outputs: &Outputs) -> anyhow::Result<u8> {
    let Finished {
        result,
        extras,
        csv,
        csv_error,
    } = done;
    print!("{}", console::summary(&result));
    print!(
        "{}",
        report::server::console(&result, &extras.server_metrics)
    );
    if let Some(r) = &extras.repeats {
        print!(
            "{}",
            report::repeat::console(r, !result.plan.slo.is_empty())
        );
    }
    print!("{}", console::thresholds(&extras));
    let mut errors: Vec<String> = Vec::new();
    if let Some(e) = csv_error {
        errors.push(format!("{e} (during the test; the CSV files stop there)"));
    }
    if let Some(mut files) = csv {
        match files.finish(&result.kinds, &result.stats) {
            Ok(()) => {
                if let Some(prefix) = &outputs.args.csv {
                    eprintln!("wrote {}_*.csv", prefix.display());
                }
            }
            Err(e) => errors.push(e.to_string()),
        }
    }
    let mut write = |flag: &str, path: &Path, what: &str, r: std::io::Result<()>| match r {
        Ok(()) => eprintln!("wrote {}", path.display()),
        Err(e) => errors.push(format!(
            "{flag} {}: writing the {what} failed: {e}",
            path.display()
        )),
    };
    if let Some(path) = &outputs.json {
        write(
            "--json",
            path,
            "result",
            json::write_with(&result, &extras, path),
        );
    }
    if let Some(path) = &outputs.args.html {
        write(
            "--html",
            path,
            "report",
            html::write(&result, &extras, path),
        );
    }
    if let Some(why) = report::run_failed(&result) {
        eprintln!("error: {why}");
    }
    if !errors.is_empty() {
        anyhow::bail!("{}", errors.join("\nerror: "));
    }
    Ok(report::exit_code_with(
        &result,
        &extras,
        outputs.args.exit_code_on_error,
    ))
}

/// For a result that ran without live outputs (the web UI's last test): judges the thresholds,
/// writes every CSV at once from `history`, then as [`finish`].
pub fn finish_after(
    result: &RunResult,
    history: Vec<HistoryTick>,
    server_metrics: crate::observe::ServerMetrics,
    outputs: &Outputs,
) -> anyhow::Result<u8> {
    let extras = Extras {
        thresholds: threshold::judge_all(&outputs.args.thresholds, &result.stats.total()),
        threshold_abort: None,
        history,
        server_metrics,
        repeats: None,
    };
    finish_with(result, extras, outputs)
}

/// As [`finish_after`], with the extras given (their history is what the CSV history holds).
pub fn finish_with(result: &RunResult, extras: Extras, outputs: &Outputs) -> anyhow::Result<u8> {
    let mut csv_error = None;
    if let Some(prefix) = &outputs.args.csv {
        match csv_files::write_all(
            prefix,
            outputs.args.csv_full_history,
            &result.kinds,
            &result.stats,
            &extras.history,
        ) {
            Ok(_) => eprintln!("wrote {}_*.csv", prefix.display()),
            Err(e) => csv_error = Some(e),
        }
    }
    let done = Finished {
        result: result.clone(),
        extras,
        csv: None,
        csv_error,
    };
    finish(done, outputs)
}

/// `gsai-load report RESULT.json --html FILE --csv PREFIX`.
pub fn report_cmd(args: &ReportArgs) -> anyhow::Result<u8> {
    if let Some(log) = &args.requests_log {
        let summary = crate::observe::requests_log::summarize(log)?;
        print!("{}", crate::observe::requests_log::table(&summary));
    }
    let Some(result_path) = &args.result else {
        return Ok(0);
    };
    if args.html.is_none() && args.csv.is_none() && args.requests_log.is_none() {
        anyhow::bail!("gsai-load report: nothing to write: pass --html FILE and/or --csv PREFIX");
    }
    let doc = json::read(result_path)?;
    let (result, extras) = json::rebuild(&doc)
        .with_context(|| format!("{}: cannot rebuild the result", result_path.display()))?;
    print!("{}", console::summary(&result));
    print!(
        "{}",
        report::server::console(&result, &extras.server_metrics)
    );
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
                result_path.display(),
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
