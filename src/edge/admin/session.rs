//! The console's session routes: `POST /admin/api/login`, `POST
//! /admin/api/logout` and `GET /admin/api/session`. Authentication itself is
//! `access::admin`; these only start, report and end sessions.

use serde::Deserialize;
use serde_json::json;
use worker::{Headers, Request, Response};

use crate::domain::clock::format_rfc3339;
use crate::domain::error::GatewayError;
use crate::domain::session::{self, SessionKey};
use crate::edge::access::admin::{self as admin_access, Presented};
use crate::edge::app::App;
use crate::edge::http::{body, render};
use crate::edge::store::sessions;
use crate::edge::{now_ms, snapshot};

type HandlerResult = Result<Response, GatewayError>;

fn random16() -> Result<[u8; 16], GatewayError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)
        .map_err(|e| GatewayError::Internal(format!("random bytes: {e}")))?;
    Ok(bytes)
}

fn with_cookie(mut resp: Response, cookie: &str) -> HandlerResult {
    resp.headers_mut().set("set-cookie", cookie)?;
    resp.headers_mut().set("cache-control", "no-store")?;
    Ok(resp)
}

fn rfc3339_secs(secs: i64) -> String {
    format_rfc3339(u64::try_from(secs).unwrap_or(0).saturating_mul(1000))
}

/// `POST /admin/api/login` `{"password"}` → a session cookie and its CSRF token.
pub async fn login(app: &App, presented: &Presented<'_>, req: &mut Request) -> HandlerResult {
    #[derive(Deserialize)]
    struct Login {
        password: String,
    }
    if !session::same_origin(presented.origin, presented.own_origin) {
        return Err(GatewayError::Forbidden(
            "Log in from the gateway's own console.".into(),
        ));
    }
    let body = body::read_admin_json(req).await?;
    let login: Login = serde_json::from_value(body)
        .map_err(|_| GatewayError::invalid_param("Send {\"password\": \"…\"}.", "password"))?;
    admin_access::guess(app, presented.client_ip, &login.password).await?;

    let db = app.db()?;
    let now = now_ms();
    let salt = sessions::salt(&db, &session::random_id(&random16()?), now).await?;
    let key = SessionKey::derive(&login.password, &salt);
    let hours = snapshot::snapshot(app).await?.settings.admin_session_hours;
    let lifetime_secs = i64::from(hours) * 3600;
    let now_secs = i64::try_from(now / 1000).unwrap_or(i64::MAX);
    let id = session::random_id(&random16()?);
    let token = key
        .issue(&id, now_secs, lifetime_secs)
        .map_err(GatewayError::Internal)?;
    let expires_ms = now + u64::from(hours) * 3_600_000;
    sessions::create(&db, &id, now, expires_ms).await?;
    let resp = render::json(
        200,
        &json!({
            "csrf_token": key.csrf_token(&id),
            "expires_at": rfc3339_secs(now_secs + lifetime_secs),
        }),
    )?;
    with_cookie(resp, &session::cookie(&token, lifetime_secs))
}

/// `POST /admin/api/logout`, optionally `{"everywhere": true}`. Ends the caller's session for
/// good (revoked in D1, not only the cookie cleared); "everywhere" ends every session. A
/// caller with no session gets the same 200: logging out is idempotent.
pub async fn logout(app: &App, presented: &Presented<'_>, req: &mut Request) -> HandlerResult {
    #[derive(Deserialize, Default)]
    #[serde(default)]
    struct Logout {
        everywhere: bool,
    }
    let current = admin_access::session(app, presented.cookie).await?;
    if let Some((session, key)) = &current {
        admin_access::check_csrf(presented, key, session)?;
    }
    let everywhere = serde_json::from_value::<Logout>(body::read_admin_json(req).await?)
        .map_err(|e| GatewayError::invalid_param(format!("Invalid logout: {e}"), "everywhere"))?
        .everywhere;
    let db = app.db()?;
    let now = now_ms();
    let revoked = if everywhere {
        // Ending every session is an admin's act: a session, or the password.
        if current.is_none() {
            match presented.bearer {
                Some(token) => admin_access::guess(app, presented.client_ip, token).await?,
                None => {
                    return Err(GatewayError::Unauthorized(
                        "Log in to log out everywhere.".into(),
                    ));
                }
            }
        }
        sessions::revoke_all(&db, &session::random_id(&random16()?), now).await?
    } else if let Some((session, _)) = &current {
        sessions::revoke(&db, &session.id, now).await?
    } else {
        0
    };
    let resp = render::json(200, &json!({ "logged_out": true, "revoked": revoked }))?;
    with_cookie(resp, &session::cleared_cookie())
}

/// `GET /admin/api/session`: 200 either way, with the CSRF token again while the session is
/// live, so a reloaded page can still act.
pub async fn status(app: &App, presented: &Presented<'_>) -> HandlerResult {
    let body = match admin_access::session(app, presented.cookie).await? {
        Some((session, key)) => json!({
            "authenticated": true,
            "expires_at": rfc3339_secs(session.expires_at_secs),
            "csrf_token": key.csrf_token(&session.id),
        }),
        None => json!({ "authenticated": false, "expires_at": null, "csrf_token": null }),
    };
    let mut resp = render::json(200, &body)?;
    resp.headers_mut().set("cache-control", "no-store")?;
    Ok(resp)
}

/// The headers every admin answer carries: none of them may be cached or framed.
pub fn harden(headers: &Headers) -> worker::Result<()> {
    headers.set("x-content-type-options", "nosniff")?;
    headers.set("x-frame-options", "DENY")?;
    headers.set("referrer-policy", "no-referrer")
}
