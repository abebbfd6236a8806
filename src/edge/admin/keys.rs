//! `/admin/api/keys`: add keys in bulk (idempotently), list them masked with
//! their health, edit, enable or disable, and delete.

use serde::Deserialize;
use serde_json::json;
use worker::{Request, Response};

use crate::domain::config::{parse_key_array, parse_key_list};
use crate::domain::error::GatewayError;
use crate::domain::keys::{KeyQuery, KeyStatus};
use crate::edge::app::App;
use crate::edge::http::{body, render};
use crate::edge::store::keys::{self as key_store, KeyMeta, KeyPatch, KeyView};
use crate::edge::{now_ms, snapshot, upstream};

type HandlerResult = Result<Response, GatewayError>;

/// Upstream key secrets never exceed this in practice.
const MAX_KEY_LEN: usize = 256;
/// Keys one test may probe: each is an upstream call.
const MAX_TESTS: usize = 50;

/// `GET /admin/api/keys`, optionally `?status=healthy|cooling|disabled&q=…&offset=&limit=`:
/// every key without `limit` (as always), else one page of the keys that pass the filters,
/// with `matched` and the per-status `counts`.
pub async fn list(app: &App, req: &Request) -> HandlerResult {
    let url = req.url()?;
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let query = KeyQuery::parse(&pairs)?;
    let keys = key_store::list(&app.db()?, now_ms()).await?;
    let enabled = keys.iter().filter(|k| k.enabled).count();
    let status = |k: &KeyView| {
        if !k.enabled {
            KeyStatus::Disabled
        } else if k.health.iter().any(|h| h.cooling) {
            KeyStatus::Cooling
        } else {
            KeyStatus::Healthy
        }
    };
    let count = |s: KeyStatus| keys.iter().filter(|k| status(k) == s).count();
    let counts = json!({
        "healthy": count(KeyStatus::Healthy),
        "cooling": count(KeyStatus::Cooling),
        "disabled": count(KeyStatus::Disabled),
    });
    let total = keys.len();
    let matching: Vec<&KeyView> = keys
        .iter()
        .filter(|k| {
            query.matches(
                status(k),
                &[
                    Some(k.id.as_str()),
                    Some(k.masked.as_str()),
                    k.label.as_deref(),
                    k.project.as_deref(),
                ],
            )
        })
        .collect();
    let matched = matching.len();
    let page: Vec<&KeyView> = match query.limit {
        Some(limit) => matching
            .into_iter()
            .skip(query.offset)
            .take(limit)
            .collect(),
        None => matching,
    };
    render::json(
        200,
        &json!({
            "keys": page, "total": total, "enabled": enabled, "matched": matched, "counts": counts,
        }),
    )
}

/// `POST /admin/api/keys/test` `{"ids": [..]}`: a cheap upstream call per key, recorded like
/// any other outcome.
pub async fn test(app: &App, req: &mut Request) -> HandlerResult {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Test {
        ids: Vec<String>,
    }
    let test: Test = serde_json::from_value(body::read_admin_json(req).await?).map_err(|e| {
        GatewayError::invalid_param(format!("Expected {{\"ids\": [..]}}: {e}"), "ids")
    })?;
    if test.ids.is_empty() || test.ids.len() > MAX_TESTS {
        return Err(GatewayError::invalid_param(
            format!("Test 1 to {MAX_TESTS} keys at a time."),
            "ids",
        ));
    }
    let snap = snapshot::snapshot(app).await?;
    let keys = snapshot::keys_by_id(app, &test.ids).await?;
    if let Some(missing) = test
        .ids
        .iter()
        .find(|id| !keys.iter().any(|k| &k.id == *id))
    {
        return Err(no_such_key(missing));
    }
    let results =
        futures::future::join_all(keys.iter().map(|key| upstream::probe(app, &snap, key))).await;
    snapshot::invalidate();
    render::json(200, &json!({ "results": results }))
}

