//! Headless Chromium for the HTML report checks: find the browser (a missing one skips the test
//! loudly, except under CI, where it fails), dump a page's DOM after its scripts ran, and keep a
//! screenshot for people to look at.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The Chromium binary: `GSAI_CHROMIUM`, else the first of chromium, chromium-browser,
/// google-chrome on PATH. `None` (after saying so) skips `test`; under CI it fails instead.
pub fn chromium(test: &str) -> Option<PathBuf> {
    let found = std::env::var_os("GSAI_CHROMIUM")
        .map(PathBuf::from)
        .or_else(|| {
            let path = std::env::var_os("PATH")?;
            std::env::split_paths(&path).find_map(|dir| {
                ["chromium", "chromium-browser", "google-chrome"]
                    .iter()
                    .map(|n| dir.join(n))
                    .find(|p| p.is_file())
            })
        });
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must install Chromium for this check (apt-get install -y chromium, or set GSAI_CHROMIUM)"
        );
        eprintln!("SKIPPED {test}: no chromium on PATH (set GSAI_CHROMIUM)");
    }
    found
}

/// Runs headless Chromium on `page` with a fresh profile and `args`; `width`x`height` window.
async fn run(exe: &Path, page: &Path, (width, height): (u32, u32), args: &[String]) -> Output {
    let profile = tempfile::tempdir().expect("profile dir");
    let mut c = Command::new(exe);
    c.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
    ])
    .arg(format!("--window-size={width},{height}"))
    .arg(format!("--user-data-dir={}", profile.path().display()))
    .args(args)
    .arg(format!("file://{}", page.display()));
    let out = tokio::task::spawn_blocking(move || c.output().expect("chromium runs"))
        .await
        .expect("chromium task");
    drop(profile);
    out
}

/// The DOM of `page` after its scripts ran.
pub async fn dump_dom(exe: &Path, page: &Path) -> String {
    let out = run(exe, page, (1400, 2200), &["--dump-dom".to_string()]).await;
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Saves a PNG of the top `window` of `page` to `shot` and returns its bytes.
pub async fn screenshot(exe: &Path, page: &Path, shot: &Path, window: (u32, u32)) -> Vec<u8> {
    let _ = std::fs::remove_file(shot);
    let out = run(
        exe,
        page,
        window,
        &[format!("--screenshot={}", shot.display())],
    )
    .await;
    let png = std::fs::read(shot).unwrap_or_else(|e| {
        panic!(
            "no screenshot ({e}): {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert!(png.starts_with(b"\x89PNG"), "not a PNG: {}", shot.display());
    eprintln!("screenshot: {}", shot.display());
    png
}
