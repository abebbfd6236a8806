//! Gemini API wire types (`generativelanguage.googleapis.com/v1beta`), named as Google names them.
//!
//! Owns shapes and serde rules only: no translation, no I/O, no clock. Inbound request types keep
//! unknown fields in `extra` so the native surface can pass them through; upstream response types
//! are lenient (defaulted collections, `Unknown` enum arms, a catch-all `Part`).

use std::fmt;

use serde::de::{self, DeserializeOwned, Deserializer};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::domain::error::GatewayError;

/// A model id such as `gemini-2.5-flash`. Serializes as the resource name `models/…` and
/// accepts either form when deserialized.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ModelName(String);

impl ModelName {
    const PREFIX: &'static str = "models/";
    const MAX_LEN: usize = 256;

    /// Parses a client-supplied model name, with or without the `models/` prefix.
    ///
    /// Strict, because the id ends up in an upstream URL path: only ASCII letters, digits,
    /// `-`, `.` and `_` are accepted.
    pub fn parse(raw: &str) -> Result<Self, GatewayError> {
        let id = raw.strip_prefix(Self::PREFIX).unwrap_or(raw);
        if id.is_empty() {
            return Err(GatewayError::invalid_param(
                "model must be a non-empty string",
                "model",
            ));
        }
        let valid = id.len() <= Self::MAX_LEN
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
        if !valid {
            return Err(GatewayError::invalid_param(
                format!("model `{raw}` is not a valid model name"),
                "model",
            ));
        }
        Ok(Self(id.to_owned()))
    }

    /// The bare id, e.g. `gemini-2.5-flash`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The resource name, e.g. `models/gemini-2.5-flash`. Names from other collections
    /// (`tunedModels/…`) are already resource names and come back unchanged.
    pub fn resource(&self) -> String {
        if self.0.contains('/') {
            self.0.clone()
        } else {
            format!("{}{}", Self::PREFIX, self.0)
        }
    }
}

impl fmt::Display for ModelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for ModelName {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.resource())
    }
}

impl<'de> Deserialize<'de> for ModelName {
    /// Lenient on purpose: names come from upstream listings too, and an odd one there must not
    /// fail the whole list. Client input goes through [`ModelName::parse`] instead.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        let id = raw.strip_prefix(Self::PREFIX).unwrap_or(&raw);
        Ok(Self(id.to_owned()))
    }
}

