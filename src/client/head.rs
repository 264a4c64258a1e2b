//! The response head: writing the request and waiting for the status line and headers within
//! the time limits. Every `timeout` failure is made here, named by its [`TimeoutPhase`], and so
//! is every `http_status` failure (a status other than 2xx, with the server's explanation).

use super::decode::Encoding;
use super::messages::{read_excerpt, status_message};
use super::{conn, RequestSpec, Timeouts};
use crate::metrics::{Failure, FailureKind};
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::{Request, Response, StatusCode};
use std::time::{Duration, Instant};
use tokio::time::timeout_at;

/// Which time limit a request reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum TimeoutPhase {
    /// Opening the connection (TCP and TLS): `--connect-timeout`.
    Connect,
    /// Waiting for the response headers: the first-byte limit.
    FirstByte,
    /// Waiting for the response headers when the total limit comes first.
    TotalBeforeHeaders,
    /// A silence between two reads of the body: the idle limit.
    Idle,
    /// The whole request, while the body was being read.
    Total,
}

impl TimeoutPhase {
    /// The `timeout` failure of this phase, whose limit was `limit`.
    pub(super) fn failure(self, limit: Duration) -> Failure {
        let limit = humantime::format_duration(limit);
        let message = match self {
            TimeoutPhase::Connect => format!("Request failed: connect timed out after {limit}"),
            TimeoutPhase::FirstByte => format!(
                "Request failed: timed out waiting for response headers (first byte limit {limit})"
            ),
            TimeoutPhase::TotalBeforeHeaders => format!(
                "Request failed: timed out waiting for response headers (total limit {limit})"
            ),
            TimeoutPhase::Idle => format!("Request failed: no data for {limit} (idle limit)"),
            TimeoutPhase::Total => {
                format!("Request failed: total time limit {limit} exceeded")
            }
        };
        Failure::new(FailureKind::Timeout, message)
    }
}

/// Writes `req`, started at `start`, and waits for the response head within the first-byte
/// and total limits. A failure here leaves the connection unusable.
pub(super) async fn send(
    sender: &mut SendRequest<Full<Bytes>>,
    req: Request<Full<Bytes>>,
    start: Instant,
    t: &Timeouts,
) -> Result<Response<Incoming>, Failure> {
    let (limit, phase) = if t.first_byte < t.total {
        (t.first_byte, TimeoutPhase::FirstByte)
    } else {
        (t.total, TimeoutPhase::TotalBeforeHeaders)
    };
    match timeout_at((start + limit).into(), sender.send_request(req)).await {
        Ok(Ok(r)) => Ok(r),
        Ok(Err(e)) => Err(conn::send_failed(&e)),
        Err(_) => Err(phase.failure(limit)),
    }
}

/// The `http_status` failure of a response with a status other than 2xx, and the bytes read
/// of its body: Locust's message plus the start of the body (decoded when compressed), read
/// for at most the idle limit and 5 s from `now`.
pub(super) async fn status_failure(
    status: StatusCode,
    body: &mut Incoming,
    encoding: Option<Encoding>,
    now: Instant,
    idle: Duration,
    spec: &RequestSpec,
) -> (Failure, u64) {
    let deadline = now + idle.min(Duration::from_secs(5));
    let excerpt = read_excerpt(body, deadline, 2048, encoding).await;
    let msg = status_message(status.as_u16(), &excerpt, spec);
    (
        Failure::new(FailureKind::HttpStatus, msg),
        excerpt.len() as u64,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_phase_is_a_timeout_that_names_it() {
        let s = Duration::from_secs;
        let cases = [
            (TimeoutPhase::Connect, "connect timed out after 1s"),
            (TimeoutPhase::FirstByte, "(first byte limit 1s)"),
            (TimeoutPhase::TotalBeforeHeaders, "(total limit 1s)"),
            (TimeoutPhase::Idle, "no data for 1s (idle limit)"),
            (TimeoutPhase::Total, "total time limit 1s exceeded"),
        ];
        for (phase, names) in cases {
            let f = phase.failure(s(1));
            assert_eq!(f.kind, FailureKind::Timeout);
            // The message is what is tested here: it names the phase.
            assert!(f.message.contains(names), "{}", f.message);
        }
    }
}
