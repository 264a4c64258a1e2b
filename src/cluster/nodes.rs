//! The master's table of workers: registration with stable indices, liveness (Locust's
//! heartbeat counting), the even spread of users, and the public view the web UI shows.

use crate::observe::health::{HealthNow, WorkerHealth};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

/// Heartbeats a worker may miss before it is missing (Locust's `HEARTBEAT_LIVENESS`).
pub const HEARTBEAT_LIVENESS: i32 = 3;
/// Most workers the table keeps. Past it, a new worker takes the place of the longest-silent
/// one that is gone (missing or quit); when none is gone, it is refused. Without this, a peer
/// registering fresh ids in a loop would grow the table (and the web UI's list) without end.
pub const MAX_KNOWN_WORKERS: usize = 2048;

/// What the master knows of one worker.
#[derive(Clone, Debug)]
pub struct WorkerNode {
    /// Node id (the ZeroMQ identity).
    pub id: String,
    /// Stable 0-based index, kept across re-registrations.
    pub index: u64,
    /// Last state the worker reported (`ready`, `spawning`, `running`, `stopped`...).
    pub state: String,
    /// Users the worker reported running.
    pub users: u64,
    /// Users the master asked it to run.
    pub assigned: u64,
    /// CPU use, percent of one core.
    pub cpu_percent: f64,
    /// Resident memory, bytes.
    pub memory_bytes: Option<u64>,
    /// Its self-check at its last heartbeat (gsai-load workers only).
    pub health: Option<HealthNow>,
    /// Requests in flight at its last report.
    pub in_flight: u64,
    /// Finished requests it has reported.
    pub requests: u64,
    /// Countdown to missing: reset on each heartbeat, decremented each second.
    pub liveness: i32,
    /// When its last heartbeat came.
    pub last_heartbeat: Instant,
    /// Silent or disconnected: its users have been given to others.
    pub missing: bool,
    /// It said `client_stopped` or `quit`: it takes no users until it registers again.
    pub inactive: bool,
}

impl WorkerNode {
    /// Whether users may be given to it.
    pub fn active(&self) -> bool {
        !self.missing && !self.inactive
    }
}

/// A worker as the web UI's workers tab shows it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WorkerView {
    /// Node id.
    pub id: String,
    /// Stable index.
    pub index: u64,
    /// Reported state, or `missing`.
    pub state: String,
    /// Users running.
    pub users: u64,
    /// CPU use, percent of one core.
    pub cpu_percent: f64,
    /// Resident memory, bytes, when known.
    pub memory_bytes: Option<u64>,
    /// Seconds since its last heartbeat.
    pub heartbeat_age_s: f64,
    /// Silent or disconnected.
    pub missing: bool,
    /// Finished requests it has reported.
    pub requests: u64,
}

impl WorkerView {
    /// Whether a new test would give it users: connected, not missing, not gone for good.
    pub fn available(&self) -> bool {
        !self.missing && self.state != "quit"
    }
}

/// All workers the master has heard of.
#[derive(Debug, Default)]
pub struct Nodes {
    nodes: BTreeMap<String, WorkerNode>,
    indexes: HashMap<String, u64>,
    next_index: u64,
}

impl Nodes {
    /// Registers (or re-registers) a worker; returns its stable index, or `None` when the table
    /// is full of workers that are not gone ([`MAX_KNOWN_WORKERS`]).
    pub fn register(&mut self, id: &str) -> Option<u64> {
        if !self.nodes.contains_key(id) && self.nodes.len() >= MAX_KNOWN_WORKERS {
            let gone = self
                .nodes
                .values()
                .filter(|n| n.missing || n.state == "quit")
                .min_by_key(|n| n.last_heartbeat)
                .map(|n| n.id.clone())?;
            self.nodes.remove(&gone);
            self.indexes.remove(&gone);
        }
        let next = self.next_index;
        let index = *self.indexes.entry(id.to_string()).or_insert_with(|| next);
        if index == next {
            self.next_index += 1;
        }
        let requests = self.nodes.get(id).map_or(0, |n| n.requests);
        self.nodes.insert(
            id.to_string(),
            WorkerNode {
                id: id.to_string(),
                index,
                state: "ready".into(),
                users: 0,
                assigned: 0,
                cpu_percent: 0.0,
                memory_bytes: None,
                health: None,
                in_flight: 0,
                requests,
                liveness: HEARTBEAT_LIVENESS,
                last_heartbeat: Instant::now(),
                missing: false,
                inactive: false,
            },
        );
        Some(index)
    }

