//! The re-seal job of a key rotation. With `ENCRYPTION_KEY` set, every run
//! takes up to `RESEAL_BATCH` rows per table whose sealed values are not
//! under the current key (sealed under `ENCRYPTION_KEY_PREVIOUS`, old
//! `enc:v1:` values, or plaintext stored before a key was set), opens them
//! with whichever key fits and seals them under the current one, written
//! only where the row still holds what was read. The next run continues
//! where this one stopped. Serving never waits for it: the hot path opens
//! values under either key all along.

use worker::{D1Database, Env};

use crate::domain::error::GatewayError;
use crate::domain::sealed::{RESEAL_BATCH, next_cursor};
use crate::edge::crypto::Keyring;
use crate::edge::store::sealed::{self as sealed_store, SealedRow, TABLES};
use crate::edge::{now_ms, snapshot};

/// What one run did.
#[derive(Debug, Default)]
pub struct ResealRun {
    /// Rows written under the current key.
    pub resealed: usize,
    /// Rows still not under the current key after the run.
    pub remaining: u64,
    /// Rows that could not be opened (logged by table and id).
    pub failed: usize,
}

pub async fn run(env: &Env, db: &D1Database) -> Result<ResealRun, GatewayError> {
    let Some(ring) = snapshot::sealer(env).await? else {
        // The plaintext fallback: there is no key to seal with.
        return Ok(ResealRun::default());
    };
    let fingerprints = ring.fingerprints();
    let mut done = ResealRun::default();
    for table in &TABLES {
        let after = sealed_store::cursor(db, table).await?;
        let rows =
            sealed_store::batch(db, table, &fingerprints.current, &after, RESEAL_BATCH).await?;
        let taken = rows.len();
        let last = rows.last().map(|r| r.id.clone());
        let mut writes = Vec::with_capacity(taken);
        for row in rows {
            match reseal_row(&ring, &row).await {
                Ok(values) => writes.push((row, values)),
                Err(e) => {
                    done.failed += 1;
                    worker::console_warn!(
                        "[gemgate] cron reseal: cannot open {} {}: {e}",
                        table.name,
                        row.id
                    );
                }
            }
        }
        done.resealed += sealed_store::write(db, table, &writes).await?;
        let next = next_cursor(taken, RESEAL_BATCH, last.as_deref());
        if next != after {
            sealed_store::set_cursor(db, table, &next, now_ms()).await?;
        }
    }
    let census = sealed_store::census(
        db,
        Some(&fingerprints.current),
        fingerprints.previous.as_deref(),
    )
    .await?;
    done.remaining = census.iter().map(|c| c.remaining).sum();
    Ok(done)
}

/// A row's values, each sealed under the current key.
async fn reseal_row(ring: &Keyring, row: &SealedRow) -> Result<Vec<String>, GatewayError> {
    let mut values = Vec::with_capacity(row.values.len());
    for value in &row.values {
        if ring.fingerprints().needs_reseal(value) {
            let plain = ring.open(value).await?;
            values.push(ring.seal(&plain).await?);
        } else {
            values.push(value.clone());
        }
    }
    Ok(values)
}
