//! The HTTP API behind the page (documented in docs/web-api.md): Locust's endpoints and field
//! names (`/swarm`, `/stop`, `/stats/reset`, `/stats/requests`, ...) plus what Locust lacks for
//! LLM tests (`/stats/llm`, `/stats/history`, `/result.json`, `/users`, `/config`).
//!
//! Handlers only translate between HTTP and the [`Controller`]; no figure is computed twice:
//! summaries come from [`crate::report::json`], and downloads from the report writers.

use super::downloads::{self, Download};
use super::form::{parse_field, SwarmForm};
use super::state::{Controller, Started, UiState, View, WebError};
use crate::cluster::master::MasterError;
use crate::cluster::nodes::WorkerView;
use crate::engine::StopReason;
use crate::metrics::{FailureKind, KindCounts, KindSummary, MetricId, NameStats, TimelinePoint};
use crate::report::json;
use crate::report::phases::Phases;
use crate::workload::ApiKind;
use axum::extract::rejection::FormRejection;
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// A `{"success": false, "message": ...}` answer with a status code.
pub(super) fn failure(status: StatusCode, message: impl Into<String>) -> Response {
    let message: String = message.into();
    (status, Json(json!({"success": false, "message": message}))).into_response()
}

fn web_error(e: WebError) -> Response {
    let status = match e {
        WebError::NotRunning
        | WebError::Stopping
        | WebError::Master(MasterError::NoWorkers { .. } | MasterError::Busy) => {
            StatusCode::CONFLICT
        }
        _ => StatusCode::BAD_REQUEST,
    };
    failure(status, e.to_string())
}

fn ok(message: impl Into<String>) -> Response {
    let message: String = message.into();
    Json(json!({"success": true, "message": message})).into_response()
}

/// Rounds to 0.01: enough for ms and rates, and keeps the payload small.
fn r2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn ms(us: Option<u64>) -> Option<f64> {
    us.map(|v| r2(v as f64 / 1000.0))
}

/// `POST /swarm`: starts a test, or changes the running test's users and spawn rate.
pub async fn swarm(
    State(c): State<Controller>,
    form: Result<Form<SwarmForm>, FormRejection>,
) -> Response {
    let form = match form {
        Ok(Form(f)) => f,
        Err(e) => return failure(StatusCode::BAD_REQUEST, format!("bad form: {e}")),
    };
    let req = match form.to_request(&c) {
        Ok(r) => r,
        Err(e) => return web_error(e),
    };
    let (users, rate) = (req.users, req.spawn_rate);
    match c.swarm(req) {
        Ok(Started::New {
            run_id,
            host,
            token_withheld,
        }) => Json(json!({
            "success": true,
            "message": match token_withheld {
                None => format!("Swarming started: {users} users at {rate}/s against {host}"),
                Some(n) => format!("Swarming started: {users} users at {rate}/s against {host} ({n})"),
            },
            "host": host,
            "run_id": run_id,
        }))
        .into_response(),
        Ok(Started::Edited { host }) => Json(json!({
            "success": true,
            "message": format!("Users changed to {users} (spawn rate {rate}/s); host, model, run time and API apply to the next test"),
            "host": host,
        }))
        .into_response(),
        Err(e) => web_error(e),
    }
}

/// `POST /users`: changes the running test's users (and spawn rate); never starts a test.
pub async fn users(
    State(c): State<Controller>,
    form: Result<Form<SwarmForm>, FormRejection>,
) -> Response {
    let form = match form {
        Ok(Form(f)) => f,
        Err(e) => return failure(StatusCode::BAD_REQUEST, format!("bad form: {e}")),
    };
    let d = c.defaults();
    let parsed = parse_field(
        "user_count",
        form.user_count.as_deref(),
        0,
        "a whole number",
    )
    .and_then(|u| {
        parse_field(
            "spawn_rate",
            form.spawn_rate.as_deref(),
            d.spawn_rate,
            "a number",
        )
        .map(|r| (u, r))
    });
    match parsed.and_then(|(u, r)| c.set_users(u, r).map(|host| (u, r, host))) {
        Ok((u, r, host)) => Json(json!({
            "success": true,
            "message": format!("Users changed to {u} (spawn rate {r}/s)"),
            "host": host,
        }))
        .into_response(),
        Err(e) => web_error(e),
    }
}

/// `GET /stop`.
pub async fn stop(State(c): State<Controller>) -> Response {
    match c.stop() {
        Ok(()) => ok("Test stopped"),
        Err(e) => web_error(e),
    }
}

/// `GET /stats/reset`.
pub async fn reset(State(c): State<Controller>) -> Response {
    match c.reset_stats() {
        Ok(()) => ok("Statistics reset"),
        Err(e) => web_error(e),
    }
}

