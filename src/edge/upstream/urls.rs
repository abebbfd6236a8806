//! Every upstream URL the gateway calls is built here, from the configured
//! base and parts that were validated before they arrived (model ids pass
//! `check_model_id`, file and cache names their own checks). Query values are
//! encoded by `domain::urlencode`, whatever they hold. No URL parser runs
//! (it was a visible share of a small request's CPU).

use crate::domain::error::GatewayError;
use crate::domain::urlencode::{base_problem, form};

/// The Gemini API version a call goes to. The native surface keeps the
/// client's (`/v1/...` stays `v1`); translated calls use `v1beta`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V1,
    V1Beta,
}

impl Version {
    fn as_str(self) -> &'static str {
        match self {
            Self::V1 => "v1",
            Self::V1Beta => "v1beta",
        }
    }
}

fn build<'a>(
    base: &str,
    path: &str,
    query: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<String, GatewayError> {
    if let Some(why) = base_problem(base) {
        return Err(GatewayError::Internal(format!(
            "upstream base URL {base}: {why}"
        )));
    }
    let query = form(query);
    Ok(if query.is_empty() {
        format!("{base}{path}")
    } else {
        format!("{base}{path}?{query}")
    })
}

/// `GET {base}/{version}/models?…`.
pub fn models<'a>(
    base: &str,
    version: Version,
    query: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<String, GatewayError> {
    build(base, &format!("/{}/models", version.as_str()), query)
}

/// `GET {base}/{version}/models/{model}`.
pub fn model(base: &str, version: Version, model: &str) -> Result<String, GatewayError> {
    build(base, &format!("/{}/models/{model}", version.as_str()), [])
}

/// `POST {base}/{version}/models/{model}:{action}?…`.
pub fn action<'a>(
    base: &str,
    version: Version,
    model: &str,
    action: &str,
    query: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<String, GatewayError> {
    build(
        base,
        &format!("/{}/models/{model}:{action}", version.as_str()),
        query,
    )
}

/// `{base}/v1beta/{name}?…` for a Files API file or a context cache
/// (`name` is `files/{id}` or `cachedContents/{id}` with a checked id), or the
/// collection itself.
pub fn resource<'a>(
    base: &str,
    name: &str,
    query: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<String, GatewayError> {
    build(base, &format!("/v1beta/{name}"), query)
}

/// `POST {base}/upload/v1beta/files?…`: a resumable upload's start.
pub fn upload<'a>(
    base: &str,
    query: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<String, GatewayError> {
    build(base, "/upload/v1beta/files", query)
}
