//! `--accounts FILE.csv` against the in-process mock: each user signs in as account i mod n and
//! sends that account's own token; sign-ins are their own request row; a wrong password is an
//! `http_status` failure of that row and sends no chat request; passwords and tokens never
//! appear in the binary's output or its JSON; the open loop refuses accounts.

use crate::harness::*;
use gsai_load::mock::MockConfig;
use serde_json::Value;
use std::path::Path;

const SIGNIN: &str = "/api/v1/auths/signin";

/// Three accounts with distinctive passwords.
fn accounts() -> Vec<(String, String)> {
    (0..3)
        .map(|i| (format!("user{i}@example.org"), format!("pw-{i}-Zq7hunter")))
        .collect()
}

fn write_csv(dir: &Path, accounts: &[(String, String)]) -> String {
    let mut text = String::from("email,password\n");
    for (e, p) in accounts {
        text.push_str(&format!("{e},{p}\n"));
    }
    let path = dir.join("accounts.csv");
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

/// A mock that knows the accounts and needs one of their tokens (it has no token of its own).
async fn accounts_mock() -> gsai_load::mock::MockServer {
    start_mock(MockConfig {
        token: None,
        accounts: accounts(),
        ..fast_config()
    })
    .await
}

fn row<'a>(doc: &'a Value, name: &str) -> Option<&'a Value> {
    doc["requests"]
        .as_array()?
        .iter()
        .find(|r| r["name"] == name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_six_users_over_three_accounts_each_send_their_own_token() {
    let mock = accounts_mock().await;
    let dir = tempfile::tempdir().unwrap();
    let csv = write_csv(dir.path(), &accounts());
    let url = mock.base_url();
    let mut args = headless_args(
        &url,
        &[
            "--accounts",
            &csv,
            "--max-requests",
            "30",
            "-t",
            "60s",
            "--json",
            "out.json",
        ],
    );
    // Six users, started together; a global token is given too: the accounts' tokens win.
    args.extend_from_slice(&["-u", "6", "-r", "1000", "--token", TOKEN]);
    let o = output(bin(dir.path(), &args)).await;
    let all = text(&o);
    assert_eq!(o.status.code(), Some(0), "{all}");
    let c = mock.counters();
    assert_eq!((c.requests, c.ok, c.unauthorized), (30, 30, 0), "{c:?}");
    let uses = mock.accounts();
    let tokens: std::collections::HashSet<_> = uses.iter().map(|u| u.token.clone()).collect();
    assert_eq!(tokens.len(), 3, "{uses:?}");
    for u in &uses {
        // Users i and i + 3 signed in as account i, and the account's token was used.
        assert_eq!(u.signins, 2, "{uses:?}");
        assert!(u.requests >= 1, "{uses:?}");
    }
    assert_eq!(uses.iter().map(|u| u.requests).sum::<u64>(), 30, "{uses:?}");
    let json = std::fs::read_to_string(dir.path().join("out.json")).unwrap();
    let doc: Value = serde_json::from_str(&json).unwrap();
    let signin = row(&doc, SIGNIN).unwrap_or_else(|| panic!("no sign-in row: {json}"));
    assert_eq!(signin["method"], "POST");
    assert_eq!(
        (&signin["requests"], &signin["failures"]),
        (&6.into(), &0.into())
    );
    let chat = row(&doc, "/api/chat/completions").unwrap();
    assert_eq!(chat["requests"], 30);
    assert!(
        all.contains(SIGNIN),
        "the console shows the sign-in row: {all}"
    );
    for (_, password) in accounts() {
        assert!(!all.contains(&password) && !json.contains(&password));
    }
    for t in &tokens {
        assert!(!all.contains(t.as_str()) && !json.contains(t.as_str()));
    }
    assert!(!all.contains(TOKEN) && !json.contains(TOKEN));
    mock.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_a_wrong_password_fails_the_signin_row_and_sends_no_chat_request() {
    let mock = accounts_mock().await;
    let dir = tempfile::tempdir().unwrap();
    let wrong = vec![(
        "user0@example.org".to_string(),
        "not-the-Zq7password".to_string(),
    )];
    let csv = write_csv(dir.path(), &wrong);
    let url = mock.base_url();
    let args = headless_args(
        &url,
        &["--accounts", &csv, "-t", "2s", "--json", "out.json"],
    );
    let o = output(bin(dir.path(), &args)).await;
    let all = text(&o);
    let json = std::fs::read_to_string(dir.path().join("out.json")).unwrap();
    let doc: Value = serde_json::from_str(&json).unwrap();
    let signin = row(&doc, SIGNIN).unwrap_or_else(|| panic!("no sign-in row: {json}"));
    let n = signin["requests"].as_u64().unwrap();
    assert!(n >= 2, "both users tried: {json}");
    assert_eq!(signin["failures"], n, "{json}");
    let failures = doc["failures"].as_array().unwrap();
    assert!(!failures.is_empty());
    for f in failures {
        assert_eq!(f["name"], SIGNIN, "{f}");
        assert_eq!(f["kind"], "http_status", "{f}");
        assert!(f["message"].as_str().unwrap().contains("400"), "{f}");
    }
    let chat = row(&doc, "/api/chat/completions").map_or(0, |r| r["requests"].as_u64().unwrap());
    assert_eq!(chat, 0, "{json}");
    assert_eq!(mock.counters().requests, 0);
    assert!(mock
        .accounts()
        .iter()
        .all(|u| u.signins == 0 && u.requests == 0));
    for secret in ["not-the-Zq7password", "pw-0-Zq7hunter"] {
        assert!(!all.contains(secret) && !json.contains(secret), "{all}");
    }
    mock.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_are_refused_in_the_open_loop_and_a_bad_line_is_named_without_its_password() {
    let dir = tempfile::tempdir().unwrap();
    let csv = write_csv(dir.path(), &accounts());
    let args = headless_args(
        "http://127.0.0.1:9",
        &["--accounts", &csv, "--rate", "5", "-t", "1s"],
    );
    let o = output(bin(dir.path(), &args)).await;
    let all = text(&o);
    assert_eq!(o.status.code(), Some(2), "{all}");
    assert!(
        all.contains("--accounts") && all.contains("closed loop"),
        "{all}"
    );

    let bad = dir.path().join("bad.csv");
    std::fs::write(
        &bad,
        "email,password\nuser0@example.org,pw-ok\nhunter2Zq7-no-comma\n",
    )
    .unwrap();
    let args = headless_args(
        "http://127.0.0.1:9",
        &["--accounts", bad.to_str().unwrap(), "-t", "1s"],
    );
    let o = output(bin(dir.path(), &args)).await;
    let all = text(&o);
    assert_ne!(o.status.code(), Some(0), "{all}");
    assert!(all.contains("bad.csv:3"), "{all}");
    assert!(
        !all.contains("hunter2Zq7") && !all.contains("pw-ok"),
        "{all}"
    );
}

/// Polls `cond` every 10 ms until it holds, for at most 20 s.
async fn until(what: &str, cond: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !cond() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_a_401_makes_the_user_sign_in_again_once() {
    // Server A issues the token; server B (same address, same accounts) issues new ones, so the
    // user's token from A is answered 401 by B, and the user signs in to B.
    let a = accounts_mock().await;
    let addr = a.addr();
    let dir = tempfile::tempdir().unwrap();
    let csv = write_csv(dir.path(), &accounts());
    let mut p = plan(&a, 1, 1_000_000);
    p.token = None;
    p.wait = gsai_load::config::WaitTime::Constant { s: 0.02 };
    p.accounts = Some(csv.into());
    let handle = gsai_load::engine::start(p).expect("valid plan");
    until("requests on A", || a.accounts()[0].requests >= 2).await;
    a.shutdown().await;
    let b = gsai_load::mock::start_on(
        addr,
        MockConfig {
            token: None,
            accounts: accounts(),
            ..fast_config()
        },
    )
    .await
    .expect("B binds A's address");
    until("requests with B's token", || b.accounts()[0].requests >= 2).await;
    handle.stop();
    let r = handle.wait().await;
    let signin = r.kinds.iter().position(|k| k.name == SIGNIN).unwrap();
    let row = &r.stats.rows[signin];
    assert_eq!(
        (row.requests, row.failures),
        (2, 0),
        "one sign-in to A, one to B"
    );
    assert_eq!(b.accounts()[0].signins, 1);
    assert!(b.counters().unauthorized >= 1, "{:?}", b.counters());
    b.shutdown().await;
}
