//! Gemini response → `OpenAI` chat completion (non-streaming), plus the candidate pieces the
//! stream translator shares: [`CandidateOutput`], [`prompt_blocked`] and [`openai_logprobs`].

use std::borrow::Cow;

use serde_json::{Value, json};

use super::ids::CallIds;
use super::{ChatContext, ReplyPlan};
use crate::domain::error::GatewayError;
use crate::domain::gemini::{self, Part, PartData};
use crate::domain::openai::{self, ExtraContent, Role, ToolCall};
use crate::domain::translate::grounding::Citations;
use crate::domain::translate::{finish_reason, usage};

/// What one candidate (or one streamed slice of it) says, split into `OpenAI`'s channels.
#[derive(Debug, Default)]
pub(crate) struct CandidateOutput {
    pub(crate) text: String,
    /// Thought summaries (`thought: true`), never mixed into `text`.
    pub(crate) reasoning: String,
    pub(crate) tool_calls: Vec<ToolCall>,
    /// Images as `image_url` content parts, when the reply plan asks for parts.
    pub(crate) images: Vec<Value>,
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
                PartData::InlineData(blob)
                    if plan.image_parts && blob.mime_type.starts_with("image/") =>
                {
                    out.images.push(crate::domain::images::image_part(blob));
                }
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

/// `thoughts_in_content`: folds a candidate's (or a stream slice's) thoughts into its text as
/// `<think>…</think>`. The tag opens with the first thought and closes before the first
/// answer text after it, or at the end ([`close`](Self::close)).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct ThinkTags {
    open: bool,
}

impl ThinkTags {
    /// Moves `output.reasoning` into `output.text`; returns how many characters of the new
    /// text come before the answer text (the tags and thoughts).
    pub(crate) fn fold(&mut self, output: &mut CandidateOutput) -> usize {
        if output.reasoning.is_empty() && !self.open {
            return 0;
        }
        let mut content = String::new();
        if !output.reasoning.is_empty() {
            if !self.open {
                content.push_str("<think>");
                self.open = true;
            }
            content.push_str(&std::mem::take(&mut output.reasoning));
        }
        if !output.text.is_empty() && self.open {
            content.push_str("</think>");
            self.open = false;
        }
        let lead = content.chars().count();
        content.push_str(&output.text);
        output.text = content;
        lead
    }

    /// The closing tag, when a thought block is still open.
    pub(crate) fn close(&mut self) -> Option<&'static str> {
        std::mem::replace(&mut self.open, false).then_some("</think>")
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

/// `text` split after its first `chars` characters; returns the split point's character
/// count and the rest.
fn split_at_char(text: &str, chars: usize) -> (usize, &str) {
    let at = text
        .char_indices()
        .nth(chars)
        .map_or(text.len(), |(byte, _)| byte);
    (chars, &text[at..])
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
    let answer_chars = if ctx.reply.thoughts_in_content {
        let mut tags = ThinkTags::default();
        let lead = tags.fold(&mut output);
        if let Some(close) = tags.close() {
            output.text.push_str(close);
        }
        lead
    } else {
        0
    };
    let mut citations = Citations::default();
    if let Some(metadata) = candidate
        .grounding_metadata
        .as_ref()
        .filter(|_| !ctx.reply.enum_as_json)
    {
        let (lead, answer) = split_at_char(&output.text, answer_chars);
        citations.add(metadata, answer, u32::try_from(lead).unwrap_or(u32::MAX));
        if ctx.reply.sources_list
            && let Some(list) = citations.sources_list()
        {
            output.text.push_str(&list);
        }
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
            annotations: citations.annotations,
            images: output.images,
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
            annotations: Vec::new(),
            images: Vec::new(),
        },
        logprobs: None,
        finish_reason: openai::FinishReason::ContentFilter,
    }
}
