//! `OpenAI` Chat Completions, Embeddings and Models wire types, named as `OpenAI` names them.
//!
//! Owns shapes and serde rules only: no translation, no I/O, no clock. Inbound requests keep
//! unknown fields in `extra`; responses follow the official `OpenAPI` document (required nullable
//! fields are always present, absent options are never sent as `null`).

use std::fmt;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Accepts `null` where a list is expected: clients echo `"tool_calls": null` and the like.
fn nullable_vec<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<Vec<T>>::deserialize(deserializer).map(Option::unwrap_or_default)
}

/// The `object` discriminator `OpenAI` puts on every response object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Object {
    #[serde(rename = "chat.completion")]
    ChatCompletion,
    #[serde(rename = "chat.completion.chunk")]
    ChatCompletionChunk,
    #[serde(rename = "list")]
    List,
    #[serde(rename = "embedding")]
    Embedding,
    #[serde(rename = "model")]
    Model,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    Developer,
    User,
    Assistant,
    Tool,
    Function,
}

impl Role {
    pub const ALL: [Role; 6] = [
        Role::System,
        Role::Developer,
        Role::User,
        Role::Assistant,
        Role::Tool,
        Role::Function,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::Developer => "developer",
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Tool => "tool",
            Role::Function => "function",
        }
    }
}

