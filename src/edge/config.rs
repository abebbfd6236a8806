//! What the isolate reads from its environment: vars parsed once per isolate,
//! and secrets. Knows no other edge module.

use std::cell::OnceCell;
use std::rc::Rc;

use worker::Env;

use crate::domain::config::{EnvConfig, parse_token_list};

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

/// The isolate's config, parsed on first use.
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

/// Every secret (or var) whose name starts with `prefix`, sorted by name, as
/// `(name, value)`; blank values are left out.
pub fn secrets_with_prefix(env: &Env, prefix: &str) -> Vec<(String, String)> {
    use worker::wasm_bindgen::JsCast;
    let object: &worker::js_sys::Object = env.unchecked_ref();
    let mut names: Vec<String> = worker::js_sys::Object::keys(object)
        .iter()
        .filter_map(|name| name.as_string())
        .filter(|name| name.starts_with(prefix))
        .collect();
    names.sort();
    names
        .into_iter()
        .filter_map(|name| secret(env, &name).map(|value| (name, value)))
        .collect()
}
