//! Flags of the web UI, flattened into the load-test flags (as Locust names them).

use super::auth::Login;
use clap::Args;

/// Where and how the web UI is served (ignored with `--headless`).
#[derive(Args, Debug, Clone)]
pub struct WebArgs {
    /// Address the web UI listens on (0.0.0.0 to reach it from other machines or a container).
    #[arg(long, default_value = "127.0.0.1")]
    pub web_host: String,
    /// Port of the web UI.
    #[arg(long, default_value_t = 8089)]
    pub web_port: u16,
    /// Start the test at once with -u/-r/-t instead of waiting for the form (web UI mode).
    #[arg(long)]
    pub autostart: bool,
    /// With --autostart: quit this many seconds after the test ends (default: keep serving).
    #[arg(long, value_name = "SECONDS")]
    pub autoquit: Option<u64>,
    /// Protect every page and API call with HTTP Basic authentication, e.g. admin:secret.
    #[arg(
        long,
        env = "GSAI_WEB_LOGIN",
        hide_env_values = true,
        value_name = "USER:PASSWORD"
    )]
    pub web_login: Option<Login>,
}

impl Default for WebArgs {
    fn default() -> Self {
        Self {
            web_host: "127.0.0.1".into(),
            web_port: 8089,
            autostart: false,
            autoquit: None,
            web_login: None,
        }
    }
}
