//! `generationConfig`: sampling validation, the translated `OpenAI` parameters, stop sequences,
//! `response_format` (schemas in the model's dialect), and top-level Gemini keys passed
//! through.

use serde_json::{Map, Value, json};

use super::request::{KNOWN_UNMAPPED, SchemaDialect};
use super::{MAX_CANDIDATES, MAX_STOP_SEQUENCES};
use crate::domain::error::GatewayError;
use crate::domain::gemini;
use crate::domain::openai::{ChatCompletionRequest, ResponseFormat, Stop};
use crate::domain::translate::order::KeyOrders;
use crate::domain::translate::schema;

/// Unknown top-level fields that name a Gemini `generationConfig` key (in either spelling) are
/// set there, unless a translated `OpenAI` parameter already set that key: the `OpenAI` name
/// wins. Everything else is returned for a debug log.
pub(super) fn pass_through_generation_config(
    config: &mut gemini::GenerationConfig,
    extra: &Map<String, Value>,
) -> Result<Vec<String>, GatewayError> {
    let mut ignored = Vec::new();
    let mut passed = Vec::new();
    for (name, value) in extra {
        let camel = snake_to_camel(name);
        if GENERATION_CONFIG_KEYS.contains(&camel.as_str()) {
            if !value.is_null() {
                passed.push((camel, value));
            }
        } else if !matches!(
            name.as_str(),
            "extra_body"
                | "google"
                | "parallel_tool_calls"
                | "web_search_options"
                | "safety_settings"
                | "safetySettings"
        ) && !KNOWN_UNMAPPED.contains(&name.as_str())
        {
            ignored.push(name.clone());
        }
    }
    // Most requests pass nothing through; only then is the config rebuilt.
    if passed.is_empty() {
        return Ok(ignored);
    }
    let mut set = to_object(config);
    for (camel, value) in passed {
        set.entry(camel).or_insert_with(|| value.clone());
    }
    *config = serde_json::from_value(Value::Object(set)).map_err(|e| {
        GatewayError::invalid(format!(
            "a generationConfig field passed at the top level is invalid: {e}"
        ))
    })?;
    Ok(ignored)
}

/// Gemini's `generationConfig` keys, camelCase.
const GENERATION_CONFIG_KEYS: &[&str] = &[
    "stopSequences",
    "responseMimeType",
    "responseSchema",
    "responseJsonSchema",
    "responseModalities",
    "candidateCount",
    "maxOutputTokens",
    "temperature",
    "topP",
    "topK",
    "seed",
    "presencePenalty",
    "frequencyPenalty",
    "responseLogprobs",
    "logprobs",
    "enableEnhancedCivicAnswers",
    "speechConfig",
    "thinkingConfig",
    "imageConfig",
    "mediaResolution",
];

fn snake_to_camel(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = false;
    for c in name.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

fn to_object<T: serde::Serialize>(value: &T) -> Map<String, Value> {
    match serde_json::to_value(value) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    }
}

pub(super) fn validate_sampling(req: &ChatCompletionRequest) -> Result<(), GatewayError> {
    in_range("temperature", req.temperature, 0.0, 2.0)?;
    in_range("top_p", req.top_p, 0.0, 1.0)?;
    in_range("presence_penalty", req.presence_penalty, -2.0, 2.0)?;
    in_range("frequency_penalty", req.frequency_penalty, -2.0, 2.0)?;
    if let Some(n) = req.n
        && !(1..=MAX_CANDIDATES).contains(&n)
    {
        return Err(GatewayError::invalid_param(
            format!("n must be between 1 and {MAX_CANDIDATES} (Gemini's candidate limit), got {n}"),
            "n",
        ));
    }
    for (name, value) in [
        ("max_tokens", req.max_tokens),
        ("max_completion_tokens", req.max_completion_tokens),
    ] {
        if value == Some(0) {
            return Err(GatewayError::invalid_param(
                format!("{name} must be at least 1"),
                name,
            ));
        }
    }
    if let Some(n) = req.top_logprobs.filter(|n| *n > 0) {
        if n > MAX_TOP_LOGPROBS {
            return Err(GatewayError::invalid_param(
                format!("top_logprobs must be between 0 and {MAX_TOP_LOGPROBS}, got {n}"),
                "top_logprobs",
            ));
        }
        if req.logprobs != Some(true) {
            return Err(GatewayError::invalid_param(
                "top_logprobs requires logprobs to be true",
                "top_logprobs",
            ));
        }
    }
    Ok(())
}

