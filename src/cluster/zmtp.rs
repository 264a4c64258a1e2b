//! ZMTP 3.0 with the NULL security mechanism (rfc.zeromq.org/spec/23): the greeting, the READY
//! handshake that carries the socket type and identity, and frames. Just enough for one DEALER
//! or ROUTER connection to talk to libzmq (pyzmq, hence Locust) or to ourselves.
//!
//! Reading and writing go through tokio's `AsyncRead`/`AsyncWrite`; each connection is read by
//! one task, so the `read_exact` calls here are never raced by a `select!`.
//!
//! A peer's length claims are never trusted: a frame's announced size is checked against the
//! limits below before a byte of it is read, and its body grows only as bytes arrive, so memory
//! follows what was received, not what was claimed.

use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Largest message (all its frames) accepted from a peer. Locust's messages are a few KiB and
/// a gsai-load worker's `stats` report with exact histograms a few hundred KiB at most; more
/// means a corrupt stream or a hostile peer. Decoding multiplies a msgpack message's size by up
/// to ~32 (one 32-byte value per 1-byte element), so this also bounds the decoder.
pub const MAX_MESSAGE_BYTES: u64 = 2 * 1024 * 1024;
/// Largest frame accepted from a peer (a message of one frame may use the whole allowance).
pub const MAX_FRAME_BYTES: u64 = MAX_MESSAGE_BYTES;
/// Most frames in one message. Locust's messages have one or two; each frame costs a `Vec`
/// even when empty, so a flood of empty frames must not be collected without end.
pub const MAX_MESSAGE_FRAMES: usize = 16;
/// Largest handshake command (READY: socket type and identity, a few hundred bytes).
pub const MAX_HANDSHAKE_FRAME_BYTES: u64 = 8 * 1024;
/// Longest identity ZMTP allows (its spec: 0 to 255 bytes).
pub const MAX_IDENTITY_BYTES: usize = 255;

const FLAG_MORE: u8 = 0x01;
const FLAG_LONG: u8 = 0x02;
const FLAG_COMMAND: u8 = 0x04;

/// Why a ZMTP exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum ZmtpError {
    /// The socket failed or closed.
    #[error("connection: {0}")]
    Io(#[from] std::io::Error),
    /// The peer's greeting is not ZMTP 3.x with the NULL mechanism.
    #[error("the peer is not a ZeroMQ (ZMTP 3) endpoint with the NULL mechanism: {0}")]
    Greeting(String),
    /// The peer's handshake is malformed or its socket type does not fit ours.
    #[error("ZMTP handshake: {0}")]
    Handshake(String),
    /// A frame or message announced more than its limit allows.
    #[error("a frame announcing {claimed_bytes} bytes exceeds the limit ({limit_bytes} bytes)")]
    TooLarge {
        /// What the peer announced (the frame's size, or the message's size so far plus it).
        claimed_bytes: u64,
        /// The limit it broke.
        limit_bytes: u64,
    },
    /// A message had more than [`MAX_MESSAGE_FRAMES`] frames.
    #[error("a message of more than {MAX_MESSAGE_FRAMES} frames")]
    TooManyFrames,
    /// Every connection together already buffers as much as the master allows.
    #[error("the receive buffer budget is exhausted ({claimed_bytes} more bytes announced)")]
    OverBudget {
        /// What the frame announced.
        claimed_bytes: u64,
    },
    /// The peer sent an ERROR command.
    #[error("the peer reported an error: {0}")]
    PeerError(String),
}

/// The socket types this module speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SocketType {
    /// The worker's side: connects, has an identity.
    Dealer,
    /// The master's side: binds, routes by identity.
    Router,
}

impl SocketType {
    fn name(self) -> &'static str {
        match self {
            SocketType::Dealer => "DEALER",
            SocketType::Router => "ROUTER",
        }
    }

    /// Whether a peer of type `peer` may talk to us (ZMTP's compatibility table).
    fn accepts(self, peer: &[u8]) -> bool {
        match self {
            SocketType::Dealer => matches!(peer, b"ROUTER" | b"DEALER" | b"REP"),
            SocketType::Router => matches!(peer, b"DEALER" | b"ROUTER" | b"REQ"),
        }
    }
}

/// Our 64-byte greeting: signature, version 3.0, mechanism NULL, as-server 0, filler.
pub fn greeting() -> [u8; 64] {
    let mut g = [0u8; 64];
    g[0] = 0xFF;
    g[9] = 0x7F;
    g[10] = 3;
    g[11] = 0;
    g[12..16].copy_from_slice(b"NULL");
    g
}

