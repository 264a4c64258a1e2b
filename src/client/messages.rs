//! Failure messages built from what the server sent: Locust's "Received status code: N" with
//! the server's own explanation, and error chains without per-request values.

use super::decode::{BodyDecoder, Encoding};
use super::{chunk, RequestSpec};
use http_body_util::BodyExt;
use std::ops::ControlFlow;
use std::time::Instant;
use tokio::time::timeout_at;

/// The error and its sources, joined, without addresses or other per-request values.
pub(super) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(cause) = src {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        src = cause.source();
    }
    s
}

/// The first `max` bytes of an error response's body (decoded when it is compressed), read
/// until `deadline`.
pub(super) async fn read_excerpt(
    body: &mut hyper::body::Incoming,
    deadline: Instant,
    max: usize,
    encoding: Option<Encoding>,
) -> Vec<u8> {
    let mut decoder = encoding.and_then(|e| BodyDecoder::new(e).ok());
    let mut out = Vec::new();
    while out.len() < max {
        match timeout_at(deadline.into(), body.frame()).await {
            Ok(Some(Ok(frame))) => {
                let Ok(d) = frame.into_data() else { continue };
                let mut take = |chunk: &[u8]| {
                    out.extend_from_slice(&chunk[..chunk.len().min(max - out.len())]);
                    if out.len() < max {
                        ControlFlow::Continue(())
                    } else {
                        ControlFlow::Break(())
                    }
                };
                match decoder.as_mut() {
                    None => {
                        let _ = take(&d);
                    }
                    Some(dec) => {
                        if dec.decode(d, take).is_err() {
                            break;
                        }
                    }
                }
            }
            _ => break,
        }
    }
    out
}

/// Locust's message ("Received status code: N") plus the server's own explanation, if short.
pub(super) fn status_message(code: u16, body: &[u8], spec: &RequestSpec) -> String {
    let mut msg = format!("Received status code: {code}");
    let detail = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            let d = v
                .get("detail")
                .or_else(|| v.get("error").and_then(|e| e.get("message").or(Some(e))))?;
            Some(match d {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            })
        });
    let detail = detail.or_else(|| {
        let text = String::from_utf8_lossy(body).trim().to_string();
        (!text.is_empty() && !text.starts_with('<')).then_some(text)
    });
    if let Some(d) = detail {
        msg.push_str(" (");
        msg.push_str(&chunk::truncate(d.replace(['\n', '\r'], " "), 160));
        msg.push(')');
    }
    if code == 400
        && spec.path.ends_with("/api/chat/completions")
        && msg.ends_with("(Model not found)")
    {
        msg.push_str(" — a fresh Open WebUI account sees no model until the admin grants access (make the model public, or BYPASS_MODEL_ACCESS_CONTROL=true)");
    }
    if code == 404 && spec.path.ends_with("/api/chat/completions") && msg.contains("could not find")
    {
        msg.push_str(" — Open WebUI takes a bare uuid chat_id for a saved chat that does not exist; use --chat-id local");
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::Target;
    use hyper::Method;

    fn spec(path: &str) -> RequestSpec {
        let target = Target::parse("http://127.0.0.1:1").unwrap();
        RequestSpec::new(&target, Method::POST, path, None, true)
    }

    #[test]
    fn status_messages_name_the_cause() {
        let s = spec("/api/chat/completions");
        assert_eq!(status_message(500, b"", &s), "Received status code: 500");
        assert_eq!(
            status_message(401, br#"{"detail":"401 Unauthorized"}"#, &s),
            "Received status code: 401 (401 Unauthorized)"
        );
        let m = status_message(
            404,
            br#"{"detail":"We could not find what you're looking for :/"}"#,
            &s,
        );
        assert!(m.contains("use --chat-id local"), "{m}");
        let m = status_message(400, br#"{"detail":"Model not found"}"#, &s);
        assert!(m.contains("grants access"), "{m}");
        let m = status_message(
            400,
            br#"{"error":{"message":"bad model"}}"#,
            &spec("/v1/chat/completions"),
        );
        assert_eq!(m, "Received status code: 400 (bad model)");
        assert_eq!(
            status_message(502, b"<html>gateway</html>", &s),
            "Received status code: 502"
        );
    }
}
