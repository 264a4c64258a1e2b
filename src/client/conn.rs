//! The target server and connections to it: URL parsing, TCP (and TLS for https) setup, and
//! HTTP/1.1 handshakes. Each simulated user owns one keep-alive connection, as a browser tab
//! or a Locust user does, so no pool lock sits on the request path; and the user's own task
//! drives that connection (no task of its own), so reading a response wakes no other thread.
//!
//! Every `connect`, `tls` and `local_resource` failure is made here.

use super::head::TimeoutPhase;
use super::messages::error_chain;
/// Why a base URL was refused (the plan's error: the plan checks its host).
pub use crate::config::TargetError;
use crate::metrics::{Failure, FailureKind};
use bytes::Bytes;
use http_body_util::Full;
use hyper::client::conn::http1::SendRequest;
use hyper::header::HeaderValue;
use hyper_util::rt::TokioIo;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

/// Why a connection could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// TCP connect failed.
    #[error("connection to {addr} failed: {source}")]
    Tcp {
        /// host:port.
        addr: String,
        /// Cause.
        source: std::io::Error,
    },
    /// TLS handshake failed.
    #[error("TLS handshake with {host} failed: {source}")]
    Tls {
        /// Server name.
        host: String,
        /// Cause.
        source: std::io::Error,
    },
    /// Invalid server name for TLS.
    #[error("'{host}' is not a valid TLS server name")]
    ServerName {
        /// Server name.
        host: String,
    },
    /// HTTP handshake failed.
    #[error("HTTP handshake failed: {0}")]
    Http(#[from] hyper::Error),
}

impl ConnectError {
    /// The failure kind this error counts as. Running out of file descriptors or local ports
    /// is the generator's limit, not the server's, so it is told apart.
    pub fn failure_kind(&self) -> FailureKind {
        match self {
            ConnectError::Tcp { source, .. } if is_local_resource(source) => {
                FailureKind::LocalResource
            }
            ConnectError::Tcp { .. } | ConnectError::Http(_) => FailureKind::Connect,
            ConnectError::Tls { .. } | ConnectError::ServerName { .. } => FailureKind::Tls,
        }
    }
}

/// A keep-alive connection: its request side and the future that drives it.
pub(super) type Conn = (SendRequest<Full<Bytes>>, ConnDriver);

/// Opens a connection to `target` within `limit`; returns it and how long it took, or the
/// failure (`connect`, `tls`, `local_resource`, or the connect `timeout`).
pub(super) async fn open(target: &Target, limit: Duration) -> Result<(Conn, Duration), Failure> {
    let began = Instant::now();
    match tokio::time::timeout(limit, target.connect()).await {
        Ok(Ok(c)) => Ok((c, began.elapsed())),
        Ok(Err(e)) => Err(Failure::new(
            e.failure_kind(),
            format!("Request failed: {e}"),
        )),
        Err(_) => Err(TimeoutPhase::Connect.failure(limit)),
    }
}

/// A connection opened afresh (the idle one had been closed) that closed before a request
/// could be written.
pub(super) fn closed_at_once() -> Failure {
    Failure::new(
        FailureKind::Connect,
        "Request failed: the new connection closed at once",
    )
}

/// The request could not be written, or the connection closed before the response head.
pub(super) fn send_failed(e: &hyper::Error) -> Failure {
    Failure::new(
        FailureKind::Connect,
        format!("Request failed: {}", error_chain(e)),
    )
}

/// True when `e` is a limit of this machine: too many open files (per process or system-wide),
/// no free local port, or no buffer space.
pub fn is_local_resource(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::EADDRNOTAVAIL | libc::ENOBUFS | libc::ENOMEM)
    )
}

/// A parsed base URL and the means to connect to it.
#[derive(Clone)]
pub struct Target {
    /// `http` or `https`.
    pub https: bool,
    /// Host name or address.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Value of the Host header.
    pub authority: HeaderValue,
    /// Path prefix of the base URL without trailing slash (often empty).
    pub base_path: String,
    tls: Option<tokio_rustls::TlsConnector>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("https", &self.https)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("base_path", &self.base_path)
            .finish()
    }
}

