//! Observing the generator and the server beside the measurements: the generator's own health
//! ([`health`]) and this process's resource use ([`process`]).

pub mod health;
pub mod process;
