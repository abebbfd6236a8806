//! A deadline that moves with a stream's signs of life, on one runtime timer
//! for a whole upstream attempt (the answer, its first chunk, every later
//! chunk). A timer per wait would cost a `setTimeout`, a `clearTimeout` and a
//! fresh callback per upstream read; this one is re-armed only when it rings
//! before the deadline moved past it.
//!
//! The attempt starts in the request's task and its stream is then read by
//! another (the task writing the response body). So whoever waits last is
//! the one the timer wakes: each poll leaves its own waker. (The worker
//! crate's `Delay` keeps the waker of its first poll only, so a `Delay`
//! carried from one task to the other would ring into the first one.)

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::Duration;

use worker::js_sys;
use worker::wasm_bindgen::JsCast;
use worker::wasm_bindgen::JsValue;
use worker::wasm_bindgen::prelude::{Closure, wasm_bindgen};

#[wasm_bindgen(wasm_bindgen = worker::wasm_bindgen)]
extern "C" {
    #[wasm_bindgen(js_name = setTimeout)]
    fn set_timeout(callback: &js_sys::Function, ms: f64) -> JsValue;
    #[wasm_bindgen(js_name = clearTimeout)]
    fn clear_timeout(id: &JsValue);
}

/// What the timer's callback and the waiting task share.
#[derive(Default)]
struct Bell {
    rung: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

pub struct Quiet {
    gap_ms: f64,
    last_ms: f64,
    bell: Rc<Bell>,
    ring: Closure<dyn FnMut()>,
    /// The armed timer's id, until it rang.
    armed: Option<JsValue>,
}

impl Quiet {
    /// A deadline `gap` from now, armed.
    pub fn new(gap: Duration) -> Self {
        let bell = Rc::new(Bell::default());
        let ring = {
            let bell = Rc::clone(&bell);
            Closure::<dyn FnMut()>::new(move || {
                bell.rung.set(true);
                if let Some(waker) = bell.waker.borrow_mut().take() {
                    waker.wake();
                }
            })
        };
        let gap_ms = gap.as_secs_f64() * 1000.0;
        let mut quiet = Self {
            gap_ms,
            last_ms: js_sys::Date::now(),
            bell,
            ring,
            armed: None,
        };
        quiet.arm(gap_ms);
        quiet
    }

    fn arm(&mut self, ms: f64) {
        self.bell.rung.set(false);
        let callback: &js_sys::Function = self.ring.as_ref().unchecked_ref();
        self.armed = Some(set_timeout(callback, ms.max(1.0)));
    }

    /// A sign of life: the deadline moves to `gap` from now.
    pub fn touch(&mut self) {
        self.last_ms = js_sys::Date::now();
    }

    /// Resolves once `gap` passed since the last sign of life. Cancel-safe: the timer
    /// stays armed when this is dropped, and the next wait picks it up.
    pub async fn elapsed(&mut self) {
        // Bounded: each turn waits for one ring, and the deadline only moves on a touch,
        // which cannot happen while this runs.
        loop {
            let bell = Rc::clone(&self.bell);
            poll_fn(move |cx| {
                if bell.rung.get() {
                    return Poll::Ready(());
                }
                let mut waker = bell.waker.borrow_mut();
                if !waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                    *waker = Some(cx.waker().clone());
                }
                Poll::Pending
            })
            .await;
            self.armed = None;
            let quiet = js_sys::Date::now() - self.last_ms;
            if quiet >= self.gap_ms {
                return;
            }
            self.arm(self.gap_ms - quiet);
        }
    }
}

impl Drop for Quiet {
    fn drop(&mut self) {
        // The callback goes with this; a timer still armed must not ring into it.
        if let Some(id) = self.armed.take()
            && !self.bell.rung.get()
        {
            clear_timeout(&id);
        }
    }
}
