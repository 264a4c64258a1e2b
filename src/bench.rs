//! `gsai-load bench`: measures the generator itself against the built-in mock, which runs as a
//! separate process so that the CPU and memory figures are the generator's alone.
//!
//! Two scenarios: `throughput` (zero-delay streams, no wait: how many requests and SSE events
//! a second the generator parses) and `fidelity` (thousands of users with realistic delays:
//! does the reported TTFT match what the mock was told to do).

use crate::config::{Plan, WaitTime};
use crate::engine;
use anyhow::{bail, Context};
use clap::Args;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Flags of `gsai-load bench`.
#[derive(Args, Debug, Clone)]
pub struct BenchArgs {
    /// Which scenario to run.
    #[arg(long, value_enum, default_value = "all")]
    pub scenario: Scenario,
    /// Concurrent users of the throughput scenario.
    #[arg(long, default_value_t = 64)]
    pub throughput_users: u64,
    /// Duration of the throughput scenario.
    #[arg(long, default_value = "10s", value_parser = crate::config::parse_duration)]
    pub throughput_time: Duration,
    /// Users of the fidelity scenario (each waits between(1,5) seconds, as the seed).
    #[arg(long, default_value_t = 10_000)]
    pub fidelity_users: u64,
    /// Duration of the fidelity scenario (including the ramp-up at 2,000 users/s).
    #[arg(long, default_value = "30s", value_parser = crate::config::parse_duration)]
    pub fidelity_time: Duration,
    /// Pin the mock process to this CPU (e.g. 1) and the generator to the others; needs `taskset`.
    #[arg(long)]
    pub pin_mock_cpu: Option<usize>,
    /// The mock sends no usage chunk, so the generator counts output tokens with its tokenizer
    /// (as against Open WebUI setups that send no usage).
    #[arg(long)]
    pub no_usage: bool,
    /// The mock compresses its streams with this coding, one flush per event.
    #[arg(long, value_enum, default_value = "off")]
    pub compress: crate::mock::Compress,
}

impl BenchArgs {
    /// The mock's flags for the scenario's timing `base`, plus the usage and compression switches.
    fn mock_args(&self, base: &[&str]) -> Vec<String> {
        let mut args: Vec<String> = base.iter().map(|s| s.to_string()).collect();
        if self.no_usage {
            args.push("--no-usage".into());
        }
        if let Some(v) = clap::ValueEnum::to_possible_value(&self.compress) {
            args.extend(["--compress".to_string(), v.get_name().to_string()]);
        }
        args
    }

    /// The generator asks for every coding it decodes when the mock compresses.
    fn plan(&self, mock: &MockProcess) -> Plan {
        let mut plan = Plan::new(mock.base_url.as_str(), "bench");
        if self.compress != crate::mock::Compress::Off {
            plan.accept_encoding = "gzip, deflate, br, zstd".into();
        }
        plan
    }
}

/// Benchmark scenarios.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// Zero-delay 20-token streams, no wait.
    Throughput,
    /// Many users, TTFT 200 ms, 10 tokens 100 ms apart, wait between(1,5).
    Fidelity,
    /// Both.
    All,
}

/// CPU seconds (user + system) used by this process so far.
fn cpu_seconds() -> f64 {
    // SAFETY: getrusage writes into the zeroed struct we pass and has no other effects.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
        return 0.0;
    }
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    t(ru.ru_utime) + t(ru.ru_stime)
}

/// Peak resident set size of this process, MiB (Linux `VmHWM`).
fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// The mock in a child process; killed on drop.
struct MockProcess {
    child: Child,
    base_url: String,
}

