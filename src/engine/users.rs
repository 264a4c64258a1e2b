//! Requests as the engine issues them: one function that picks a kind and a prompt, sends,
//! and records; the closed-loop user that repeats it with waits; and the open-loop arrival
//! that runs it once on a pooled connection. One request path for every load model.

use crate::client::{ClientShared, RequestSpec, UserClient};
use crate::config::WaitTime;
use crate::metrics::{Failure, FailureKind, Outcome, RequestRecord, ShardedRecorder};
use crate::observe::requests_log::{RequestLine, RequestsLog};
use crate::workload::prompts::Prompt;
use crate::workload::Workload;
use bytes::Bytes;
use rand::rngs::SmallRng;
use rand::SeedableRng;
use serde_json::Value;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// What all requests of a run share.
pub(crate) struct UserCtx {
    pub client: Arc<ClientShared>,
    pub workload: Workload,
    /// One prepared request per kind, indexed like `workload.kinds`.
    pub specs: Vec<RequestSpec>,
    pub wait: WaitTime,
    pub seed: u64,
    pub recorder: Arc<ShardedRecorder>,
    /// Requests started (tickets taken), for `--max-requests`.
    pub started: AtomicU64,
    /// Requests ended (any outcome).
    pub ended: AtomicU64,
    pub max_requests: Option<u64>,
    /// Cancelled when the last allowed request has ended.
    pub limit_reached: CancellationToken,
    /// Closed loop: users running. Open loop: requests in flight.
    pub active: AtomicU64,
    /// Requests currently in flight.
    pub in_flight: AtomicU64,
    /// Open loop: idle connections, reused by later arrivals.
    pub pool: Mutex<Vec<UserClient>>,
    /// `--image` / `--synthetic-image`: attached to each chat request.
    pub images: Option<crate::workload::images::Images>,
    /// `--requests-log`: where each ended request is written.
    pub requests_log: std::sync::OnceLock<Arc<RequestsLog>>,
    /// `--trace`: the open loop's schedule, and each arrival's prompt.
    pub trace: Option<Arc<crate::workload::trace::Trace>>,
    /// `--accounts`: the accounts closed-loop users sign in as, and the sign-in's request kind.
    pub accounts: Option<SignIn>,
}

/// `--accounts`: the accounts (user i signs in as account i mod n), the stats row of sign-ins,
/// and their prepared request (to the plan's host, without Authorization).
pub(crate) struct SignIn {
    pub list: Vec<crate::config::accounts::Account>,
    pub kind: usize,
    pub spec: RequestSpec,
}

/// Least wait before a user tries again after a failed sign-in.
const SIGNIN_RETRY: std::time::Duration = std::time::Duration::from_secs(1);

impl UserCtx {
    /// Takes a ticket for one more request; false once `--max-requests` are all taken.
    pub fn take_ticket(&self) -> bool {
        match self.max_requests {
            Some(max) => self.started.fetch_add(1, Ordering::Relaxed) < max,
            None => true,
        }
    }
}

/// A user's multi-turn conversation: the messages so far and the turns done.
#[derive(Default)]
pub(crate) struct Conversation {
    kind: usize,
    messages: Vec<Value>,
    turns: u32,
}

/// Ends one request that never finished: when the engine aborts a task after
/// `--stop-timeout`, dropping this guard records the request as cancelled, so every request
/// started ends in exactly one count without a cancellation future per request. When the task
/// is unwinding from a panic instead, the request is a failure of kind `internal`: a defect of
/// the generator must not pass for a clean cancellation (and the exit status says so).
struct InFlight<'a> {
    ctx: &'a UserCtx,
    kind: usize,
    hint: usize,
    began: Instant,
    intended: Option<Instant>,
    armed: bool,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let outcome = if std::thread::panicking() {
            Outcome::Failure(Failure::new(FailureKind::Internal, PANIC_MESSAGE))
        } else {
            Outcome::Cancelled
        };
        let mut rec = RequestRecord::bare(self.kind, self.began, Instant::now(), outcome);
        rec.intended = self.intended;
        self.ctx.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.ctx.finish(self.hint, &rec, &[]);
    }
}

/// The failure message of a request whose task panicked (the panic itself is on stderr).
pub(crate) const PANIC_MESSAGE: &str =
    "Internal error: the request's task panicked (a gsai-load defect; the panic message is on stderr; please report it)";

