//! The master against hostile peers on loopback: forged histogram headers, statistics and
//! `quit`s from connections that never registered, frames claiming huge lengths, connections
//! that never register; and a missing worker's users re-dispatched at the spawn rate.
//!
//! Well-behaved workers are the real DEALER driven by a small task; attackers speak raw ZMTP
//! over TCP. Every wait polls with a deadline.

use gsai_load::cluster::master::{MasterHandle, MasterNode, NodeConfig, PeerLimits, StartWhen};
use gsai_load::cluster::protocol::{map, Heartbeat, Message, ToMaster, ToWorker};
use gsai_load::cluster::transport::Dealer;
use gsai_load::cluster::zmtp::{self, SocketType};
use gsai_load::config::Plan;
use gsai_load::engine::{RunResult, StopReason};
use rmpv::Value;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// The longest any single wait in these tests may take.
const LIMIT: Duration = Duration::from_secs(10);

/// A master node on 127.0.0.1:0 with `limits`, and its log lines as they come.
async fn node(limits: PeerLimits) -> (MasterNode, Arc<Mutex<Vec<String>>>) {
    let node = MasterNode::bind_with(
        NodeConfig {
            bind_host: "127.0.0.1".into(),
            bind_port: 0,
            expect_workers: 1,
        },
        limits,
    )
    .await
    .expect("master binds");
    let notes = Arc::new(Mutex::new(Vec::new()));
    if let Some(mut rx) = node.take_notes() {
        let notes = notes.clone();
        tokio::spawn(async move {
            while let Some(n) = rx.recv().await {
                eprintln!("master: {n}");
                notes.lock().unwrap().push(n);
            }
        });
    }
    (node, notes)
}

fn plan(users: u64, spawn_rate: f64, run_time: Duration) -> Plan {
    let mut p = Plan::new("http://127.0.0.1:9", "m");
    p.users = users;
    p.spawn_rate = spawn_rate;
    p.run_time = Some(run_time);
    p.stop_timeout = Duration::ZERO;
    p
}

fn start(node: &MasterNode, plan: Plan, workers: usize) -> MasterHandle {
    node.start_test(
        plan,
        StartWhen::AfterWorkers {
            workers,
            max_wait: Some(LIMIT),
        },
    )
    .expect("test starts")
}

async fn result(handle: MasterHandle) -> RunResult {
    tokio::time::timeout(LIMIT * 3, handle.wait())
        .await
        .expect("the test ends in time")
        .expect("a result")
}

