//! The account side of the pool: access tokens (this isolate's cache, then
//! the account's `AccountToken` object, which refreshes single-flight), one
//! attempt through Code Assist (the envelope on the way out, the wrapper
//! removed on the way back, streams included), onboarding in gemini-cli's
//! order, importing a credential, and the admin probes. What each answer
//! means is `domain::accounts`'.

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::Duration;

use futures::StreamExt;
use serde_json::Value;

use crate::domain::accounts::creds::Credential;
use crate::domain::accounts::envelope::{StreamUnwrapper, unwrap_body, wrap_count, wrap_generate};
use crate::domain::accounts::oauth::TokenFailure;
use crate::domain::accounts::onboard::{
    Attention, LoadResponse, Next, Operation, Ready, after_load, after_operation, load_request,
};
use crate::domain::accounts::record::{account_id, code_assist_outcome};
use crate::domain::error::GatewayError;
use crate::domain::mask::scrub;
use crate::domain::outcome::Outcome;
use crate::domain::sha256::to_hex;
use crate::edge::app::App;
use crate::edge::google;
use crate::edge::now_ms;
use crate::edge::objects::token::{self, TokenAnswer, TokenRequest};
use crate::edge::snapshot::{self, UpstreamAccount};
use crate::edge::store::accounts::{self as account_store, NewAccount};
use crate::edge::upstream::fetch::{Attempt, Auth, UpstreamBody, UpstreamRequest, attempt_with};
pub use crate::edge::upstream::fetch::{CodeAssistCall, CodeAssistMethod as Method};

// ---------------------------------------------------------------- tokens

thread_local! {
    /// Access tokens this isolate holds: account id → (token, usable until).
    static TOKENS: RefCell<HashMap<String, (String, u64)>> = RefCell::new(HashMap::new());
    /// When this isolate last wrote an account's `last_used_at`.
    static TOUCHED: RefCell<HashMap<String, u64>> = RefCell::new(HashMap::new());
}

/// Why there is no token.
pub enum NoToken {
    /// The grant is gone: the account needs the operator.
    Refused(String),
    /// Try later.
    Unavailable(String),
}

/// The account's access token: this isolate's copy while it is usable,
/// else its object's (which refreshes once for everyone). `stale` is a token
/// Code Assist just refused.
pub async fn access_token(
    app: &App,
    account: &UpstreamAccount,
    stale: Option<&str>,
) -> Result<String, NoToken> {
    let now = now_ms();
    if stale.is_none() {
        let cached = TOKENS.with(|t| t.borrow().get(&account.id).cloned());
        if let Some((token, _)) = cached.filter(|(_, until)| *until > now) {
            return Ok(token);
        }
    }
    let ask = TokenRequest {
        refresh_token: account.refresh_token.clone(),
        client_id: account.client_id.clone(),
        client_secret: account.client_secret.clone(),
        token_url: app.config.env.oauth_token_url.clone(),
        stale: stale.map(str::to_owned),
        min_ttl_ms: 0,
    };
    match token::get(&app.env, &account.id, &ask).await {
        Ok(TokenAnswer::Token {
            access_token,
            usable_until_ms,
            ..
        }) => {
            TOKENS.with(|t| {
                t.borrow_mut()
                    .insert(account.id.clone(), (access_token.clone(), usable_until_ms));
            });
            Ok(access_token)
        }
        Ok(TokenAnswer::Refused { message }) => {
            forget_token(&account.id);
            Err(NoToken::Refused(message))
        }
        Ok(TokenAnswer::Unavailable { message }) => Err(NoToken::Unavailable(message)),
        Err(e) => Err(NoToken::Unavailable(e.to_string())),
    }
}

pub fn forget_token(id: &str) {
    TOKENS.with(|t| t.borrow_mut().remove(id));
}

// ---------------------------------------------------------------- serving

/// What one attempt on an account came to, with the refusal that needs the
/// operator if it was one.
pub struct AccountAttempt {
    pub attempt: Attempt,
    pub attention: Option<Attention>,
}

