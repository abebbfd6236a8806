//! [`prepare_chat`]: validates a parsed request and assembles the Gemini request from the
//! pieces built in the sibling modules. Also which schema dialect a model takes, and the
//! request's extension fields (`extra_body.google`, `parallel_tool_calls`,
//! `web_search_options`).

use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::generation::{
    apply_response_format, generation_config, pass_through_generation_config, validate_sampling,
};
use super::messages::Conversation;
use super::tools::tool_settings;
use super::{ChatOptions, PreparedChat, ReplyPlan};
use crate::domain::error::GatewayError;
use crate::domain::gemini::{self, ModelName};
use crate::domain::openai::ChatCompletionRequest;
use crate::domain::translate::field_error;
use crate::domain::translate::names::NameMap;
use crate::domain::translate::thinking::{
    self, ClientThinkingConfig, Family, ModelVariant, ThinkingRequest,
};

/// Validates a parsed request and translates it into a Gemini request.
///
/// Parameters without a Gemini equivalent (`user`, a message's `name`, `metadata`, …) are
/// ignored, and unknown ones are listed in [`PreparedChat::ignored`]; unknown top-level fields
/// that are Gemini `generationConfig` keys (`top_k`, `response_modalities`, …) are passed
/// through. A conversation that opens with an assistant turn is sent as is: Gemini accepts a
/// model-first history.
pub fn prepare_chat(
    mut req: ChatCompletionRequest,
    options: &ChatOptions<'_>,
) -> Result<PreparedChat, GatewayError> {
    let variant = ModelVariant::parse(&req.model);
    let model = ModelName::parse(&variant.base)?;
    validate_sampling(&req)?;
    let extra = std::mem::take(&mut req.extra);
    let extensions = Extensions::read(&extra)?;
    let dialect = SchemaDialect::for_model(model.as_str());

    let thinking = thinking::plan(
        model.as_str(),
        &ThinkingRequest {
            effort: req.reasoning_effort,
            suffix: variant.thinking,
            explicit: extensions.google.thinking_config.as_ref(),
            model_default: options
                .catalog
                .and_then(|c| c.thinking_default(model.as_str())),
            include_thoughts_default: options.include_thoughts,
        },
    );
    let mut reply = ReplyPlan {
        names: NameMap::from_client_names(req.tools.iter().map(|t| t.function.name.as_str())),
        single_tool_call: extensions.parallel_tool_calls == Some(false),
        ..ReplyPlan::default()
    };
    let mut config = generation_config(&req, thinking.config)?;
    let ignored = pass_through_generation_config(&mut config, &extra)?;
    reply.enum_as_json = apply_response_format(
        &mut config,
        req.response_format.as_ref(),
        dialect,
        &req.key_orders,
    )?;
    let generation_config = (config != gemini::GenerationConfig::default()).then_some(config);

    let (mut tools, tool_config) = tool_settings(&req.tools, req.tool_choice.as_ref(), dialect)?;
    if variant.search || extensions.web_search {
        tools.push(gemini::Tool {
            google_search: Some(json!({})),
            ..gemini::Tool::default()
        });
    }
    let stream = req.stream.unwrap_or(false);
    let include_usage = stream
        && req
            .stream_options
            .as_ref()
            .and_then(|o| o.include_usage)
            .unwrap_or(false);
    let (system_instruction, contents, remote_media) = Conversation::build(req.messages, &model)?;
    let google = extensions.google;
    Ok(PreparedChat {
        upstream_model: model.as_str().to_owned(),
        body: gemini::GenerateContentRequest {
            contents,
            system_instruction,
            tools,
            tool_config,
            generation_config,
            safety_settings: google.safety_settings.unwrap_or_default(),
            cached_content: google.cached_content,
            ..gemini::GenerateContentRequest::default()
        },
        stream,
        include_usage,
        reply,
        adjustments: thinking
            .adjustments
            .iter()
            .map(ToString::to_string)
            .collect(),
        ignored: ignored.into_iter().chain(extensions.ignored).collect(),
        remote_media,
    })
}

/// Which schema dialect a model takes: full JSON Schema (`parametersJsonSchema`,
/// `responseJsonSchema`) from Gemini 2.5 on, Gemini's `OpenAPI` subset before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SchemaDialect {
    JsonSchema,
    OpenApi,
}

impl SchemaDialect {
    fn for_model(model: &str) -> Self {
        // The models that think are exactly those that take JSON Schema.
        if thinking::family(model) == Family::None {
            Self::OpenApi
        } else {
            Self::JsonSchema
        }
    }
}

/// The request's extension fields: `extra_body.google` (or `google` at the top level, as some
/// clients flatten it), `parallel_tool_calls` and `web_search_options`.
#[derive(Debug, Default)]
struct Extensions {
    google: GoogleExtension,
    parallel_tool_calls: Option<bool>,
    web_search: bool,
    ignored: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
struct GoogleExtension {
    #[serde(default, alias = "thinkingConfig")]
    thinking_config: Option<ClientThinkingConfig>,
    #[serde(default, alias = "safetySettings")]
    safety_settings: Option<Vec<gemini::SafetySetting>>,
    #[serde(default, alias = "cachedContent")]
    cached_content: Option<String>,
    #[serde(flatten)]
    other: Map<String, Value>,
}

/// Top-level `OpenAI` parameters with no Gemini counterpart, ignored without comment.
pub(super) const KNOWN_UNMAPPED: &[&str] = &[
    "metadata",
    "store",
    "service_tier",
    "prediction",
    "modalities",
    "audio",
    "verbosity",
    "prompt_cache_key",
    "prompt_cache_retention",
    "safety_identifier",
    "logit_bias",
    "functions",
    "function_call",
];

impl Extensions {
    fn read(extra: &Map<String, Value>) -> Result<Self, GatewayError> {
        let mut ext = Self::default();
        let google = match (extra.get("extra_body"), extra.get("google")) {
            (Some(body), _) => body.get("google").map(|g| ("extra_body.google", g)),
            (None, Some(google)) => Some(("google", google)),
            (None, None) => None,
        };
        if let Some((path, google)) = google.filter(|(_, g)| !g.is_null()) {
            ext.google = GoogleExtension::deserialize(google).map_err(|e| field_error(path, &e))?;
            ext.ignored
                .extend(ext.google.other.keys().map(|k| format!("{path}.{k}")));
        }
        match extra.get("parallel_tool_calls") {
            None | Some(Value::Null) => {}
            Some(Value::Bool(b)) => ext.parallel_tool_calls = Some(*b),
            Some(_) => {
                return Err(GatewayError::invalid_param(
                    "parallel_tool_calls must be a boolean",
                    "parallel_tool_calls",
                ));
            }
        }
        ext.web_search = extra
            .get("web_search_options")
            .is_some_and(|v| !v.is_null());
        Ok(ext)
    }
}
