//! Integration tests: the engine and the binary against the built-in mock on 127.0.0.1:0.

mod harness;

mod binary;
mod dist;
mod engine;