/// Checks a peer's greeting.
pub fn check_greeting(g: &[u8; 64]) -> Result<(), ZmtpError> {
    if g[0] != 0xFF || g[9] & 0x01 != 0x01 {
        return Err(ZmtpError::Greeting("bad signature".into()));
    }
    if g[10] < 3 {
        return Err(ZmtpError::Greeting(format!(
            "ZMTP version {}.{}, 3.0 or later needed",
            g[10], g[11]
        )));
    }
    let mechanism = &g[12..32];
    let end = mechanism.iter().position(|&b| b == 0).unwrap_or(20);
    if &mechanism[..end] != b"NULL" {
        return Err(ZmtpError::Greeting(format!(
            "security mechanism {:?}, only NULL is supported",
            String::from_utf8_lossy(&mechanism[..end])
        )));
    }
    Ok(())
}

/// Appends one frame (header and body) to `out`.
pub fn encode_frame(body: &[u8], more: bool, command: bool, out: &mut Vec<u8>) {
    let mut flags = 0u8;
    if more {
        flags |= FLAG_MORE;
    }
    if command {
        flags |= FLAG_COMMAND;
    }
    if body.len() > 255 {
        out.push(flags | FLAG_LONG);
        out.extend_from_slice(&(body.len() as u64).to_be_bytes());
    } else {
        out.push(flags);
        out.push(body.len() as u8);
    }
    out.extend_from_slice(body);
}

/// The body of a READY command with our socket type and identity.
pub fn ready_body(socket_type: SocketType, identity: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(64 + identity.len());
    body.push(5);
    body.extend_from_slice(b"READY");
    let mut prop = |name: &str, value: &[u8]| {
        body.push(name.len() as u8);
        body.extend_from_slice(name.as_bytes());
        body.extend_from_slice(&(value.len() as u32).to_be_bytes());
        body.extend_from_slice(value);
    };
    prop("Socket-Type", socket_type.name().as_bytes());
    if socket_type == SocketType::Dealer {
        prop("Identity", identity);
    }
    body
}

/// What a peer's READY command said.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Ready {
    /// The peer's socket type, e.g. `DEALER`.
    pub socket_type: Vec<u8>,
    /// The peer's identity (empty when it set none).
    pub identity: Vec<u8>,
}

/// Parses a command body: returns the command name and its data.
fn split_command(body: &[u8]) -> Result<(&[u8], &[u8]), ZmtpError> {
    let len = *body
        .first()
        .ok_or_else(|| ZmtpError::Handshake("empty command".into()))? as usize;
    if body.len() < 1 + len {
        return Err(ZmtpError::Handshake("truncated command name".into()));
    }
    Ok((&body[1..1 + len], &body[1 + len..]))
}

/// Parses the properties of a READY command body.
pub fn parse_ready(body: &[u8]) -> Result<Ready, ZmtpError> {
    let (name, mut data) = split_command(body)?;
    if name == b"ERROR" {
        return Err(ZmtpError::PeerError(error_reason(data)));
    }
    if name != b"READY" {
        return Err(ZmtpError::Handshake(format!(
            "expected READY, got {}",
            String::from_utf8_lossy(name)
        )));
    }
    let bad = || ZmtpError::Handshake("malformed READY properties".into());
    let mut ready = Ready::default();
    while !data.is_empty() {
        let nlen = data[0] as usize;
        let name = data.get(1..1 + nlen).ok_or_else(bad)?;
        let vlen_bytes: [u8; 4] = data
            .get(1 + nlen..5 + nlen)
            .and_then(|s| s.try_into().ok())
            .ok_or_else(bad)?;
        let vlen = u32::from_be_bytes(vlen_bytes) as usize;
        let value = data.get(5 + nlen..5 + nlen + vlen).ok_or_else(bad)?;
        if name.eq_ignore_ascii_case(b"Socket-Type") {
            ready.socket_type = value.to_vec();
        } else if name.eq_ignore_ascii_case(b"Identity") {
            ready.identity = value.to_vec();
        }
        data = &data[5 + nlen + vlen..];
    }
    Ok(ready)
}

fn error_reason(data: &[u8]) -> String {
    match data.split_first() {
        Some((&n, rest)) => String::from_utf8_lossy(&rest[..(n as usize).min(rest.len())]).into(),
        None => String::new(),
    }
}

