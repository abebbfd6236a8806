//! gemgate: a Gemini API gateway on Cloudflare Workers.
//!
//! Only the runtime entry points live here; each hands off to `edge`.
//! `domain` is the pure half and compiles natively for `cargo test`.

pub mod domain;

#[cfg(target_arch = "wasm32")]
pub mod edge;

#[cfg(target_arch = "wasm32")]
mod entry {
    use worker::{Context, Env, Response, Result, ScheduleContext, ScheduledEvent, event, web_sys};

    // workers-rs 0.8 installs no panic hook of its own; this one makes a
    // panic's message reach the log instead of an opaque "unreachable".
    #[event(start)]
    fn start() {
        console_error_panic_hook::set_once();
    }

    #[event(fetch)]
    async fn fetch(req: web_sys::Request, env: Env, ctx: Context) -> Result<Response> {
        crate::edge::router::handle(crate::edge::http::without_cf(req), env, ctx).await
    }

    #[event(scheduled)]
    async fn scheduled(event: ScheduledEvent, env: Env, ctx: ScheduleContext) {
        crate::edge::cron::run(event, env, ctx).await;
    }
}
