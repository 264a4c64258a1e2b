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

use super::zmtp::{self, SocketType, ZmtpError};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

/// How long a new connection may take to complete the ZMTP handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

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
    mut queue: mpsc::UnboundedReceiver<Out>,
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

/// Reads messages and hands each one's frames to `deliver` until EOF, an error or `cancel`.
async fn read_loop(
    r: OwnedReadHalf,
    cancel: CancellationToken,
    mut deliver: impl FnMut(Vec<Vec<u8>>) -> bool,
) {
    let mut r = BufReader::new(r);
    loop {
        let msg = tokio::select! {
            _ = cancel.cancelled() => break,
            m = zmtp::read_message(&mut r) => m,
        };
        match msg {
            Ok(frames) => {
                if !deliver(frames) {
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
    outgoing: mpsc::UnboundedSender<Out>,
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
        let (out_tx, out_rx) = mpsc::unbounded_channel();
        let (in_tx, in_rx) = mpsc::unbounded_channel();
        tokio::spawn(write_loop(w, out_rx, cancel.clone()));
        tokio::spawn(read_loop(r, cancel.clone(), move |frames| {
            // A ROUTER's reply reaches a DEALER without the identity frame; Locust's
            // messages are one frame, so the first frame is the message.
            match frames.into_iter().next() {
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

    /// Queues one message. Fails once the connection is closed.
    pub fn send(&self, payload: Vec<u8>) -> Result<(), TransportError> {
        if self.cancel.is_cancelled() {
            return Err(TransportError::Closed);
        }
        self.outgoing
            .send(Out::Message(vec![payload]))
            .map_err(|_| TransportError::Closed)
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
        if self.outgoing.send(Out::Flush(tx)).is_ok() {
            let _ = tokio::time::timeout(limit, rx).await;
        }
    }
}

impl Drop for Dealer {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// What the master's ROUTER hears.
#[derive(Debug, PartialEq, Eq)]
pub enum RouterEvent {
    /// A peer completed the handshake with this identity.
    Connected(Vec<u8>),
    /// A message from the peer with this identity.
    Message(Vec<u8>, Vec<u8>),
    /// The peer's connection closed (or was taken over and then closed).
    Disconnected(Vec<u8>),
}

struct Slot {
    conn: u64,
    tx: mpsc::UnboundedSender<Out>,
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
    /// Binds `host:port` (`*` means every interface; port 0 picks a free one).
    pub async fn bind(host: &str, port: u16) -> Result<Self, TransportError> {
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
    /// ZeroMQ ROUTER does) when no such peer is connected.
    pub fn send(&self, identity: &[u8], payload: Vec<u8>) -> bool {
        let peers = self.peers.lock().unwrap_or_else(|e| e.into_inner());
        match peers.get(identity) {
            Some(slot) => slot.tx.send(Out::Message(vec![payload])).is_ok(),
            None => false,
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
                    slot.tx.send(Out::Flush(tx)).ok().map(|_| rx)
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

async fn accept_loop(
    listener: TcpListener,
    peers: Peers,
    events: mpsc::UnboundedSender<RouterEvent>,
    shutdown: CancellationToken,
) {
    let next_conn = Arc::new(AtomicU64::new(1));
    loop {
        let (stream, _) = tokio::select! {
            _ = shutdown.cancelled() => break,
            a = listener.accept() => match a {
                Ok(a) => a,
                // Out of file descriptors and the like: back off rather than spin.
                Err(_) => { tokio::time::sleep(Duration::from_millis(100)).await; continue }
            },
        };
        let conn = next_conn.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(serve_peer(
            stream,
            conn,
            peers.clone(),
            events.clone(),
            shutdown.child_token(),
        ));
    }
}

async fn serve_peer(
    mut stream: TcpStream,
    conn: u64,
    peers: Peers,
    events: mpsc::UnboundedSender<RouterEvent>,
    cancel: CancellationToken,
) {
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
    let (tx, rx) = mpsc::unbounded_channel();
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
    let _ = events.send(RouterEvent::Connected(identity.clone()));
    tokio::spawn(write_loop(w, rx, cancel.clone()));
    let id = identity.clone();
    let ev = events.clone();
    read_loop(r, cancel.clone(), move |frames| {
        if let Some(payload) = frames.into_iter().next() {
            let _ = ev.send(RouterEvent::Message(id.clone(), payload));
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
        let _ = events.send(RouterEvent::Disconnected(identity));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn next(r: &mut Router) -> RouterEvent {
        tokio::time::timeout(Duration::from_secs(5), r.recv())
            .await
            .expect("event in time")
            .expect("router open")
    }

    #[tokio::test]
    async fn dealer_and_router_exchange_messages_by_identity() {
        let mut router = Router::bind("127.0.0.1", 0).await.unwrap();
        let port = router.local_addr().port();
        let mut d = Dealer::connect("127.0.0.1", port, b"node-a").await.unwrap();
        assert_eq!(
            next(&mut router).await,
            RouterEvent::Connected(b"node-a".to_vec())
        );
        d.send(b"hello".to_vec()).unwrap();
        assert_eq!(
            next(&mut router).await,
            RouterEvent::Message(b"node-a".to_vec(), b"hello".to_vec())
        );
        assert!(router.send(b"node-a", b"back".to_vec()));
        assert!(!router.send(b"nobody", b"lost".to_vec()));
        let got = tokio::time::timeout(Duration::from_secs(5), d.recv())
            .await
            .unwrap();
        assert_eq!(got, Some(b"back".to_vec()));
        drop(d);
        assert_eq!(
            next(&mut router).await,
            RouterEvent::Disconnected(b"node-a".to_vec())
        );
    }

    #[tokio::test]
    async fn reconnect_with_the_same_identity_takes_over() {
        let mut router = Router::bind("127.0.0.1", 0).await.unwrap();
        let port = router.local_addr().port();
        let d1 = Dealer::connect("127.0.0.1", port, b"n").await.unwrap();
        assert_eq!(
            next(&mut router).await,
            RouterEvent::Connected(b"n".to_vec())
        );
        let mut d2 = Dealer::connect("127.0.0.1", port, b"n").await.unwrap();
        assert_eq!(
            next(&mut router).await,
            RouterEvent::Connected(b"n".to_vec())
        );
        assert!(router.send(b"n", b"to-new".to_vec()));
        let got = tokio::time::timeout(Duration::from_secs(5), d2.recv())
            .await
            .unwrap();
        assert_eq!(got, Some(b"to-new".to_vec()));
        drop(d1);
        // The old connection's end is not a disconnect of the identity.
        d2.send(b"still here".to_vec()).unwrap();
        assert_eq!(
            next(&mut router).await,
            RouterEvent::Message(b"n".to_vec(), b"still here".to_vec())
        );
    }

    #[tokio::test]
    async fn dealer_sees_the_master_go_away() {
        let router = Router::bind("127.0.0.1", 0).await.unwrap();
        let port = router.local_addr().port();
        let mut d = Dealer::connect("127.0.0.1", port, b"x").await.unwrap();
        drop(router);
        let got = tokio::time::timeout(Duration::from_secs(5), d.recv())
            .await
            .unwrap();
        assert_eq!(got, None);
        assert!(Dealer::connect("127.0.0.1", port, b"x").await.is_err());
    }
}