pub async fn get(app: &App, id: &str) -> HandlerResult {
    match key_store::get(&app.db()?, id, now_ms()).await? {
        Some(key) => render::json(200, &key),
        None => Err(no_such_key(id)),
    }
}

fn no_such_key(id: &str) -> GatewayError {
    GatewayError::RouteNotFound(format!("No key with id {id}."))
}

#[derive(Deserialize)]
struct AddKeys {
    keys: KeysInput,
    #[serde(flatten)]
    meta: KeyMeta,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum KeysInput {
    List(Vec<String>),
    Text(String),
}

/// `POST /admin/api/keys`: `{"keys": [..]}` or `{"keys": "k1\nk2 ..."}`,
/// added idempotently. Answers with counts only, never the keys.
pub async fn add(app: &App, req: &mut Request) -> HandlerResult {
    let body = body::read_admin_json(req).await?;
    let input: AddKeys = serde_json::from_value(body).map_err(|e| {
        GatewayError::invalid_param(
            format!("Expected {{\"keys\": [..]}} or {{\"keys\": \"k1\\nk2\"}}: {e}"),
            "keys",
        )
    })?;
    let candidates = match input.keys {
        KeysInput::Text(text) => parse_key_list(&text),
        KeysInput::List(list) => parse_key_array(&list)?,
    };
    let (valid, invalid): (Vec<String>, Vec<String>) = candidates
        .into_iter()
        .partition(|k| k.len() <= MAX_KEY_LEN && k.chars().all(|c| c.is_ascii_graphic()));
    if let Some(class) = input.meta.class.as_deref()
        && class != "free"
        && class != "paid"
    {
        return Err(GatewayError::invalid_param(
            "class must be `free` or `paid`.",
            "class",
        ));
    }
    let meta = KeyMeta {
        source: "admin".into(),
        ..input.meta
    };
    let sealer = snapshot::sealer(&app.env).await?;
    let counts = key_store::import(&app.db()?, &valid, &meta, sealer.as_deref(), now_ms()).await?;
    snapshot::invalidate();
    render::json(
        200,
        &json!({
            "added": counts.added,
            "existing": counts.existing,
            "invalid": invalid.len(),
            "received": valid.len() + invalid.len(),
        }),
    )
}

pub async fn update(app: &App, req: &mut Request, id: &str) -> HandlerResult {
    let body = body::read_admin_json(req).await?;
    let patch: KeyPatch = serde_json::from_value(body)
        .map_err(|e| GatewayError::invalid(format!("Invalid key update: {e}")))?;
    if !key_store::update(&app.db()?, id, &patch, now_ms()).await? {
        return Err(no_such_key(id));
    }
    snapshot::invalidate();
    get(app, id).await
}

pub async fn delete_one(app: &App, id: &str) -> HandlerResult {
    let deleted = key_store::delete(&app.db()?, &[id.to_owned()]).await?;
    snapshot::invalidate();
    if deleted == 0 {
        return Err(no_such_key(id));
    }
    render::json(200, &json!({ "deleted": deleted }))
}

/// `DELETE /admin/api/keys` with `{"ids": [..]}`, or `{"all": true}`.
pub async fn delete_many(app: &App, req: &mut Request) -> HandlerResult {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Delete {
        #[serde(default)]
        ids: Vec<String>,
        #[serde(default)]
        all: bool,
    }
    let body = body::read_admin_json(req).await?;
    let del: Delete = serde_json::from_value(body).map_err(|e| {
        GatewayError::invalid(format!(
            "Expected {{\"ids\": [..]}} or {{\"all\": true}}: {e}"
        ))
    })?;
    let db = app.db()?;
    let deleted = if del.all {
        key_store::delete_all(&db).await?
    } else if del.ids.is_empty() {
        return Err(GatewayError::invalid_param(
            "Give `ids` or `all: true`.",
            "ids",
        ));
    } else {
        key_store::delete(&db, &del.ids).await?
    };
    snapshot::invalidate();
    render::json(200, &json!({ "deleted": deleted }))
}
