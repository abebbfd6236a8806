//! Who is calling: a client (a static `ACCESS_TOKENS` token or a user key),
//! or an admin (a console session cookie, or `Bearer <ADMIN_PASSWORD>`,
//! throttled). Handlers receive the result; they never authenticate.

pub mod admin;

use std::rc::Rc;

use crate::domain::auth::matches_any;
use crate::domain::error::GatewayError;
use crate::domain::responses::scope_of;
use crate::domain::users::UserRecord;
use crate::edge::app::App;
use crate::edge::now_ms;
use crate::edge::snapshot::users as user_cache;

/// Who is calling: a static `ACCESS_TOKENS` token (unlimited) or a user key.
#[derive(Debug, Clone)]
pub enum Caller {
    Static,
    User(Rc<UserRecord>),
}

impl Caller {
    pub fn user(&self) -> Option<&Rc<UserRecord>> {
        match self {
            Self::Static => None,
            Self::User(user) => Some(user),
        }
    }

    /// The user's id; `None` for a static token.
    pub fn user_id(&self) -> Option<&str> {
        self.user().map(|u| u.id.as_str())
    }

    /// The scope of what this caller stores (responses, files): its user key, or all
    /// static tokens together (`domain::responses::scope_of`).
    pub fn scope(&self) -> String {
        scope_of(self.user_id())
    }
}

/// The caller for a client token: a static token, or a user key found by its hash. Keys the
/// record already marks unusable are refused here; the ledger has the final word at admission.
pub async fn client(app: &App, token: &str) -> Result<Caller, GatewayError> {
    if matches_any(token, &app.config.access_tokens) {
        return Ok(Caller::Static);
    }
    let Some(user) = user_cache::by_token(app, token).await? else {
        return Err(GatewayError::Unauthorized("Invalid API key.".into()));
    };
    match user.refusal(now_ms()) {
        Some(err) => Err(err),
        None => Ok(Caller::User(user)),
    }
}