/// One frame read from the wire.
#[derive(Debug, PartialEq, Eq)]
pub struct Frame {
    /// More frames of the same message follow.
    pub more: bool,
    /// A command (READY, ERROR, PING...) rather than message data.
    pub command: bool,
    /// The body.
    pub body: Vec<u8>,
}

/// Reads one frame's header and checks its announced size against `max_bytes` (before reading
/// any of the body). Returns the flags and the size.
async fn read_header<R: AsyncRead + Unpin>(
    r: &mut R,
    max_bytes: u64,
) -> Result<(u8, u64), ZmtpError> {
    let flags = r.read_u8().await?;
    let size = if flags & FLAG_LONG != 0 {
        r.read_u64().await?
    } else {
        u64::from(r.read_u8().await?)
    };
    if size > max_bytes {
        return Err(ZmtpError::TooLarge {
            claimed_bytes: size,
            limit_bytes: max_bytes,
        });
    }
    Ok((flags, size))
}

/// Reads a body of `size` bytes (already checked against a limit). The buffer grows as bytes
/// arrive, so a peer that announces much and sends little costs only what it sent.
async fn read_body<R: AsyncRead + Unpin>(r: &mut R, size: u64) -> Result<Vec<u8>, ZmtpError> {
    let mut body = Vec::new();
    (&mut *r).take(size).read_to_end(&mut body).await?;
    if (body.len() as u64) < size {
        return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into());
    }
    Ok(body)
}

/// Reads one frame of at most `max_bytes`.
pub async fn read_frame<R: AsyncRead + Unpin>(
    r: &mut R,
    max_bytes: u64,
) -> Result<Frame, ZmtpError> {
    let (flags, size) = read_header(r, max_bytes).await?;
    let body = read_body(r, size).await?;
    Ok(Frame {
        more: flags & FLAG_MORE != 0,
        command: flags & FLAG_COMMAND != 0,
        body,
    })
}

/// A shared allowance of bytes that all connections together may hold in messages not yet
/// handled; see [`read_message`].
pub type Budget = Arc<Semaphore>;

/// One message read from a peer: its frames, and the share of the [`Budget`] they hold until
/// dropped.
#[derive(Debug)]
pub struct Received {
    /// The frames, in order.
    pub frames: Vec<Vec<u8>>,
    /// Released when the message is dropped.
    pub permit: Option<OwnedSemaphorePermit>,
}

/// Reads one whole message (all its frames, at most [`MAX_MESSAGE_BYTES`] together and
/// [`MAX_MESSAGE_FRAMES`] of them), skipping commands between messages. With a `budget`, each
/// frame's announced size is taken from it before the frame is read, and refused
/// ([`ZmtpError::OverBudget`]) when it is exhausted. ERROR commands end the connection with
/// [`ZmtpError::PeerError`].
pub async fn read_message<R: AsyncRead + Unpin>(
    r: &mut R,
    budget: Option<&Budget>,
) -> Result<Received, ZmtpError> {
    let mut frames = Vec::new();
    let mut message_bytes = 0u64;
    let mut permit: Option<OwnedSemaphorePermit> = None;
    loop {
        let (flags, size) = read_header(r, MAX_FRAME_BYTES).await?;
        let command = flags & FLAG_COMMAND != 0;
        if command {
            // PING/PONG only exist in ZMTP 3.1 and we announce 3.0; anything else but ERROR
            // carries nothing we need. A command is read and dropped at once.
            let body = read_body(r, size.min(MAX_HANDSHAKE_FRAME_BYTES)).await?;
            if size > MAX_HANDSHAKE_FRAME_BYTES {
                return Err(ZmtpError::TooLarge {
                    claimed_bytes: size,
                    limit_bytes: MAX_HANDSHAKE_FRAME_BYTES,
                });
            }
            if let Ok((b"ERROR", data)) = split_command(&body) {
                return Err(ZmtpError::PeerError(error_reason(data)));
            }
            continue;
        }
        message_bytes = message_bytes.saturating_add(size);
        if message_bytes > MAX_MESSAGE_BYTES {
            return Err(ZmtpError::TooLarge {
                claimed_bytes: message_bytes,
                limit_bytes: MAX_MESSAGE_BYTES,
            });
        }
        if frames.len() == MAX_MESSAGE_FRAMES {
            return Err(ZmtpError::TooManyFrames);
        }
        if let Some(budget) = budget {
            // Sizes are at most MAX_FRAME_BYTES, far below u32::MAX.
            let n = u32::try_from(size).unwrap_or(u32::MAX);
            let p =
                budget
                    .clone()
                    .try_acquire_many_owned(n)
                    .map_err(|_| ZmtpError::OverBudget {
                        claimed_bytes: size,
                    })?;
            match permit.as_mut() {
                Some(held) => held.merge(p),
                None => permit = Some(p),
            }
        }
        frames.push(read_body(r, size).await?);
        if flags & FLAG_MORE == 0 {
            return Ok(Received { frames, permit });
        }
    }
}

