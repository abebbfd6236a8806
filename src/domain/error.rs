//! The one error enum of the gateway. Every variant picks its HTTP status in an
//! exhaustive `match`, so a new variant cannot slip through as a 500 by accident.
//! Rendering into a surface's own error shape happens at the edge.

use std::fmt;

/// An error the gateway returns to a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GatewayError {
    /// The request is malformed or semantically invalid (400).
    InvalidRequest {
        message: String,
        /// The offending field, in the surface's own naming (e.g. `messages[0].role`).
        param: Option<String>,
    },
    /// No client token, or an unknown one (401).
    Unauthorized(String),
    /// Authenticated, but the request may not do this, e.g. a console state change without
    /// its CSRF token or from another origin (403).
    Forbidden(String),
    /// No such route (404).
    RouteNotFound(String),
    /// The model does not exist upstream or is not served (404).
    ModelNotFound(String),
    /// A stored object (a response) that does not exist for this caller (404).
    NotFound(String),
    /// The route exists but not for this method (405).
    MethodNotAllowed(String),
    /// The request body exceeds the cap (413).
    PayloadTooLarge { limit_bytes: u64 },
    /// Every usable key is cooling down, or the client is over a limit (429).
    RateLimited {
        message: String,
        /// Seconds until the earliest key is usable again.
        retry_after_secs: Option<u64>,
    },
    /// An upstream answer that is the client's fault, passed on with its status.
    Upstream {
        status: u16,
        message: String,
        /// Google's canonical status string, e.g. `INVALID_ARGUMENT`.
        google_status: Option<String>,
    },
    /// Every attempt failed with a server or network error (502).
    BadGateway(String),
    /// The upstream did not answer in time (504).
    UpstreamTimeout(String),
    /// No upstream key is configured at all (503).
    NoKeysConfigured,
    /// A user key's admission was refused: 401 (unknown, rotated or deleted key), 403
    /// (disabled, expired, model not allowed, `insufficient_quota`) or 429 (a rate or
    /// concurrency limit), with `OpenAI`'s machine-readable `code`.
    Denied {
        status: u16,
        code: &'static str,
        message: String,
        retry_after_secs: Option<u64>,
    },
    /// A bug or a broken binding. The message is logged, never sent to the client.
    Internal(String),
}

