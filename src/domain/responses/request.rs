//! A Responses request: parsed with errors that name the field at fault (`input[2].type`),
//! then turned into the chat request the existing translation takes.

use std::collections::HashSet;

use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::items::{CONTENT_TYPES, ContentItem, ITEM_TYPES, Item, ItemContent, MessageRole};
use crate::domain::error::GatewayError;
use crate::domain::openai::{ChatCompletionRequest, ReasoningEffort};
use crate::domain::translate::chat::parse_chat_request;
use crate::domain::translate::order::KeyOrders;
use crate::domain::translate::{
    Check, check, field_error, first_field_error, json_kind, json_object, required,
};

/// A parsed `POST /v1/responses` body.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedResponses {
    /// The model as the client named it; the edge resolves aliases in place.
    pub model: String,
    pub previous_response_id: Option<String>,
    /// `store` (default true): keep the response so it can be retrieved and continued.
    pub store: bool,
    pub stream: bool,
    input: Vec<Item>,
    fields: Fields,
    key_orders: KeyOrders,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
struct Fields {
    #[serde(default)]
    instructions: Option<String>,
    #[serde(default)]
    tools: Option<Vec<Value>>,
    #[serde(default)]
    tool_choice: Option<Value>,
    #[serde(default)]
    text: Option<TextConfig>,
    #[serde(default)]
    reasoning: Option<ReasoningConfig>,
    #[serde(default)]
    temperature: Option<f64>,
    #[serde(default)]
    top_p: Option<f64>,
    #[serde(default)]
    max_output_tokens: Option<u32>,
    #[serde(default)]
    parallel_tool_calls: Option<bool>,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    metadata: Option<Map<String, Value>>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
struct TextConfig {
    #[serde(default)]
    format: Option<TextFormat>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum TextFormat {
    Text,
    JsonObject,
    JsonSchema {
        name: String,
        #[serde(default)]
        schema: Option<Value>,
        #[serde(default)]
        description: Option<String>,
        #[serde(default)]
        strict: Option<bool>,
    },
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
struct ReasoningConfig {
    #[serde(default)]
    effort: Option<ReasoningEffort>,
    #[serde(default)]
    summary: Option<String>,
    #[serde(default)]
    generate_summary: Option<String>,
}

/// A function tool as the Responses API spells it (flat, no `function` wrapper).
#[derive(Debug, Clone, PartialEq, Deserialize)]
struct FunctionTool {
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    parameters: Option<Value>,
    #[serde(default)]
    strict: Option<bool>,
}

const TOP_LEVEL_FIELDS: &[(&str, Check)] = &[
    ("model", check::<String>),
    ("instructions", check::<Option<String>>),
    ("tools", check::<Option<Vec<Value>>>),
    ("text", check::<Option<TextConfig>>),
    ("reasoning", check::<Option<ReasoningConfig>>),
    ("previous_response_id", check::<Option<String>>),
    ("store", check::<Option<bool>>),
    ("stream", check::<Option<bool>>),
    ("temperature", check::<Option<f64>>),
    ("top_p", check::<Option<f64>>),
    ("max_output_tokens", check::<Option<u32>>),
    ("parallel_tool_calls", check::<Option<bool>>),
    ("user", check::<Option<String>>),
    ("metadata", check::<Option<Map<String, Value>>>),
];

/// Fields of the Responses API this gateway cannot serve: refused rather than ignored.
const UNSUPPORTED: &[(&str, &str)] = &[
    ("background", "background responses are not supported"),
    (
        "conversation",
        "conversations are not supported; use previous_response_id",
    ),
    ("prompt", "prompt templates are not supported"),
];

/// Parses a `POST /v1/responses` body.
pub fn parse_request(body: &[u8]) -> Result<ParsedResponses, GatewayError> {
    let object = json_object(body)?;
    if !object.contains_key("model") {
        return Err(required("model"));
    }
    if let Some(err) = first_field_error(&object, TOP_LEVEL_FIELDS, "") {
        return Err(err);
    }
    // serde reads a struct from an array too; these must be objects.
    for field in ["text", "reasoning"] {
        if let Some(value) = object.get(field).filter(|v| !v.is_null() && !v.is_object()) {
            return Err(GatewayError::invalid_param(
                format!("{field}: expected an object, not {}", json_kind(value)),
                field,
            ));
        }
    }
    for (field, why) in UNSUPPORTED {
        match object.get(*field) {
            None | Some(Value::Null | Value::Bool(false)) => {}
            Some(_) => {
                return Err(GatewayError::invalid_param(
                    format!("{field}: {why}."),
                    *field,
                ));
            }
        }
    }
    let fields =
        Fields::deserialize(Value::Object(object.clone())).map_err(|e| field_error("", &e))?;
    let input = match object.get("input") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(text)) => vec![Item::Message {
            id: None,
            role: MessageRole::User,
            content: ItemContent::Text(text.clone()),
            status: None,
        }],
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, item)| parse_item(item, &format!("input[{i}]")))
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(GatewayError::invalid_param(
                "input: expected a string or an array of input items",
                "input",
            ));
        }
    };
    let str_field = |name: &str| object.get(name).and_then(Value::as_str).map(str::to_owned);
    let bool_field = |name: &str| object.get(name).and_then(Value::as_bool);
    let json_schema = matches!(
        fields.text.as_ref().and_then(|t| t.format.as_ref()),
        Some(TextFormat::JsonSchema { .. })
    );
    Ok(ParsedResponses {
        model: str_field("model").unwrap_or_default(),
        previous_response_id: str_field("previous_response_id"),
        store: bool_field("store").unwrap_or(true),
        stream: bool_field("stream").unwrap_or(false),
        input,
        fields,
        key_orders: if json_schema {
            KeyOrders::collect(body)
        } else {
            KeyOrders::default()
        },
    })
}

