//! The web UI's HTTP API in-process against the mock: start, watch, edit, stop, download, errors,
//! Basic auth, and that the token never appears in any answer.

use crate::harness::*;
use crate::http::{get, post_form, send, Resp};
use gsai_load::config::{Plan, Secret, WaitTime};
use gsai_load::mock::MockServer;
use gsai_load::web::downloads::Download;
use gsai_load::web::{self, Controller, FormDefaults, Login, WebState};
use gsai_load::workload::ApiKind;
use hyper::Method;
use serde_json::Value;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// A web UI served on 127.0.0.1:0; shuts down on drop.
pub struct Ui {
    pub addr: SocketAddr,
    shutdown: CancellationToken,
}

impl Drop for Ui {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// The command line's plan as a test uses it: the mock's token, a short wait between requests.
pub fn template() -> Plan {
    let mut p = Plan::new("http://unused.invalid", "unused");
    p.token = Some(Secret::new(TOKEN));
    p.wait = WaitTime::Constant { s: 0.05 };
    p.stop_timeout = Duration::from_secs(5);
    p
}

pub fn defaults(mock: Option<&MockServer>) -> FormDefaults {
    FormDefaults {
        users: 2,
        spawn_rate: 50.0,
        host: mock.map(|m| m.base_url()),
        model: mock.map(|_| "test-model".to_string()),
        run_time: None,
        api: ApiKind::Openwebui,
    }
}

pub async fn start_ui(defaults: FormDefaults, login: Option<Login>) -> Ui {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let shutdown = CancellationToken::new();
    // As the binary does: the token is configured with the host (GSAI_HOST), and goes there only.
    let mut plan = template();
    if let Some(host) = &defaults.host {
        plan.host = host.clone();
    }
    let state = WebState {
        controller: Controller::new(plan, defaults),
        login,
    };
    tokio::spawn(web::serve(listener, state, shutdown.clone()));
    Ui { addr, shutdown }
}

/// Every answer a test saw, to check the token never appears.
#[derive(Default)]
struct Seen(Vec<String>);

impl Seen {
    fn keep(&mut self, r: Resp) -> Resp {
        self.0.push(r.body.clone());
        for (_, v) in &r.headers {
            self.0
                .push(String::from_utf8_lossy(v.as_bytes()).into_owned());
        }
        r
    }

    fn assert_no_token(&self) {
        for body in &self.0 {
            assert!(!body.contains(TOKEN), "the token leaked: {body}");
        }
    }
}

fn aggregated(stats: &Value) -> &Value {
    stats["stats"]
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["name"] == "Aggregated"))
        .unwrap_or_else(|| panic!("no Aggregated row: {stats}"))
}