/// A well-behaved worker: registers, heartbeats every 300 ms, answers `stop` with
/// `client_stopped`, reports each spawn's user count, and sends what it is given.
struct GoodWorker {
    spawns: mpsc::UnboundedReceiver<u64>,
    outbox: mpsc::UnboundedSender<Value>,
    heartbeats: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for GoodWorker {
    fn drop(&mut self) {
        // Its DEALER goes with the task: the master sees the connection close.
        self.task.abort();
    }
}

impl GoodWorker {
    async fn join(port: u16, id: &str) -> Self {
        let mut d = Dealer::connect("127.0.0.1", port, id.as_bytes())
            .await
            .expect("worker connects");
        let id = id.to_string();
        let send = move |d: &Dealer, m: ToMaster| {
            let _ = d.send(m.to_message(&id).encode());
        };
        send(&d, ToMaster::ClientReady(Value::from(-1)));
        let (spawn_tx, spawns) = mpsc::unbounded_channel();
        let (outbox, mut out_rx) = mpsc::unbounded_channel::<Value>();
        let heartbeats = Arc::new(AtomicU64::new(0));
        let beats = heartbeats.clone();
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(300));
            loop {
                tokio::select! {
                    _ = tick.tick() => send(&d, ToMaster::Heartbeat(Heartbeat {
                        state: "running".into(),
                        cpu_percent: 1.0,
                        memory_bytes: None,
                        health: None,
                    })),
                    Some(stats) = out_rx.recv() => send(&d, ToMaster::Stats(stats)),
                    got = d.recv() => {
                        let Some(bytes) = got else { return };
                        let Ok(m) = Message::decode(&bytes) else { continue };
                        match ToWorker::parse(&m) {
                            Ok(ToWorker::Spawn(s)) => {
                                let _ = spawn_tx.send(s.user_count());
                            }
                            Ok(ToWorker::Stop) => send(&d, ToMaster::ClientStopped),
                            Ok(ToWorker::Heartbeat) => {
                                beats.fetch_add(1, Ordering::Relaxed);
                            }
                            _ => {}
                        }
                    }
                }
            }
        });
        Self {
            spawns,
            outbox,
            heartbeats,
            task,
        }
    }

    /// The next spawn's user count and when it came.
    async fn next_spawn(&mut self) -> (u64, Instant) {
        let n = tokio::time::timeout(LIMIT, self.spawns.recv())
            .await
            .expect("a spawn in time")
            .expect("worker running");
        (n, Instant::now())
    }

    /// Waits until a spawn asks for `users`.
    async fn spawned(&mut self, users: u64) {
        while self.next_spawn().await.0 != users {}
    }

    /// Waits until the master answers one more heartbeat than now.
    async fn answered(&self) {
        let seen = self.heartbeats.load(Ordering::Relaxed);
        let deadline = Instant::now() + LIMIT;
        while self.heartbeats.load(Ordering::Relaxed) <= seen {
            assert!(Instant::now() < deadline, "the master answers heartbeats");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// An attacker: raw TCP that completed the ZMTP handshake with `identity`.
struct Raw(TcpStream);

impl Raw {
    async fn connect(port: u16, identity: &str) -> Self {
        let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        zmtp::handshake(&mut s, SocketType::Dealer, identity.as_bytes())
            .await
            .expect("handshake");
        Self(s)
    }

    async fn send(&mut self, kind: &str, data: Value, node_id: &str) {
        let m = Message::new(kind, data, node_id).encode();
        self.0
            .write_all(&zmtp::encode_message(&[&m]))
            .await
            .unwrap();
    }

    /// Whether the master closes the connection within `limit` (we send nothing meanwhile).
    async fn closed_within(&mut self, limit: Duration) -> bool {
        let mut buf = [0u8; 1024];
        tokio::time::timeout(limit, async {
            loop {
                match self.0.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        })
        .await
        .is_ok()
    }
}

fn unix_now_s() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// A Locust-style stats report of `requests` requests of 100 ms on `POST /x`.
fn locust_stats(requests: u64) -> Value {
    let now = unix_now_s();
    let entry = map(vec![
        ("name", Value::from("/x")),
        ("method", Value::from("POST")),
        ("num_requests", Value::from(requests)),
        ("num_failures", Value::from(0)),
        (
            "response_times",
            Value::Map(vec![(Value::from(100), Value::from(requests))]),
        ),
        ("total_response_time", Value::F64(100.0)),
        ("min_response_time", Value::F64(100.0)),
        ("max_response_time", Value::F64(100.0)),
        ("start_time", Value::F64(now)),
        ("last_request_timestamp", Value::F64(now)),
    ]);
    map(vec![
        ("stats", Value::Array(vec![entry])),
        ("errors", Value::Map(Vec::new())),
        ("user_count", Value::from(1)),
    ])
}

/// A gsai `stats` report whose one histogram is 60-odd real bytes with an HDR V2 header that
/// claims a payload of u32::MAX bytes (4 GiB).
fn forged_hdr_stats() -> Value {
    use hdrhistogram::serialization::{Serializer, V2Serializer};
    let mut h = hdrhistogram::Histogram::<u64>::new(3).unwrap();
    h.record(1000).unwrap();
    let mut bytes = Vec::new();
    V2Serializer::new().serialize(&h, &mut bytes).unwrap();
    bytes[4..8].copy_from_slice(&u32::MAX.to_be_bytes());
    let metric = Value::Array(vec![
        Value::Binary(bytes),
        Value::from(1000),
        Value::from(1000),
        Value::from(1000),
    ]);
    let row = map(vec![
        ("method", Value::from("POST")),
        ("name", Value::from("/x")),
        ("requests", Value::from(1)),
        ("metrics", map(vec![("ttft_us", metric)])),
    ]);
    let gsai = map(vec![
        ("version", Value::from(1)),
        ("rows", Value::Array(vec![row])),
        ("failures", Value::Array(Vec::new())),
        ("in_flight", Value::from(0)),
    ]);
    map(vec![
        ("stats", Value::Array(Vec::new())),
        ("user_count", Value::from(1)),
        ("gsai", gsai),
    ])
}

fn logged(notes: &Mutex<Vec<String>>, needle: &str) -> bool {
    notes.lock().unwrap().iter().any(|n| n.contains(needle))
}

/// (a) Ten `stats` messages of ~200 bytes whose histogram header claims 4 GiB: refused without
/// allocating the claim; the test keeps its `-t`, and what the worker reports next still counts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_histogram_lengths_neither_allocate_nor_delay_the_test() {
    let (node, notes) = node(PeerLimits::default()).await;
    let port = node.local_addr().port();
    let run_time = Duration::from_secs(2);
    let handle = start(&node, plan(1, 10.0, run_time), 1);
    let mut w = GoodWorker::join(port, "w").await;
    w.spawned(1).await;
    let started = Instant::now();
    let rss_before = rss_bytes();
    for _ in 0..10 {
        w.outbox.send(forged_hdr_stats()).unwrap();
    }
    w.outbox.send(locust_stats(3)).unwrap();
    let r = result(handle).await;
    let took = started.elapsed();
    assert!(
        took < run_time + Duration::from_secs(3),
        "the test kept its -t: {took:?}"
    );
    assert_eq!(r.stop_reason, StopReason::RunTime);
    assert_eq!(r.stats.total().requests, 3, "only the real report counts");
    assert!(logged(&notes, "claims a 4294967295-byte payload"));
    // One 4 GiB claim honoured would show here many times over (the test binary runs other
    // tests in parallel, hence the generous margin).
    let grown = rss_bytes().saturating_sub(rss_before);
    assert!(grown < 512 << 20, "RSS grew by {grown} bytes");
    node.shutdown().await;
}

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// (b) Statistics from a connection that never sent `client_ready` (under its own id, or a
/// registered worker's) are not merged; a count near u64::MAX would have wrapped the totals.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_from_unregistered_connections_are_not_merged() {
    let (node, notes) = node(PeerLimits::default()).await;
    let port = node.local_addr().port();
    let handle = start(&node, plan(1, 10.0, Duration::from_secs(2)), 1);
    let mut w = GoodWorker::join(port, "w").await;
    w.spawned(1).await;
    let mut ghost = Raw::connect(port, "ghost").await;
    ghost
        .send("stats", locust_stats(u64::MAX - 1), "ghost")
        .await;
    ghost.send("stats", locust_stats(1000), "w").await;
    w.outbox.send(locust_stats(3)).unwrap();
    let r = result(handle).await;
    assert_eq!(r.stats.total().requests, 3);
    assert_eq!(r.stats.rows.iter().map(|row| row.requests).sum::<u64>(), 3);
    assert!(logged(&notes, "dropped a 'stats' message"));
    node.shutdown().await;
}

/// (c) A `quit` carrying a real worker's id from another connection changes nothing: the test
/// runs to its `-t` (the spoof used to stop it as "the last worker is gone").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spoofed_quit_does_not_stop_the_test() {
    let (node, notes) = node(PeerLimits::default()).await;
    let port = node.local_addr().port();
    let handle = start(&node, plan(2, 10.0, Duration::from_secs(2)), 1);
    let mut w = GoodWorker::join(port, "w").await;
    w.spawned(2).await;
    // A registered attacker (then gone), and one that never registered.
    let mut evil = Raw::connect(port, "evil").await;
    evil.send("client_ready", Value::from(-1), "evil").await;
    evil.send("quit", Value::Nil, "w").await;
    drop(evil);
    let mut anonymous = Raw::connect(port, "").await;
    anonymous.send("quit", Value::Nil, "w").await;
    let r = result(handle).await;
    assert_eq!(r.stop_reason, StopReason::RunTime, "ran to its -t");
    assert!(logged(&notes, "dropped a 'quit' message for worker w"));
    assert!(!logged(&notes, "worker w quit"));
    node.shutdown().await;
}