/// One row of `/stats/requests` (Locust's field names, then the LLM ones). Times in ms;
/// `null` where there is no sample yet.
#[derive(Debug, Serialize)]
pub struct StatsRow {
    method: String,
    name: String,
    num_requests: u64,
    num_failures: u64,
    num_cancelled: u64,
    median_response_time: Option<f64>,
    avg_response_time: Option<f64>,
    min_response_time: Option<f64>,
    max_response_time: Option<f64>,
    ninetieth_response_time: Option<f64>,
    #[serde(rename = "response_time_percentile_0.95")]
    p95_response_time: Option<f64>,
    ninety_ninth_response_time: Option<f64>,
    current_rps: f64,
    current_fail_per_sec: f64,
    avg_content_length: f64,
    ttft_p50_ms: Option<f64>,
    ttft_p95_ms: Option<f64>,
    tpot_p50_ms: Option<f64>,
    output_tokens: u64,
    output_tokens_per_s: f64,
}

fn stats_row(method: &str, name: &str, s: &NameStats, rates: super::Rates) -> StatsRow {
    let rt = s.metric(MetricId::ResponseTime);
    StatsRow {
        method: method.to_string(),
        name: name.to_string(),
        num_requests: s.requests,
        num_failures: s.failures,
        num_cancelled: s.cancelled,
        median_response_time: ms(rt.quantile(0.5)),
        avg_response_time: rt.mean().map(|v| r2(v / 1000.0)),
        min_response_time: ms(rt.min()),
        max_response_time: ms(rt.max()),
        ninetieth_response_time: ms(rt.quantile(0.9)),
        p95_response_time: ms(rt.quantile(0.95)),
        ninety_ninth_response_time: ms(rt.quantile(0.99)),
        current_rps: r2(rates.rps),
        current_fail_per_sec: r2(rates.fps),
        avg_content_length: if s.requests > 0 {
            r2(s.content_bytes as f64 / s.requests as f64)
        } else {
            0.0
        },
        ttft_p50_ms: ms(s.metric(MetricId::Ttft).quantile(0.5)),
        ttft_p95_ms: ms(s.metric(MetricId::Ttft).quantile(0.95)),
        tpot_p50_ms: ms(s.metric(MetricId::Tpot).quantile(0.5)),
        output_tokens: s.metric(MetricId::OutputTokens).sum(),
        output_tokens_per_s: r2(rates.tokens_per_s),
    }
}

/// One row of the failures table (Locust's `errors`).
#[derive(Debug, Serialize)]
pub struct ErrorRow {
    method: String,
    name: String,
    /// The failure kind (`http_status`, `timeout`, ...).
    kind: FailureKind,
    error: String,
    occurrences: u64,
    first_seen_unix_s: f64,
    last_seen_unix_s: f64,
}

/// `GET /stats/requests`: the live table, small enough to poll every second.
#[derive(Debug, Serialize)]
pub struct StatsResponse {
    state: UiState,
    run_id: u64,
    stop_reason: Option<StopReason>,
    stop_reason_text: Option<&'static str>,
    user_count: u64,
    target_user_count: u64,
    in_flight: u64,
    elapsed_s: f64,
    host: Option<String>,
    model: Option<String>,
    api: Option<ApiKind>,
    total_rps: f64,
    total_fail_per_sec: f64,
    fail_ratio: f64,
    total_avg_response_time: Option<f64>,
    total_output_tokens_per_s: f64,
    current_response_time_percentiles: BTreeMap<&'static str, f64>,
    current_ttft_percentiles: BTreeMap<&'static str, f64>,
    /// Every metric of the catalogue over the whole test (Aggregated), as in the JSON result's
    /// `metrics`: keyed `ttft_ms`, `schedule_lag_ms`, ... in display units.
    metrics: json::Metrics,
    stats: Vec<StatsRow>,
    errors: Vec<ErrorRow>,
    /// Failures per kind that occurred, with each kind's meaning.
    error_kinds: Vec<KindSummary>,
    workers: Vec<WorkerRow>,
    worker_count: usize,
    /// The test's stage starts and warm-up, for the charts; `null` before its first point.
    phases: Option<Phases>,
    /// The load generator's self-check (the worst worker's over a master).
    generator: Option<crate::observe::health::HealthNow>,
}

/// One worker of `/stats/requests` (Locust's field names first, then ours).
#[derive(Debug, Serialize)]
pub struct WorkerRow {
    id: String,
    state: String,
    user_count: u64,
    /// Percent of one core.
    cpu_usage: f64,
    /// Resident memory, bytes (0 when the worker does not say).
    memory_usage: u64,
    index: u64,
    heartbeat_age_s: f64,
    missing: bool,
    requests: u64,
}