fn prompt_id() -> String {
    let mut bytes = [0u8; 8];
    let _ = getrandom::fill(&mut bytes);
    to_hex(&bytes)
}

/// One attempt of `req` on `account` through Code Assist.
pub async fn attempt(
    app: &App,
    account: &UpstreamAccount,
    req: &UpstreamRequest,
    call: &CodeAssistCall,
    timeout: Duration,
) -> AccountAttempt {
    let failed = |outcome: Outcome, attention: Option<Attention>| AccountAttempt {
        attempt: Attempt::failed(outcome),
        attention,
    };
    let body = req.body.as_deref().unwrap_or("{}");
    let wrapped = match call.method {
        Method::CountTokens => wrap_count(&call.model, body),
        _ => wrap_generate(&call.model, &account.project, &prompt_id(), body),
    };
    let Ok(wrapped) = wrapped else {
        // The request is unreadable: Code Assist would refuse it the same way.
        return failed(Outcome::ClientError { status: 400 }, None);
    };
    let base = &app.config.env.code_assist_api_base;
    let url = match call.method {
        Method::Stream => format!("{base}/v1internal:{}?alt=sse", call.method.path()),
        method => format!("{base}/v1internal:{}", method.path()),
    };
    let request = UpstreamRequest {
        method: worker::Method::Post,
        url,
        body: Some(wrapped),
        stream: call.method == Method::Stream,
        gate: req.gate.clone(),
        code_assist: None,
        pin: None,
        headers: Vec::new(),
    };
    let mut stale: Option<String> = None;
    // A refused token (401) is refreshed once and the call made again.
    for _ in 0..2 {
        let token = match access_token(app, account, stale.as_deref()).await {
            Ok(token) => token,
            Err(NoToken::Refused(message)) => {
                let attention = Attention::Revoked { message };
                let outcome = Outcome::KeyInvalid {
                    reason: "REVOKED".into(),
                };
                return failed(outcome, Some(attention));
            }
            Err(NoToken::Unavailable(_)) => return failed(Outcome::Network, None),
        };
        let mut result = attempt_with(&request, &account.id, &Auth::Bearer(&token), timeout).await;
        if let (Err(body), Some(status)) = (&result.answer, result.status) {
            let (outcome, attention) = code_assist_outcome(status, body, now_ms());
            if status == 401 && stale.is_none() {
                forget_token(&account.id);
                stale = Some(token);
                continue;
            }
            result.outcome = outcome;
            return AccountAttempt {
                attempt: result,
                attention,
            };
        }
        if let Ok(ok) = &mut result.answer {
            unwrap_answer(&mut ok.body);
            touch(app, &account.id);
        }
        return AccountAttempt {
            attempt: result,
            attention: None,
        };
    }
    failed(Outcome::Network, None)
}

/// Removes Code Assist's `{response: …}` wrapper, from a whole body or from
/// every event of a stream.
fn unwrap_answer(body: &mut UpstreamBody) {
    match body {
        UpstreamBody::Full(bytes) => *bytes = unwrap_body(bytes),
        UpstreamBody::Stream { first, rest } => {
            let mut unwrapper = StreamUnwrapper::new();
            *first = unwrapper.push(first);
            let taken = std::mem::replace(rest, Box::pin(futures::stream::empty()));
            // Each upstream chunk gives the whole events it completes; what
            // is left when the upstream ends is flushed last.
            *rest = Box::pin(futures::stream::unfold(
                Some((taken, unwrapper)),
                |state| async move {
                    let (mut upstream, mut unwrapper) = state?;
                    loop {
                        match upstream.next().await {
                            Some(Ok(bytes)) => {
                                let out = unwrapper.push(&bytes);
                                if unwrapper.ended() {
                                    // An event over the cap ended the stream: stop reading.
                                    return Some((Ok(out), None));
                                }
                                if !out.is_empty() {
                                    return Some((Ok(out), Some((upstream, unwrapper))));
                                }
                            }
                            Some(Err(e)) => return Some((Err(e), None)),
                            None => {
                                let tail = unwrapper.finish();
                                return (!tail.is_empty()).then_some((Ok(tail), None));
                            }
                        }
                    }
                },
            ));
        }
    }
}

