//! D1 repositories: each file owns one group of tables and its SQL. They take
//! a `D1Database` and return plain values; caching and invalidation are the
//! snapshot's, decisions the domain's.

pub mod accounts;
pub mod keys;
pub mod log;
pub mod meta;
pub mod ops;
pub mod pins;
pub mod projects;
pub mod responses;
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

/// Ids per statement: D1 binds at most 100 parameters.
pub const IDS_PER_STATEMENT: usize = 90;

/// The rows of `sql` for every id in `ids`, read in statements of at most
/// [`IDS_PER_STATEMENT`] ids: `sql` holds `{ids}` where the `IN` list goes
/// (`… WHERE id IN ({ids})`). `what` names the read in errors.
pub async fn select_by_ids<T: serde::de::DeserializeOwned>(
    db: &worker::D1Database,
    sql: &str,
    ids: &[String],
    what: &'static str,
) -> Result<Vec<T>, crate::domain::error::GatewayError> {
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(IDS_PER_STATEMENT) {
        let marks: Vec<String> = (1..=chunk.len()).map(|i| format!("?{i}")).collect();
        let params: Vec<worker::wasm_bindgen::JsValue> =
            chunk.iter().map(|id| id.as_str().into()).collect();
        let rows: Vec<T> = db
            .prepare(sql.replace("{ids}", &marks.join(", ")))
            .bind(&params)
            .map_err(crate::edge::internal(what))?
            .all()
            .await
            .map_err(crate::edge::internal(what))?
            .results()
            .map_err(crate::edge::internal(what))?;
        out.extend(rows);
    }
    Ok(out)
}
