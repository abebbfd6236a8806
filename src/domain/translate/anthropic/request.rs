//! An Anthropic Messages request → the `OpenAI` chat request the chat translation already
//! turns into Gemini's, plus what that translation cannot carry: the thought signatures the
//! client's thinking blocks hold, put back on the Gemini turns they came from.
//!
//! Going through the chat request keeps one translation of roles, tools, images, files,
//! thinking, the compatibility switches and the tool-result wrapping for both surfaces.

use serde_json::{Map, Value};

use super::object;

use crate::domain::error::GatewayError;
use crate::domain::gemini::{self, PartData, Role};
use crate::domain::openai::ChatCompletionRequest;
use crate::domain::translate::chat::parse_chat_request;
use crate::domain::translate::json_kind;

/// What the response translation needs from the request, beyond the chat plan.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessagesPlan {
    pub stream: bool,
    /// The client's `stop_sequences`, to tell `stop_sequence` from `end_turn`.
    pub stop_sequences: Vec<String>,
    /// The thought signature of each model turn the request replays, in order (`None` for a
    /// turn without one).
    pub signatures: Vec<Option<String>>,
}

/// Parses a Messages body into a chat request and its plan. `count_only` is the
/// `count_tokens` body, which has no `max_tokens` and no `stream`.
pub fn to_chat_request(
    body: &[u8],
    count_only: bool,
) -> Result<(ChatCompletionRequest, MessagesPlan), GatewayError> {
    let mut fields = crate::domain::translate::json_object(body)?;
    let model = match fields.remove("model") {
        Some(Value::String(model)) if !model.trim().is_empty() => model,
        Some(other) if !other.is_string() => return Err(wrong_type("model", "a string", &other)),
        _ => {
            return Err(GatewayError::invalid_param(
                "model: Field required",
                "model",
            ));
        }
    };
    let mut chat = Map::new();
    chat.insert("model".into(), Value::String(model));
    let mut plan = MessagesPlan::default();
    let mut messages = Vec::new();
    if let Some(system) = fields.remove("system") {
        let text = system_text(system)?;
        if !text.is_empty() {
            messages.push(role_message("system", text.into()));
        }
    }
    let Some(Value::Array(turns)) = fields.remove("messages") else {
        return Err(GatewayError::invalid_param(
            "messages: Field required (a list of messages)",
            "messages",
        ));
    };
    let mut turns_out = Turns::default();
    for (i, turn) in turns.into_iter().enumerate() {
        turns_out.add(&turn, i)?;
    }
    messages.extend(turns_out.messages);
    plan.signatures = turns_out.signatures;
    chat.insert("messages".into(), Value::Array(messages));
    match fields.remove("max_tokens") {
        Some(Value::Number(n)) if n.as_u64().is_some_and(|n| n > 0) => {
            chat.insert("max_tokens".into(), Value::Number(n));
        }
        Some(other) if !count_only => {
            return Err(wrong_type("max_tokens", "a positive integer", &other));
        }
        None if !count_only => {
            return Err(GatewayError::invalid_param(
                "max_tokens: Field required",
                "max_tokens",
            ));
        }
        _ => {}
    }
    for (ours, theirs) in [
        ("temperature", "temperature"),
        ("top_p", "top_p"),
        ("top_k", "top_k"),
    ] {
        if let Some(value) = fields.remove(ours).filter(|v| !v.is_null()) {
            if !value.is_number() {
                return Err(wrong_type(ours, "a number", &value));
            }
            chat.insert(theirs.into(), value);
        }
    }
    if let Some(stops) = fields.remove("stop_sequences").filter(|v| !v.is_null()) {
        let list = stops.as_array().and_then(|list| {
            list.iter()
                .map(|s| s.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
        });
        // Not sent upstream: the gateway cuts at them itself (see `find_stop`).
        plan.stop_sequences =
            list.ok_or_else(|| wrong_type("stop_sequences", "a list of strings", &stops))?;
    }
    if !count_only {
        plan.stream = match fields.remove("stream") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => b,
            Some(other) => return Err(wrong_type("stream", "a boolean", &other)),
        };
        if plan.stream {
            chat.insert("stream".into(), Value::Bool(true));
            chat.insert(
                "stream_options".into(),
                object(&mut [("include_usage", true.into())]),
            );
        }
    }
    if let Some(tools) = fields.remove("tools").filter(|v| !v.is_null()) {
        chat.insert("tools".into(), Value::Array(tools_of(tools)?));
    }
    if let Some(choice) = fields.remove("tool_choice").filter(|v| !v.is_null()) {
        let (choice, parallel) = tool_choice(&choice)?;
        chat.insert("tool_choice".into(), choice);
        if let Some(parallel) = parallel {
            chat.insert("parallel_tool_calls".into(), Value::Bool(parallel));
        }
    }
    let thinking = thinking_config(fields.remove("thinking"))?;
    let google = object(&mut [("thinking_config", thinking)]);
    chat.insert("extra_body".into(), object(&mut [("google", google)]));
    let bytes = serde_json::to_vec(&Value::Object(chat))
        .map_err(|e| GatewayError::Internal(format!("encode chat request: {e}")))?;
    Ok((parse_chat_request(&bytes)?, plan))
}