/// Decrements a gauge when dropped, even when the task is aborted.
struct Gauge<'a>(&'a AtomicU64);

impl Drop for Gauge<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl UserCtx {
    /// Records an ended request and notices the last one `--max-requests` allows.
    fn finish(&self, hint: usize, rec: &RequestRecord, itl_us: &[u32]) {
        self.record(hint, rec, itl_us);
        let ended = self.ended.fetch_add(1, Ordering::Relaxed) + 1;
        if self.max_requests == Some(ended) {
            self.limit_reached.cancel();
        }
    }

    /// Records an ended request (or sign-in, which `--max-requests` does not count).
    fn record(&self, hint: usize, rec: &RequestRecord, itl_us: &[u32]) {
        self.recorder.record(hint, rec, itl_us);
        if let Some(log) = self.requests_log.get() {
            let name = match self.workload.kinds.get(rec.kind) {
                Some(k) => k.name.as_str(),
                None if self.accounts.is_some() => crate::config::accounts::SIGNIN_PATH,
                None => "",
            };
            log.push(RequestLine::of(
                rec,
                name,
                hint as u64,
                self.recorder.unix_us(rec.start),
                itl_us,
                self.recorder.in_warmup(rec),
            ));
        }
    }

    /// Signs user `hint`'s client in as `account`, recording the sign-in as a request of its
    /// kind; true when the client now carries the account's token.
    async fn sign_in(&self, client: &mut UserClient, hint: usize, account: usize) -> bool {
        let Some(s) = &self.accounts else {
            return true;
        };
        let a = &s.list[account % s.list.len()];
        let (rec, token) =
            crate::client::sign_in(&self.client, s.kind, &s.spec, &a.email, &a.password).await;
        self.record(hint, &rec, &[]);
        let ok = token.is_some();
        if ok {
            client.set_account_token(token);
        }
        ok
    }
}

/// Picks a kind and prompt (the `given` one, for a trace), sends one request, records it;
/// returns its response status, if it got one.
pub(crate) async fn one_request(
    ctx: &UserCtx,
    client: &mut UserClient,
    rng: &mut SmallRng,
    conv: &mut Option<Conversation>,
    hint: usize,
    intended: Option<Instant>,
    given: Option<Prompt>,
) -> Option<u16> {
    let kind = match conv {
        Some(c) => c.kind,
        None => ctx.workload.pick_kind(rng),
    };
    let def = &ctx.workload.kinds[kind];
    let body = match &def.chat {
        None => Bytes::new(),
        Some(template) if def.turns > 1 => {
            let c = conv.get_or_insert_with(|| Conversation {
                kind,
                ..Conversation::default()
            });
            let prompt = ctx.workload.pick_prompt(rng);
            if let Ok(Value::Array(new)) = serde_json::from_slice::<Value>(&prompt.messages_json) {
                c.messages.extend(new);
            }
            let messages = serde_json::to_vec(&c.messages).unwrap_or_else(|_| b"[]".to_vec());
            template.body(&messages, prompt.max_tokens)
        }
        Some(template) => {
            let prompt = match &given {
                Some(p) => p,
                None => ctx.workload.pick_prompt(rng),
            };
            match &ctx.images {
                // Images go in chat messages (the plan allows them only on chat APIs).
                Some(images) if def.path != crate::workload::EMBEDDINGS_PATH => {
                    let messages = images.attach_next(&prompt.messages_json);
                    template.body(&messages, prompt.max_tokens)
                }
                _ => template.body(&prompt.messages_json, prompt.max_tokens),
            }
        }
    };
    ctx.in_flight.fetch_add(1, Ordering::Relaxed);
    let mut guard = InFlight {
        ctx,
        kind,
        hint,
        began: Instant::now(),
        intended,
        armed: true,
    };
    let mut rec = client.execute(kind, &ctx.specs[kind], body).await;
    guard.armed = false;
    rec.intended = intended;
    ctx.in_flight.fetch_sub(1, Ordering::Relaxed);
    ctx.finish(hint, &rec, &client.itl_us);
    if let Some(c) = conv.as_mut() {
        if rec.outcome == Outcome::Success {
            c.messages
                .push(serde_json::json!({"role": "assistant", "content": client.text()}));
            c.turns += 1;
        }
        // A failed turn ends the conversation, as a person would start over.
        if rec.outcome != Outcome::Success || c.turns >= def.turns {
            *conv = None;
        }
    }
    rec.status
}

