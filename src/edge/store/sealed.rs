//! The sealed columns of every table, read and written for a key rotation:
//! how many values are not yet under the current key (or are plaintext),
//! the next batch of rows the re-seal job takes, and its compare-and-set
//! writes. Which values need re-sealing is decided by a prefix compare in
//! SQL (`domain::sealed`: a value names the key that sealed it), so counting
//! them never opens anything.

use serde::Deserialize;
use serde_json::{Map, Value};
use worker::wasm_bindgen::JsValue;
use worker::{D1Database, D1PreparedStatement};

use crate::domain::error::GatewayError;
use crate::domain::sealed::{NAMED_PREFIX, SEALED_PREFIX_LEN, SEALED_PREFIXES, sealed_prefix};
use crate::edge::store::{batch_of, changes, meta};
use crate::edge::{int, internal};

/// A table with sealed columns.
pub struct SealedTable {
    /// The name the admin API reports it under.
    pub name: &'static str,
    table: &'static str,
    /// Its sealed columns (at most two; the key column is `id`).
    columns: &'static [&'static str],
    /// The `meta` row that keeps where the re-seal job continues.
    cursor: &'static str,
}

/// Every table with sealed columns, as `migrations/` declares them:
/// upstream keys, account grants (refresh token and client secret), and the
/// PKCE verifiers of sign-ins under way.
pub const TABLES: [SealedTable; 3] = [
    SealedTable {
        name: "keys",
        table: "upstream_keys",
        columns: &["secret"],
        cursor: "reseal_cursor_keys",
    },
    SealedTable {
        name: "accounts",
        table: "accounts",
        columns: &["refresh_token", "client_secret"],
        cursor: "reseal_cursor_accounts",
    },
    SealedTable {
        name: "sign_ins",
        table: "oauth_states",
        columns: &["verifier"],
        cursor: "reseal_cursor_sign_ins",
    },
];

/// One row's count of each kind. A row counts once however many of its
/// columns qualify.
#[derive(Debug, Default, Clone, Copy)]
pub struct Census {
    /// Rows with a value not sealed under the current key (0 without one).
    pub remaining: u64,
    /// Rows with a value in plaintext.
    pub plaintext: u64,
    /// Rows with a value sealed under a key that is neither the current
    /// nor the previous one: no run can re-seal them.
    pub unknown_key: u64,
}

/// `column` does not start with the prefix bound at `?{param}`.
fn not_under(column: &str, param: u8) -> String {
    format!("substr({column}, 1, length(?{param})) <> ?{param}")
}

fn any(table: &SealedTable, each: impl Fn(&str) -> String) -> String {
    let parts: Vec<String> = table.columns.iter().map(|c| each(c)).collect();
    format!("({})", parts.join(" OR "))
}

/// The census of `table`, for a batch. `?1` is the current key's prefix and
/// `?2` the previous key's (the current again when there is none); without
/// a current key nothing is re-sealed, so nothing remains.
fn census_statement(
    db: &D1Database,
    table: &SealedTable,
    current: Option<&str>,
    previous: Option<&str>,
) -> Result<D1PreparedStatement, GatewayError> {
    let sealed_prefixes = SEALED_PREFIXES
        .iter()
        .map(|p| format!("'{p}'"))
        .collect::<Vec<_>>()
        .join(", ");
    let plain = any(table, |c| {
        format!("substr({c}, 1, {SEALED_PREFIX_LEN}) NOT IN ({sealed_prefixes})")
    });
    let (remaining, unknown) = if current.is_some() {
        (
            any(table, |c| not_under(c, 1)),
            any(table, |c| {
                format!(
                    "(substr({c}, 1, {SEALED_PREFIX_LEN}) = '{NAMED_PREFIX}' AND {} AND {})",
                    not_under(c, 1),
                    not_under(c, 2)
                )
            }),
        )
    } else {
        ("0".to_owned(), "0".to_owned())
    };
    let statement = db.prepare(format!(
        "SELECT COALESCE(SUM(CASE WHEN {remaining} THEN 1 ELSE 0 END), 0) AS remaining, \
         COALESCE(SUM(CASE WHEN {plain} THEN 1 ELSE 0 END), 0) AS plaintext, \
         COALESCE(SUM(CASE WHEN {unknown} THEN 1 ELSE 0 END), 0) AS unknown_key \
         FROM {}",
        table.table
    ));
    let Some(current) = current.map(sealed_prefix) else {
        return Ok(statement);
    };
    let previous = previous.map_or_else(|| current.clone(), sealed_prefix);
    statement
        .bind(&[current.into(), previous.into()])
        .map_err(internal("bind sealed census"))
}

