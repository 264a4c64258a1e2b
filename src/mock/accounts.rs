//! Open WebUI's sign-in on the mock: `POST /api/v1/auths/signin` with `{"email","password"}`
//! answers `{"token": …}` for an account given to the mock (`MockConfig::accounts`), 400 for a
//! wrong email or password (as Open WebUI does), 422 for a body without them. Chat and model
//! requests then accept an issued token, and each account's sign-ins and requests are counted,
//! so tests can check that every account was used.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use hyper::{Request, Response, StatusCode};

use super::body::MockBody;
use super::counters::Counters;

/// Open WebUI's sign-in path.
pub(crate) const SIGNIN: &str = "/api/v1/auths/signin";

/// Answers `POST /api/v1/auths/signin` (counted among the other requests).
pub(crate) async fn sign_in(counters: &Counters, req: Request<Incoming>) -> Response<MockBody> {
    super::counters::bump(&counters.other_requests);
    let issued = counters.accounts.get_or_init(Default::default);
    issued.sign_in(req).await
}

/// Largest sign-in body read.
const MAX_SIGNIN_BODY: usize = 64 << 10;

/// Open WebUI's answer to a wrong email or password.
const WRONG: &str =
    "The email or password provided is incorrect. Please check for typos and try logging in again.";

/// The accounts of one mock server, with the token each is issued (fixed for the server's life,
/// so a second sign-in gets the same token).
#[derive(Debug, Default)]
pub(crate) struct Issued {
    list: Vec<IssuedAccount>,
}

#[derive(Debug)]
struct IssuedAccount {
    email: String,
    password: String,
    token: String,
    /// `Bearer <token>`, compared with the raw header bytes.
    bearer: Vec<u8>,
    signins: AtomicU64,
    requests: AtomicU64,
}

/// What one account did on the mock (from [`super::MockServer::accounts`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountUse {
    /// The account's email.
    pub email: String,
    /// The token the mock issues it.
    pub token: String,
    /// Successful sign-ins.
    pub signins: u64,
    /// Chat and model requests that carried its token.
    pub requests: u64,
}

impl Issued {
    /// Issues a token to each `(email, password)`.
    pub(crate) fn new(accounts: &[(String, String)]) -> Self {
        let salt: u64 = rand::random();
        let list = accounts
            .iter()
            .enumerate()
            .map(|(i, (email, password))| {
                let token = format!("mockjwt.{i}.{salt:016x}");
                IssuedAccount {
                    email: email.clone(),
                    password: password.clone(),
                    bearer: format!("Bearer {token}").into_bytes(),
                    token,
                    signins: AtomicU64::new(0),
                    requests: AtomicU64::new(0),
                }
            })
            .collect();
        Issued { list }
    }

    /// Issues `accounts` their tokens for the server counting into `counters`.
    pub(crate) fn install(counters: &Counters, accounts: &[(String, String)]) {
        let _ = counters.accounts.set(Issued::new(accounts));
    }

    /// Whether the mock has accounts (then a chat request needs a token).
    pub(crate) fn any(&self) -> bool {
        !self.list.is_empty()
    }

    /// Whether `headers` carry an issued token (`Authorization: Bearer` or Anthropic's
    /// `x-api-key`); counts the request for its account.
    pub(crate) fn admits(&self, headers: &HeaderMap) -> bool {
        let auth = headers.get(AUTHORIZATION).map(HeaderValue::as_bytes);
        let key = headers.get("x-api-key").map(HeaderValue::as_bytes);
        let found = self
            .list
            .iter()
            .find(|a| auth == Some(a.bearer.as_slice()) || key == Some(a.token.as_bytes()));
        if let Some(a) = found {
            a.requests.fetch_add(1, Relaxed);
        }
        found.is_some()
    }

    /// Each account's use so far.
    pub(crate) fn uses(&self) -> Vec<AccountUse> {
        self.list
            .iter()
            .map(|a| AccountUse {
                email: a.email.clone(),
                token: a.token.clone(),
                signins: a.signins.load(Relaxed),
                requests: a.requests.load(Relaxed),
            })
            .collect()
    }

    /// Checks the credentials of a sign-in and answers it.
    async fn sign_in(&self, req: Request<Incoming>) -> Response<MockBody> {
        let body = match Limited::new(req.into_body(), MAX_SIGNIN_BODY)
            .collect()
            .await
        {
            Ok(b) => b.to_bytes(),
            Err(_) => return detail(StatusCode::BAD_REQUEST, "request body too large or broken"),
        };
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        let (Some(email), Some(password)) = (
            v.get("email").and_then(|e| e.as_str()),
            v.get("password").and_then(|p| p.as_str()),
        ) else {
            let body = serde_json::json!({"detail": [{
                "type": "missing", "loc": ["body", "email"], "msg": "Field required", "input": null,
            }]});
            return json(StatusCode::UNPROCESSABLE_ENTITY, body.to_string());
        };
        let found =
            self.list.iter().enumerate().find(|(_, a)| {
                a.email.eq_ignore_ascii_case(email.trim()) && a.password == password
            });
        let Some((i, a)) = found else {
            return detail(StatusCode::BAD_REQUEST, WRONG);
        };
        a.signins.fetch_add(1, Relaxed);
        let body = serde_json::json!({
            "id": format!("mock-user-{i}"), "email": a.email, "name": a.email, "role": "user",
            "profile_image_url": "/user.png", "token": a.token, "token_type": "Bearer",
            "expires_at": null, "permissions": {},
        });
        json(StatusCode::OK, body.to_string())
    }
}

fn json(status: StatusCode, body: impl Into<Bytes>) -> Response<MockBody> {
    let mut res = Response::new(MockBody::full(body));
    *res.status_mut() = status;
    res.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    res
}

fn detail(status: StatusCode, msg: &str) -> Response<MockBody> {
    json(status, serde_json::json!({ "detail": msg }).to_string())
}
