//! Metering a stream for its settlement. A [`Meter`] lives inside the
//! response stream and learns the usage as the stream goes; when it is
//! dropped (the stream ended, broke, or the task writing it found the client
//! gone, see `http::stream`) it hands the last usage to the settlement.
//!
//! A client that disconnects can also take the request's pending I/O with
//! it: the stream then waits forever on an upstream read and is never
//! dropped. So the settlement also ends, with the last usage seen, when the
//! request's signal reports the disconnect, or when the meter has been quiet
//! for longer than the upstream idle limit, which a live stream never is: its
//! idle guard ends it first.

use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;
use std::time::Duration;

use futures::channel::oneshot;
use futures::future::{Either, select};
use worker::Delay;

use crate::domain::quota::Usage;
use crate::domain::usage::{UsageScanner, from_metadata};
use crate::edge::now_ms;

/// How a meter learns the usage.
#[derive(Debug, Clone, Copy)]
pub enum Metering {
    /// It scans the relayed bytes (the native surface relays them unread).
    Scan,
    /// A translator that parses the stream anyway tells it ([`Meter::record`]).
    Told,
}

/// How often a stream's settlement looks for a stalled meter, and the slack it allows.
const STALL_TICK_MS: u64 = 5_000;
const STALL_GRACE_MS: u64 = 2_000;

/// What the settlement can read while the stream is still alive.
struct MeterState {
    usage: Usage,
    last_activity_ms: u64,
}

pub struct Meter {
    scanner: Option<UsageScanner>,
    /// Shared with the settlement, for when the stream is never dropped.
    seen: Rc<RefCell<MeterState>>,
    done: Option<oneshot::Sender<Usage>>,
}

impl Meter {
    /// A meter, and the future that resolves with the usage to settle.
    pub fn new(
        metering: Metering,
        client_signal: Option<worker::web_sys::AbortSignal>,
        idle_ms: u64,
    ) -> (Self, impl Future<Output = Usage>) {
        let (tx, rx) = oneshot::channel::<Usage>();
        let seen = Rc::new(RefCell::new(MeterState {
            usage: Usage::default(),
            last_activity_ms: now_ms(),
        }));
        let state = Rc::clone(&seen);
        let settled = async move {
            let last_seen = || state.borrow().usage;
            let stalled = async {
                // Bounded: each tick waits at most the idle limit, and the loop ends once the
                // meter has been quiet for that long.
                let limit = idle_ms + STALL_GRACE_MS;
                loop {
                    let quiet = now_ms().saturating_sub(state.borrow().last_activity_ms);
                    if quiet >= limit {
                        return;
                    }
                    Delay::from(Duration::from_millis((limit - quiet).min(STALL_TICK_MS))).await;
                }
            };
            let ended = select(rx, Box::pin(stalled));
            match client_signal.map(|s| Box::pin(client_gone(s))) {
                Some(gone) => match select(ended, gone).await {
                    Either::Left((Either::Left((done, _)), _)) => {
                        done.unwrap_or_else(|_| last_seen())
                    }
                    Either::Left((Either::Right(((), _)), _)) | Either::Right(((), _)) => {
                        last_seen()
                    }
                },
                None => match ended.await {
                    Either::Left((done, _)) => done.unwrap_or_else(|_| last_seen()),
                    Either::Right(((), _)) => last_seen(),
                },
            }
        };
        let meter = Self {
            scanner: matches!(metering, Metering::Scan).then(UsageScanner::new),
            seen,
            done: Some(tx),
        };
        (meter, settled)
    }

    /// Bytes that reached the client: activity, and usage when this meter scans.
    pub fn observe(&mut self, bytes: &[u8]) {
        let mut state = self.seen.borrow_mut();
        state.last_activity_ms = now_ms();
        if let Some(scanner) = &mut self.scanner {
            scanner.push(bytes);
            if let Some(meta) = scanner.last() {
                state.usage = from_metadata(meta);
            }
        }
    }

    /// The usage a translator read from the stream so far.
    pub fn record(&mut self, usage: Option<Usage>) {
        if let Some(usage) = usage {
            self.seen.borrow_mut().usage = usage;
        }
    }
}

impl Drop for Meter {
    fn drop(&mut self) {
        let usage = self.seen.borrow().usage;
        if let Some(done) = self.done.take() {
            let _ = done.send(usage);
        }
    }
}

/// Resolves when the client disconnects (the request's signal aborts).
pub(super) async fn client_gone(signal: worker::web_sys::AbortSignal) {
    use worker::wasm_bindgen::{JsCast, JsValue, closure::Closure};
    let promise = worker::js_sys::Promise::new(&mut |resolve, _reject| {
        if signal.aborted() {
            let _ = resolve.call0(&JsValue::NULL);
            return;
        }
        let on_abort = Closure::once_into_js(move || {
            let _ = resolve.call0(&JsValue::NULL);
        });
        signal.set_onabort(Some(on_abort.unchecked_ref()));
    });
    let _ = worker::wasm_bindgen_futures::JsFuture::from(promise).await;
}
