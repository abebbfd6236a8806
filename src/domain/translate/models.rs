//! Gemini model listings → `OpenAI` `model` objects.
//!
//! Must not do I/O or read a clock: `created` is passed in, since Gemini reports no dates.

use crate::domain::{gemini, openai};

/// The `OpenAI` `list` of models, in upstream order.
pub fn model_list(models: &[gemini::Model], created: u64) -> openai::ModelList {
    openai::ModelList {
        object: openai::Object::List,
        data: models.iter().map(|m| model_object(m, created)).collect(),
    }
}

/// One `OpenAI` `model`: the bare id (`models/` stripped), owned by `google`.
pub fn model_object(model: &gemini::Model, created: u64) -> openai::Model {
    openai::Model {
        id: model.name.as_str().to_owned(),
        object: openai::Object::Model,
        created,
        owned_by: "google".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn gemini_listing_becomes_openai_model_list() {
        let listing: gemini::ListModelsResponse = serde_json::from_value(json!({"models": [
            {"name": "models/gemini-2.5-flash", "displayName": "Gemini 2.5 Flash",
             "supportedGenerationMethods": ["generateContent"]},
            {"name": "models/gemini-embedding-001"}
        ]}))
        .unwrap();
        assert_eq!(
            serde_json::to_value(model_list(&listing.models, 1_700_000_000)).unwrap(),
            json!({"object": "list", "data": [
                {"id": "gemini-2.5-flash", "object": "model", "created": 1_700_000_000, "owned_by": "google"},
                {"id": "gemini-embedding-001", "object": "model", "created": 1_700_000_000, "owned_by": "google"}
            ]})
        );
    }
}
