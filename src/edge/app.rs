//! Per-request context and the per-isolate configuration it is built from.
//! Env vars and secrets are parsed once per isolate; D1-backed state (keys,
//! settings) is cached briefly in `keys` and `settings`.

use std::cell::{OnceCell, RefCell};
use std::rc::Rc;

use worker::{Context, D1Database, Env};

use super::billing::Caller;
use crate::domain::config::{EnvConfig, parse_token_list};
use crate::domain::error::GatewayError;
use crate::domain::quota::RateView;

/// What never changes for the life of an isolate.
pub struct IsolateConfig {
    pub env: EnvConfig,
    pub access_tokens: Vec<String>,
    pub admin_password: Option<String>,
}

thread_local! {
    static CONFIG: OnceCell<Rc<IsolateConfig>> = const { OnceCell::new() };
}

/// A secret (or, in local dev, a var) that is set and not blank.
pub fn secret(env: &Env, name: &str) -> Option<String> {
    env.secret(name)
        .ok()
        .map(|s| s.to_string())
        .or_else(|| env.var(name).ok().map(|v| v.to_string()))
        .filter(|s| !s.trim().is_empty())
}

pub fn isolate_config(env: &Env) -> Rc<IsolateConfig> {
    CONFIG.with(|cell| {
        cell.get_or_init(|| {
            Rc::new(IsolateConfig {
                env: EnvConfig::from_lookup(|name| env.var(name).ok().map(|v| v.to_string())),
                access_tokens: secret(env, "ACCESS_TOKENS")
                    .map(|raw| parse_token_list(&raw))
                    .unwrap_or_default(),
                admin_password: secret(env, "ADMIN_PASSWORD"),
            })
        })
        .clone()
    })
}

/// Everything a handler needs, for one request.
pub struct App {
    pub env: Env,
    pub ctx: Context,
    pub config: Rc<IsolateConfig>,
    /// Who is calling, once authenticated.
    pub caller: RefCell<Option<Caller>>,
    /// A user key's rate numbers, for the `x-ratelimit-*` headers of the response.
    pub rate: RefCell<Option<RateView>>,
    /// The incoming request's signal: it aborts when the client disconnects.
    pub client_signal: Option<worker::web_sys::AbortSignal>,
}

impl App {
    pub fn new(env: Env, ctx: Context) -> Self {
        let config = isolate_config(&env);
        Self {
            env,
            ctx,
            config,
            caller: RefCell::new(None),
            rate: RefCell::new(None),
            client_signal: None,
        }
    }

    pub fn db(&self) -> Result<D1Database, GatewayError> {
        self.env
            .d1("DB")
            .map_err(|e| GatewayError::Internal(format!("D1 binding DB: {e}")))
    }

    /// The raw `GEMINI_API_KEYS` secret, if set.
    pub fn env_keys(&self) -> Option<String> {
        secret(&self.env, "GEMINI_API_KEYS")
    }
}

/// Maps a runtime error to an internal gateway error (logged, never shown).
pub fn internal(what: &str) -> impl FnOnce(worker::Error) -> GatewayError + '_ {
    move |e| GatewayError::Internal(format!("{what}: {e}"))
}