/// `OpenAI`'s and Gemini's limit on alternatives per token.
const MAX_TOP_LOGPROBS: u32 = 20;

fn in_range(name: &str, value: Option<f64>, min: f64, max: f64) -> Result<(), GatewayError> {
    match value {
        Some(v) if !(min..=max).contains(&v) => Err(GatewayError::invalid_param(
            format!("{name} must be between {min} and {max}, got {v}"),
            name,
        )),
        _ => Ok(()),
    }
}

pub(super) fn generation_config(
    req: &ChatCompletionRequest,
    thinking_config: Option<gemini::ThinkingConfig>,
) -> Result<gemini::GenerationConfig, GatewayError> {
    let seed = req
        .seed
        .map(|seed| {
            i32::try_from(seed).map_err(|_| {
                GatewayError::invalid_param(
                    format!("seed must fit in a signed 32-bit integer (Gemini's seed), got {seed}"),
                    "seed",
                )
            })
        })
        .transpose()?;
    let logprobs = req.logprobs == Some(true);
    Ok(gemini::GenerationConfig {
        stop_sequences: stop_sequences(req.stop.as_ref())?,
        candidate_count: req.n,
        // Both set: `max_completion_tokens` is the current name and wins.
        max_output_tokens: req.max_completion_tokens.or(req.max_tokens),
        temperature: req.temperature,
        top_p: req.top_p,
        seed,
        presence_penalty: req.presence_penalty,
        frequency_penalty: req.frequency_penalty,
        response_logprobs: logprobs.then_some(true),
        logprobs: req.top_logprobs.filter(|n| logprobs && *n > 0),
        thinking_config,
        ..gemini::GenerationConfig::default()
    })
}

fn stop_sequences(stop: Option<&Stop>) -> Result<Vec<String>, GatewayError> {
    let sequences = stop.cloned().map(Stop::into_vec).unwrap_or_default();
    if sequences.len() > MAX_STOP_SEQUENCES {
        return Err(GatewayError::invalid_param(
            format!(
                "stop accepts at most {MAX_STOP_SEQUENCES} sequences, got {}",
                sequences.len()
            ),
            "stop",
        ));
    }
    Ok(sequences)
}

/// `text` → `text/plain`, `json_object` → JSON, `json_schema` → `responseJsonSchema` (or the
/// sanitized `responseSchema` on models before 2.5); a schema that is only a string enum uses
/// Gemini's `text/x.enum`. Returns whether the answer must be re-encoded as a JSON string.
pub(super) fn apply_response_format(
    config: &mut gemini::GenerationConfig,
    format: Option<&ResponseFormat>,
    dialect: SchemaDialect,
    orders: &KeyOrders,
) -> Result<bool, GatewayError> {
    const JSON: &str = "application/json";
    let param = "response_format.json_schema.schema";
    let schema = match format {
        None => return Ok(false),
        Some(ResponseFormat::Text) => {
            config.response_mime_type = Some("text/plain".to_owned());
            return Ok(false);
        }
        Some(ResponseFormat::JsonObject) => {
            config.response_mime_type = Some(JSON.to_owned());
            return Ok(false);
        }
        Some(ResponseFormat::JsonSchema { json_schema }) => json_schema.schema.as_ref(),
    };
    let Some(schema) = schema else {
        config.response_mime_type = Some(JSON.to_owned());
        return Ok(false);
    };
    let invalid = |why: String| GatewayError::invalid_param(format!("{param}: {why}"), param);
    if let Some(values) = schema::enum_only(schema) {
        config.response_mime_type = Some("text/x.enum".to_owned());
        config.response_schema = Some(json!({ "type": "STRING", "enum": values }));
        return Ok(true);
    }
    config.response_mime_type = Some(JSON.to_owned());
    match dialect {
        SchemaDialect::JsonSchema => {
            // Written in the client's key order: Gemini answers in the schema's order.
            let schema = schema::to_json_schema(schema).map_err(invalid)?;
            config.response_json_schema =
                Some(gemini::SchemaJson::Ordered(orders.to_json(&schema)));
        }
        SchemaDialect::OpenApi => {
            config.response_schema = Some(schema::to_openapi(schema).map_err(invalid)?);
        }
    }
    Ok(false)
}