/// `thinking` → Gemini's thinking config: `enabled` asks for thoughts within its budget,
/// `disabled` for none; absent, the model's own default without thoughts shown.
fn thinking_config(thinking: Option<Value>) -> Result<Value, GatewayError> {
    let Some(thinking) = thinking.filter(|v| !v.is_null()) else {
        return Ok(object(&mut [("include_thoughts", false.into())]));
    };
    match thinking.get("type").and_then(Value::as_str) {
        Some("enabled") => {
            let budget = thinking
                .get("budget_tokens")
                .and_then(Value::as_u64)
                .and_then(|b| i32::try_from(b).ok())
                .ok_or_else(|| {
                    GatewayError::invalid_param(
                        "thinking.budget_tokens: Field required (a positive integer) when thinking is enabled",
                        "thinking.budget_tokens",
                    )
                })?;
            Ok(thinking_budget(budget, true))
        }
        Some("disabled") => Ok(thinking_budget(0, false)),
        _ => Err(GatewayError::invalid_param(
            "thinking.type: must be `enabled` or `disabled`",
            "thinking.type",
        )),
    }
}

fn thinking_budget(budget: i32, include: bool) -> Value {
    object(&mut [
        ("thinking_budget", budget.into()),
        ("include_thoughts", include.into()),
    ])
}

/// `{"role": role, "content": content}`.
fn role_message(role: &str, content: Value) -> Value {
    object(&mut [("role", role.into()), ("content", content)])
}

fn text_part(text: &str) -> Value {
    object(&mut [("type", "text".into()), ("text", text.into())])
}

/// A chat `image_url` part (a data URL, or a URL the edge fetches through its guard).
fn image_part(url: String) -> Value {
    let image = object(&mut [("url", url.into())]);
    object(&mut [("type", "image_url".into()), ("image_url", image)])
}

/// An invalid `{at}.{field}`, the parameter named in the error.
fn bad_field(at: &str, field: &str, why: &str) -> GatewayError {
    let param = format!("{at}.{field}");
    GatewayError::invalid_param(format!("{param}: {why}"), param)
}

fn wrong_type(path: &str, wanted: &str, value: &Value) -> GatewayError {
    GatewayError::invalid_param(
        format!("{path}: must be {wanted}, not {}", json_kind(value)),
        path,
    )
}

