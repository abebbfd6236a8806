//! D1 repositories: each file owns one group of tables and its SQL. They take
//! a `D1Database` and return plain values; caching and invalidation are the
//! snapshot's, decisions the domain's.

pub mod accounts;
pub mod keys;
pub mod log;
pub mod meta;
pub mod ops;
pub mod projects;
pub mod sealed;
pub mod sessions;
pub mod settings;
pub mod stats;
pub mod users;

/// The rows a D1 batch of `n` statements returned, or an error if it returned another count.
pub fn batch_of<const N: usize>(
    results: Vec<worker::D1Result>,
) -> Result<[worker::D1Result; N], crate::domain::error::GatewayError> {
    results.try_into().map_err(|_| {
        crate::domain::error::GatewayError::Internal("D1 batch returned the wrong count".into())
    })
}

/// How many rows a write changed.
pub fn changes(result: &worker::D1Result) -> usize {
    result
        .meta()
        .ok()
        .flatten()
        .and_then(|m| m.changes)
        .unwrap_or(0)
}
