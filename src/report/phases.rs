//! The phases of a run as its time charts mark them: a line at the start of each `--stages` stage,
//! labelled with the stage's target, and a shaded band over the `--warmup` period. Times are Unix
//! seconds and the shapes are those the chart library takes (`markers`, `bands`: see the top of
//! assets/charts.js), so the HTML report and the web UI pass them on untouched.

use crate::config::Plan;
use serde::Serialize;

/// Label of the warm-up band: its requests are left out of every statistic.
pub const WARMUP_LABEL: &str = "warm-up (excluded)";

/// A vertical line on a time chart.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Marker {
    /// Where, seconds since the Unix epoch.
    pub x: f64,
    /// What starts there, e.g. "→ 50 users".
    pub label: String,
}

/// A shaded span of a time chart.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Band {
    /// Start, seconds since the Unix epoch.
    pub from: f64,
    /// End, seconds since the Unix epoch.
    pub to: f64,
    /// What the span is, e.g. "warm-up (excluded)".
    pub label: String,
}

/// What a run's time charts mark.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Phases {
    /// When the test started (stage and warm-up times count from here), Unix seconds.
    pub started_unix_s: f64,
    /// One per stage, at its start.
    pub markers: Vec<Marker>,
    /// The warm-up period, if any.
    pub bands: Vec<Band>,
}

impl Phases {
    /// The phases of `plan` for a test that started at `started_unix_s`.
    pub fn of(plan: &Plan, started_unix_s: f64) -> Self {
        let open_loop = plan.rate.is_some();
        let markers = plan
            .stages
            .as_ref()
            .map(|s| s.boundaries())
            .unwrap_or_default()
            .into_iter()
            .map(|(start_s, _, target)| Marker {
                x: started_unix_s + start_s,
                label: format!("→ {}", target_label(target, open_loop)),
            })
            .collect();
        let bands = plan
            .warmup
            .filter(|w| !w.is_zero())
            .map(|w| Band {
                from: started_unix_s,
                to: started_unix_s + w.as_secs_f64(),
                label: WARMUP_LABEL.to_string(),
            })
            .into_iter()
            .collect();
        Self {
            started_unix_s,
            markers,
            bands,
        }
    }

    /// Whether there is nothing to mark (no stages, no warm-up).
    pub fn is_empty(&self) -> bool {
        self.markers.is_empty() && self.bands.is_empty()
    }
}

/// "50 users", "1 user" (the engine rounds a closed-loop target to whole users), or "2.5 req/s".
fn target_label(target: f64, open_loop: bool) -> String {
    if open_loop {
        let rounded = (target * 100.0).round() / 100.0;
        return format!("{rounded} req/s");
    }
    match target.round() as u64 {
        1 => "1 user".to_string(),
        n => format!("{n} users"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_marker_per_stage_start_and_a_warmup_band() {
        let mut plan = Plan::new("http://127.0.0.1:1", "m");
        plan.stages = Some("10@30s,1@2m,0@30s".parse().unwrap());
        plan.warmup = Some(Duration::from_secs(45));
        let p = Phases::of(&plan, 1000.0);
        let marks: Vec<(f64, &str)> = p.markers.iter().map(|m| (m.x, m.label.as_str())).collect();
        assert_eq!(
            marks,
            [
                (1000.0, "→ 10 users"),
                (1030.0, "→ 1 user"),
                (1150.0, "→ 0 users")
            ]
        );
        assert_eq!(
            p.bands,
            [Band {
                from: 1000.0,
                to: 1045.0,
                label: "warm-up (excluded)".into()
            }]
        );
        assert!(!p.is_empty());
    }

    #[test]
    fn open_loop_stages_are_rates_and_a_plain_plan_marks_nothing() {
        let mut plan = Plan::new("http://127.0.0.1:1", "m");
        assert!(Phases::of(&plan, 5.0).is_empty());
        plan.warmup = Some(Duration::ZERO);
        assert!(Phases::of(&plan, 5.0).is_empty(), "a zero warm-up is none");
        plan.rate = Some(0.0);
        plan.stages = Some("20@10s,2.5@5s".parse().unwrap());
        let labels: Vec<String> = Phases::of(&plan, 5.0)
            .markers
            .into_iter()
            .map(|m| m.label)
            .collect();
        assert_eq!(labels, ["→ 20 req/s", "→ 2.5 req/s"]);
    }
}