/// Every table's census, in `TABLES` order, in one D1 batch. `current` and
/// `previous` are the keys' fingerprints.
pub async fn census(
    db: &D1Database,
    current: Option<&str>,
    previous: Option<&str>,
) -> Result<[Census; 3], GatewayError> {
    #[derive(Deserialize)]
    struct Row {
        remaining: f64,
        plaintext: f64,
        unknown_key: f64,
    }
    let statements = TABLES
        .iter()
        .map(|t| census_statement(db, t, current, previous))
        .collect::<Result<Vec<_>, _>>()?;
    let results = db
        .batch(statements)
        .await
        .map_err(internal("count sealed values"))?;
    let results: [worker::D1Result; 3] = batch_of(results)?;
    let mut out = [Census::default(); 3];
    for (slot, result) in out.iter_mut().zip(results.iter()) {
        let rows: Vec<Row> = result.results().map_err(internal("decode sealed census"))?;
        if let Some(row) = rows.into_iter().next() {
            *slot = Census {
                remaining: int(row.remaining),
                plaintext: int(row.plaintext),
                unknown_key: int(row.unknown_key),
            };
        }
    }
    Ok(out)
}

/// A row whose sealed values the job reads: its id and each column's value.
pub struct SealedRow {
    pub id: String,
    pub values: Vec<String>,
}

/// Where the job continues in `table` ("" = from the start).
pub async fn cursor(db: &D1Database, table: &SealedTable) -> Result<String, GatewayError> {
    Ok(meta::get(db, table.cursor).await?.unwrap_or_default())
}

pub async fn set_cursor(
    db: &D1Database,
    table: &SealedTable,
    cursor: &str,
    now_ms: u64,
) -> Result<(), GatewayError> {
    meta::put(db, table.cursor, cursor, now_ms).await
}

/// Up to `limit` rows of `table` after `after` (by id) with a value not
/// sealed under the key with `fingerprint`.
pub async fn batch(
    db: &D1Database,
    table: &SealedTable,
    fingerprint: &str,
    after: &str,
    limit: usize,
) -> Result<Vec<SealedRow>, GatewayError> {
    let sql = format!(
        "SELECT id, {} FROM {} WHERE {} AND id > ?2 ORDER BY id LIMIT ?3",
        table.columns.join(", "),
        table.table,
        any(table, |c| not_under(c, 1)),
    );
    #[expect(clippy::cast_precision_loss, reason = "a batch size")]
    let limit = JsValue::from_f64(limit as f64);
    let rows: Vec<Map<String, Value>> = db
        .prepare(sql)
        .bind(&[sealed_prefix(fingerprint).into(), after.into(), limit])
        .map_err(internal("bind re-seal batch"))?
        .all()
        .await
        .map_err(internal("read re-seal batch"))?
        .results()
        .map_err(internal("decode re-seal batch"))?;
    let text = |row: &Map<String, Value>, column: &str| {
        row.get(column)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| GatewayError::Internal(format!("{}.{column} is not text", table.table)))
    };
    rows.iter()
        .map(|row| {
            Ok(SealedRow {
                id: text(row, "id")?,
                values: table
                    .columns
                    .iter()
                    .map(|c| text(row, c))
                    .collect::<Result<_, _>>()?,
            })
        })
        .collect()
}

/// Writes re-sealed values, each only if the row still holds what was read
/// (an admin write in between wins; that row is simply taken again on a
/// later run if it still needs it). Returns how many rows were written.
/// `writes` pairs a row as read with its new values.
pub async fn write(
    db: &D1Database,
    table: &SealedTable,
    writes: &[(SealedRow, Vec<String>)],
) -> Result<usize, GatewayError> {
    if writes.is_empty() {
        return Ok(0);
    }
    let n = table.columns.len();
    let sets: Vec<String> = table
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| format!("{c} = ?{}", i + 2))
        .collect();
    let checks: Vec<String> = table
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| format!("{c} = ?{}", i + 2 + n))
        .collect();
    let sql = format!(
        "UPDATE {} SET {} WHERE id = ?1 AND {}",
        table.table,
        sets.join(", "),
        checks.join(" AND ")
    );
    let statements = writes
        .iter()
        .map(|(row, new)| {
            let mut params: Vec<JsValue> = vec![row.id.as_str().into()];
            params.extend(new.iter().map(|v| JsValue::from(v.as_str())));
            params.extend(row.values.iter().map(|v| JsValue::from(v.as_str())));
            db.prepare(&sql)
                .bind(&params)
                .map_err(internal("bind re-seal write"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let results = db
        .batch(statements)
        .await
        .map_err(internal("write re-sealed values"))?;
    Ok(results.iter().map(changes).sum())
}
