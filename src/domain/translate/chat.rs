//! `OpenAI` chat completions → Gemini `generateContent` (request) and back (non-streaming
//! response), plus the candidate-to-message pieces the stream translator shares.
//!
//! Must not do I/O or read a clock or randomness: the completion id and timestamp arrive in
//! [`ChatContext`], and tool-call ids are derived from that id.

use std::borrow::Cow;
use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::domain::error::GatewayError;
use crate::domain::gemini::{self, ModelName, Part, PartData};
use crate::domain::openai::{
    self, AllowedToolsMode, ChatCompletionRequest, ChatMessage, ContentPart, ExtraContent,
    MessageContent, ReasoningEffort, ResponseFormat, Role, Stop, StreamOptions, ToolCall,
    ToolChoice, ToolChoiceMode,
};
use crate::domain::translate::names::{self, NameMap};
use crate::domain::translate::order::KeyOrders;
use crate::domain::translate::schema;
use crate::domain::translate::thinking::{
    self, ClientThinkingConfig, Family, ModelVariant, ThinkingRequest,
};
use crate::domain::translate::{
    Check, check, field_error, finish_reason, first_field_error, first_item_error, json_object,
    required, usage,
};

/// Stream-independent facts of one completion, chosen by the edge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatContext {
    /// `chatcmpl-…`, unique per request.
    pub id: String,
    /// Unix seconds.
    pub created: u64,
    /// The model as the client named it; echoed back in every response.
    pub model: String,
    /// How the response is shaped back for this request, decided by [`prepare_chat`].
    pub reply: ReplyPlan,
}

/// What the response translation must undo or enforce for one request. Derived from the
/// request alone, so the gateway keeps no per-conversation state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplyPlan {
    /// Gemini function names → the client's own names.
    pub names: NameMap,
    /// `text/x.enum` was used for an enum-only schema: the bare answer is re-encoded as the
    /// JSON string the client's schema asked for.
    pub enum_as_json: bool,
    /// `parallel_tool_calls: false`: only the first call of a turn is returned.
    pub single_tool_call: bool,
}

/// Gateway settings that shape translation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChatOptions {
    /// Return thoughts as `reasoning_content` unless the request says otherwise.
    pub include_thoughts: bool,
}

/// An `image_url` with an http(s) URL, fetched by the edge before the request goes upstream.
/// Its part in the body is a placeholder until [`fill_remote_media`] replaces it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteMedia {
    pub url: String,
    /// The request field, for errors (`messages[0].content[1].image_url`).
    pub param: String,
}

/// A validated request, ready for `POST /v1beta/models/{upstream_model}:generateContent`
/// (or `:streamGenerateContent?alt=sse` when `stream`).
#[derive(Debug, Clone, PartialEq)]
pub struct PreparedChat {
    /// Bare model id, without `models/`.
    pub upstream_model: String,
    pub body: gemini::GenerateContentRequest,
    pub stream: bool,
    /// Only meaningful when `stream`: end with a usage chunk.
    pub include_usage: bool,
    pub reply: ReplyPlan,
    /// Values moved to what the model accepts, for `x-gemgate-adjusted`
    /// (`reasoning_effort=medium->high`).
    pub adjustments: Vec<String>,
    /// Top-level fields that were neither translated nor passed through; logged at debug.
    pub ignored: Vec<String>,
    /// Remote images to fetch, in the order of their placeholders in `body`.
    pub remote_media: Vec<RemoteMedia>,
}

/// Gemini's limit on `stopSequences`; `OpenAI` documents 4, so every valid `OpenAI` request fits.
const MAX_STOP_SEQUENCES: usize = 5;
/// Gemini's limit on `candidateCount`.
const MAX_CANDIDATES: u32 = 8;
/// Gemini 3 rejects a replayed function call without its thought signature; this documented
/// sentinel tells it to skip the check when a client dropped the real one.
const SIGNATURE_SENTINEL: &str = "skip_thought_signature_validator";
/// Joins a tool-call id and the Gemini thought signature it carries, so the signature survives
/// clients that keep only `id`, `type` and `function` of a tool call.
const SIGNATURE_SEPARATOR: &str = "__thought__";
/// Marks an `inlineData` placeholder for a remote image; never sent upstream.
const REMOTE_PLACEHOLDER: &str = "x-gemgate/remote";
/// More remote images than this in one request is refused rather than fetched.
pub const MAX_REMOTE_MEDIA: usize = 16;

// ---------------------------------------------------------------------------------------------
// parsing
// ---------------------------------------------------------------------------------------------

/// Parses a chat request body. Errors name the failing field and carry it as `param`:
///
/// ```text
/// messages[1].content: invalid type: integer `5`, expected a string or an array of content parts
/// ```
pub fn parse_chat_request(body: &[u8]) -> Result<ChatCompletionRequest, GatewayError> {
    match serde_json::from_slice::<ChatCompletionRequest>(body) {
        Ok(mut request) => {
            // Only a JSON response schema needs the client's key order.
            if matches!(
                request.response_format,
                Some(ResponseFormat::JsonSchema { .. })
            ) {
                request.key_orders = KeyOrders::collect(body);
            }
            Ok(request)
        }
        Err(err) => {
            let object = json_object(body)?;
            Err(locate_request_error(&object).unwrap_or_else(|| field_error("", &err)))
        }
    }
}

const TOP_LEVEL_FIELDS: &[(&str, Check)] = &[
    ("model", check::<String>),
    ("stream", check::<Option<bool>>),
    ("stream_options", check::<Option<StreamOptions>>),
    ("temperature", check::<Option<f64>>),
    ("top_p", check::<Option<f64>>),
    ("max_tokens", check::<Option<u32>>),
    ("max_completion_tokens", check::<Option<u32>>),
    ("stop", check::<Option<Stop>>),
    ("n", check::<Option<u32>>),
    ("seed", check::<Option<i64>>),
    ("presence_penalty", check::<Option<f64>>),
    ("frequency_penalty", check::<Option<f64>>),
    ("user", check::<Option<String>>),
    ("response_format", check::<Option<ResponseFormat>>),
    ("tool_choice", check::<Option<ToolChoice>>),
    ("reasoning_effort", check::<Option<ReasoningEffort>>),
    ("logprobs", check::<Option<bool>>),
    ("top_logprobs", check::<Option<u32>>),
];

const MESSAGE_FIELDS: &[(&str, Check)] = &[
    ("name", check::<Option<String>>),
    ("tool_call_id", check::<String>),
    ("refusal", check::<Option<String>>),
    ("function_call", check::<Option<openai::FunctionCall>>),
];

/// Re-walks a body that failed typed parsing to find the first field at fault.
fn locate_request_error(object: &Map<String, Value>) -> Option<GatewayError> {
    for name in ["model", "messages"] {
        if !object.contains_key(name) {
            return Some(required(name));
        }
    }
    first_field_error(object, TOP_LEVEL_FIELDS, "")
        .or_else(|| first_item_error::<openai::Tool>(object.get("tools")?, "tools"))
        .or_else(|| locate_messages_error(object.get("messages")?))
}

fn locate_messages_error(messages: &Value) -> Option<GatewayError> {
    let Some(items) = messages.as_array() else {
        return Some(GatewayError::invalid_param(
            "messages: expected an array of messages",
            "messages",
        ));
    };
    items
        .iter()
        .enumerate()
        .find_map(|(i, message)| locate_message_error(message, &format!("messages[{i}]")))
}

fn locate_message_error(message: &Value, path: &str) -> Option<GatewayError> {
    let Some(object) = message.as_object() else {
        return Some(GatewayError::invalid_param(
            format!("{path}: expected a message object"),
            path,
        ));
    };
    let role_path = format!("{path}.role");
    let Some(role) = object.get("role") else {
        return Some(required(&role_path));
    };
    let Some(role) = Role::ALL
        .into_iter()
        .find(|r| role.as_str() == Some(r.as_str()))
    else {
        return Some(GatewayError::invalid_param(
            format!(
                "{role_path}: unsupported role {role}; expected one of system, developer, user, \
                 assistant, tool, function"
            ),
            role_path,
        ));
    };
    object
        .get("content")
        .and_then(|content| locate_content_error(content, role, &format!("{path}.content")))
        .or_else(|| first_field_error(object, MESSAGE_FIELDS, path))
        .or_else(|| {
            first_item_error::<ToolCall>(object.get("tool_calls")?, &format!("{path}.tool_calls"))
        })
        .or_else(|| {
            ChatMessage::deserialize(message)
                .err()
                .map(|err| field_error(path, &err))
        })
}

fn locate_content_error(content: &Value, role: Role, path: &str) -> Option<GatewayError> {
    match (content, role) {
        (Value::Null, Role::Assistant | Role::Function) => None,
        (_, Role::Function) => check::<String>(content)
            .err()
            .map(|err| field_error(path, &err)),
        (Value::Array(_), _) => first_item_error::<ContentPart>(content, path),
        _ => check::<MessageContent>(content)
            .err()
            .map(|err| field_error(path, &err)),
    }
}

// ---------------------------------------------------------------------------------------------
// request translation
// ---------------------------------------------------------------------------------------------