    /// The worker with this id.
    pub fn get_mut(&mut self, id: &str) -> Option<&mut WorkerNode> {
        self.nodes.get_mut(id)
    }

    /// Every worker, by id.
    pub fn all(&self) -> impl Iterator<Item = &WorkerNode> {
        self.nodes.values()
    }

    /// Workers that may run users, by index.
    pub fn active_ids(&self) -> Vec<String> {
        let mut v: Vec<&WorkerNode> = self.nodes.values().filter(|n| n.active()).collect();
        v.sort_by_key(|n| n.index);
        v.into_iter().map(|n| n.id.clone()).collect()
    }

    /// Makes the workers that stopped after the last test (and are still connected) take users
    /// again, without waiting for their `client_ready`; forgets every worker's old share.
    pub fn prepare_test(&mut self) {
        for n in self.nodes.values_mut() {
            n.assigned = 0;
            if n.inactive && !n.missing && n.state != "quit" {
                n.inactive = false;
            }
        }
    }

    /// Counts one second of silence; returns the ids that just became missing, each with the
    /// users it held (see [`Nodes::mark_missing`]).
    pub fn tick(&mut self) -> Vec<(String, u64)> {
        let mut gone = Vec::new();
        // Stopped or departed workers hold no users: their silence changes nothing.
        for n in self.nodes.values_mut().filter(|n| n.active()) {
            n.liveness -= 1;
            if n.liveness < 0 {
                gone.push(n.id.clone());
            }
        }
        gone.into_iter()
            .filter_map(|id| Some((id.clone(), self.mark_missing(&id)?)))
            .collect()
    }

    /// Marks a worker missing; returns the users it was assigned when it was active (they must
    /// go to others), `None` if it already was missing, holds no users (stopped or quit), or is
    /// unknown.
    pub fn mark_missing(&mut self, id: &str) -> Option<u64> {
        match self.nodes.get_mut(id) {
            Some(n) if n.active() => {
                let held = n.assigned;
                n.missing = true;
                n.users = 0;
                n.assigned = 0;
                n.in_flight = 0;
                Some(held)
            }
            // A worker that had stopped and then left holds no users, but is gone all the same.
            Some(n) if !n.missing && n.state != "quit" => {
                n.missing = true;
                None
            }
            _ => None,
        }
    }

    /// Users reported over all active workers.
    pub fn users(&self) -> u64 {
        // Peer-reported figures: saturate rather than overflow.
        self.nodes
            .values()
            .filter(|n| !n.missing)
            .fold(0, |t, n| t.saturating_add(n.users))
    }

    /// The worst self-check over the reachable workers (ok when none reports one).
    pub fn health(&self) -> HealthNow {
        self.nodes
            .values()
            .filter(|n| !n.missing)
            .filter_map(|n| n.health)
            .fold(HealthNow::default(), HealthNow::worst)
    }

    /// Each worker's self-check, for the test's result (workers that sent one).
    pub fn worker_health(&self) -> Vec<WorkerHealth> {
        let mut v: Vec<(u64, WorkerHealth)> = self
            .nodes
            .iter()
            .filter_map(|(id, n)| n.health.map(|h| (n.index, h.of_worker(id))))
            .collect();
        v.sort_by_key(|(i, _)| *i);
        v.into_iter().map(|(_, h)| h).collect()
    }

    /// Requests in flight over all reachable workers.
    pub fn in_flight(&self) -> u64 {
        self.nodes
            .values()
            .filter(|n| !n.missing)
            .fold(0, |t, n| t.saturating_add(n.in_flight))
    }