/// One input item, checked field by field so an error names its place.
fn parse_item(value: &Value, path: &str) -> Result<Item, GatewayError> {
    let Some(object) = value.as_object() else {
        return Err(GatewayError::invalid_param(
            format!("{path}: expected an input item object"),
            path,
        ));
    };
    let kind = match object.get("type") {
        Some(Value::String(kind)) => kind.as_str(),
        // `{role, content}` without a type is a message, as `OpenAI` accepts it.
        None if object.contains_key("role") => "message",
        None => return Err(required(&format!("{path}.type"))),
        Some(_) => {
            return Err(GatewayError::invalid_param(
                format!("{path}.type: expected a string"),
                format!("{path}.type"),
            ));
        }
    };
    if !ITEM_TYPES.split(", ").any(|t| t == kind) {
        return Err(GatewayError::invalid_param(
            format!(
                "{path}.type: unsupported input item type `{}`; expected one of {ITEM_TYPES}",
                clip(kind)
            ),
            format!("{path}.type"),
        ));
    }
    let mut tagged = object.clone();
    tagged.insert("type".to_owned(), Value::from(kind));
    if kind == "message"
        && let Some(Value::Array(parts)) = object.get("content")
    {
        for (j, part) in parts.iter().enumerate() {
            let part_path = format!("{path}.content[{j}]");
            let part_kind = part.get("type").and_then(Value::as_str);
            match part_kind {
                Some(k) if CONTENT_TYPES.split(", ").any(|t| t == k) => {}
                Some(k) => {
                    return Err(GatewayError::invalid_param(
                        format!(
                            "{part_path}.type: unsupported content type `{}`; expected one of {CONTENT_TYPES}",
                            clip(k)
                        ),
                        format!("{part_path}.type"),
                    ));
                }
                None => return Err(required(&format!("{part_path}.type"))),
            }
        }
    }
    let item = Item::deserialize(Value::Object(tagged)).map_err(|e| field_error(path, &e))?;
    if let Item::FunctionCall { arguments, .. } = &item
        && !arguments.trim().is_empty()
        && !matches!(
            serde_json::from_str::<Value>(arguments),
            Ok(Value::Object(_))
        )
    {
        let param = format!("{path}.arguments");
        return Err(GatewayError::invalid_param(
            format!("{param}: must be a JSON object encoded as a string"),
            param,
        ));
    }
    Ok(item)
}

