//! The gateway's errors in each surface's own shape: the one place either
//! error body is built. `OpenAI` (and the admin API) answer
//! `{"error": {"message", "type", "param", "code"}}`; the Gemini surface
//! answers Google's `{"error": {"code", "message", "status"}}`. The edge only
//! wraps these in a response; it never builds an error body itself.

use serde_json::Value;

use super::error::GatewayError;
use super::gemini::{ErrorBody, ErrorStatus};
use super::openai::{ErrorObject, ErrorResponse};
use super::route::Surface;

/// The `OpenAI` error envelope, also used for mid-stream error events.
pub fn openai_error(err: &GatewayError) -> ErrorResponse {
    ErrorResponse {
        error: ErrorObject {
            message: err.client_message(),
            kind: err.openai_type().to_owned(),
            param: err.openai_param().map(str::to_owned),
            code: err.openai_code().map(str::to_owned),
        },
    }
}

/// Google's error envelope.
pub fn gemini_error(err: &GatewayError) -> ErrorBody {
    ErrorBody {
        error: ErrorStatus {
            code: err.status(),
            message: err.client_message(),
            status: err.google_status().to_owned(),
            details: Vec::new(),
        },
    }
}

/// Anthropic's error envelope, `{"type": "error", "error": {"type", "message"}}`, with its
/// documented types.
pub fn anthropic_error(err: &GatewayError) -> Value {
    let kind = match err.status() {
        400 | 405 | 422 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        503 | 529 => "overloaded_error",
        _ => "api_error",
    };
    serde_json::json!({
        "type": "error",
        "error": {"type": kind, "message": err.client_message()},
    })
}

