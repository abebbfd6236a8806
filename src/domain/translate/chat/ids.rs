//! Tool-call ids: issued per choice from the completion id, carrying Gemini's thought
//! signature so it survives clients that keep only the id; split back apart when a client
//! replays the call.

use super::{ChatContext, SIGNATURE_SEPARATOR};

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

    pub(super) fn issue(&mut self, upstream_id: Option<&str>, signature: Option<&str>) -> String {
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
pub(super) fn split_call_id(id: &str) -> (&str, Option<&str>) {
    match id.split_once(SIGNATURE_SEPARATOR) {
        Some((base, signature)) if !signature.is_empty() => (base, Some(signature)),
        _ => (id, None),
    }
}
