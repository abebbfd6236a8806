//! The per-request context every layer above it receives: the bindings, the
//! isolate's config, a handle for background work, and what the response
//! still needs to learn (a user key's rate numbers). Holds no decisions.

use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;

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
pub struct Background(JsValue);

impl Background {
    pub fn new(ctx: &Context) -> Self {
        let js: &worker::worker_sys::Context = ctx.as_ref();
        Self(JsValue::from(js))
    }

    pub fn spawn(&self, work: impl Future<Output = ()> + 'static) {
        let promise = future_to_promise(async move {
            work.await;
            Ok(JsValue::UNDEFINED)
        });
        let ctx: &worker::worker_sys::Context = self.0.unchecked_ref();
        if let Err(e) = ctx.wait_until(&promise) {
            worker::console_warn!("[gemgate] background work refused: {e:?}");
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
}

impl App {
    pub fn new(
        env: Env,
        ctx: &Context,
        client_signal: Option<worker::web_sys::AbortSignal>,
    ) -> Self {
        let config = isolate_config(&env);
        Self {
            env,
            background: Background::new(ctx),
            config,
            rate: RefCell::new(None),
            client_signal,
        }
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
        }
    }

    pub fn db(&self) -> Result<D1Database, GatewayError> {
        self.env
            .d1("DB")
            .map_err(|e| GatewayError::Internal(format!("D1 binding DB: {e}")))
    }
}
