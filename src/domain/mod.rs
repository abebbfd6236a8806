//! Pure gateway logic: wire types, translation, SSE, key-pool policy, config.
//!
//! Nothing under `domain` may import the Worker runtime crates or read a
//! clock (`make boundary` checks): time is always passed in as milliseconds
//! since the Unix epoch. That keeps every rule here unit-testable natively
//! with `cargo test`.

pub mod accounts;
pub mod auth;
pub mod catalog;
pub mod clock;
pub mod compat;
pub mod config;
pub mod error;
pub mod failover;
pub mod files;
pub mod gate;
pub mod gemini;
pub mod images;
pub mod jobs;
pub mod keypool;
pub mod keys;
pub mod limits;
pub mod mask;
pub mod media;
pub mod openai;
pub mod ops;
pub mod outcome;
pub mod pipe;
pub mod projects;
pub mod quota;
pub mod render;
pub mod responses;
pub mod route;
pub mod schedule;
pub mod sealed;
pub mod session;
pub mod sha256;
pub mod speech;
pub mod sse;
pub mod stats;
pub mod throttle;
pub mod translate;
pub mod urlencode;
pub mod usage;
pub mod userkey;
pub mod users;

#[cfg(test)]
mod properties;
