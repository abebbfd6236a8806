//! A user key's view of itself: `GET /v1/usage` (exact balance from its
//! ledger, totals from the rollups) and the legacy `OpenAI` billing endpoints
//! that chat apps poll for a balance.

use std::rc::Rc;

use serde_json::json;
use worker::{Response, Url};

use crate::domain::clock::parse_date_ms;
use crate::domain::config::Settings;
use crate::domain::error::GatewayError;
use crate::domain::quota::{LedgerRequest, LedgerResponse};
use crate::domain::users::{UsageTotals, UserRecord};
use crate::edge::access::Caller;
use crate::edge::app::App;
use crate::edge::http::render;
use crate::edge::now_ms;
use crate::edge::objects::ledger;
use crate::edge::snapshot;
use crate::edge::store::users as user_store;

type HandlerResult = Result<Response, GatewayError>;

/// A large number standing for "unlimited" where a client expects one.
const UNLIMITED: u64 = 100_000_000;

/// The caller's exact balance from its ledger (`None` for static tokens).
async fn status(
    app: &App,
    caller: &Caller,
    settings: &Settings,
) -> Result<Option<(Rc<UserRecord>, LedgerResponse)>, GatewayError> {
    let Some(user) = caller.user() else {
        return Ok(None);
    };
    // Admission checks the key; a status read refuses the same keys the same way.
    let answer = ledger::call(
        &app.env,
        &user.id,
        &LedgerRequest::Status {
            day_zone: settings.quota_timezone.clone(),
        },
    )
    .await?;
    Ok(Some((Rc::clone(user), answer)))
}

/// `GET /v1/usage`.
pub async fn usage(app: &App, caller: &Caller) -> HandlerResult {
    let snap = snapshot::snapshot(app).await?;
    let Some((user, answer)) = status(app, caller, &snap.settings).await? else {
        return render::json(
            200,
            &json!({
                "object": "usage", "user": null, "quota": null, "used": 0, "reserved": 0,
                "remaining": null, "limits": {}, "totals": {}, "models": [],
            }),
        );
    };
    let LedgerResponse::Status {
        used,
        reserved,
        quota,
        limits,
        ..
    } = answer
    else {
        return Err(GatewayError::Internal(
            "ledger answered Status wrongly".into(),
        ));
    };
    *app.rate.borrow_mut() = Some(limits);
    let models = user_store::usage_by_model(&app.db()?, &user.id).await?;
    let mut totals = UsageTotals::default();
    for (_, t) in &models {
        totals.add(t);
    }
    let models: Vec<_> = models
        .into_iter()
        .map(|(model, t)| {
            json!({
                "model": model, "requests": t.requests, "prompt_tokens": t.prompt_tokens,
                "completion_tokens": t.completion_tokens, "reasoning_tokens": t.reasoning_tokens,
                "credits": t.credits,
            })
        })
        .collect();
    render::json(
        200,
        &json!({
            "object": "usage",
            "user": { "id": user.id, "name": user.name },
            "quota": quota,
            "used": used,
            "reserved": reserved,
            "remaining": quota.map(|q| q.saturating_sub(used + reserved)),
            "expires_at": user.expires_at,
            "limits": {
                "rpm": user.rpm, "rpd": user.rpd, "tpm": user.tpm,
                "max_concurrency": user.max_concurrency,
            },
            "totals": totals,
            "models": models,
        }),
    )
}

/// `GET /v1/dashboard/billing/subscription`, as chat apps (`NextChat`, `LobeChat`) poll it for a
/// balance. Credits are reported as the currency unit.
pub async fn subscription(app: &App, caller: &Caller) -> HandlerResult {
    let snap = snapshot::snapshot(app).await?;
    let (quota, access_until) = match status(app, caller, &snap.settings).await? {
        Some((user, LedgerResponse::Status { quota, .. })) => (
            quota.unwrap_or(UNLIMITED),
            user.expires_at.map_or(0, |ms| ms / 1000),
        ),
        _ => (UNLIMITED, 0),
    };
    render::json(
        200,
        &json!({
            "object": "billing_subscription",
            "has_payment_method": true,
            "hard_limit_usd": quota,
            "soft_limit_usd": quota,
            "system_hard_limit_usd": quota,
            "access_until": access_until,
        }),
    )
}

/// `GET /v1/dashboard/billing/usage?start_date=YYYY-MM-DD&end_date=YYYY-MM-DD`:
/// `total_usage` in hundredths of a credit, as the legacy endpoint reports cents.
pub async fn billing_usage(app: &App, caller: &Caller, url: &Url) -> HandlerResult {
    let Some(user) = caller.user() else {
        return render::json(200, &json!({ "object": "list", "total_usage": 0 }));
    };
    let param = |name: &str| {
        url.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    let bound = |name: &str, default: u64| -> Result<u64, GatewayError> {
        match param(name) {
            None => Ok(default),
            Some(date) => parse_date_ms(&date).ok_or_else(|| {
                GatewayError::invalid_param(format!("{name} must be YYYY-MM-DD"), name)
            }),
        }
    };
    let start = bound("start_date", 0)?;
    let end = bound("end_date", now_ms())?;
    let credits = user_store::credits_between(&app.db()?, &user.id, start, end).await?;
    render::json(
        200,
        &json!({ "object": "list", "total_usage": credits * 100.0 }),
    )
}