/// `system` as a string or a list of text blocks.
fn system_text(system: Value) -> Result<String, GatewayError> {
    match system {
        Value::Null => Ok(String::new()),
        Value::String(text) => Ok(text),
        Value::Array(blocks) => {
            let mut texts = Vec::new();
            for (j, block) in blocks.iter().enumerate() {
                let text = block.get("text").and_then(Value::as_str);
                let Some(text) = text.filter(|_| kind(block) == Some("text")) else {
                    let path = format!("system[{j}]");
                    return Err(GatewayError::invalid_param(
                        format!("{path}: system blocks must be text blocks"),
                        path,
                    ));
                };
                texts.push(text.to_owned());
            }
            Ok(texts.join("\n\n"))
        }
        other => Err(wrong_type(
            "system",
            "a string or a list of text blocks",
            &other,
        )),
    }
}

fn kind(block: &Value) -> Option<&str> {
    block.get("type").and_then(Value::as_str)
}

/// The chat messages the turns become, and the signature of each model turn.
#[derive(Default)]
struct Turns {
    messages: Vec<Value>,
    signatures: Vec<Option<String>>,
    /// Whether the last turn with content was the model's (consecutive ones merge upstream).
    last_was_model: bool,
}

impl Turns {
    fn add(&mut self, turn: &Value, i: usize) -> Result<(), GatewayError> {
        let path = format!("messages[{i}]");
        let role = turn.get("role").and_then(Value::as_str).unwrap_or_default();
        let content = match turn.get("content") {
            Some(Value::String(text)) => vec![text_part(text)],
            Some(Value::Array(blocks)) => blocks.clone(),
            _ => {
                return Err(bad_field(
                    &path,
                    "content",
                    "Field required (a string or a list of blocks)",
                ));
            }
        };
        match role {
            "user" => self.user(&content, &path),
            "assistant" => self.assistant(&content, &path),
            _ => Err(bad_field(&path, "role", "must be `user` or `assistant`")),
        }
    }

    fn user(&mut self, blocks: &[Value], path: &str) -> Result<(), GatewayError> {
        let mut parts = Vec::new();
        for (j, block) in blocks.iter().enumerate() {
            let at = format!("{path}.content[{j}]");
            match kind(block) {
                Some("tool_result") => {
                    let (text, media) = tool_result(block, &at)?;
                    let id = block
                        .get("tool_use_id")
                        .and_then(Value::as_str)
                        .ok_or_else(|| bad_field(&at, "tool_use_id", "Field required"))?;
                    self.messages.push(object(&mut [
                        ("role", "tool".into()),
                        ("tool_call_id", id.into()),
                        ("content", text.into()),
                    ]));
                    parts.extend(media);
                    self.last_was_model = false;
                }
                Some("thinking" | "redacted_thinking") => {}
                _ => {
                    if let Some(part) = user_part(block, &at)? {
                        parts.push(part);
                    }
                }
            }
        }
        if !parts.is_empty() {
            self.messages
                .push(role_message("user", Value::Array(parts)));
            self.last_was_model = false;
        }
        Ok(())
    }

