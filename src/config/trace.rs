//! The `--trace FILE --trace-speed X` settings of a plan and their rules. The trace itself (its
//! lines, the prompts it asks for) is read by the workload (`workload::trace`) when a test starts.

use super::build::{Field, PlanError, PlanInput};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// A trace to replay and its speed, as the plan carries it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TraceSpec {
    /// The JSONL file (Mooncake format).
    pub path: PathBuf,
    /// Replay speed: 2 sends twice as fast (gaps halved), 0.5 half as fast.
    #[serde(default = "one")]
    pub speed: f64,
}

fn one() -> f64 {
    1.0
}

/// Fastest replay speed accepted.
pub const MAX_SPEED: f64 = 1e6;

/// The plan's trace from its settings; a speed without a trace, a speed out of range, or a
/// trace beside another schedule or prompt source is refused, naming both flags.
pub fn spec(input: &PlanInput) -> Result<Option<TraceSpec>, PlanError> {
    let invalid = |field, reason: String| PlanError::Invalid { field, reason };
    let Some(path) = &input.trace else {
        if input.trace_speed.is_some() {
            return Err(invalid(
                Field::TraceSpeed,
                "applies to --trace FILE only".into(),
            ));
        }
        return Ok(None);
    };
    let speed = input.trace_speed.unwrap_or(1.0);
    if !(speed.is_finite() && speed > 0.0 && speed <= MAX_SPEED) {
        return Err(invalid(
            Field::TraceSpeed,
            format!(
                "must be a number above 0 and at most {MAX_SPEED}, e.g. 2 to replay twice as fast"
            ),
        ));
    }
    for (flag, given) in [
        ("--rate", input.rate.is_some()),
        ("--stages", input.stages.is_some()),
        (
            "--scenario",
            input.scenario.is_some() || input.scenario_file.is_some(),
        ),
        ("--prompts", input.prompts.is_some()),
        ("--synthetic-input", input.synthetic_input.is_some()),
    ] {
        if given {
            return Err(invalid(
                Field::Trace,
                format!("cannot be combined with {flag}: the trace gives the schedule and the prompts; choose one"),
            ));
        }
    }
    Ok(Some(TraceSpec {
        path: path.clone(),
        speed,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_settings_name_the_flag_to_fix() {
        let mut i = PlanInput {
            trace: Some("t.jsonl".into()),
            trace_speed: Some(2.0),
            ..PlanInput::default()
        };
        assert_eq!(
            spec(&i).unwrap(),
            Some(TraceSpec {
                path: "t.jsonl".into(),
                speed: 2.0
            })
        );
        for bad in [0.0, -1.0, f64::NAN, 1e9] {
            i.trace_speed = Some(bad);
            let e = spec(&i).unwrap_err().to_string();
            assert!(
                e.starts_with("--trace-speed: must be a number above 0"),
                "{e}"
            );
        }
        i.trace_speed = None;
        i.rate = Some(5.0);
        let e = spec(&i).unwrap_err().to_string();
        assert!(
            e.starts_with("--trace: cannot be combined with --rate"),
            "{e}"
        );
        let i = PlanInput {
            trace_speed: Some(2.0),
            ..PlanInput::default()
        };
        assert!(spec(&i)
            .unwrap_err()
            .to_string()
            .starts_with("--trace-speed: applies"));
    }
}