/// Notes that the account served, at most once a minute per isolate.
fn touch(app: &App, id: &str) {
    let now = now_ms();
    let due = TOUCHED.with(|t| {
        let mut t = t.borrow_mut();
        let due = t
            .get(id)
            .is_none_or(|last| now.saturating_sub(*last) >= 60_000);
        if due {
            t.insert(id.to_owned(), now);
        }
        due
    });
    let Ok(db) = app.db() else { return };
    if due {
        let id = id.to_owned();
        app.background.spawn(async move {
            if let Err(e) = account_store::touch(&db, &id, now).await {
                worker::console_warn!("[gemgate] could not note account use: {e}");
            }
        });
    }
}

/// Takes an account out of this isolate at once and records why in D1 before returning.
pub async fn attention_now(app: &App, id: &str, attention: &Attention) {
    snapshot::forget_key(id);
    forget_token(id);
    let Ok(db) = app.db() else { return };
    if let Err(e) = account_store::set_attention(&db, id, attention, now_ms()).await {
        worker::console_warn!("[gemgate] could not mark account {id}: {e}");
    }
}

/// Records an account's last error (already scrubbed) in the background.
pub fn error_in_background(app: &App, id: &str, error: String) {
    let Ok(db) = app.db() else { return };
    let id = id.to_owned();
    app.background.spawn(async move {
        if let Err(e) = account_store::set_last_error(&db, &id, &error).await {
            worker::console_warn!("[gemgate] could not note account error: {e}");
        }
    });
}

// ---------------------------------------------------------------- onboarding

/// What onboarding came to.
pub enum Onboarded {
    Ready(Ready),
    Attention(Attention),
    /// Google or the network failed: nothing changed; try later.
    Failed(String),
}

/// How long to wait between polls of an onboarding operation.
const POLL_INTERVAL: Duration = Duration::from_millis(1_500);

/// Runs onboarding for `account` (whose project may be pinned) and records the result in D1.
pub async fn onboard(app: &App, account: &UpstreamAccount, pinned: Option<&str>) -> Onboarded {
    let result = onboard_steps(app, account, pinned).await;
    if let Ok(db) = app.db() {
        let now = now_ms();
        let written = match &result {
            Onboarded::Ready(ready) => account_store::set_ready(&db, &account.id, ready, now).await,
            Onboarded::Attention(attention) => {
                account_store::set_attention(&db, &account.id, attention, now).await
            }
            Onboarded::Failed(why) => account_store::set_last_error(&db, &account.id, why).await,
        };
        if let Err(e) = written {
            worker::console_warn!("[gemgate] could not record onboarding: {e}");
        }
    }
    snapshot::invalidate();
    result
}