fn worker_row(w: &WorkerView) -> WorkerRow {
    WorkerRow {
        id: w.id.clone(),
        state: w.state.clone(),
        user_count: w.users,
        cpu_usage: r2(w.cpu_percent),
        memory_usage: w.memory_bytes.unwrap_or(0),
        index: w.index,
        heartbeat_age_s: r2(w.heartbeat_age_s),
        missing: w.missing,
        requests: w.requests,
    }
}

fn kind(view: &View, i: usize) -> (String, String) {
    view.kinds.get(i).map_or_else(
        || (String::new(), format!("#{i}")),
        |k| (k.method.clone(), k.name.clone()),
    )
}

/// Builds the `/stats/requests` answer from a view.
pub fn stats_response(view: &View) -> StatsResponse {
    let total = view.stats.total();
    let aggregated_rates = view.rates.last().copied().unwrap_or_default();
    let mut stats: Vec<StatsRow> = view
        .stats
        .rows
        .iter()
        .enumerate()
        .map(|(i, row)| {
            let (method, name) = kind(view, i);
            let rates = view.rates.get(i).copied().unwrap_or_default();
            stats_row(&method, &name, row, rates)
        })
        .collect();
    stats.push(stats_row("", "Aggregated", &total, aggregated_rates));
    let errors = view
        .stats
        .failures_sorted()
        .into_iter()
        .map(|(k, e)| {
            let (method, name) = kind(view, k.kind);
            ErrorRow {
                method,
                name,
                kind: k.cause,
                error: k.message.clone(),
                occurrences: e.count,
                first_seen_unix_s: e.first_seen_unix_s,
                last_seen_unix_s: e.last_seen_unix_s,
            }
        })
        .collect();
    let p = &view.point;
    let live = matches!(view.state, UiState::Spawning | UiState::Running);
    let pct = |p50: f64, p95: f64| -> BTreeMap<&'static str, f64> {
        if !live {
            return BTreeMap::new();
        }
        BTreeMap::from([
            ("response_time_percentile_0.5", r2(p50)),
            ("response_time_percentile_0.95", r2(p95)),
        ])
    };
    StatsResponse {
        generator: view.generator,
        state: view.state,
        run_id: view.run_id,
        stop_reason: view.stop_reason,
        stop_reason_text: view.stop_reason.map(StopReason::describe),
        user_count: view.users,
        target_user_count: view.target_users,
        in_flight: view.in_flight,
        elapsed_s: r2(view.elapsed_s),
        host: view.plan.as_ref().map(|p| p.host.clone()),
        model: view.plan.as_ref().map(|p| p.model.clone()),
        api: view.plan.as_ref().map(|p| p.api),
        total_rps: r2(aggregated_rates.rps),
        total_fail_per_sec: r2(aggregated_rates.fps),
        fail_ratio: if total.requests > 0 {
            total.failures as f64 / total.requests as f64
        } else {
            0.0
        },
        total_avg_response_time: total
            .metric(MetricId::ResponseTime)
            .mean()
            .map(|v| r2(v / 1000.0)),
        total_output_tokens_per_s: r2(aggregated_rates.tokens_per_s),
        current_response_time_percentiles: pct(p.e2e_p50_ms, p.e2e_p95_ms),
        current_ttft_percentiles: pct(p.ttft_p50_ms, p.ttft_p95_ms),
        metrics: json::metrics(&total),
        stats,
        errors,
        error_kinds: KindCounts::of(view.stats.failures.iter().map(|(k, e)| (k.cause, e.count)))
            .summary(),
        workers: view
            .workers
            .as_deref()
            .unwrap_or_default()
            .iter()
            .map(worker_row)
            .collect(),
        // Locust's count: the workers a test can use (missing ones and those that quit are
        // listed but not counted).
        worker_count: view
            .workers
            .as_deref()
            .unwrap_or_default()
            .iter()
            .filter(|w| w.available())
            .count(),
        phases: phases(view),
    }
}

/// The phases of the view's test. Its start comes from the latest point: the collector stamps
/// a point's Unix time and its seconds since the start together, so their difference is the
/// instant stages and warm-up count from (to microseconds; rounded to 10 ms, so that it stays
/// the same from one poll to the next).
fn phases(view: &View) -> Option<Phases> {
    let plan = view.plan.as_ref()?;
    let p = &view.point;
    (p.unix_s > 0.0).then(|| Phases::of(plan, r2(p.unix_s - p.elapsed_s)))
}

/// `GET /stats/requests`.
pub async fn stats_requests(State(c): State<Controller>) -> Json<StatsResponse> {
    Json(stats_response(&c.view()))
}