/// A stored conversation (a JSON array of items) read back.
pub fn conversation_from_json(json: &str) -> Result<Vec<Item>, GatewayError> {
    let broken = |e: serde_json::Error| GatewayError::Internal(format!("stored conversation: {e}"));
    match serde_json::from_str::<Value>(json).map_err(broken)? {
        // Item by item from a `Value`, as input items are read: one deserializer for both.
        Value::Array(items) => items
            .into_iter()
            .map(|item| Item::deserialize(item).map_err(broken))
            .collect(),
        _ => Err(GatewayError::Internal(
            "stored conversation: not an array".into(),
        )),
    }
}

/// Values echoed into error messages are clipped.
fn clip(s: &str) -> String {
    s.chars().take(64).collect()
}

/// The request's parameters as the response object echoes them.
#[derive(Debug, Clone, PartialEq)]
pub struct Echo {
    pub instructions: Option<String>,
    pub tools: Vec<Value>,
    pub tool_choice: Value,
    pub text: Value,
    pub reasoning: Value,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub max_output_tokens: Option<u32>,
    pub store: bool,
    pub previous_response_id: Option<String>,
    pub parallel_tool_calls: bool,
    pub metadata: Map<String, Value>,
    pub user: Option<String>,
}

/// A request ready for the chat translation.
#[derive(Debug, Clone, PartialEq)]
pub struct PreparedResponses {
    pub chat: ChatCompletionRequest,
    /// The whole conversation so far: the continued history, then this request's input.
    /// With the output appended, it is what a stored response keeps.
    pub conversation: Vec<Item>,
    /// `reasoning.summary` was asked for: thoughts come back as reasoning summaries.
    pub wants_summary: bool,
    pub echo: Echo,
}

/// Turns a parsed request, after the `history` it continues, into a chat request.
pub fn prepare(
    parsed: ParsedResponses,
    history: Vec<Item>,
) -> Result<PreparedResponses, GatewayError> {
    let ParsedResponses {
        model,
        previous_response_id,
        store,
        stream,
        input,
        fields,
        key_orders,
    } = parsed;
    let first_input = history.len();
    let mut conversation = history;
    conversation.extend(input);
    let mut messages = Vec::new();
    if let Some(instructions) = fields.instructions.as_ref().filter(|i| !i.is_empty()) {
        messages.push(json!({"role": "system", "content": instructions}));
    }
    conversation_messages(&conversation, first_input, &mut messages)?;
    if messages.is_empty() {
        return Err(GatewayError::invalid_param(
            "input: give at least one input item (or a previous_response_id to continue)",
            "input",
        ));
    }
    let tools = fields.tools.clone().unwrap_or_default();
    let mut chat = Map::new();
    chat.insert("model".into(), Value::from(model));
    chat.insert("messages".into(), Value::Array(messages));
    chat.insert("stream".into(), Value::Bool(stream));
    if stream {
        chat.insert("stream_options".into(), json!({"include_usage": true}));
    }
    if !tools.is_empty() {
        chat.insert("tools".into(), Value::Array(chat_tools(&tools)?));
    }
    if let Some(choice) = fields.tool_choice.as_ref().filter(|c| !c.is_null()) {
        chat.insert("tool_choice".into(), chat_tool_choice(choice)?);
    }
    if let Some(format) = fields.text.as_ref().and_then(|t| t.format.as_ref()) {
        chat.insert("response_format".into(), response_format(format));
    }
    let reasoning = fields.reasoning.clone().unwrap_or_default();
    if let Some(effort) = reasoning.effort {
        chat.insert("reasoning_effort".into(), json!(effort));
    }
    for (name, value) in [
        ("temperature", fields.temperature.map(Value::from)),
        ("top_p", fields.top_p.map(Value::from)),
        (
            "max_completion_tokens",
            fields.max_output_tokens.map(Value::from),
        ),
        (
            "parallel_tool_calls",
            fields.parallel_tool_calls.map(Value::from),
        ),
    ] {
        if let Some(value) = value {
            chat.insert(name.into(), value);
        }
    }
    // Through the chat parser itself (bytes, as a chat body arrives): one deserializer for
    // both surfaces in the worker, and the same checks.
    let mut chat = parse_chat_request(Value::Object(chat).to_string().as_bytes())?;
    chat.key_orders = key_orders;
    let summary = reasoning.summary.or(reasoning.generate_summary);
    let echo = Echo {
        instructions: fields.instructions,
        tools,
        tool_choice: fields.tool_choice.unwrap_or_else(|| Value::from("auto")),
        text: text_echo(fields.text.as_ref()),
        reasoning: json!({"effort": reasoning.effort, "summary": summary}),
        temperature: fields.temperature,
        top_p: fields.top_p,
        max_output_tokens: fields.max_output_tokens,
        store,
        previous_response_id,
        parallel_tool_calls: fields.parallel_tool_calls.unwrap_or(true),
        metadata: fields.metadata.unwrap_or_default(),
        user: fields.user,
    };
    Ok(PreparedResponses {
        chat,
        conversation,
        wants_summary: summary.is_some(),
        echo,
    })
}

