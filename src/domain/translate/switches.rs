//! The request-side compatibility switches (issue 12): prompt injection and system-as-user,
//! on the `OpenAI` messages and on Gemini contents, and their application to a native
//! `generateContent` body, with the default safety settings spliced in cheaply.
//!
//! Pure: no I/O, no clock.

use serde_json::{Map, Value};

use crate::domain::catalog::{Catalog, apply_native_default};
use crate::domain::compat::{Compat, InjectPosition};
use crate::domain::error::GatewayError;
use crate::domain::gemini::{Content, Part, PartData, Role, SafetySetting};
use crate::domain::openai::{ChatMessage, ContentPart, MessageContent};

/// What the matching `prompt_injection` rows add, by position, in row order.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Injections<'a> {
    pub system: Vec<&'a str>,
    pub prefix: Vec<&'a str>,
    pub suffix: Vec<&'a str>,
}

impl<'a> Injections<'a> {
    /// The rows of `compat` that match `model`, in order.
    pub fn for_model(compat: &'a Compat, model: &'a str) -> Self {
        let mut out = Self::default();
        for row in compat.injections_for(model) {
            match row.position {
                InjectPosition::System => out.system.push(&row.text),
                InjectPosition::Prefix => out.prefix.push(&row.text),
                InjectPosition::Suffix => out.suffix.push(&row.text),
            }
        }
        out
    }

    pub fn is_empty(&self) -> bool {
        self.system.is_empty() && self.prefix.is_empty() && self.suffix.is_empty()
    }

    /// `prefix` rows, then a blank line, then `text`, then a blank line and the `suffix` rows.
    fn wrap_first(&self, text: &mut String) {
        if !self.prefix.is_empty() {
            let mut wrapped = self.prefix.join("\n\n");
            wrapped.push_str("\n\n");
            wrapped.push_str(text);
            *text = wrapped;
        }
    }

    fn wrap_last(&self, text: &mut String) {
        for row in &self.suffix {
            text.push_str("\n\n");
            text.push_str(row);
        }
    }

    /// Puts the prefix before the first text, and the suffix after the last text, of the
    /// last user message that has text. Nothing happens when no user message has text.
    pub fn apply_to_messages(&self, messages: &mut [ChatMessage]) {
        if self.prefix.is_empty() && self.suffix.is_empty() {
            return;
        }
        let target = messages.iter_mut().rev().find_map(|m| match m {
            ChatMessage::User(user) if has_text(&user.content) => Some(&mut user.content),
            _ => None,
        });
        match target {
            Some(MessageContent::Text(text)) => {
                self.wrap_first(text);
                self.wrap_last(text);
            }
            Some(MessageContent::Parts(parts)) => {
                let mut texts = parts.iter_mut().filter_map(|p| match p {
                    ContentPart::Text { text } if !text.is_empty() => Some(text),
                    _ => None,
                });
                if let Some(first) = texts.next() {
                    self.wrap_first(first);
                    match texts.last() {
                        Some(last) => self.wrap_last(last),
                        None => self.wrap_last(first),
                    }
                }
            }
            None => {}
        }
    }

    /// The same on Gemini contents: the last user turn (role `user` or none) with a text part.
    pub fn apply_to_contents(&self, contents: &mut [Content]) {
        if self.prefix.is_empty() && self.suffix.is_empty() {
            return;
        }
        let Some(turn) = contents
            .iter_mut()
            .rev()
            .find(|c| is_user(c.role.as_ref()) && c.parts.iter().any(|p| answer_text(p).is_some()))
        else {
            return;
        };
        let mut texts = turn.parts.iter_mut().filter_map(answer_text_mut);
        if let Some(first) = texts.next() {
            self.wrap_first(first);
            match texts.last() {
                Some(last) => self.wrap_last(last),
                None => self.wrap_last(first),
            }
        }
    }

