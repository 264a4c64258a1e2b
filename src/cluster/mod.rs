//! Distributed mode, wire-compatible with Locust 2.x: a master that paces spawning over N
//! workers and merges their statistics, and a worker that runs the engine for a master (ours or
//! a stock `locust --master`).
//!
//! Layers, bottom up: [`zmtp`] (ZeroMQ's wire format) → [`transport`] (ROUTER and DEALER,
//! payload bytes in and out) → [`protocol`] (Locust's msgpack messages, typed) →
//! [`locust_stats`] (our statistics as Locust stats entries plus exact HDR histograms, each
//! checked by [`hdr_wire`] before it is decoded).

pub mod args;
pub mod hdr_wire;
pub mod locust_stats;
pub mod master;
pub mod master_handle;
mod master_inbox;
mod master_peers;
mod master_session;
mod master_test;
pub mod nodes;
pub mod protocol;
pub mod stats_read;
pub mod transport;
pub mod worker;
pub mod zmtp;

#[cfg(test)]
mod tests;
