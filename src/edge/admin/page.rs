//! The admin console and the self-service usage page, served from `ASSETS`
//! (the build of `admin-ui/`) with a strict CSP and security headers. The
//! pages hold no data: everything they show comes from the admin API or
//! `/v1/usage`.
//!
//! Caching: the two HTML documents go out with `no-cache`, so a browser
//! asks again every time and sees a new build at once; the scripts and
//! styles they load live under `/admin/assets/` with a content hash in
//! their names and never change, so they are `immutable` for a year. Every
//! other `/admin/...` path is one of the console's sections and gets the
//! console's `index.html`.

use worker::{Headers, Request, RequestInit, Response, ResponseBuilder};

use crate::domain::error::GatewayError;
use crate::edge::app::App;

/// Where the build puts its hashed files (Vite's `assetsDir`).
const HASHED_PREFIX: &str = "/admin/assets/";
const CONSOLE_HTML: &str = "/admin/index.html";
const USAGE_HTML: &str = "/usage.html";

const NO_CACHE: &str = "no-cache";
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; font-src 'self'; object-src 'none'; frame-ancestors 'none'; \
                   base-uri 'none'; form-action 'self'";

/// The asset a page path is served from, and whether it is a hashed file.
fn asset_for(path: &str) -> (&str, bool) {
    match path {
        "/usage" | "/usage/" => (USAGE_HTML, false),
        p if p.starts_with(HASHED_PREFIX) => (p, true),
        // A section of the console (`/admin/keys`), or the console itself.
        p if !p.rsplit('/').next().unwrap_or_default().contains('.') => (CONSOLE_HTML, false),
        p if p == CONSOLE_HTML => (CONSOLE_HTML, false),
        p => (p, false),
    }
}

pub async fn serve(app: &App, req: Request) -> Result<Response, GatewayError> {
    let assets = app
        .env
        .assets("ASSETS")
        .map_err(|e| GatewayError::Internal(format!("ASSETS binding: {e}")))?;
    let url = req.url()?;
    let (path, hashed) = asset_for(url.path());
    let mut target = url.clone();
    target.set_path(path);
    target.set_query(None);
    // Pass a revalidation through, so an unchanged page answers 304.
    let conditional = Headers::new();
    if let Some(etag) = req.headers().get("if-none-match")? {
        conditional.set("if-none-match", &etag)?;
    }
    let mut init = RequestInit::new();
    init.with_headers(conditional);
    let asset = assets.fetch(target.to_string(), Some(init)).await?;
    let status = asset.status_code();
    // The assets response's headers are immutable: copy them into new ones.
    let headers = Headers::new();
    for (name, value) in asset.headers().entries() {
        headers.append(&name, &value)?;
    }
    let cache = if hashed && (status == 200 || status == 304) {
        IMMUTABLE
    } else {
        NO_CACHE
    };
    for (name, value) in [
        ("cache-control", cache),
        ("content-security-policy", CSP),
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
    ] {
        headers.set(name, value)?;
    }
    let (_, body) = asset.into_parts();
    Ok(ResponseBuilder::new()
        .with_status(status)
        .with_headers(headers)
        .body(body))
}
