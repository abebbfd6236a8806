//! The fetch entry: resolve the route, authenticate for its group, dispatch,
//! and render any error in the surface's own shape. No handler error escapes
//! as a 500 from the runtime.

use worker::{Context, Env, Headers, Method, Request, Response, Result};

use crate::domain::auth::{Credentials, ct_eq};
use crate::domain::error::GatewayError;
use crate::domain::route::{self, Hints, OpenAiRoute, PublicRoute, Route, Surface};
use crate::edge::app::App;
use crate::edge::billing::{self, Caller};
use crate::edge::http::render;
use crate::edge::{admin, api};

/// Response headers a browser may read on the API surfaces.
const EXPOSED_HEADERS: &str = "retry-after, x-ratelimit-limit-requests, \
     x-ratelimit-remaining-requests, x-ratelimit-reset-requests, x-ratelimit-limit-tokens, \
     x-ratelimit-remaining-tokens, x-ratelimit-reset-tokens, x-gemgate-adjusted";

pub async fn handle(req: Request, env: Env, ctx: Context) -> Result<Response> {
    let url = req.url()?;
    let path = url.path().to_owned();
    // Browser chat apps (NextChat, LobeChat, …) call the API cross-origin with
    // a bearer token: answer their preflight and let them read the answer.
    // The admin surface stays same-origin.
    let cors = route::surface_of(&path, Hints::default()) != Surface::Admin;
    if cors && req.method() == Method::Options {
        return preflight(&req);
    }
    let app = App::new(env, &ctx, Some(req.inner().signal()));
    let mut resp = route_and_dispatch(&app, req, &url, &path).await?;
    if let Some(rate) = app.rate.borrow().as_ref() {
        billing::apply_rate_headers(&mut resp, rate);
    }
    if cors {
        // Headers of a response we built are mutable; a failure here only
        // costs the browser its view, never the answer itself.
        let headers = resp.headers_mut();
        let _ = headers.set("access-control-allow-origin", "*");
        let _ = headers.set("access-control-expose-headers", EXPOSED_HEADERS);
    }
    Ok(resp)
}

fn preflight(req: &Request) -> Result<Response> {
    let requested = req
        .headers()
        .get("access-control-request-headers")?
        .unwrap_or_else(|| "authorization, content-type, x-goog-api-key, x-api-key".to_owned());
    let headers = Headers::new();
    headers.set("access-control-allow-origin", "*")?;
    headers.set("access-control-allow-methods", "GET, POST, OPTIONS")?;
    headers.set("access-control-allow-headers", &requested)?;
    headers.set("access-control-max-age", "86400")?;
    Ok(Response::empty()?.with_status(204).with_headers(headers))
}

async fn route_and_dispatch(
    app: &App,
    req: Request,
    url: &worker::Url,
    path: &str,
) -> Result<Response> {
    let query_key = url
        .query_pairs()
        .find(|(k, _)| k == "key")
        .map(|(_, v)| v.into_owned());
    let header = |name: &str| req.headers().get(name).ok().flatten();
    let (authorization, goog, x_api) = (
        header("authorization"),
        header("x-goog-api-key"),
        header("x-api-key"),
    );
    let hints = Hints {
        google_client: goog.is_some()
            || header("x-goog-api-client").is_some()
            || query_key.is_some(),
    };
    let method = req.method().to_string();
    let route = match route::resolve(&method, path, hints) {
        Ok(route) => route,
        Err(e) => {
            let mut resp = render::error(e.surface, &e.error)?;
            if let Some(allow) = e.allow {
                resp.headers_mut().set("allow", &allow)?;
            }
            return Ok(resp);
        }
    };
    let surface = route.surface();
    let creds = Credentials {
        authorization: authorization.as_deref(),
        goog_api_key: goog.as_deref(),
        x_api_key: x_api.as_deref(),
        query_key: query_key.as_deref(),
    };
    match serve(app, req, route, url, &creds).await {
        Ok(resp) => Ok(resp),
        Err(e) => render::error(surface, &e),
    }
}

/// Authenticates for the route's group, then hands over to its handler.
async fn serve(
    app: &App,
    req: Request,
    route: Route,
    url: &worker::Url,
    creds: &Credentials<'_>,
) -> std::result::Result<Response, GatewayError> {
    match route {
        Route::Public(PublicRoute::Health) => api::health::health(app).await,
        Route::Public(PublicRoute::AdminPage | PublicRoute::UsagePage) => {
            admin::page::serve(app, req).await
        }
        Route::Admin(route) => {
            admin_auth(app, creds)?;
            admin::serve(app, req, route).await
        }
        Route::OpenAi(route) => {
            let caller = client_auth(app, creds).await?;
            let caller = &caller;
            match route {
                OpenAiRoute::ChatCompletions => api::openai::chat(app, caller, req).await,
                OpenAiRoute::Embeddings => api::openai::embeddings(app, caller, req).await,
                OpenAiRoute::ListModels => api::openai::list_models(app, caller).await,
                OpenAiRoute::GetModel(id) => api::openai::get_model(app, &id).await,
                OpenAiRoute::Usage => api::usage::usage(app, caller).await,
                OpenAiRoute::BillingSubscription => api::usage::subscription(app, caller).await,
                OpenAiRoute::BillingUsage => api::usage::billing_usage(app, caller, url).await,
            }
        }
        Route::Gemini(route) => {
            let caller = client_auth(app, creds).await?;
            api::gemini::serve(app, &caller, req, url, route).await
        }
    }
}

async fn client_auth(
    app: &App,
    creds: &Credentials<'_>,
) -> std::result::Result<Caller, GatewayError> {
    let Some(token) = creds.token() else {
        return Err(GatewayError::Unauthorized(
            "Missing API key. Pass it as `Authorization: Bearer <key>`, `x-goog-api-key`, `x-api-key` or `?key=`.".into(),
        ));
    };
    billing::authenticate(app, token).await
}

fn admin_auth(app: &App, creds: &Credentials<'_>) -> std::result::Result<(), GatewayError> {
    let Some(password) = app.config.admin_password.as_deref() else {
        return Err(GatewayError::Unauthorized(
            "The admin API is disabled: ADMIN_PASSWORD is not set.".into(),
        ));
    };
    match creds.authorization.and_then(|_| creds.token()) {
        Some(token) if ct_eq(token, password) => Ok(()),
        Some(_) => Err(GatewayError::Unauthorized(
            "Invalid admin credentials.".into(),
        )),
        None => Err(GatewayError::Unauthorized(
            "Admin API requires `Authorization: Bearer <ADMIN_PASSWORD>`.".into(),
        )),
    }
}
