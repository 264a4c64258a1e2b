//! How requests reach the target: per-phase time limits and how https certificates are
//! checked. The options only; the client applies them (and builds the rustls setup).

use super::defaults;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

/// Per-phase time limits of a request.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Timeouts {
    /// Opening a connection (TCP and TLS).
    #[serde(with = "crate::config::parse::humantime_serde_compat")]
    pub connect: Duration,
    /// From start to the response headers.
    #[serde(with = "crate::config::parse::humantime_serde_compat")]
    pub first_byte: Duration,
    /// Longest silence between two reads of the body.
    #[serde(with = "crate::config::parse::humantime_serde_compat")]
    pub idle: Duration,
    /// Whole request, from start to end of body.
    #[serde(with = "crate::config::parse::humantime_serde_compat")]
    pub total: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: defaults::CONNECT_TIMEOUT,
            first_byte: defaults::FIRST_BYTE_TIMEOUT,
            idle: defaults::IDLE_TIMEOUT,
            total: defaults::TOTAL_TIMEOUT,
        }
    }
}

/// How https certificates are checked.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsOptions {
    /// Extra trusted CA certificates (PEM), e.g. a company CA.
    #[serde(default)]
    pub ca_cert: Option<PathBuf>,
    /// Accept any certificate (testing against self-signed servers only).
    #[serde(default)]
    pub insecure: bool,
}
