//! The route table: which surface and handler a method + path belong to.
//! Pure string work, so path tricks are tested natively; the edge only
//! dispatches on the result.

use super::error::GatewayError;

/// Which error shape a request gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    OpenAi,
    Gemini,
    Admin,
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

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Health,
    ChatCompletions,
    Embeddings,
    ListModels,
    GetModel(String),
    NativeListModels,
    NativeGetModel(String),
    NativeModelAction {
        model: String,
        action: NativeAction,
    },
    AdminKeys,
    AdminKey(String),
    AdminSettings,
    AdminUsers,
    AdminUser(String),
    /// `POST /admin/api/users/{id}/rotate`.
    AdminUserRotate(String),
    /// The caller's own quota and usage (`/v1/usage`).
    Usage,
    /// `OpenAI`'s legacy billing endpoints that chat apps poll for a balance.
    BillingSubscription,
    BillingUsage,
    /// The admin page itself (static assets behind the worker).
    AdminPage,
    /// The self-service usage page (a static page; its data comes from `/v1/usage`).
    UsagePage,
}

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No credentials (health, and the admin page's static shell, whose data
    /// all comes from the admin API).
    Public,
    /// A client token.
    Client,
    /// `ADMIN_PASSWORD`.
    Admin,
}

impl Route {
    /// Who may call this route. Exhaustive, so a new route must choose.
    pub fn access(&self) -> Access {
        match self {
            Self::Health | Self::AdminPage | Self::UsagePage => Access::Public,
            Self::ChatCompletions
            | Self::Embeddings
            | Self::ListModels
            | Self::GetModel(_)
            | Self::NativeListModels
            | Self::NativeGetModel(_)
            | Self::NativeModelAction { .. }
            | Self::Usage
            | Self::BillingSubscription
            | Self::BillingUsage => Access::Client,
            Self::AdminKeys
            | Self::AdminKey(_)
            | Self::AdminSettings
            | Self::AdminUsers
            | Self::AdminUser(_)
            | Self::AdminUserRotate(_) => Access::Admin,
        }
    }

