//! The headless test loop, the same for a local engine and a distributed master: a live
//! console line at `--print-every`, the outputs watching the snapshots (CSV history, threshold
//! aborts), the first signal stopping and the second cancelling through the one
//! [`RunStopper`](crate::driver::RunStopper), then the summary and the files.

use super::outputs::{self, Outputs};
use super::signals::Signals;
use crate::driver::Running;
use crate::report;
use crate::report::csv_files::CsvFiles;
use std::time::{Duration, Instant};

/// Drives `running` to its end headless; `csv` comes from [`outputs::prepare`], called before
/// the test started so a bad path fails first. Returns the exit code.
pub async fn drive(
    running: Running,
    csv: Option<CsvFiles>,
    print_every_s: f64,
    outputs: &Outputs,
    signals: &Signals,
) -> anyhow::Result<u8> {
    let done = observe(running, csv, print_every_s, outputs, signals).await?;
    outputs::finish(done, outputs)
}

/// As [`drive`], up to the end of the test: returns what it measured and gathered, without the
/// summary and the files (`--repeat` writes them once, for all its runs).
pub async fn observe(
    running: Running,
    csv: Option<CsvFiles>,
    print_every_s: f64,
    outputs: &Outputs,
    signals: &Signals,
) -> anyhow::Result<outputs::Finished> {
    let printer = (print_every_s > 0.0).then(|| live_console(&running, print_every_s));
    let note = if running.workers().is_some() {
        "stopping: workers finish in-flight requests (up to --stop-timeout)"
    } else {
        "stopping: waiting for in-flight requests (up to --stop-timeout)"
    };
    let (stopper, canceller) = (running.stopper(), running.stopper());
    let stop = signals.on_stop(note, move || stopper.stop(), move || canceller.cancel_now());
    let stopper = running.stopper();
    let snaps = running.subscribe();
    let result = async move { running.wait().await.map_err(anyhow::Error::from) };
    let done = outputs::run_observed(snaps, move || stopper.stop(), result, csv, outputs).await;
    stop.abort();
    if let Some(p) = printer {
        p.abort();
    }
    done
}

/// Prints the live table every `every_s` seconds (with the workers' count over a master).
fn live_console(running: &Running, every_s: f64) -> tokio::task::JoinHandle<()> {
    let every = Duration::from_secs_f64(every_s);
    let mut snaps = running.subscribe();
    let workers = running.workers();
    tokio::spawn(async move {
        let mut last = Instant::now();
        while snaps.changed().await.is_ok() {
            if last.elapsed() + Duration::from_millis(100) < every {
                continue;
            }
            last = Instant::now();
            let snap = snaps.borrow_and_update().clone();
            let mut text = report::console::live(&snap.kinds, &snap);
            if let Some(w) = &workers {
                let w = w.borrow().clone();
                let missing = w.iter().filter(|w| w.missing).count();
                text.push_str(&format!("workers: {} ({missing} missing)\n", w.len()));
            }
            eprint!("{text}");
        }
    })
}
