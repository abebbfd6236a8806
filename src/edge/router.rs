//! The fetch entry: resolve the route, authenticate for its group, dispatch,
//! and render any error in the surface's own shape. No handler error escapes
//! as a 500 from the runtime.

use worker::{Context, Env, Headers, Method, Request, Response, Result};

use crate::domain::auth::{Credentials, bearer};
use crate::domain::error::GatewayError;
use crate::domain::ops::{self, REQUEST_ID_HEADER};
use crate::domain::route::{
    self, FilesRoute, Hints, OpenAiRoute, PublicRoute, Route, RouteError, Surface,
};
use crate::domain::session::CSRF_HEADER;
use crate::edge::access::admin::Presented;
use crate::edge::access::{self, Caller};
use crate::edge::app::App;
use crate::edge::billing;
use crate::edge::http::render;
use crate::edge::{admin, api};

/// Response headers a browser may read on the API surfaces.
const EXPOSED_HEADERS: &str = "retry-after, x-ratelimit-limit-requests, \
     x-ratelimit-remaining-requests, x-ratelimit-reset-requests, x-ratelimit-limit-tokens, \
     x-ratelimit-remaining-tokens, x-ratelimit-reset-tokens, x-gemgate-adjusted, x-request-id, \
     x-goog-upload-url, x-goog-upload-control-url, x-goog-upload-status, \
     x-goog-upload-chunk-granularity, x-goog-upload-size-received";

pub async fn handle(req: Request, env: Env, ctx: Context) -> Result<Response> {
    let url = req.url()?;
    let path = url.path().to_owned();
    // Browser chat apps (NextChat, LobeChat, …) call the API cross-origin with
    // a bearer token: answer their preflight and let them read the answer.
    // The admin surface stays same-origin.
    let cors = route::surface_of(&path, Hints::default()) != Surface::Admin;
    let sent_id = req.headers().get(REQUEST_ID_HEADER).ok().flatten();
    let request_id = ops::client_request_id(sent_id.as_deref())
        .unwrap_or_else(|| ops::new_request_id(crate::edge::crypto::random_bytes()));
    if cors && req.method() == Method::Options {
        return with_request_id(preflight(&req)?, &request_id);
    }
    let app = App::new(env, &ctx, Some(req.inner().signal()), request_id);
    crate::edge::upstream::accounts::import_env_once(&app);
    let resp = route_and_dispatch(&app, req, &url, &path).await?;
    let mut resp = with_request_id(resp, &app.request_id)?;
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

/// Every response names its request. The runtime's own responses (static
/// assets) have immutable headers: those are copied into a new response.
fn with_request_id(mut resp: Response, id: &str) -> Result<Response> {
    if resp.headers_mut().set(REQUEST_ID_HEADER, id).is_ok() {
        return Ok(resp);
    }
    let headers = Headers::new();
    for (name, value) in resp.headers() {
        headers.append(&name, &value)?;
    }
    headers.set(REQUEST_ID_HEADER, id)?;
    let status = resp.status_code();
    Ok(Response::from_body(resp.body().clone())?
        .with_status(status)
        .with_headers(headers))
}

fn preflight(req: &Request) -> Result<Response> {
    let requested = req
        .headers()
        .get("access-control-request-headers")?
        .unwrap_or_else(|| {
            "authorization, content-type, x-goog-api-key, x-api-key, anthropic-version".to_owned()
        });
    let headers = Headers::new();
    headers.set("access-control-allow-origin", "*")?;
    headers.set(
        "access-control-allow-methods",
        "GET, POST, PATCH, DELETE, OPTIONS",
    )?;
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
    let headers = RequestHeaders {
        authorization: header("authorization"),
        goog: header("x-goog-api-key"),
        x_api: header("x-api-key"),
        anthropic: header("anthropic-auth-token"),
        cookie: header("cookie"),
        origin: header("origin"),
        client_ip: header("cf-connecting-ip"),
        csrf: header(CSRF_HEADER),
        own_origin: url.origin().ascii_serialization(),
        query_key,
    };
    let hints = Hints {
        google_client: headers.goog.is_some()
            || header("x-goog-api-client").is_some()
            || headers.query_key.is_some(),
    };
    let method = req.method();
    let route = match route::resolve(method.as_ref(), path, hints) {
        Ok(route) => route,
        Err(e) => return unrouted(app, &headers, e).await,
    };
    let surface = route.surface();
    app.surface.set(surface.name());
    let mut resp = match serve(app, req, route, url, &headers, &method).await {
        Ok(resp) => resp,
        Err(e) => render::error(surface, &e)?,
    };
    if surface == Surface::Admin {
        admin::session::harden(resp.headers_mut())?;
    }
    Ok(resp)
}

/// What the router reads from a request's headers.
struct RequestHeaders {
    authorization: Option<String>,
    goog: Option<String>,
    x_api: Option<String>,
    anthropic: Option<String>,
    query_key: Option<String>,
    cookie: Option<String>,
    origin: Option<String>,
    client_ip: Option<String>,
    csrf: Option<String>,
    own_origin: String,
}

impl RequestHeaders {
    fn credentials(&self) -> Credentials<'_> {
        Credentials {
            authorization: self.authorization.as_deref(),
            goog_api_key: self.goog.as_deref(),
            x_api_key: self.x_api.as_deref(),
            anthropic_auth_token: self.anthropic.as_deref(),
            query_key: self.query_key.as_deref(),
        }
    }

    fn presented(&self) -> Presented<'_> {
        Presented {
            bearer: self.authorization.as_deref().and_then(bearer),
            cookie: self.cookie.as_deref(),
            origin: self.origin.as_deref(),
            own_origin: &self.own_origin,
            client_ip: self.client_ip.as_deref(),
            csrf: self.csrf.as_deref(),
        }
    }
}

