//! Measurements: what one request recorded, and how records become histograms, failure tables
//! and a per-second timeline.
//!
//! This module imports nothing of the project. The client fills a [`RequestRecord`]; the engine
//! hands it to a [`ShardedRecorder`]; once a second a collector drains the shards into a
//! [`StatsSet`] delta that is merged into the run's cumulative set. Histograms are HDR, in
//! microseconds (tokens for `output_tokens`), with 3 significant digits, merged with `add`;
//! percentiles are computed only when a report asks.

pub mod clock;
mod failure;
mod metric;
mod record;
mod shards;
mod stats;
mod timeline;

pub use failure::{Failure, FailureKind};
pub use metric::{Metric, MetricSummary};
pub use record::{Outcome, RequestRecord, TokenSource};
pub use shards::{ShardedRecorder, SloCheck};
pub use stats::{FailureEntry, FailureKey, NameStats, RequestKind, StatsSet};
pub use timeline::{push_point, TimelinePoint, Window, MIN_POINT_GAP_S};