/// Polls `/stats/requests` until `done` holds; fails after `limit`.
async fn wait_for(
    addr: SocketAddr,
    seen: &mut Seen,
    limit: Duration,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + limit;
    loop {
        let s = seen.keep(get(addr, "/stats/requests").await).json();
        if done(&s) {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {s}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swarm_watch_edit_stop_and_download() {
    let mock = start_mock(fast_config()).await;
    let ui = start_ui(defaults(Some(&mock)), None).await;
    let addr = ui.addr;
    let mut seen = Seen::default();

    let s = seen.keep(get(addr, "/stats/requests").await).json();
    assert_eq!(
        (s["state"].as_str(), s["run_id"].as_u64()),
        (Some("ready"), Some(0))
    );
    assert_eq!(s["workers"], serde_json::json!([]));
    assert_eq!(seen.keep(get(addr, "/result.json").await).status, 404);

    // Start: host and model come from the defaults (GSAI_HOST / CHAT_MODEL).
    let r = seen.keep(post_form(addr, "/swarm", "user_count=2&spawn_rate=50").await);
    assert_eq!(r.status, 200, "{}", r.body);
    let j = r.json();
    assert_eq!(j["success"], true);
    assert_eq!(j["host"], mock.base_url());
    assert_eq!(j["run_id"], 1);

    let s = wait_for(addr, &mut seen, Duration::from_secs(10), "requests", |s| {
        aggregated(s)["num_requests"].as_u64() > Some(0)
    })
    .await;
    assert!(
        matches!(s["state"].as_str(), Some("spawning" | "running")),
        "{s}"
    );
    let row = &s["stats"][0];
    assert_eq!(
        (row["method"].as_str(), row["name"].as_str()),
        (Some("POST"), Some("/api/chat/completions"))
    );
    for field in [
        "num_failures",
        "median_response_time",
        "avg_response_time",
        "min_response_time",
        "max_response_time",
        "current_rps",
        "current_fail_per_sec",
        "avg_content_length",
        "ninetieth_response_time",
        "response_time_percentile_0.95",
        "ninety_ninth_response_time",
        "ttft_p50_ms",
        "ttft_p95_ms",
        "tpot_p50_ms",
        "output_tokens_per_s",
    ] {
        assert!(row.get(field).is_some(), "{field} missing: {row}");
    }
    assert!(row["ttft_p50_ms"].as_f64().unwrap() >= 5.0, "{row}");
    assert_eq!(s["errors"], serde_json::json!([]));

    // Edit while running: Locust's form posts to /swarm again; /users does the same.
    let r = seen.keep(post_form(addr, "/swarm", "user_count=4&spawn_rate=50").await);
    assert_eq!(r.json()["success"], true, "{}", r.body);
    wait_for(addr, &mut seen, Duration::from_secs(10), "4 users", |s| {
        s["user_count"] == 4
    })
    .await;
    let r = seen.keep(post_form(addr, "/users", "user_count=3&spawn_rate=50").await);
    assert_eq!(r.json()["success"], true, "{}", r.body);
    wait_for(addr, &mut seen, Duration::from_secs(10), "3 users", |s| {
        s["user_count"] == 3 && s["total_rps"].as_f64() > Some(0.0)
    })
    .await;

    // Reset: the counts start again from zero while the test goes on.
    let before = aggregated(&get(addr, "/stats/requests").await.json())["num_requests"]
        .as_u64()
        .unwrap();
    let r = seen.keep(get(addr, "/stats/reset").await);
    assert_eq!(r.json()["success"], true, "{}", r.body);
    wait_for(
        addr,
        &mut seen,
        Duration::from_secs(10),
        "reset counts",
        |s| aggregated(s)["num_requests"].as_u64() < Some(before) && s["state"] == "running",
    )
    .await;

    // History: everything from 0, then only what is newer.
    let h = seen.keep(get(addr, "/stats/history?since=0").await).json();
    let points = h["points"].as_array().expect("points");
    assert!(!points.is_empty(), "{h}");
    let newest = points.last().unwrap()["unix_s"].as_f64().unwrap();
    let h2 = seen
        .keep(get(addr, &format!("/stats/history?since={newest}")).await)
        .json();
    assert!(
        h2["points"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["unix_s"].as_f64().unwrap() > newest),
        "since={newest}: {h2}\nfirst call: {h}"
    );

    let llm = seen.keep(get(addr, "/stats/llm").await).json();
    assert!(
        llm["metrics"]["ttft_ms"]["count"].as_u64() > Some(0),
        "{llm}"
    );
    let live = seen.keep(get(addr, "/result.json").await);
    assert_eq!(live.status, 200);
    assert_eq!(live.json()["in_progress"], true);

    // Stop, then the final figures.
    let r = seen.keep(get(addr, "/stop").await);
    assert_eq!(r.json()["success"], true, "{}", r.body);
    let s = wait_for(addr, &mut seen, Duration::from_secs(15), "stopped", |s| {
        s["state"] == "stopped"
    })
    .await;
    assert_eq!(s["user_count"], 0);
    assert_eq!(
        (s["stop_reason"].as_str(), s["stop_reason_text"].as_str()),
        (Some("stopped"), Some("stopped"))
    );
    let requests = aggregated(&s)["num_requests"].as_u64().unwrap();
    assert!(requests > 0);
    assert_eq!(seen.keep(get(addr, "/stop").await).status, 409);
    assert_eq!(seen.keep(get(addr, "/stats/reset").await).status, 409);

    let r = seen.keep(get(addr, "/result.json").await);
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-disposition").starts_with("attachment"),
        "{:?}",
        r.headers
    );
    let doc = r.json();
    assert_eq!(doc["schema_version"], 1);
    assert_eq!(doc["in_progress"], false);
    assert_eq!(doc["stop_reason"], "stopped");
    assert_eq!(doc["summary"]["requests"].as_u64(), Some(requests));
    assert_eq!(doc["plan"]["token"], "[redacted]");
    assert!(
        requests < mock.counters().ok,
        "the reset forgot the first requests"
    );

    for which in Download::ALL {
        let r = seen.keep(get(addr, which.path()).await);
        if which.available() {
            assert_eq!(r.status, 200, "{}: {}", which.path(), r.body);
            assert!(!r.body.is_empty());
        } else {
            assert_eq!(r.status, 501, "{}: {}", which.path(), r.body);
            assert!(r.json()["message"]
                .as_str()
                .unwrap()
                .contains("/result.json"));
        }
    }

    // A new test starts from a clean slate, with its own id and timeline.
    let r = seen.keep(post_form(addr, "/swarm", "user_count=1&spawn_rate=10&run_time=1s").await);
    assert_eq!(r.json()["run_id"], 2, "{}", r.body);
    let h = seen.keep(get(addr, "/stats/history?since=0").await).json();
    assert_eq!(h["run_id"], 2);
    wait_for(
        addr,
        &mut seen,
        Duration::from_secs(15),
        "run time end",
        |s| s["state"] == "stopped" && s["run_id"] == 2,
    )
    .await;
    let s = seen.keep(get(addr, "/stats/requests").await).json();
    assert_eq!(s["stop_reason_text"], "run time elapsed");
    let doc = seen.keep(get(addr, "/result.json").await).json();
    assert_eq!(doc["stop_reason"], "run_time");

    seen.keep(get(addr, "/config").await);
    seen.keep(get(addr, "/").await);
    seen.assert_no_token();
    mock.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_errors_name_what_to_fix() {
    let mock = start_mock(fast_config()).await;
    let ui = start_ui(defaults(None), None).await;
    let addr = ui.addr;
    let host = format!("host={}", mock.base_url());
    for (form, status, needle) in [
        ("user_count=1", 400, "no host"),
        (host.as_str(), 400, "no model"),
        ("user_count=abc&host=http://x&model=m", 400, "user_count"),
        ("user_count=0&host=http://x&model=m", 400, "user_count"),
        ("spawn_rate=-1&host=http://x&model=m", 400, "spawn_rate"),
        ("run_time=soon&host=http://x&model=m", 400, "run_time"),
        ("run_time=0&host=http://x&model=m", 400, "run_time"),
        ("api=grpc&host=http://x&model=m", 400, "api"),
        ("host=ftp://x&model=m", 400, "GSAI_HOST"),
        // Bounds: a port outside 1-65535, absurd users or run time name the field and the maximum.
        ("host=http://h:0&model=m", 400, "a port is 1 to 65535"),
        ("host=http://h:70000&model=m", 400, "a port is 1 to 65535"),
        (
            "user_count=1000000000000&host=http://x&model=m",
            400,
            "user_count: 1000000000000 is more than the maximum of 1000000 users",
        ),
        (
            "run_time=100000000000000h&host=http://x&model=m",
            400,
            "run_time: ",
        ),
    ] {
        let r = post_form(addr, "/swarm", form).await;
        assert_eq!(r.status, status, "{form}: {}", r.body);
        let j = r.json();
        assert_eq!(j["success"], false, "{form}");
        let message = j["message"].as_str().unwrap();
        assert!(message.contains(needle), "{form}: {message}");
    }
    let r = post_form(addr, "/users", "user_count=3").await;
    assert_eq!(r.status, 409, "{}", r.body);
    let r = send(
        addr,
        Method::POST,
        "/swarm",
        &[],
        Some(("application/json", r#"{"user_count": 1}"#.into())),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(get(addr, "/stats/requests").await.json()["state"], "ready");

    // The form's values win over the (missing) defaults; the openai API is honoured.
    let form = format!("user_count=1&spawn_rate=5&{host}&model=test-model&api=openai&run_time=1");
    let r = post_form(addr, "/swarm", &form).await;
    assert_eq!(r.json()["success"], true, "{}", r.body);
    let s = get(addr, "/stats/requests").await.json();
    assert_eq!(s["api"], "openai");
    assert_eq!(s["stats"][0]["name"], "/v1/chat/completions");
    let r = post_form(addr, "/swarm", &form).await;
    assert_eq!(
        r.json()["success"],
        true,
        "a second post while running edits: {}",
        r.body
    );
    let _ = get(addr, "/stop").await;
    mock.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_guards_every_page_and_call() {
    let ui = start_ui(defaults(None), Some("admin:s3cret".parse().unwrap())).await;
    let addr = ui.addr;
    let paths = [
        "/",
        "/assets/web.js",
        "/assets/charts.js",
        "/config",
        "/stats/requests",
        "/stop",
        "/result.json",
    ];
    for path in paths {
        let r = get(addr, path).await;
        assert_eq!(r.status, 401, "{path}");
        assert!(r.header("www-authenticate").starts_with("Basic"), "{path}");
    }
    let r = post_form(
        addr,
        "/swarm",
        "user_count=1&host=http://127.0.0.1:9&model=m",
    )
    .await;
    assert_eq!(r.status, 401);
    // "admin:s3cret" and a wrong password, base64-encoded.
    let good = [("authorization", "Basic YWRtaW46czNjcmV0")];
    let bad = [("authorization", "Basic YWRtaW46d3Jvbmc=")];
    assert_eq!(send(addr, Method::GET, "/", &bad, None).await.status, 401);
    let r = send(addr, Method::GET, "/", &good, None).await;
    assert_eq!(r.status, 200);
    assert!(r.body.contains("<title>gsai-load</title>"));
    let r = send(addr, Method::GET, "/stats/requests", &good, None).await;
    assert_eq!(r.json()["state"], "ready");
    assert_eq!(get(addr, "/stats/requests").await.status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_and_assets_are_embedded_and_config_has_no_token() {
    let mock = start_mock(fast_config()).await;
    let ui = start_ui(defaults(Some(&mock)), None).await;
    let addr = ui.addr;
    for (path, content_type, needle) in [
        ("/", "text/html", "assets/web.js"),
        ("/assets/web.css", "text/css", ".topbar"),
        ("/assets/web.js", "text/javascript", "stats/history?since="),
        ("/assets/charts.js", "text/javascript", "GsaiCharts"),
    ] {
        let r = get(addr, path).await;
        assert_eq!(r.status, 200, "{path}");
        assert!(r.header("content-type").starts_with(content_type), "{path}");
        assert!(r.body.contains(needle), "{path} lacks {needle}");
        assert!(!r.body.contains(TOKEN));
    }
    let c = get(addr, "/config").await;
    assert!(!c.body.contains(TOKEN));
    let c = c.json();
    assert_eq!(c["defaults"]["host"], mock.base_url());
    assert_eq!(c["defaults"]["model"], "test-model");
    assert_eq!(c["defaults"]["user_count"], 2);
    assert_eq!(
        c["downloads"].as_array().map(Vec::len),
        Some(Download::ALL.len())
    );
    assert_eq!(get(addr, "/nope").await.status, 404);
    mock.shutdown().await;
}

/// The failures tab's data: each row names its kind, and a per-kind summary counts them with
/// each kind's meaning.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_carry_their_kind_and_a_per_kind_summary() {
    let mock = start_mock_failing(1.0).await;
    let ui = start_ui(defaults(Some(&mock)), None).await;
    let addr = ui.addr;
    let mut seen = Seen::default();
    let r = seen.keep(post_form(addr, "/swarm", "user_count=2&spawn_rate=50").await);
    assert_eq!(r.status, 200, "{}", r.body);
    let s = wait_for(addr, &mut seen, Duration::from_secs(10), "failures", |s| {
        s["errors"].as_array().is_some_and(|e| !e.is_empty())
    })
    .await;
    let errors = s["errors"].as_array().unwrap();
    assert!(errors.iter().all(|e| e["kind"] == "http_status"), "{s}");
    let occurrences: u64 = errors
        .iter()
        .map(|e| e["occurrences"].as_u64().unwrap())
        .sum();
    let kinds = s["error_kinds"].as_array().expect("error_kinds");
    assert_eq!(kinds.len(), 1, "{s}");
    assert_eq!(kinds[0]["kind"], "http_status");
    assert_eq!(kinds[0]["count"].as_u64(), Some(occurrences));
    assert_eq!(
        kinds[0]["meaning"].as_str(),
        Some(gsai_load::metrics::FailureKind::HttpStatus.meaning())
    );
    let _ = get(addr, "/stop").await;
    seen.assert_no_token();
    mock.shutdown().await;
}
