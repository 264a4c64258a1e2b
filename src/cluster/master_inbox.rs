//! What workers say to the master: each message from the ROUTER is admitted only from a
//! registered worker's own connection (see [`super::master_peers`]), then acts on the workers'
//! table and the current test: registration, heartbeats, spawn reports, statistics, quits.

use super::locust_stats::{read_report, KindIndex, MAX_REQUEST_KINDS};
use super::master_session::{send, Session};
use super::master_test::Phase;
use super::nodes::{HEARTBEAT_LIVENESS, MAX_KNOWN_WORKERS};
use super::protocol::{Message, ToMaster, ToWorker};
use super::transport::{ConnId, RouterEvent};
use crate::metrics::StatsSet;
use rmpv::Value;
use std::time::Instant;

/// Most distinct failures (kind, message) one test keeps; new ones beyond it are dropped. Real
/// failures repeat a few messages; a peer inventing messages must not grow the table without end.
pub const MAX_FAILURE_KEYS: usize = 1000;

impl Session {
    /// Logs a refusal, at most once per interval.
    pub(super) fn refuse(&mut self, why: impl FnOnce() -> String) {
        if let Some(n) = self.peers.refused(why) {
            self.note(n);
        }
    }

    pub(super) fn on_event(&mut self, ev: RouterEvent) {
        match ev {
            RouterEvent::Connected { conn, identity } => self.peers.connected(conn, identity),
            RouterEvent::Disconnected { conn, .. } => {
                // Only a registered worker's own connection speaks for it: another connection
                // that claimed its identity and left changes nothing.
                let Some(id) = self.peers.disconnected(conn) else {
                    return;
                };
                if let Some(held) = self.nodes.mark_missing(&id) {
                    self.note(format!(
                        "worker {id} disconnected: missing; its users go to the others"
                    ));
                    self.after_loss(held);
                }
                self.publish_workers();
            }
            RouterEvent::Message {
                conn,
                identity,
                payload,
            } => {
                let identity = String::from_utf8_lossy(&identity).into_owned();
                let decoded = Message::decode(&payload.bytes)
                    .and_then(|m| Ok((ToMaster::parse(&m)?, m.node_id, m.kind)));
                // The bytes are no longer needed: release their share of the buffer budget.
                drop(payload);
                let (msg, node_id, kind) = match decoded {
                    Ok(m) => m,
                    Err(e) => {
                        let registered = self.peers.speaker(conn).is_some();
                        self.refuse(|| format!("corrupt message from {identity}: {e}"));
                        if registered {
                            // Locust asks the worker to reconnect after a corrupt frame.
                            send(&self.router, &identity, ToWorker::Reconnect);
                        }
                        return;
                    }
                };
                // Locust's workers use their node id as their identity: a message must carry
                // the identity of the connection it came on, and (but client_ready) come on
                // the connection that registered it.
                let admitted = node_id == identity
                    && (matches!(msg, ToMaster::ClientReady(_))
                        || self.peers.is_connection_of(conn, &node_id));
                if !admitted {
                    let speaker = self.peers.speaker(conn).map(str::to_string);
                    self.refuse(|| match speaker {
                        Some(w) => format!("dropped a '{kind}' message for worker {node_id} from the connection of worker {w}"),
                        None => format!("dropped a '{kind}' message for worker {node_id} from an unregistered connection ({identity})"),
                    });
                    return;
                }
                self.on_message(conn, msg, &node_id);
            }
        }
    }