    /// Appends the `system` rows to the system instruction's last text, after a blank line,
    /// or makes an instruction of them.
    pub fn apply_to_system(&self, system: &mut Option<Content>) {
        if self.system.is_empty() {
            return;
        }
        let added = self.system.join("\n\n");
        let instruction = system.get_or_insert_with(Content::default);
        match instruction.parts.iter_mut().rev().find_map(answer_text_mut) {
            Some(text) => {
                text.push_str("\n\n");
                text.push_str(&added);
            }
            None => instruction.parts.push(Part::text(added)),
        }
    }
}

fn has_text(content: &MessageContent) -> bool {
    match content {
        MessageContent::Text(text) => !text.is_empty(),
        MessageContent::Parts(parts) => parts
            .iter()
            .any(|p| matches!(p, ContentPart::Text { text } if !text.is_empty())),
    }
}

fn is_user(role: Option<&Role>) -> bool {
    matches!(role, None | Some(Role::User))
}

fn answer_text(part: &Part) -> Option<&String> {
    match &part.data {
        PartData::Text(text) if !part.thought && !text.is_empty() => Some(text),
        _ => None,
    }
}

fn answer_text_mut(part: &mut Part) -> Option<&mut String> {
    match &mut part.data {
        PartData::Text(text) if !part.thought && !text.is_empty() => Some(text),
        _ => None,
    }
}

/// Moves a system instruction into the contents, for models that refuse
/// `systemInstruction`: its texts, joined by blank lines, open the first user turn (a
/// blank line before that turn's own parts), or become a leading user turn of their own
/// when the conversation opens with the model. Turns keep alternating either way.
pub fn system_into_contents(system: Option<Content>, contents: &mut Vec<Content>) {
    let Some(system) = system else {
        return;
    };
    let mut texts = Vec::new();
    let mut others = Vec::new();
    for part in system.parts {
        match part.data {
            PartData::Text(text) if !part.thought => {
                if !text.is_empty() {
                    texts.push(text);
                }
            }
            _ => others.push(part),
        }
    }
    let merge = contents.first().is_some_and(|c| is_user(c.role.as_ref()));
    let mut lead = Vec::with_capacity(1 + others.len());
    if !texts.is_empty() {
        let mut text = texts.join("\n\n");
        if merge {
            text.push_str("\n\n");
        }
        lead.push(Part::text(text));
    }
    lead.extend(others);
    if lead.is_empty() {
        return;
    }
    match contents.first_mut() {
        Some(first) if merge => {
            lead.append(&mut first.parts);
            first.parts = lead;
        }
        _ => contents.insert(0, Content::new(Role::User, lead)),
    }
}

// ---------------------------------------------------------------------------------------------
// the native surface
// ---------------------------------------------------------------------------------------------

/// The body a native `generateContent`/`streamGenerateContent` call sends upstream.
///
/// `parsed` is the client's body, already parsed (the handler parses it to check it and to
/// estimate its cost), and known to be a JSON object. The operator's thinking default,
/// system-as-user and prompt injection edit `parsed`, and only then is it written out again;
/// the default safety settings alone (the common case) are spliced into `raw` after its
/// opening `{`, so a request no switch touches costs no re-serialisation.
pub fn native_generate_body(
    raw: Vec<u8>,
    parsed: &mut Value,
    model: &str,
    catalog: &Catalog,
    compat: &Compat,
) -> Result<Vec<u8>, GatewayError> {
    let mut changed = apply_native_default(parsed, model, catalog);
    let Value::Object(body) = parsed else {
        return Ok(raw);
    };
    changed |= apply_native_switches(body, model, compat);
    let safety = missing_safety(body, &compat.default_safety_settings);
    if changed {
        if let Some(safety) = safety {
            body.insert("safetySettings".into(), safety_value(safety)?);
        }
        return serde_json::to_vec(parsed)
            .map_err(|e| GatewayError::Internal(format!("encode native body: {e}")));
    }
    match safety {
        Some(safety) => Ok(splice_member(
            raw,
            "safetySettings",
            &safety_value(safety)?,
            body.is_empty(),
        )),
        None => Ok(raw),
    }
}

/// The defaults to add: when the body sets no safety settings (in either spelling) and the
/// operator's list is not empty.
fn missing_safety<'a>(
    body: &Map<String, Value>,
    defaults: &'a [SafetySetting],
) -> Option<&'a [SafetySetting]> {
    let set = body.contains_key("safetySettings") || body.contains_key("safety_settings");
    (!set && !defaults.is_empty()).then_some(defaults)
}

