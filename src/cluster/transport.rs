//! The transport seam: a ROUTER that binds (the master) and a DEALER that connects (a worker),
//! exchanging opaque payloads. Above this file everything deals in payload bytes and
//! [`super::protocol::Message`]; below it is our own ZMTP 3.0 ([`super::zmtp`]) over tokio TCP.
//!
//! Semantics follow ZeroMQ's where Locust relies on them: a DEALER's identity is its node id;
//! the master addresses a worker by that identity; a message to an unknown identity is dropped.
//! Where ZeroMQ hides things we do not: a closed connection is reported (as
//! [`RouterEvent::Disconnected`] or as the end of [`Dealer::recv`]) so that the master can mark
//! a worker missing at once and a worker can notice that its master is gone. A second
//! connection with an identity already in use takes it over (libzmq's `ROUTER_HANDOVER`), so a
//! worker that reconnects is reachable again at once.
//!
//! The ROUTER's port is open to anything on the network, so it bounds what peers can cost: at
//! most [`MAX_CONNECTIONS`] connections, messages of at most [`zmtp::MAX_MESSAGE_BYTES`], all
//! connections together holding at most [`MAX_BUFFERED_BYTES`] of messages not yet handled, and
//! at most [`SEND_QUEUE_MESSAGES`] messages queued to a peer that does not read (ZeroMQ's
//! high-water mark: more are dropped). Every event names its connection ([`ConnId`]), so the
//! master can tell a worker's own connection from another that claims its id.

use super::zmtp::{self, Budget, SocketType, ZmtpError};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

/// How long a new connection may take to complete the ZMTP handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Most connections the ROUTER keeps at once (handshaking or not); more are closed at accept.
pub const MAX_CONNECTIONS: usize = 1024;
/// Bytes of received messages not yet handled that all connections together may hold. A frame
/// that would pass it closes its connection (a worker reconnects; an attacker gets nothing).
pub const MAX_BUFFERED_BYTES: usize = 64 * 1024 * 1024;
/// Messages queued to one peer before more are dropped (ZeroMQ's default high-water mark), so a
/// peer that sends but never reads cannot grow the master's memory.
pub const SEND_QUEUE_MESSAGES: usize = 1000;

/// Which connection an event came from: unique for the life of a [`Router`].
pub type ConnId = u64;

/// How much a ROUTER lets its peers cost (defaults: the constants above).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouterLimits {
    /// Most connections at once.
    pub max_connections: usize,
    /// Bytes of unhandled messages over all connections.
    pub max_buffered_bytes: usize,
}

impl Default for RouterLimits {
    fn default() -> Self {
        Self {
            max_connections: MAX_CONNECTIONS,
            max_buffered_bytes: MAX_BUFFERED_BYTES,
        }
    }
}

