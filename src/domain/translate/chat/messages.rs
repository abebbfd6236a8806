//! Messages → `systemInstruction` and strictly alternating `contents`: roles, the text-only
//! rules, assistant tool calls with their thought signatures, and tool results. User content
//! parts are turned into Gemini parts in `content`.

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use super::ids::split_call_id;
use super::{RemoteMedia, SIGNATURE_SENTINEL};
use crate::domain::error::GatewayError;
use crate::domain::gemini::{self, ModelName, Part, PartData};
use crate::domain::openai::{
    self, ChatMessage, ContentPart, ExtraContent, MessageContent, ToolCall,
};
use crate::domain::translate::names;
use crate::domain::translate::thinking::{self, Family};

/// Builds Gemini's `systemInstruction` and `contents` from the `OpenAI` messages.
pub(super) struct Conversation {
    system: Vec<Part>,
    contents: Vec<gemini::Content>,
    /// `tool_call_id` → Gemini function name, from the assistant turns seen so far.
    call_names: HashMap<String, String>,
    signature_sentinel: bool,
    pub(super) remote: Vec<RemoteMedia>,
}

/// The system instruction, the turns, and the remote images they reference.
type Built = (
    Option<gemini::Content>,
    Vec<gemini::Content>,
    Vec<RemoteMedia>,
);

impl Conversation {
    pub(super) fn build(
        messages: Vec<ChatMessage>,
        model: &ModelName,
    ) -> Result<Built, GatewayError> {
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
pub(super) fn text_part(text: String) -> Option<Part> {
    (!text.is_empty()).then(|| Part::text(text))
}

pub(super) fn part_path(i: usize, j: usize) -> String {
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
