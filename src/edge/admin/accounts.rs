//! `/admin/api/accounts`: Gemini CLI accounts. Import credentials (each
//! validated by a refresh and onboarded), the paste-back OAuth wizard, list
//! and edit, test, re-run onboarding, read the remaining quota, delete, and
//! export (secrets only when asked, and logged). No answer here carries a
//! token, except an export that asked for secrets.

use serde::Deserialize;
use serde_json::{Value, json};
use worker::{Request, Response};

use crate::domain::accounts::creds::{
    Credential, GEMINI_CLI_CLIENT_ID, GEMINI_CLI_CLIENT_SECRET, check_project, parse_batch_value,
};
use crate::domain::accounts::oauth::{self, StateKey, StateRefused, TokenFailure};
use crate::domain::error::GatewayError;
use crate::edge::app::App;
use crate::edge::http::{body, render};
use crate::edge::store::accounts::{self as account_store, AccountView};
use crate::edge::upstream::PROBE_MODEL;
use crate::edge::upstream::accounts::{self as pool, Imported, Onboarded};
use crate::edge::{google, now_ms, snapshot};

type HandlerResult = Result<Response, GatewayError>;

fn no_such_account(id: &str) -> GatewayError {
    GatewayError::RouteNotFound(format!("No account with id {id}."))
}

/// `GET /admin/api/accounts`.
pub async fn list(app: &App) -> HandlerResult {
    let db = app.db()?;
    let accounts = account_store::views(&db, None, now_ms()).await?;
    let counts = account_store::counts(&db).await?;
    render::json(200, &json!({ "accounts": accounts, "counts": counts }))
}

async fn view(app: &App, id: &str) -> Result<AccountView, GatewayError> {
    account_store::views(&app.db()?, Some(&[id.to_owned()]), now_ms())
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| no_such_account(id))
}

/// `GET /admin/api/accounts/{id}`.
pub async fn get(app: &App, id: &str) -> HandlerResult {
    render::json(200, &view(app, id).await?)
}

/// The answer of an import or of the wizard.
async fn import_answer(
    app: &App,
    ids: Vec<String>,
    added: usize,
    existing: usize,
    invalid: Vec<Value>,
) -> HandlerResult {
    snapshot::invalidate();
    let accounts = if ids.is_empty() {
        Vec::new()
    } else {
        account_store::views(&app.db()?, Some(&ids), now_ms()).await?
    };
    render::json(
        200,
        &json!({ "added": added, "existing": existing, "invalid": invalid, "accounts": accounts }),
    )
}

/// `POST /admin/api/accounts`: one credential, an array, or `{credentials, project_id}`.
pub async fn import(app: &App, req: &mut Request) -> HandlerResult {
    let batch = parse_batch_value(body::read_admin_value(req).await?).map_err(|why| {
        GatewayError::invalid_param(format!("Not credential-shaped JSON: {why}."), "credentials")
    })?;
    let (mut added, mut existing) = (0, 0);
    let mut ids = Vec::new();
    let mut invalid = Vec::new();
    for (index, item) in batch.items.into_iter().enumerate() {
        let credential = match item {
            Ok(c) => c,
            Err(reason) => {
                invalid.push(json!({ "index": index, "reason": reason }));
                continue;
            }
        };
        let project = batch
            .project_id
            .clone()
            .or_else(|| credential.project_id.clone());
        match pool::import(app, &credential, project.as_deref(), "import", None).await? {
            Imported::Stored { id, new } => {
                if new {
                    added += 1;
                } else {
                    existing += 1;
                }
                if !ids.contains(&id) {
                    ids.push(id);
                }
            }
            Imported::Invalid(reason) => invalid.push(json!({ "index": index, "reason": reason })),
        }
    }
    worker::console_log!(
        "[gemgate] accounts import: {added} added, {existing} already there, {} invalid",
        invalid.len()
    );
    import_answer(app, ids, added, existing, invalid).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[expect(
    clippy::option_option,
    reason = "absent, null (clear) and a value are three cases"
)]
struct Patch {
    #[serde(default, deserialize_with = "present")]
    project_id: Option<Option<String>>,
    #[serde(default)]
    enabled: Option<bool>,
}

/// Tells `"project_id": null` (clear it) from a missing field.
#[expect(
    clippy::option_option,
    reason = "absent, null (clear) and a value are three cases"
)]
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// `PATCH /admin/api/accounts/{id}`: `{project_id}` and/or `{enabled}`. A new
/// project runs onboarding again with it.
pub async fn update(app: &App, req: &mut Request, id: &str) -> HandlerResult {
    let patch: Patch = serde_json::from_value(body::read_admin_json(req).await?).map_err(|e| {
        GatewayError::invalid(format!(
            "Invalid account update (takes project_id and enabled): {e}"
        ))
    })?;
    let project = match &patch.project_id {
        Some(Some(p)) if !p.trim().is_empty() => {
            Some(Some(check_project(p).map_err(|why| {
                GatewayError::invalid_param(why, "project_id")
            })?))
        }
        Some(_) => Some(None),
        None => None,
    };
    let db = app.db()?;
    let found = account_store::update(
        &db,
        id,
        project.as_ref().map(|p| p.as_deref()),
        patch.enabled,
        now_ms(),
    )
    .await?;
    if !found {
        return Err(no_such_account(id));
    }
    pool::forget_token(id);
    snapshot::invalidate();
    if let Some(Some(_)) = &project
        && let Some((account, pinned)) = pool::opened(app, id).await?
    {
        pool::onboard(app, &account, pinned.as_deref()).await;
    }
    render::json(200, &view(app, id).await?)
}

