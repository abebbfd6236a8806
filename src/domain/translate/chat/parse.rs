//! Parsing a chat request body: typed deserialization, and on failure a re-walk of the raw
//! JSON that names the first field at fault and carries it as the error's `param`.

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::domain::error::GatewayError;
use crate::domain::openai::{
    self, ChatCompletionRequest, ChatMessage, ContentPart, MessageContent, ReasoningEffort,
    ResponseFormat, Role, Stop, StreamOptions, ToolCall, ToolChoice,
};
use crate::domain::translate::order::KeyOrders;
use crate::domain::translate::{
    Check, check, field_error, first_field_error, first_item_error, json_object, required,
};

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
