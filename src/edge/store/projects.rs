//! The project label of upstream keys (`upstream_keys.project`) set for many
//! keys at once, and the per-project counts read from `upstream_keys` and the
//! health mirror (`key_model_health`). A blank project is no project.

use serde::Deserialize;
use worker::D1Database;
use worker::wasm_bindgen::JsValue;

use crate::domain::error::GatewayError;
use crate::domain::projects::{CoolingCount, GroupCount, ModelCount};
use crate::edge::store::{IDS_PER_STATEMENT, batch_of, changes};
use crate::edge::{int, internal, js_int, js_opt};

/// Sets (or, with `None`, clears) the project of the keys in `ids`, bumping
/// their revision (`updated_at`) so the pools see the new grouping. One batch;
/// returns how many keys exist among `ids` (distinct ids expected).
pub async fn set_project(
    db: &D1Database,
    ids: &[String],
    project: Option<&str>,
    now_ms: u64,
) -> Result<usize, GatewayError> {
    if ids.is_empty() {
        return Ok(0);
    }
    let mut statements = Vec::with_capacity(ids.len().div_ceil(IDS_PER_STATEMENT));
    for chunk in ids.chunks(IDS_PER_STATEMENT) {
        let marks: Vec<String> = (3..chunk.len() + 3).map(|i| format!("?{i}")).collect();
        let mut params: Vec<JsValue> = vec![js_opt(project), js_int(now_ms)];
        params.extend(chunk.iter().map(|id| JsValue::from(id.as_str())));
        statements.push(
            db.prepare(format!(
                "UPDATE upstream_keys SET project = ?1, updated_at = ?2 WHERE id IN ({})",
                marks.join(", ")
            ))
            .bind(&params)
            .map_err(internal("bind set project"))?,
        );
    }
    let results = db
        .batch(statements)
        .await
        .map_err(internal("set project"))?;
    Ok(results.iter().map(changes).sum())
}

/// The counts behind `GET /admin/api/projects`, in one batch: keys and enabled
/// keys per project, enabled keys cooling on some model per project, and per
/// project and model the cooling keys and those whose cooldown ends at
/// `park_until` (a per-day park). A key cools when its mirrored cooldown ends
/// after `now_ms`.
pub async fn counts(
    db: &D1Database,
    now_ms: u64,
    park_until: u64,
) -> Result<(Vec<GroupCount>, Vec<CoolingCount>, Vec<ModelCount>), GatewayError> {
    #[derive(Deserialize)]
    struct GroupRow {
        project: Option<String>,
        keys: f64,
        enabled: Option<f64>,
    }
    #[derive(Deserialize)]
    struct CoolingRow {
        project: Option<String>,
        cooling: f64,
    }
    #[derive(Deserialize)]
    struct ModelRow {
        project: Option<String>,
        model: String,
        cooling: f64,
        parked: Option<f64>,
    }
    let cooling_from = "FROM key_model_health h JOIN upstream_keys k ON k.id = h.key_id \
                        WHERE k.enabled = 1 AND h.cooldown_until > ?1";
    let results = db
        .batch(vec![
            db.prepare(
                "SELECT NULLIF(TRIM(project), '') AS project, COUNT(*) AS keys, \
                 SUM(enabled) AS enabled FROM upstream_keys GROUP BY 1",
            ),
            db.prepare(format!(
                "SELECT NULLIF(TRIM(k.project), '') AS project, COUNT(DISTINCT h.key_id) AS cooling \
                 {cooling_from} GROUP BY 1"
            ))
            .bind(&[js_int(now_ms)])
            .map_err(internal("bind project cooling"))?,
            db.prepare(format!(
                "SELECT NULLIF(TRIM(k.project), '') AS project, h.model AS model, \
                 COUNT(*) AS cooling, SUM(CASE WHEN h.cooldown_until = ?2 THEN 1 ELSE 0 END) AS parked \
                 {cooling_from} GROUP BY 1, 2"
            ))
            .bind(&[js_int(now_ms), js_int(park_until)])
            .map_err(internal("bind project models"))?,
        ])
        .await
        .map_err(internal("project counts"))?;
    let [groups, cooling, models] = batch_of(results)?;
    let groups: Vec<GroupRow> = groups.results().map_err(internal("decode projects"))?;
    let cooling: Vec<CoolingRow> = cooling
        .results()
        .map_err(internal("decode project cooling"))?;
    let models: Vec<ModelRow> = models
        .results()
        .map_err(internal("decode project models"))?;
    Ok((
        groups
            .into_iter()
            .map(|g| GroupCount {
                project: g.project,
                keys: int(g.keys),
                enabled: int(g.enabled.unwrap_or(0.0)),
            })
            .collect(),
        cooling
            .into_iter()
            .map(|c| CoolingCount {
                project: c.project,
                cooling: int(c.cooling),
            })
            .collect(),
        models
            .into_iter()
            .map(|m| ModelCount {
                project: m.project,
                model: m.model,
                cooling: int(m.cooling),
                parked: int(m.parked.unwrap_or(0.0)),
            })
            .collect(),
    ))
}