async fn onboard_steps(app: &App, account: &UpstreamAccount, pinned: Option<&str>) -> Onboarded {
    let token = match access_token(app, account, None).await {
        Ok(token) => token,
        Err(NoToken::Refused(message)) => {
            return Onboarded::Attention(Attention::Revoked { message });
        }
        Err(NoToken::Unavailable(why)) => return Onboarded::Failed(why),
    };
    let base = &app.config.env.code_assist_api_base;
    let call = |method: &str, body: Option<String>| {
        let url = format!("{base}/v1internal{method}");
        let token = token.clone();
        async move {
            let (status, bytes) = google::code_assist(&url, &token, body.as_deref()).await?;
            Ok::<_, String>((status, bytes))
        }
    };
    let judge = |status: u16, bytes: &[u8]| -> Result<Value, Onboarded> {
        if (200..300).contains(&status) {
            return serde_json::from_slice(bytes).map_err(|e| {
                Onboarded::Failed(format!("Code Assist answered unreadable JSON: {e}"))
            });
        }
        let (outcome, attention) = code_assist_outcome(status, bytes, now_ms());
        Err(match attention {
            Some(attention) => Onboarded::Attention(attention),
            None => Onboarded::Failed(format!("Code Assist answered {}", outcome.summary())),
        })
    };
    let load_body = load_request(pinned).to_string();
    let (status, bytes) = match call(":loadCodeAssist", Some(load_body)).await {
        Ok(answer) => answer,
        Err(why) => return Onboarded::Failed(why),
    };
    let load: LoadResponse = match judge(status, &bytes).map(serde_json::from_value) {
        Ok(Ok(load)) => load,
        Ok(Err(e)) => {
            return Onboarded::Failed(format!("loadCodeAssist answered an unexpected shape: {e}"));
        }
        Err(outcome) => return outcome,
    };
    let (body, tier) = match after_load(&load, pinned) {
        Next::Ready(ready) => return Onboarded::Ready(ready),
        Next::Attention(attention) => return Onboarded::Attention(attention),
        Next::Onboard { body, tier } => (body, tier),
        Next::Poll { .. } => return Onboarded::Failed("unexpected poll before onboarding".into()),
    };
    let (mut status, mut bytes) = match call(":onboardUser", Some(body.to_string())).await {
        Ok(answer) => answer,
        Err(why) => return Onboarded::Failed(why),
    };
    let mut polls = 0;
    loop {
        let operation: Operation = match judge(status, &bytes).map(serde_json::from_value) {
            Ok(Ok(op)) => op,
            Ok(Err(e)) => {
                return Onboarded::Failed(format!("onboardUser answered an unexpected shape: {e}"));
            }
            Err(outcome) => return outcome,
        };
        match after_operation(&operation, &load, &tier, pinned, polls) {
            Next::Ready(ready) => return Onboarded::Ready(ready),
            Next::Attention(attention) => return Onboarded::Attention(attention),
            Next::Onboard { .. } => {
                return Onboarded::Failed("onboarding asked to start over".into());
            }
            Next::Poll { operation } => {
                worker::Delay::from(POLL_INTERVAL).await;
                polls += 1;
                (status, bytes) = match call(&format!("/{operation}"), None).await {
                    Ok(answer) => answer,
                    Err(why) => return Onboarded::Failed(why),
                };
            }
        }
    }
}

// ---------------------------------------------------------------- import

/// What importing one credential came to.
pub enum Imported {
    /// Stored (new or existing), with the account id.
    Stored { id: String, new: bool },
    /// Left nothing behind.
    Invalid(String),
}

/// Validates a credential (a refresh, then its email), stores it sealed,
/// and onboards it. A credential that cannot be validated leaves nothing
/// behind; one that Google refuses later is kept, in needs-attention.
pub async fn import(
    app: &App,
    credential: &Credential,
    project: Option<&str>,
    source: &str,
    source_digest: Option<&str>,
) -> Result<Imported, GatewayError> {
    let env = &app.config.env;
    let form = crate::domain::accounts::oauth::refresh_form(
        &credential.refresh_token,
        &credential.client_id,
        &credential.client_secret,
    );
    let answer = match google::token(&env.oauth_token_url, &form).await {
        Ok(answer) => answer,
        Err(TokenFailure::Permanent(why)) => {
            return Ok(Imported::Invalid(format!(
                "Google refused the refresh token ({why})."
            )));
        }
        Err(TokenFailure::Transient(why)) => {
            return Ok(Imported::Invalid(format!(
                "Could not validate the refresh token now ({why}); try again."
            )));
        }
    };
    store_validated(app, credential, &answer, project, source, source_digest).await
}

