//! The admin page and the self-service usage page, served from `ASSETS` with
//! a strict CSP and security headers. The pages hold no data: everything
//! they show comes from the admin API or `/v1/usage`.

use worker::{Headers, Request, Response, ResponseBuilder};

use crate::domain::error::GatewayError;
use crate::edge::app::App;

pub async fn serve(app: &App, req: Request) -> Result<Response, GatewayError> {
    let assets = app
        .env
        .assets("ASSETS")
        .map_err(|e| GatewayError::Internal(format!("ASSETS binding: {e}")))?;
    let url = req.url()?;
    let path = match url.path() {
        "/admin" | "/admin/" => "/admin/index.html".to_owned(),
        "/usage" | "/usage/" => "/usage.html".to_owned(),
        p => p.to_owned(),
    };
    let mut target = url.clone();
    target.set_path(&path);
    let asset = assets.fetch(target.to_string(), None).await?;
    // The assets response's headers are immutable: copy them into new ones.
    let headers = Headers::new();
    for (name, value) in asset.headers().entries() {
        headers.append(&name, &value)?;
    }
    for (name, value) in [
        (
            "content-security-policy",
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        ),
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
    ] {
        headers.set(name, value)?;
    }
    let status = asset.status_code();
    let (_, body) = asset.into_parts();
    Ok(ResponseBuilder::new()
        .with_status(status)
        .with_headers(headers)
        .body(body))
}