impl Target {
    /// Parses a base URL such as `https://chat.example.com` or `http://127.0.0.1:8000/prefix`
    /// (the checks are the plan's: [`crate::config::BaseUrl`]).
    pub fn parse(url: &str) -> Result<Self, TargetError> {
        let invalid = |reason: String| TargetError::Invalid {
            url: url.to_string(),
            reason,
        };
        let crate::config::BaseUrl {
            https,
            host,
            port,
            authority,
            base_path,
        } = crate::config::BaseUrl::parse(url)?;
        let tls = match https {
            true => Some(
                super::tls::connector(&crate::config::TlsOptions::default())
                    .map_err(|e| invalid(e.to_string()))?,
            ),
            false => None,
        };
        Ok(Self {
            https,
            host,
            port,
            authority: HeaderValue::from_str(&authority).map_err(|e| invalid(e.to_string()))?,
            base_path,
            tls,
        })
    }

    /// Replaces the TLS trust settings (for https targets; no effect on http).
    pub fn with_tls(
        mut self,
        opts: &crate::config::TlsOptions,
    ) -> Result<Self, super::tls::TlsError> {
        if self.https {
            self.tls = Some(super::tls::connector(opts)?);
        }
        Ok(self)
    }

    /// The URL, for display (no credentials are ever part of it).
    pub fn display_url(&self) -> String {
        format!(
            "{}://{}{}",
            if self.https { "https" } else { "http" },
            self.authority.to_str().unwrap_or(&self.host),
            self.base_path
        )
    }

    /// Opens a connection and completes the HTTP/1.1 handshake. The returned driver must be
    /// polled (spawned, or polled alongside each request) for the connection to make progress;
    /// it ends when the sender is dropped or the peer closes.
    pub async fn connect(&self) -> Result<(SendRequest<Full<Bytes>>, ConnDriver), ConnectError> {
        let tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|source| ConnectError::Tcp {
                addr: format!("{}:{}", self.host, self.port),
                source,
            })?;
        // Token events are small; Nagle would add latency to our requests.
        let _ = tcp.set_nodelay(true);
        match &self.tls {
            None => handshake(tcp).await,
            Some(tls) => {
                let name =
                    rustls::pki_types::ServerName::try_from(self.host.clone()).map_err(|_| {
                        ConnectError::ServerName {
                            host: self.host.clone(),
                        }
                    })?;
                let stream = tls
                    .connect(name, tcp)
                    .await
                    .map_err(|source| ConnectError::Tls {
                        host: self.host.clone(),
                        source,
                    })?;
                handshake(stream).await
            }
        }
    }
}

/// The future that drives one HTTP/1.1 connection (I/O of both directions).
pub type ConnDriver = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

async fn handshake<S>(io: S) -> Result<(SendRequest<Full<Bytes>>, ConnDriver), ConnectError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await?;
    // Errors surface on the request side; the driver just moves the bytes.
    Ok((
        sender,
        Box::pin(async move {
            let _ = conn.await;
        }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_base_urls() {
        let t = Target::parse("https://chat.example.com").unwrap();
        assert!(t.https);
        assert_eq!(
            (t.host.as_str(), t.port, t.base_path.as_str()),
            ("chat.example.com", 443, "")
        );
        let t = Target::parse("http://127.0.0.1:8000/owui/").unwrap();
        assert_eq!((t.port, t.base_path.as_str()), (8000, "/owui"));
        assert_eq!(t.display_url(), "http://127.0.0.1:8000/owui");
        let t = Target::parse("http://[::1]:9/").unwrap();
        assert_eq!(t.host, "::1");
    }

    #[test]
    fn refuses_bad_urls() {
        assert!(matches!(
            Target::parse("ftp://x"),
            Err(TargetError::Scheme { .. })
        ));
        assert!(matches!(
            Target::parse("chat.example.com"),
            Err(TargetError::Scheme { .. })
        ));
        assert!(Target::parse("http://user:pw@x").is_err());
        assert!(Target::parse("http://").is_err());
        for url in ["http://h:0", "http://h:70000", "http://h:65536/x"] {
            let e = Target::parse(url).unwrap_err().to_string();
            assert!(e.contains("a port is 1 to 65535"), "{e}");
        }
        assert_eq!(Target::parse("http://h:65535").unwrap().port, 65535);
    }
}