/// Stores a credential whose grant just gave `answer` (a refresh, or the
/// wizard's code exchange), after reading its email, and onboards it.
pub async fn store_validated(
    app: &App,
    credential: &Credential,
    answer: &crate::domain::accounts::oauth::TokenAnswer,
    project: Option<&str>,
    source: &str,
    source_digest: Option<&str>,
) -> Result<Imported, GatewayError> {
    let env = &app.config.env;
    let email = match google::email(&env.userinfo_url, &answer.access_token).await {
        Ok(email) => email,
        Err(why) => {
            return Ok(Imported::Invalid(format!(
                "Could not read the account's email: {why}."
            )));
        }
    };
    let refresh_token = answer
        .refresh_token
        .clone()
        .unwrap_or_else(|| credential.refresh_token.clone());
    let sealer = snapshot::sealer(&app.env).await?;
    let seal = |plain: String| {
        let sealer = sealer.clone();
        async move {
            match sealer {
                Some(s) => s.seal(&plain).await,
                None => Ok(plain),
            }
        }
    };
    if sealer.is_none() {
        worker::console_warn!(
            "[gemgate] ENCRYPTION_KEY is not set: account tokens are stored in plaintext"
        );
    }
    let sealed_refresh = seal(refresh_token.clone()).await?;
    let sealed_secret = seal(credential.client_secret.clone()).await?;
    let id = account_id(&email);
    let db = app.db()?;
    let upserted = account_store::upsert(
        &db,
        &NewAccount {
            id: &id,
            email: &email,
            refresh_token: &sealed_refresh,
            client_id: &credential.client_id,
            client_secret: &sealed_secret,
            project,
            source,
            source_digest,
        },
        now_ms(),
    )
    .await?;
    // The new grant replaces any token cached from an old one.
    forget_token(&id);
    let pinned = upserted.pinned;
    let account = UpstreamAccount::new(
        id.clone(),
        email,
        refresh_token,
        credential.client_id.clone(),
        credential.client_secret.clone(),
        pinned.clone().unwrap_or_default(),
    );
    // Seed this isolate with the token the validation gave.
    TOKENS.with(|t| {
        t.borrow_mut().insert(
            id.clone(),
            (
                answer.access_token.clone(),
                crate::domain::accounts::oauth::usable_until(now_ms(), answer.expires_in),
            ),
        );
    });
    onboard(app, &account, pinned.as_deref()).await;
    Ok(Imported::Stored {
        id,
        new: upserted.new,
    })
}

/// An account with its secrets opened, enabled or not (for the admin's actions).
pub async fn opened(
    app: &App,
    id: &str,
) -> Result<Option<(UpstreamAccount, Option<String>)>, GatewayError> {
    let Some(stored) = account_store::stored(&app.db()?, id).await? else {
        return Ok(None);
    };
    let sealer = snapshot::sealer(&app.env).await?;
    let pinned = stored.pinned_project().map(str::to_owned);
    let account = snapshot::open_account(sealer.as_deref(), stored).await?;
    Ok(Some((account, pinned)))
}

// ---------------------------------------------------------------- admin probes

/// A one-token call on the account: the pool's outcome and Google's words.
pub async fn probe(
    app: &App,
    account: &UpstreamAccount,
    model: &str,
) -> (Outcome, Option<u16>, u64, Option<String>) {
    let req = UpstreamRequest {
        method: worker::Method::Post,
        url: String::new(),
        body: Some(
            r#"{"contents":[{"role":"user","parts":[{"text":"ping"}]}],"generationConfig":{"maxOutputTokens":1}}"#
                .to_owned(),
        ),
        stream: false,
        gate: model.to_owned(),
        code_assist: None,
        pin: None,
        headers: Vec::new(),
    };
    let call = CodeAssistCall {
        method: Method::Generate,
        model: model.to_owned(),
    };
    let started = now_ms();
    let AccountAttempt { attempt, attention } =
        attempt(app, account, &req, &call, Duration::from_secs(30)).await;
    let latency = now_ms().saturating_sub(started);
    let message = match (&attempt.answer, &attention) {
        (_, Some(a)) => Some(a.message()),
        (Err(body), None) if !body.is_empty() => Some(scrub(
            &crate::domain::failover::failure_detail(&attempt.outcome, Some(body)),
            &account.refresh_token,
        )),
        (Err(_), None) => Some(attempt.outcome.summary()),
        (Ok(_), None) => None,
    };
    if let Some(attention) = &attention {
        attention_now(app, &account.id, attention).await;
    }
    (attempt.outcome, attempt.status, latency, message)
}