    fn assistant(&mut self, blocks: &[Value], path: &str) -> Result<(), GatewayError> {
        let mut text = String::new();
        let mut calls = Vec::new();
        let mut signature = None;
        for (j, block) in blocks.iter().enumerate() {
            let at = format!("{path}.content[{j}]");
            match kind(block) {
                Some("text") => {
                    text.push_str(
                        block
                            .get("text")
                            .and_then(Value::as_str)
                            .unwrap_or_default(),
                    );
                }
                Some("thinking") => {
                    if let Some(s) = block
                        .get("signature")
                        .and_then(Value::as_str)
                        .filter(|s| !s.is_empty())
                    {
                        signature = Some(s.to_owned());
                    }
                }
                Some("redacted_thinking") => {}
                Some("tool_use") => {
                    let id = block.get("id").and_then(Value::as_str).unwrap_or_default();
                    let name = block
                        .get("name")
                        .and_then(Value::as_str)
                        .ok_or_else(|| bad_field(&at, "name", "Field required"))?;
                    let arguments = block
                        .get("input")
                        .map_or_else(|| "{}".to_owned(), Value::to_string);
                    let function =
                        object(&mut [("name", name.into()), ("arguments", arguments.into())]);
                    calls.push(object(&mut [
                        ("id", id.into()),
                        ("type", "function".into()),
                        ("function", function),
                    ]));
                }
                other => {
                    let why = format!(
                        "`{}` blocks are not supported in assistant turns",
                        other.unwrap_or("?")
                    );
                    return Err(bad_field(&at, "type", &why));
                }
            }
        }
        if text.is_empty() && calls.is_empty() {
            return Ok(());
        }
        let mut message = role_message("assistant", text.into());
        if !calls.is_empty() {
            message["tool_calls"] = Value::Array(calls);
        }
        self.messages.push(message);
        if self.last_was_model {
            if let (Some(last), Some(s)) = (self.signatures.last_mut(), signature) {
                *last = Some(s);
            }
        } else {
            self.signatures.push(signature);
        }
        self.last_was_model = true;
        Ok(())
    }
}

/// A user content block as a chat content part; `None` for an empty text.
fn user_part(block: &Value, at: &str) -> Result<Option<Value>, GatewayError> {
    match kind(block) {
        Some("text") => {
            let text = block
                .get("text")
                .and_then(Value::as_str)
                .unwrap_or_default();
            Ok((!text.is_empty()).then(|| text_part(text)))
        }
        Some("image") => Ok(Some(image_part(source_url(block, at)?))),
        Some("document") => document(block, at).map(Some),
        other => {
            let why = format!(
                "`{}` blocks are not supported in user turns",
                other.unwrap_or("?")
            );
            Err(bad_field(at, "type", &why))
        }
    }
}

/// An image or document `source` as a URL: `base64` becomes a data URL, `url` stays (fetched
/// by the edge through its guard).
fn source_url(block: &Value, at: &str) -> Result<String, GatewayError> {
    let source = block.get("source").unwrap_or(&Value::Null);
    let field = |name: &str| source.get(name).and_then(Value::as_str);
    match (
        kind(source),
        field("media_type"),
        field("data"),
        field("url"),
    ) {
        (Some("base64"), Some(media), Some(data), _) => Ok(format!("data:{media};base64,{data}")),
        (Some("url"), _, _, Some(url)) => Ok(url.to_owned()),
        _ => Err(bad_field(
            at,
            "source",
            "must be {type: base64, media_type, data} or {type: url, url}",
        )),
    }
}

/// A document block: a PDF (base64 or URL) as a file, a plain-text source as text.
fn document(block: &Value, at: &str) -> Result<Value, GatewayError> {
    let source = block.get("source").unwrap_or(&Value::Null);
    match kind(source) {
        Some("text") => {
            let text = source
                .get("data")
                .and_then(Value::as_str)
                .unwrap_or_default();
            Ok(text_part(text))
        }
        Some("content") => {
            let text = match source.get("content") {
                Some(Value::String(text)) => text.clone(),
                Some(Value::Array(blocks)) => blocks
                    .iter()
                    .filter_map(|b| b.get("text").and_then(Value::as_str))
                    .collect::<Vec<_>>()
                    .join("\n"),
                _ => String::new(),
            };
            Ok(text_part(&text))
        }
        Some("url") => Ok(image_part(source_url(block, at)?)),
        _ => {
            let file = object(&mut [("file_data", source_url(block, at)?.into())]);
            Ok(object(&mut [("type", "file".into()), ("file", file)]))
        }
    }
}