// ---------------------------------------------------------------------------------------------
// generateContent request
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerateContentRequest {
    pub contents: Vec<Content>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_instruction: Option<Content>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<Tool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_config: Option<ToolConfig>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub safety_settings: Vec<SafetySetting>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation_config: Option<GenerationConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_content: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A turn of the conversation, or the system instruction.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Content {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// Missing when a candidate produced nothing (e.g. `MAX_TOKENS` spent on thinking).
    #[serde(default)]
    pub parts: Vec<Part>,
}

impl Content {
    pub fn new(role: Role, parts: Vec<Part>) -> Self {
        Self {
            role: Some(role),
            parts,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Model,
    /// Any other role string, kept verbatim so a passthrough does not rewrite it.
    #[serde(untagged)]
    Other(String),
}

/// One part of a [`Content`]. Gemini's `Part` is a protobuf `oneof` of data fields plus a few
/// flags that may accompany any of them, so it is a struct around the [`PartData`] enum.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Part {
    #[serde(flatten)]
    pub data: PartData,
    /// `true` when the part is a thought summary rather than answer text.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub thought: bool,
    /// Opaque signature Gemini 3 requires back on function-call parts of the current turn.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thought_signature: Option<String>,
    /// Fields this gateway does not model (`videoMetadata`, `partMetadata`, …), kept verbatim.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum PartData {
    Text(String),
    InlineData(Blob),
    FileData(FileData),
    FunctionCall(FunctionCall),
    FunctionResponse(FunctionResponse),
    ExecutableCode(ExecutableCode),
    CodeExecutionResult(CodeExecutionResult),
    /// No data field this gateway knows; the whole part lives in [`Part::extra`].
    #[serde(untagged)]
    Unknown,
}

impl Part {
    pub fn new(data: PartData) -> Self {
        Self {
            data,
            thought: false,
            thought_signature: None,
            extra: Map::new(),
        }
    }

    pub fn text(text: impl Into<String>) -> Self {
        Self::new(PartData::Text(text.into()))
    }
}

impl<'de> Deserialize<'de> for Part {
    /// Hand-written so that an unknown sibling field (Google adds them regularly) never turns a
    /// known part into an unknown one: the data field is picked out by name and the rest is kept.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut fields = Map::<String, Value>::deserialize(deserializer)?;
        let thought = take::<Option<bool>, D>(&mut fields, "thought")?.unwrap_or(false);
        let thought_signature = take::<Option<String>, D>(&mut fields, "thoughtSignature")?;
        let data = PartData::take_from::<D>(&mut fields)?;
        Ok(Self {
            data,
            thought,
            thought_signature,
            extra: fields,
        })
    }
}

impl PartData {
    fn take_from<'de, D: Deserializer<'de>>(
        fields: &mut Map<String, Value>,
    ) -> Result<Self, D::Error> {
        let Some(key) = fields.keys().find_map(|k| Self::known_key(k)) else {
            return Ok(Self::Unknown);
        };
        let value = fields.remove(key).unwrap_or(Value::Null);
        let parsed = match key {
            "text" => serde_json::from_value(value).map(Self::Text),
            "inlineData" => serde_json::from_value(value).map(Self::InlineData),
            "fileData" => serde_json::from_value(value).map(Self::FileData),
            "functionCall" => serde_json::from_value(value).map(Self::FunctionCall),
            "functionResponse" => serde_json::from_value(value).map(Self::FunctionResponse),
            "executableCode" => serde_json::from_value(value).map(Self::ExecutableCode),
            _ => serde_json::from_value(value).map(Self::CodeExecutionResult),
        };
        parsed.map_err(|e| de::Error::custom(format_args!("part.{key}: {e}")))
    }

    fn known_key(key: &str) -> Option<&'static str> {
        [
            "text",
            "inlineData",
            "fileData",
            "functionCall",
            "functionResponse",
            "executableCode",
            "codeExecutionResult",
        ]
        .into_iter()
        .find(|known| *known == key)
    }
}

fn take<'de, T: DeserializeOwned, D: Deserializer<'de>>(
    fields: &mut Map<String, Value>,
    key: &str,
) -> Result<T, D::Error> {
    let value = fields.remove(key).unwrap_or(Value::Null);
    serde_json::from_value(value).map_err(|e| de::Error::custom(format_args!("part.{key}: {e}")))
}