impl Drop for MockProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn_mock(args: &[String], pin: Option<usize>) -> anyhow::Result<MockProcess> {
    let exe = std::env::current_exe().context("locating the gsai-load binary")?;
    let mut cmd = match pin {
        Some(cpu) => {
            let mut c = Command::new("taskset");
            c.arg("-c").arg(cpu.to_string()).arg(&exe);
            c
        }
        None => Command::new(&exe),
    };
    cmd.arg("mock").arg("--bind").arg("127.0.0.1:0").args(args);
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting the mock process")?;
    let stderr = child.stderr.take().context("mock stderr")?;
    let mut lines = BufReader::new(stderr).lines();
    let base_url = loop {
        let Some(line) = lines.next() else {
            bail!("the mock process exited before announcing its address");
        };
        let line = line?;
        if let Some(rest) = line.split("listening on ").nth(1) {
            break rest
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    Ok(MockProcess { child, base_url })
}

async fn mock_events(base_url: &str) -> u64 {
    let Ok(target) = crate::client::Target::parse(base_url) else {
        return 0;
    };
    let Ok((mut sender, driver)) = target.connect().await else {
        return 0;
    };
    tokio::spawn(driver);
    let req = hyper::Request::get("/mock/counters")
        .header(hyper::header::HOST, target.authority.clone())
        .body(http_body_util::Full::new(bytes::Bytes::new()));
    let Ok(req) = req else { return 0 };
    let Ok(resp) = sender.send_request(req).await else {
        return 0;
    };
    let Ok(body) = http_body_util::BodyExt::collect(resp.into_body()).await else {
        return 0;
    };
    serde_json::from_slice::<serde_json::Value>(&body.to_bytes())
        .ok()
        .and_then(|v| v.get("events_sent").and_then(serde_json::Value::as_u64))
        .unwrap_or(0)
}

struct Figures {
    name: &'static str,
    rps: f64,
    events_per_s: f64,
    cpu_pct: f64,
    peak_rss_mib: f64,
    ttft_p50_ms: f64,
    ttft_p99_ms: f64,
    failures: u64,
    requests: u64,
}

async fn measure(name: &'static str, mock: &MockProcess, plan: Plan) -> anyhow::Result<Figures> {
    let events_before = mock_events(&mock.base_url).await;
    let cpu0 = cpu_seconds();
    let result = engine::start(plan)?.wait().await;
    let cpu = cpu_seconds() - cpu0;
    let events = mock_events(&mock.base_url)
        .await
        .saturating_sub(events_before);
    let total = result.stats.total();
    let span = total.span_s().max(1e-9);
    Ok(Figures {
        name,
        rps: total.requests as f64 / span,
        events_per_s: events as f64 / span,
        cpu_pct: cpu / result.duration_s.max(1e-9) * 100.0,
        peak_rss_mib: peak_rss_mib(),
        ttft_p50_ms: total.ttft_us.quantile(0.5).unwrap_or(0) as f64 / 1000.0,
        ttft_p99_ms: total.ttft_us.quantile(0.99).unwrap_or(0) as f64 / 1000.0,
        failures: total.failures,
        requests: total.requests,
    })
}

/// Runs the benchmark and prints its figures.
pub async fn run(args: BenchArgs) -> anyhow::Result<u8> {
    let pin_generator = args.pin_mock_cpu;
    if let Some(cpu) = pin_generator {
        let ncpu = std::thread::available_parallelism().map_or(1, |n| n.get());
        eprintln!("bench: mock pinned to CPU {cpu} of {ncpu}; generator unpinned");
    }
    let mut rows = Vec::new();
    eprintln!(
        "bench: mock {} usage, compression {:?}",
        if args.no_usage { "without" } else { "with" },
        args.compress
    );
    if matches!(args.scenario, Scenario::Throughput | Scenario::All) {
        let mock = spawn_mock(
            &args.mock_args(&["--ttft", "0ms", "--itl", "0ms", "--tokens", "20"]),
            args.pin_mock_cpu,
        )?;
        eprintln!(
            "bench throughput: {} users, no wait, 20-token zero-delay streams, {}",
            args.throughput_users,
            humantime::format_duration(args.throughput_time)
        );
        let mut plan = args.plan(&mock);
        plan.users = args.throughput_users;
        plan.spawn_rate = args.throughput_users as f64 * 100.0;
        plan.wait = WaitTime::None;
        plan.run_time = Some(args.throughput_time);
        plan.stop_timeout = Duration::from_secs(5);
        rows.push(measure("throughput", &mock, plan).await?);
    }
    if matches!(args.scenario, Scenario::Fidelity | Scenario::All) {
        let mock = spawn_mock(
            &args.mock_args(&["--ttft", "200ms", "--itl", "100ms", "--tokens", "10"]),
            args.pin_mock_cpu,
        )?;
        eprintln!(
            "bench fidelity: {} users (spawn 2000/s), wait between(1,5), TTFT 200 ms then 10 tokens 100 ms apart, {}",
            args.fidelity_users,
            humantime::format_duration(args.fidelity_time)
        );
        let mut plan = args.plan(&mock);
        plan.users = args.fidelity_users;
        plan.spawn_rate = 2000.0;
        plan.wait = WaitTime::Between {
            min_s: 1.0,
            max_s: 5.0,
        };
        plan.run_time = Some(args.fidelity_time);
        plan.stop_timeout = Duration::from_secs(5);
        rows.push(measure("fidelity", &mock, plan).await?);
    }
    println!(
        "{:<11} {:>10} {:>12} {:>12} {:>12} {:>10} {:>10} {:>9}",
        "scenario",
        "requests",
        "req/s",
        "events/s",
        "gen CPU %",
        "peak MiB",
        "TTFT p50",
        "TTFT p99"
    );
    for r in &rows {
        println!(
            "{:<11} {:>10} {:>12.0} {:>12.0} {:>12.0} {:>10.1} {:>8.1}ms {:>7.1}ms{}",
            r.name,
            r.requests,
            r.rps,
            r.events_per_s,
            r.cpu_pct,
            r.peak_rss_mib,
            r.ttft_p50_ms,
            r.ttft_p99_ms,
            if r.failures > 0 {
                format!("  ({} failed)", r.failures)
            } else {
                String::new()
            }
        );
    }
    if rows.iter().any(|r| r.name == "fidelity") {
        println!("fidelity: the mock's configured TTFT is 200.0 ms");
    }
    Ok(0)
}