    /// The public view, by index.
    pub fn views(&self) -> Vec<WorkerView> {
        let mut v: Vec<WorkerView> = self
            .nodes
            .values()
            .map(|n| WorkerView {
                id: n.id.clone(),
                index: n.index,
                state: if n.missing {
                    "missing".into()
                } else {
                    n.state.clone()
                },
                users: n.users,
                cpu_percent: n.cpu_percent,
                memory_bytes: n.memory_bytes,
                heartbeat_age_s: n.last_heartbeat.elapsed().as_secs_f64(),
                missing: n.missing,
                requests: n.requests,
            })
            .collect();
        v.sort_by_key(|w| w.index);
        v
    }
}

/// Spreads `total` users evenly over `workers` (in order): the first `total % n` get one more.
pub fn distribute(total: u64, workers: &[String]) -> Vec<(String, u64)> {
    let n = workers.len() as u64;
    if n == 0 {
        return Vec::new();
    }
    workers
        .iter()
        .enumerate()
        .map(|(i, id)| (id.clone(), total / n + u64::from((i as u64) < total % n)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_are_spread_evenly_in_index_order() {
        let ids: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        let d = distribute(10, &ids);
        assert_eq!(d.iter().map(|x| x.1).collect::<Vec<_>>(), vec![4, 3, 3]);
        assert_eq!(d.iter().map(|x| x.1).sum::<u64>(), 10);
        assert!(distribute(5, &[]).is_empty());
        assert_eq!(
            distribute(2, &ids).iter().map(|x| x.1).collect::<Vec<_>>(),
            vec![1, 1, 0]
        );
    }

    #[test]
    fn liveness_counts_down_to_missing_and_indices_are_stable() {
        let mut nodes = Nodes::default();
        assert_eq!(nodes.register("a"), Some(0));
        assert_eq!(nodes.register("b"), Some(1));
        nodes.get_mut("b").unwrap().assigned = 3;
        for _ in 0..HEARTBEAT_LIVENESS {
            assert!(nodes.tick().is_empty());
        }
        nodes.get_mut("a").unwrap().liveness = HEARTBEAT_LIVENESS;
        assert_eq!(nodes.tick(), vec![("b".to_string(), 3)]);
        assert_eq!(nodes.active_ids(), vec!["a".to_string()]);
        assert_eq!(nodes.views()[1].state, "missing");
        assert_eq!(nodes.mark_missing("b"), None, "already missing");
        assert_eq!(
            nodes.register("b"),
            Some(1),
            "same index on re-registration"
        );
        assert_eq!(nodes.active_ids().len(), 2);
    }

    #[test]
    fn stopped_workers_take_users_in_the_next_test_and_quit_ones_do_not() {
        let mut nodes = Nodes::default();
        for id in ["a", "b", "c"] {
            nodes.register(id);
        }
        for (id, state) in [("a", "stopped"), ("b", "quit")] {
            let n = nodes.get_mut(id).unwrap();
            n.state = state.into();
            n.inactive = true;
            n.assigned = 2;
        }
        assert_eq!(nodes.active_ids(), vec!["c".to_string()]);
        nodes.prepare_test();
        assert_eq!(nodes.active_ids(), vec!["a".to_string(), "c".to_string()]);
        assert!(nodes.all().all(|n| n.assigned == 0), "old shares forgotten");
        // A stopped worker that leaves holds no users (nothing to move) but shows as missing.
        nodes.get_mut("a").unwrap().inactive = true;
        assert_eq!(nodes.mark_missing("a"), None);
        let views = nodes.views();
        assert!(views[0].missing && !views[0].available());
        assert!(!views[1].available(), "quit");
        assert!(views[2].available());
    }

    #[test]
    fn the_table_is_bounded_and_forgets_gone_workers_first() {
        let mut nodes = Nodes::default();
        for i in 0..MAX_KNOWN_WORKERS {
            assert!(nodes.register(&format!("w{i}")).is_some());
        }
        assert_eq!(nodes.register("one-more"), None, "full of live workers");
        assert!(
            nodes.register("w5").is_some(),
            "a known worker re-registers"
        );
        nodes.mark_missing("w7");
        let index = nodes
            .register("one-more")
            .expect("takes a gone worker's place");
        assert_eq!(index, MAX_KNOWN_WORKERS as u64, "a fresh index");
        assert_eq!(nodes.all().count(), MAX_KNOWN_WORKERS);
        assert!(nodes.all().all(|n| n.id != "w7"));
    }
}
