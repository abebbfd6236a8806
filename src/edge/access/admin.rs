//! Admin authentication. A request is an admin's when it carries a live
//! console session (the `gemgate_admin` cookie: a signed JWT whose session is
//! not revoked in D1) or `Authorization: Bearer <ADMIN_PASSWORD>`. A
//! cookie-authenticated state change must also carry its CSRF token and come
//! from the gateway's own origin. Every password guess, a login or a Bearer,
//! goes through the `LoginThrottle` first.

use crate::domain::auth::ct_eq;
use crate::domain::error::GatewayError;
use crate::domain::session::{self, Session, SessionKey};
use crate::domain::throttle::{Attempt, Verdict, client_key};
use crate::edge::app::App;
use crate::edge::now_ms;
use crate::edge::objects::throttle;
use crate::edge::snapshot;
use crate::edge::store::sessions;

/// What an admin request presents, read from its headers by the router.
#[derive(Debug, Default, Clone, Copy)]
pub struct Presented<'a> {
    /// The token of an `Authorization: Bearer` header.
    pub bearer: Option<&'a str>,
    /// The `Cookie` header.
    pub cookie: Option<&'a str>,
    pub origin: Option<&'a str>,
    /// `scheme://host[:port]` of the request URL.
    pub own_origin: &'a str,
    /// `CF-Connecting-IP`.
    pub client_ip: Option<&'a str>,
    /// The `x-csrf-token` header.
    pub csrf: Option<&'a str>,
}

/// How an admin proved it.
pub enum Admin {
    Bearer,
    Session { session: Session, key: SessionKey },
}

fn password(app: &App) -> Result<&str, GatewayError> {
    app.config.admin_password.as_deref().ok_or_else(|| {
        GatewayError::Unauthorized("The admin API is disabled: ADMIN_PASSWORD is not set.".into())
    })
}

/// Authenticates an admin API request; `changes_state` asks for the CSRF check a cookie needs.
pub async fn authenticate(
    app: &App,
    presented: &Presented<'_>,
    changes_state: bool,
) -> Result<Admin, GatewayError> {
    if let Some(token) = presented.bearer {
        guess(app, presented.client_ip, token).await?;
        return Ok(Admin::Bearer);
    }
    let Some((session, key)) = session(app, presented.cookie).await? else {
        return Err(GatewayError::Unauthorized(
            "Log in to the admin console, or send `Authorization: Bearer <ADMIN_PASSWORD>`.".into(),
        ));
    };
    if changes_state {
        check_csrf(presented, &key, &session)?;
    }
    Ok(Admin::Session { session, key })
}

/// Checks a password guess against `ADMIN_PASSWORD` through the throttle: the verdict is
/// computed in constant time, and a throttled guess gets 429 whatever it was.
pub async fn guess(
    app: &App,
    client_ip: Option<&str>,
    password_guess: &str,
) -> Result<(), GatewayError> {
    let correct = ct_eq(password_guess, password(app)?);
    let settings = snapshot::snapshot(app).await?.settings.clone();
    let attempt = Attempt {
        client: client_key(client_ip),
        correct,
        global_limit: settings.admin_login_global_limit,
    };
    match throttle::call(&app.env, &attempt).await? {
        Verdict::Allowed => Ok(()),
        Verdict::Denied => Err(GatewayError::Unauthorized("Invalid admin password.".into())),
        Verdict::Throttled { retry_after_ms } => Err(GatewayError::RateLimited {
            message: "Too many wrong admin passwords; try again later.".into(),
            retry_after_secs: Some(retry_after_ms.div_ceil(1000)),
        }),
    }
}

/// The live session a `Cookie` header carries, with its signing key; `None` when it carries
/// none, or one that is forged, expired or revoked.
pub async fn session(
    app: &App,
    cookie: Option<&str>,
) -> Result<Option<(Session, SessionKey)>, GatewayError> {
    let Some(token) = cookie.and_then(session::token_in) else {
        return Ok(None);
    };
    let Some(id) = session::unverified_id(token) else {
        return Ok(None);
    };
    let password = password(app)?;
    let now = now_ms();
    let (salt, live) = sessions::lookup(&app.db()?, &id, now).await?;
    let (Some(salt), true) = (salt, live) else {
        return Ok(None);
    };
    let key = SessionKey::derive(password, &salt);
    let now_secs = i64::try_from(now / 1000).unwrap_or(i64::MAX);
    match key.verify(token, now_secs) {
        Ok(session) if session.id == id => Ok(Some((session, key))),
        _ => Ok(None),
    }
}

/// A cookie-authenticated state change: the session's CSRF token, from the gateway's origin.
pub fn check_csrf(
    presented: &Presented<'_>,
    key: &SessionKey,
    session: &Session,
) -> Result<(), GatewayError> {
    if !session::same_origin(presented.origin, presented.own_origin) {
        return Err(GatewayError::Forbidden(
            "Cross-origin requests may not change the gateway.".into(),
        ));
    }
    let expected = key.csrf_token(&session.id);
    match presented.csrf {
        Some(token) if ct_eq(token, &expected) => Ok(()),
        _ => Err(GatewayError::Forbidden(format!(
            "A console request that changes state needs its `{}` header.",
            session::CSRF_HEADER
        ))),
    }
}