/// `DELETE /admin/api/accounts/{id}`.
pub async fn delete(app: &App, id: &str) -> HandlerResult {
    if !account_store::delete(&app.db()?, id).await? {
        return Err(no_such_account(id));
    }
    pool::forget_token(id);
    snapshot::invalidate();
    render::json(200, &json!({ "deleted": true, "id": id }))
}

/// `POST /admin/api/accounts/{id}/test`: a one-token call on the first Code Assist model.
pub async fn test(app: &App, id: &str) -> HandlerResult {
    let Some((account, _)) = pool::opened(app, id).await? else {
        return Err(no_such_account(id));
    };
    if account.project.is_empty() {
        return Err(GatewayError::invalid(
            "The account has no project yet: run onboarding (re-check) or set its project.",
        ));
    }
    let snap = snapshot::snapshot(app).await?;
    let model = snap
        .settings
        .routing
        .code_assist_models
        .first()
        .cloned()
        .unwrap_or_else(|| PROBE_MODEL.to_owned());
    let (outcome, status, latency_ms, message) = pool::probe(app, &account, &model).await;
    render::json(
        200,
        &json!({
            "id": id,
            "ok": outcome == crate::domain::outcome::Outcome::Ok,
            "outcome": outcome.label(),
            "status": status,
            "latency_ms": latency_ms,
            "model": model,
            "message": message,
        }),
    )
}

/// `POST /admin/api/accounts/{id}/onboard`: onboarding again ("re-check").
pub async fn onboard(app: &App, id: &str) -> HandlerResult {
    let Some((account, pinned)) = pool::opened(app, id).await? else {
        return Err(no_such_account(id));
    };
    pool::forget_token(id);
    if let Onboarded::Failed(why) = pool::onboard(app, &account, pinned.as_deref()).await {
        return Err(GatewayError::BadGateway(format!(
            "Onboarding could not finish now: {why}"
        )));
    }
    render::json(200, &view(app, id).await?)
}

/// `GET /admin/api/accounts/{id}/quota`: the buckets of `retrieveUserQuota`.
pub async fn quota(app: &App, id: &str) -> HandlerResult {
    let Some((account, _)) = pool::opened(app, id).await? else {
        return Err(no_such_account(id));
    };
    if account.project.is_empty() {
        return Err(GatewayError::invalid(
            "The account has no project yet: run onboarding (re-check) or set its project.",
        ));
    }
    let answer = pool::quota(app, &account).await?;
    let buckets: Vec<Value> = answer
        .get("buckets")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|b| {
            json!({
                "model_id": b.get("modelId"),
                "remaining_fraction": b.get("remainingFraction"),
                "remaining_amount": b.get("remainingAmount"),
                "reset_time": b.get("resetTime"),
                "token_type": b.get("tokenType"),
            })
        })
        .collect();
    render::json(200, &json!({ "id": id, "buckets": buckets }))
}

/// `GET /admin/api/accounts/export[?secrets=1]`: re-importable JSON; the
/// refresh tokens only on explicit request, and that is logged.
pub async fn export(app: &App, req: &Request) -> HandlerResult {
    let url = req.url()?;
    let secrets = url
        .query_pairs()
        .any(|(k, v)| k == "secrets" && matches!(v.as_ref(), "1" | "true"));
    let db = app.db()?;
    let stored = account_store::all_stored(&db).await?;
    let sealer = if secrets {
        snapshot::sealer(&app.env).await?
    } else {
        None
    };
    let mut accounts = Vec::with_capacity(stored.len());
    for account in &stored {
        let mut item = json!({
            "type": "authorized_user",
            "email": account.email,
            "project_id": account.project_id,
            "tier": account.tier,
            "enabled": account.enabled > 0.0,
        });
        if secrets {
            item["client_id"] = json!(account.client_id);
            item["client_secret"] =
                json!(snapshot::open_secret(sealer.as_deref(), &account.client_secret).await?);
            item["refresh_token"] =
                json!(snapshot::open_secret(sealer.as_deref(), &account.refresh_token).await?);
        }
        accounts.push(item);
    }
    if secrets {
        worker::console_warn!(
            "[gemgate] accounts exported WITH refresh tokens ({} account(s))",
            accounts.len()
        );
    } else {
        worker::console_log!(
            "[gemgate] accounts exported ({} account(s))",
            accounts.len()
        );
    }
    render::json(200, &json!({ "accounts": accounts }))
}

/// The key wizard states are signed with: from the admin password, so
/// changing it voids every pending sign-in.
fn state_key(app: &App) -> Result<StateKey, GatewayError> {
    app.config
        .admin_password
        .as_deref()
        .map(StateKey::derive)
        .ok_or_else(|| GatewayError::Internal("ADMIN_PASSWORD is not set".into()))
}

