//! The simulated user: one loop that sends a request, records it, and waits per the plan.

use crate::client::{RequestSpec, UserClient};
use crate::config::WaitTime;
use crate::metrics::{Outcome, RequestRecord, ShardedRecorder};
use crate::workload::ChatTemplate;
use rand::rngs::SmallRng;
use rand::SeedableRng;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tokio_util::sync::CancellationToken;

/// What all users of a run share.
pub(crate) struct UserCtx {
    pub client: Arc<crate::client::ClientShared>,
    pub spec: RequestSpec,
    pub template: ChatTemplate,
    pub wait: WaitTime,
    pub recorder: Arc<ShardedRecorder>,
    /// Requests started (tickets taken), for `--max-requests`.
    pub started: AtomicU64,
    /// Requests ended (any outcome).
    pub ended: AtomicU64,
    pub max_requests: Option<u64>,
    /// Cancelled when the last allowed request has ended.
    pub limit_reached: CancellationToken,
    /// Users currently running.
    pub active: AtomicU64,
    /// Requests currently in flight.
    pub in_flight: AtomicU64,
}

/// Runs one user until `stop` (finish the current request first) or `cancel` (abort it).
pub(crate) async fn user_loop(
    id: usize,
    ctx: Arc<UserCtx>,
    stop: CancellationToken,
    cancel: CancellationToken,
) {
    ctx.active.fetch_add(1, Ordering::Relaxed);
    let mut client = UserClient::new(ctx.client.clone());
    let mut rng = SmallRng::seed_from_u64(id as u64 ^ 0x9E37_79B9_7F4A_7C15);
    while !stop.is_cancelled() {
        if let Some(max) = ctx.max_requests {
            if ctx.started.fetch_add(1, Ordering::Relaxed) >= max {
                break;
            }
        }
        let task_start = Instant::now();
        let body = ctx.template.body();
        ctx.in_flight.fetch_add(1, Ordering::Relaxed);
        let rec = tokio::select! {
            biased;
            _ = cancel.cancelled() => RequestRecord::bare(0, task_start, Instant::now(), Outcome::Cancelled),
            rec = client.execute(0, &ctx.spec, body) => rec,
        };
        ctx.in_flight.fetch_sub(1, Ordering::Relaxed);
        ctx.recorder.record(id, &rec, &client.itl_us);
        let ended = ctx.ended.fetch_add(1, Ordering::Relaxed) + 1;
        if ctx.max_requests == Some(ended) {
            ctx.limit_reached.cancel();
        }
        if rec.outcome == Outcome::Cancelled {
            break;
        }
        let wait = ctx.wait.next(&mut rng, task_start.elapsed());
        if !wait.is_zero() {
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stop.cancelled() => break,
            }
        }
    }
    ctx.active.fetch_sub(1, Ordering::Relaxed);
}