/// Encodes a message of `frames` (at least one) for the wire.
pub fn encode_message(frames: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::with_capacity(frames.iter().map(|f| f.len() + 9).sum());
    for (i, f) in frames.iter().enumerate() {
        encode_frame(f, i + 1 < frames.len(), false, &mut out);
    }
    out
}

/// Runs the handshake on a fresh connection: exchange greetings and READY commands.
/// Returns the peer's READY properties.
pub async fn handshake<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    socket_type: SocketType,
    identity: &[u8],
) -> Result<Ready, ZmtpError> {
    // Sending the whole greeting before reading is fine: libzmq sends its signature first and
    // then reads ours; it never waits for us to wait.
    stream.write_all(&greeting()).await?;
    stream.flush().await?;
    let mut peer = [0u8; 64];
    stream.read_exact(&mut peer).await?;
    check_greeting(&peer)?;
    let mut out = Vec::new();
    encode_frame(&ready_body(socket_type, identity), false, true, &mut out);
    stream.write_all(&out).await?;
    stream.flush().await?;
    let frame = read_frame(stream, MAX_HANDSHAKE_FRAME_BYTES).await?;
    if !frame.command {
        return Err(ZmtpError::Handshake(
            "the peer sent data before READY".into(),
        ));
    }
    let ready = parse_ready(&frame.body)?;
    if !socket_type.accepts(&ready.socket_type) {
        return Err(ZmtpError::Handshake(format!(
            "a {} socket cannot talk to a {} socket",
            socket_type.name(),
            String::from_utf8_lossy(&ready.socket_type)
        )));
    }
    if ready.identity.len() > MAX_IDENTITY_BYTES {
        return Err(ZmtpError::Handshake(format!(
            "an identity of {} bytes (ZMTP allows at most {MAX_IDENTITY_BYTES})",
            ready.identity.len()
        )));
    }
    Ok(ready)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greeting_is_64_bytes_of_zmtp_3_null() {
        let g = greeting();
        assert_eq!(g.len(), 64);
        check_greeting(&g).unwrap();
        let mut bad = g;
        bad[12..16].copy_from_slice(b"PLAI");
        assert!(check_greeting(&bad).is_err());
        let mut old = g;
        old[10] = 2;
        assert!(check_greeting(&old).is_err());
    }

    #[test]
    fn ready_round_trips_and_matches_libzmq_layout() {
        let body = ready_body(SocketType::Dealer, b"node-1");
        // name-size, "READY", then "Socket-Type" = "DEALER", "Identity" = "node-1".
        assert_eq!(&body[..6], b"\x05READY");
        assert_eq!(&body[6..18], b"\x0bSocket-Type");
        assert_eq!(&body[18..22], &[0, 0, 0, 6]);
        let r = parse_ready(&body).unwrap();
        assert_eq!(r.socket_type, b"DEALER");
        assert_eq!(r.identity, b"node-1");
        assert!(parse_ready(&body[..body.len() - 1]).is_err());
        assert!(parse_ready(b"").is_err());
    }

    #[test]
    fn short_and_long_frames() {
        let mut out = Vec::new();
        encode_frame(b"abc", true, false, &mut out);
        assert_eq!(out, b"\x01\x03abc");
        out.clear();
        let big = vec![7u8; 300];
        encode_frame(&big, false, false, &mut out);
        assert_eq!(out[0], 0x02);
        assert_eq!(&out[1..9], &300u64.to_be_bytes());
        assert_eq!(out.len(), 9 + 300);
    }

    #[tokio::test]
    async fn reads_messages_and_skips_commands() {
        let mut wire = Vec::new();
        encode_frame(b"\x04PING\x00\x00", false, true, &mut wire);
        wire.extend(encode_message(&[b"id", b"payload"]));
        let mut r = wire.as_slice();
        let m = read_message(&mut r, None).await.unwrap();
        assert_eq!(m.frames, vec![b"id".to_vec(), b"payload".to_vec()]);
        assert!(m.permit.is_none());
        assert!(read_message(&mut r, None).await.is_err(), "EOF is an error");
    }

    /// A long frame claiming any u64 size is refused from its header alone: the reader has
    /// nothing after the header and is never read again, so nothing was awaited or buffered.
    #[tokio::test]
    async fn a_huge_length_claim_is_refused_before_reading_the_body() {
        for claim in [MAX_FRAME_BYTES + 1, 1 << 32, u64::MAX] {
            let (mut peer, mut ours) = tokio::io::duplex(64);
            let mut header = vec![0x02];
            header.extend_from_slice(&claim.to_be_bytes());
            peer.write_all(&header).await.unwrap();
            // The duplex stays open: a reader that waited for the body would hang here.
            let got = tokio::time::timeout(
                std::time::Duration::from_secs(5),
                read_message(&mut ours, None),
            )
            .await
            .expect("refused at once, without waiting for the body");
            assert!(
                matches!(got, Err(ZmtpError::TooLarge { claimed_bytes, limit_bytes })
                    if claimed_bytes == claim && limit_bytes == MAX_MESSAGE_BYTES),
                "{got:?}"
            );
        }
        let mut huge = vec![0x02];
        huge.extend_from_slice(&(MAX_HANDSHAKE_FRAME_BYTES + 1).to_be_bytes());
        assert!(matches!(
            read_frame(&mut huge.as_slice(), MAX_HANDSHAKE_FRAME_BYTES).await,
            Err(ZmtpError::TooLarge { .. })
        ));
    }

    #[tokio::test]
    async fn a_message_is_bounded_in_total_size_and_frame_count() {
        // Frames each within the limit but together above it.
        let half = vec![0u8; (MAX_MESSAGE_BYTES / 2 + 1) as usize];
        let wire = encode_message(&[&half, &half]);
        assert!(matches!(
            read_message(&mut wire.as_slice(), None).await,
            Err(ZmtpError::TooLarge { .. })
        ));
        let empties = vec![&b""[..]; MAX_MESSAGE_FRAMES + 1];
        let wire = encode_message(&empties);
        assert!(matches!(
            read_message(&mut wire.as_slice(), None).await,
            Err(ZmtpError::TooManyFrames)
        ));
        let wire = encode_message(&empties[..MAX_MESSAGE_FRAMES]);
        let m = read_message(&mut wire.as_slice(), None).await.unwrap();
        assert_eq!(m.frames.len(), MAX_MESSAGE_FRAMES);
    }

    #[tokio::test]
    async fn messages_hold_their_share_of_the_budget_until_dropped() {
        let budget: Budget = Arc::new(Semaphore::new(100));
        let wire = encode_message(&[&[1u8; 30], &[2u8; 30]]);
        let m = read_message(&mut wire.as_slice(), Some(&budget))
            .await
            .unwrap();
        assert_eq!(budget.available_permits(), 40);
        let wire = encode_message(&[&[3u8; 41]]);
        assert!(matches!(
            read_message(&mut wire.as_slice(), Some(&budget)).await,
            Err(ZmtpError::OverBudget { claimed_bytes: 41 })
        ));
        drop(m);
        assert_eq!(budget.available_permits(), 100);
        assert!(read_message(&mut wire.as_slice(), Some(&budget))
            .await
            .is_ok());
    }

    #[tokio::test]
    async fn handshake_refuses_identities_longer_than_zmtp_allows() {
        let (mut a, mut b) = tokio::io::duplex(4096);
        let long = vec![b'x'; MAX_IDENTITY_BYTES + 1];
        let (_, rb) = tokio::join!(
            handshake(&mut a, SocketType::Dealer, &long),
            handshake(&mut b, SocketType::Router, b"")
        );
        assert!(matches!(rb, Err(ZmtpError::Handshake(_))), "{rb:?}");
    }

    #[tokio::test]
    async fn handshake_between_dealer_and_router() {
        let (mut a, mut b) = tokio::io::duplex(4096);
        let (ra, rb) = tokio::join!(
            handshake(&mut a, SocketType::Dealer, b"w1"),
            handshake(&mut b, SocketType::Router, b"")
        );
        assert_eq!(ra.unwrap().socket_type, b"ROUTER");
        assert_eq!(rb.unwrap().identity, b"w1");
        let (mut a, mut b) = tokio::io::duplex(4096);
        let (ra, _) = tokio::join!(
            handshake(&mut a, SocketType::Dealer, b"w1"),
            handshake(&mut b, SocketType::Dealer, b"w2")
        );
        // DEALER-DEALER is legal ZMTP; only incompatible types are refused.
        assert!(ra.is_ok());
    }
}
