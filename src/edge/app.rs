//! The per-request context every layer above it receives: the bindings, the
//! isolate's config, a handle for background work, and what the response
//! still needs to learn (a user key's rate numbers). Holds no decisions.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::rc::Rc;

use futures::FutureExt;
use futures::future::LocalBoxFuture;
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::wasm_bindgen_futures::future_to_promise;
use worker::{Context, D1Database, Env};

use crate::domain::error::GatewayError;
use crate::domain::quota::RateView;
use crate::edge::config::{IsolateConfig, isolate_config};

/// Runs futures after the response, inside the request's `waitUntil`. Unlike
/// `Context::wait_until` it never panics: it is called from `Drop` too, when
/// the request may already be ending, and there a failure is only logged.
/// (It holds the JS `ExecutionContext`, which wasm-bindgen types cannot clone except as a
/// plain `JsValue`.)
#[derive(Clone)]
pub struct Background(Waiter);

#[derive(Clone)]
enum Waiter {
    /// A fetch's `ExecutionContext`.
    Request(JsValue),
    /// A scheduled run's work, awaited by the run itself before it ends
    /// ([`Background::drain`]): its context is not reachable from Rust.
    Collected(Rc<RefCell<Vec<LocalBoxFuture<'static, ()>>>>),
}

impl Background {
    pub fn new(ctx: &Context) -> Self {
        let js: &worker::worker_sys::Context = ctx.as_ref();
        Self(Waiter::Request(JsValue::from(js)))
    }

    /// A background that keeps its work for [`Background::drain`].
    pub fn collected() -> Self {
        Self(Waiter::Collected(Rc::default()))
    }

    pub fn spawn(&self, work: impl Future<Output = ()> + 'static) {
        match &self.0 {
            Waiter::Request(ctx) => {
                let promise = future_to_promise(async move {
                    work.await;
                    Ok(JsValue::UNDEFINED)
                });
                let ctx: &worker::worker_sys::Context = ctx.unchecked_ref();
                if let Err(e) = ctx.wait_until(&promise) {
                    worker::console_warn!("[gemgate] background work refused: {e:?}");
                }
            }
            Waiter::Collected(queue) => queue.borrow_mut().push(work.boxed_local()),
        }
    }

    /// Runs the collected work, and the work it spawns, to the end (a
    /// request's background is its runtime's to finish: nothing to do).
    pub async fn drain(&self) {
        let Waiter::Collected(queue) = &self.0 else {
            return;
        };
        // Each round takes what is queued; work may queue more, but only
        // as much as the jobs' bounded calls make, so this ends.
        for _ in 0..100 {
            let work: Vec<_> = queue.borrow_mut().drain(..).collect();
            if work.is_empty() {
                return;
            }
            futures::future::join_all(work).await;
        }
    }
}

/// Everything a handler needs, for one request.
pub struct App {
    pub env: Env,
    pub background: Background,
    pub config: Rc<IsolateConfig>,
    /// A user key's rate numbers, for the `x-ratelimit-*` headers of the response.
    pub rate: RefCell<Option<RateView>>,
    /// The incoming request's signal: it aborts when the client disconnects.
    pub client_signal: Option<worker::web_sys::AbortSignal>,
    /// The request's `x-request-id` (the client's own, or one made here): on the
    /// response, in its log row, its upstream errors and the worker's log lines.
    pub request_id: String,
    /// The API surface the route belongs to (`openai`, `gemini`, `admin`), once routed.
    pub surface: Cell<&'static str>,
}

impl App {
    pub fn new(
        env: Env,
        ctx: &Context,
        client_signal: Option<worker::web_sys::AbortSignal>,
        request_id: String,
    ) -> Self {
        Self::with(env, Background::new(ctx), client_signal, request_id, "")
    }

    /// Another handle on this request's bindings, owned, for work that outlives the
    /// handler's borrow: a response stream that makes further upstream calls
    /// (anti-truncation's continuations, fake streaming's call). It starts with no rate
    /// numbers: the response headers were already sent.
    #[must_use]
    pub fn detached(&self) -> Self {
        Self {
            env: self.env.clone(),
            background: self.background.clone(),
            config: Rc::clone(&self.config),
            rate: RefCell::new(None),
            client_signal: self.client_signal.clone(),
            request_id: self.request_id.clone(),
            surface: Cell::new(self.surface.get()),
        }
    }

    /// The context of a scheduled run: no client, background work collected
    /// for the run to await.
    pub fn for_cron(env: Env, run_id: String) -> Self {
        Self::with(env, Background::collected(), None, run_id, "cron")
    }

    fn with(
        env: Env,
        background: Background,
        client_signal: Option<worker::web_sys::AbortSignal>,
        request_id: String,
        surface: &'static str,
    ) -> Self {
        let config = isolate_config(&env);
        Self {
            env,
            background,
            config,
            rate: RefCell::new(None),
            client_signal,
            request_id,
            surface: Cell::new(surface),
        }
    }

    pub fn db(&self) -> Result<D1Database, GatewayError> {
        self.env
            .d1("DB")
            .map_err(|e| GatewayError::Internal(format!("D1 binding DB: {e}")))
    }
}