/// Validates a parsed request and translates it into a Gemini request.
///
/// Parameters without a Gemini equivalent (`user`, a message's `name`, `metadata`, …) are
/// ignored, and unknown ones are listed in [`PreparedChat::ignored`]; unknown top-level fields
/// that are Gemini `generationConfig` keys (`top_k`, `response_modalities`, …) are passed
/// through. A conversation that opens with an assistant turn is sent as is: Gemini accepts a
/// model-first history.
pub fn prepare_chat(
    mut req: ChatCompletionRequest,
    options: &ChatOptions,
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
enum SchemaDialect {
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
const KNOWN_UNMAPPED: &[&str] = &[
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

/// Unknown top-level fields that name a Gemini `generationConfig` key (in either spelling) are
/// set there, unless a translated `OpenAI` parameter already set that key: the `OpenAI` name
/// wins. Everything else is returned for a debug log.
fn pass_through_generation_config(
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
            "extra_body" | "google" | "parallel_tool_calls" | "web_search_options"
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

fn validate_sampling(req: &ChatCompletionRequest) -> Result<(), GatewayError> {
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

fn generation_config(
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
fn apply_response_format(
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

fn tool_settings(
    tools: &[openai::Tool],
    choice: Option<&ToolChoice>,
    dialect: SchemaDialect,
) -> Result<(Vec<gemini::Tool>, Option<gemini::ToolConfig>), GatewayError> {
    let declarations = tools
        .iter()
        .enumerate()
        .map(|(i, tool)| function_declaration(&tool.function, i, dialect))
        .collect::<Result<Vec<_>, _>>()?;
    let tool_config = match choice {
        None => None,
        Some(choice) => function_calling_config(choice, tools)?.map(|config| gemini::ToolConfig {
            function_calling_config: Some(config),
            retrieval_config: None,
        }),
    };
    let tools = if declarations.is_empty() {
        Vec::new()
    } else {
        vec![gemini::Tool {
            function_declarations: declarations,
            ..gemini::Tool::default()
        }]
    };
    Ok((tools, tool_config))
}

fn function_declaration(
    function: &openai::FunctionDefinition,
    i: usize,
    dialect: SchemaDialect,
) -> Result<gemini::FunctionDeclaration, GatewayError> {
    if function.name.is_empty() {
        let param = format!("tools[{i}].function.name");
        return Err(GatewayError::invalid_param(
            format!("{param}: must be a non-empty string"),
            param,
        ));
    }
    let param = format!("tools[{i}].function.parameters");
    let invalid = |why: String| GatewayError::invalid_param(format!("{param}: {why}"), &param);
    let mut declaration = gemini::FunctionDeclaration {
        name: names::to_gemini(&function.name).into_owned(),
        description: function.description.clone(),
        ..gemini::FunctionDeclaration::default()
    };
    let Some(parameters) = function.parameters.as_ref().filter(|p| !p.is_null()) else {
        return Ok(declaration);
    };
    match dialect {
        SchemaDialect::JsonSchema => {
            declaration.parameters_json_schema =
                Some(schema::function_parameters_json_schema(parameters).map_err(invalid)?);
        }
        SchemaDialect::OpenApi => {
            declaration.parameters =
                schema::function_parameters_openapi(parameters).map_err(invalid)?;
        }
    }
    Ok(declaration)
}

/// `auto`/`none`/`required`/named → AUTO/NONE/ANY/ANY + `allowedFunctionNames`.
fn function_calling_config(
    choice: &ToolChoice,
    tools: &[openai::Tool],
) -> Result<Option<gemini::FunctionCallingConfig>, GatewayError> {
    use gemini::FunctionCallingMode as Mode;
    let (mode, names) = match choice {
        ToolChoice::Mode(ToolChoiceMode::None) => (Mode::None, Vec::new()),
        ToolChoice::Mode(ToolChoiceMode::Auto) => (Mode::Auto, Vec::new()),
        ToolChoice::Mode(ToolChoiceMode::Required) => (Mode::Any, Vec::new()),
        ToolChoice::Named(named) => (Mode::Any, vec![named.function.name.as_str()]),
        ToolChoice::AllowedTools(allowed) => {
            let names = allowed
                .allowed_tools
                .tools
                .iter()
                .map(|t| t.function.name.as_str())
                .collect();
            // VALIDATED is Gemini's "call one of these, or answer in text".
            match allowed.allowed_tools.mode {
                AllowedToolsMode::Auto => (Mode::Validated, names),
                AllowedToolsMode::Required => (Mode::Any, names),
            }
        }
    };
    if tools.is_empty() {
        return match mode {
            Mode::None | Mode::Auto => Ok(None),
            _ => Err(GatewayError::invalid_param(
                "tool_choice requires tools to be specified",
                "tool_choice",
            )),
        };
    }
    if let Some(unknown) = names
        .iter()
        .find(|name| !tools.iter().any(|t| t.function.name == **name))
    {
        return Err(GatewayError::invalid_param(
            format!("tool_choice names function `{unknown}`, which is not in tools"),
            "tool_choice",
        ));
    }
    Ok(Some(gemini::FunctionCallingConfig {
        mode: Some(mode),
        allowed_function_names: names
            .into_iter()
            .map(|n| names::to_gemini(n).into_owned())
            .collect(),
    }))
}

/// Builds Gemini's `systemInstruction` and `contents` from the `OpenAI` messages.
struct Conversation {
    system: Vec<Part>,
    contents: Vec<gemini::Content>,
    /// `tool_call_id` → Gemini function name, from the assistant turns seen so far.
    call_names: HashMap<String, String>,
    signature_sentinel: bool,
    remote: Vec<RemoteMedia>,
}

/// The system instruction, the turns, and the remote images they reference.
type Built = (
    Option<gemini::Content>,
    Vec<gemini::Content>,
    Vec<RemoteMedia>,
);

impl Conversation {
    fn build(messages: Vec<ChatMessage>, model: &ModelName) -> Result<Built, GatewayError> {
        if messages.is_empty() {
            return Err(GatewayError::invalid_param(
                "messages must contain at least one message",
                "messages",
            ));
        }
        let mut conversation = Self {
            system: Vec::new(),
            contents: Vec::new(),
            call_names: HashMap::new(),
            signature_sentinel: matches!(thinking::family(model.as_str()), Family::Levels(_)),
            remote: Vec::new(),
        };
        for (i, message) in messages.into_iter().enumerate() {
            conversation.add(message, i)?;
        }
        if conversation.contents.is_empty() {
            return Err(GatewayError::invalid_param(
                "messages must contain at least one user, assistant or tool message with content",
                "messages",
            ));
        }
        let system = (!conversation.system.is_empty()).then_some(gemini::Content {
            role: None,
            parts: conversation.system,
        });
        Ok((system, conversation.contents, conversation.remote))
    }

    fn add(&mut self, message: ChatMessage, i: usize) -> Result<(), GatewayError> {
        match message {
            // Every system/developer text goes to `systemInstruction`, in order, one part each.
            ChatMessage::System(m) | ChatMessage::Developer(m) => {
                let parts = instruction_parts(m.content, i)?;
                self.system.extend(parts);
            }
            ChatMessage::User(m) => {
                let parts = self.user_parts(m.content, i)?;
                self.push(gemini::Role::User, parts);
            }
            ChatMessage::Assistant(m) => {
                let parts = self.assistant_parts(m, i)?;
                self.push(gemini::Role::Model, parts);
            }
            ChatMessage::Tool(m) => {
                let part = self.tool_result(m, i)?;
                self.push(gemini::Role::User, vec![part]);
            }
            ChatMessage::Function(m) => {
                let name = names::to_gemini(&m.name).into_owned();
                let part = function_response(name, None, m.content.as_deref().unwrap_or_default());
                self.push(gemini::Role::User, vec![part]);
            }
        }
        Ok(())
    }

    /// Appends parts, merging into the previous turn when it has the same role: Gemini wants
    /// strictly alternating turns, and parallel tool results in one turn.
    fn push(&mut self, role: gemini::Role, parts: Vec<Part>) {
        if parts.is_empty() {
            return;
        }
        match self.contents.last_mut() {
            Some(last) if last.role.as_ref() == Some(&role) => last.parts.extend(parts),
            _ => self.contents.push(gemini::Content::new(role, parts)),
        }
    }

    fn assistant_parts(
        &mut self,
        message: openai::AssistantMessage,
        i: usize,
    ) -> Result<Vec<Part>, GatewayError> {
        let mut parts = match message.content {
            Some(content) => assistant_text_parts(content, i)?,
            None => Vec::new(),
        };
        if parts.is_empty()
            && let Some(refusal) = message.refusal.filter(|r| !r.is_empty())
        {
            parts.push(Part::text(refusal));
        }
        if let Some(call) = message.function_call {
            let path = format!("messages[{i}].function_call");
            let name = names::to_gemini(&call.name).into_owned();
            parts.push(function_call_part(
                name,
                None,
                &call.arguments,
                &path,
                None,
            )?);
        }
        let mut first_call = true;
        for (k, call) in message.tool_calls.into_iter().enumerate() {
            let mut part = self.tool_call_part(call, &format!("messages[{i}].tool_calls[{k}]"))?;
            if first_call && self.signature_sentinel && part.thought_signature.is_none() {
                part.thought_signature = Some(SIGNATURE_SENTINEL.to_owned());
            }
            first_call = false;
            parts.push(part);
        }
        Ok(parts)
    }

    fn tool_call_part(&mut self, call: ToolCall, path: &str) -> Result<Part, GatewayError> {
        let signature = call
            .extra_content
            .as_ref()
            .and_then(ExtraContent::signature)
            .or_else(|| split_call_id(&call.id).1)
            .map(str::to_owned);
        let name = names::to_gemini(&call.function.name).into_owned();
        let id = split_call_id(&call.id).0;
        let id = (!id.is_empty()).then(|| id.to_owned());
        let part = function_call_part(name.clone(), id, &call.function.arguments, path, signature)?;
        self.call_names.insert(call.id, name);
        Ok(part)
    }

    fn tool_result(&self, message: openai::ToolMessage, i: usize) -> Result<Part, GatewayError> {
        let name = self
            .call_names
            .get(&message.tool_call_id)
            .cloned()
            .or_else(|| {
                message
                    .name
                    .as_deref()
                    .map(|n| names::to_gemini(n).into_owned())
            })
            .ok_or_else(|| {
                let param = format!("messages[{i}].tool_call_id");
                GatewayError::invalid_param(
                    format!(
                        "{param}: no earlier assistant message has a tool call with id `{}`",
                        message.tool_call_id
                    ),
                    param,
                )
            })?;
        let text = plain_text(message.content, i, "tool")?;
        let id = split_call_id(&message.tool_call_id).0;
        let id = (!id.is_empty()).then(|| id.to_owned());
        Ok(function_response(name, id, &text))
    }
}

fn function_call_part(
    name: String,
    id: Option<String>,
    arguments: &str,
    path: &str,
    signature: Option<String>,
) -> Result<Part, GatewayError> {
    let args = parse_arguments(arguments).ok_or_else(|| {
        let param = format!("{path}.function.arguments");
        GatewayError::invalid_param(
            format!("{param}: must be a JSON object encoded as a string"),
            param,
        )
    })?;
    let mut part = Part::new(PartData::FunctionCall(gemini::FunctionCall {
        id,
        name,
        args: Some(args),
    }));
    part.thought_signature = signature;
    Ok(part)
}

/// Arguments must be a JSON object (Gemini's `args` is a `Struct`); clients send `""` for
/// functions without parameters.
fn parse_arguments(arguments: &str) -> Option<Value> {
    if arguments.trim().is_empty() {
        return Some(Value::Object(Map::new()));
    }
    match serde_json::from_str(arguments) {
        Ok(Value::Object(args)) => Some(Value::Object(args)),
        _ => None,
    }
}

/// Gemini's `response` must be an object; any other result is wrapped as `{"output": …}`, the
/// key Gemini documents for function output: JSON arrays and scalars as themselves, anything
/// else as the text.
fn function_response(name: String, id: Option<String>, text: &str) -> Part {
    let response = match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(object)) => Value::Object(object),
        Ok(value @ (Value::Array(_) | Value::Number(_) | Value::Bool(_))) => {
            json!({ "output": value })
        }
        _ => json!({ "output": text }),
    };
    Part::new(PartData::FunctionResponse(gemini::FunctionResponse {
        id,
        name,
        response,
    }))
}

/// Gemini rejects empty text parts, so empty strings are dropped here.
fn text_part(text: String) -> Option<Part> {
    (!text.is_empty()).then(|| Part::text(text))
}

fn part_path(i: usize, j: usize) -> String {
    format!("messages[{i}].content[{j}]")
}

fn only_text_error(i: usize, j: usize, role: &str) -> GatewayError {
    let param = part_path(i, j);
    GatewayError::invalid_param(
        format!("{param}: {role} messages may only contain text parts"),
        param,
    )
}

fn instruction_parts(content: MessageContent, i: usize) -> Result<Vec<Part>, GatewayError> {
    match content {
        MessageContent::Text(text) => Ok(text_part(text).into_iter().collect()),
        MessageContent::Parts(parts) => parts
            .into_iter()
            .enumerate()
            .filter_map(|(j, part)| match part {
                ContentPart::Text { text } => text_part(text).map(Ok),
                _ => Some(Err(only_text_error(i, j, "system and developer"))),
            })
            .collect(),
    }
}

fn assistant_text_parts(content: MessageContent, i: usize) -> Result<Vec<Part>, GatewayError> {
    match content {
        MessageContent::Text(text) => Ok(text_part(text).into_iter().collect()),
        MessageContent::Parts(parts) => parts
            .into_iter()
            .enumerate()
            .filter_map(|(j, part)| match part {
                ContentPart::Text { text } | ContentPart::Refusal { refusal: text } => {
                    text_part(text).map(Ok)
                }
                _ => Some(Err(only_text_error(i, j, "assistant"))),
            })
            .collect(),
    }
}

/// The text of a tool message: a string, or its text parts concatenated.
fn plain_text(content: MessageContent, i: usize, role: &str) -> Result<String, GatewayError> {
    match content {
        MessageContent::Text(text) => Ok(text),
        MessageContent::Parts(parts) => parts
            .into_iter()
            .enumerate()
            .map(|(j, part)| match part {
                ContentPart::Text { text } => Ok(text),
                _ => Err(only_text_error(i, j, role)),
            })
            .collect(),
    }
}

impl Conversation {
    fn user_parts(&mut self, content: MessageContent, i: usize) -> Result<Vec<Part>, GatewayError> {
        match content {
            MessageContent::Text(text) => Ok(text_part(text).into_iter().collect()),
            MessageContent::Parts(parts) => parts
                .into_iter()
                .enumerate()
                .filter_map(|(j, part)| self.user_part(part, &part_path(i, j)).transpose())
                .collect(),
        }
    }

    fn user_part(&mut self, part: ContentPart, path: &str) -> Result<Option<Part>, GatewayError> {
        if let ContentPart::ImageUrl { image_url } = part {
            let param = format!("{path}.image_url");
            return self.image_part(image_url.url, param).map(Some);
        }
        user_part(part, path)
    }

    /// A data URL is inlined now; an http(s) URL becomes a placeholder the edge fills after
    /// fetching it (DESIGN §8: http(s) only, size cap, timeout, no private targets).
    fn image_part(&mut self, url: String, param: String) -> Result<Part, GatewayError> {
        if !(starts_with_ignore_case(&url, "http://") || starts_with_ignore_case(&url, "https://"))
        {
            if let Some((scheme, _)) = url.split_once("://") {
                return Err(GatewayError::invalid_param(
                    format!(
                        "{param}: the URL scheme `{scheme}` is not supported; send an http(s) URL or a base64 data: URL"
                    ),
                    param,
                ));
            }
            return inline_data(url, &param);
        }
        if self.remote.len() == MAX_REMOTE_MEDIA {
            return Err(GatewayError::invalid_param(
                format!("{param}: at most {MAX_REMOTE_MEDIA} remote image URLs per request"),
                param,
            ));
        }
        self.remote.push(RemoteMedia { url, param });
        Ok(Part::new(PartData::InlineData(gemini::Blob {
            mime_type: REMOTE_PLACEHOLDER.to_owned(),
            data: String::new(),
        })))
    }
}

fn user_part(part: ContentPart, path: &str) -> Result<Option<Part>, GatewayError> {
    match part {
        ContentPart::Text { text } => Ok(text_part(text)),
        ContentPart::ImageUrl { image_url } => {
            inline_data(image_url.url, &format!("{path}.image_url")).map(Some)
        }
        ContentPart::InputAudio { input_audio } => {
            audio_part(input_audio, &format!("{path}.input_audio")).map(Some)
        }
        ContentPart::File { file } => file_part(file, &format!("{path}.file")).map(Some),
        ContentPart::Refusal { .. } => Err(GatewayError::invalid_param(
            format!("{path}: refusal parts are only valid in assistant messages"),
            path,
        )),
    }
}

/// Replaces the remote-image placeholders of `body`, in order, with the fetched media.
/// Extra placeholders (there are none when `media` came from the same request) stay empty.
pub fn fill_remote_media(body: &mut gemini::GenerateContentRequest, media: Vec<gemini::Blob>) {
    let mut media = media.into_iter();
    let placeholders = body
        .contents
        .iter_mut()
        .flat_map(|c| c.parts.iter_mut())
        .filter_map(|p| match &mut p.data {
            PartData::InlineData(blob) if blob.mime_type == REMOTE_PLACEHOLDER => Some(blob),
            _ => None,
        });
    for (slot, blob) in placeholders.zip(&mut media) {
        *slot = blob;
    }
}

fn file_part(file: openai::FileInput, param: &str) -> Result<Part, GatewayError> {
    match (file.file_data, file.file_id) {
        (Some(data), _) => inline_data(data, &format!("{param}.file_data")),
        (None, Some(_)) => Err(GatewayError::invalid_param(
            format!(
                "{param}.file_id: file ids are not supported yet; send file_data as a base64 data: URL"
            ),
            format!("{param}.file_id"),
        )),
        (None, None) => Err(GatewayError::invalid_param(
            format!("{param}: file_data is required"),
            param,
        )),
    }
}

fn audio_part(audio: openai::InputAudio, param: &str) -> Result<Part, GatewayError> {
    let mime_type = match audio.format.as_str() {
        "wav" => "audio/wav",
        "mp3" => "audio/mp3",
        "aiff" => "audio/aiff",
        "aac" => "audio/aac",
        "ogg" => "audio/ogg",
        "flac" => "audio/flac",
        other => {
            return Err(GatewayError::invalid_param(
                format!(
                    "{param}.format: unsupported audio format `{other}`; expected wav, mp3, aiff, aac, ogg or flac"
                ),
                format!("{param}.format"),
            ));
        }
    };
    if !is_strict_base64(&audio.data) {
        return Err(GatewayError::invalid_param(
            format!("{param}.data: is not valid base64"),
            format!("{param}.data"),
        ));
    }
    Ok(Part::new(PartData::InlineData(gemini::Blob {
        mime_type: mime_type.to_owned(),
        data: audio.data,
    })))
}

/// A `data:<mime>;base64,<payload>` URL → `inlineData`. The payload is cut out of the URL's
/// own buffer rather than copied: images can be megabytes and the isolate has 128 MB.
fn inline_data(mut url: String, param: &str) -> Result<Part, GatewayError> {
    let invalid = |why: &str| GatewayError::invalid_param(format!("{param}: {why}"), param);
    let (mime_type, data) = parse_data_url(&url)
        .ok_or_else(|| invalid("expected a base64 data: URL (data:<mime type>;base64,<data>)"))?;
    if !is_strict_base64(data) {
        return Err(invalid("the data URL payload is not valid base64"));
    }
    let mime_type = mime_type.to_owned();
    url.drain(..url.len() - data.len());
    Ok(Part::new(PartData::InlineData(gemini::Blob {
        mime_type,
        data: url,
    })))
}

fn starts_with_ignore_case(text: &str, prefix: &str) -> bool {
    text.get(..prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
}

/// Splits a base64 data URL into its MIME type and payload. Media-type parameters
/// (`;charset=…`) are dropped, since Gemini takes a bare MIME type.
fn parse_data_url(url: &str) -> Option<(&str, &str)> {
    if !starts_with_ignore_case(url, "data:") {
        return None;
    }
    let (meta, data) = url["data:".len()..].split_once(',')?;
    let mut params = meta.split(';');
    let mime_type = params.next().filter(|m| m.contains('/'))?;
    params
        .any(|p| p.eq_ignore_ascii_case("base64"))
        .then_some((mime_type, data))
}

/// Canonical, padded standard base64, checked chunk by chunk so a large image is validated
/// without being decoded into memory.
fn is_strict_base64(data: &str) -> bool {
    const CHUNK: usize = 4096; // a multiple of 4
    let bytes = data.as_bytes();
    if bytes.is_empty() || !bytes.len().is_multiple_of(4) {
        return false;
    }
    // Padding may only close the whole payload, not an inner chunk.
    if bytes[..bytes.len() - 2].contains(&b'=') {
        return false;
    }
    let mut buffer = [0u8; CHUNK / 4 * 3];
    bytes
        .chunks(CHUNK)
        .all(|chunk| STANDARD.decode_slice(chunk, &mut buffer).is_ok())
}

// ---------------------------------------------------------------------------------------------
// tool-call ids
// ---------------------------------------------------------------------------------------------

/// Issues tool-call ids for one choice: distinct per call, derived from the completion id, and
/// carrying the call's thought signature when Gemini gave one.
pub(crate) struct CallIds<'a> {
    completion_id: &'a str,
    choice: u32,
    next: u32,
}

impl<'a> CallIds<'a> {
    pub(crate) fn new(ctx: &'a ChatContext, choice: u32, next: u32) -> Self {
        Self {
            completion_id: ctx.id.strip_prefix("chatcmpl-").unwrap_or(&ctx.id),
            choice,
            next,
        }
    }

    /// The index the next call will get.
    pub(crate) fn next_index(&self) -> u32 {
        self.next
    }

    fn issue(&mut self, upstream_id: Option<&str>, signature: Option<&str>) -> String {
        let base = match upstream_id {
            Some(id) if !id.is_empty() => id.to_owned(),
            _ => format!("call_{}_{}_{}", self.completion_id, self.choice, self.next),
        };
        self.next += 1;
        match signature {
            Some(signature) => format!("{base}{SIGNATURE_SEPARATOR}{signature}"),
            None => base,
        }
    }
}

/// `(id, signature)` from an id issued by [`CallIds`].
fn split_call_id(id: &str) -> (&str, Option<&str>) {
    match id.split_once(SIGNATURE_SEPARATOR) {
        Some((base, signature)) if !signature.is_empty() => (base, Some(signature)),
        _ => (id, None),
    }
}

// ---------------------------------------------------------------------------------------------
// response translation
// ---------------------------------------------------------------------------------------------

/// What one candidate (or one streamed slice of it) says, split into `OpenAI`'s channels.
#[derive(Debug, Default)]
pub(crate) struct CandidateOutput {
    pub(crate) text: String,
    /// Thought summaries (`thought: true`), never mixed into `text`.
    pub(crate) reasoning: String,
    pub(crate) tool_calls: Vec<ToolCall>,
}

impl CandidateOutput {
    /// Splits a candidate's parts. Call names go back to the client's spelling; with
    /// `single_tool_call`, calls after the choice's first are dropped.
    pub(crate) fn collect(parts: Vec<Part>, ids: &mut CallIds<'_>, plan: &ReplyPlan) -> Self {
        let mut out = Self::default();
        for part in parts {
            let signature = part.thought_signature.as_deref();
            match &part.data {
                PartData::FunctionCall(_) if plan.single_tool_call && ids.next_index() > 0 => {}
                PartData::FunctionCall(call) => {
                    let id = ids.issue(call.id.as_deref(), signature);
                    let mut tool_call = tool_call(id, call, part.thought_signature.clone());
                    plan.names
                        .to_client(&call.name)
                        .clone_into(&mut tool_call.function.name);
                    out.tool_calls.push(tool_call);
                }
                PartData::Text(text) if part.thought => out.reasoning.push_str(text),
                data => {
                    if let Some(text) = visible_text(data) {
                        out.text.push_str(&text);
                    }
                }
            }
        }
        out
    }
}

fn tool_call(id: String, call: &gemini::FunctionCall, signature: Option<String>) -> ToolCall {
    let arguments = call
        .args
        .as_ref()
        .map_or_else(|| "{}".to_owned(), Value::to_string);
    ToolCall {
        id,
        kind: openai::ToolType::Function,
        function: openai::FunctionCall {
            name: call.name.clone(),
            arguments,
        },
        extra_content: signature.map(ExtraContent::thought_signature),
    }
}

/// Answer text of a non-thought part. Code execution and generated images have no `OpenAI`
/// channel, so they are rendered as Markdown rather than dropped.
fn visible_text(data: &PartData) -> Option<Cow<'_, str>> {
    match data {
        PartData::Text(text) => Some(Cow::Borrowed(text)),
        PartData::ExecutableCode(code) => Some(Cow::Owned(format!(
            "\n```{}\n{}\n```\n",
            code.language.to_ascii_lowercase(),
            code.code
        ))),
        PartData::CodeExecutionResult(result) => result
            .output
            .as_ref()
            .map(|output| Cow::Owned(format!("\n```output\n{output}\n```\n"))),
        PartData::InlineData(blob) if blob.mime_type.starts_with("image/") => Some(Cow::Owned(
            format!("![image](data:{};base64,{})", blob.mime_type, blob.data),
        )),
        _ => None,
    }
}

pub(crate) fn prompt_blocked(resp: &gemini::GenerateContentResponse) -> bool {
    resp.candidates.is_empty()
        && resp
            .prompt_feedback
            .as_ref()
            .is_some_and(|f| f.block_reason.is_some())
}

/// Translates a non-streaming response.
///
/// A prompt Gemini blocked (no candidates, `promptFeedback.blockReason`) becomes one empty
/// choice finishing with `content_filter`. No candidates without a block reason is a 502.
pub fn chat_response(
    resp: gemini::GenerateContentResponse,
    ctx: &ChatContext,
) -> Result<openai::ChatCompletion, GatewayError> {
    let usage = usage(&resp.usage_metadata.unwrap_or_default());
    let choices = if prompt_blocked(&resp) {
        vec![blocked_choice()]
    } else if resp.candidates.is_empty() {
        return Err(GatewayError::BadGateway(
            "The upstream model returned no candidates.".to_owned(),
        ));
    } else {
        resp.candidates
            .into_iter()
            .zip(0u32..)
            .map(|(candidate, position)| choice(candidate, position, ctx))
            .collect()
    };
    Ok(openai::ChatCompletion {
        id: ctx.id.clone(),
        object: openai::Object::ChatCompletion,
        created: ctx.created,
        model: ctx.model.clone(),
        choices,
        usage: Some(usage),
        system_fingerprint: None,
    })
}

fn choice(candidate: gemini::Candidate, position: u32, ctx: &ChatContext) -> openai::Choice {
    let index = candidate.index.unwrap_or(position);
    let logprobs = candidate.logprobs_result.as_ref().map(openai_logprobs);
    let parts = candidate.content.map(|c| c.parts).unwrap_or_default();
    let mut output = CandidateOutput::collect(parts, &mut CallIds::new(ctx, index, 0), &ctx.reply);
    if ctx.reply.enum_as_json {
        output.text = Value::String(output.text).to_string();
    }
    let finish = finish_reason(
        candidate
            .finish_reason
            .unwrap_or(gemini::FinishReason::Stop),
        !output.tool_calls.is_empty(),
    );
    let content = if output.text.is_empty() && !output.tool_calls.is_empty() {
        None
    } else {
        Some(output.text)
    };
    openai::Choice {
        index,
        message: openai::ResponseMessage {
            role: Role::Assistant,
            content,
            refusal: None,
            reasoning_content: (!output.reasoning.is_empty()).then_some(output.reasoning),
            tool_calls: output.tool_calls,
        },
        logprobs,
        finish_reason: finish,
    }
}

/// Gemini's `logprobsResult` → `OpenAI`'s `{content: [{token, logprob, bytes, top_logprobs}],
/// refusal: null}`. `chosenCandidates[i]` and `topCandidates[i]` describe the same token.
pub(crate) fn openai_logprobs(result: &Value) -> Value {
    fn entry(candidate: &Value) -> Value {
        let token = candidate
            .get("token")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let logprob = candidate
            .get("logProbability")
            .and_then(Value::as_f64)
            .unwrap_or_default();
        json!({ "token": token, "logprob": logprob, "bytes": token.as_bytes() })
    }
    let empty = Vec::new();
    let list = |v: Option<&Value>| v.and_then(Value::as_array).unwrap_or(&empty).clone();
    let chosen = list(result.get("chosenCandidates"));
    let top = list(result.get("topCandidates"));
    let content: Vec<Value> = chosen
        .iter()
        .enumerate()
        .map(|(i, candidate)| {
            let mut token = entry(candidate);
            let alternatives: Vec<Value> = list(top.get(i).and_then(|t| t.get("candidates")))
                .iter()
                .map(entry)
                .collect();
            token["top_logprobs"] = Value::Array(alternatives);
            token
        })
        .collect();
    json!({ "content": content, "refusal": null })
}

fn blocked_choice() -> openai::Choice {
    openai::Choice {
        index: 0,
        message: openai::ResponseMessage {
            role: Role::Assistant,
            content: Some(String::new()),
            refusal: None,
            reasoning_content: None,
            tool_calls: Vec::new(),
        },
        logprobs: None,
        finish_reason: openai::FinishReason::ContentFilter,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> ChatContext {
        ChatContext {
            id: "chatcmpl-abc123".into(),
            created: 1_700_000_000,
            model: "gemini-2.5-flash".into(),
            reply: ReplyPlan::default(),
        }
    }

    #[expect(clippy::needless_pass_by_value, reason = "called with json! literals")]
    fn prepare(body: Value) -> Result<PreparedChat, GatewayError> {
        let req = parse_chat_request(body.to_string().as_bytes())?;
        prepare_chat(req, &ChatOptions::default())
    }

    fn gemini_body(body: Value) -> Value {
        serde_json::to_value(prepare(body).unwrap().body).unwrap()
    }

    fn to_value<T: serde::Serialize>(value: &T) -> Value {
        serde_json::to_value(value).unwrap()
    }

    fn bad(body: Value) -> GatewayError {
        prepare(body).unwrap_err()
    }

    fn assert_bad(body: Value, param: &str, message_part: &str) {
        let err = bad(body);
        assert_eq!(err.status(), 400, "{err:?}");
        assert_eq!(err.openai_param(), Some(param), "{err:?}");
        assert!(
            err.client_message().contains(message_part),
            "{:?} does not contain {message_part:?}",
            err.client_message()
        );
    }

    fn respond(resp: Value) -> Value {
        let resp: gemini::GenerateContentResponse = serde_json::from_value(resp).unwrap();
        serde_json::to_value(chat_response(resp, &ctx()).unwrap()).unwrap()
    }

    const PNG_DATA_URL: &str = "data:image/png;base64,iVBORw0KGgo=";

    // -- parsing --------------------------------------------------------------------------

    #[test]
    fn parse_errors_name_the_failing_message_field() {
        let cases = [
            (
                json!({"model": "m", "messages": [{"role": "user", "content": "hi"}, {"role": "user", "content": 5}]}),
                "messages[1].content",
                "messages[1].content: invalid type: integer `5`, expected a string or an array of content parts",
            ),
            (
                json!({"model": "m", "messages": [{"role": "bot", "content": "hi"}]}),
                "messages[0].role",
                "messages[0].role: unsupported role \"bot\"",
            ),
            (
                json!({"model": "m", "messages": [{"content": "hi"}]}),
                "messages[0].role",
                "messages[0].role: this field is required",
            ),
            (
                json!({"model": "m", "messages": [{"role": "user"}]}),
                "messages[0].content",
                "messages[0].content: this field is required",
            ),
            (
                json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "video", "video": {}}]}]}),
                "messages[0].content[0]",
                "unknown variant `video`",
            ),
            (
                json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "image_url"}]}]}),
                "messages[0].content[0].image_url",
                "this field is required",
            ),
            (
                json!({"model": "m", "messages": [{"role": "tool", "content": "x"}]}),
                "messages[0].tool_call_id",
                "this field is required",
            ),
            (
                json!({"model": "m", "messages": [{"role": "assistant", "tool_calls": [{"id": "a", "type": "function"}]}]}),
                "messages[0].tool_calls[0].function",
                "this field is required",
            ),
            (
                json!({"model": "m", "messages": [{"role": "user", "content": null}]}),
                "messages[0].content",
                "expected a string or an array of content parts",
            ),
        ];
        assert_parse_errors(&cases);
    }

    #[test]
    fn parse_errors_name_the_failing_top_level_field() {
        let cases = [
            (
                json!({"messages": []}),
                "model",
                "model: this field is required",
            ),
            (
                json!({"model": "m"}),
                "messages",
                "messages: this field is required",
            ),
            (
                json!({"model": 5, "messages": []}),
                "model",
                "model: invalid type: integer `5`",
            ),
            (
                json!({"model": "m", "messages": {}}),
                "messages",
                "expected an array",
            ),
            (
                json!({"model": "m", "messages": ["hi"]}),
                "messages[0]",
                "expected a message object",
            ),
            (
                json!({"model": "m", "messages": [], "temperature": "hot"}),
                "temperature",
                "temperature: invalid type: string",
            ),
            (
                json!({"model": "m", "messages": [], "max_tokens": -1}),
                "max_tokens",
                "max_tokens: invalid value",
            ),
            (
                json!({"model": "m", "messages": [], "stop": 1}),
                "stop",
                "a string or an array of strings",
            ),
            (
                json!({"model": "m", "messages": [], "stream": "yes"}),
                "stream",
                "stream: invalid type",
            ),
            (
                json!({"model": "m", "messages": [], "tools": [{"type": "custom", "custom": {}}]}),
                "tools[0]",
                "unknown variant `custom`",
            ),
            (
                json!({"model": "m", "messages": [], "tool_choice": "sometimes"}),
                "tool_choice",
                "unknown variant `sometimes`",
            ),
            (
                json!({"model": "m", "messages": [], "reasoning_effort": "extreme"}),
                "reasoning_effort",
                "unknown variant `extreme`",
            ),
        ];
        assert_parse_errors(&cases);
    }

    fn assert_parse_errors(cases: &[(Value, &str, &str)]) {
        for &(ref body, param, message) in cases {
            let err = parse_chat_request(body.to_string().as_bytes()).unwrap_err();
            assert_eq!(err.openai_param(), Some(param), "{body}: {err:?}");
            assert!(
                err.client_message().contains(message),
                "{body}: {:?} lacks {message:?}",
                err.client_message()
            );
        }
    }

    #[test]
    fn body_that_is_not_a_json_object_is_rejected_clearly() {
        for (body, message) in [
            (&b""[..], "request body is empty"),
            (b"{\"model\":", "not valid JSON"),
            (b"[]", "must be a JSON object"),
            (b"\"hi\"", "must be a JSON object"),
        ] {
            let err = parse_chat_request(body).unwrap_err();
            assert_eq!(err.status(), 400);
            assert!(err.client_message().contains(message), "{err:?}");
        }
    }

    // -- request translation ----------------------------------------------------------------

    #[test]
    fn request_translation_table() {
        let cases = [
            (
                "system and developer go to systemInstruction in order; roles map to user/model",
                json!({"model": "gemini-2.5-flash", "messages": [
                    {"role": "system", "content": "Be brief."},
                    {"role": "user", "content": "Hi"},
                    {"role": "developer", "content": [{"type": "text", "text": "Use French."}]},
                    {"role": "assistant", "content": "Salut"},
                    {"role": "user", "content": "Ça va?"}
                ]}),
                json!({
                    "systemInstruction": {"parts": [{"text": "Be brief."}, {"text": "Use French."}]},
                    "contents": [
                        {"role": "user", "parts": [{"text": "Hi"}]},
                        {"role": "model", "parts": [{"text": "Salut"}]},
                        {"role": "user", "parts": [{"text": "Ça va?"}]}
                    ]
                }),
            ),
            (
                "consecutive same-role turns merge and empty text is dropped",
                json!({"model": "m", "messages": [
                    {"role": "user", "content": "a"},
                    {"role": "user", "content": ""},
                    {"role": "user", "content": [{"type": "text", "text": "b"}, {"type": "text", "text": ""}]},
                    {"role": "assistant", "content": ""},
                    {"role": "assistant", "content": "c"}
                ]}),
                json!({"contents": [
                    {"role": "user", "parts": [{"text": "a"}, {"text": "b"}]},
                    {"role": "model", "parts": [{"text": "c"}]}
                ]}),
            ),
            (
                "sampling parameters map one to one; max_completion_tokens wins over max_tokens",
                json!({"model": "models/gemini-2.5-pro", "messages": [{"role": "user", "content": "x"}],
                       "temperature": 0.2, "top_p": 0.9, "max_tokens": 10, "max_completion_tokens": 20,
                       "stop": ["END", "STOP"], "n": 2, "seed": 42, "presence_penalty": 0.5,
                       "frequency_penalty": -0.5}),
                json!({"contents": [{"role": "user", "parts": [{"text": "x"}]}],
                       "generationConfig": {"temperature": 0.2, "topP": 0.9, "maxOutputTokens": 20,
                                            "stopSequences": ["END", "STOP"], "candidateCount": 2,
                                            "seed": 42, "presencePenalty": 0.5, "frequencyPenalty": -0.5}}),
            ),
            (
                "a single stop string becomes a one-element list; max_tokens alone is used",
                json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "stop": "END", "max_tokens": 7}),
                json!({"contents": [{"role": "user", "parts": [{"text": "x"}]}],
                       "generationConfig": {"stopSequences": ["END"], "maxOutputTokens": 7}}),
            ),
            (
                "images, audio and files become inlineData",
                json!({"model": "m", "messages": [{"role": "user", "content": [
                    {"type": "text", "text": "what is this"},
                    {"type": "image_url", "image_url": {"url": PNG_DATA_URL, "detail": "high"}},
                    {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "mp3"}},
                    {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBERg==", "filename": "a.pdf"}}
                ]}]}),
                json!({"contents": [{"role": "user", "parts": [
                    {"text": "what is this"},
                    {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
                    {"inlineData": {"mimeType": "audio/mp3", "data": "AAAA"}},
                    {"inlineData": {"mimeType": "application/pdf", "data": "JVBERg=="}}
                ]}]}),
            ),
            (
                "response_format json_schema sets the MIME type and the JSON schema",
                json!({"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": "x"}],
                       "response_format": {"type": "json_schema", "json_schema": {"name": "r", "schema": {"type": "object"}}}}),
                json!({"contents": [{"role": "user", "parts": [{"text": "x"}]}],
                       "generationConfig": {"responseMimeType": "application/json", "responseJsonSchema": {"type": "object"}}}),
            ),
            (
                "response_format json_object sets the MIME type only",
                json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "response_format": {"type": "json_object"}}),
                json!({"contents": [{"role": "user", "parts": [{"text": "x"}]}],
                       "generationConfig": {"responseMimeType": "application/json"}}),
            ),
            (
                "unknown top-level and message fields are not forwarded upstream",
                json!({"model": "m", "messages": [{"role": "user", "content": "x", "name": "bob", "cache_control": {}}],
                       "user": "u1", "parallel_tool_calls": true, "metadata": {"k": "v"}, "store": false}),
                json!({"contents": [{"role": "user", "parts": [{"text": "x"}]}]}),
            ),
        ];
        for (name, openai_body, want) in cases {
            assert_eq!(gemini_body(openai_body), want, "{name}");
        }
    }

    #[test]
    fn model_prefix_is_stripped_and_stream_flags_are_read() {
        let prepared = prepare(json!({"model": "models/gemini-2.5-flash", "stream": true,
            "stream_options": {"include_usage": true}, "messages": [{"role": "user", "content": "x"}]}))
        .unwrap();
        assert_eq!(prepared.upstream_model, "gemini-2.5-flash");
        assert!(prepared.stream && prepared.include_usage);
        let plain = prepare(
            json!({"model": "m", "stream_options": {"include_usage": true},
            "messages": [{"role": "user", "content": "x"}]}),
        )
        .unwrap();
        assert!(!plain.stream && !plain.include_usage);
    }

    #[test]
    fn a_conversation_starting_with_an_assistant_turn_is_kept_as_is() {
        let body = gemini_body(json!({"model": "m", "messages": [
            {"role": "assistant", "content": "Welcome!"}, {"role": "user", "content": "hi"}]}));
        assert_eq!(body["contents"][0]["role"], "model");
    }

    #[test]
    fn validation_rejects_bad_values_with_the_param_named() {
        let msg = |extra: Value| {
            let mut body = json!({"model": "m", "messages": [{"role": "user", "content": "x"}]});
            body.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            body
        };
        assert_bad(
            msg(json!({"temperature": 2.5})),
            "temperature",
            "between 0 and 2",
        );
        assert_bad(
            msg(json!({"temperature": -0.1})),
            "temperature",
            "between 0 and 2",
        );
        assert_bad(msg(json!({"top_p": 1.5})), "top_p", "between 0 and 1");
        assert_bad(msg(json!({"n": 0})), "n", "between 1 and 8");
        assert_bad(msg(json!({"n": 9})), "n", "between 1 and 8");
        assert_bad(msg(json!({"max_tokens": 0})), "max_tokens", "at least 1");
        assert_bad(
            msg(json!({"max_completion_tokens": 0})),
            "max_completion_tokens",
            "at least 1",
        );
        assert_bad(
            msg(json!({"presence_penalty": 3})),
            "presence_penalty",
            "between -2 and 2",
        );
        assert_bad(
            msg(json!({"stop": ["1", "2", "3", "4", "5", "6"]})),
            "stop",
            "at most 5",
        );
        assert_bad(msg(json!({"seed": 5_000_000_000_i64})), "seed", "32-bit");
        assert_bad(msg(json!({"model": ""})), "model", "non-empty");
        assert_bad(
            msg(json!({"model": "a/b"})),
            "model",
            "not a valid model name",
        );
        assert_bad(
            json!({"model": "m", "messages": []}),
            "messages",
            "at least one message",
        );
        assert_bad(
            json!({"model": "m", "messages": [{"role": "system", "content": "only rules"}, {"role": "user", "content": ""}]}),
            "messages",
            "at least one user, assistant or tool message",
        );
    }

    #[test]
    fn edge_values_are_accepted_and_never_overridden() {
        let body = gemini_body(
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
            "temperature": 0, "top_p": 1, "n": 1, "logprobs": false, "top_logprobs": 0}),
        );
        assert_eq!(
            body["generationConfig"],
            json!({"temperature": 0.0, "topP": 1.0, "candidateCount": 1})
        );
    }

    #[test]
    fn media_errors_name_the_content_part() {
        let with_part = |part: Value| json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "text", "text": "x"}, part]}]});
        assert_bad(
            with_part(
                json!({"type": "image_url", "image_url": {"url": "data:image/png;base64,@@@@"}}),
            ),
            "messages[0].content[1].image_url",
            "not valid base64",
        );
        assert_bad(
            with_part(
                json!({"type": "image_url", "image_url": {"url": "data:image/png;base64,AAA"}}),
            ),
            "messages[0].content[1].image_url",
            "not valid base64",
        );
        assert_bad(
            with_part(
                json!({"type": "image_url", "image_url": {"url": "data:image/png,rawbytes"}}),
            ),
            "messages[0].content[1].image_url",
            "expected a base64 data: URL",
        );
        assert_bad(
            with_part(json!({"type": "image_url", "image_url": {"url": "ftp://x"}})),
            "messages[0].content[1].image_url",
            "scheme `ftp` is not supported",
        );
        assert_bad(
            with_part(
                json!({"type": "input_audio", "input_audio": {"data": "AAAA", "format": "midi"}}),
            ),
            "messages[0].content[1].input_audio.format",
            "unsupported audio format",
        );
        assert_bad(
            with_part(json!({"type": "file", "file": {"file_id": "file-123"}})),
            "messages[0].content[1].file.file_id",
            "not supported yet",
        );
        assert_bad(
            json!({"model": "m", "messages": [{"role": "system", "content": [{"type": "image_url", "image_url": {"url": PNG_DATA_URL}}]}, {"role": "user", "content": "x"}]}),
            "messages[0].content[0]",
            "may only contain text parts",
        );
    }

    #[test]
    fn strict_base64_matches_the_base64_crate() {
        let long_valid = STANDARD.encode(vec![7u8; 10_000]);
        let mut long_padded_inside = STANDARD.encode(vec![1u8; 3070]);
        long_padded_inside.push_str(&STANDARD.encode([1u8; 3]));
        for sample in [
            "",
            "A",
            "AA==",
            "AAA=",
            "AAAA",
            "AB==",
            "AAB=",
            "A===",
            "====",
            "AA=A",
            "QUJD",
            "QUJDRA==",
            "QUJDRA=",
            "QUJD\n",
            "QU JD",
            "-_-_",
            &long_valid,
            &long_padded_inside,
        ] {
            assert_eq!(
                is_strict_base64(sample),
                STANDARD.decode(sample).is_ok() && !sample.is_empty(),
                "{sample:.20}"
            );
        }
    }

    #[test]
    fn data_url_parameters_and_case_are_tolerated() {
        assert_eq!(
            parse_data_url("DATA:image/jpeg;name=a.jpg;BASE64,AAAA"),
            Some(("image/jpeg", "AAAA"))
        );
        assert_eq!(parse_data_url("data:;base64,AAAA"), None);
    }

    #[test]
    fn tools_and_tool_choice_translate() {
        let tools = json!([
            {"type": "function", "function": {"name": "get_weather", "description": "Weather",
             "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "additionalProperties": false}, "strict": true}},
            {"type": "function", "function": {"name": "now"}}
        ]);
        let declarations = json!([{"functionDeclarations": [
            {"name": "get_weather", "description": "Weather",
             "parametersJsonSchema": {"type": "object", "properties": {"city": {"type": "string"}}, "additionalProperties": false}},
            {"name": "now"}
        ]}]);
        let cases = [
            (json!(null), json!(null)),
            (
                json!("auto"),
                json!({"functionCallingConfig": {"mode": "AUTO"}}),
            ),
            (
                json!("none"),
                json!({"functionCallingConfig": {"mode": "NONE"}}),
            ),
            (
                json!("required"),
                json!({"functionCallingConfig": {"mode": "ANY"}}),
            ),
            (
                json!({"type": "function", "function": {"name": "now"}}),
                json!({"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["now"]}}),
            ),
            (
                json!({"type": "allowed_tools", "allowed_tools": {"mode": "auto", "tools": [{"type": "function", "function": {"name": "now"}}]}}),
                json!({"functionCallingConfig": {"mode": "VALIDATED", "allowedFunctionNames": ["now"]}}),
            ),
            (
                json!({"type": "allowed_tools", "allowed_tools": {"mode": "required", "tools": [{"type": "function", "function": {"name": "now"}}]}}),
                json!({"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["now"]}}),
            ),
        ];
        for (choice, want) in cases {
            let body = gemini_body(
                json!({"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": "x"}],
                "tools": tools, "tool_choice": choice}),
            );
            assert_eq!(body["tools"], declarations);
            assert_eq!(
                body.get("toolConfig").cloned().unwrap_or(Value::Null),
                want,
                "{choice}"
            );
        }
    }

    #[test]
    fn tool_choice_without_tools_or_with_an_unknown_name_is_rejected() {
        let base = |choice: Value, tools: Value| json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "tool_choice": choice, "tools": tools});
        assert_bad(
            base(json!("required"), json!([])),
            "tool_choice",
            "requires tools",
        );
        assert_bad(
            base(
                json!({"type": "function", "function": {"name": "nope"}}),
                json!([{"type": "function", "function": {"name": "f"}}]),
            ),
            "tool_choice",
            "`nope`",
        );
        let body = gemini_body(base(json!("auto"), json!(null)));
        assert!(body.get("toolConfig").is_none() && body.get("tools").is_none());
    }

    #[test]
    fn tool_history_round_trips_to_function_call_and_response() {
        let body = gemini_body(json!({"model": "gemini-2.5-flash", "messages": [
            {"role": "user", "content": "weather in Paris and Rome?"},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                {"id": "call_2", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Rome\"}"}}
            ]},
            {"role": "tool", "tool_call_id": "call_2", "content": "{\"temp\": 20}"},
            {"role": "tool", "tool_call_id": "call_1", "content": [{"type": "text", "text": "18C"}]},
            {"role": "user", "content": "thanks"}
        ]}));
        assert_eq!(
            body["contents"],
            json!([
                {"role": "user", "parts": [{"text": "weather in Paris and Rome?"}]},
                {"role": "model", "parts": [
                    {"functionCall": {"id": "call_1", "name": "get_weather", "args": {"city": "Paris"}}},
                    {"functionCall": {"id": "call_2", "name": "get_weather", "args": {"city": "Rome"}}}
                ]},
                {"role": "user", "parts": [
                    {"functionResponse": {"id": "call_2", "name": "get_weather", "response": {"temp": 20}}},
                    {"functionResponse": {"id": "call_1", "name": "get_weather", "response": {"output": "18C"}}},
                    {"text": "thanks"}
                ]}
            ])
        );
    }

    #[test]
    fn legacy_function_call_and_function_role_translate() {
        let body = gemini_body(json!({"model": "m", "messages": [
            {"role": "user", "content": "x"},
            {"role": "assistant", "content": null, "function_call": {"name": "f", "arguments": ""}},
            {"role": "function", "name": "f", "content": "done"}
        ]}));
        assert_eq!(
            body["contents"][1]["parts"],
            json!([{"functionCall": {"name": "f", "args": {}}}])
        );
        assert_eq!(
            body["contents"][2]["parts"],
            json!([{"functionResponse": {"name": "f", "response": {"output": "done"}}}])
        );
    }

    #[test]
    fn tool_errors_name_the_message() {
        assert_bad(
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}, {"role": "tool", "tool_call_id": "ghost", "content": "1"}]}),
            "messages[1].tool_call_id",
            "`ghost`",
        );
        assert_bad(
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}, {"role": "assistant", "tool_calls": [
                {"id": "a", "type": "function", "function": {"name": "f", "arguments": "[1]"}}]}]}),
            "messages[1].tool_calls[0].function.arguments",
            "JSON object",
        );
    }

    #[test]
    fn tool_message_name_is_the_fallback_when_the_call_is_not_in_history() {
        let body = gemini_body(json!({"model": "m", "messages": [
            {"role": "user", "content": "x"},
            {"role": "tool", "tool_call_id": "trimmed", "name": "lookup", "content": "1"}]}));
        assert_eq!(
            body["contents"][0]["parts"][1]["functionResponse"]["name"],
            "lookup"
        );
    }

    #[test]
    fn thought_signatures_round_trip_from_id_or_extra_content() {
        let body = gemini_body(json!({"model": "gemini-3-pro-preview", "messages": [
            {"role": "user", "content": "x"},
            {"role": "assistant", "tool_calls": [
                {"id": "call_a__thought__c2lnLWE=", "type": "function", "function": {"name": "f", "arguments": "{}"}},
                {"id": "call_b", "type": "function", "function": {"name": "g", "arguments": "{}"},
                 "extra_content": {"google": {"thought_signature": "c2lnLWI="}}}
            ]},
            {"role": "tool", "tool_call_id": "call_a__thought__c2lnLWE=", "content": "1"},
            {"role": "tool", "tool_call_id": "call_b", "content": "2"}
        ]}));
        let model_parts = &body["contents"][1]["parts"];
        assert_eq!(model_parts[0]["thoughtSignature"], "c2lnLWE=");
        assert_eq!(model_parts[1]["thoughtSignature"], "c2lnLWI=");
        assert_eq!(
            body["contents"][2]["parts"][0]["functionResponse"]["name"],
            "f"
        );
    }

    #[test]
    fn gemini_3_gets_the_sentinel_when_a_client_dropped_the_signature() {
        let history = |model: &str| {
            json!({"model": model, "messages": [
            {"role": "user", "content": "x"},
            {"role": "assistant", "tool_calls": [
                {"id": "a", "type": "function", "function": {"name": "f", "arguments": "{}"}},
                {"id": "b", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "a", "content": "1"},
            {"role": "tool", "tool_call_id": "b", "content": "2"}]})
        };
        let parts = &gemini_body(history("gemini-3-flash-preview"))["contents"][1]["parts"];
        assert_eq!(parts[0]["thoughtSignature"], SIGNATURE_SENTINEL);
        assert!(
            parts[1].get("thoughtSignature").is_none(),
            "only the first call of a step"
        );
        let parts = &gemini_body(history("gemini-2.5-flash"))["contents"][1]["parts"];
        assert!(parts[0].get("thoughtSignature").is_none());
    }

    #[test]
    fn reasoning_effort_suffixes_and_thinking_config_reach_the_body() {
        let body = |req: Value| prepare(req).unwrap();
        let p = body(
            json!({"model": "gemini-3-pro-preview", "reasoning_effort": "medium",
            "messages": [{"role": "user", "content": "x"}]}),
        );
        assert_eq!(
            to_value(&p.body)["generationConfig"]["thinkingConfig"],
            json!({"thinkingLevel": "high"})
        );
        assert_eq!(p.adjustments, vec!["reasoning_effort=medium->high"]);
        // Suffixes leave the upstream model bare and add search.
        let p = body(json!({"model": "gemini-2.5-flash-thinking-4096-search",
            "messages": [{"role": "user", "content": "x"}]}));
        assert_eq!(p.upstream_model, "gemini-2.5-flash");
        let sent = to_value(&p.body);
        assert_eq!(
            sent["generationConfig"]["thinkingConfig"],
            json!({"thinkingBudget": 4096})
        );
        assert_eq!(sent["tools"], json!([{"googleSearch": {}}]));
        // extra_body.google (or a top-level `google`) wins over reasoning_effort.
        for (key, wrap) in [("extra_body", true), ("google", false)] {
            let google = json!({"thinking_config": {"thinking_budget": 300, "include_thoughts": true},
                "safety_settings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "OFF"}],
                "cached_content": "cachedContents/c1"});
            let ext = if wrap {
                json!({"google": google})
            } else {
                google
            };
            let p = body(
                json!({"model": "gemini-2.5-flash", "reasoning_effort": "high", key: ext,
                "messages": [{"role": "user", "content": "x"}]}),
            );
            let sent = to_value(&p.body);
            assert_eq!(
                sent["generationConfig"]["thinkingConfig"],
                json!({"thinkingBudget": 300, "includeThoughts": true}),
                "{key}"
            );
            assert_eq!(sent["safetySettings"][0]["threshold"], "OFF");
            assert_eq!(sent["cachedContent"], "cachedContents/c1");
            assert!(p.adjustments.is_empty());
        }
        // The configured default asks for thoughts.
        let req = parse_chat_request(
            json!({"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": "x"}]})
                .to_string()
                .as_bytes(),
        )
        .unwrap();
        let p = prepare_chat(
            req,
            &ChatOptions {
                include_thoughts: true,
            },
        )
        .unwrap();
        assert_eq!(
            to_value(&p.body)["generationConfig"]["thinkingConfig"],
            json!({"includeThoughts": true})
        );
        assert_bad(
            json!({"model": "gemini-2.5-flash", "extra_body": {"google": {"thinking_config": {"budget": 1}}},
                "messages": [{"role": "user", "content": "x"}]}),
            "extra_body.google",
            "unknown field `budget`",
        );
    }

    #[test]
    fn generation_config_keys_pass_through_and_the_rest_is_listed() {
        let p = prepare(json!({"model": "gemini-2.5-flash", "top_k": 12, "topK": 99,
            "response_modalities": ["TEXT"], "temperature": 0.2, "maxOutputTokens": 7, "max_tokens": 5,
            "mystery": 1, "metadata": {"a": "b"}, "parallel_tool_calls": true,
            "messages": [{"role": "user", "content": "x"}]}))
        .unwrap();
        let config = &to_value(&p.body)["generationConfig"];
        assert_eq!(config["responseModalities"], json!(["TEXT"]));
        assert!(config["topK"] == json!(12) || config["topK"] == json!(99));
        assert_eq!(config["maxOutputTokens"], 5, "the OpenAI parameter wins");
        assert_eq!(config["temperature"], 0.2);
        assert_eq!(p.ignored, vec!["mystery"]);
        let err = bad(
            json!({"model": "gemini-2.5-flash", "top_k": "x", "messages": [{"role": "user", "content": "x"}]}),
        );
        assert_eq!(err.status(), 400);
        assert!(err.client_message().contains("generationConfig"), "{err:?}");
    }

    #[test]
    fn logprobs_map_and_are_validated() {
        let p = prepare(
            json!({"model": "gemini-2.5-flash", "logprobs": true, "top_logprobs": 3,
            "messages": [{"role": "user", "content": "x"}]}),
        )
        .unwrap();
        let config = &to_value(&p.body)["generationConfig"];
        assert_eq!(config["responseLogprobs"], true);
        assert_eq!(config["logprobs"], 3);
        assert_bad(
            json!({"model": "m", "top_logprobs": 3, "messages": [{"role": "user", "content": "x"}]}),
            "top_logprobs",
            "requires logprobs",
        );
        assert_bad(
            json!({"model": "m", "logprobs": true, "top_logprobs": 21, "messages": [{"role": "user", "content": "x"}]}),
            "top_logprobs",
            "between 0 and 20",
        );
        let out = openai_logprobs(&json!({
            "chosenCandidates": [{"token": "he", "logProbability": -0.5}, {"token": "y", "logProbability": -1.0}],
            "topCandidates": [{"candidates": [{"token": "he", "logProbability": -0.5}, {"token": "hi", "logProbability": -2.0}]}]
        }));
        assert_eq!(
            out,
            json!({"content": [
                {"token": "he", "logprob": -0.5, "bytes": [104, 101], "top_logprobs": [
                    {"token": "he", "logprob": -0.5, "bytes": [104, 101]},
                    {"token": "hi", "logprob": -2.0, "bytes": [104, 105]}]},
                {"token": "y", "logprob": -1.0, "bytes": [121], "top_logprobs": []}
            ], "refusal": null})
        );
    }

    #[test]
    fn remote_images_become_placeholders_filled_in_order() {
        let mut p = prepare(json!({"model": "gemini-2.5-flash", "messages": [
            {"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": "https://example.com/a.png", "detail": "low"}},
                {"type": "text", "text": "and"},
                {"type": "image_url", "image_url": {"url": "HTTP://example.com/b.jpg"}}]}]}))
        .unwrap();
        assert_eq!(
            p.remote_media
                .iter()
                .map(|m| (m.url.as_str(), m.param.as_str()))
                .collect::<Vec<_>>(),
            vec![
                (
                    "https://example.com/a.png",
                    "messages[0].content[0].image_url"
                ),
                (
                    "HTTP://example.com/b.jpg",
                    "messages[0].content[2].image_url"
                ),
            ]
        );
        let blob = |m: &str, d: &str| gemini::Blob {
            mime_type: m.to_owned(),
            data: d.to_owned(),
        };
        fill_remote_media(
            &mut p.body,
            vec![blob("image/png", "AAAA"), blob("image/jpeg", "BBBB")],
        );
        assert_eq!(
            to_value(&p.body)["contents"][0]["parts"],
            json!([{"inlineData": {"mimeType": "image/png", "data": "AAAA"}}, {"text": "and"},
                {"inlineData": {"mimeType": "image/jpeg", "data": "BBBB"}}])
        );
        let many: Vec<Value> = (0..=MAX_REMOTE_MEDIA)
            .map(|i| json!({"type": "image_url", "image_url": {"url": format!("https://e.com/{i}.png")}}))
            .collect();
        assert_bad(
            json!({"model": "m", "messages": [{"role": "user", "content": many}]}),
            &format!("messages[0].content[{MAX_REMOTE_MEDIA}].image_url"),
            "at most",
        );
    }

    #[test]
    fn response_format_forms_and_enum_answers() {
        let config = |format: Value, model: &str| {
            to_value(
                &prepare(json!({"model": model, "response_format": format,
                    "messages": [{"role": "user", "content": "x"}]}))
                .unwrap()
                .body,
            )["generationConfig"]
                .clone()
        };
        assert_eq!(
            config(json!({"type": "text"}), "gemini-2.5-flash")["responseMimeType"],
            "text/plain"
        );
        assert_eq!(
            config(json!({"type": "json_object"}), "gemini-2.5-flash")["responseMimeType"],
            "application/json"
        );
        let schema = json!({"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"], "additionalProperties": false});
        let c = config(
            json!({"type": "json_schema", "json_schema": {"name": "n", "schema": schema}}),
            "gemini-2.5-flash",
        );
        assert_eq!(c["responseJsonSchema"]["properties"]["a"]["type"], "string");
        assert!(c.get("responseSchema").is_none());
        let c = config(
            json!({"type": "json_schema", "json_schema": {"name": "n", "schema": schema}}),
            "gemini-2.0-flash",
        );
        assert_eq!(c["responseSchema"]["properties"]["a"]["type"], "STRING");
        assert!(c.get("responseJsonSchema").is_none());
        let p = prepare(json!({"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": "x"}],
            "response_format": {"type": "json_schema", "json_schema": {"name": "c", "schema": {"type": "string", "enum": ["red", "blue"]}}}}))
        .unwrap();
        assert!(p.reply.enum_as_json);
        let c = to_value(&p.body)["generationConfig"].clone();
        assert_eq!(c["responseMimeType"], "text/x.enum");
        assert_eq!(
            c["responseSchema"],
            json!({"type": "STRING", "enum": ["red", "blue"]})
        );
        let ctx = ChatContext {
            reply: p.reply,
            ..ctx()
        };
        let out = chat_response(
            serde_json::from_value(json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "red"}]}, "finishReason": "STOP"}]})).unwrap(),
            &ctx,
        )
        .unwrap();
        assert_eq!(out.choices[0].message.content.as_deref(), Some("\"red\""));
    }

    #[test]
    fn prepared_body_never_contains_null() {
        fn has_null(v: &Value) -> bool {
            match v {
                Value::Null => true,
                Value::Array(items) => items.iter().any(has_null),
                Value::Object(map) => map.values().any(has_null),
                _ => false,
            }
        }
        let body = gemini_body(json!({"model": "m", "messages": [
            {"role": "system", "content": "s"}, {"role": "user", "content": "x"},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "a", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "a", "content": "r"}],
            "tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": "auto",
            "temperature": null, "stop": null, "response_format": {"type": "text"}}));
        assert!(!has_null(&body), "{body}");
    }

    // -- response translation ---------------------------------------------------------------

    #[test]
    fn text_response_becomes_a_spec_shaped_completion() {
        let got = respond(json!({
            "candidates": [{"content": {"role": "model", "parts": [{"text": "Hello"}, {"text": " world"}]},
                            "finishReason": "STOP", "index": 0}],
            "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 2, "totalTokenCount": 7},
            "modelVersion": "gemini-2.5-flash", "responseId": "xyz"
        }));
        assert_eq!(
            got,
            json!({
                "id": "chatcmpl-abc123", "object": "chat.completion", "created": 1_700_000_000, "model": "gemini-2.5-flash",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello world", "refusal": null},
                             "logprobs": null, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7,
                          "prompt_tokens_details": {"cached_tokens": 0},
                          "completion_tokens_details": {"reasoning_tokens": 0}}
            })
        );
    }

    #[test]
    fn thoughts_go_to_reasoning_content_never_content() {
        let got = respond(json!({
            "candidates": [{"content": {"parts": [{"text": "thinking...", "thought": true}, {"text": "Answer"}]}, "finishReason": "STOP"}],
            "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 1, "thoughtsTokenCount": 9, "totalTokenCount": 15}
        }));
        let message = &got["choices"][0]["message"];
        assert_eq!(message["content"], "Answer");
        assert_eq!(message["reasoning_content"], "thinking...");
        assert_eq!(got["usage"]["completion_tokens"], 10);
        assert_eq!(
            got["usage"]["completion_tokens_details"]["reasoning_tokens"],
            9
        );
    }

    #[test]
    fn safety_finish_reason_maps_to_content_filter() {
        let got = respond(
            json!({"candidates": [{"finishReason": "SAFETY", "safetyRatings": [{"category": "HARM_CATEGORY_HARASSMENT", "probability": "HIGH", "blocked": true}]}]}),
        );
        assert_eq!(got["choices"][0]["finish_reason"], "content_filter");
        assert_eq!(got["choices"][0]["message"]["content"], "");
    }

    #[test]
    fn max_tokens_finish_reason_maps_to_length() {
        let got = respond(
            json!({"candidates": [{"content": {"role": "model"}, "finishReason": "MAX_TOKENS"}]}),
        );
        assert_eq!(got["choices"][0]["finish_reason"], "length");
    }

    #[test]
    fn blocked_prompt_is_a_content_filter_choice_not_an_error() {
        let got = respond(
            json!({"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"},
                                 "usageMetadata": {"promptTokenCount": 9, "totalTokenCount": 9}}),
        );
        assert_eq!(
            got["choices"],
            json!([{"index": 0, "message": {"role": "assistant", "content": "", "refusal": null},
                                           "logprobs": null, "finish_reason": "content_filter"}])
        );
        assert_eq!(got["usage"]["prompt_tokens"], 9);
    }

    #[test]
    fn empty_response_without_block_reason_is_a_bad_gateway() {
        let err = chat_response(gemini::GenerateContentResponse::default(), &ctx()).unwrap_err();
        assert_eq!(err.status(), 502);
    }

    #[test]
    fn multiple_candidates_become_indexed_choices() {
        let got = respond(json!({"candidates": [
            {"content": {"parts": [{"text": "A"}]}, "finishReason": "STOP"},
            {"content": {"parts": [{"text": "B"}]}, "finishReason": "MAX_TOKENS", "index": 1}
        ]}));
        assert_eq!(got["choices"][0]["index"], 0);
        assert_eq!(got["choices"][1]["index"], 1);
        assert_eq!(got["choices"][1]["message"]["content"], "B");
        assert_eq!(got["choices"][1]["finish_reason"], "length");
    }

    #[test]
    fn function_calls_become_tool_calls_with_distinct_stable_ids() {
        let got = respond(json!({"candidates": [{"content": {"parts": [
            {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": "c2ln"},
            {"functionCall": {"name": "now"}}
        ]}, "finishReason": "STOP"}]}));
        let message = &got["choices"][0]["message"];
        assert_eq!(got["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(message["content"], Value::Null);
        assert_eq!(
            message["tool_calls"],
            json!([
                {"id": "call_abc123_0_0__thought__c2ln", "type": "function",
                 "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"},
                 "extra_content": {"google": {"thought_signature": "c2ln"}}},
                {"id": "call_abc123_0_1", "type": "function", "function": {"name": "now", "arguments": "{}"}}
            ])
        );
        assert_eq!(
            split_call_id("call_abc123_0_0__thought__c2ln"),
            ("call_abc123_0_0", Some("c2ln"))
        );
    }

    #[test]
    fn code_execution_and_images_render_as_markdown() {
        let got = respond(json!({"candidates": [{"content": {"parts": [
            {"executableCode": {"language": "PYTHON", "code": "print(1)"}},
            {"codeExecutionResult": {"outcome": "OUTCOME_OK", "output": "1"}},
            {"inlineData": {"mimeType": "image/png", "data": "AAAA"}},
            {"somethingNew": {}}
        ]}, "finishReason": "STOP"}]}));
        assert_eq!(
            got["choices"][0]["message"]["content"],
            "\n```python\nprint(1)\n```\n\n```output\n1\n```\n![image](data:image/png;base64,AAAA)"
        );
    }

    #[test]
    fn unknown_finish_reason_maps_to_stop() {
        let got = respond(
            json!({"candidates": [{"content": {"parts": [{"text": "x"}]}, "finishReason": "BRAND_NEW"}]}),
        );
        assert_eq!(got["choices"][0]["finish_reason"], "stop");
    }
}