/// The account's remaining quota per model, from `retrieveUserQuota`.
pub async fn quota(app: &App, account: &UpstreamAccount) -> Result<Value, GatewayError> {
    let token = match access_token(app, account, None).await {
        Ok(token) => token,
        Err(NoToken::Refused(message)) => {
            let attention = Attention::Revoked {
                message: message.clone(),
            };
            attention_now(app, &account.id, &attention).await;
            return Err(GatewayError::invalid(format!(
                "Google refused the account's token: {message}"
            )));
        }
        Err(NoToken::Unavailable(why)) => {
            return Err(GatewayError::BadGateway(format!(
                "Could not get a token now: {why}"
            )));
        }
    };
    let url = format!(
        "{}/v1internal:retrieveUserQuota",
        app.config.env.code_assist_api_base
    );
    let body = serde_json::json!({ "project": account.project }).to_string();
    let (status, bytes) = google::code_assist(&url, &token, Some(&body))
        .await
        .map_err(|why| GatewayError::BadGateway(format!("Code Assist did not answer: {why}")))?;
    if !(200..300).contains(&status) {
        let (outcome, attention) = code_assist_outcome(status, &bytes, now_ms());
        if let Some(attention) = attention {
            let message = attention.message();
            attention_now(app, &account.id, &attention).await;
            return Err(GatewayError::invalid(format!(
                "Google refused the account: {message}"
            )));
        }
        return Err(GatewayError::BadGateway(format!(
            "retrieveUserQuota answered {}",
            outcome.summary()
        )));
    }
    serde_json::from_slice(&bytes).map_err(|e| {
        GatewayError::BadGateway(format!("retrieveUserQuota answered unreadable JSON: {e}"))
    })
}

// ---------------------------------------------------------------- GCLI_CREDS_*

thread_local! {
    static ENV_CREDS_SEEN: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Imports the `GCLI_CREDS_*` secrets once per isolate, in the background:
/// each secret is one credential JSON (or an array, or `{credentials, project_id}`),
/// imported unless a credential with the same content was imported before.
pub fn import_env_once(app: &App) {
    if ENV_CREDS_SEEN.with(|seen| seen.replace(true)) {
        return;
    }
    let found = crate::edge::config::secrets_with_prefix(&app.env, "GCLI_CREDS_");
    if found.is_empty() {
        return;
    }
    let detached = app.detached();
    app.background.spawn(async move {
        for (name, raw) in found {
            if let Err(e) = import_env_secret(&detached, &name, &raw).await {
                worker::console_warn!("[gemgate] {name}: {e}");
            }
        }
    });
}

async fn import_env_secret(app: &App, name: &str, raw: &str) -> Result<(), GatewayError> {
    let digest = crate::domain::sha256::sha256_hex(raw.trim().as_bytes());
    if account_store::has_source_digest(&app.db()?, &digest).await? {
        worker::console_log!("[gemgate] {name}: already imported");
        return Ok(());
    }
    let batch = crate::domain::accounts::creds::parse_batch(raw.trim().as_bytes())
        .map_err(|why| GatewayError::invalid(format!("not credential-shaped JSON: {why}")))?;
    for (index, item) in batch.items.into_iter().enumerate() {
        let credential = match item {
            Ok(c) => c,
            Err(why) => {
                worker::console_warn!("[gemgate] {name}[{index}]: {why}");
                continue;
            }
        };
        let project = batch
            .project_id
            .clone()
            .or_else(|| credential.project_id.clone());
        match import(app, &credential, project.as_deref(), "env", Some(&digest)).await? {
            Imported::Stored { id, new } => worker::console_log!(
                "[gemgate] {name}[{index}]: account {id} {}",
                if new { "added" } else { "already stored" }
            ),
            Imported::Invalid(why) => worker::console_warn!("[gemgate] {name}[{index}]: {why}"),
        }
    }
    snapshot::invalidate();
    Ok(())
}
