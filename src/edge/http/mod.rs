//! HTTP plumbing every layer may use: capped request bodies and responses.
//! Knows no other edge module.

pub mod body;
pub mod render;
