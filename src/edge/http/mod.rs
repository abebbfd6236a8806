//! HTTP plumbing every layer may use: capped request bodies, responses, and
//! streamed bodies written through the runtime's native pipe. Knows no other
//! edge module.

pub mod body;
pub mod render;
pub mod stream;