/// The error body a request on `surface` gets.
pub fn error_body(surface: Surface, err: &GatewayError) -> Value {
    let body = match surface {
        Surface::OpenAi | Surface::Admin => serde_json::to_value(openai_error(err)),
        Surface::Gemini => serde_json::to_value(gemini_error(err)),
        Surface::Anthropic => Ok(anthropic_error(err)),
    };
    // Both envelopes are plain structs of strings and numbers.
    body.unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// One sample of every variant, with what each surface must show:
    /// (error, status, `OpenAI` type, `OpenAI` code, Google status).
    #[expect(clippy::too_many_lines, reason = "a table: one row per variant")]
    fn every_variant() -> Vec<(
        GatewayError,
        u16,
        &'static str,
        Option<&'static str>,
        &'static str,
    )> {
        vec![
            (
                GatewayError::invalid_param("bad role", "messages[0].role"),
                400,
                "invalid_request_error",
                None,
                "INVALID_ARGUMENT",
            ),
            (
                GatewayError::Unauthorized("no key".into()),
                401,
                "authentication_error",
                Some("invalid_api_key"),
                "UNAUTHENTICATED",
            ),
            (
                GatewayError::Forbidden("no CSRF token".into()),
                403,
                "permission_error",
                Some("forbidden"),
                "PERMISSION_DENIED",
            ),
            (
                GatewayError::RouteNotFound("nope".into()),
                404,
                "invalid_request_error",
                Some("unknown_url"),
                "NOT_FOUND",
            ),
            (
                GatewayError::ModelNotFound("gemini-x".into()),
                404,
                "invalid_request_error",
                Some("model_not_found"),
                "NOT_FOUND",
            ),
            (
                GatewayError::MethodNotAllowed("GET".into()),
                405,
                "invalid_request_error",
                Some("method_not_allowed"),
                "UNIMPLEMENTED",
            ),
            (
                GatewayError::PayloadTooLarge { limit_bytes: 10 },
                413,
                "invalid_request_error",
                Some("request_too_large"),
                "INVALID_ARGUMENT",
            ),
            (
                GatewayError::RateLimited {
                    message: "slow down".into(),
                    retry_after_secs: Some(3),
                },
                429,
                "rate_limit_error",
                Some("rate_limit_exceeded"),
                "RESOURCE_EXHAUSTED",
            ),
            (
                GatewayError::Upstream {
                    status: 400,
                    message: "bad field".into(),
                    google_status: Some("INVALID_ARGUMENT".into()),
                },
                400,
                "invalid_request_error",
                None,
                "INVALID_ARGUMENT",
            ),
            (
                GatewayError::Upstream {
                    status: 403,
                    message: "no access".into(),
                    google_status: None,
                },
                403,
                "permission_error",
                None,
                "PERMISSION_DENIED",
            ),
            (
                GatewayError::Upstream {
                    status: 503,
                    message: "overloaded".into(),
                    google_status: Some("UNAVAILABLE".into()),
                },
                503,
                "api_error",
                None,
                "UNAVAILABLE",
            ),
            (
                GatewayError::NotFound("Response with id 'resp_x' not found.".into()),
                404,
                "invalid_request_error",
                None,
                "NOT_FOUND",
            ),
            (
                GatewayError::BadGateway("broken".into()),
                502,
                "api_error",
                Some("upstream_error"),
                "UNAVAILABLE",
            ),
            (
                GatewayError::UpstreamTimeout("slow".into()),
                504,
                "api_error",
                Some("upstream_timeout"),
                "DEADLINE_EXCEEDED",
            ),
            (
                GatewayError::NoKeysConfigured,
                503,
                "api_error",
                Some("no_upstream_keys"),
                "UNAVAILABLE",
            ),
            (
                GatewayError::Denied {
                    status: 403,
                    code: "insufficient_quota",
                    message: "spent".into(),
                    retry_after_secs: None,
                },
                403,
                "insufficient_quota",
                Some("insufficient_quota"),
                "PERMISSION_DENIED",
            ),
            (
                GatewayError::Denied {
                    status: 429,
                    code: "rate_limit_exceeded",
                    message: "rpm".into(),
                    retry_after_secs: Some(5),
                },
                429,
                "rate_limit_error",
                Some("rate_limit_exceeded"),
                "RESOURCE_EXHAUSTED",
            ),
            (
                GatewayError::Denied {
                    status: 401,
                    code: "invalid_api_key",
                    message: "rotated".into(),
                    retry_after_secs: None,
                },
                401,
                "authentication_error",
                Some("invalid_api_key"),
                "UNAUTHENTICATED",
            ),
            (
                GatewayError::Internal("db down".into()),
                500,
                "api_error",
                Some("internal_error"),
                "INTERNAL",
            ),
        ]
    }

    /// Fails to compile when a variant is added, so the table above must grow with it.
    fn covered(err: &GatewayError) {
        match err {
            GatewayError::InvalidRequest { .. }
            | GatewayError::Unauthorized(_)
            | GatewayError::Forbidden(_)
            | GatewayError::RouteNotFound(_)
            | GatewayError::ModelNotFound(_)
            | GatewayError::NotFound(_)
            | GatewayError::MethodNotAllowed(_)
            | GatewayError::PayloadTooLarge { .. }
            | GatewayError::RateLimited { .. }
            | GatewayError::Upstream { .. }
            | GatewayError::BadGateway(_)
            | GatewayError::UpstreamTimeout(_)
            | GatewayError::NoKeysConfigured
            | GatewayError::Denied { .. }
            | GatewayError::Internal(_) => {}
        }
    }

    #[test]
    fn every_variant_renders_in_every_surface() {
        for (err, status, kind, code, google) in every_variant() {
            covered(&err);
            assert_eq!(err.status(), status, "{err:?}");
            for surface in [Surface::OpenAi, Surface::Admin] {
                let body = error_body(surface, &err);
                let object = body["error"].as_object().unwrap();
                let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
                keys.sort_unstable();
                assert_eq!(keys, ["code", "message", "param", "type"], "{err:?}");
                assert_eq!(body["error"]["type"], kind, "{err:?}");
                assert_eq!(body["error"]["code"], json!(code), "{err:?}");
                assert_eq!(body["error"]["message"], err.client_message());
            }
            let body = error_body(Surface::Gemini, &err);
            assert_eq!(
                body,
                json!({"error": {"code": status, "message": err.client_message(), "status": google}}),
                "{err:?}"
            );
        }
        // Every variant is in the table (one sample each at least).
        let names: std::collections::BTreeSet<String> = every_variant()
            .iter()
            .map(|(e, ..)| {
                format!("{e:?}")
                    .split([' ', '(', '{'])
                    .next()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        assert_eq!(names.len(), 15, "{names:?}");
    }

    #[test]
    fn internal_details_never_reach_the_client() {
        let err = GatewayError::Internal("D1 binding DB: secret detail".into());
        for surface in [Surface::OpenAi, Surface::Gemini, Surface::Admin] {
            let text = error_body(surface, &err).to_string();
            assert!(!text.contains("secret detail"), "{text}");
        }
    }

    #[test]
    fn the_param_names_the_offending_field() {
        let err = GatewayError::invalid_param("bad role", "messages[0].role");
        assert_eq!(
            serde_json::to_value(openai_error(&err)).unwrap(),
            json!({"error": {"message": "bad role", "type": "invalid_request_error",
                             "param": "messages[0].role", "code": null}})
        );
    }
}
