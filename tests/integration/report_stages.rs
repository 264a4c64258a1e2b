//! The HTML report of a staged run with a warm-up, drawn by headless Chromium: every chart over
//! time marks each stage start with its target and shades the warm-up; the headline cards count
//! the excluded requests and the run plan spells out stages and warm-up. A screenshot is kept at
//! `<target>/tmp/report-stages.png` for people to look at.

use crate::chromium::{chromium, dump_dom, screenshot};
use crate::harness::*;
use gsai_load::config::WaitTime;
use gsai_load::report::{html, Extras};
use std::path::PathBuf;
use std::time::Duration;

/// Charts over time in the report (users, rps, E2E, TTFT, tokens/s, cumulative requests).
const TIME_CHARTS: usize = 6;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staged_report_marks_stages_and_warmup_in_chromium() {
    let Some(exe) = chromium("staged_report_marks_stages_and_warmup_in_chromium") else {
        return;
    };
    let mock = start_mock(fast_config()).await;
    let mut p = plan(&mock, 1, 1_000_000);
    p.wait = WaitTime::Constant { s: 0.05 };
    p.stages = Some("3@2s,6@3s,1@2s".parse().unwrap());
    p.warmup = Some(Duration::from_millis(1500));
    let result = run(p).await;
    mock.shutdown().await;
    let excluded = result.stats.total().warmup;
    assert!(excluded > 0, "the warm-up excluded requests");
    let out_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let page = out_dir.join("report-stages.html");
    html::write(&result, &Extras::default(), &page).unwrap();

    let dom = dump_dom(&exe, &page).await;
    let head = &dom[..dom.len().min(3000)];
    // Every stage starts within the run, so each time chart has all three markers and the band.
    assert_eq!(
        dom.matches("class=\"phase-marker\"").count(),
        3 * TIME_CHARTS,
        "{head}"
    );
    assert_eq!(
        dom.matches("class=\"phase-band\"").count(),
        TIME_CHARTS,
        "{head}"
    );
    // Labels as rendered SVG text (the data and the scripts hold them too, but not in <text>).
    for label in ["→ 3 users", "→ 6 users", "→ 1 user", "warm-up (excluded)"] {
        let drawn = dom.match_indices(&format!(">{label}</text>")).count();
        assert_eq!(drawn, TIME_CHARTS, "label {label:?} on every time chart");
    }
    // The latency distributions are not over time: no marks there.
    assert_eq!(dom.matches("class=\"gsai-chart\"").count(), TIME_CHARTS + 5);
    assert!(
        dom.contains(">Warm-up</div>"),
        "a headline card counts the excluded requests"
    );
    assert!(
        dom.contains(
            "to 3 users over 2s, then to 6 users over 3s, then to 1 user over 2s (linear ramps from 0)"
        ),
        "the run plan spells out the stages"
    );
    assert!(dom.contains("1s 500ms: requests that started in it ran but are excluded"));

    let shot = out_dir.join("report-stages.png");
    let png = screenshot(&exe, &page, &shot, (1400, 1250)).await;
    assert!(png.len() > 30_000, "{} bytes", png.len());
}