/// Raw bytes, base64-encoded in `data`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Blob {
    pub mime_type: String,
    pub data: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileData {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
    pub file_uri: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FunctionCall {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub name: String,
    /// A JSON object; absent for functions without parameters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FunctionResponse {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub name: String,
    /// Must be a JSON object (a protobuf `Struct`).
    pub response: Value,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutableCode {
    #[serde(default)]
    pub language: String,
    #[serde(default)]
    pub code: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CodeExecutionResult {
    #[serde(default)]
    pub outcome: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tool {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub function_declarations: Vec<FunctionDeclaration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub google_search: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub google_search_retrieval: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_execution: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url_context: Option<Value>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FunctionDeclaration {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `OpenAPI`-subset schema.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Value>,
    /// Full JSON Schema; mutually exclusive with `parameters`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters_json_schema: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_json_schema: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub behavior: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function_calling_config: Option<FunctionCallingConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retrieval_config: Option<Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FunctionCallingConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<FunctionCallingMode>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_function_names: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FunctionCallingMode {
    ModeUnspecified,
    Auto,
    Any,
    None,
    Validated,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SafetySetting {
    pub category: String,
    pub threshold: String,
}

/// A JSON Schema inside a request: parsed, or already written out in the client's key order
/// (see `translate::order`), which a parsed `Value` cannot keep.
#[derive(Debug, Clone)]
pub enum SchemaJson {
    Value(Value),
    Ordered(Box<serde_json::value::RawValue>),
}

impl SchemaJson {
    /// The schema as a value, whichever form it is in.
    pub fn to_value(&self) -> Value {
        match self {
            Self::Value(v) => v.clone(),
            Self::Ordered(raw) => serde_json::from_str(raw.get()).unwrap_or(Value::Null),
        }
    }
}

impl PartialEq for SchemaJson {
    fn eq(&self, other: &Self) -> bool {
        self.to_value() == other.to_value()
    }
}

impl Serialize for SchemaJson {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Value(v) => v.serialize(serializer),
            Self::Ordered(raw) => raw.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for SchemaJson {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Value::deserialize(deserializer).map(Self::Value)
    }
}

/// Every field Gemini accepts in `generationConfig`. Unset fields are never sent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerationConfig {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stop_sequences: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_mime_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_schema: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_json_schema: Option<SchemaJson>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub response_modalities: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub candidate_count: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_output_tokens: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_k: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presence_penalty: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frequency_penalty: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_logprobs: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logprobs: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_enhanced_civic_answers: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speech_config: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thinking_config: Option<ThinkingConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_config: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_resolution: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ThinkingConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_thoughts: Option<bool>,
    /// Gemini 2.5: token budget; `-1` asks for dynamic thinking, `0` turns it off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thinking_budget: Option<i32>,
    /// Gemini 3: `minimal`, `low`, `medium` or `high`, depending on the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thinking_level: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// generateContent response
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerateContentResponse {
    #[serde(default)]
    pub candidates: Vec<Candidate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_feedback: Option<PromptFeedback>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage_metadata: Option<UsageMetadata>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_id: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Candidate {
    /// Absent when the candidate was blocked before producing anything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<Content>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finish_reason: Option<FinishReason>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finish_message: Option<String>,
    /// Omitted by Gemini when it is 0 (protobuf JSON drops default values).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub safety_ratings: Vec<SafetyRating>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub citation_metadata: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grounding_metadata: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_count: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avg_logprobs: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logprobs_result: Option<Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FinishReason {
    FinishReasonUnspecified,
    Stop,
    MaxTokens,
    Safety,
    Recitation,
    Language,
    Other,
    Blocklist,
    ProhibitedContent,
    Spii,
    MalformedFunctionCall,
    ImageSafety,
    ImageProhibitedContent,
    ImageRecitation,
    ImageOther,
    NoImage,
    UnexpectedToolCall,
    TooManyToolCalls,
    /// A reason added upstream after this gateway was written.
    #[serde(other)]
    Unknown,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PromptFeedback {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_reason: Option<BlockReason>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub safety_ratings: Vec<SafetyRating>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BlockReason {
    BlockReasonUnspecified,
    Safety,
    Other,
    Blocklist,
    ProhibitedContent,
    ImageSafety,
    #[serde(other)]
    Unknown,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SafetyRating {
    #[serde(default)]
    pub category: String,
    #[serde(default)]
    pub probability: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub blocked: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct UsageMetadata {
    pub prompt_token_count: u64,
    pub candidates_token_count: u64,
    pub total_token_count: u64,
    pub thoughts_token_count: u64,
    pub cached_content_token_count: u64,
    pub tool_use_prompt_token_count: u64,
}

// ---------------------------------------------------------------------------------------------
// models
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Model {
    pub name: ModelName,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_model_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_token_limit: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_token_limit: Option<u64>,
    #[serde(default)]
    pub supported_generation_methods: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_temperature: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_k: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thinking: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListModelsResponse {
    #[serde(default)]
    pub models: Vec<Model>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// embeddings
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EmbedContentRequest {
    /// Required inside `batchEmbedContents`; optional for `embedContent`, whose URL names it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<ModelName>,
    pub content: Content,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_dimensionality: Option<u32>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchEmbedContentsRequest {
    pub requests: Vec<EmbedContentRequest>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContentEmbedding {
    #[serde(default)]
    pub values: Vec<f32>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EmbedContentResponse {
    #[serde(default)]
    pub embedding: ContentEmbedding,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchEmbedContentsResponse {
    #[serde(default)]
    pub embeddings: Vec<ContentEmbedding>,
}

// ---------------------------------------------------------------------------------------------
// errors
// ---------------------------------------------------------------------------------------------

/// Google's error envelope: `{"error": {"code", "message", "status", "details"}}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    pub error: ErrorStatus,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ErrorStatus {
    pub code: u16,
    pub message: String,
    pub status: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<Value>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn model_name_strips_and_adds_the_models_prefix() {
        let name = ModelName::parse("models/gemini-2.5-flash").unwrap();
        assert_eq!(name.as_str(), "gemini-2.5-flash");
        assert_eq!(name.resource(), "models/gemini-2.5-flash");
        assert_eq!(ModelName::parse("gemini-2.5-flash").unwrap(), name);
        assert_eq!(
            serde_json::to_value(&name).unwrap(),
            json!("models/gemini-2.5-flash")
        );
        let back: ModelName = serde_json::from_value(json!("models/gemini-2.5-flash")).unwrap();
        assert_eq!(back, name);
    }

    #[test]
    fn model_name_rejects_empty_and_url_breaking_names() {
        for bad in ["", "models/", "gemini:generateContent", "a/b", "x y", "é"] {
            let err = ModelName::parse(bad).unwrap_err();
            assert_eq!(err.status(), 400, "{bad}");
            assert_eq!(err.openai_param(), Some("model"));
        }
    }

    #[test]
    fn model_name_keeps_other_collections_as_resource_names() {
        let tuned: ModelName = serde_json::from_value(json!("tunedModels/my-model")).unwrap();
        assert_eq!(tuned.resource(), "tunedModels/my-model");
    }

    #[test]
    fn text_part_with_thought_flags_round_trips() {
        let raw = json!({"text": "hmm", "thought": true, "thoughtSignature": "c2ln"});
        let part: Part = serde_json::from_value(raw.clone()).unwrap();
        assert_eq!(part.data, PartData::Text("hmm".into()));
        assert!(part.thought);
        assert_eq!(part.thought_signature.as_deref(), Some("c2ln"));
        assert_eq!(serde_json::to_value(&part).unwrap(), raw);
    }

    #[test]
    fn known_part_survives_an_unknown_sibling_field() {
        let raw = json!({"text": "hi", "partMetadata": {"x": 1}});
        let part: Part = serde_json::from_value(raw.clone()).unwrap();
        assert_eq!(part.data, PartData::Text("hi".into()));
        assert_eq!(serde_json::to_value(&part).unwrap(), raw);
    }

    #[test]
    fn unknown_part_shape_is_kept_verbatim() {
        let raw = json!({"videoFrame": {"uri": "x"}, "someFlag": true});
        let part: Part = serde_json::from_value(raw.clone()).unwrap();
        assert_eq!(part.data, PartData::Unknown);
        assert_eq!(serde_json::to_value(&part).unwrap(), raw);
    }

    #[test]
    fn every_known_part_shape_parses() {
        let cases = [
            json!({"inlineData": {"mimeType": "image/png", "data": "AAAA"}}),
            json!({"fileData": {"mimeType": "application/pdf", "fileUri": "gs://x"}}),
            json!({"functionCall": {"name": "f", "args": {"a": 1}}}),
            json!({"functionResponse": {"name": "f", "response": {"ok": true}}}),
            json!({"executableCode": {"language": "PYTHON", "code": "print(1)"}}),
            json!({"codeExecutionResult": {"outcome": "OUTCOME_OK", "output": "1"}}),
        ];
        for raw in cases {
            let part: Part = serde_json::from_value(raw.clone()).unwrap();
            assert_ne!(part.data, PartData::Unknown, "{raw}");
            assert_eq!(serde_json::to_value(&part).unwrap(), raw);
        }
    }

    #[test]
    fn malformed_known_part_field_is_an_error() {
        let err = serde_json::from_value::<Part>(json!({"text": 5})).unwrap_err();
        assert!(err.to_string().contains("part.text"), "{err}");
    }

    #[test]
    fn unknown_finish_reason_parses_as_unknown() {
        let cand: Candidate =
            serde_json::from_value(json!({"finishReason": "SOMETHING_NEW"})).unwrap();
        assert_eq!(cand.finish_reason, Some(FinishReason::Unknown));
    }

    #[test]
    fn lenient_response_accepts_missing_collections_and_parts() {
        let resp: GenerateContentResponse = serde_json::from_value(json!({
            "candidates": [{"content": {"role": "model"}, "finishReason": "MAX_TOKENS"}],
            "usageMetadata": {"promptTokenCount": 3},
            "newTopLevelField": 1
        }))
        .unwrap();
        let content = resp.candidates[0].content.as_ref().unwrap();
        assert!(content.parts.is_empty());
        assert_eq!(content.role, Some(Role::Model));
        assert_eq!(resp.usage_metadata.unwrap().prompt_token_count, 3);
        let empty: GenerateContentResponse = serde_json::from_value(json!({})).unwrap();
        assert!(empty.candidates.is_empty());
    }

    #[test]
    fn unknown_role_is_kept_verbatim() {
        let content: Content =
            serde_json::from_value(json!({"role": "function", "parts": []})).unwrap();
        assert_eq!(content.role, Some(Role::Other("function".into())));
        assert_eq!(serde_json::to_value(&content).unwrap()["role"], "function");
    }

    #[test]
    fn outbound_request_never_sends_null_for_absent_options() {
        let req = GenerateContentRequest {
            contents: vec![Content::new(Role::User, vec![Part::text("hi")])],
            generation_config: Some(GenerationConfig {
                thinking_config: Some(ThinkingConfig::default()),
                ..GenerationConfig::default()
            }),
            tools: vec![Tool {
                function_declarations: vec![FunctionDeclaration {
                    name: "f".into(),
                    ..FunctionDeclaration::default()
                }],
                ..Tool::default()
            }],
            tool_config: Some(ToolConfig {
                function_calling_config: Some(FunctionCallingConfig::default()),
                retrieval_config: None,
            }),
            ..GenerateContentRequest::default()
        };
        assert_eq!(
            serde_json::to_value(&req).unwrap(),
            json!({
                "contents": [{"role": "user", "parts": [{"text": "hi"}]}],
                "generationConfig": {"thinkingConfig": {}},
                "tools": [{"functionDeclarations": [{"name": "f"}]}],
                "toolConfig": {"functionCallingConfig": {}}
            })
        );
    }

    #[test]
    fn inbound_request_keeps_unknown_fields_for_passthrough() {
        let raw = json!({
            "contents": [{"role": "user", "parts": [{"text": "hi"}]}],
            "generationConfig": {"temperature": 0.5, "futureKnob": 3},
            "labels": {"team": "a"}
        });
        let req: GenerateContentRequest = serde_json::from_value(raw.clone()).unwrap();
        assert_eq!(req.extra["labels"], json!({"team": "a"}));
        assert_eq!(serde_json::to_value(&req).unwrap(), raw);
    }

    #[test]
    fn model_listing_parses_real_fields() {
        let list: ListModelsResponse = serde_json::from_value(json!({
            "models": [{
                "name": "models/gemini-2.5-flash",
                "baseModelId": "gemini-2.5-flash",
                "version": "001",
                "displayName": "Gemini 2.5 Flash",
                "inputTokenLimit": 1_048_576,
                "outputTokenLimit": 65536,
                "supportedGenerationMethods": ["generateContent", "countTokens"],
                "temperature": 1.0, "maxTemperature": 2.0, "topP": 0.95, "topK": 64,
                "thinking": true
            }],
            "nextPageToken": "abc"
        }))
        .unwrap();
        assert_eq!(list.models[0].name.as_str(), "gemini-2.5-flash");
        assert_eq!(list.models[0].thinking, Some(true));
        assert_eq!(list.next_page_token.as_deref(), Some("abc"));
    }

    #[test]
    fn error_body_parses_google_envelope() {
        let body: ErrorBody = serde_json::from_value(json!({
            "error": {"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED",
                      "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "7s"}]}
        }))
        .unwrap();
        assert_eq!(body.error.code, 429);
        assert_eq!(body.error.status, "RESOURCE_EXHAUSTED");
        assert_eq!(body.error.details.len(), 1);
    }

    #[test]
    fn batch_embed_request_serializes_model_resource_names() {
        let req = BatchEmbedContentsRequest {
            requests: vec![EmbedContentRequest {
                model: Some(ModelName::parse("gemini-embedding-001").unwrap()),
                content: Content {
                    role: None,
                    parts: vec![Part::text("a")],
                },
                ..EmbedContentRequest::default()
            }],
        };
        assert_eq!(
            serde_json::to_value(&req).unwrap(),
            json!({"requests": [{"model": "models/gemini-embedding-001",
                                  "content": {"parts": [{"text": "a"}]}}]})
        );
    }
}
