//! The binary's one shutdown path: SIGINT (Ctrl-C) and SIGTERM (`docker stop`, Kubernetes)
//! alike, in every mode. The first signal asks for a graceful stop (in-flight requests get
//! `--stop-timeout`); the second cancels what is in flight at once. Either way the outputs are
//! written.
//!
//! Handlers are installed once, at start, before anything else runs: a process that is PID 1
//! in a container (no init) gets no default action for SIGTERM, so without a handler
//! `docker stop` would wait its grace period and then kill it with SIGKILL, losing the results.

use std::future::Future;
use tokio::sync::watch;

/// Counts the shutdown signals received; cloneable, cheap to wait on.
#[derive(Clone, Debug)]
pub struct Signals {
    count: watch::Receiver<u32>,
}

impl Signals {
    /// Installs the SIGINT and SIGTERM handlers and starts counting. Call once, from inside the
    /// runtime, as early as possible.
    pub fn install() -> Signals {
        let (tx, rx) = watch::channel(0u32);
        let mut source = SignalSource::new();
        tokio::spawn(async move {
            while source.next().await {
                tx.send_modify(|n| *n = n.saturating_add(1));
            }
        });
        Signals { count: rx }
    }

    /// Signals that never arrive (for callers that run without the binary's handlers).
    pub fn none() -> Signals {
        let (tx, rx) = watch::channel(0u32);
        // Keep the sender alive so waiting never ends by the channel closing.
        std::mem::forget(tx);
        Signals { count: rx }
    }

    /// Resolves once `n` signals have been received in all.
    pub async fn nth(&self, n: u32) {
        let mut rx = self.count.clone();
        if rx.wait_for(|c| *c >= n).await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// Resolves at the first signal.
    pub async fn first(&self) {
        self.nth(1).await;
    }

    /// Signals received so far.
    pub fn received(&self) -> u32 {
        *self.count.borrow()
    }

    /// The one stop sequence of every mode, run in the background: at the first signal,
    /// prints `graceful_note` and calls `graceful`; at the second, says so and calls `now`.
    /// Abort the returned task once the run has ended on its own.
    pub fn on_stop(
        &self,
        graceful_note: &'static str,
        graceful: impl FnOnce() + Send + 'static,
        now: impl FnOnce() + Send + 'static,
    ) -> tokio::task::JoinHandle<()> {
        let signals = self.clone();
        tokio::spawn(async move {
            signals.nth(1).await;
            eprintln!(
                "\n{graceful_note} (press Ctrl-C again, or send SIGTERM again, to cancel them now)"
            );
            graceful();
            signals.nth(2).await;
            eprintln!(
                "\nsecond signal: cancelling in-flight requests now; the results are still written"
            );
            now();
        })
    }

    /// Runs `fut` until it ends or a signal arrives, whichever is first (for servers that
    /// stop on the first signal, such as the mock).
    pub async fn until_first<F: Future>(&self, fut: F) -> Option<F::Output> {
        tokio::select! {
            out = fut => Some(out),
            () = self.first() => None,
        }
    }
}

/// The process's SIGINT and SIGTERM streams.
struct SignalSource {
    #[cfg(unix)]
    streams: Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>,
}

impl SignalSource {
    fn new() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let streams = signal(SignalKind::interrupt())
                .and_then(|int| Ok((int, signal(SignalKind::terminate())?)))
                .ok();
            SignalSource { streams }
        }
        #[cfg(not(unix))]
        SignalSource {}
    }

    /// Waits for the next SIGINT or SIGTERM; false when none can ever come.
    async fn next(&mut self) -> bool {
        #[cfg(unix)]
        if let Some((int, term)) = &mut self.streams {
            return tokio::select! {
                r = int.recv() => r.is_some(),
                r = term.recv() => r.is_some(),
            };
        }
        tokio::signal::ctrl_c().await.is_ok()
    }
}