// ---------------------------------------------------------------------------------------------
// chat request
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatCompletionRequest {
    pub model: String,
    pub messages: Vec<ChatMessage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_options: Option<StreamOptions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_completion_tokens: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<Stop>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presence_penalty: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frequency_penalty: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_format: Option<ResponseFormat>,
    #[serde(
        default,
        deserialize_with = "nullable_vec",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub tools: Vec<Tool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<ToolChoice>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_effort: Option<ReasoningEffort>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logprobs: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_logprobs: Option<u32>,
    /// Parameters this gateway does not model (`parallel_tool_calls`, `metadata`,
    /// `extra_body`, …). Kept so later features and logs can see them.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
    /// The key order of the request's objects, for a response schema (filled by the parser).
    #[serde(skip)]
    pub key_orders: crate::domain::translate::order::KeyOrders,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StreamOptions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_usage: Option<bool>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `stop`: one sequence or a list of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Stop {
    One(String),
    Many(Vec<String>),
}

impl Stop {
    pub fn into_vec(self) -> Vec<String> {
        match self {
            Stop::One(s) => vec![s],
            Stop::Many(v) => v,
        }
    }
}

impl<'de> Deserialize<'de> for Stop {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct StopVisitor;
        impl<'de> Visitor<'de> for StopVisitor {
            type Value = Stop;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or an array of strings")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Stop, E> {
                Ok(Stop::One(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Stop, E> {
                Ok(Stop::One(v))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Stop, A::Error> {
                Vec::deserialize(de::value::SeqAccessDeserializer::new(seq)).map(Stop::Many)
            }
        }
        deserializer.deserialize_any(StopVisitor)
    }
}

/// A message of the conversation, discriminated by `role`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "lowercase")]
pub enum ChatMessage {
    System(InstructionMessage),
    Developer(InstructionMessage),
    User(UserMessage),
    Assistant(AssistantMessage),
    Tool(ToolMessage),
    Function(FunctionMessage),
}

impl ChatMessage {
    pub fn role(&self) -> Role {
        match self {
            ChatMessage::System(_) => Role::System,
            ChatMessage::Developer(_) => Role::Developer,
            ChatMessage::User(_) => Role::User,
            ChatMessage::Assistant(_) => Role::Assistant,
            ChatMessage::Tool(_) => Role::Tool,
            ChatMessage::Function(_) => Role::Function,
        }
    }
}

/// A `system` or `developer` message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstructionMessage {
    pub content: MessageContent,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserMessage {
    pub content: MessageContent,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AssistantMessage {
    /// Null when the turn only called tools.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<MessageContent>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refusal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(
        default,
        deserialize_with = "nullable_vec",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub tool_calls: Vec<ToolCall>,
    /// Deprecated single-function form of `tool_calls`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function_call: Option<FunctionCall>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolMessage {
    pub content: MessageContent,
    pub tool_call_id: String,
    /// Not in `OpenAI`'s schema, but `LangChain` and others send the function name here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Deprecated `function` role: the result of a `function_call`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionMessage {
    #[serde(default)]
    pub content: Option<String>,
    pub name: String,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Message content: plain text or an array of typed parts.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum MessageContent {
    Text(String),
    Parts(Vec<ContentPart>),
}

impl<'de> Deserialize<'de> for MessageContent {
    /// Hand-written so a wrong type reads "expected a string or an array of content parts"
    /// instead of serde's opaque untagged-enum message.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ContentVisitor;
        impl<'de> Visitor<'de> for ContentVisitor {
            type Value = MessageContent;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or an array of content parts")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<MessageContent, E> {
                Ok(MessageContent::Text(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<MessageContent, E> {
                Ok(MessageContent::Text(v))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<MessageContent, A::Error> {
                Vec::deserialize(de::value::SeqAccessDeserializer::new(seq))
                    .map(MessageContent::Parts)
            }
        }
        deserializer.deserialize_any(ContentVisitor)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContentPart {
    Text { text: String },
    ImageUrl { image_url: ImageUrl },
    InputAudio { input_audio: InputAudio },
    File { file: FileInput },
    Refusal { refusal: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageUrl {
    /// A `data:` URL or an http(s) URL.
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputAudio {
    /// Base64, without a `data:` prefix.
    pub data: String,
    /// `wav` or `mp3` in `OpenAI`'s schema.
    pub format: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileInput {
    /// Usually a `data:` URL, as `OpenAI`'s SDK examples build it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_data: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ResponseFormat {
    Text,
    JsonObject,
    JsonSchema { json_schema: JsonSchemaFormat },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JsonSchemaFormat {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strict: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ToolType {
    Function,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tool {
    #[serde(rename = "type")]
    pub kind: ToolType,
    pub function: FunctionDefinition,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionDefinition {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// A JSON Schema object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strict: Option<bool>,
}

/// `tool_choice`: a mode string, one named function, or an `allowed_tools` subset.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ToolChoice {
    Mode(ToolChoiceMode),
    Named(NamedToolChoice),
    AllowedTools(AllowedToolsChoice),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ToolChoiceMode {
    None,
    Auto,
    Required,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamedToolChoice {
    #[serde(rename = "type")]
    pub kind: ToolType,
    pub function: FunctionName,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionName {
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllowedToolsChoice {
    #[serde(rename = "type")]
    pub kind: AllowedToolsType,
    pub allowed_tools: AllowedTools,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AllowedToolsType {
    AllowedTools,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllowedTools {
    pub mode: AllowedToolsMode,
    pub tools: Vec<NamedToolChoice>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AllowedToolsMode {
    Auto,
    Required,
}

impl<'de> Deserialize<'de> for ToolChoice {
    /// Dispatches on the JSON shape so each error names what was expected of that shape.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        let parsed = match &value {
            Value::String(_) => serde_json::from_value(value).map(ToolChoice::Mode),
            Value::Object(obj) if obj.get("type") == Some(&Value::from("allowed_tools")) => {
                serde_json::from_value(value).map(ToolChoice::AllowedTools)
            }
            Value::Object(_) => serde_json::from_value(value).map(ToolChoice::Named),
            _ => {
                return Err(de::Error::custom(
                    "expected \"none\", \"auto\", \"required\" or a tool choice object",
                ));
            }
        };
        parsed.map_err(de::Error::custom)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReasoningEffort {
    None,
    Minimal,
    Low,
    Medium,
    High,
    Xhigh,
    Max,
}

// ---------------------------------------------------------------------------------------------
// chat response
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatCompletion {
    pub id: String,
    pub object: Object,
    pub created: u64,
    pub model: String,
    pub choices: Vec<Choice>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<CompletionUsage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_fingerprint: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Choice {
    pub index: u32,
    pub message: ResponseMessage,
    /// Required by the schema; `null` until logprobs are supported.
    pub logprobs: Option<Value>,
    pub finish_reason: FinishReason,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResponseMessage {
    pub role: Role,
    /// Required and nullable: `null` only when the turn is tool calls alone.
    pub content: Option<String>,
    /// Required and nullable; Gemini has no refusal channel, so always `null`.
    pub refusal: Option<String>,
    /// Thought summaries. Not in `OpenAI`'s schema; the de-facto field reasoning clients read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_content: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// Web citations of a grounded (`-search`) answer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub annotations: Vec<Annotation>,
    /// Generated images as `image_url` content parts, when `chat_image_output` is `parts`
    /// (the field `OpenRouter`'s clients read); otherwise they are Markdown in `content`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<Value>,
}

/// A message annotation; `OpenAI` defines only `url_citation`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Annotation {
    #[serde(rename = "type")]
    pub kind: AnnotationType,
    pub url_citation: UrlCitation,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnnotationType {
    UrlCitation,
}

/// A cited span of the message content: `start_index`..`end_index` in characters (Unicode
/// code points), end exclusive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UrlCitation {
    pub url: String,
    pub title: String,
    pub start_index: u32,
    pub end_index: u32,
}

impl Annotation {
    pub fn url_citation(url: String, title: String, start_index: u32, end_index: u32) -> Self {
        Self {
            kind: AnnotationType::UrlCitation,
            url_citation: UrlCitation {
                url,
                title,
                start_index,
                end_index,
            },
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    Stop,
    Length,
    ToolCalls,
    ContentFilter,
    FunctionCall,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolCall {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: ToolType,
    pub function: FunctionCall,
    /// Where Gemini's own `OpenAI` layer carries the Gemini 3 thought signature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra_content: Option<ExtraContent>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionCall {
    pub name: String,
    /// JSON text of the arguments object.
    pub arguments: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtraContent {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub google: Option<GoogleExtraContent>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GoogleExtraContent {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thought_signature: Option<String>,
}

impl ExtraContent {
    pub fn thought_signature(signature: String) -> Self {
        Self {
            google: Some(GoogleExtraContent {
                thought_signature: Some(signature),
            }),
        }
    }

    pub fn signature(&self) -> Option<&str> {
        self.google.as_ref()?.thought_signature.as_deref()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatCompletionChunk {
    pub id: String,
    pub object: Object,
    pub created: u64,
    pub model: String,
    pub choices: Vec<ChunkChoice>,
    /// Only on the final usage chunk; omitted (never `null`) elsewhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<CompletionUsage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_fingerprint: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChunkChoice {
    pub index: u32,
    pub delta: Delta,
    /// Always present as `null`, as `OpenAI` sends it.
    pub logprobs: Option<Value>,
    /// Required and nullable: `null` on every chunk but the choice's last.
    pub finish_reason: Option<FinishReason>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Delta {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_content: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCallChunk>,
    /// The message's web citations, sent once with the last content of a grounded answer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub annotations: Vec<Annotation>,
    /// Generated images as `image_url` content parts (`chat_image_output: parts`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolCallChunk {
    pub index: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<ToolType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<FunctionCallChunk>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra_content: Option<ExtraContent>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionCallChunk {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arguments: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompletionUsage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub total_tokens: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_tokens_details: Option<PromptTokensDetails>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_tokens_details: Option<CompletionTokensDetails>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PromptTokensDetails {
    #[serde(default)]
    pub cached_tokens: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompletionTokensDetails {
    #[serde(default)]
    pub reasoning_tokens: u64,
}

// ---------------------------------------------------------------------------------------------
// embeddings
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmbeddingRequest {
    pub input: EmbeddingInput,
    pub model: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dimensions: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding_format: Option<EncodingFormat>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `input`: a string, strings, token ids, or lists of token ids.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum EmbeddingInput {
    Text(String),
    Texts(Vec<String>),
    Tokens(Vec<i64>),
    TokenBatches(Vec<Vec<i64>>),
}

impl<'de> Deserialize<'de> for EmbeddingInput {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        const EXPECTED: &str = "expected a string, an array of strings, an array of token ids or an array of token-id arrays";
        let value = Value::deserialize(deserializer)?;
        let parsed = match &value {
            Value::String(_) => serde_json::from_value(value).map(EmbeddingInput::Text),
            Value::Array(items) => match items.first() {
                None | Some(Value::String(_)) => {
                    serde_json::from_value(value).map(EmbeddingInput::Texts)
                }
                Some(Value::Number(_)) => serde_json::from_value(value).map(EmbeddingInput::Tokens),
                Some(Value::Array(_)) => {
                    serde_json::from_value(value).map(EmbeddingInput::TokenBatches)
                }
                Some(_) => return Err(de::Error::custom(EXPECTED)),
            },
            _ => return Err(de::Error::custom(EXPECTED)),
        };
        parsed.map_err(|e| de::Error::custom(format_args!("{e} ({EXPECTED})")))
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EncodingFormat {
    #[default]
    Float,
    Base64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmbeddingResponse {
    pub object: Object,
    pub data: Vec<Embedding>,
    pub model: String,
    pub usage: EmbeddingUsage,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Embedding {
    pub object: Object,
    pub index: u32,
    pub embedding: EmbeddingVector,
}

/// Floats, or base64 of their little-endian `f32` bytes when `encoding_format` is `base64`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum EmbeddingVector {
    Float(Vec<f32>),
    Base64(String),
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmbeddingUsage {
    pub prompt_tokens: u64,
    pub total_tokens: u64,
}

// ---------------------------------------------------------------------------------------------
// models
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Model {
    pub id: String,
    pub object: Object,
    pub created: u64,
    pub owned_by: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelList {
    pub object: Object,
    pub data: Vec<Model>,
}

// ---------------------------------------------------------------------------------------------
// errors
// ---------------------------------------------------------------------------------------------

/// `OpenAI`'s error envelope: `{"error": {"message", "type", "param", "code"}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorResponse {
    pub error: ErrorObject,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorObject {
    pub message: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// Required and nullable.
    pub param: Option<String>,
    /// Required and nullable.
    pub code: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request(body: Value) -> ChatCompletionRequest {
        serde_json::from_value(body).unwrap()
    }

    #[test]
    fn request_parses_every_message_role_and_content_shape() {
        let req = request(json!({
            "model": "gemini-2.5-flash",
            "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "developer", "content": [{"type": "text", "text": "dev"}]},
                {"role": "user", "content": [
                    {"type": "text", "text": "look"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA", "detail": "low"}},
                    {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}},
                    {"type": "file", "file": {"file_data": "data:application/pdf;base64,AAAA", "filename": "a.pdf"}}
                ]},
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
                ]},
                {"role": "tool", "tool_call_id": "call_1", "content": "42"},
                {"role": "function", "name": "f", "content": "42"}
            ]
        }));
        let roles: Vec<Role> = req.messages.iter().map(ChatMessage::role).collect();
        assert_eq!(roles, Role::ALL);
        let ChatMessage::User(user) = &req.messages[2] else {
            panic!("user message expected")
        };
        let MessageContent::Parts(parts) = &user.content else {
            panic!("parts expected")
        };
        assert_eq!(parts.len(), 4);
    }

    #[test]
    fn request_keeps_unknown_fields_in_extra() {
        let req = request(json!({
            "model": "m", "messages": [{"role": "user", "content": "hi", "cache_control": {"type": "ephemeral"}}],
            "parallel_tool_calls": false, "metadata": {"a": "b"}
        }));
        assert_eq!(req.extra["parallel_tool_calls"], json!(false));
        assert_eq!(req.extra["metadata"], json!({"a": "b"}));
        let ChatMessage::User(user) = &req.messages[0] else {
            panic!()
        };
        assert_eq!(user.extra["cache_control"], json!({"type": "ephemeral"}));
        assert!(!req.extra.contains_key("role"));
    }

    #[test]
    fn request_accepts_null_for_optional_fields() {
        let req = request(json!({
            "model": "m", "messages": [{"role": "assistant", "content": "x", "tool_calls": null}],
            "temperature": null, "stop": null, "tools": null, "tool_choice": null, "stream_options": null
        }));
        assert!(req.temperature.is_none() && req.stop.is_none() && req.tools.is_empty());
    }

    #[test]
    fn stop_accepts_string_or_list() {
        let one = request(json!({"model": "m", "messages": [], "stop": "END"}));
        assert_eq!(one.stop, Some(Stop::One("END".into())));
        let many = request(json!({"model": "m", "messages": [], "stop": ["a", "b"]}));
        assert_eq!(many.stop.unwrap().into_vec(), vec!["a", "b"]);
        let err = serde_json::from_value::<Stop>(json!(3)).unwrap_err();
        assert!(err.to_string().contains("a string or an array of strings"));
    }

    #[test]
    fn wrong_content_type_names_what_was_expected() {
        let err = serde_json::from_value::<MessageContent>(json!(5)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid type: integer `5`, expected a string or an array of content parts"
        );
    }

    #[test]
    fn tool_choice_parses_every_shape() {
        let cases = [
            (json!("auto"), ToolChoice::Mode(ToolChoiceMode::Auto)),
            (json!("none"), ToolChoice::Mode(ToolChoiceMode::None)),
            (
                json!("required"),
                ToolChoice::Mode(ToolChoiceMode::Required),
            ),
            (
                json!({"type": "function", "function": {"name": "f"}}),
                ToolChoice::Named(NamedToolChoice {
                    kind: ToolType::Function,
                    function: FunctionName { name: "f".into() },
                }),
            ),
        ];
        for (raw, want) in cases {
            let got: ToolChoice = serde_json::from_value(raw.clone()).unwrap();
            assert_eq!(got, want);
            assert_eq!(serde_json::to_value(&got).unwrap(), raw);
        }
        let allowed = json!({"type": "allowed_tools", "allowed_tools": {"mode": "required",
            "tools": [{"type": "function", "function": {"name": "g"}}]}});
        let got: ToolChoice = serde_json::from_value(allowed.clone()).unwrap();
        assert!(matches!(got, ToolChoice::AllowedTools(_)));
        assert_eq!(serde_json::to_value(&got).unwrap(), allowed);
        assert!(serde_json::from_value::<ToolChoice>(json!("sometimes")).is_err());
        assert!(serde_json::from_value::<ToolChoice>(json!(1)).is_err());
    }

    #[test]
    fn embedding_input_accepts_all_four_shapes() {
        let cases = [
            (json!("a"), EmbeddingInput::Text("a".into())),
            (
                json!(["a", "b"]),
                EmbeddingInput::Texts(vec!["a".into(), "b".into()]),
            ),
            (json!([1, 2]), EmbeddingInput::Tokens(vec![1, 2])),
            (
                json!([[1], [2, 3]]),
                EmbeddingInput::TokenBatches(vec![vec![1], vec![2, 3]]),
            ),
            (json!([]), EmbeddingInput::Texts(vec![])),
        ];
        for (raw, want) in cases {
            assert_eq!(serde_json::from_value::<EmbeddingInput>(raw).unwrap(), want);
        }
        assert!(serde_json::from_value::<EmbeddingInput>(json!(["a", 1])).is_err());
        assert!(serde_json::from_value::<EmbeddingInput>(json!({"a": 1})).is_err());
    }

    #[test]
    fn response_message_always_carries_content_and_refusal() {
        let msg = ResponseMessage {
            role: Role::Assistant,
            content: None,
            refusal: None,
            reasoning_content: None,
            tool_calls: vec![],
            annotations: vec![],
            images: vec![],
        };
        assert_eq!(
            serde_json::to_value(&msg).unwrap(),
            json!({"role": "assistant", "content": null, "refusal": null})
        );
    }

    #[test]
    fn chunk_omits_usage_but_keeps_nullable_choice_fields() {
        let chunk = ChatCompletionChunk {
            id: "chatcmpl-1".into(),
            object: Object::ChatCompletionChunk,
            created: 1,
            model: "m".into(),
            choices: vec![ChunkChoice {
                index: 0,
                delta: Delta::default(),
                logprobs: None,
                finish_reason: None,
            }],
            usage: None,
            system_fingerprint: None,
        };
        assert_eq!(
            serde_json::to_value(&chunk).unwrap(),
            json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m",
                   "choices": [{"index": 0, "delta": {}, "logprobs": null, "finish_reason": null}]})
        );
    }

    #[test]
    fn request_serialization_never_emits_null_for_absent_options() {
        let req =
            request(json!({"model": "m", "messages": [{"role": "assistant", "content": null}]}));
        assert_eq!(
            serde_json::to_value(&req).unwrap(),
            json!({"model": "m", "messages": [{"role": "assistant"}]})
        );
    }
}