/// Why a connection could not be made or used.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// Binding the master's port failed.
    #[error("cannot listen on {addr}: {source} (is another master running? pick another --master-bind-port)")]
    Bind {
        /// host:port asked for.
        addr: String,
        /// The cause.
        source: std::io::Error,
    },
    /// Connecting to the master failed.
    #[error("cannot connect to the master at {addr}: {source} (check --master-host and --master-port, and that the master runs)")]
    Connect {
        /// host:port asked for.
        addr: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The peer did not finish the handshake in time.
    #[error("{addr} accepted the connection but did not complete the ZeroMQ handshake in time (is it a gsai-load or Locust master?)")]
    HandshakeTimeout {
        /// host:port.
        addr: String,
    },
    /// The handshake failed.
    #[error(transparent)]
    Zmtp(#[from] ZmtpError),
    /// The connection is closed.
    #[error("the connection is closed")]
    Closed,
    /// The peer has not read the last [`SEND_QUEUE_MESSAGES`] messages.
    #[error("the peer does not read its messages ({SEND_QUEUE_MESSAGES} queued)")]
    Full,
}

/// Renders host and port as `host:port`, bracketing IPv6 literals.
pub fn join_host_port(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// What a connection's writer task is asked to do.
#[derive(Debug)]
enum Out {
    /// Write one message of these frames.
    Message(Vec<Vec<u8>>),
    /// Signal once everything queued before has been written.
    Flush(oneshot::Sender<()>),
}

/// Writes queued payloads as single-frame messages until the queue closes or a write fails.
async fn write_loop(
    mut w: OwnedWriteHalf,
    mut queue: mpsc::Receiver<Out>,
    cancel: CancellationToken,
) {
    loop {
        let out = tokio::select! {
            _ = cancel.cancelled() => break,
            f = queue.recv() => match f { Some(f) => f, None => break },
        };
        match out {
            Out::Message(frames) => {
                let refs: Vec<&[u8]> = frames.iter().map(Vec::as_slice).collect();
                if w.write_all(&zmtp::encode_message(&refs)).await.is_err() {
                    break;
                }
            }
            Out::Flush(done) => {
                let _ = w.flush().await;
                let _ = done.send(());
            }
        }
    }
    cancel.cancel();
    let _ = w.shutdown().await;
}

/// Reads messages and hands each one to `deliver` until EOF, an error (a limit broken
/// included) or `cancel`.
async fn read_loop(
    r: OwnedReadHalf,
    cancel: CancellationToken,
    budget: Option<Budget>,
    mut deliver: impl FnMut(zmtp::Received) -> bool,
) {
    let mut r = BufReader::new(r);
    loop {
        let msg = tokio::select! {
            _ = cancel.cancelled() => break,
            m = zmtp::read_message(&mut r, budget.as_ref()) => m,
        };
        match msg {
            Ok(received) => {
                if !deliver(received) {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    cancel.cancel();
}

/// The worker's end: one connection to the master.
#[derive(Debug)]
pub struct Dealer {
    outgoing: mpsc::Sender<Out>,
    incoming: mpsc::UnboundedReceiver<Vec<u8>>,
    cancel: CancellationToken,
}

impl Dealer {
    /// Connects to `host:port` and handshakes as a DEALER with `identity`.
    pub async fn connect(host: &str, port: u16, identity: &[u8]) -> Result<Self, TransportError> {
        let addr = join_host_port(host, port);
        let connect = tokio::time::timeout(HANDSHAKE_TIMEOUT, TcpStream::connect((host, port)));
        let mut stream = match connect.await {
            Ok(Ok(s)) => s,
            Ok(Err(source)) => return Err(TransportError::Connect { addr, source }),
            Err(_) => {
                return Err(TransportError::Connect {
                    addr,
                    source: std::io::ErrorKind::TimedOut.into(),
                })
            }
        };
        let _ = stream.set_nodelay(true);
        match tokio::time::timeout(
            HANDSHAKE_TIMEOUT,
            zmtp::handshake(&mut stream, SocketType::Dealer, identity),
        )
        .await
        {
            Ok(r) => r?,
            Err(_) => return Err(TransportError::HandshakeTimeout { addr }),
        };
        let (r, w) = stream.into_split();
        let cancel = CancellationToken::new();
        let (out_tx, out_rx) = mpsc::channel(SEND_QUEUE_MESSAGES);
        let (in_tx, in_rx) = mpsc::unbounded_channel();
        tokio::spawn(write_loop(w, out_rx, cancel.clone()));
        // One master: its messages are bounded in size by the reader, and handled as they come.
        tokio::spawn(read_loop(r, cancel.clone(), None, move |received| {
            // A ROUTER's reply reaches a DEALER without the identity frame; Locust's
            // messages are one frame, so the first frame is the message.
            match received.frames.into_iter().next() {
                Some(payload) => in_tx.send(payload).is_ok(),
                None => true,
            }
        }));
        Ok(Self {
            outgoing: out_tx,
            incoming: in_rx,
            cancel,
        })
    }

    /// Queues one message. Fails once the connection is closed, or when the master has not
    /// read the last [`SEND_QUEUE_MESSAGES`].
    pub fn send(&self, payload: Vec<u8>) -> Result<(), TransportError> {
        if self.cancel.is_cancelled() {
            return Err(TransportError::Closed);
        }
        self.outgoing
            .try_send(Out::Message(vec![payload]))
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => TransportError::Full,
                mpsc::error::TrySendError::Closed(_) => TransportError::Closed,
            })
    }

    /// The next message from the master; `None` once the connection is closed.
    pub async fn recv(&mut self) -> Option<Vec<u8>> {
        self.incoming.recv().await
    }

    /// Closes the connection (also done on drop). Messages already queued may be lost, so
    /// call [`Dealer::flush`] first when they matter.
    pub fn close(&self) {
        self.cancel.cancel();
    }

    /// Waits until everything queued so far has been written (or the connection is closed),
    /// at most `limit`.
    pub async fn flush(&self, limit: Duration) {
        let (tx, rx) = oneshot::channel();
        let _ = tokio::time::timeout(limit, async {
            if self.outgoing.send(Out::Flush(tx)).await.is_ok() {
                let _ = rx.await;
            }
        })
        .await;
    }
}

impl Drop for Dealer {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// A message's payload as the ROUTER received it. It holds its share of the ROUTER's buffer
/// budget until dropped, so handle it and let it go.
#[derive(Debug)]
pub struct Payload {
    /// The bytes (the message's first frame).
    pub bytes: Vec<u8>,
    _permit: Option<OwnedSemaphorePermit>,
}

impl Payload {
    /// A payload that holds no budget (tests).
    pub fn new(bytes: Vec<u8>) -> Self {
        Self {
            bytes,
            _permit: None,
        }
    }
}

impl PartialEq for Payload {
    fn eq(&self, other: &Self) -> bool {
        self.bytes == other.bytes
    }
}

impl Eq for Payload {}

/// What the master's ROUTER hears.
#[derive(Debug, PartialEq, Eq)]
pub enum RouterEvent {
    /// A peer completed the handshake with this identity.
    Connected {
        /// Its connection.
        conn: ConnId,
        /// Its identity (the DEALER's, or a generated one).
        identity: Vec<u8>,
    },
    /// A message from the peer with this identity, on connection `conn`.
    Message {
        /// The connection it came on.
        conn: ConnId,
        /// That connection's identity.
        identity: Vec<u8>,
        /// The message.
        payload: Payload,
    },
    /// The peer's connection closed (only the identity's current connection reports it).
    Disconnected {
        /// Its connection.
        conn: ConnId,
        /// Its identity.
        identity: Vec<u8>,
    },
}

struct Slot {
    conn: ConnId,
    tx: mpsc::Sender<Out>,
    cancel: CancellationToken,
}

type Peers = Arc<Mutex<HashMap<Vec<u8>, Slot>>>;

/// The master's end: a listening ROUTER.
pub struct Router {
    events: mpsc::UnboundedReceiver<RouterEvent>,
    peers: Peers,
    local: SocketAddr,
    shutdown: CancellationToken,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router")
            .field("local", &self.local)
            .finish()
    }
}

impl Router {
    /// Binds `host:port` (`*` means every interface; port 0 picks a free one) with the default
    /// [`RouterLimits`].
    pub async fn bind(host: &str, port: u16) -> Result<Self, TransportError> {
        Self::bind_with(host, port, RouterLimits::default()).await
    }

    /// Binds `host:port` with these limits.
    pub async fn bind_with(
        host: &str,
        port: u16,
        limits: RouterLimits,
    ) -> Result<Self, TransportError> {
        let host = if host == "*" { "0.0.0.0" } else { host };
        let addr = join_host_port(host, port);
        let listener =
            TcpListener::bind((host, port))
                .await
                .map_err(|source| TransportError::Bind {
                    addr: addr.clone(),
                    source,
                })?;
        let local = listener
            .local_addr()
            .map_err(|source| TransportError::Bind { addr, source })?;
        let (ev_tx, ev_rx) = mpsc::unbounded_channel();
        let peers: Peers = Arc::default();
        let shutdown = CancellationToken::new();
        tokio::spawn(accept_loop(
            listener,
            limits,
            peers.clone(),
            ev_tx,
            shutdown.clone(),
        ));
        Ok(Self {
            events: ev_rx,
            peers,
            local,
            shutdown,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The next event; `None` only after shutdown.
    pub async fn recv(&mut self) -> Option<RouterEvent> {
        self.events.recv().await
    }

    /// Sends `payload` to the peer with `identity`. Returns false (and drops the message, as a
    /// ZeroMQ ROUTER does) when no such peer is connected or its queue is full.
    pub fn send(&self, identity: &[u8], payload: Vec<u8>) -> bool {
        let peers = self.peers.lock().unwrap_or_else(|e| e.into_inner());
        match peers.get(identity) {
            Some(slot) => slot.tx.try_send(Out::Message(vec![payload])).is_ok(),
            None => false,
        }
    }

    /// Closes connection `conn` of `identity`, if it still holds that identity. Its
    /// [`RouterEvent::Disconnected`] follows.
    pub fn close(&self, identity: &[u8], conn: ConnId) {
        let peers = self.peers.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(slot) = peers.get(identity).filter(|s| s.conn == conn) {
            slot.cancel.cancel();
        }
    }

    /// Waits until everything queued to every peer has been written, at most `limit`.
    pub async fn flush_all(&self, limit: Duration) {
        let waits: Vec<_> = {
            let peers = self.peers.lock().unwrap_or_else(|e| e.into_inner());
            peers
                .values()
                .filter_map(|slot| {
                    let (tx, rx) = oneshot::channel();
                    slot.tx.try_send(Out::Flush(tx)).ok().map(|_| rx)
                })
                .collect()
        };
        let _ = tokio::time::timeout(limit, async {
            for w in waits {
                let _ = w.await;
            }
        })
        .await;
    }

    /// Waits until every peer has closed its connection, for at most `limit`. Closing a socket
    /// whose peer is still sending (heartbeats) makes the kernel answer with a reset, and a reset
    /// can destroy what the peer has not read yet — the `quit` just sent. So after telling every
    /// worker to quit, the master lets them hang up first.
    pub async fn wait_disconnected(&self, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        while !self.connected().is_empty() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Identities connected now.
    pub fn connected(&self) -> Vec<Vec<u8>> {
        let peers = self.peers.lock().unwrap_or_else(|e| e.into_inner());
        peers.keys().cloned().collect()
    }
}

impl Drop for Router {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Counts a live connection for as long as it lives.
struct Live(Arc<AtomicUsize>);

impl Drop for Live {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn accept_loop(
    listener: TcpListener,
    limits: RouterLimits,
    peers: Peers,
    events: mpsc::UnboundedSender<RouterEvent>,
    shutdown: CancellationToken,
) {
    let next_conn = AtomicU64::new(1);
    let live = Arc::new(AtomicUsize::new(0));
    let budget: Budget = Arc::new(Semaphore::new(limits.max_buffered_bytes));
    loop {
        let (stream, _) = tokio::select! {
            _ = shutdown.cancelled() => break,
            a = listener.accept() => match a {
                Ok(a) => a,
                // Out of file descriptors and the like: back off rather than spin.
                Err(_) => { tokio::time::sleep(Duration::from_millis(100)).await; continue }
            },
        };
        if live.load(Ordering::Relaxed) >= limits.max_connections {
            // Refused: the stream is dropped (closed) before any byte is read or buffered.
            drop(stream);
            continue;
        }
        live.fetch_add(1, Ordering::Relaxed);
        let conn = next_conn.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(serve_peer(
            stream,
            Peer {
                conn,
                _live: Live(live.clone()),
                budget: budget.clone(),
            },
            peers.clone(),
            events.clone(),
            shutdown.child_token(),
        ));
    }
}

/// What a connection's task owns besides its stream.
struct Peer {
    conn: ConnId,
    /// Released when the task ends.
    _live: Live,
    budget: Budget,
}

async fn serve_peer(
    mut stream: TcpStream,
    peer: Peer,
    peers: Peers,
    events: mpsc::UnboundedSender<RouterEvent>,
    cancel: CancellationToken,
) {
    let conn = peer.conn;
    let _ = stream.set_nodelay(true);
    let ready = match tokio::time::timeout(
        HANDSHAKE_TIMEOUT,
        zmtp::handshake(&mut stream, SocketType::Router, b""),
    )
    .await
    {
        Ok(Ok(r)) => r,
        // Not a ZeroMQ peer, or too slow: nothing to report, the connection just ends.
        _ => return,
    };
    let identity = if ready.identity.is_empty() {
        // libzmq's convention for anonymous peers: a zero byte and a 32-bit number.
        let mut id = vec![0u8];
        id.extend_from_slice(&(conn as u32).to_be_bytes());
        id
    } else {
        ready.identity
    };
    let (r, w) = stream.into_split();
    let (tx, rx) = mpsc::channel(SEND_QUEUE_MESSAGES);
    {
        let mut p = peers.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(old) = p.insert(
            identity.clone(),
            Slot {
                conn,
                tx,
                cancel: cancel.clone(),
            },
        ) {
            old.cancel.cancel();
        }
    }
    let _ = events.send(RouterEvent::Connected {
        conn,
        identity: identity.clone(),
    });
    tokio::spawn(write_loop(w, rx, cancel.clone()));
    let id = identity.clone();
    let ev = events.clone();
    read_loop(r, cancel.clone(), Some(peer.budget), move |received| {
        let zmtp::Received { frames, permit } = received;
        if let Some(bytes) = frames.into_iter().next() {
            let _ = ev.send(RouterEvent::Message {
                conn,
                identity: id.clone(),
                payload: Payload {
                    bytes,
                    _permit: permit,
                },
            });
        }
        true
    })
    .await;
    let mut p = peers.lock().unwrap_or_else(|e| e.into_inner());
    // Only the current holder of the identity reports a disconnect; a connection that was
    // taken over leaves quietly.
    if p.get(&identity).is_some_and(|s| s.conn == conn) {
        p.remove(&identity);
        drop(p);
        let _ = events.send(RouterEvent::Disconnected { conn, identity });
    }
}

#[cfg(test)]
mod tests;
