//! `--repeat N`: the same headless test N times, each on a fresh engine (nothing is kept between
//! runs but their results), then one summary and one set of files for all of them.
//!
//! What is written: the console summary, `--json`, `--html` and `--csv` pool every run's
//! requests (histograms merged, counts summed, timelines and the stats history one after the
//! other); the JSON's `repeats` key (and a table in the console and the HTML report) holds each
//! run's headline figures and, for each, the mean ± 95 % confidence interval over the runs.
//! A first Ctrl-C stops the current run and skips the rest; thresholds are judged on the pooled
//! requests; a `--threshold-abort` breach ends the repeats too.

use super::headless;
use super::outputs::{self, Outputs};
use super::Signals;
use crate::cli::RunArgs;
use crate::engine::{RunResult, StopReason};
use crate::report::repeat::{self, Repeats};
use crate::report::Extras;

/// Runs the test of `args` `n` times headless; returns the exit code.
pub async fn run(args: &RunArgs, n: u32, signals: &Signals) -> anyhow::Result<u8> {
    if args.outputs.requests_log.is_some() {
        anyhow::bail!("--requests-log cannot be combined with --repeat (each run would overwrite it): drop one of them");
    }
    let plan = args.to_plan()?;
    super::warn_about(&plan, true, None);
    let mut outputs = Outputs::new(args.json.as_deref(), &args.outputs);
    outputs.server_metrics = super::server_metrics(args, &plan)?;
    outputs::check_paths(&outputs)?;
    eprintln!(
        "gsai-load {}: {}, {n} runs (--repeat)",
        env!("CARGO_PKG_VERSION"),
        super::describe_plan(&plan)
    );
    let slo_set = !plan.slo.is_empty();
    let mut runs: Vec<(RunResult, Extras)> = Vec::new();
    for i in 1..=n {
        eprintln!("run {i}/{n}");
        let running = crate::driver::Runner::Local.start(plan.clone())?;
        let done = headless::observe(running, None, args.print_every, &outputs, signals).await?;
        let (result, extras) = (done.result, done.extras);
        let head = repeat::headline(&result.stats.total(), slo_set);
        eprintln!("run {i}/{n}: {}", one_line(&result, &head));
        let stopped = result.stop_reason == StopReason::Stopped || extras.threshold_abort.is_some();
        runs.push((result, extras));
        if stopped && i < n {
            eprintln!(
                "the test was stopped: the remaining {} run(s) are skipped",
                n - i
            );
            break;
        }
    }
    let Some((result, extras)) = pool(runs, n, &outputs) else {
        anyhow::bail!("--repeat {n}: no run took place");
    };
    outputs::finish_with(&result, extras, &outputs)
}

/// One line about a run: requests, rate and TTFT p50.
fn one_line(result: &RunResult, head: &std::collections::BTreeMap<String, f64>) -> String {
    let total = result.stats.total();
    let get = |k: &str| head.get(k).map_or("-".to_string(), |v| format!("{v:.2}"));
    format!(
        "{} requests ({} failed) in {:.1}s, {} req/s, {} tok/s, TTFT p50 {} ms ({})",
        total.requests,
        total.failures,
        result.duration_s,
        get("rps"),
        get("output_tokens_per_s"),
        get("ttft_p50_ms"),
        result.stop_reason.describe()
    )
}

/// All runs as one result (their requests pooled) and the extras with the repeats' statistics.
fn pool(
    runs: Vec<(RunResult, Extras)>,
    asked: u32,
    outputs: &Outputs,
) -> Option<(RunResult, Extras)> {
    let slo_set = runs.first().is_some_and(|(r, _)| !r.plan.slo.is_empty());
    let heads = runs
        .iter()
        .map(|(r, _)| repeat::headline(&r.stats.total(), slo_set))
        .collect();
    let mut iter = runs.into_iter();
    let (mut result, mut extras) = iter.next()?;
    for (r, e) in iter {
        result.stats.merge(&r.stats);
        result.timeline.extend(r.timeline);
        result.duration_s += r.duration_s;
        result.stop_reason = r.stop_reason;
        result.generator = r.generator.or(result.generator);
        extras.history.extend(e.history);
        extras.threshold_abort = extras.threshold_abort.or(e.threshold_abort);
        // The server's own metrics: the last run's.
        extras.server_metrics = e.server_metrics;
    }
    extras.thresholds =
        crate::criteria::threshold::judge_all(&outputs.args.thresholds, &result.stats.total());
    extras.repeats = Some(Repeats::of(heads, asked));
    Some((result, extras))
}
