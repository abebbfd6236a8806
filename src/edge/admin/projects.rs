//! Project groups and the limit presets: setting the project of many keys at
//! once, keys and capacity per project, and the rows the console applies in
//! one click (`domain::limits::presets`).

use serde_json::json;
use worker::{Request, Response};

use crate::domain::error::GatewayError;
use crate::domain::{limits, projects};
use crate::edge::app::App;
use crate::edge::http::{body, render};
use crate::edge::store::projects as project_store;
use crate::edge::{now_ms, snapshot};

type HandlerResult = Result<Response, GatewayError>;

/// `GET /admin/api/model-limits/presets`.
pub fn presets() -> HandlerResult {
    render::json(200, &json!({ "presets": limits::presets() }))
}

/// `POST /admin/api/keys/project` `{"ids": [...], "project": "p" | null}`:
/// sets (or clears) the project of those keys; unknown ids are skipped.
/// Answers `{"updated": n}`, the keys that exist among `ids`.
pub async fn set_keys_project(app: &App, req: &mut Request) -> HandlerResult {
    let assignment = projects::parse_assignment(&body::read_admin_json(req).await?)?;
    let updated = project_store::set_project(
        &app.db()?,
        &assignment.ids,
        assignment.project.as_deref(),
        now_ms(),
    )
    .await?;
    snapshot::invalidate();
    render::json(200, &json!({ "updated": updated }))
}

/// `GET /admin/api/projects`: per project (`null` for keys with none) the
/// keys, enabled, disabled and cooling counts, and per model the cooling and
/// parked keys, from the health mirror.
pub async fn list(app: &App) -> HandlerResult {
    let now = now_ms();
    let (groups, cooling, models) =
        project_store::counts(&app.db()?, now, projects::park_instant(now)).await?;
    render::json(
        200,
        &json!({ "projects": projects::assemble(groups, &cooling, models) }),
    )
}
