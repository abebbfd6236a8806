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
use crate::domain::compat::{Compat, SearchCitations};
use crate::domain::error::GatewayError;
use crate::domain::gemini::{self, ModelName};
use crate::domain::openai::ChatCompletionRequest;
use crate::domain::translate::field_error;
use crate::domain::translate::names::NameMap;
use crate::domain::translate::switches::{self, Injections};
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
    let compat = options.compat;
    // Thoughts in `content` would break an answer the client parses as JSON.
    let parsed_answer = matches!(
        config.response_mime_type.as_deref(),
        Some("application/json" | "text/x.enum")
    );
    reply.thoughts_in_content = compat.is_some_and(|c| c.thoughts_in_content) && !parsed_answer;
    reply.sources_list =
        compat.is_some_and(|c| c.search_citations == SearchCitations::AnnotationsAndList);
    let generation_config = (config != gemini::GenerationConfig::default()).then_some(config);

    let (mut tools, tool_config) = tool_settings(&req.tools, req.tool_choice.as_ref(), dialect)?;
    reply.grounded = variant.search || extensions.web_search;
    let built_in = built_in_tools(&variant, extensions.web_search, model.as_str(), compat)?;
    tools.extend(built_in);
    let stream = req.stream.unwrap_or(false);
    let include_usage = stream
        && req
            .stream_options
            .as_ref()
            .and_then(|o| o.include_usage)
            .unwrap_or(false);
    let injections = compat.map(|c| Injections::for_model(c, model.as_str()));
    if let Some(injections) = &injections {
        injections.apply_to_messages(&mut req.messages);
    }
    let (mut system_instruction, mut contents, remote_media) =
        Conversation::build(req.messages, &model)?;
    if let Some(injections) = &injections {
        injections.apply_to_system(&mut system_instruction);
    }
    if compat.is_some_and(|c| c.system_as_user(model.as_str())) {
        switches::system_into_contents(system_instruction.take(), &mut contents);
    }
    let google = extensions.google;
    // The client's own list (even an empty one) replaces the operator's defaults.
    let safety_settings = google
        .safety_settings
        .or(extensions.safety_settings)
        .unwrap_or_else(|| {
            compat
                .map(|c| c.default_safety_settings.clone())
                .unwrap_or_default()
        });
    Ok(PreparedChat {
        upstream_model: model.as_str().to_owned(),
        body: gemini::GenerateContentRequest {
            contents,
            system_instruction,
            tools,
            tool_config,
            generation_config,
            safety_settings,
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

/// The built-in tools a request gets: `googleSearch` (`-search`, `web_search_options`),
/// `codeExecution` (`-code`, `code_execution_models`) and `urlContext` (`-urlcontext`,
/// `url_context_models`). URL context exists from Gemini 2.5 on: asked for by name on an
/// older model it is a 400 naming `model`; a settings glob that also matches older models
/// adds it only where it works.
fn built_in_tools(
    variant: &ModelVariant,
    web_search: bool,
    model: &str,
    compat: Option<&Compat>,
) -> Result<Vec<gemini::Tool>, GatewayError> {
    let mut tools = Vec::new();
    if variant.search || web_search {
        tools.push(gemini::Tool {
            google_search: Some(json!({})),
            ..gemini::Tool::default()
        });
    }
    if variant.code || compat.is_some_and(|c| c.code_execution(model)) {
        tools.push(gemini::Tool {
            code_execution: Some(json!({})),
            ..gemini::Tool::default()
        });
    }
    let url_context_works = thinking::family(model) != Family::None;
    if variant.url_context && !url_context_works {
        return Err(GatewayError::invalid_param(
            format!(
                "The `-urlcontext` suffix needs a model with URL context (Gemini 2.5 or later); `{model}` has none."
            ),
            "model",
        ));
    }
    if url_context_works && (variant.url_context || compat.is_some_and(|c| c.url_context(model))) {
        tools.push(gemini::Tool {
            url_context: Some(json!({})),
            ..gemini::Tool::default()
        });
    }
    Ok(tools)
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
    /// `safety_settings` at the top level (the `OpenAI` SDK merges `extra_body` there).
    safety_settings: Option<Vec<gemini::SafetySetting>>,
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
        for key in ["safety_settings", "safetySettings"] {
            if let Some(value) = extra.get(key).filter(|v| !v.is_null()) {
                ext.safety_settings = Some(
                    Vec::<gemini::SafetySetting>::deserialize(value)
                        .map_err(|e| field_error(key, &e))?,
                );
            }
        }
        ext.web_search = extra
            .get("web_search_options")
            .is_some_and(|v| !v.is_null());
        Ok(ext)
    }
}
