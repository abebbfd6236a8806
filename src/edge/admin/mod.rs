//! The admin API (`/admin/api/...`, Bearer `ADMIN_PASSWORD`) and the static
//! pages. One dispatch over the route table's admin routes; handlers per
//! area. None uses another handler module (`make boundary`).

pub mod accounts;
pub mod gates;
pub mod keys;
pub mod models;
pub mod ops;
pub mod page;
pub mod projects;
pub mod secrets;
pub mod session;
pub mod settings;
pub mod stats;
pub mod users;

use worker::{Request, Response};

use crate::domain::error::GatewayError;
use crate::domain::route::AdminRoute;
use crate::edge::app::App;

pub async fn serve(
    app: &App,
    mut req: Request,
    route: AdminRoute,
) -> Result<Response, GatewayError> {
    let req = &mut req;
    match route {
        AdminRoute::ListKeys => keys::list(app, req).await,
        AdminRoute::AddKeys => keys::add(app, req).await,
        AdminRoute::DeleteKeys => keys::delete_many(app, req).await,
        AdminRoute::GetKey(id) => keys::get(app, &id).await,
        AdminRoute::UpdateKey(id) => keys::update(app, req, &id).await,
        AdminRoute::DeleteKey(id) => keys::delete_one(app, &id).await,
        AdminRoute::GetSettings => settings::get(app).await,
        AdminRoute::UpdateSettings => settings::update(app, req).await,
        AdminRoute::ListUsers => users::list(app).await,
        AdminRoute::CreateUser => users::create(app, req).await,
        AdminRoute::GetUser(id) => users::get(app, &id).await,
        AdminRoute::UpdateUser(id) => users::update(app, req, &id).await,
        AdminRoute::DeleteUser(id) => users::delete(app, &id).await,
        AdminRoute::RotateUser(id) => users::rotate(app, &id).await,
        AdminRoute::TestKeys => keys::test(app, req).await,
        AdminRoute::SettingsDefaults => settings::defaults(),
        AdminRoute::ListModels => models::list(app).await,
        AdminRoute::UpdateModel(id) => models::update(app, req, &id).await,
        AdminRoute::Stats => stats::stats(app, req).await,
        AdminRoute::Logs => stats::logs(app, req).await,
        AdminRoute::ListAccounts => accounts::list(app).await,
        AdminRoute::ImportAccounts => accounts::import(app, req).await,
        AdminRoute::GetAccount(id) => accounts::get(app, &id).await,
        AdminRoute::UpdateAccount(id) => accounts::update(app, req, &id).await,
        AdminRoute::DeleteAccount(id) => accounts::delete(app, &id).await,
        AdminRoute::TestAccount(id) => accounts::test(app, &id).await,
        AdminRoute::OnboardAccount(id) => accounts::onboard(app, &id).await,
        AdminRoute::AccountQuota(id) => accounts::quota(app, &id).await,
        AdminRoute::ExportAccounts => accounts::export(app, req).await,
        AdminRoute::OAuthStart => accounts::oauth_start(app).await,
        AdminRoute::OAuthFinish => accounts::oauth_finish(app, req).await,
        AdminRoute::SetKeysProject => projects::set_keys_project(app, req).await,
        AdminRoute::Projects => projects::list(app).await,
        AdminRoute::LimitPresets => projects::presets(),
        AdminRoute::ModelQueues => gates::queues(app).await,
        AdminRoute::ModelGate(model) => gates::gate(app, &model).await,
        AdminRoute::Jobs => ops::jobs(app).await,
        AdminRoute::Errors => ops::errors(app, req).await,
        AdminRoute::ArchivedKeys => ops::archived(app).await,
        AdminRoute::RestoreKeys => ops::restore(app, req).await,
        AdminRoute::PurgeKeys => ops::purge(app, req).await,
        AdminRoute::Metrics => gates::metrics(app).await,
        AdminRoute::Secrets => secrets::get(app).await,
    }
}