/// The conversation as chat messages. Consecutive function calls become one assistant turn
/// (parallel calls); reasoning items carry nothing Gemini takes back (the thought signatures
/// ride in the call ids) and are skipped. Items from `first_input` on are the request's own
/// input, named `input[i]` in errors.
fn conversation_messages(
    items: &[Item],
    first_input: usize,
    messages: &mut Vec<Value>,
) -> Result<(), GatewayError> {
    let mut calls: HashSet<&str> = HashSet::new();
    let mut open_calls = false;
    for (k, item) in items.iter().enumerate() {
        let path = format!("input[{}]", k.saturating_sub(first_input));
        let is_call = matches!(item, Item::FunctionCall { .. });
        match item {
            Item::Message { role, content, .. } => messages.push(message(*role, content, &path)?),
            Item::FunctionCall {
                call_id,
                name,
                arguments,
                ..
            } => {
                calls.insert(call_id);
                let call = json!({
                    "id": call_id,
                    "type": "function",
                    "function": {"name": name, "arguments": arguments},
                });
                let last = messages.last_mut().filter(|_| open_calls);
                match last
                    .and_then(|m| m.get_mut("tool_calls"))
                    .and_then(Value::as_array_mut)
                {
                    Some(tool_calls) => tool_calls.push(call),
                    None => messages.push(json!({
                        "role": "assistant",
                        "content": null,
                        "tool_calls": [call],
                    })),
                }
            }
            Item::FunctionCallOutput {
                call_id, output, ..
            } => {
                if !calls.contains(call_id.as_str()) {
                    let param = format!("{path}.call_id");
                    return Err(GatewayError::invalid_param(
                        format!(
                            "{param}: no function_call item before it has call_id `{}`",
                            clip(call_id)
                        ),
                        param,
                    ));
                }
                messages.push(json!({
                    "role": "tool",
                    "tool_call_id": call_id,
                    "content": output.text(),
                }));
            }
            Item::Reasoning { .. } => {}
        }
        open_calls = is_call || (open_calls && matches!(item, Item::Reasoning { .. }));
    }
    Ok(())
}

/// A message item as a chat message.
fn message(role: MessageRole, content: &ItemContent, path: &str) -> Result<Value, GatewayError> {
    let role_name = match role {
        MessageRole::User => "user",
        MessageRole::Assistant => "assistant",
        MessageRole::System => "system",
        MessageRole::Developer => "developer",
    };
    let content = match (role, content) {
        (MessageRole::User, ItemContent::Parts(parts)) => Value::Array(
            parts
                .iter()
                .enumerate()
                .map(|(j, part)| user_part(part, &format!("{path}.content[{j}]")))
                .collect::<Result<_, _>>()?,
        ),
        _ => Value::from(content.text()),
    };
    Ok(json!({"role": role_name, "content": content}))
}

fn user_part(part: &ContentItem, path: &str) -> Result<Value, GatewayError> {
    Ok(match part {
        ContentItem::InputText { text } | ContentItem::OutputText { text, .. } => {
            json!({"type": "text", "text": text})
        }
        ContentItem::Refusal { refusal } => json!({"type": "text", "text": refusal}),
        ContentItem::InputImage {
            image_url: Some(url),
            detail,
            ..
        } => json!({"type": "image_url", "image_url": {"url": url, "detail": detail}}),
        ContentItem::InputFile {
            file_data: Some(data),
            filename,
            ..
        } => json!({"type": "file", "file": {"file_data": data, "filename": filename}}),
        ContentItem::InputImage { .. } | ContentItem::InputFile { .. } => {
            return Err(GatewayError::invalid_param(
                format!(
                    "{path}: file ids are not supported; send the image as image_url or the file as file_data"
                ),
                path,
            ));
        }
    })
}

