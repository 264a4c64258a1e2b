//! Who may speak to the master. The master's port is open to anything on the network, so a
//! connection is on probation until it registers (`client_ready` on that connection); after
//! that it speaks only for the worker id it registered, its own ZeroMQ identity. Everything
//! else is dropped, and the drops are logged at most once per [`REFUSAL_NOTE_INTERVAL`].
//! Connections that never register are closed after [`REGISTER_TIMEOUT`].

use super::transport::{ConnId, RouterLimits};
use std::collections::HashMap;
use std::time::Duration;
use tokio::time::Instant;

/// How long a connection may stay without registering (Locust's worker sends `client_ready`
/// right after connecting, and resends it every 5 s while unanswered).
pub const REGISTER_TIMEOUT: Duration = Duration::from_secs(10);
/// Least time between two log lines about refused messages (the count of the others is given).
pub const REFUSAL_NOTE_INTERVAL: Duration = Duration::from_secs(10);

/// What the master's port lets its peers cost; the defaults are the named constants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerLimits {
    /// How long a connection may stay without registering before it is closed.
    pub register_timeout: Duration,
    /// Connections and buffered bytes.
    pub router: RouterLimits,
}

impl Default for PeerLimits {
    fn default() -> Self {
        Self {
            register_timeout: REGISTER_TIMEOUT,
            router: RouterLimits::default(),
        }
    }
}

/// The connections the master knows and what each may say.
#[derive(Debug)]
pub(super) struct Peers {
    register_timeout: Duration,
    /// Connections that have not registered: their identity and when they will be closed.
    probation: HashMap<ConnId, (Vec<u8>, Instant)>,
    /// Registered connections and the worker id each speaks for.
    registered: HashMap<ConnId, String>,
    last_note: Option<Instant>,
    /// Refusals not logged since the last note.
    unlogged: u64,
}

impl Peers {
    pub(super) fn new(register_timeout: Duration) -> Self {
        Self {
            register_timeout,
            probation: HashMap::new(),
            registered: HashMap::new(),
            last_note: None,
            unlogged: 0,
        }
    }

    /// A connection finished its handshake: it has the register timeout to say `client_ready`.
    pub(super) fn connected(&mut self, conn: ConnId, identity: Vec<u8>) {
        let deadline = Instant::now() + self.register_timeout;
        self.probation.insert(conn, (identity, deadline));
    }

    /// A connection closed; returns the worker it spoke for, if it had registered.
    pub(super) fn disconnected(&mut self, conn: ConnId) -> Option<String> {
        self.probation.remove(&conn);
        self.registered.remove(&conn)
    }

    /// `conn` registered as worker `id`. A previous connection of the same id (one that was
    /// taken over) no longer speaks for it.
    pub(super) fn register(&mut self, conn: ConnId, id: &str) {
        self.probation.remove(&conn);
        self.registered.retain(|c, w| *c == conn || w != id);
        self.registered.insert(conn, id.to_string());
    }

    /// The worker `conn` speaks for, if it registered.
    pub(super) fn speaker(&self, conn: ConnId) -> Option<&str> {
        self.registered.get(&conn).map(String::as_str)
    }

    /// Whether `conn` is the registered connection of worker `id`.
    pub(super) fn is_connection_of(&self, conn: ConnId, id: &str) -> bool {
        self.speaker(conn) == Some(id)
    }

    /// When the next unregistered connection is due to be closed.
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        self.probation.values().map(|(_, at)| *at).min()
    }

    /// Takes the connections whose time to register is over (identity, connection).
    pub(super) fn expired(&mut self, now: Instant) -> Vec<(Vec<u8>, ConnId)> {
        let due: Vec<ConnId> = self
            .probation
            .iter()
            .filter(|(_, (_, at))| *at <= now)
            .map(|(c, _)| *c)
            .collect();
        due.into_iter()
            .filter_map(|c| self.probation.remove(&c).map(|(id, _)| (id, c)))
            .collect()
    }

    /// Counts one refusal; returns the line to log when one is due (at most one per
    /// [`REFUSAL_NOTE_INTERVAL`]), mentioning how many were not logged.
    pub(super) fn refused(&mut self, why: impl FnOnce() -> String) -> Option<String> {
        let now = Instant::now();
        if self
            .last_note
            .is_some_and(|t| now.duration_since(t) < REFUSAL_NOTE_INTERVAL)
        {
            self.unlogged = self.unlogged.saturating_add(1);
            return None;
        }
        self.last_note = Some(now);
        let also = std::mem::take(&mut self.unlogged);
        Some(if also > 0 {
            format!(
                "{} ({also} more refused in the last {} s)",
                why(),
                REFUSAL_NOTE_INTERVAL.as_secs()
            )
        } else {
            why()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_speaks_only_for_the_worker_it_registered() {
        let mut p = Peers::new(Duration::from_secs(10));
        p.connected(1, b"w".to_vec());
        p.connected(2, b"x".to_vec());
        assert_eq!(p.speaker(1), None, "on probation");
        p.register(1, "w");
        assert!(p.is_connection_of(1, "w"));
        assert!(!p.is_connection_of(2, "w"));
        // A takeover: connection 3 registers as w; connection 1 no longer speaks for it.
        p.register(3, "w");
        assert!(!p.is_connection_of(1, "w"));
        assert!(p.is_connection_of(3, "w"));
        assert_eq!(p.disconnected(1), None);
        assert_eq!(p.disconnected(3), Some("w".into()));
        assert_eq!(p.disconnected(2), None);
        assert_eq!(p.next_deadline(), None);
    }

    #[test]
    fn unregistered_connections_expire() {
        let mut p = Peers::new(Duration::from_millis(0));
        p.connected(1, b"a".to_vec());
        p.connected(2, b"b".to_vec());
        p.register(2, "b");
        assert!(p.next_deadline().is_some());
        assert_eq!(p.expired(Instant::now()), vec![(b"a".to_vec(), 1)]);
        assert!(p.expired(Instant::now()).is_empty());
        assert_eq!(p.next_deadline(), None);
    }

    #[test]
    fn refusals_are_logged_at_most_once_per_interval() {
        let mut p = Peers::new(REGISTER_TIMEOUT);
        assert_eq!(p.refused(|| "first".into()), Some("first".into()));
        for _ in 0..100 {
            assert_eq!(p.refused(|| unreachable!("not formatted")), None);
        }
        p.last_note = Some(Instant::now() - REFUSAL_NOTE_INTERVAL);
        assert_eq!(
            p.refused(|| "again".into()),
            Some("again (100 more refused in the last 10 s)".into())
        );
    }
}
