//! Observing the generator and the server beside the measurements: the generator's own health
//! ([`health`]), this process's resource use ([`process`]) and the per-request log
//! ([`requests_log`]).

pub mod health;
pub mod process;
pub mod requests_log;