/// Function tools in chat's shape; built-in tools are refused by name.
fn chat_tools(tools: &[Value]) -> Result<Vec<Value>, GatewayError> {
    tools
        .iter()
        .enumerate()
        .map(|(i, tool)| {
            let path = format!("tools[{i}]");
            match tool.get("type").and_then(Value::as_str) {
                Some("function") => {}
                Some(kind) => {
                    return Err(GatewayError::invalid_param(
                        format!(
                            "{path}.type: `{}` tools are not supported; only function tools are (built-in tools such as web_search, file_search, code_interpreter and computer use are not)",
                            clip(kind)
                        ),
                        format!("{path}.type"),
                    ));
                }
                None => return Err(required(&format!("{path}.type"))),
            }
            let tool = FunctionTool::deserialize(tool).map_err(|e| field_error(&path, &e))?;
            Ok(json!({
                "type": "function",
                "function": {
                    "name": tool.name,
                    "description": tool.description,
                    "parameters": tool.parameters,
                    "strict": tool.strict,
                },
            }))
        })
        .collect()
}

fn chat_tool_choice(choice: &Value) -> Result<Value, GatewayError> {
    let invalid = || {
        GatewayError::invalid_param(
            "tool_choice: expected \"none\", \"auto\", \"required\", {\"type\": \"function\", \"name\": …} or {\"type\": \"allowed_tools\", …}",
            "tool_choice",
        )
    };
    let named = |tool: &Value| -> Result<Value, GatewayError> {
        match (
            tool.get("type").and_then(Value::as_str),
            tool.get("name").and_then(Value::as_str),
        ) {
            (Some("function"), Some(name)) => {
                Ok(json!({"type": "function", "function": {"name": name}}))
            }
            _ => Err(invalid()),
        }
    };
    match choice {
        Value::String(mode) if matches!(mode.as_str(), "none" | "auto" | "required") => {
            Ok(choice.clone())
        }
        Value::Object(object) => match object.get("type").and_then(Value::as_str) {
            Some("function") => named(choice),
            Some("allowed_tools") => {
                let mode = object
                    .get("mode")
                    .cloned()
                    .unwrap_or_else(|| Value::from("auto"));
                let tools = object
                    .get("tools")
                    .and_then(Value::as_array)
                    .ok_or_else(invalid)?
                    .iter()
                    .map(named)
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(
                    json!({"type": "allowed_tools", "allowed_tools": {"mode": mode, "tools": tools}}),
                )
            }
            Some(kind) => Err(GatewayError::invalid_param(
                format!(
                    "tool_choice: `{}` tools are not supported; only function tools are",
                    clip(kind)
                ),
                "tool_choice",
            )),
            None => Err(invalid()),
        },
        _ => Err(invalid()),
    }
}

fn response_format(format: &TextFormat) -> Value {
    match format {
        TextFormat::Text => json!({"type": "text"}),
        TextFormat::JsonObject => json!({"type": "json_object"}),
        TextFormat::JsonSchema {
            name,
            schema,
            description,
            strict,
        } => json!({
            "type": "json_schema",
            "json_schema": {"name": name, "schema": schema, "description": description, "strict": strict},
        }),
    }
}

fn text_echo(text: Option<&TextConfig>) -> Value {
    let format = match text.and_then(|t| t.format.as_ref()) {
        None | Some(TextFormat::Text) => json!({"type": "text"}),
        Some(TextFormat::JsonObject) => json!({"type": "json_object"}),
        Some(TextFormat::JsonSchema {
            name,
            schema,
            description,
            strict,
        }) => json!({
            "type": "json_schema",
            "name": name,
            "schema": schema,
            "description": description,
            "strict": strict,
        }),
    };
    json!({ "format": format })
}