fn safety_value(safety: &[SafetySetting]) -> Result<Value, GatewayError> {
    serde_json::to_value(safety)
        .map_err(|e| GatewayError::Internal(format!("encode safety settings: {e}")))
}

/// Inserts `"key":value` as the first member of `raw`, a JSON object (`empty` when it has
/// no members, so no comma follows).
fn splice_member(raw: Vec<u8>, key: &str, value: &Value, empty: bool) -> Vec<u8> {
    let Some(open) = raw.iter().position(|b| !b.is_ascii_whitespace()) else {
        return raw;
    };
    if raw[open] != b'{' {
        return raw;
    }
    let member = format!(
        "{}:{}{}",
        Value::String(key.to_owned()),
        value,
        if empty { "" } else { "," }
    );
    let mut out = Vec::with_capacity(raw.len() + member.len());
    out.extend_from_slice(&raw[..=open]);
    out.extend_from_slice(member.as_bytes());
    out.extend_from_slice(&raw[open + 1..]);
    out
}

/// System-as-user and prompt injection on a native body; true when it changed. Contents or
/// an instruction that do not parse as Gemini's are left for Google to judge.
fn apply_native_switches(body: &mut Map<String, Value>, model: &str, compat: &Compat) -> bool {
    let injections = Injections::for_model(compat, model);
    let system_key = ["systemInstruction", "system_instruction"]
        .into_iter()
        .find(|k| body.contains_key(*k));
    let as_user = compat.system_as_user(model);
    let move_system = as_user && system_key.is_some();
    let inject_system = !injections.system.is_empty();
    let inject_user = !injections.prefix.is_empty() || !injections.suffix.is_empty();
    if !(move_system || inject_system || inject_user) {
        return false;
    }
    let Some(mut contents) = body
        .get("contents")
        .and_then(|c| serde_json::from_value::<Vec<Content>>(c.clone()).ok())
    else {
        return false;
    };
    let mut system = match system_key.and_then(|k| body.get(k)) {
        None | Some(Value::Null) => None,
        Some(value) => match serde_json::from_value::<Content>(value.clone()) {
            Ok(content) => Some(content),
            Err(_) => return false,
        },
    };
    injections.apply_to_contents(&mut contents);
    injections.apply_to_system(&mut system);
    if let Some(key) = system_key {
        body.remove(key);
    }
    if as_user {
        system_into_contents(system, &mut contents);
    } else if let Some(system) = system {
        match serde_json::to_value(system) {
            Ok(value) => {
                body.insert(system_key.unwrap_or("systemInstruction").into(), value);
            }
            Err(_) => return false,
        }
    }
    match serde_json::to_value(contents) {
        Ok(value) => {
            body.insert("contents".into(), value);
            true
        }
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::compat::PromptInjection;
    use crate::domain::openai::UserMessage;
    use serde_json::json;

    fn row(pattern: &str, position: InjectPosition, text: &str) -> PromptInjection {
        PromptInjection {
            pattern: pattern.to_owned(),
            position,
            text: text.to_owned(),
        }
    }

    fn contents(value: Value) -> Vec<Content> {
        serde_json::from_value(value).unwrap()
    }

    fn compat_with(rows: Vec<PromptInjection>) -> Compat {
        Compat {
            prompt_injection: rows,
            ..Compat::default()
        }
    }

    #[test]
    fn every_matching_row_applies_in_order_at_its_position() {
        let compat = compat_with(vec![
            row("*", InjectPosition::Prefix, "P1"),
            row("gemini-*", InjectPosition::Suffix, "S1"),
            row("gemini-2.5-*", InjectPosition::Prefix, "P2"),
            row("*", InjectPosition::Suffix, "S2"),
            row("*", InjectPosition::System, "Y1"),
            row("gemma-*", InjectPosition::System, "never"),
        ]);
        let inj = Injections::for_model(&compat, "gemini-2.5-flash");
        assert_eq!(inj.prefix, ["P1", "P2"]);
        assert_eq!(inj.suffix, ["S1", "S2"]);
        assert_eq!(inj.system, ["Y1"]);
        let mut messages: Vec<ChatMessage> = serde_json::from_value(json!([
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "ok"},
            {"role": "user", "content": [
                {"type": "text", "text": "a"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                {"type": "text", "text": "b"}
            ]},
            {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]},
        ]))
        .unwrap();
        inj.apply_to_messages(&mut messages);
        let value = serde_json::to_value(&messages).unwrap();
        assert_eq!(
            value[0]["content"], "first",
            "only the last user message with text"
        );
        assert_eq!(value[2]["content"][0]["text"], "P1\n\nP2\n\na");
        assert_eq!(value[2]["content"][2]["text"], "b\n\nS1\n\nS2");
        assert!(value[3]["content"][0].get("text").is_none());
        // A plain string gets both.
        let mut one = vec![ChatMessage::User(UserMessage {
            content: MessageContent::Text("q".into()),
            name: None,
            extra: Map::new(),
        })];
        inj.apply_to_messages(&mut one);
        let ChatMessage::User(m) = &one[0] else {
            panic!()
        };
        assert_eq!(
            m.content,
            MessageContent::Text("P1\n\nP2\n\nq\n\nS1\n\nS2".into())
        );
    }

    #[test]
    fn system_rows_append_to_the_instruction_or_make_one() {
        let compat = compat_with(vec![
            row("*", InjectPosition::System, "A"),
            row("*", InjectPosition::System, "B"),
        ]);
        let inj = Injections::for_model(&compat, "m");
        let mut none = None;
        inj.apply_to_system(&mut none);
        assert_eq!(
            serde_json::to_value(&none).unwrap(),
            json!({"parts": [{"text": "A\n\nB"}]})
        );
        let mut some = Some(Content {
            role: None,
            parts: vec![Part::text("be brief")],
        });
        inj.apply_to_system(&mut some);
        assert_eq!(
            serde_json::to_value(&some).unwrap(),
            json!({"parts": [{"text": "be brief\n\nA\n\nB"}]})
        );
    }

    #[test]
    fn contents_injection_skips_tool_results_and_thoughts() {
        let compat = compat_with(vec![
            row("*", InjectPosition::Prefix, "P"),
            row("*", InjectPosition::Suffix, "S"),
        ]);
        let mut c = contents(json!([
            {"role": "user", "parts": [{"text": "q"}]},
            {"role": "model", "parts": [{"functionCall": {"name": "f"}}]},
            {"role": "user", "parts": [{"functionResponse": {"name": "f", "response": {}}}]},
        ]));
        Injections::for_model(&compat, "m").apply_to_contents(&mut c);
        assert_eq!(
            serde_json::to_value(&c).unwrap()[0]["parts"][0]["text"],
            "P\n\nq\n\nS"
        );
        let mut unset_role = contents(json!([{"parts": [{"text": "x"}]}]));
        Injections::for_model(&compat, "m").apply_to_contents(&mut unset_role);
        assert_eq!(
            serde_json::to_value(&unset_role).unwrap()[0]["parts"][0]["text"],
            "P\n\nx\n\nS"
        );
    }

    #[test]
    fn system_as_user_opens_the_first_user_turn_or_leads_alone() {
        let system = Some(Content {
            role: None,
            parts: vec![Part::text("rule 1"), Part::text("rule 2")],
        });
        let mut c = contents(json!([
            {"role": "user", "parts": [{"text": "hi"}]},
            {"role": "model", "parts": [{"text": "yo"}]},
        ]));
        system_into_contents(system.clone(), &mut c);
        assert_eq!(
            serde_json::to_value(&c).unwrap(),
            json!([
                {"role": "user", "parts": [{"text": "rule 1\n\nrule 2\n\n"}, {"text": "hi"}]},
                {"role": "model", "parts": [{"text": "yo"}]},
            ])
        );
        // A model-first history gets a user turn of its own, so turns still alternate.
        let mut c = contents(json!([
            {"role": "model", "parts": [{"text": "hello"}]},
            {"role": "user", "parts": [{"text": "hi"}]},
        ]));
        system_into_contents(system, &mut c);
        assert_eq!(
            serde_json::to_value(&c).unwrap(),
            json!([
                {"role": "user", "parts": [{"text": "rule 1\n\nrule 2"}]},
                {"role": "model", "parts": [{"text": "hello"}]},
                {"role": "user", "parts": [{"text": "hi"}]},
            ])
        );
        let mut c = contents(json!([{"role": "user", "parts": [{"text": "hi"}]}]));
        system_into_contents(None, &mut c);
        assert_eq!(c.len(), 1);
    }

    fn native(body: Value, model: &str, compat: &Compat) -> Value {
        let raw = serde_json::to_vec(&body).unwrap();
        let mut parsed = body;
        let out =
            native_generate_body(raw, &mut parsed, model, &Catalog::default(), compat).unwrap();
        serde_json::from_slice(&out).unwrap()
    }

    #[test]
    fn native_defaults_are_spliced_and_a_clients_own_settings_win() {
        let compat = Compat::default();
        let body = json!({"contents": [{"role": "user", "parts": [{"text": "x"}]}]});
        let sent = native(body.clone(), "gemini-2.5-flash", &compat);
        assert_eq!(
            sent["safetySettings"],
            serde_json::to_value(&compat.default_safety_settings).unwrap()
        );
        assert_eq!(sent["contents"], body["contents"]);
        for key in ["safetySettings", "safety_settings"] {
            let own = json!({"contents": [], key: []});
            assert_eq!(native(own.clone(), "gemini-2.5-flash", &compat), own);
        }
        let none = Compat {
            default_safety_settings: Vec::new(),
            ..Compat::default()
        };
        assert_eq!(native(body.clone(), "gemini-2.5-flash", &none), body);
        // The splice keeps the client's bytes, whitespace included, and handles `{}`.
        let raw = b" {\n \"contents\": []}".to_vec();
        let mut parsed: Value = serde_json::from_slice(&raw).unwrap();
        let out =
            native_generate_body(raw, &mut parsed, "m", &Catalog::default(), &compat).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with(" {\"safetySettings\":[{"), "{text}");
        assert!(text.ends_with("],\n \"contents\": []}"), "{text}");
        let mut parsed = json!({});
        let out = native_generate_body(
            b"{}".to_vec(),
            &mut parsed,
            "m",
            &Catalog::default(),
            &compat,
        )
        .unwrap();
        let value: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(value.as_object().unwrap().len(), 1);
    }

    #[test]
    fn native_system_instruction_moves_for_system_as_user_models() {
        let compat = Compat {
            default_safety_settings: Vec::new(),
            prompt_injection: vec![row("*", InjectPosition::System, "Z")],
            ..Compat::default()
        };
        let body = json!({
            "system_instruction": {"parts": [{"text": "be kind"}]},
            "contents": [{"parts": [{"text": "hi"}]}],
            "generationConfig": {"temperature": 0.5}
        });
        let sent = native(body.clone(), "gemma-3-27b-it", &compat);
        // The role the client left unset stays unset.
        assert_eq!(
            sent,
            json!({
                "contents": [{"parts": [{"text": "be kind\n\nZ\n\n"}, {"text": "hi"}]}],
                "generationConfig": {"temperature": 0.5}
            })
        );
        // Other models keep their instruction, with the injection appended.
        let sent = native(body, "gemini-2.5-flash", &compat);
        assert_eq!(
            sent["system_instruction"],
            json!({"parts": [{"text": "be kind\n\nZ"}]})
        );
        // Nothing to do: the body is untouched.
        let plain = json!({"contents": [{"parts": [{"text": "hi"}]}]});
        let quiet = Compat {
            default_safety_settings: Vec::new(),
            ..Compat::default()
        };
        assert_eq!(native(plain.clone(), "gemma-3-27b-it", &quiet), plain);
        // Contents Gemini's types cannot read are left for Google to judge.
        let odd = json!({"systemInstruction": {"parts": [{"text": "s"}]}, "contents": "x"});
        assert_eq!(native(odd.clone(), "gemma-3-27b-it", &quiet), odd);
    }
}