#[expect(
    clippy::cast_possible_wrap,
    reason = "seconds since 1970 fit an i64 for billions of years"
)]
fn now_secs() -> i64 {
    (now_ms() / 1000) as i64
}

/// `POST /admin/api/accounts/oauth/start`: Google's consent URL for the
/// gemini-cli client, with PKCE and a signed single-use state.
pub async fn oauth_start(app: &App) -> HandlerResult {
    let mut random = [0u8; 32];
    let mut sid = [0u8; 16];
    getrandom::fill(&mut random)
        .and_then(|()| getrandom::fill(&mut sid))
        .map_err(|e| GatewayError::Internal(format!("randomness: {e}")))?;
    let verifier = oauth::verifier(&random);
    let challenge = oauth::challenge(&verifier);
    let state_id = crate::domain::sha256::to_hex(&sid);
    let state = state_key(app)?
        .issue(&state_id, now_secs())
        .map_err(GatewayError::Internal)?;
    let secret_box = snapshot::sealer(&app.env).await?;
    let stored_verifier = match &secret_box {
        Some(s) => s.seal(&verifier).await?,
        None => verifier,
    };
    account_store::begin_sign_in(&app.db()?, &state_id, &stored_verifier, now_ms()).await?;
    let auth_url = oauth::auth_url(
        &app.config.env.oauth_auth_url,
        GEMINI_CLI_CLIENT_ID,
        &challenge,
        &state,
    );
    render::json(
        200,
        &json!({
            "auth_url": auth_url,
            "state": state,
            "redirect_uri": oauth::redirect_uri(),
            "expires_in": oauth::STATE_TTL_SECS,
        }),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Finish {
    callback_url: String,
    #[serde(default)]
    project_id: Option<String>,
}

/// `POST /admin/api/accounts/oauth/finish`: the address the browser landed on.
pub async fn oauth_finish(app: &App, req: &mut Request) -> HandlerResult {
    let finish: Finish = serde_json::from_value(body::read_admin_json(req).await?).map_err(|e| {
        GatewayError::invalid_param(
            format!("Expected {{\"callback_url\": \"http://localhost:8085/?state=…&code=…\", \"project_id\"?}}: {e}"),
            "callback_url",
        )
    })?;
    let project = match finish.project_id.as_deref().map(str::trim) {
        Some(p) if !p.is_empty() => {
            Some(check_project(p).map_err(|why| GatewayError::invalid_param(why, "project_id"))?)
        }
        _ => None,
    };
    let callback = oauth::parse_callback(&finish.callback_url)
        .map_err(|why| GatewayError::invalid_param(why, "callback_url"))?;
    let state_id = state_key(app)?
        .verify(&callback.state, now_secs())
        .map_err(|refused| {
            GatewayError::invalid_param(
                match refused {
                    StateRefused::Tampered => {
                        "The sign-in's state is not one this gateway issued: start the sign-in again."
                    }
                    StateRefused::Expired => {
                        "The sign-in expired (10 minutes): start the sign-in again."
                    }
                },
                "callback_url",
            )
        })?;
    let db = app.db()?;
    let Some(stored_verifier) = account_store::take_sign_in(&db, &state_id, now_ms()).await? else {
        return Err(GatewayError::invalid_param(
            "This sign-in was already used: start the sign-in again.",
            "callback_url",
        ));
    };
    let secret_box = snapshot::sealer(&app.env).await?;
    let verifier = snapshot::open_secret(secret_box.as_deref(), &stored_verifier).await?;
    let form = oauth::code_form(
        &callback.code,
        &verifier,
        GEMINI_CLI_CLIENT_ID,
        GEMINI_CLI_CLIENT_SECRET,
    );
    let answer = match google::token(&app.config.env.oauth_token_url, &form).await {
        Ok(answer) => answer,
        Err(TokenFailure::Permanent(why) | TokenFailure::Transient(why)) => {
            return Err(GatewayError::invalid_param(
                format!("Google refused the code ({why}): start the sign-in again."),
                "callback_url",
            ));
        }
    };
    let Some(refresh_token) = answer.refresh_token.clone() else {
        return Err(GatewayError::invalid_param(
            "Google gave no refresh token (consent was not offline): start the sign-in again.",
            "callback_url",
        ));
    };
    let credential = Credential {
        refresh_token,
        client_id: GEMINI_CLI_CLIENT_ID.to_owned(),
        client_secret: GEMINI_CLI_CLIENT_SECRET.to_owned(),
        project_id: None,
    };
    match pool::store_validated(app, &credential, &answer, project.as_deref(), "oauth", None)
        .await?
    {
        Imported::Stored { id, new } => {
            import_answer(
                app,
                vec![id],
                usize::from(new),
                usize::from(!new),
                Vec::new(),
            )
            .await
        }
        Imported::Invalid(reason) => {
            import_answer(
                app,
                Vec::new(),
                0,
                0,
                vec![json!({"index": 0, "reason": reason})],
            )
            .await
        }
    }
}