    pub fn surface(&self) -> Surface {
        match self {
            Self::Health
            | Self::ChatCompletions
            | Self::Embeddings
            | Self::ListModels
            | Self::GetModel(_)
            | Self::Usage
            | Self::UsagePage
            | Self::BillingSubscription
            | Self::BillingUsage => Surface::OpenAi,
            Self::NativeListModels | Self::NativeGetModel(_) | Self::NativeModelAction { .. } => {
                Surface::Gemini
            }
            Self::AdminKeys
            | Self::AdminKey(_)
            | Self::AdminSettings
            | Self::AdminUsers
            | Self::AdminUser(_)
            | Self::AdminUserRotate(_)
            | Self::AdminPage => Surface::Admin,
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
    pub allow: Option<&'static str>,
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

/// Resolves a method and a (not yet percent-decoded) path.
pub fn resolve(method: &str, path: &str, hints: Hints) -> Result<Route, RouteError> {
    let surface = surface_of(path, hints);
    let not_found = || RouteError {
        surface,
        error: GatewayError::RouteNotFound(format!("Unknown route: {method} {}", clip(path))),
        allow: None,
    };
    let route = match_path(path, hints).ok_or_else(not_found)??;
    let allow = allowed_methods(&route);
    if allow.split(", ").any(|m| m == method) {
        Ok(route)
    } else {
        Err(RouteError {
            surface: route.surface(),
            error: GatewayError::MethodNotAllowed(format!(
                "Method {method} is not allowed on {}; use {allow}.",
                clip(path)
            )),
            allow: Some(allow),
        })
    }
}

fn allowed_methods(route: &Route) -> &'static str {
    match route {
        Route::ChatCompletions
        | Route::Embeddings
        | Route::NativeModelAction { .. }
        | Route::AdminUserRotate(_) => "POST",
        Route::Health
        | Route::ListModels
        | Route::GetModel(_)
        | Route::NativeListModels
        | Route::NativeGetModel(_)
        | Route::AdminPage
        | Route::UsagePage
        | Route::Usage
        | Route::BillingSubscription
        | Route::BillingUsage => "GET, HEAD",
        Route::AdminKeys => "GET, POST, DELETE",
        Route::AdminKey(_) | Route::AdminUser(_) => "GET, PATCH, DELETE",
        Route::AdminSettings => "GET, PUT, PATCH",
        Route::AdminUsers => "GET, POST",
    }
}

/// The surface whose error shape a path gets, even when it matches nothing.
pub fn surface_of(path: &str, hints: Hints) -> Surface {
    if path.starts_with("/admin") {
        Surface::Admin
    } else if path.starts_with("/v1beta")
        || path.starts_with("/gemini/")
        || (path.starts_with("/v1/models") && (hints.google_client || path.contains(':')))
    {
        Surface::Gemini
    } else {
        Surface::OpenAi
    }
}

/// `None` = no route; `Some(Err)` = a route shape with an invalid model id.
fn match_path(path: &str, hints: Hints) -> Option<Result<Route, RouteError>> {
    let fixed = match path {
        "/health" | "/healthz" => Some(Route::Health),
        "/v1/chat/completions" | "/chat/completions" => Some(Route::ChatCompletions),
        "/v1/embeddings" | "/embeddings" => Some(Route::Embeddings),
        "/admin" | "/admin/" | "/admin/index.html" => Some(Route::AdminPage),
        "/admin/api/keys" => Some(Route::AdminKeys),
        "/admin/api/settings" => Some(Route::AdminSettings),
        "/admin/api/users" => Some(Route::AdminUsers),
        "/v1/usage" => Some(Route::Usage),
        "/usage" | "/usage/" => Some(Route::UsagePage),
        "/v1/dashboard/billing/subscription" | "/dashboard/billing/subscription" => {
            Some(Route::BillingSubscription)
        }
        "/v1/dashboard/billing/usage" | "/dashboard/billing/usage" => Some(Route::BillingUsage),
        _ => None,
    };
    if let Some(route) = fixed {
        return Some(Ok(route));
    }
    if let Some(id) = path.strip_prefix("/admin/api/keys/") {
        return valid_segment(id).then(|| Ok(Route::AdminKey(id.to_owned())));
    }
    if let Some(rest) = path.strip_prefix("/admin/api/users/") {
        if let Some(id) = rest.strip_suffix("/rotate") {
            return valid_segment(id).then(|| Ok(Route::AdminUserRotate(id.to_owned())));
        }
        return valid_segment(rest).then(|| Ok(Route::AdminUser(rest.to_owned())));
    }
    if path.starts_with("/admin/") && !path.starts_with("/admin/api/") {
        return Some(Ok(Route::AdminPage));
    }
    native_or_models(path, hints)
}

fn native_or_models(path: &str, hints: Hints) -> Option<Result<Route, RouteError>> {
    let (rest, openai_capable) = if let Some(rest) = path.strip_prefix("/gemini/v1beta/") {
        (rest, false)
    } else if let Some(rest) = path.strip_prefix("/v1beta/") {
        (rest, false)
    } else if let Some(rest) = path.strip_prefix("/v1/") {
        (rest, !hints.google_client)
    } else {
        return None;
    };
    if rest == "models" {
        return Some(Ok(if openai_capable {
            Route::ListModels
        } else {
            Route::NativeListModels
        }));
    }
    let tail = rest.strip_prefix("models/")?;
    let surface = if openai_capable && !tail.contains(':') {
        Surface::OpenAi
    } else {
        Surface::Gemini
    };
    let bad_model = |why: &str| RouteError {
        surface,
        error: GatewayError::invalid_param(format!("Invalid model name in path: {why}."), "model"),
        allow: None,
    };
    let (model, action) = match tail.split_once(':') {
        Some((model, action)) => (model, Some(action)),
        None => (tail, None),
    };
    if let Err(why) = check_model_id(model) {
        return Some(Err(bad_model(why)));
    }
    let model = model.to_owned();
    Some(Ok(match action {
        None if openai_capable => Route::GetModel(model),
        None => Route::NativeGetModel(model),
        Some(action) => {
            let action = NativeAction::parse(action)?;
            Route::NativeModelAction { model, action }
        }
    }))
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
    fn openai_routes_resolve() {
        assert_eq!(post("/v1/chat/completions"), Ok(Route::ChatCompletions));
        assert_eq!(post("/v1/embeddings"), Ok(Route::Embeddings));
        assert_eq!(get("/v1/models"), Ok(Route::ListModels));
        assert_eq!(
            get("/v1/models/gemini-2.5-flash"),
            Ok(Route::GetModel("gemini-2.5-flash".into()))
        );
    }

    #[test]
    fn native_routes_resolve_under_every_prefix() {
        for prefix in ["/v1beta", "/v1", "/gemini/v1beta"] {
            assert_eq!(
                post(&format!(
                    "{prefix}/models/gemini-2.5-pro:streamGenerateContent"
                )),
                Ok(Route::NativeModelAction {
                    model: "gemini-2.5-pro".into(),
                    action: NativeAction::StreamGenerateContent
                }),
                "{prefix}"
            );
        }
        assert_eq!(get("/v1beta/models"), Ok(Route::NativeListModels));
        assert_eq!(
            get("/gemini/v1beta/models/gemini-2.5-pro"),
            Ok(Route::NativeGetModel("gemini-2.5-pro".into()))
        );
    }

    #[test]
    fn google_clients_get_native_models_under_v1() {
        let hints = Hints {
            google_client: true,
        };
        assert_eq!(
            resolve("GET", "/v1/models", hints),
            Ok(Route::NativeListModels)
        );
        assert_eq!(
            resolve("GET", "/v1/models/gemini-2.5-pro", hints),
            Ok(Route::NativeGetModel("gemini-2.5-pro".into()))
        );
    }

    #[test]
    fn wrong_method_is_405_with_allow() {
        let err = get("/v1/chat/completions").unwrap_err();
        assert_eq!(err.error.status(), 405);
        assert_eq!(err.allow, Some("POST"));
        assert_eq!(err.surface, Surface::OpenAi);
        let err = get("/v1beta/models/gemini-2.5-pro:generateContent").unwrap_err();
        assert_eq!(err.surface, Surface::Gemini);
    }

    #[test]
    fn unknown_routes_are_404_in_the_path_surface() {
        let err = get("/v1/nope").unwrap_err();
        assert_eq!((err.error.status(), err.surface), (404, Surface::OpenAi));
        let err = get("/v1beta/tunedModels").unwrap_err();
        assert_eq!((err.error.status(), err.surface), (404, Surface::Gemini));
        let err = post("/v1beta/models/gemini-2.5-pro:explode").unwrap_err();
        assert_eq!((err.error.status(), err.surface), (404, Surface::Gemini));
    }

    #[test]
    fn path_tricks_in_model_ids_are_rejected() {
        for path in [
            "/v1beta/models/..%2Fadmin:generateContent",
            "/v1beta/models/%2e%2e:generateContent",
            "/v1beta/models/a..b:generateContent",
            "/v1beta/models/a/b:generateContent",
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
    fn admin_key_ids_are_plain_segments() {
        assert_eq!(
            resolve("DELETE", "/admin/api/keys/abc123", Hints::default()),
            Ok(Route::AdminKey("abc123".into()))
        );
        assert!(get("/admin/api/keys/../settings").is_err());
        assert_eq!(get("/admin/").map(|r| r.surface()), Ok(Surface::Admin));
    }

    /// Walks every path under `/admin/api/` that resolves, with every method
    /// it allows: each one must demand the admin password.
    #[test]
    fn every_admin_api_route_requires_the_admin_password() {
        let samples = [
            "/admin/api/keys",
            "/admin/api/keys/abc123",
            "/admin/api/settings",
            "/admin/api/users",
            "/admin/api/users/u_abc123",
            "/admin/api/users/u_abc123/rotate",
        ];
        let methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"];
        let mut checked = 0;
        for path in samples {
            for method in methods {
                if let Ok(route) = resolve(method, path, Hints::default()) {
                    assert_eq!(route.access(), Access::Admin, "{method} {path}");
                    checked += 1;
                }
            }
        }
        assert!(checked >= 15, "only {checked} admin routes were walked");
        // Anything else under /admin/api/ resolves to no route at all.
        assert!(resolve("GET", "/admin/api/unknown", Hints::default()).is_err());
    }

    #[test]
    fn only_health_and_the_admin_shell_are_public() {
        for (method, path) in [("GET", "/health"), ("GET", "/healthz"), ("GET", "/admin/")] {
            let route = resolve(method, path, Hints::default()).unwrap();
            assert_eq!(route.access(), Access::Public, "{path}");
        }
        for (method, path) in [
            ("POST", "/v1/chat/completions"),
            ("GET", "/v1/models"),
            ("POST", "/v1beta/models/gemini-2.5-flash:generateContent"),
            ("GET", "/v1/usage"),
            ("GET", "/v1/dashboard/billing/subscription"),
            ("GET", "/v1/dashboard/billing/usage"),
        ] {
            let route = resolve(method, path, Hints::default()).unwrap();
            assert_eq!(route.access(), Access::Client, "{path}");
        }
    }
}