/// A tool result's text (what the chat tool message carries) and its images, which follow
/// the results in the same user turn.
fn tool_result(block: &Value, at: &str) -> Result<(String, Vec<Value>), GatewayError> {
    match block.get("content") {
        None | Some(Value::Null) => Ok((String::new(), Vec::new())),
        Some(Value::String(text)) => Ok((text.clone(), Vec::new())),
        Some(Value::Array(blocks)) => {
            let mut texts = Vec::new();
            let mut media = Vec::new();
            for (k, inner) in blocks.iter().enumerate() {
                let path = format!("{at}.content[{k}]");
                match kind(inner) {
                    Some("text") => texts.push(
                        inner
                            .get("text")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_owned(),
                    ),
                    _ => media.extend(user_part(inner, &path)?),
                }
            }
            Ok((texts.join("\n"), media))
        }
        Some(other) => Err(wrong_type(
            &format!("{at}.content"),
            "a string or a list of blocks",
            other,
        )),
    }
}

/// Anthropic tools → chat function tools; server tools have no Gemini equivalent here.
fn tools_of(tools: Value) -> Result<Vec<Value>, GatewayError> {
    let Value::Array(tools) = tools else {
        return Err(wrong_type("tools", "a list", &tools));
    };
    tools
        .into_iter()
        .enumerate()
        .map(|(i, tool)| {
            let at = format!("tools[{i}]");
            match kind(&tool) {
                None | Some("custom") => {}
                Some(other) => {
                    let why = format!("the server tool `{other}` is not supported; declare client tools with a name and an input_schema");
                    return Err(bad_field(&at, "type", &why));
                }
            }
            let name = tool
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| bad_field(&at, "name", "Field required"))?;
            let mut function = object(&mut [("name", name.into())]);
            if let Some(description) = tool.get("description").filter(|d| d.is_string()) {
                function["description"] = description.clone();
            }
            if let Some(schema) = tool.get("input_schema").filter(|s| s.is_object()) {
                function["parameters"] = schema.clone();
            }
            Ok(function_tool(function))
        })
        .collect()
}

/// `tool_choice` → the chat `tool_choice`, and `parallel_tool_calls` when parallel use is off.
fn tool_choice(choice: &Value) -> Result<(Value, Option<bool>), GatewayError> {
    let parallel = choice
        .get("disable_parallel_tool_use")
        .and_then(Value::as_bool)
        .filter(|d| *d)
        .map(|_| false);
    let mapped = match kind(choice) {
        Some("auto") => "auto".into(),
        Some("any") => "required".into(),
        Some("none") => "none".into(),
        Some("tool") => {
            let name = choice.get("name").and_then(Value::as_str).ok_or_else(|| {
                GatewayError::invalid_param(
                    "tool_choice.name: Field required when type is `tool`",
                    "tool_choice.name",
                )
            })?;
            function_tool(object(&mut [("name", name.into())]))
        }
        _ => {
            return Err(GatewayError::invalid_param(
                "tool_choice.type: must be `auto`, `any`, `tool` or `none`",
                "tool_choice.type",
            ));
        }
    };
    Ok((mapped, parallel))
}

/// `{"type": "function", "function": function}`.
fn function_tool(function: Value) -> Value {
    object(&mut [("type", "function".into()), ("function", function)])
}

/// Puts each replayed model turn's thought signature back where Gemini gave it: on the
/// turn's first function call (replacing the chat translation's placeholder), else on its
/// last text part.
pub fn apply_signatures(body: &mut gemini::GenerateContentRequest, signatures: &[Option<String>]) {
    let model_turns = body
        .contents
        .iter_mut()
        .filter(|c| c.role == Some(Role::Model));
    for (turn, signature) in model_turns.zip(signatures) {
        let Some(signature) = signature else { continue };
        let call = turn
            .parts
            .iter()
            .position(|p| matches!(p.data, PartData::FunctionCall(_)));
        let text = turn
            .parts
            .iter()
            .rposition(|p| matches!(p.data, PartData::Text(_)));
        if let Some(at) = call.or(text) {
            turn.parts[at].thought_signature = Some(signature.clone());
        }
    }
}