/// A request that matched no route. Under `/admin/api/` the caller must be an admin before it
/// learns even that: without credentials it gets 401, as every admin route does.
async fn unrouted(app: &App, headers: &RequestHeaders, e: RouteError) -> Result<Response> {
    if e.surface == Surface::Admin
        && let Err(denied) = access::admin::authenticate(app, &headers.presented(), false).await
    {
        return render::error(Surface::Admin, &denied);
    }
    let mut resp = render::error(e.surface, &e.error)?;
    if let Some(allow) = e.allow {
        resp.headers_mut().set("allow", &allow)?;
    }
    Ok(resp)
}

/// Authenticates for the route's group, then hands over to its handler.
async fn serve(
    app: &App,
    mut req: Request,
    route: Route,
    url: &worker::Url,
    headers: &RequestHeaders,
    method: &Method,
) -> std::result::Result<Response, GatewayError> {
    match route {
        Route::Public(PublicRoute::Health) => api::health::health(app).await,
        Route::Public(PublicRoute::AdminPage | PublicRoute::UsagePage) => {
            admin::page::serve(app, req).await
        }
        Route::Public(PublicRoute::AdminLogin) => {
            admin::session::login(app, &headers.presented(), &mut req).await
        }
        Route::Public(PublicRoute::AdminLogout) => {
            admin::session::logout(app, &headers.presented(), &mut req).await
        }
        Route::Public(PublicRoute::AdminSession) => {
            admin::session::status(app, &headers.presented()).await
        }
        Route::Public(PublicRoute::ImageFile(id)) => api::images::file(app, &id).await,
        Route::Admin(route) => {
            let changes_state = !matches!(*method, Method::Get | Method::Head);
            access::admin::authenticate(app, &headers.presented(), changes_state).await?;
            admin::serve(app, req, route).await
        }
        Route::OpenAi(route) => {
            let caller = client_auth(app, &headers.credentials()).await?;
            let caller = &caller;
            match route {
                OpenAiRoute::ChatCompletions => api::openai::chat(app, caller, req).await,
                OpenAiRoute::Embeddings => api::openai::embeddings(app, caller, req).await,
                OpenAiRoute::ListModels => api::openai::list_models(app, caller).await,
                OpenAiRoute::GetModel(id) => api::openai::get_model(app, &id).await,
                OpenAiRoute::Usage => api::usage::usage(app, caller).await,
                OpenAiRoute::BillingSubscription => api::usage::subscription(app, caller).await,
                OpenAiRoute::BillingUsage => api::usage::billing_usage(app, caller, url).await,
                OpenAiRoute::CreateResponse => api::responses::create(app, caller, req).await,
                OpenAiRoute::GetResponse(id) => api::responses::retrieve(app, caller, &id).await,
                OpenAiRoute::DeleteResponse(id) => api::responses::delete(app, caller, &id).await,
                OpenAiRoute::ImageGenerations => {
                    api::images::generations(app, caller, req, &headers.own_origin).await
                }
                OpenAiRoute::AudioSpeech => api::speech::speech(app, caller, req).await,
            }
        }
        Route::Gemini(route) => {
            let caller = client_auth(app, &headers.credentials()).await?;
            api::gemini::serve(app, &caller, req, url, route).await
        }
        Route::Files(route) => {
            let caller = client_auth(app, &headers.credentials()).await?;
            let caller = &caller;
            match route {
                FilesRoute::Upload => api::files::upload(app, caller, req, url).await,
                FilesRoute::List(collection) => {
                    api::files::list(app, caller, url, collection).await
                }
                FilesRoute::Get(collection, id) => {
                    api::files::get(app, caller, collection, &id).await
                }
                FilesRoute::Delete(collection, id) => {
                    api::files::delete(app, caller, collection, &id).await
                }
                FilesRoute::CreateCache => api::files::create_cache(app, caller, req, url).await,
                FilesRoute::UpdateCache(id) => {
                    api::files::update_cache(app, caller, req, url, &id).await
                }
            }
        }
        Route::Anthropic(route) => {
            let caller = client_auth(app, &headers.credentials()).await?;
            api::anthropic::serve(app, &caller, req, route).await
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
    access::client(app, token).await
}
