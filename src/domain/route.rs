//! The route table: which surface and handler a method + path belong to.
//! Pure string work, so path tricks are tested natively; the edge only
//! dispatches on the result.

use super::error::GatewayError;
use super::files::Collection;

/// Which error shape a request gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    OpenAi,
    Gemini,
    /// Anthropic's Messages API.
    Anthropic,
    Admin,
}

impl Surface {
    /// The name logs and metrics use.
    pub fn name(self) -> &'static str {
        match self {
            Self::OpenAi => "openai",
            Self::Gemini => "gemini",
            Self::Anthropic => "anthropic",
            Self::Admin => "admin",
        }
    }
}

/// A Gemini-native model action (`/models/{m}:{action}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NativeAction {
    GenerateContent,
    StreamGenerateContent,
    CountTokens,
    EmbedContent,
    BatchEmbedContents,
}

impl NativeAction {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "generateContent" => Self::GenerateContent,
            "streamGenerateContent" => Self::StreamGenerateContent,
            "countTokens" => Self::CountTokens,
            "embedContent" => Self::EmbedContent,
            "batchEmbedContents" => Self::BatchEmbedContents,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::GenerateContent => "generateContent",
            Self::StreamGenerateContent => "streamGenerateContent",
            Self::CountTokens => "countTokens",
            Self::EmbedContent => "embedContent",
            Self::BatchEmbedContents => "batchEmbedContents",
        }
    }
}

/// A resolved request: who may call it (the outer variant) and what it does,
/// the method folded in. Adding a route is one arm in [`resolve`]'s tables
/// and one arm in its handler's dispatch; access and surface follow from the
/// group it joins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// No credentials.
    Public(PublicRoute),
    /// A client token; errors in `OpenAI`'s shape.
    OpenAi(OpenAiRoute),
    /// A client token; errors in Google's shape.
    Gemini(GeminiRoute),
    /// A client token; errors in Google's shape.
    Files(FilesRoute),
    /// A client token; errors in Anthropic's shape.
    Anthropic(AnthropicRoute),
    /// `ADMIN_PASSWORD`; errors in `OpenAI`'s shape.
    Admin(AdminRoute),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicRoute {
    /// `GET /health`, `/healthz`: counts only, no secrets.
    Health,
    /// The admin page's static shell; its data all comes from the admin API.
    AdminPage,
    /// The self-service usage page (its data comes from `/v1/usage`).
    UsagePage,
    /// `POST /admin/api/login`: the password buys a session cookie (throttled).
    AdminLogin,
    /// `POST /admin/api/logout`: ends the caller's session (or every session); idempotent.
    AdminLogout,
    /// `GET /v1/images/files/{id}`: a generated image, until its URL expires. The id is
    /// 128 random bits, so the link itself is the credential (chat apps embed it).
    ImageFile(String),
    /// `GET /admin/api/session`: whether the caller has a session, and its CSRF token.
    AdminSession,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenAiRoute {
    ChatCompletions,
    Embeddings,
    ListModels,
    GetModel(String),
    /// The caller's own quota and usage (`/v1/usage`).
    Usage,
    /// `OpenAI`'s legacy billing endpoints that chat apps poll for a balance.
    BillingSubscription,
    BillingUsage,
    /// `POST /v1/responses`: the Responses API.
    CreateResponse,
    /// `GET /v1/responses/{id}`: a stored response of the caller's key.
    GetResponse(String),
    /// `DELETE /v1/responses/{id}`.
    DeleteResponse(String),
    /// `POST /v1/images/generations`.
    ImageGenerations,
    /// `POST /v1/audio/speech`.
    AudioSpeech,
}

/// Anthropic's Messages API, at `/v1/messages…` and `/anthropic/v1/messages…`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnthropicRoute {
    /// `POST /v1/messages`.
    Messages,
    /// `POST /v1/messages/count_tokens`.
    CountTokens,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GeminiRoute {
    ListModels,
    GetModel(String),
    /// `POST /models/{model}:{action}`.
    Action {
        model: String,
        action: NativeAction,
    },
}

/// Google's Files API and context caches, pinned to the key that holds each
/// (`domain::files`): a client token, errors in Google's shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FilesRoute {
    /// `POST /upload/v1beta/files`: the resumable upload's start, and (with the
    /// `upload_id` the start handed out) its bytes.
    Upload,
    /// `GET /v1beta/files`, `/v1beta/cachedContents`: the caller's own.
    List(Collection),
    /// `GET /v1beta/{collection}/{id}`, from the key that holds it.
    Get(Collection, String),
    /// `DELETE /v1beta/{collection}/{id}`.
    Delete(Collection, String),
    /// `POST /v1beta/cachedContents`.
    CreateCache,
    /// `PATCH /v1beta/cachedContents/{id}`: a new TTL or expiry.
    UpdateCache(String),
}

