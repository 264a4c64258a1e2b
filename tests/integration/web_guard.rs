//! The web UI against other web sites and foreign hosts: cross-site actions and DNS-rebinding
//! names are refused before anything starts, and a test against a host other than the
//! configured one runs without the configured token (issue 9, §3).

use crate::harness::*;
use crate::http::{get, send, Resp};
use crate::web::{defaults, start_ui};
use hyper::Method;
use serde_json::Value;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const FORM: &str = "application/x-www-form-urlencoded";

async fn post(addr: SocketAddr, path: &str, headers: &[(&str, &str)], form: &str) -> Resp {
    send(
        addr,
        Method::POST,
        path,
        headers,
        Some((FORM, form.to_string())),
    )
    .await
}

async fn state(addr: SocketAddr) -> Value {
    get(addr, "/stats/requests").await.json()
}

/// Polls `/stats/requests` until the test is stopped; fails after 15 s.
async fn until_stopped(addr: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let s = state(addr).await;
        if s["state"] == "stopped" {
            return;
        }
        assert!(Instant::now() < deadline, "not stopped: {s}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn assert_forbidden(r: &Resp, needle: &str) {
    assert_eq!(r.status, 403, "{}", r.body);
    let j = r.json();
    assert_eq!(j["success"], false);
    let message = j["message"].as_str().unwrap_or_default();
    assert!(message.contains(needle), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_refuses_actions_from_other_sites_and_the_own_page_still_works() {
    let mock = start_mock(fast_config()).await;
    let attacker = Recorder::start().await;
    let ui = start_ui(defaults(Some(&mock)), None).await;
    let addr = ui.addr;
    let form = format!(
        "user_count=1&spawn_rate=50&model=m&host={}",
        attacker.base_url()
    );

    // A form on another site, posted by the operator's browser.
    for headers in [
        vec![("origin", "https://evil.example")],
        vec![("origin", "null")],
        vec![("sec-fetch-site", "cross-site")],
        // Another port of localhost is the same site, but not the same origin.
        vec![
            ("origin", "http://127.0.0.1:3000"),
            ("sec-fetch-site", "same-site"),
        ],
    ] {
        let r = post(addr, "/swarm", &headers, &form).await;
        assert_forbidden(&r, "another web site");
        let r = post(addr, "/users", &headers, "user_count=5").await;
        assert_forbidden(&r, "another web site");
    }
    let s = state(addr).await;
    assert_eq!(
        (s["state"].as_str(), s["run_id"].as_u64()),
        (Some("ready"), Some(0)),
        "{s}"
    );
    assert!(attacker.heads().is_empty(), "{:?}", attacker.heads());

    // Bodies are small: a form is a few hundred bytes.
    let big = format!("user_count=1&model={}", "m".repeat(20 * 1024));
    let r = post(addr, "/swarm", &[], &big).await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("length limit exceeded"), "{}", r.body);

    // The page's own fetch (Origin and Sec-Fetch-Site: same-origin) starts a test.
    let own = format!("http://{addr}");
    let same = [("origin", own.as_str()), ("sec-fetch-site", "same-origin")];
    let r = post(addr, "/swarm", &same, "user_count=1&spawn_rate=50").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["run_id"], 1);

    // /stop and /stats/reset are GETs: an <img> on another site must not trigger them.
    for path in ["/stop", "/stats/reset"] {
        let r = send(
            addr,
            Method::GET,
            path,
            &[("sec-fetch-site", "cross-site")],
            None,
        )
        .await;
        assert_forbidden(&r, "another web site");
    }
    assert_ne!(state(addr).await["state"], "stopped");
    let r = send(
        addr,
        Method::GET,
        "/stats/reset",
        &[("sec-fetch-site", "same-origin")],
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    // Reads stay open to links from anywhere (a bookmark, another site's link to the page).
    let r = send(
        addr,
        Method::GET,
        "/",
        &[("sec-fetch-site", "cross-site")],
        None,
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-frame-options"), "DENY");
    // A script (no Origin, no Sec-Fetch-Site) may stop it, as Locust scripts do.
    let r = get(addr, "/stop").await;
    assert_eq!(r.status, 200, "{}", r.body);
    until_stopped(addr).await;
    assert!(attacker.heads().is_empty(), "{:?}", attacker.heads());
    mock.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_on_loopback_refuses_other_host_names_against_dns_rebinding() {
    let attacker = Recorder::start().await;
    let ui = start_ui(defaults(None), None).await;
    let addr = ui.addr;
    let port = addr.port();
    let rebound = format!("attacker.example:{port}");
    let origin = format!("http://{rebound}");
    let r = send(addr, Method::GET, "/config", &[("host", &rebound)], None).await;
    assert_forbidden(&r, "Host not allowed; bind with --web-host");
    // The rebinding page posts "same-origin" from its own point of view.
    let form = format!("user_count=1&model=m&host={}", attacker.base_url());
    let r = post(
        addr,
        "/swarm",
        &[
            ("host", &rebound),
            ("origin", &origin),
            ("sec-fetch-site", "same-origin"),
        ],
        &form,
    )
    .await;
    assert_forbidden(&r, "Host not allowed");
    assert_eq!(state(addr).await["run_id"], 0);
    assert!(attacker.heads().is_empty());
    for name in [
        format!("localhost:{port}"),
        format!("[::1]:{port}"),
        format!("127.0.0.1:{port}"),
    ] {
        let r = send(addr, Method::GET, "/config", &[("host", &name)], None).await;
        assert_eq!(r.status, 200, "{name}: {}", r.body);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_sends_the_token_only_to_the_host_it_was_configured_for() {
    // The UI is started with TOKEN for mock A (GSAI_HOST); B is another origin.
    let a = start_mock(fast_config()).await;
    let b = Recorder::start().await;
    let ui = start_ui(defaults(Some(&a)), None).await;
    let addr = ui.addr;

    let r = post(
        addr,
        "/swarm",
        &[],
        &format!("user_count=1&spawn_rate=50&host={}", b.base_url()),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let heads = b.wait_for(2, Duration::from_secs(10)).await;
    for head in &heads {
        assert!(head.starts_with("POST /api/chat/completions "), "{head}");
        assert!(
            !head.to_ascii_lowercase().contains("authorization"),
            "B got a token: {head}"
        );
        assert!(!head.contains(TOKEN), "{head}");
    }
    let message = r.json()["message"].as_str().unwrap_or_default().to_string();
    assert!(
        message.contains("the token (GSA_AUTH_TOKEN / --token) is not sent to"),
        "{message}"
    );
    assert!(!message.contains(TOKEN), "{message}");
    assert_eq!(get(addr, "/stop").await.status, 200);
    until_stopped(addr).await;

    // The configured host still gets it: mock A requires it and serves.
    let r = post(
        addr,
        "/swarm",
        &[],
        "user_count=1&spawn_rate=50&run_time=30s",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(!r.body.contains("not sent"), "{}", r.body);
    let deadline = Instant::now() + Duration::from_secs(10);
    while a.counters().ok < 2 {
        assert!(
            Instant::now() < deadline,
            "mock A served {:?}",
            a.counters()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(get(addr, "/stop").await.status, 200);
    until_stopped(addr).await;
    assert_eq!(a.counters().unauthorized, 0);

    // A token given in the form is for the form's host.
    let before = b.heads().len();
    let form = format!(
        "user_count=1&spawn_rate=50&host={}&token=sk-form-token-42",
        b.base_url()
    );
    let r = post(addr, "/swarm", &[], &form).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(!r.body.contains("sk-form-token-42"), "{}", r.body);
    let heads = b.wait_for(before + 1, Duration::from_secs(10)).await;
    let head = heads[before].to_ascii_lowercase();
    assert!(
        head.contains("\r\nauthorization: bearer sk-form-token-42\r\n"),
        "{head}"
    );
    assert!(!heads.iter().any(|h| h.contains(TOKEN)));
    assert_eq!(get(addr, "/stop").await.status, 200);
    until_stopped(addr).await;
    a.shutdown().await;
}
