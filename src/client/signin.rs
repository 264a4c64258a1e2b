//! Open WebUI sign-in (`POST /api/v1/auths/signin` with `{"email","password"}`): one request on
//! a connection of its own, recorded like any other request (its own kind, the same failure
//! kinds), whose answer's `token` becomes the user's Bearer token. The password and the token
//! never appear in a failure message.

use super::{conn, head, ClientShared, RequestSpec};
use crate::config::Secret;
use crate::metrics::{Failure, FailureKind, Outcome, RequestRecord};
use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use std::time::Instant;
use tokio::time::timeout_at;

/// Largest sign-in answer read (Open WebUI's is well under 4 KiB).
const MAX_ANSWER: usize = 256 << 10;

/// Signs `email` in with `password` at `spec` (the sign-in path of the plan's host; the token
/// is only ever sent back to that same host). Returns the request's record (kind `kind`) and,
/// on success, the account's token.
pub async fn sign_in(
    shared: &ClientShared,
    kind: usize,
    spec: &RequestSpec,
    email: &str,
    password: &Secret,
) -> (RequestRecord, Option<Secret>) {
    let began = Instant::now();
    let body = serde_json::json!({ "email": email, "password": password.expose() }).to_string();
    let request_bytes = body.len() as u64;
    let ((mut sender, mut driver), took) =
        match conn::open(&shared.target, shared.timeouts.connect).await {
            Ok(c) => c,
            Err(f) => return (fail(kind, began, f, password), None),
        };
    let Some(req) = spec.request(Bytes::from(body)) else {
        let f = Failure::new(
            FailureKind::Internal,
            "Request failed: invalid sign-in path",
        );
        return (fail(kind, began, f, password), None);
    };
    let mut alive = true;
    let start = Instant::now();
    let t = shared.timeouts;
    // A failure, with the status and bytes of a non-2xx answer.
    type Failed = (Failure, Option<(Instant, u16, u64)>);
    let exchange = async {
        let resp = head::send(&mut sender, req, start, &t)
            .await
            .map_err(|f| (f, None))?;
        let headers_at = Instant::now();
        let status = resp.status();
        let (_, mut incoming) = resp.into_parts();
        if !status.is_success() {
            let (f, n) =
                head::status_failure(status, &mut incoming, None, headers_at, t.idle, spec).await;
            return Err::<_, Failed>((f, Some((headers_at, status.as_u16(), n))));
        }
        let collected = timeout_at(
            (start + t.total).into(),
            Limited::new(incoming, MAX_ANSWER).collect(),
        )
        .await
        .map_err(|_| (head::TimeoutPhase::Total.failure(t.total), None))?
        .map_err(|_| {
            let f = Failure::new(
                FailureKind::IncompleteStream,
                "Request failed: the sign-in answer broke off or is too large",
            );
            (f, None)
        })?;
        Ok((headers_at, status.as_u16(), collected.to_bytes()))
    };
    let result = super::drive(&mut driver, &mut alive, exchange).await;
    let mut rec = RequestRecord::bare(kind, start, Instant::now(), Outcome::Success);
    rec.connect = Some(took);
    rec.request_bytes = request_bytes;
    match result {
        Err((f, status)) => {
            if let Some((at, code, n)) = status {
                rec.headers = Some(at);
                rec.status = Some(code);
                rec.content_bytes = n;
            }
            rec.outcome = Outcome::Failure(scrub(f, password));
            (rec, None)
        }
        Ok((headers_at, code, bytes)) => {
            rec.headers = Some(headers_at);
            rec.status = Some(code);
            rec.content_bytes = bytes.len() as u64;
            match token_of(&bytes) {
                Some(token) => (rec, Some(token)),
                None => {
                    rec.outcome = Outcome::Failure(Failure::new(
                        FailureKind::MalformedEvent,
                        "Request failed: the sign-in answer is not JSON with a \"token\" string",
                    ));
                    (rec, None)
                }
            }
        }
    }
}

/// The `token` of a sign-in answer, if it is a usable header value.
fn token_of(body: &[u8]) -> Option<Secret> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let t = v.get("token")?.as_str()?.trim();
    (!t.is_empty() && super::bearer(t).is_some()).then(|| Secret::new(t))
}

/// The failure's message without the password (a server might echo it).
fn scrub(mut f: Failure, password: &Secret) -> Failure {
    let p = password.expose();
    if !p.is_empty() && f.message.contains(p) {
        f.message = f.message.replace(p, "[redacted]");
    }
    f
}

fn fail(kind: usize, began: Instant, f: Failure, password: &Secret) -> RequestRecord {
    RequestRecord::bare(
        kind,
        began,
        Instant::now(),
        Outcome::Failure(scrub(f, password)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_read_from_the_answer() {
        let t = token_of(br#"{"token":"eyJ.abc","token_type":"Bearer"}"#).unwrap();
        assert_eq!(t.expose(), "eyJ.abc");
        assert!(token_of(br#"{"token":""}"#).is_none());
        assert!(token_of(br#"{"token":"a\nb"}"#).is_none());
        assert!(token_of(b"<html>").is_none());
        let f = Failure::new(FailureKind::HttpStatus, "bad pw hunter2");
        assert!(!scrub(f, &Secret::new("hunter2"))
            .message
            .contains("hunter2"));
    }
}