/// `/admin/api/...`. Ids are plain path segments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminRoute {
    ListKeys,
    AddKeys,
    DeleteKeys,
    GetKey(String),
    UpdateKey(String),
    DeleteKey(String),
    GetSettings,
    UpdateSettings,
    ListUsers,
    CreateUser,
    GetUser(String),
    UpdateUser(String),
    DeleteUser(String),
    RotateUser(String),
    /// `POST /admin/api/keys/test`: a cheap upstream call per chosen key.
    TestKeys,
    /// `GET /admin/api/settings/defaults`.
    SettingsDefaults,
    /// `GET /admin/api/models`: the upstream list with its per-model settings.
    ListModels,
    /// `PATCH /admin/api/models/{model}`.
    UpdateModel(String),
    /// `GET /admin/api/stats`: dashboard series and splits.
    Stats,
    /// `GET /admin/api/logs`: the request log, filtered and paged (or CSV).
    Logs,
    /// `GET /admin/api/accounts`: every Gemini CLI account.
    ListAccounts,
    /// `POST /admin/api/accounts`: import credentials.
    ImportAccounts,
    GetAccount(String),
    UpdateAccount(String),
    DeleteAccount(String),
    /// `POST /admin/api/accounts/{id}/test`: a one-token call.
    TestAccount(String),
    /// `POST /admin/api/accounts/{id}/onboard`: run onboarding again.
    OnboardAccount(String),
    /// `GET /admin/api/accounts/{id}/quota`: `retrieveUserQuota`.
    AccountQuota(String),
    /// `GET /admin/api/accounts/export[?secrets=1]`.
    ExportAccounts,
    /// `POST /admin/api/accounts/oauth/start`: the wizard's auth URL.
    OAuthStart,
    /// `POST /admin/api/accounts/oauth/finish`: the pasted address.
    OAuthFinish,
    /// `POST /admin/api/keys/project`: set (or clear) the project of many keys.
    SetKeysProject,
    /// `GET /admin/api/projects`: keys and capacity per project.
    Projects,
    /// `GET /admin/api/model-limits/presets`: rows the console applies in one click.
    LimitPresets,
    /// `GET /admin/api/models/queues`: each concurrency-limited model's queue.
    ModelQueues,
    /// `GET /admin/api/models/{model}/gate`: one model gate's counters and queue.
    ModelGate(String),
    /// `GET /admin/api/jobs`: the maintenance jobs' last runs.
    Jobs,
    /// `GET /admin/api/errors`: upstream failures, grouped, and the latest ones.
    Errors,
    /// `GET /admin/api/keys/archive`: keys archived after being invalid too long.
    ArchivedKeys,
    /// `POST /admin/api/keys/archive/restore`: archived keys back into the pool.
    RestoreKeys,
    /// `POST /admin/api/keys/archive/purge`: archived keys deleted.
    PurgeKeys,
    /// `GET /metrics`: Prometheus text, with admin credentials.
    Metrics,
    /// `GET /admin/api/secrets`: encryption at rest and a key rotation's progress.
    Secrets,
}

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Public,
    /// A client token.
    Client,
    /// `ADMIN_PASSWORD`.
    Admin,
}

impl Route {
    /// Who may call this route: its group decides.
    pub fn access(&self) -> Access {
        match self {
            Self::Public(_) => Access::Public,
            Self::OpenAi(_) | Self::Gemini(_) | Self::Files(_) | Self::Anthropic(_) => {
                Access::Client
            }
            Self::Admin(_) => Access::Admin,
        }
    }

    pub fn surface(&self) -> Surface {
        match self {
            Self::Public(
                PublicRoute::AdminPage
                | PublicRoute::AdminLogin
                | PublicRoute::AdminLogout
                | PublicRoute::AdminSession,
            )
            | Self::Admin(_) => Surface::Admin,
            Self::Public(
                PublicRoute::Health | PublicRoute::UsagePage | PublicRoute::ImageFile(_),
            )
            | Self::OpenAi(_) => Surface::OpenAi,
            Self::Gemini(_) | Self::Files(_) => Surface::Gemini,
            Self::Anthropic(_) => Surface::Anthropic,
        }
    }
}

/// A request that matched no route, or the wrong method, with the surface
/// whose error shape it should get.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteError {
    pub surface: Surface,
    pub error: GatewayError,
    /// For 405: the methods the route does accept.
    pub allow: Option<String>,
}

/// Hints from the request that decide the ambiguous `/v1/models` routes:
/// `OpenAI` clients send a Bearer token, Google's SDKs send `x-goog-api-key`,
/// `?key=` or `x-goog-api-client`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Hints {
    pub google_client: bool,
}

/// The longest model id we accept in a path; Google's are far shorter.
const MAX_MODEL_LEN: usize = 128;

