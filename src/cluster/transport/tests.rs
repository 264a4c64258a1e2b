//! Tests of the ROUTER and DEALER over loopback TCP, limits included.

use super::*;

async fn next(r: &mut Router) -> RouterEvent {
    tokio::time::timeout(Duration::from_secs(5), r.recv())
        .await
        .expect("event in time")
        .expect("router open")
}

/// An event without its connection id: (kind, identity, payload).
type Plain = (&'static str, Vec<u8>, Vec<u8>);

fn strip(ev: RouterEvent) -> Plain {
    match ev {
        RouterEvent::Connected { identity, .. } => ("connected", identity, Vec::new()),
        RouterEvent::Message {
            identity, payload, ..
        } => ("message", identity, payload.bytes),
        RouterEvent::Disconnected { identity, .. } => ("disconnected", identity, Vec::new()),
    }
}

fn connected(id: &[u8]) -> Plain {
    ("connected", id.to_vec(), Vec::new())
}

fn message(id: &[u8], bytes: &[u8]) -> Plain {
    ("message", id.to_vec(), bytes.to_vec())
}

fn disconnected(id: &[u8]) -> Plain {
    ("disconnected", id.to_vec(), Vec::new())
}

#[tokio::test]
async fn dealer_and_router_exchange_messages_by_identity() {
    let mut router = Router::bind("127.0.0.1", 0).await.unwrap();
    let port = router.local_addr().port();
    let mut d = Dealer::connect("127.0.0.1", port, b"node-a").await.unwrap();
    assert_eq!(strip(next(&mut router).await), connected(b"node-a"));
    d.send(b"hello".to_vec()).unwrap();
    assert_eq!(strip(next(&mut router).await), message(b"node-a", b"hello"));
    assert!(router.send(b"node-a", b"back".to_vec()));
    assert!(!router.send(b"nobody", b"lost".to_vec()));
    let got = tokio::time::timeout(Duration::from_secs(5), d.recv())
        .await
        .unwrap();
    assert_eq!(got, Some(b"back".to_vec()));
    drop(d);
    assert_eq!(strip(next(&mut router).await), disconnected(b"node-a"));
}

#[tokio::test]
async fn reconnect_with_the_same_identity_takes_over() {
    let mut router = Router::bind("127.0.0.1", 0).await.unwrap();
    let port = router.local_addr().port();
    let d1 = Dealer::connect("127.0.0.1", port, b"n").await.unwrap();
    assert_eq!(strip(next(&mut router).await), connected(b"n"));
    let mut d2 = Dealer::connect("127.0.0.1", port, b"n").await.unwrap();
    assert_eq!(strip(next(&mut router).await), connected(b"n"));
    assert!(router.send(b"n", b"to-new".to_vec()));
    let got = tokio::time::timeout(Duration::from_secs(5), d2.recv())
        .await
        .unwrap();
    assert_eq!(got, Some(b"to-new".to_vec()));
    drop(d1);
    // The old connection's end is not a disconnect of the identity.
    d2.send(b"still here".to_vec()).unwrap();
    assert_eq!(strip(next(&mut router).await), message(b"n", b"still here"));
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

/// A raw TCP peer that completes the ZMTP handshake as a DEALER with `identity`.
async fn raw_peer(port: u16, identity: &[u8]) -> TcpStream {
    let mut s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    zmtp::handshake(&mut s, SocketType::Dealer, identity)
        .await
        .unwrap();
    s
}

/// Waits until the peer's side of `s` is closed (EOF or reset), at most 5 s.
async fn closed_by_router(s: &mut TcpStream) {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 256];
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the router closed the connection");
}

#[tokio::test]
async fn a_frame_claiming_a_huge_length_closes_its_connection() {
    let mut router = Router::bind("127.0.0.1", 0).await.unwrap();
    let port = router.local_addr().port();
    let mut s = raw_peer(port, b"liar").await;
    assert_eq!(strip(next(&mut router).await), connected(b"liar"));
    // A long data frame claiming 2^63 bytes, then a few bytes of "body".
    let mut frame = vec![0x02];
    frame.extend_from_slice(&(1u64 << 63).to_be_bytes());
    frame.extend_from_slice(b"abc");
    s.write_all(&frame).await.unwrap();
    assert_eq!(strip(next(&mut router).await), disconnected(b"liar"));
    closed_by_router(&mut s).await;
}

#[tokio::test]
async fn connections_beyond_the_limit_are_closed_at_once() {
    let limits = RouterLimits {
        max_connections: 2,
        ..RouterLimits::default()
    };
    let mut router = Router::bind_with("127.0.0.1", 0, limits).await.unwrap();
    let port = router.local_addr().port();
    let _a = raw_peer(port, b"a").await;
    let _b = raw_peer(port, b"b").await;
    for _ in 0..2 {
        let _ = next(&mut router).await;
    }
    let mut third = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    closed_by_router(&mut third).await;
    // Once one leaves, a new one is accepted again.
    drop(_a);
    assert_eq!(strip(next(&mut router).await), disconnected(b"a"));
    let mut c = raw_peer(port, b"c").await;
    assert_eq!(strip(next(&mut router).await), connected(b"c"));
    c.write_all(&zmtp::encode_message(&[b"hi"])).await.unwrap();
    assert_eq!(strip(next(&mut router).await), message(b"c", b"hi"));
}

#[tokio::test]
async fn unhandled_messages_over_the_buffer_budget_close_the_sender() {
    let limits = RouterLimits {
        max_buffered_bytes: 1000,
        ..RouterLimits::default()
    };
    let mut router = Router::bind_with("127.0.0.1", 0, limits).await.unwrap();
    let port = router.local_addr().port();
    let mut s = raw_peer(port, b"big").await;
    let _ = next(&mut router).await;
    s.write_all(&zmtp::encode_message(&[&[1u8; 600]]))
        .await
        .unwrap();
    let held = next(&mut router).await;
    assert_eq!(strip_ref(&held).0, "message");
    // 600 of 1000 bytes are held by the unhandled message: 600 more do not fit.
    s.write_all(&zmtp::encode_message(&[&[2u8; 600]]))
        .await
        .unwrap();
    assert_eq!(strip(next(&mut router).await), disconnected(b"big"));
    drop(held);
    // Handled, the budget is free again.
    let mut s2 = raw_peer(port, b"next").await;
    let _ = next(&mut router).await;
    s2.write_all(&zmtp::encode_message(&[&[3u8; 900]]))
        .await
        .unwrap();
    assert_eq!(strip_ref(&next(&mut router).await).0, "message");
}

fn strip_ref(ev: &RouterEvent) -> (&'static str, &[u8]) {
    match ev {
        RouterEvent::Connected { identity, .. } => ("connected", identity),
        RouterEvent::Message { identity, .. } => ("message", identity),
        RouterEvent::Disconnected { identity, .. } => ("disconnected", identity),
    }
}

#[tokio::test]
async fn close_ends_only_the_named_connection() {
    let mut router = Router::bind("127.0.0.1", 0).await.unwrap();
    let port = router.local_addr().port();
    let mut s = raw_peer(port, b"x").await;
    let RouterEvent::Connected { conn, .. } = next(&mut router).await else {
        panic!("connected first")
    };
    router.close(b"x", conn + 1000);
    router.close(b"other", conn);
    assert!(router.send(b"x", b"still".to_vec()));
    router.close(b"x", conn);
    assert_eq!(
        next(&mut router).await,
        RouterEvent::Disconnected {
            conn,
            identity: b"x".to_vec()
        }
    );
    closed_by_router(&mut s).await;
}