    /// A message from a registered worker (`node_id`), or a `client_ready` from connection
    /// `conn` whose identity and node id are both `node_id`.
    fn on_message(&mut self, conn: ConnId, msg: ToMaster, node_id: &str) {
        let identity = node_id;
        match msg {
            ToMaster::ClientReady(v) => {
                let falsy = matches!(&v, Value::Nil | Value::Boolean(false))
                    || v.as_u64() == Some(0)
                    || v.as_str() == Some("");
                if falsy {
                    self.note(format!(
                        "a pre-2.0 worker ({identity}) tried to connect; ignored"
                    ));
                    return;
                }
                // Keyed by the identity, as Locust does for client_ready.
                let Some(index) = self.nodes.register(identity) else {
                    self.refuse(|| {
                        format!("worker {identity} refused: {MAX_KNOWN_WORKERS} workers are known and none is gone")
                    });
                    self.router.close(identity.as_bytes(), conn);
                    return;
                };
                self.peers.register(conn, identity);
                let stopping = matches!(
                    self.test.as_ref().map(|t| t.phase),
                    Some(Phase::Stopping { .. })
                );
                if let Some(n) = self.nodes.get_mut(identity).filter(|_| stopping) {
                    // Nothing to run in a test that is stopping: do not wait for it to stop.
                    n.inactive = true;
                }
                send(
                    &self.router,
                    identity,
                    ToWorker::Ack {
                        index: Some(index),
                        gsai: true,
                    },
                );
                self.note(format!(
                    "worker {identity} (index {index}) ready; {} workers",
                    self.nodes.active_ids().len()
                ));
                self.publish_workers();
                if self.running() {
                    self.dispatch();
                }
            }
            ToMaster::Heartbeat(h) => {
                let Some(n) = self.nodes.get_mut(node_id) else {
                    return;
                };
                n.liveness = HEARTBEAT_LIVENESS;
                n.last_heartbeat = Instant::now();
                n.state = h.state;
                n.cpu_percent = h.cpu_percent;
                n.memory_bytes = h.memory_bytes;
                n.health = h.health;
                let healed = n.missing;
                if healed {
                    // Whatever it runs now, it gets its share again.
                    n.missing = false;
                    n.assigned = u64::MAX;
                }
                send(&self.router, node_id, ToWorker::Heartbeat);
                if healed {
                    self.note(format!("worker {node_id} is back"));
                    if self.running() {
                        self.dispatch();
                    }
                }
            }
            ToMaster::Spawning => {
                if let Some(n) = self.nodes.get_mut(node_id) {
                    n.state = "spawning".into();
                }
            }
            ToMaster::SpawningComplete { user_count, .. } => {
                if let Some(n) = self.nodes.get_mut(node_id) {
                    n.state = "running".into();
                    n.users = user_count;
                }
            }
            ToMaster::Stats(data) => self.on_stats(node_id, &data),
            ToMaster::ClientStopped => {
                if let Some(n) = self.nodes.get_mut(node_id) {
                    n.state = "stopped".into();
                    n.users = 0;
                    n.inactive = true;
                }
                if self.running() {
                    self.dispatch();
                }
            }
            ToMaster::Quit => {
                if let Some(n) = self.nodes.get_mut(node_id) {
                    let held = if n.active() { n.assigned } else { 0 };
                    n.state = "quit".into();
                    n.users = 0;
                    n.assigned = 0;
                    n.inactive = true;
                    self.note(format!("worker {node_id} quit"));
                    self.after_loss(held);
                }
                self.publish_workers();
            }
            ToMaster::Exception { msg, .. } => self.note(format!("worker {node_id}: {msg}")),
            ToMaster::Other(kind) => {
                if kind != "logs" {
                    self.note(format!("worker {node_id} sent an unknown '{kind}' message"));
                }
            }
        }
    }

    fn on_stats(&mut self, node_id: &str, data: &Value) {
        // Between tests, reports still update the workers' figures; their statistics (late
        // ones of a test that ended without them) belong to no test.
        let mut scratch = KindIndex::default();
        let kinds = match self.test.as_mut() {
            Some(t) => &mut t.kinds,
            None => &mut scratch,
        };
        match read_report(data, kinds) {
            // Reports count even from a worker marked missing: they are real requests, and as
            // deltas they can never be counted twice.
            Ok(mut r) => {
                if r.dropped_kinds > 0 {
                    self.refuse(|| format!("worker {node_id}: {} rows of request kinds beyond the limit of {MAX_REQUEST_KINDS} dropped", r.dropped_kinds));
                }
                self.bound_failures(node_id, &mut r.delta);
                if let Some(n) = self.nodes.get_mut(node_id) {
                    n.requests = n.requests.saturating_add(r.delta.total().requests);
                    n.in_flight = r.in_flight;
                    if !n.missing {
                        n.users = r.user_count;
                    }
                }
                if let Some(t) = self.test.as_mut() {
                    t.pending.merge(&r.delta);
                }
            }
            Err(e) => self.refuse(|| format!("worker {node_id}: unreadable stats report: {e}")),
        }
    }

    /// Keeps a test's failures table within [`MAX_FAILURE_KEYS`]: failures already known are
    /// merged, new ones only while there is room.
    fn bound_failures(&mut self, node_id: &str, delta: &mut StatsSet) {
        let Some(t) = self.test.as_ref() else { return };
        let known = t.collector.cumulative();
        let mut held = known.failures.len() + t.pending.failures.len();
        let before = delta.failures.len();
        delta.failures.retain(|k, _| {
            if known.failures.contains_key(k) || t.pending.failures.contains_key(k) {
                return true;
            }
            held += 1;
            held <= MAX_FAILURE_KEYS
        });
        let dropped = before - delta.failures.len();
        if dropped > 0 {
            self.refuse(|| format!("worker {node_id}: {dropped} new kinds of failure dropped (a test keeps at most {MAX_FAILURE_KEYS})"));
        }
    }
}
