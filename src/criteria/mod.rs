//! Pass/fail criteria: per-request SLOs (`--slo ttft<500ms,tpot<50ms`, which decide goodput) and
//! run-level thresholds (`--threshold 'ttft.p95<800ms'`, which decide the exit code).
//!
//! Both are small comparison expressions, `NAME OP NUMBER[UNIT]`, whose vocabulary (operators,
//! numbers with units, the SLO rule) is the plan's, in [`crate::config`]; metrics are named by the
//! catalogue ([`crate::metrics::MetricId`]). This module evaluates them. It imports nothing of the
//! project but [`crate::config`] and [`crate::metrics`], so the engine (SLOs) and the reports
//! (thresholds) can both use it.

pub mod slo;
pub mod threshold;

pub use crate::config::expr::CmpOp;
use crate::config::expr::{number_and_unit, split, time_ms};