/// `GET /stats/llm`: every LLM metric (p50/p90/p95/p99, mean, min, max) per row and Aggregated.
pub async fn stats_llm(State(c): State<Controller>) -> Json<Value> {
    let view = c.view();
    let total = view.stats.total();
    let requests: Vec<json::RequestRow> = view
        .stats
        .rows
        .iter()
        .enumerate()
        .map(|(i, row)| {
            let (method, name) = kind(&view, i);
            json::RequestRow {
                method,
                name,
                summary: json::summary(row),
                metrics: json::metrics(row),
            }
        })
        .collect();
    Json(json!({
        "state": view.state,
        "run_id": view.run_id,
        "summary": json::summary(&total),
        "metrics": json::metrics(&total),
        "requests": requests,
    }))
}

/// Query of `GET /stats/history`.
#[derive(Debug, Deserialize)]
pub struct HistoryQuery {
    /// Only points strictly after this Unix time (seconds); 0 or absent for all.
    since: Option<f64>,
}

/// Answer of `GET /stats/history`.
#[derive(Debug, Serialize)]
pub struct HistoryResponse {
    run_id: u64,
    points: Vec<TimelinePoint>,
}

/// `GET /stats/history?since=<unix_s>`: only the timeline points after `since`.
pub async fn stats_history(
    State(c): State<Controller>,
    Query(q): Query<HistoryQuery>,
) -> Json<HistoryResponse> {
    let (run_id, points) = c.history(q.since.unwrap_or(0.0));
    Json(HistoryResponse { run_id, points })
}

/// `GET /config`: the form's prefilled values and what the page can offer. Never the token.
pub async fn config(State(c): State<Controller>) -> Json<Value> {
    let d = c.defaults();
    Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "defaults": {
            "user_count": d.users,
            "spawn_rate": d.spawn_rate,
            "host": d.host.clone().unwrap_or_default(),
            "model": d.model.clone().unwrap_or_default(),
            "run_time": d.run_time.map(|t| humantime::format_duration(t).to_string()).unwrap_or_default(),
            "api": d.api,
        },
        "apis": ["openwebui", "openai"],
        "mode": if c.runner().is_distributed() { "master" } else { "local" },
        "master_port": c.runner().master_port(),
        "downloads": downloads::catalogue(),
    }))
}

/// The well-known `--server-metrics` series of the current or last test, for the page's charts.
pub async fn stats_server_metrics(State(c): State<Controller>) -> Json<Value> {
    let result = c.result();
    Json(
        c.server_metrics()
            .page_data(result.as_ref().map(|(r, _)| r.as_ref())),
    )
}

/// Serves one download of the current or last test.
pub async fn download(c: Controller, which: Download) -> Response {
    let Some((result, in_progress)) = c.result() else {
        return failure(
            StatusCode::NOT_FOUND,
            "no test has run yet: start one, then download its results",
        );
    };
    let server = c.server_metrics().current();
    match downloads::render(which, &result, &c.history_ticks(), &server, in_progress) {
        Ok(file) => (
            [
                (header::CONTENT_TYPE, file.content_type.to_string()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"{}\"", file.filename),
                ),
                (header::CACHE_CONTROL, "no-store".to_string()),
            ],
            file.body,
        )
            .into_response(),
        Err(e) => failure(StatusCode::NOT_IMPLEMENTED, e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Plan;
    use crate::metrics::StatsSet;
    use std::sync::Arc;

    fn view(plan: Option<Plan>, unix_s: f64, elapsed_s: f64) -> View {
        View {
            state: UiState::Running,
            run_id: 1,
            plan,
            users: 0,
            target_users: 0,
            in_flight: 0,
            elapsed_s,
            point: TimelinePoint {
                unix_s,
                elapsed_s,
                ..TimelinePoint::default()
            },
            kinds: Arc::from(Vec::new()),
            stats: StatsSet::default(),
            rates: vec![super::super::Rates::default()],
            stop_reason: None,
            workers: None,
            generator: None,
        }
    }

    #[test]
    fn stats_carry_the_phases_from_the_test_start() {
        let mut plan = Plan::new("http://127.0.0.1:1", "m");
        plan.rate = Some(1.0);
        plan.stages = Some("10@5s,20@5s".parse().unwrap());
        plan.warmup = Some(std::time::Duration::from_secs(3));
        let v =
            serde_json::to_value(stats_response(&view(Some(plan.clone()), 1012.5, 12.5))).unwrap();
        assert_eq!(
            v["phases"],
            json!({
                "started_unix_s": 1000.0,
                "markers": [{"x": 1000.0, "label": "→ 10 req/s"}, {"x": 1005.0, "label": "→ 20 req/s"}],
                "bands": [{"from": 1000.0, "to": 1003.0, "label": "warm-up (excluded)"}],
            })
        );
        // Before the first point, or the first test, there is no start to count from.
        for early in [view(Some(plan), 0.0, 0.0), view(None, 1012.5, 12.5)] {
            assert_eq!(
                serde_json::to_value(stats_response(&early)).unwrap()["phases"],
                Value::Null
            );
        }
    }
}
