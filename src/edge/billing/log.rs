//! The request log, batched per isolate: rows wait briefly for company and go
//! to D1 in one batch, off the hot path.

use std::cell::RefCell;
use std::time::Duration;

use worker::{Delay, Env};

use crate::domain::usage::LogRow;
use crate::edge::store::log as log_store;

/// Rows wait this long for company before one D1 batch writes them all.
const FLUSH_AFTER_MS: u64 = 500;
/// A flush never carries more than this many rows (D1 batches stay small).
const FLUSH_MAX_ROWS: usize = 50;

#[derive(Default)]
struct PendingLog {
    rows: Vec<LogRow>,
    /// A flush is waiting; later rows ride along with it.
    scheduled: bool,
}

thread_local! {
    static PENDING: RefCell<PendingLog> = RefCell::new(PendingLog::default());
}

/// Queues a log row. The first row of a quiet isolate waits [`FLUSH_AFTER_MS`] (inside the
/// background task it already runs in) and then writes every row queued meanwhile in one
/// batch; a full queue is written at once. Rows of an isolate evicted inside that window are
/// lost, which costs the log a row but never the ledger a credit: balances live in `UserLedger`.
pub async fn write(env: &Env, row: LogRow) {
    if let Some(flush) = enqueue(env, row) {
        flush.await;
    }
}

/// Queues a log row without awaiting anything: the flush to run (in the
/// background), when this row is the one that must start it.
pub fn enqueue(env: &Env, row: LogRow) -> Option<impl std::future::Future<Output = ()> + 'static> {
    let (flush_now, wait) = PENDING.with(|p| {
        let mut p = p.borrow_mut();
        p.rows.push(row);
        if p.rows.len() >= FLUSH_MAX_ROWS {
            (true, false)
        } else if p.scheduled {
            (false, false)
        } else {
            p.scheduled = true;
            (false, true)
        }
    });
    if !(flush_now || wait) {
        return None;
    }
    let env = env.clone();
    Some(async move {
        if wait {
            Delay::from(Duration::from_millis(FLUSH_AFTER_MS)).await;
        }
        flush(&env, wait).await;
    })
}

async fn flush(env: &Env, scheduled: bool) {
    let rows = PENDING.with(|p| {
        let mut p = p.borrow_mut();
        if scheduled {
            p.scheduled = false;
        }
        std::mem::take(&mut p.rows)
    });
    if rows.is_empty() {
        return;
    }
    let written = match env.d1("DB") {
        Ok(db) => log_store::write(&db, &rows).await,
        Err(e) => Err(e.into()),
    };
    match written {
        Ok(()) => worker::console_log!("[gemgate] usage log: wrote {} row(s)", rows.len()),
        Err(e) => worker::console_warn!(
            "[gemgate] usage log: {} row(s) not written: {e}",
            rows.len()
        ),
    }
}
