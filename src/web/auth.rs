//! Optional HTTP Basic protection (`--web-login user:password`) of every page and API call.
//!
//! The expected `Authorization` value is computed once; each request is compared against it in
//! constant time. The password is kept in a [`Secret`], so it never shows in logs or debug output.

use crate::config::Secret;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::str::FromStr;

/// A `user:password` pair for HTTP Basic authentication.
#[derive(Clone, Debug)]
pub struct Login {
    /// User name.
    pub user: String,
    /// Password (never shown).
    pub password: Secret,
}

/// Why a `--web-login` value was refused.
#[derive(Debug, thiserror::Error)]
#[error("--web-login: expected user:password with a non-empty user and password (the user may not contain ':')")]
pub struct LoginError;

impl FromStr for Login {
    type Err = LoginError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once(':') {
            Some((user, password)) if !user.is_empty() && !password.is_empty() => Ok(Login {
                user: user.to_string(),
                password: Secret::new(password),
            }),
            _ => Err(LoginError),
        }
    }
}

impl Login {
    /// The credentials as a client sends them: base64 of `user:password`.
    fn encoded(&self) -> String {
        base64(format!("{}:{}", self.user, self.password.expose()).as_bytes())
    }
}

/// Standard base64 with padding (RFC 4648), the form HTTP Basic credentials take.
fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// What the middleware compares requests against.
#[derive(Clone)]
pub struct Guard {
    expected: Secret,
}

impl Guard {
    /// A guard for `login`.
    pub fn new(login: &Login) -> Self {
        Self {
            expected: Secret::new(login.encoded()),
        }
    }

    fn accepts(&self, header: Option<&HeaderValue>) -> bool {
        let Some(value) = header.and_then(|v| v.to_str().ok()) else {
            return false;
        };
        let Some((scheme, credentials)) = value.trim().split_once(' ') else {
            return false;
        };
        scheme.eq_ignore_ascii_case("basic")
            && constant_time_eq(
                credentials.trim().as_bytes(),
                self.expected.expose().as_bytes(),
            )
    }
}

/// Compares without stopping at the first difference, so timing does not leak the password.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Axum middleware: passes requests with the right credentials, answers 401 to the rest.
pub async fn require_login(State(guard): State<Guard>, req: Request, next: Next) -> Response {
    if guard.accepts(req.headers().get(header::AUTHORIZATION)) {
        return next.run(req).await;
    }
    (
        StatusCode::UNAUTHORIZED,
        [(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"gsai-load\", charset=\"UTF-8\""),
        )],
        "401 Unauthorized: this gsai-load UI needs the user and password given with --web-login\n",
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (plain, enc) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
            ("Aladdin:open sesame", "QWxhZGRpbjpvcGVuIHNlc2FtZQ=="),
        ] {
            assert_eq!(base64(plain.as_bytes()), enc, "{plain}");
        }
    }

    #[test]
    fn parses_logins_and_hides_the_password() {
        let l: Login = "admin:pa:ss".parse().unwrap();
        assert_eq!(l.user, "admin");
        assert_eq!(l.password.expose(), "pa:ss");
        assert!(!format!("{l:?}").contains("pa:ss"));
        for bad in ["admin", ":pw", "admin:", ""] {
            assert!(bad.parse::<Login>().is_err(), "{bad}");
        }
    }

    #[test]
    fn guard_accepts_only_the_right_credentials() {
        let g = Guard::new(&"Aladdin:open sesame".parse().unwrap());
        let ok = HeaderValue::from_static("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
        let lower = HeaderValue::from_static("basic  QWxhZGRpbjpvcGVuIHNlc2FtZQ== ");
        assert!(g.accepts(Some(&ok)));
        assert!(g.accepts(Some(&lower)));
        for bad in [
            "Basic QWxhZGRpbjpvcGVuIHNlc2FtZR==",
            "Bearer QWxhZGRpbjpvcGVuIHNlc2FtZQ==",
            "Basic",
            "",
        ] {
            assert!(!g.accepts(Some(&HeaderValue::from_static(bad))), "{bad}");
        }
        assert!(!g.accepts(None));
    }
}