/// A closed-loop user: request, wait, repeat, until `stop` (it finishes the current request
/// first). The engine aborts the task to cut a request off.
pub(crate) async fn user_loop(id: usize, ctx: Arc<UserCtx>, stop: CancellationToken) {
    ctx.active.fetch_add(1, Ordering::Relaxed);
    let _active = Gauge(&ctx.active);
    let mut client = UserClient::new(ctx.client.clone());
    let mut rng =
        SmallRng::seed_from_u64(ctx.seed ^ (id as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let mut conv = None;
    // `--accounts`: sign in before the first request, and again once after a 401.
    let mut signed_in = ctx.accounts.is_none();
    let mut refreshed = false;
    while !stop.is_cancelled() {
        if !signed_in {
            signed_in = ctx.sign_in(&mut client, id, id).await;
            if !signed_in {
                let wait = ctx.wait.next(&mut rng, Duration::ZERO).max(SIGNIN_RETRY);
                tokio::select! {
                    _ = tokio::time::sleep(wait) => continue,
                    _ = stop.cancelled() => break,
                }
            }
        }
        if !ctx.take_ticket() {
            break;
        }
        let task_start = Instant::now();
        let status = one_request(&ctx, &mut client, &mut rng, &mut conv, id, None, None).await;
        if ctx.accounts.is_some() {
            match status {
                Some(401) if !refreshed => (signed_in, refreshed) = (false, true),
                Some(200..=299) => refreshed = false,
                _ => {}
            }
        }
        let wait = ctx.wait.next(&mut rng, task_start.elapsed());
        if !wait.is_zero() {
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stop.cancelled() => break,
            }
        }
    }
}

/// One open-loop arrival: runs a request scheduled for `intended` on a pooled connection.
/// The caller has already reserved its slot in `ctx.active`; it is released here, even when
/// the engine aborts the task.
pub(crate) async fn arrival(n: u64, ctx: Arc<UserCtx>, intended: Instant) {
    let _slot = Gauge(&ctx.active);
    let pooled = ctx.pool.lock().unwrap_or_else(|p| p.into_inner()).pop();
    let mut client = pooled.unwrap_or_else(|| UserClient::new(ctx.client.clone()));
    let mut rng = SmallRng::seed_from_u64(ctx.seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    // A trace's request n gets its line's prompt, synthesized now (never all at once).
    let given = ctx
        .trace
        .as_ref()
        .and_then(|t| t.prompt(n as usize, ctx.seed));
    one_request(
        &ctx,
        &mut client,
        &mut rng,
        &mut None,
        n as usize,
        Some(intended),
        given,
    )
    .await;
    ctx.pool
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(client);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Plan;
    use crate::metrics::FailureKind;

    /// The guard of one request in flight, as `one_request` arms it.
    fn armed(ctx: &UserCtx) -> InFlight<'_> {
        ctx.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight {
            ctx,
            kind: 0,
            hint: 0,
            began: Instant::now(),
            intended: None,
            armed: true,
        }
    }

    /// A request whose task panics is a failure of kind `internal`, not a cancellation.
    #[test]
    fn a_panicking_request_is_an_internal_failure() {
        let plan = Plan::new("http://127.0.0.1:9", "model");
        let (ctx, _, _) = crate::engine::user_ctx(&plan).unwrap();
        let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _guard = armed(&ctx);
            panic!("a defect in the request path");
        }));
        assert!(unwound.is_err());
        let stats = ctx.recorder.drain();
        let row = &stats.rows[0];
        assert_eq!((row.requests, row.failures, row.cancelled), (1, 1, 0));
        let kinds: Vec<_> = stats.failures.keys().map(|k| k.cause).collect();
        assert_eq!(kinds, [FailureKind::Internal]);
        assert_eq!(ctx.in_flight.load(Ordering::Relaxed), 0);
    }

    /// A request cut off by the engine (the task dropped, no panic) is cancelled.
    #[test]
    fn an_aborted_request_is_cancelled() {
        let plan = Plan::new("http://127.0.0.1:9", "model");
        let (ctx, _, _) = crate::engine::user_ctx(&plan).unwrap();
        drop(armed(&ctx));
        let stats = ctx.recorder.drain();
        let row = &stats.rows[0];
        assert_eq!((row.requests, row.failures, row.cancelled), (0, 0, 1));
    }
}
