//! The real page in headless Chromium, driven through chromedriver's W3C WebDriver HTTP API:
//! fill the start form, start, see the table and the charts fill, stop. Screenshots are saved
//! to `<target>/tmp/web-e2e-*.png` for a human to look at.
//!
//! Needs `chromium` and `chromedriver` (Debian: `apt-get install chromium chromium-driver`), or
//! CHROME_BIN / CHROMEDRIVER pointing at them. Without them the test is skipped with a message,
//! except when CI=true, where it fails.

use crate::harness::*;
use crate::http::{base64_decode, send, Resp};
use crate::web::{defaults, start_ui};
use gsai_load::mock::{FaultRates, MockConfig};
use hyper::Method;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn in_path(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
        .find(|p| p.is_file())
}

fn tool(var: &str, names: &[&str]) -> Option<PathBuf> {
    match std::env::var_os(var) {
        Some(p) if Path::new(&p).is_file() => Some(PathBuf::from(p)),
        _ => in_path(names),
    }
}

/// chromedriver with one Chromium session; ends both on drop, even after a failed assertion.
struct Browser {
    driver: Child,
    addr: SocketAddr,
    session: String,
    _profile: tempfile::TempDir,
}

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

impl Browser {
    async fn start(chromedriver: &Path, chrome: &Path) -> Browser {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let driver = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(addr).is_err() {
            assert!(
                Instant::now() < deadline,
                "chromedriver did not listen on {addr}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = tempfile::tempdir().expect("profile dir");
        let args = [
            "--headless=new".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-extensions".into(),
            "--no-first-run".into(),
            "--force-device-scale-factor=1".into(),
            "--window-size=1440,1000".into(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": chrome, "args": args},
        }}});
        let r = wd(addr, Method::POST, "/session", Some(caps)).await;
        let session = r["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {r}"))
            .to_string();
        Browser {
            driver,
            addr,
            session,
            _profile: profile,
        }
    }

    async fn cmd(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let full = format!("/session/{}{path}", self.session);
        wd(self.addr, method, &full, body).await
    }

    async fn go(&self, url: &str) {
        self.cmd(Method::POST, "/url", Some(json!({"url": url})))
            .await;
    }

    async fn js(&self, script: &str) -> Value {
        self.cmd(
            Method::POST,
            "/execute/sync",
            Some(json!({"script": script, "args": []})),
        )
        .await
    }

    async fn find(&self, css: &str) -> String {
        let v = self
            .cmd(
                Method::POST,
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        v[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no element {css}: {v}"))
            .to_string()
    }

    async fn click(&self, css: &str) {
        let id = self.find(css).await;
        self.cmd(
            Method::POST,
            &format!("/element/{id}/click"),
            Some(json!({})),
        )
        .await;
    }

    async fn fill(&self, css: &str, text: &str) {
        let id = self.find(css).await;
        self.cmd(
            Method::POST,
            &format!("/element/{id}/clear"),
            Some(json!({})),
        )
        .await;
        self.cmd(
            Method::POST,
            &format!("/element/{id}/value"),
            Some(json!({"text": text})),
        )
        .await;
    }

    /// Runs `script` until it returns something truthy; fails after `limit`.
    async fn wait_js(&self, script: &str, limit: Duration, what: &str) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            let v = self.js(script).await;
            if !(v.is_null() || v == false || v == 0 || v == "") {
                return v;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn screenshot(&self, name: &str) -> PathBuf {
        self.screenshot_as(&format!("web-e2e-{name}.png")).await
    }

    /// Saves a screenshot as `<target>/tmp/<file>`.
    async fn screenshot_as(&self, file: &str) -> PathBuf {
        let v = self.cmd(Method::GET, "/screenshot", None).await;
        let png = base64_decode(v.as_str().expect("base64 PNG"));
        assert!(png.starts_with(b"\x89PNG"), "not a PNG");
        let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join(file);
        std::fs::write(&path, png).expect("write screenshot");
        eprintln!("screenshot: {}", path.display());
        path
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Closing the session ends Chromium; a blocking request is fine in drop.
        if let Ok(mut s) = TcpStream::connect(self.addr) {
            let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
            let req = format!(
                "DELETE /session/{} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
                self.session, self.addr
            );
            if s.write_all(req.as_bytes()).is_ok() {
                let _ = s.read_to_end(&mut Vec::new());
            }
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// One WebDriver call; returns its `value`, failing on a WebDriver error.
async fn wd(addr: SocketAddr, method: Method, path: &str, body: Option<Value>) -> Value {
    let r: Resp = send(
        addr,
        method,
        path,
        &[],
        body.map(|b| ("application/json", b.to_string())),
    )
    .await;
    let v = r.json();
    assert_eq!(r.status, 200, "WebDriver {path}: {v}");
    v["value"].clone()
}

const TABLE: &str = "return Array.from(document.querySelectorAll('#stats-table tbody tr'))
    .map(tr => Array.from(tr.cells).map(td => td.textContent));";

fn requests_in(table: &Value, name: &str) -> u64 {
    table
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r[1] == name))
        .and_then(|r| r[2].as_str())
        .map_or(0, |n| {
            n.replace([',', '.', ' ', '\u{a0}'], "")
                .parse()
                .unwrap_or(0)
        })
}

/// chromedriver and Chromium, or `None` (and a message) when they are not installed.
fn browser_tools() -> Option<(PathBuf, PathBuf)> {
    let tools = (
        tool("CHROMEDRIVER", &["chromedriver"]),
        tool(
            "CHROME_BIN",
            &[
                "chromium",
                "chromium-browser",
                "google-chrome",
                "google-chrome-stable",
            ],
        ),
    );
    let (Some(chromedriver), Some(chrome)) = tools else {
        let msg = "chromium and chromedriver are needed (apt-get install chromium chromium-driver, or set CHROME_BIN and CHROMEDRIVER)";
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{msg}");
        eprintln!("SKIPPED web e2e test: {msg}");
        return None;
    };
    Some((chromedriver, chrome))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_starts_watches_and_stops_a_test_in_chromium() {
    let Some((chromedriver, chrome)) = browser_tools() else {
        return;
    };
    let mock = start_mock(MockConfig {
        ttft: Duration::from_millis(80),
        itl: Duration::from_millis(8),
        tokens: 20,
        faults: FaultRates {
            http_500: 0.05,
            ..FaultRates::default()
        },
        ..fast_config()
    })
    .await;
    let ui = start_ui(defaults(Some(&mock)), None).await;
    let browser = Browser::start(&chromedriver, &chrome).await;
    browser.go(&format!("http://{}/", ui.addr)).await;

    // The start form opens by itself, prefilled from GSAI_HOST / CHAT_MODEL, without the token.
    browser
        .wait_js(
            "return document.getElementById('start-dialog').open",
            Duration::from_secs(10),
            "the start form",
        )
        .await;
    let host = browser
        .js("return document.querySelector('#start-form [name=host]').value")
        .await;
    assert_eq!(host, mock.base_url());
    let html = browser
        .js("return document.documentElement.outerHTML")
        .await;
    assert!(!html.as_str().unwrap().contains(TOKEN));
    browser.fill("#start-form [name=user_count]", "6").await;
    browser.fill("#start-form [name=spawn_rate]", "3").await;
    browser.fill("#start-form [name=model]", "test-model").await;
    browser.screenshot("form").await;
    browser.click("#start-submit").await;

    // The table fills and the status reaches running.
    browser
        .wait_js(
            "return !document.getElementById('start-dialog').open
                && document.getElementById('status').textContent === 'running'",
            Duration::from_secs(20),
            "status running",
        )
        .await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let table = browser.js(TABLE).await;
        if requests_in(&table, "Aggregated") >= 20 {
            break;
        }
        assert!(Instant::now() < deadline, "the table did not fill: {table}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    browser.screenshot("stats").await;

    // Charts: every chart draws a line once a few seconds of timeline exist.
    browser.click(".tabs button[data-tab=charts]").await;
    browser
        .wait_js(
            "return Array.from(document.querySelectorAll('.charts .chart')).every(c =>
                Array.from(c.querySelectorAll('svg path')).some(p => (p.getAttribute('d') || '').split('L').length > 8))",
            Duration::from_secs(30),
            "a line in every chart",
        )
        .await;
    browser
        .cmd(
            Method::POST,
            "/window/rect",
            Some(json!({"width": 1440, "height": 1400})),
        )
        .await;
    browser.screenshot("charts").await;

    // Failures (the mock answers 5% with 500).
    browser.click(".tabs button[data-tab=failures]").await;
    let failures = browser
        .wait_js(
            "return Array.from(document.querySelectorAll('#failures-table tbody td.message')).map(td => td.textContent).join('|')",
            Duration::from_secs(30),
            "a failure row",
        )
        .await;
    assert!(failures.as_str().unwrap().contains("500"), "{failures}");
    browser.screenshot("failures").await;

    // Edit the running test: fewer users.
    browser.click(".tabs button[data-tab=stats]").await;
    browser.click("#btn-edit").await;
    browser.fill("#edit-form [name=user_count]", "2").await;
    browser.click("#edit-form button[type=submit]").await;
    browser
        .wait_js(
            "return document.getElementById('fig-users').textContent === '2'",
            Duration::from_secs(20),
            "2 users after the edit",
        )
        .await;

    // Stop: the status reaches stopped and the table keeps the final figures.
    browser.click("#btn-stop").await;
    browser
        .wait_js(
            "return document.getElementById('status').textContent === 'stopped'",
            Duration::from_secs(20),
            "status stopped",
        )
        .await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let table = browser.js(TABLE).await;
    let api = crate::http::get(ui.addr, "/stats/requests").await.json();
    let api_total = api["stats"]
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["name"] == "Aggregated"))
        .and_then(|r| r["num_requests"].as_u64())
        .unwrap();
    assert_eq!(requests_in(&table, "Aggregated"), api_total, "{table}");
    let new_visible = browser
        .js("return !document.getElementById('btn-new').hidden")
        .await;
    assert_eq!(new_visible, true, "New test is offered after stop");
    browser.screenshot("stopped").await;

    // Downloads and workers are listed from the API's data.
    browser.click(".tabs button[data-tab=downloads]").await;
    let links = browser
        .js("return Array.from(document.querySelectorAll('#downloads a')).map(a => a.getAttribute('href')).join(' ')")
        .await;
    assert!(links.as_str().unwrap().contains("result.json"), "{links}");
    browser.screenshot("downloads").await;
    browser.click(".tabs button[data-tab=workers]").await;
    let workers = browser
        .js("return document.getElementById('workers-empty').hidden")
        .await;
    assert_eq!(workers, false, "single process: the placeholder shows");
    drop(browser);
    mock.shutdown().await;
}

/// A master with its web UI and two worker processes: the Workers tab lists both live, with
/// their state and users, and the header counts them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_workers_tab_shows_a_masters_workers_in_chromium() {
    use crate::cluster::{worker, Proc};
    use crate::webmaster::{both_running, poll_stats, start_web_master};
    let Some((chromedriver, chrome)) = browser_tools() else {
        return;
    };
    let mock = start_mock(MockConfig {
        ttft: Duration::from_millis(40),
        itl: Duration::from_millis(4),
        tokens: 20,
        ..fast_config()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let m = start_web_master(dir.path(), &mock, &[]).await;
    let browser = Browser::start(&chromedriver, &chrome).await;
    browser.go(&format!("http://{}/#workers", m.web)).await;
    // Before any worker: the tab says how to start one, and the form warns.
    let command = browser
        .wait_js(
            "return document.getElementById('workers-command').textContent",
            Duration::from_secs(10),
            "the worker command",
        )
        .await;
    let port = format!("--master-port {}", m.port);
    assert!(command.as_str().unwrap().contains(&port), "{command}");
    browser
        .wait_js(
            "return document.getElementById('start-dialog').open
                && document.getElementById('start-workers').textContent.includes('No worker')",
            Duration::from_secs(10),
            "the start form's warning",
        )
        .await;
    browser.click("#start-cancel").await;

    let _workers: Vec<Proc> = (0..2)
        .map(|_| worker(dir.path(), m.port, &mock.base_url()))
        .collect();
    browser
        .wait_js(
            "return document.getElementById('fig-workers').textContent === '2'",
            Duration::from_secs(30),
            "2 workers in the header",
        )
        .await;
    browser.click("#btn-new").await;
    browser.fill("#start-form [name=user_count]", "6").await;
    browser.fill("#start-form [name=spawn_rate]", "6").await;
    browser.click("#start-submit").await;
    poll_stats(
        m.web,
        "both workers running",
        Duration::from_secs(30),
        |s| both_running(s) && s["user_count"] == 6,
    )
    .await;
    browser.click(".tabs button[data-tab=workers]").await;
    let rows = browser
        .wait_js(
            "const rows = Array.from(document.querySelectorAll('#workers-table tbody tr'))
                .map(tr => Array.from(tr.cells).map(td => td.textContent));
             return rows.length === 2 && rows.every(r => r[2] === 'running' && r[3] === '3') && rows;",
            Duration::from_secs(20),
            "two running workers with 3 users each",
        )
        .await;
    eprintln!("workers tab: {rows}");
    // Both workers' reports show in the request column before the picture is taken.
    browser
        .wait_js(
            "return Array.from(document.querySelectorAll('#workers-table tbody tr'))
                .every(tr => tr.cells[7].textContent !== '0' && tr.cells[5].textContent !== '–')",
            Duration::from_secs(20),
            "requests and memory of both workers",
        )
        .await;
    let shot = browser.screenshot_as("web-master-workers.png").await;
    assert!(shot.exists());
    let r = crate::http::get(m.web, "/stop").await;
    assert_eq!(r.status, 200, "{}", r.body);
    poll_stats(m.web, "stopped", Duration::from_secs(30), |s| {
        s["state"] == "stopped"
    })
    .await;
    drop(browser);
    mock.shutdown().await;
}