impl GatewayError {
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::InvalidRequest {
            message: message.into(),
            param: None,
        }
    }

    pub fn invalid_param(message: impl Into<String>, param: impl Into<String>) -> Self {
        Self::InvalidRequest {
            message: message.into(),
            param: Some(param.into()),
        }
    }

    /// The HTTP status. Exhaustive on purpose: no `_` arm.
    pub fn status(&self) -> u16 {
        match self {
            Self::InvalidRequest { .. } => 400,
            Self::Unauthorized(_) => 401,
            Self::Forbidden(_) => 403,
            Self::RouteNotFound(_) | Self::ModelNotFound(_) | Self::NotFound(_) => 404,
            Self::MethodNotAllowed(_) => 405,
            Self::PayloadTooLarge { .. } => 413,
            Self::RateLimited { .. } => 429,
            Self::Upstream { status, .. } | Self::Denied { status, .. } => *status,
            Self::BadGateway(_) => 502,
            Self::NoKeysConfigured => 503,
            Self::UpstreamTimeout(_) => 504,
            Self::Internal(_) => 500,
        }
    }

    /// The message shown to clients. Internal details stay in the log.
    pub fn client_message(&self) -> String {
        match self {
            Self::InvalidRequest { message, .. }
            | Self::Unauthorized(message)
            | Self::Forbidden(message)
            | Self::RouteNotFound(message)
            | Self::NotFound(message)
            | Self::MethodNotAllowed(message)
            | Self::RateLimited { message, .. }
            | Self::Upstream { message, .. }
            | Self::BadGateway(message)
            | Self::Denied { message, .. }
            | Self::UpstreamTimeout(message) => message.clone(),
            Self::ModelNotFound(model) => {
                format!("The model `{model}` does not exist or you do not have access to it.")
            }
            Self::PayloadTooLarge { limit_bytes } => {
                format!("Request body exceeds the limit of {limit_bytes} bytes.")
            }
            Self::NoKeysConfigured => "No upstream API key is configured.".to_owned(),
            Self::Internal(_) => "Internal server error.".to_owned(),
        }
    }

    /// The `error.type` of an `OpenAI` error.
    pub fn openai_type(&self) -> &'static str {
        match self {
            Self::InvalidRequest { .. }
            | Self::RouteNotFound(_)
            | Self::ModelNotFound(_)
            | Self::NotFound(_)
            | Self::MethodNotAllowed(_)
            | Self::PayloadTooLarge { .. } => "invalid_request_error",
            Self::Unauthorized(_) => "authentication_error",
            Self::Forbidden(_) => "permission_error",
            Self::RateLimited { .. } => "rate_limit_error",
            Self::Upstream { status, .. } => match status {
                401 => "authentication_error",
                403 => "permission_error",
                429 => "rate_limit_error",
                s if *s >= 500 => "api_error",
                _ => "invalid_request_error",
            },
            Self::Denied { code, status, .. } => match (*code, *status) {
                ("insufficient_quota", _) => "insufficient_quota",
                (_, 401) => "authentication_error",
                (_, 429) => "rate_limit_error",
                _ => "permission_error",
            },
            Self::BadGateway(_)
            | Self::UpstreamTimeout(_)
            | Self::NoKeysConfigured
            | Self::Internal(_) => "api_error",
        }
    }

    /// The `error.code` of an `OpenAI` error.
    pub fn openai_code(&self) -> Option<&'static str> {
        match self {
            Self::InvalidRequest { .. } | Self::Upstream { .. } | Self::NotFound(_) => None,
            Self::Forbidden(_) => Some("forbidden"),
            Self::Unauthorized(_) => Some("invalid_api_key"),
            Self::RouteNotFound(_) => Some("unknown_url"),
            Self::ModelNotFound(_) => Some("model_not_found"),
            Self::MethodNotAllowed(_) => Some("method_not_allowed"),
            Self::PayloadTooLarge { .. } => Some("request_too_large"),
            Self::RateLimited { .. } => Some("rate_limit_exceeded"),
            Self::BadGateway(_) => Some("upstream_error"),
            Self::UpstreamTimeout(_) => Some("upstream_timeout"),
            Self::NoKeysConfigured => Some("no_upstream_keys"),
            Self::Denied { code, .. } => Some(code),
            Self::Internal(_) => Some("internal_error"),
        }
    }

    /// The `param` of an `OpenAI` error.
    pub fn openai_param(&self) -> Option<&str> {
        match self {
            Self::InvalidRequest { param, .. } => param.as_deref(),
            Self::ModelNotFound(_) => Some("model"),
            _ => None,
        }
    }

    /// Google's canonical `error.status` for the Gemini surface.
    pub fn google_status(&self) -> &str {
        match self {
            Self::InvalidRequest { .. } | Self::PayloadTooLarge { .. } => "INVALID_ARGUMENT",
            Self::Unauthorized(_) => "UNAUTHENTICATED",
            Self::Forbidden(_) => "PERMISSION_DENIED",
            Self::RouteNotFound(_) | Self::ModelNotFound(_) | Self::NotFound(_) => "NOT_FOUND",
            Self::MethodNotAllowed(_) => "UNIMPLEMENTED",
            Self::RateLimited { .. } => "RESOURCE_EXHAUSTED",
            Self::Upstream {
                google_status,
                status,
                ..
            } => google_status.as_deref().unwrap_or(match status {
                400 => "INVALID_ARGUMENT",
                401 => "UNAUTHENTICATED",
                403 => "PERMISSION_DENIED",
                404 => "NOT_FOUND",
                429 => "RESOURCE_EXHAUSTED",
                _ => "UNKNOWN",
            }),
            Self::BadGateway(_) | Self::NoKeysConfigured => "UNAVAILABLE",
            Self::UpstreamTimeout(_) => "DEADLINE_EXCEEDED",
            Self::Denied { status, .. } => match status {
                401 => "UNAUTHENTICATED",
                429 => "RESOURCE_EXHAUSTED",
                _ => "PERMISSION_DENIED",
            },
            Self::Internal(_) => "INTERNAL",
        }
    }

    /// Seconds for a `Retry-After` header, when one applies.
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            Self::RateLimited {
                retry_after_secs, ..
            }
            | Self::Denied {
                retry_after_secs, ..
            } => *retry_after_secs,
            _ => None,
        }
    }
}

impl fmt::Display for GatewayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Internal(detail) => write!(f, "internal: {detail}"),
            other => write!(f, "{} {}", other.status(), other.client_message()),
        }
    }
}

impl std::error::Error for GatewayError {}