/// What a path resolves to before its method is checked: the routes by method,
/// or a route-shaped path with an invalid model id.
enum Matched {
    Methods(Vec<(&'static str, Route)>),
    BadModel(RouteError),
}

/// Prefixes other gateways serve their `OpenAI` surface under (gemini-balance's
/// `/openai/v1/…` and `/hf/v1/…`): a client saved with one keeps working.
const OPENAI_PREFIXES: [&str; 2] = ["/openai/v1/", "/hf/v1/"];

/// The `/v1/…` path an aliased `OpenAI` path stands for, if it is one.
fn unaliased(path: &str) -> Option<String> {
    OPENAI_PREFIXES
        .iter()
        .find_map(|prefix| path.strip_prefix(prefix))
        .map(|rest| format!("/v1/{rest}"))
}

/// Resolves a method and a (not yet percent-decoded) path.
pub fn resolve(method: &str, path: &str, hints: Hints) -> Result<Route, RouteError> {
    // An aliased prefix says the client speaks OpenAI's API, whatever else it sends.
    let aliased = unaliased(path);
    let (lookup, hints) = match &aliased {
        Some(p) => (p.as_str(), Hints::default()),
        None => (path, hints),
    };
    let surface = surface_of(lookup, hints);
    let Some(matched) = match_path(lookup, hints) else {
        return Err(RouteError {
            surface,
            error: GatewayError::RouteNotFound(format!("Unknown route: {method} {}", clip(path))),
            allow: None,
        });
    };
    let routes = match matched {
        Matched::Methods(routes) => routes,
        Matched::BadModel(err) => return Err(err),
    };
    // Under an OpenAI prefix, Google's native actions and Anthropic's Messages are no
    // route, whatever the method.
    let foreign = routes.iter().find_map(|(_, r)| match r {
        Route::Gemini(_) | Route::Files(_) => Some("Gemini's native API is under /v1beta/"),
        Route::Anthropic(_) => Some("Anthropic's Messages API is under /v1/messages"),
        _ => None,
    });
    if let (Some(_), Some(hint)) = (&aliased, foreign) {
        return Err(RouteError {
            surface: Surface::OpenAi,
            error: GatewayError::RouteNotFound(format!(
                "Unknown route: {method} {}; {hint}.",
                clip(path)
            )),
            allow: None,
        });
    }
    if let Some((_, route)) = routes.iter().find(|(m, _)| *m == method) {
        return Ok(route.clone());
    }
    let allow = routes
        .iter()
        .map(|(m, _)| *m)
        .collect::<Vec<_>>()
        .join(", ");
    let surface = routes.first().map_or(surface, |(_, r)| r.surface());
    Err(RouteError {
        surface,
        error: GatewayError::MethodNotAllowed(format!(
            "Method {method} is not allowed on {}; use {allow}.",
            clip(path)
        )),
        allow: Some(allow),
    })
}

/// A route read with GET (and HEAD, which clients use to probe).
fn get(route: Route) -> Matched {
    Matched::Methods(vec![("GET", route.clone()), ("HEAD", route)])
}

fn post(route: Route) -> Matched {
    Matched::Methods(vec![("POST", route)])
}

fn methods(routes: Vec<(&'static str, AdminRoute)>) -> Matched {
    Matched::Methods(
        routes
            .into_iter()
            .map(|(m, r)| (m, Route::Admin(r)))
            .collect(),
    )
}

/// The surface whose error shape a path gets, even when it matches nothing.
pub fn surface_of(path: &str, hints: Hints) -> Surface {
    if path.starts_with("/admin") || path == "/metrics" {
        Surface::Admin
    } else if path.starts_with("/anthropic/") || path.starts_with("/v1/messages") {
        Surface::Anthropic
    } else if path.starts_with("/v1beta")
        || path.starts_with("/gemini/")
        || path.starts_with("/upload/")
        || (path.starts_with("/v1/models") && (hints.google_client || path.contains(':')))
    {
        Surface::Gemini
    } else {
        Surface::OpenAi
    }
}

/// The routes a path leads to, by method; `None` = no route at all.
fn match_path(path: &str, hints: Hints) -> Option<Matched> {
    use OpenAiRoute as O;
    use PublicRoute as P;
    let fixed = match path {
        "/health" | "/healthz" => Some(get(Route::Public(P::Health))),
        "/metrics" => Some(get(Route::Admin(AdminRoute::Metrics))),
        "/v1/chat/completions" | "/chat/completions" => {
            Some(post(Route::OpenAi(O::ChatCompletions)))
        }
        "/v1/embeddings" | "/embeddings" => Some(post(Route::OpenAi(O::Embeddings))),
        "/v1/messages" | "/anthropic/v1/messages" => {
            Some(post(Route::Anthropic(AnthropicRoute::Messages)))
        }
        "/v1/messages/count_tokens" | "/anthropic/v1/messages/count_tokens" => {
            Some(post(Route::Anthropic(AnthropicRoute::CountTokens)))
        }
        "/v1/responses" | "/responses" => Some(post(Route::OpenAi(O::CreateResponse))),
        "/admin" | "/admin/" | "/admin/index.html" => Some(get(Route::Public(P::AdminPage))),
        "/v1/usage" => Some(get(Route::OpenAi(O::Usage))),
        "/usage" | "/usage/" => Some(get(Route::Public(P::UsagePage))),
        "/v1/dashboard/billing/subscription" | "/dashboard/billing/subscription" => {
            Some(get(Route::OpenAi(O::BillingSubscription)))
        }
        "/v1/dashboard/billing/usage" | "/dashboard/billing/usage" => {
            Some(get(Route::OpenAi(O::BillingUsage)))
        }
        "/v1/images/generations" | "/images/generations" => {
            Some(post(Route::OpenAi(O::ImageGenerations)))
        }
        "/v1/audio/speech" | "/audio/speech" => Some(post(Route::OpenAi(O::AudioSpeech))),
        _ => None,
    };
    if fixed.is_some() {
        return fixed;
    }
    match path {
        "/admin/api/login" => return Some(post(Route::Public(P::AdminLogin))),
        "/admin/api/logout" => return Some(post(Route::Public(P::AdminLogout))),
        "/admin/api/session" => return Some(get(Route::Public(P::AdminSession))),
        _ => {}
    }
    if let Some(rest) = path.strip_prefix("/admin/api/") {
        return admin_api(rest);
    }
    if path.starts_with("/admin/") {
        return Some(get(Route::Public(P::AdminPage)));
    }
    if let Some(id) = path.strip_prefix("/v1/responses/") {
        return stored_response(id);
    }
    if let Some(id) = path.strip_prefix("/v1/images/files/") {
        return crate::domain::images::valid_image_id(id)
            .then(|| get(Route::Public(P::ImageFile(id.to_owned()))));
    }
    native_or_models(path, hints)
}

/// The admin API: every route and its methods, in one table.
fn admin_api(rest: &str) -> Option<Matched> {
    use AdminRoute as A;
    let segments: Vec<&str> = rest.split('/').collect();
    let id = |i: usize| segments[i].to_owned();
    let plain = |i: usize| valid_segment(segments[i]);
    Some(match segments.as_slice() {
        ["keys"] => methods(vec![
            ("GET", A::ListKeys),
            ("POST", A::AddKeys),
            ("DELETE", A::DeleteKeys),
        ]),
        ["keys", "test"] => methods(vec![("POST", A::TestKeys)]),
        ["keys", "project"] => methods(vec![("POST", A::SetKeysProject)]),
        ["keys", "archive"] => methods(vec![("GET", A::ArchivedKeys)]),
        ["keys", "archive", "restore"] => methods(vec![("POST", A::RestoreKeys)]),
        ["keys", "archive", "purge"] => methods(vec![("POST", A::PurgeKeys)]),
        ["jobs"] => methods(vec![("GET", A::Jobs)]),
        ["errors"] => methods(vec![("GET", A::Errors)]),
        ["projects"] => methods(vec![("GET", A::Projects)]),
        ["model-limits", "presets"] => methods(vec![("GET", A::LimitPresets)]),
        ["models", "queues"] => methods(vec![("GET", A::ModelQueues)]),
        ["models", model, "gate"] if check_model_id(model).is_ok() => {
            methods(vec![("GET", A::ModelGate(id(1)))])
        }
        ["keys", _] if plain(1) => methods(vec![
            ("GET", A::GetKey(id(1))),
            ("PATCH", A::UpdateKey(id(1))),
            ("DELETE", A::DeleteKey(id(1))),
        ]),
        ["settings"] => methods(vec![
            ("GET", A::GetSettings),
            ("PUT", A::UpdateSettings),
            ("PATCH", A::UpdateSettings),
        ]),
        ["settings", "defaults"] => methods(vec![("GET", A::SettingsDefaults)]),
        ["users"] => methods(vec![("GET", A::ListUsers), ("POST", A::CreateUser)]),
        ["users", _] if plain(1) => methods(vec![
            ("GET", A::GetUser(id(1))),
            ("PATCH", A::UpdateUser(id(1))),
            ("DELETE", A::DeleteUser(id(1))),
        ]),
        ["users", _, "rotate"] if plain(1) => methods(vec![("POST", A::RotateUser(id(1)))]),
        ["models"] => methods(vec![("GET", A::ListModels)]),
        ["models", model] if check_model_id(model).is_ok() => {
            methods(vec![("PATCH", A::UpdateModel(id(1)))])
        }
        ["stats"] => methods(vec![("GET", A::Stats)]),
        ["secrets"] => methods(vec![("GET", A::Secrets)]),
        ["logs"] => methods(vec![("GET", A::Logs)]),
        ["accounts"] => methods(vec![("GET", A::ListAccounts), ("POST", A::ImportAccounts)]),
        ["accounts", "export"] => methods(vec![("GET", A::ExportAccounts)]),
        ["accounts", "oauth", "start"] => methods(vec![("POST", A::OAuthStart)]),
        ["accounts", "oauth", "finish"] => methods(vec![("POST", A::OAuthFinish)]),
        ["accounts", _] if plain(1) => methods(vec![
            ("GET", A::GetAccount(id(1))),
            ("PATCH", A::UpdateAccount(id(1))),
            ("DELETE", A::DeleteAccount(id(1))),
        ]),
        ["accounts", _, "test"] if plain(1) => methods(vec![("POST", A::TestAccount(id(1)))]),
        ["accounts", _, "onboard"] if plain(1) => methods(vec![("POST", A::OnboardAccount(id(1)))]),
        ["accounts", _, "quota"] if plain(1) => methods(vec![("GET", A::AccountQuota(id(1)))]),
        _ => return None,
    })
}

/// `/v1/responses/{id}`: read (GET, HEAD) or delete one stored response. An id that is not
/// one plain segment is no route.
fn stored_response(id: &str) -> Option<Matched> {
    if !valid_segment(id) {
        return None;
    }
    let get = || Route::OpenAi(OpenAiRoute::GetResponse(id.to_owned()));
    Some(Matched::Methods(vec![
        ("GET", get()),
        ("HEAD", get()),
        (
            "DELETE",
            Route::OpenAi(OpenAiRoute::DeleteResponse(id.to_owned())),
        ),
    ]))
}

fn native_or_models(path: &str, hints: Hints) -> Option<Matched> {
    if matches!(path, "/upload/v1beta/files" | "/gemini/upload/v1beta/files") {
        return Some(post(Route::Files(FilesRoute::Upload)));
    }
    let (rest, openai_capable) = if let Some(rest) = path.strip_prefix("/gemini/v1beta/") {
        if names_pinned_collection(rest) {
            return pinned_resource(rest);
        }
        (rest, false)
    } else if let Some(rest) = path.strip_prefix("/v1beta/") {
        if names_pinned_collection(rest) {
            return pinned_resource(rest);
        }
        (rest, false)
    } else if let Some(rest) = path.strip_prefix("/v1/") {
        (rest, !hints.google_client)
    } else {
        return None;
    };
    if rest == "models" {
        return Some(get(if openai_capable {
            Route::OpenAi(OpenAiRoute::ListModels)
        } else {
            Route::Gemini(GeminiRoute::ListModels)
        }));
    }
    let tail = rest.strip_prefix("models/")?;
    let surface = if openai_capable && !tail.contains(':') {
        Surface::OpenAi
    } else {
        Surface::Gemini
    };
    let (model, action) = match tail.split_once(':') {
        Some((model, action)) => (model, Some(action)),
        None => (tail, None),
    };
    // A model action may carry mode prefixes (`fake-stream/gemini-2.5-pro`): at most two
    // plain segments, each ending in `/`, before a valid id. The handler strips the
    // prefixes it knows and refuses the rest (see `compat::Compat::strip_prefixes`).
    let id = match model.rsplit_once('/') {
        Some((prefixes, id)) if action.is_some() && mode_prefixes(prefixes) => id,
        _ => model,
    };
    if let Err(why) = check_model_id(id) {
        return Some(Matched::BadModel(RouteError {
            surface,
            error: GatewayError::invalid_param(
                format!("Invalid model name in path: {why}."),
                "model",
            ),
            allow: None,
        }));
    }
    let model = model.to_owned();
    Some(match action {
        None if openai_capable => get(Route::OpenAi(OpenAiRoute::GetModel(model))),
        None => get(Route::Gemini(GeminiRoute::GetModel(model))),
        Some(action) => {
            let action = NativeAction::parse(action)?;
            post(Route::Gemini(GeminiRoute::Action { model, action }))
        }
    })
}

/// Whether a path under `/v1beta/` is in the Files API or the context caches.
fn names_pinned_collection(rest: &str) -> bool {
    let collection = rest.split('/').next().unwrap_or(rest);
    matches!(collection, "files" | "cachedContents")
}

/// The Files API and context caches under `/v1beta/`; `None` for a malformed id.
fn pinned_resource(rest: &str) -> Option<Matched> {
    use FilesRoute as F;
    let files = |routes: Vec<(&'static str, FilesRoute)>| {
        Matched::Methods(
            routes
                .into_iter()
                .map(|(m, r)| (m, Route::Files(r)))
                .collect(),
        )
    };
    let (collection, id) = match rest.split_once('/') {
        Some((c, id)) => (c, Some(id)),
        None => (rest, None),
    };
    let collection = match collection {
        "files" => Collection::Files,
        "cachedContents" => Collection::CachedContents,
        _ => return None,
    };
    let Some(id) = id else {
        let list = F::List(collection);
        let mut routes = vec![("GET", list.clone()), ("HEAD", list)];
        if collection == Collection::CachedContents {
            routes.push(("POST", F::CreateCache));
        }
        return Some(files(routes));
    };
    if !crate::domain::files::valid_id(id) {
        return None;
    }
    let get = F::Get(collection, id.to_owned());
    let mut routes = vec![
        ("GET", get.clone()),
        ("HEAD", get),
        ("DELETE", F::Delete(collection, id.to_owned())),
    ];
    if collection == Collection::CachedContents {
        routes.push(("PATCH", F::UpdateCache(id.to_owned())));
    }
    Some(files(routes))
}

/// A model id that goes into an upstream URL, checked by [`check_model_id`]: a body's
/// `model` is as untrusted as a path. A bad one is the client's 400 on `model`.
pub fn upstream_model_id(model: &str) -> Result<&str, GatewayError> {
    check_model_id(model)
        .map(|()| model)
        .map_err(|why| GatewayError::invalid_param(format!("Invalid model name: {why}."), "model"))
}

/// Model ids are `[A-Za-z0-9][A-Za-z0-9._-]*`: this refuses path tricks such
/// as `..`, encoded slashes and percent-escapes before anything is built
/// from the id.
pub fn check_model_id(model: &str) -> Result<(), &'static str> {
    if model.is_empty() {
        return Err("empty");
    }
    if model.len() > MAX_MODEL_LEN {
        return Err("too long");
    }
    if model.contains("..") {
        return Err("`..` is not allowed");
    }
    let mut chars = model.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if first_ok && rest_ok {
        Ok(())
    } else {
        Err("only letters, digits, `.`, `_` and `-` are allowed")
    }
}

/// The part of a model path before its id, when it can be mode prefixes: one or two
/// plain segments.
fn mode_prefixes(prefixes: &str) -> bool {
    let segments: Vec<&str> = prefixes.split('/').collect();
    segments.len() <= 2 && segments.iter().all(|s| valid_segment(s))
}

fn valid_segment(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Paths are echoed in error messages; keep them short.
fn clip(path: &str) -> String {
    const MAX: usize = 200;
    if path.len() <= MAX {
        return path.to_owned();
    }
    let mut end = MAX;
    while !path.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &path[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(path: &str) -> Result<Route, RouteError> {
        resolve("GET", path, Hints::default())
    }

    fn post(path: &str) -> Result<Route, RouteError> {
        resolve("POST", path, Hints::default())
    }

    #[test]
    fn the_anthropic_routes_take_a_client_token_and_answer_in_anthropics_shape() {
        for (path, want) in [
            ("/v1/messages", AnthropicRoute::Messages),
            ("/anthropic/v1/messages", AnthropicRoute::Messages),
            ("/v1/messages/count_tokens", AnthropicRoute::CountTokens),
            (
                "/anthropic/v1/messages/count_tokens",
                AnthropicRoute::CountTokens,
            ),
        ] {
            let route = post(path).unwrap();
            assert_eq!(route, Route::Anthropic(want), "{path}");
            assert_eq!(route.access(), Access::Client);
            assert_eq!(route.surface(), Surface::Anthropic);
            let wrong = get(path).unwrap_err();
            assert_eq!(wrong.surface, Surface::Anthropic);
            assert_eq!(wrong.allow.as_deref(), Some("POST"));
        }
        let unknown = post("/anthropic/v1/nothing").unwrap_err();
        assert_eq!(unknown.surface, Surface::Anthropic);
        assert_eq!(unknown.error.status(), 404);
    }

    #[test]
    fn files_and_caches_resolve_under_v1beta_with_client_access_in_googles_shape() {
        use FilesRoute as F;
        let at = |method: &str, path: &str| resolve(method, path, Hints::default());
        for (method, path, want) in [
            ("POST", "/upload/v1beta/files", F::Upload),
            ("POST", "/gemini/upload/v1beta/files", F::Upload),
            ("GET", "/v1beta/files", F::List(Collection::Files)),
            ("GET", "/gemini/v1beta/files", F::List(Collection::Files)),
            (
                "GET",
                "/v1beta/files/abc-1",
                F::Get(Collection::Files, "abc-1".into()),
            ),
            (
                "DELETE",
                "/v1beta/files/abc",
                F::Delete(Collection::Files, "abc".into()),
            ),
            (
                "GET",
                "/v1beta/cachedContents",
                F::List(Collection::CachedContents),
            ),
            ("POST", "/v1beta/cachedContents", F::CreateCache),
            (
                "GET",
                "/v1beta/cachedContents/c1",
                F::Get(Collection::CachedContents, "c1".into()),
            ),
            (
                "PATCH",
                "/v1beta/cachedContents/c1",
                F::UpdateCache("c1".into()),
            ),
            (
                "DELETE",
                "/v1beta/cachedContents/c1",
                F::Delete(Collection::CachedContents, "c1".into()),
            ),
        ] {
            let route = at(method, path).unwrap();
            assert_eq!(route, Route::Files(want), "{method} {path}");
            assert_eq!(route.access(), Access::Client);
            assert_eq!(route.surface(), Surface::Gemini);
        }
        let wrong = at("POST", "/v1beta/files/abc").unwrap_err();
        assert_eq!(wrong.allow.as_deref(), Some("GET, HEAD, DELETE"));
        assert_eq!(wrong.surface, Surface::Gemini);
        assert_eq!(
            at("GET", "/upload/v1beta/files")
                .unwrap_err()
                .allow
                .as_deref(),
            Some("POST")
        );
        assert_eq!(
            at("PATCH", "/v1beta/files/abc").unwrap_err().error.status(),
            405
        );
        for bad in [
            "/v1beta/files/a/b",
            "/v1beta/files/..",
            "/v1beta/files/a%2Fb",
            "/v1beta/files/",
            "/v1/files",
            "/upload/v1/files",
            "/openai/v1beta/files",
        ] {
            let err = at("GET", bad).unwrap_err();
            assert_eq!(err.error.status(), 404, "{bad}");
        }
        assert_eq!(surface_of("/upload/x", Hints::default()), Surface::Gemini);
    }

    #[test]
    fn responses_routes_resolve_with_client_access() {
        use OpenAiRoute as O;
        for path in ["/v1/responses", "/responses", "/openai/v1/responses"] {
            let route = post(path).unwrap();
            assert_eq!(route, Route::OpenAi(O::CreateResponse), "{path}");
            assert_eq!(route.access(), Access::Client);
        }
        assert_eq!(
            get("/v1/responses/resp_abc"),
            Ok(Route::OpenAi(O::GetResponse("resp_abc".into())))
        );
        assert_eq!(
            resolve("DELETE", "/v1/responses/resp_abc", Hints::default()),
            Ok(Route::OpenAi(O::DeleteResponse("resp_abc".into())))
        );
        let wrong = post("/v1/responses/resp_abc").unwrap_err();
        assert_eq!(wrong.allow.as_deref(), Some("GET, HEAD, DELETE"));
        assert_eq!(wrong.surface, Surface::OpenAi);
        let wrong = get("/v1/responses").unwrap_err();
        assert_eq!(wrong.error.status(), 405);
        for bad in [
            "/v1/responses/a/b",
            "/v1/responses/..",
            "/v1/responses/%2e%2e",
            "/v1/responses/",
        ] {
            assert_eq!(get(bad).unwrap_err().error.status(), 404, "{bad}");
        }
    }

    #[test]
    fn openai_routes_resolve() {
        assert_eq!(
            post("/v1/chat/completions"),
            Ok(Route::OpenAi(OpenAiRoute::ChatCompletions))
        );
        assert_eq!(
            post("/chat/completions"),
            Ok(Route::OpenAi(OpenAiRoute::ChatCompletions))
        );
        assert_eq!(
            post("/v1/embeddings"),
            Ok(Route::OpenAi(OpenAiRoute::Embeddings))
        );
        assert_eq!(
            get("/v1/models"),
            Ok(Route::OpenAi(OpenAiRoute::ListModels))
        );
        assert_eq!(
            get("/v1/models/gemini-2.5-flash"),
            Ok(Route::OpenAi(OpenAiRoute::GetModel(
                "gemini-2.5-flash".into()
            )))
        );
        assert_eq!(
            resolve("HEAD", "/v1/models", Hints::default()),
            Ok(Route::OpenAi(OpenAiRoute::ListModels))
        );
    }

    #[test]
    fn gemini_balance_prefixes_answer_like_v1() {
        let google = Hints {
            google_client: true,
        };
        for prefix in ["/openai/v1", "/hf/v1"] {
            for (method, path) in [
                ("POST", "/chat/completions"),
                ("POST", "/embeddings"),
                ("GET", "/models"),
                ("GET", "/models/gemini-2.5-flash"),
                ("GET", "/usage"),
            ] {
                let plain = resolve(method, &format!("/v1{path}"), Hints::default());
                assert!(plain.is_ok(), "{path}");
                // The prefix says OpenAI, even to a client that looks like Google's.
                assert_eq!(resolve(method, &format!("{prefix}{path}"), google), plain);
            }
            assert!(matches!(
                post(&format!("{prefix}/nothing")),
                Err(RouteError {
                    surface: Surface::OpenAi,
                    ..
                })
            ));
        }
        // Google's native actions are not under an OpenAI prefix.
        assert!(matches!(
            post("/openai/v1/models/gemini-2.5-flash:generateContent"),
            Err(RouteError {
                surface: Surface::OpenAi,
                error: GatewayError::RouteNotFound(_),
                ..
            })
        ));
        assert!(post("/v1/models/gemini-2.5-flash:generateContent").is_ok());
        // Nor are Anthropic's Messages, with any method: the prefix still answers as OpenAI.
        for path in ["/hf/v1/messages", "/openai/v1/messages/count_tokens"] {
            for result in [post(path), get(path)] {
                assert!(
                    matches!(
                        result,
                        Err(RouteError {
                            surface: Surface::OpenAi,
                            error: GatewayError::RouteNotFound(_),
                            allow: None,
                        })
                    ),
                    "{path}"
                );
            }
        }
        // Only a whole segment is a prefix.
        assert!(post("/openaiv1/chat/completions").is_err());
        assert!(post("/hf/v2/chat/completions").is_err());
    }

    #[test]
    fn native_routes_resolve_under_every_prefix() {
        for prefix in ["/v1beta", "/v1", "/gemini/v1beta"] {
            assert_eq!(
                post(&format!(
                    "{prefix}/models/gemini-2.5-pro:streamGenerateContent"
                )),
                Ok(Route::Gemini(GeminiRoute::Action {
                    model: "gemini-2.5-pro".into(),
                    action: NativeAction::StreamGenerateContent
                })),
                "{prefix}"
            );
        }
        assert_eq!(
            get("/v1beta/models"),
            Ok(Route::Gemini(GeminiRoute::ListModels))
        );
        assert_eq!(
            get("/gemini/v1beta/models/gemini-2.5-pro"),
            Ok(Route::Gemini(GeminiRoute::GetModel(
                "gemini-2.5-pro".into()
            )))
        );
    }

    #[test]
    fn google_clients_get_native_models_under_v1() {
        let hints = Hints {
            google_client: true,
        };
        assert_eq!(
            resolve("GET", "/v1/models", hints),
            Ok(Route::Gemini(GeminiRoute::ListModels))
        );
        assert_eq!(
            resolve("GET", "/v1/models/gemini-2.5-pro", hints),
            Ok(Route::Gemini(GeminiRoute::GetModel(
                "gemini-2.5-pro".into()
            )))
        );
    }

    #[test]
    fn wrong_method_is_405_with_allow() {
        let err = get("/v1/chat/completions").unwrap_err();
        assert_eq!(err.error.status(), 405);
        assert_eq!(err.allow.as_deref(), Some("POST"));
        assert_eq!(err.surface, Surface::OpenAi);
        let err = get("/v1beta/models/gemini-2.5-pro:generateContent").unwrap_err();
        assert_eq!(err.surface, Surface::Gemini);
        let err = resolve("PUT", "/admin/api/keys", Hints::default()).unwrap_err();
        assert_eq!(err.allow.as_deref(), Some("GET, POST, DELETE"));
        assert_eq!(err.surface, Surface::Admin);
        let err = post("/v1/models").unwrap_err();
        assert_eq!(err.allow.as_deref(), Some("GET, HEAD"));
    }

    #[test]
    fn unknown_routes_are_404_in_the_path_surface() {
        let err = get("/v1/nope").unwrap_err();
        assert_eq!((err.error.status(), err.surface), (404, Surface::OpenAi));
        let err = get("/v1beta/tunedModels").unwrap_err();
        assert_eq!((err.error.status(), err.surface), (404, Surface::Gemini));
        let err = post("/v1beta/models/gemini-2.5-pro:explode").unwrap_err();
        assert_eq!((err.error.status(), err.surface), (404, Surface::Gemini));
        let err = get("/admin/api/unknown").unwrap_err();
        assert_eq!((err.error.status(), err.surface), (404, Surface::Admin));
    }

    #[test]
    fn path_tricks_in_model_ids_are_rejected() {
        for path in [
            "/v1beta/models/..%2Fadmin:generateContent",
            "/v1beta/models/%2e%2e:generateContent",
            "/v1beta/models/a..b:generateContent",
            "/v1beta/models/a/b/c/d:generateContent",
            "/v1beta/models/a/-x:generateContent",
            "/v1beta/models/a%2Fb/c:generateContent",
            "/v1beta/models/fake-stream/gemini-2.5-pro",
            "/v1beta/models/:generateContent",
            "/v1beta/models/-x:generateContent",
            "/v1beta/models/x%00:generateContent",
        ] {
            let err = post(path).unwrap_err();
            assert!(
                matches!(err.error.status(), 400 | 404),
                "{path}: {:?}",
                err.error
            );
            assert_eq!(err.surface, Surface::Gemini, "{path}");
        }
        let long = format!("/v1beta/models/{}:generateContent", "a".repeat(300));
        assert_eq!(post(&long).unwrap_err().error.status(), 400);
    }

    #[test]
    fn a_native_action_may_carry_mode_prefixes_for_its_handler_to_strip() {
        for (path, model) in [
            (
                "/v1beta/models/fake-stream/gemini-2.5-pro:streamGenerateContent",
                "fake-stream/gemini-2.5-pro",
            ),
            (
                "/v1beta/models/anti-trunc/fake-stream/gemini-2.5-pro:generateContent",
                "anti-trunc/fake-stream/gemini-2.5-pro",
            ),
        ] {
            let Ok(Route::Gemini(GeminiRoute::Action { model: got, .. })) =
                resolve("POST", path, Hints::default())
            else {
                panic!("{path} did not route to a model action");
            };
            assert_eq!(got, model);
        }
    }

    #[test]
    fn admin_ids_are_plain_segments() {
        assert_eq!(
            resolve("DELETE", "/admin/api/keys/abc123", Hints::default()),
            Ok(Route::Admin(AdminRoute::DeleteKey("abc123".into())))
        );
        assert_eq!(
            post("/admin/api/users/u_abc/rotate"),
            Ok(Route::Admin(AdminRoute::RotateUser("u_abc".into())))
        );
        for path in [
            "/admin/api/keys/../settings",
            "/admin/api/keys/a%2Fb",
            "/admin/api/keys/",
            "/admin/api/users/u_abc/rotate/again",
        ] {
            assert!(get(path).is_err(), "{path}");
        }
        assert_eq!(get("/admin/").map(|r| r.surface()), Ok(Surface::Admin));
    }

    /// Walks every path under `/admin/api/` that resolves, with every method
    /// it allows: each one must demand the admin password.
    #[test]
    fn every_admin_api_route_requires_the_admin_password() {
        let samples = [
            "/admin/api/keys",
            "/admin/api/keys/abc123",
            "/admin/api/keys/test",
            "/admin/api/settings",
            "/admin/api/settings/defaults",
            "/admin/api/users",
            "/admin/api/users/u_abc123",
            "/admin/api/users/u_abc123/rotate",
            "/admin/api/models",
            "/admin/api/models/gemini-2.5-flash",
            "/admin/api/stats",
            "/admin/api/logs",
            "/admin/api/jobs",
            "/admin/api/errors",
            "/admin/api/keys/archive",
            "/admin/api/keys/archive/restore",
            "/admin/api/keys/archive/purge",
            "/metrics",
            "/admin/api/secrets",
        ];
        let methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"];
        let mut checked = 0;
        for path in samples {
            for method in methods {
                if let Ok(route) = resolve(method, path, Hints::default()) {
                    assert_eq!(route.access(), Access::Admin, "{method} {path}");
                    assert!(matches!(route, Route::Admin(_)), "{method} {path}");
                    checked += 1;
                }
            }
        }
        assert_eq!(checked, 29, "every admin route and method was walked");
        // Anything else under /admin/api/ resolves to no route at all.
        assert!(resolve("GET", "/admin/api/unknown", Hints::default()).is_err());
    }

    #[test]
    fn only_health_the_pages_and_the_session_routes_are_public() {
        for (method, path) in [
            ("GET", "/health"),
            ("GET", "/healthz"),
            ("GET", "/admin/"),
            ("GET", "/usage"),
            ("POST", "/admin/api/login"),
            ("POST", "/admin/api/logout"),
            ("GET", "/admin/api/session"),
            ("GET", "/v1/images/files/0123456789abcdef0123456789abcdef"),
        ] {
            let route = resolve(method, path, Hints::default()).unwrap();
            assert_eq!(route.access(), Access::Public, "{path}");
            if path.starts_with("/admin/api/") {
                assert_eq!(route.surface(), Surface::Admin, "{path}");
            }
        }
        for (method, path) in [
            ("POST", "/v1/chat/completions"),
            ("GET", "/v1/models"),
            ("POST", "/v1beta/models/gemini-2.5-flash:generateContent"),
            ("GET", "/v1/usage"),
            ("GET", "/v1/dashboard/billing/subscription"),
            ("GET", "/v1/dashboard/billing/usage"),
            ("POST", "/v1/images/generations"),
            ("POST", "/v1/audio/speech"),
            ("POST", "/openai/v1/images/generations"),
            ("POST", "/hf/v1/audio/speech"),
        ] {
            let route = resolve(method, path, Hints::default()).unwrap();
            assert_eq!(route.access(), Access::Client, "{path}");
            if !path.starts_with("/v1beta") {
                assert_eq!(route.surface(), Surface::OpenAi, "{path}");
            }
        }
        // Image links are public only for a well-formed id.
        for path in [
            "/v1/images/files/x",
            "/v1/images/files/../admin",
            "/v1/images/files/",
        ] {
            assert!(get(path).is_err(), "{path}");
        }
    }
}