/// (d) A frame claiming 60 MiB (within the old 64 MiB limit, above today's 2 MiB) closes its
/// connection at once, without waiting for (or buffering) the body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_claiming_a_huge_length_is_closed_without_buffering() {
    let (node, _notes) = node(PeerLimits::default()).await;
    let port = node.local_addr().port();
    for claim in [60u64 << 20, u64::MAX] {
        let mut raw = Raw::connect(port, "big").await;
        let mut header = vec![0x02];
        header.extend_from_slice(&claim.to_be_bytes());
        header.extend_from_slice(&[0u8; 100]);
        raw.0.write_all(&header).await.unwrap();
        assert!(
            raw.closed_within(Duration::from_secs(5)).await,
            "a {claim}-byte claim closes the connection"
        );
    }
    node.shutdown().await;
}

/// (e) A connection that completes the handshake but never sends `client_ready` is closed after
/// the register timeout; a registered worker's connection is not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_that_never_register_are_closed_after_the_timeout() {
    let limits = PeerLimits {
        register_timeout: Duration::from_millis(300),
        ..PeerLimits::default()
    };
    let (node, _notes) = node(limits).await;
    let port = node.local_addr().port();
    let w = GoodWorker::join(port, "w").await;
    w.answered().await;
    let mut idle = Raw::connect(port, "idle").await;
    let opened = Instant::now();
    assert!(idle.closed_within(Duration::from_secs(5)).await);
    assert!(
        opened.elapsed() >= Duration::from_millis(250),
        "not before the timeout"
    );
    // The registered worker, connected before the idle one, is still served.
    w.answered().await;
    node.shutdown().await;
}

/// A missing worker's users go to the others at the spawn rate (Locust's dispatcher), not at
/// once: 6 users at 2/s over two workers (3 + 3); one leaves; the other goes to 5, then 6.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_workers_users_are_redispatched_at_the_spawn_rate() {
    let (node, _notes) = node(PeerLimits::default()).await;
    let port = node.local_addr().port();
    let handle = start(&node, plan(6, 2.0, Duration::from_secs(30)), 2);
    let mut a = GoodWorker::join(port, "a").await;
    let mut b = GoodWorker::join(port, "b").await;
    a.spawned(3).await;
    b.spawned(3).await;
    drop(b);
    let (first, t1) = a.next_spawn().await;
    assert_eq!(
        first, 5,
        "one step of floor(rate) = 2 users, not all 3 at once"
    );
    let (second, t2) = a.next_spawn().await;
    assert_eq!(second, 6);
    assert!(
        t2 - t1 >= Duration::from_millis(800),
        "paced at 2 users/s: {:?}",
        t2 - t1
    );
    handle.stop();
    let r = result(handle).await;
    assert_eq!(r.stop_reason, StopReason::Stopped);
    node.shutdown().await;
}
