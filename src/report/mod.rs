//! Reports built from results: the live console table and final summary, and the JSON result.
//! Nothing here measures; everything reads [`crate::engine::Snapshot`]s and [`RunResult`]s.

pub mod console;
pub mod json;

use crate::engine::RunResult;

/// Process exit status of a finished test (Locust's and k6's conventions).
pub fn exit_code(result: &RunResult) -> u8 {
    if result.stats.total().failures > 0 {
        1
    } else {
        0
    }
}
